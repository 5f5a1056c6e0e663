"""nbgrader configuration of the cnnlab course, for nbgrader's JupyterLab extensions.

The settings themselves live in :func:`autograder.config.course_config`, which the CLI
(``python -m autograder``) uses directly, and every preprocessor chain in
:func:`autograder.config.pipeline_config`: formgrader's Generate / Release / Collect / Autograde /
Feedback buttons, Validate, Course List and Assignment List therefore run the same preprocessors
(named stubs, leak check, stderr handling, scrubbed and sanitised feedback, time and memory
limits); tests/test_pipeline_chains.py compares them with the CLI's.

JupyterLab finds this file through ``jupyter/instructor`` or ``jupyter/student`` on
``$JUPYTER_CONFIG_PATH`` (``scripts/lab.sh`` sets it), or through the ``nbgrader_config.py`` at the
repository root when ``jupyter lab`` is started there.
"""
import sys
from pathlib import Path

_repo = str(Path(__file__).resolve().parent.parent)
if _repo not in sys.path:
    sys.path.insert(0, _repo)

from autograder.config import lab_config  # noqa: E402

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)
c.merge(lab_config())
