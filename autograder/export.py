"""Export grades: a CSV for any LMS, Gradescope results.json files, a Gradescope autograder zip.

Every export reads the one store (:mod:`autograder.store`): the scores from nbgrader's gradebook
(a manual score the instructor gave in formgrader included), the rest beside them. Only final
grades are exported; a submission without one (the tool could not grade it, it was collected but
not graded yet, or a cell still needs manual grading) is never written as a 0:

- ``grades.csv``: one row per student, one column per assignment (its score), then ``total``; a
  last ``max`` row. A submission without a final grade is an empty cell, and its student's total
  is empty too; a student with no submission of an assignment has 0 there.
- ``gradescope/<student>/<assignment>/results.json``: Gradescope's results format, one test per
  graded cell (score, max_score, status, the check's message); none for a submission without a
  final grade (an earlier one is removed).
- ``flags.csv``: what the instructor should look at, with a ``not graded: <cause>`` row for each
  submission without a final grade.
- ``gradescope_<assignment>.zip``: a Gradescope autograder (``setup.sh``, ``run_autograder``, the
  course packages and the assignment's source) that grades with this same tool.

:func:`incomplete` lists the submissions without a final grade (``export`` prints them and exits 1).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import zipfile
from pathlib import Path

from . import config, store
from .config import Course
from .names import csv_writer  # names: every CSV cell through names.csv_cell


def _results(course: Course) -> dict[tuple[str, str], store.Result]:
    return store.read_results(course.gradebook_url)


def incomplete(course: Course, results: dict | None = None) -> list[tuple[str, str, str]]:
    """(student, assignment, cause) of every submission without a final grade: in the gradebook
    but not final, or collected into ``submitted/`` and not in the gradebook."""
    from .collect import find_submissions

    results = _results(course) if results is None else results
    out = {(r.student, r.assignment): r.cause or r.status for r in store.not_final(results)}
    for s, a, _ in find_submissions(course):
        if (s, a) not in results:
            out[(s, a)] = "collected but not graded yet: run `python -m autograder autograde`"
    return [(s, a, c) for (s, a), c in sorted(out.items())]


def roster_mismatch(course: Course, results: dict | None = None) -> str | None:
    """A warning when the saved roster and the graded submissions do not meet: students on the
    roster without any submission while submissions come from ids not on it (a roster imported
    after collect, or an LMS export whose ids are not the ones submitted under); None otherwise."""
    from .roster import load_saved

    roster = {s.id for s in load_saved(course)}
    if not roster:
        return None
    results = _results(course) if results is None else results
    submitted = {s for s, _ in results}
    absent, strangers = sorted(roster - submitted), sorted(submitted - roster)
    if not absent or not strangers:
        return None

    def some(ids: list[str]) -> str:
        return ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")

    return (f"{len(strangers)} student(s) with submissions are not on the roster ({some(strangers)}) and "
            f"{len(absent)} on the roster have none ({some(absent)}): the CSV lists both. If the roster was "
            "imported after collect, run the same collect again (it files submissions under roster ids) and "
            "autograde; or check --id-column of `roster`")


def grade_table(course: Course, results: dict | None = None
                ) -> tuple[list[str], dict[str, dict[str, float]], dict[str, float]]:
    """Return (assignments, {student: {assignment: final score}}, {assignment: max score}); a
    submission without a final grade is absent from its student's row (see :func:`incomplete`)."""
    results = _results(course) if results is None else results
    table: dict[str, dict[str, float]] = {}
    maxes: dict[str, float] = {}
    with store.gradebook(course.gradebook_url) as gb:
        names = sorted(a.name for a in gb.assignments)
        for a in gb.assignments:
            maxes[a.name] = float(a.max_score)
        for st in gb.students:
            table[st.id] = {}
    for (s, a), r in results.items():
        row = table.setdefault(s, {})
        if r.final:
            row[a] = round(r.score, 4)
    return names, table, maxes


