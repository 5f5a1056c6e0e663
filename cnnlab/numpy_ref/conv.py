"""Convolution layer (cross-correlation) on NCHW batches: a loop version, a vectorised one, and the backward pass.

Shapes: x (N, C, H, W), w (F, C, KH, KW), b (F,), out (N, F, H', W') with
``H' = (H + 2*ph - KH) / sh + 1`` and the same along W. The course's convolution is strict: when the
windows do not tile the padded input exactly, a ValueError names H, KH, pad and stride.

The vectorised forward pass is "im2col": ``sliding_window_view`` gives every window without
copying, one copy lays them out as a (C*KH*KW, H'*W'*N) matrix, and a single matrix product with
the (F, C*KH*KW) weight matrix computes every output at once. The backward pass reuses that matrix
for ``dw`` and scatters ``dx`` back with one slice-add per kernel offset ("col2im").

Speed, with the same results: the products go in blocks of columns (cache-sized when the inner
dimension is short, as in LeNet's first layer) and, like the copies, are shared out over the CPU
cores by ``_parallel`` (plain threads: NumPy releases the GIL inside them). ``cnnlab.numpy_ref.lenet``
calls the private ``_cols_chwn`` / ``_conv_forward_cols`` / ``_conv_backward_cols`` directly to
keep its activations in the (C, H, W, N) layout between layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import _parallel
from ._validate import as_float_array, as_pair, check_finite, check_ndim, check_shape, strict_output_size

__all__ = ["conv_forward_naive", "conv_forward", "conv_backward", "conv_backward_naive"]

Cache = dict[str, Any]


def _check_conv_args(
    x: Any, w: Any, b: Any, stride: Any, pad: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int], tuple[int, int], tuple[int, int]]:
    """Validate conv inputs; return arrays in a common float dtype, stride, pad and output (H', W')."""
    x = as_float_array(x, "x")
    w = as_float_array(w, "w")
    b = as_float_array(b, "b")
    check_ndim(x, 4, "x", "(N, C, H, W)")
    check_ndim(w, 4, "w", "(F, C, KH, KW)")
    N, C, H, W = x.shape
    F, Cw, KH, KW = w.shape
    if Cw != C:
        raise ValueError(f"channel mismatch: x has C={C} channels but w expects {Cw} (w shape {w.shape})")
    if b.shape != (F,):
        raise ValueError(f"bias shape mismatch: b has shape {b.shape} but w has F={F} filters, so b must be ({F},)")
    if min(x.shape) == 0 or min(w.shape) == 0:
        raise ValueError(f"x and w must be non-empty, got x {x.shape} and w {w.shape}")
    sh, sw = as_pair(stride, "stride", minimum=1)
    ph, pw = as_pair(pad, "pad", minimum=0)
    Ho = strict_output_size(H, KH, ph, sh, "H")
    Wo = strict_output_size(W, KW, pw, sw, "W")
    check_finite(x, "x")
    check_finite(w, "w")
    check_finite(b, "b")
    dtype = np.result_type(x.dtype, w.dtype, b.dtype)
    return x.astype(dtype, copy=False), w.astype(dtype, copy=False), b.astype(dtype, copy=False), (sh, sw), (ph, pw), (Ho, Wo)


def _zero_pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    if ph == 0 and pw == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv_forward_naive(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: Any = 1, pad: Any = 0) -> tuple[np.ndarray, Cache]:
    """Compute a convolution layer's output with explicit loops (readable, slow).

    ``out[n, f, i, j] = b[f] + sum_{c, a, d} xp[n, c, i*sh + a, j*sw + d] * w[f, c, a, d]``
    where ``xp`` is x zero-padded by (ph, pw).

    Args:
        x: (N, C, H, W) batch of images.
        w: (F, C, KH, KW) filters.
        b: (F,) one bias per filter.
        stride: int or (sh, sw); at least 1.
        pad: int or (ph, pw) zero padding on each side; non-negative.

    Returns:
        out: (N, F, H', W').
        cache: dict for ``conv_backward`` (same format as ``conv_forward``'s, without the column matrix).
    """
    x, w, b, (sh, sw), (ph, pw), (Ho, Wo) = _check_conv_args(x, w, b, stride, pad)
    N = x.shape[0]
    F, _, KH, KW = w.shape
    xp = _zero_pad(x, ph, pw)
    out = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * sh : i * sh + KH, j * sw : j * sw + KW]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    cache = {"x": x, "w": w, "b": b, "stride": (sh, sw), "pad": (ph, pw)}
    return out, cache


def _copy(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """``dst[...] = src`` (same shape), split along axis 0 or 1 over the threads; returns dst.

    Used for the transposing copies between NCHW and the (C, H, W, N) layout.
    """
    n = _parallel.threads()
    axis = next((i for i, size in enumerate(dst.shape[:2]) if size >= n), None)
    if n == 1 or axis is None or dst.size < 65536:
        np.copyto(dst, src)
        return dst
    step = -(-dst.shape[axis] // n)
    parts = [(slice(None),) * axis + (slice(s, s + step),) for s in range(0, dst.shape[axis], step)]
    _parallel.run([lambda i=i: np.copyto(dst[i], src[i]) for i in parts])
    return dst


def _contiguous(a: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of a (transposed) view, or a itself when it already is one."""
    return a if a.flags.c_contiguous else _copy(np.empty(a.shape, dtype=a.dtype), a)


def _pad_chwn(xt: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Copy xt (C, H, W, N), any strides, into a C-contiguous, zero-padded (C, H + 2*ph, W + 2*pw, N) array.

    ``_pad_chwn(x.transpose(1, 2, 3, 0), ph, pw)`` turns an NCHW batch into this layout in one copy.
    Without padding a C-contiguous xt is returned as it is.
    """
    if ph == 0 and pw == 0:
        return _contiguous(xt)
    C, H, W, N = xt.shape
    xp = np.zeros((C, H + 2 * ph, W + 2 * pw, N), dtype=xt.dtype)
    _copy(xp[:, ph : ph + H, pw : pw + W, :], xt)
    return xp


# Large operations go in blocks, one task each for ``_parallel.run`` (on one thread they run in turn).
# A matrix product with a short inner dimension (conv1: C*KH*KW = 25) runs 2-3 times faster when
# each block's (C*KH*KW, width) panel of the column matrix fits in the core's cache.
_PANEL_BYTES = 512 * 1024
_SHORT = 64  # inner dimensions below this get cache-sized blocks


def _col_blocks(m: int, k: int, itemsize: int, rows: int = 1) -> list[slice]:
    """Blocks of the m columns of a (k, m) matrix: one per thread, and cache-sized when k is short.

    ``rows``: rows of the product's result; a tall result (many rows) gains nothing from small blocks.
    """
    count = _parallel.threads()
    if k < _SHORT and rows < _SHORT:
        count = max(count, -(-m * k * itemsize // _PANEL_BYTES))
    width = max(1, -(-m // count))
    return [slice(s, min(s + width, m)) for s in range(0, m, width)]


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a (f, k) and a wide b (k, m), block of columns by block of columns."""
    blocks = _col_blocks(b.shape[1], b.shape[0], b.itemsize, rows=a.shape[0])
    if len(blocks) == 1:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.result_type(a, b))
    _parallel.run([lambda s=s: np.matmul(a, b[:, s], out=out[:, s]) for s in blocks])
    return out


def _matmul_nt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b.T`` for wide a (f, m) and b (k, m): partial products over blocks of m, summed in order."""
    k = b.shape[0]
    blocks = _col_blocks(b.shape[1], k, b.itemsize)
    if k < _SHORT:
        parts = _parallel.run([lambda s=s: a[:, s] @ b[:, s].T for s in blocks])
    else:  # (b @ a.T).T: OpenBLAS is faster with the long operand first
        parts = _parallel.run([lambda s=s: b[:, s] @ a[:, s].T for s in blocks])
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total if k < _SHORT else np.ascontiguousarray(total.T)


def _cols_chwn(xp: np.ndarray, KH: int, KW: int, sh: int, sw: int, Ho: int, Wo: int) -> np.ndarray:
    """Lay out every window of a padded (C, Hp, Wp, N) array as columns: (C*KH*KW, Ho*Wo*N), C-contiguous.

    Row ``(c, a, d)`` and column ``(i, j, n)`` hold ``xp[c, i*sh + a, j*sw + d, n]``. With the batch
    innermost, this copy (and the col2im scatter in the backward pass) moves long contiguous runs.
    """
    C, N = xp.shape[0], xp.shape[3]
    win = sliding_window_view(xp, (KH, KW), axis=(1, 2))[:, ::sh, ::sw]  # (C, Ho, Wo, N, KH, KW) view
    win = win.transpose(0, 4, 5, 1, 2, 3)  # (C, KH, KW, Ho, Wo, N) view
    cols = np.empty(win.shape, dtype=xp.dtype)
    if _parallel.threads() == 1:
        np.copyto(cols, win)
    else:
        _parallel.run([lambda c=c, a=a: np.copyto(cols[c, a], win[c, a]) for c in range(C) for a in range(KH)])
    return cols.reshape(C * KH * KW, Ho * Wo * N)


def _im2col(x: np.ndarray, KH: int, KW: int, sh: int, sw: int, ph: int, pw: int, Ho: int, Wo: int) -> np.ndarray:
    """Lay out every window of x (N, C, H, W), zero-padded, as columns: (C*KH*KW, Ho*Wo*N), C-contiguous."""
    return _cols_chwn(_pad_chwn(x.transpose(1, 2, 3, 0), ph, pw), KH, KW, sh, sw, Ho, Wo)


def _conv_forward_cols(w: np.ndarray, b: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The convolution as one matrix product: (F, C*KH*KW) @ (C*KH*KW, Ho*Wo*N) + b -> (F, Ho*Wo*N)."""
    out = _matmul(w.reshape(w.shape[0], -1), cols)
    out += b[:, None]
    return out


def _col2im(dcols: np.ndarray, padded_shape: tuple[int, int, int, int], sh: int, sw: int) -> np.ndarray:
    """Add every column's gradient back onto the padded (C, Hp, Wp, N) input it was copied from.

    ``dcols`` is (C, KH, KW, Ho, Wo, N); one slice-add per kernel offset (a, d), each moving
    contiguous runs of Wo*N numbers when sw == 1. In parallel: channels split over the threads
    (or, with fewer channels than threads, the batch).
    """
    C, KH, KW, Ho, Wo, N = dcols.shape
    dxp = np.zeros(padded_shape, dtype=dcols.dtype)

    def part(cs: slice, ns: slice) -> None:
        for a in range(KH):
            for d in range(KW):
                dxp[cs, a : a + sh * Ho : sh, d : d + sw * Wo : sw, ns] += dcols[cs, a, d, :, :, ns]

    n = _parallel.threads()
    if n == 1:
        part(slice(None), slice(None))
    elif C >= n:
        _parallel.run([lambda c=c: part(slice(c, c + 1), slice(None)) for c in range(C)])
    else:
        step = -(-N // n)
        _parallel.run([lambda s=s: part(slice(None), slice(s, s + step)) for s in range(0, N, step)])
    return dxp


def _conv_backward_cols(
    dout_mat: np.ndarray,
    cols: np.ndarray,
    w: np.ndarray,
    x_shape_chwn: tuple[int, int, int, int],
    stride: tuple[int, int],
    pad: tuple[int, int],
    need_dx: bool = True,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """Gradients of the convolution in the batch-innermost layout.

    Args:
        dout_mat: (F, Ho*Wo*N) upstream gradient, C-contiguous, columns ordered (i, j, n).
        cols: (C*KH*KW, Ho*Wo*N) column matrix of the forward pass.
        w: (F, C, KH, KW) filters.
        x_shape_chwn: (C, H, W, N), the unpadded input's shape in this layout.
        stride, pad: (sh, sw) and (ph, pw).
        need_dx: False skips the input gradient (a network's first layer does not need it).

    Returns:
        dx (C, H, W, N) (a view of a padded array; None when not needed), dw (F, C, KH, KW), db (F,).
    """
    F, C, KH, KW = w.shape
    _, H, W, N = x_shape_chwn
    (sh, sw), (ph, pw) = stride, pad
    Ho, Wo = (H + 2 * ph - KH) // sh + 1, (W + 2 * pw - KW) // sw + 1
    db = dout_mat.sum(axis=1)
    dw = _matmul_nt(dout_mat, cols).reshape(w.shape)
    if not need_dx:
        return None, dw, db
    dcols = _matmul(np.ascontiguousarray(w.reshape(F, C * KH * KW).T), dout_mat).reshape(C, KH, KW, Ho, Wo, N)
    dxp = _col2im(dcols, (C, H + 2 * ph, W + 2 * pw, N), sh, sw)
    return dxp[:, ph : ph + H, pw : pw + W, :], dw, db


def conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: Any = 1, pad: Any = 0) -> tuple[np.ndarray, Cache]:
    """Compute a convolution layer's output with im2col and one matrix product (fast, pure NumPy).

    Same result as ``conv_forward_naive``.

    Args:
        x: (N, C, H, W) batch of images.
        w: (F, C, KH, KW) filters.
        b: (F,) one bias per filter.
        stride: int or (sh, sw); at least 1.
        pad: int or (ph, pw) zero padding on each side; non-negative.

    Returns:
        out: (N, F, H', W'), C-contiguous, in the common dtype of x, w and b.
        cache: dict for ``conv_backward`` (holds the (C*KH*KW, H'*W'*N) column matrix).
    """
    x, w, b, (sh, sw), (ph, pw), (Ho, Wo) = _check_conv_args(x, w, b, stride, pad)
    N = x.shape[0]
    F, C, KH, KW = w.shape
    cols = _im2col(x, KH, KW, sh, sw, ph, pw, Ho, Wo)
    out = _conv_forward_cols(w, b, cols)  # (F, Ho*Wo*N)
    out = _contiguous(out.reshape(F, Ho, Wo, N).transpose(3, 0, 1, 2))
    cache = {"x": x, "w": w, "b": b, "stride": (sh, sw), "pad": (ph, pw), "cols": cols}
    return out, cache


def _unpack_cache(dout: Any, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int, int, int, int]:
    if not isinstance(cache, dict) or not {"x", "w", "stride", "pad"} <= cache.keys():
        raise ValueError("cache must be the dict returned by conv_forward or conv_forward_naive")
    x, w = cache["x"], cache["w"]
    (sh, sw), (ph, pw) = cache["stride"], cache["pad"]
    N, _, H, W = x.shape
    F, _, KH, KW = w.shape
    Ho = (H + 2 * ph - KH) // sh + 1
    Wo = (W + 2 * pw - KW) // sw + 1
    dout = as_float_array(dout, "dout")
    check_ndim(dout, 4, "dout", "(N, F, H', W')")
    check_shape(dout, (N, F, Ho, Wo), "dout")
    check_finite(dout, "dout")
    return x, w, dout.astype(x.dtype, copy=False), sh, sw, ph, pw, Ho, Wo


def conv_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of a convolution layer (vectorised; works with either forward's cache).

    ``db[f] = sum_{n,i,j} dout[n,f,i,j]``; ``dw = dout_matrix @ cols.T``; ``dx`` scatters
    ``w.T @ dout_matrix`` back onto the padded input, one slice-add per kernel offset (a, d).

    Args:
        dout: (N, F, H', W') upstream gradient.
        cache: from ``conv_forward`` or ``conv_forward_naive``.

    Returns:
        dx: (N, C, H, W), dw: (F, C, KH, KW), db: (F,).
    """
    x, w, dout, sh, sw, ph, pw, Ho, Wo = _unpack_cache(dout, cache)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    cols = cache.get("cols")
    if cols is None:
        cols = _im2col(x, KH, KW, sh, sw, ph, pw, Ho, Wo)
    dout_mat = _contiguous(dout.transpose(1, 2, 3, 0)).reshape(F, Ho * Wo * N)
    dxt, dw, db = _conv_backward_cols(dout_mat, cols, w, (C, H, W, N), (sh, sw), (ph, pw))
    dx = _contiguous(dxt.transpose(3, 0, 1, 2))
    return dx, dw, db


def conv_backward_naive(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Compute the gradients of a convolution layer with explicit loops (readable, slow).

    Every output ``out[n, f, i, j]`` used the window ``xp[n, :, i*sh:i*sh+KH, j*sw:j*sw+KW]`` and the
    filter ``w[f]``; its gradient ``dout[n, f, i, j]`` flows back to both, and to ``b[f]``.

    Args:
        dout: (N, F, H', W') upstream gradient.
        cache: from ``conv_forward`` or ``conv_forward_naive``.

    Returns:
        dx: (N, C, H, W), dw: (F, C, KH, KW), db: (F,).
    """
    x, w, dout, sh, sw, ph, pw, Ho, Wo = _unpack_cache(dout, cache)
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = _zero_pad(x, ph, pw)
    dxp = np.zeros_like(xp)
    dw = np.zeros_like(w)
    db = np.zeros(F, dtype=x.dtype)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    g = dout[n, f, i, j]
                    hs, ws = i * sh, j * sw
                    dxp[n, :, hs : hs + KH, ws : ws + KW] += g * w[f]
                    dw[f] += g * xp[n, :, hs : hs + KH, ws : ws + KW]
                    db[f] += g
    return dxp[:, :, ph : ph + H, pw : pw + W].copy(), dw, db
