"""One short success line per passed check (stdout only)."""

from __future__ import annotations

import sys

__all__ = ["passed"]


def passed(exercise: str, detail: str = "") -> None:
    """Print exactly one short line saying that an exercise's check passed.

    Args:
        exercise: the exercise's name, e.g. "corr2d".
        detail: what was checked, e.g. "6 cases match (public)".

    Example: ``passed("corr2d", "6 cases match (public)")`` prints ``✔ corr2d: 6 cases match (public)``.
    Falls back to ``OK`` instead of the tick mark when stdout cannot encode it.
    """
    text = f"{exercise}: {detail}" if detail else f"{exercise}: passed"
    try:
        print(f"\u2714 {text}", file=sys.stdout)
    except UnicodeEncodeError:
        print(f"OK {text}", file=sys.stdout)
