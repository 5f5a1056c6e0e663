"""Exercise records of notebook 05 (pooling): max and average pooling, forward and backward, and a
shift-invariance measurement.

Test cells call ``nb05.check("max_pool_forward", max_pool_forward)`` and ``tier="hidden"``; the
notebook's last cell calls ``nb05.summary(globals())``.

Conventions the notebook states and these records check:

- ``*_forward(x, size, stride) -> (out, cache)`` with ``x`` of shape (N, C, H, W), a square
  ``size`` x ``size`` window, ``out`` of shape (N, C, (H - size) // stride + 1, ...), always a
  floating-point array (an integer image gives float output), and ``cache = (x, size, stride)``;
- ``*_backward(dout, cache) -> dx`` receives that cache (the checks build it themselves, so a
  backward pass is checked on its own);
- max-pool ties: the whole gradient of a window goes to ONE maximum, the first in row-major order
  (``np.argmax`` of the window), as ``cnnlab.numpy_ref.max_pool_backward`` and PyTorch's CPU kernel
  do; overlapping windows (stride < size) add their contributions;
- ``shift_invariance(fmap, pool, shifts)`` shifts ``fmap`` right (zero fill), pools both with the
  given ``pool`` function and returns the relative changes before and after pooling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from cnnlab.grading import rng
from cnnlab.grading.exercise import Bug, Case, Exercise, Notebook
from cnnlab.numpy_ref import avg_pool_backward as ref_avg_pool_backward_cached
from cnnlab.numpy_ref import avg_pool_forward as ref_avg_pool_forward_cached
from cnnlab.numpy_ref import max_pool_backward as ref_max_pool_backward_cached
from cnnlab.numpy_ref import max_pool_forward as ref_max_pool_forward_cached

__all__ = ["NOTEBOOK", "check", "summary", "HAND_X", "ref_max_pool_forward", "ref_max_pool_backward",
           "ref_avg_pool_forward", "ref_avg_pool_backward", "ref_shift_invariance", "shift_right",
           "max_pool_2x2", "avg_pool_2x2", "global_max_pool"]

NOTEBOOK = Notebook("05_pooling")
check = NOTEBOOK.check
summary = NOTEBOOK.summary

#: The notebook's hand-checkable example: a 4x4 image of small integers with two tied maxima
#: (5 and 5 in the top-right window, 3 and 3 in the bottom-left one), as (1, 1, 4, 4).
HAND_X = np.array([[1, 3, 2, 1],
                   [4, 6, 5, 5],
                   [3, 1, 1, 2],
                   [3, 0, 7, 8]])[None, None]


# --------------------------------------------------------------------------------------------
# references in the notebook's convention (cache = (x, size, stride))
# --------------------------------------------------------------------------------------------

def ref_max_pool_forward(x: np.ndarray, size: int = 2, stride: int = 2) -> tuple[np.ndarray, tuple]:
    """``cnnlab.numpy_ref.max_pool_forward`` returning the notebook's cache ``(x, size, stride)``."""
    return ref_max_pool_forward_cached(x, size, stride)[0], (x, size, stride)


def ref_avg_pool_forward(x: np.ndarray, size: int = 2, stride: int = 2) -> tuple[np.ndarray, tuple]:
    """``cnnlab.numpy_ref.avg_pool_forward`` returning the notebook's cache ``(x, size, stride)``."""
    return ref_avg_pool_forward_cached(x, size, stride)[0], (x, size, stride)


def ref_max_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """``cnnlab.numpy_ref.max_pool_backward`` from the notebook's cache (first maximum gets the gradient)."""
    x, size, stride = cache
    return ref_max_pool_backward_cached(dout, ref_max_pool_forward_cached(x, size, stride)[1])


def ref_avg_pool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """``cnnlab.numpy_ref.avg_pool_backward`` from the notebook's cache."""
    x, size, stride = cache
    return ref_avg_pool_backward_cached(dout, ref_avg_pool_forward_cached(x, size, stride)[1])


