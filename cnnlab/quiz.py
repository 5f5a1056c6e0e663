"""The self-check quiz: questions on convolution arithmetic, each answer computed by ``cnnlab.shapes``.

Questions 1-8 follow the eight self-check questions of the course's quiz (week 1 of a well-known CNN
course), stated channel-last (H x W x C) as that quiz states them; the later ones reuse the course's
other numbers, and two of them use PyTorch's (N, C, H, W). Every question says its layout. No answer is
typed in: every one is computed when this module is imported, from ``cnnlab.shapes`` (sizes and
counts) or from a tiny NumPy experiment (questions 1 and 8).

Each question also carries a ``hint`` that never contains the answer, and ``slips``: the classic
wrong answers (forgot the bias, forgot the channel depth, padding added on one side only, ...), each
with what went wrong. Notebook 08 grades its answer cells with them (``cnnlab.checks.nb08``) and the
interactive version is ``cnnlab.widgets.quiz.quiz_widget``.

    >>> from cnnlab import quiz
    >>> quiz.check(4, "29x29x32")  # doctest: +ELLIPSIS
    (True, 'Correct: 29x29x32. ...')
    >>> quiz.check(4, "28x28x32")  # doctest: +ELLIPSIS
    (False, 'Not quite. Hint: ...')
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cnnlab import shapes
from cnnlab.data import edge_image

__all__ = ["Question", "QUESTIONS", "LAYOUTS", "questions", "get", "check", "parse_answer", "slip_for"]

#: How each layout is stated to the student.
LAYOUTS: dict[str, str] = {
    "HWC": "sizes are height x width x channels (H x W x C), as in the original quiz",
    "NCHW": "shapes are (N, C, H, W): batch, channels, height, width, as in PyTorch",
    "": "",
}


@dataclass(frozen=True)
class Question:
    """One quiz question.

    number: 1-based id; text: the question; kind: "int" (a count or size), "shape" (a tuple such as
    (29, 29, 32)), "bool" (true/false) or "choice" (one of ``choices``); answer: the computed answer
    (for "choice", the correct choice's text); explanation: how the answer is computed (shown once the
    answer is right, or on request); hint: what to think about, without the answer; layout: "HWC",
    "NCHW" or "" (no volume involved); slips: classic wrong answers, ``(wrong answer, what went wrong)``.
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
        """The question as the notebook and the widget show it: text, then its layout."""
        layout = LAYOUTS[self.layout]
        return f"{self.text} ({layout[0].upper() + layout[1:]}.)" if layout else self.text


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


# ----------------------------------------------------------------------------------------------
# the questions
# ----------------------------------------------------------------------------------------------
_NO_BIAS = "forgot the biases: one per neuron (or filter) on top of the weights"