def export_csv(course: Course, path: Path | None = None) -> Path:
    """Write the grade CSV (see the module docstring); return its path."""
    results = _results(course)
    names, table, maxes = grade_table(course, results)
    missing = {(s, a) for s, a, _ in incomplete(course, results)}
    names = sorted(set(names) | {a for _, a in missing})      # (collected, not yet in the gradebook)
    path = Path(path or course.exports / "grades.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fh = open(tmp, "w", newline="")
    try:   # from here on the temporary file is ours: a failure (a full disk) removes it
        with fh:
            w = csv_writer(fh)  # names: spreadsheet-safe cells (CSV injection), see autograder/names.py
            w.writerow(["student", *names, "total"])
            for st in sorted(set(table) | {s for s, _ in missing}):
                row = ["" if (st, a) in missing else table.get(st, {}).get(a, 0.0) for a in names]
                total = "" if "" in row else round(sum(row), 4)
                w.writerow([st, *row, total])
            known = [maxes[a] for a in names if a in maxes]
            w.writerow(["max", *[maxes.get(a, "") for a in names], sum(known) if len(known) == len(names) else ""])
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
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
    """Write one results.json per submission with a final grade, from the store; return the
    files. A submission without one gets none (an earlier file of it is removed)."""
    files = []
    for (student, assignment), res in sorted(_results(course).items()):
        out = course.exports / "gradescope" / student / assignment / "results.json"
        if not res.final:
            out.unlink(missing_ok=True)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        cells = {k: [v[0], v[1], public_text(v[2] or "", course)] for k, v in res.cells.items()}
        out.write_text(json.dumps(results_json(cells, res.score, _note(res, course), res.seconds), indent=1))
        files.append(out)
    return files


def export_flags(course: Course, path: Path | None = None) -> Path:
    """Write ``flags.csv`` (student, assignment, flag): what the instructor should look at
    (possible tampering, static-scan findings, submissions the tool could not grade)."""
    results = _results(course)
    path = Path(path or course.exports / "flags.csv")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv_writer(fh)  # names: spreadsheet-safe cells (CSV injection), see autograder/names.py
        w.writerow(["student", "assignment", "flag"])
        for student, assignment, cause in incomplete(course, results):
            w.writerow([student, assignment, f"not graded: {cause}"])
        for (student, assignment), res in sorted(results.items()):
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
# Isolation of student code:
#   {isolation_note}
# A submission the autograder could not grade (the sandbox does not start, a kernel killed from
# outside, a full disk) gets no results.json and this script exits 1: Gradescope then tells the
# student the autograder failed and shows the cause below to the course staff; it is never a 0.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
PY="${{AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}}"
export PATH="$(dirname "$PY"):$PATH"
cd "$ROOT/source"
"$PY" -m autograder gradescope-run {assignment} --solutions "$ROOT/source/solutions" \\
    --submission "$ROOT/submission" --results "$ROOT/results/results.json" --isolation {isolation}
"""

ISOLATION = {
    "sandbox": "a bubblewrap sandbox inside Gradescope's container (as on the instructor's machine); where "
               "it cannot start, nothing is graded and the staff see why",
    "container": "Gradescope's per-submission container only (built with --gradescope-isolation "
                 "container): no sandbox inside it, so student code runs as the autograder's user and can "
                 "read the autograder's files (hidden tests and solutions in /autograder/source) and "
                 "write its results; each submission still gets a fresh container",
}


def gradescope_package(course: Course, assignment: str, path: Path | None = None,
                       isolation: str = "sandbox") -> Path:
    """Build the Gradescope autograder zip for ``assignment``; return its path.

    ``isolation``: ``"sandbox"`` (default: every kernel in a bubblewrap sandbox, as on the
    instructor's machine; where it cannot start, the submission is not graded and the course
    staff see why) or ``"container"`` (Gradescope's per-submission container is the only
    isolation boundary; see :data:`ISOLATION`). Raises ValueError for an unknown assignment.
    """
    if isolation not in ISOLATION:
        raise ValueError(f"unknown isolation {isolation!r}: use one of {sorted(ISOLATION)}")
    if assignment not in course.assignments():
        raise ValueError(f"unknown assignment {assignment!r}: the course has {', '.join(course.assignments()) or 'none'} "
                         f"(in {course.solutions})")
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
        import textwrap

        note = "\n#   ".join(textwrap.wrap(ISOLATION[isolation], 92))
        add_exec(zf, "run_autograder", RUN_AUTOGRADER.format(assignment=assignment, isolation=isolation,
                                                             isolation_note=note))
        for pkg in ("cnnlab", "autograder"):
            add_tree(zf, repo / pkg, pkg)
        for f in ("pyproject.toml", "requirements-lock.txt", "README.md"):
            if (repo / f).is_file():
                zf.write(repo / f, f)
        add_tree(zf, course.solutions / assignment, f"solutions/{assignment}")
    return path


class NotGraded(RuntimeError):
    """The Gradescope submission could not be graded (the message, for the course staff, says why)."""


def gradescope_run(assignment: str, solutions: Path, submission: Path, results: Path,
                   unsafe_no_sandbox: bool = False, isolation: str = "sandbox") -> dict:
    """Grade a Gradescope submission folder (any notebook in it) and write results.json.

    ``isolation="container"`` (or ``unsafe_no_sandbox``) grades without a sandbox: Gradescope's
    container is the boundary. A failure of the tool (a sandbox that cannot start, a kernel
    killed from outside, a full disk) raises :class:`NotGraded` and writes no results.json
    (an earlier one is removed): the student is never given a 0 for it.
    """
    import tempfile

    from .engine import grade_one
    from .sandbox import SandboxUnavailable

    results = Path(results)
    results.unlink(missing_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gradescope-"))
    # honest (quiz variants): Gradescope does not know the id a student worked under, so its grading
    # uses the quiz's original numbers (cnnlab.quiz; CNNLAB_QUIZ_VARIANTS=on in the image overrides)
    variants = os.environ.get("CNNLAB_QUIZ_VARIANTS")
    os.environ["CNNLAB_QUIZ_VARIANTS"] = variants or "off"
    try:
        course = Course(solutions=solutions, notebooks=work / "release", workdir=work / "course")
        sub = work / "sub"
        sub.mkdir()
        expected = [p.name for p in course.source_notebooks(assignment)]
        found = sorted(Path(submission).rglob("*.ipynb"))
        for name in expected:
            match = [p for p in found if p.name == name] or found[:1]
            if match:
                shutil.copyfile(match[0], sub / name)
        no_sandbox = unsafe_no_sandbox or isolation == "container"
        try:
            res = grade_one(course, assignment, sub, "gradescope", unsafe_no_sandbox=no_sandbox)
        except SandboxUnavailable as exc:
            raise NotGraded(f"not graded: the grading sandbox cannot start in this container ({exc}). This is "
                            "the autograder's set-up, not the student's submission: fix the image (bubblewrap "
                            "needs unprivileged user namespaces), or rebuild the package with `python -m "
                            "autograder export --gradescope-package " + assignment + " --gradescope-isolation "
                            "container` (see the README), then regrade.") from exc
        if res.failed:
            raise NotGraded(f"not graded: {res.cause}. This is a failure of the autograder, not of the "
                            "student's submission: regrade it (Gradescope: Regrade Submission).")
        cells = {k: [v[0], v[1], public_text(v[2] or "", course)] for k, v in res.cells.items()}
        data = results_json(cells, res.score, _note(res, course), res.seconds)
        results.parent.mkdir(parents=True, exist_ok=True)
        tmp = results.with_name(f".{results.name}.tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(results)
        return data
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if variants is None:   # honest: leave the process's environment as it was
            os.environ.pop("CNNLAB_QUIZ_VARIANTS", None)
        else:
            os.environ["CNNLAB_QUIZ_VARIANTS"] = variants
