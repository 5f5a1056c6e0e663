"""Shared helpers and Hypothesis strategies for the cnnlab.numpy_ref tests (no tests here).

The other tests/test_numpy_ref_*.py files import this module by name (pytest puts tests/ on
sys.path in its default "prepend" import mode).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from hypothesis import settings
from hypothesis import strategies as st

#: Relative-error bound per dtype for comparisons with PyTorch in float64.
TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}

#: Hypothesis settings shared by the numpy_ref tests (modest counts: 2 shared cores).
FAST = settings(max_examples=30, deadline=None)
FEW = settings(max_examples=15, deadline=None)

dtypes = st.sampled_from([np.float64, np.float32])
seeds = st.integers(0, 2**32 - 1)


def rel_err(a: Any, b: Any, floor: float = 0.0) -> float:
    """Max absolute difference divided by the larger max magnitude (at least ``floor``; 0 when both are zero)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != {b.shape}"
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), floor)
    if scale == 0:
        return 0.0
    return float(np.abs(a - b).max() / scale)


def assert_close(actual: Any, expected: Any, dtype: Any, name: str = "output", floor: float = 0.0) -> None:
    """Assert rel_err(actual, expected, floor) is within the bound for ``dtype``."""
    err = rel_err(actual, expected, floor)
    tol = TOL[np.dtype(dtype)]
    assert err < tol, f"{name}: relative error {err:.3g} >= {tol:g} ({np.dtype(dtype)})"


def t64(a: np.ndarray, grad: bool = False) -> torch.Tensor:
    """Float64 torch tensor copy of ``a`` (the oracle always runs in float64)."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def randn(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Standard normal array of the given dtype."""
    return rng.standard_normal(shape).astype(dtype)


def distinct(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Array whose entries are all different (well separated even in float32): no max-pool ties."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) / max(n, 1) * 4 - 2).astype(dtype)


def numeric_gradient(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of sum(f(x) * df) with respect to x (x float64, perturbed in place and restored)."""
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * df)
        x[i] = old - h
        minus = np.sum(f(x) * df)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def assert_gradient(analytic: np.ndarray, f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, name: str, tol: float = 1e-6) -> None:
    """Compare an analytic gradient with central differences; the message shows both."""
    numeric = numeric_gradient(f, x, df)
    err = rel_err(analytic, numeric)
    assert err < tol, f"{name}: received derivative {analytic.ravel()[:5]} ..., central difference gives {numeric.ravel()[:5]} ... (rel error {err:.3g})"


@st.composite
def conv_cases(draw: st.DrawFn, max_k: int = 4, max_s: int = 3, max_p: int = 2, max_out: int = 4) -> dict[str, Any]:
    """A conv problem whose stride fits exactly: shapes, (sh, sw) stride, (ph, pw) pad, a seed."""
    N = draw(st.integers(1, 3))
    C = draw(st.integers(1, 3))
    F = draw(st.integers(1, 3))
    dims = []
    for _ in range(2):
        k = draw(st.integers(1, max_k))
        s = draw(st.integers(1, max_s))
        p = draw(st.integers(0, max_p))
        # n + 2p - k = (out - 1) * s with n >= 1  =>  out >= 1 + ceil((2p + 1 - k) / s)
        lo = max(1, 1 + -(-(2 * p + 1 - k) // s))
        out = draw(st.integers(lo, lo + max_out - 1))
        n = (out - 1) * s + k - 2 * p
        dims.append((n, k, s, p))
    (H, KH, sh, ph), (W, KW, sw, pw) = dims
    stride: Any = (sh, sw) if draw(st.booleans()) or sh != sw else sh
    pad: Any = (ph, pw) if draw(st.booleans()) or ph != pw else ph
    return {"x": (N, C, H, W), "w": (F, C, KH, KW), "stride": stride, "pad": pad, "seed": draw(seeds)}


@st.composite
def pool_cases(draw: st.DrawFn) -> dict[str, Any]:
    """A pooling problem whose stride fits exactly (overlapping windows included)."""
    N = draw(st.integers(1, 3))
    C = draw(st.integers(1, 3))
    dims = []
    for _ in range(2):
        k = draw(st.integers(1, 3))
        s = draw(st.integers(1, 3))
        out = draw(st.integers(1, 4))
        dims.append(((out - 1) * s + k, k, s))
    (H, kh, sh), (W, kw, sw) = dims
    size: Any = (kh, kw) if kh != kw or draw(st.booleans()) else kh
    stride: Any = (sh, sw) if sh != sw or draw(st.booleans()) else sh
    return {"x": (N, C, H, W), "size": size, "stride": stride, "seed": draw(seeds)}
