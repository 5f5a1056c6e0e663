"""Parallel, limited, sandboxed, supervised and idempotent autograding on top of nbgrader.

How one submission is graded (:func:`grade_submission`, run by a supervised pool of forked worker
processes that already imported nbgrader):

1. a private course folder is made under ``<workdir>/.work/`` with a fresh copy of a *template*
   gradebook (the assignments' source cells, made once per run by nbgrader's
   generate_assignment);
2. each submitted notebook is repaired (:mod:`autograder.repair`) against the released version;
   a corrupt one is recorded and scores zero; its student-written cells are scanned
   (:mod:`autograder.scan`) for reflection and patching, which is flagged, never zeroed;
3. nbgrader's autograde runs in-process with :class:`~autograder.execute.GuardedExecute`: the
   kernel runs in a bubblewrap sandbox (:mod:`autograder.sandbox`) that sees none of the host's
   course files, with a time limit per cell and per notebook, a memory limit and a byte limit on
   outputs; a kernel that dies is recorded on its cell;
4. the trusted verifier (:mod:`autograder.verifier`) re-runs the hidden cases of every exercise
   in a fresh sandboxed worker and withdraws the points of hidden checks it does not confirm;
5. the scores are returned to the parent, which alone writes the real gradebook (SQLite or
   PostgreSQL), copies back the graded notebooks (only them: nothing else the kernel could have
   left), and records the submission in a ledger keyed by a hash of its files; a re-run skips
   what the ledger holds (a run killed midway resumes), ``force=True`` regrades.

Supervision: each worker grades one submission at a time; when a worker dies, only the submission
it was grading is retried (in a fresh worker, after the others); one that kills its worker twice
is recorded as such (status ``crashed``, not written to the ledger, so a re-run tries again) while
the rest of the class completes. Workers die with the tool (PR_SET_PDEATHSIG), and the sandboxes
with their worker (``--die-with-parent``).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbgrader.utils import is_grade, is_locked

from . import config, demos, sandbox
from .collect import find_submissions, parse_timestamp
from .config import Course
from .release import generate
from .util import env_path, quiet

if TYPE_CHECKING:
    from cnnlab.grading.diagnosis import Report

TOOL_VERSION = "2"
STATUS_OK = "graded"


@dataclass
class Result:
    """The outcome of grading one student's submission of one assignment."""

    student: str
    assignment: str
    status: str = STATUS_OK          # graded | corrupt | missing | error | crashed
    score: float = 0.0
    max_score: float = 0.0
    cells: dict = field(default_factory=dict)      # "<notebook>/<grade_id>" -> [score, max, message]
    problems: list = field(default_factory=list)
    seconds: float = 0.0
    seconds_late: float = 0.0
    timestamp: str | None = None
    input_hash: str = ""
    flags: list = field(default_factory=list)      # for the instructor: possible tampering, scan hits

    def summary(self) -> str:
        """One line: student, assignment, score, status, time and what went wrong."""
        late = f", late {self.seconds_late / 3600:.1f} h" if self.seconds_late > 0 else ""
        probs = f" [{'; '.join(self.problems)[:160]}]" if self.problems else ""
        if self.flags:
            probs += f" FLAGGED: {'; '.join(self.flags)[:200]}"
        return (f"{self.student:<16} {self.assignment:<20} {self.score:6.2f}/{self.max_score:<6.2f} "
                f"{self.status:<8} {self.seconds:5.1f}s{late}{probs}")


# ------------------------------------------------------------------------------ template

@dataclass
class Template:
    """Per-run material shared by the workers (a folder under ``<workdir>/.work``)."""

    root: Path
    db: Path
    release: Path
    locked_file: Path
    digest: str
    files: Path          # files/<assignment>/: the released files (no notebooks) copied into kernels
    skipped_file: Path | None = None   # sha256 of the demonstration cells not run (autograder.demos)


def _sources_digest(course: Course, names: list[str]) -> str:
    h = hashlib.sha256(TOOL_VERSION.encode())
    for a in names:
        for p in sorted((course.solutions / a).rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(course.solutions)).encode())
                h.update(p.read_bytes())
    h.update(repr(course.limits).encode())
    return h.hexdigest()


