"""Functional PyTorch twins of the ``cnnlab.numpy_ref`` layers.

Every function accepts NumPy arrays or tensors:

- NumPy in, NumPy out. The computation runs on the CPU in float64, or in float32 when every
  floating input is float32. This is how checks use these functions as an independent oracle.
- Tensors in, tensors out, on the tensors' own device and dtype (autograd works through them).

Backward twins (``conv_backward``, ``max_pool_backward``, ...) take the forward's inputs
instead of a cache and differentiate the forward twin with autograd (see :func:`vjp`).
Shapes follow the course conventions: NCHW images, conv weights (F, C, KH, KW), bias (F,),
fully connected weights (D, M) with ``out = x.reshape(N, -1) @ w + b``.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ._convert import ArrayLike, back, pair, to_tensors

__all__ = [
    "device",
    "corr2d",
    "conv2d_true",
    "pad",
    "conv_forward",
    "conv_backward",
    "max_pool",
    "max_pool_backward",
    "avg_pool",
    "avg_pool_backward",
    "global_avg_pool",
    "batchnorm",
    "layernorm",
    "groupnorm",
    "instancenorm",
    "affine",
    "relu",
    "tanh",
    "flatten",
    "softmax_loss",
    "vjp",
]


def device() -> torch.device:
    """Pick the best available device: CUDA, then Apple's MPS, then the CPU.

    Returns:
        torch.device("cuda"), torch.device("mps") or torch.device("cpu").
    """
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


# --------------------------------------------------------------------------- validation helpers


def _check_ndim(t: torch.Tensor, ndim: int, name: str, layout: str) -> None:
    if t.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {tuple(t.shape)}")


def _check_window(
    size: int, window: int, pad_: int, stride: int, axis: str, strict: bool, what: str
) -> None:
    if stride <= 0:
        raise ValueError(f"stride must be positive, got {stride} along {axis}")
    if pad_ < 0:
        raise ValueError(f"pad must be non-negative, got {pad_} along {axis}")
    span = size + 2 * pad_ - window
    if span < 0:
        raise ValueError(
            f"{what} window {window} is larger than the padded input {size + 2 * pad_} along {axis}"
        )
    if strict and span % stride != 0:
        raise ValueError(
            f"stride {stride} does not fit along {axis}: (size {size} + 2*pad {pad_} - window {window}) "
            f"= {span} is not a multiple of the stride"
        )


# --------------------------------------------------------------------------- 2-D correlation


def corr2d(x: ArrayLike, k: ArrayLike) -> ArrayLike:
    """Compute the valid 2-D cross-correlation of one image with one kernel.

    Args:
        x: (H, W) image.
        k: (KH, KW) kernel.

    Returns:
        (H - KH + 1, W - KW + 1) output.

    Raises:
        ValueError: when x or k is not 2-D or the kernel is larger than the image.
    """
    (tx, tk), was_numpy = to_tensors(x, k)
    assert tx is not None and tk is not None
    _check_ndim(tx, 2, "x", "(H, W)")
    _check_ndim(tk, 2, "k", "(KH, KW)")
    if tk.shape[0] > tx.shape[0] or tk.shape[1] > tx.shape[1]:
        raise ValueError(f"kernel {tuple(tk.shape)} is larger than the image {tuple(tx.shape)}")
    out = F.conv2d(tx[None, None], tk[None, None])[0, 0]
    return back(out, was_numpy)


def conv2d_true(x: ArrayLike, k: ArrayLike) -> ArrayLike:
    """Compute the valid 2-D true convolution (kernel flipped in both axes) of x with k.

    Args:
        x: (H, W) image.
        k: (KH, KW) kernel.

    Returns:
        (H - KH + 1, W - KW + 1) output.
    """
    if isinstance(k, torch.Tensor):
        flipped: ArrayLike = torch.flip(k, dims=(0, 1))
    else:
        flipped = np.ascontiguousarray(np.asarray(k)[::-1, ::-1])
    return corr2d(x, flipped)


def pad(x: ArrayLike, pad: int | tuple[int, int], mode: str = "zero", value: float = 0.0) -> ArrayLike:
    """Pad the last two axes of x.

    Args:
        x: array with at least 2 axes, (..., H, W).
        pad: int or (ph, pw): rows added above and below, columns added left and right.
        mode: "zero", "constant" (fill with value), "reflect" (mirror without repeating the edge)
            or "replicate" (repeat the edge).
        value: fill value for mode "constant".

    Returns:
        (..., H + 2*ph, W + 2*pw) array.

    Raises:
        ValueError: negative pad, unknown mode, fewer than 2 axes, or a reflect pad not smaller
            than the image.
    """
    ph, pw = pair(pad, "pad")
    if ph < 0 or pw < 0:
        raise ValueError(f"pad must be non-negative, got {(ph, pw)}")
    modes = {"zero": "constant", "constant": "constant", "reflect": "reflect", "replicate": "replicate"}
    if mode not in modes:
        raise ValueError(f"unknown padding mode {mode!r}; use one of {sorted(modes)}")
    (tx,), was_numpy = to_tensors(x)
    assert tx is not None
    if tx.ndim < 2:
        raise ValueError(f"x must have at least 2 axes (..., H, W), got shape {tuple(tx.shape)}")
    if mode == "reflect" and (ph >= tx.shape[-2] or pw >= tx.shape[-1]):
        raise ValueError(f"reflect padding {(ph, pw)} must be smaller than the image {tuple(tx.shape[-2:])}")
    lead = tx.shape[:-2]
    flat = tx.reshape(1, -1, *tx.shape[-2:])
    fill = value if mode == "constant" else 0.0
    if modes[mode] == "constant":
        out = F.pad(flat, (pw, pw, ph, ph), mode="constant", value=fill)
    else:
        out = F.pad(flat, (pw, pw, ph, ph), mode=modes[mode])
    return back(out.reshape(*lead, *out.shape[-2:]), was_numpy)


# --------------------------------------------------------------------------- convolution


def conv_forward(
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike | None,
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
    strict: bool = True,
) -> ArrayLike:
    """Apply a convolutional layer (cross-correlation plus bias) with torch.nn.functional.conv2d.

    Args:
        x: (N, C, H, W) input batch.
        w: (F, C, KH, KW) filters.
        b: (F,) biases, or None for no bias.
        stride: int or (sh, sw).
        pad: int or (ph, pw) zero padding.
        strict: raise when the stride does not tile the padded input exactly (as numpy_ref does);
            False floors like the frameworks.

    Returns:
        (N, F, H', W') output with H' = (H + 2*ph - KH) // sh + 1, and likewise W'.

    Raises:
        ValueError: wrong ndim, channel mismatch, bias shape, negative pad, stride that does not fit.
    """
    sh, sw = pair(stride, "stride")
    ph, pw = pair(pad, "pad")
    (tx, tw, tb), was_numpy = to_tensors(x, w, b)
    assert tx is not None and tw is not None
    _check_ndim(tx, 4, "x", "(N, C, H, W)")
    _check_ndim(tw, 4, "w", "(F, C, KH, KW)")
    if tx.shape[1] != tw.shape[1]:
        raise ValueError(f"channel mismatch: x has {tx.shape[1]} channels, w expects {tw.shape[1]}")
    if tb is not None and tuple(tb.shape) != (tw.shape[0],):
        raise ValueError(f"b must have shape ({tw.shape[0]},) (one bias per filter), got {tuple(tb.shape)}")
    _check_window(tx.shape[2], tw.shape[2], ph, sh, "height", strict, "kernel")
    _check_window(tx.shape[3], tw.shape[3], pw, sw, "width", strict, "kernel")
    out = F.conv2d(tx, tw, tb, stride=(sh, sw), padding=(ph, pw))
    return back(out, was_numpy)


def vjp(fn: Callable[..., Any], dout: ArrayLike, *inputs: ArrayLike | None, **kwargs: Any) -> tuple[Any, ...]:
    """Differentiate a twin with autograd: gradients of sum(fn(*inputs) * dout) w.r.t. each input.

    Args:
        fn: a twin taking tensors (e.g. conv_forward) and returning one tensor.
        dout: upstream gradient, same shape as fn's output.
        inputs: the differentiable inputs (NumPy arrays or tensors); None entries get None back.
        kwargs: non-differentiable keyword arguments passed to fn (stride, pad, ...).

    Returns:
        One gradient per input, NumPy when the inputs were NumPy.
    """
    tensors, was_numpy = to_tensors(*inputs, dout)
    *targs, tdout = tensors
    leaves = [None if t is None else t.detach().clone().requires_grad_(True) for t in targs]
    with torch.enable_grad():
        out = fn(*leaves, **kwargs)
        if not isinstance(out, torch.Tensor):
            raise ValueError("vjp needs a function that returns a single tensor")
        assert tdout is not None
        if tuple(out.shape) != tuple(tdout.shape):
            raise ValueError(f"dout shape {tuple(tdout.shape)} does not match the output shape {tuple(out.shape)}")
        wanted = [t for t in leaves if t is not None]
        grads = torch.autograd.grad(out, wanted, grad_outputs=tdout, allow_unused=True)
    it = iter(grads)
    result = []
    for t in leaves:
        if t is None:
            result.append(None)
            continue
        g = next(it)
        result.append(torch.zeros_like(t) if g is None else g)
    return back(tuple(result), was_numpy)


def conv_backward(
    dout: ArrayLike,
    x: ArrayLike,
    w: ArrayLike,
    b: ArrayLike | None,
    stride: int | tuple[int, int] = 1,
    pad: int | tuple[int, int] = 0,
) -> tuple[Any, Any, Any]:
    """Compute the gradients of a convolutional layer with autograd.

    Args:
        dout: (N, F, H', W') upstream gradient.
        x, w, b, stride, pad: as for :func:`conv_forward`.

    Returns:
        (dx (N, C, H, W), dw (F, C, KH, KW), db (F,)); db is None when b is None.
    """
    dx, dw, db = vjp(conv_forward, dout, x, w, b, stride=stride, pad=pad)
    return dx, dw, db


# --------------------------------------------------------------------------- pooling


def _pool(x: ArrayLike, size: int | tuple[int, int], stride: int | tuple[int, int] | None, strict: bool, kind: str) -> ArrayLike:
    kh, kw = pair(size, "size")
    if kh <= 0 or kw <= 0:
        raise ValueError(f"pool size must be positive, got {(kh, kw)}")
    sh, sw = (kh, kw) if stride is None else pair(stride, "stride")
    (tx,), was_numpy = to_tensors(x)
    assert tx is not None
    _check_ndim(tx, 4, "x", "(N, C, H, W)")
    _check_window(tx.shape[2], kh, 0, sh, "height", strict, "pool")
    _check_window(tx.shape[3], kw, 0, sw, "width", strict, "pool")
    if kind == "max":
        out = F.max_pool2d(tx, (kh, kw), (sh, sw))
    else:
        out = F.avg_pool2d(tx, (kh, kw), (sh, sw))
    return back(out, was_numpy)


def max_pool(
    x: ArrayLike, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None, strict: bool = True
) -> ArrayLike:
    """Apply max pooling to each channel separately (no padding).

    Args:
        x: (N, C, H, W) input.
        size: window size, int or (kh, kw).
        stride: int or (sh, sw); defaults to the window size.
        strict: raise when the stride does not tile the input exactly; False floors.

    Returns:
        (N, C, H', W') with H' = (H - kh) // sh + 1.
    """
    return _pool(x, size, stride, strict, "max")


def avg_pool(
    x: ArrayLike, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None, strict: bool = True
) -> ArrayLike:
    """Apply average pooling to each channel separately (no padding).

    Args:
        x: (N, C, H, W) input.
        size: window size, int or (kh, kw).
        stride: int or (sh, sw); defaults to the window size.
        strict: raise when the stride does not tile the input exactly; False floors.

    Returns:
        (N, C, H', W') with H' = (H - kh) // sh + 1.
    """
    return _pool(x, size, stride, strict, "avg")


def max_pool_backward(
    dout: ArrayLike, x: ArrayLike, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None
) -> ArrayLike:
    """Compute the gradient of max pooling with respect to its input (autograd).

    Ties inside a window send the whole gradient to one position (PyTorch picks the first).

    Args:
        dout: (N, C, H', W') upstream gradient.
        x, size, stride: as for :func:`max_pool`.

    Returns:
        (N, C, H, W) dx.
    """
    (dx,) = vjp(max_pool, dout, x, size=size, stride=stride)
    return dx


def avg_pool_backward(
    dout: ArrayLike, x: ArrayLike, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None
) -> ArrayLike:
    """Compute the gradient of average pooling with respect to its input (autograd).

    Args:
        dout: (N, C, H', W') upstream gradient.
        x, size, stride: as for :func:`avg_pool`.

    Returns:
        (N, C, H, W) dx.
    """
    (dx,) = vjp(avg_pool, dout, x, size=size, stride=stride)
    return dx


def global_avg_pool(x: ArrayLike) -> ArrayLike:
    """Average each channel over all its positions.

    Args:
        x: (N, C, H, W) input.

    Returns:
        (N, C) channel means.
    """
    (tx,), was_numpy = to_tensors(x)
    assert tx is not None
    _check_ndim(tx, 4, "x", "(N, C, H, W)")
    return back(tx.mean(dim=(2, 3)), was_numpy)


# --------------------------------------------------------------------------- normalisation


def _stat_tensor(value: Any, like: torch.Tensor, fill: float) -> torch.Tensor:
    """Copy a running statistic (NumPy, tensor or None) into a fresh tensor on like's device/dtype."""
    c = like.shape[1]
    if value is None:
        return torch.full((c,), fill, dtype=like.dtype, device=like.device)
    if isinstance(value, torch.Tensor):
        return value.detach().to(device=like.device, dtype=like.dtype).clone()
    return torch.as_tensor(np.array(value, dtype=np.float64), device=like.device).to(like.dtype)


