"""Grading an instructor can trust, with real sandboxed kernels (issue 20): a kernel killed from
outside is graded again and counts as if never killed, a student's own crash stays the student's
0, a full disk mid-run gives errors (no 0 anywhere) and a re-run the uninterrupted grades, and two
runs on one work folder never damage each other.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from autograder import engine, store
from autograder.collect import collect_folder
from autograder.config import Course, Limits
from autograder.release import release
from autograder.sample_class import make_class

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]
FIXTURES = Path(__file__).parent / "fixtures" / "toy" / "solutions"
A = "00_toy"
UNINTERRUPTED = {"reference": 6.0, "partial": 3.0, "blank": 0.0}   # the toy class, graded undisturbed
ENV = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("released")
    release([A], course=Course(solutions=FIXTURES, notebooks=root / "nb", workdir=root / "w"))
    return root / "nb"


def _course(work: Path, released: Path, cell_timeout: int = 10) -> Course:
    return Course(solutions=FIXTURES, notebooks=released, workdir=work,
                  limits=Limits(cell_timeout=cell_timeout, notebook_timeout=120, memory_mb=3072))


def _cli(course: Course, *args, timeout: int = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args), "--workdir", course.workdir,
                           "--solutions", course.solutions, "--notebooks", course.notebooks],
                          capture_output=True, text=True, env=ENV, timeout=timeout)


def _grades(course: Course) -> dict[str, str]:
    return {r["student"]: r[A] for r in csv.DictReader(open(course.exports / "grades.csv")) if r["student"] != "max"}


# ----------------------------------------------------------------------------- kernels killed

WAIT_CELL = """\
import signal
with open("/proc/self/comm", "w") as fh:      # a name the test can find the kernel by, from outside
    fh.write("{name}")
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
print("resumed" if signal.sigtimedwait([signal.SIGUSR1], 50) else "not resumed")
"""
CRASH_CELL = "import ctypes\nctypes.string_at(0)   # the student's own code crashes its kernel (a real fault)"
FSETSIG_CELL = """\
import fcntl, os, time   # the review's attack: Linux sends SIGKILL as the pipe's "input ready" signal
r, w = os.pipe()
fcntl.fcntl(r, 10, 9)    # F_SETSIG: SIGKILL
fcntl.fcntl(r, fcntl.F_SETOWN, os.getpid())
fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)
os.write(w, b"x")
time.sleep(0.5)
"""


def _with_cell(nb, source: str):
    """``nb`` with a cell of the student's own, after the scale tests (3 of the 6 points)."""
    nb = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    gids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    nb.cells.insert(gids.index("test_scale_hidden") + 1, nbformat.v4.new_code_cell(source))
    return nb


class Killer(threading.Thread):
    """Finds kernels by their process name: SIGKILLs the first ``kills`` (from outside, as an
    admin's ``kill`` or the OOM killer would), lets every later one go on (SIGUSR1)."""

    def __init__(self, name: str, kills: int = 1) -> None:
        super().__init__(daemon=True)
        self.name, self.seen, self.done, self.kills = name, [], threading.Event(), kills

    def run(self) -> None:
        while not self.done.is_set():
            for comm in Path("/proc").glob("[0-9]*/comm"):
                try:
                    if comm.read_text().strip() != self.name:
                        continue
                    pid = int(comm.parent.name)
                except (OSError, ValueError):
                    continue
                if pid in self.seen:
                    continue
                self.seen.append(pid)
                with_signal = signal.SIGKILL if len(self.seen) <= self.kills else signal.SIGUSR1
                try:
                    os.kill(pid, with_signal)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)


def test_a_kernel_killed_from_outside_is_graded_again_and_a_students_own_crash_is_theirs(tmp_path, released):
    course = _course(tmp_path / "work", released, cell_timeout=60)
    make_class(FIXTURES, released, tmp_path / "class", [A], kinds=("reference",))
    ref = nbformat.read(tmp_path / "class" / "reference" / A / f"{A}.ipynb", as_version=4)
    name, twice = f"cnl{uuid.uuid4().hex[:10]}", f"cnl{uuid.uuid4().hex[:10]}"
    for student, cell in (("interrupted", WAIT_CELL.format(name=name)), ("own_crash", CRASH_CELL),
                          ("killed_twice", WAIT_CELL.format(name=twice)),
                          ("self_kill", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)"),
                          ("exit_137", "import ctypes\nctypes.CDLL(None)._exit(137)   # what bubblewrap reports for a SIGKILL"),
                          ("sigio_kill", FSETSIG_CELL)):
        (tmp_path / "class" / student / A).mkdir(parents=True)
        nbformat.write(_with_cell(ref, cell), tmp_path / "class" / student / A / f"{A}.ipynb")
    collect_folder(course, tmp_path / "class")
    killers = [Killer(name), Killer(twice, kills=2)]
    for k in killers:
        k.start()
    try:
        results = {r.student: r for r in engine.autograde(course, jobs=2, progress=False, echo=lambda *_: None)}
    finally:
        for k in killers:
            k.done.set()
            k.join()
    assert len(killers[0].seen) == 2, "the waiting kernel should have run twice (killed, then let go)"
    assert len(killers[1].seen) == 2, "the other waiting kernel should have run twice (killed both times)"
    k = results["killed_twice"]     # at the same cell both times, and still not the student's crash
    assert k.failed and "killed from outside the sandbox" in k.cause, k.summary()
    s = results["self_kill"]        # the student's code cannot SIGKILL its kernel: an error in the cell
    assert s.status == "graded" and s.score == 6.0 and not s.deaths, s.summary()
    f = results["sigio_kill"]       # nor have Linux send it SIGKILL (it is process 1 of its namespace)
    assert f.status == "graded" and f.score == 6.0 and not f.deaths, f.summary()
    e = results["exit_137"]         # nor pass for a SIGKILL by its exit status: its own crash
    assert e.status == "graded" and e.score == 3.0, e.summary()
    assert any("same place in two runs" in p for p in e.problems), e.problems
    assert "SIGSYS" in e.cells[f"{A}/test_corr1d_public"][2] or "not run" in e.cells[f"{A}/test_corr1d_public"][2]
    r = results["interrupted"]
    assert r.status == "graded" and r.final and r.score == 6.0, r.summary()
    assert r.cells == results["reference"].cells                      # as if it had never been killed
    assert any("killed from outside" in p for p in r.problems), r.problems
    c = results["own_crash"]
    assert c.status == "graded" and c.score == 3.0, c.summary()        # the student's crash: their 0s
    assert any("same place in two runs" in p for p in c.problems), c.problems
    assert "kernel died" in c.cells[f"{A}/test_corr1d_public"][2].lower() or \
        "not run" in c.cells[f"{A}/test_corr1d_public"][2].lower(), c.cells
    stored = store.read_results(course.gradebook_url)
    assert {s: (x.score, x.final) for (s, _), x in stored.items()} == {
        "reference": (6.0, True), "interrupted": (6.0, True), "own_crash": (3.0, True), "killed_twice": (0.0, False),
        "self_kill": (6.0, True), "exit_137": (3.0, True), "sigio_kill": (6.0, True)}


