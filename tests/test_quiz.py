"""Tests for cnnlab.quiz: the computed answers equal the syllabus numbers; responses are parsed leniently;
feedback on a wrong answer names the slip and gives a hint but never the answer (unless asked)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab import quiz

EXPECTED = {
    1: "vertical edges", 2: 27_000_100, 3: 7_600, 4: (29, 29, 32), 5: (19, 19, 8), 6: 3, 7: (16, 16, 16), 8: False,
    9: 456, 10: 14_455_392, 11: 1_520, 12: 27_106_560, 13: 306, 14: 760, 15: 768_000, 16: 7, 17: 8,
    18: (14, 14, 6), 19: 62_958, 20: False, 21: 2, 22: 3, 23: (8, 256, 6, 6), 24: 512, 25: 0,
}


def test_answers_match_the_syllabus():
    assert {q.number: q.answer for q in quiz.questions()} == EXPECTED
    assert [q.number for q in quiz.QUESTIONS] == list(range(1, len(EXPECTED) + 1))


def test_every_question_states_its_layout_and_has_an_answer_free_hint_and_slips():
    for q in quiz.QUESTIONS:
        assert q.layout in quiz.LAYOUTS
        if q.kind == "shape" or "x" in q.text.split("?")[0] and q.layout:
            assert ("H x W x C" in q.prompt()) or ("(N, C, H, W)" in q.prompt()), q.number
        assert q.hint and q.explanation and q.slips, q.number
        for wrong, says in q.slips:
            assert quiz.parse_answer(q, wrong) != q.answer, (q.number, wrong)
            assert says
    assert {q.layout for q in quiz.QUESTIONS} == {"", "HWC", "NCHW"}


@pytest.mark.parametrize("number, response", [
    (1, "vertical edges"), (1, "A"), (1, "(a)"), (1, "a)"), (1, "Vertical"), (1, "vertical edge"),
    (2, 27000100), (2, "27,000,100"), (2, "27 000 100"), (2, "27_000_100"), (2, np.int64(27000100)),
    (2, "27000100 parameters"), (2, 27000100.0),
    (4, "29x29x32"), (4, "29 x 29 x 32"), (4, "(29, 29, 32)"), (4, [29, 29, 32]), (4, "29×29×32"),
    (4, "29X29X32"), (4, "29 by 29 by 32"), (4, np.array([29, 29, 32])), (4, (29.0, 29, 32)),
    (6, 3.0), (6, "3"), (8, False), (8, "false"), (8, "F"), (8, "no"), (8, np.bool_(False)),
    (23, (8, 256, 6, 6)), (23, "8x256x6x6"), (23, "(8, 256, 6, 6)"),
])
def test_correct_responses(number, response):
    ok, feedback = quiz.check(number, response)
    assert ok, feedback
    assert feedback.startswith("Correct: ")


def test_wrong_answers_get_the_slip_and_a_hint_but_not_the_answer():
    ok, feedback = quiz.check(4, (28, 28, 32))
    assert not ok and feedback.startswith("Not quite.") and "+ 1" in feedback and "Hint:" in feedback
    assert "29" not in feedback
    ok, feedback = quiz.check(8, True)
    assert not ok and "THROUGH pooling" in feedback and "False" not in feedback
    ok, feedback = quiz.check(2, 27_000_000)
    assert not ok and "forgot the biases" in feedback and "27,000,100" not in feedback
    ok, feedback = quiz.check(4, (30, 30, 32))  # not a classic slip: a hint only
    assert not ok and "Likely slip" not in feedback and "Hint:" in feedback


def test_reveal_shows_the_answer():
    ok, feedback = quiz.check(4, (30, 30, 32), reveal=True)
    assert not ok and "The answer is 29x29x32" in feedback and "floor" in feedback


def test_unreadable_responses_say_the_form():
    ok, feedback = quiz.check(2, "lots")
    assert not ok and "needs a whole number" in feedback
    ok, feedback = quiz.check(1, "z")
    assert not ok and "letter" in feedback and "(a) vertical edges" in feedback
    ok, feedback = quiz.check(1, 0)  # an index is ambiguous (0- or 1-based?): refused
    assert not ok and "letter" in feedback
    ok, feedback = quiz.check(1, "edges")  # matches several choices
    assert not ok
    ok, feedback = quiz.check(8, "maybe")
    assert not ok and "True or False" in feedback
    ok, feedback = quiz.check(7, "16 by 16 pixels")
    assert not ok and "HxWxC" in feedback
    ok, feedback = quiz.check(2, "29x29x32")
    assert not ok and "whole number" in feedback
    ok, feedback = quiz.check(6, 3.5)
    assert not ok and "whole number" in feedback


def test_get_and_answer_text():
    assert quiz.get(2).answer_text() == "27,000,100"
    assert quiz.get(5).answer_text() == "19x19x8"
    assert quiz.get(8).answer_text() == "False"
    assert quiz.get(23).answer_text() == "(8, 256, 6, 6)"
    with pytest.raises(ValueError, match="no question 99"):
        quiz.get(99)


def test_slip_for():
    q = quiz.get(5)
    assert "once instead of twice" in quiz.slip_for(q, (17, 17, 8))
    assert quiz.slip_for(q, (18, 18, 8)) is None


def test_the_quiz_filter_ignores_horizontal_edges():
    """The computation behind question 1: a strong response to vertical edges, none to horizontal ones."""
    from cnnlab.data import edge_image

    def peak(img, k):
        return max(abs(float(np.sum(img[i:i + 4, j:j + 4] * k))) for i in range(5) for j in range(5))

    assert peak(edge_image(8), quiz._Q1_FILTER) == 100
    assert peak(edge_image(8, orientation="horizontal"), quiz._Q1_FILTER) == 0
