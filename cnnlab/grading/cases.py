"""Seeded random test cases whose sizes fit and stay small enough for loop implementations.

Every generator takes a local ``np.random.Generator`` (see :func:`rng`); the global NumPy random
state is never touched.  Arguments left as ``None`` are drawn at random.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "rng", "ConvCase", "PoolCase", "NormCase", "AffineCase",
    "conv_case", "random_conv_case", "pool_case", "norm_case", "affine_case", "fit_input_size",
]  # fmt: skip


def rng(seed: int) -> np.random.Generator:
    """Return a new local generator ``np.random.default_rng(seed)`` (global state untouched)."""
    return np.random.default_rng(seed)


class ConvCase(NamedTuple):
    """x: (N, C, H, W); w: (F, C, KH, KW); b: (F,); stride and pad: int or (h, w) pair."""

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray
    stride: int | tuple[int, int]
    pad: int | tuple[int, int]


class PoolCase(NamedTuple):
    """x: (N, C, H, W); size and stride: int or (h, w) pair."""

    x: np.ndarray
    size: int | tuple[int, int]
    stride: int | tuple[int, int]


class NormCase(NamedTuple):
    """x: (N, D) for "batch"/"layer", (N, C, H, W) otherwise; gamma, beta: (D,) or (C,); groups G."""

    x: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray
    groups: int


class AffineCase(NamedTuple):
    """x: (N, d1, ..., dk); w: (D, M) with D = d1*...*dk; b: (M,)."""

    x: np.ndarray
    w: np.ndarray
    b: np.ndarray


def fit_input_size(out: int, k: int, stride: int, pad: int) -> int:
    """Return the input size n with ``(n + 2*pad - k) // stride + 1 == out`` exactly (no remainder)."""
    return (out - 1) * stride + k - 2 * pad


def _pick(gen: np.random.Generator, value: int | None, low: int, high: int) -> int:
    return int(gen.integers(low, high + 1)) if value is None else int(value)


def _axis(gen: np.random.Generator, k: int, stride: int, pad: int, out_max: int) -> tuple[int, int]:
    """Draw an output size and return (input size, output size) that fit exactly, input >= 1."""
    out = int(gen.integers(1, out_max + 1))
    while fit_input_size(out, k, stride, pad) < 1:
        out += 1
    return fit_input_size(out, k, stride, pad), out


