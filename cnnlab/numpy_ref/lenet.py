"""LeNet-5 built from the course's own NumPy layers: initialisation, forward pass, loss and gradients.

Architecture for (N, C, 32, 32) inputs (shapes for one image; C = 1 for digits)::

    conv1  6 filters 5x5          -> (6, 28, 28)   W1 (6, C, 5, 5),  b1 (6,)
    act, pool 2x2 stride 2        -> (6, 14, 14)
    conv2 16 filters 5x5          -> (16, 10, 10)  W2 (16, 6, 5, 5), b2 (16,)
    act, pool 2x2 stride 2        -> (16, 5, 5)
    flatten                       -> 400
    fc1 (act)                     -> 120           W3 (400, 120),    b3 (120,)
    fc2 (act)                     -> 84            W4 (120, 84),     b4 (84,)
    fc3                           -> num_classes   W5 (84, K),       b5 (K,)

Two variants:

- ``"modern"``: ReLU activations and 2x2 max pooling, He (Kaiming) initialisation, as LeNet-style
  networks are trained today.
- ``"classic"``: tanh activations and 2x2 average pooling with LeCun initialisation, close to the
  1998 paper. Simplified here: the paper's subsampling layers multiplied each averaged map by a
  trainable coefficient and added a trainable bias (here a plain average), its C3 layer connected
  each of the 16 maps to a hand-picked subset of S2's 6 maps (here every map sees all 6), its
  activation was a scaled tanh (1.7159 tanh(2x/3)), and its outputs were Euclidean RBF units (here
  an ordinary fully connected layer trained with softmax cross-entropy).

Fully connected weights are (D, M), so ``out = x @ W + b``; ``cnnlab.torch_ref.LeNet5`` converts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import check_finite
from .conv import _cols_chwn, _contiguous, _conv_backward_cols, _conv_forward_cols, conv_backward, conv_forward
from .layers import (
    affine_backward,
    affine_forward,
    flatten_backward,
    flatten_forward,
    relu_backward,
    relu_forward,
    softmax_loss,
    tanh_backward,
    tanh_forward,
)
from .pool import (
    _avg_sum,
    _max_first,
    _max_scatter,
    _window_views,
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
)

__all__ = ["LENET_VARIANTS", "lenet_init", "lenet_loss", "lenet_features"]

LENET_VARIANTS = ("modern", "classic")
PARAM_KEYS = ("W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4", "W5", "b5")


def _check_variant(variant: str) -> None:
    if variant not in LENET_VARIANTS:
        raise ValueError(f"variant must be 'modern' or 'classic', got {variant!r}")


def lenet_init(
    variant: str = "modern",
    in_channels: int = 1,
    num_classes: int = 10,
    seed: int = 0,
    conv_channels: tuple[int, int] = (6, 16),
) -> dict[str, np.ndarray]:
    """Create LeNet-5 parameters with random weights and zero biases (float64).

    Weights are drawn from a normal distribution with standard deviation sqrt(gain / fan_in),
    fan_in = inputs feeding one output unit (C*5*5 for a conv filter, D for a FC unit):
    gain 2 (He/Kaiming, suited to ReLU) for "modern", gain 1 (LeCun, suited to tanh) for "classic".

    Args:
        variant: "modern" or "classic".
        in_channels: C, channels of the input images.
        num_classes: K, number of output scores.
        seed: seed of the local np.random.default_rng generator (the global state is untouched).
        conv_channels: filters in conv1 and conv2; (6, 16) is LeNet-5 (the lecture variant: (8, 16)).

    Returns:
        dict with W1 (6, C, 5, 5), b1 (6,), W2 (16, 6, 5, 5), b2 (16,), W3 (400, 120), b3 (120,),
        W4 (120, 84), b4 (84,), W5 (84, K), b5 (K,).

    Raises:
        ValueError: unknown variant, non-positive sizes.
    """
    _check_variant(variant)
    c1, c2 = conv_channels
    for name, v in (("in_channels", in_channels), ("num_classes", num_classes), ("conv_channels[0]", c1), ("conv_channels[1]", c2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    rng = np.random.default_rng(seed)
    gain = 2.0 if variant == "modern" else 1.0
    shapes = {
        "W1": (c1, in_channels, 5, 5),
        "W2": (c2, c1, 5, 5),
        "W3": (c2 * 5 * 5, 120),
        "W4": (120, 84),
        "W5": (84, num_classes),
    }
    params: dict[str, np.ndarray] = {}
    for i, (key, shape) in enumerate(shapes.items(), start=1):
        fan_in = int(np.prod(shape[1:])) if len(shape) == 4 else shape[0]
        params[key] = rng.normal(0.0, np.sqrt(gain / fan_in), size=shape)
        params[f"b{i}"] = np.zeros(shape[0] if len(shape) == 4 else shape[1])
    return {k: params[k] for k in PARAM_KEYS}


def _check_params(params: dict[str, Any], X: np.ndarray) -> None:
    if not isinstance(params, dict):
        raise ValueError(f"params must be a dict from lenet_init, got {type(params).__name__}")
    missing = [k for k in PARAM_KEYS if k not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; create it with lenet_init")
    if X.ndim != 4 or X.shape[2:] != (32, 32):
        raise ValueError(f"LeNet-5 expects X of shape (N, C, 32, 32), got {X.shape}")
    c_in = np.shape(params["W1"])[1]
    if X.shape[1] != c_in:
        raise ValueError(f"channel mismatch: X has {X.shape[1]} channels but W1 expects {c_in}")


def lenet_features(params: dict[str, np.ndarray], X: np.ndarray, variant: str = "modern") -> dict[str, np.ndarray]:
    """Run the forward pass and keep every intermediate activation (for feature-map figures).

    Args:
        params: dict from lenet_init.
        X: (N, C, 32, 32) images.
        variant: "modern" or "classic".

    Returns:
        dict with 'conv1' (N, 6, 28, 28), 'pool1' (N, 6, 14, 14), 'conv2' (N, 16, 10, 10),
        'pool2' (N, 16, 5, 5), 'fc1' (N, 120), 'fc2' (N, 84) (conv and fc after the activation)
        and 'scores' (N, K).
    """
    fast = _fast_inputs(params, X, variant)
    if fast is not None:
        return _fast_loss(*fast, variant, None, features=True)[1]
    _, caches = _forward(params, X, variant)
    return caches["features"]


def _forward(params: dict[str, np.ndarray], X: Any, variant: str) -> tuple[np.ndarray, dict[str, Any]]:
    _check_variant(variant)
    X = np.asarray(X)
    _check_params(params, X)
    act = relu_forward if variant == "modern" else tanh_forward
    pool = max_pool_forward if variant == "modern" else avg_pool_forward
    c: dict[str, Any] = {}
    f: dict[str, np.ndarray] = {}
    h, c["conv1"] = conv_forward(X, params["W1"], params["b1"])
    h, c["act1"] = act(h)
    f["conv1"] = h
    h, c["pool1"] = pool(h, 2, 2)
    f["pool1"] = h
    h, c["conv2"] = conv_forward(h, params["W2"], params["b2"])
    h, c["act2"] = act(h)
    f["conv2"] = h
    h, c["pool2"] = pool(h, 2, 2)
    f["pool2"] = h
    h, c["flat"] = flatten_forward(h)
    h, c["fc1"] = affine_forward(h, params["W3"], params["b3"])
    h, c["act3"] = act(h)
    f["fc1"] = h
    h, c["fc2"] = affine_forward(h, params["W4"], params["b4"])
    h, c["act4"] = act(h)
    f["fc2"] = h
    scores, c["fc3"] = affine_forward(h, params["W5"], params["b5"])
    f["scores"] = scores
    c["features"] = f
    return scores, c


def lenet_loss(
    params: dict[str, np.ndarray], X: np.ndarray, y: np.ndarray | None = None, variant: str = "modern"
) -> np.ndarray | tuple[float, dict[str, np.ndarray]]:
    """Compute LeNet-5 scores, or the softmax loss and the gradient of every parameter.

    Args:
        params: dict from lenet_init (W1..W5, b1..b5).
        X: (N, C, 32, 32) images.
        y: (N,) integer labels in [0, K), or None.
        variant: "modern" (ReLU + max pool) or "classic" (tanh + average pool).

    Returns:
        Without y: scores (N, K). With y: (loss, grads), loss the mean softmax cross-entropy
        (float) and grads a dict with the keys and shapes of params.

    Raises:
        ValueError: unknown variant, missing parameters, X not (N, C, 32, 32), channel mismatch,
            bad labels (from softmax_loss).
    """
    fast = _fast_inputs(params, X, variant)
    if fast is not None:
        return _fast_loss(*fast, variant, y)[0]
    scores, c = _forward(params, X, variant)
    if y is None:
        return scores
    act_b = relu_backward if variant == "modern" else tanh_backward
    pool_b = max_pool_backward if variant == "modern" else avg_pool_backward
    loss, d = softmax_loss(scores, y)
    grads: dict[str, np.ndarray] = {}
    d, grads["W5"], grads["b5"] = affine_backward(d, c["fc3"])
    d = act_b(d, c["act4"])
    d, grads["W4"], grads["b4"] = affine_backward(d, c["fc2"])
    d = act_b(d, c["act3"])
    d, grads["W3"], grads["b3"] = affine_backward(d, c["fc1"])
    d = flatten_backward(d, c["flat"])
    d = pool_b(d, c["pool2"])
    d = act_b(d, c["act2"])
    d, grads["W2"], grads["b2"] = conv_backward(d, c["conv2"])
    d = pool_b(d, c["pool1"])
    d = act_b(d, c["act1"])
    _, grads["W1"], grads["b1"] = conv_backward(d, c["conv1"])
    return float(loss), {k: grads[k] for k in PARAM_KEYS}


# ----------------------------------------------------------------------------- the fast path
#
# ``lenet_loss`` computes exactly what the layer-by-layer version above computes (``_forward`` and
# the backward chain), with four changes that only save time:
#
# 1. Activations stay in the batch-innermost layout (C, H, W, N) from conv1 to conv2's pooling:
#    the conv layers' matrix products produce it and the next im2col reads it, so no layer
#    transposes its input or output (the public ``conv_forward`` transposes NCHW in and out).
# 2. Modern variant: ReLU is applied after max pooling, on a 4 times smaller array.
#    max(relu(v)) == relu(max(v)), and the gradient is the same: when a window's maximum is
#    positive, the first maximum is the same element before and after the ReLU; when it is not,
#    the ReLU's gradient is zero either way.
# 3. conv1's input gradient is not computed (nothing uses it).
# 4. Inputs are validated once, here: X, then every parameter's shape and finiteness. Anything
#    unusual (other shapes, NaN, other dtypes) goes down the layer-by-layer path, whose layers
#    raise the usual errors.


def _fast_inputs(params: Any, X: Any, variant: str) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """(params, X) in one float dtype when they make the standard network, else None."""
    if variant not in LENET_VARIANTS or not isinstance(params, dict):
        return None
    X = np.asarray(X)
    if X.dtype.kind not in "biuf" or X.ndim != 4 or X.shape[0] == 0 or X.shape[2:] != (32, 32):
        return None
    try:
        p = {k: np.asarray(params[k]) for k in PARAM_KEYS}
    except KeyError:
        return None
    if any(v.dtype.kind not in "biuf" for v in p.values()):
        return None
    c1, c2 = p["W1"].shape[0] if p["W1"].ndim == 4 else -1, p["W2"].shape[0] if p["W2"].ndim == 4 else -1
    h3 = p["W3"].shape[1] if p["W3"].ndim == 2 else -1
    h4 = p["W4"].shape[1] if p["W4"].ndim == 2 else -1
    k = p["W5"].shape[1] if p["W5"].ndim == 2 else -1
    expected = {
        "W1": (c1, X.shape[1], 5, 5), "b1": (c1,), "W2": (c2, c1, 5, 5), "b2": (c2,),
        "W3": (c2 * 25, h3), "b3": (h3,), "W4": (h3, h4), "b4": (h4,), "W5": (h4, k), "b5": (k,),
    }  # fmt: skip
    if min(c1, c2, h3, h4, k) <= 0 or any(p[key].shape != shape for key, shape in expected.items()):
        return None
    # like the layers: integers count as float64, then the common float type of all the arrays
    dtype = np.result_type(*(a.dtype if a.dtype.kind == "f" else np.float64 for a in (X, *p.values())))
    X = X.astype(dtype, copy=False)
    p = {key: v.astype(dtype, copy=False) for key, v in p.items()}
    try:
        check_finite(X, "X")
        for v in p.values():
            check_finite(v, "params")
    except ValueError:
        return None
    return p, X


def _fast_loss(
    p: dict[str, np.ndarray], X: np.ndarray, variant: str, y: Any, features: bool = False
) -> tuple[Any, dict[str, np.ndarray] | None]:
    """Scores (y None) or (loss, grads), and the features when asked; see the notes above."""
    modern = variant == "modern"
    N, C = X.shape[:2]
    c1, c2 = p["W1"].shape[0], p["W2"].shape[0]
    feats: dict[str, np.ndarray] = {}

    def nchw(a: np.ndarray) -> np.ndarray:
        return _contiguous(a.transpose(3, 0, 1, 2))

    # conv1 -> act -> pool, in (C, H, W, N)
    cols1 = _cols_chwn(_contiguous(X.transpose(1, 2, 3, 0)), 5, 5, 1, 1, 28, 28)
    h1 = _conv_forward_cols(p["W1"], p["b1"], cols1).reshape(c1, 28, 28, N)
    if modern:
        z1, first1 = _max_first(_window_views(h1, 2, 2, 2, 2, 14, 14, axes=(1, 2)))
        a1 = np.maximum(z1, 0)
    else:
        t1 = np.tanh(h1)
        a1 = _avg_sum(_window_views(t1, 2, 2, 2, 2, 14, 14, axes=(1, 2)))
    if features:
        feats["conv1"] = nchw(np.maximum(h1, 0) if modern else t1)
        feats["pool1"] = nchw(a1)
    # conv2 -> act -> pool
    cols2 = _cols_chwn(a1, 5, 5, 1, 1, 10, 10)
    h2 = _conv_forward_cols(p["W2"], p["b2"], cols2).reshape(c2, 10, 10, N)
    if modern:
        z2, first2 = _max_first(_window_views(h2, 2, 2, 2, 2, 5, 5, axes=(1, 2)))
        a2 = np.maximum(z2, 0)
    else:
        t2 = np.tanh(h2)
        a2 = _avg_sum(_window_views(t2, 2, 2, 2, 2, 5, 5, axes=(1, 2)))
    if features:
        feats["conv2"] = nchw(np.maximum(h2, 0) if modern else t2)
        feats["pool2"] = nchw(a2)
    # flatten: row n of a2.reshape(c2*25, N).T is image n's (c, i, j) values, NCHW's flatten order
    flat = a2.reshape(c2 * 25, N).T
    act = (lambda v: np.maximum(v, 0)) if modern else np.tanh
    h3 = flat @ p["W3"] + p["b3"]
    a3 = act(h3)
    h4 = a3 @ p["W4"] + p["b4"]
    a4 = act(h4)
    scores = a4 @ p["W5"] + p["b5"]
    if features:
        feats.update(fc1=a3, fc2=a4, scores=scores)
    if y is None:
        return scores, feats

    loss, d = softmax_loss(scores, y)

    def act_back(dout: np.ndarray, pre: np.ndarray, post: np.ndarray) -> np.ndarray:
        return np.where(pre > 0, dout, 0) if modern else dout * (1 - post * post)

    g: dict[str, np.ndarray] = {}
    g["W5"], g["b5"], d = a4.T @ d, d.sum(axis=0), d @ p["W5"].T
    d = act_back(d, h4, a4)
    g["W4"], g["b4"], d = a3.T @ d, d.sum(axis=0), d @ p["W4"].T
    d = act_back(d, h3, a3)
    g["W3"], g["b3"], d = flat.T @ d, d.sum(axis=0), d @ p["W3"].T
    d2 = d.T.reshape(c2, 5, 5, N)
    dh2 = np.empty((c2, 10, 10, N), dtype=X.dtype)  # the 2x2 windows cover it
    if modern:
        pos = z2 > 0  # the ReLU's gradient, folded into the routing masks
        _max_scatter(d2, [m & pos for m in first2], _window_views(dh2, 2, 2, 2, 2, 5, 5, axes=(1, 2)), overlap=False)
    else:
        for view in _window_views(dh2, 2, 2, 2, 2, 5, 5, axes=(1, 2)):
            np.divide(d2, 4, out=view)
        dh2 *= 1 - t2 * t2
    da1, g["W2"], g["b2"] = _conv_backward_cols(dh2.reshape(c2, -1), cols2, p["W2"], (c1, 14, 14, N), (1, 1), (0, 0))
    dh1 = np.empty((c1, 28, 28, N), dtype=X.dtype)
    if modern:
        pos = z1 > 0
        _max_scatter(da1, [m & pos for m in first1], _window_views(dh1, 2, 2, 2, 2, 14, 14, axes=(1, 2)), overlap=False)
    else:
        for view in _window_views(dh1, 2, 2, 2, 2, 14, 14, axes=(1, 2)):
            np.divide(da1, 4, out=view)
        dh1 *= 1 - t1 * t1
    _, g["W1"], g["b1"] = _conv_backward_cols(
        dh1.reshape(c1, -1), cols1, p["W1"], (C, 32, 32, N), (1, 1), (0, 0), need_dx=False
    )
    return (float(loss), {k: g[k] for k in PARAM_KEYS}), None
