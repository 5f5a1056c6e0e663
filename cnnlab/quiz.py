"""The self-check quiz: questions on convolution arithmetic, each answer computed by ``cnnlab.shapes``.

Questions 1-8 follow the eight self-check questions of the course's quiz (week 1 of a well-known CNN
course), stated channel-last (H x W x C) as that quiz states them; the later ones reuse the course's
other numbers. No answer is typed in: every one is computed when this module is imported, from
``cnnlab.shapes`` (sizes and counts) or from a tiny NumPy experiment (questions 1 and 8).

    >>> from cnnlab import quiz
    >>> quiz.check(4, "29x29x32")  # doctest: +ELLIPSIS
    (True, 'Correct: 29x29x32. ...')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnlab import shapes
from cnnlab.data import edge_image

__all__ = ["Question", "QUESTIONS", "questions", "get", "check", "parse_answer"]


@dataclass(frozen=True)
class Question:
    """One quiz question.

    number: 1-based id; text: the question; kind: "int" (a count or size), "shape" (a tuple such as
    (29, 29, 32)), "bool" (true/false) or "choice" (one of ``choices``); answer: the computed answer
    (for "choice", the correct choice's text); explanation: how the answer is computed.
    """

    number: int
    text: str
    kind: str
    answer: object
    explanation: str
    choices: tuple[str, ...] = ()

    def answer_text(self) -> str:
        """Return the answer as a student would write it ("27,000,100", "29x29x32", "False")."""
        if self.kind == "int":
            return f"{self.answer:,}"
        if self.kind == "shape":
            return "x".join(str(s) for s in self.answer)  # type: ignore[union-attr]
        return str(self.answer)


# ----------------------------------------------------------------------------------------------
# answers that need a small experiment
# ----------------------------------------------------------------------------------------------
_Q1_FILTER = np.array([[0, 1, -1, 0], [1, 3, -3, -1], [1, 3, -3, -1], [0, 1, -1, 0]], dtype=float)
_Q1_CHOICES = ("vertical edges", "horizontal edges", "45-degree edges", "image contrast")


def _strongest_edge_response(kernel: np.ndarray) -> str:
    """Correlate ``kernel`` with vertical and horizontal step edges and a flat image; name what it detects."""
    def peak(img: np.ndarray) -> float:
        kh, kw = kernel.shape
        return max(abs(float(np.sum(img[i:i + kh, j:j + kw] * kernel)))
                   for i in range(img.shape[0] - kh + 1) for j in range(img.shape[1] - kw + 1))

    vertical = peak(edge_image(8))
    horizontal = peak(edge_image(8, orientation="horizontal"))
    flat = peak(np.full((8, 8), 10.0))
    diagonal = peak(np.triu(np.full((8, 8), 10.0)))
    scores = {"vertical edges": vertical, "horizontal edges": horizontal, "45-degree edges": diagonal,
              "image contrast": flat}
    return max(scores, key=scores.get)  # type: ignore[arg-type]


def _pooling_passes_gradients() -> bool:
    """Return True when a change of one input of a 2x2 max pool changes the output (so gradients flow)."""
    x = np.arange(16, dtype=float).reshape(4, 4)

    def pooled_sum(a: np.ndarray) -> float:
        return float(a.reshape(2, 2, 2, 2).max(axis=(1, 3)).sum())

    h = 1e-3
    bumped = x.copy()
    bumped[1, 1] += h  # the maximum of the top-left window
    derivative = (pooled_sum(bumped) - pooled_sum(x)) / h
    has_no_params = shapes.layer_table([shapes.Pool(2)], (1, 4, 4))[-1].params == 0
    return has_no_params and abs(derivative - 1.0) < 1e-6


# ----------------------------------------------------------------------------------------------
# the questions
# ----------------------------------------------------------------------------------------------
def _build() -> tuple[Question, ...]:
    s = shapes
    q4 = s.conv_output_size(63, 7, pad=0, stride=2)
    q5 = 15 + 2 * 2
    q7 = s.pool_output_size(32, 2, 2)
    lecture = s.layer_table(s.LENET5_LECTURE)
    return (
        Question(1, "Which kind of feature does the 4x4 filter [[0,1,-1,0],[1,3,-3,-1],[1,3,-3,-1],[0,1,-1,0]] "
                    "detect?", "choice", _strongest_edge_response(_Q1_FILTER),
                 "Its columns go from positive (left) to negative (right) and every row is alike, so it responds "
                 "to a change from left to right: a vertical edge. Correlating it with step edges confirms it.",
                 _Q1_CHOICES),
        Question(2, "A 300x300 RGB image feeds a fully connected layer of 100 neurons. How many parameters "
                    "(weights and biases) does the layer have?", "int", s.fc_params(300 * 300 * 3, 100),
                 "Each neuron has one weight per input value (300*300*3) plus a bias: (3*300*300 + 1) * 100."),
        Question(3, "The same 300x300 RGB image feeds a conv layer of 100 filters of size 5x5. How many "
                    "parameters does the layer have?", "int", s.conv_params(3, 100, 5),
                 "Each filter has 5*5*3 weights plus one bias, whatever the image size: 100 * (5*5*3 + 1)."),
        Question(4, "A 63x63x16 input is convolved with 32 filters of size 7x7, stride 2, no padding. "
                    "What is the output volume (H x W x C)?", "shape", (q4, q4, 32),
                 "floor((63 + 0 - 7) / 2) + 1 = 29 along each axis, one channel per filter."),
        Question(5, "A 15x15x8 input is zero-padded with pad = 2. What is its size (H x W x C)?", "shape",
                 (s.conv_output_size(15, 1, pad=2), s.conv_output_size(15, 1, pad=2), 8),
                 f"2 pixels on each side: 15 + 2*2 = {q5}; padding does not change the number of channels."),
        Question(6, "A 63x63x16 input is convolved with 7x7 filters, stride 1, with a 'same' convolution. "
                    "How much padding is needed?", "int", s.same_padding(7),
                 "'Same' needs n + 2p - f + 1 = n, so p = (f - 1) / 2 = (7 - 1) / 2."),
        Question(7, "A 32x32x16 input goes through max pooling with a 2x2 window and stride 2. What is the "
                    "output volume (H x W x C)?", "shape", (q7, q7, 16),
                 "(32 - 2) / 2 + 1 = 16 per axis; pooling works on each channel separately."),
        Question(8, "True or false: pooling layers have no parameters, so they do not affect backpropagation.",
                 "bool", not _pooling_passes_gradients(),
                 "False. Pooling has no parameters, but the gradient still flows through it to the layers "
                 "below (to the maximum of each window for max pooling, spread evenly for average pooling)."),
        Question(9, "How many parameters has a conv layer of six 5x5 filters on a 32x32x3 image?", "int",
                 s.conv_params(3, 6, 5), "(5*5*3 + 1) * 6."),
        Question(10, "How many parameters would a fully connected layer need to map 32x32x3 to 28x28x6 "
                     "(with biases)?", "int", s.fc_params(32 * 32 * 3, 28 * 28 * 6),
                 "3,072 inputs * 4,704 outputs + 4,704 biases; the conv layer doing the same does it with 456."),
        Question(11, "How many parameters has a conv layer of twenty 5x5 filters on a 28x28x3 input?", "int",
                 s.conv_params(3, 20, 5), "5*5*3*20 + 20."),
        Question(12, "And a fully connected layer from 28x28x3 to 24x24x20 (with biases)?", "int",
                 s.fc_params(28 * 28 * 3, 24 * 24 * 20), "2,352 * 11,520 weights + 11,520 biases."),
        Question(13, "A 2-channel input goes through six 5x5 filters. How many parameters?", "int",
                 s.conv_params(2, 6, 5), "(5*5*2 + 1) * 6."),
        Question(14, "A 32x32x3 image goes through ten 5x5 filters, stride 1, pad 2. How many parameters?",
                 "int", s.conv_params(3, 10, 5), "(5*5*3 + 1) * 10 = 760 (750 weights and 10 biases)."),
        Question(15, "For the same layer, how many multiply-adds for one image?", "int",
                 s.conv_macs(3, 10, 5, 5, s.conv_output_size(32, 5, 2), s.conv_output_size(32, 5, 2)),
                 "Output 32x32x10, each value a dot product of length 5*5*3: 75 * 10,240."),
        Question(16, "What is the receptive field of three stacked 3x3 stride-1 conv layers?", "int",
                 s.receptive_field([(3, 1)] * 3), "1 + L(K - 1) = 1 + 3*2."),
        Question(17, "And of conv 3x3 (stride 1), then 2x2 max pool (stride 2), then conv 3x3 (stride 1)?", "int",
                 s.receptive_field([(3, 1), (2, 2), (3, 1)]),
                 "3 after the first conv, 4 after the pool, then the second conv adds (3 - 1) * 2 because the "
                 "pool doubled the step between neighbouring outputs."),
        Question(18, "A 28x28x6 volume goes through 2x2 max pooling with stride 2. Output volume (H x W x C)?",
                 "shape", (s.pool_output_size(28), s.pool_output_size(28), 6), "28 / 2 = 14 per axis."),
        Question(19, "How many parameters has the lecture's LeNet-5-like network (32x32x3 input, 8 and 16 "
                     "filters, FC 120, 84, 10)?", "int", s.total_params(lecture),
                 "608 + 3,216 + 48,120 + 10,164 + 850; more than 90% sit in the FC layers."),
        Question(20, "True or false: a 3x3 filter with stride 3 fits a 7x7 input without padding.", "bool",
                 _fits(7, 3, 0, 3),
                 "(7 - 3) / 3 is not a whole number, so the last column would be skipped; frameworks floor "
                 "to 2, the course's strict mode refuses."),
    )


def _fits(n: int, f: int, pad: int, stride: int) -> bool:
    try:
        shapes.conv_output_size(n, f, pad, stride, strict=True)
    except ValueError:
        return False
    return True


QUESTIONS: tuple[Question, ...] = _build()


def questions() -> list[Question]:
    """Return all quiz questions, in order."""
    return list(QUESTIONS)


def get(number: int) -> Question:
    """Return question ``number`` (1-based); ValueError for an unknown number."""
    for q in QUESTIONS:
        if q.number == number:
            return q
    raise ValueError(f"no question {number!r}; questions are numbered 1..{len(QUESTIONS)}")


def parse_answer(question: Question, response: object) -> object:
    """Turn a response into the form of ``question.answer``; ValueError when it cannot be read.

    Accepted: ints or strings such as "27,000,100" / "27 000 100" for counts; tuples, lists or strings
    such as "29x29x32", "29 x 29 x 32", "(29, 29, 32)" for shapes; True/False or "true"/"false"/"t"/"f"
    for true/false; a choice's text, its letter ("a") or its 0-based index for multiple choice.
    """
    kind = question.kind
    if kind == "int":
        if isinstance(response, (int, np.integer)) and not isinstance(response, bool):
            return int(response)
        if isinstance(response, float) and response.is_integer():
            return int(response)
        if isinstance(response, str) and re.fullmatch(r"\s*\d[\d,_ ]*\s*", response):
            return int(re.sub(r"[,_ ]", "", response))
        raise ValueError(f"question {question.number} needs a whole number, got {response!r}")
    if kind == "shape":
        if isinstance(response, str):
            parts = [p for p in re.split(r"[x×*,()\[\]\s]+", response.strip().lower()) if p]
        elif isinstance(response, Sequence):
            parts = list(response)
        else:
            raise ValueError(f"question {question.number} needs a shape such as 29x29x32, got {response!r}")
        try:
            return tuple(int(p) for p in parts)
        except (TypeError, ValueError):
            raise ValueError(f"question {question.number} needs a shape such as 29x29x32, got {response!r}") from None
    if kind == "bool":
        if isinstance(response, (bool, np.bool_)):
            return bool(response)
        if isinstance(response, str) and response.strip().lower() in ("true", "t", "false", "f"):
            return response.strip().lower() in ("true", "t")
        raise ValueError(f"question {question.number} needs True or False, got {response!r}")
    # choice
    choices = question.choices
    if isinstance(response, (int, np.integer)) and not isinstance(response, bool) and 0 <= response < len(choices):
        return choices[int(response)]
    if isinstance(response, str):
        r = response.strip().lower()
        if len(r) == 1 and "a" <= r < chr(ord("a") + len(choices)):
            return choices[ord(r) - ord("a")]
        for c in choices:
            if r == c.lower():
                return c
    raise ValueError(f"question {question.number}: answer with one of {list(choices)} (or a, b, c, ...), "
                     f"got {response!r}")


def check(number: int, response: object) -> tuple[bool, str]:
    """Check a response to question ``number``; return (correct, feedback).

    The feedback gives the answer and how it is computed when the response is right or wrong; a
    response that cannot be read returns (False, a message saying which form is expected).
    """
    q = get(number)
    try:
        value = parse_answer(q, response)
    except ValueError as err:
        return False, str(err)
    if value == q.answer:
        return True, f"Correct: {q.answer_text()}. {q.explanation}"
    return False, f"Not quite: the answer is {q.answer_text()}. {q.explanation}"