def conv_case(
    gen: np.random.Generator,
    *,
    n: int | None = None,
    c: int | None = None,
    f: int | None = None,
    k: int | None = None,
    stride: int | None = None,
    pad: int | None = None,
    out_max: int = 5,
    anisotropic: bool = False,
    dtype: type = np.float64,
) -> ConvCase:
    """Draw a convolution case whose input size fits the kernel, stride and padding exactly.

    Args:
        gen: local generator (``rng(seed)``).
        n, c, f: batch size (1-3), input channels (1-3), filters (1-4); drawn when None.
        k: square kernel size (1-5); stride (1-3); pad (0 to k//2); drawn when None.
        out_max: largest output height/width (keeps loop versions quick).
        anisotropic: draw different kernel/stride/pad along height and width; stride and pad are
            then (h, w) pairs and the kernel is rectangular.
        dtype: dtype of the arrays.

    Returns:
        ConvCase(x (N, C, H, W), w (F, C, KH, KW), b (F,), stride, pad) with
        (H + 2*pad - KH) % stride == 0 (and the same along the width).
    """
    n_, c_, f_ = _pick(gen, n, 1, 3), _pick(gen, c, 1, 3), _pick(gen, f, 1, 4)
    kh = _pick(gen, k, 1, 5)
    sh = _pick(gen, stride, 1, 3)
    ph = _pick(gen, pad, 0, kh // 2)
    if anisotropic:
        kw = _pick(gen, k, 1, 5)
        sw = _pick(gen, stride, 1, 3)
        pw = _pick(gen, pad, 0, kw // 2)
    else:
        kw, sw, pw = kh, sh, ph
    h, _ = _axis(gen, kh, sh, ph, out_max)
    w_, _ = _axis(gen, kw, sw, pw, out_max)
    x = gen.standard_normal((n_, c_, h, w_)).astype(dtype)
    w = (gen.standard_normal((f_, c_, kh, kw)) / np.sqrt(c_ * kh * kw)).astype(dtype)
    b = gen.standard_normal(f_).astype(dtype)
    st: int | tuple[int, int] = (sh, sw) if anisotropic else sh
    pd: int | tuple[int, int] = (ph, pw) if anisotropic else ph
    return ConvCase(x, w, b, st, pd)


random_conv_case = conv_case


def pool_case(
    gen: np.random.Generator,
    *,
    n: int | None = None,
    c: int | None = None,
    size: int | None = None,
    stride: int | None = None,
    out_max: int = 4,
    dtype: type = np.float64,
) -> PoolCase:
    """Draw a pooling case: window size 2-3, stride 1..size (default: drawn), input fits exactly.

    Values are distinct (standard normal), so the max of each window is unique and max-pool
    gradients are well defined.

    Returns:
        PoolCase(x (N, C, H, W) with N in 1-3 and C in 1-3, size, stride).
    """
    n_, c_ = _pick(gen, n, 1, 3), _pick(gen, c, 1, 3)
    size_ = _pick(gen, size, 2, 3)
    stride_ = _pick(gen, stride, 1, size_)
    h, _ = _axis(gen, size_, stride_, 0, out_max)
    w, _ = _axis(gen, size_, stride_, 0, out_max)
    x = gen.standard_normal((n_, c_, h, w)).astype(dtype)
    return PoolCase(x, size_, stride_)


def norm_case(
    gen: np.random.Generator,
    kind: str = "batch",
    *,
    n: int | None = None,
    d: int | None = None,
    c: int | None = None,
    hw: int | None = None,
    groups: int | None = None,
    dtype: type = np.float64,
) -> NormCase:
    """Draw a normalisation case with a non-zero mean and non-unit scale per feature.

    Args:
        gen: local generator.
        kind: "batch" or "layer" (x (N, D)), "spatial", "group" or "instance" (x (N, C, H, W)).
        n: batch size (2-5); d: features (2-6); c: channels (2-6, a multiple of groups for
            "group"); hw: height = width (2-4); groups: G for "group" (drawn among divisors of C).

    Returns:
        NormCase(x, gamma, beta, groups) with gamma, beta of shape (D,) or (C,); groups is C for
        "instance", 1 otherwise unless drawn for "group".
    """
    if kind not in ("batch", "layer", "spatial", "group", "instance"):
        raise ValueError(f"kind must be batch, layer, spatial, group or instance, got {kind!r}")
    n_ = _pick(gen, n, 2, 5)
    if kind in ("batch", "layer"):
        d_ = _pick(gen, d, 2, 6)
        shape: tuple[int, ...] = (n_, d_)
        feat = d_
        g = 1
    else:
        c_ = _pick(gen, c, 2, 6)
        side = _pick(gen, hw, 2, 4)
        shape = (n_, c_, side, side)
        feat = c_
        if kind == "group":
            if groups is None:
                divisors = [q for q in range(1, c_ + 1) if c_ % q == 0]
                g = int(gen.choice(divisors[1:] if len(divisors) > 1 else divisors))
            else:
                g = int(groups)
            if c_ % g:
                raise ValueError(f"channels c={c_} is not a multiple of groups={g}")
        elif kind == "instance":
            g = c_
        else:
            g = 1
    mean = gen.uniform(-3, 3, size=feat)
    scale = gen.uniform(0.5, 4.0, size=feat)
    bshape = (1, feat) + (1,) * (len(shape) - 2)
    x = (gen.standard_normal(shape) * scale.reshape(bshape) + mean.reshape(bshape)).astype(dtype)
    gamma = gen.uniform(0.5, 2.0, size=feat).astype(dtype)
    beta = gen.standard_normal(feat).astype(dtype)
    return NormCase(x, gamma, beta, g)


def affine_case(
    gen: np.random.Generator,
    *,
    n: int | None = None,
    in_shape: tuple[int, ...] | None = None,
    m: int | None = None,
    dtype: type = np.float64,
) -> AffineCase:
    """Draw a fully connected case: x (N, *in_shape), w (D, M), b (M,) with D = prod(in_shape)."""
    n_ = _pick(gen, n, 1, 4)
    shape = tuple(in_shape) if in_shape is not None else tuple(int(s) for s in gen.integers(1, 4, size=3))
    m_ = _pick(gen, m, 1, 5)
    d = int(np.prod(shape))
    x = gen.standard_normal((n_, *shape)).astype(dtype)
    w = (gen.standard_normal((d, m_)) / np.sqrt(d)).astype(dtype)
    b = gen.standard_normal(m_).astype(dtype)
    return AffineCase(x, w, b)
