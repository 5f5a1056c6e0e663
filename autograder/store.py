"""The one store of grading results: nbgrader's gradebook, and beside it what it cannot hold.

Scores live only in nbgrader's gradebook (auto scores written by ``autograde``, manual scores by
formgrader): ``grades.csv``, ``results.json``, feedback and formgrader all read them there. What
the gradebook has no place for (how the grading went: status, the cause when a submission could
not be graded, problems and flags for the instructor, each test's message, the hashes that let a
re-run skip unchanged work) lives in one table beside nbgrader's, ``cnnlab_results``, in the same
database (SQLite or PostgreSQL): one row per submission, keyed to the gradebook submission's id
and written in the same transaction as its scores. A row whose submission id is no longer the
gradebook's (the submission was removed and made again) is ignored.

A submission has a **final grade** when its row says it was graded (status ``graded``,
``corrupt`` or ``missing``) and no grade cell needs manual grading. A submission that could not
be graded (an infrastructure failure: status ``error`` or ``crashed``) gets no score: its grade
cells keep no auto score and are marked "needs manual grade" (nbgrader's own marker, which
formgrader shows), so that neither nbgrader nor an export can take it for a 0; a grade the
instructor enters by hand makes it final.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from . import config
from .util import quiet

STATUS_OK = "graded"
FINAL = ("graded", "corrupt", "missing")   # statuses that are grades (corrupt, missing: 0 points)
FAILED = ("error", "crashed")              # statuses that are not: the tool could not grade it
UNGRADED = "ungraded"                      # in the gradebook, never graded by autograde (or cut off)
TABLE = "cnnlab_results"


@dataclass
class Result:
    """The outcome of grading one student's submission of one assignment."""

    student: str
    assignment: str
    status: str = STATUS_OK          # graded | corrupt | missing (grades); error | crashed (not); ungraded
    score: float = 0.0
    max_score: float = 0.0
    cells: dict = field(default_factory=dict)      # "<notebook>/<grade_id>" -> [score, max, message]
    problems: list = field(default_factory=list)
    seconds: float = 0.0
    seconds_late: float = 0.0
    timestamp: str | None = None
    input_hash: str = ""
    flags: list = field(default_factory=list)      # for the instructor: possible tampering, scan hits
    cause: str = ""                  # why it could not be graded (status error / crashed), one line
    output_hash: str = ""            # of the published autograded folder
    deaths: list = field(default_factory=list)     # "<notebook>/<cell index>" where the kernel died
    ended_by: str = ""               # who ended those kernels: outside | itself | unknown (not stored)

    @property
    def killed(self) -> bool:
        """A kernel of this grading was killed from outside its sandbox (a failure of the machine)."""
        return self.ended_by == "outside"
    retryable: bool = False          # an infrastructure failure worth one more try
    full_disk: str = ""              # a path on the file system that was full (status error)
    final: bool = True               # a grade an export may use (see the module docstring)

    @property
    def failed(self) -> bool:
        """True when the tool could not grade it (no score was recorded)."""
        return self.status in FAILED

    def summary(self) -> str:
        """One line: student, assignment, score, status, time and what went wrong (a student's text in
        it, such as an error message or a file name, with control characters escaped)."""
        from .names import printable

        return printable(self._line())

    def _line(self) -> str:
        if self.failed:
            return (f"{self.student:<16} {self.assignment:<20} {'NOT GRADED':>13} {self.status:<8} "
                    f"{self.seconds:5.1f}s  cause: {self.cause or '; '.join(self.problems)[:200]}")
        late = f", late {self.seconds_late / 3600:.1f} h" if self.seconds_late > 0 else ""
        probs = f" [{'; '.join(self.problems)[:160]}]" if self.problems else ""
        if self.flags:
            probs += f" FLAGGED: {'; '.join(self.flags)[:200]}"
        return (f"{self.student:<16} {self.assignment:<20} {self.score:6.2f}/{self.max_score:<6.2f} "
                f"{self.status:<8} {self.seconds:5.1f}s{late}{probs}")


RELEASE_READS = ("timestamp.txt", "submission_secret.txt")
"""What nbgrader's release_feedback (formgrader's Release Feedback button) reads beside the pages:
the submission's time and the key the student fetches the pages under (nbgrader's submit writes it).
autograde publishes them beside the graded notebook (nbgrader's Generate Feedback copies them into
feedback/), and the CLI's feedback copies them from submitted/."""


class GradebookUnavailable(RuntimeError):
    """The gradebook cannot be opened (the message names it and what to do)."""


def public_url(url: str) -> str:
    """``url`` without its password."""
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def _table():
    from sqlalchemy import Column, MetaData, String, Table, Text

    meta = MetaData()
    return Table(TABLE, meta,
                 Column("course_id", String(128), primary_key=True),
                 Column("student", String(128), primary_key=True),
                 Column("assignment", String(128), primary_key=True),
                 Column("submission_id", String(32), nullable=False),
                 Column("status", String(16), nullable=False),
                 Column("data", Text, nullable=False))


