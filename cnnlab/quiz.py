"""The self-check quiz: questions on convolution arithmetic, each answer computed by ``cnnlab.shapes``.

Questions 1-8 follow the eight self-check questions of the course's quiz (week 1 of a well-known CNN
course), stated channel-last (H x W x C) as that quiz states them; the later ones reuse the course's
other numbers, and two of them use PyTorch's (N, C, H, W). Every question with a volume says its
layout. No answer is typed in: every one is computed from ``cnnlab.shapes`` (sizes and counts) or
from a tiny NumPy experiment (questions 1 and 8).

**Variants.** Every computational question draws its numbers (input sizes, kernel sizes, strides,
paddings, channel and filter counts) for each student: :func:`variant` seeds each draw with a keyed
hash (BLAKE2b, the same on every Python version) of the assignment, the student's id, the question
and the number's name, and keeps only draws where the question stays meaningful (the sizes fit, the
answer is a whole number, no classic wrong answer equals the right one). Without a student id the
numbers are the original quiz's. Whose numbers a kernel uses (:func:`current_student`):

- while the grader runs a submission: the grader's record of who submitted, told to the kernel
  before its first cell (:func:`kernel_preamble`, :func:`set_graded_student`); nothing the
  student's code or environment says counts then;
- otherwise ``CNNLAB_STUDENT_ID`` (set by the course's environment), then JupyterHub's user name
  (``JUPYTERHUB_USER``), else none: the original numbers (self-learners);
- ``CNNLAB_QUIZ_VARIANTS=off`` (in the students' environment and the grader's) turns variants off.

A student may look at anyone's numbers (set ``CNNLAB_STUDENT_ID`` in their own kernel); the graded
answer is always that of the id the grader records, so doing so gains nothing. Code that rewrites
this module's record inside the grading kernel is beyond what the kernel can stop: the grader's
trusted verifier is to compare the answer cells outside the kernel with :func:`answer_key`.

Each question also carries a ``hint`` that never contains the answer, and ``slips``: the classic
wrong answers (forgot the bias, forgot the channel depth, padding added on one side only, ...), each
with what went wrong and, where it is a computation, the code that makes it (``slip_code``, written
over the student's numbers: ``q = question(4)``). Notebook 08 grades its answer cells with them
(``cnnlab.checks.nb08``) and the interactive version is ``cnnlab.widgets.quiz.quiz_widget``.

    >>> from cnnlab import quiz
    >>> quiz.check(4, "29x29x32", student=None)  # doctest: +ELLIPSIS
    (True, 'Correct: 29x29x32. ...')
    >>> quiz.check(4, "28x28x32", student=None)  # doctest: +ELLIPSIS
    (False, 'Not quite. Likely slip: ...')
"""

from __future__ import annotations

import functools
import hashlib
import html
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np

from cnnlab import shapes
from cnnlab.data import edge_image

__all__ = ["Question", "QuestionView", "Student", "QUESTIONS", "LAYOUTS", "ASSIGNMENT", "CURRENT", "ID_ENV",
           "VARIANTS_ENV", "questions", "get", "check", "parse_answer", "slip_for", "is_right", "variant",
           "answer_key", "question", "current_student", "whose_numbers", "set_graded_student",
           "graded_student", "kernel_preamble", "key_table"]

ASSIGNMENT = "08_quiz"
ID_ENV = "CNNLAB_STUDENT_ID"          # the student's id, as the course's environment (or the grader) sets it
VARIANTS_ENV = "CNNLAB_QUIZ_VARIANTS"  # "off": everyone gets the original numbers
_HASH_KEY = b"cnnlab quiz variants v1"
_ATTEMPTS = 400

#: How each layout is stated to the student (only where the question has a volume).
LAYOUTS: dict[str, str] = {
    "HWC": "sizes are height x width x channels (H x W x C), as in the original quiz",
    "NCHW": "shapes are (N, C, H, W): batch, channels, height, width, as in PyTorch",
    "": "",
}


@dataclass(frozen=True)
class Question:
    """One quiz question, for one student's numbers.

    number: 1-based id; text: the question; kind: "int" (a count or size), "shape" (a tuple such as
    (29, 29, 32)), "bool" (true/false) or "choice" (one of ``choices``); answer: the computed answer
    (for "choice", the correct choice's text); explanation: how the answer is computed (shown once the
    answer is right, or on request); hint: what to think about, without the answer; layout: "HWC",
    "NCHW" or "" (no volume involved); slips: classic wrong answers, ``(wrong answer, what went wrong)``;
    slip_code: for each slip, the expression that computes it from the student's numbers (``q.n``...),
    or "" for a slip that is a plain value; topic: a few words for the notebook's heading; params: the
    student's numbers, ``(name, value)``; student: whose numbers (None: the original quiz's).
    """

    number: int
    text: str
    kind: str
    answer: object
    explanation: str
    choices: tuple[str, ...] = ()
    hint: str = ""
    layout: str = ""
    slips: tuple[tuple[object, str], ...] = ()
    slip_code: tuple[str, ...] = ()
    topic: str = ""
    params: tuple[tuple[str, int], ...] = ()
    student: str | None = None

    def answer_text(self) -> str:
        """Return the answer as a student would write it ("27,000,100", "29x29x32", "False")."""
        if self.kind == "int":
            return f"{self.answer:,}"
        if self.kind == "shape":
            if self.layout == "NCHW":
                return "(" + ", ".join(str(s) for s in self.answer) + ")"  # type: ignore[union-attr]
            return "x".join(str(s) for s in self.answer)  # type: ignore[union-attr]
        return str(self.answer)

    def answer_format(self) -> str:
        """Say how to write the answer (the forms ``parse_answer`` reads)."""
        if self.kind == "int":
            return 'a whole number, e.g. 1234 or "1,234"'
        if self.kind == "bool":
            return 'True or False (the text "true" / "false" also works)'
        if self.kind == "choice":
            return f'the text of one choice or its letter ("a" to "{chr(96 + len(self.choices))}")'
        n = len(self.answer)  # type: ignore[arg-type]
        if self.layout == "NCHW":
            return f'a tuple of {n} numbers (N, C, H, W) such as (2, 3, 4, 4), or the text "2x3x4x4"'
        return f'the text "HxWxC" such as "12x12x3" (spaces are fine), or a tuple of {n} numbers (12, 12, 3)'

    def prompt(self) -> str:
        """The question as the notebook and the widget show it: text, then its layout (where it has a volume)."""
        layout = LAYOUTS[self.layout]
        return f"{self.text} ({layout[0].upper() + layout[1:]}.)" if layout else self.text

    @property
    def numbers(self) -> dict[str, int]:
        """The student's numbers by name (empty for a question without numbers)."""
        return dict(self.params)


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


