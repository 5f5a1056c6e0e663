"""Single-channel 2-D cross-correlation and true convolution (valid mode)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import as_float_array, check_finite, check_ndim

__all__ = ["corr2d", "conv2d_true"]


def _check_2d_pair(x: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = as_float_array(x, "x")
    k = as_float_array(k, "k")
    check_ndim(x, 2, "x", "(H, W)")
    check_ndim(k, 2, "k", "(KH, KW)")
    if k.shape[0] == 0 or k.shape[1] == 0 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"x and k must be non-empty, got x {x.shape} and k {k.shape}")
    if k.shape[0] > x.shape[0] or k.shape[1] > x.shape[1]:
        raise ValueError(f"kernel is larger than the input: k has shape {k.shape}, x has shape {x.shape}")
    check_finite(x, "x")
    check_finite(k, "k")
    return x, k


def corr2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Compute the valid 2-D cross-correlation of one image with one kernel (what deep learning calls convolution).

    ``out[i, j] = sum_{a, b} x[i + a, j + b] * k[a, b]``.

    Args:
        x: (H, W) image.
        k: (KH, KW) kernel, no larger than the image.

    Returns:
        (H - KH + 1, W - KW + 1) array in the common floating dtype of x and k.
    """
    x, k = _check_2d_pair(x, k)
    windows = sliding_window_view(x, k.shape)  # (H', W', KH, KW), a view
    return np.tensordot(windows, k, axes=([2, 3], [0, 1]))


def conv2d_true(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Compute the valid 2-D convolution in the signal-processing sense: cross-correlation with the flipped kernel.

    ``out[i, j] = sum_{a, b} x[i + a, j + b] * k[KH - 1 - a, KW - 1 - b]``; unlike cross-correlation it is
    associative and commutative (in full mode).

    Args:
        x: (H, W) image.
        k: (KH, KW) kernel, no larger than the image.

    Returns:
        (H - KH + 1, W - KW + 1) array.
    """
    x, k = _check_2d_pair(x, k)
    return corr2d(x, k[::-1, ::-1])
