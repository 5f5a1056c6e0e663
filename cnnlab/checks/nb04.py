"""Checks for notebook 04 (convolution over volumes).

One function per exercise, ``check_<exercise>(student_fn, tier="public"|"hidden")``:

- ``check_conv_forward_naive``: the loop version of a conv layer on an NCHW batch.
- ``check_conv_forward``: the vectorised version; same values, and it must not loop over
  output positions (counted in executed lines of the student's code, not timed).
- ``check_conv_backward_dx`` / ``_dw`` / ``_db``: one gradient each, for partial credit. The public
  tier compares with central differences, the hidden tier with the reference on new shapes.
- ``check_count_conv_params`` / ``check_count_conv_macs``: the counters.

The student functions follow the notebook's conventions: ``x`` (N, C, H, W), ``w`` (F, C, KH, KW),
``b`` (F,), integer ``stride`` and ``pad``; forward returns ``(out, cache)`` with
``cache = {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}``; backward takes ``(dout, cache)``
and returns ``(dx, dw, db)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnlab import shapes
from cnnlab.checks._support import call, check_tier, close, count_user_lines, expect_int, refuse_shapes

__all__ = [
    "check_conv_forward_naive",
    "check_conv_forward",
    "check_conv_backward_dx",
    "check_conv_backward_dw",
    "check_conv_backward_db",
    "check_count_conv_params",
    "check_count_conv_macs",
]

# (x shape, w shape, stride, pad); the first public and hidden cases have W' == F so that a bias
# broadcast over the width axis gives a wrong answer instead of an error.
_FORWARD_CASES = {
    "public": [((2, 3, 7, 7), (4, 3, 3, 3), 2, 1), ((2, 2, 6, 5), (3, 2, 3, 2), 1, 0), ((1, 3, 5, 5), (2, 3, 3, 3), 1, 2)],
    "hidden": [((3, 2, 9, 7), (5, 2, 3, 3), 2, 2), ((2, 4, 8, 10), (3, 4, 2, 4), 2, 0), ((2, 1, 6, 6), (2, 1, 1, 1), 1, 1),
               ((1, 3, 11, 11), (2, 3, 5, 5), 2, 2), ((4, 3, 5, 7), (6, 3, 1, 3), 1, 1), ((1, 2, 10, 5), (2, 2, 4, 2), 3, 0)],
}
_SEEDS = {"public": 4, "hidden": 4404}

_BACKWARD_CASES = {
    "public": [((2, 3, 5, 5), (4, 3, 3, 3), 2, 1), ((3, 2, 5, 4), (2, 2, 2, 3), 1, 0)],
    "hidden": [((3, 2, 7, 7), (3, 2, 3, 3), 2, 2), ((2, 3, 6, 8), (4, 3, 2, 4), 2, 1), ((4, 1, 5, 5), (2, 1, 1, 1), 1, 0),
               ((2, 2, 9, 8), (3, 2, 3, 2), 3, 0)],
}


def _ref():
    from cnnlab import numpy_ref

    return numpy_ref


def _conv_case(rng: np.random.Generator, xs, ws, dtype=np.float64):
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[0]).astype(dtype)
    return x, w, b


def _forward_ref(x, w, b, stride, pad):
    return _ref().conv_forward(x, w, b, stride=stride, pad=pad)[0]


def _floor_conv(x, w, b, stride, pad):
    """Reference conv with frameworks' floor sizes (crop the padded input to what the windows cover)."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    KH, KW = w.shape[2:]
    H, W = xp.shape[2:]
    if H < KH or W < KW:
        return None
    hc = (H - KH) // stride * stride + KH
    wc = (W - KW) // stride * stride + KW
    return _forward_ref(xp[:, :, :hc, :wc], w, b, stride, 0)