def build_template(course: Course, names: list[str]) -> Template:
    """Generate the assignments into a private folder with its own template gradebook."""
    from nbgrader.api import Gradebook

    from .sandbox.inside.guard import locked_hashes

    work = course.workdir / ".work"
    work.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="template-", dir=work))
    db = root / "template.db"
    tmp_course = course.with_(workdir=root / "course", notebooks=root / "release", db_url=None)
    generate(tmp_course, names, release_dir=root / "release", db_url=f"sqlite:///{db}")
    # due dates of the real gradebook, so that lateness is computed the same way
    with contextlib.suppress(Exception), quiet():
        with Gradebook(course.gradebook_url, config.COURSE_ID) as main, \
                Gradebook(f"sqlite:///{db}", config.COURSE_ID) as tpl:
            for a in names:
                with contextlib.suppress(Exception):
                    due = main.find_assignment(a).duedate
                    if due is not None:
                        tpl.update_or_create_assignment(a, duedate=due)
    sources, source_nbs = [], []
    for a in names:
        for src in course.source_notebooks(a):
            nb = nbformat.read(src, as_version=4)
            source_nbs.append(nb)
            sources += [c.source for c in nb.cells if c.cell_type == "code" and is_locked(c)]
    locked = root / "locked.json"
    locked.write_text(json.dumps(locked_hashes(sources)))
    skipped = root / "skipped.json"
    skipped.write_text(json.dumps(demos.skipped_hashes(source_nbs)))
    files = root / "files"
    for a in names:
        (files / a).mkdir(parents=True)
        for p in sorted((root / "release" / a).rglob("*")):
            if p.is_file() and not p.is_symlink() and p.suffix != ".ipynb" and ".ipynb_checkpoints" not in p.parts:
                dest = files / a / p.relative_to(root / "release" / a)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(p, dest)
    return Template(root, db, root / "release", locked, _sources_digest(course, names), files, skipped)


def ensure_in_gradebook(course: Course, names: list[str]) -> None:
    """Register assignments missing from the real gradebook (nbgrader's generate_assignment into
    a throwaway release folder; existing assignments are left alone)."""
    from nbgrader.api import Gradebook, MissingEntry

    missing = []
    with quiet(), Gradebook(course.gradebook_url, config.COURSE_ID) as gb:
        for a in names:
            try:
                asg = gb.find_assignment(a)
                if not asg.notebooks:
                    missing.append(a)
            except MissingEntry:
                missing.append(a)
    if missing:
        tmp = Path(tempfile.mkdtemp(prefix="register-", dir=course.workdir / ".work"))
        try:
            generate(course, missing, release_dir=tmp, db_url=course.gradebook_url)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------ one submission

