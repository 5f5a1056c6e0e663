"""The notebook contract, for every assignment present in solutions/.

- the solution notebook executes without error and every test cell passes (NBGRADER_EXECUTION
  unset);
- through nbgrader (hidden tests, NBGRADER_EXECUTION set) the reference answers score full marks
  quickly and the released stubs score zero, every check failing and no other error than the
  stubs' NotImplementedError;
- notebooks/ equals what nbgrader generates from solutions/ today; no solution or hidden-test
  text in notebooks/; solutions/ reach git without outputs (saving them run is fine);
- (wrong answers losing exactly their exercise's points: tests/test_exercise_records.py).

Timings are recorded (not asserted: no timed unit tests) in
.pytest_cache/cnnlab_notebook_timings.json and as junit properties; the budgets are 60 s per
solution notebook and 20 s under NBGRADER_EXECUTION.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat
import pytest

from autograder.config import Course, Limits
from autograder.release import find_leaks, generate_to_temp, remove_temp

COURSE = Course()
ASSIGNMENTS = COURSE.assignments()
TIMINGS = Path(__file__).resolve().parent.parent / ".pytest_cache" / "cnnlab_notebook_timings.json"

pytestmark = pytest.mark.skipif(not ASSIGNMENTS, reason="no assignments in solutions/")


def _record(assignment: str, what: str, seconds: float, record_property) -> None:
    record_property(f"{assignment}:{what}", round(seconds, 2))
    TIMINGS.parent.mkdir(exist_ok=True)
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data.setdefault(assignment, {})[what] = round(seconds, 2)
    TIMINGS.write_text(json.dumps(data, indent=1, sort_keys=True))


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _is_test(cell) -> bool:
    return bool(_meta(cell).get("grade")) and not _meta(cell).get("solution") and cell.cell_type == "code"


def _errors(cell) -> list:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.fixture(scope="module")
def grader():
    from autograder.testing import QuickGrader

    g = QuickGrader(COURSE, Limits(cell_timeout=120, notebook_timeout=600, memory_mb=8192))
    yield g
    g.close()


# ----------------------------------------------------------------------------- fast, static

def _git_blob(path: Path) -> str | None:
    """The notebook as git stores it (the index, after the clean filter); None outside git."""
    import subprocess

    repo = COURSE.solutions.parent
    try:
        out = subprocess.run(["git", "-C", str(repo), "show", f":{path.relative_to(repo)}"],
                             capture_output=True, text=True, timeout=30)
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_reach_git_without_outputs(assignment):
    """What git holds has no outputs. An instructor may run and save solutions/ in JupyterLab:
    the working file may hold outputs, the clean filter (.gitattributes) strips them on add, and
    the release clears them (test_notebooks_equal_what_nbgrader_generates, the leak check)."""
    from autograder.strip import strip_text

    for path in COURSE.source_notebooks(assignment):
        text = _git_blob(path)
        if text is None:  # not tracked (or no git): what the clean filter would store
            text = strip_text(path.read_text(encoding="utf-8"))
        nb = nbformat.reads(text, as_version=4)
        dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
        assert not dirty, (f"{path.name}: cells {dirty} have outputs or execution counts in git; "
                           f"run python -m autograder strip-outputs {path} (or enable the git filter)")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_or_hidden_text_in_notebooks(assignment):
    folder = COURSE.notebooks / assignment
    assert folder.is_dir(), f"notebooks/{assignment} missing: run python -m autograder release {assignment}"
    assert find_leaks(COURSE.solutions / assignment, folder) == []


def _normalise(nb) -> list:
    out = []
    for c in nb.cells:
        meta = {k: v for k, v in _meta(c).items() if k not in ("checksum",)}
        out.append((c.cell_type, c.source, meta))
    return out


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_equal_what_nbgrader_generates(assignment):
    fresh = generate_to_temp(COURSE, assignment)
    try:
        names = sorted(p.name for p in fresh.glob("*.ipynb"))
        have = sorted(p.name for p in (COURSE.notebooks / assignment).glob("*.ipynb"))
        assert have == names, f"notebooks/{assignment} holds {have}, nbgrader generates {names}"
        for name in names:
            a = _normalise(nbformat.read(fresh / name, as_version=4))
            b = _normalise(nbformat.read(COURSE.notebooks / assignment / name, as_version=4))
            assert len(a) == len(b), f"{name}: {len(b)} cells, nbgrader generates {len(a)}; re-run the release"
            for i, (x, y) in enumerate(zip(a, b)):
                assert x == y, f"{name}: cell {i} differs from what nbgrader generates; re-run the release"
    finally:
        remove_temp(fresh)


# ----------------------------------------------------------------------------- executing

@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_executes_and_passes(assignment, record_property, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    for path in COURSE.source_notebooks(assignment):
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        t0 = time.monotonic()
        client.execute()
        seconds = time.monotonic() - t0
        _record(assignment, "solution_full", seconds, record_property)
        errors = [(i, e["ename"], e["evalue"][:200]) for i, c in enumerate(nb.cells) for e in _errors(c)]
        assert not errors, f"{path.name}: cells raised {errors}"
        # outside nbgrader a failing check shows a box instead of raising: every check must pass
        for c in nb.cells:
            if _is_test(c) and c.source.strip() and "BEGIN HIDDEN TESTS" not in c.source:
                text = _shown(c)
                assert "\u2714" in text and "\u2718" not in text, f"{_meta(c)['grade_id']}: {text[:300]}"


def _shown(cell) -> str:
    """The text a cell showed (streams and the plain-text form of displays)."""
    parts = []
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            parts.append(o.get("text", ""))
        elif o.get("output_type") in ("display_data", "execute_result"):
            parts.append(o.get("data", {}).get("text/plain", ""))
        elif o.get("output_type") == "error":
            parts.append(f"{o.get('ename')}: {o.get('evalue')}")
    return "".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebook_runs_top_to_bottom_with_every_stub(assignment, record_property, monkeypatch):
    """What a student sees after Run All on the untouched notebook: every cell runs (no error at
    all), and each check shows a short failure that names no file of the course."""
    from nbclient import NotebookClient

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    for path in sorted((COURSE.notebooks / assignment).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=False,
                                resources={"metadata": {"path": str(path.parent)}})
        t0 = time.monotonic()
        client.execute()  # raises CellExecutionError on the first cell that fails
        _record(assignment, "student_stubs", time.monotonic() - t0, record_property)
        checks = 0
        for c in nb.cells:
            text = _shown(c)
            assert "cnnlab/" not in text and "site-packages" not in text, f"{path.name}: {text[:400]}"
            if _is_test(c) and c.source.strip():
                checks += 1
                fails = [ln for ln in text.split("\n") if ln.startswith("\u2718")]
                assert fails, f"{_meta(c)['grade_id']} shows no failure on the stub: {text[:300]}"
                assert len(text.strip().split("\n")) <= 15, f"{_meta(c)['grade_id']}: {len(text.splitlines())} lines"
        assert checks, f"{path.name}: no check ran"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_validate_names_each_failing_exercise(assignment):
    """``python -m autograder validate`` on the untouched student notebook: exit 1, and each failing
    exercise printed by name with its whole message."""
    import subprocess
    import sys

    from cnnlab.checks import registry

    path = sorted((COURSE.notebooks / assignment).glob("*.ipynb"))[0]
    env = {k: v for k, v in os.environ.items() if k != "NBGRADER_EXECUTION"}
    proc = subprocess.run([sys.executable, "-m", "autograder", "validate", str(path)], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    names = [ex.name for ex in registry.exercises(assignment)] if assignment in registry.assignments() else []
    for name in names:
        assert f"FAILED: {name} (" in proc.stdout, f"{name} missing from:\n{proc.stdout}"
    assert "\u2718" in proc.stdout and "Traceback" not in proc.stdout, proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_through_nbgrader_solution_full_marks(assignment, grader, record_property):
    t0 = time.monotonic()
    res, nb = grader.grade(assignment, grader.solution_notebook(assignment))
    seconds = time.monotonic() - t0
    _record(assignment, "graded_solution", seconds, record_property)
    lost = {k: v for k, v in res.cells.items() if v[0] < v[1]}
    assert res.status == "graded" and not lost, f"reference answers lost points: {lost} {res.problems}"
    assert res.score == res.max_score > 0
    errors = [(i, e["ename"], e["evalue"][:200]) for i, c in enumerate(nb.cells) for e in _errors(c)]
    assert not errors, f"cells raised under NBGRADER_EXECUTION: {errors}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_through_nbgrader_stubs_score_zero(assignment, grader, record_property):
    t0 = time.monotonic()
    res, nb = grader.grade(assignment, grader.release_notebook(assignment))
    _record(assignment, "graded_stubs", time.monotonic() - t0, record_property)
    assert res.status == "graded", res.problems
    assert res.score == 0, {k: v for k, v in res.cells.items() if v[0] > 0}
    for i, c in enumerate(nb.cells):
        errs = _errors(c)
        if _is_test(c):
            assert errs, f"test cell {_meta(c)['grade_id']} passes on the stubs"
        else:
            bad = [e for e in errs if e["ename"] != "NotImplementedError"]
            assert not bad, f"cell {i} ({_meta(c).get('grade_id', 'ungraded')}) raised {bad[0]['ename']}: " \
                            f"{bad[0]['evalue'][:200]} on the stubs"

# Wrong answers: tests/test_exercise_records.py grades every bug of every exercise record.
