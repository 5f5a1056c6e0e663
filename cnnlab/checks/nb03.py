"""Checks for notebook 03 (padding and stride).

One function per exercise, ``check_<exercise>(student_fn, tier="public"|"hidden")``:

- ``check_conv_output_size``: ``conv_output_size(n, f, pad=0, stride=1, strict=True) -> int``;
  strict mode raises ValueError when the stride does not fit, ``strict=False`` floors.
- ``check_zero_pad``: ``zero_pad(x, p)`` pads the last two axes with zeros; ValueError for p < 0.
- ``check_pad``: ``pad(x, p, mode="zero", value=0.0)`` with modes zero, constant, reflect, replicate.
- ``check_conv2d``: ``conv2d(x, k, stride=1, pad=0)`` for one 2-D image and one 2-D kernel.
- ``check_receptive_field``: ``receptive_field(layers)`` for a list of (kernel, stride) pairs.

Failures raise AssertionError naming the likely bug; passes print one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnlab import shapes
from cnnlab.checks._support import call, check_tier, close, expect_int, refuse_shapes

__all__ = ["check_conv_output_size", "check_zero_pad", "check_pad", "check_conv2d", "check_receptive_field"]


def _ref():
    from cnnlab import numpy_ref

    return numpy_ref


def _raised(student_fn: Callable[..., Any], exercise: str, *args: Any, **kwargs: Any) -> tuple[bool, Any]:
    """Run under the guard; return (True, the exception) if the student raised ValueError, else (False, result)."""
    try:
        return False, call(student_fn, *args, exercise=exercise, **kwargs)
    except AssertionError as err:
        if isinstance(err.__cause__, ValueError):
            return True, err.__cause__
        raise


# ----------------------------------------------------------------------------------------------
# conv_output_size
# ----------------------------------------------------------------------------------------------
_SIZE_CASES = {
    # (n, f, pad, stride, strict); the seed's 7x7 examples first
    "public": [(7, 3, 0, 1, True), (7, 3, 0, 2, True), (7, 3, 1, 1, True), (7, 3, 0, 3, True), (7, 3, 0, 3, False),
               (32, 5, 2, 1, True), (28, 5, 0, 1, True), (63, 7, 0, 2, True), (8, 3, 0, 2, False)],
    "hidden": [(227, 11, 0, 4, True), (224, 7, 3, 2, False), (224, 7, 3, 2, True), (5, 5, 0, 1, True),
               (6, 2, 0, 2, True), (10, 4, 1, 3, True), (10, 4, 1, 3, False), (15, 3, 2, 1, True),
               (9, 1, 0, 4, True), (11, 4, 2, 3, False), (13, 4, 0, 3, True), (4, 3, 1, 1, True)],
}


def check_conv_output_size(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``conv_output_size(n, f, pad=0, stride=1, strict=True) -> int``.

    Raises:
        AssertionError: naming the likely bug (no + 1, padding on one side only, stride ignored,
            ceiling instead of floor, a float result, strict mode that floors instead of raising,
            floor mode that raises).
    """
    from cnnlab import grading

    check_tier(tier)
    ex = "conv_output_size"
    cases = _SIZE_CASES[tier]
    for n, f, pad, stride, strict in cases:
        text = f"{ex}({n}, {f}, pad={pad}, stride={stride}, strict={strict})"
        span = n + 2 * pad - f
        fits = span % stride == 0
        raised, result = _raised(student_fn, ex, n, f, pad=pad, stride=stride, strict=strict)
        if strict and not fits:
            if not raised:
                raise AssertionError(
                    f"{ex}: {text} returned {result!r}, but the stride does not fit ({n} + 2*{pad} - {f} = {span} "
                    f"is not a multiple of {stride}). Likely bug: strict and floor are confused: with strict=True "
                    f"raise ValueError (naming n, f, pad and stride); only strict=False floors like PyTorch.")
            continue
        if raised:
            hint = ("strict and floor are confused: with strict=False floor like PyTorch instead of raising"
                    if not fits else "this stride fits, so there is nothing to refuse")
            raise AssertionError(f"{ex}: {text} raised ValueError ({result}). Likely bug: {hint}.")
        expected = shapes.conv_output_size(n, f, pad, stride, strict=strict)
        bugs = {
            "off by one: the formula is (n + 2*pad - f) // stride + 1": span // stride,
            "off by one: the formula is (n + 2*pad - f) // stride + 1, not + 2": span // stride + 2,
            "the padding is added on one side only: use n + 2*pad": (n + pad - f) // stride + 1,
            "the stride is ignored: divide (n + 2*pad - f) by the stride": span + 1,
            "the padding is ignored": (n - f) // stride + 1,
            "ceiling instead of floor: frameworks drop the last incomplete window (use //)": -(-span // stride) + 1,
            "the + 1 is divided by the stride too: it is (n + 2*pad - f) // stride + 1": (span + 1) // stride,
        }
        expect_int(result, expected, ex, text, bugs)
    if tier == "hidden":
        refuse_shapes(student_fn, ex, 32, 5, pad=2, stride=1, strict=True)
    grading.passed(ex, f"all {len(cases)} cases right, strict and floor ({tier})")


# ----------------------------------------------------------------------------------------------
# zero_pad and pad
# ----------------------------------------------------------------------------------------------
def _pad_hw(x: np.ndarray, ph: int, pw: int | None = None, **kw: Any) -> np.ndarray:
    pw = ph if pw is None else pw
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)], **kw)


