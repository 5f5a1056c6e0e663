"""Checks for notebook 02 (filters): ``corr2d_loops``, ``corr2d``, ``conv2d_true``, ``kernel_grad``, ``learn_kernel``.

Every check is ``check_<exercise>(student_fn, tier="public"|"hidden")``.  The public tier runs the
notebook's own small cases; the hidden tier runs new seeds and shapes under the integrity guard.
A passing check prints one line; a failing one raises AssertionError naming the likely bug.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cnnlab import grading
from cnnlab.checks._support import check_tier, close, count_user_lines
from cnnlab.numpy_ref import conv2d_true as _ref_conv2d_true
from cnnlab.numpy_ref import corr2d as _ref_corr2d

__all__ = [
    "check_corr2d_loops",
    "check_corr2d",
    "check_conv2d_true",
    "check_kernel_grad",
    "check_learn_kernel",
    "kernel_loss",
]

def _check_tier(tier: str) -> None:
    check_tier(tier)


def _arr(exercise: str, value: Any, what: str = "your function") -> np.ndarray:
    """Turn a student's return value into an array or fail with a message that says what came back."""
    if value is None:
        raise AssertionError(f"{exercise}: {what} returned None; did you forget the `return` statement?")
    try:
        out = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise AssertionError(f"{exercise}: {what} returned {type(value).__name__}, "
                             f"not an array of numbers ({exc})") from None
    return out


# --------------------------------------------------------------------------------------------
# corr2d (loops and vectorised)
# --------------------------------------------------------------------------------------------

D2L_X = np.arange(9.0).reshape(3, 3)
D2L_K = np.array([[0.0, 1.0], [2.0, 3.0]])
SEED_X = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=float)
SEED_K = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=float)
EDGE_X = np.repeat(np.array([[10.0] * 3 + [0.0] * 3]), 6, axis=0)
VERTICAL_K = np.array([[1.0, 0.0, -1.0]] * 3)


def _public_corr_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = grading.rng(2)
    return [(D2L_X, D2L_K), (SEED_X, SEED_K), (EDGE_X, VERTICAL_K),
            (rng.standard_normal((5, 7)), rng.standard_normal((2, 3))),
            (rng.standard_normal((6, 4)), rng.standard_normal((3, 1)))]


def _hidden_corr_cases() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = grading.rng(20_021)
    cases = []
    for h, w, kh, kw in [(8, 8, 3, 3), (9, 12, 4, 2), (11, 7, 1, 5), (6, 6, 6, 6), (10, 13, 5, 3), (1, 9, 1, 3),
                         (7, 5, 2, 2)]:
        cases.append((rng.standard_normal((h, w)), rng.standard_normal((kh, kw))))
    cases.append((rng.integers(0, 5, (6, 8)).astype(np.float64), rng.integers(-2, 3, (3, 3)).astype(np.float64)))
    return cases


def _shape_bug(exercise: str, got: tuple, x: np.ndarray, k: np.ndarray, flip_word: str = "") -> None:
    """Fail with a message naming the output-size bug when ``got`` is not the valid output shape."""
    (h, w), (kh, kw) = x.shape, k.shape
    want = (h - kh + 1, w - kw + 1)
    if tuple(got) == want:
        return
    case = f"for x of shape {x.shape} and k of shape {k.shape}"
    if tuple(got) == (h - kh, w - kw) or tuple(got) in {(h - kh, w - kw + 1), (h - kh + 1, w - kw)}:
        bug = ("off-by-one in the output size: there are H - KH + 1 window positions per column "
               "(range(H - KH + 1), not range(H - KH))")
    elif tuple(got) == (h, w):
        bug = "the output has the input's size; a valid cross-correlation shrinks to (H - KH + 1, W - KW + 1)"
    elif tuple(got) == (h - kh + 2, w - kw + 2) or tuple(got) == (h + kh - 1, w + kw - 1):
        bug = "too many window positions (a 'full' output or range(H - KH + 2)); use the valid size H - KH + 1"
    elif tuple(got) == (want[1], want[0]):
        bug = "rows and columns swapped: the output must be (H - KH + 1, W - KW + 1)"
    elif tuple(got) in {(h - kh + 1, w - kh + 1), (h - kw + 1, w - kw + 1)}:
        bug = "one kernel size used for both axes: use KH for the rows and KW for the columns"
    elif len(got) != 2:
        bug = f"the output must be 2-D, got {len(got)}-D"
    else:
        bug = "wrong output size"
    raise AssertionError(f"{exercise}: output shape {tuple(got)} {case}, expected {want}. Likely bug: {bug}")