def submission_hash(folder: Path, template_digest: str) -> str:
    """Hash of a submission folder's files (names and bytes) and of the course sources."""
    h = hashlib.sha256(template_digest.encode())
    if folder.is_dir():
        for p in sorted(folder.rglob("*")):
            if p.is_file() and ".ipynb_checkpoints" not in p.parts:
                h.update(str(p.relative_to(folder)).encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def _grade_points(release_nb) -> dict[str, float]:
    return {c.metadata["nbgrader"]["grade_id"]: float(c.metadata["nbgrader"].get("points", 0))
            for c in release_nb.cells if is_grade(c)}


def _messages(nb) -> dict[str, str]:
    from cnnlab.grading.diagnosis import report_in   # the reports graded cells carry (data, not text)

    msgs = {}
    for c in nb.cells:
        if c.cell_type != "code" or not is_grade(c):
            continue
        for out in c.get("outputs", []):
            if out.get("output_type") == "error":
                msgs[c.metadata["nbgrader"]["grade_id"]] = diagnosis_first(
                    out.get("ename", ""), out.get("evalue", ""), report_in(c.get("outputs", [])))
                break
    return msgs


MESSAGE_LIMIT = 2000  # characters of a test's message kept for Gradescope and the ledger


def diagnosis_first(ename: str, evalue: str, report: "Report | None" = None) -> str:
    """A failed test's message for an instructor's export: a course check's report (the data
    its cell carries, ``cnnlab.grading.diagnosis``) with the diagnosis first, then the detail;
    any other error as ``ename: evalue``. Cut to MESSAGE_LIMIT characters, never the diagnosis."""
    if ename == "CheckFailed":
        if report is not None:
            return report.diagnosis_first(MESSAGE_LIMIT)
        return str(evalue).strip()[:MESSAGE_LIMIT]
    return f"{ename}: {evalue}".strip()[:MESSAGE_LIMIT]


def grade_submission(course: Course, template: Template, student: str, assignment: str,
                     sub_dir: Path, protect: list[str] | None = None, sandboxed: bool = True) -> Result:
    """Grade one submission in a private course folder (see the module docstring); never raises."""
    t0 = time.monotonic()
    res = Result(student, assignment)
    priv = None
    try:
        from .repair import read_submission, repair
        from .scan import scan_notebook

        releases = sorted((template.release / assignment).glob("*.ipynb"))
        work = course.workdir / ".work"
        work.mkdir(parents=True, exist_ok=True)
        priv = Path(tempfile.mkdtemp(prefix=f"{student}-{assignment}-", dir=work))
        shutil.copyfile(template.db, priv / "gradebook.db")
        dest = priv / "submitted" / student / assignment
        dest.mkdir(parents=True)
        points: dict[str, dict[str, float]] = {}
        present = 0
        for rel_path in releases:
            rel_nb = nbformat.read(rel_path, as_version=4)
            points[rel_path.stem] = _grade_points(rel_nb)
            src = sub_dir / rel_path.name
            if not src.exists():
                res.problems.append(f"{rel_path.name} missing")
                continue
            try:
                nb, report = repair(read_submission(src), rel_nb)
            except ValueError as exc:
                res.status = "corrupt"
                res.problems.append(str(exc)[:200])
                continue
            res.problems += report.problems
            res.flags += scan_notebook(nb, rel_path.stem, rel_nb)
            nbformat.write(nb, dest / rel_path.name)
            present += 1
        others = [p.name for p in sub_dir.glob("*.ipynb") if p.name not in {r.name for r in releases}]
        if others:
            res.problems.append(f"ignored notebooks: {others}")
        if (sub_dir / "timestamp.txt").exists():
            shutil.copyfile(sub_dir / "timestamp.txt", dest / "timestamp.txt")
            res.timestamp = (sub_dir / "timestamp.txt").read_text().strip()
        for nb_name, pts in points.items():
            for gid, p in pts.items():
                res.cells[f"{nb_name}/{gid}"] = [0.0, p, "not graded"]
        if present == 0:
            if res.status == STATUS_OK:
                res.status = "missing"
        else:
            _run_nbgrader(course, template, priv, student, assignment, res, protect or [], sandboxed)
    except Exception as exc:  # noqa: BLE001 - one submission's failure must not stop the class
        res.status = "error"
        res.problems.append(f"the grader failed on this submission: {type(exc).__name__}: {exc}"[:300])
        res.flags.append("grader error: " + traceback.format_exc(limit=3)[-300:])
    finally:
        if priv is not None:
            shutil.rmtree(priv, ignore_errors=True)
    res.max_score = float(sum(v[1] for v in res.cells.values()))
    res.score = float(sum(v[0] for v in res.cells.values()))
    res.seconds = time.monotonic() - t0
    return res


def grading_config(course: Course, template: Template, root: Path, protect: list[str], assignment: str = "",
                   sandboxed: bool = True):
    """nbgrader config for grading in the private folder ``root``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                        LimitOutput, SaveAutoGrades)

    from .execute import GuardedExecute
    from .preprocessors import StderrNotFatal

    cfg = config.course_config(root, f"sqlite:///{root / 'gradebook.db'}", solutions=course.solutions,
                               release_directory=template.release)
    cfg.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, StderrNotFatal,
                                             ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
                                             AssignLatePenalties, CheckCellMetadata]
    lim = course.limits
    cfg.Execute.timeout = lim.cell_timeout
    cfg.GuardedExecute.timeout = lim.cell_timeout
    cfg.GuardedExecute.notebook_timeout = lim.notebook_timeout
    cfg.GuardedExecute.memory_mb = lim.memory_mb
    cfg.GuardedExecute.locked_file = str(template.locked_file)
    cfg.GuardedExecute.protect = protect
    cfg.GuardedExecute.output_bytes = lim.output_bytes
    cfg.GuardedExecute.figures = lim.figures
    if template.skipped_file is not None:
        cfg.GuardedExecute.skip_file = str(template.skipped_file)
    cfg.GuardedExecute.use_sandbox = sandboxed
    files = template.files / assignment
    if assignment and files.is_dir() and any(files.iterdir()):
        cfg.GuardedExecute.files_dir = str(files)
    return cfg


def default_protect(course: Course) -> list[str]:
    """Paths a grading kernel may not write to (beyond its own working folder)."""
    import cnnlab

    paths = {str(course.workdir), str(course.solutions), str(course.notebooks),
             str(Path(cnnlab.__file__).resolve().parent), str(Path(__file__).resolve().parent),
             str(Path(sys.prefix).resolve())}
    if course.gradebook_url.startswith("sqlite:///"):
        paths.add(str(Path(course.gradebook_url[len("sqlite:///"):]).resolve().parent))
    return sorted(paths)


def _run_nbgrader(course, template, priv, student, assignment, res, protect, sandboxed) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

    cfg = grading_config(course, template, priv, protect, assignment, sandboxed)
    with quiet() as log:
        api = NbGraderAPI(config=cfg)
        out = api.autograde(assignment, student, force=True, create=True)
    if not out.get("success"):
        res.status = "error"
        text = (out.get("error") or out.get("log") or log.getvalue() or "")
        res.problems.append("nbgrader failed: " + text.strip().splitlines()[-1][:300] if text.strip() else "nbgrader failed")
        return
    graded = priv / "autograded" / student / assignment
    msgs: dict[str, dict[str, str]] = {}
    for nbp in graded.glob("*.ipynb"):
        msgs[nbp.stem] = _messages(nbformat.read(nbp, as_version=4))
    with quiet(), Gradebook(f"sqlite:///{priv / 'gradebook.db'}", config.COURSE_ID) as gb:
        sub = gb.find_submission(assignment, student)
        res.seconds_late = float(sub.total_seconds_late or 0)
        for nb in sub.notebooks:
            for g in nb.grades:
                key = f"{nb.name}/{g.name}"
                if key not in res.cells:
                    continue
                mx = res.cells[key][1]
                score = min(max(float(g.auto_score or 0.0), 0.0), mx)
                msg = msgs.get(nb.name, {}).get(g.name, "" if score >= mx else "no response")
                if g.needs_manual_grade:
                    msg = "needs manual grading"
                res.cells[key] = [score, mx, msg]
    _verify(course, template, assignment, priv / "submitted" / student / assignment, res, sandboxed)
    # copy back only the graded notebooks (regular files named as in the release)
    dest = course.autograded / student / assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for rel_path in sorted((template.release / assignment).glob("*.ipynb")):
        nbp = graded / rel_path.name
        if nbp.is_file() and not nbp.is_symlink():
            shutil.copyfile(nbp, dest / rel_path.name)


def _verify(course, template, assignment, repaired, res, sandboxed) -> None:
    """Withdraw the points of checks that the trusted verifier does not confirm (``repaired``: the
    folder of the repaired notebooks, as given to nbgrader)."""
    from . import verifier

    lim = course.limits
    for rel_path in sorted((template.release / assignment).glob("*.ipynb")):
        nbp = repaired / rel_path.name
        if not nbp.is_file():
            continue
        scores = {k.split("/", 1)[1]: v[0] for k, v in res.cells.items() if k.split("/", 1)[0] == rel_path.stem}
        verdict = verifier.verify(assignment, nbformat.read(nbp, as_version=4), nbformat.read(rel_path, as_version=4),
                                  nbformat.read(course.solutions / assignment / rel_path.name, as_version=4), scores,
                                  seconds=lim.cell_timeout, total_seconds=lim.notebook_timeout,
                                  memory_mb=lim.memory_mb, sb=sandbox.probe() if sandboxed else None,
                                  student=res.student)   # [verdicts] quiz variants are per student
        for gid, msg in verdict.withdrawn.items():
            key = f"{rel_path.stem}/{gid}"
            if key in res.cells:
                res.cells[key] = [0.0, res.cells[key][1], msg]
        res.flags += verdict.flags


# ------------------------------------------------------------------------------ the gradebook

def record(course: Course, res: Result) -> None:
    """Write one result into the real gradebook (idempotent: grades are set, not added)."""
    from nbgrader.api import Gradebook

    with quiet(), Gradebook(course.gradebook_url, config.COURSE_ID) as gb:
        gb.update_or_create_student(res.student)
        ts = parse_timestamp(res.timestamp) if res.timestamp else None
        sub = gb.update_or_create_submission(res.assignment, res.student, **({"timestamp": ts} if ts else {}))
        for nb in sub.notebooks:
            for g in nb.grades:
                cell = res.cells.get(f"{nb.name}/{g.name}")
                if cell is None:
                    continue
                g.auto_score = cell[0]
                g.needs_manual_grade = cell[2] == "needs manual grading"
            for c in nb.comments:
                cell = res.cells.get(f"{nb.name}/{c.name}")
                c.auto_comment = (cell[2] or None) if cell else None
        gb.db.commit()


def ledger_path(course: Course, student: str, assignment: str) -> Path:
    return course.workdir / ".ledger" / f"{student}__{assignment}.json"


def read_ledger(course: Course) -> dict[tuple[str, str], Result]:
    """All recorded results, keyed by (student, assignment)."""
    out = {}
    folder = course.workdir / ".ledger"
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        with contextlib.suppress(ValueError, TypeError, OSError):
            r = Result(**json.loads(p.read_text()))
            out[(r.student, r.assignment)] = r
    return out


def _write_ledger(course: Course, res: Result) -> None:
    p = ledger_path(course, res.student, res.assignment)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(res), indent=1))
    os.replace(tmp, p)


# ------------------------------------------------------------------------------ the class

# ------------------------------------------------------------------------------ the class

FAULT_ENV = "CNNLAB_TEST_KILL_WORKER_ON"   # fault injection for the supervision test: a student id


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent (the tool) dies."""
    import ctypes
    import signal

    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _worker_main(conn, parent_pid: int) -> None:
    _die_with_parent()
    if os.getppid() != parent_pid:
        os._exit(0)
    import nbgrader.apps  # noqa: F401  (imported once per worker)

    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        course, template, student, assignment, sub_dir, protect, sandboxed = task
        if os.environ.get(FAULT_ENV) == student:
            os._exit(9)
        conn.send(grade_submission(course, template, student, assignment, sub_dir, protect, sandboxed))


class _Worker:
    def __init__(self, ctx) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, os.getpid()), daemon=True)
        self.proc.start()
        child.close()
        self.task = None

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send(None)
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self.conn.close()


