"""Exercise records of notebook 02 (filters).

Exercises, in notebook order: ``corr2d_loops``, ``corr2d`` (vectorised), ``apply_kernels``,
``conv2d_true``, ``kernel_grad``, ``learn_kernel``.  Test cells call
``nb02.check("corr2d", corr2d)`` and ``nb02.check(..., tier="hidden")``; the notebook's last cell
calls ``nb02.summary(globals())``.  Each record holds the reference, the public and hidden cases
and the bug table (the wrong code that makes each bug and the phrase its feedback contains).

``kernel_loss`` is a public helper that students may call in ``learn_kernel``; it computes its own
cross-correlation (no ``cnnlab.numpy_ref``), so the integrity guard lets it run.  The references
``ref_*`` go through ``cnnlab.numpy_ref``, so a student function that calls them is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.grading import rng
from cnnlab.grading.exercise import Bug, Case, Exercise, Notebook, Problem
from cnnlab.grading.probes import count_user_lines
from cnnlab.numpy_ref import conv2d_true as ref_conv2d_true
from cnnlab.numpy_ref import corr2d as ref_corr2d

__all__ = ["NOTEBOOK", "check", "summary", "kernel_loss", "ref_apply_kernels", "ref_kernel_grad",
           "ref_learn_kernel", "SOBEL_X"]

NOTEBOOK = Notebook("02_filters")
check = NOTEBOOK.check
summary = NOTEBOOK.summary

SOBEL_X = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
_D2L_X = np.arange(9.0).reshape(3, 3)
_D2L_K = np.array([[0.0, 1.0], [2.0, 3.0]])
_SEED_X = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]], dtype=float)
_SEED_K = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=float)
_EDGE_X = np.repeat(np.array([[10.0] * 3 + [0.0] * 3]), 6, axis=0)
_VERTICAL_K = np.array([[1.0, 0.0, -1.0]] * 3)
_BOX = np.ones((3, 3)) / 9


# --------------------------------------------------------------------------------------------
# Exercises 1 and 2: corr2d_loops and corr2d
# --------------------------------------------------------------------------------------------

def _corr_public() -> list[Case]:
    g = rng(2)
    return [Case((_D2L_X, _D2L_K), label="the 3x3 worked example"),
            Case((_SEED_X, _SEED_K), label="the 5x5 binary image and the X-shaped kernel"),
            Case((_EDGE_X, _VERTICAL_K), label="the 6x6 vertical edge"),
            Case((g.standard_normal((6, 4)), g.standard_normal((3, 1))), label="a 3x1 kernel"),
            Case((g.standard_normal((5, 7)), g.standard_normal((2, 3))), label="a rectangular 2x3 kernel"),
            Case((g.integers(0, 10, (6, 6)), _BOX), label="an integer image and a box-blur kernel")]


def _corr_hidden() -> list[Case]:
    g = rng(20_021)
    cases = [Case((g.standard_normal((h, w)), g.standard_normal((kh, kw))), label=label)
             for h, w, kh, kw, label in [(8, 8, 3, 3, "a square kernel"), (9, 12, 4, 2, "a tall kernel"),
                                         (11, 7, 1, 5, "a one-row kernel"),
                                         (6, 6, 6, 6, "a kernel as large as the image"),
                                         (10, 13, 5, 3, "a rectangular image and kernel"),
                                         (1, 9, 1, 3, "a one-row image"), (7, 5, 2, 2, "a 2x2 kernel")]]
    cases.append(Case((g.integers(0, 256, (7, 9)), g.standard_normal((3, 3))), label="an integer image"))
    return cases


_LOOP_HEAD = "def corr2d_loops(x, k):\n    kh, kw = k.shape\n"
_LOOP_OUT = "    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))\n"
_LOOP_FOR = "    for i in range(out.shape[0]):\n        for j in range(out.shape[1]):\n"


def _loops(body: str, out: str = _LOOP_OUT, head: str = "") -> str:
    return _LOOP_HEAD + head + out + _LOOP_FOR + f"            out[i, j] = {body}\n    return out\n"


_CORR_OFF_BY_ONE = "off-by-one in the output size: there are H - KH + 1 window positions down and W - KW + 1 across"
_CORR_FLIPPED = "kernel flipped: that is true convolution (Exercise 4), not cross-correlation"
_CORR_TRANSPOSED = "kernel transposed (k.T): k[a, b] multiplies x[i + a, j + b], a along the rows"
_CORR_NO_PRODUCT = "the window is summed without multiplying it by the kernel"
_CORR_MEAN = "the mean of the products instead of their sum"

NOTEBOOK.add(Exercise(
    "corr2d_loops", 1, ref_corr2d, _corr_public, _corr_hidden,
    bugs=[
        Bug(_CORR_OFF_BY_ONE,
            _LOOP_HEAD + "    out = np.zeros((x.shape[0] - kh, x.shape[1] - kw))\n"
            "    for i in range(x.shape[0] - kh):\n        for j in range(x.shape[1] - kw):\n"
            "            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)\n    return out\n",
            fix="range(H - KH + 1): the last window starts at row H - KH"),
        Bug("the output has the image's size: a valid cross-correlation shrinks to (H - KH + 1, W - KW + 1)",
            _LOOP_HEAD + "    out = np.zeros(x.shape)\n"
            "    for i in range(x.shape[0] - kh + 1):\n        for j in range(x.shape[1] - kw + 1):\n"
            "            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)\n    return out\n"),
        Bug(_CORR_FLIPPED, _loops("np.sum(x[i:i + kh, j:j + kw] * k)", head="    k = k[::-1, ::-1]\n"),
            fix="use k as it is"),
        Bug(_CORR_TRANSPOSED, _loops("np.sum(x[i:i + kh, j:j + kw] * k.T)")),
        Bug("row and column indices swapped in the window (x[j:..., i:...]): the output comes out transposed",
            _loops("np.sum(x[j:j + kh, i:i + kw] * k)"), fix="the window of out[i, j] is x[i:i + KH, j:j + KW]"),
        Bug("one kernel size used for both axes: KH for the rows, KW for the columns",
            _loops("np.sum(x[i:i + kh, j:j + kw] * k)",
                   out="    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kh + 1))\n")),
        Bug(_CORR_NO_PRODUCT, _loops("np.sum(x[i:i + kh, j:j + kw])"), fix="np.sum(window * k)"),
        Bug(_CORR_MEAN, _loops("np.mean(x[i:i + kh, j:j + kw] * k)"), fix="np.sum, not np.mean"),
        Bug("the output array takes the image's integer dtype (dtype=x.dtype), so every sum is truncated",
            _loops("np.sum(x[i:i + kh, j:j + kw] * k)",
                   out="    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1), dtype=x.dtype)\n"),
            fix="allocate floats: np.zeros((H - KH + 1, W - KW + 1))"),
        Bug("did you forget `return`",
            _LOOP_HEAD + _LOOP_OUT + _LOOP_FOR + "            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)\n",
            by_output=False),
    ],
))

_NOT_VECTORISED = "not vectorised: it still loops over the output pixels"


def _vectorised(fn: Any, tier: str) -> str:
    """``extra`` of corr2d: count the lines of the student's Python that run for a 38x38 output."""
    g = rng(5 if tier == "public" else 50_505)
    x, k = g.standard_normal((40, 40)), g.standard_normal((3, 3))
    try:
        _, lines = count_user_lines(fn, x, k)
    except Exception as exc:  # noqa: BLE001 - the cases ran it without error; report it plainly
        raise Problem(f"corr2d (Exercise 2), a 40x40 image and a 3x3 kernel:\n"
                      f"  your function raised {type(exc).__name__}: {exc}") from None
    pixels = 38 * 38
    if lines >= pixels // 2:
        raise Problem.named(f"corr2d (Exercise 2): your function ran {lines:,} lines of Python for a 38x38 output.",
                            _NOT_VECTORISED, "loop over the KH*KW kernel offsets (out += k[a, b] * x[a:a + H', b:b + W']), "
                            "or use sliding_window_view and np.tensordot")
    return "vectorised"