_T = []


def table():
    if not _T:
        _T.append(_table())
    return _T[0]


# ------------------------------------------------------------------------------ opening it

LOCK_KEY = int.from_bytes(hashlib.sha256(b"cnnlab gradebook").digest()[:8], "big", signed=True)


@contextlib.contextmanager
def db_lock(url: str):
    """Serialise writers of a PostgreSQL gradebook (a session advisory lock on a connection of
    its own): creating the schema, registering assignments and students. Several graders' first
    runs on a fresh database otherwise race in CREATE TABLE (``IntegrityError
    pg_type_typname_nsp_index``) and in nbgrader's find-then-add. SQLite needs none: a work
    folder has one run at a time (:func:`autograder.util.work_lock`) and SQLite locks its file."""
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy.exc
    from sqlalchemy import create_engine, text

    engine = create_engine(url, future=True, poolclass=_null_pool())
    try:
        try:
            conn = engine.connect()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise unavailable(url, exc) from exc
        with conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                conn.commit()
    finally:
        engine.dispose()


def _null_pool():
    from sqlalchemy.pool import NullPool

    return NullPool


def unavailable(url: str, exc: BaseException) -> GradebookUnavailable:
    """The error that says the gradebook at ``url`` could not be opened, and what to check."""
    first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["?"])[0][:200]
    path = sqlite_path(url)
    if not url.startswith("sqlite"):
        hint = "Check --db (or $CNNLAB_DB) and that the database server runs and accepts this user"
    elif "locked" in first.lower():
        hint = ("The gradebook is locked by another process (another grader, formgrader, or a command that "
                "hangs): let it finish, or stop it, and run the command again")
    elif path and not Path(path).parent.is_dir():
        from .util import no_work_folder

        return GradebookUnavailable(no_work_folder(Path(path).parent))
    else:
        hint = "Check that the work folder is readable and writable"
    return GradebookUnavailable(f"cannot open the gradebook {public_url(url)}: {first}. {hint}.")


@contextlib.contextmanager
def gradebook(url: str):
    """nbgrader's Gradebook at ``url`` (quiet); a database that cannot be reached or opened raises
    :class:`GradebookUnavailable` (a full disk: OSError ENOSPC, see :func:`autograder.util.is_disk_full`)."""
    import sqlalchemy.exc
    from nbgrader.api import Gradebook

    from .util import is_disk_full

    try:
        with quiet():
            gb = Gradebook(url, config.COURSE_ID)
    except sqlalchemy.exc.SQLAlchemyError as exc:
        if is_disk_full(exc):
            import errno

            raise OSError(errno.ENOSPC, "database or disk is full", sqlite_path(url) or url) from exc
        raise unavailable(url, exc) from exc
    try:
        with quiet():
            yield gb
    finally:
        with contextlib.suppress(Exception):
            gb.close()


def sqlite_path(url: str) -> str | None:
    """The file of a SQLite gradebook URL (None for another database)."""
    return url[len("sqlite:///"):] if url.startswith("sqlite:///") else None


def ensure_schema(url: str) -> None:
    """Create nbgrader's tables and this store's (once, serialised by :func:`db_lock`)."""
    with db_lock(url), gradebook(url) as gb:
        table().create(bind=gb.engine, checkfirst=True)


# ------------------------------------------------------------------------------ writing

def _row_data(res: Result, auto: dict) -> dict:
    return {"status": res.status, "auto": auto, "cause": res.cause, "problems": res.problems, "flags": res.flags,
            "messages": {k: v[2] for k, v in res.cells.items()}, "seconds": round(res.seconds, 3),
            "timestamp": res.timestamp, "input_hash": res.input_hash, "output_hash": res.output_hash,
            "recorded": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}


def record(url: str, res: Result, keep_grade: bool = False) -> None:
    """Write one result: its scores into nbgrader's gradebook and its row into the store, in one
    transaction (idempotent: grades are set, not added).

    A failed result (``res.failed``) writes no score: each grade cell loses its auto score and
    needs manual grading (a manual score the instructor gave stays); with ``keep_grade`` (the same
    files were graded before and a regrade failed) the earlier grade and row are left as they
    are."""
    from nbgrader.utils import parse_utc
    from sqlalchemy import and_

    if res.failed and keep_grade:
        return
    t = table()
    with db_lock(url), gradebook(url) as gb:
        gb.update_or_create_student(res.student)
        ts = None
        with contextlib.suppress(ValueError, TypeError, OverflowError):
            ts = parse_utc(res.timestamp.strip()) if res.timestamp else None
        sub = gb.update_or_create_submission(res.assignment, res.student, **({"timestamp": ts} if ts else {}))
        auto = {}
        for nb in sub.notebooks:
            for g in nb.grades:
                key = f"{nb.name}/{g.name}"
                cell = res.cells.get(key)
                if res.failed:
                    g.auto_score = None
                    g.needs_manual_grade = g.manual_score is None
                elif cell is not None:
                    g.auto_score = cell[0]
                    g.needs_manual_grade = cell[2] == "needs manual grading" and g.manual_score is None
                auto[key] = g.auto_score
            for c in nb.comments:
                cell = res.cells.get(f"{nb.name}/{c.name}")
                if res.failed:
                    c.auto_comment = f"not graded: {res.cause}"[:1000]
                else:
                    c.auto_comment = (cell[2] or None) if cell else None
        where = and_(t.c.course_id == config.COURSE_ID, t.c.student == res.student, t.c.assignment == res.assignment)
        gb.db.execute(t.delete().where(where))
        gb.db.execute(t.insert().values(course_id=config.COURSE_ID, student=res.student, assignment=res.assignment,
                                        submission_id=sub.id, status=res.status,
                                        data=json.dumps(_row_data(res, auto))))
        gb.db.commit()