def _ungraded_cells(template: Template, assignment: str) -> dict:
    cells = {}
    for rel_path in sorted((template.release / assignment).glob("*.ipynb")):
        for gid, p in _grade_points(nbformat.read(rel_path, as_version=4)).items():
            cells[f"{rel_path.stem}/{gid}"] = [0.0, p, "not graded: the submission crashed the grader"]
    return cells


def _run_pool(course, template, todo, protect, jobs, sandboxed):
    """Yield results as workers finish; a worker that dies costs only the submission it held.

    That submission is retried once in a fresh worker after the others; if it kills that one too
    it is yielded with status ``crashed``.
    """
    from collections import deque
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    queue = deque(todo)
    attempts: dict[tuple[str, str], int] = {}
    workers = [_Worker(ctx) for _ in range(min(jobs, len(todo)))]
    try:
        while queue or any(w.task for w in workers):
            for w in workers:
                if w.task is None and queue:
                    w.task = queue.popleft()
                    s, a, f, _ = w.task
                    w.conn.send((course, template, s, a, f, protect, sandboxed))
            busy = [w for w in workers if w.task]
            wait([x for w in busy for x in (w.conn, w.proc.sentinel)], timeout=5)
            for i, w in enumerate(workers):
                if not w.task:
                    continue
                s, a, f, d = w.task
                res = None
                if w.conn.poll():
                    with contextlib.suppress(EOFError, OSError):
                        res = w.conn.recv()
                if res is None and w.proc.is_alive():
                    continue
                w.task = None
                if res is not None:
                    res.input_hash = d
                    yield res
                    continue
                # the worker died while grading (s, a): that submission alone pays
                w.conn.close()
                workers[i] = _Worker(ctx)
                attempts[(s, a)] = attempts.get((s, a), 0) + 1
                if attempts[(s, a)] < 2:
                    queue.append((s, a, f, d))
                else:
                    res = Result(s, a, status="crashed", input_hash=d, cells=_ungraded_cells(template, a),
                                 problems=["grading this submission killed the grader's worker twice; "
                                           "recorded as crashed and left ungraded (a re-run tries again)"],
                                 flags=["kills the grader's worker"])
                    res.max_score = float(sum(v[1] for v in res.cells.values()))
                    yield res
    finally:
        for w in workers:
            w.stop()


