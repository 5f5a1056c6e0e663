"""Compare a student's result with the expected one and explain any difference.

``assert_close`` raises ``AssertionError`` and nothing else: every problem (``None`` returned,
a tuple where an array was expected, a wrong shape, an integer or non-numeric dtype, NaN or
inf, values that differ) becomes a short message of a few lines that says what is wrong,
where, by how much, and, when a dictionary of known buggy results is given, which bug the
result looks like.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["rel_error", "assert_close", "describe", "matches"]

_AXIS_NAMES = {
    4: ("batch (N)", "channel (C)", "height (H)", "width (W)"),
    3: ("channel (C)", "height (H)", "width (W)"),
    2: ("height (H)", "width (W)"),
}


def rel_error(a: Any, b: Any) -> float:
    """Return the largest elementwise relative error ``|a - b| / max(1e-8, |a| + |b|)``.

    Args:
        a: array-like of any shape.
        b: array-like broadcastable to ``a``.

    Returns:
        A float; 0.0 for identical inputs (also for empty ones).  Values around 1e-7 or below
        mean "the same up to rounding" in float64.
    """
    a64 = np.asarray(a, dtype=np.float64)
    b64 = np.asarray(b, dtype=np.float64)
    if a64.size == 0 or b64.size == 0:
        return 0.0
    num = np.abs(a64 - b64)
    den = np.maximum(1e-8, np.abs(a64) + np.abs(b64))
    return float(np.max(num / den))


def describe(value: Any) -> str:
    """Describe a value in a few words for a message: ``"an array of shape (2, 3), float64"``."""
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}, {value.dtype}"
    module = type(value).__module__ or ""
    if module.startswith("torch") and hasattr(value, "shape"):
        return f"a torch.Tensor of shape {tuple(value.shape)}"
    if isinstance(value, tuple | list):
        kind = "a tuple" if isinstance(value, tuple) else "a list"
        inner = ", ".join(_short(v) for v in value[:4]) + (", ..." if len(value) > 4 else "")
        return f"{kind} of {len(value)} values ({inner})"
    if isinstance(value, bool | int | float | np.number):
        return f"the number {value!r}"
    return f"a {type(value).__name__}"


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array {value.shape}"
    if isinstance(value, dict):
        return "dict"
    if value is None:
        return "None"
    if isinstance(value, tuple | list):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def _excerpt(a: np.ndarray) -> str:
    return np.array2string(a, precision=4, threshold=30, edgeitems=2, max_line_width=76, suppress_small=True)


def _to_array(actual: Any, name: str, expected: np.ndarray) -> np.ndarray:
    """Convert the student's value to an ndarray or raise a message saying why it is not one."""
    if actual is None:
        raise AssertionError(f"{name}: your function returned None: did you forget `return`?")
    module = type(actual).__module__ or ""
    if module.startswith("torch"):
        raise AssertionError(
            f"{name}: got {describe(actual)}; return a NumPy array (this exercise is NumPy only)"
        )
    if isinstance(actual, tuple) and expected.ndim > 0 and any(
        isinstance(v, np.ndarray | dict | tuple | list) or v is None for v in actual
    ):
        raise AssertionError(
            f"{name}: got {describe(actual)}; expected one array of shape {expected.shape}"
        )
    if isinstance(actual, dict | str | bytes | set):
        raise AssertionError(f"{name}: got {describe(actual)}; expected a NumPy array of shape {expected.shape}")
    try:
        arr = np.asarray(actual)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise AssertionError(
            f"{name}: got {describe(actual)}, which is not an array of numbers ({exc})"
        ) from None
    return arr


def _shape_hints(got: tuple[int, ...], want: tuple[int, ...], guesses: bool = True) -> list[str]:
    hints: list[str] = []
    if len(got) == len(want):
        diffs = [g - w for g, w in zip(got, want, strict=True)]
        if got[::-1] == want and got != want:
            hints.append("the shape is the expected one reversed: a transposed result?")
        elif sorted(got) == sorted(want):
            hints.append("same sizes in another order: axes swapped? (layout is NCHW)")
        elif not guesses:
            axes = [f"axis {i} by {d:+d}" for i, d in enumerate(diffs) if d]
            hints.append("differs along " + ", ".join(axes))
        elif all(abs(d) <= 2 for d in diffs) and any(abs(d) == 1 for d in diffs):
            axes = [i for i, d in enumerate(diffs) if d]
            hints.append(
                f"off by one along axis {', '.join(map(str, axes))}: the output size is "
                "(n + 2*pad - k) // stride + 1 (check the +1 and the loop ranges)"
            )
        elif all(d == 0 or d % 2 == 0 for d in diffs) and any(d < 0 for d in diffs) and all(d <= 0 for d in diffs):
            hints.append("smaller by an even amount: padding ignored?")
        elif all(d >= 0 for d in diffs) and len(want) >= 2 and any(
            w > 0 and g > w and g % w in (0, 1, w - 1) for g, w in zip(got[-2:], want[-2:], strict=True)
        ):
            hints.append("spatially larger than expected: stride ignored?")
    elif len(got) == len(want) - 1:
        for i in range(len(want)):
            if want[:i] + want[i + 1 :] == got:
                axis = _AXIS_NAMES.get(len(want), ())
                label = axis[i] if i < len(axis) else f"axis {i}"
                hints.append(f"the {label} axis (size {want[i]}) is missing: summed over or indexed away?")
                break
    elif len(got) == len(want) + 1:
        for i in range(len(got)):
            if got[:i] + got[i + 1 :] == want:
                hint = f"an extra axis {i} of size {got[i]}"
                hint += ": use keepdims=False or squeeze it" if got[i] == 1 else ": a sum over it is missing?"
                hints.append(hint)
                break
    if not hints and int(np.prod(got)) == int(np.prod(want)):
        hints.append("same number of elements: reshaped or flattened in the wrong order?")
    return hints


