"""Tests for cnnlab.quiz: the computed answers equal the syllabus numbers; responses are parsed leniently."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab import quiz

EXPECTED = {
    1: "vertical edges", 2: 27_000_100, 3: 7_600, 4: (29, 29, 32), 5: (19, 19, 8), 6: 3, 7: (16, 16, 16), 8: False,
    9: 456, 10: 14_455_392, 11: 1_520, 12: 27_106_560, 13: 306, 14: 760, 15: 768_000, 16: 7, 17: 8,
    18: (14, 14, 6), 19: 62_958, 20: False,
}


def test_answers_match_the_syllabus():
    assert {q.number: q.answer for q in quiz.questions()} == EXPECTED
    assert [q.number for q in quiz.QUESTIONS] == list(range(1, len(EXPECTED) + 1))


@pytest.mark.parametrize("number, response", [
    (1, "vertical edges"), (1, "A"), (1, 0),
    (2, 27000100), (2, "27,000,100"), (2, "27 000 100"), (2, np.int64(27000100)),
    (4, "29x29x32"), (4, "29 x 29 x 32"), (4, "(29, 29, 32)"), (4, [29, 29, 32]), (4, "29×29×32"),
    (6, 3.0), (8, False), (8, "false"), (8, "F"),
])
def test_correct_responses(number, response):
    ok, feedback = quiz.check(number, response)
    assert ok, feedback
    assert feedback.startswith("Correct: ")


def test_wrong_and_unreadable_responses():
    ok, feedback = quiz.check(4, (30, 30, 32))
    assert not ok and "the answer is 29x29x32" in feedback and "floor" in feedback
    ok, feedback = quiz.check(8, True)
    assert not ok and "gradient still flows" in feedback
    ok, feedback = quiz.check(2, "lots")
    assert not ok and "needs a whole number" in feedback
    ok, feedback = quiz.check(1, "z")
    assert not ok and "answer with one of" in feedback
    ok, feedback = quiz.check(8, "maybe")
    assert not ok and "True or False" in feedback
    ok, feedback = quiz.check(7, "16 by 16")
    assert not ok and "shape such as" in feedback


def test_get_and_answer_text():
    assert quiz.get(2).answer_text() == "27,000,100"
    assert quiz.get(5).answer_text() == "19x19x8"
    assert quiz.get(8).answer_text() == "False"
    with pytest.raises(ValueError, match="no question 99"):
        quiz.get(99)


def test_the_quiz_filter_ignores_horizontal_edges():
    """The computation behind question 1: a strong response to vertical edges, none to horizontal ones."""
    from cnnlab.data import edge_image

    def peak(img, k):
        return max(abs(float(np.sum(img[i:i + 4, j:j + 4] * k))) for i in range(5) for j in range(5))

    assert peak(edge_image(8), quiz._Q1_FILTER) == 100
    assert peak(edge_image(8, orientation="horizontal"), quiz._Q1_FILTER) == 0