def batchnorm(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, bn_param: dict[str, Any]) -> ArrayLike:
    """Apply batch normalisation with PyTorch's conventions (torch.nn.functional.batch_norm).

    Works for fully connected activations (N, D) and, per channel, for images (N, C, H, W)
    (spatial batch norm). In 'train' mode the batch statistics normalise x (biased variance) and
    the running statistics in bn_param are updated in place:
    ``running = (1 - momentum) * running + momentum * batch_stat`` with the unbiased batch
    variance. In 'test' mode the running statistics normalise x.

    Args:
        x: (N, D) or (N, C, H, W) input.
        gamma: (D,) or (C,) scale.
        beta: (D,) or (C,) shift.
        bn_param: dict with 'mode' ('train' or 'test'), optional 'eps' (1e-5), 'momentum' (0.1),
            'running_mean' (zeros when missing) and 'running_var' (ones when missing); the running
            statistics are written back with the type (NumPy or tensor) of the input x.

    Returns:
        Output with the shape of x.

    Raises:
        ValueError: unknown mode, wrong ndim, gamma/beta/running-stat shapes that do not match.
    """
    mode = bn_param.get("mode", "train")
    if mode not in ("train", "test"):
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    eps = float(bn_param.get("eps", 1e-5))
    momentum = float(bn_param.get("momentum", 0.1))
    (tx, tg, tb), was_numpy = to_tensors(x, gamma, beta)
    assert tx is not None and tg is not None and tb is not None
    if tx.ndim not in (2, 4):
        raise ValueError(f"x must be (N, D) or (N, C, H, W), got shape {tuple(tx.shape)}")
    c = tx.shape[1]
    for name, t in (("gamma", tg), ("beta", tb)):
        if tuple(t.shape) != (c,):
            raise ValueError(f"{name} must have shape ({c},), got {tuple(t.shape)}")
    rm = bn_param.get("running_mean")
    rv = bn_param.get("running_var")
    trm = _stat_tensor(rm, tx, fill=0.0)
    trv = _stat_tensor(rv, tx, fill=1.0)
    for name, t in (("running_mean", trm), ("running_var", trv)):
        if tuple(t.shape) != (c,):
            raise ValueError(f"bn_param['{name}'] must have shape ({c},), got {tuple(t.shape)}")
    training = mode == "train"
    if training and tx.numel() // c < 2:
        raise ValueError("batch norm in train mode needs more than one value per channel")
    out = F.batch_norm(tx, trm, trv, tg, tb, training=training, momentum=momentum, eps=eps)
    if was_numpy:
        bn_param["running_mean"] = trm.cpu().numpy()
        bn_param["running_var"] = trv.cpu().numpy()
    else:
        bn_param["running_mean"] = trm
        bn_param["running_var"] = trv
    return back(out, was_numpy)


