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


def _window_views(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, Ho: int, Wo: int, axes: tuple[int, int] = (2, 3)) -> list[np.ndarray]:
    """The kh*kw strided views ``x[..., a::sh, d::sw]`` (Ho by Wo positions), in row-major window order.

    View ``a*kw + d`` holds, for every window, its element at offset (a, d): an elementwise operation
    on these views treats every window at once, without copying x. ``axes`` are the H and W axes
    ((2, 3) for NCHW, (1, 2) for the batch-innermost (C, H, W, N) layout of ``cnnlab.numpy_ref.lenet``).
    """
    views = []
    for a in range(kh):
        for d in range(kw):
            index = [slice(None)] * x.ndim
            index[axes[0]] = slice(a, a + sh * (Ho - 1) + 1, sh)
            index[axes[1]] = slice(d, d + sw * (Wo - 1) + 1, sw)
            views.append(x[tuple(index)])
    return views


def _max_first(views: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Element-wise maximum over the window views, and for each view a mask of where it holds the FIRST maximum.

    Ties go to the first maximum in row-major window order (``argmax``'s rule and PyTorch's): a
    view's mask is where it equals the maximum and no earlier view did. Exactly one mask is true
    at every output position.
    """
    out = np.array(views[0], order="C")
    for view in views[1:]:
        np.maximum(out, view, out=out)
    masks = [np.equal(views[0], out)]
    found = masks[0].copy()
    for view in views[1:]:
        mask = np.equal(view, out)
        mask &= ~found
        found |= mask
        masks.append(mask)
    return out, masks


def _max_scatter(dout: np.ndarray, masks: list[np.ndarray], dx_views: list[np.ndarray], overlap: bool = True) -> None:
    """Route each window's gradient to the view of dx that held its first maximum.

    ``overlap=False`` (windows that share no element) writes instead of adding, so dx may be
    uninitialised where windows cover it.
    """
    for mask, view in zip(masks, dx_views):
        if overlap:
            view += dout * mask
        else:
            np.multiply(dout, mask, out=view)


def _avg_sum(views: list[np.ndarray]) -> np.ndarray:
    """Mean over the window views (summed in row-major window order)."""
    out = np.array(views[0], order="C")
    for view in views[1:]:
        out += view
    out /= len(views)
    return out


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
        cache: dict for ``max_pool_backward`` (holds where each window's first maximum was).
    """
    x, (kh, kw), (sh, sw), (Ho, Wo) = _check_pool_args(x, size, stride)
    out, masks = _max_first(_window_views(x, kh, kw, sh, sw, Ho, Wo))
    cache = {"x_shape": x.shape, "out_shape": out.shape, "dtype": x.dtype, "size": (kh, kw), "stride": (sh, sw), "first_max": masks}
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
    (kh, kw), (sh, sw), masks = cache["size"], cache["stride"], cache["first_max"]
    Ho, Wo = dout.shape[2:]
    tiled = (sh, sw) == (kh, kw)  # windows tile x exactly (the strict sizes guarantee the edges)
    dx = (np.empty if tiled else np.zeros)(cache["x_shape"], dtype=cache["dtype"])
    _max_scatter(dout, masks, _window_views(dx, kh, kw, sh, sw, Ho, Wo), overlap=sh < kh or sw < kw)
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
    out = _avg_sum(_window_views(x, kh, kw, sh, sw, Ho, Wo))
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
    for view in _window_views(dx, kh, kw, sh, sw, Ho, Wo):
        view += share
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
