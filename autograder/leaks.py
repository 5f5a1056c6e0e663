"""What counts as a leak of solution or hidden-test material into a student notebook.

Pure functions on notebooks (nbformat only), shared by ``python -m autograder release`` (which
scans the whole release folder) and :class:`autograder.preprocessors.LeakCheck` (which runs inside
nbgrader's generate_assignment, so that formgrader's Generate button refuses a leak too).
"""

from __future__ import annotations

import nbformat

DELIMITERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
              "BEGIN MARK SCHEME", "END MARK SCHEME")
MIN_LEAK_LEN = 8  # shorter lines (``return x``, ``pass``) are too common to call a leak


class LeakError(RuntimeError):
    """The student version contains solution or hidden-test material."""


def secret_lines(source_nb: nbformat.NotebookNode) -> dict[str, set[str]]:
    """Return ``{"solution": lines, "hidden": lines}``: stripped lines inside the secret regions
    of a source notebook that appear nowhere outside them (the lines whose presence is a leak)."""
    inside: dict[str, set[str]] = {"solution": set(), "hidden": set()}
    outside: set[str] = set()
    for cell in source_nb.cells:
        region = None
        for line in cell.source.split("\n"):
            s = line.strip()
            if "BEGIN SOLUTION" in s:
                region = "solution"
                continue
            if "BEGIN HIDDEN TESTS" in s:
                region = "hidden"
                continue
            if "END SOLUTION" in s or "END HIDDEN TESTS" in s:
                region = None
                continue
            (inside[region] if region else outside).add(s)
    return {k: {s for s in v - outside if len(s) >= MIN_LEAK_LEN and not s.startswith("#")}
            for k, v in inside.items()}


def text_leaks(text: str, secrets: dict[str, set[str]]) -> list[str]:
    """Return the leaks (delimiters, secret lines) found in ``text``."""
    problems = [f"contains the delimiter {d!r}" for d in DELIMITERS if d in text]
    lines = {ln.strip() for ln in text.split("\n")}
    for kind, secret in secrets.items():
        problems += [f"contains {kind} line {s!r}" for s in sorted(secret & lines)]
    return problems


def notebook_leaks(released: nbformat.NotebookNode, secrets: dict[str, set[str]]) -> list[str]:
    """Return the leaks of one student notebook: outputs, delimiters and secret lines."""
    problems = [f"cell {i} has outputs" for i, c in enumerate(released.cells) if c.get("outputs")]
    return problems + text_leaks("\n".join(c.source for c in released.cells), secrets)