def layernorm(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = 1e-5) -> ArrayLike:
    """Apply layer normalisation: normalise each sample over its features.

    Args:
        x: (N, D) input (or (N, *S) with gamma of shape S).
        gamma: (D,) scale.
        beta: (D,) shift.
        eps: added to the variance.

    Returns:
        Output with the shape of x.
    """
    (tx, tg, tb), was_numpy = to_tensors(x, gamma, beta)
    assert tx is not None and tg is not None and tb is not None
    if tx.ndim < 2:
        raise ValueError(f"x must be (N, D), got shape {tuple(tx.shape)}")
    if tuple(tg.shape) != tuple(tx.shape[1:]) or tuple(tb.shape) != tuple(tx.shape[1:]):
        raise ValueError(
            f"gamma and beta must have shape {tuple(tx.shape[1:])}, got {tuple(tg.shape)} and {tuple(tb.shape)}"
        )
    out = F.layer_norm(tx, tuple(tx.shape[1:]), tg, tb, eps)
    return back(out, was_numpy)


def groupnorm(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, G: int, eps: float = 1e-5) -> ArrayLike:
    """Apply group normalisation: split the channels into G groups, normalise each group per sample.

    Args:
        x: (N, C, H, W) input.
        gamma: (C,) scale.
        beta: (C,) shift.
        G: number of groups; must divide C.
        eps: added to the variance.

    Returns:
        (N, C, H, W) output.
    """
    (tx, tg, tb), was_numpy = to_tensors(x, gamma, beta)
    assert tx is not None and tg is not None and tb is not None
    _check_ndim(tx, 4, "x", "(N, C, H, W)")
    c = tx.shape[1]
    if not isinstance(G, (int, np.integer)) or G <= 0 or c % G != 0:
        raise ValueError(f"G={G!r} must be a positive int that divides the channel count {c}")
    if tuple(tg.shape) != (c,) or tuple(tb.shape) != (c,):
        raise ValueError(f"gamma and beta must have shape ({c},), got {tuple(tg.shape)} and {tuple(tb.shape)}")
    out = F.group_norm(tx, int(G), tg, tb, eps)
    return back(out, was_numpy)


