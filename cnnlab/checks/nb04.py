"""Exercise records of notebook 04 (convolution over volumes).

``conv_forward_naive`` (loops), ``conv_forward`` (vectorised: it may not loop over the
output positions; a loop over kernel offsets, images or filters is tolerated), ``conv_backward`` (``dx``, ``dw``, ``db``, one test cell each through ``only=``; the
public tier compares with central differences of the reference forward pass, the hidden tier with
the reference backward pass), ``count_conv_params`` and ``count_conv_macs``.

Conventions: ``x`` (N, C, H, W), ``w`` (F, C, KH, KW), ``b`` (F,), integer ``stride`` and ``pad``;
the forward passes return ``(out, cache)`` with ``cache = {"x", "w", "b", "stride", "pad"}``;
``conv_backward(dout, cache)`` returns ``(dx, dw, db)`` (a list of the three is accepted too).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab import shapes
from cnnlab.grading import numeric_gradient, rng
from cnnlab.grading.exercise import Bug, Case, Exercise, Notebook, Problem
from cnnlab.grading.probes import count_user_lines, refuse_module
from cnnlab.numpy_ref import conv_backward as _numpy_conv_backward
from cnnlab.numpy_ref import conv_forward as ref_conv_forward
from cnnlab.numpy_ref import conv_forward_naive as ref_conv_forward_naive
from cnnlab.shapes import conv_params as ref_count_conv_params

__all__ = ["NOTEBOOK", "check", "summary", "ref_conv_backward", "numeric_conv_backward", "ref_count_conv_macs"]

NOTEBOOK = Notebook("04_volumes")
check = NOTEBOOK.check
summary = NOTEBOOK.summary

_NO_SHAPES = ("cnnlab.shapes holds this exercise's answers (the notebook imports it for its demos): "
              "count with + and * yourself")


def ref_conv_backward(dout: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference gradients (dx, dw, db) for the notebook's cache {"x", "w", "b", "stride", "pad"}."""
    _, ref_cache = ref_conv_forward(cache["x"], cache["w"], cache["b"], stride=cache["stride"], pad=cache["pad"])
    return _numpy_conv_backward(dout, ref_cache)


def numeric_conv_backward(dout: np.ndarray, cache: dict[str, Any], h: float = 1.0) -> tuple[np.ndarray, ...]:
    """(dx, dw, db) by central differences of the reference forward pass.

    The layer is linear in each of x, w and b, so any step h is exact up to rounding.
    """
    x, w, b, stride, pad = (cache[k] for k in ("x", "w", "b", "stride", "pad"))

    def out(x_: np.ndarray = x, w_: np.ndarray = w, b_: np.ndarray = b) -> np.ndarray:
        return ref_conv_forward(x_, w_, b_, stride=stride, pad=pad)[0]

    return (numeric_gradient(lambda t: out(x_=t), x, df=dout, h=h),
            numeric_gradient(lambda t: out(w_=t), w, df=dout, h=h),
            numeric_gradient(lambda t: out(b_=t), b, df=dout, h=h))


def ref_count_conv_macs(in_shape: tuple[int, int, int], c_out: int, kh: int, kw: int, stride: int = 1,
                        pad: int = 0) -> int:
    """Multiply-adds of a conv layer for one (C, H, W) image, bias additions not counted."""
    c, h, w = in_shape
    ho = shapes.conv_output_size(h, kh, pad, stride, strict=False)
    wo = shapes.conv_output_size(w, kw, pad, stride, strict=False)
    return shapes.conv_macs(c, c_out, kh, kw, ho, wo)