def _corr_bugs(x: np.ndarray, k: np.ndarray) -> dict[str, np.ndarray]:
    bugs = {"kernel flipped: that is true convolution (conv2d_true), not cross-correlation": _ref_conv2d_true(x, k)}
    if k.shape[0] == k.shape[1] and x.shape[0] >= k.shape[1] and x.shape[1] >= k.shape[0]:
        bugs["kernel transposed (k.T): use k[a, b] with a along rows and b along columns"] = _ref_corr2d(x, k.T)
    bugs["window sum not multiplied by the kernel (summed the image patch only)"] = _ref_corr2d(x, np.ones_like(k))
    return bugs


def _run_corr(exercise: str, fn: Callable, cases: list, reference: Callable = _ref_corr2d,
              bugs_for: Callable = _corr_bugs) -> int:
    """Run ``fn`` on every (x, k) case under the guard and compare with ``reference``; return the count."""
    for i, (x, k) in enumerate(cases):
        x_in, k_in = x.copy(), k.copy()
        got = _arr(exercise, grading.guarded(fn, x_in, k_in, exercise=exercise))
        if not (np.array_equal(x_in, x) and np.array_equal(k_in, k)):
            raise AssertionError(f"{exercise}: your function modified its input arrays in place; work on copies")
        _shape_bug(exercise, got.shape, x, k)
        close(got, reference(x, k), exercise=exercise, name="output",
              case=f"case {i + 1}: x {x.shape}, k {k.shape}", bugs=bugs_for(x, k))
    return len(cases)


def check_corr2d_loops(corr2d_loops: Callable[[np.ndarray, np.ndarray], np.ndarray], tier: str = "public") -> None:
    """Check the loop version of the valid 2-D cross-correlation.

    Args:
        corr2d_loops: student function (H, W) image, (KH, KW) kernel -> (H - KH + 1, W - KW + 1).
        tier: "public" (the notebook's examples) or "hidden" (new shapes, integrity guard).
    """
    _check_tier(tier)
    cases = _public_corr_cases() if tier == "public" else _hidden_corr_cases()
    n = _run_corr("corr2d_loops", corr2d_loops, cases)
    grading.passed("corr2d_loops", f"all {n} cases match ({tier})")


def check_corr2d(corr2d: Callable[[np.ndarray, np.ndarray], np.ndarray], tier: str = "public") -> None:
    """Check the vectorised valid 2-D cross-correlation, including that it does not loop over every pixel.

    Args:
        corr2d: student function (H, W) image, (KH, KW) kernel -> (H - KH + 1, W - KW + 1).
        tier: "public" or "hidden".
    """
    _check_tier(tier)
    cases = _public_corr_cases() if tier == "public" else _hidden_corr_cases()
    n = _run_corr("corr2d", corr2d, cases)
    rng = grading.rng(5 if tier == "public" else 50_505)
    x, k = rng.standard_normal((40, 40)), rng.standard_normal((3, 3))
    try:
        got, lines = count_user_lines(corr2d, x, k)
    except Exception as exc:  # the guarded runs above succeeded, so this is unexpected; report it plainly
        raise AssertionError(f"corr2d: your function raised {type(exc).__name__}: {exc}") from None
    close(_arr("corr2d", got), _ref_corr2d(x, k), exercise="corr2d", name="output", case="40x40 image, 3x3 kernel",
          bugs=_corr_bugs(x, k))
    pixels = 38 * 38
    if lines >= pixels // 2:
        raise AssertionError(
            f"corr2d: your function executed {lines} Python lines for a 38x38 output: it still loops over the "
            "output pixels. Likely bug: not vectorised; loop over the KH*KW kernel offsets (or use "
            "sliding_window_view) and let NumPy handle all pixels at once")
    grading.passed("corr2d", f"all {n + 1} cases match, vectorised ({tier})")