def _fits(n: int, f: int, pad: int, stride: int) -> bool:
    try:
        shapes.conv_output_size(n, f, pad, stride, strict=True)
    except ValueError:
        return False
    return True


_Q1_ANSWER = _strongest_edge_response(_Q1_FILTER)
_Q8_ANSWER = not _pooling_passes_gradients()

# ----------------------------------------------------------------------------------------------
# the questions: one builder per question, from the student's numbers ``q``
# ----------------------------------------------------------------------------------------------
_NO_BIAS = "forgot the biases: one per neuron (or filter) on top of the weights"
_NO_DEPTH = "forgot the channel depth: give height, width and channels"
_FILTER_DEPTH = "forgot the channel depth: each filter is as deep as its input (3 channels for RGB)"


def _a(n: int) -> str:
    """ "A" or "An" before a number as it is read aloud ("an 8x8 input", "an 11x11 input")."""
    return "An" if str(n).startswith("8") or n in (11, 18) else "A"


class _Numbers(SimpleNamespace):
    """The student's numbers while a question is built; remembers which ones the question reads."""

    def __init__(self, **kw: int) -> None:
        super().__init__(**kw)
        object.__setattr__(self, "_read", [])

    def __getattribute__(self, name: str):
        if not name.startswith("_"):
            read = object.__getattribute__(self, "_read")
            if name not in read:
                read.append(name)
        return object.__getattribute__(self, name)


def _eval(expr: str, q: SimpleNamespace) -> object:
    return eval(expr, {"__builtins__": {}}, {"q": q})  # noqa: S307 - the course's own expressions


def _slips(q: SimpleNamespace, table: Sequence[tuple[str | object, str]]) -> dict:
    """``slips`` and ``slip_code`` from ``(expression over q, or a plain value, what went wrong)``."""
    values, codes = [], []
    for what, says in table:
        if isinstance(what, str) and "q." in what:
            values.append((_eval(what, q), says))
            codes.append(what)
        else:
            values.append((what, says))
            codes.append("")
    return {"slips": tuple(values), "slip_code": tuple(codes)}


def _b1(q):
    return Question(
        1, "Which kind of feature does the 4x4 filter [[0,1,-1,0],[1,3,-3,-1],[1,3,-3,-1],[0,1,-1,0]] detect?",
        "choice", _Q1_ANSWER,
        "Its columns go from positive (left) to negative (right) and every row is alike, so it responds "
        "to a change from left to right: a vertical edge. Correlating it with step edges confirms it.",
        _Q1_CHOICES, topic="what a filter detects",
        hint="Compare its columns and its rows: along which direction do the weights change sign?",
        slips=(("horizontal edges", "the weights change sign from column to column (left to right), not "
                                    "from row to row; a change across columns marks a vertical edge"),
               ("image contrast", "the weights sum to zero, so a flat patch gives 0 whatever its "
                                  "brightness: the filter responds to changes, not to contrast")))


def _b2(q):
    return Question(
        2, f"{_a(q.n)} {q.n}x{q.n}x3 RGB image feeds a fully connected layer of {q.units} neurons. How many parameters "
           "(weights and biases) does the layer have?", "int", shapes.fc_params(q.n * q.n * 3, q.units),
        f"Each neuron has one weight per input value ({q.n}*{q.n}*3) plus a bias: "
        f"({q.n}*{q.n}*3 + 1) * {q.units}.",
        topic="a fully connected layer on an image",
        hint="Every neuron has one weight per input value (count the colour channels) and one bias.",
        layout="HWC",
        **_slips(q, (("q.n * q.n * 3 * q.units", _NO_BIAS),
                     ("(q.n * q.n + 1) * q.units", "forgot the channel depth: an RGB image has 3 values per pixel"),
                     ("q.n * q.n * 3 * q.units + 1", "a single bias for the whole layer: each neuron has its own"))))


def _b3(q):
    return Question(
        3, f"The same {q.n}x{q.n}x3 image feeds a conv layer of {q.filters} filters of size {q.f}x{q.f}. How "
           "many parameters does the layer have?", "int", shapes.conv_params(3, q.filters, q.f),
        f"Each filter has {q.f}*{q.f}*3 weights plus one bias, whatever the image size: "
        f"{q.filters} * ({q.f}*{q.f}*3 + 1).",
        topic="a conv layer on the same image",
        hint=f"A filter has one weight per value of its {q.f}x{q.f} window through all channels, and one bias; "
             "the image size does not matter.", layout="HWC",
        **_slips(q, (("q.filters * q.f * q.f * 3", _NO_BIAS),
                     ("q.filters * (q.f * q.f + 1)", _FILTER_DEPTH))))


def _b4(q):
    side = shapes.conv_output_size(q.n, q.f, pad=0, stride=q.stride, strict=True)
    return Question(
        4, f"{_a(q.n)} {q.n}x{q.n}x{q.c} input is convolved with {q.filters} filters of size {q.f}x{q.f}, stride "
           f"{q.stride}, no padding. What is the output volume?", "shape", (side, side, q.filters),
        f"floor(({q.n} + 0 - {q.f}) / {q.stride}) + 1 = {side} along each axis, one channel per filter.",
        topic="the output of a strided convolution",
        hint="Use floor((n + 2p - f) / s) + 1 for the height and the width; the depth is the number of "
             "filters.", layout="HWC",
        **_slips(q, (("((q.n - q.f) // q.stride, (q.n - q.f) // q.stride, q.filters)",
                      "forgot the + 1 of floor((n + 2p - f) / s) + 1: (n - f) / s counts the steps, not the "
                      "positions"),
                     ("(q.n - q.f + 1, q.n - q.f + 1, q.filters)", "stride ignored: the filter moves s pixels at a time"),
                     ("((q.n - q.f) // q.stride + 1, (q.n - q.f) // q.stride + 1, q.c)",
                      "the output depth is the number of filters, not the input's depth"),
                     ("((q.n - q.f) // q.stride + 1, (q.n - q.f) // q.stride + 1)", _NO_DEPTH),
                     ("(q.filters, (q.n - q.f) // q.stride + 1, (q.n - q.f) // q.stride + 1)",
                      "channels first: this question writes volumes as H x W x C"))))


def _b5(q):
    side = q.n + 2 * q.pad
    return Question(
        5, f"{_a(q.n)} {q.n}x{q.n}x{q.c} input is zero-padded with pad = {q.pad}. What is its size?", "shape",
        (side, side, q.c),
        f"{q.pad} pixels on each side: {q.n} + 2*{q.pad} = {side}; padding does not change the number of channels.",
        topic="zero padding",
        hint=f"pad = {q.pad} adds {q.pad} pixels on each side of the height and of the width; the channels stay.",
        layout="HWC",
        **_slips(q, (("(q.n + q.pad, q.n + q.pad, q.c)", "padding added once instead of twice: pad = p adds p "
                                                          "pixels on EACH side"),
                     ("(q.n + 2 * q.pad, q.n + 2 * q.pad)", _NO_DEPTH),
                     ("(q.n + 2 * q.pad, q.n + 2 * q.pad, q.c + 2 * q.pad)",
                      "padding is added to height and width only, never to the channels"))))