def instancenorm(x: ArrayLike, gamma: ArrayLike, beta: ArrayLike, eps: float = 1e-5) -> ArrayLike:
    """Apply instance normalisation (group norm with one channel per group).

    Args:
        x: (N, C, H, W) input.
        gamma: (C,) scale.
        beta: (C,) shift.
        eps: added to the variance.

    Returns:
        (N, C, H, W) output.
    """
    c = x.shape[1] if x.ndim == 4 else 0
    if x.ndim != 4:
        raise ValueError(f"x must be 4-D (N, C, H, W), got shape {tuple(x.shape)}")
    return groupnorm(x, gamma, beta, int(c), eps)


# --------------------------------------------------------------------------- dense layers and losses


def affine(x: ArrayLike, w: ArrayLike, b: ArrayLike) -> ArrayLike:
    """Apply a fully connected layer: ``x.reshape(N, -1) @ w + b``.

    Args:
        x: (N, d_1, ..., d_k) input, flattened to (N, D).
        w: (D, M) weights.
        b: (M,) biases.

    Returns:
        (N, M) output.
    """
    (tx, tw, tb), was_numpy = to_tensors(x, w, b)
    assert tx is not None and tw is not None and tb is not None
    if tx.ndim < 1:
        raise ValueError("x must have a batch axis")
    flat = tx.reshape(tx.shape[0], -1)
    _check_ndim(tw, 2, "w", "(D, M)")
    if flat.shape[1] != tw.shape[0]:
        raise ValueError(f"x flattens to D={flat.shape[1]} features but w has shape {tuple(tw.shape)}")
    if tuple(tb.shape) != (tw.shape[1],):
        raise ValueError(f"b must have shape ({tw.shape[1]},), got {tuple(tb.shape)}")
    return back(flat @ tw + tb, was_numpy)


