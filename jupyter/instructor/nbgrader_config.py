"""nbgrader configuration for JupyterLab started by scripts/lab.sh: the course's one configuration."""
from pathlib import Path

load_subconfig(str(Path(__file__).resolve().parents[2] / "autograder" / "nbgrader_config.py"))  # noqa: F821
