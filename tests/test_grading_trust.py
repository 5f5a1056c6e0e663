"""Grading an instructor can trust (issue 20): one store that every export reads, failures that are
never grades, one run per work folder, clear errors.

These tests start no sandbox and no kernel: the grading of one submission
(``engine.grade_submission``) is replaced by a scripted one, in the worker processes the engine
forks, so that what is tested is what the engine does with the outcomes (retry, settle, record,
export, exit codes). ``tests/test_grading_trust_slow.py`` does the same with real kernels killed
from outside and a real full disk.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from autograder import cli, engine, export, store
from autograder.collect import collect_folder
from autograder.config import Course, Limits
from autograder.release import release
from autograder.store import Result

FIXTURES = Path(__file__).parent / "fixtures" / "toy" / "solutions"
A = "00_toy"
POINTS = {"test_scale_public": 1.0, "test_scale_hidden": 2.0, "test_corr1d_public": 1.0, "test_corr1d_hidden": 2.0}
REPO = Path(__file__).resolve().parent.parent
ENV = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
           PYTHONPATH=str(REPO))


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("released")
    release([A], course=Course(solutions=FIXTURES, notebooks=root / "nb", workdir=root / "w"))
    return root / "nb"


def _course(tmp_path: Path, released: Path, **kw) -> Course:
    return Course(solutions=FIXTURES, notebooks=released, workdir=tmp_path / "work",
                  limits=Limits(cell_timeout=10, notebook_timeout=60, memory_mb=3072), **kw)


def _collect(course: Course, released: Path, students, root: Path) -> None:
    for s in students:
        d = root / "class" / s / A
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{A}.ipynb").write_bytes((released / A / f"{A}.ipynb").read_bytes())
        (d / "timestamp.txt").write_text("2024-01-01 10:00:00.000000 UTC")
    collect_folder(course, root / "class")


def _scripted(monkeypatch, folder: Path, plan: dict[str, list[str]]) -> None:
    """Replace the grading of one submission by ``plan[student][attempt]``:

    ``ok`` (every point), ``half`` (the scale tests only: 3 of 6), ``infra`` (the tool failed:
    a kernel that did not start), ``enospc`` (the disk filled up), ``kill-worker`` (the worker
    process is killed), ``die@N`` (full points, but the kernel died at cell N: the engine grades
    again to tell the student's crash from a kill from outside), ``kill@N`` (the same, but the
    kernel was killed from outside its sandbox: SIGKILL, which nothing inside can send),
    ``crash@N`` (the same, but the submission's code is known to have ended the kernel). Attempts are counted in files,
    across the forked workers.
    """
    folder.mkdir(parents=True, exist_ok=True)

    def fake(course, template, student, assignment, sub_dir, protect=None, sandboxed=True):
        counter = folder / f"{student}.count"
        n = int(counter.read_text()) if counter.exists() else 0
        counter.write_text(str(n + 1))
        steps = plan[student]
        step = steps[min(n, len(steps) - 1)]
        res = Result(student, assignment)
        if step == "kill-worker":
            os.kill(os.getpid(), signal.SIGKILL)
        if step == "infra":
            engine.fail(res, "RuntimeError: Kernel didn't respond in 60 seconds", "nbgrader's autograde failed")
        elif step == "enospc":
            engine.fail(res, OSError(errno.ENOSPC, "No space left on device", str(course.autograded)))
        else:
            half = step == "half"
            res.cells = {f"{A}/{g}": [0.0 if half and "corr1d" in g else p, p, ""] for g, p in POINTS.items()}
            if step.startswith(("die@", "kill@", "crash@")):
                res.deaths = [f"{A}/{step.split('@')[1]}"]
                res.ended_by = {"die": "unknown", "kill": "outside", "crash": "itself"}[step.split("@")[0]]
            rel = template.release / assignment
            res.output_hash = engine.publish(rel, course.autograded / student / assignment, [f"{A}.ipynb"])
        if res.failed:
            res.cells = {f"{A}/{g}": [0.0, p, "not graded"] for g, p in POINTS.items()}
        res.max_score = sum(v[1] for v in res.cells.values())
        res.score = 0.0 if res.failed else sum(v[0] for v in res.cells.values())
        return res

    monkeypatch.setattr(engine, "grade_submission", fake)


def _cli(course: Course, capsys, *args) -> tuple[int, str]:
    rc = cli.main([*map(str, args), "--workdir", str(course.workdir), "--solutions", str(course.solutions),
                   "--notebooks", str(course.notebooks)])
    out = capsys.readouterr()
    return rc, out.out + out.err


def _csv(course: Course) -> dict[str, dict[str, str]]:
    return {r["student"]: r for r in csv.DictReader(open(course.exports / "grades.csv"))}


PLAN = {
    "good": ["ok"],
    "flaky": ["infra", "ok"],                # the tool failed once: graded on the second try
    "broken": ["infra", "infra"],            # failed twice: an error, never a grade
    "killed_once": ["kill-worker", "ok"],    # its worker killed from outside once
    "killed_twice": ["kill-worker"],         # ... twice: crashed
    "own_crash": ["die@5", "die@5"],         # the kernel dies at the same cell twice: the student's
    "outside_kill": ["die@5", "half"],       # dies once, then runs through: killed from outside
    "random_crash": ["die@5", "die@7"],      # dies at different cells: cannot tell, an error
}
NOT_GRADED = {"broken", "killed_twice", "random_crash"}


def test_a_failure_of_the_tool_is_never_a_grade(tmp_path, released, monkeypatch, capsys):
    course = _course(tmp_path, released)
    _collect(course, released, PLAN, tmp_path)
    _scripted(monkeypatch, tmp_path / "attempts", PLAN)
    rc, out = _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "-j", "2", "--no-progress")
    assert rc == 1, out
    assert "Traceback" not in out
    lines = [ln.strip() for ln in out.splitlines() if ln.startswith("  ") and "/00_toy: " in ln]
    assert sorted(ln.split("/")[0] for ln in lines) == sorted(NOT_GRADED), out
    named = {ln.split("/")[0]: ln for ln in lines}
    assert "Kernel didn't respond" in named["broken"] and "tried twice" in named["broken"]
    assert "killed the grader's worker process twice" in named["killed_twice"]
    assert "cannot be told" in named["random_crash"]
    attempts = {p.stem: int(p.read_text()) for p in (tmp_path / "attempts").glob("*.count")}
    assert attempts == {"good": 1, "flaky": 2, "broken": 2, "killed_once": 2, "killed_twice": 2, "own_crash": 2,
                        "outside_kill": 2, "random_crash": 2}

    # the gradebook holds no score for them: no auto score, "needs manual grade" (formgrader shows it)
    from nbgrader.api import Gradebook

    with Gradebook(course.gradebook_url, "cnnlab") as gb:
        for s in NOT_GRADED:
            grades = [g for nb in gb.find_submission(A, s).notebooks for g in nb.grades]
            assert grades and all(g.auto_score is None and g.needs_manual_grade for g in grades), s
        assert gb.find_submission(A, "own_crash").score == 6      # the student's own crash: as graded
        assert gb.find_submission(A, "outside_kill").score == 3   # the second, uninterrupted grading

    rc, out = _cli(course, capsys, "export")
    assert rc == 1 and "INCOMPLETE: 3 submission(s)" in out, out
    rows = _csv(course)
    assert {s: rows[s][A] for s in PLAN} == {"good": "6.0", "flaky": "6.0", "killed_once": "6.0", "own_crash": "6.0",
                                            "outside_kill": "3.0", "broken": "", "killed_twice": "", "random_crash": ""}
    assert all(rows[s]["total"] == "" for s in NOT_GRADED)
    gs = course.exports / "gradescope"
    assert sorted(p.parent.parent.name for p in gs.rglob("results.json")) == sorted(set(PLAN) - NOT_GRADED)
    flags = list(csv.DictReader(open(course.exports / "flags.csv")))
    assert {f["student"] for f in flags if f["flag"].startswith("not graded: ")} == NOT_GRADED
    rc, out = _cli(course, capsys, "feedback")
    assert rc == 1 and "no feedback for 3 submission(s) without a final grade" in out, out
    assert not any((course.feedback / s).exists() for s in NOT_GRADED)

    # fixed: a re-run grades only those three; every export is complete
    fixed = {s: ["ok"] for s in PLAN}
    for p in (tmp_path / "attempts").glob("*.count"):
        p.unlink()
    _scripted(monkeypatch, tmp_path / "attempts", fixed)
    rc, out = _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "-j", "2", "--no-progress")
    assert rc == 0, out
    assert "5 submission(s) unchanged since last graded" in out
    assert sorted(p.stem for p in (tmp_path / "attempts").glob("*.count")) == sorted(NOT_GRADED)
    rc, out = _cli(course, capsys, "export")
    assert rc == 0, out
    assert {s: _csv(course)[s][A] for s in NOT_GRADED} == {s: "6.0" for s in NOT_GRADED}


def test_a_kernel_killed_from_outside_is_never_the_students_crash(tmp_path, released, monkeypatch, capsys):
    """The review's attack: every kernel killed from outside after the same delay dies at the same
    cell twice, which passed for the student's own crash (a correct submission got 0). A kernel
    that ends by SIGKILL without its memory limit was killed from outside (nothing in its sandbox
    can send SIGKILL: inside/nokill.py), and that is never the student's."""
    plan = {"killed_twice": ["kill@5", "kill@5"], "killed_then_own": ["kill@5", "die@7"],
            "own_then_killed": ["die@5", "kill@5"], "own_twice": ["die@5", "die@5"],
            "crashes_wander": ["crash@5", "crash@7"]}    # the review: its own crash at a different cell each time
    course = _course(tmp_path, released)
    _collect(course, released, plan, tmp_path)
    _scripted(monkeypatch, tmp_path / "attempts", plan)
    rc, out = _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "-j", "2", "--no-progress")
    assert rc == 1, out
    named = {ln.strip().split("/")[0]: ln for ln in out.split("NOT GRADED:")[-1].splitlines() if "/00_toy: " in ln}
    assert set(named) == {"killed_twice", "own_then_killed"}, out
    assert "its kernel was killed from outside the sandbox at 00_toy/5" in named["killed_twice"], out
    assert "run autograde again" in named["own_then_killed"], out
    results = store.read_results(course.gradebook_url)
    assert results[("killed_then_own", A)].final and results[("own_twice", A)].final
    assert "after it had been killed from outside at 00_toy/5" in " ".join(results[("killed_then_own", A)].problems)
    assert "same place in two runs" in " ".join(results[("own_twice", A)].problems)
    assert results[("crashes_wander", A)].final, results[("crashes_wander", A)].cause
    assert ("the submission's code ended its kernel at 00_toy/7 (in the first run at 00_toy/5): the submission's "
            "own crash") in " ".join(results[("crashes_wander", A)].problems)
    fixed = {s: ["ok"] for s in plan}
    for p in (tmp_path / "attempts").glob("*.count"):
        p.unlink()
    _scripted(monkeypatch, tmp_path / "attempts", fixed)
    assert _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "-j", "2", "--no-progress")[0] == 0
    assert _cli(course, capsys, "export")[0] == 0
    assert {s: _csv(course)[s][A] for s in ("killed_twice", "own_then_killed")} == {"killed_twice": "6.0",
                                                                                   "own_then_killed": "6.0"}


