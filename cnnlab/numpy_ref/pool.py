"""Max, average and global average pooling on NCHW batches, with their backward passes.

Each channel of each image is pooled independently; pooling has no parameters. Window size and
stride accept an int or an (h, w) pair. Like the course's convolution, pooling is strict: when the
windows do not tile the input exactly ((H - KH) % stride != 0) a ValueError names H, KH and stride.
No padding (it is rare for pooling).

Max-pool ties: the gradient goes to the FIRST maximum of each window in row-major order (top row
first, then left to right), which is the element PyTorch's CPU kernel selects; overlapping windows
add their contributions.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._validate import as_float_array, as_pair, check_finite, check_ndim, check_shape, strict_output_size

__all__ = [
    "max_pool_forward",
    "max_pool_backward",
    "avg_pool_forward",
    "avg_pool_backward",
    "global_avg_pool_forward",
    "global_avg_pool_backward",
]

Cache = dict[str, Any]


def _check_pool_args(x: Any, size: Any, stride: Any) -> tuple[np.ndarray, tuple[int, int], tuple[int, int], tuple[int, int]]:
    x = as_float_array(x, "x")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    if min(x.shape) == 0:
        raise ValueError(f"x must be non-empty, got shape {x.shape}")
    kh, kw = as_pair(size, "size", minimum=1)
    if stride is None:
        stride = (kh, kw)
    sh, sw = as_pair(stride, "stride", minimum=1)
    H, W = x.shape[2:]
    Ho = strict_output_size(H, kh, 0, sh, "H", what="pool window")
    Wo = strict_output_size(W, kw, 0, sw, "W", what="pool window")
    check_finite(x, "x")
    return x, (kh, kw), (sh, sw), (Ho, Wo)


def _windows(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """View of every pooling window: (N, C, Ho, Wo, kh, kw)."""
    return sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def _check_dout(dout: Any, cache: Cache) -> np.ndarray:
    if not isinstance(cache, dict) or "x_shape" not in cache:
        raise ValueError("cache must be the dict returned by the matching pooling forward function")
    dout = as_float_array(dout, "dout")
    check_ndim(dout, len(cache["out_shape"]), "dout")
    check_shape(dout, cache["out_shape"], "dout")
    check_finite(dout, "dout")
    return dout.astype(cache["dtype"], copy=False)


def max_pool_forward(x: np.ndarray, size: Any = 2, stride: Any = 2) -> tuple[np.ndarray, Cache]:
    """Take the maximum of each size x size window of every channel.

    Args:
        x: (N, C, H, W) batch.
        size: int or (kh, kw) window size.
        stride: int or (sh, sw) step between windows; None means ``size``.

    Returns:
        out: (N, C, (H - kh) / sh + 1, (W - kw) / sw + 1).
        cache: dict for ``max_pool_backward`` (holds the position of each window's first maximum).
    """
    x, (kh, kw), (sh, sw), (Ho, Wo) = _check_pool_args(x, size, stride)
    N, C = x.shape[:2]
    win = _windows(x, kh, kw, sh, sw).reshape(N, C, Ho, Wo, kh * kw)  # copies: windows may overlap
    arg = win.argmax(axis=-1)  # first maximum in row-major order
    out = np.take_along_axis(win, arg[..., None], axis=-1)[..., 0]
    cache = {"x_shape": x.shape, "out_shape": out.shape, "dtype": x.dtype, "size": (kh, kw), "stride": (sh, sw), "argmax": arg}
    return out, cache


def max_pool_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Route each output's gradient to the input element that was the window's (first) maximum.

    Args:
        dout: (N, C, Ho, Wo) upstream gradient.
        cache: from ``max_pool_forward``.

    Returns:
        dx: (N, C, H, W); zero everywhere except at the selected maxima (summed over overlapping windows).
    """
    dout = _check_dout(dout, cache)
    (kh, kw), (sh, sw), arg = cache["size"], cache["stride"], cache["argmax"]
    Ho, Wo = dout.shape[2:]
    dx = np.zeros(cache["x_shape"], dtype=cache["dtype"])
    for a in range(kh):
        for d in range(kw):
            dx[:, :, a : a + sh * Ho : sh, d : d + sw * Wo : sw] += np.where(arg == a * kw + d, dout, 0)
    return dx


def avg_pool_forward(x: np.ndarray, size: Any = 2, stride: Any = 2) -> tuple[np.ndarray, Cache]:
    """Average each size x size window of every channel.

    Args:
        x: (N, C, H, W) batch.
        size: int or (kh, kw) window size.
        stride: int or (sh, sw) step between windows; None means ``size``.

    Returns:
        out: (N, C, (H - kh) / sh + 1, (W - kw) / sw + 1).
        cache: dict for ``avg_pool_backward``.
    """
    x, (kh, kw), (sh, sw), (Ho, Wo) = _check_pool_args(x, size, stride)
    out = _windows(x, kh, kw, sh, sw).mean(axis=(-2, -1))
    cache = {"x_shape": x.shape, "out_shape": out.shape, "dtype": x.dtype, "size": (kh, kw), "stride": (sh, sw)}
    return out, cache


def avg_pool_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Spread each output's gradient evenly over its window (each of the kh*kw inputs gets 1/(kh*kw)).

    Args:
        dout: (N, C, Ho, Wo) upstream gradient.
        cache: from ``avg_pool_forward``.

    Returns:
        dx: (N, C, H, W).
    """
    dout = _check_dout(dout, cache)
    (kh, kw), (sh, sw) = cache["size"], cache["stride"]
    Ho, Wo = dout.shape[2:]
    share = dout / (kh * kw)
    dx = np.zeros(cache["x_shape"], dtype=cache["dtype"])
    for a in range(kh):
        for d in range(kw):
            dx[:, :, a : a + sh * Ho : sh, d : d + sw * Wo : sw] += share
    return dx


def global_avg_pool_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Average every channel over its whole H x W map (one number per channel).

    Args:
        x: (N, C, H, W) batch.

    Returns:
        out: (N, C).
        cache: dict for ``global_avg_pool_backward``.
    """
    x = as_float_array(x, "x")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    if min(x.shape) == 0:
        raise ValueError(f"x must be non-empty, got shape {x.shape}")
    check_finite(x, "x")
    out = x.mean(axis=(2, 3))
    return out, {"x_shape": x.shape, "out_shape": out.shape, "dtype": x.dtype}


def global_avg_pool_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Spread each (n, c) gradient evenly over the H*W positions of that channel.

    Args:
        dout: (N, C) upstream gradient.
        cache: from ``global_avg_pool_forward``.

    Returns:
        dx: (N, C, H, W).
    """
    dout = _check_dout(dout, cache)
    N, C, H, W = cache["x_shape"]
    return np.broadcast_to((dout / (H * W))[:, :, None, None], (N, C, H, W)).copy()
