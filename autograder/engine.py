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
5. the graded notebooks (only them: nothing else the kernel could have left) are published into
   ``autograded/<student>/<assignment>/`` all at once (written beside it, read back and checked,
   then renamed into place: never a half-written notebook), and the result goes back to the
   parent, which alone writes the store (:mod:`autograder.store`: the scores into the real
   gradebook, SQLite or PostgreSQL, and beside them the status, messages, flags and the hashes
   of the submission's files and of the published notebooks, in one transaction); a re-run
   skips a submission whose files, sources and published notebooks are unchanged (a run killed
   midway resumes), ``force=True`` regrades.

A failure is never a grade. An infrastructure failure (the grader's worker, a kernel or the
verifier killed from outside, a kernel that does not start, nbgrader failing, a full disk, a
database error) is tried once more, in a fresh worker after the others, then recorded as status
``error`` (``crashed``: the worker died both times) with its cause, and no score: the gradebook
gets no auto score for it (its cells "need manual grading"), exports leave it out and say so,
and ``autograde`` exits non-zero naming it. A student's own crash stays the student's: a kernel
that dies (``os._exit``, a segfault, memory) is graded again in a fresh kernel, and only a death
at the same cell both times is the submission's (its later cells score nothing, as before); a
kernel that finishes the second time was killed from outside, and the second grading counts; a
kernel that dies at different cells is an error (it cannot be told apart). A kernel *killed from
outside its sandbox* is never the submission's: nothing inside can send SIGKILL, set a CPU limit
or end with a status that reads as one (:mod:`autograder.sandbox.inside.nokill`), so a kernel that
ends by SIGKILL without its memory cgroup's OOM killer was killed by something outside; killed
twice, it is an error. A full disk stops the run (every later submission would fail the same way).

One run per work folder: ``autograde`` holds the work folder's lock
(:func:`autograder.util.work_lock`) and keeps its temporary files in a run folder of its own
(:func:`autograder.util.run_folder`); nothing of another run is deleted.

Supervision: each worker grades one submission at a time; when a worker dies, only the submission
it was grading is retried. Workers die with the tool (PR_SET_PDEATHSIG), and the sandboxes with
their worker (``--die-with-parent``).
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat
from nbgrader.utils import is_grade, is_locked

from . import config, demos, sandbox, store
from .collect import find_submissions
from .config import Course
from .release import generate
from .store import STATUS_OK, Result  # noqa: F401  (Result and STATUS_OK: importable from here, as before)
from .util import (disk_full_message, disk_full_path, env_path, is_disk_full, owner_token, quiet,
                   run_folder, work_lock)

if TYPE_CHECKING:
    from cnnlab.grading.diagnosis import Report

TOOL_VERSION = "4"   # 4: kills attributed, the verifier's skip, the auto scores kept in the store: regrade
KERNEL_KILLED = "KernelKilled"   # GuardedExecute's error where its kernel was killed from outside (execute.KERNEL_KILLED)
KERNEL_CRASHED = "KernelCrashed"  # ... where the submission's code ended it (execute.KERNEL_CRASHED)
KERNEL_DIED = ("KernelDied", "DeadKernelError", KERNEL_KILLED, KERNEL_CRASHED)   # ... where its kernel died, however


class GradingStopped(RuntimeError):
    """The run cannot start or go on (a full disk, the gradebook); the message says why and what to do."""


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
    run: Path | None = None            # where each submission's private folder is made (default: root)

    @property
    def private(self) -> Path:
        return self.run or self.root


def _sources_digest(course: Course, names: list[str]) -> str:
    h = hashlib.sha256(TOOL_VERSION.encode())
    for a in names:
        for p in sorted((course.solutions / a).rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(course.solutions)).encode())
                h.update(p.read_bytes())
    h.update(repr(course.limits).encode())
    return h.hexdigest()