def _b6(q):
    return Question(
        6, f"{_a(q.n)} {q.n}x{q.n}x{q.c} input is convolved with {q.f}x{q.f} filters, stride 1, with a 'same' "
           "convolution. How much padding is needed on each side?", "int", shapes.same_padding(q.f),
        f"'Same' needs n + 2p - f + 1 = n, so p = (f - 1) / 2 = ({q.f} - 1) / 2.",
        topic="padding for a 'same' convolution",
        hint="'Same' means the output size equals the input size: solve n + 2p - f + 1 = n for p.",
        layout="HWC",
        **_slips(q, (("q.f - 1", "that is the padding of both sides together; pad counts one side"),
                     (0, "no padding is a 'valid' convolution, which shrinks the map"))))


def _b7(q):
    side = shapes.pool_output_size(q.n, q.k, q.stride, strict=True)
    return Question(
        7, f"{_a(q.n)} {q.n}x{q.n}x{q.c} input goes through max pooling with a {q.k}x{q.k} window and stride "
           f"{q.stride}. What is the output volume?", "shape", (side, side, q.c),
        f"({q.n} - {q.k}) / {q.stride} + 1 = {side} per axis; pooling works on each channel separately.",
        topic="the output of max pooling",
        hint="(n - f) / s + 1 per axis; pooling works on every channel separately.", layout="HWC",
        **_slips(q, (("((q.n - q.k) // q.stride, (q.n - q.k) // q.stride, q.c)", "forgot the + 1 of (n - f) / s + 1"),
                     ("(q.n - q.k + 1, q.n - q.k + 1, q.c)", "stride ignored: the window moves s pixels at a time"),
                     ("((q.n - q.k) // q.stride + 1, (q.n - q.k) // q.stride + 1, q.c // 2)",
                      "pooling does not change the number of channels"),
                     ("((q.n - q.k) // q.stride + 1, (q.n - q.k) // q.stride + 1)", _NO_DEPTH))))


def _b8(q):
    return Question(
        8, "True or false: pooling layers have no parameters, so they do not affect backpropagation.",
        "bool", _Q8_ANSWER,
        "False. Pooling has no parameters, but the gradient still flows through it to the layers "
        "below (to the maximum of each window for max pooling, spread evenly for average pooling).",
        topic="pooling and backpropagation",
        hint="Without parameters there is nothing to update in the layer, but what about the layers "
             "below it?",
        slips=((True, "no parameters, but backpropagation must pass the gradient THROUGH pooling to "
                      "the layers below, so it does affect it"),))


def _conv_count(number: int, q, topic: str) -> Question:
    return Question(
        number, f"How many parameters has a conv layer of {q.filters} filters of size {q.f}x{q.f} on a "
                f"{q.n}x{q.n}x3 image?", "int", shapes.conv_params(3, q.filters, q.f),
        f"({q.f}*{q.f}*3 + 1) * {q.filters}.", topic=topic,
        hint="(f * f * channels + 1) per filter, times the number of filters.", layout="HWC",
        **_slips(q, (("q.f * q.f * 3 * q.filters", _NO_BIAS),
                     ("(q.f * q.f + 1) * q.filters", _FILTER_DEPTH))))


def _b9(q):
    return _conv_count(9, q, "parameters of a conv layer")


def _b10(q):
    out = q.n - q.f + 1
    n_in, n_out = q.n * q.n * 3, out * out * q.filters
    return Question(
        10, f"How many parameters would a fully connected layer need to map {q.n}x{q.n}x3 to "
            f"{out}x{out}x{q.filters}, as question 9's {q.filters} filters of {q.f}x{q.f} do, with biases?", "int",
        shapes.fc_params(n_in, n_out),
        f"{n_in:,} inputs * {n_out:,} outputs + {n_out:,} biases; the conv layer doing the same does it with "
        f"{shapes.conv_params(3, q.filters, q.f):,}.",
        topic="the same map by a fully connected layer",
        hint=f"Every one of the {out}*{out}*{q.filters} outputs is connected to every one of the "
             f"{q.n}*{q.n}*3 inputs and has a bias.", layout="HWC",
        **_slips(q, (("q.n * q.n * 3 * (q.n - q.f + 1) * (q.n - q.f + 1) * q.filters", _NO_BIAS),
                     ("(q.f * q.f * 3 + 1) * q.filters", "that is the conv layer's count; the question asks for a "
                                                         "fully connected layer"))))


def _b11(q):
    return _conv_count(11, q, "parameters of another conv layer")


def _b12(q):
    out = q.n - q.f + 1
    n_in, n_out = q.n * q.n * 3, out * out * q.filters
    return Question(
        12, f"And a fully connected layer from {q.n}x{q.n}x3 to {out}x{out}x{q.filters} (the sizes of question "
            f"11's {q.f}x{q.f} conv layer), with biases?", "int", shapes.fc_params(n_in, n_out),
        f"{n_in:,} * {n_out:,} weights + {n_out:,} biases.", topic="and by a fully connected layer",
        hint=f"Every one of the {out}*{out}*{q.filters} outputs is connected to every one of the {q.n}*{q.n}*3 "
             "inputs and has a bias.", layout="HWC",
        **_slips(q, (("q.n * q.n * 3 * (q.n - q.f + 1) * (q.n - q.f + 1) * q.filters", _NO_BIAS),
                     ("q.n * q.n * 3 * (q.n - q.f + 1) * (q.n - q.f + 1) * q.filters + q.n * q.n * 3",
                      "one bias per input: biases belong to the outputs"))))


def _b13(q):
    return Question(
        13, f"{_a(q.c)} {q.c}-channel input goes through {q.filters} filters of size {q.f}x{q.f}. How many parameters?",
        "int", shapes.conv_params(q.c, q.filters, q.f), f"({q.f}*{q.f}*{q.c} + 1) * {q.filters}.",
        topic="a filter is as deep as its input", hint="A filter is as deep as its input.",
        **_slips(q, (("q.f * q.f * q.c * q.filters", _NO_BIAS),
                     ("(q.f * q.f + 1) * q.filters", "forgot the channel depth: each filter is as deep as its input"),
                     ("(q.f * q.f * 3 + 1) * q.filters", "assumed an RGB input: count this input's channels"))))


