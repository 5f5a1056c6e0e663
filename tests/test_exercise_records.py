"""Every exercise record of every notebook, read the way students meet it.

For each exercise in ``cnnlab.checks`` (one record per exercise, see ``cnnlab.grading.exercise``):

- the solution notebook's answer passes both tiers;
- every entry of its bug table fails its own check, public and hidden, and the public message
  contains the entry's phrase; every message is at most 15 lines and names no file of the course;
- hidden-tier messages never show the expected values;
- through nbgrader (slow), each bug's code in place of the answer loses exactly that exercise's
  points and those of the exercises listed in ``loses``, and no others.
"""

from __future__ import annotations

import os
import re

import matplotlib
import nbformat
import pytest

from autograder.config import Course
from autograder.sample_class import answer_code
from cnnlab.checks import registry
from cnnlab.grading.exercise import MAX_LINES, under_nbgrader

matplotlib.use("Agg")

COURSE = Course()
ASSIGNMENTS = [a for a in COURSE.assignments() if a in registry.assignments()]


def _meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


_NAMESPACES: dict[str, dict] = {}


def solution_namespace(assignment: str) -> dict:
    """The globals a student who answered everything right has: the set-up cell, then every answer."""
    if assignment not in _NAMESPACES:
        nb = nbformat.read(COURSE.source_notebooks(assignment)[0], as_version=4)
        ns: dict = {"__name__": "__main__"}
        for cell in nb.cells:
            m = _meta(cell)
            if cell.cell_type != "code" or not (m.get("grade_id") == "setup" or m.get("solution")):
                continue
            exec(compile(answer_code(cell.source), f"<{assignment}:{m['grade_id']}>", "exec"), ns)  # noqa: S102
        _NAMESPACES[assignment] = ns
    return _NAMESPACES[assignment]


def with_answer(assignment: str, code: str) -> dict:
    ns = dict(solution_namespace(assignment))
    exec(compile(code, "<answer>", "exec"), ns)  # noqa: S102 - the course's own bug table
    return ns


EXERCISES = [(a, ex.name) for a in ASSIGNMENTS for ex in registry.exercises(a)]
BUGS = [(a, ex.name, i) for a in ASSIGNMENTS for ex in registry.exercises(a) for i in range(len(ex.bugs))]
TRAINS = {"learn_kernel", "train_lenet", "train_digits"}   # checks that train a network: not in the fast tier


def _params(cases):
    """``cases`` as pytest params, the ones of exercises whose check trains marked slow."""
    return [pytest.param(*c, marks=pytest.mark.slow) if c[1] in TRAINS else c for c in cases]


def _record(assignment: str, name: str):
    return registry.notebook(assignment)[name]


def _readable(message: str) -> None:
    assert len(message.split("\n")) <= MAX_LINES, f"{len(message.splitlines())} lines:\n{message}"
    assert "cnnlab/" not in message and "site-packages" not in message, message