def matches(actual: np.ndarray, candidate: Any, rtol: float, atol: float) -> bool:
    """Return True when ``candidate`` has ``actual``'s shape and is close to it (no exceptions)."""
    try:
        cand = np.asarray(candidate, dtype=np.float64)
        act = np.asarray(actual, dtype=np.float64)
    except (ValueError, TypeError):
        return False
    if cand.shape != act.shape or cand.size == 0:
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(act, cand, rtol=rtol, atol=atol, equal_nan=False))


def _likely_bug(actual: np.ndarray, bugs: Mapping[str, Any] | None, rtol: float, atol: float) -> str | None:
    if not bugs:
        return None
    for description, candidate in bugs.items():
        if candidate is not None and matches(actual, candidate, max(rtol, 1e-6), max(atol, 1e-9)):
            return description
    return None


def _value_hints(act: np.ndarray, exp: np.ndarray, guesses: bool = True) -> list[str]:
    hints: list[str] = []
    with np.errstate(all="ignore"):
        if not np.any(act) and np.any(exp):
            return ["all values are 0" + (": the output was created but never filled?" if guesses else "")]
        if np.allclose(act, -exp, rtol=1e-6, atol=1e-9):
            return ["the sign is flipped: every value is the negative of the expected one"]
        if act.ndim >= 2 and act.shape[-1] == act.shape[-2] and np.allclose(
            np.swapaxes(act, -1, -2), exp, rtol=1e-6, atol=1e-9
        ):
            return ["rows and columns are swapped: the result is the expected one transposed"]
        scale = np.max(np.abs(exp))
        nz = np.abs(exp) > 1e-6 * max(scale, 1e-300)
        if np.count_nonzero(nz) >= 2:
            ratios = act[nz] / exp[nz]
            r = float(np.median(ratios))
            if r != 0 and np.allclose(ratios, r, rtol=1e-6) and not np.isclose(r, 1.0):
                return [f"every value is {r:.6g} times the expected one" + (": a missing or extra scale factor?"
                                                                              if guesses else "")]
        diff = act - exp
        if diff.size >= 2 and np.allclose(diff, diff.flat[0], rtol=1e-6, atol=1e-9 * max(scale, 1.0)):
            return [f"every value is off by the same amount ({float(diff.flat[0]):.6g})"
                    + (": bias or offset?" if guesses else "")]
    return hints


_tier = {"name": "public"}


def set_tier(tier: str) -> None:
    """Tell ``assert_close`` which tier is being checked: hidden-tier messages show where and by how
    much a result differs, but never the expected array itself (hidden cases stay hidden)."""
    if tier not in ("public", "hidden"):
        raise ValueError(f"tier must be 'public' or 'hidden', got {tier!r}")
    _tier["name"] = tier