def _forward_bugs(x, w, b, stride, pad, expected) -> dict[str, np.ndarray]:
    N, C = x.shape[:2]
    zero_b = np.zeros_like(b)
    bugs: dict[str, np.ndarray] = {}
    bugs["the stride is ignored: the windows move one pixel at a time (use i*stride and j*stride)"] = \
        _forward_ref(x, w, b, 1, pad)
    bugs["the output has the right size but the windows move one pixel at a time: "
         "start each window at i*stride, j*stride"] = _forward_ref(x, w, b, 1, pad)[..., :expected.shape[2], :expected.shape[3]]
    no_pad = _floor_conv(x, w, b, stride, 0)
    if no_pad is not None:
        bugs["the padding is ignored: zero-pad H and W of x before sliding the window"] = no_pad
    if pad:
        xp_all = np.pad(x, pad)[:N, :C]  # np.pad(x, pad) pads N and C too
        bugs["padding applied to the batch and channel axes too: pad only H and W "
             "(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))))"] = _forward_ref(xp_all, w, b, stride, 0)
    no_bias = _forward_ref(x, w, zero_b, stride, pad)
    bugs["the bias is missing: add b[f] to every output of filter f"] = no_bias
    if expected.shape[-1] == b.shape[0]:
        bugs["the bias is broadcast over the width axis (out + b): add b[f] to channel f, e.g. "
             "out + b[None, :, None, None]"] = no_bias + b
    bugs["the bias is added once per input channel: add it once per output value"] = no_bias + C * b[None, :, None, None]
    bugs["the kernel is flipped: deep-learning convolution is cross-correlation (no flip)"] = \
        _forward_ref(x, w[..., ::-1, ::-1].copy(), b, stride, pad)
    bugs["only the first input channel is used: sum over all channels of the window"] = \
        _forward_ref(x[:, :1], w[:, :1], b, stride, pad)
    bugs["off by one: the output misses its last row and column (H' = (H + 2p - KH) // s + 1)"] = expected[..., :-1, :-1]
    return bugs


def _explain_error(message: str, x_shape: tuple[int, ...], pad: int, case: str) -> str:
    """Add the likely cause to a student's exception seen in the forward pass."""
    N, C = x_shape[:2]
    if "not implemented yet" in message or "NumPy yourself" in message:
        return message
    message = f"{message} [case: {case}]"
    if pad and "broadcast" in message and (f"({C + 2 * pad}," in message or f"({N + 2 * pad}," in message):
        message += ("\nLikely bug: padding applied to the batch and channel axes too: np.pad(x, pad) pads every "
                    "axis; pad only H and W with np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))")
    elif "broadcast" in message:
        message += ("\nHint: check the window's shape (C, KH, KW) against w[f], the slice ends i*stride + KH, "
                    "and that the bias is added per filter (b[f])")
    return message


def _check_forward(student_fn: Callable[..., Any], tier: str, exercise: str) -> int:
    check_tier(tier)
    rng = np.random.default_rng(_SEEDS[tier] + (0 if exercise == "conv_forward_naive" else 1))
    cases = list(_FORWARD_CASES[tier])
    n_cases = 0
    for idx, (xs, ws, stride, pad) in enumerate(cases):
        dtype = np.float32 if tier == "hidden" and idx == len(cases) - 1 else np.float64
        x, w, b = _conv_case(rng, xs, ws, dtype)
        case = f"x {xs}, w {ws}, stride={stride}, pad={pad}" + (", float32" if dtype == np.float32 else "")
        try:
            result = call(student_fn, x, w, b, stride=stride, pad=pad, exercise=exercise)
        except AssertionError as err:
            raise AssertionError(_explain_error(str(err), x.shape, pad, case)) from None
        if not (isinstance(result, tuple) and len(result) == 2):
            raise AssertionError(f"{exercise} ({case}): return the pair (out, cache), got {type(result).__name__}")
        out, cache = result
        expected = _forward_ref(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, pad)
        tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-6, atol=1e-9)
        close(out, expected, exercise=exercise, name="out", case=case,
              bugs=_forward_bugs(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), stride, pad, expected),
              **tol)
        if not isinstance(cache, dict) or not {"x", "w", "b", "stride", "pad"} <= set(cache):
            raise AssertionError(f"{exercise} ({case}): cache must be the dict "
                                 f"{{'x': x, 'w': w, 'b': b, 'stride': stride, 'pad': pad}} that conv_backward reads")
        n_cases += 1
    return n_cases


