"""Shared plumbing for the notebook checks in ``cnnlab.checks`` (private).

Only bookkeeping lives here (tier validation, exact integer comparison with a bug table, a
deterministic "did you vectorise?" probe); closeness, gradients, the integrity guard and the
one-line success message come from ``cnnlab.grading``.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

TIERS = ("public", "hidden")


def check_tier(tier: str) -> str:
    """Return ``tier`` if it is "public" or "hidden", else raise ValueError naming it."""
    if tier not in TIERS:
        raise ValueError(f"tier must be 'public' or 'hidden', got {tier!r}")
    from cnnlab import grading

    grading.set_tier(tier)  # hidden-tier failure messages never print the expected arrays
    return tier


def call(fn: Callable[..., Any], *args: Any, exercise: str, **kwargs: Any) -> Any:
    """Run a student's function under the integrity guard of ``cnnlab.grading``.

    Every exception the student's code raises comes back as an AssertionError naming the
    exercise (``NotImplementedError`` as "not implemented yet").
    """
    from cnnlab import grading

    return grading.guarded(fn, *args, exercise=exercise, **kwargs)


def as_int_result(value: Any, exercise: str, call_text: str) -> int:
    """Return ``value`` as an int, or raise AssertionError when it is not a whole number."""
    if isinstance(value, (bool, np.bool_)):
        raise AssertionError(f"{exercise}: {call_text} returned a bool ({value!r}); return an int")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        raise AssertionError(
            f"{exercise}: {call_text} returned the float {value!r}; return an int "
            f"(use // for whole-number division, or int(...))"
        )
    raise AssertionError(f"{exercise}: {call_text} returned {type(value).__name__} {value!r}; return an int")


def expect_int(value: Any, expected: int, exercise: str, call_text: str,
               bugs: Mapping[str, int] | None = None) -> None:
    """Compare an integer result exactly; on a mismatch name the first bug in ``bugs`` it matches."""
    got = as_int_result(value, exercise, call_text)
    if got == expected:
        return
    msg = f"{exercise}: {call_text} returned {got:,}, expected {expected:,}."
    hits = [desc for desc, wrong in (bugs or {}).items() if wrong != expected and got == wrong]
    if hits:
        msg += " Likely bug: " + "; or ".join(hits) + "."
    raise AssertionError(msg)


def close(actual: Any, expected: np.ndarray, *, exercise: str, name: str, case: str,
          bugs: Mapping[str, np.ndarray] | None = None, rtol: float = 1e-6, atol: float = 1e-9) -> None:
    """``grading.assert_close`` with the exercise and the case prefixed to its message.

    Bug arrays equal to ``expected`` (a variant that makes no difference for this case) are dropped.
    """
    from cnnlab import grading

    useful = {}
    for desc, arr in (bugs or {}).items():
        arr = np.asarray(arr)
        if arr.shape == expected.shape and np.allclose(arr, expected, rtol=rtol, atol=atol):
            continue
        useful[desc] = arr
    try:
        grading.assert_close(actual, expected, name=name, rtol=rtol, atol=atol, bugs=useful or None)
    except AssertionError as err:
        raise AssertionError(f"{exercise} ({case}): {err}") from None


# ----------------------------------------------------------------------------------------------
# "did you vectorise?": count the lines of the student's own Python code that run in one call
# ----------------------------------------------------------------------------------------------
def _library_roots() -> tuple[str, ...]:
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(key)
        if path:
            roots.add(path)
    roots.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the cnnlab package
    return tuple(os.path.abspath(r) + os.sep for r in roots if r)


def count_user_lines(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """Call ``fn`` and count the line events of code that is not NumPy, the stdlib or cnnlab.

    The count does not depend on the machine's speed, so it tells a loop over output positions
    (thousands of lines) from a vectorised version (a few dozen) without timing anything.
    Returns ``(result, lines)``. Exceptions propagate unchanged.
    """
    roots = _library_roots()
    verdict: dict[str, bool] = {}
    lines = 0

    def is_user(filename: str) -> bool:
        hit = verdict.get(filename)
        if hit is None:
            if filename.startswith("<frozen") or filename.startswith("<string>"):
                hit = False
            else:
                hit = not os.path.abspath(filename).startswith(roots) if os.path.isabs(filename) else True
            verdict[filename] = hit
        return hit

    def local(frame, event, arg):  # noqa: ANN001, ARG001 - sys.settrace protocol
        nonlocal lines
        if event == "line":
            lines += 1
        return local

    def global_trace(frame, event, arg):  # noqa: ANN001, ARG001
        if event == "call" and is_user(frame.f_code.co_filename):
            return local
        return None

    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        result = fn(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return result, lines


def calls_into(fn: Callable[..., Any], module_file: str, *args: Any, **kwargs: Any) -> str | None:
    """Call ``fn`` and return the qualified name of the first function of ``module_file`` it ran, or None.

    The integrity guard of ``cnnlab.grading`` covers the references, torch and scipy; this covers
    one more module (``cnnlab/shapes.py`` for the size exercises). Exceptions propagate unchanged.
    """
    target = os.path.abspath(module_file)
    hit: list[str] = []

    def global_trace(frame, event, arg):  # noqa: ANN001, ARG001 - sys.settrace protocol
        if event == "call" and not hit and os.path.abspath(frame.f_code.co_filename) == target:
            module = frame.f_globals.get("__name__", "")
            hit.append(f"{module}.{frame.f_code.co_qualname}")
        return None

    previous = sys.gettrace()
    sys.settrace(global_trace)
    try:
        fn(*args, **kwargs)
    finally:
        sys.settrace(previous)
    return hit[0] if hit else None


def refuse_shapes(student_fn: Callable[..., Any], exercise: str, *args: Any, **kwargs: Any) -> None:
    """Fail when the student's function runs code from ``cnnlab.shapes`` (the answer key for sizes and counts).

    Exceptions from the student's code are ignored here: the value checks report them.
    """
    from cnnlab import shapes

    try:
        hit = calls_into(student_fn, shapes.__file__, *args, **kwargs)
    except Exception:  # noqa: BLE001 - already reported by the value checks
        return
    if hit:
        raise AssertionError(f"exercise {exercise}: your function called {hit}; write it yourself "
                             f"(plain integer arithmetic is all it takes)")