# ----------------------------------------------------------------------------- a full disk mid-run

def _mount_tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip()}")


def _fill(path: Path) -> Path:
    import errno

    filler = path / "filler.bin"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    fh.write(b"\0" * chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def test_a_disk_that_fills_up_mid_run_gives_errors_and_a_rerun_the_uninterrupted_grades(tmp_path, released):
    course = _course(tmp_path / "work", released)
    make_class(FIXTURES, released, tmp_path / "class", [A], kinds=tuple(UNINTERRUPTED))
    collect_folder(course, tmp_path / "class")
    graded = course.workdir / "autograded"
    _mount_tmpfs(graded, "1m")        # where the graded notebooks go: full when they are written
    try:
        filler = _fill(graded)
        out = _cli(course, "autograde", "--no-progress", "-j", "2")
        text = out.stdout + out.stderr
        assert out.returncode == 1, text
        assert "Traceback" not in text, text
        assert f"disk full: no space left on the file system at {graded}" in text, text
        assert "NOT GRADED: 3 submission(s)" in text and "disk full" in text.split("NOT GRADED")[1], text
        out = _cli(course, "export")
        assert out.returncode == 1 and "INCOMPLETE: 3 submission(s)" in out.stdout, out.stdout
        assert _grades(course) == {s: "" for s in UNINTERRUPTED}       # no 0 for anyone
        assert not list((course.exports / "gradescope").rglob("results.json"))
        assert list(graded.rglob("*")) == [filler]                     # nothing half-written left
        filler.unlink()
        out = _cli(course, "autograde", "--no-progress", "-j", "2")
        assert out.returncode == 0, out.stdout + out.stderr
        out = _cli(course, "export")
        assert out.returncode == 0, out.stdout
        assert _grades(course) == {s: f"{v}" for s, v in UNINTERRUPTED.items()}
    finally:
        subprocess.run(["umount", "-l", str(graded)], check=False)


# ----------------------------------------------------------------------------- two runs at once

def test_two_runs_on_one_work_folder_never_damage_each_other(tmp_path, released):
    course = _course(tmp_path / "work", released)
    kinds = ("reference", "partial", "blank", "wrong", "syntax", "messy")
    make_class(FIXTURES, released, tmp_path / "class", [A], kinds=kinds)
    collect_folder(course, tmp_path / "class")
    lock = course.workdir / ".cnnlab-run.lock"
    first = subprocess.Popen([sys.executable, "-m", "autograder", "autograde", "--no-progress", "-j", "2",
                              "--workdir", course.workdir, "--solutions", FIXTURES, "--notebooks", released],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            with __import__("contextlib").suppress(OSError, ValueError):
                if json.loads(lock.read_text() or "{}").get("pid") == first.pid:
                    break
            time.sleep(0.05)
        assert first.poll() is None, "the first run ended before the second could start"
        runs = list((course.workdir / ".work").glob("run-*"))
        second = _cli(course, "autograde", "--no-progress")
        assert second.returncode == 4, second.stdout + second.stderr
        assert f"in use by `autograde` (pid {first.pid}" in second.stdout, second.stdout
        assert all(r.exists() for r in runs)              # the first run's folder was not touched
        waiting = _cli(course, "autograde", "--no-progress", "--wait")   # queues behind the first
        out, _ = first.communicate(timeout=900)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, out
    assert waiting.returncode == 0, waiting.stdout + waiting.stderr
    # (it waited, or started after the first had finished: either way it found the first's grades;
    # the waiting itself is tested without timing in test_grading_trust.py)
    assert f"{len(kinds)} submission(s) unchanged" in waiting.stdout, waiting.stdout
    results = store.read_results(course.gradebook_url)
    assert all(r.final and r.status == "graded" for r in results.values()), [r.summary() for r in results.values()]
    alone = _course(tmp_path / "alone", released)
    collect_folder(alone, tmp_path / "class")
    once = {r.student: r.cells for r in engine.autograde(alone, jobs=2, progress=False, echo=lambda *_: None)}
    assert {s: r.cells for (s, _), r in results.items()} == once       # the same grades as one run
    for s in kinds:                                                      # and no file lost
        assert (course.autograded / s / A / f"{A}.ipynb").is_file()