def test_a_regrade_that_fails_keeps_the_grade_of_the_same_files(tmp_path, released, monkeypatch, capsys):
    course = _course(tmp_path, released)
    _collect(course, released, ["alice"], tmp_path)
    _scripted(monkeypatch, tmp_path / "a1", {"alice": ["half"]})
    assert _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")[0] == 0
    _scripted(monkeypatch, tmp_path / "a2", {"alice": ["infra"]})
    rc, out = _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress", "--force")
    assert rc == 1 and "its earlier grade, of the same files, stands" in out, out
    assert _cli(course, capsys, "export")[0] == 0
    assert _csv(course)["alice"][A] == "3.0"


def test_a_full_disk_stops_the_run_and_names_the_cause(tmp_path, released, monkeypatch, capsys):
    course = _course(tmp_path, released)
    students = ["a_first", "b", "c"]
    _collect(course, released, students, tmp_path)
    _scripted(monkeypatch, tmp_path / "attempts", {"a_first": ["enospc"], "b": ["ok"], "c": ["ok"]})
    rc, out = _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "-j", "1", "--no-progress")
    assert rc == 1 and "Traceback" not in out
    assert "disk full: no space left on the file system at" in out and "run the same command again" in out
    assert sorted(p.stem for p in (tmp_path / "attempts").glob("*.count")) == ["a_first"]   # tried once, then stopped
    assert "a_first/00_toy: disk full" in out and "b/00_toy: the run stopped" in out, out
    results = store.read_results(course.gradebook_url)
    assert not any(r.final for r in results.values())