# --------------------------------------------------------------------------------------------
# pooling functions handed to shift_invariance (plain NumPy, so the integrity guard lets them run)
# --------------------------------------------------------------------------------------------

def max_pool_2x2(a: np.ndarray) -> np.ndarray:
    """2x2 max pooling, stride 2, of an (N, C, H, W) array with even H and W."""
    n, c, h, w = a.shape
    return a.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def avg_pool_2x2(a: np.ndarray) -> np.ndarray:
    """2x2 average pooling, stride 2, of an (N, C, H, W) array with even H and W."""
    n, c, h, w = a.shape
    return a.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def global_max_pool(a: np.ndarray) -> np.ndarray:
    """The largest value of each channel: (N, C, H, W) -> (N, C)."""
    return a.max(axis=(2, 3))


def shift_right(a: np.ndarray, s: int) -> np.ndarray:
    """Move the content of the last axis ``s >= 1`` pixels right; the vacated columns become 0."""
    out = np.zeros(a.shape)
    out[..., s:] = a[..., :-s]
    return out


def ref_shift_invariance(fmap: np.ndarray, pool: Callable[[np.ndarray], np.ndarray],
                         shifts: Sequence[int] = (1, 2)) -> np.ndarray:
    """For each shift s: [||m_s - m|| / ||m||, ||pool(m_s) - pool(m)|| / ||pool(m)||], m_s = m shifted right by s."""
    fmap = np.asarray(fmap, dtype=float)
    rows = []
    for s in shifts:
        moved = shift_right(fmap, s)
        p, pm = pool(fmap), pool(moved)
        rows.append([np.linalg.norm(moved - fmap) / np.linalg.norm(fmap), np.linalg.norm(pm - p) / np.linalg.norm(p)])
    return np.array(rows)


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------

def _overlapping(g: np.random.Generator, n: int, c: int, h: int, w: int) -> np.ndarray:
    """Random maps whose largest values sit where 3x3 stride-2 windows overlap (even rows and columns)."""
    x = g.standard_normal((n, c, h, w))
    x[:, :, 2::2, 2::2] += 4.0 + g.random((n, c, len(range(2, h, 2)), len(range(2, w, 2))))
    return x


def _forward_public() -> list[Case]:
    g = rng(5)
    return [Case((HAND_X, 2, 2), label="the 4x4 example of small integers, 2x2 windows, stride 2"),
            Case((g.standard_normal((2, 3, 6, 8)), 2, 2), label="a batch of 2 images with 3 channels, 6x8"),
            Case((_overlapping(g, 1, 2, 7, 7), 3, 2), label="overlapping windows: size 3, stride 2")]


def _forward_hidden() -> list[Case]:
    g = rng(50_505)
    return [Case((_overlapping(g, 2, 3, 9, 9), 3, 2), label="overlapping 3x3 windows, stride 2, a batch with channels"),
            Case((g.standard_normal((1, 2, 6, 10)), 2, 2), label="a non-square input"),
            Case((g.standard_normal((3, 2, 5, 9)), 3, 2), label="a non-square input with overlapping windows"),
            Case((g.standard_normal((2, 1, 5, 5)), 2, 1), label="stride 1"),
            Case((g.standard_normal((1, 4, 9, 6)), 3, 3), label="3x3 windows, stride 3"),
            Case((g.integers(0, 9, (2, 2, 4, 6)), 2, 2), label="an integer image with ties"),
            Case((g.standard_normal((2, 3, 4, 4)), 4, 1), label="one window covering the whole map")]


_FWD_HEAD = ("def {name}(x, size=2, stride=2):\n"
             "    N, C, H, W = x.shape\n"
             "    Ho = (H - size) // stride + 1\n"
             "    Wo = (W - size) // stride + 1\n")


def _fwd(name: str, body: str, head: str | None = None) -> str:
    return (head or _FWD_HEAD).format(name=name) + body + "    return out, (x, size, stride)\n"