@pytest.fixture(autouse=True)
def _outside_nbgrader(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


@pytest.mark.parametrize("assignment,name", _params(EXERCISES), ids=[f"{a}-{n}" for a, n in EXERCISES])
@pytest.mark.parametrize("tier", ["public", "hidden"])
def test_solution_answer_passes(assignment, name, tier):
    ex = _record(assignment, name)
    outcome = ex.run(solution_namespace(assignment)[name], tier)
    assert outcome.passed, outcome.message
    assert outcome.message.startswith("\u2714 ") and "\n" not in outcome.message


@pytest.mark.parametrize("assignment,name,index", _params(BUGS), ids=[f"{a}-{n}-{i}" for a, n, i in BUGS])
def test_bug_fails_its_own_check_with_its_phrase(assignment, name, index):
    ex = _record(assignment, name)
    bug = ex.bugs[index]
    ns = with_answer(assignment, bug.code)
    public = ex.run(ns[name], "public")
    assert not public.passed, f"{bug.says!r}: the public check passes"
    assert bug.says in public.message, f"expected {bug.says!r} in:\n{public.message}"
    _readable(public.message)
    hidden = ex.run(ns[name], "hidden")
    assert not hidden.passed, f"{bug.says!r}: the hidden check passes"
    _readable(hidden.message)
    assert "expected:" not in hidden.message and not re.search(r"expected -?[0-9](?![0-9]* return values)", hidden.message), \
        f"the hidden tier shows an expected value:\n{hidden.message}"


def test_every_exercise_has_bugs_and_distinct_phrases():
    for a in ASSIGNMENTS:
        for ex in registry.exercises(a):
            assert ex.bugs, f"{a}/{ex.name} has an empty bug table"
            phrases = [b.says for b in ex.bugs]
            assert len(set(phrases)) == len(phrases), f"{a}/{ex.name}: repeated phrases"
            for b in ex.bugs:
                assert set(b.loses) <= set(registry.notebook(a).exercises), f"{a}/{ex.name}: unknown loses {b.loses}"


def test_check_shows_instead_of_raising_outside_nbgrader(capsys):
    a, name = EXERCISES[0]
    ex = _record(a, name)
    bug = ex.bugs[0]
    fn = with_answer(a, bug.code)[name]
    assert registry.notebook(a).check(name, fn) is None  # shows, does not raise
    outcome = ex.run(fn)
    assert not outcome.passed and not under_nbgrader()
    assert outcome.message.split("\n")[0] in capsys.readouterr().out
    assert 'class="cnnlab-check cnnlab-fail"' in outcome._repr_html_()


def test_check_raises_under_nbgrader(monkeypatch):
    from cnnlab.grading.exercise import CheckFailed

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    a, name = EXERCISES[0]
    ex = _record(a, name)
    fn = with_answer(a, ex.bugs[0].code)[name]
    with pytest.raises(CheckFailed) as info:
        registry.notebook(a).check(name, fn, tier="hidden")
    assert ex.bugs[0].says in str(info.value) or "hidden case" in str(info.value)


def test_unknown_tier_and_exercise_are_clear_errors():
    a, name = EXERCISES[0]
    nb = registry.notebook(a)
    with pytest.raises(ValueError, match="tier must be 'public' or 'hidden'"):
        nb.check(name, solution_namespace(a)[name], tier="secret")
    with pytest.raises(KeyError, match="has no exercise"):
        nb.check("no_such_exercise", print)


# ----------------------------------------------------------------------------- through nbgrader

def _lost_by(assignment: str, name: str, index: int) -> set[str]:
    nb = registry.notebook(assignment)
    ex = nb[name]
    lost = set(ex.cells_lost_by(ex.bugs[index]))
    for other in ex.bugs[index].loses:
        lost |= set(nb[other].grade_ids)
    return lost


def _rounds(assignment: str) -> list[dict[str, tuple[int, set[str]]]]:
    """Group bugs of different exercises into as few submissions as possible, so that the cells
    each bug should lose are disjoint within a submission (each loss is then attributable)."""
    todo = [(ex.name, i) for ex in registry.exercises(assignment) for i in range(len(ex.bugs))]
    rounds: list[dict[str, tuple[int, set[str]]]] = []
    for name, i in todo:
        lost = _lost_by(assignment, name, i)
        for r in rounds:
            if name not in r and all(not (lost & other) for _, other in r.values()):
                r[name] = (i, lost)
                break
        else:
            rounds.append({name: (i, lost)})
    return rounds


ROUNDS = [(a, k) for a in ASSIGNMENTS for k in range(len(_rounds(a)))]


@pytest.fixture(scope="module")
def grader():
    from autograder.config import Limits
    from autograder.testing import QuickGrader

    g = QuickGrader(COURSE, Limits(cell_timeout=120, notebook_timeout=600, memory_mb=8192))
    yield g
    g.close()


@pytest.mark.slow
@pytest.mark.parametrize("assignment,k", ROUNDS, ids=[f"{a}-round{k}" for a, k in ROUNDS])
def test_bugs_lose_exactly_their_exercises_points(assignment, k, grader):
    round_ = _rounds(assignment)[k]
    nb = registry.notebook(assignment)
    replacements = {name: nb[name].bugs[i].code for name, (i, _) in round_.items()}
    points = grader.grade_variant(assignment, replacements)
    expected = set().union(*(lost for _, lost in round_.values()))
    lost = {gid for gid, p in points.items() if p == 0}
    partial = {gid: p for gid, p in points.items() if 0 < p}
    described = {name: nb[name].bugs[i].says for name, (i, _) in round_.items()}
    assert lost == expected, (f"bugs {described}: lost {sorted(lost)}, expected {sorted(expected)}")
    assert set(partial) == set(points) - expected


if os.environ.get("CNNLAB_PRINT_ROUNDS"):  # pragma: no cover - a look at the grouping
    for _a in ASSIGNMENTS:
        print(_a, [sorted(r) for r in _rounds(_a)])


def test_gradescope_message_puts_the_diagnosis_first_and_keeps_it():
    """The export reads the diagnosis from the report (data), not from the message's text: it comes
    first and whole however long the detail is; a message that merely looks like a diagnosis is
    not taken for one."""
    import dataclasses

    from autograder.engine import MESSAGE_LIMIT, diagnosis_first

    a, name = EXERCISES[0]
    ex = _record(a, name)
    bug = ex.bugs[0]
    outcome = ex.run(with_answer(a, bug.code)[name])
    report = outcome.report()
    assert report.diagnosis is not None and report.diagnosis.says == bug.says and report.diagnosis.exercise == name
    long = dataclasses.replace(report, detail=report.detail + "\n" + "  filler line\n" * 400)
    text = diagnosis_first("CheckFailed", outcome.message, long)
    assert text.startswith(f"Likely bug: {bug.says}"), text[:200]
    assert len(text) <= MESSAGE_LIMIT and "filler line" in text
    # without a report nothing is parsed out of the text: the message is kept as it is
    fake = "\u2718 something\n  Likely bug: made up by the student's own print"
    assert diagnosis_first("CheckFailed", fake) == fake
    assert diagnosis_first("ZeroDivisionError", "division by zero") == "ZeroDivisionError: division by zero"


def test_report_travels_through_a_graded_cell(monkeypatch):
    """Under nbgrader a failing check puts its report into the cell as data before it raises:
    validate, the export and feedback read that, whatever the message's length or wording."""
    import json

    from IPython.core.interactiveshell import InteractiveShell

    from cnnlab.grading.diagnosis import MIME, report_in
    from cnnlab.grading.exercise import CheckFailed

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    a, name = EXERCISES[0]
    ex = _record(a, name)
    bug = ex.bugs[0]
    fn = with_answer(a, bug.code)[name]
    shell = InteractiveShell.instance()
    shown = []
    monkeypatch.setattr(shell, "display_pub", type("Pub", (), {
        "publish": lambda self, data, metadata=None, **kw: shown.append(data),
        "is_publishing": False})())
    with pytest.raises(CheckFailed) as info:
        registry.notebook(a).check(name, fn)
    assert info.value.report is not None and info.value.report.diagnosis.says == bug.says
    outputs = [{"output_type": "display_data", "data": json.loads(json.dumps(d)), "metadata": {}} for d in shown]
    assert [list(d) for d in shown] == [[MIME]]
    report = report_in(outputs)
    assert report == info.value.report and report.message == str(info.value)
def test_readme_exercise_index_matches_the_records():
    readme = (COURSE.solutions.parent / "README.md").read_text()
    start, end = "<!-- exercise-index:start -->\n", "\n<!-- exercise-index:end -->"
    assert start in readme and end in readme, "README lost its exercise index markers"
    shown = readme.split(start, 1)[1].split(end, 1)[0]
    assert shown == registry.index_markdown(), \
        "README's exercise index is stale: paste the output of `python -m cnnlab.checks.registry`"


def test_validate_and_feedback_show_the_report_not_the_parsed_text():
    """validate prints the message its cell's report carries; feedback shows the report's diagnosis
    first, set apart, and drops a report that names no bug (the error below has the message)."""
    from autograder import cli, feedback

    a, name = EXERCISES[0]
    ex = _record(a, name)
    bug = ex.bugs[0]
    report = ex.run(with_answer(a, bug.code)[name]).report()
    item = {"source": "nb.check(...)", "raw_error": "CheckFailed: something else entirely"}
    entry = cli._validate_entry("failed", item, {"nb.check(...)": f"{name} (test_{name}_public)"}, report)
    assert entry.startswith(f"FAILED: {name} (test_{name}_public)") and f"Likely bug: {bug.says}" in entry
    assert "something else entirely" not in entry
    assert "something else entirely" in cli._validate_entry("failed", item, {})   # no report: the text as it was
    data = report.bundle()
    assert feedback._check_report_as_html(data) is False
    assert data["text/plain"].startswith(f"Likely bug: {bug.says}") and "cnnlab-diagnosis" in data["text/html"]
    no_bug = ex.run(lambda *a, **k: None).report()
    assert no_bug.diagnosis is None and feedback._check_report_as_html(no_bug.bundle()) is True


@pytest.mark.slow
def test_a_graded_cell_carries_the_report_and_the_export_reads_it(grader):
    """Through nbgrader in the sandbox: the failing test cell holds the check's report (its own MIME
    type) before the error, and the message kept for Gradescope and the ledger starts with the
    report's diagnosis; feedback turns the report into its diagnosis box."""
    from autograder import feedback
    from cnnlab.grading.diagnosis import MIME, report_in

    a, name = "01_history", "fc_params"
    ex = _record(a, name)
    bug = ex.bugs[0]
    nb = grader.solution_notebook(a)
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == name:
            c.source = bug.code
    res, graded = grader.grade(a, nb)
    cell = next(c for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == f"test_{name}_public")
    kinds = [o["output_type"] for o in cell.outputs]
    assert kinds[-1] == "error" and any(MIME in o.get("data", {}) for o in cell.outputs), kinds
    report = report_in(cell.outputs)
    assert report.diagnosis.says == bug.says and report.exercise == name and report.tier == "public"
    message = next(v[2] for k, v in res.cells.items() if k.endswith(f"/test_{name}_public"))
    assert message.startswith(f"Likely bug: {bug.says}"), message
    data = dict(next(o for o in cell.outputs if MIME in o.get("data", {}))["data"])
    assert feedback._check_report_as_html(data) is False and bug.says in data["text/html"]
