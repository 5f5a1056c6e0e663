"""Parallel, limited, crash-proof and idempotent autograding on top of nbgrader.

How one submission is graded (:func:`grade_submission`, run in a pool of forked worker processes
that already imported nbgrader):

1. a private course folder is made under ``<workdir>/.work/`` with a fresh copy of a *template*
   gradebook (the assignments' source cells, made once per run by nbgrader's
   generate_assignment); the student's kernel can therefore never touch the real gradebook, and
   a tampered private copy is thrown away after the submission;
2. each submitted notebook is repaired (:mod:`autograder.repair`) against the released version;
   a corrupt one is recorded and scores zero;
3. nbgrader's autograde runs in-process (no CLI start-up) with :class:`GuardedExecute`: the
   kernel is ``python -m autograder.kernel`` (memory limit, sandbox), each cell and the whole
   notebook have a time limit, a kernel that dies is recorded on its cell;
4. the scores are read back and returned to the parent, which alone writes the real gradebook
   (SQLite or PostgreSQL), copies the autograded notebooks, and records the submission in a
   ledger keyed by a hash of its files; a re-run skips what the ledger already holds (so a run
   killed midway resumes), ``force=True`` regrades.
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

import nbformat

from . import config
from .config import Course, Limits
from .release import _env_path, generate, quiet

TOOL_VERSION = "1"
STATUS_OK = "graded"


@dataclass
class Result:
    """The outcome of grading one student's submission of one assignment."""

    student: str
    assignment: str
    status: str = STATUS_OK          # graded | corrupt | missing | error
    score: float = 0.0
    max_score: float = 0.0
    cells: dict = field(default_factory=dict)      # "<notebook>/<grade_id>" -> [score, max, message]
    problems: list = field(default_factory=list)
    seconds: float = 0.0
    seconds_late: float = 0.0
    timestamp: str | None = None
    input_hash: str = ""

    def summary(self) -> str:
        """One line: student, assignment, score, status, time and what went wrong."""
        late = f", late {self.seconds_late / 3600:.1f} h" if self.seconds_late > 0 else ""
        probs = f" [{'; '.join(self.problems)[:160]}]" if self.problems else ""
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


def _sources_digest(course: Course, names: list[str]) -> str:
    h = hashlib.sha256(TOOL_VERSION.encode())
    for a in names:
        for p in sorted((course.solutions / a).rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(course.solutions)).encode())
                h.update(p.read_bytes())
    lim = course.limits
    h.update(f"{lim.cell_timeout}/{lim.notebook_timeout}/{lim.memory_mb}".encode())
    return h.hexdigest()


def build_template(course: Course, names: list[str]) -> Template:
    """Generate the assignments into a private folder with its own template gradebook."""
    from nbgrader.api import Gradebook

    from .kernel import locked_hashes

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
    sources = []
    for a in names:
        for src in course.source_notebooks(a):
            nb = nbformat.read(src, as_version=4)
            for c in nb.cells:
                meta = c.metadata.get("nbgrader", {})
                if c.cell_type == "code" and (meta.get("locked") or (meta.get("grade") and not meta.get("solution"))):
                    sources.append(c.source)
    locked = root / "locked.json"
    locked.write_text(json.dumps(locked_hashes(sources)))
    return Template(root, db, root / "release", locked, _sources_digest(course, names))


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
            for c in release_nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def _messages(nb) -> dict[str, str]:
    msgs = {}
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if c.cell_type != "code" or not meta.get("grade"):
            continue
        for out in c.get("outputs", []):
            if out.get("output_type") == "error":
                msgs[meta["grade_id"]] = diagnosis_first(out.get("ename", ""), out.get("evalue", ""))
                break
    return msgs


MESSAGE_LIMIT = 2000  # characters of a test's message kept for Gradescope and the ledger


def diagnosis_first(ename: str, evalue: str) -> str:
    """A failed test's message for an instructor's export: the diagnosis ("Likely bug", "Try")
    first, then the rest of a course check's message, cut only after the diagnosis."""
    lines = str(evalue).strip().split("\n")
    if ename != "CheckFailed":
        return f"{ename}: {evalue}".strip()[:MESSAGE_LIMIT]
    key = [ln.strip() for ln in lines if ln.strip().startswith(("Likely bug:", "Try:"))]
    rest = [ln for ln in lines if ln.strip() not in key]
    text = "\n".join(key + rest)
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT - 4] + " ..."


