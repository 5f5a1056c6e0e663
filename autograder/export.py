"""Export grades: a CSV for any LMS, Gradescope results.json files, a Gradescope autograder zip.

- ``grades.csv``: one row per student, one column per assignment (its score: autograded points,
  or the instructor's manual score where one was given), then ``total``; a last ``max`` row.
- ``gradescope/<student>/<assignment>/results.json``: Gradescope's results format, one test per
  graded cell (score, max_score, status, the check's message).
- ``gradescope_<assignment>.zip``: a Gradescope autograder (``setup.sh``, ``run_autograder``, the
  course packages and the assignment's source) that grades with this same tool.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

from . import config
from .config import Course
from .names import csv_writer  # names: every CSV cell through names.csv_cell
from .util import quiet


def grade_table(course: Course) -> tuple[list[str], dict[str, dict[str, float]], dict[str, float]]:
    """Return (assignments, {student: {assignment: score}}, {assignment: max score})."""
    from nbgrader.api import Gradebook

    table: dict[str, dict[str, float]] = {}
    maxes: dict[str, float] = {}
    with quiet(), Gradebook(course.gradebook_url, config.COURSE_ID) as gb:
        names = sorted(a.name for a in gb.assignments)
        for a in gb.assignments:
            maxes[a.name] = float(a.max_score)
        for st in gb.students:
            table[st.id] = {}
        for a in names:
            for sub in gb.assignment_submissions(a):
                table.setdefault(sub.student.id, {})[a] = round(float(sub.score), 4)
    return names, table, maxes


def export_csv(course: Course, path: Path | None = None) -> Path:
    """Write the grade CSV (see the module docstring); return its path."""
    names, table, maxes = grade_table(course)
    path = Path(path or course.exports / "grades.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv_writer(fh)  # names: spreadsheet-safe cells (CSV injection), see autograder/names.py
        w.writerow(["student", *names, "total"])
        for st in sorted(table):
            row = [table[st].get(a, 0.0) for a in names]
            w.writerow([st, *row, round(sum(row), 4)])
        w.writerow(["max", *[maxes[a] for a in names], sum(maxes[a] for a in names)])
    return path


def results_json(cells: dict, score: float | None = None, output: str = "", seconds: float = 0.0) -> dict:
    """Gradescope's results.json for one submission from ``{"nb/grade_id": [score, max, msg]}``."""
    tests = []
    for key, (pts, mx, msg) in cells.items():
        tests.append({"name": key.split("/", 1)[-1], "score": pts, "max_score": mx,
                      "status": "passed" if pts >= mx else "failed",
                      "output": msg or ("passed" if pts >= mx else ""), "visibility": "visible"})
    total = sum(t["score"] for t in tests) if score is None else score
    return {"score": total, "execution_time": round(seconds, 2), "output": output,
            "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def public_text(text: str, course: Course) -> str:
    """``text`` without the instructor's paths (work folder, sources, repository, home) and
    without anything that looks like a traceback of the tool."""
    import re

    for root in sorted({str(course.workdir), str(course.solutions), str(course.notebooks), str(config.REPO),
                        str(Path.home())}, key=len, reverse=True):
        if root and root != "/":
            text = text.replace(root, "<course>")
    text = re.sub(r"Traceback \(most recent call last\):.*", "(details for the instructor only)", text, flags=re.S)
    return re.sub(r'File "[^"]+", line \d+', "", text)


def _note(res, course: Course) -> str:
    return public_text(f"status: {res.status}" + (f"; {'; '.join(res.problems)}" if res.problems else ""), course)


def export_gradescope_results(course: Course) -> list[Path]:
    """Write one results.json per graded submission from the ledger; return the files."""
    from .engine import read_ledger

    files = []
    for (student, assignment), res in sorted(read_ledger(course).items()):
        out = course.exports / "gradescope" / student / assignment / "results.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        cells = {k: [v[0], v[1], public_text(v[2] or "", course)] for k, v in res.cells.items()}
        out.write_text(json.dumps(results_json(cells, res.score, _note(res, course), res.seconds), indent=1))
        files.append(out)
    return files


def export_flags(course: Course, path: Path | None = None) -> Path:
    """Write ``flags.csv`` (student, assignment, flag): what the instructor should look at
    (possible tampering, static-scan findings, submissions that crash the grader)."""
    from .engine import read_ledger

    path = Path(path or course.exports / "flags.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv_writer(fh)  # names: spreadsheet-safe cells (CSV injection), see autograder/names.py
        w.writerow(["student", "assignment", "flag"])
        for (student, assignment), res in sorted(read_ledger(course).items()):
            for f in res.flags:
                w.writerow([student, assignment, f])
    return path


SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image (Ubuntu 22.04 by default, whose
# python3 is 3.10: nbgrader 0.9.6 needs Python >= 3.11, so a 3.11 comes from the deadsnakes PPA).
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
cd "$ROOT/source"
export DEBIAN_FRONTEND=noninteractive
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1; }
find_python() {
  for cand in python3.13 python3.12 python3.11 python3; do
    if command -v "$cand" >/dev/null 2>&1 && ok "$cand"; then command -v "$cand"; return 0; fi
  done
  return 1
}
PY=$(find_python || true)
if [ -z "$PY" ]; then
  echo "setup.sh: no Python >= 3.11 here; installing python3.11 (apt, then the deadsnakes PPA)"
  apt-get update -qq || true
  if ! apt-get install -y -qq python3.11 python3.11-venv >/dev/null 2>&1; then
    apt-get install -y -qq software-properties-common >/dev/null 2>&1       && add-apt-repository -y ppa:deadsnakes/ppa >/dev/null 2>&1       && apt-get update -qq       && apt-get install -y -qq python3.11 python3.11-venv >/dev/null 2>&1 || true
  fi
  PY=$(find_python || true)
fi
if [ -z "$PY" ]; then
  echo "setup.sh: FAILED: cnnlab's autograder needs Python >= 3.11 (nbgrader 0.9.6 requires it)," >&2
  echo "  and none could be installed (python3 here: $(python3 --version 2>&1 || echo none))." >&2
  echo "  Use Gradescope's Ubuntu 22.04 base image with the deadsnakes PPA reachable, or a base" >&2
  echo "  image that has python3.11." >&2
  exit 1
fi
echo "setup.sh: using $PY ($("$PY" --version 2>&1))"
"$PY" -m venv "$ROOT/venv"
PIP="$ROOT/venv/bin/python -m pip install -q --disable-pip-version-check"
$PIP --upgrade pip
# PyTorch's CPU build: PyPI's torch wheel for Linux is the CUDA build (gigabytes, no GPU here)
TORCH=$(grep -E '^torch==' requirements-lock.txt | cut -d= -f3 || true)
$PIP "torch==${TORCH:-2.13.0}" --index-url https://download.pytorch.org/whl/cpu
if [ -f requirements-lock.txt ]; then $PIP -r requirements-lock.txt; fi
$PIP --no-deps -e .
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade it with the course's own autograder.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PY="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
export PATH="$(dirname "$PY"):$PATH"
cd "$ROOT/source"
# CNNLAB_UNSAFE_NO_SANDBOX=1 grades where Gradescope's container cannot start bubblewrap
# (the container then is the only isolation)
UNSAFE=""; [ "${{CNNLAB_UNSAFE_NO_SANDBOX:-0}}" = 1 ] && UNSAFE="--unsafe-no-sandbox"
"$PY" -m autograder gradescope-run {assignment} --solutions "$ROOT/source/solutions" \\
    --submission "$ROOT/submission" --results "$ROOT/results/results.json" $UNSAFE
"""


def gradescope_package(course: Course, assignment: str, path: Path | None = None) -> Path:
    """Build the Gradescope autograder zip for ``assignment``; return its path."""
    course.source_notebooks(assignment)
    path = Path(path or course.exports / f"gradescope_{assignment}.zip")
    path.parent.mkdir(parents=True, exist_ok=True)
    repo = config.REPO

    def add_tree(zf: zipfile.ZipFile, src: Path, arc: str) -> None:
        for p in sorted(src.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc"):
                zf.write(p, f"{arc}/{p.relative_to(src)}")

    def add_exec(zf: zipfile.ZipFile, name: str, text: str) -> None:
        info = zipfile.ZipInfo(name)
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(info, text)

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        add_exec(zf, "setup.sh", SETUP_SH)
        add_exec(zf, "run_autograder", RUN_AUTOGRADER.format(assignment=assignment))
        for pkg in ("cnnlab", "autograder"):
            add_tree(zf, repo / pkg, pkg)
        for f in ("pyproject.toml", "requirements-lock.txt", "README.md"):
            if (repo / f).is_file():
                zf.write(repo / f, f)
        add_tree(zf, course.solutions / assignment, f"solutions/{assignment}")
    return path


def gradescope_run(assignment: str, solutions: Path, submission: Path, results: Path,
                   unsafe_no_sandbox: bool = False) -> dict:
    """Grade a Gradescope submission folder (any notebook in it) and write results.json.

    Where no sandbox can start, results.json says so (score 0) unless ``unsafe_no_sandbox``.
    """
    import tempfile

    from .engine import grade_one
    from .sandbox import SandboxUnavailable

    work = Path(tempfile.mkdtemp(prefix="gradescope-"))
    course = Course(solutions=solutions, notebooks=work / "release", workdir=work / "course")
    sub = work / "sub"
    sub.mkdir()
    expected = [p.name for p in course.source_notebooks(assignment)]
    found = sorted(Path(submission).rglob("*.ipynb"))
    for name in expected:
        match = [p for p in found if p.name == name] or found[:1]
        if match:
            shutil.copyfile(match[0], sub / name)
    # honest (quiz variants): Gradescope does not know the id a student worked under, so its grading
    # uses the quiz's original numbers (cnnlab.quiz; CNNLAB_QUIZ_VARIANTS=on in the image overrides)
    variants = os.environ.get("CNNLAB_QUIZ_VARIANTS")
    os.environ["CNNLAB_QUIZ_VARIANTS"] = variants or "off"
    try:
        res = grade_one(course, assignment, sub, "gradescope", unsafe_no_sandbox=unsafe_no_sandbox)
    except SandboxUnavailable as exc:
        data = {"score": 0, "output": f"not graded: {exc}", "visibility": "visible", "tests": []}
    else:
        cells = {k: [v[0], v[1], public_text(v[2] or "", course)] for k, v in res.cells.items()}
        data = results_json(cells, res.score, _note(res, course), res.seconds)
    finally:   # honest: leave the process's environment as it was
        if variants is None:
            os.environ.pop("CNNLAB_QUIZ_VARIANTS", None)
        else:
            os.environ["CNNLAB_QUIZ_VARIANTS"] = variants
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=1))
    shutil.rmtree(work, ignore_errors=True)
    return data


