"""Build the nbgrader configuration for this course.

The repository holds the course material: ``solutions/<assignment>/`` (nbgrader's source step) and
``notebooks/<assignment>/`` (its release step).  Everything an instructor's grading produces
(gradebook, submitted, autograded, feedback) lives in a separate work folder, ``course/`` by
default (or ``$CNNLAB_COURSE_DIR``), so the repository never fills with student data.

All three folders are configurable through :class:`Course`, so tests and the demo can point the
tool at a fixture course or a temporary work folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from traitlets.config import Config

from .util import Limits  # noqa: F401  (defined once, in util; importable from here as before)

REPO = Path(__file__).resolve().parent.parent
# hub (issue 17): the hub's instructor keeps the course outside the installed package
SOLUTIONS = Path(os.environ.get("CNNLAB_SOLUTIONS") or REPO / "solutions")
NOTEBOOKS = Path(os.environ.get("CNNLAB_NOTEBOOKS") or REPO / "notebooks")
DEFAULT_WORKDIR = Path(os.environ.get("CNNLAB_COURSE_DIR", REPO / "course"))
COURSE_ID = "cnnlab"


@dataclass(frozen=True)
class Course:
    """Where the course lives: sources, student versions, instructor work folder, gradebook.

    ``db_url`` is any SQLAlchemy URL (``postgresql://...`` for several graders); by default the
    SQLite file ``<workdir>/gradebook.db``.
    """

    solutions: Path = SOLUTIONS
    notebooks: Path = NOTEBOOKS
    workdir: Path = DEFAULT_WORKDIR
    db_url: str | None = None
    limits: Limits = field(default_factory=Limits)

    def __post_init__(self) -> None:
        for name in ("solutions", "notebooks", "workdir"):
            object.__setattr__(self, name, Path(getattr(self, name)).resolve())

    def with_(self, **changes) -> "Course":
        """Return a copy with some fields replaced."""
        return replace(self, **changes)

    @property
    def gradebook_url(self) -> str:
        """The gradebook's SQLAlchemy URL."""
        return self.db_url or f"sqlite:///{self.workdir / 'gradebook.db'}"

    @property
    def submitted(self) -> Path:
        return self.workdir / "submitted"

    @property
    def autograded(self) -> Path:
        return self.workdir / "autograded"

    @property
    def feedback(self) -> Path:
        return self.workdir / "feedback"

    @property
    def exports(self) -> Path:
        return self.workdir / "exports"

    def assignments(self) -> list[str]:
        """Return the course's assignments (folders of solutions/ holding a notebook), in order."""
        if not self.solutions.is_dir():
            return []
        return sorted(p.name for p in self.solutions.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.ipynb")))

    def source_notebooks(self, assignment: str) -> list[Path]:
        """Return the nbgrader source notebooks of ``assignment``."""
        folder = self.solutions / assignment
        if not folder.is_dir():
            raise ValueError(f"unknown assignment {assignment!r}: no folder {folder}")
        return sorted(p for p in folder.glob("*.ipynb") if not p.name.startswith("."))

    def config(self, **overrides) -> Config:
        """Return the nbgrader Config for this course (see :func:`course_config`)."""
        return course_config(self.workdir, self.db_url, solutions=self.solutions,
                             notebooks=self.notebooks, **overrides)


def base_config() -> Config:
    """Return the settings that hold for every use of nbgrader in this course (no paths)."""
    c = Config()
    c.Execute.timeout = Limits.cell_timeout        # per cell, seconds
    c.Execute.interrupt_on_timeout = True
    c.OverwriteCells.add_missing_cells = True     # a deleted test cell is restored, not "needs manual grade"
    c.IgnorePattern.enabled = True                # warnings on stderr must not zero a passing test cell
    c.IgnorePattern.pattern = r".*(Warning|warn|DeprecationWarning|UserWarning).*"
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    c.LimitOutput.max_lines = 200
    c.LimitOutput.max_traceback = 60
    return c


def preprocessor_config(limits: Limits | None = None) -> Config:
    """Return the preprocessor chains of generate_assignment, autograde and generate_feedback.

    generate_assignment: nbgrader's chain with the named-stub ClearSolutions and the leak check
    last; autograde: the limited, sandboxed, crash-proof kernel and stderr that does not zero a
    passing test; generate_feedback: hidden tests and reference frames scrubbed.
    """
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.converters.generate_assignment import GenerateAssignment
    from nbgrader.converters.generate_feedback import GenerateFeedback
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,
                                        ClearSolutions, IgnorePattern, LimitOutput, SaveAutoGrades)

    from .execute import GuardedExecute
    from .preprocessors import LeakCheck, NamedStubClearSolutions, ScrubFeedback, StderrNotFatal

    lim = limits or Limits()
    c = Config()
    pps = list(GenerateAssignment.class_traits()["preprocessors"].make_dynamic_default())
    c.GenerateAssignment.preprocessors = [NamedStubClearSolutions if p is ClearSolutions else p
                                          for p in pps] + [LeakCheck]
    c.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, StderrNotFatal,
                                           ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
                                           AssignLatePenalties, CheckCellMetadata]
    c.Execute.timeout = lim.cell_timeout
    c.GuardedExecute.timeout = lim.cell_timeout
    c.GuardedExecute.notebook_timeout = lim.notebook_timeout
    c.GuardedExecute.memory_mb = lim.memory_mb
    fb = list(GenerateFeedback.class_traits()["preprocessors"].make_dynamic_default())
    c.GenerateFeedback.preprocessors = [ClearHiddenTests, ScrubFeedback, *fb]
    # --- helper "pages" (keep when merging): quiet nbgrader steps (no "display_data_priority not
    # recognized", no "checksum has changed" for untouched hidden tests; autograder/preprocessors.py)
    from .preprocessors import FeedbackClearHiddenTests, FeedbackGetGrades, ReleasedOverwriteCells
    from nbgrader.converters.autograde import Autograde
    from nbgrader.preprocessors import GetGrades, OverwriteCells
    swap = {ClearHiddenTests: FeedbackClearHiddenTests, GetGrades: FeedbackGetGrades, OverwriteCells: ReleasedOverwriteCells}
    c.GenerateFeedback.preprocessors = [swap.get(p, p) for p in c.GenerateFeedback.preprocessors]
    c.Autograde.sanitize_preprocessors = [swap.get(p, p) for p in
                                          Autograde.class_traits()["sanitize_preprocessors"].make_dynamic_default()]
    # --- end "pages"
    return c