def _conv_bugs(x: np.ndarray, k: np.ndarray) -> dict[str, np.ndarray]:
    bugs = {
        "kernel not flipped: this is cross-correlation; true convolution flips k by 180 degrees (k[::-1, ::-1])":
            _ref_corr2d(x, k),
        "kernel flipped only upside down (k[::-1]); flip both axes (k[::-1, ::-1])": _ref_corr2d(x, k[::-1]),
        "kernel flipped only left-right (k[:, ::-1]); flip both axes (k[::-1, ::-1])": _ref_corr2d(x, k[:, ::-1]),
        "flipped the image instead of the kernel: the output comes out rotated by 180 degrees":
            _ref_conv2d_true(x, k)[::-1, ::-1],
    }
    if k.shape[0] == k.shape[1]:
        bugs["kernel transposed (k.T) instead of rotated by 180 degrees (k[::-1, ::-1])"] = _ref_corr2d(x, k.T)
    return bugs


def check_conv2d_true(conv2d_true: Callable[[np.ndarray, np.ndarray], np.ndarray], tier: str = "public") -> None:
    """Check true (flipped-kernel) 2-D convolution.

    Args:
        conv2d_true: student function (H, W) image, (KH, KW) kernel -> (H - KH + 1, W - KW + 1).
        tier: "public" or "hidden".
    """
    _check_tier(tier)
    if tier == "public":
        rng = grading.rng(3)
        cases = [(rng.standard_normal((6, 6)), rng.standard_normal((3, 3))),
                 (rng.standard_normal((5, 8)), rng.standard_normal((2, 3))), (D2L_X, D2L_K)]
    else:
        cases = [(x, k) for x, k in _hidden_corr_cases() if not np.allclose(k, k[::-1, ::-1])]
    n = _run_corr("conv2d_true", conv2d_true, cases, reference=_ref_conv2d_true, bugs_for=_conv_bugs)
    grading.passed("conv2d_true", f"all {n} cases match ({tier})")


# --------------------------------------------------------------------------------------------
# kernel gradient and the learning loop
# --------------------------------------------------------------------------------------------

