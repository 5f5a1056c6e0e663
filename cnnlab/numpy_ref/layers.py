"""Fully connected (affine) layer, ReLU, tanh, flatten and the softmax cross-entropy loss."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import as_float_array, check_finite, check_ndim, check_shape

__all__ = [
    "affine_forward",
    "affine_backward",
    "relu_forward",
    "relu_backward",
    "tanh_forward",
    "tanh_backward",
    "flatten_forward",
    "flatten_backward",
    "softmax_loss",
]

Cache = dict[str, Any]


def _check_dout(dout: Any, cache: Cache, kind: str, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(cache, dict) or cache.get("kind") != kind:
        raise ValueError(f"cache must be the dict returned by {kind}_forward")
    dout = as_float_array(dout, "dout")
    check_shape(dout, shape, "dout")
    check_finite(dout, "dout")
    return dout


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Compute a fully connected layer: ``out = x.reshape(N, D) @ w + b``.

    Args:
        x: (N, d1, ..., dk) batch; each sample is flattened to D = d1 * ... * dk numbers.
        w: (D, M) weights.
        b: (M,) bias.

    Returns:
        out: (N, M).
        cache: dict for ``affine_backward``.
    """
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    b = as_float_array(b, "b")
    if x.ndim < 1:
        raise ValueError("x must have a batch axis (N, ...), got a scalar")
    check_ndim(w, 2, "w", "(D, M)")
    N = x.shape[0]
    D = int(np.prod(x.shape[1:], dtype=np.int64))
    if w.shape[0] != D:
        raise ValueError(f"shape mismatch: x has D={D} features per sample (shape {x.shape}) but w expects {w.shape[0]} (w shape {w.shape})")
    if b.shape != (w.shape[1],):
        raise ValueError(f"bias shape mismatch: b has shape {b.shape} but w has M={w.shape[1]} outputs, so b must be ({w.shape[1]},)")
    check_finite(x, "x")
    check_finite(w, "w")
    check_finite(b, "b")
    x2 = x.reshape(N, D)
    out = x2 @ w + b
    return out, {"kind": "affine", "x_shape": x.shape, "x2": x2, "w": w, "out_shape": out.shape}


def affine_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of a fully connected layer.

    Args:
        dout: (N, M) upstream gradient.
        cache: from ``affine_forward``.

    Returns:
        dx: (N, d1, ..., dk) (x's shape), dw: (D, M), db: (M,).
    """
    dout = _check_dout(dout, cache, "affine", cache.get("out_shape", ()) if isinstance(cache, dict) else ())
    x2, w = cache["x2"], cache["w"]
    dx = (dout @ w.T).reshape(cache["x_shape"])
    dw = x2.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Compute ``max(0, x)`` element-wise.

    Args:
        x: array of any shape.

    Returns:
        out: same shape as x; cache: dict for ``relu_backward``.
    """
    x = as_float_array(x, "x")
    check_finite(x, "x")
    return np.maximum(x, 0), {"kind": "relu", "x": x}


def relu_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Pass the gradient where the input was positive, zero elsewhere (the derivative at 0 is taken as 0, like PyTorch).

    Args:
        dout: upstream gradient, x's shape.
        cache: from ``relu_forward``.

    Returns:
        dx: x's shape.
    """
    x = cache["x"] if isinstance(cache, dict) and "x" in cache else None
    dout = _check_dout(dout, cache, "relu", x.shape if x is not None else ())
    return np.where(x > 0, dout, 0).astype(np.result_type(dout, x), copy=False)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Compute ``tanh(x)`` element-wise.

    Args:
        x: array of any shape.

    Returns:
        out: same shape as x; cache: dict for ``tanh_backward`` (holds out).
    """
    x = as_float_array(x, "x")
    check_finite(x, "x")
    out = np.tanh(x)
    return out, {"kind": "tanh", "out": out}


def tanh_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Multiply the gradient by ``1 - tanh(x)^2``.

    Args:
        dout: upstream gradient, x's shape.
        cache: from ``tanh_forward``.

    Returns:
        dx: x's shape.
    """
    out = cache["out"] if isinstance(cache, dict) and "out" in cache else None
    dout = _check_dout(dout, cache, "tanh", out.shape if out is not None else ())
    return dout * (1 - out * out)


def flatten_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Flatten every sample into a vector: (N, d1, ..., dk) -> (N, d1 * ... * dk).

    Args:
        x: (N, ...) batch, e.g. (N, C, H, W).

    Returns:
        out: (N, D) (a view when possible); cache: dict for ``flatten_backward``.
    """
    x = as_float_array(x, "x")
    if x.ndim < 1:
        raise ValueError("x must have a batch axis (N, ...), got a scalar")
    check_finite(x, "x")
    out = x.reshape(x.shape[0], -1)
    return out, {"kind": "flatten", "x_shape": x.shape, "out_shape": out.shape}


def flatten_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Reshape the gradient back to the input's shape.

    Args:
        dout: (N, D) upstream gradient.
        cache: from ``flatten_forward``.

    Returns:
        dx: (N, d1, ..., dk).
    """
    dout = _check_dout(dout, cache, "flatten", cache.get("out_shape", ()) if isinstance(cache, dict) else ())
    return dout.reshape(cache["x_shape"])


def softmax_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Compute the mean softmax cross-entropy loss and its gradient with respect to the scores.

    ``loss = -mean_n log(softmax(scores[n])[y[n]])``; ``dscores = (softmax(scores) - onehot(y)) / N``.
    Scores are shifted by their row maximum first, so large scores do not overflow.

    Args:
        scores: (N, M) class scores (logits).
        y: (N,) integer labels in [0, M).

    Returns:
        loss: float.
        dscores: (N, M), scores' dtype.
    """
    scores = as_float_array(scores, "scores")
    check_ndim(scores, 2, "scores", "(N, M)")
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
    N, M = scores.shape
    check_shape(y, (N,), "y")
    if N == 0 or M == 0:
        raise ValueError(f"scores must be non-empty, got shape {scores.shape}")
    if y.min() < 0 or y.max() >= M:
        raise ValueError(f"labels y must lie in [0, {M}) for {M} classes, got min {y.min()} and max {y.max()}")
    check_finite(scores, "scores")
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(N)
    loss = float(-log_probs[rows, y].mean())
    dscores = np.exp(log_probs)
    # p_y - 1 written as minus the other classes' probabilities: exact even when p_y rounds to 1
    dscores[rows, y] = 0
    dscores[rows, y] = -dscores.sum(axis=1)
    dscores /= N
    return loss, dscores