def _build() -> tuple[Question, ...]:
    s = shapes
    q4 = s.conv_output_size(63, 7, pad=0, stride=2)
    q5 = s.conv_output_size(15, 1, pad=2)
    q7 = s.pool_output_size(32, 2, 2)
    q18 = s.pool_output_size(28, 2, 2)
    q23 = s.pool_output_size(13, 3, 2)
    out15 = s.conv_output_size(32, 5, 2)
    lecture = s.layer_table(s.LENET5_LECTURE)
    lecture_weights = s.total_params(s.layer_table([
        s.Conv(8, 5, bias=False), s.Pool(2), s.Conv(16, 5, bias=False), s.Pool(2),
        s.FC(120, bias=False), s.FC(84, bias=False), s.FC(10, bias=False)], (3, 32, 32)))
    conv_only = sum(r.params for r in lecture if r.kind == "conv")
    gap = s.layer_table([s.Pool(7, mode="avg")], (512, 7, 7))[-1]
    return (
        Question(1, "Which kind of feature does the 4x4 filter [[0,1,-1,0],[1,3,-3,-1],[1,3,-3,-1],[0,1,-1,0]] "
                    "detect?", "choice", _strongest_edge_response(_Q1_FILTER),
                 "Its columns go from positive (left) to negative (right) and every row is alike, so it responds "
                 "to a change from left to right: a vertical edge. Correlating it with step edges confirms it.",
                 _Q1_CHOICES,
                 hint="Compare its columns and its rows: along which direction do the weights change sign?",
                 slips=(("horizontal edges", "the weights change sign from column to column (left to right), not "
                                             "from row to row; a change across columns marks a vertical edge"),
                        ("image contrast", "the weights sum to zero, so a flat patch gives 0 whatever its "
                                           "brightness: the filter responds to changes, not to contrast"))),
        Question(2, "A 300x300 RGB image feeds a fully connected layer of 100 neurons. How many parameters "
                    "(weights and biases) does the layer have?", "int", s.fc_params(300 * 300 * 3, 100),
                 "Each neuron has one weight per input value (300*300*3) plus a bias: (3*300*300 + 1) * 100.",
                 hint="Every neuron has one weight per input value (count the colour channels) and one bias.",
                 layout="HWC",
                 slips=((3 * 300 * 300 * 100, _NO_BIAS),
                        ((300 * 300 + 1) * 100, "forgot the channel depth: an RGB image has 3 values per pixel"),
                        (3 * 300 * 300 * 100 + 1, "a single bias for the whole layer: each neuron has its own"))),
        Question(3, "The same 300x300 RGB image feeds a conv layer of 100 filters of size 5x5. How many "
                    "parameters does the layer have?", "int", s.conv_params(3, 100, 5),
                 "Each filter has 5*5*3 weights plus one bias, whatever the image size: 100 * (5*5*3 + 1).",
                 hint="A filter has one weight per value of its 5x5 window through all channels, and one bias; "
                      "the image size does not matter.", layout="HWC",
                 slips=((100 * 5 * 5 * 3, _NO_BIAS),
                        (100 * (5 * 5 + 1), "forgot the channel depth: each filter is 5x5x3 on an RGB image"))),
        Question(4, "A 63x63x16 input is convolved with 32 filters of size 7x7, stride 2, no padding. "
                    "What is the output volume?", "shape", (q4, q4, 32),
                 "floor((63 + 0 - 7) / 2) + 1 = 29 along each axis, one channel per filter.",
                 hint="Use floor((n + 2p - f) / s) + 1 for the height and the width; the depth is the number of "
                      "filters.", layout="HWC",
                 slips=((((63 - 7) // 2, (63 - 7) // 2, 32), "forgot the + 1 of floor((n + 2p - f) / s) + 1: "
                                                             "(n - f) / s counts the steps, not the positions"),
                        ((63 - 7 + 1, 63 - 7 + 1, 32), "stride ignored: the filter moves 2 pixels at a time"),
                        ((q4, q4, 16), "the output depth is the number of filters, not the input's depth"),
                        ((q4, q4), "forgot the channel depth: give height, width and channels"),
                        ((32, q4, q4), "channels first: this question writes volumes as H x W x C"))),
        Question(5, "A 15x15x8 input is zero-padded with pad = 2. What is its size?", "shape", (q5, q5, 8),
                 f"2 pixels on each side: 15 + 2*2 = {q5}; padding does not change the number of channels.",
                 hint="pad = 2 adds 2 pixels on each side of the height and of the width; the channels stay.",
                 layout="HWC",
                 slips=(((15 + 2, 15 + 2, 8), "padding added once instead of twice: pad = 2 adds 2 pixels on "
                                              "EACH side"),
                        ((q5, q5), "forgot the channel depth: give height, width and channels"),
                        ((q5, q5, 8 + 4), "padding is added to height and width only, never to the channels"))),
        Question(6, "A 63x63x16 input is convolved with 7x7 filters, stride 1, with a 'same' convolution. "
                    "How much padding is needed on each side?", "int", s.same_padding(7),
                 "'Same' needs n + 2p - f + 1 = n, so p = (f - 1) / 2 = (7 - 1) / 2.",
                 hint="'Same' means the output size equals the input size: solve n + 2p - f + 1 = n for p.",
                 layout="HWC",
                 slips=((7 - 1, "that is the padding of both sides together; pad counts one side"),
                        (0, "no padding is a 'valid' convolution, which shrinks the map"))),
        Question(7, "A 32x32x16 input goes through max pooling with a 2x2 window and stride 2. What is the "
                    "output volume?", "shape", (q7, q7, 16),
                 "(32 - 2) / 2 + 1 = 16 per axis; pooling works on each channel separately.",
                 hint="(n - f) / s + 1 per axis; pooling works on every channel separately.", layout="HWC",
                 slips=(((15, 15, 16), "forgot the + 1 of (n - f) / s + 1"),
                        ((31, 31, 16), "stride ignored: the window moves 2 pixels at a time"),
                        ((q7, q7, 8), "pooling does not change the number of channels"),
                        ((q7, q7), "forgot the channel depth: give height, width and channels"))),
        Question(8, "True or false: pooling layers have no parameters, so they do not affect backpropagation.",
                 "bool", not _pooling_passes_gradients(),
                 "False. Pooling has no parameters, but the gradient still flows through it to the layers "
                 "below (to the maximum of each window for max pooling, spread evenly for average pooling).",
                 hint="Without parameters there is nothing to update in the layer, but what about the layers "
                      "below it?",
                 slips=((True, "no parameters, but backpropagation must pass the gradient THROUGH pooling to "
                               "the layers below, so it does affect it"),)),
        Question(9, "How many parameters has a conv layer of six 5x5 filters on a 32x32x3 image?", "int",
                 s.conv_params(3, 6, 5), "(5*5*3 + 1) * 6.",
                 hint="(f * f * channels + 1) per filter, times the number of filters.", layout="HWC",
                 slips=((5 * 5 * 3 * 6, _NO_BIAS),
                        ((5 * 5 + 1) * 6, "forgot the channel depth: each filter is 5x5x3"))),
        Question(10, "How many parameters would a fully connected layer need to map 32x32x3 to 28x28x6 "
                     "(with biases)?", "int", s.fc_params(32 * 32 * 3, 28 * 28 * 6),
                 "3,072 inputs * 4,704 outputs + 4,704 biases; the conv layer doing the same does it with 456.",
                 hint="Every one of the 28*28*6 outputs is connected to every one of the 32*32*3 inputs and has "
                      "a bias.", layout="HWC",
                 slips=((32 * 32 * 3 * 28 * 28 * 6, _NO_BIAS),
                        (s.conv_params(3, 6, 5), "that is the conv layer's count; the question asks for a fully "
                                                 "connected layer"))),
        Question(11, "How many parameters has a conv layer of twenty 5x5 filters on a 28x28x3 input?", "int",
                 s.conv_params(3, 20, 5), "5*5*3*20 + 20.",
                 hint="(f * f * channels + 1) per filter, times the number of filters.", layout="HWC",
                 slips=((5 * 5 * 3 * 20, _NO_BIAS),
                        ((5 * 5 + 1) * 20, "forgot the channel depth: each filter is 5x5x3"))),
        Question(12, "And a fully connected layer from 28x28x3 to 24x24x20 (with biases)?", "int",
                 s.fc_params(28 * 28 * 3, 24 * 24 * 20), "2,352 * 11,520 weights + 11,520 biases.",
                 hint="Every one of the 24*24*20 outputs is connected to every one of the 28*28*3 inputs and "
                      "has a bias.", layout="HWC",
                 slips=((28 * 28 * 3 * 24 * 24 * 20, _NO_BIAS),
                        (28 * 28 * 3 * 24 * 24 * 20 + 28 * 28 * 3, "one bias per input: biases belong to the "
                                                                  "outputs"))),
        Question(13, "A 2-channel input goes through six 5x5 filters. How many parameters?", "int",
                 s.conv_params(2, 6, 5), "(5*5*2 + 1) * 6.",
                 hint="A filter is as deep as its input.", layout="HWC",
                 slips=((5 * 5 * 2 * 6, _NO_BIAS),
                        ((5 * 5 + 1) * 6, "forgot the channel depth: each filter is 5x5x2"),
                        (s.conv_params(3, 6, 5), "assumed an RGB input: this one has 2 channels"))),
        Question(14, "A 32x32x3 image goes through ten 5x5 filters, stride 1, pad 2. How many parameters?",
                 "int", s.conv_params(3, 10, 5), "(5*5*3 + 1) * 10 = 760 (750 weights and 10 biases).",
                 hint="Stride and padding change the output size, not the number of weights.", layout="HWC",
                 slips=((5 * 5 * 3 * 10, _NO_BIAS),
                        ((5 * 5 + 1) * 10, "forgot the channel depth: each filter is 5x5x3"))),
        Question(15, "For the same layer, how many multiply-adds for one image?", "int",
                 s.conv_macs(3, 10, 5, 5, out15, out15),
                 "Output 32x32x10, each value a dot product of length 5*5*3: 75 * 10,240.",
                 hint="Each output value is one dot product over a 5x5x3 window; with pad 2 how many output "
                      "values are there?", layout="HWC",
                 slips=((5 * 5 * 3 * 10 * 28 * 28, "used the unpadded output size 28x28: pad 2 keeps 32x32"),
                        (5 * 5 * 10 * 32 * 32, "forgot the channel depth: each dot product runs over 5x5x3"),
                        ((5 * 5 * 3 + 1) * 10 * 32 * 32, "counted the bias as a multiply-add: it is one add"))),
        Question(16, "What is the receptive field of three stacked 3x3 stride-1 conv layers?", "int",
                 s.receptive_field([(3, 1)] * 3), "1 + L(K - 1) = 1 + 3*2.",
                 hint="Each 3x3 stride-1 layer widens the field by K - 1 pixels, starting from 1 pixel.",
                 slips=((3 * 3, "L * K counts each layer's centre pixel again: the field is 1 + L(K - 1)"),
                        (3 * (3 - 1), "forgot the starting pixel: the field is 1 + L(K - 1)"))),
        Question(17, "And of conv 3x3 (stride 1), then 2x2 max pool (stride 2), then conv 3x3 (stride 1)?", "int",
                 s.receptive_field([(3, 1), (2, 2), (3, 1)]),
                 "3 after the first conv, 4 after the pool, then the second conv adds (3 - 1) * 2 because the "
                 "pool doubled the step between neighbouring outputs.",
                 hint="After the stride-2 pool, neighbouring outputs are 2 input pixels apart: each later "
                      "layer widens the field by (k - 1) * 2.",
                 slips=((1 + 2 + 1 + 2, "ignored the pool's stride: after it, one step of the next layer "
                                        "covers 2 input pixels"),
                        (s.receptive_field([(3, 1)] * 2), "left out the pooling layer: its window widens the "
                                                          "field too"))),
        Question(18, "A 28x28x6 volume goes through 2x2 max pooling with stride 2. Output volume?",
                 "shape", (q18, q18, 6), "28 / 2 = 14 per axis.",
                 hint="(n - f) / s + 1 per axis; pooling keeps every channel.", layout="HWC",
                 slips=(((q18, q18, 3), "pooling does not change the number of channels"),
                        ((27, 27, 6), "stride ignored: the window moves 2 pixels at a time"),
                        ((13, 13, 6), "forgot the + 1 of (n - f) / s + 1"),
                        ((q18, q18), "forgot the channel depth: give height, width and channels"))),
        Question(19, "How many parameters has the lecture's LeNet-5-like network (32x32x3 input, 8 and 16 "
                     "filters of 5x5, 2x2 max pooling after each, then FC 120, 84, 10)?", "int",
                 s.total_params(lecture),
                 "608 + 3,216 + 48,120 + 10,164 + 850; more than 90% sit in the FC layers.",
                 hint="Add up the layers: conv (f*f*C + 1) * F, FC (n_in + 1) * n_out, pooling 0.", layout="HWC",
                 slips=((lecture_weights, _NO_BIAS),
                        (conv_only, "counted only the conv layers: the FC layers hold most parameters"))),
        Question(20, "True or false: a 3x3 filter with stride 3 fits a 7x7 input without padding.", "bool",
                 _fits(7, 3, 0, 3),
                 "(7 - 3) / 3 is not a whole number, so the last column would be skipped; frameworks floor "
                 "to 2, the course's strict mode refuses.",
                 hint="Is (n - f) / s a whole number?",
                 slips=((True, "(n - f) / s must be a whole number for the windows to reach the last column"),)),
        Question(21, "A 32x32x3 image goes through ten 5x5 filters with stride 1 and a 'same' convolution. How "
                     "much zero padding is added on each side?", "int", s.same_padding(5),
                 "'Same' with stride 1 needs p = (f - 1) / 2 = (5 - 1) / 2, which keeps 32x32.",
                 hint="Solve n + 2p - f + 1 = n for p.", layout="HWC",
                 slips=((5 - 1, "that is the padding of both sides together; pad counts one side"),
                        (5, "the padding is (f - 1) / 2, not f"),
                        (0, "no padding is a 'valid' convolution, which shrinks 32 to 28"))),
        Question(22, "A 7x7 grey image is convolved with a 3x3 filter, stride 2, no padding. How many rows has "
                     "the output?", "int", s.conv_output_size(7, 3, stride=2),
                 "(7 - 3) / 2 + 1 = 3: windows start at rows 0, 2 and 4.",
                 hint="floor((n + 2p - f) / s) + 1.",
                 slips=((7 - 3 + 1, "stride ignored: the filter moves 2 pixels at a time"),
                        ((7 - 3) // 2, "forgot the + 1 of floor((n + 2p - f) / s) + 1"))),
        Question(23, "A batch of shape (8, 256, 13, 13) goes through 3x3 max pooling with stride 2 (overlapping "
                     "windows, as in AlexNet). What is the output shape?", "shape", (8, 256, q23, q23),
                 "(13 - 3) / 2 + 1 = 6 for height and width; batch and channels are unchanged.",
                 hint="(n - f) / s + 1 for height and width; batch size and channels do not change.",
                 layout="NCHW",
                 slips=(((8, 256, 4, 4), "used the window size 3 as the stride: the stride is 2"),
                        ((8, 256, 11, 11), "stride ignored: the window moves 2 pixels at a time"),
                        ((8, 256, 5, 5), "forgot the + 1 of (n - f) / s + 1"),
                        ((256, q23, q23), "forgot the batch axis: the shape is (N, C, H, W)"),
                        ((8, q23, q23, 256), "channels last: this question writes shapes as (N, C, H, W)"))),
        Question(24, "Global average pooling is applied to a batch of shape (8, 512, 7, 7). How many numbers "
                     "does it give for each image?", "int", gap.activations,
                 "One average per channel: a 7x7 map becomes 1 number, 512 channels give 512.",
                 hint="Global average pooling replaces each whole H x W map by its mean.", layout="NCHW",
                 slips=((512 * 7 * 7, "that is the size before pooling: each 7x7 map becomes one number"),
                        (7 * 7, "averaged over the channels: the average is taken over positions, per channel"),
                        (8 * 512, "that is the whole batch: the question asks for one image"))),
        Question(25, "How many learnable parameters has a 2x2 max pooling layer with stride 2 on a 28x28x6 "
                     "volume?", "int", s.layer_table([s.Pool(2)], (6, 28, 28))[-1].params,
                 "None: a max pooling window takes the largest value, there is nothing to learn.",
                 hint="What would a max pooling window learn?", layout="HWC",
                 slips=((2 * 2, "a pooling window has no weights: it takes the maximum"),
                        (2 * 2 * 6, "a pooling window has no weights, in any channel: it takes the maximum"),
                        (2 * 6, "that is LeNet-5's original trainable subsampling (2 per map); max pooling has "
                                "none"))),
    )


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


def slip_for(question: Question, value: object) -> str | None:
    """Return what went wrong when a parsed ``value`` is one of the question's classic wrong answers."""
    for wrong, says in question.slips:
        try:
            if parse_answer(question, wrong) == value:
                return says
        except ValueError:
            continue
    return None


def check(number: int, response: object, reveal: bool = False) -> tuple[bool, str]:
    """Check a response to question ``number``; return (correct, feedback).

    Right: "Correct: <answer>. <how it is computed>". Wrong: "Not quite. <the likely slip, when the
    response is a classic wrong answer> Hint: <what to think about>", without the answer unless
    ``reveal`` is True (then the answer and its computation follow). A response that cannot be read
    returns (False, a message saying which form is expected).
    """
    q = get(number)
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