def check_conv_forward_naive(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``conv_forward_naive(x, w, b, stride=1, pad=0) -> (out, cache)`` on NCHW batches.

    Args:
        student_fn: the student's function.
        tier: "public" (the notebook's cases) or "hidden" (new shapes, strides, paddings,
            rectangular kernels, a float32 batch, the integrity guard).

    Raises:
        AssertionError: naming the likely bug (stride ignored, padding ignored or applied to N/C,
            bias missing or broadcast wrongly, flipped kernel, channels not summed, off-by-one size).
    """
    from cnnlab import grading

    n = _check_forward(student_fn, tier, "conv_forward_naive")
    grading.passed("conv_forward_naive", f"all {n} batches match ({tier})")


# a case big enough that a loop over output positions runs thousands of lines
_PROBE = ((4, 3, 20, 20), (4, 3, 3, 3), 1, 1)
_MAX_LINES = 200


def check_conv_forward(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check the vectorised ``conv_forward(x, w, b, stride=1, pad=0) -> (out, cache)``.

    Values as for ``check_conv_forward_naive``; then the function runs once on a (4, 3, 20, 20)
    batch while the lines of the student's own code are counted: more than a couple of hundred
    means it still loops over output positions (or images and filters and positions).
    """
    from cnnlab import grading

    n = _check_forward(student_fn, tier, "conv_forward")
    xs, ws, stride, pad = _PROBE
    if tier == "hidden":
        xs, ws = (3, 2, 18, 22), (5, 2, 3, 5)
    x, w, b = _conv_case(np.random.default_rng(40), xs, ws)
    try:
        _, lines = count_user_lines(student_fn, x, w, b, stride=stride, pad=pad)
    except NotImplementedError:
        raise AssertionError("conv_forward: not implemented yet") from None
    except Exception as err:  # noqa: BLE001 - any student error becomes a failed check with its message
        raise AssertionError(f"conv_forward: your function raised {type(err).__name__}: {err}") from None
    if lines > _MAX_LINES:
        raise AssertionError(
            f"conv_forward: one call on a batch x {xs} with w {ws} ran {lines:,} lines of your own Python code; "
            f"a vectorised version runs a few dozen. Likely bug: it still loops over images, filters or output "
            f"positions. Build all windows at once (sliding_window_view or im2col) and use one matrix product "
            f"(tensordot, einsum or @); a loop over the KH*KW kernel offsets is fine."
        )
    grading.passed("conv_forward", f"all {n} batches match, vectorised ({lines} lines of your code ran) ({tier})")


# ----------------------------------------------------------------------------------------------
# backward
# ----------------------------------------------------------------------------------------------
def _scatter_no_stride(dout, w, x_shape, pad):
    """dx when the windows are scattered one pixel apart although the forward pass used a stride."""
    N, C, H, W = x_shape
    F, _, KH, KW = w.shape
    Ho, Wo = dout.shape[2:]
    dxp = np.zeros((N, C, max(H + 2 * pad, Ho + KH - 1), max(W + 2 * pad, Wo + KW - 1)))
    for i in range(Ho):
        for j in range(Wo):
            dxp[:, :, i:i + KH, j:j + KW] += np.tensordot(dout[:, :, i, j], w, axes=(1, 0))
    return dxp[:, :, pad:pad + H, pad:pad + W]


def _dw_no_stride(dout, x, w_shape, pad):
    F, C, KH, KW = w_shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = dout.shape[2:]
    dw = np.zeros(w_shape)
    for i in range(min(Ho, xp.shape[2] - KH + 1)):
        for j in range(min(Wo, xp.shape[3] - KW + 1)):
            dw += np.tensordot(dout[:, :, i, j], xp[:, :, i:i + KH, j:j + KW], axes=(0, 0))
    return dw


def _backward_bugs(part: str, x, w, b, stride, pad, dout) -> dict[str, np.ndarray]:
    ref = _ref()
    N, C, H, W = x.shape

    def grads(dout_, x_=x, w_=w, stride_=stride, pad_=pad):
        _, cache = ref.conv_forward(x_, w_, b, stride=stride_, pad=pad_)
        return ref.conv_backward(dout_, cache)

    first_image = dout.copy()
    first_image[1:] = 0
    first_filter = dout.copy()
    first_filter[:, 1:] = 0
    bugs: dict[str, np.ndarray] = {}
    if part == "dx":
        if pad:
            xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
            bugs["dx still includes the padding: crop the padded gradient back to (N, C, H, W) "
                 "with dxp[:, :, p:p+H, p:p+W]"] = grads(dout, x_=xp, pad_=0)[0]
        bugs["dx ignores the stride: each window's gradient goes back to rows i*stride.., columns j*stride.."] = \
            _scatter_no_stride(dout, w, x.shape, pad)
        bugs["dx only has the first filter's contribution: sum over all filters f"] = grads(first_filter)[0]
        bugs["dx uses the flipped kernel: the scatter form uses w[f] as it is"] = grads(dout, w_=w[..., ::-1, ::-1].copy())[0]
        bugs["dx only has the first image's gradient: every image n gets its own dx[n]"] = grads(first_image)[0]
    elif part == "dw":
        dw = grads(dout)[1]
        bugs["dw is missing the sum over the batch (only the first image contributes): add up every image"] = \
            grads(first_image)[1]
        bugs["dw is averaged over the batch: the loss is a sum, so do not divide by N"] = dw / N
        bugs["dw ignores the stride: window (i, j) starts at row i*stride, column j*stride"] = \
            _dw_no_stride(dout, x, w.shape, pad)
        bugs["dw is flipped: dw[f] accumulates dout[n, f, i, j] * window, no flip"] = dw[..., ::-1, ::-1]
    else:
        bugs["db is missing the sum over the batch (only the first image): sum dout over axes (0, 2, 3)"] = \
            dout[0].sum(axis=(1, 2))
        bugs["db is missing the sum over positions: sum dout over axes (0, 2, 3)"] = dout.sum(axis=0)
        bugs["db is a mean instead of a sum: sum dout over axes (0, 2, 3)"] = dout.mean(axis=(0, 2, 3))
        bugs["db sums over the wrong axes (per image instead of per filter): sum over (0, 2, 3)"] = dout.sum(axis=(1, 2, 3))
        bugs["db sums only over the batch and height: sum over (0, 2, 3)"] = dout.sum(axis=(0, 2))
    return {k: v for k, v in bugs.items() if v.size}


def _check_backward(student_fn: Callable[..., Any], tier: str, part: str) -> int:
    from cnnlab import grading

    check_tier(tier)
    exercise = "conv_backward"
    ref = _ref()
    rng = np.random.default_rng({"public": 14, "hidden": 1414}[tier] + "xwb".index(part[1]))
    index = {"dx": 0, "dw": 1, "db": 2}[part]
    n_cases = 0
    for xs, ws, stride, pad in _BACKWARD_CASES[tier]:
        x, w, b = _conv_case(rng, xs, ws)
        out, ref_cache = ref.conv_forward(x, w, b, stride=stride, pad=pad)
        dout = rng.standard_normal(out.shape)
        cache = {"x": x.copy(), "w": w.copy(), "b": b.copy(), "stride": stride, "pad": pad}
        case = f"x {xs}, w {ws}, stride={stride}, pad={pad}"
        result = call(student_fn, dout.copy(), cache, exercise=exercise)
        if not (isinstance(result, tuple) and len(result) == 3):
            raise AssertionError(f"{exercise} ({case}): return the triple (dx, dw, db), got {type(result).__name__}")
        actual = result[index]
        if tier == "public":
            # the oracle is a central difference of the forward pass (conv is linear: exact to rounding)
            target = {"dx": x, "dw": w, "db": b}[part]

            def f(t, part=part):
                args = {"x": x, "w": w, "b": b}
                args[part[1]] = t
                return ref.conv_forward(args["x"], args["w"], args["b"], stride=stride, pad=pad)[0]

            expected = grading.numeric_gradient(f, target.copy(), df=dout, h=1e-4)
            rtol, atol = 1e-5, 1e-7
        else:
            expected = ref.conv_backward(dout, ref_cache)[index]
            rtol, atol = 1e-6, 1e-9
        close(actual, np.asarray(expected), exercise=exercise, name=part, case=case,
              bugs=_backward_bugs(part, x, w, b, stride, pad, dout), rtol=rtol, atol=atol)
        n_cases += 1
    return n_cases


def check_conv_backward_dx(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``dx`` of ``conv_backward(dout, cache) -> (dx, dw, db)``.

    Public tier: against central differences of the forward pass; hidden tier: against the
    reference on new shapes, strides and paddings, under the integrity guard.
    """
    from cnnlab import grading

    n = _check_backward(student_fn, tier, "dx")
    oracle = "central differences" if tier == "public" else "the reference"
    grading.passed("conv_backward", f"dx matches {oracle} in all {n} cases ({tier})")


def check_conv_backward_dw(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``dw`` of ``conv_backward(dout, cache) -> (dx, dw, db)`` (see ``check_conv_backward_dx``)."""
    from cnnlab import grading

    n = _check_backward(student_fn, tier, "dw")
    oracle = "central differences" if tier == "public" else "the reference"
    grading.passed("conv_backward", f"dw matches {oracle} in all {n} cases ({tier})")


def check_conv_backward_db(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``db`` of ``conv_backward(dout, cache) -> (dx, dw, db)`` (see ``check_conv_backward_dx``)."""
    from cnnlab import grading

    n = _check_backward(student_fn, tier, "db")
    oracle = "central differences" if tier == "public" else "the reference"
    grading.passed("conv_backward", f"db matches {oracle} in all {n} cases ({tier})")


# ----------------------------------------------------------------------------------------------
# counters
# ----------------------------------------------------------------------------------------------
_PARAM_CASES = {
    # (c_in, c_out, kh, kw, bias): the seeds' 456, 1,520, 306, 760 and 750 first
    "public": [(3, 6, 5, 5, True), (3, 20, 5, 5, True), (2, 6, 5, 5, True), (3, 10, 5, 5, True), (3, 10, 5, 5, False)],
    "hidden": [(3, 7, 3, 5, True), (16, 32, 1, 1, True), (64, 128, 3, 3, False), (1, 1, 1, 1, True),
               (5, 9, 7, 2, True), (100, 3, 5, 5, False)],
}


def check_count_conv_params(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``count_conv_params(c_in, c_out, kh, kw, bias=True) -> int``.

    Raises:
        AssertionError: naming the likely bug (bias once per layer, bias forgotten or counted with
            ``bias=False``, filter depth forgotten, kernel width ignored).
    """
    from cnnlab import grading

    check_tier(tier)
    ex = "count_conv_params"
    cases = _PARAM_CASES[tier]
    for c_in, c_out, kh, kw, bias in cases:
        got = call(student_fn, c_in, c_out, kh, kw, bias=bias, exercise=ex)
        expected = shapes.conv_params(c_in, c_out, kh, kw, bias=bias)
        weights = c_in * kh * kw * c_out
        bugs = {
            "the bias is counted once for the layer; every filter has its own bias": weights + (1 if bias else 0),
            "the bias is forgotten: add one bias per filter": weights,
            "bias=False was ignored: count no biases then": weights + c_out,
            "the filter depth (input channels) is forgotten: a filter is c_in x kh x kw":
                (kh * kw + (1 if bias else 0)) * c_out,
            "the kernel width is ignored (kh * kh): use kh * kw": (c_in * kh * kh + (1 if bias else 0)) * c_out,
        }
        expect_int(got, expected, ex, f"{ex}({c_in}, {c_out}, {kh}, {kw}, bias={bias})", bugs)
    if tier == "hidden":
        refuse_shapes(student_fn, ex, 3, 4, 5, 5, bias=True)
    grading.passed(ex, f"all {len(cases)} layers counted right ({tier})")


_MAC_CASES = {
    # (in_shape (C, H, W), c_out, kh, kw, stride, pad): 768,000 from the seed first
    "public": [((3, 32, 32), 10, 5, 5, 1, 2), ((3, 28, 28), 20, 5, 5, 1, 0), ((3, 32, 32), 6, 5, 5, 1, 0),
               ((16, 15, 15), 8, 3, 3, 2, 0)],
    "hidden": [((3, 9, 7), 5, 3, 3, 2, 2), ((4, 8, 10), 3, 2, 4, 2, 0), ((64, 56, 56), 64, 1, 1, 1, 0),
               ((2, 10, 10), 7, 5, 5, 3, 2), ((8, 10, 5), 2, 4, 2, 3, 0), ((1, 5, 5), 1, 5, 5, 1, 0)],
}


def check_count_conv_macs(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``count_conv_macs(in_shape, c_out, kh, kw, stride=1, pad=0) -> int`` (one image, bias not counted).

    Raises:
        AssertionError: naming the likely bug (input size used instead of output size, bias
            counted, channels forgotten, stride or padding ignored, output size off by one).
    """
    from cnnlab import grading

    check_tier(tier)
    ex = "count_conv_macs"
    cases = _MAC_CASES[tier]
    for (c, h, w), c_out, kh, kw, stride, pad in cases:
        got = call(student_fn, (c, h, w), c_out, kh, kw, stride=stride, pad=pad, exercise=ex)
        ho = shapes.conv_output_size(h, kh, pad, stride)
        wo = shapes.conv_output_size(w, kw, pad, stride)
        expected = shapes.conv_macs(c, c_out, kh, kw, ho, wo)
        per_out = c * kh * kw
        bugs = {
            "the input size (H, W) is used instead of the output size (H', W')": per_out * c_out * h * w,
            "the bias addition is counted as a multiply-add; count c_in * kh * kw per output": (per_out + 1) * c_out * ho * wo,
            "the input channels are forgotten: each output needs c_in * kh * kw multiply-adds": kh * kw * c_out * ho * wo,
            "the stride is ignored in the output size": per_out * c_out * (h + 2 * pad - kh + 1) * (w + 2 * pad - kw + 1),
            "the padding is ignored in the output size": per_out * c_out * max((h - kh) // stride + 1, 0) * max((w - kw) // stride + 1, 0),
            "off by one: the output size needs the + 1 in (H + 2p - KH) // s + 1":
                per_out * c_out * ((h + 2 * pad - kh) // stride) * ((w + 2 * pad - kw) // stride),
            "the padding is counted once instead of on both sides (H + p instead of H + 2p)":
                per_out * c_out * ((h + pad - kh) // stride + 1) * ((w + pad - kw) // stride + 1),
        }
        text = f"{ex}({(c, h, w)}, {c_out}, {kh}, {kw}, stride={stride}, pad={pad})"
        expect_int(got, expected, ex, text, bugs)
    if tier == "hidden":
        refuse_shapes(student_fn, ex, (3, 8, 8), 4, 3, 3, stride=1, pad=1)
    grading.passed(ex, f"all {len(cases)} layers counted right ({tier})")
