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
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("CNNLAB_STATIC", raising=False)


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
    assert repr(box).startswith("Self-check quiz: 25 questions")   # what a run without a browser keeps


def test_widget_is_inert_under_nbgrader(monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert wq.quiz_widget() is None
    out = capsys.readouterr().out
    assert out.startswith("Self-check quiz: 25 questions") and "Q23 [(N, C, H, W)]" in out
    assert len(out.splitlines()) == len(quiz.QUESTIONS) + 2   # the questions only, no answers


def test_widget_subset_and_static_without_a_front_end(capsys):
    assert wq.quiz_widget([1, 8]) is None   # pytest has no front end
    out = capsys.readouterr().out
    assert "2 questions" in out and "Q8" in out and "Q2:" not in out