def build_template(course: Course, names: list[str], run: Path | None = None) -> Template:
    """Generate the assignments into a private folder (in ``run``, this run's own folder; by
    default ``<workdir>/.work``) with its own template gradebook."""
    from nbgrader.api import Gradebook

    from .sandbox.inside.guard import locked_hashes

    work = Path(run) if run is not None else course.workdir / ".work"
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
    return Template(root, db, root / "release", locked, _sources_digest(course, names), files, skipped,
                    run=Path(run) if run is not None else None)


def ensure_in_gradebook(course: Course, names: list[str], run: Path | None = None) -> None:
    """Make the gradebook's schema (once: serialised between graders on PostgreSQL) and register
    assignments missing from it (nbgrader's generate_assignment into a throwaway release folder
    in ``run``, or ``<workdir>/.work``; existing assignments are left alone)."""
    from nbgrader.api import MissingEntry

    store.ensure_schema(course.gradebook_url)
    with store.db_lock(course.gradebook_url):
        missing = []
        with store.gradebook(course.gradebook_url) as gb:
            for a in names:
                try:
                    asg = gb.find_assignment(a)
                    if not asg.notebooks:
                        missing.append(a)
                except MissingEntry:
                    missing.append(a)
        if missing:
            work = Path(run) if run is not None else course.workdir / ".work"
            work.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix="register-", dir=work))
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
    """Grade one submission in a private course folder and publish its graded notebooks (see the
    module docstring); never raises. A failure of the tool (not of the submission) gives status
    ``error`` with ``cause`` set and ``retryable`` where another try may succeed."""
    t0 = time.monotonic()
    res = Result(student, assignment)
    priv = None
    try:
        from .repair import read_submission, repair
        from .scan import scan_notebook

        releases = sorted((template.release / assignment).glob("*.ipynb"))
        template.private.mkdir(parents=True, exist_ok=True)
        priv = Path(tempfile.mkdtemp(prefix=f"{student}-{assignment}-", dir=template.private))
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
            unpublish(course.autograded / student / assignment)   # nothing graded: no stale notebooks left
        else:
            _run_nbgrader(course, template, priv, student, assignment, res, protect or [], sandboxed)
    except Exception as exc:  # noqa: BLE001 - one submission's failure must not stop the class
        fail(res, exc)
    finally:
        if priv is not None:
            shutil.rmtree(priv, ignore_errors=True)
    res.max_score = float(sum(v[1] for v in res.cells.values()))
    res.score = 0.0 if res.failed else float(sum(v[0] for v in res.cells.values()))
    res.seconds = time.monotonic() - t0
    return res


def fail(res: Result, exc: BaseException | str, what: str = "the grader failed on this submission") -> None:
    """Mark ``res`` as not graded because of ``exc`` (an exception, or nbgrader's log text): status
    error, a one-line cause (a full disk named as such), retryable unless the disk is full."""
    res.status = "error"
    if not isinstance(exc, str) and is_disk_full(exc):   # the tool's own write failed: the run stops
        res.full_disk = disk_full_path(exc)
        res.cause = "disk full: no space left on device" + (f" (writing {res.full_disk})" if res.full_disk else "")
        res.retryable = False
    elif isinstance(exc, str) and is_disk_full(exc):
        # said in nbgrader's output (text a submission can influence): an error, tried again, but
        # never a reason to stop the class
        res.cause = f"{what}: no space left on device (as nbgrader reported it)"
        res.retryable = True
    else:
        text = cause_line(exc) if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        lines = [ln.strip() for ln in str(text).strip().splitlines() if ln.strip()]
        res.cause = f"{what}: {lines[-1] if lines else 'no message'}"[:300]
        res.retryable = True
    if not isinstance(exc, str):
        res.flags.append("grader error: " + "".join(traceback.format_exception(exc, limit=3))[-300:])