def assert_close(
    actual: Any,
    expected: Any,
    *,
    name: str = "output",
    rtol: float = 1e-6,
    atol: float = 1e-9,
    bugs: Mapping[str, Any] | None = None,
    guesses: bool = True,
    show_values: bool | None = None,
) -> None:
    """Assert that ``actual`` equals ``expected`` up to tolerance, explaining any difference.

    Args:
        actual: the student's result (anything; it is checked, not trusted).
        expected: the reference result, array-like of any shape, or a scalar.
        name: what is compared, used as the message prefix ("out", "dx", ...).
        rtol, atol: elementwise test ``|actual - expected| <= atol + rtol * |expected|``.
            When ``actual`` is float32 or float16 the tolerance is widened to that dtype's
            resolution (a float32 answer is not wrong).
        bugs: optional ``{description: array the bug would produce}``; when the student's
            result matches one of them, "Likely bug: <description>" is appended.
        guesses: False keeps the message to facts (what differs, where, by how much): no
            guessed cause such as "stride ignored?" (the exercise records name bugs instead).
        show_values: print small planes of the result and the expected values (default: on in
            the public tier, see :func:`set_tier`); never on for hidden cases.

    Raises:
        AssertionError: and only that, with a message of a few lines.
    """
    exp = np.asarray(expected)
    act = _to_array(actual, name, exp)
    lines: list[str] = []
    problem: str | None = None

    if act.dtype == object or act.dtype.kind in "OSUVMm":
        problem = f"{name}: got {describe(actual)} (dtype {act.dtype}), which is not an array of numbers"
    elif act.dtype.kind == "c":
        problem = f"{name}: got complex values (dtype {act.dtype}); expected real numbers"
    elif act.dtype.kind == "b" and exp.dtype.kind != "b":
        problem = f"{name}: got a boolean array; expected numbers (dtype {exp.dtype})"
    elif act.dtype.kind in "iu" and exp.dtype.kind == "f":
        problem = (
            f"{name}: got integer dtype {act.dtype}; expected floating-point values "
            "(np.zeros_like(x) and dtype=x.dtype copy an integer input's dtype: use np.zeros(shape), "
            "np.zeros_like(x, dtype=float) or x.astype(float))"
        )
    if problem is not None:
        raise AssertionError(problem)

    if act.shape != exp.shape and not (exp.shape == () and act.size == 1):
        lines.append(f"{name}: wrong shape {act.shape}; expected {exp.shape}")
        lines += ["  hint: " + h for h in _shape_hints(act.shape, exp.shape, guesses)]
        bug = _likely_bug(act, bugs, rtol, atol)
        if bug:
            lines.append(f"Likely bug: {bug}")
        raise AssertionError("\n".join(lines))
    if exp.shape == () and act.shape != ():
        act = act.reshape(())

    act64 = act.astype(np.float64)
    exp64 = exp.astype(np.float64)
    exp_finite = np.isfinite(exp64)
    bad_nonfinite = ~np.isfinite(act64) & exp_finite
    if np.any(bad_nonfinite):
        count = int(np.count_nonzero(bad_nonfinite))
        first = tuple(int(i) for i in np.argwhere(bad_nonfinite)[0])
        kinds = "NaN" if np.isnan(act64[bad_nonfinite]).all() else "NaN or inf"
        lines.append(
            f"{name}: contains {kinds} at {count} of {act64.size} positions (first at index {first}); "
            "expected finite values"
        )
        lines.append("  hint: a division by zero, log of 0, overflow, or np.empty left unfilled?")
        raise AssertionError("\n".join(lines))

    if act.dtype.kind == "f" and act.dtype.itemsize < 8:
        rtol = max(rtol, 50 * float(np.finfo(act.dtype).eps))
        atol = max(atol, 10 * float(np.finfo(act.dtype).eps) * float(np.max(np.abs(exp64), initial=0.0)))

    with np.errstate(all="ignore"):
        diff = np.abs(act64 - exp64)
        tol = atol + rtol * np.abs(exp64)
        same_nonfinite = ~exp_finite & ((act64 == exp64) | (np.isnan(act64) & np.isnan(exp64)))
        bad = (diff > tol) & ~same_nonfinite
        bad |= ~exp_finite & ~same_nonfinite
    if not np.any(bad):
        return

    count = int(np.count_nonzero(bad))
    with np.errstate(all="ignore"):
        excess = np.where(bad, np.nan_to_num(diff / np.maximum(tol, 1e-300), nan=np.inf, posinf=np.inf), -1.0)
    worst = np.unravel_index(int(np.argmax(excess)), act64.shape)
    where = tuple(int(i) for i in worst)
    max_abs = float(np.nanmax(np.where(bad, diff, 0.0)))
    show = (_tier["name"] == "public") if show_values is None else show_values
    lines.append(f"{name}: {count} of {act64.size} values differ from the expected ones")
    if show:
        lines.append(
            f"  worst at index {where}: got {act64[worst]:.6g}, expected {exp64[worst]:.6g} "
            f"(max abs diff {max_abs:.3g}, rel error {rel_error(act64, exp64):.3g})"
        )
    else:
        lines.append(f"  worst at index {where} (max abs diff {max_abs:.3g}, rel error {rel_error(act64, exp64):.3g})")
    if act64.ndim >= 1 and show:
        lead = where[:-2] if act64.ndim > 2 else ()
        plane_a, plane_e = act64[lead], exp64[lead]
        if plane_a.size <= 25:
            if lead:
                lines.append(f"  in the plane [{', '.join(map(str, lead))}, :, :]:")
            lines.append("  got:      " + _excerpt(plane_a).replace("\n", "\n" + " " * 12))
            lines.append("  expected: " + _excerpt(plane_e).replace("\n", "\n" + " " * 12))
    bug = _likely_bug(act64, bugs, rtol, atol)
    if bug:
        lines.append(f"Likely bug: {bug}")
    else:
        lines += [("  hint: " if guesses else "  ") + h for h in _value_hints(act64, exp64, guesses)]
    raise AssertionError("\n".join(lines))
