"""nbgrader configuration of a student's JupyterLab (scripts/lab.sh student, or the course hub).

The course root and the folder Fetch, Submit and Fetch Feedback use are the student's workspace
($CNNLAB_STUDENT_DIR, the folder JupyterLab shows), never the release folder:
autograder.config.student_config. From a clone of the course the repository's autograder package
is used; on the hub, the one installed in the hub's environment (students cannot read the
instructor's repository).
"""
import sys
from pathlib import Path

_repo = Path(__file__).resolve().parents[2]
if (_repo / "autograder" / "config.py").is_file() and str(_repo) not in sys.path:
    sys.path.insert(0, str(_repo))

from autograder.config import student_config  # noqa: E402

c = get_config()  # noqa: F821  (provided by traitlets when nbgrader loads this file)
c.merge(student_config())