# ------------------------------------------------------------------------------ reading

def read_results(url: str, assignments: list[str] | None = None) -> dict[tuple[str, str], Result]:
    """Every gradebook submission as a :class:`Result`, keyed by (student, assignment): its scores
    from the gradebook (a manual score where the instructor gave one), the rest from its row.
    ``final`` tells whether it is a grade an export may use."""
    from sqlalchemy import inspect, select

    t = table()
    out: dict[tuple[str, str], Result] = {}
    with gradebook(url) as gb:
        rows = {}
        if inspect(gb.engine).has_table(TABLE):
            rows = {(r.student, r.assignment): r for r in gb.db.execute(
                select(t).where(t.c.course_id == config.COURSE_ID))}
        for a in gb.assignments:
            if assignments and a.name not in assignments:
                continue
            for sub in gb.assignment_submissions(a.name):
                row = rows.get((sub.student.id, a.name))
                data = json.loads(row.data) if row is not None and row.submission_id == sub.id else None
                res = Result(sub.student.id, a.name)
                msgs = (data or {}).get("messages", {})
                manual: list[bool] = []
                needs = False
                recorded = (data or {}).get("auto")
                changed = []      # auto scores not the ones autograde wrote (formgrader's Autograde)
                for nb in sub.notebooks:
                    for g in nb.grades:
                        key = f"{nb.name}/{g.name}"
                        msg = msgs.get(key, "")
                        if recorded is not None and g.manual_score is None and not _same(recorded.get(key), g.auto_score):
                            changed.append(key)
                        manual.append(g.manual_score is not None)
                        if manual[-1]:
                            msg = "score given by the instructor" + (f"; the autograder said: {msg}" if msg else "")
                        needs = needs or bool(g.needs_manual_grade)
                        res.cells[key] = [float(g.score), float(g.max_score), msg]
                res.score = float(sum(v[0] for v in res.cells.values()))
                res.max_score = float(sum(v[1] for v in res.cells.values()))
                res.seconds_late = float(sub.total_seconds_late or 0)
                if data is None:
                    res.status = UNGRADED
                    res.cause = ("not graded by the course's autograde (a run that was cut off, or "
                                 "formgrader's Autograde, which does not verify hidden checks): run "
                                 "`python -m autograder autograde`")
                else:
                    for k in ("status", "cause", "problems", "flags", "seconds", "timestamp", "input_hash",
                              "output_hash"):
                        if k in data:
                            setattr(res, k, data[k])
                if data is not None and recorded is None:
                    res.status = UNGRADED
                    res.cause = ("graded by an older version of the tool, which did not keep the scores it wrote: "
                                 "run `python -m autograder autograde`")
                elif changed:
                    res.status = UNGRADED
                    res.cause = (f"its scores were changed outside the course's autograde ({', '.join(changed)[:120]}: "
                                 "formgrader's Autograde or `nbgrader autograde`, which do not verify hidden "
                                 "checks): run `python -m autograder autograde`")
                by_hand = bool(manual) and all(manual)    # the instructor graded every cell
                res.final = not needs and (res.status in FINAL or by_hand)
                if res.final and res.status not in FINAL:
                    res.problems = [*res.problems, f"graded by the instructor by hand ({res.status}: {res.cause})"]
                if not res.final and not res.cause:
                    res.cause = "a grade cell still needs manual grading (formgrader: Manual Grading)"
                out[(res.student, res.assignment)] = res
    return out


def _same(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return abs(float(a) - float(b)) < 1e-9


def not_final(results: dict[tuple[str, str], Result]) -> list[Result]:
    """The results that are not grades, sorted."""
    return [r for _, r in sorted(results.items()) if not r.final]


def published_digest(folder: Path) -> str:
    """sha256 of a folder's notebooks (names and bytes): what autograde published there."""
    h = hashlib.sha256()
    if Path(folder).is_dir():
        for p in sorted(Path(folder).glob("*.ipynb")):
            if p.is_file() and not p.is_symlink():
                h.update(p.name.encode() + b"\0")
                h.update(p.read_bytes())
    return h.hexdigest()
