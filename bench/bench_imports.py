"""Import time at grading time: cnnlab.checks, every check module, and each notebook's set-up cell.

    python bench/bench_imports.py [--repeat 5] [--no-grading-env]

Each measurement runs in a fresh Python process (what a grading kernel is), ``--repeat`` times;
the figure is the median wall time of the import (or of executing the set-up cell, the first code
cell of ``notebooks/NN_*/NN_*.ipynb``, or of one call of a NumPy function under the integrity
guard), Python's own start excluded. ``NBGRADER_EXECUTION=1`` and
``MPLBACKEND=Agg`` are set as in a grading kernel (``--no-grading-env``: not set). ``import numpy``
alone is measured first, as the floor.

Beside each time: the heavy packages that the import pulled in, each with the module that imported
it (and, when that is not cnnlab's, the cnnlab module or the cell it came through), so that an
import a check does not need is easy to find.

Goal (issue 10): the times are printed; nothing is imported at grading time that a check does not use.
"""

from __future__ import annotations

import argparse
import json
import os
import pkgutil
import statistics
import subprocess
import sys

from _common import REPO, load_now, machine  # noqa: I001 - also puts the repo on sys.path

HEAVY = (
    "torch", "matplotlib", "scipy", "sklearn", "ipywidgets", "IPython", "pandas", "PIL", "tqdm",
    "threadpoolctl", "nbformat", "nbgrader", "hypothesis",
)  # fmt: skip

# Runs in the child: a meta-path hook notes which module first imports each heavy package.
CHILD = r"""
import sys, time, json, importlib.abc
HEAVY = set(json.loads(sys.argv[1]))
who = {}
class Spy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in HEAVY and top not in who and top not in sys.modules:
            f, importer, ours = sys._getframe(1), None, None
            while f is not None:
                mod = f.f_globals.get("__name__") or ""
                if importer is None and not mod.startswith(("importlib", "_frozen")):
                    importer = mod
                if mod.startswith("cnnlab") or mod == "__cell__":
                    ours = mod
                    break
                f = f.f_back
            who[top] = importer if importer == ours else f"{importer}, via {ours}"
        return None
sys.meta_path.insert(0, Spy())
code = sys.argv[2]
start = time.perf_counter()
exec(compile(code, "<cell>", "exec"), {"__name__": "__cell__"})
seconds = time.perf_counter() - start
who = {k: v for k, v in who.items() if k in sys.modules}  # a find_spec() lookup is not an import
print("@@RESULT@@" + json.dumps({"seconds": seconds, "heavy": who}))
"""


# What grading adds around a student's function: the integrity guard around one call.
GUARDED = (
    "import numpy as np\n"
    "from cnnlab.grading.guard import run_guarded\n"
    "run_guarded(lambda x: x + 1, np.ones(3), exercise='demo')\n"
)


def measure(code: str, cwd: str, env: dict[str, str], repeat: int) -> tuple[float, float, dict[str, str]]:
    """(median, max) seconds of executing ``code`` in fresh processes, and the heavy imports."""
    times, heavy = [], {}
    for _ in range(repeat):
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(HEAVY), code],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("@@RESULT@@")), None)
        if proc.returncode != 0 or line is None:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
            raise RuntimeError(f"failed: {tail[0]}")
        result = json.loads(line[len("@@RESULT@@") :])
        times.append(result["seconds"])
        heavy = result["heavy"]
    return statistics.median(times), max(times), heavy


def setup_cells() -> list[tuple[str, str, str]]:
    """(notebook name, its folder, the source of its first code cell) for every student notebook."""
    cells = []
    for nb_path in sorted((REPO / "notebooks").glob("[0-9][0-9]_*/[0-9][0-9]_*.ipynb")):
        nb = json.loads(nb_path.read_text())
        first = next((c for c in nb["cells"] if c["cell_type"] == "code"), None)
        if first is not None:
            source = "".join(first["source"]) if isinstance(first["source"], list) else first["source"]
            cells.append((nb_path.stem, str(nb_path.parent), source))
    return cells


def main(argv: list[str] | None = None) -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-grading-env", action="store_true", help="do not set NBGRADER_EXECUTION=1")
    args = parser.parse_args(argv)

    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    if args.no_grading_env:
        env.pop("NBGRADER_EXECUTION", None)
    else:
        env["NBGRADER_EXECUTION"] = "1"
    print(f"machine: {machine()}")
    print(f"fresh process per measurement, median of {args.repeat}; NBGRADER_EXECUTION={env.get('NBGRADER_EXECUTION', '(unset)')}")
    import cnnlab.checks as checks_pkg

    jobs: list[tuple[str, str, str]] = [("import numpy (floor)", str(REPO), "import numpy"),
                                        ("import cnnlab.checks", str(REPO), "import cnnlab.checks")]  # fmt: skip
    for info in pkgutil.iter_modules(checks_pkg.__path__):
        if not info.name.startswith("_"):
            jobs.append((f"import cnnlab.checks.{info.name}", str(REPO), f"import cnnlab.checks.{info.name}"))
    jobs.append(("one guarded NumPy call", str(REPO), GUARDED))
    jobs += [(f"set-up cell of {name}", cwd, code) for name, cwd, code in setup_cells()]
    width = max(len(j[0]) for j in jobs)
    print(f"{'what':<{width}} {'median':>8} {'max':>8} {'-numpy':>8}  heavy packages imported (by)")
    floor = None
    for label, cwd, code in jobs:
        try:
            med, worst, heavy = measure(code, cwd, env, args.repeat)
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            print(f"{label:<{width}} {'-':>8} {'-':>8} {'-':>8}  {exc}")
            continue
        floor = med if floor is None else floor
        by = ", ".join(f"{pkg} ({src})" for pkg, src in heavy.items()) or "none"
        print(f"{label:<{width}} {med:>7.2f}s {worst:>7.2f}s {max(0.0, med - floor):>7.2f}s  {by}")
    print("-numpy: the median minus that of 'import numpy' (every line but the first imports numpy)")
    print(f"load average at the end: {load_now()}")


if __name__ == "__main__":
    main()