def _b14(q):
    return Question(
        14, f"{_a(q.n)} {q.n}x{q.n}x3 image goes through {q.filters} filters of size {q.f}x{q.f}, stride 1, pad {q.pad}. "
            "How many parameters?", "int", shapes.conv_params(3, q.filters, q.f),
        f"({q.f}*{q.f}*3 + 1) * {q.filters}: {q.f * q.f * 3 * q.filters:,} weights and {q.filters} biases.",
        topic="padding does not add parameters",
        hint="Stride and padding change the output size, not the number of weights.", layout="HWC",
        **_slips(q, (("q.f * q.f * 3 * q.filters", _NO_BIAS),
                     ("(q.f * q.f + 1) * q.filters", _FILTER_DEPTH))))


def _b15(q):
    out = shapes.conv_output_size(q.n, q.f, q.pad)
    return Question(
        15, f"For the same layer ({q.n}x{q.n}x3 image, {q.filters} filters of {q.f}x{q.f}, stride 1, pad {q.pad}), "
            "how many multiply-adds for one image?", "int", shapes.conv_macs(3, q.filters, q.f, q.f, out, out),
        f"Output {out}x{out}x{q.filters}, each value a dot product of length {q.f}*{q.f}*3: "
        f"{q.f * q.f * 3} * {out * out * q.filters:,}.",
        topic="multiply-adds of that layer",
        hint=f"Each output value is one dot product over a {q.f}x{q.f}x3 window; with pad {q.pad} how many "
             "output values are there?", layout="HWC",
        **_slips(q, (("q.f * q.f * 3 * q.filters * (q.n - q.f + 1) * (q.n - q.f + 1)",
                      "used the unpadded output size: this padding keeps the input's size"),
                     ("q.f * q.f * q.filters * q.n * q.n", "forgot the channel depth: each dot product runs over all 3 "
                                                           "channels"),
                     ("(q.f * q.f * 3 + 1) * q.filters * q.n * q.n", "counted the bias as a multiply-add: it is one "
                                                                     "add"))))


def _b16(q):
    return Question(
        16, f"What is the receptive field of {q.layers} stacked {q.k}x{q.k} stride-1 conv layers?", "int",
        shapes.receptive_field([(q.k, 1)] * q.layers), f"1 + L(K - 1) = 1 + {q.layers}*{q.k - 1}.",
        topic="receptive field of a stack",
        hint="Each KxK stride-1 layer widens the field by K - 1 pixels, starting from 1 pixel.",
        **_slips(q, (("q.layers * q.k", "L * K counts each layer's centre pixel again: the field is 1 + L(K - 1)"),
                     ("q.layers * (q.k - 1)", "forgot the starting pixel: the field is 1 + L(K - 1)"))))


def _b17(q):
    return Question(
        17, f"What is the receptive field of conv {q.k1}x{q.k1} (stride 1), then {q.p}x{q.p} max pool (stride "
            f"{q.p}), then conv {q.k2}x{q.k2} (stride 1)?", "int",
        shapes.receptive_field([(q.k1, 1), (q.p, q.p), (q.k2, 1)]),
        f"{q.k1} after the first conv, {q.k1 + q.p - 1} after the pool, then the second conv adds "
        f"({q.k2} - 1) * {q.p} because the pool multiplied the step between neighbouring outputs by {q.p}.",
        topic="receptive field through a pooling layer",
        hint="After a stride-s pool, neighbouring outputs are s input pixels apart: each later layer widens "
             "the field by (k - 1) * s.",
        **_slips(q, (("1 + (q.k1 - 1) + (q.p - 1) + (q.k2 - 1)",
                      "ignored the pool's stride: after it, one step of the next layer covers s input pixels"),
                     ("1 + (q.k1 - 1) + (q.k2 - 1)", "left out the pooling layer: its window widens the field too"))))


def _b18(q):
    side = shapes.pool_output_size(q.n, 2, 2, strict=True)
    return Question(
        18, f"{_a(q.n)} {q.n}x{q.n}x{q.c} volume goes through 2x2 max pooling with stride 2. Output volume?",
        "shape", (side, side, q.c), f"({q.n} - 2) / 2 + 1 = {side} per axis.",
        topic="pooling halves the map",
        hint="(n - f) / s + 1 per axis; pooling keeps every channel.", layout="HWC",
        **_slips(q, (("(q.n // 2, q.n // 2, q.c // 2)", "pooling does not change the number of channels"),
                     ("(q.n - 1, q.n - 1, q.c)", "stride ignored: the window moves 2 pixels at a time"),
                     ("((q.n - 2) // 2, (q.n - 2) // 2, q.c)", "forgot the + 1 of (n - f) / s + 1"),
                     ("(q.n // 2, q.n // 2)", _NO_DEPTH))))


def _lenet(q, bias: bool = True) -> list:
    s = shapes
    return [s.Conv(q.c1, 5, bias=bias), s.Pool(2), s.Conv(q.c2, 5, bias=bias), s.Pool(2),
            s.FC(q.fc1, bias=bias), s.FC(84, bias=bias), s.FC(10, bias=bias)]


def _b19(q):
    rows = shapes.layer_table(_lenet(q), (q.c, q.n, q.n))
    parts = " + ".join(f"{r.params:,}" for r in rows if r.params)
    side = "((q.n - 4) // 2 - 4) // 2"
    return Question(
        19, f"How many parameters has the lecture's LeNet-5-like network ({q.n}x{q.n}x{q.c} input, {q.c1} and "
            f"{q.c2} filters of 5x5, 2x2 max pooling after each, then FC {q.fc1}, 84, 10)?", "int",
        shapes.total_params(rows), f"{parts}; most of them sit in the FC layers.",
        topic="a whole network",
        hint="Add up the layers: conv (f*f*C + 1) * F, FC (n_in + 1) * n_out, pooling 0.", layout="HWC",
        **_slips(q, ((f"5 * 5 * q.c * q.c1 + 5 * 5 * q.c1 * q.c2 + {side} * {side} * q.c2 * q.fc1 + q.fc1 * 84 "
                      "+ 84 * 10", _NO_BIAS),
                     ("(5 * 5 * q.c + 1) * q.c1 + (5 * 5 * q.c1 + 1) * q.c2",
                      "counted only the conv layers: the FC layers hold most parameters"))))


def _b20(q):
    return Question(
        20, f"True or false: a {q.f}x{q.f} filter with stride {q.stride} fits a {q.n}x{q.n} input without "
            "padding.", "bool", _fits(q.n, q.f, 0, q.stride),
        f"({q.n} - {q.f}) / {q.stride} is {'a whole number' if (q.n - q.f) % q.stride == 0 else 'not a whole number'}: "
        "the windows end exactly on the last column only when it is; frameworks floor, the course's strict "
        "mode refuses.",
        topic="does a stride fit?", hint="Is (n - f) / s a whole number?",
        **_slips(q, (("(q.n - q.f) % q.stride != 0",
                      "a filter fits exactly when (n - f) / s is a whole number: then the windows reach the last "
                      "column"),)))


