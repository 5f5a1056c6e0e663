"""Grading speed: plain serial ``nbgrader autograde`` against the course's tool, same class.

    python bench/bench_grading.py [--assignments A ...] [--students 20] [--jobs N] [--rounds 1]
                                  [--sandbox-cost] [--toy]

For every assignment present in solutions/ (or those named), builds a class of ``--students``
submissions (reference, partial, wrong and blank, generated from solutions/), and grades it, in
each round, once with one serial ``nbgrader autograde <assignment>`` process (the course's
configuration: sandboxed kernel, no figures drawn, demonstrations skipped; one fresh kernel at a
time, as formgrader's Autograde does) and once with
``autograder.engine.autograde`` (sandboxed kernels, verifier, a pool of ``--jobs`` workers); with
``--sandbox-cost`` also once with ``--unsafe-no-sandbox``, to measure what the sandbox and the
verifier cost per notebook. Runs are interleaved (plain, tool, unsafe, plain, tool, ...) so that
a change in the machine's load hits both sides.

Prints, against the goals of the performance issue:

- per assignment and round: seconds per submission, plain and tool, and their ratio (goal >= 1.8x
  on every run);
- the projection for a class of 100 students and all eight notebooks on this machine: the tool's
  measured seconds per submission of each present assignment, and for the notebooks not yet in
  solutions/ the mean of the present ones (said so; notebooks that train networks will cost more),
  times 100 students (goal <= 30 min).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from autograder import engine  # noqa: E402
from autograder.collect import collect_folder  # noqa: E402
from autograder.config import Course, Limits  # noqa: E402
from autograder.release import release  # noqa: E402
from autograder.sample_class import make_class  # noqa: E402

KINDS = ("reference", "partial", "wrong", "blank")
NOTEBOOKS_IN_COURSE = 8
GOAL_RATIO = 1.8
GOAL_MINUTES = 30.0
CLASS = 100


def plain_nbgrader(course: Course, assignment: str, root: Path, tag: str) -> float:
    """Seconds for one serial `nbgrader autograde` run over the class (after generate_assignment),
    with the course's configuration (its sandboxed kernel, figures not drawn, demonstrations
    skipped); serial means one freshly started kernel at a time, as nbgrader's own Execute does."""
    cdir = root / f"plain-{tag}"
    cdir.mkdir()
    (cdir / "nbgrader_config.py").write_text(
        "from autograder.config import course_config\n"
        f"c.merge(course_config({str(cdir)!r}, solutions={str(course.solutions)!r}, "
        f"release_directory={str(root / 'plain_release')!r}))\n"
        f"c.Execute.timeout = {course.limits.cell_timeout}\n")
    shutil.copytree(course.submitted, cdir / "submitted")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=str(REPO))
    nbg = [sys.executable, "-m", "nbgrader"]
    subprocess.run([*nbg, "generate_assignment", assignment, "--force"], cwd=cdir, env=env,
                   capture_output=True, check=True)
    t0 = time.monotonic()
    out = subprocess.run([*nbg, "autograde", assignment, "--force", "--create"], cwd=cdir, env=env,
                         capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if out.returncode != 0:
        print("nbgrader autograde failed:", out.stderr[-500:])
    shutil.rmtree(cdir, ignore_errors=True)
    return seconds


def tool(course: Course, jobs: int, unsafe: bool) -> tuple[float, list]:
    t0 = time.monotonic()
    results = engine.autograde(course, jobs=jobs, force=True, progress=False, echo=lambda *_: None,
                               unsafe_no_sandbox=unsafe)
    return time.monotonic() - t0, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", nargs="*", default=None, help="default: every assignment in solutions/")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=None, help="tool workers (default: the tool's own, cores + 1)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--sandbox-cost", action="store_true", help="also grade without sandbox, interleaved")
    parser.add_argument("--no-plain", action="store_true", help="skip serial nbgrader (projection only)")
    parser.add_argument("--toy", action="store_true", help="use the test fixture course (fast)")
    args = parser.parse_args()
    args.jobs = args.jobs or engine.default_jobs()

    solutions = REPO / "tests" / "fixtures" / "toy" / "solutions" if args.toy else REPO / "solutions"
    root = Path(tempfile.mkdtemp(prefix="cnnlab-bench-"))
    per_nb: dict[str, list[float]] = {}
    ratios: list[float] = []
    sandbox_cost: list[float] = []
    try:
        base = Course(solutions=solutions, notebooks=root / "release", workdir=root / "tool",
                      limits=Limits(cell_timeout=120, notebook_timeout=600))
        names = args.assignments or base.assignments()
        load = os.getloadavg()[0]
        print(f"{os.cpu_count()} cores, load average {load:.1f}, tool jobs={args.jobs}, {args.students} students, "
              f"assignments {names}, {args.rounds} round(s); baseline: serial nbgrader, one fresh kernel at a time")
        if load > (os.cpu_count() or 1):
            print("WARNING: the load average exceeds the cores: other processes share them, so wall-clock "
                  "ratios and the projection say little about an idle machine")
        print(f"{'assignment':<20}{'round':>6}{'plain s/nb':>12}{'tool s/nb':>11}{'ratio':>8}"
              f"{'unsafe s/nb':>13}{'sandbox+verifier s/nb':>23}")
        for a in names:
            course = base.with_(workdir=root / f"tool-{a}")
            release([a], course=course)
            copies = -(-args.students // len(KINDS))
            cls = root / f"class-{a}"
            try:
                make_class(solutions, course.notebooks, cls, [a], kinds=KINDS, copies=copies)
            except Exception as exc:  # noqa: BLE001 - e.g. an assignment whose records are not written yet
                print(f"{a:<20}skipped: its sample class cannot be built ({type(exc).__name__}: {exc})")
                continue
            for extra in sorted(p.name for p in cls.iterdir())[args.students:]:
                shutil.rmtree(cls / extra)
            collect_folder(course, cls)
            n = len(list(cls.iterdir()))
            for r in range(args.rounds):
                plain = None if args.no_plain else plain_nbgrader(course, a, root, f"{a}-{r}")
                secs, results = tool(course, args.jobs, unsafe=False)
                per_nb.setdefault(a, []).append(secs / n)
                unsafe = tool(course, args.jobs, unsafe=True)[0] if args.sandbox_cost else None
                ratio = plain / secs if plain else None
                if ratio:
                    ratios.append(ratio)
                if unsafe:
                    # wall seconds per notebook with jobs workers -> CPU-seconds of one notebook
                    sandbox_cost.append((secs - unsafe) * args.jobs / n)
                print(f"{a:<20}{r + 1:>6}{(plain / n) if plain else float('nan'):>12.2f}{secs / n:>11.2f}"
                      f"{ratio or float('nan'):>7.2f}x{(unsafe / n) if unsafe else float('nan'):>13.2f}"
                      f"{sandbox_cost[-1] if unsafe else float('nan'):>+23.2f}")
            scores = sorted({(x.student.rstrip("0123456789"), x.score) for x in results})
            print(f"{'':<20}grades: {scores}; statuses {sorted({x.status for x in results})}")
        print()
        if ratios:
            print(f"speed-up over serial nbgrader: min {min(ratios):.2f}x, median {statistics.median(ratios):.2f}x "
                  f"(goal >= {GOAL_RATIO}x on every run: {'met' if min(ratios) >= GOAL_RATIO else 'NOT met'})")
        if sandbox_cost:
            print(f"sandbox + verifier cost: {statistics.median(sandbox_cost):+.2f} s of one core per notebook "
                  f"(median of {len(sandbox_cost)} interleaved runs; range {min(sandbox_cost):+.2f} .. "
                  f"{max(sandbox_cost):+.2f})")
        measured = {a: statistics.median(v) for a, v in per_nb.items()}
        mean = statistics.mean(measured.values())
        missing = max(0, NOTEBOOKS_IN_COURSE - len(measured)) if not args.toy else 0
        total = sum(measured.values()) * CLASS + missing * mean * CLASS
        print(f"projection: {CLASS} students x {NOTEBOOKS_IN_COURSE} notebooks on this machine (jobs={args.jobs}): "
              f"{total / 60:.1f} min (goal <= {GOAL_MINUTES:.0f} min: {'met' if total / 60 <= GOAL_MINUTES else 'NOT met'})")
        print("  from " + ", ".join(f"{a} {v:.2f} s/nb" for a, v in measured.items())
              + (f"; the {missing} notebook(s) not measured (not in solutions/ yet, or not asked for) counted at the mean {mean:.2f} s/nb "
                 "(an estimate: notebooks that train networks cost more)" if missing else ""))
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
