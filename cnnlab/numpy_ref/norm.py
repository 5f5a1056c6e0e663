"""Normalisation layers: batch norm (FC and spatial), layer norm, group norm and instance norm.

All of them compute ``xhat = (x - mean) / sqrt(var + eps)`` over some axes and then
``out = gamma * xhat + beta`` with one gamma and beta per feature (per channel for images); they
differ only in the axes the statistics are taken over:

- batch norm, x (N, D): per feature, over the batch N;
- spatial batch norm, x (N, C, H, W): per channel, over N, H and W;
- layer norm, x (N, D): per sample, over D;
- group norm, x (N, C, H, W): per sample and group of C/G channels, over those channels and H, W;
  instance norm is group norm with G = C.

The variance used to normalise is the biased one (divide by the count m). Batch norm follows
PyTorch's conventions for its running statistics (``torch.nn.BatchNorm1d/2d``):
``running = (1 - momentum) * running + momentum * batch_statistic`` with momentum 0.1, the running
variance is updated with the UNBIASED batch variance (divide by m - 1), and they start at
mean 0, variance 1. Note that CS231n's assignment uses the opposite momentum convention
(``momentum * running + (1 - momentum) * batch`` with momentum 0.9) and the biased variance.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import as_float_array, check_finite, check_ndim, check_shape

__all__ = [
    "batchnorm_forward",
    "batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_batchnorm_backward",
    "layernorm_forward",
    "layernorm_backward",
    "groupnorm_forward",
    "groupnorm_backward",
    "instancenorm_forward",
    "instancenorm_backward",
]

Cache = dict[str, Any]


# --------------------------------------------------------------------------- shared maths
def _normalize(x: np.ndarray, axis: tuple[int, ...], eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return xhat, mean, biased var and 1/sqrt(var + eps), statistics taken over ``axis`` (kept as size-1 axes)."""
    mean = x.mean(axis=axis, keepdims=True)
    xc = x - mean
    var = (xc * xc).mean(axis=axis, keepdims=True)
    inv_std = 1.0 / np.sqrt(var + eps)
    return xc * inv_std, mean, var, inv_std


def _normalize_backward(dxhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """Gradient through xhat = (x - mean(x)) / sqrt(var(x) + eps) with statistics over ``axis``.

    dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), means over ``axis``.
    """
    mean_d = dxhat.mean(axis=axis, keepdims=True)
    mean_dx = (dxhat * xhat).mean(axis=axis, keepdims=True)
    return inv_std * (dxhat - mean_d - xhat * mean_dx)


def _check_eps(eps: float) -> float:
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite non-negative number, got {eps!r}")
    return float(eps)


def _check_affine_params(gamma: Any, beta: Any, shape: tuple[int, ...], what: str) -> tuple[np.ndarray, np.ndarray]:
    gamma = as_float_array(gamma, "gamma")
    beta = as_float_array(beta, "beta")
    if gamma.shape != shape:
        raise ValueError(f"gamma has shape {gamma.shape} but x has {what}, so gamma must be {shape}")
    if beta.shape != shape:
        raise ValueError(f"beta has shape {beta.shape} but x has {what}, so beta must be {shape}")
    check_finite(gamma, "gamma")
    check_finite(beta, "beta")
    return gamma, beta


def _check_dout(dout: Any, cache: Cache, name: str) -> np.ndarray:
    if not isinstance(cache, dict) or cache.get("kind") != name:
        got = f" (got the cache of {cache['kind']}_forward)" if isinstance(cache, dict) and "kind" in cache else ""
        raise ValueError(f"cache must be the dict returned by {name}_forward{got}")
    dout = as_float_array(dout, "dout")
    check_shape(dout, cache["x_shape"], "dout")
    check_finite(dout, "dout")
    return dout.astype(cache["dtype"], copy=False)


# --------------------------------------------------------------------------- batch norm
def batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]) -> tuple[np.ndarray, Cache]:
    """Normalise each feature over the batch, then scale and shift (batch normalisation for FC layers).

    Train mode uses the batch's mean and biased variance and updates the running statistics in
    ``bn_param`` the PyTorch way: ``running_mean = (1 - m) * running_mean + m * mean`` and
    ``running_var = (1 - m) * running_var + m * var * N / (N - 1)`` (unbiased), m = momentum = 0.1.
    Test mode normalises with the running statistics and changes nothing.

    Args:
        x: (N, D) batch of feature vectors.
        gamma: (D,) scale; beta: (D,) shift.
        bn_param: dict with "mode" ("train" or "test", required), "eps" (default 1e-5),
            "momentum" (default 0.1), "running_mean" (D,) (default zeros) and "running_var" (D,)
            (default ones). The running statistics are (re)assigned in this dict in train mode.

    Returns:
        out: (N, D).
        cache: dict for ``batchnorm_backward``.
    """
    x = as_float_array(x, "x")
    check_ndim(x, 2, "x", "(N, D)")
    return _batchnorm(x, gamma, beta, bn_param, axis=(0,), kind="batchnorm")