def _corr_batch(X: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid cross-correlation of every image in X (N, H, W) with k; written here (not numpy_ref) so that
    students may call ``kernel_loss`` inside a guarded function."""
    return np.einsum("nijab,ab->nij", np.lib.stride_tricks.sliding_window_view(X, k.shape, axis=(1, 2)), k)


def kernel_loss(X: np.ndarray, Y: np.ndarray, k: np.ndarray) -> float:
    """Return the mean squared error between the filtered images and the targets.

    ``L(k) = mean over n, i, j of (corr2d(X[n], k)[i, j] - Y[n, i, j]) ** 2``.

    Args:
        X: (N, H, W) images.
        Y: (N, H - KH + 1, W - KW + 1) target feature maps.
        k: (KH, KW) kernel.
    """
    X, Y, k = np.asarray(X, dtype=float), np.asarray(Y, dtype=float), np.asarray(k, dtype=float)
    if X.ndim != 3 or Y.ndim != 3 or k.ndim != 2:
        raise ValueError("kernel_loss needs X (N, H, W), Y (N, H', W'), k (KH, KW); "
                         f"got ndim {X.ndim}, {Y.ndim}, {k.ndim}")
    if k.shape[0] > X.shape[1] or k.shape[1] > X.shape[2]:
        raise ValueError(f"kernel {k.shape} is larger than the images {X.shape[1:]}")
    pred = _corr_batch(X, k)
    if pred.shape != Y.shape:
        raise ValueError(f"Y has shape {Y.shape} but corr2d(X[n], k) gives {pred.shape}")
    return float(np.mean((pred - Y) ** 2))


def _grad_ref(X: np.ndarray, Y: np.ndarray, k: np.ndarray) -> np.ndarray:
    err = np.stack([_ref_corr2d(x, k) for x in X]) - Y
    return 2.0 / err.size * sum(_ref_corr2d(x, e) for x, e in zip(X, err))


def _grad_bugs(X: np.ndarray, Y: np.ndarray, k: np.ndarray) -> dict[str, np.ndarray]:
    g = _grad_ref(X, Y, k)
    n, p = Y.shape[0], Y[0].size
    err0 = _ref_corr2d(X[0], k) - Y[0]
    first = _ref_corr2d(X[0], err0)
    return {
        "wrong sign: the error is prediction - target (dL/dk points uphill)": -g,
        "missing the factor 2 from the derivative of the square": g / 2,
        "summed instead of averaged: divide by the number of terms N * H' * W'": g * n * p,
        "averaged over pixels but not over the N images": g * n,
        "averaged over images but not over the H' * W' pixels": g * p,
        "missing the sum over the batch: only the first image's gradient is used": 2.0 / (n * p) * first,
        "missing the sum over the batch: only the first image's gradient (averaged over its own pixels)":
            2.0 / p * first,
        "gradient flipped: dL/dk is corr2d(x, error), not conv2d_true(x, error)": g[::-1, ::-1],
    }


def _grad_case(rng: np.random.Generator, n: int, h: int, w: int, kh: int, kw: int) -> tuple:
    X = rng.standard_normal((n, h, w))
    k_true = rng.standard_normal((kh, kw))
    Y = np.stack([_ref_corr2d(x, k_true) for x in X]) + 0.1 * rng.standard_normal((n, h - kh + 1, w - kw + 1))
    k = rng.standard_normal((kh, kw))
    return X, Y, k


def check_kernel_grad(kernel_grad: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                      tier: str = "public") -> None:
    """Check the gradient of the mean squared error ``kernel_loss`` with respect to the kernel.

    Args:
        kernel_grad: student function (X (N, H, W), Y (N, H', W'), k (KH, KW)) -> dL/dk (KH, KW).
        tier: "public" (fixed cases) or "hidden" (new shapes, central differences, guard).
    """
    _check_tier(tier)
    rng = grading.rng(7 if tier == "public" else 70_707)
    shapes = [(3, 6, 6, 3, 3), (2, 5, 7, 2, 3)] if tier == "public" else \
        [(4, 8, 8, 3, 3), (3, 7, 9, 3, 2), (1, 6, 6, 3, 3), (5, 5, 6, 1, 4), (2, 9, 9, 5, 5)]
    for X, Y, k in (_grad_case(rng, *s) for s in shapes):
        args = (X.copy(), Y.copy(), k.copy())
        got = _arr("kernel_grad", grading.guarded(kernel_grad, *args, exercise="kernel_grad"))
        case = f"X {X.shape}, k {k.shape}"
        if got.shape != k.shape:
            if got.shape == (X.shape[0],) + k.shape:
                bug = "one gradient per image: sum (and average) them over the batch"
            elif got.shape == X.shape or got.shape == X.shape[1:]:
                bug = "that is the shape of the gradient with respect to the image, not the kernel"
            elif got.shape == Y.shape or got.shape == Y.shape[1:]:
                bug = "that is the shape of the error (prediction - target); correlate it with the image"
            else:
                bug = "the gradient must have the kernel's shape (KH, KW)"
            raise AssertionError(f"kernel_grad: returned shape {got.shape} for {case}, expected {k.shape}. "
                                 f"Likely bug: {bug}")
        close(got, _grad_ref(X, Y, k), exercise="kernel_grad", name="dL/dk", case=case, bugs=_grad_bugs(X, Y, k))
        if tier == "hidden":
            grading.assert_gradient(got, lambda kk, X=X, Y=Y: kernel_loss(X, Y, kk), k.copy(), name="dL/dk")
    grading.passed("kernel_grad", f"all {len(shapes)} cases match ({tier})")


def _learn_ref(X: np.ndarray, Y: np.ndarray, shape: tuple[int, int], lr: float,
               steps: int) -> tuple[np.ndarray, np.ndarray]:
    k = np.zeros(shape)
    losses = []
    for _ in range(steps):
        losses.append(kernel_loss(X, Y, k))
        k = k - lr * _grad_ref(X, Y, k)
    return k, np.array(losses)


def _learn_case(seed: int, n: int, size: int, k_true: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rng = grading.rng(seed)
    X = rng.standard_normal((n, size, size))
    Y = np.stack([_ref_corr2d(x, k_true) for x in X])
    return X, Y


SOBEL_X = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def check_learn_kernel(learn_kernel: Callable[..., tuple[np.ndarray, Any]], tier: str = "public") -> None:
    """Check the gradient-descent loop that learns a kernel from (image, filtered image) pairs.

    ``learn_kernel(X, Y, shape=(3, 3), lr=0.1, steps=100) -> (k, losses)`` starts from a zero kernel,
    records the loss *before* each update and takes ``steps`` plain gradient steps ``k -= lr * dk``.

    Args:
        learn_kernel: the student's loop.
        tier: "public" (recover Sobel on the notebook's settings) or "hidden" (other kernels, shapes, rates).
    """
    _check_tier(tier)
    rng = grading.rng(11 if tier == "public" else 110_011)
    if tier == "public":
        settings = [(SOBEL_X, 4, 12, 0.1, 60)]
    else:
        settings = [(rng.standard_normal((3, 3)), 3, 10, 0.05, 40), (rng.standard_normal((2, 4)), 2, 9, 0.1, 25),
                    (SOBEL_X.T, 4, 8, 0.2, 30)]
    for j, (k_true, n, size, lr, steps) in enumerate(settings):
        X, Y = _learn_case(1000 * j + (1 if tier == "public" else 77), n, size, k_true)
        result = grading.guarded(learn_kernel, X.copy(), Y.copy(), shape=k_true.shape, lr=lr, steps=steps,
                                 exercise="learn_kernel")
        if not isinstance(result, tuple) or len(result) != 2:
            raise AssertionError("learn_kernel: return a pair (k, losses): the learned kernel and the list of losses")
        k, losses = _arr("learn_kernel", result[0], "k"), _arr("learn_kernel", result[1], "losses")
        k_ref, l_ref = _learn_ref(X, Y, k_true.shape, lr, steps)
        setting = f"lr={lr}, steps={steps}, kernel {k_true.shape}"
        if k.shape != k_true.shape:
            raise AssertionError(f"learn_kernel: the learned kernel has shape {k.shape}, "
                                 f"expected {k_true.shape} ({setting})")
        if losses.shape != (steps,):
            hint = "record one loss per step, before the update" if losses.size in (steps - 1, steps + 1) else \
                "losses must hold one number per step"
            raise AssertionError(f"learn_kernel: losses has shape {losses.shape}, expected ({steps},) ({setting}). "
                                 f"Likely bug: {hint}")
        with np.errstate(all="ignore"):  # the buggy variants may diverge; no warnings on stderr
            k_up, l_up = _learn_ref(X, Y, k_true.shape, -lr, steps)
            k_nolr, l_nolr = _learn_ref(X, Y, k_true.shape, 1.0, steps)
            k_short, _ = _learn_ref(X, Y, k_true.shape, lr, steps - 1)
        sign = "wrong sign in the update: gradient descent is k = k - lr * dk (the loss grows)"
        no_lr = "the learning rate is ignored (k = k - dk)"
        stuck = "the kernel never changes: assign the update back to k (k = k - lr * dk)"
        close(losses, l_ref, exercise="learn_kernel", name="losses", case=setting, bugs={
            sign: l_up, no_lr: l_nolr, stuck: np.full_like(l_ref, l_ref[0]),
            "the loss is recorded after the update instead of before it":
                np.append(l_ref[1:], kernel_loss(X, Y, k_ref)),
            "the loss is summed over pixels and images instead of averaged": l_ref * Y.size})
        close(k, k_ref, exercise="learn_kernel", name="learned kernel", case=setting, bugs={
            sign: k_up, no_lr: k_nolr, stuck: np.zeros_like(k_ref),
            "one step too few (range(steps - 1))": k_short,
            "the kernel is returned flipped": k_ref[::-1, ::-1]})
    detail = "recovers the Sobel kernel" if tier == "public" else f"all {len(settings)} settings match"
    grading.passed("learn_kernel", f"{detail} ({tier})")
