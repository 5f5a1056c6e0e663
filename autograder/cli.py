"""``python -m autograder <command>`` / ``cnnlab-grade <command>``: the instructor's tool.

Commands: release, collect, autograde, feedback, export, validate, demo, similarity, quiz-key (and
gradescope-run, used inside the Gradescope autograder).  Every command takes ``--workdir`` (instructor work folder,
default ``course/``), ``--solutions``, ``--notebooks`` and ``--db`` (a gradebook URL, e.g.
``postgresql://user@host/db``; default SQLite in the work folder).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from . import config
from .config import Course, Limits


def _course(args) -> Course:
    lim = Limits(cell_timeout=getattr(args, "cell_timeout", None) or Limits.cell_timeout,
                 notebook_timeout=getattr(args, "notebook_timeout", None) or Limits.notebook_timeout,
                 memory_mb=Limits.memory_mb if getattr(args, "memory_mb", None) is None else args.memory_mb,
                 figures=bool(getattr(args, "figures", False)))
    return Course(solutions=args.solutions, notebooks=args.notebooks, workdir=args.workdir,
                  db_url=args.db, limits=lim)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workdir", type=Path, default=config.DEFAULT_WORKDIR,
                   help="instructor work folder (gradebook, submitted, autograded, feedback, exports)")
    p.add_argument("--solutions", type=Path, default=config.SOLUTIONS, help="nbgrader source notebooks")
    p.add_argument("--notebooks", type=Path, default=config.NOTEBOOKS, help="generated student notebooks")
    p.add_argument("--db", default=None, help="gradebook URL (default sqlite:///<workdir>/gradebook.db)")


def _limits(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cell-timeout", type=int, default=None, help=f"seconds per cell (default {Limits.cell_timeout})")
    p.add_argument("--notebook-timeout", type=int, default=None,
                   help=f"seconds per notebook (default {Limits.notebook_timeout})")
    p.add_argument("--memory-mb", type=int, default=None,
                   help=f"memory limit of a grading kernel (default {Limits.memory_mb}; 0: none)")
    p.add_argument("--figures", action="store_true",
                   help="draw figures into the graded notebooks and feedback (slower; by default a grading "
                        "kernel shows a one-line placeholder where a figure would be)")
    p.add_argument("--unsafe-no-sandbox", action="store_true",
                   help="grade even where no sandbox can start (student code then runs with your permissions)")


def cmd_release(args) -> int:
    from .release import LeakError, release

    course = _course(args)
    try:
        names = release(args.assignments or None, course=course)
    except (LeakError, RuntimeError, ValueError) as exc:
        print(f"release failed: {exc}")
        return 1
    for n in names:
        print(f"released {n} -> {course.notebooks / n} (leak check passed)")
    return 0


def cmd_collect(args) -> int:
    """collect, holding the work folder (one command at a time, see autograder.util.work_lock)."""
    from .util import WorkFolderBusy, work_lock

    try:
        with work_lock(_course(args).workdir, "collect", _wait(args)):
            return _collect(args)
    except WorkFolderBusy as exc:
        print(str(exc))
        return 4


def _collect(args) -> int:
    import zipfile

    from . import collect
    from .roster import RosterError, directory
    from .util import is_disk_full

    course = _course(args)
    src = Path(args.source) if args.source else None
    try:
        tz = _timezone(args.lms_timezone)
        dues = _parse_dues(args.due)
        _check_dues(course, dues)   # before anything is collected
        roster = directory(course)
        limits = collect.ZipLimits(max_file=int(args.max_file_mb * 2**20))
        if args.exchange:
            got = collect.collect_exchange(course, args.assignments or course.assignments(), args.exchange_root)
        elif src is None:
            print("collect: give a folder, a zip, or --exchange")
            return 2
        elif src.is_file() and (src.suffix.lower() == ".zip" or zipfile.is_zipfile(src)):
            got = collect.collect_zip(course, src, args.pattern, args.assignments or None, roster=roster, tz=tz,
                                      limits=limits)
        elif src.is_dir():
            got = collect.collect_folder(course, src, args.assignments or None, roster=roster,
                                         pattern=args.pattern, tz=tz, limits=limits)
        else:
            print(f"collect: {src} is neither a folder nor a zip file")
            return 2
        if dues:
            set_due_dates(course, dues)
    except (ValueError, RuntimeError, OSError, RosterError) as exc:
        if is_disk_full(exc):
            raise   # main's one line: which file system is full, and the fix
        print(f"collect failed: {exc}")
        return 1
    shown = src if src is not None else "nbgrader's exchange"
    print(f"collect: {shown} ({', '.join(sorted(got.layouts)) or 'no submission found'})")
    for line in got.report.render():
        print(line)
    missed = got.report.not_taken()
    print(f"collected {len(got)} submission(s) into {course.submitted}"
          + (f"; {missed} file(s) or name(s) not taken (see 'skipped' and 'refused' above)" if missed else ""))
    for a, when in dues:
        print(f"due date of {a}: {when:%Y-%m-%d %H:%M:%S} UTC")
    _warn_not_on_roster(course, [s for s, _ in got])
    return 0


def _timezone(name: str):
    import datetime as dt
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name.upper() == "UTC":
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} for --lms-timezone (use a name such as Europe/Berlin "
                         "or America/New_York)") from None


def _parse_dues(dues: list[str]) -> list:
    """``ASSIGNMENT=ISO-DATETIME`` pairs, parsed (ValueError naming the bad one)."""
    from .collect import parse_timestamp

    out = []
    for d in dues:
        a, sep, when = d.partition("=")
        ts = parse_timestamp(when) if sep else None
        if not sep or not a or ts is None:
            raise ValueError(f"--due {d!r}: write ASSIGNMENT=DATE-TIME, e.g. 01_history=2026-01-15T12:00:00Z")
        out.append((a, ts))
    return out


def _warn_not_on_roster(course: Course, students: list[str]) -> None:
    from .roster import not_on_roster

    unknown = not_on_roster(course, students)
    if unknown:
        print(f"warning: {len(unknown)} submission(s) from students not on the roster: {', '.join(unknown)}")


def cmd_roster(args) -> int:
    from .roster import RosterError, import_roster
    from .util import disk_full_message, is_disk_full

    course = _course(args)
    notes: list[str] = []
    try:
        students = import_roster(course, args.csv, args.id_column, notes)
    except RosterError as exc:
        print(f"roster not imported: {exc}")
        return 1
    except (ValueError, OSError) as exc:
        if is_disk_full(exc):   # nbgrader's InvalidEntry carries SQLite's "database or disk is full"
            print(f"roster not imported: {disk_full_message(getattr(exc, 'filename', None) or course.workdir)}")
            return 1
        print(f"roster not imported: {args.csv}: {exc}")
        return 1
    for n in notes:
        print(f"note: {n}")
    named = sum(1 for s in students if s.first_name or s.last_name)
    print(f"imported {len(students)} student(s) ({named} with names) into {course.gradebook_url}")
    return 0


def cmd_strip_outputs(args) -> int:
    from .strip import strip_file, strip_stream

    if not args.notebooks:  # git clean filter: notebook on stdin, stripped notebook on stdout
        strip_stream(sys.stdin, sys.stdout)
        return 0
    changed = [p for p in args.notebooks if strip_file(Path(p))]
    for p in changed:
        print(f"stripped outputs from {p}")
    return 1 if (args.check and changed) else 0


def set_due_dates(course: Course, dues: list) -> None:
    """Record due dates (``ASSIGNMENT=ISO-DATETIME`` strings or parsed pairs) in the gradebook; works
    on a work folder never graded (the first collect)."""
    from nbgrader.api import Gradebook

    from .engine import ensure_in_gradebook
    from .util import env_path, quiet

    pairs = [d if isinstance(d, tuple) else _parse_dues([d])[0] for d in dues]
    _check_dues(course, pairs)
    env_path()   # nbgrader runs `alembic` (a new gradebook) from the environment's bin/, on PATH or not
    (course.workdir / ".work").mkdir(parents=True, exist_ok=True)   # ensure_in_gradebook works in there
    ensure_in_gradebook(course, [a for a, _ in pairs])
    with quiet(), Gradebook(course.gradebook_url, config.COURSE_ID) as gb:
        for a, ts in pairs:
            gb.update_or_create_assignment(a, duedate=ts)


def _check_dues(course: Course, pairs: list) -> None:
    unknown = [a for a, _ in pairs if a not in course.assignments()]
    if unknown:
        raise ValueError(f"--due names unknown assignment(s) {', '.join(unknown)}")


def _wait(args) -> float | None:
    """--wait: None (no flag): refuse at once (0); --wait: as long as it takes (None); --wait N: N seconds."""
    w = getattr(args, "wait", None)
    return 0 if w is None else (None if w < 0 else w)


def _cannot_start(course: Course, command: str, students: list[str], assignments: list[str],
                  need_folder: bool = True) -> str | None:
    """Why ``command`` (autograde, feedback) has nothing to work on, in one line: its work folder
    does not exist (with ``need_folder``: the command would otherwise make it, empty), or a
    ``--student`` has no collected submission (of ``assignments``, when given). None: it may start."""
    from .collect import find_submissions
    from .util import no_work_folder

    if need_folder and not course.workdir.is_dir():
        return f"{command}: {no_work_folder(course.workdir)}"
    if not students:
        return None
    have = sorted({s for s, _, _ in find_submissions(course, None, assignments or None)})
    unknown = sorted(set(students) - set(have))
    if not unknown:
        return None
    shown = ", ".join(have[:10]) + (f", ... ({len(have)} in all)" if len(have) > 10 else "")
    of = f" of {', '.join(assignments)}" if assignments else ""
    return (f"{command}: no collected submission{of} from student(s) {', '.join(map(repr, unknown))} under "
            f"{course.submitted} (submissions from: {shown or 'nobody yet'}); check the id, or collect it first")


def cmd_autograde(args) -> int:
    from .engine import GradingStopped, autograde
    from .sandbox import SandboxUnavailable
    from .util import WorkFolderBusy

    course = _course(args)
    # (no --student: an autograde of a new folder says "nothing to grade", after the sandbox check)
    problem = _cannot_start(course, "autograde", args.student, args.assignments, need_folder=False)
    if problem:
        print(problem)
        return 2
    try:
        results = autograde(course, args.student or None, args.assignments or None, jobs=args.jobs,
                            force=args.force, progress=not args.no_progress,
                            unsafe_no_sandbox=args.unsafe_no_sandbox, wait=_wait(args))
    except SandboxUnavailable as exc:
        print(f"autograde refused: {exc}")
        return 3
    except (WorkFolderBusy, GradingStopped) as exc:
        print(f"autograde: {exc}" if isinstance(exc, GradingStopped) else str(exc))
        return 4 if isinstance(exc, WorkFolderBusy) else 1
    except ValueError as exc:
        print(f"autograde: {exc}")
        return 2
    failed = [r for r in results if r.failed]
    bad = [r for r in results if r.status != "graded" and not r.failed]
    flagged = [r for r in results if r.flags and not r.failed]
    print(f"graded {len(results) - len(failed)} submission(s); {len(bad)} with problems recorded; "
          f"{len(flagged)} flagged for you to look at")
    if failed:
        print(f"NOT GRADED: {len(failed)} submission(s) (failures of the tool, not of the students; no score "
              "recorded, exports leave them out):")
        for r in failed:
            print(f"  {r.student}/{r.assignment}: {r.cause}")
        print("Fix the cause and run the same command again: only these are graded again.")
        return 1
    return 0


def cmd_feedback(args) -> int:
    from . import store
    from .feedback import generate_feedback
    from .util import WorkFolderBusy, work_lock

    from .feedback import LEFT_OUT

    course = _course(args)
    unknown = sorted(set(args.assignments or []) - set(course.assignments()))
    if unknown:
        print(f"feedback: unknown assignment(s) {', '.join(unknown)}: the course has "
              f"{', '.join(course.assignments()) or 'none'} (in {course.solutions})")
        return 2
    problem = _cannot_start(course, "feedback", args.student, args.assignments)
    if problem:
        print(problem)
        return 2
    left_out: list[str] = []
    try:
        with work_lock(course.workdir, "feedback", _wait(args)):
            results = store.read_results(course.gradebook_url, args.assignments or None)
            skipped = [r for r in store.not_final(results) if not args.student or r.student in args.student]
            files = []
            for a in sorted({a for _, a in results}):
                who = [s for (s, aa), r in sorted(results.items()) if aa == a and r.final
                       and (not args.student or s in args.student)]
                if who:   # feedback only for final grades: the rest are listed below
                    files += generate_feedback(course, [a], who)
                    left_out += LEFT_OUT
    except WorkFolderBusy as exc:
        print(str(exc))
        return 4
    except RuntimeError as exc:
        print(str(exc))
        return 1
    for line in left_out:
        print(f"left out: {line}")
    print(f"wrote {len(files)} feedback file(s) under {course.feedback}")
    if skipped:
        print(f"no feedback for {len(skipped)} submission(s) without a final grade:")
        for r in skipped:
            print(f"  {r.student}/{r.assignment}: {r.cause}")
        return 1
    return 0


def cmd_export(args) -> int:
    from . import export

    course = _course(args)
    for a in (args.gradescope_package or []):
        if a not in course.assignments():
            print(f"export: unknown assignment {a!r}: the course has {', '.join(course.assignments()) or 'none'} "
                  f"(in {course.solutions}); check the name or --solutions")
            return 2
    path = export.export_csv(course, args.csv)
    files = export.export_gradescope_results(course)
    flags = export.export_flags(course)
    print(f"grades CSV: {path}")
    print(f"flags for you to look at: {flags}")
    print(f"Gradescope results.json: {len(files)} file(s) under {course.exports / 'gradescope'}")
    mismatch = export.roster_mismatch(course)
    if mismatch:
        print(f"warning: {mismatch}")
    for a in (args.gradescope_package or []):
        print(f"Gradescope autograder ({args.gradescope_isolation} isolation): "
              f"{export.gradescope_package(course, a, isolation=args.gradescope_isolation)}")
    missing = export.incomplete(course)
    if missing:
        print(f"INCOMPLETE: {len(missing)} submission(s) have no final grade (an empty cell in the CSV, no "
              "results.json; never a 0):")
        for s, a, cause in missing:
            print(f"  {s}/{a}: {cause}")
        return 1
    return 0


def cmd_validate(args) -> int:
    from .util import env_path, quiet

    env_path()
    course = _course(args)
    cfg = course.config()
    cfg.Execute.timeout = args.cell_timeout or 60
    cfg.Execute.extra_arguments = ["--IPKernelApp.log_level=ERROR"]
    path = Path(args.notebook)
    if not path.is_file():
        print(f"validate: no such notebook {path}")
        return 2
    validator = _reporting_validator()(config=cfg, invert=args.invert)
    try:
        with quiet():
            results = validator.validate(str(path))
    except Exception as exc:  # noqa: BLE001 - an unreadable notebook is a failed validation
        print(f"validate: {path.name} could not be validated: {type(exc).__name__}: {exc}")
        return 1
    if args.invert and results.get("passed"):
        # hidden test cells are empty in a student's notebook: they "pass" trivially
        results["passed"] = [p for p in results["passed"] if p.get("source", "").strip()]
    problems = {k: v for k, v in results.items() if v}
    if not problems:
        print(f"{path.name}: " + ("every test fails, as a stub should" if args.invert else "all tests pass"))
        return 0
    labels = _exercise_labels(path)
    for kind, items in problems.items():
        for item in items:
            print(_validate_entry(kind, item, labels, validator.reports.get(item.get("source", "").strip())))
    return 1


def _reporting_validator():
    """nbgrader's Validator that also keeps the check reports (``cnnlab.grading.diagnosis``) that
    failing test cells carry, by cell source, for validate to print from data."""
    from nbgrader.validator import Validator

    from cnnlab.grading.diagnosis import report_in

    class ReportingValidator(Validator):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.reports = {}

        def _extract_error(self, cell):
            report = report_in(cell.get("outputs", [])) if cell.cell_type == "code" else None
            if report is not None:
                self.reports[cell.source.strip()] = report
            return super()._extract_error(cell)

    return ReportingValidator


def _exercise_labels(path: Path) -> dict[str, str]:
    """Map each test cell's source to "exercise N: name" (from the cell's grade_id) for validate."""
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception:  # noqa: BLE001 - labels are a nicety
        return {}
    labels, current = {}, ""
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution") and c.cell_type == "code":
            current = meta.get("grade_id", "")
        elif meta.get("grade") and c.cell_type == "code":
            gid = meta.get("grade_id", "")
            labels[c.source.strip()] = f"{current or gid} ({gid})"
    return labels


def _validate_entry(kind: str, item: dict, labels: dict[str, str], report=None) -> str:
    """One failing cell for validate's output: its exercise, then the whole message, indented
    (a course check's message from the report its cell carries, diagnosis included)."""
    import re

    source = item.get("source", "").strip()
    label = labels.get(source) or (source.splitlines()[:1] or ["a cell"])[0]
    error = re.sub(r"\x1b\[[0-9;]*m", "", item.get("raw_error") or item.get("error") or "").strip()
    if report is not None:
        error = report.message
    elif "CheckFailed: " in error:  # a course check without a report: its message is the whole story
        error = error[error.index("CheckFailed: ") + len("CheckFailed: "):]
    elif error:
        error = "\n".join(error.splitlines()[-15:])
    head = {"failed": "FAILED", "passed": "PASSES ON A STUB", "changed": "CHANGED"}.get(kind, kind)
    body = "\n".join("    " + ln for ln in error.splitlines()) if error else ""
    return f"{head}: {label}" + (f"\n{body}" if body else "")


def cmd_similarity(args) -> int:
    """honest: the class similarity report of one assignment (autograder/similarity.py)."""
    from .similarity import similarity

    course = _course(args)
    try:
        report = similarity(course, args.assignment, threshold=args.common)
    except (ValueError, OSError) as exc:
        print(f"similarity: {exc}")
        return 2
    print(f"compared {len(report.students)} submissions of {args.assignment} in {report.seconds:.1f} s")
    for ex in report.exercises:
        top = ex.pairs[0] if ex.pairs else None
        best = f"top pair {top.a} / {top.b} {top.score:.0%}" if top else "no pair shares code beyond the common"
        print(f"  {ex.name:<22} {len(ex.answers):>4} answers, {len(ex.pairs):>5} pairs share code; {best}")
    print(f"report: {report.html_path}")
    print(f"CSV:    {report.csv_path}")
    print("Similarity is a reason to look, never a verdict: read the code side by side.")
    return 0


def cmd_quiz_key(args) -> int:
    """honest: a student's quiz numbers and answers (per-student variants, cnnlab/quiz.py)."""
    from cnnlab import quiz

    course = _course(args)
    students = list(args.students)
    if args.all:
        folder = course.submitted
        students += sorted(d.name for d in folder.iterdir() if (d / args.assignment).is_dir()) if folder.is_dir() else []
    if not students and not args.original:
        print("quiz-key: give student ids, --all (every student with a submission) or --original")
        return 2
    if args.csv:
        from .names import csv_writer

        args.csv.parent.mkdir(parents=True, exist_ok=True)
        rows = ([None] if args.original else []) + students
        with open(args.csv, "w", newline="", encoding="utf-8") as fh:
            w = csv_writer(fh)   # every cell spreadsheet-safe
            questions = list(quiz.answer_key(None, args.assignment))
            w.writerow(["student", *questions])
            for s in rows:
                qs = quiz.variant(s, args.assignment)
                w.writerow([s or "(original)", *[q.answer_text() for q in qs]])
        print(f"answer keys of {len(rows)} variant(s): {args.csv}")
        return 0
    for s in ([None] if args.original else []) + students:
        print(quiz.key_table(s, args.assignment))
        print()
    return 0


def cmd_gradescope_run(args) -> int:
    from .export import NotGraded, gradescope_run

    try:
        data = gradescope_run(args.assignment, args.solutions, args.submission, args.results,
                              unsafe_no_sandbox=args.unsafe_no_sandbox, isolation=args.isolation)
    except NotGraded as exc:
        print(f"cnnlab autograder: {exc}")
        return 1
    print(f"score {data['score']} written to {args.results}")
    return 0


def cmd_demo(args) -> int:
    """Fresh work folder -> release -> collect the sample class -> autograde -> feedback -> export."""
    from . import export
    from .collect import collect_folder
    from .engine import autograde
    from .feedback import generate_feedback
    from .release import LeakError, release
    from .sample_class import DUE, make_class

    t0 = time.monotonic()
    course = _course(args)
    names = args.assignments or course.assignments()
    if not names:
        print(f"demo: no assignments in {course.solutions}")
        return 1
    problem, foreign = _demo_folder(course.workdir)
    if problem:
        print(problem)
        return 2
    print(f"1. release {', '.join(names)} -> {course.notebooks}")
    try:
        release(names, course=course)
    except (LeakError, RuntimeError) as exc:
        print(f"release failed: {exc}")
        return 1
    sample = course.workdir / "sample_class"
    make_class(course.solutions, course.notebooks, sample, names)
    print(f"2. sample class generated from solutions/ into {sample}")
    collect_folder(course, sample, names)
    from .roster import import_roster
    from .sample_class import ROSTER

    import_roster(course, ROSTER)
    set_due_dates(course, [f"{a}={DUE.isoformat()}" for a in names])
    print(f"   collected into {course.submitted} (due {DUE:%Y-%m-%d %H:%M} UTC)")
    print("3. autograde (parallel, sandboxed and limited kernels)")
    from .sandbox import SandboxUnavailable

    try:
        results = autograde(course, None, names, jobs=args.jobs, force=True, progress=not args.no_progress,
                            unsafe_no_sandbox=args.unsafe_no_sandbox)
    except SandboxUnavailable as exc:
        print(f"autograde refused: {exc}")
        return 3
    print("4. feedback")
    try:
        files = generate_feedback(course, names)
    except RuntimeError as exc:
        print(str(exc))
        return 1
    print(f"   {len(files)} HTML file(s) under {course.feedback}")
    print("5. export")
    csv_path = export.export_csv(course)
    gs = export.export_gradescope_results(course)
    pkgs = [export.gradescope_package(course, a) for a in names]
    assignments, table, maxes = export.grade_table(course)
    print()
    w = max([7] + [len(s) for s in table])
    print("student".ljust(w) + "".join(f"{a[:18]:>20}" for a in assignments) + f"{'total':>10}")
    for st in sorted(table):
        row = [table[st].get(a, 0.0) for a in assignments]
        print(st.ljust(w) + "".join(f"{v:>20.2f}" for v in row) + f"{sum(row):>10.2f}")
    print("max".ljust(w) + "".join(f"{maxes[a]:>20.2f}" for a in assignments) + f"{sum(maxes.values()):>10.2f}")
    print()
    status = {r.status for r in results}
    print(f"statuses: {sorted(status)}; {len(results)} submissions in {time.monotonic() - t0:.0f} s")
    print(f"gradebook:   {course.gradebook_url}")
    print(f"autograded:  {course.autograded}")
    print(f"feedback:    {course.feedback}")
    print(f"grades CSV:  {csv_path}")
    print(f"Gradescope:  {len(gs)} results.json under {course.exports / 'gradescope'}; packages {', '.join(p.name for p in pkgs)}")
    _demo_mark(course.workdir, sorted(p.name for p in course.workdir.iterdir()
                                      if p.name not in foreign and p.name != DEMO_MARK))
    return 0


DEMO_MARK = ".cnnlab-demo"
# what a demo makes in its work folder (besides what it records in DEMO_MARK when it finishes)
DEMO_MAKES = ("gradebook.db", "gradebook.db-journal", "submitted", "autograded", "feedback", "exports",
              "sample_class", "roster.csv", "exchange", "replaced", ".work", ".ledger")


def _demo_mark(work: Path, made: list[str]) -> None:
    """Mark ``work`` as the demo's, listing the top-level entries the demo made there and, after a
    ``files:`` line, every file under them as it left them (size, modification time, path)."""
    files = ["files:", *_demo_files(work, made)] if made else []
    (work / DEMO_MARK).write_text("made by `python -m autograder demo`; it may replace these:\n"
                                  + "".join(f"{n}\n" for n in [*made, *files]))


def _demo_files(work: Path, entries) -> list[str]:
    """``size mtime_ns path`` of every file (not folder) under ``work/<entry>`` for ``entries``."""
    out = []
    for n in sorted(entries):
        top = work / n
        for p in [top, *sorted(top.rglob("*"))] if top.is_dir() and not top.is_symlink() else [top]:
            try:
                st = p.lstat()
            except OSError:
                continue
            if not p.is_dir() or p.is_symlink():
                out.append(f"{st.st_size} {st.st_mtime_ns} {p.relative_to(work).as_posix()}")
    return out


def _demo_folder(work: Path) -> tuple[str | None, set[str]]:
    """Make ``work`` ready for the demo without deleting anything the demo did not make.

    A missing or empty folder is made the demo's; a folder an earlier demo made (it holds
    DEMO_MARK) loses what that demo made and keeps anything else; any other folder is refused.
    Return (the refusal or None, the names of the entries the demo did not make).
    """
    resolved = work.resolve()
    if work.is_symlink() or (work / ".git").exists() or resolved in (config.REPO, Path.home(), Path("/")):
        return f"demo: {work} is not a folder the demo may use; give a new folder with --workdir", set()
    if work.exists() and not work.is_dir():
        return f"demo: {work} is a file; give a new folder with --workdir", set()
    if not work.exists():
        work.mkdir(parents=True)
        _demo_mark(work, [])
        return None, set()
    mark = work / DEMO_MARK
    entries = sorted(p.name for p in work.iterdir())
    if not entries:
        _demo_mark(work, [])
        return None, set()
    if not mark.is_file() or mark.is_symlink():
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        return (f"demo: {work} is not empty ({shown}) and the demo did not make it; nothing was changed. "
                "Give a new or empty folder with --workdir"), set()
    lines = mark.read_text(errors="replace").splitlines()[1:]
    cut = lines.index("files:") if "files:" in lines else len(lines)
    recorded = {ln.strip() for ln in lines[:cut] if ln.strip()}
    ours = {n for n in entries if n in recorded or n in DEMO_MAKES or n.startswith(".collect-")}
    if cut < len(lines):   # a finished demo: what it made must be as it left it (a real class collected
        left = set(lines[cut + 1:])                          # into it, a manual grade, is not the demo's)
        changed = sorted(ln.split(" ", 2)[2] for ln in set(_demo_files(work, ours)) - left)
        if changed:
            return (f"demo: {work} holds work the demo did not make ({', '.join(changed[:3])}"
                    f"{', ...' if len(changed) > 3 else ''} changed or added since the demo); nothing was changed. "
                    "Give a new folder with --workdir"), set()
    print(f"demo: replacing the earlier demo in {work}")
    for n in sorted(ours):
        if n in (".", "..") or "/" in n:
            continue
        p = work / n
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()
    kept = [n for n in entries if n not in ours and n != DEMO_MARK]
    if kept:
        print(f"demo: left as they were (the demo did not make them): {', '.join(kept)}")
    _demo_mark(work, [])
    return None, set(kept)


def _wait_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", nargs="?", type=float, const=-1, default=None, metavar="SECONDS",
                   help="when another command is using the work folder, wait for it (as long as it takes, or "
                        "at most SECONDS) instead of stopping at once")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab-grade", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="regenerate notebooks/ from solutions/ and check for leaks")
    _common(p)
    p.add_argument("assignments", nargs="*")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("collect", help="collect submissions from a folder, an LMS zip or nbgrader's exchange")
    _common(p)
    p.add_argument("source", nargs="?", help="folder <student>/<assignment>/*.ipynb or an LMS .zip")
    p.add_argument("--assignments", nargs="*", default=[])
    p.add_argument("--exchange", action="store_true", help="collect from nbgrader's exchange")
    p.add_argument("--exchange-root", default=None)
    p.add_argument("--pattern", default=None,
                   help="regex with (?P<student>) and optionally (?P<assignment>) for file names of a layout "
                        "collect does not know (Canvas, Moodle, Blackboard and nbgrader's are understood)")
    p.add_argument("--due", nargs="*", default=[], metavar="ASSIGNMENT=ISO", help="record due dates")
    p.add_argument("--lms-timezone", default="UTC",
                   help="time zone of the LMS's times that carry none (zip entry times, Blackboard's attempt "
                        "times), e.g. Europe/Berlin (default UTC)")
    p.add_argument("--max-file-mb", type=float, default=64,
                   help="largest notebook taken from a zip or folder, in MiB (default 64)")
    _wait_option(p)
    p.set_defaults(func=cmd_collect)

    p = sub.add_parser("roster", help="import students (id, first/last name, email) from an LMS's CSV export")
    _common(p)
    p.add_argument("csv", type=Path)
    p.add_argument("--id-column", default=None, help="column with the id students submit under")
    p.set_defaults(func=cmd_roster)

    p = sub.add_parser("strip-outputs", help="remove outputs from notebooks (or stdin -> stdout: git filter)")
    p.add_argument("notebooks", nargs="*")
    p.add_argument("--check", action="store_true", help="exit 1 when a notebook had outputs")
    p.set_defaults(func=cmd_strip_outputs)

    p = sub.add_parser("autograde", help="grade submissions in parallel with limited kernels")
    _common(p)
    _limits(p)
    p.add_argument("assignments", nargs="*")
    p.add_argument("--student", nargs="*", default=[])
    p.add_argument("--jobs", "-j", type=int, default=None, help="parallel workers (default: CPU cores + 1)")
    p.add_argument("--force", action="store_true", help="regrade unchanged submissions too")
    p.add_argument("--no-progress", action="store_true")
    _wait_option(p)
    p.set_defaults(func=cmd_autograde)

    p = sub.add_parser("feedback", help="HTML feedback per student and notebook (no hidden tests)")
    _common(p)
    p.add_argument("assignments", nargs="*")
    p.add_argument("--student", nargs="*", default=[])
    _wait_option(p)
    p.set_defaults(func=cmd_feedback)

    p = sub.add_parser("export", help="grades CSV, Gradescope results.json, Gradescope autograder zips")
    _common(p)
    p.add_argument("--csv", type=Path, default=None)
    p.add_argument("--gradescope-package", nargs="*", metavar="ASSIGNMENT")
    p.add_argument("--gradescope-isolation", choices=["sandbox", "container"], default="sandbox",
                   help="the package's isolation of student code: a bubblewrap sandbox in Gradescope's container "
                        "(default; where it cannot start, nothing is graded and the staff see why), or "
                        "Gradescope's per-submission container alone (student code can then read the "
                        "autograder's files, hidden tests included; see the README)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("validate", help="check one notebook; exit 1 when a test fails")
    _common(p)
    p.add_argument("notebook")
    p.add_argument("--invert", action="store_true", help="expect every test to fail (stubs)")
    p.add_argument("--cell-timeout", type=int, default=None)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("demo", help="end-to-end demo on the bundled sample class in a fresh work folder")
    _common(p)
    _limits(p)
    p.add_argument("assignments", nargs="*")
    p.add_argument("--jobs", "-j", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo, workdir=config.DEFAULT_WORKDIR / "demo")

    p = sub.add_parser("similarity", help="rank pairs of submissions by how alike their answer cells are "
                                          "(HTML + CSV under <workdir>/reports; a reason to look, never a verdict)")
    _common(p)
    p.add_argument("assignment")
    p.add_argument("--common", type=int, default=None, metavar="N",
                   help="fingerprints found in at least N submissions are common and ignored "
                        "(default: max(4, 10%% of the submissions))")
    p.set_defaults(func=cmd_similarity)

    p = sub.add_parser("quiz-key", help="print students' quiz numbers and answers (per-student variants of 08)")
    _common(p)
    p.add_argument("students", nargs="*", help="student ids, as the gradebook records them")
    p.add_argument("--assignment", default="08_quiz")
    p.add_argument("--all", action="store_true", help="every student with a submission in the work folder")
    p.add_argument("--original", action="store_true", help="the original numbers (no student id)")
    p.add_argument("--csv", type=Path, default=None, help="write one row of answers per student to this CSV")
    p.set_defaults(func=cmd_quiz_key)

    p = sub.add_parser("gradescope-run", help="(inside Gradescope) grade /autograder/submission")
    p.add_argument("assignment")
    p.add_argument("--solutions", type=Path, required=True)
    p.add_argument("--submission", type=Path, required=True)
    p.add_argument("--results", type=Path, required=True)
    p.add_argument("--unsafe-no-sandbox", action="store_true", help="the same as --isolation container")
    p.add_argument("--isolation", choices=["sandbox", "container"], default="sandbox",
                   help="sandbox (bubblewrap) or container (Gradescope's container alone)")
    p.set_defaults(func=cmd_gradescope_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cnnlab-grade`` and ``python -m autograder``."""
    args = build_parser().parse_args(argv)
    problem = _db_problem(args.db) if getattr(args, "db", None) else None
    if problem:
        print(f"{args.command}: {problem}")
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; run the same command again to resume")
        return 130
    except Exception as exc:  # noqa: BLE001 - a full disk or an unreachable gradebook: one line, no traceback
        message = _clear_error(args, exc)
        if message is None:
            raise
        print(f"{args.command}: {message}")
        return 1


SUPPORTED_DBS = ("The gradebook is SQLite (the default, in the work folder: leave --db out) or PostgreSQL "
                 "(--db postgresql+psycopg://USER@HOST/DATABASE)")


def _db_problem(url: str) -> str | None:
    """One line when ``--db`` names no database this tool can use (not a URL, neither SQLite nor
    PostgreSQL, a driver that SQLAlchemy or this Python lacks); None when it may be used."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    from .store import public_url

    shown = public_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"--db {shown!r} is not a database URL. {SUPPORTED_DBS}."
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend not in ("sqlite", "postgresql"):
        return f"--db {shown}: {backend} is not supported. {SUPPORTED_DBS}."
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        return f"--db {shown}: SQLAlchemy has no driver {driver} for {backend}. {SUPPORTED_DBS}."
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return (f"--db {shown}: its driver {dialect.driver} is not installed ({exc}). {SUPPORTED_DBS}: "
                "psycopg is the driver this tool installs.")
    return None


def _clear_error(args, exc: BaseException) -> str | None:
    """The one-line message for a failure that is the machine's, not a bug (None: not one)."""
    from .store import GradebookUnavailable
    from .util import disk_full_message, is_disk_full

    if is_disk_full(exc):
        return disk_full_message(getattr(exc, "filename", None) or getattr(args, "workdir", None) or Path.cwd())
    if isinstance(exc, GradebookUnavailable):
        return str(exc)
    import sqlalchemy.exc

    if isinstance(exc, (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)) and hasattr(args, "workdir"):
        from .store import unavailable

        return str(unavailable(_course(args).gradebook_url, exc))
    return None


if __name__ == "__main__":
    sys.exit(main())