def _batchnorm(x: np.ndarray, gamma: Any, beta: Any, bn_param: dict[str, Any], axis: tuple[int, ...], kind: str) -> tuple[np.ndarray, Cache]:
    if not isinstance(bn_param, dict):
        raise ValueError(f"bn_param must be a dict with a 'mode' key, got {type(bn_param).__name__}")
    mode = bn_param.get("mode")
    if mode not in ("train", "test"):
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    eps = _check_eps(bn_param.get("eps", 1e-5))
    momentum = bn_param.get("momentum", 0.1)
    if not (0.0 <= momentum <= 1.0):
        raise ValueError(f"bn_param['momentum'] must be in [0, 1], got {momentum!r}")
    D = x.shape[1]
    what = f"D={D} features" if x.ndim == 2 else f"C={D} channels"
    gamma, beta = _check_affine_params(gamma, beta, (D,), what)
    check_finite(x, "x")
    dtype = np.result_type(x.dtype, gamma.dtype, beta.dtype)
    x = x.astype(dtype, copy=False)
    shape = [1] * x.ndim
    shape[1] = D
    rm = as_float_array(bn_param.get("running_mean", np.zeros(D, dtype=dtype)), "running_mean")
    rv = as_float_array(bn_param.get("running_var", np.ones(D, dtype=dtype)), "running_var")
    check_shape(rm, (D,), "running_mean")
    check_shape(rv, (D,), "running_var")
    g, bt = gamma.reshape(shape), beta.reshape(shape)
    cache: Cache = {"kind": kind, "x_shape": x.shape, "dtype": dtype, "mode": mode, "axis": axis, "gamma": g}
    if mode == "train":
        m = x.size // D
        if m < 2:
            raise ValueError(f"batch norm in train mode needs more than 1 value per feature, got {m} (x shape {x.shape})")
        xhat, mean, var, inv_std = _normalize(x, axis, eps)
        bn_param["running_mean"] = ((1 - momentum) * rm + momentum * mean.reshape(D)).astype(dtype)
        bn_param["running_var"] = ((1 - momentum) * rv + momentum * var.reshape(D) * (m / (m - 1))).astype(dtype)
        cache.update(xhat=xhat, inv_std=inv_std)
    else:
        check_finite(rm, "running_mean")
        check_finite(rv, "running_var")
        inv_std = (1.0 / np.sqrt(rv.astype(dtype) + eps)).reshape(shape)
        xhat = (x - rm.astype(dtype).reshape(shape)) * inv_std
        cache.update(xhat=xhat, inv_std=inv_std)
    out = g * xhat + bt
    return out, cache


def _batchnorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axis, xhat, inv_std, g = cache["axis"], cache["xhat"], cache["inv_std"], cache["gamma"]
    dgamma = (dout * xhat).sum(axis=axis)
    dbeta = dout.sum(axis=axis)
    dxhat = dout * g
    if cache["mode"] == "train":
        dx = _normalize_backward(dxhat, xhat, inv_std, axis)
    else:  # the running statistics are constants: batch norm is an affine map at test time
        dx = dxhat * inv_std
    return dx, dgamma, dbeta


def batchnorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of batch normalisation (train mode: through the batch statistics too).

    Args:
        dout: (N, D) upstream gradient.
        cache: from ``batchnorm_forward``.

    Returns:
        dx: (N, D), dgamma: (D,), dbeta: (D,).
    """
    return _batchnorm_backward(_check_dout(dout, cache, "batchnorm"), cache)


def spatial_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]) -> tuple[np.ndarray, Cache]:
    """Batch-normalise each channel over the batch and all positions (batch norm for conv layers).

    Same conventions as ``batchnorm_forward`` (PyTorch's BatchNorm2d): the count for the unbiased
    running variance is m = N * H * W.

    Args:
        x: (N, C, H, W) batch.
        gamma: (C,) scale; beta: (C,) shift.
        bn_param: as for ``batchnorm_forward`` with (C,) running statistics.

    Returns:
        out: (N, C, H, W).
        cache: dict for ``spatial_batchnorm_backward``.
    """
    x = as_float_array(x, "x")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    return _batchnorm(x, gamma, beta, bn_param, axis=(0, 2, 3), kind="spatial_batchnorm")


def spatial_batchnorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of spatial batch normalisation.

    Args:
        dout: (N, C, H, W) upstream gradient.
        cache: from ``spatial_batchnorm_forward``.

    Returns:
        dx: (N, C, H, W), dgamma: (C,), dbeta: (C,).
    """
    return _batchnorm_backward(_check_dout(dout, cache, "spatial_batchnorm"), cache)


# --------------------------------------------------------------------------- layer norm
def layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, Cache]:
    """Normalise each sample over its features, then scale and shift per feature (same in train and test).

    Args:
        x: (N, D) batch (or (N, d1, ..., dk): each sample is normalised over all its entries).
        gamma: (D,) scale (x.shape[1:] in general); beta: likewise.
        eps: added to the variance.

    Returns:
        out: same shape as x.
        cache: dict for ``layernorm_backward``.
    """
    x = as_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must be at least 2-D (N, D), got ndim={x.ndim} with shape {x.shape}")
    eps = _check_eps(eps)
    gamma, beta = _check_affine_params(gamma, beta, x.shape[1:], f"feature shape {x.shape[1:]}")
    check_finite(x, "x")
    dtype = np.result_type(x.dtype, gamma.dtype, beta.dtype)
    x = x.astype(dtype, copy=False)
    axis = tuple(range(1, x.ndim))
    xhat, _, _, inv_std = _normalize(x, axis, eps)
    out = gamma * xhat + beta
    cache = {"kind": "layernorm", "x_shape": x.shape, "dtype": dtype, "axis": axis, "xhat": xhat, "inv_std": inv_std, "gamma": gamma}
    return out, cache


def layernorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of layer normalisation.

    Args:
        dout: (N, D) upstream gradient.
        cache: from ``layernorm_forward``.

    Returns:
        dx: (N, D), dgamma: (D,), dbeta: (D,).
    """
    dout = _check_dout(dout, cache, "layernorm")
    xhat, inv_std, gamma, axis = cache["xhat"], cache["inv_std"], cache["gamma"], cache["axis"]
    dgamma = (dout * xhat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx = _normalize_backward(dout * gamma, xhat, inv_std, axis)
    return dx, dgamma, dbeta


# --------------------------------------------------------------------------- group / instance norm
def groupnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, eps: float = 1e-5) -> tuple[np.ndarray, Cache]:
    """Normalise each sample's groups of C/G channels over those channels and all positions, then scale and shift per channel.

    G = 1 normalises each sample over everything (layer norm on images); G = C is instance norm.

    Args:
        x: (N, C, H, W) batch.
        gamma: (C,) scale; beta: (C,) shift (per channel, not per group).
        G: number of groups; must divide C.
        eps: added to the variance.

    Returns:
        out: (N, C, H, W).
        cache: dict for ``groupnorm_backward``.
    """
    x = as_float_array(x, "x")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    N, C, H, W = x.shape
    if isinstance(G, bool) or not isinstance(G, (int, np.integer)) or G < 1:
        raise ValueError(f"G (the number of groups) must be a positive integer, got {G!r}")
    if C % G != 0:
        raise ValueError(f"G={G} groups do not divide C={C} channels")
    eps = _check_eps(eps)
    gamma, beta = _check_affine_params(gamma, beta, (C,), f"C={C} channels")
    check_finite(x, "x")
    dtype = np.result_type(x.dtype, gamma.dtype, beta.dtype)
    xg = x.astype(dtype, copy=False).reshape(N, G, C // G * H * W)
    xhat, _, _, inv_std = _normalize(xg, (2,), eps)
    xhat = xhat.reshape(N, C, H, W)
    g = gamma.reshape(1, C, 1, 1)
    out = g * xhat + beta.reshape(1, C, 1, 1)
    cache = {"kind": "groupnorm", "x_shape": x.shape, "dtype": dtype, "G": int(G), "xhat": xhat, "inv_std": inv_std, "gamma": g}
    return out, cache


def groupnorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of group normalisation (and of instance normalisation).

    Args:
        dout: (N, C, H, W) upstream gradient.
        cache: from ``groupnorm_forward`` or ``instancenorm_forward``.

    Returns:
        dx: (N, C, H, W), dgamma: (C,), dbeta: (C,).
    """
    dout = _check_dout(dout, cache, "groupnorm")
    N, C, H, W = cache["x_shape"]
    G, xhat, inv_std, g = cache["G"], cache["xhat"], cache["inv_std"], cache["gamma"]
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    dbeta = dout.sum(axis=(0, 2, 3))
    dxhat = (dout * g).reshape(N, G, -1)
    dx = _normalize_backward(dxhat, xhat.reshape(N, G, -1), inv_std, (2,)).reshape(N, C, H, W)
    return dx, dgamma, dbeta


def instancenorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, Cache]:
    """Normalise each channel of each image over its H x W positions (group norm with G = C).

    Args:
        x: (N, C, H, W) batch.
        gamma: (C,) scale; beta: (C,) shift.
        eps: added to the variance.

    Returns:
        out: (N, C, H, W).
        cache: dict for ``instancenorm_backward`` (or ``groupnorm_backward``).
    """
    x = as_float_array(x, "x")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    return groupnorm_forward(x, gamma, beta, x.shape[1], eps)


def instancenorm_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of instance normalisation: dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    return groupnorm_backward(dout, cache)
