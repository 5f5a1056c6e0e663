"""Exercise records of notebook 01 (history): ``fc_params``, ``conv_params``, ``shift_image``, ``response_change``.

Test cells call ``nb01.check("fc_params", fc_params)`` and ``nb01.check(..., tier="hidden")``;
the notebook's last cell calls ``nb01.summary(globals())``.  Each record below holds the
reference, the public and hidden cases, and the bug table (the wrong code that makes each bug and
the phrase its feedback contains).  The counters may not call ``cnnlab.shapes``, whose answers
they are compared with.
"""

from __future__ import annotations

import sys

import numpy as np

from cnnlab import shapes
from cnnlab.grading import rng
from cnnlab.grading.exercise import Bug, Case, Exercise, Notebook
from cnnlab.grading.probes import refuse_module
from cnnlab.shapes import conv_params as ref_conv_params
from cnnlab.shapes import fc_params as ref_fc_params

__all__ = ["NOTEBOOK", "check", "summary", "ref_shift_image", "ref_response_change"]

NOTEBOOK = Notebook("01_history")
check = NOTEBOOK.check
summary = NOTEBOOK.summary

_NO_SHAPES = "count the parameters yourself with + and * (plain integer arithmetic is all it takes)"


# --------------------------------------------------------------------------------------------
# Exercise 1: fc_params
# --------------------------------------------------------------------------------------------

def _fc_public() -> list[Case]:
    return [Case((128 * 128, 300), {"bias": True}, "128x128 grey image into 300 units"),
            Case((128 * 128, 300), {"bias": False}, "the same, weights only"),
            Case((128 * 128 * 3, 300), {"bias": False}, "128x128 RGB image, weights only"),
            Case((1000 * 1000, 300), {"bias": False}, "a 1000x1000 image"),
            Case((4, 3), {"bias": True}, "4 inputs, 3 units")]


def _fc_hidden() -> list[Case]:
    return [Case((7, 5), {"bias": True}, "a small layer with bias"),
            Case((7, 5), {"bias": False}, "a small layer without bias"),
            Case((1, 1), {"bias": True}, "one input, one unit"),
            Case((32 * 32 * 3, 10), {"bias": True}, "a CIFAR-sized image into 10 units"),
            Case((300 * 300 * 3, 100), {"bias": True}, "the quiz's 300x300 RGB image"),
            Case((13, 1), {"bias": False}, "one unit, no bias"),
            Case((1, 9), {"bias": True}, "one input, nine units")]