def relu(x: ArrayLike) -> ArrayLike:
    """Apply max(0, x) elementwise."""
    (tx,), was_numpy = to_tensors(x)
    assert tx is not None
    return back(torch.relu(tx), was_numpy)


def tanh(x: ArrayLike) -> ArrayLike:
    """Apply the hyperbolic tangent elementwise."""
    (tx,), was_numpy = to_tensors(x)
    assert tx is not None
    return back(torch.tanh(tx), was_numpy)


def flatten(x: ArrayLike) -> ArrayLike:
    """Reshape (N, d_1, ..., d_k) to (N, d_1 * ... * d_k)."""
    (tx,), was_numpy = to_tensors(x)
    assert tx is not None
    return back(tx.reshape(tx.shape[0], -1), was_numpy)


def softmax_loss(scores: ArrayLike, y: ArrayLike) -> tuple[Any, Any]:
    """Compute the mean softmax cross-entropy loss and its gradient.

    Args:
        scores: (N, K) class scores.
        y: (N,) integer labels in [0, K).

    Returns:
        (loss, dscores): loss a float (NumPy inputs) or 0-d tensor, dscores (N, K).

    Raises:
        ValueError: wrong shapes or labels out of range.
    """
    (ts,), was_numpy = to_tensors(scores)
    assert ts is not None
    _check_ndim(ts, 2, "scores", "(N, K)")
    ty = y.to(ts.device) if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y), device=ts.device)
    if ty.is_floating_point() or ty.dtype == torch.bool:
        raise ValueError(f"y must hold integer labels, got dtype {ty.dtype}")
    if tuple(ty.shape) != (ts.shape[0],):
        raise ValueError(f"y must have shape ({ts.shape[0]},), got {tuple(ty.shape)}")
    ty = ty.long()
    if ty.numel() and (int(ty.min()) < 0 or int(ty.max()) >= ts.shape[1]):
        raise ValueError(f"labels must lie in [0, {ts.shape[1]}), got range [{int(ty.min())}, {int(ty.max())}]")
    leaf = ts.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(leaf, ty)
        (dscores,) = torch.autograd.grad(loss, [leaf])
    return back((loss.detach(), dscores), was_numpy)
