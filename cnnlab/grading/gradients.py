"""Central-difference gradients and a gradient check whose message teaches."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .closeness import _likely_bug, _to_array, _value_hints

__all__ = ["numeric_gradient", "assert_gradient"]


def numeric_gradient(
    f: Callable[[np.ndarray], Any], x: np.ndarray, df: np.ndarray | None = None, h: float = 1e-6
) -> np.ndarray:
    """Estimate the gradient of ``sum(f(x) * df)`` with respect to ``x`` by central differences.

    Args:
        f: function of one array returning an array (any shape) or a scalar.
        x: the point, an array of any shape; it is not modified (a float64 copy is perturbed).
        df: upstream gradient with ``f(x)``'s shape; ``None`` means all ones (so the
            gradient of ``sum(f(x))``, or of ``f(x)`` itself when it is a scalar).
        h: step size.

    Returns:
        float64 array with ``x``'s shape: ``(g(x + h e_i) - g(x - h e_i)) / (2h)`` for every i,
        where ``g(x) = sum(f(x) * df)``.
    """
    xp = np.array(x, dtype=np.float64, copy=True, order="C")  # C order: the flat view below must write into xp
    up = None if df is None else np.asarray(df, dtype=np.float64)
    grad = np.zeros_like(xp)

    def g(point: np.ndarray) -> float:
        out = np.asarray(f(point), dtype=np.float64)
        if up is None:
            return float(np.sum(out))
        if out.shape != up.shape:
            raise ValueError(f"df has shape {up.shape} but f(x) has shape {out.shape}")
        return float(np.sum(out * up))

    flat = xp.reshape(-1)  # a view: writes go to xp
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = g(xp)
        flat[i] = old - h
        minus = g(xp)
        flat[i] = old
        gflat[i] = (plus - minus) / (2.0 * h)
    return grad


def assert_gradient(
    analytic: Any,
    f: Callable[[np.ndarray], Any],
    x: np.ndarray,
    df: np.ndarray | None = None,
    name: str = "dx",
    rtol: float = 1e-5,
    bugs: Mapping[str, Any] | None = None,
) -> None:
    """Assert that an analytic gradient matches the central-difference estimate.

    Args:
        analytic: the gradient to check (the student's), expected with ``x``'s shape.
        f, x, df: as in :func:`numeric_gradient` (gradient of ``sum(f(x) * df)``).
        name: the gradient's name in messages ("dx", "dw", ...).
        rtol: relative tolerance on ``|analytic - numeric| / max(|analytic|, |numeric|)``;
            an absolute floor proportional to the largest gradient entry absorbs round-off.
        bugs: optional ``{description: gradient the bug would give}`` to name a likely bug.

    Raises:
        AssertionError: "dx: received derivative 0.25 at index (0, 1), central difference gives 0.75 ..."
    """
    numeric = numeric_gradient(f, x, df)
    ana = _to_array(analytic, name, numeric)
    if ana.dtype.kind not in "fiu" or ana.dtype == object:
        raise AssertionError(f"{name}: got dtype {ana.dtype}; expected a float gradient")
    if ana.shape != numeric.shape:
        raise AssertionError(
            f"{name}: wrong shape {ana.shape}; a gradient has the shape of its input {numeric.shape}"
        )
    a = ana.astype(np.float64)
    if not np.all(np.isfinite(a)):
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise AssertionError(f"{name}: contains NaN or inf (first at index {bad})")
    scale = max(float(np.max(np.abs(numeric), initial=0.0)), float(np.max(np.abs(a), initial=0.0)), 1e-12)
    atol = max(1e-7, 1e-6 * scale)
    with np.errstate(all="ignore"):
        err = np.abs(a - numeric)
        tol = atol + rtol * np.maximum(np.abs(a), np.abs(numeric))
    bad = err > tol
    if not np.any(bad):
        return
    worst = np.unravel_index(int(np.argmax(np.where(bad, err / tol, -1.0))), a.shape)
    idx = tuple(int(i) for i in worst)
    rel = float(err[worst] / max(abs(a[worst]) + abs(numeric[worst]), 1e-12))
    lines = [
        f"{name}: received derivative {a[worst]:.6g} at index {idx}, "
        f"central difference gives {numeric[worst]:.6g} (rel error {rel:.2g})",
        f"  {int(np.count_nonzero(bad))} of {a.size} entries of {name} differ",
    ]
    bug = _likely_bug(a, bugs, max(rtol, 1e-5), atol)
    if bug:
        lines.append(f"Likely bug: {bug}")
    else:
        lines += ["  hint: " + h for h in _value_hints(a, numeric)]
    raise AssertionError("\n".join(lines))