def grade_submission(course: Course, template: Template, student: str, assignment: str,
                     sub_dir: Path, protect: list[str] | None = None) -> Result:
    """Grade one submission in a private course folder (see the module docstring); never raises."""
    t0 = time.monotonic()
    res = Result(student, assignment)
    priv = None
    try:
        from .repair import repair, read_submission

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
            _run_nbgrader(course, template, priv, student, assignment, res, protect or [])
    except Exception as exc:  # noqa: BLE001 - one submission's failure must not stop the class
        res.status = "error"
        res.problems.append(f"{type(exc).__name__}: {exc}"[:300])
        res.problems.append(traceback.format_exc(limit=3)[-300:])
    finally:
        if priv is not None:
            shutil.rmtree(priv, ignore_errors=True)
    res.max_score = float(sum(v[1] for v in res.cells.values()))
    res.score = float(sum(v[0] for v in res.cells.values()))
    res.seconds = time.monotonic() - t0
    return res


def grading_config(course: Course, template: Template, root: Path, protect: list[str]):
    """nbgrader config for grading in the private folder ``root``."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern,
                                        LimitOutput, SaveAutoGrades)

    from .preprocessors import GuardedExecute, StderrNotFatal

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


def _run_nbgrader(course, template, priv, student, assignment, res, protect) -> None:
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

    cfg = grading_config(course, template, priv, protect)
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
    dest = course.autograded / student / assignment
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(graded, dest)


# ------------------------------------------------------------------------------ the gradebook

def record(course: Course, res: Result) -> None:
    """Write one result into the real gradebook (idempotent: grades are set, not added)."""
    from nbgrader.api import Gradebook

    from .collect import parse_timestamp

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

def find_submissions(course: Course, students=None, assignments=None) -> list[tuple[str, str, Path]]:
    """(student, assignment, folder) for every collected submission, filtered."""
    out = []
    root = course.submitted
    if not root.is_dir():
        return out
    known = set(course.assignments())
    for sdir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if students and sdir.name not in students:
            continue
        for adir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            if adir.name not in known or (assignments and adir.name not in assignments):
                continue
            out.append((sdir.name, adir.name, adir))
    return out


_WORKER: dict = {}


def _worker_init() -> None:
    import nbgrader.apps  # noqa: F401  (imported once per worker)


def _worker(args) -> Result:
    course, template, student, assignment, sub_dir, protect = args
    return grade_submission(course, template, student, assignment, sub_dir, protect)


def autograde(course: Course, students=None, assignments=None, jobs: int | None = None,
              force: bool = False, progress: bool = True, echo=print) -> list[Result]:
    """Grade the collected submissions in parallel; return one Result per submission.

    Submissions whose files and course sources are unchanged since the ledger recorded them are
    skipped unless ``force``.  Never raises for a submission's fault.
    """
    _env_path()
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
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="autograde", unit="nb", file=sys.stdout, leave=False,
                   dynamic_ncols=True, mininterval=0.5, disable=not sys.stdout.isatty())
    try:
        for res in _run_pool(course, template, todo, protect, jobs):
            record_ok = True
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


def _run_pool(course, template, todo, protect, jobs):
    """Yield results as workers finish; a broken pool is rebuilt and the rest go on."""
    pending = list(todo)
    digests = {(s, a): d for s, a, _, d in todo}
    ctx = multiprocessing.get_context("fork")
    while pending:
        with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init) as pool:
            futs = {pool.submit(_worker, (course, template, s, a, f, protect)): (s, a, f) for s, a, f, _ in pending}
            done_keys = set()
            try:
                for fut in cf.as_completed(futs):
                    s, a, f = futs[fut]
                    try:
                        res = fut.result()
                    except cf.process.BrokenProcessPool:
                        raise
                    except Exception as exc:  # noqa: BLE001
                        res = Result(s, a, status="error", problems=[f"{type(exc).__name__}: {exc}"])
                    res.input_hash = digests[(s, a)]
                    done_keys.add((s, a))
                    yield res
            except cf.process.BrokenProcessPool:
                pass
        rest = [t for t in pending if (t[0], t[1]) not in done_keys]
        if len(rest) == len(pending):  # no progress: give up on the first, record it
            s, a, f, d = rest[0]
            yield Result(s, a, status="error", problems=["the grading worker crashed"], input_hash=d)
            rest = rest[1:]
        pending = rest


def grade_one(course: Course, assignment: str, notebook_dir: Path, student: str = "student") -> Result:
    """Grade one submission folder serially, without touching the course's gradebook (for the
    notebook contract tests, the Gradescope package and validation)."""
    _env_path()
    course.workdir.mkdir(parents=True, exist_ok=True)
    template = build_template(course, [assignment])
    try:
        return grade_submission(course, template, student, assignment, Path(notebook_dir),
                                default_protect(course))
    finally:
        shutil.rmtree(template.root, ignore_errors=True)