def _pad_bugs(x: np.ndarray, p: int, mode: str, value: float) -> dict[str, np.ndarray]:
    bugs: dict[str, np.ndarray] = {}
    if x.ndim > 2:
        fill = {"constant_values": value} if mode == "constant" else {}
        np_mode = {"zero": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge"}[mode]
        try:
            all_axes = np.pad(x, p, mode=np_mode, **fill)
        except ValueError:  # reflect of a size-1 axis
            all_axes = np.zeros(0)
        bugs["padding applied to the batch/channel axes too: pad only the last two axes (H, W), "
             "e.g. np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)])"] = all_axes
    one = [(0, 0)] * (x.ndim - 2)
    base = {"mode": "constant", "constant_values": value if mode == "constant" else 0.0}
    if mode in ("reflect", "replicate"):
        base = {"mode": {"reflect": "reflect", "replicate": "edge"}[mode]}
    bugs["padded on one side only: add p rows/columns on BOTH sides"] = np.pad(x, one + [(0, p), (0, p)], **base)
    bugs["padded by 2p per side: p is the padding on EACH side (the size grows by 2p)"] = \
        np.pad(x, one + [(2 * p, 2 * p), (2 * p, 2 * p)], **base) if mode != "reflect" or min(x.shape[-2:]) > 2 * p \
        else np.zeros(0)
    bugs["only the height is padded: pad H and W"] = np.pad(x, one + [(p, p), (0, 0)], **base)
    bugs["only the width is padded: pad H and W"] = np.pad(x, one + [(0, 0), (p, p)], **base)
    bugs["x is not copied into the middle: the result is all padding"] = np.full(
        x.shape[:-2] + (x.shape[-2] + 2 * p, x.shape[-1] + 2 * p), value if mode == "constant" else 0.0)
    if mode == "reflect":
        bugs["reflect repeats the border pixel (that is NumPy's 'symmetric'): [a b c] -> [b a | a b c | c b] is "
             "wrong; reflect gives [c b | a b c | b a], NumPy mode 'reflect'"] = _pad_hw(x, p, mode="symmetric")
        bugs["reflect gives the replicate result: reflect mirrors, replicate repeats the edge"] = _pad_hw(x, p, mode="edge")
        bugs["reflect wraps around (NumPy 'wrap'): mirror at the border instead"] = _pad_hw(x, p, mode="wrap")
    if mode == "replicate":
        bugs["replicate gives the reflect result: replicate repeats the border pixel, NumPy mode 'edge'"] = \
            _pad_hw(x, p, mode="reflect") if min(x.shape[-2:]) > p else np.zeros(0)
        bugs["replicate pads with zeros: repeat the border pixel, NumPy mode 'edge'"] = _pad_hw(x, p)
        bugs["replicate wraps around (NumPy 'wrap'): repeat the border pixel instead"] = _pad_hw(x, p, mode="wrap")
    if mode == "constant":
        bugs["the constant value is ignored (zeros): fill with `value`"] = _pad_hw(x, p)
    if mode == "zero":
        bugs["the pad is not zero: mode 'zero' fills with 0"] = _pad_hw(x, p, mode="edge")
    return {k: v for k, v in bugs.items() if v.size}


_ZERO_PAD_CASES = {
    "public": [((2, 3), 1), ((3, 4, 5), 2), ((2, 3, 4, 4), 1), ((3, 3), 0)],
    "hidden": [((1, 1, 3, 7), 3), ((5, 2), 4), ((2, 2, 2, 3, 4), 1), ((4, 6), 0), ((1, 3, 1, 1), 2), ((6, 5), 1)],
}


def check_zero_pad(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``zero_pad(x, p)``: (..., H, W) -> (..., H + 2p, W + 2p) with zeros; ValueError for p < 0.

    Raises:
        AssertionError: naming the likely bug (all axes padded, one side only, 2p per side,
            one axis only, x not copied in), or when a negative pad is accepted.
    """
    from cnnlab import grading

    check_tier(tier)
    ex = "zero_pad"
    rng = np.random.default_rng(3 if tier == "public" else 3303)
    cases = _ZERO_PAD_CASES[tier]
    for xs, p in cases:
        x = rng.integers(1, 10, size=xs).astype(np.float64)
        if tier == "hidden" and len(xs) == 5:
            x = x.astype(np.float32)
        out = call(student_fn, x, p, exercise=ex)
        close(out, _ref().pad(x, p, mode="zero"), exercise=ex, name="padded x", case=f"x shape {xs}, p={p}",
              bugs=_pad_bugs(x, p, "zero", 0.0))
    raised, result = _raised(student_fn, ex, np.ones((3, 3)), -1)
    if not raised:
        raise AssertionError(f"{ex}: zero_pad(x, -1) returned an array of shape {np.shape(result)}; "
                             f"a negative pad is a mistake: raise ValueError naming it")
    grading.passed(ex, f"all {len(cases)} arrays padded right, negative pad refused ({tier})")


_PAD_CASES = {
    # (x shape, p, mode, value)
    "public": [((3, 4), 1, "zero", 0.0), ((3, 4), 2, "constant", 0.5), ((3, 4), 2, "reflect", 0.0),
               ((3, 4), 2, "replicate", 0.0), ((2, 3, 4), 1, "reflect", 0.0), ((2, 3, 4), 1, "replicate", 0.0)],
    "hidden": [((2, 2, 5, 6), 3, "reflect", 0.0), ((2, 2, 5, 6), 3, "replicate", 0.0), ((4, 7), 2, "constant", -1.5),
               ((1, 5, 5), 4, "reflect", 0.0), ((3, 2), 4, "replicate", 0.0), ((6, 6), 0, "reflect", 0.0),
               ((2, 4, 3), 2, "zero", 0.0), ((4, 4), 1, "constant", 2.0)],
}


def check_pad(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``pad(x, p, mode="zero", value=0.0)`` with modes "zero", "constant", "reflect", "replicate".

    Reflect mirrors without repeating the border pixel ([a b c] -> [c b | a b c | b a]); replicate
    repeats it ([a a | a b c | c c]); both as in PyTorch's ``F.pad``. An unknown mode raises ValueError.
    """
    from cnnlab import grading

    check_tier(tier)
    ex = "pad"
    rng = np.random.default_rng(33 if tier == "public" else 3333)
    cases = _PAD_CASES[tier]
    for xs, p, mode, value in cases:
        x = rng.integers(1, 10, size=xs).astype(np.float64)
        out = call(student_fn, x, p, mode=mode, value=value, exercise=ex)
        close(out, _ref().pad(x, p, mode=mode, value=value), exercise=ex, name="padded x",
              case=f"x shape {xs}, p={p}, mode={mode!r}" + (f", value={value}" if mode == "constant" else ""),
              bugs=_pad_bugs(x, p, mode, value))
    raised, result = _raised(student_fn, ex, np.ones((3, 3)), 1, mode="mirror")
    if not raised:
        raise AssertionError(f"{ex}: pad(x, 1, mode='mirror') returned {type(result).__name__}; "
                             f"an unknown mode should raise ValueError naming the valid modes")
    grading.passed(ex, f"all {len(cases)} cases match, 4 modes ({tier})")


# ----------------------------------------------------------------------------------------------
# conv2d with stride and padding
# ----------------------------------------------------------------------------------------------
_CONV2D_CASES = {
    # (x shape, k shape, stride, pad); the seed's 7x7 with a 3x3 kernel first
    "public": [((7, 7), (3, 3), 1, 0), ((7, 7), (3, 3), 2, 0), ((7, 7), (3, 3), 1, 1), ((7, 7), (3, 3), 2, 1),
               ((6, 8), (2, 4), 2, 0)],
    "hidden": [((9, 11), (3, 5), 2, 1), ((8, 8), (4, 4), 2, 1), ((10, 7), (1, 1), 3, 0), ((5, 5), (5, 5), 1, 2),
               ((12, 9), (3, 3), 3, 0), ((6, 10), (2, 3), 1, 2), ((13, 11), (5, 3), 4, 0)],
}


def _conv2d_ref(x: np.ndarray, k: np.ndarray, stride: int, pad: int) -> np.ndarray:
    out, _ = _ref().conv_forward(x[None, None], k[None, None], np.zeros(1), stride=stride, pad=pad)
    return out[0, 0]


def _conv2d_floor(x: np.ndarray, k: np.ndarray, stride: int, pad_hw: tuple[tuple[int, int], tuple[int, int]]):
    xp = np.pad(x, pad_hw)
    kh, kw = k.shape
    if xp.shape[0] < kh or xp.shape[1] < kw:
        return np.zeros(0)
    hc = (xp.shape[0] - kh) // stride * stride + kh
    wc = (xp.shape[1] - kw) // stride * stride + kw
    return _conv2d_ref(xp[:hc, :wc], k, stride, 0)


def check_conv2d(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``conv2d(x, k, stride=1, pad=0)``: (H, W) image, (KH, KW) kernel -> (H', W') cross-correlation.

    Raises:
        AssertionError: naming the likely bug (stride ignored, windows not strided, padding
            ignored or on one side only, flipped kernel, output off by one).
    """
    from cnnlab import grading

    check_tier(tier)
    ex = "conv2d"
    rng = np.random.default_rng(30 if tier == "public" else 3030)
    cases = _CONV2D_CASES[tier]
    for xs, ks, stride, pad in cases:
        x = rng.standard_normal(xs)
        k = rng.standard_normal(ks)
        out = call(student_fn, x, k, stride=stride, pad=pad, exercise=ex)
        expected = _conv2d_ref(x, k, stride, pad)
        bugs = {
            "the stride is ignored: the windows move one pixel at a time": _conv2d_ref(x, k, 1, pad),
            "the output has the right size but the windows move one pixel at a time: start window (i, j) at "
            "row i*stride, column j*stride": _conv2d_ref(x, k, 1, pad)[:expected.shape[0], :expected.shape[1]],
            "the padding is ignored: zero-pad x before sliding the kernel": _conv2d_floor(x, k, stride, ((0, 0), (0, 0))),
            "padded on one side only (top/left): pad p on both sides": _conv2d_floor(x, k, stride, ((pad, 0), (pad, 0))),
            "the kernel is flipped: this course's convolution is cross-correlation (no flip)":
                _conv2d_ref(x, k[::-1, ::-1].copy(), stride, pad),
            "off by one: the output misses its last row and column (the size is (n + 2p - f) // s + 1)":
                expected[:-1, :-1],
            "the output is transposed: rows are i (height), columns j (width)": expected.T,
        }
        if pad:
            bugs["the output has the unpadded size: compute H' from the padded input"] = \
                expected[:(xs[0] - ks[0]) // stride + 1, :(xs[1] - ks[1]) // stride + 1]
        close(out, expected, exercise=ex, name="out", case=f"x {xs}, k {ks}, stride={stride}, pad={pad}",
              bugs={d: a for d, a in bugs.items() if a.size})
    grading.passed(ex, f"all {len(cases)} cases match ({tier})")


# ----------------------------------------------------------------------------------------------
# receptive field
# ----------------------------------------------------------------------------------------------
_RF_CASES = {
    "public": [[(3, 1)], [(3, 1)] * 2, [(3, 1)] * 3, [(5, 1)] * 2, [(3, 2), (3, 1)], [(2, 2)] * 3,
               [(5, 1), (2, 2), (5, 1), (2, 2)], []],
    "hidden": [[(7, 2), (3, 2), (3, 1), (3, 1)], [(11, 4), (3, 2), (5, 1), (3, 2), (3, 1)], [(1, 1)] * 3,
               [(3, 3)] * 3, [(3, 1)] * 10, [(4, 2), (1, 1), (2, 3)], [(5, 1), (3, 1), (2, 2)]],
}


def check_receptive_field(student_fn: Callable[..., Any], tier: str = "public") -> None:
    """Check ``receptive_field(layers) -> int`` for a list of (kernel, stride) pairs, first layer first.

    Raises:
        AssertionError: naming the likely bug (strides ignored, the jump multiplied in too early,
            kernels summed or multiplied, the starting 1 forgotten).
    """
    from cnnlab import grading

    check_tier(tier)
    ex = "receptive_field"
    cases = _RF_CASES[tier]
    for layers in cases:
        got = call(student_fn, [tuple(layer) for layer in layers], exercise=ex)
        expected = shapes.receptive_field(layers)
        r_early, j = 1, 1
        r_kjump, jk = 1, 1
        for k, s in layers:
            j *= s
            r_early += (k - 1) * j
            r_kjump += (k - 1) * jk
            jk *= k
        bugs = {
            "the strides are ignored: 1 + sum(k - 1) only holds for stride 1; multiply each (k - 1) by the "
            "product of the EARLIER layers' strides": 1 + sum(k - 1 for k, _ in layers),
            "each layer's own stride is used too early: add (k - 1) * jump first, then multiply the jump by s":
                r_early,
            "the jump is multiplied by the kernel size instead of the stride": r_kjump,
            "the starting 1 is forgotten: a stack of nothing sees 1 pixel": shapes.receptive_field(layers) - 1,
            "the kernel sizes are summed: (k - 1) per layer, times the jump, plus 1": sum(k for k, _ in layers),
            "the kernel sizes are multiplied: the field grows by (k - 1) * jump per layer":
                int(np.prod([k for k, _ in layers])) if layers else 0,
        }
        text = f"{ex}({[tuple(layer) for layer in layers]})"
        expect_int(got, expected, ex, text, bugs)
    if tier == "hidden":
        refuse_shapes(student_fn, ex, [(3, 1), (3, 2)])
    grading.passed(ex, f"all {len(cases)} stacks right ({tier})")