def cause_line(log: str) -> str:
    """The line of nbgrader's output that says what went wrong: the last exception it logged
    (``RuntimeError: Kernel didn't respond in 60 seconds``), not its closing "Please see the
    above traceback", which nobody is shown."""
    import re

    lines = [ln.strip() for ln in str(log).splitlines() if ln.strip()]
    errors = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Timeout|Interrupt|Died)\b", ln)
              and "NbGraderException" not in ln]
    if errors:
        return errors[-1]
    useful = [ln for ln in lines if "above traceback" not in ln and "error log" not in ln]
    return (useful or lines or ["no message"])[-1]


def grading_config(course: Course, template: Template, root: Path, protect: list[str], assignment: str = "",
                   sandboxed: bool = True):
    """nbgrader config for grading in the private folder ``root``: the course's chains
    (:func:`autograder.config.pipeline_config`), its limits and protected paths, and this run's
    inputs (:func:`autograder.config.run_config`)."""
    cfg = config.course_config(root, f"sqlite:///{root / 'gradebook.db'}", solutions=course.solutions,
                               release_directory=template.release, limits=course.limits, protect=protect,
                               sandboxed=sandboxed)
    files = template.files / assignment
    cfg.merge(config.run_config(locked_file=template.locked_file, skip_file=template.skipped_file,
                                files_dir=files if assignment and files.is_dir() and any(files.iterdir()) else None))
    return cfg


def default_protect(course: Course) -> list[str]:
    """Paths a grading kernel may not write to (beyond its own working folder)."""
    return course.protect()


def kernel_deaths(folder: Path) -> tuple[list[str], str]:
    """``<notebook>/<cell index>`` of every cell where a graded notebook's kernel died, and who ended
    it: ``outside`` (one was killed from outside its sandbox), ``itself`` (each was the
    submission's doing) or ``unknown`` (see :meth:`autograder.sandbox.provisioner.SandboxProvisioner.ending`)."""
    out, whos = [], set()
    for nbp in sorted(Path(folder).glob("*.ipynb")):
        nb = nbformat.read(nbp, as_version=4)
        for i, c in enumerate(nb.cells):
            names = {o.get("ename") for o in c.get("outputs", []) if o.get("output_type") == "error"}
            if names & set(KERNEL_DIED):
                out.append(f"{nbp.stem}/{i}")
                whos.add("outside" if KERNEL_KILLED in names else "itself" if KERNEL_CRASHED in names else "unknown")
    return out, ("outside" if "outside" in whos else "itself" if whos == {"itself"} else "unknown" if whos else "")


def _run_nbgrader(course, template, priv, student, assignment, res, protect, sandboxed) -> None:
    from nbgrader.apps import NbGraderAPI

    cfg = grading_config(course, template, priv, protect, assignment, sandboxed)
    with quiet(errors=True) as log:
        api = NbGraderAPI(config=cfg)
        out = api.autograde(assignment, student, force=True, create=True)
    if not out.get("success"):
        text = "\n".join(t for t in (out.get("error"), out.get("log"), log.getvalue()) if t)
        fail(res, text if text.strip() else "nbgrader failed without a message", "nbgrader's autograde failed")
        return
    graded = priv / "autograded" / student / assignment
    msgs: dict[str, dict[str, str]] = {}
    for nbp in graded.glob("*.ipynb"):
        msgs[nbp.stem] = _messages(nbformat.read(nbp, as_version=4))
    with store.gradebook(f"sqlite:///{priv / 'gradebook.db'}") as gb:
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
    res.deaths, res.ended_by = kernel_deaths(graded)
    _verify(course, template, assignment, priv / "submitted" / student / assignment, res, sandboxed)
    if res.failed:
        return
    names = [p.name for p in sorted((template.release / assignment).glob("*.ipynb"))]
    res.output_hash = publish(graded, course.autograded / student / assignment, names,
                              beside=course.submitted / student / assignment)