# --------------------------------------------------------------------------------------------
# Exercises 1 and 2: the forward pass, loops and vectorised
# --------------------------------------------------------------------------------------------
# (x shape, w shape, stride, pad, label); the first case of each tier has W' == F, so that a bias
# broadcast over the width axis gives a wrong answer instead of an error, and N != F.
_FORWARD_PUBLIC = [((2, 3, 7, 7), (4, 3, 3, 3), 2, 1, "a 7x7 RGB batch, 4 filters, stride 2, pad 1"),
                   ((2, 2, 6, 5), (3, 2, 3, 2), 1, 0, "a rectangular kernel, no padding"),
                   ((1, 3, 5, 5), (2, 3, 3, 3), 1, 2, "pad 2")]
_FORWARD_HIDDEN = [((3, 2, 9, 7), (5, 2, 3, 3), 2, 2, "a strided batch, pad 2"),
                   ((2, 4, 8, 10), (3, 4, 2, 4), 2, 0, "a rectangular kernel, stride 2"),
                   ((2, 1, 6, 6), (2, 1, 1, 1), 1, 1, "a 1x1 kernel, pad 1"),
                   ((1, 3, 11, 11), (2, 3, 5, 5), 2, 2, "a 5x5 kernel, stride 2, pad 2"),
                   ((4, 3, 5, 7), (6, 3, 1, 3), 1, 1, "a 1x3 kernel"),
                   ((1, 2, 10, 5), (2, 2, 4, 2), 3, 0, "stride 3"),
                   ((2, 3, 6, 6), (4, 3, 3, 3), 1, 1, "a float32 batch")]


def _forward_cases(seed: int, specs: list) -> list[Case]:
    g = rng(seed)
    cases = []
    for xs, ws, stride, pad, label in specs:
        dtype = np.float32 if "float32" in label else np.float64
        x, w, b = (g.standard_normal(s).astype(dtype) for s in (xs, ws, (ws[0],)))
        tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {}
        cases.append(Case((x, w, b), {"stride": stride, "pad": pad}, label, **tol))
    return cases


def _naive_code(*, xp: str = "np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))",
                size: str = "({n} + 2 * pad - {k}) // stride + 1", rows: str = "i * stride", cols: str = "j * stride",
                value: str = "np.sum(window * w[f]) + b[f]", dtype: str = "", after: str = "",
                before: str = "") -> str:
    return ("def conv_forward_naive(x, w, b, stride=1, pad=0):\n"
            "    N, C, H, W = x.shape\n    F, _, KH, KW = w.shape\n"
            f"{before}"
            f"    xp = {xp}\n"
            f"    Ho = {size.format(n='H', k='KH')}\n    Wo = {size.format(n='W', k='KW')}\n"
            f"    out = np.zeros((N, F, Ho, Wo){dtype})\n"
            "    for n in range(N):\n        for f in range(F):\n            for i in range(Ho):\n"
            "                for j in range(Wo):\n"
            f"                    r, c = {rows}, {cols}\n"
            "                    window = xp[n, :, r:r + KH, c:c + KW]\n"
            f"                    out[n, f, i, j] = {value}\n"
            f"{after}"
            '    return out, {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}')


_CHANNEL_LOOP = ("def conv_forward_naive(x, w, b, stride=1, pad=0):\n"
                 "    N, C, H, W = x.shape\n    F, _, KH, KW = w.shape\n"
                 "    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))\n"
                 "    Ho = (H + 2 * pad - KH) // stride + 1\n    Wo = (W + 2 * pad - KW) // stride + 1\n"
                 "    out = np.zeros((N, F, Ho, Wo))\n"
                 "    for n in range(N):\n        for f in range(F):\n            for i in range(Ho):\n"
                 "                for j in range(Wo):\n                    for c in range(C):\n"
                 "                        r, s = i * stride, j * stride\n"
                 "                        out[n, f, i, j] = np.sum(xp[n, c, r:r + KH, s:s + KW] * w[f, c]) + b[f]\n"
                 '    return out, {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}')

