"""Checks for notebook 01 (history): ``fc_params``, ``conv_params``, ``shift_image``, ``response_change``.

Every check is ``check_<exercise>(student_fn, tier="public"|"hidden")``.  The public tier uses the
notebook's own numbers; the hidden tier uses other sizes and the integrity guard (the counters may
not call ``cnnlab.shapes``, whose answers they are compared with).  A passing check prints one
line; a failing one raises AssertionError naming the likely bug.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnlab import grading, shapes
from cnnlab.checks._support import check_tier, close, expect_int

__all__ = ["check_fc_params", "check_conv_params", "check_shift_image", "check_response_change", "shift_reference"]

_SHAPES_FILE = os.path.realpath(shapes.__file__)


def _uses_shapes(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> bool:
    """Return True when calling ``fn`` runs code from ``cnnlab.shapes`` (the answers' source)."""
    hit = False

    def tracer(frame: Any, event: str, arg: Any) -> None:
        nonlocal hit
        if event == "call" and os.path.realpath(frame.f_code.co_filename) == _SHAPES_FILE:
            hit = True
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        fn(*args, **kwargs)
    except Exception:  # noqa: BLE001 - the guarded run already reported student errors
        pass
    finally:
        sys.settrace(previous)
    return hit


def _no_shapes(exercise: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    if _uses_shapes(fn, *args, **kwargs):
        raise AssertionError(f"exercise {exercise}: your function called cnnlab.shapes; "
                             "count the parameters yourself with + and *")


# --------------------------------------------------------------------------------------------
# parameter counters
# --------------------------------------------------------------------------------------------

def check_fc_params(fc_params: Callable[..., int], tier: str = "public") -> None:
    """Check a counter of fully connected parameters: n_in * n_out weights plus n_out biases.

    Args:
        fc_params: student function (n_in, n_out, bias=True) -> int.
        tier: "public" (the notebook's image sizes) or "hidden" (other sizes, no calls to cnnlab.shapes).
    """
    check_tier(tier)
    if tier == "public":
        cases = [(128 * 128, 300, True), (128 * 128, 300, False), (128 * 128 * 3, 300, False),
                 (1000 * 1000, 300, False), (4, 3, True)]
    else:
        cases = [(7, 5, True), (7, 5, False), (1, 1, True), (32 * 32 * 3, 10, True), (300 * 300 * 3, 100, True),
                 (13, 1, False), (1, 9, True)]
    for n_in, n_out, bias in cases:
        call_text = f"fc_params({n_in}, {n_out}, bias={bias})"
        got = grading.guarded(fc_params, n_in, n_out, bias=bias, exercise="fc_params")
        expect_int(got, shapes.fc_params(n_in, n_out, bias=bias), "fc_params", call_text, bugs={
            "the biases are missing: one bias per output unit (+ n_out)": n_in * n_out,
            "a bias per input instead of per output unit (+ n_in instead of + n_out)": n_in * n_out + n_in,
            "the bias argument is ignored: with bias=False there are no biases":
                n_in * n_out + n_out if not bias else -1,
            "a single shared bias (+ 1) instead of one per output unit": n_in * n_out + 1,
            "only the biases are counted, not the n_in * n_out weights": n_out,
            "n_in + n_out instead of n_in * n_out weights": n_in + n_out + (n_out if bias else 0),
        })
    if tier == "hidden":
        _no_shapes("fc_params", fc_params, 7, 5)
    grading.passed("fc_params", f"all {len(cases)} counts exact ({tier})")


def check_conv_params(conv_params: Callable[..., int], tier: str = "public") -> None:
    """Check a counter of conv-layer parameters: (c_in * kh * kw + 1) * c_out.

    Args:
        conv_params: student function (c_in, c_out, kh, kw=None, bias=True) -> int; kw=None means kw = kh.
        tier: "public" or "hidden".
    """
    check_tier(tier)
    if tier == "public":
        cases = [(1, 300, 5, None, True), (3, 300, 5, None, True), (3, 6, 5, 5, True), (3, 10, 5, 5, False),
                 (2, 4, 3, 1, True)]
    else:
        cases = [(3, 100, 5, None, True), (2, 6, 5, 5, True), (16, 32, 7, 7, False), (1, 1, 1, None, True),
                 (8, 16, 3, 2, True), (5, 3, 1, 4, False), (64, 128, 3, None, True)]
    for c_in, c_out, kh, kw, bias in cases:
        kw_eff = kh if kw is None else kw
        args = (c_in, c_out, kh) if kw is None else (c_in, c_out, kh, kw)
        call_text = f"conv_params({', '.join(map(str, args))}, bias={bias})"
        try:
            got = grading.guarded(conv_params, *args, bias=bias, exercise="conv_params")
        except AssertionError as err:
            if kw is None and "TypeError" in str(err):
                raise AssertionError(f"{err}\nLikely bug: kw=None (the default) means a square kernel: "
                                     "use kw = kh when kw is None") from None
            raise
        w = c_in * kh * kw_eff * c_out
        expect_int(got, shapes.conv_params(c_in, c_out, kh, kw, bias=bias), "conv_params", call_text, bugs={
            "the biases are missing: one bias per filter (+ c_out)": w,
            "the input channels are missing: every filter has depth c_in (c_in * kh * kw weights per filter)":
                kh * kw_eff * c_out + (c_out if bias else 0),
            "the bias argument is ignored: with bias=False there are no biases": w + c_out if not bias else -1,
            "a single shared bias (+ 1) instead of one per filter": w + 1,
            "a bias per input channel and filter (+ c_in * c_out) instead of one per filter": w + c_in * c_out,
            "kw ignored: the kernel is kh x kw, not kh x kh": c_in * kh * kh * c_out + (c_out if bias else 0)
            if kw_eff != kh else -1,
            "one bias per weight: the bias belongs to the filter, not to each weight": 2 * w,
        })
    if tier == "hidden":
        _no_shapes("conv_params", conv_params, 3, 6, 5)
    grading.passed("conv_params", f"all {len(cases)} counts exact ({tier})")


# --------------------------------------------------------------------------------------------
# the shift experiment
# --------------------------------------------------------------------------------------------

def shift_reference(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
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


def check_shift_image(shift_image: Callable[[np.ndarray, int, int], np.ndarray], tier: str = "public") -> None:
    """Check ``shift_image(img, dx, dy)``: content moves dx right and dy down, vacated pixels become 0.

    Args:
        shift_image: student function ((H, W) image, int, int) -> (H, W) image.
        tier: "public" or "hidden".
    """
    check_tier(tier)
    rng = grading.rng(1 if tier == "public" else 10_101)
    if tier == "public":
        cases = [(rng.random((6, 6)), 2, 1), (rng.random((5, 6)), 1, 0), (rng.random((5, 6)), 0, 1),
                 (rng.random((6, 5)), -1, 0)]
    else:
        cases = [(rng.random((7, 9)), 3, -2), (rng.random((8, 4)), -3, 2), (rng.random((5, 5)), 0, 0),
                 (rng.random((9, 7)), -2, -4), (rng.random((1, 6)), 4, 0), (rng.random((6, 1)), 0, -5),
                 (rng.standard_normal((32, 32)), 1, 1)]
    for i, (img, dx, dy) in enumerate(cases):
        got = grading.guarded(shift_image, img.copy(), dx, dy, exercise="shift_image")
        if got is None:
            raise AssertionError("shift_image: your function returned None; return the shifted image "
                                 "(and leave the input unchanged)")
        got = np.asarray(got, dtype=float)
        case = f"case {i + 1}: image {img.shape}, dx={dx}, dy={dy}"
        if got.shape != img.shape:
            raise AssertionError(f"shift_image ({case}): returned shape {got.shape}; the shifted image keeps the "
                                 f"input's shape {img.shape} (pad the vacated pixels with zeros, drop what falls off)")
        bugs = {
            "wraps around (np.roll): pixels that fall off one side must not come back on the other; fill with zeros":
                np.roll(img, (dy, dx), axis=(0, 1)),
            "the shift goes the wrong way: positive dx moves the content right, positive dy moves it down":
                shift_reference(img, -dx, -dy),
            "dy moves the content up: rows grow downwards, so positive dy moves it down":
                shift_reference(img, dx, -dy),
            "dx moves the content left: positive dx moves it right": shift_reference(img, -dx, dy),
        }
        if abs(dy) < img.shape[1] and abs(dx) < img.shape[0]:
            bugs["dx and dy swapped: dx is horizontal (columns), dy vertical (rows)"] = shift_reference(img, dy, dx)
        close(got, shift_reference(img, dx, dy), exercise="shift_image", name="shifted image", case=case, bugs=bugs)
    grading.passed("shift_image", f"all {len(cases)} shifts match ({tier})")


def _change_ref(before: np.ndarray, after: np.ndarray) -> float:
    return float(np.linalg.norm(after - before) / np.linalg.norm(before))


def check_response_change(response_change: Callable[[np.ndarray, np.ndarray], float], tier: str = "public") -> None:
    """Check ``response_change(before, after) = ||after - before|| / ||before||`` (Frobenius norms, all entries).

    Args:
        response_change: student function (array, array of the same shape) -> float.
        tier: "public" or "hidden".
    """
    check_tier(tier)
    rng = grading.rng(2 if tier == "public" else 20_202)
    if tier == "public":
        v = rng.standard_normal(10)
        cases = [(np.array([3.0, 4.0]), np.array([3.0, 0.0])), (v, v.copy()), (v, 2 * v),
                 (rng.standard_normal((4, 5)), rng.standard_normal((4, 5)))]
    else:
        cases = [(rng.standard_normal(300), rng.standard_normal(300)), (rng.random((6, 7)), rng.random((6, 7))),
                 (rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))),
                 (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[1.0, 2.0], [3.0, 5.0]])),
                 (100 * rng.standard_normal(50), rng.standard_normal(50))]
    for i, (before, after) in enumerate(cases):
        got = grading.guarded(response_change, before.copy(), after.copy(), exercise="response_change")
        case = f"case {i + 1}: arrays of shape {before.shape}"
        arr = np.asarray(got, dtype=float) if got is not None else None
        if arr is None or arr.ndim != 0:
            what = "None" if arr is None else f"an array of shape {arr.shape}"
            raise AssertionError(f"response_change ({case}): returned {what}; return one number, "
                                 "||after - before|| / ||before|| over all entries (np.linalg.norm of the whole array)")
        diff = np.linalg.norm(after - before)
        close(arr, np.asarray(_change_ref(before, after)), exercise="response_change", name="relative change",
              case=case, bugs={
                  "not divided by ||before||: the change must be relative to the original response": np.asarray(diff),
                  "divided by ||after|| instead of ||before||": np.asarray(diff / np.linalg.norm(after))
                  if np.linalg.norm(after) else np.asarray(np.nan),
                  "squared norms: use np.linalg.norm, not the sum of squares": np.asarray(diff ** 2
                                                                                         / np.linalg.norm(before) ** 2),
                  "norm of after minus norm of before: subtract the arrays first, then take the norm":
                      np.asarray(abs(np.linalg.norm(after) - np.linalg.norm(before)) / np.linalg.norm(before)),
                  "mean absolute difference instead of the norm ratio": np.asarray(np.mean(np.abs(after - before))),
              })
    grading.passed("response_change", f"all {len(cases)} cases match ({tier})")