def _b21(q):
    return Question(
        21, f"{_a(q.n)} {q.n}x{q.n}x{q.c} image goes through {q.filters} filters of size {q.f}x{q.f} with stride 1 and a "
            "'same' convolution. How much zero padding is added on each side?", "int", shapes.same_padding(q.f),
        f"'Same' with stride 1 needs p = (f - 1) / 2 = ({q.f} - 1) / 2, which keeps {q.n}x{q.n}.",
        topic="'same' padding again", hint="Solve n + 2p - f + 1 = n for p.", layout="HWC",
        **_slips(q, (("q.f - 1", "that is the padding of both sides together; pad counts one side"),
                     ("q.f", "the padding is (f - 1) / 2, not f"),
                     (0, "no padding is a 'valid' convolution, which shrinks the map"))))


def _b22(q):
    return Question(
        22, f"{_a(q.n)} {q.n}x{q.n} grey image is convolved with a {q.f}x{q.f} filter, stride {q.stride}, no padding. How "
            "many rows has the output?", "int", shapes.conv_output_size(q.n, q.f, stride=q.stride, strict=True),
        f"({q.n} - {q.f}) / {q.stride} + 1: windows start at rows 0, {q.stride}, {2 * q.stride}, ...",
        topic="rows of a strided output", hint="floor((n + 2p - f) / s) + 1.",
        **_slips(q, (("q.n - q.f + 1", "stride ignored: the filter moves s pixels at a time"),
                     ("(q.n - q.f) // q.stride", "forgot the + 1 of floor((n + 2p - f) / s) + 1"))))


def _b23(q):
    side = shapes.pool_output_size(q.H, 3, 2, strict=True)
    return Question(
        23, f"A batch of shape ({q.N}, {q.C}, {q.H}, {q.H}) goes through 3x3 max pooling with stride 2 "
            "(overlapping windows, as in AlexNet). What is the output shape?", "shape", (q.N, q.C, side, side),
        f"({q.H} - 3) / 2 + 1 = {side} for height and width; batch and channels are unchanged.",
        topic="a batch through overlapping pooling",
        hint="(n - f) / s + 1 for height and width; batch size and channels do not change.", layout="NCHW",
        **_slips(q, (("(q.N, q.C, (q.H - 3) // 3 + 1, (q.H - 3) // 3 + 1)",
                      "used the window size 3 as the stride: the stride is 2"),
                     ("(q.N, q.C, q.H - 2, q.H - 2)", "stride ignored: the window moves 2 pixels at a time"),
                     ("(q.N, q.C, (q.H - 3) // 2, (q.H - 3) // 2)", "forgot the + 1 of (n - f) / s + 1"),
                     ("(q.C, (q.H - 3) // 2 + 1, (q.H - 3) // 2 + 1)", "forgot the batch axis: the shape is (N, C, H, W)"),
                     ("((q.H - 3) // 2 + 1, (q.H - 3) // 2 + 1, q.C)",
                      "3 numbers, height x width x channels: this question's shapes have 4, (N, C, H, W), the "
                      "batch first"),
                     ("(q.N, (q.H - 3) // 2 + 1, (q.H - 3) // 2 + 1, q.C)",
                      "channels last: this question writes shapes as (N, C, H, W)"))))


def _b24(q):
    gap = shapes.layer_table([shapes.Pool(q.H, mode="avg")], (q.C, q.H, q.H))[-1]
    return Question(
        24, f"Global average pooling is applied to a batch of shape ({q.N}, {q.C}, {q.H}, {q.H}). How many numbers "
            "does it give for each image?", "int", gap.activations,
        f"One average per channel: a {q.H}x{q.H} map becomes 1 number, {q.C} channels give {q.C}.",
        topic="global average pooling",
        hint="Global average pooling replaces each whole H x W map by its mean.", layout="NCHW",
        **_slips(q, (("q.C * q.H * q.H", "that is the size before pooling: each map becomes one number"),
                     ("q.H * q.H", "averaged over the channels: the average is taken over positions, per channel"),
                     ("q.N * q.C", "that is the whole batch: the question asks for one image"))))


def _b25(q):
    return Question(
        25, f"How many learnable parameters has a {q.k}x{q.k} max pooling layer with stride {q.k} on a "
            f"{q.n}x{q.n}x{q.c} volume?", "int",
        shapes.layer_table([shapes.Pool(q.k)], (q.c, q.n, q.n))[-1].params,
        "None: a max pooling window takes the largest value, there is nothing to learn.",
        topic="parameters of a pooling layer",
        hint="What would a max pooling window learn?", layout="HWC",
        **_slips(q, (("q.k * q.k", "a pooling window has no weights: it takes the maximum"),
                     ("q.k * q.k * q.c", "a pooling window has no weights, in any channel: it takes the maximum"),
                     ("2 * q.c", "that is LeNet-5's original trainable subsampling (2 per map); max pooling has "
                                 "none"))))


@dataclass(frozen=True)
class _Spec:
    """How one question is built: its builder, the original numbers, the ranges a variant draws from,
    and (``base``) an earlier question whose numbers it shares ("the same image")."""

    number: int
    build: Callable[[SimpleNamespace], Question]
    original: Mapping[str, int]
    space: Mapping[str, Sequence[int]]
    base: int | None = None


