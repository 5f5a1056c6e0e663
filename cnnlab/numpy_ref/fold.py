"""Folding a test-time batch norm into the convolution or fully connected layer before it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import as_float_array, check_finite

__all__ = ["fold_batchnorm"]


def fold_batchnorm(
    w: np.ndarray,
    b: np.ndarray | None,
    gamma: np.ndarray,
    beta: np.ndarray,
    running_mean: np.ndarray,
    running_var: np.ndarray,
    eps: float = 1e-5,
) -> tuple[np.ndarray, np.ndarray]:
    """Merge a test-mode batch norm into the preceding layer's weights and bias.

    At test time BN is the affine map ``y = s * (z - running_mean) + beta`` with
    ``s = gamma / sqrt(running_var + eps)``, so a layer ``z = w x + b`` followed by BN equals one layer
    with ``w' = s * w`` (per output channel) and ``b' = s * (b - running_mean) + beta``.

    Args:
        w: conv weights (F, C, KH, KW) (BN over the F output channels) or FC weights (D, M)
            (``out = x @ w + b``, BN over the M outputs).
        b: (F,) or (M,) bias, or None for a layer without bias.
        gamma, beta, running_mean, running_var: (F,) or (M,) batch-norm parameters and statistics.
        eps: the batch norm's epsilon.

    Returns:
        w_folded: same shape as w; b_folded: (F,) or (M,).
    """
    w = as_float_array(w, "w")
    if w.ndim == 4:
        n_out, layer = w.shape[0], "conv"
    elif w.ndim == 2:
        n_out, layer = w.shape[1], "FC"
    else:
        raise ValueError(f"w must be 4-D conv weights (F, C, KH, KW) or 2-D FC weights (D, M), got ndim={w.ndim} with shape {w.shape}")
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a finite non-negative number, got {eps!r}")
    b = np.zeros(n_out, dtype=w.dtype) if b is None else as_float_array(b, "b")
    arrays: dict[str, Any] = {"b": b, "gamma": gamma, "beta": beta, "running_mean": running_mean, "running_var": running_var}
    for name in arrays:
        arr = as_float_array(arrays[name], name)
        if arr.shape != (n_out,):
            raise ValueError(f"{name} has shape {arr.shape} but the {layer} layer has {n_out} outputs, so it must be ({n_out},)")
        check_finite(arr, name)
        arrays[name] = arr
    check_finite(w, "w")
    if (arrays["running_var"] + eps <= 0).any():
        raise ValueError("running_var + eps must be positive")
    scale = arrays["gamma"] / np.sqrt(arrays["running_var"] + eps)
    dtype = np.result_type(w.dtype, *(a.dtype for a in arrays.values()))
    if layer == "conv":
        w_folded = w * scale[:, None, None, None]
    else:
        w_folded = w * scale[None, :]
    b_folded = scale * (arrays["b"] - arrays["running_mean"]) + arrays["beta"]
    return w_folded.astype(dtype, copy=False), b_folded.astype(dtype, copy=False)
