"""Time the class similarity report (``python -m autograder similarity``) on a class of N students.

The class is made from notebook 02's records: each student answers every exercise with the
reference solution or one of the record's realistic wrong answers (its bug table), picked at random
(seeded), with a comment of their own added to some lines; every tenth student copies the previous
one's notebook. This is the shape of a real class for the detector: a few answer forms shared by
many (common, dropped), and pairs that share much more.

    .venv/bin/python bench/bench_similarity.py --students 100
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, load_now, machine

import nbformat


def make_class(workdir: Path, students: int, assignment: str = "02_filters", seed: int = 0) -> None:
    from autograder.config import Course
    from cnnlab.checks import registry

    course = Course(workdir=workdir)
    src = nbformat.read(course.solutions / assignment / f"{assignment}.ipynb", as_version=4)
    release = nbformat.read(course.notebooks / assignment / f"{assignment}.ipynb", as_version=4)
    reference = {c.metadata["nbgrader"]["grade_id"]: c.source.replace("    ### BEGIN SOLUTION\n", "").replace(
        "    ### END SOLUTION\n", "").replace("### BEGIN SOLUTION\n", "").replace("### END SOLUTION\n", "")
        for c in src.cells if c.metadata.get("nbgrader", {}).get("solution")}
    pools = {ex.name: [reference[ex.name], *[b.code for b in ex.bugs]] for ex in registry.exercises(assignment)}
    rng = random.Random(seed)
    previous = None
    for n in range(students):
        student = f"student{n:03d}"
        if n % 10 == 9 and previous is not None:
            nb = previous
        else:
            nb = nbformat.reads(nbformat.writes(release), as_version=4)
            for c in nb.cells:
                gid = c.metadata.get("nbgrader", {}).get("grade_id")
                if gid in pools:
                    lines = rng.choice(pools[gid]).split("\n")
                    c.source = "\n".join(ln + (f"  # step {rng.randint(1, 99)}" if ln.strip() and rng.random() < 0.2
                                                and not ln.rstrip().endswith((":", ",", "(", "\\")) else "")
                                         for ln in lines)
        folder = workdir / "submitted" / student / assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{assignment}.ipynb")
        previous = nb


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=100)
    ap.add_argument("--assignment", default="02_filters")
    args = ap.parse_args()
    print(f"machine: {machine()}")
    work = Path(tempfile.mkdtemp(prefix="bench-similarity-"))
    try:
        make_class(work, args.students, args.assignment)
        t0, cpu0 = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run([sys.executable, "-m", "autograder", "similarity", args.assignment, "--workdir", str(work)],
                             cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
        wall = time.monotonic() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        if out.returncode != 0:
            print(out.stdout + out.stderr)
            return 1
        inside = next(ln for ln in out.stdout.splitlines() if ln.startswith("compared"))
        print(inside)
        print(f"{args.students} students x {args.assignment}: {wall:.1f} s wall clock, {cpu:.1f} s of CPU for the "
              f"whole command (imports included); load average at the end {load_now()}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