_SPECS: tuple[_Spec, ...] = (
    _Spec(1, _b1, {}, {}),
    _Spec(2, _b2, {"n": 300, "units": 100},
          {"n": (32, 48, 64, 96, 100, 128, 150, 160, 200, 224, 256, 300, 320),
           "units": (10, 32, 50, 64, 80, 100, 120, 128, 150, 200, 256)}),
    _Spec(3, _b3, {"filters": 100, "f": 5},
          {"filters": (6, 8, 10, 12, 16, 20, 24, 32, 40, 50, 64, 100, 128), "f": (3, 5, 7, 9, 11)}, base=2),
    _Spec(4, _b4, {"n": 63, "c": 16, "filters": 32, "f": 7, "stride": 2},
          {"n": tuple(range(21, 100)), "c": (3, 8, 16, 32, 64), "filters": (8, 12, 16, 24, 32, 48, 64),
           "f": (3, 5, 7, 9, 11), "stride": (2, 3, 4)}),
    _Spec(5, _b5, {"n": 15, "c": 8, "pad": 2},
          {"n": tuple(range(5, 41)), "c": (1, 3, 4, 8, 16, 32), "pad": (1, 2, 3, 4)}),
    _Spec(6, _b6, {"n": 63, "c": 16, "f": 7},
          {"n": (28, 32, 56, 63, 64, 100, 128, 224), "c": (3, 16, 32, 64), "f": (3, 5, 7, 9, 11)}),
    _Spec(7, _b7, {"n": 32, "c": 16, "k": 2, "stride": 2},
          {"n": tuple(range(8, 65)), "c": (4, 8, 16, 32, 64), "k": (2, 3, 4), "stride": (2, 3)}),
    _Spec(8, _b8, {}, {}),
    _Spec(9, _b9, {"n": 32, "filters": 6, "f": 5},
          {"n": (28, 32, 48, 64), "filters": (4, 6, 8, 10, 12, 16), "f": (3, 5, 7)}),
    _Spec(10, _b10, {}, {}, base=9),
    _Spec(11, _b11, {"n": 28, "filters": 20, "f": 5},
          {"n": (24, 28, 32, 40), "filters": (10, 12, 16, 20, 24, 32), "f": (3, 5, 7)}),
    _Spec(12, _b12, {}, {}, base=11),
    _Spec(13, _b13, {"c": 2, "filters": 6, "f": 5},
          {"c": (2, 4, 5, 6, 8), "filters": (4, 6, 8, 10, 12), "f": (3, 5, 7)}),
    _Spec(14, _b14, {"n": 32, "filters": 10, "f": 5, "pad": 2},
          {"n": (16, 24, 28, 32, 48, 64), "filters": (6, 8, 10, 12, 16, 20, 32), "f": (3, 5, 7), "pad": (1, 2, 3)}),
    _Spec(15, _b15, {}, {}, base=14),
    _Spec(16, _b16, {"layers": 3, "k": 3}, {"layers": (2, 3, 4, 5, 6), "k": (3, 5, 7)}),
    _Spec(17, _b17, {"k1": 3, "p": 2, "k2": 3}, {"k1": (3, 5), "p": (2, 3), "k2": (3, 5, 7)}),
    _Spec(18, _b18, {"n": 28, "c": 6}, {"n": tuple(range(8, 66, 2)), "c": (4, 6, 8, 12, 16, 32)}),
    _Spec(19, _b19, {"n": 32, "c": 3, "c1": 8, "c2": 16, "fc1": 120},
          {"n": (28, 32, 36, 44), "c": (1, 3), "c1": (6, 8, 10, 12), "c2": (12, 16, 20, 24), "fc1": (100, 120, 128)}),
    _Spec(20, _b20, {"n": 7, "f": 3, "stride": 3},
          {"n": tuple(range(5, 33)), "f": (2, 3, 4, 5), "stride": (2, 3, 4)}),
    _Spec(21, _b21, {"n": 32, "c": 3, "filters": 10, "f": 5},
          {"n": (28, 32, 64, 96, 128), "c": (1, 3), "filters": (6, 8, 10, 16, 32), "f": (3, 5, 7, 9, 11)}),
    _Spec(22, _b22, {"n": 7, "f": 3, "stride": 2},
          {"n": tuple(range(7, 40)), "f": (2, 3, 4, 5), "stride": (2, 3, 4)}),
    _Spec(23, _b23, {"N": 8, "C": 256, "H": 13},
          {"N": (4, 8, 16, 32, 64), "C": (64, 96, 128, 192, 256, 384), "H": tuple(range(7, 58, 2))}),
    _Spec(24, _b24, {"N": 8, "C": 512, "H": 7},
          {"N": (4, 8, 16, 32), "C": (64, 128, 256, 512, 1024, 2048), "H": (4, 5, 6, 7, 8, 14)}),
    _Spec(25, _b25, {"n": 28, "c": 6, "k": 2}, {"n": (12, 24, 28, 36, 48), "c": (3, 6, 8, 16), "k": (2, 3)}),
)
_SPEC = {s.number: s for s in _SPECS}


def _extra_ok(number: int, p: Mapping[str, int]) -> bool:
    """Constraints that keep a drawn question what it says (beyond 'the sizes fit' and distinct slips)."""
    if number == 4:   # (no window skips pixels: stride <= f)
        return p["stride"] <= p["f"] and (p["n"] - p["f"]) // p["stride"] + 1 >= 4
    if number == 7:
        return p["stride"] <= p["k"] and (p["n"] - p["k"]) // p["stride"] + 1 >= 3
    if number == 14:
        return p["pad"] == (p["f"] - 1) // 2   # the layer keeps its size (question 15 relies on it)
    if number in (20, 22):
        return p["stride"] <= p["f"] and p["n"] > p["f"] + p["stride"]
    if number == 25:
        return p["n"] % p["k"] == 0
    return True


def _valid(q: Question) -> bool:
    """A built question is meaningful: whole answers, and no slip equal to the answer or to another slip."""
    if q.kind == "int" and not (isinstance(q.answer, int) and q.answer >= 0):
        return False
    if q.kind == "shape" and not all(isinstance(v, int) and v > 0 for v in q.answer):  # type: ignore[union-attr]
        return False
    seen = []
    for wrong, _ in q.slips:
        try:
            value = parse_answer(q, wrong)
        except ValueError:
            return False
        if value == q.answer or value in seen:
            return False
        seen.append(value)
    return True


def _digest(*parts: object) -> int:
    """A keyed hash of the parts (BLAKE2b: the same on every Python version and machine)."""
    data = "\x1f".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, key=_HASH_KEY, digest_size=8).digest(), "big")


def _try(spec: _Spec, params: Mapping[str, int]) -> Question | None:
    if not _extra_ok(spec.number, params):
        return None
    numbers = _Numbers(**params)
    try:
        q = spec.build(numbers)
    except ValueError:   # the sizes do not fit (cnnlab.shapes refuses)
        return None
    if not _valid(q):
        return None
    read = object.__getattribute__(numbers, "_read")
    q = replace(q, params=tuple((k, v) for k, v in params.items() if k in read))
    for dep in _SPECS:   # a question that reuses these numbers ("the same layer") must fit them too
        if dep.base == spec.number and not dep.space and _try(dep, {**params, **dep.original}) is None:
            return None
    return q


def _clean(student_id: object) -> str | None:
    if student_id is None:
        return None
    text = str(student_id).strip()
    return text or None