NOTEBOOK.add(Exercise(
    "fc_params", 1, ref_fc_params, _fc_public, _fc_hidden, kind="int",
    extra=refuse_module(shapes, 7, 5, advice=_NO_SHAPES),
    bugs=[
        Bug("the biases are missing: one bias per output unit (+ n_out)",
            "def fc_params(n_in, n_out, bias=True):\n    return n_in * n_out",
            fix="add n_out when bias is True"),
        Bug("the bias argument is ignored: with bias=False there are no biases",
            "def fc_params(n_in, n_out, bias=True):\n    return n_in * n_out + n_out",
            fix="add the biases only `if bias`"),
        Bug("a bias per input instead of per output unit (+ n_in instead of + n_out)",
            "def fc_params(n_in, n_out, bias=True):\n    return n_in * n_out + (n_in if bias else 0)"),
        Bug("a single shared bias (+ 1) instead of one per output unit",
            "def fc_params(n_in, n_out, bias=True):\n    return n_in * n_out + (1 if bias else 0)"),
        Bug("n_in + n_out instead of n_in * n_out weights",
            "def fc_params(n_in, n_out, bias=True):\n    return n_in + n_out + (n_out if bias else 0)",
            fix="every input connects to every output unit: n_in * n_out weights"),
        Bug("returned the float",
            "def fc_params(n_in, n_out, bias=True):\n    return float(n_in * n_out + (n_out if bias else 0))",
            by_output=False),
        Bug("returned a str; return an int",
            "def fc_params(n_in, n_out, bias=True):\n    return f\"{n_in * n_out + (n_out if bias else 0):,}\"",
            by_output=False),
        Bug("returned None; return an int",
            "def fc_params(n_in, n_out, bias=True):\n    print(n_in * n_out + (n_out if bias else 0))",
            by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 2: conv_params
# --------------------------------------------------------------------------------------------

def _conv_public() -> list[Case]:
    return [Case((1, 300, 5), {"bias": True}, "300 grey 5x5 filters (kw defaults to kh)"),
            Case((3, 300, 5), {"bias": True}, "300 RGB 5x5 filters"),
            Case((3, 6, 5, 5), {"bias": True}, "LeNet-style C1 on RGB: 6 filters 5x5x3"),
            Case((3, 10, 5, 5), {"bias": False}, "10 filters 5x5x3, no bias"),
            Case((2, 4, 3, 1), {"bias": True}, "a 3x1 kernel")]


def _conv_hidden() -> list[Case]:
    return [Case((3, 100, 5), {"bias": True}, "a square kernel given by kh alone"),
            Case((2, 6, 5, 5), {"bias": True}, "a 2-channel input"),
            Case((16, 32, 7, 7), {"bias": False}, "a deep input without bias"),
            Case((1, 1, 1), {"bias": True}, "a 1x1 kernel"),
            Case((8, 16, 3, 2), {"bias": True}, "a rectangular kernel"),
            Case((5, 3, 1, 4), {"bias": False}, "a rectangular kernel without bias"),
            Case((64, 128, 3), {"bias": True}, "a wide layer")]


_CONV_HEAD = "def conv_params(c_in, c_out, kh, kw=None, bias=True):\n    kw = kh if kw is None else kw\n"

NOTEBOOK.add(Exercise(
    "conv_params", 2, ref_conv_params, _conv_public, _conv_hidden, kind="int",
    extra=refuse_module(shapes, 3, 6, 5, advice=_NO_SHAPES),
    bugs=[
        Bug("the input channels are missing: every filter has depth c_in (c_in * kh * kw weights per filter)",
            _CONV_HEAD + "    return (kh * kw + (1 if bias else 0)) * c_out"),
        Bug("the biases are missing: one bias per filter (+ c_out)",
            _CONV_HEAD + "    return c_in * kh * kw * c_out", fix="add c_out when bias is True"),
        Bug("the bias argument is ignored: with bias=False there are no biases",
            _CONV_HEAD + "    return (c_in * kh * kw + 1) * c_out"),
        Bug("a single shared bias (+ 1) instead of one per filter",
            _CONV_HEAD + "    return c_in * kh * kw * c_out + (1 if bias else 0)"),
        Bug("a bias per input channel and filter (+ c_in * c_out) instead of one per filter",
            _CONV_HEAD + "    return c_in * kh * kw * c_out + (c_in * c_out if bias else 0)"),
        Bug("kw ignored: the kernel is kh x kw, not kh x kh",
            "def conv_params(c_in, c_out, kh, kw=None, bias=True):\n"
            "    return (c_in * kh * kh + (1 if bias else 0)) * c_out"),
        Bug("one bias per weight: the bias belongs to the filter, not to each weight",
            _CONV_HEAD + "    return c_in * kh * kw * c_out * (2 if bias else 1)"),
        Bug("kw=None is not handled: when kw is None the kernel is square (kw = kh)",
            "def conv_params(c_in, c_out, kh, kw=None, bias=True):\n"
            "    return (c_in * kh * kw + (1 if bias else 0)) * c_out",
            fix="start with kw = kh if kw is None else kw"),
        Bug("a hard-coded 5x5 kernel: use kh and kw",
            _CONV_HEAD + "    return (c_in * 5 * 5 + (1 if bias else 0)) * c_out"),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 3: the shift experiment
# --------------------------------------------------------------------------------------------

def ref_shift_image(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Shift an image dx pixels right and dy pixels down (negative: left/up), filling with zeros.

    Args:
        img: (H, W) image.
        dx, dy: integer shifts with |dx| < W and |dy| < H.

    Returns:
        (H, W) float array.
    """
    img = np.asarray(img, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"img must be 2-D (H, W), got shape {img.shape}")
    h, w = img.shape
    if abs(dx) >= w or abs(dy) >= h:
        raise ValueError(f"shift ({dx}, {dy}) does not fit an image of shape {img.shape}")
    out = np.zeros_like(img)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = img[max(-dy, 0):h - max(dy, 0),
                                                                    max(-dx, 0):w - max(dx, 0)]
    return out


def _shift_public() -> list[Case]:
    g = rng(1)
    return [Case((g.random((6, 6)), 2, 1), label="right 2, down 1"),
            Case((g.random((5, 6)), 1, 0), label="right 1"),
            Case((g.random((5, 6)), 0, 1), label="down 1"),
            Case((g.random((6, 5)), -1, 0), label="left 1")]


def _shift_hidden() -> list[Case]:
    g = rng(10_101)
    return [Case((g.random((7, 9)), 3, -2), label="right and up, non-square"),
            Case((g.random((8, 4)), -3, 2), label="left and down"),
            Case((g.random((5, 5)), 0, 0), label="no shift"),
            Case((g.random((9, 7)), -2, -4), label="left and up"),
            Case((g.random((1, 6)), 4, 0), label="a one-row image"),
            Case((g.random((6, 1)), 0, -5), label="a one-column image"),
            Case((g.standard_normal((32, 32)), 1, 1), label="a 32x32 image")]


_SHIFT_SLICES = ("    h, w = img.shape\n    out = np.zeros_like(img, dtype=float)\n"
                 "    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \\\n"
                 "        img[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]\n    return out\n")

_THIS = sys.modules[__name__]  # the references below are pure NumPy: refuse them inside the student's code

NOTEBOOK.add(Exercise(
    "shift_image", 3, ref_shift_image, _shift_public, _shift_hidden,
    extra=refuse_module(_THIS, np.ones((4, 4)), 1, 0, advice="write the slicing yourself"),
    bugs=[
        Bug("wraps around (np.roll): pixels that fall off one side must not come back on the other",
            "def shift_image(img, dx, dy):\n    return np.roll(img, (dy, dx), axis=(0, 1)).astype(float)",
            fix="start from np.zeros_like(img) and copy the part that stays inside"),
        Bug("the shift goes the wrong way: positive dx moves the content right, positive dy moves it down",
            "def shift_image(img, dx, dy):\n    dx, dy = -dx, -dy\n" + _SHIFT_SLICES),
        Bug("dy moves the content up: rows grow downwards, so positive dy moves it down",
            "def shift_image(img, dx, dy):\n    dy = -dy\n" + _SHIFT_SLICES),
        Bug("dx moves the content left: positive dx moves it right",
            "def shift_image(img, dx, dy):\n    dx = -dx\n" + _SHIFT_SLICES),
        Bug("dx and dy swapped: dx is horizontal (columns), dy vertical (rows)",
            "def shift_image(img, dx, dy):\n    dx, dy = dy, dx\n" + _SHIFT_SLICES),
        Bug("dy is ignored: the content must also move dy rows down",
            "def shift_image(img, dx, dy):\n    dy = 0\n" + _SHIFT_SLICES),
        Bug("the shift is hard-coded (1 px right): use dx and dy",
            "def shift_image(img, dx, dy):\n    out = np.zeros_like(img, dtype=float)\n"
            "    out[:, 1:] = img[:, :-1]\n    return out"),
        Bug("changed its input",
            "def shift_image(img, dx, dy):\n    out = img\n    out[:] = np.roll(img, (dy, dx), axis=(0, 1))\n"
            "    return out", by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 4: response_change
# --------------------------------------------------------------------------------------------

def ref_response_change(before: np.ndarray, after: np.ndarray) -> float:
    """Return ``||after - before|| / ||before||`` (Frobenius norms over all entries)."""
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    return float(np.linalg.norm(after - before) / np.linalg.norm(before))


def _change_public() -> list[Case]:
    g = rng(2)
    v = g.standard_normal(10)
    return [Case((np.array([3.0, 4.0]), np.array([3.0, 0.0])), label="by hand: |(0, -4)| / |(3, 4)| = 0.8"),
            Case((v, v.copy()), label="no change"),
            Case((v, 2 * v), label="doubled"),
            Case((g.standard_normal((4, 5)), g.standard_normal((4, 5))), label="two 4x5 maps")]


def _change_hidden() -> list[Case]:
    g = rng(20_202)
    return [Case((g.standard_normal(300), g.standard_normal(300)), label="long vectors"),
            Case((g.random((6, 7)), g.random((6, 7))), label="2-D maps"),
            Case((g.standard_normal((2, 3, 4)), g.standard_normal((2, 3, 4))), label="3-D volumes"),
            Case((np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 5.0]])), label="one entry changed"),
            Case((100 * g.standard_normal(50), g.standard_normal(50)), label="very different scales")]


NOTEBOOK.add(Exercise(
    "response_change", 4, ref_response_change, _change_public, _change_hidden, kind="float",
    extra=refuse_module(_THIS, np.ones(3), np.zeros(3), advice="one line of np.linalg.norm is all it takes"),
    bugs=[
        Bug("not divided by ||before||: the change must be relative to the original response",
            "def response_change(before, after):\n    return float(np.linalg.norm(after - before))"),
        Bug("divided by ||after|| instead of ||before||",
            "def response_change(before, after):\n"
            "    return float(np.linalg.norm(after - before) / np.linalg.norm(after))"),
        Bug("squared norms: use np.linalg.norm, not the sum of squares",
            "def response_change(before, after):\n"
            "    return float(np.sum((after - before) ** 2) / np.sum(before ** 2))"),
        Bug("norm of after minus norm of before: subtract the arrays first, then take the norm",
            "def response_change(before, after):\n"
            "    return float(abs(np.linalg.norm(after) - np.linalg.norm(before)) / np.linalg.norm(before))"),
        Bug("mean absolute difference instead of the norm ratio",
            "def response_change(before, after):\n    return float(np.mean(np.abs(after - before)))"),
        Bug("the L1 norm (sum of absolute values) instead of the Euclidean norm",
            "def response_change(before, after):\n"
            "    return float(np.sum(np.abs(after - before)) / np.sum(np.abs(before)))",
            fix="np.linalg.norm(a) is the square root of the sum of squares"),
        Bug("ord=2 on a 2-D array is the spectral norm (largest singular value), not the Euclidean norm of "
            "all entries", "def response_change(before, after):\n"
            "    return float(np.linalg.norm(after - before, 2) / np.linalg.norm(before, 2))",
            fix="np.linalg.norm(a) with no ord: the Frobenius norm over every entry"),
        Bug("the ratio is upside down: ||after - before|| goes on top",
            "def response_change(before, after):\n"
            "    return float(np.linalg.norm(before) / np.linalg.norm(after - before))"),
    ],
))
