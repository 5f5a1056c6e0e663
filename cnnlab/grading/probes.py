"""Probes that watch what a student's function runs, without timing anything.

- :func:`count_user_lines`: how many lines of the student's own Python run in one call (a loop
  over output pixels runs thousands, a vectorised version a few dozen), independent of speed;
- :func:`calls_into`: the first function of a given module that a call runs, from any thread (the
  size exercises may not call ``cnnlab.shapes``, whose answers they are compared with);
- :func:`refuse_module`: an ``extra`` property for an :class:`~cnnlab.grading.exercise.Exercise`
  that fails when the student's function runs code of a module.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Callable
from typing import Any

from .exercise import Problem

__all__ = ["count_user_lines", "calls_into", "refuse_module"]


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
    one more module (``cnnlab/shapes.py`` for the size exercises). For the duration of the call,
    every function whose code is in that file is trapped (its ``__code__`` swapped, as the guard's
    fast mode does), so a call from any thread is seen, aliases included, and stops there.
    Other exceptions propagate unchanged.
    """
    from .guard import _Tripped, _Watch, _watch_threads, functions_of

    target = os.path.realpath(module_file)
    modules = [m for m in list(sys.modules.values())
               if isinstance(getattr(m, "__file__", None), str) and os.path.realpath(m.__file__) == target]
    watch = _Watch((), (), functions_of(modules=modules))
    from . import guard

    guard._ACTIVE.append(watch)
    undo = watch.install_traps()
    threads = _watch_threads(watch)
    try:
        fn(*args, **kwargs)
    except _Tripped:
        pass
    finally:
        threads()
        undo()
        guard._ACTIVE.remove(watch)
    return watch.hit


def refuse_module(module: Any, *args: Any, tiers: tuple[str, ...] = ("hidden",), advice: str = "",
                  **kwargs: Any) -> Callable[[Callable[..., Any], str], str | None]:
    """Return an ``extra(fn, tier)`` that fails when ``fn(*args, **kwargs)`` runs code of ``module``.

    Used where a module holds the answers (``cnnlab.shapes`` for the counting exercises).
    Exceptions from the student's code are ignored here: the value checks report them.
    """
    def extra(fn: Callable[..., Any], tier: str) -> str | None:
        if tier not in tiers:
            return None
        try:
            hit = calls_into(fn, module.__file__, *args, **kwargs)
        except Exception:  # noqa: BLE001 - already reported by the value checks
            return None
        if hit:
            raise Problem(f"{fn.__name__}: your function called {hit}; {advice or 'write it yourself'}",
                          bug=f"called {module.__name__}")
        return None
    # what the grader's trusted verifier reads: it refuses this module's code in every call of these tiers
    extra.refuses = module.__name__  # type: ignore[attr-defined]
    extra.tiers = tuple(tiers)  # type: ignore[attr-defined]
    extra.advice = advice  # type: ignore[attr-defined]
    return extra