_SWV = "    windows = np.lib.stride_tricks.sliding_window_view(x, k.shape)\n"
_OFFSETS = ("def corr2d(x, k):\n    kh, kw = k.shape\n    h, w = x.shape[0] - kh + 1, x.shape[1] - kw + 1\n"
            "    out = np.zeros((h, w))\n    for a in range(kh):\n        for b in range(kw):\n")

# every exercise that calls corr2d (directly, or through kernel_grad) fails when corr2d is wrong
_USERS = ("apply_kernels", "conv2d_true", "kernel_grad", "learn_kernel")

NOTEBOOK.add(Exercise(
    "corr2d", 2, ref_corr2d, _corr_public, _corr_hidden, extra=_vectorised,
    bugs=[
        Bug(_CORR_FLIPPED, "def corr2d(x, k):\n" + _SWV
            + "    return np.tensordot(windows, k[::-1, ::-1], axes=([2, 3], [0, 1]))\n", fix="use k as it is",
            loses=_USERS),
        Bug(_CORR_TRANSPOSED + " (tensordot axes [1, 0] instead of [0, 1])", "def corr2d(x, k):\n" + _SWV
            + "    return np.tensordot(windows, k, axes=([2, 3], [1, 0]))\n", loses=_USERS),
        Bug("summed over every axis: sum only over the two kernel axes of the windows (axis=(2, 3))",
            "def corr2d(x, k):\n" + _SWV + "    return np.sum(windows * k)\n", loses=_USERS),
        Bug(_CORR_MEAN, "def corr2d(x, k):\n" + _SWV + "    return (windows * k).mean(axis=(2, 3))\n",
            loses=_USERS),
        Bug(_CORR_NO_PRODUCT, "def corr2d(x, k):\n" + _SWV + "    return windows.sum(axis=(2, 3))\n",
            fix="(windows * k).sum(axis=(2, 3))", loses=_USERS),
        Bug("the products are assigned (out = ...) instead of accumulated (out += ...): only the last "
            "kernel offset counts", _OFFSETS + "            out = k[a, b] * x[a:a + h, b:b + w]\n    return out\n",
            loses=_USERS),
        Bug(_CORR_OFF_BY_ONE,
            "def corr2d(x, k):\n    kh, kw = k.shape\n    h, w = x.shape[0] - kh, x.shape[1] - kw\n"
            "    out = np.zeros((h, w))\n    for a in range(kh):\n        for b in range(kw):\n"
            "            out += k[a, b] * x[a:a + h, b:b + w]\n    return out\n", loses=_USERS),
        Bug(_NOT_VECTORISED, _loops("np.sum(x[i:i + kh, j:j + kw] * k)").replace("corr2d_loops", "corr2d"),
            by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 3: apply_kernels
# --------------------------------------------------------------------------------------------

def ref_apply_kernels(img: np.ndarray, kernels: np.ndarray) -> np.ndarray:
    """Cross-correlate one image with each of F kernels: (H, W), (F, KH, KW) -> (F, H', W')."""
    return np.stack([ref_corr2d(img, k) for k in np.asarray(kernels)])


def _apply_public() -> list[Case]:
    g = rng(4)
    three = np.stack([_VERTICAL_K, _VERTICAL_K.T, _BOX])
    return [Case((g.random((8, 8)), three), label="three 3x3 kernels on an 8x8 image"),
            Case((g.integers(0, 10, (6, 7)), np.stack([_BOX, _VERTICAL_K / 4])),
                 label="an integer image, two kernels"),
            Case((g.standard_normal((6, 7)), g.standard_normal((2, 2, 3))), label="two rectangular kernels"),
            Case((g.standard_normal((5, 5)), g.standard_normal((1, 3, 3))), label="a single kernel (F = 1)")]


def _apply_hidden() -> list[Case]:
    g = rng(40_404)
    return [Case((g.standard_normal((10, 9)), g.standard_normal((5, 4, 4))), label="five 4x4 kernels"),
            Case((g.integers(0, 256, (7, 7)), g.standard_normal((3, 3, 3))), label="an integer image"),
            Case((g.standard_normal((6, 8)), g.standard_normal((4, 3, 2))), label="rectangular kernels"),
            Case((g.standard_normal((5, 5)), g.standard_normal((2, 5, 5))), label="kernels as large as the image"),
            Case((g.standard_normal((4, 6)), g.standard_normal((1, 1, 1))), label="a single 1x1 kernel")]


_APPLY = "def apply_kernels(img, kernels):\n"

NOTEBOOK.add(Exercise(
    "apply_kernels", 3, ref_apply_kernels, _apply_public, _apply_hidden, uses=("corr2d",),
    bugs=[  # the squeeze first: on a single kernel it looks like "only the last map", which fails earlier
        Bug("the kernel axis is squeezed away when there is one kernel: keep the shape (1, H', W')",
            _APPLY + "    return np.squeeze(np.stack([corr2d(img, k) for k in kernels]))\n"),
        Bug("only the last kernel's map is returned: keep one map per kernel (a list, then np.stack)",
            _APPLY + "    for k in kernels:\n        out = corr2d(img, k)\n    return out\n"),
        Bug("the maps are added into one: keep one map per kernel, stacked along a new first axis",
            _APPLY + "    return sum(corr2d(img, k) for k in kernels)\n"),
        Bug("the maps are stacked along the last axis: the kernel axis comes first, (F, H', W')",
            _APPLY + "    return np.stack([corr2d(img, k) for k in kernels], axis=-1)\n",
            fix="np.stack(maps) (axis=0)"),
        Bug("the output array takes the image's integer dtype (dtype=img.dtype), so the maps are truncated",
            _APPLY + "    maps = [corr2d(img, k) for k in kernels]\n"
            "    out = np.zeros((len(maps),) + maps[0].shape, dtype=img.dtype)\n"
            "    for f, m in enumerate(maps):\n        out[f] = m\n    return out\n",
            fix="np.stack(maps), or allocate floats"),
        Bug("one kernel is missing (range(F - 1)): every kernel gives a map",
            _APPLY + "    return np.stack([corr2d(img, kernels[f]) for f in range(len(kernels) - 1)])\n"),
        Bug("the kernels are flipped (true convolution): apply them as they are, with corr2d",
            _APPLY + "    return np.stack([corr2d(img, k[::-1, ::-1]) for k in kernels])\n"),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 4: conv2d_true
# --------------------------------------------------------------------------------------------

def _conv_public() -> list[Case]:
    g = rng(3)
    return [Case((g.standard_normal((6, 6)), g.standard_normal((3, 3))), label="a 3x3 kernel"),
            Case((g.standard_normal((5, 8)), g.standard_normal((2, 3))), label="a rectangular 2x3 kernel"),
            Case((_D2L_X, _D2L_K), label="the 3x3 worked example")]


def _conv_hidden() -> list[Case]:
    return [c for c in _corr_hidden() if not np.allclose(c.args[1], c.args[1][::-1, ::-1])]


_CONV = "def conv2d_true(x, k):\n"

NOTEBOOK.add(Exercise(
    "conv2d_true", 4, ref_conv2d_true, _conv_public, _conv_hidden, uses=("corr2d",),
    bugs=[
        Bug("kernel not flipped: that is cross-correlation; true convolution rotates k by 180 degrees",
            _CONV + "    return corr2d(x, k)\n", fix="corr2d(x, k[::-1, ::-1])"),
        Bug("kernel flipped upside down only (k[::-1]): flip both axes, k[::-1, ::-1]",
            _CONV + "    return corr2d(x, k[::-1])\n"),
        Bug("kernel flipped left-right only (k[:, ::-1]): flip both axes, k[::-1, ::-1]",
            _CONV + "    return corr2d(x, k[:, ::-1])\n"),
        Bug("a 90-degree rotation (np.rot90(k)) instead of 180 degrees: np.rot90(k, 2)",
            _CONV + "    return corr2d(x, np.rot90(k))\n"),
        Bug("a 90-degree clockwise rotation (np.rot90(k, -1)) instead of 180 degrees: np.rot90(k, 2)",
            _CONV + "    return corr2d(x, np.rot90(k, -1))\n"),
        Bug("kernel transposed (k.T) instead of rotated by 180 degrees (k[::-1, ::-1])",
            _CONV + "    return corr2d(x, k.T)\n"),
        Bug("the image is flipped instead of the kernel",
            _CONV + "    return corr2d(x[::-1, ::-1], k)\n", fix="flip k, leave x as it is"),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 5: kernel_grad
# --------------------------------------------------------------------------------------------

def _corr_batch(X: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid cross-correlation of every image in X (N, H, W) with k; NumPy only (no numpy_ref), so that
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


def ref_kernel_grad(X: np.ndarray, Y: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Return dL/dk of ``kernel_loss``: (2 / (N H' W')) * sum_n corr2d(X[n], E[n]), E = prediction - target."""
    X, Y, k = np.asarray(X, dtype=float), np.asarray(Y, dtype=float), np.asarray(k, dtype=float)
    err = np.stack([ref_corr2d(x, k) for x in X]) - Y
    return 2.0 / err.size * sum(ref_corr2d(x, e) for x, e in zip(X, err))


def _grad_case(g: np.random.Generator, n: int, h: int, w: int, kh: int, kw: int, label: str) -> Case:
    X = g.standard_normal((n, h, w))
    k_true = g.standard_normal((kh, kw))
    Y = np.stack([ref_corr2d(x, k_true) for x in X]) + 0.1 * g.standard_normal((n, h - kh + 1, w - kw + 1))
    return Case((X, Y, g.standard_normal((kh, kw))), label=label)


def _grad_public() -> list[Case]:
    g = rng(7)
    return [_grad_case(g, 3, 6, 6, 3, 3, "3 images, a 3x3 kernel"),
            _grad_case(g, 2, 5, 7, 2, 3, "2 images, a rectangular 2x3 kernel")]


def _grad_hidden() -> list[Case]:
    g = rng(70_707)
    return [_grad_case(g, 4, 8, 8, 3, 3, "4 images, a 3x3 kernel"),
            _grad_case(g, 3, 7, 9, 3, 2, "a rectangular kernel"),
            _grad_case(g, 1, 6, 6, 3, 3, "a single image"),
            _grad_case(g, 5, 5, 6, 1, 4, "a one-row kernel"),
            _grad_case(g, 2, 9, 9, 5, 5, "a 5x5 kernel")]


_GRAD = "def kernel_grad(X, Y, k):\n"
_ERRORS = "    errors = np.stack([corr2d(x, k) for x in X]) - Y\n"
_SUM = "sum(corr2d(x, e) for x, e in zip(X, errors))"

NOTEBOOK.add(Exercise(
    "kernel_grad", 5, ref_kernel_grad, _grad_public, _grad_hidden, uses=("corr2d",),
    bugs=[
        Bug("wrong sign: the error is prediction - target",
            _GRAD + "    errors = Y - np.stack([corr2d(x, k) for x in X])\n"
            f"    return 2.0 / errors.size * {_SUM}\n", fix="errors = predictions - Y", loses=("learn_kernel",)),
        Bug("the factor 2 of the derivative of the square is missing",
            _GRAD + _ERRORS + f"    return {_SUM} / errors.size\n", loses=("learn_kernel",)),
        Bug("summed instead of averaged: divide by the number of terms N * H' * W' (errors.size)",
            _GRAD + _ERRORS + f"    return 2.0 * {_SUM}\n", loses=("learn_kernel",)),
        Bug("averaged over the pixels of one map but not over the N images",
            _GRAD + _ERRORS + f"    return 2.0 / errors[0].size * {_SUM}\n", fix="divide by errors.size",
            loses=("learn_kernel",)),
        Bug("averaged over the N images but not over the H' * W' pixels",
            _GRAD + _ERRORS + f"    return 2.0 / len(X) * {_SUM}\n", fix="divide by errors.size",
            loses=("learn_kernel",)),
        Bug("a hard-coded number of terms (8 * 30 * 30, the notebook's training set): divide by errors.size",
            _GRAD + _ERRORS + f"    return 2.0 / (8 * 30 * 30) * {_SUM}\n", loses=("learn_kernel",)),
        Bug("only the first image is used: sum the gradient over every image of the batch",
            _GRAD + "    e = corr2d(X[0], k) - Y[0]\n    return 2.0 / e.size * corr2d(X[0], e)\n",
            loses=("learn_kernel",)),
        Bug("the per-image gradients are assigned (grad = ...) instead of accumulated (grad += ...): only the "
            "last image counts",
            _GRAD + _ERRORS + "    grad = np.zeros(k.shape)\n    for x, e in zip(X, errors):\n"
            "        grad = corr2d(x, e)\n    return 2.0 / errors.size * grad\n", loses=("learn_kernel",)),
        Bug("one gradient per image: sum them over the batch (the gradient has the kernel's shape)",
            _GRAD + _ERRORS + "    return 2.0 / errors.size * np.stack([corr2d(x, e) for x, e in zip(X, errors)])\n",
            loses=("learn_kernel",)),
        Bug("the error map is flipped (a true convolution): dL/dk is corr2d(x, error) with the error as it is",
            _GRAD + _ERRORS + "    return 2.0 / errors.size * sum(corr2d(x, e[::-1, ::-1]) for x, e in zip(X, errors))\n",
            loses=("learn_kernel",)),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 6: learn_kernel
# --------------------------------------------------------------------------------------------

def ref_learn_kernel(X: np.ndarray, Y: np.ndarray, shape: tuple[int, int] = (3, 3), lr: float = 0.1,
                     steps: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Gradient descent from a zero kernel; return (k, losses), losses[t] recorded before update t."""
    k = np.zeros(shape)
    losses = []
    for _ in range(steps):
        losses.append(kernel_loss(X, Y, k))
        k = k - lr * ref_kernel_grad(X, Y, k)
    return k, np.array(losses)


def _learn_case(seed: int, n: int, size: int, k_true: np.ndarray, lr: float, steps: int, label: str) -> Case:
    g = rng(seed)
    X = g.standard_normal((n, size, size))
    Y = np.stack([ref_corr2d(x, k_true) for x in X])
    return Case((X, Y), {"shape": k_true.shape, "lr": lr, "steps": steps}, label=label)


def _learn_public() -> list[Case]:
    g = rng(11)
    return [_learn_case(1, 4, 12, SOBEL_X, 0.1, 60, "recover Sobel from 4 random 12x12 images"),
            _learn_case(2, 3, 9, g.standard_normal((2, 3)), 0.05, 25, "a 2x3 kernel, lr 0.05, 25 steps")]


def _learn_hidden() -> list[Case]:
    g = rng(110_011)
    return [_learn_case(77, 3, 10, g.standard_normal((3, 3)), 0.05, 40, "a random 3x3 kernel"),
            _learn_case(1077, 2, 9, g.standard_normal((2, 4)), 0.1, 25, "a rectangular kernel"),
            _learn_case(2077, 4, 8, SOBEL_X.T, 0.2, 30, "a larger learning rate")]


_LEARN = ("from cnnlab.checks.nb02 import kernel_loss\n\n\n"
          "def learn_kernel(X, Y, shape=(3, 3), lr=0.1, steps=100):\n")


def _learn(update: str = "    k = k - lr * kernel_grad(X, Y, k)\n", start: str = "np.zeros(shape)",
           loop: str = "range(steps)", loss: str = "kernel_loss(X, Y, k)", ret: str = "k, losses",
           after: bool = False) -> str:
    record = f"        losses.append({loss})\n"
    body = (record + update.replace("    ", "        ", 1)) if not after else \
        (update.replace("    ", "        ", 1) + record)
    return (_LEARN + f"    k = {start}\n    losses = []\n    for _ in {loop}:\n" + body + f"    return {ret}\n")


_SIGN = "wrong sign in the update: gradient descent is k = k - lr * dk (the loss grows)"

NOTEBOOK.add(Exercise(
    "learn_kernel", 6, ref_learn_kernel, _learn_public, _learn_hidden, outputs=("k", "losses"),
    uses=("kernel_grad",),
    bugs=[
        Bug(_SIGN, _learn("    k = k + lr * kernel_grad(X, Y, k)\n")),
        Bug("the learning rate is ignored (k = k - dk)", _learn("    k = k - kernel_grad(X, Y, k)\n")),
        Bug("a hard-coded learning rate: use the lr argument", _learn("    k = k - 0.1 * kernel_grad(X, Y, k)\n")),
        Bug("the kernel never changes: assign the update back to k (k = k - lr * dk)",
            _learn("    k_new = k - lr * kernel_grad(X, Y, k)\n")),
        Bug("the loss is recorded after the update instead of before it", _learn(after=True)),
        Bug("one step too few (range(steps - 1)): take exactly `steps` updates", _learn(loop="range(steps - 1)")),
        Bug("a hard-coded number of steps: use the steps argument", _learn(loop="range(100)")),
        Bug("the kernel does not start from zeros: start from np.zeros(shape)", _learn(start="np.ones(shape)")),
        Bug("the loss is summed over pixels and images instead of averaged (use kernel_loss)",
            _learn(loss="np.sum((np.einsum('nijab,ab->nij', np.lib.stride_tricks.sliding_window_view("
                        "X, k.shape, axis=(1, 2)), k) - Y) ** 2)")),
        Bug("returned (losses, k): return the kernel first, (k, losses)", _learn(ret="losses, k")),
    ],
))