NOTEBOOK.add(Exercise(
    "conv_forward_naive", 1, ref_conv_forward_naive,
    lambda: _forward_cases(4, _FORWARD_PUBLIC), lambda: _forward_cases(4404, _FORWARD_HIDDEN),
    outputs=("out", "cache"),
    bugs=[
        Bug("the stride is ignored: the windows move one pixel at a time and the output is too large",
            _naive_code(size="{n} + 2 * pad - {k} + 1", rows="i", cols="j")),
        Bug("the windows move one pixel at a time: start window (i, j) at row i*stride, column j*stride",
            _naive_code(rows="i", cols="j")),
        Bug("the padding is ignored: zero-pad H and W of x before sliding the window",
            _naive_code(xp="x", size="({n} - {k}) // stride + 1")),
        Bug("padding applied to the batch and channel axes too (np.pad(x, pad) pads every axis): pad only H and W, "
            "np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))",
            _naive_code(xp="np.pad(x, pad)")),
        Bug("the bias is missing: add b[f] to every output of filter f", _naive_code(value="np.sum(window * w[f])")),
        Bug("the bias is broadcast over the width axis (out + b): add b[f] to channel f, "
            "e.g. out + b[None, :, None, None]",
            _naive_code(value="np.sum(window * w[f])", after="    out = out + b\n")),
        Bug("a bias per batch element (b[n]): the bias belongs to the filter, b[f]",
            _naive_code(value="np.sum(window * w[f]) + b[n]")),
        Bug("window * w multiplies by every filter at once: use the one filter w[f]",
            _naive_code(value="np.sum(window * w) + b[f]")),
        Bug("the channel sum is assigned (=) inside the loop over channels, so only the last channel counts: "
            "add the channels up (or take all channels of the window at once)", _CHANNEL_LOOP),
        Bug("the bias is added once per input channel: add it once per output value",
            _CHANNEL_LOOP.replace("out[n, f, i, j] = np.sum", "out[n, f, i, j] += np.sum")),
        Bug("only the first input channel is used: sum over all channels of the window",
            _naive_code(value="np.sum(window[0] * w[f, 0]) + b[f]")),
        Bug("the kernel is flipped: deep-learning convolution is cross-correlation (no flip)",
            _naive_code(before="    w = w[:, :, ::-1, ::-1]\n")),
        Bug("off by one: the output misses its last row and column (H' = (H + 2*pad - KH) // stride + 1)",
            _naive_code(size="({n} + 2 * pad - {k}) // stride")),
        Bug("got integer dtype", _naive_code(dtype=", dtype=int"), by_output=False),
    ],
))


# the probe: a batch big enough that a loop over output positions runs thousands of lines
_PROBE = {"public": ((4, 3, 20, 20), (4, 3, 3, 3)), "hidden": ((3, 2, 18, 22), (5, 2, 3, 5))}
_MAX_LINES = 200
_LOOPS = "it still loops over the output positions"


def _vectorised(fn: Any, tier: str) -> str:
    xs, ws = _PROBE[tier]
    g = rng(40)
    x, w, b = g.standard_normal(xs), g.standard_normal(ws), g.standard_normal(ws[0])
    try:
        _, lines = count_user_lines(fn, x, w, b, stride=1, pad=1)
    except Exception as err:  # noqa: BLE001 - the student's error, as a failed check
        raise Problem(f"conv_forward (Exercise 2): on a batch x {xs} your function raised "
                      f"{type(err).__name__}: {err}") from None
    if lines > _MAX_LINES:
        raise Problem.named(
            f"conv_forward (Exercise 2): one call on a batch x {xs} with w {ws} ran {lines:,} lines of your "
            f"own Python code; a vectorised version runs a few dozen.", _LOOPS,
            "build all windows at once (sliding_window_view) and use one tensor product "
            "(tensordot, einsum or @); a loop over the KH*KW kernel offsets is fine")
    return f"vectorised ({lines} lines of your code ran)"