def test_a_manual_grade_in_formgrader_reaches_every_export_and_the_feedback(tmp_path, released, monkeypatch, capsys):
    """The one store: a score entered in formgrader (nbgrader's API, as formgrader's grade handler
    writes it) is what grades.csv, results.json and the feedback page show."""
    from nbgrader.api import Gradebook

    course = _course(tmp_path, released)
    _collect(course, released, ["alice", "bob"], tmp_path)
    _scripted(monkeypatch, tmp_path / "attempts", {"alice": ["half"], "bob": ["ok"]})
    assert _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")[0] == 0
    with Gradebook(course.gradebook_url, "cnnlab") as gb:       # nbgrader's GradeHandler.put, line for line
        grade = gb.find_grade("test_corr1d_hidden", A, A, "alice")
        grade.manual_score = 2.0
        grade.extra_credit = None
        if grade.manual_score is None and grade.auto_score is None:
            grade.needs_manual_grade = True
        else:
            grade.needs_manual_grade = False
        gb.db.commit()
    rc, out = _cli(course, capsys, "export")
    assert rc == 0, out
    assert _csv(course)["alice"][A] == "5.0" and _csv(course)["alice"]["total"] == "5.0"
    res = json.loads((course.exports / "gradescope" / "alice" / A / "results.json").read_text())
    assert res["score"] == 5.0
    test = next(t for t in res["tests"] if t["name"] == "test_corr1d_hidden")
    assert test["score"] == 2.0 and test["status"] == "passed" and "by the instructor" in test["output"]
    rc, out = _cli(course, capsys, "feedback")
    assert rc == 0, out
    from autograder.feedback import html_text

    page = html_text((course.feedback / "alice" / A / f"{A}.html").read_text())
    assert "Score: 5.0 / 6.0" in " ".join(page.split()), page[:2000]


