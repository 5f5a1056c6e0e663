"""nbgrader configuration for the instructor's JupyterLab (scripts/lab.sh instructor, or the course
hub): the course's one configuration (autograder.config.lab_config, as autograder/nbgrader_config.py
and `python -m autograder`). From a clone of the course the repository's autograder package is
used; on the hub, the one installed in the hub's environment."""
import sys
from pathlib import Path

_repo = Path(__file__).resolve().parents[2]
if (_repo / "autograder" / "config.py").is_file() and str(_repo) not in sys.path:
    sys.path.insert(0, str(_repo))

from autograder.config import lab_config  # noqa: E402

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)
c.merge(lab_config())
