"""Submit-to-feedback time of the hub's feedback service (issue 17: goal, median <= 15 s for
05_pooling on 2 cores with 5 students submitting at once).

Five students (two right, two wrong, one blank, from the sample class) submit 05_pooling through
nbgrader's own exchange code within a second; the service (autograder.hub.service, polling every
second, as the hub runs it) grades them in the sandbox and releases their feedback. The time of a
submission is from nbgrader's submit timestamp to the moment its feedback page is in the exchange
(what the student's Assignment List then offers). Rounds repeat with everybody submitting again;
the first round includes the service's first gradebook.

    .venv/bin/python bench/bench_feedback.py [--rounds 3] [--students 5] [--assignment 05_pooling]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--students", type=int, default=5)
    p.add_argument("--assignment", default="05_pooling")
    args = p.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

    import nbformat

    from autograder.config import Course
    from autograder.hub import service, settings
    from autograder.hub.queue import Setting
    from autograder.release import release
    from autograder.sample_class import submission
    from test_hub import Exchange

    a = args.assignment
    tmp = Path(tempfile.mkdtemp(prefix="cnnlab-bench-feedback-"))
    try:
        course = Course(notebooks=tmp / "notebooks", workdir=tmp / "course")
        release([a], course=course)
        ex = Exchange(tmp / "exchange", course)
        ex.release(a)
        sfile = tmp / "autofeedback.json"
        settings.save({a: Setting(enabled=True)}, sfile)
        # the submitters here are names, not Unix accounts: their folders are this process's own
        svc = service.Service(course.with_(workdir=tmp / "autofeedback"), ex.root, settings_file=sfile,
                              uid_of=lambda name: os.getuid(), echo=lambda *_: None)
        rel = nbformat.read(course.notebooks / a / f"{a}.ipynb", as_version=4)
        sol = nbformat.read(course.solutions / a / f"{a}.ipynb", as_version=4)
        kinds = ["reference", "wrong", "blank", "reference", "wrong"]
        students = [f"student{i + 1}" for i in range(args.students)]
        stop = threading.Event()
        worker = threading.Thread(target=svc.run, kwargs={"interval": 1.0, "stop": stop.is_set}, daemon=True)
        worker.start()
        lat_file = svc.course.workdir / "latency.csv"
        seen = 0
        rounds = []
        for r in range(args.rounds):
            load = os.getloadavg()[0]
            for i, s in enumerate(students):
                ex.submit(s, tmp / s, a, submission(kinds[i % len(kinds)], rel, sol, a))
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                rows = lat_file.read_text().splitlines()[1:] if lat_file.exists() else []
                if len(rows) >= seen + len(students):
                    break
                if any(v not in ("graded", "superseded") for v in svc.queue.handled.values()):
                    raise SystemExit(f"a submission was not graded: {svc.queue.handled}")
                time.sleep(0.5)
            rows = lat_file.read_text().splitlines()[1:]
            cols = [row.split(",") for row in rows[seen:seen + len(students)]]
            secs = [float(c[4]) for c in cols]
            stages = sorted((float(c[7]), float(c[8]), float(c[9]), c[0]) for c in cols)
            seen += len(students)
            rounds.append(secs)
            print(f"round {r + 1}: {len(students)} submissions at once, load average {load:.1f} before, "
                  f"{os.getloadavg()[0]:.1f} after: submit-to-feedback "
                  + ", ".join(f"{x:.1f}" for x in sorted(secs)) + f" s; median {statistics.median(secs):.1f} s")
            for ag, fb, rl, who in stages:     # seconds into its batch (each released when it is graded)
                print(f"  {who}: graded at {ag:.1f} s, page at {fb:.1f} s, released at {rl:.1f} s into its batch")
        stop.set()
        worker.join(60)
        every = [x for rr in rounds for x in rr]
        later = [x for rr in rounds[1:] for x in rr]
        print(f"median over all {len(every)}: {statistics.median(every):.1f} s (goal <= 15 s); "
              + (f"after the first round: {statistics.median(later):.1f} s; " if later else "")
              + f"max {max(every):.1f} s; cores: {len(os.sched_getaffinity(0))}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
