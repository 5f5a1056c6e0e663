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

from .conv import conv_backward, conv_forward
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
from .pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward

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