_FWD_LOOP = ("    out = np.zeros((N, C, Ho, Wo))\n"
             "    for i in range(Ho):\n"
             "        for j in range(Wo):\n"
             "            window = x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]\n"
             "            out[:, :, i, j] = {reduce}\n")


def _fwd_replace(name: str, reduce: str, old: str, new: str, head: str | None = None) -> str:
    return _fwd(name, _FWD_LOOP.format(reduce=reduce).replace(old, new), head)


_SHORT_HEAD = ("def {name}(x, size=2, stride=2):\n"
               "    N, C, H, W = x.shape\n"
               "    Ho = (H - size) // stride\n"
               "    Wo = (W - size) // stride\n")
_NO_STRIDE_SLICE = ("x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]",
                    "x[:, :, i:i + size, j:j + size]")
_SIZE_STEP_SLICE = ("x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]",
                    "x[:, :, i * size:i * size + size, j * size:j * size + size]")
_INT_OUT = ("np.zeros((N, C, Ho, Wo))", "np.zeros((N, C, Ho, Wo), dtype=x.dtype)")
_WRONG_AXES = ("def {name}(x, size=2, stride=2):\n"
               "    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))\n"
               "    windows = windows[:, :, ::stride, ::stride]   # (N, C, Ho, Wo, size, size)\n"
               "    out = windows.{op}(axis=(2, 3))\n"
               "    return out, (x, size, stride)\n")

_MAX_POOL_FORWARD = (Exercise(
    "max_pool_forward", 1, ref_max_pool_forward, _forward_public, _forward_hidden,
    outputs=("out", "cache"), compare=("out",),
    bugs=[
        Bug("stride ignored when slicing: window (i, j) starts at row i * stride and column j * stride",
            _fwd_replace("max_pool_forward", "window.max(axis=(2, 3))", *_NO_STRIDE_SLICE)),
        Bug("the windows step by the window size, not the stride: window (i, j) starts at row i * stride and column "
            "j * stride (the two differ when windows overlap; past the edge a window is empty)",
            _fwd_replace("max_pool_forward", "window.max(axis=(2, 3))", *_SIZE_STEP_SLICE),
            fix="slice x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]"),
        Bug("the output size lacks the + 1: (H - size) // stride + 1 windows fit along H",
            _fwd_replace("max_pool_forward", "window.max(axis=(2, 3))", "", "", head=_SHORT_HEAD)),
        Bug("pooling across channels: each channel is pooled on its own, take the max over the window only",
            _fwd_replace("max_pool_forward", "window.max(axis=(1, 2, 3))[:, None]", "", "")),
        Bug("max over the wrong axes: the window axes of sliding_window_view are the last two (axis=(-2, -1))",
            _WRONG_AXES.format(name="max_pool_forward", op="max")),
        Bug("got integer dtype",
            _fwd_replace("max_pool_forward", "window.max(axis=(2, 3))", *_INT_OUT), by_output=False),
        Bug("took the mean of each window: max pooling keeps the largest value",
            _fwd_replace("max_pool_forward", "window.mean(axis=(2, 3))", "", "")),
    ],
))