def default_jobs() -> int:
    """Workers by default: one more than the cores. A worker's own process and its kernel take
    turns, and each waits on the other, on the sandbox and on the verifier; a third worker on two
    cores fills those gaps (a class of 04_volumes: 27.0 s with 2 workers, 25.3 s with 3)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores) + 1


def check_sandbox(unsafe_no_sandbox: bool = False, echo=print) -> bool:
    """True when kernels will be sandboxed; raise SandboxUnavailable unless ``unsafe_no_sandbox``."""
    if unsafe_no_sandbox:
        echo("WARNING: grading without a sandbox (--unsafe-no-sandbox): student code runs with your "
             "permissions and can read or change anything you can")
        return False
    sandbox.probe()
    return True


def autograde(course: Course, students=None, assignments=None, jobs: int | None = None,
              force: bool = False, progress: bool = True, echo=print,
              unsafe_no_sandbox: bool = False) -> list[Result]:
    """Grade the collected submissions in parallel; return one Result per submission.

    Submissions whose files and course sources are unchanged since the ledger recorded them are
    skipped unless ``force``.  Never raises for a submission's fault; raises
    :class:`~autograder.sandbox.SandboxUnavailable` when no sandbox can start (unless
    ``unsafe_no_sandbox``).
    """
    env_path()
    sandboxed = check_sandbox(unsafe_no_sandbox, echo)
    sandbox.remove_stale()
    course.workdir.mkdir(parents=True, exist_ok=True)
    work = course.workdir / ".work"
    if work.exists():  # leftovers of a killed run
        shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    names = [a for a in course.assignments() if not assignments or a in assignments]
    if assignments:
        unknown = sorted(set(assignments) - set(course.assignments()))
        if unknown:
            raise ValueError(f"unknown assignment(s) {unknown}; the course has {course.assignments()}")
    subs = find_submissions(course, students, names)
    if not subs:
        echo("nothing to grade: no submissions under " + str(course.submitted))
        return []
    names = sorted({a for _, a, _ in subs})
    ensure_in_gradebook(course, names)
    template = build_template(course, names)
    protect = default_protect(course)
    ledger = read_ledger(course)
    results: list[Result] = []
    todo = []
    for student, assignment, folder in subs:
        digest = submission_hash(folder, template.digest)
        prev = ledger.get((student, assignment))
        if prev is not None and prev.input_hash == digest and not force:
            results.append(prev)
            continue
        todo.append((student, assignment, folder, digest))
    if len(results):
        echo(f"{len(results)} submission(s) unchanged since last graded: skipped (use --force to regrade)")
    jobs = max(1, min(jobs or default_jobs(), len(todo) or 1))
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="autograde", unit="nb", file=sys.stdout, leave=False,
                   dynamic_ncols=True, mininterval=0.5, disable=not sys.stdout.isatty())
    try:
        for res in _run_pool(course, template, todo, protect, jobs, sandboxed):
            record_ok = res.status not in ("crashed", "error")  # never a final grade: a re-run retries
            try:
                record(course, res)
            except Exception as exc:  # noqa: BLE001 - keep going, report it
                record_ok = False
                res.problems.append(f"could not write the gradebook: {exc}"[:300])
                res.status = "error"
            if record_ok:
                _write_ledger(course, res)
            results.append(res)
            line = res.summary()
            if bar is not None:
                bar.write(line)
                bar.update(1)
            else:
                echo(line)
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(template.root, ignore_errors=True)
    results.sort(key=lambda r: (r.student, r.assignment))
    return results


def grade_one(course: Course, assignment: str, notebook_dir: Path, student: str = "student",
              unsafe_no_sandbox: bool = False) -> Result:
    """Grade one submission folder serially, without touching the course's gradebook (for the
    notebook contract tests, the Gradescope package and validation)."""
    env_path()
    sandboxed = check_sandbox(unsafe_no_sandbox, echo=lambda *_: None)
    course.workdir.mkdir(parents=True, exist_ok=True)
    template = build_template(course, [assignment])
    try:
        return grade_submission(course, template, student, assignment, Path(notebook_dir),
                                default_protect(course), sandboxed)
    finally:
        shutil.rmtree(template.root, ignore_errors=True)
