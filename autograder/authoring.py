"""Build nbgrader source notebooks cell by cell.

Course authors write a short script that calls these helpers and then save the notebook into
``solutions/<assignment>/<assignment>.ipynb``.  The saved notebook is the source of truth; the
helpers only spare authors from typing nbgrader's cell metadata by hand.

Cell kinds (nbgrader's vocabulary):

- ``md`` / ``code``: ordinary cells, editable by students, not graded.
- ``readonly``: a locked cell (imports, seeding, data) students should not change.
- ``solution``: an autograded answer cell; put the answer between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION``; nbgrader replaces it with the course's uniform stub.
- ``test``: a locked, graded test cell with points; hidden parts go between
  ``### BEGIN HIDDEN TESTS`` and ``### END HIDDEN TESTS``.
- ``written``: a manually graded markdown answer.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

SCHEMA = 3


def _meta(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": SCHEMA,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def md(text: str) -> nbformat.NotebookNode:
    """Return an ordinary markdown cell."""
    return new_markdown_cell(text.strip("\n"))


def code(src: str) -> nbformat.NotebookNode:
    """Return an ordinary (ungraded, editable) code cell."""
    return new_code_cell(src.strip("\n"))


def readonly(src: str, grade_id: str) -> nbformat.NotebookNode:
    """Return a locked code cell that students cannot edit."""
    return new_code_cell(src.strip("\n"), metadata=_meta(grade_id, grade=False, solution=False, locked=True))


def solution(src: str, grade_id: str) -> nbformat.NotebookNode:
    """Return an autograded answer cell (its ``### BEGIN/END SOLUTION`` block becomes the stub)."""
    if "### BEGIN SOLUTION" not in src:
        raise ValueError(f"solution cell {grade_id!r} has no '### BEGIN SOLUTION' block")
    return new_code_cell(src.strip("\n"), metadata=_meta(grade_id, grade=False, solution=True, locked=False))


def test(src: str, grade_id: str, points: float) -> nbformat.NotebookNode:
    """Return a locked, graded test cell worth ``points``."""
    if points <= 0:
        raise ValueError(f"test cell {grade_id!r} needs positive points, got {points}")
    return new_code_cell(src.strip("\n"), metadata=_meta(grade_id, grade=True, solution=False, locked=True,
                                                          points=points))


def written(text: str, grade_id: str, points: float) -> nbformat.NotebookNode:
    """Return a manually graded markdown answer cell."""
    return new_markdown_cell(text.strip("\n"), metadata=_meta(grade_id, grade=True, solution=True, locked=False,
                                                               points=points))


def save(cells: list, path: str | Path) -> Path:
    """Write ``cells`` as a notebook with a Python 3 kernel, refusing duplicate grade ids."""
    ids = [c.metadata["nbgrader"]["grade_id"] for c in cells if "nbgrader" in c.metadata]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"duplicate grade_id(s): {dupes}")
    nb = new_notebook(cells=cells, metadata={
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    })
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
