"""Build the nbgrader configuration for this course.

The repository holds the course material: ``solutions/<assignment>/`` (nbgrader's source step) and
``notebooks/<assignment>/`` (its release step).  Everything an instructor's grading produces
(gradebook, submitted, autograded, feedback) lives in a separate work folder, ``course/`` by
default, so the repository never fills with student data.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
NOTEBOOKS = REPO / "notebooks"
DEFAULT_WORKDIR = Path(os.environ.get("CNNLAB_COURSE_DIR", REPO / "course"))


def course_config(workdir: str | Path | None = None, db_url: str | None = None) -> Config:
    """Return the nbgrader Config for the course, rooted at ``workdir``."""
    workdir = Path(workdir or DEFAULT_WORKDIR).resolve()
    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(Path(__file__).parent)).load_config()
    cfg.CourseDirectory.root = str(workdir)
    cfg.CourseDirectory.source_directory = str(SOLUTIONS)
    cfg.CourseDirectory.release_directory = str(NOTEBOOKS)
    cfg.CourseDirectory.course_id = "cnnlab"
    if db_url:
        cfg.CourseDirectory.db_url = db_url
    return cfg


def assignments() -> list[str]:
    """Return the course's assignments (folders of solutions/), in order."""
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and not p.name.startswith("."))