def _vector_code(*, xp: str = "np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))", step: str = "stride",
                 kernel: str = "w", order: str = "0, 3, 1, 2", bias: str = " + b[None, :, None, None]") -> str:
    return ("from numpy.lib.stride_tricks import sliding_window_view\n\n"
            "def conv_forward(x, w, b, stride=1, pad=0):\n"
            "    KH, KW = w.shape[2:]\n"
            f"    xp = {xp}\n"
            f"    windows = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::{step}, ::{step}]\n"
            f"    out = np.tensordot(windows, {kernel}, axes=([1, 4, 5], [1, 2, 3]))\n"
            f"    out = out.transpose({order}){bias}\n"
            '    return out, {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}')


NOTEBOOK.add(Exercise(
    "conv_forward", 2, ref_conv_forward,
    lambda: _forward_cases(5, _FORWARD_PUBLIC), lambda: _forward_cases(4405, _FORWARD_HIDDEN),
    outputs=("out", "cache"), extra=_vectorised,
    bugs=[
        Bug("the stride is ignored: keep every stride-th window, [:, :, ::stride, ::stride]",
            _vector_code(step="1")),
        Bug("the padding is ignored: zero-pad H and W of x before taking the windows", _vector_code(xp="x")),
        Bug("padding applied to the batch and channel axes too (np.pad(x, pad) pads every axis): pad only H and W, "
            "np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))", _vector_code(xp="np.pad(x, pad)")),
        Bug("the bias is reshaped to (F, 1, 1, 1), which lines it up with the batch axis: add "
            "b[None, :, None, None] (shape (1, F, 1, 1))", _vector_code(bias=" + b.reshape(-1, 1, 1, 1)")),
        Bug("the bias is missing: add b[f] to every output of filter f", _vector_code(bias="")),
        Bug("the bias is broadcast over the width axis (out + b): add b[f] to channel f, "
            "e.g. out + b[None, :, None, None]", _vector_code(bias=" + b")),
        Bug("H' and W' are swapped: (N, H', W', F) goes to (N, F, H', W') with transpose(0, 3, 1, 2)",
            _vector_code(order="0, 3, 2, 1")),
        Bug("the kernel is flipped: deep-learning convolution is cross-correlation (no flip)",
            _vector_code(kernel="w[:, :, ::-1, ::-1]")),
        Bug(_LOOPS, _naive_code().replace("conv_forward_naive", "conv_forward"), by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 3: conv_backward (dx, dw, db)
# --------------------------------------------------------------------------------------------
_BACKWARD_PUBLIC = [((2, 3, 5, 5), (4, 3, 3, 3), 2, 1, "overlapping windows (stride 2 < 3), pad 1"),
                    ((3, 2, 5, 4), (2, 2, 2, 3), 1, 0, "a rectangular kernel, no padding"),
                    ((2, 2, 4, 4), (3, 2, 3, 3), 1, 2, "pad 2")]
_BACKWARD_HIDDEN = [((3, 2, 7, 7), (3, 2, 3, 3), 2, 2, "a strided batch, pad 2"),
                    ((2, 3, 6, 8), (4, 3, 2, 4), 2, 1, "a rectangular kernel, stride 2, pad 1"),
                    ((4, 1, 5, 5), (2, 1, 1, 1), 1, 0, "a 1x1 kernel"),
                    ((2, 2, 9, 8), (3, 2, 3, 2), 3, 0, "stride 3")]


def _backward_cases(seed: int, specs: list, central: bool) -> list[Case]:
    g = rng(seed)
    cases = []
    for xs, ws, stride, pad, label in specs:
        x, w, b = g.standard_normal(xs), g.standard_normal(ws), g.standard_normal(ws[0])
        out, _ = ref_conv_forward(x, w, b, stride=stride, pad=pad)
        cache = {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}
        cases.append(Case((g.standard_normal(out.shape), cache), label=label,
                          expect=numeric_conv_backward if central else None))
    return cases


def _backward_code(*, crop: str = "dxp[:, :, pad:pad + H, pad:pad + W]", db: str = "dout.sum(axis=(0, 2, 3))",
                   rows: str = "i * stride", cols: str = "j * stride", dw_op: str = "+=", dx_op: str = "+=",
                   dw_term: str = "np.tensordot(g, xp[:, :, r:r + KH, c:c + KW], axes=(0, 0))",
                   dx_term: str = "np.tensordot(g, w, axes=(1, 0))", after: str = "") -> str:
    return ("def conv_backward(dout, cache):\n"
            '    x, w, stride, pad = cache["x"], cache["w"], cache["stride"], cache["pad"]\n'
            "    N, C, H, W = x.shape\n    KH, KW = w.shape[2:]\n    Ho, Wo = dout.shape[2:]\n"
            "    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))\n"
            "    dxp = np.zeros((N, C, max(xp.shape[2], (Ho - 1) * stride + KH), "
            "max(xp.shape[3], (Wo - 1) * stride + KW)))\n"
            f"    dw = np.zeros(w.shape)\n    db = {db}\n"
            "    for i in range(Ho):\n        for j in range(Wo):\n"
            f"            r, c = {rows}, {cols}\n"
            "            g = dout[:, :, i, j]\n"
            f"            dw {dw_op} {dw_term}\n"
            f"            dxp[:, :, r:r + KH, c:c + KW] {dx_op} {dx_term}\n"
            f"{after}"
            f"    dx = {crop}\n"
            "    return dx, dw, db")


NOTEBOOK.add(Exercise(
    "conv_backward", 3, ref_conv_backward,
    lambda: _backward_cases(14, _BACKWARD_PUBLIC, central=True),
    lambda: _backward_cases(1414, _BACKWARD_HIDDEN, central=False),
    outputs=("dx", "dw", "db"),
    grade_ids={o: (f"test_conv_backward_{o}_public", f"test_conv_backward_{o}_hidden") for o in ("dx", "dw", "db")},
    bugs=[
        Bug("dx still includes the padding: crop the padded gradient back to (N, C, H, W) with "
            "dxp[:, :, pad:pad + H, pad:pad + W]", _backward_code(crop="dxp"), outputs=("dx",)),
        Bug("the crop of the padding is hard-coded (1:-1): crop pad rows and columns, "
            "dxp[:, :, pad:pad + H, pad:pad + W]", _backward_code(crop="dxp[:, :, 1:-1, 1:-1]"), outputs=("dx",)),
        Bug("dx is assigned (=) instead of accumulated (+=): overlapping windows each add their share",
            _backward_code(dx_op="="), outputs=("dx",)),
        Bug("dx only has the first filter's contribution: sum over all filters f",
            _backward_code(dx_term="np.tensordot(g[:, :1], w[:1], axes=(1, 0))"), outputs=("dx",)),
        Bug("dx only has the first image's gradient: every image n gets its own dx[n]",
            _backward_code(dx_term="np.tensordot(g, w, axes=(1, 0)) * (np.arange(N) == 0)[:, None, None, None]"),
            outputs=("dx",)),
        Bug("dx uses the flipped kernel: the scatter form uses w[f] as it is",
            _backward_code(dx_term="np.tensordot(g, w[:, :, ::-1, ::-1], axes=(1, 0))"), outputs=("dx",)),
        Bug("the backward pass ignores the stride: window (i, j) starts at row i*stride, column j*stride",
            _backward_code(rows="i", cols="j"), outputs=("dx", "dw")),
        Bug("dw is assigned (=) instead of accumulated (+=): every position and image adds to dw",
            _backward_code(dw_op="="), outputs=("dw",)),
        Bug("dw is missing the sum over the batch (only the first image contributes): add up every image",
            _backward_code(dw_term="np.tensordot(g[:1], xp[:1, :, r:r + KH, c:c + KW], axes=(0, 0))"),
            outputs=("dw",)),
        Bug("dw is averaged over the batch: the loss is a sum, so do not divide by N",
            _backward_code(after="    dw = dw / N\n"), outputs=("dw",)),
        Bug("dw is flipped: dw[f] accumulates dout[n, f, i, j] * window, no flip",
            _backward_code(after="    dw = dw[:, :, ::-1, ::-1]\n"), outputs=("dw",)),
        Bug("a bias gradient per batch element: db sums dout over the batch too, axes (0, 2, 3)",
            _backward_code(db="dout.sum(axis=(2, 3))"), outputs=("db",)),
        Bug("db is missing the sum over positions: sum dout over axes (0, 2, 3)",
            _backward_code(db="dout.sum(axis=0)"), outputs=("db",)),
        Bug("db is missing the sum over the batch (only the first image): sum dout over axes (0, 2, 3)",
            _backward_code(db="dout[0].sum(axis=(1, 2))"), outputs=("db",)),
        Bug("db is a mean instead of a sum: sum dout over axes (0, 2, 3)",
            _backward_code(db="dout.mean(axis=(0, 2, 3))"), outputs=("db",)),
        Bug("db sums only over the batch and the height: sum over (0, 2, 3)",
            _backward_code(db="dout.sum(axis=(0, 2))"), outputs=("db",)),
        Bug("db sums over the wrong axes (one value per image instead of per filter): sum over (0, 2, 3)",
            _backward_code(db="dout.sum(axis=(1, 2, 3))"), outputs=("db",)),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercises 4 and 5: counting parameters and multiply-adds
# --------------------------------------------------------------------------------------------

def _params_public() -> list[Case]:
    return [Case((3, 6, 5, 5), {"bias": True}, "6 filters 5x5x3: (5*5*3 + 1) * 6"),
            Case((3, 20, 5, 5), {"bias": True}, "20 filters 5x5x3"),
            Case((2, 6, 5, 5), {"bias": True}, "a 2-channel input, six 5x5 filters"),
            Case((3, 10, 5, 5), {"bias": True}, "ten 5x5x3 filters"),
            Case((3, 10, 5, 5), {"bias": False}, "the same without bias"),
            Case((4, 2, 3, 1), {"bias": True}, "a 3x1 kernel")]


def _params_hidden() -> list[Case]:
    return [Case((3, 7, 3, 5), {"bias": True}, "a rectangular kernel"),
            Case((16, 32, 1, 1), {"bias": True}, "a 1x1 layer"),
            Case((64, 128, 3, 3), {"bias": False}, "a deep layer without bias"),
            Case((1, 1, 1, 1), {"bias": True}, "one 1x1 filter"),
            Case((5, 9, 7, 2), {"bias": True}, "a 7x2 kernel"),
            Case((100, 3, 5, 5), {"bias": False}, "many input channels, no bias")]


_PARAMS = "def count_conv_params(c_in, c_out, kh, kw, bias=True):\n    return "

NOTEBOOK.add(Exercise(
    "count_conv_params", 4, ref_count_conv_params, _params_public, _params_hidden, kind="int",
    extra=refuse_module(shapes, 3, 4, 5, 5, bias=True, advice=_NO_SHAPES),
    bugs=[
        Bug("the bias is counted once for the layer: every filter has its own bias (+ c_out)",
            _PARAMS + "c_in * kh * kw * c_out + (1 if bias else 0)"),
        Bug("the biases are missing: one bias per filter (+ c_out)", _PARAMS + "c_in * kh * kw * c_out"),
        Bug("bias=False is ignored: count no biases then", _PARAMS + "(c_in * kh * kw + 1) * c_out"),
        Bug("the filter depth (input channels) is missing: a filter is c_in x kh x kw",
            _PARAMS + "(kh * kw + (1 if bias else 0)) * c_out"),
        Bug("the kernel width is ignored (kh * kh): use kh * kw", _PARAMS + "(c_in * kh * kh + (1 if bias else 0)) * c_out"),
        Bug("a bias per input channel and filter (+ c_in * c_out): one bias per filter",
            _PARAMS + "c_in * kh * kw * c_out + (c_in * c_out if bias else 0)"),
    ],
))


def _macs_public() -> list[Case]:
    return [Case(((3, 32, 32), 10, 5, 5), {"stride": 1, "pad": 2}, "32x32x3, ten 5x5 filters, pad 2"),
            Case(((3, 28, 28), 20, 5, 5), {"stride": 1, "pad": 0}, "28x28x3, twenty 5x5 filters"),
            Case(((3, 32, 32), 6, 5, 5), {"stride": 1, "pad": 0}, "32x32x3, six 5x5 filters"),
            Case(((16, 15, 15), 8, 3, 3), {"stride": 2, "pad": 0}, "stride 2"),
            Case(((2, 9, 7), 4, 3, 1), {"stride": 2, "pad": 1}, "a 3x1 kernel, stride 2, pad 1")]


def _macs_hidden() -> list[Case]:
    return [Case(((3, 9, 7), 5, 3, 3), {"stride": 2, "pad": 2}, "stride 2, pad 2"),
            Case(((4, 8, 10), 3, 2, 4), {"stride": 2, "pad": 0}, "a rectangular kernel, stride 2"),
            Case(((64, 56, 56), 64, 1, 1), {"stride": 1, "pad": 0}, "a 1x1 layer"),
            Case(((2, 10, 10), 7, 5, 5), {"stride": 3, "pad": 2}, "stride 3, pad 2"),
            Case(((8, 10, 5), 2, 4, 2), {"stride": 3, "pad": 0}, "stride 3, a 4x2 kernel"),
            Case(((1, 5, 5), 1, 5, 5), {"stride": 1, "pad": 0}, "one output value"),
            Case(((3, 12, 12), 4, 3, 3), {"stride": 1, "pad": 1}, "same padding")]


_MACS = ("def count_conv_macs(in_shape, c_out, kh, kw, stride=1, pad=0):\n    c, h, w = in_shape\n"
         "    ho = {ho}\n    wo = {wo}\n    return {ret}")


def _macs(ho: str = "(h + 2 * pad - kh) // stride + 1", wo: str = "(w + 2 * pad - kw) // stride + 1",
          ret: str = "c * kh * kw * c_out * ho * wo") -> str:
    return _MACS.format(ho=ho, wo=wo, ret=ret)


NOTEBOOK.add(Exercise(
    "count_conv_macs", 5, ref_count_conv_macs, _macs_public, _macs_hidden, kind="int",
    extra=refuse_module(shapes, (3, 8, 8), 4, 3, 3, stride=1, pad=1, advice=_NO_SHAPES),
    bugs=[
        Bug("the input size (H, W) is used instead of the output size (H', W')", _macs(ho="h", wo="w")),
        Bug("the bias addition is counted as a multiply-add: count c_in * kh * kw per output value",
            _macs(ret="(c * kh * kw + 1) * c_out * ho * wo")),
        Bug("the input channels are missing: each output value needs c_in * kh * kw multiply-adds",
            _macs(ret="kh * kw * c_out * ho * wo")),
        Bug("the stride is ignored in the output size", _macs(ho="h + 2 * pad - kh + 1", wo="w + 2 * pad - kw + 1")),
        Bug("the padding is ignored in the output size", _macs(ho="(h - kh) // stride + 1", wo="(w - kw) // stride + 1")),
        Bug("off by one: the output size needs the + 1 in (H + 2*pad - KH) // stride + 1",
            _macs(ho="(h + 2 * pad - kh) // stride", wo="(w + 2 * pad - kw) // stride")),
        Bug("the padding is counted once instead of on both sides (H + pad instead of H + 2*pad)",
            _macs(ho="(h + pad - kh) // stride + 1", wo="(w + pad - kw) // stride + 1")),
        Bug("the filters are missing: every one of the c_out output maps costs the same",
            _macs(ret="c * kh * kw * ho * wo")),
        Bug("returned the float", _macs(ho="(h + 2 * pad - kh) / stride + 1", wo="(w + 2 * pad - kw) / stride + 1"),
            by_output=False),
    ],
))
