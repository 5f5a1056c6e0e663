"""Notebook 08 (self-check quiz) beyond the generic record tests: unusual correct answers accepted, the
answer cell's stub form, messages that never show the answer, the summary, the widget's logic (no browser)."""

from __future__ import annotations

import re

import nbformat
import pytest

from autograder.config import Course
from cnnlab import quiz
from cnnlab.checks import nb08
from cnnlab.widgets import quiz as wq

COURSE = Course()


@pytest.fixture(autouse=True)
def _outside_nbgrader(monkeypatch):
    for var in ("NBGRADER_EXECUTION", "CNNLAB_STATIC", quiz.ID_ENV, "JUPYTERHUB_USER", quiz.VARIANTS_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(quiz, "_GRADED", {})


def _answer_shown(q: quiz.Question, message: str) -> bool:
    """True when the message shows the answer in a form a student could paste back."""
    if q.kind == "shape":
        forms = {q.answer_text(), "x".join(map(str, q.answer)), str(tuple(q.answer))}
        return any(f in message for f in forms)
    if q.kind == "int" and q.answer >= 10:
        return bool(re.search(rf"(?<![\d,]){q.answer:,}(?![\d,])|(?<!\d){q.answer}(?!\d)", message))
    return False


def test_one_record_per_question_named_after_its_variable():
    names = [ex.name for ex in nb08.NOTEBOOK.exercises.values()]
    assert names == [f"answer_q{q.number}" for q in quiz.QUESTIONS]
    assert all(ex.grade_ids == (f"test_{ex.name}",) for ex in nb08.NOTEBOOK.exercises.values())


@pytest.mark.parametrize("name, value", [
    ("answer_q1", "A"), ("answer_q1", "Vertical edges"), ("answer_q1", "vertical"),
    ("answer_q2", "27,000,100"), ("answer_q2", "27 000 100"), ("answer_q2", 27000100.0),
    ("answer_q4", "29 x 29 x 32"), ("answer_q4", (29, 29, 32)), ("answer_q4", [29, 29, 32]), ("answer_q4", "29×29×32"),
    ("answer_q5", "(19, 19, 8)"), ("answer_q8", "false"), ("answer_q8", "False"), ("answer_q20", False),
    ("answer_q23", "8x256x6x6"), ("answer_q23", [8, 256, 6, 6]), ("answer_q25", "0"),
])
def test_unusual_correct_answers_pass_both_tiers(name, value):
    ex = nb08.NOTEBOOK[name]
    for tier in ("public", "hidden"):
        outcome = ex.run(value, tier)
        assert outcome.passed, outcome.message


def test_wrong_answers_never_show_the_answer():
    for ex in nb08.NOTEBOOK.exercises.values():
        q = ex.question
        for wrong, _ in q.slips:
            for tier in ("public", "hidden"):
                message = ex.run(wrong, tier).message
                assert message.startswith("\u2718") and not _answer_shown(q, message), (q.number, tier, message)
        for junk in ("no idea", None, (1, 2, 3, 4, 5)):
            message = ex.run(junk, "public").message
            assert message.startswith("\u2718") and not _answer_shown(q, message), message


def test_the_classic_wrong_answers_are_named():
    assert "forgot the biases" in nb08.NOTEBOOK["answer_q2"].run(27_000_000).message
    assert "channel depth" in nb08.NOTEBOOK["answer_q3"].run(2_600).message
    assert "+ 1" in nb08.NOTEBOOK["answer_q4"].run("28x28x32").message
    assert "once instead of twice" in nb08.NOTEBOOK["answer_q5"].run("17x17x8").message
    assert "THROUGH pooling" in nb08.NOTEBOOK["answer_q8"].run("True").message
    assert "channels last" in nb08.NOTEBOOK["answer_q23"].run((8, 6, 6, 256)).message
    public = nb08.NOTEBOOK["answer_q4"].run("30x30x32").message
    assert "Likely slip" not in public and "Hint:" in public        # not a known slip: a hint only
    hidden = nb08.NOTEBOOK["answer_q4"].run("30x30x32", "hidden").message
    assert "Hint" not in hidden and "hidden check" in hidden


def test_unanswered_and_unreadable():
    ex = nb08.NOTEBOOK["answer_q7"]
    assert "not answered yet" in ex.run(None).message
    assert "not answered yet" in ex.run(...).message
    message = ex.run("sixteen").message
    assert "cannot read" in message and "HxWxC" in message
    assert "is a function" in ex.run(print).message


def test_the_released_answer_cell_runs_and_leaves_none():
    nb = nbformat.read(COURSE.notebooks / "08_quiz" / "08_quiz.ipynb", as_version=4)
    cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution")]
    assert len(cells) == len(quiz.QUESTIONS)
    for cell in cells:
        name = cell.metadata["nbgrader"]["grade_id"]
        ns: dict = {}
        exec(cell.source, ns)  # noqa: S102 - the released stub: raises inside try, sets None
        assert ns[name] is None
        student = re.sub(r"    # YOUR CODE HERE\n    raise NotImplementedError\(.*\)", f'    {name} = "1x1x1"',
                         cell.source)
        exec(student, ns)  # noqa: S102 - what a student writes
        assert ns[name] == "1x1x1"


def test_summary_counts(capsys):
    answers = {f"answer_q{q.number}": q.answer for q in quiz.QUESTIONS}
    answers["answer_q4"] = "28x28x32"
    answers["answer_q9"] = None
    nb08.summary(answers)
    out = capsys.readouterr().out
    assert f"{len(quiz.QUESTIONS) - 2} of {len(quiz.QUESTIONS)} answers right" in out
    assert "not quite yet: Q4" in out and "not answered: Q9" in out


# ----------------------------------------------------------------------------- the widget

def test_feedback_lines():
    ok, line = wq.feedback(4, "29x29x32")
    assert ok and line.startswith("\u2714 Correct")
    ok, line = wq.feedback(4, "28x28x32")
    assert not ok and line.startswith("\u2718 Not quite") and "29" not in line
    ok, line = wq.feedback(2, "")
    assert not ok and line.startswith("\u2718 Not quite") and "type your answer" in line
    ok, line = wq.feedback(2, "many")
    assert not ok and line.startswith("\u2718 Not quite") and "whole number" in line
    for q in quiz.QUESTIONS:
        assert "\n" not in wq.feedback(q, q.answer_text())[1]


def test_widget_contract_without_a_browser():
    import ipywidgets as W

    box, items = wq.build()
    assert len(items) == len(quiz.QUESTIONS)
    for item in items:
        assert isinstance(item.text, W.Text) and isinstance(item.button, W.Button)
        assert item.button.description == "Check" and isinstance(item.feedback, W.HTML)
        assert item.feedback.value == "" and item.right is None
    first, fourth = items[0], items[3]
    fourth.text.value = "29 x 29 x 32"
    fourth.button.click()
    assert fourth.right is True and fourth.line.startswith("\u2714 Correct")
    assert re.sub("<[^>]+>", "", fourth.feedback.value).startswith("\u2714 Correct")
    first.text.value = "horizontal edges"
    first.button.click()
    assert first.right is False and re.sub("<[^>]+>", "", first.feedback.value).startswith("\u2718 Not quite")
    assert "1 of 25 right" in box.children[0].value
    assert "do not count toward your grade" in box.children[0].value
    assert repr(box).startswith("Self-check quiz: 25 questions")   # what a run without a browser keeps


def test_widget_is_inert_under_nbgrader(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert wq.quiz_widget() is None
    out = capsys.readouterr().out
    assert out.startswith("Self-check quiz: 25 questions") and "Q23 [(N, C, H, W)]" in out
    assert len(out.splitlines()) == len(quiz.QUESTIONS) + 3   # the questions only, no answers
    assert "practice only" in out and "do not count toward your grade" in out


def test_widget_subset_and_static_without_a_front_end(capsys):
    assert wq.quiz_widget([1, 8]) is None   # pytest has no front end
    out = capsys.readouterr().out
    assert "2 questions" in out and "Q8" in out and "Q2:" not in out


# ----------------------------------------------------------------------------- issue 18: the widget's answers

def _markdown_before(nb, source: str) -> str:
    i = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip() == source)
    return nb.cells[i - 1].source


@pytest.mark.parametrize("folder", ["solutions", "notebooks"])
def test_the_notebook_says_plainly_that_the_widget_does_not_count(folder):
    """Issue 18: the quiz widget's answers count toward the graded answers, or the notebook says
    plainly that they do not (it said neither)."""
    root = COURSE.solutions if folder == "solutions" else COURSE.notebooks
    nb = nbformat.read(root / "08_quiz" / "08_quiz.ipynb", as_version=4)
    text = " ".join(_markdown_before(nb, "quiz_widget()").split())
    assert "practice only" in text and "does not count toward your grade" in text
    assert "Only the answer cells above are graded" in text


# ----------------------------------------------------------------------------- variants in the notebook

def _run_cells(nb, upto: str) -> tuple[dict, list[str]]:
    """Run the set-up cell and the locked question cells of ``nb`` (as the kernel would); return the
    namespace and what each question cell shows."""
    ns: dict = {"__name__": "__main__"}
    shown = []
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id", "")
        if c.cell_type != "code" or not (gid == "setup" or gid.startswith("numbers_q")):
            continue
        *body, last = c.source.strip().split("\n")
        exec("\n".join(body), ns)  # noqa: S102 - the course's own locked cells
        value = eval(last.rstrip(";"), ns)  # noqa: S307
        if gid.startswith("numbers_q"):
            shown.append(repr(value))
        if gid == upto:
            break
    return ns, shown


def test_the_notebook_shows_each_student_their_own_numbers(monkeypatch, capsys):
    nb = nbformat.read(COURSE.notebooks / "08_quiz" / "08_quiz.ipynb", as_version=4)
    views = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id", "").startswith("numbers_q")]
    assert len(views) == sum(bool(q.params) for q in quiz.QUESTIONS) == 23
    assert all(c.metadata["nbgrader"]["locked"] and not c.metadata["nbgrader"]["grade"] for c in views)
    seen = {}
    for student in ("alice", "bob", None):
        if student:
            monkeypatch.setenv("JUPYTERHUB_USER", student)
        else:
            monkeypatch.delenv("JUPYTERHUB_USER")
        _, shown = _run_cells(nb, "")
        head = capsys.readouterr().out
        assert (f"student {student!r}" in head) if student else ("original numbers" in head)
        mine = [q for q in quiz.variant(student) if q.params]
        for q, text in zip(mine, shown):
            assert text.startswith(f"Question {q.number}. {q.prompt()}")
            assert all(f"q.{k} = {v}" in text for k, v in q.numbers.items())
        seen[student] = shown
    assert seen["alice"] != seen["bob"] and seen[None][2].startswith("Question 4. A 63x63x16 input")
    view = quiz.question(4)
    assert not hasattr(view, "answer") and "answer" not in dir(view)      # the view holds no answer


@pytest.mark.parametrize("student", [None, "alice", "bob"])
def test_bug_cells_make_the_same_slip_for_every_student(student, monkeypatch):
    """The bug table's wrong answer cells compute over the student's own numbers: the same slip in
    every variant (the sample class's "wrong" student and the records' tests rely on it)."""
    if student:
        monkeypatch.setenv(quiz.ID_ENV, student)
    for ex in nb08.NOTEBOOK.exercises.values():
        for bug in ex.bugs:
            if "question(" not in bug.code:
                continue
            outcome = ex.run(ex.bug_function(bug), "public")
            assert not outcome.passed and bug.says in outcome.message, (student, ex.name, bug.says, outcome.message)


def test_confirm_judges_with_the_given_students_numbers():
    n = next(a.number for a, b in zip(quiz.variant("alice"), quiz.variant("bob")) if a.kind == "shape" and a.answer != b.answer)
    ex = nb08.NOTEBOOK[f"answer_q{n}"]
    alice, bob = quiz.variant("alice")[n - 1], quiz.variant("bob")[n - 1]
    assert ex.confirm(alice.answer_text(), "alice") is None
    assert "not the answer of student 'bob'" in ex.confirm(alice.answer_text(), "bob")
    assert ex.confirm(bob.answer, "bob") is None
    assert nb08.NOTEBOOK["answer_q4"].confirm("29x29x32", None) is None


# ----------------------------------------------------------------------------- through the real grader

@pytest.fixture(scope="module")
def quiz_grader():
    from autograder.config import Limits
    from autograder.testing import QuickGrader

    g = QuickGrader(COURSE, Limits(cell_timeout=120, notebook_timeout=600))
    yield g
    g.close()


def _grade(g, student: str, nb) -> dict[str, float]:
    """Grade ``nb`` as ``student``'s submission through the real grader; points per question."""
    from autograder.engine import default_protect, grade_submission

    import uuid

    sub = g.tmp / "in" / uuid.uuid4().hex[:8] / student / "08_quiz"
    sub.mkdir(parents=True)
    nbformat.write(nb, sub / "08_quiz.ipynb")
    res = grade_submission(g.course, g.template("08_quiz"), student, "08_quiz", sub, default_protect(g.course),
                           g.sandboxed)
    assert res.status == "graded", res.problems
    return {k.split("/test_")[1]: v[0] for k, v in res.cells.items()}


def _literal(g, key: dict[str, object], top_cell: str | None = None):
    """The released notebook answered with literal values (what a student passes to a classmate)."""
    nb = g.release_notebook("08_quiz")
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id", "")
        if gid.startswith("answer_q"):
            c.source = f"{gid} = {key[gid]!r}"
    if top_cell is not None:
        nb.cells.insert(0, nbformat.v4.new_code_cell(top_cell))
    return nb


EDIT_THE_ID = """
import os
os.environ["CNNLAB_STUDENT_ID"] = "alice"
os.environ["JUPYTERHUB_USER"] = "alice"
try:
    import cnnlab.quiz
    cnnlab.quiz.set_graded_student("alice")
except Exception as exc:
    print("refused:", exc)
"""


@pytest.mark.slow
def test_graded_with_the_submitters_numbers_only(quiz_grader):
    g = quiz_grader
    alice, bob = quiz.answer_key("alice"), quiz.answer_key("bob")
    same = {k for k in alice if alice[k] == bob[k]}
    assert len(same) <= 8, same
    full = {k: 1.0 for k in alice}
    # the reference solution computes from the numbers the notebook shows: full marks for anyone
    assert _grade(g, "alice", g.solution_notebook("08_quiz")) == full
    # each with their own numbers, written as plain values: full marks
    assert _grade(g, "bob", _literal(g, bob)) == full
    # bob hands in alice's answers: he loses every question whose answer differs for him
    copied = _grade(g, "bob", _literal(g, alice))
    assert {k for k, v in copied.items() if v == 1.0} == same
    # ... and claiming to be alice (the id the notebook shows, the environment, the quiz module) gains nothing
    nb = _literal(g, alice, EDIT_THE_ID)
    setup = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    setup.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                            text="Your quiz numbers are drawn for student 'alice'\n")]
    assert _grade(g, "bob", nb) == copied
    # ... and switching the kernel's own record to alice's (so that its checks pass on her answers) gains
    # nothing either: the verifier judges outside, with the grader's record of who submitted
    forged = _literal(g, alice, "import cnnlab.quiz\ncnnlab.quiz._GRADED['id'] = 'alice'")
    assert _grade(g, "bob", forged) == copied