def test_collected_but_not_graded_is_not_a_zero(tmp_path, released, monkeypatch, capsys):
    course = _course(tmp_path, released)
    _collect(course, released, ["alice"], tmp_path)
    _scripted(monkeypatch, tmp_path / "attempts", {"alice": ["ok"]})
    assert _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")[0] == 0
    _collect(course, released, ["bob"], tmp_path)          # collected after the run
    rc, out = _cli(course, capsys, "export")
    assert rc == 1 and "bob/00_toy: collected but not graded yet" in out
    assert _csv(course)["bob"][A] == "" and _csv(course)["alice"][A] == "6.0"


# ----------------------------------------------------------------------------- one run per work folder

HOLDER = textwrap.dedent("""
    import sys, time
    from autograder.util import work_lock, run_folder
    with work_lock(sys.argv[1], "autograde"), run_folder(sys.argv[1]) as run:
        (run / "mine.txt").write_text("in use")
        print(run, flush=True)
        sys.stdin.readline()          # hold the folder until the test says so
""")


def _holder(workdir: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(workdir)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=ENV)
    run = Path(proc.stdout.readline().strip())
    assert run.is_dir(), "the holder did not start"
    return proc, run


def test_a_second_command_on_a_busy_work_folder_is_refused_and_deletes_nothing(tmp_path, released, capsys):
    course = _course(tmp_path, released)
    _collect(course, released, ["alice"], tmp_path)
    proc, run = _holder(course.workdir)
    try:
        for cmd in (["autograde", "--unsafe-no-sandbox"], ["feedback"], ["collect", str(tmp_path / "class")]):
            rc, out = _cli(course, capsys, *cmd)
            assert rc == 4, out
            assert f"is in use by `autograde` (pid {proc.pid}" in out and "--wait" in out, out
            assert "Traceback" not in out
        assert (run / "mine.txt").read_text() == "in use"          # the first run's folder is untouched
        assert (course.submitted / "alice" / A / f"{A}.ipynb").exists()
    finally:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=60)
    assert not run.exists()                                        # its owner removed it


def test_wait_queues_behind_the_other_command(tmp_path):
    from autograder.util import work_lock

    proc, run = _holder(tmp_path / "w")
    said = []
    import threading

    got = threading.Event()

    def second():
        with work_lock(tmp_path / "w", "feedback", wait=None, echo=said.append):
            got.set()

    t = threading.Thread(target=second)
    t.start()
    try:
        assert not got.wait(1.0)          # (a lower bound only: it must not get the folder while held)
        assert said and "waiting for `autograde`" in said[0] and str(proc.pid) in said[0]
    finally:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=60)
    t.join(timeout=60)
    assert got.is_set()