def _verify(course, template, assignment, repaired, res, sandboxed) -> None:
    """Withdraw the points of checks that the trusted verifier does not confirm (``repaired``: the
    folder of the repaired notebooks, as given to nbgrader). A verifier that could not run
    (``Verdict.errors``, where the verifier reports them) makes the submission an error."""
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
        errors = list(getattr(verdict, "errors", None) or [])
        if errors:
            fail(res, "; ".join(map(str, errors)), "the verifier could not run")
            return
        for gid, msg in verdict.withdrawn.items():
            key = f"{rel_path.stem}/{gid}"
            if key in res.cells:
                res.cells[key] = [0.0, res.cells[key][1], msg]
        res.flags += verdict.flags


# ------------------------------------------------------------------------------ publishing

def _write_checked(path: Path, data: bytes) -> None:
    """Write ``data`` to the new file ``path``, flushed to disk, and read it back."""
    import errno

    try:
        with open(path, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc   # (write and close say no file)
    if path.read_bytes() != data:
        raise OSError(errno.EIO, "the written copy differs from the graded notebook", str(path))


def publish(graded: Path, dest: Path, names: list[str], beside: Path | None = None) -> str:
    """Replace the folder ``dest`` by the notebooks ``names`` of ``graded``, all at once: they are
    written into a folder beside it, read back and compared, then renamed into place; on any
    failure (a full disk) ``dest`` is left as it was. ``beside``: the submission's folder, whose
    ``timestamp.txt`` and ``submission_secret.txt`` go along (nbgrader's Generate Feedback copies
    them from autograded/ to feedback/, where Release Feedback reads them). Return the digest of
    the notebooks published."""

    import uuid

    made = not dest.parent.exists()
    dest.parent.mkdir(parents=True, exist_ok=True)
    token = owner_token()
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{dest.name}.new-{token}-", dir=dest.parent))
    except OSError:
        if made:
            with contextlib.suppress(OSError):
                dest.parent.rmdir()
        raise
    old = None
    try:
        stage.chmod(0o755)
        for name in names:
            src = graded / name
            if src.is_file() and not src.is_symlink():
                _write_checked(stage / name, src.read_bytes())
        for name in store.RELEASE_READS if beside is not None else ():
            src = beside / name
            if src.is_file() and not src.is_symlink():
                _write_checked(stage / name, src.read_bytes())
        if dest.exists() or dest.is_symlink():
            old = dest.parent / f".{dest.name}.old-{token}-{uuid.uuid4().hex[:8]}"
            os.rename(dest, old)
        try:
            os.rename(stage, dest)
        except OSError:
            if old is not None:
                os.rename(old, dest)
                old = None
            raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if made:
            with contextlib.suppress(OSError):
                dest.parent.rmdir()
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return store.published_digest(dest)


def unpublish(dest: Path) -> None:
    """Remove a submission's earlier graded notebooks (they no longer match its files)."""
    import uuid

    if dest.is_dir() and not dest.is_symlink():
        old = dest.parent / f".{dest.name}.old-{owner_token()}-{uuid.uuid4().hex[:8]}"
        os.rename(dest, old)
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------ the store

def record(course: Course, res: Result, keep_grade: bool = False) -> None:
    """Write one result into the store (:func:`autograder.store.record`: scores into the real
    gradebook, the rest beside them; a failed result writes no score)."""
    store.record(course.gradebook_url, res, keep_grade)


RECORD_RETRY_SECONDS = 3.0


def _record_twice(course: Course, res: Result, keep: bool) -> None:
    """:func:`record`, and once more after a pause when it fails for a reason other than a full disk
    (a database that was locked by another program, or restarting); the second failure is raised."""
    try:
        record(course, res, keep_grade=keep)
    except Exception as exc:  # noqa: BLE001 - tried once more below
        if is_disk_full(exc):
            raise
        time.sleep(RECORD_RETRY_SECONDS)
        record(course, res, keep_grade=keep)


def read_ledger(course: Course) -> dict[tuple[str, str], Result]:
    """All recorded results, keyed by (student, assignment), read from the one store (the
    gradebook's scores, manual ones included; :func:`autograder.store.read_results`)."""
    return store.read_results(course.gradebook_url)


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


def _ungraded_cells(template: Template, assignment: str, why: str = "not graded") -> dict:
    cells = {}
    for rel_path in sorted((template.release / assignment).glob("*.ipynb")):
        for gid, p in _grade_points(nbformat.read(rel_path, as_version=4)).items():
            cells[f"{rel_path.stem}/{gid}"] = [0.0, p, why]
    return cells


def not_graded(template: Template, student: str, assignment: str, cause: str, status: str = "error",
               input_hash: str = "") -> Result:
    """A result that records that the tool could not grade this submission, and why."""
    res = Result(student, assignment, status=status, cause=cause, input_hash=input_hash,
                 cells=_ungraded_cells(template, assignment, f"not graded: {cause}"))
    res.max_score = float(sum(v[1] for v in res.cells.values()))
    return res


def needs_second_try(res: Result) -> bool:
    """An infrastructure failure worth another try, or a kernel death to confirm."""
    return (res.failed and res.retryable) or (not res.failed and bool(res.deaths))


def settle(first: Result | None, second: Result) -> Result:
    """The result of a submission graded twice (see the module docstring): a kernel killed from
    outside its sandbox (``killed``: SIGKILL, which nothing inside can send, not its memory limit)
    is never the submission's; a death the second time is the submission's own when it is at the
    same cell as the first, when the first was killed from outside, or when both were known to be the
    submission's doing (``ended_by == "itself"``); otherwise it cannot be told, and is an error."""
    if first is None:
        return second
    if second.failed:
        if first.failed and first.cause and first.cause != second.cause:
            second.cause = f"{second.cause} (first try: {first.cause})"[:400]
        second.cause += " [tried twice]"
        return second
    where = ", ".join(first.deaths)
    if second.deaths:
        if second.killed:
            cause = (f"its kernel was killed from outside the sandbox at {', '.join(second.deaths)} (SIGKILL, which "
                     "nothing in the sandbox can send, and not its memory limit)" +
                     (f"; in the first run it died at {where}" if first.deaths else f" (the first try failed: {first.cause})")
                     + ": stop what kills the grading kernels and run autograde again")
            second.status, second.cause, second.retryable = "error", cause[:400], False
            second.score = 0.0
            return second
        if first.deaths == second.deaths:
            second.problems.append(f"the kernel died at the same place in two runs ({where}): the "
                                   "submission's own crash")
            return second
        if first.killed:
            second.problems.append(f"the kernel died at {', '.join(second.deaths)}, after it had been killed from "
                                   f"outside at {where} in the first run: the submission's own crash")
            return second
        if second.ended_by == "itself" and first.ended_by in ("itself", ""):
            second.problems.append(f"the submission's code ended its kernel at {', '.join(second.deaths)}" +
                                   (f" (in the first run at {where})" if first.deaths else "") +
                                   ": the submission's own crash (nothing outside killed it)")
            return second
        cause = (f"the kernel died at {', '.join(second.deaths)}" + (f" and, in the first run, at {where}" if first.deaths
                 else f" (the first try failed: {first.cause})") +
                 ": it cannot be told whether the submission crashed or something outside killed it; run "
                 "autograde again, or grade it by hand")
        second.status, second.cause, second.retryable = "error", cause[:400], False
        second.score = 0.0
        return second
    if first.deaths:
        second.problems.append(f"graded again: in the first run its kernel was killed from outside at {where}")
    elif first.failed:
        second.problems.append(f"graded again after a failure of the tool: {first.cause}"[:300])
    return second


def _run_pool(course, template, todo, protect, jobs, sandboxed, stop=lambda: False):
    """Yield results as workers finish; a worker that dies costs only the submission it held.

    A submission whose worker died, whose grading failed for a reason outside it, or whose
    kernel died, is graded once more in a fresh worker after the others (:func:`settle` decides);
    a worker that dies twice gives status ``crashed``. Once ``stop()`` is true, what is left is
    yielded as not graded, without being started.
    """
    from collections import deque
    from multiprocessing.connection import wait

    ctx = multiprocessing.get_context("fork")
    queue = deque(todo)
    attempts: dict[tuple[str, str], int] = {}
    first: dict[tuple[str, str], Result] = {}
    workers = [_Worker(ctx) for _ in range(min(jobs, len(todo)))]
    try:
        while queue or any(w.task for w in workers):
            if stop() and queue:
                why = stop() if isinstance(stop(), str) else "a failure that stops the class"
                while queue:
                    s, a, _, d = queue.popleft()
                    yield not_graded(template, s, a, f"the run stopped before grading it ({why}); run autograde "
                                     "again", input_hash=d)
                continue
            for w in workers:
                if w.task is None and queue:
                    w.task = queue.popleft()
                    s, a, f, _ = w.task
                    w.conn.send((course, template, s, a, f, protect, sandboxed))
            busy = [w for w in workers if w.task]
            if not busy:
                continue
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
                n = attempts[(s, a)] = attempts.get((s, a), 0) + 1
                if res is None:
                    # the worker died while grading (s, a): that submission alone pays
                    w.conn.close()
                    workers[i] = _Worker(ctx)
                    if n < 2:
                        first[(s, a)] = not_graded(template, s, a, "the grader's worker process was killed",
                                                   input_hash=d)
                        queue.append((s, a, f, d))
                        continue
                    res = not_graded(template, s, a, "grading it killed the grader's worker process twice "
                                     "(killed from outside, or out of memory); a re-run tries again",
                                     status="crashed", input_hash=d)
                    res.flags.append("kills the grader's worker")
                    yield res
                    continue
                res.input_hash = d
                if n < 2 and needs_second_try(res):
                    first[(s, a)] = res
                    queue.append((s, a, f, d))
                    continue
                yield settle(first.pop((s, a), None), res)
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
    sandbox.lift_kill_limits()   # (inherited by every sandbox: see SandboxProvisioner.ending)
    return True


def autograde(course: Course, students=None, assignments=None, jobs: int | None = None,
              force: bool = False, progress: bool = True, echo=print,
              unsafe_no_sandbox: bool = False, wait: float | None = 0, on_result=None) -> list[Result]:
    """Grade the collected submissions in parallel; return one Result per submission.

    ``on_result(result)``, when given, is called with each result as soon as it is recorded, while
    the other submissions are still being graded (the hub's feedback service releases a student's
    feedback then, not at the end of the batch); its exceptions are reported, never raised.

    Submissions whose files, course sources and published notebooks are unchanged since they were
    graded are skipped unless ``force``. Never raises for a submission's fault, nor records a
    failure of the tool as a grade (see the module docstring: such results have ``failed`` set).
    Raises :class:`~autograder.sandbox.SandboxUnavailable` when no sandbox can start (unless
    ``unsafe_no_sandbox``), :class:`~autograder.util.WorkFolderBusy` when another command holds
    the work folder (after waiting ``wait`` seconds; None: as long as it takes), and
    :class:`GradingStopped` when the run cannot start (a full disk, the gradebook).
    """
    env_path()
    sandboxed = check_sandbox(unsafe_no_sandbox, echo)
    sandbox.remove_stale()
    names = [a for a in course.assignments() if not assignments or a in assignments]
    if assignments:
        unknown = sorted(set(assignments) - set(course.assignments()))
        if unknown:
            raise ValueError(f"unknown assignment(s) {unknown}; the course has {course.assignments()}")
    try:
        with work_lock(course.workdir, "autograde", wait, echo), run_folder(course.workdir) as run:
            return _autograde(course, run, students, names, jobs, force, progress, echo, sandboxed, on_result)
    except Exception as exc:
        if is_disk_full(exc):
            raise GradingStopped(disk_full_message(getattr(exc, "filename", None) or course.workdir)) from exc
        if isinstance(exc, store.GradebookUnavailable):
            raise GradingStopped(str(exc)) from exc
        raise


def unchanged(course: Course, prev: Result | None, digest: str) -> bool:
    """True when ``prev`` is a grade of the same files and sources whose published notebooks are
    still there, unchanged (a re-run skips it)."""
    if prev is None or prev.input_hash != digest or prev.status not in store.FINAL:
        return False
    dest = course.autograded / prev.student / prev.assignment
    if prev.output_hash:
        return store.published_digest(dest) == prev.output_hash
    return not dest.exists()


def _autograde(course, run, students, names, jobs, force, progress, echo, sandboxed,
               on_result=None) -> list[Result]:
    subs = find_submissions(course, students, names)
    if not subs:
        echo("nothing to grade: no submissions under " + str(course.submitted))
        return []
    names = sorted({a for _, a, _ in subs})
    ensure_in_gradebook(course, names, run)
    template = build_template(course, names, run)
    protect = default_protect(course)
    ledger = read_ledger(course)
    results: list[Result] = []
    todo = []
    for student, assignment, folder in subs:
        digest = submission_hash(folder, template.digest)
        prev = ledger.get((student, assignment))
        if not force and unchanged(course, prev, digest):
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
    stopped: list[str] = []
    try:
        why = lambda: stopped[0].split(" (writing ")[0] if stopped else ""   # (no other student's path)  # noqa: E731
        for res in _run_pool(course, template, todo, protect, jobs, sandboxed, stop=why):
            prev = ledger.get((res.student, res.assignment))
            keep = (res.failed and prev is not None and prev.final and prev.status in store.FINAL
                    and prev.input_hash == res.input_hash)
            try:
                _record_twice(course, res, keep)
            except Exception as exc:  # noqa: BLE001 - keep going, report it
                detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
                res.status, res.score = "error", 0.0
                res.cause = ("disk full: the gradebook could not be written" if is_disk_full(exc)
                             else f"could not write the gradebook: {detail} [tried twice]")
                res.full_disk = disk_full_path(exc) or store.sqlite_path(course.gradebook_url) or ""
            res.final = not res.failed and not any(v[2] == "needs manual grading" for v in res.cells.values())
            if res.failed and keep:
                res.cause += " (its earlier grade, of the same files, stands)"
            if res.failed and res.cause.startswith("disk full") and not stopped:
                stopped.append(res.cause)
                echo("autograde: " + disk_full_message(res.full_disk or course.workdir))
            results.append(res)
            line = res.summary()
            if bar is not None:
                bar.write(line)
                bar.update(1)
            else:
                echo(line)
            if on_result is not None:
                try:
                    on_result(res)
                except Exception as exc:  # noqa: BLE001 - the caller's trouble must not stop the class
                    echo(f"autograde: after {res.student}/{res.assignment}: {type(exc).__name__}: {exc}")
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(template.root, ignore_errors=True)
    results.sort(key=lambda r: (r.student, r.assignment))
    return results


def grade_one(course: Course, assignment: str, notebook_dir: Path, student: str = "student",
              unsafe_no_sandbox: bool = False) -> Result:
    """Grade one submission folder serially, without touching the course's gradebook (for the
    notebook contract tests, the Gradescope package and validation). A failure of the tool is
    tried once more, as in :func:`autograde`; the result may still be ``failed``."""
    env_path()
    sandboxed = check_sandbox(unsafe_no_sandbox, echo=lambda *_: None)
    course.workdir.mkdir(parents=True, exist_ok=True)
    with run_folder(course.workdir) as run:
        template = build_template(course, [assignment], run)
        args = (course, template, student, assignment, Path(notebook_dir), default_protect(course), sandboxed)
        res = grade_submission(*args)
        if needs_second_try(res):
            res = settle(res, grade_submission(*args))
        res.final = not res.failed
        return res
