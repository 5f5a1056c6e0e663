"""Grading speed: plain serial ``nbgrader autograde`` against the course's tool, same class.

    python bench/bench_grading.py [--assignment 02_filters] [--students 20] [--jobs 2] [--toy]

Builds a 20-student class (reference, partial, wrong and blank submissions generated from
solutions/), grades it once with ``nbgrader autograde <assignment>`` (one process, serial) and
once with ``autograder.engine.autograde`` (a pool of pre-forked workers, limited kernels), then
prints seconds per submission side by side, the ratio, and the tool's per-notebook overhead
beyond the notebook's own compute (one plain nbclient execution of the reference notebook).
"""

from __future__ import annotations

import argparse
import os
import shutil
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


def own_compute(course: Course, assignment: str, submission: Path) -> float:
    """Seconds for nbclient to execute one submission (kernel start included), no grading."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(submission, as_version=4)
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        t0 = time.monotonic()
        NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(course.solutions / assignment)}}).execute()
        return time.monotonic() - t0
    finally:
        os.environ.pop("NBGRADER_EXECUTION", None)


def plain_nbgrader(course: Course, assignment: str, root: Path) -> float:
    """Seconds for one serial `nbgrader autograde` run over the class (after generate_assignment)."""
    cdir = root / "plain"
    cdir.mkdir()
    (cdir / "nbgrader_config.py").write_text(
        "from autograder.config import course_config\n"
        f"c.merge(course_config({str(cdir)!r}, solutions={str(course.solutions)!r}, "
        f"release_directory={str(root / 'plain_release')!r}))\n"
        f"c.Execute.timeout = {course.limits.cell_timeout}\n")
    shutil.copytree(course.submitted, cdir / "submitted")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    nbg = [sys.executable, "-m", "nbgrader"]
    subprocess.run([*nbg, "generate_assignment", assignment, "--force"], cwd=cdir, env=env,
                   capture_output=True, check=True)
    t0 = time.monotonic()
    out = subprocess.run([*nbg, "autograde", assignment, "--force", "--create"], cwd=cdir, env=env,
                         capture_output=True, text=True)
    seconds = time.monotonic() - t0
    if out.returncode != 0:
        print("nbgrader autograde failed:", out.stderr[-500:])
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignment", default=None, help="default: the first assignment in solutions/")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--toy", action="store_true", help="use the test fixture course (fast)")
    args = parser.parse_args()

    solutions = REPO / "tests" / "fixtures" / "toy" / "solutions" if args.toy else REPO / "solutions"
    root = Path(tempfile.mkdtemp(prefix="cnnlab-bench-"))
    try:
        course = Course(solutions=solutions, notebooks=root / "release", workdir=root / "tool",
                        limits=Limits(cell_timeout=120, notebook_timeout=600))
        assignment = args.assignment or course.assignments()[0]
        release([assignment], course=course)
        copies = -(-args.students // len(KINDS))
        make_class(solutions, course.notebooks, root / "class", [assignment], kinds=KINDS, copies=copies)
        students = sorted(p.name for p in (root / "class").iterdir())[:args.students]
        for extra in sorted(p.name for p in (root / "class").iterdir())[args.students:]:
            shutil.rmtree(root / "class" / extra)
        collect_folder(course, root / "class")
        n = len(students)
        compute = own_compute(course, assignment, course.submitted / students[0] / assignment / f"{assignment}.ipynb")
        plain = plain_nbgrader(course, assignment, root)
        t0 = time.monotonic()
        results = engine.autograde(course, jobs=args.jobs, force=True, progress=False, echo=lambda *_: None)
        tool = time.monotonic() - t0
        per_nb = sum(r.seconds for r in results) / max(len(results), 1)
        print(f"assignment {assignment}, {n} submissions, {os.cpu_count()} cores, tool jobs={args.jobs}")
        print(f"{'':28}{'plain nbgrader':>16}{'cnnlab tool':>14}{'ratio':>8}")
        print(f"{'total seconds':28}{plain:>16.1f}{tool:>14.1f}{plain / tool:>8.2f}x")
        print(f"{'seconds per submission':28}{plain / n:>16.2f}{tool / n:>14.2f}{plain / tool:>8.2f}x")
        print(f"own compute of one notebook (nbclient, kernel start included): {compute:.2f} s")
        print(f"tool: wall seconds per notebook inside a worker {per_nb:.2f} s; overhead beyond own compute "
              f"{per_nb - compute:+.2f} s")
        print(f"grades: {sorted({(r.student.rstrip('0123456789'), r.score) for r in results})}")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