def test_a_killed_holder_releases_the_folder_and_its_run_folder_is_removed(tmp_path):
    from autograder.util import remove_stale_run_folders, work_lock

    proc, run = _holder(tmp_path / "w")
    other = tmp_path / "w" / ".work" / "template-old"      # not a run folder of this version: never touched
    other.mkdir()
    foreign = tmp_path / "w" / ".work" / f"run-{os.getpid()}-0-0123456789ab-x"   # another machine's run
    foreign.mkdir()
    assert remove_stale_run_folders(tmp_path / "w") == [] and run.exists()     # its owner lives
    proc.kill()
    proc.wait()
    with work_lock(tmp_path / "w", "autograde", wait=0):    # the kernel released the dead owner's lock
        assert remove_stale_run_folders(tmp_path / "w") == [run]
    assert other.exists() and foreign.exists()


def test_the_lock_is_reentrant_within_a_process(tmp_path):
    from autograder.util import work_lock

    with work_lock(tmp_path, "demo"):
        with work_lock(tmp_path, "autograde", wait=0):      # demo runs autograde under its own lock
            pass
        out = subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path)], input="\n", capture_output=True,
                             text=True, env=ENV, timeout=120)
        assert out.returncode != 0 and "WorkFolderBusy" in out.stderr and "`demo`" in out.stderr, out.stderr
    out = subprocess.run([sys.executable, "-c", HOLDER, str(tmp_path)], input="\n", capture_output=True,
                         text=True, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr


# ----------------------------------------------------------------------------- clear errors

def _run(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=300, **kw)


@pytest.mark.slow   # the commands in fresh processes, as an instructor runs them
def test_an_unreachable_gradebook_is_one_clear_line(tmp_path, released):
    url = "postgresql+psycopg://grader:secret@127.0.0.1:9/nowhere"
    for cmd in (["export"], ["autograde", "--unsafe-no-sandbox"]):
        if cmd[0] == "autograde":
            c = _course(tmp_path, released)
            _collect(c, released, ["alice"], tmp_path)
        out = _run(*cmd, "--workdir", tmp_path / "work", "--solutions", FIXTURES, "--notebooks", released, "--db", url)
        text = out.stdout + out.stderr
        assert out.returncode == 1, text
        assert "Traceback" not in text and "secret" not in text, text
        assert "cannot open the gradebook postgresql+psycopg://grader:***@127.0.0.1:9/nowhere" in text, text
        assert "check --db" in text.lower()


def test_unknown_assignment_in_export_is_a_clear_error(tmp_path, released):
    out = _run("export", "--workdir", tmp_path / "w", "--solutions", FIXTURES, "--notebooks", released,
               "--gradescope-package", "99_nope")
    assert out.returncode == 2 and "unknown assignment '99_nope'" in out.stdout and "00_toy" in out.stdout
    assert "Traceback" not in out.stdout + out.stderr


def _tmpfs(path: Path, size: str):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")


def _fill(path: Path) -> Path:
    """Fill the file system of ``path`` to the last byte; return the filler file."""
    filler = path / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


@pytest.mark.slow   # the commands in fresh processes, as an instructor runs them
def test_a_full_disk_at_start_is_two_lines_not_a_traceback(tmp_path, released):
    work = tmp_path / "work"
    _tmpfs(work, "8m")
    try:
        course = _course(tmp_path, released)
        _collect(course, released, ["alice", "bob"], tmp_path)
        filler = _fill(work)
        out = _run("autograde", "--unsafe-no-sandbox", "--no-progress", "--workdir", work, "--solutions", FIXTURES,
                   "--notebooks", released)
        text = (out.stdout + out.stderr).strip()
        assert out.returncode == 1, text
        assert "Traceback" not in text and "nbgrader db upgrade" not in text, text
        assert f"disk full: no space left on the file system at {work}" in text, text
        assert len([ln for ln in text.splitlines() if not ln.startswith("WARNING: grading without a sandbox")]) <= 2
        filler.unlink()
        out = _run("export", "--workdir", work, "--solutions", FIXTURES, "--notebooks", released)
        assert out.returncode == 1 and "alice/00_toy: collected but not graded yet" in out.stdout, out.stdout
        assert {r["student"]: r[A] for r in csv.DictReader(open(work / "exports" / "grades.csv"))
                if r["student"] != "max"} == {"alice": "", "bob": ""}
    finally:
        subprocess.run(["umount", "-l", str(work)], check=False)


def test_publish_never_leaves_a_truncated_notebook(tmp_path):
    """On a full disk the graded folder is left as it was (the old notebooks, whole), never half-written."""
    dest = tmp_path / "mnt" / "autograded" / "alice" / A
    _tmpfs(tmp_path / "mnt", "1m")
    try:
        dest.mkdir(parents=True)
        (dest / f"{A}.ipynb").write_text('{"old": "whole"}')
        src = tmp_path / "graded"
        src.mkdir()
        (src / f"{A}.ipynb").write_bytes(b'{"new": "' + b"x" * 600_000 + b'"}')
        filler = tmp_path / "mnt" / "filler.bin"
        filler.write_bytes(b"\0" * 700_000)
        with pytest.raises(OSError) as exc:
            engine.publish(src, dest, [f"{A}.ipynb"])
        assert exc.value.errno == errno.ENOSPC
        assert (dest / f"{A}.ipynb").read_text() == '{"old": "whole"}'
        assert sorted(p.name for p in dest.parent.iterdir()) == [A]        # no staging folder left
        filler.unlink()
        digest = engine.publish(src, dest, [f"{A}.ipynb"])
        assert (dest / f"{A}.ipynb").read_bytes() == (src / f"{A}.ipynb").read_bytes()
        assert digest == store.published_digest(dest)
    finally:
        subprocess.run(["umount", "-l", str(tmp_path / "mnt")], check=False)


def test_a_missing_graded_notebook_is_graded_again(tmp_path, released, monkeypatch, capsys):
    """The issue's empty autograded folder: a re-run does not skip a submission whose published
    notebooks are gone or changed."""
    course = _course(tmp_path, released)
    _collect(course, released, ["alice"], tmp_path)
    _scripted(monkeypatch, tmp_path / "a1", {"alice": ["ok"]})
    assert _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")[0] == 0
    (course.autograded / "alice" / A / f"{A}.ipynb").unlink()
    _scripted(monkeypatch, tmp_path / "a2", {"alice": ["ok"]})
    rc, out = _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")
    assert rc == 0 and "unchanged" not in out, out
    assert (tmp_path / "a2" / "alice.count").read_text() == "1"
    assert nbformat.read(course.autograded / "alice" / A / f"{A}.ipynb", as_version=4).cells


def test_the_cause_is_the_error_nbgrader_logged_not_its_pointer_to_a_traceback():
    """nbgrader's output ends with "Please see the the above traceback ..." (the old one-line
    cause, pointing at a traceback nobody was shown); the cause is the error it logged."""
    log = textwrap.dedent("""\
        [ERROR] There was an error processing assignment: /w/submitted/ada/00_toy
        [ERROR] Traceback (most recent call last):
          File "/venv/nbclient/client.py", line 600, in async_start_new_kernel_client
            await ensure_async(self.kc.wait_for_ready(timeout=self.startup_timeout))
        RuntimeError: Kernel didn't respond in 60 seconds
        [ERROR] There was an error processing assignment '00_toy' for student 'ada'
        [ERROR] Please see the the above traceback for details on the specific errors on the above failures.
        Traceback (most recent call last):
        nbgrader.converters.base.NbGraderException: Please see the the above traceback for details""")
    assert engine.cause_line(log) == "RuntimeError: Kernel didn't respond in 60 seconds"
    res = Result("ada", A)
    engine.fail(res, log, "nbgrader's autograde failed")
    assert res.cause == "nbgrader's autograde failed: RuntimeError: Kernel didn't respond in 60 seconds"
    assert res.retryable and "above traceback" not in res.cause
    assert engine.cause_line("[ERROR] Please see the the above traceback\n[ERROR] odd failure\n") == "[ERROR] odd failure"


def test_a_gradebook_that_fails_while_recording_is_an_error_not_a_grade(tmp_path, released, monkeypatch, capsys):
    import sqlalchemy.exc

    """A write that fails is tried once more (a database that was busy or restarting a moment):
    carol's first write fails and she is graded; bob's fails twice and he is not graded."""
    course = _course(tmp_path, released)
    _collect(course, released, ["alice", "bob", "carol"], tmp_path)
    _scripted(monkeypatch, tmp_path / "attempts", {"alice": ["ok"], "bob": ["ok"], "carol": ["half"]})
    monkeypatch.setattr(engine, "RECORD_RETRY_SECONDS", 0.0)
    real = store.record
    tries: dict[str, int] = {}

    def flaky(url, res, keep_grade=False):
        tries[res.student] = tries.get(res.student, 0) + 1
        if res.student == "bob" or (res.student == "carol" and tries["carol"] == 1):
            raise sqlalchemy.exc.OperationalError("UPDATE grade", {}, Exception("server closed the connection"))
        return real(url, res, keep_grade)

    monkeypatch.setattr(store, "record", flaky)
    rc, out = _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")
    assert rc == 1 and "Traceback" not in out
    assert ("bob/00_toy: could not write the gradebook: (builtins.Exception) server closed the connection "
            "[tried twice]") in out, out
    assert tries == {"alice": 1, "bob": 2, "carol": 2}
    assert "carol/" not in out.split("NOT GRADED:")[-1], out
    monkeypatch.setattr(store, "record", real)
    rc, out = _cli(course, capsys, "export")
    assert rc == 1 and "bob/00_toy: collected but not graded yet" in out, out
    assert _csv(course)["bob"][A] == "" and _csv(course)["alice"][A] == "6.0" and _csv(course)["carol"][A] == "3.0"


def test_the_summary_line_escapes_a_students_control_characters():
    """A student's text reaches the instructor's terminal in autograde's summary (an error message, an
    ignored notebook's name): an escape sequence there could clear the screen or set the clipboard."""
    evil = "x\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J"
    for status in ("graded", "error"):
        res = Result("alice", "01_history", status=status, problems=[f"ignored notebooks: ['{evil}.ipynb']"],
                     cause=f"your function raised {evil}" if status == "error" else "")
        line = res.summary()
        assert "\x1b" not in line and "\x07" not in line, line
        assert "\\u001b]52;c;cm0gLXJmIH4=\\u0007" in line


def test_on_result_sees_each_recorded_result_while_the_class_is_graded(tmp_path, released, monkeypatch):
    """The hub's feedback service releases a student's feedback from ``on_result``, before the rest
    of the batch is done: each result arrives once, already recorded in the store, and a caller's
    exception is reported without stopping the class."""
    plan = {"good": ["ok"], "broken": ["infra", "infra"], "late": ["ok"]}
    course = _course(tmp_path, released)
    _collect(course, released, plan, tmp_path)
    _scripted(monkeypatch, tmp_path / "attempts", plan)
    seen: list[tuple[str, str, float | None]] = []
    said: list[str] = []

    def on_result(res):
        stored = store.read_results(course.gradebook_url).get((res.student, A))
        seen.append((res.student, stored.status, stored.score if stored.final else None))
        if res.student == "good":
            raise RuntimeError("the caller's own trouble")

    results = engine.autograde(course, jobs=1, progress=False, echo=said.append, unsafe_no_sandbox=True,
                               on_result=on_result)
    assert sorted(seen) == [("broken", "error", None), ("good", "graded", 6.0), ("late", "graded", 6.0)]
    assert sorted(r.student for r in results) == ["broken", "good", "late"]
    assert any("after good/00_toy: RuntimeError: the caller's own trouble" in s for s in said), said


def test_scores_changed_outside_autograde_are_not_final_until_it_grades_them(tmp_path, released, monkeypatch, capsys):
    """formgrader's Autograde (nbgrader's autograde, without the trusted verifier) rewrites the auto
    scores of a submission the CLI graded: the exports do not count them (they could hold points
    the verifier withdrew) until the course's autograde has graded it again; a manual score stays
    final."""
    from nbgrader.api import Gradebook

    course = _course(tmp_path, released)
    _collect(course, released, ["alice", "bob"], tmp_path)
    _scripted(monkeypatch, tmp_path / "attempts", {"alice": ["half"], "bob": ["half"]})
    assert _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")[0] == 0
    with Gradebook(course.gradebook_url, "cnnlab") as gb:
        gb.find_grade("test_corr1d_hidden", A, A, "alice").auto_score = 2.0   # as nbgrader's autograde writes it
        gb.find_grade("test_corr1d_hidden", A, A, "bob").manual_score = 2.0   # as formgrader's Manual Grading does
        gb.db.commit()
    rc, out = _cli(course, capsys, "export")
    assert rc == 1, out
    assert "alice/00_toy: its scores were changed outside the course's autograde" in out, out
    assert _csv(course)["alice"][A] == "" and _csv(course)["alice"]["total"] == ""
    assert not (course.exports / "gradescope" / "alice" / A / "results.json").exists()
    assert _csv(course)["bob"][A] == "5.0"
    rc, out = _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")   # grades alice again
    assert rc == 0 and "1 submission(s) unchanged" in out, out
    assert _cli(course, capsys, "export")[0] == 0
    assert _csv(course)["alice"][A] == "3.0" and _csv(course)["bob"][A] == "5.0"
    with Gradebook(course.gradebook_url, "cnnlab") as gb:      # a row of an older tool, without its scores
        row = gb.db.execute(store.table().select().where(store.table().c.student == "alice")).first()
        data = json.loads(row.data)
        data.pop("auto")
        gb.db.execute(store.table().update().where(store.table().c.student == "alice").values(data=json.dumps(data)))
        gb.db.commit()
    rc, out = _cli(course, capsys, "export")
    assert rc == 1 and "alice/00_toy: graded by an older version of the tool" in out, out


def test_nbgraders_logged_error_reaches_the_cause_while_grading_is_quiet():
    """nbgrader hands back what it logged (``capture_log``): the grading's ``quiet(errors=True)``
    lets the ERROR records through to it, where a plain ``quiet()`` (logging disabled) left only
    nbgrader's "Please see the above traceback" and the cause was a line of code."""
    import logging

    from nbgrader.converters.base import NbGraderException
    from nbgrader.utils import capture_log

    from autograder.util import quiet

    class App:
        log = logging.getLogger("cnnlab-test-app")

        def start(self):
            self.log.error("Traceback (most recent call last):\n  File \"client.py\", line 207, in wait_for_ready\n"
                           "    RuntimeError: Kernel died before replying to kernel_info")   # as nbgrader logs it
            self.log.warning("a warning nobody needs")
            raise NbGraderException("Please see the the above traceback for details")

    with quiet(errors=True) as text:
        out = capture_log(App())
    assert "Kernel died before replying" in out["log"] and "warning" not in out["log"]
    assert engine.cause_line("\n".join([out["error"], out["log"], text.getvalue()])) == \
        "RuntimeError: Kernel died before replying to kernel_info"
    with quiet():
        assert "log" not in capture_log(App())       # what grading got before


def test_export_warns_when_the_roster_and_the_submissions_do_not_meet(tmp_path, released, monkeypatch, capsys):
    """The review: a roster imported after collect listed its students with 0 next to the ids the
    submissions were collected under, and export said nothing."""
    from autograder.roster import import_roster

    course = _course(tmp_path, released)
    _collect(course, released, ["jose_alvarez", "ada"], tmp_path)
    _scripted(monkeypatch, tmp_path / "attempts", {"jose_alvarez": ["ok"], "ada": ["ok"]})
    assert _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")[0] == 0
    rc, out = _cli(course, capsys, "export")
    assert rc == 0 and "warning" not in out, out                 # no roster: nothing to compare
    roster = tmp_path / "roster.csv"
    roster.write_text("id,first_name,last_name,email\n1009,José,Álvarez,ja@example.edu\nada,Ada,Lovelace,\n")
    import_roster(course, roster)
    rc, out = _cli(course, capsys, "export")
    assert rc == 0, out
    assert ("warning: 1 student(s) with submissions are not on the roster (jose_alvarez) and 1 on the roster "
            "have none (1009): the CSV lists both.") in out, out
    roster.write_text("id,first_name,last_name,email\njose_alvarez,José,Álvarez,\nada,Ada,Lovelace,\n")
    import_roster(course, roster)
    rc, out = _cli(course, capsys, "export")                     # (1009 stays on the saved roster: merged)
    assert "with submissions are not on the roster" not in out, out


def test_formgraders_autograde_refuses_a_busy_work_folder(tmp_path):
    """The review: formgrader's Autograde (nbgrader's autograde with the course's configuration)
    took no lock and ran beside the course's autograde. Its kernel step holds the work folder: it
    refuses while a course command holds it, and starts no kernel."""
    from nbgrader.utils import capture_log  # noqa: F401  (nbgrader imported as formgrader has it)

    from autograder.config import course_config
    from autograder.execute import GuardedExecute
    from autograder.util import WorkFolderBusy

    work = tmp_path / "work"
    cfg = course_config(work)
    assert cfg.GuardedExecute.work_folder == str(work.resolve())
    ex = GuardedExecute(config=cfg)
    started = []
    ex.setup_kernel = lambda **kw: started.append(1)       # (no kernel in this test)
    proc, run = _holder(work)
    try:
        with pytest.raises(WorkFolderBusy, match=r"nbgrader's autograde \(formgrader's Autograde\): the work "
                                                 r"folder .* is in use by `autograde` \(pid .*\)\. Nothing was changed\. Autograde it "
                                                 r"again when that one has finished\.$"):
            ex.preprocess(nbformat.v4.new_notebook(), {})
        assert not started and (run / "mine.txt").read_text() == "in use"     # nothing of the holder's touched
    finally:
        proc.communicate("\n", timeout=30)
