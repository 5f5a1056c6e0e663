"""nbgrader configuration found by `jupyter lab` or `nbgrader ...` started at the repository root.

It is the course's one configuration (autograder/nbgrader_config.py), also used by
`python -m autograder` and by JupyterLab started with scripts/lab.sh.
"""
from pathlib import Path

load_subconfig(str(Path(__file__).resolve().parent / "autograder" / "nbgrader_config.py"))  # noqa: F821