_AVG_POOL_FORWARD = (Exercise(
    "avg_pool_forward", 3, ref_avg_pool_forward, _forward_public, _forward_hidden,
    outputs=("out", "cache"), compare=("out",),
    bugs=[
        Bug("summed each window instead of averaging it: divide by the size * size values of the window",
            _fwd_replace("avg_pool_forward", "window.sum(axis=(2, 3))", "", "")),
        Bug("divided by size instead of size * size: a window holds size * size values",
            _fwd_replace("avg_pool_forward", "window.sum(axis=(2, 3)) / size", "", "")),
        Bug("stride ignored when slicing: window (i, j) starts at row i * stride and column j * stride",
            _fwd_replace("avg_pool_forward", "window.mean(axis=(2, 3))", *_NO_STRIDE_SLICE)),
        Bug("pooling across channels: each channel is pooled on its own, average over the window only",
            _fwd_replace("avg_pool_forward", "window.mean(axis=(1, 2, 3))[:, None]", "", "")),
        Bug("mean over the wrong axes: the window axes of sliding_window_view are the last two (axis=(-2, -1))",
            _WRONG_AXES.format(name="avg_pool_forward", op="mean")),
        Bug("got integer dtype",
            _fwd_replace("avg_pool_forward", "window.mean(axis=(2, 3))", *_INT_OUT), by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# backward passes
# --------------------------------------------------------------------------------------------

def _backward_cases(forward_cases: list[Case], seed: int) -> list[Case]:
    g = rng(seed)
    cases = []
    for case in forward_cases:
        x, size, stride = case.args
        out = ref_max_pool_forward_cached(x, size, stride)[0]
        dout = np.round(g.standard_normal(out.shape), 2) if case is forward_cases[0] else g.standard_normal(out.shape)
        cases.append(Case((dout, (x, size, stride)), label=case.label))
    return cases


def _backward_public(ties: bool = True) -> list[Case]:
    cases = _backward_cases(_forward_public(), 55)
    hand_dout = np.array([[1.0, 2.0], [3.0, 4.0]])[None, None]
    label = "the 4x4 example (two windows hold ties)" if ties else "the 4x4 example"
    return [Case((hand_dout, (HAND_X, 2, 2)), label=f"{label}, dout = [[1, 2], [3, 4]]"), *cases[1:]]


def _avg_backward_public() -> list[Case]:
    return _backward_public(ties=False)


def _backward_hidden() -> list[Case]:
    return _backward_cases(_forward_hidden(), 555)


_MAX_BWD = ("def max_pool_backward(dout, cache):\n"
            "    x, size, stride = cache\n"
            "    N, C, Ho, Wo = dout.shape\n"
            "    dx = np.zeros(x.shape)\n"
            "    for n in range(N):\n"
            "        for c in range(C):\n"
            "            for i in range(Ho):\n"
            "                for j in range(Wo):\n"
            "                    window = x[n, c, i * stride:i * stride + size, j * stride:j * stride + size]\n"
            "                    a, b = np.unravel_index(np.argmax(window), window.shape)\n"
            "                    dx[n, c, i * stride + a, j * stride + b] += dout[n, c, i, j]\n"
            "    return dx\n")


def _max_bwd(*pairs: tuple[str, str]) -> str:
    code = _MAX_BWD
    for old, new in pairs:
        if old not in code:
            raise ValueError(f"bug template: {old!r} not found")
        code = code.replace(old, new)
    return code


_ASSIGN = ("dx[n, c, i * stride + a, j * stride + b] += dout[n, c, i, j]",
           "dx[n, c, i * stride + a, j * stride + b] = dout[n, c, i, j]")
_BWD_NO_STRIDE = [("x[n, c, i * stride:i * stride + size, j * stride:j * stride + size]", "x[n, c, i:i + size, j:j + size]"),
                  ("dx[n, c, i * stride + a, j * stride + b]", "dx[n, c, i + a, j + b]")]

_MAX_POOL_BACKWARD = (Exercise(
    "max_pool_backward", 2, ref_max_pool_backward, _backward_public, _backward_hidden, outputs="dx",
    bugs=[
        Bug("the max mask keeps ties twice: when two values tie for the maximum, only the first (np.argmax) "
            "gets the gradient",
            _max_bwd(("a, b = np.unravel_index(np.argmax(window), window.shape)\n", "mask = window == window.max()\n"),
                     ("dx[n, c, i * stride + a, j * stride + b] += dout[n, c, i, j]",
                      "dx[n, c, i * stride:i * stride + size, j * stride:j * stride + size] += mask * dout[n, c, i, j]"))),
        Bug("overwriting instead of accumulating: where windows overlap (stride < size) one input can be the "
            "maximum of several windows, so add (+=) their gradients",
            _max_bwd(_ASSIGN)),
        Bug("the gradient went to every value of the window: only the window's maximum gets it",
            _max_bwd(("dx[n, c, i * stride + a, j * stride + b] += dout[n, c, i, j]",
                      "dx[n, c, i * stride:i * stride + size, j * stride:j * stride + size] += dout[n, c, i, j]"))),
        Bug("argmax over the wrong axes: row and column of the maximum are swapped "
            "(np.unravel_index returns (row, column))",
            _max_bwd(("a, b = np.unravel_index", "b, a = np.unravel_index"))),
        Bug("stride ignored: window (i, j) starts at row i * stride and column j * stride",
            _max_bwd(*_BWD_NO_STRIDE)),
        Bug("the mask without the upstream gradient: multiply it by dout",
            _max_bwd(("+= dout[n, c, i, j]", "+= 1"))),
        Bug("pooling across channels: the maximum must be taken within the window's own channel",
            _max_bwd(("window = x[n, c, ", "window = x[n, :, "),
                     ("a, b = np.unravel_index(np.argmax(window), window.shape)",
                      "k, a, b = np.unravel_index(np.argmax(window), window.shape)"),
                     ("dx[n, c, i * stride + a", "dx[n, k, i * stride + a"))),
        Bug("got integer dtype", _max_bwd(("dx = np.zeros(x.shape)", "dx = np.zeros_like(x)")), by_output=False),
    ],
))

_AVG_BWD = ("def avg_pool_backward(dout, cache):\n"
            "    x, size, stride = cache\n"
            "    N, C, Ho, Wo = dout.shape\n"
            "    dx = np.zeros(x.shape)\n"
            "    for i in range(Ho):\n"
            "        for j in range(Wo):\n"
            "            dx[:, :, i * stride:i * stride + size, j * stride:j * stride + size] += "
            "dout[:, :, i, j, None, None] / (size * size)\n"
            "    return dx\n")


def _avg_bwd(*pairs: tuple[str, str]) -> str:
    code = _AVG_BWD
    for old, new in pairs:
        if old not in code:
            raise ValueError(f"bug template: {old!r} not found")
        code = code.replace(old, new)
    return code


_AVG_POOL_BACKWARD = (Exercise(
    "avg_pool_backward", 4, ref_avg_pool_backward, _avg_backward_public, _backward_hidden, outputs="dx",
    bugs=[
        Bug("the gradient is not divided by the window size: each of the size * size inputs gets "
            "dout / (size * size)",
            _avg_bwd((" / (size * size)", ""))),
        Bug("divided by size instead of size * size: a window holds size * size values",
            _avg_bwd((" / (size * size)", " / size"))),
        Bug("overwriting instead of accumulating: where windows overlap (stride < size) an input belongs to "
            "several windows, so add (+=) their shares",
            _avg_bwd(("] += dout", "] = dout"))),
        Bug("stride ignored: window (i, j) starts at row i * stride and column j * stride",
            _avg_bwd(("dx[:, :, i * stride:i * stride + size, j * stride:j * stride + size]",
                      "dx[:, :, i:i + size, j:j + size]"))),
        Bug("the whole gradient went to the window's first value: average pooling spreads it evenly",
            _avg_bwd(("dx[:, :, i * stride:i * stride + size, j * stride:j * stride + size] += "
                      "dout[:, :, i, j, None, None] / (size * size)",
                      "dx[:, :, i * stride, j * stride] += dout[:, :, i, j]"))),
        Bug("integer dtype: np.zeros_like(x) copies the integer dtype of an integer image, which cannot hold "
            "the fractions dout / (size * size)",
            _avg_bwd(("dx = np.zeros(x.shape)", "dx = np.zeros_like(x)")),
            fix="create dx with np.zeros(x.shape) (float64)"),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 5: shift_invariance
# --------------------------------------------------------------------------------------------

def _relu_maps(g: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return np.maximum(g.standard_normal(shape), 0) + 0.01


def _shift_public() -> list[Case]:
    g = rng(7)
    ramp = np.tile(np.arange(8.0), (8, 1))[None, None]   # values grow to the right
    return [Case((_relu_maps(g, (1, 2, 8, 8)), max_pool_2x2, (1, 2)), label="two 8x8 maps, 2x2 max pooling, shifts 1 and 2"),
            Case((ramp, avg_pool_2x2, (1,)), label="a ramp growing to the right, 2x2 average pooling, shift 1"),
            Case((_relu_maps(g, (2, 3, 6, 6)), global_max_pool, (1, 2, 3)), label="a batch, global max pooling")]


def _shift_hidden() -> list[Case]:
    g = rng(70_707)
    return [Case((_relu_maps(g, (2, 4, 12, 12)), max_pool_2x2, (1, 2, 3)), label="a batch of 4-channel maps, shifts 1-3"),
            Case((_relu_maps(g, (1, 1, 6, 10)), avg_pool_2x2, (2,)), label="a non-square map, average pooling"),
            Case((g.standard_normal((1, 2, 8, 8)) + 3, global_max_pool, (4, 1)), label="global max pooling, shifts 4 and 1"),
            Case((_relu_maps(g, (1, 1, 4, 16)), max_pool_2x2, (5,)), label="a wide map, shift 5")]


_SHIFT = ("def shift_invariance(fmap, pool, shifts=(1, 2)):\n"
          "    rows = []\n"
          "    for s in shifts:\n"
          "        moved = np.zeros(fmap.shape)\n"
          "        moved[..., s:] = fmap[..., :-s]\n"
          "        before = np.linalg.norm(moved - fmap) / np.linalg.norm(fmap)\n"
          "        p, pm = pool(fmap), pool(moved)\n"
          "        after = np.linalg.norm(pm - p) / np.linalg.norm(p)\n"
          "        rows.append([before, after])\n"
          "    return np.array(rows)\n")


def _shift(*pairs: tuple[str, str]) -> str:
    code = _SHIFT
    for old, new in pairs:
        if old not in code:
            raise ValueError(f"bug template: {old!r} not found")
        code = code.replace(old, new)
    return code


_SHIFT_INVARIANCE = (Exercise(
    "shift_invariance", 5, ref_shift_invariance, _shift_public, _shift_hidden,
    bugs=[
        Bug("wraps around (np.roll): the columns that leave on the right must not come back on the left",
            _shift(("moved = np.zeros(fmap.shape)\n        moved[..., s:] = fmap[..., :-s]\n",
                    "moved = np.roll(fmap, s, axis=-1)\n")),
            fix="start from zeros and copy fmap[..., :-s] into moved[..., s:]"),
        Bug("shifted left: a positive shift moves the content right (moved[..., s:] = fmap[..., :-s])",
            _shift(("moved[..., s:] = fmap[..., :-s]", "moved[..., :-s] = fmap[..., s:]"))),
        Bug("shifted down (along the rows) instead of right (along the columns, the last axis)",
            _shift(("moved[..., s:] = fmap[..., :-s]", "moved[..., s:, :] = fmap[..., :-s, :]"))),
        Bug("not divided by the norm of the original: the change must be relative, ||b - a|| / ||a||",
            _shift((" / np.linalg.norm(fmap)", ""), (" / np.linalg.norm(p)", ""))),
        Bug("divided by the norm of the shifted map instead of the original's",
            _shift(("np.linalg.norm(fmap)", "np.linalg.norm(moved)"), ("np.linalg.norm(p)", "np.linalg.norm(pm)"))),
        Bug("the two columns are swapped: each row is [change before pooling, change after pooling]",
            _shift(("rows.append([before, after])", "rows.append([after, before])"))),
        Bug("changed its input",
            _shift(("moved = np.zeros(fmap.shape)\n        moved[..., s:] = fmap[..., :-s]\n",
                    "moved = fmap\n        moved[..., s:] = fmap[..., :-s].copy()\n        moved[..., :s] = 0\n")),
            by_output=False),
    ],
))


for _record in (_MAX_POOL_FORWARD, _MAX_POOL_BACKWARD, _AVG_POOL_FORWARD, _AVG_POOL_BACKWARD, _SHIFT_INVARIANCE):
    NOTEBOOK.add(_record)
