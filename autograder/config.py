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
        """Return the nbgrader Config for this course (see :func:`course_config`), with its limits."""
        overrides.setdefault("limits", self.limits)
        return course_config(self.workdir, self.db_url, solutions=self.solutions,
                             notebooks=self.notebooks, **overrides)

    def protect(self) -> list[str]:
        """Paths a grading kernel may not write to (see :func:`protect_paths`)."""
        return protect_paths(self.workdir, self.solutions, self.notebooks, self.gradebook_url)


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


# The feedback page sanitiser is named, not imported: it lives in autograder.feedback, a layer
# above this module (traitlets and nbconvert accept a class by its dotted name).
SANITIZE_FEEDBACK = "autograder.feedback.SanitizeFeedback"

# GuardedExecute's traits that one grading run prepares (files made from the sources once per
# run, see autograder.engine.build_template; the folder whose lock a notebook's run holds: the work
# folder, or the grading worker's private folder); everything else in every chain comes from
# pipeline_config, the same for every caller. Where they are not set (formgrader's Autograde),
# GuardedExecute reads the demonstration cells from its source_directory.
PER_RUN_TRAITS = {"GuardedExecute": ("locked_file", "skip_file", "files_dir", "work_folder")}


def _nbgrader_default(converter, trait: str) -> list:
    """nbgrader's own chain (its default for ``converter.trait``)."""
    return list(converter.class_traits()[trait].make_dynamic_default())


def pipeline_config(limits: Limits | None = None, *, protect: list[str] | tuple[str, ...] = (),
                    sandboxed: bool = True) -> Config:
    """The one place that builds the course's nbgrader preprocessor chains.

    Every way of running nbgrader in this course gets its chains here: ``python -m autograder
    release`` / ``autograde`` / ``feedback`` (through :func:`course_config`), formgrader's
    Generate, Autograde and Generate Feedback buttons (``autograder/nbgrader_config.py`` ->
    :func:`lab_config` -> :func:`course_config`), and any service that loads
    :func:`course_config` or :func:`lab_config` (the hub). Nothing else sets a chain or a trait
    of a preprocessor in one (a test compares what formgrader runs with what the CLI runs).

    - generate_assignment: nbgrader's chain with the named-stub ClearSolutions and the leak
      check last;
    - autograde: nbgrader's sanitising chain, then the limited, sandboxed, crash-proof kernel
      (GuardedExecute) and stderr that does not zero a passing test;
    - generate_feedback: hidden tests cleared, hidden lines and reference frames scrubbed
      (hidden lines read from the assignment's sources), and the final page made inert by the
      course's exporter (:func:`autograder.sanitise.page_config`, also formgrader's grading view).

    ``limits``: time, memory and output limits (default :class:`Limits`); ``protect``: paths an
    unsandboxed kernel may not write to; ``sandboxed``: False only for ``--unsafe-no-sandbox``.
    """
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.converters import Autograde, GenerateAssignment, GenerateFeedback
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearSolutions, GetGrades,
                                        IgnorePattern, LimitOutput, OverwriteCells, SaveAutoGrades)

    from .execute import GuardedExecute
    from .preprocessors import (FeedbackClearHiddenTests, FeedbackGetGrades, LeakCheck, NamedStubClearSolutions,
                                ReleasedOverwriteCells, ScrubFeedback, StderrNotFatal)

    lim = limits or Limits()
    c = base_config()
    # --- generate_assignment (release, formgrader's Generate): nbgrader's chain, named stubs, leak check last
    c.GenerateAssignment.preprocessors = [NamedStubClearSolutions if p is ClearSolutions else p
                                          for p in _nbgrader_default(GenerateAssignment, "preprocessors")] + [LeakCheck]
    # --- autograde (autograde's workers, formgrader's Autograde): nbgrader's sanitising chain (its
    # OverwriteCells quiet about hidden tests the student never saw: helper "pages"), then ours
    c.Autograde.sanitize_preprocessors = [ReleasedOverwriteCells if p is OverwriteCells else p
                                          for p in _nbgrader_default(Autograde, "sanitize_preprocessors")]
    c.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, StderrNotFatal, ClearMetadataPreprocessor,
                                           LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
    c.Execute.timeout = lim.cell_timeout
    c.GuardedExecute.timeout = lim.cell_timeout
    c.GuardedExecute.notebook_timeout = lim.notebook_timeout
    c.GuardedExecute.memory_mb = lim.memory_mb
    c.GuardedExecute.output_bytes = lim.output_bytes
    c.GuardedExecute.figures = lim.figures
    c.GuardedExecute.use_sandbox = sandboxed
    c.GuardedExecute.protect = sorted(protect)
    # --- generate_feedback (feedback, formgrader's Generate Feedback, the hub's feedback); nbgrader's
    # steps in their quiet versions (helper "pages": no "display_data_priority not recognized")
    c.GenerateFeedback.preprocessors = [FeedbackClearHiddenTests, ScrubFeedback, SANITIZE_FEEDBACK,
                                        *[FeedbackGetGrades if p is GetGrades else p
                                          for p in _nbgrader_default(GenerateFeedback, "preprocessors")]]
    # --- the final HTML: the feedback pages' exporter and formgrader's grading view, inert
    # (helper "pages": autograder.sanitise; nh3 on the final page, CSP, formulas as MathML)
    from .sanitise import page_config

    c.merge(page_config())
    return c