def course_config(workdir: str | Path | None = None, db_url: str | None = None, *,
                  solutions: str | Path | None = None, notebooks: str | Path | None = None,
                  release_directory: str | Path | None = None) -> Config:
    """Return the complete nbgrader Config for the course, rooted at ``workdir``.

    The one configuration of the course: the CLI uses it directly, and JupyterLab's nbgrader
    extensions (formgrader, Validate, Assignment and Course List) load it through
    ``autograder/nbgrader_config.py``. nbgrader's source step is ``solutions``, its release step
    ``notebooks`` (or ``release_directory`` when given); the exchange is ``<workdir>/exchange``
    unless ``$CNNLAB_EXCHANGE`` names another folder.
    """
    workdir = Path(workdir or DEFAULT_WORKDIR).resolve()
    cfg = base_config()
    cfg.merge(preprocessor_config())
    from .sanitise import page_config   # helper "pages" (keep): inert feedback and formgrader pages
    cfg.merge(page_config())
    cfg.CourseDirectory.root = str(workdir)
    cfg.CourseDirectory.source_directory = str(Path(solutions or SOLUTIONS).resolve())
    cfg.GuardedExecute.source_directory = cfg.CourseDirectory.source_directory   # demonstration cells
    cfg.CourseDirectory.release_directory = str(Path(release_directory or notebooks or NOTEBOOKS).resolve())
    cfg.CourseDirectory.course_id = COURSE_ID
    cfg.CourseDirectory.db_url = db_url or f"sqlite:///{workdir / 'gradebook.db'}"
    cfg.Exchange.root = os.environ.get("CNNLAB_EXCHANGE") or str(workdir / "exchange")
    # helper "attack-pages" (keep): the exchange collect under the course's rules for untrusted names
    cfg.ExchangeFactory.collect = "autograder.collect.CourseExchangeCollect"
    return cfg


def lab_config() -> Config:
    """Return the configuration JupyterLab's nbgrader extensions load (the course's defaults,
    with ``$CNNLAB_COURSE_DIR`` as the work folder and ``$CNNLAB_DB`` as the gradebook URL)."""
    workdir = Path(os.environ.get("CNNLAB_COURSE_DIR") or DEFAULT_WORKDIR)
    workdir.mkdir(parents=True, exist_ok=True)
    cfg = course_config(workdir, os.environ.get("CNNLAB_DB") or None)
    exchange = Path(cfg.Exchange.root)
    if not exchange.exists() and exchange.is_relative_to(workdir.resolve()):
        # nbgrader's Assignment List fails on a missing exchange; a course-local one is made here
        # (a shared exchange for several users is the admin's: world-writable, see nbgrader's docs)
        exchange.mkdir(parents=True)
    return cfg


# --- hub (issue 17): the student's side ------------------------------------------------------------

def student_workspace() -> Path:
    """The folder a student works in: ``$CNNLAB_STUDENT_DIR`` (set by ``scripts/lab.sh student`` and
    by the hub's spawner). Never the release folder: release and Generate rewrite that one."""
    ws = os.environ.get("CNNLAB_STUDENT_DIR")
    if not ws:
        raise RuntimeError("CNNLAB_STUDENT_DIR is not set: start the student's JupyterLab with "
                           "`scripts/lab.sh student` (or through the course hub), which sets it")
    path = Path(ws).expanduser().resolve()
    if path == NOTEBOOKS.resolve() or path.is_relative_to(NOTEBOOKS.resolve()):
        raise RuntimeError(f"the student workspace {path} lies in the release folder {NOTEBOOKS}: "
                           "`python -m autograder release` would overwrite the student's work; "
                           "set CNNLAB_STUDENT_DIR to a folder of its own")
    return path


def student_config() -> Config:
    """Return the configuration of a student's JupyterLab (Validate, Assignment List).

    nbgrader's course root and the exchange's ``assignment_dir`` are the student's workspace
    (:func:`student_workspace`), the folder the student's JupyterLab shows: Fetch writes there,
    Submit reads the notebooks the student edited, Fetch Feedback puts the pages next to them.
    The exchange is ``$CNNLAB_EXCHANGE`` (the hub's shared one), else the work folder's.
    """
    ws = student_workspace()
    cfg = base_config()
    cfg.CourseDirectory.root = str(ws)
    cfg.CourseDirectory.course_id = COURSE_ID
    cfg.Exchange.assignment_dir = str(ws)
    shared = os.environ.get("CNNLAB_EXCHANGE")
    cfg.Exchange.root = shared or str(DEFAULT_WORKDIR.resolve() / "exchange")
    if not shared:
        Path(cfg.Exchange.root).mkdir(parents=True, exist_ok=True)   # one user, one machine: as lab_config
    return cfg
