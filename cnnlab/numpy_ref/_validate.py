"""Shared input checks for ``cnnlab.numpy_ref`` (private).

Every check raises ``ValueError`` with a message that names the argument and the problem, so a
student who passes the wrong thing learns what was wrong without reading a traceback.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = [
    "as_float_array",
    "as_pair",
    "check_finite",
    "check_ndim",
    "check_shape",
    "strict_output_size",
]


def as_float_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a NumPy array, keeping a floating dtype and turning anything else into float64.

    Args:
        x: array-like.
        name: the argument's name, used in error messages.

    Returns:
        ndarray with a floating dtype (float32 stays float32, float64 stays float64).
    """
    if x is None:
        raise ValueError(f"{name} is None; expected an array")
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    return arr


def check_ndim(x: np.ndarray, ndim: int, name: str, layout: str = "") -> None:
    """Raise ValueError when ``x.ndim != ndim``; ``layout`` (e.g. "(N, C, H, W)") is quoted in the message."""
    if x.ndim != ndim:
        what = f" {layout}" if layout else ""
        raise ValueError(f"{name} must be {ndim}-D{what}, got ndim={x.ndim} with shape {x.shape}")


def check_shape(x: np.ndarray, shape: tuple[int, ...], name: str) -> None:
    """Raise ValueError when ``x.shape`` differs from ``shape``."""
    if tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} has shape {tuple(x.shape)} but shape {tuple(shape)} was expected")


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise ValueError when ``x`` contains NaN or infinity.

    One pass without a temporary array: a sum is finite exactly when no element is NaN or
    infinite, unless finite elements overflow it, and only then are the elements tested one by one.
    """
    if x.dtype.kind == "f":
        with np.errstate(over="ignore", invalid="ignore"):
            if np.isfinite(np.add.reduce(x, axis=None)):
                return
    if not np.isfinite(x).all():
        n_nan = int(np.isnan(x).sum())
        n_inf = int(np.isinf(x).sum())
        raise ValueError(f"{name} contains non-finite values ({n_nan} NaN, {n_inf} inf)")


def _as_int(v: Any, name: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {v!r}")
    return int(v)


def as_pair(v: Any, name: str, *, minimum: int = 0) -> tuple[int, int]:
    """Turn an int or an (h, w) pair into a pair of ints, each at least ``minimum``.

    Args:
        v: int or a sequence of two ints.
        name: the argument's name ("stride", "pad", "size").
        minimum: the smallest allowed value (0 for padding, 1 for stride and window size).

    Returns:
        (h, w) tuple of ints.
    """
    if isinstance(v, (tuple, list, np.ndarray)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {v!r}")
        pair = (_as_int(v[0], name), _as_int(v[1], name))
    else:
        k = _as_int(v, name)
        pair = (k, k)
    for p in pair:
        if p < minimum:
            if minimum == 0:
                raise ValueError(f"{name} must be non-negative, got negative {name} {v!r}")
            raise ValueError(f"{name} must be at least {minimum}, got {v!r}")
    return pair


def strict_output_size(n: int, f: int, pad: int, stride: int, axis: str, what: str = "kernel") -> int:
    """Output length of a window sliding over one axis, raising when the stride skips input pixels.

    Rows left over after the last window are fine when they are all padding (the usual stride-2
    "same" layers: 56, k3, s2, p1 and 224, k7, s2, p3), as in ``cnnlab.shapes.conv_output_size``.

    Args:
        n: input length (H or W), before padding.
        f: window (kernel) length along this axis.
        pad: padding added on each side.
        stride: step between windows.
        axis: "H" or "W", used in the message.
        what: "kernel" or "pool window", used in the message.

    Returns:
        (n + 2 * pad - f) // stride + 1.
    """
    k = "KH" if axis == "H" else "KW"
    padded = n + 2 * pad
    if f > padded:
        raise ValueError(
            f"{what} is larger than the padded input: {k}={f} > {axis} + 2*pad = {n} + 2*{pad} = {padded}"
        )
    left = (padded - f) % stride
    if left > pad:  # rows left after the last window include input pixels, not only padding
        raise ValueError(
            f"stride does not fit along {axis}: the last {left} of ({axis} + 2*pad - {k}) = "
            f"({n} + 2*{pad} - {f}) rows are skipped by stride {stride}, and only {pad} of them are padding "
            f"({axis}={n}, {k}={f}, pad={pad}, stride={stride}); change the padding or the stride"
        )
    return (padded - f) // stride + 1