@functools.lru_cache(maxsize=512)
def _variant(student: str | None, assignment: str) -> tuple[Question, ...]:
    chosen: dict[int, dict[str, int]] = {}
    out = []
    for spec in _SPECS:
        base = dict(chosen[spec.base]) if spec.base is not None else {}
        q = None
        if student is not None and spec.space:
            for attempt in range(_ATTEMPTS):
                params = {**base, **{name: values[_digest(assignment, student, spec.number, name, attempt) % len(values)]
                                     for name, values in spec.space.items()}}
                q = _try(spec, params)
                if q is not None:
                    break
        if q is None:
            params = {**base, **spec.original}
            q = _try(spec, params)
            if q is None:
                raise RuntimeError(f"quiz question {spec.number}: its original numbers {params} are not valid")
        chosen[spec.number] = params
        out.append(replace(q, student=student))
    return tuple(out)


def variant(student_id: str | None, assignment: str = ASSIGNMENT) -> tuple[Question, ...]:
    """The quiz as ``student_id`` sees it in ``assignment`` (None: the original numbers)."""
    return _variant(_clean(student_id), str(assignment))


# ----------------------------------------------------------------------------------------------
# whose numbers
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Student:
    """Whose numbers a kernel uses: ``id`` (None: the original quiz's) and ``source``, in words."""

    id: str | None
    source: str


class _Current:
    def __repr__(self) -> str:
        return "CURRENT"


#: Default of ``student=``: the student of this kernel (:func:`current_student`).
CURRENT = _Current()
_GRADED: dict[str, str] = {}


def _variants_off() -> bool:
    return os.environ.get(VARIANTS_ENV, "").strip().lower() in ("0", "off", "no", "false")


def set_graded_student(student_id: str) -> None:
    """Record whose submission this kernel grades (called by the grader before the notebook's first cell).

    Once set, it stays for the kernel's life: setting another id raises RuntimeError, so a cell
    cannot switch to a classmate's numbers this way.
    """
    sid = _clean(student_id)
    if sid is None:
        raise ValueError("set_graded_student needs a student id")
    old = _GRADED.get("id")
    if old is not None and old != sid:
        raise RuntimeError("the graded student is set once per kernel, by the grader")
    _GRADED["id"] = sid
    os.environ[ID_ENV] = sid


def graded_student(record_id: str | None) -> str | None:
    """The id whose numbers grade a submission the grader records under ``record_id`` (None when
    variants are off: ``CNNLAB_QUIZ_VARIANTS=off`` in the grader's environment)."""
    return None if _variants_off() else _clean(record_id)


def kernel_preamble(record_id: str | None) -> str | None:
    """The code the grader runs silently in a grading kernel before the first cell (None: nothing to
    run): it tells the quiz whose submission this is."""
    sid = graded_student(record_id)
    if sid is None:
        return None
    return ("try:\n    import cnnlab.quiz as _cnnlab_quiz\nexcept ImportError:\n    pass\nelse:\n"
            f"    _cnnlab_quiz.set_graded_student({sid!r})\n    del _cnnlab_quiz\n")


def current_student() -> Student:
    """Whose numbers this kernel uses (see the module docstring)."""
    if _variants_off():
        return Student(None, f"quiz variants are off, {VARIANTS_ENV}=off")
    if "id" in _GRADED:
        return Student(_GRADED["id"], "the grader's record of who submitted")
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        return Student(None, "graded without a student id")
    own = _clean(os.environ.get(ID_ENV))
    if own is not None:
        return Student(own, f"the course's environment, {ID_ENV}")
    hub = _clean(os.environ.get("JUPYTERHUB_USER"))
    if hub is not None:
        return Student(hub, "your JupyterHub user name, JUPYTERHUB_USER")
    return Student(None, "no student id in this environment")


def _resolve(student: object) -> str | None:
    return current_student().id if student is CURRENT else _clean(student)


def whose_numbers() -> Student:
    """Print whose numbers this notebook uses, and what that means for grading; return it."""
    me = current_student()
    if me.id is not None and me.source.startswith("the grader"):
        print(f"Quiz numbers of student {me.id!r}, from {me.source}: the answers below are graded with them.")
    elif me.id is not None:
        print(f"Your quiz numbers are drawn for student {me.id!r}, from {me.source}. Your answers are graded "
              "with the numbers of the id you submit under: this one when you submit from here.")
    else:
        print(f"The quiz's original numbers ({me.source}): right for self-study. If your course grades this quiz, "
              "open it where your course runs (its JupyterHub) to see your own numbers: answers are graded with "
              "the numbers of the id you submit under.")
    return me


# ----------------------------------------------------------------------------------------------
# looking questions up, and what the notebook shows
# ----------------------------------------------------------------------------------------------
def questions(student: object = CURRENT) -> list[Question]:
    """Return all quiz questions, in order, with ``student``'s numbers (default: this kernel's student)."""
    return list(variant(_resolve(student)))


def get(number: int, student: object = CURRENT) -> Question:
    """Return question ``number`` (1-based) with ``student``'s numbers; ValueError for an unknown number."""
    for q in variant(_resolve(student)):
        if q.number == number:
            return q
    raise ValueError(f"no question {number!r}; questions are numbered 1..{len(QUESTIONS)}")


class QuestionView:
    """What the notebook shows for one question: its text with the student's numbers, and those numbers
    as attributes (``q.n``, ``q.f``, ...) for plain Python arithmetic. It holds no answer."""

    __slots__ = ("_number", "_prompt", "_form", "_numbers", "_student")

    def __init__(self, q: Question, student: Student | None = None) -> None:
        self._number, self._prompt, self._form = q.number, q.prompt(), q.answer_format()
        self._numbers = dict(q.params)
        self._student = student

    def __getattr__(self, name: str) -> int:
        numbers = object.__getattribute__(self, "_numbers")
        if name in numbers:
            return numbers[name]
        raise AttributeError(f"question {object.__getattribute__(self, '_number')} has no number {name!r}; "
                             f"it has {', '.join(numbers) or 'none'}")

    def __dir__(self) -> list[str]:
        return list(self._numbers)

    @property
    def numbers(self) -> dict[str, int]:
        """The numbers by name."""
        return dict(self._numbers)

    def _lines(self) -> tuple[str, str]:
        names = ", ".join(f"q.{k} = {v}" for k, v in self._numbers.items())
        py = (f"In Python: q = question({self._number}), then {names}." if names else "")
        return f"Question {self._number}. {self._prompt}", py

    def __repr__(self) -> str:
        head, py = self._lines()
        return "\n".join(x for x in (head, f"Answer with {self._form}.", py) if x)

    def _repr_html_(self) -> str:
        head, py = self._lines()
        tail = f"<br><small><code>{html.escape(py)}</code></small>" if py else ""
        return (f'<div class="cnnlab-question"><b>{html.escape(head)}</b><br>'
                f"<i>Answer with {html.escape(self._form)}.</i>{tail}</div>")


def question(number: int) -> QuestionView:
    """Question ``number`` with this kernel's student's numbers, as the notebook shows it (no answer)."""
    return QuestionView(get(number), current_student())