def preprocessor_config(limits: Limits | None = None) -> Config:
    """The chains of :func:`pipeline_config` (kept under its old name)."""
    return pipeline_config(limits)


def run_config(*, locked_file: str | Path | None = None, skip_file: str | Path | None = None,
               files_dir: str | Path | None = None) -> Config:
    """The per-run inputs of GuardedExecute (:data:`PER_RUN_TRAITS`): the sha256 list of the
    locked cells, of the demonstration cells not run, and the released files copied into kernels."""
    c = Config()
    if locked_file:
        c.GuardedExecute.locked_file = str(locked_file)
    if skip_file:
        c.GuardedExecute.skip_file = str(skip_file)
    if files_dir:
        c.GuardedExecute.files_dir = str(files_dir)
    return c


def protect_paths(workdir: str | Path, solutions: str | Path, notebooks: str | Path,
                  db_url: str | None = None) -> list[str]:
    """Paths a grading kernel may not write to (beyond its own working folder): the work folder,
    the sources, the student versions, the course packages, the environment, a SQLite gradebook's
    folder."""
    import sys

    import cnnlab

    paths = {str(Path(workdir).resolve()), str(Path(solutions).resolve()), str(Path(notebooks).resolve()),
             str(Path(cnnlab.__file__).resolve().parent), str(Path(__file__).resolve().parent),
             str(Path(sys.prefix).resolve())}
    if db_url and db_url.startswith("sqlite:///"):
        paths.add(str(Path(db_url[len("sqlite:///"):]).resolve().parent))
    return sorted(paths)


def course_config(workdir: str | Path | None = None, db_url: str | None = None, *,
                  solutions: str | Path | None = None, notebooks: str | Path | None = None,
                  release_directory: str | Path | None = None, limits: Limits | None = None,
                  protect: list[str] | None = None, sandboxed: bool = True) -> Config:
    """Return the complete nbgrader Config for the course, rooted at ``workdir``.

    The one configuration of the course: the CLI uses it directly, and JupyterLab's nbgrader
    extensions (formgrader, Validate, Assignment and Course List) load it through
    ``autograder/nbgrader_config.py``. Its chains come from :func:`pipeline_config`. nbgrader's
    source step is ``solutions``, its release step ``notebooks`` (or ``release_directory`` when
    given); the exchange is ``<workdir>/exchange`` unless ``$CNNLAB_EXCHANGE`` names another folder.
    ``protect`` defaults to :func:`protect_paths` of these folders.
    """
    workdir = Path(workdir or DEFAULT_WORKDIR).resolve()
    db_url = db_url or f"sqlite:///{workdir / 'gradebook.db'}"
    solutions = Path(solutions or SOLUTIONS).resolve()
    notebooks = Path(notebooks or NOTEBOOKS).resolve()
    if protect is None:
        protect = protect_paths(workdir, solutions, notebooks, db_url)
    cfg = pipeline_config(limits, protect=protect, sandboxed=sandboxed)
    cfg.CourseDirectory.root = str(workdir)
    cfg.CourseDirectory.source_directory = str(solutions)
    cfg.GuardedExecute.source_directory = cfg.CourseDirectory.source_directory   # demonstration cells
    cfg.GuardedExecute.work_folder = str(workdir)   # nbgrader's own autograde holds the work folder too
    cfg.CourseDirectory.release_directory = str(Path(release_directory or notebooks).resolve())
    cfg.CourseDirectory.course_id = COURSE_ID
    cfg.CourseDirectory.db_url = db_url
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