# ----------------------------------------------------------------------------------------------
# reading and judging answers
# ----------------------------------------------------------------------------------------------
_INT_TEXT = re.compile(r"\s*(\d{1,3}(?:[,_ ]\d{3})+|\d+)(?:\.0*)?\s*([A-Za-z][A-Za-z ]*)?\s*")
_TRUE = ("true", "t", "yes", "y")
_FALSE = ("false", "f", "no", "n")


def _whole(value: object) -> int | None:
    if isinstance(value, bool | np.bool_):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def parse_answer(question: Question, response: object) -> object:
    """Turn a response into the form of ``question.answer``; ValueError (saying the form) when it cannot be read.

    Accepted, generously:

    - counts: ints (also NumPy ints and whole floats such as 3.0) or text such as "27000100",
      "27,000,100", "27 000 100", "27_000_100", "760 parameters";
    - shapes: tuples, lists or arrays of whole numbers, or text such as "29x29x32", "29 x 29 x 32",
      "29×29×32", "(29, 29, 32)", "29 by 29 by 32";
    - true/false: True/False or the text "true"/"false"/"t"/"f"/"yes"/"no";
    - multiple choice: a choice's text (any case; its unique start such as "vertical", or one of its words, works), or its
      letter "a", "(a)", "a)".
    """
    kind = question.kind
    n = question.number
    if kind == "int":
        whole = _whole(response)
        if whole is not None:
            return whole
        if isinstance(response, str):
            m = _INT_TEXT.fullmatch(response)
            if m:
                return int(re.sub(r"[,_ ]", "", m.group(1)))
        raise ValueError(f"question {n} needs {question.answer_format()}; cannot read {response!r}")
    if kind == "shape":
        if isinstance(response, str):
            parts = [p for p in re.split(r"(?:[x×X*,;()\[\]\s]|by)+", response.strip().lower()) if p]
        elif isinstance(response, Sequence | np.ndarray):
            parts = list(np.ravel(np.asarray(response, dtype=object)))
        else:
            parts = None
        values = [_whole(p) for p in parts] if parts else [None]
        if any(v is None for v in values):
            raise ValueError(f"question {n} needs {question.answer_format()}; cannot read {response!r}")
        return tuple(values)
    if kind == "bool":
        if isinstance(response, bool | np.bool_):
            return bool(response)
        if isinstance(response, str) and response.strip().lower() in _TRUE + _FALSE:
            return response.strip().lower() in _TRUE
        raise ValueError(f"question {n} needs True or False; cannot read {response!r}")
    # choice
    choices = question.choices
    if isinstance(response, str):
        r = response.strip().lower()
        letter = re.fullmatch(r"\(?([a-z])\)?\.?", r)
        if letter and ord(letter.group(1)) - 97 < len(choices):
            return choices[ord(letter.group(1)) - 97]
        exact = [c for c in choices if r == c.lower()]
        if exact:
            return exact[0]
        partial = [c for c in choices if len(r) >= 2 and (c.lower().startswith(r) or r in c.lower().split())]
        if len(partial) == 1:
            return partial[0]
    letters = ", ".join(f"({chr(97 + i)}) {c}" for i, c in enumerate(choices))
    raise ValueError(f"question {n}: answer with the text or the letter of one choice: {letters}; "
                     f"cannot read {response!r}")


def _count_slip(question: Question, value: object) -> str | None:
    """A shape with the wrong count of numbers: say how many the question's layout has."""
    if question.kind != "shape" or not isinstance(value, tuple):
        return None
    want, got = len(question.answer), len(value)  # type: ignore[arg-type]
    if got == want:
        return None
    if question.layout == "NCHW":
        return (f"{got} numbers where this question's shapes have {want}: (N, C, H, W), batch, channels, "
                "height, width")
    return f"{got} numbers where a volume has {want}: height x width x channels (H x W x C)"


def slip_for(question: Question, value: object) -> str | None:
    """Return what went wrong when a parsed ``value`` is one of the question's classic wrong answers
    (or a shape with the wrong count of numbers)."""
    for wrong, says in question.slips:
        try:
            if parse_answer(question, wrong) == value:
                return says
        except ValueError:
            continue
    return _count_slip(question, value)


def is_right(question: Question, response: object) -> bool:
    """Whether ``response`` (any form :func:`parse_answer` reads) is ``question``'s answer."""
    try:
        return parse_answer(question, response) == question.answer
    except ValueError:
        return False


def check(number: int, response: object, reveal: bool = False, student: object = CURRENT) -> tuple[bool, str]:
    """Check a response to question ``number`` (with ``student``'s numbers); return (correct, feedback).

    Right: "Correct: <answer>. <how it is computed>". Wrong: "Not quite. <the likely slip, when the
    response is a classic wrong answer> Hint: <what to think about>", without the answer unless
    ``reveal`` is True (then the answer and its computation follow). A response that cannot be read
    returns (False, a message saying which form is expected).
    """
    q = get(number, student)
    try:
        value = parse_answer(q, response)
    except ValueError as err:
        return False, str(err)
    if value == q.answer:
        return True, f"Correct: {q.answer_text()}. {q.explanation}"
    slip = slip_for(q, value)
    text = "Not quite." + (f" Likely slip: {slip}." if slip else "") + f" Hint: {q.hint}"
    if reveal:
        text += f" The answer is {q.answer_text()}. {q.explanation}"
    return False, text


# ----------------------------------------------------------------------------------------------
# for the instructor and the grader
# ----------------------------------------------------------------------------------------------
def answer_key(student_id: str | None, assignment: str = ASSIGNMENT) -> dict[str, object]:
    """``{"answer_q1": answer, ...}``: the answers of ``student_id``'s variant (None: the original quiz).

    The grader's verifier compares a submission's ``answer_qN`` values with these (through
    :func:`parse_answer`: ``is_right(variant(sid)[N - 1], value)``), with ``sid =
    graded_student(<the grader's record of who submitted>)``.
    """
    return {f"answer_q{q.number}": q.answer for q in variant(student_id, assignment)}


def key_table(student_id: str | None, assignment: str = ASSIGNMENT) -> str:
    """The variant and its answers as text, for the instructor (``python -m autograder quiz-key``)."""
    sid = _clean(student_id)
    who = f"student {sid!r}" if sid is not None else "no student id (the original numbers)"
    lines = [f"{assignment}: quiz variant of {who}"]
    for q in variant(sid, assignment):
        lines.append(f"Q{q.number}. {q.prompt()}")
        lines.append(f"    answer: {q.answer_text()}")
    return "\n".join(lines)


#: The original quiz (no student id): the seeds' numbers.
QUESTIONS: tuple[Question, ...] = variant(None)
