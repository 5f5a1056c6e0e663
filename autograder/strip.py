"""Remove what running a notebook adds: outputs, execution counts, widget state, run metadata.

Instructors may run and save ``solutions/`` in JupyterLab; the outputs never reach students (the
release clears them and its leak check refuses any) nor git, where
``python -m autograder strip-outputs`` is the clean filter of ``*.ipynb`` (see
``.gitattributes``; enable it once per clone with
``git config filter.cnnlab-strip.clean "python -m autograder strip-outputs"``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

import nbformat

CELL_KEYS = ("execution", "collapsed", "scrolled")       # cell metadata JupyterLab writes when run
NOTEBOOK_KEYS = ("widgets",)                              # saved widget state


def strip_notebook(nb: nbformat.NotebookNode) -> bool:
    """Strip ``nb`` in place; return True when anything was removed."""
    changed = False
    for key in NOTEBOOK_KEYS:
        if key in nb.metadata:
            del nb.metadata[key]
            changed = True
    for cell in nb.cells:
        for key in CELL_KEYS:
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
        if cell.cell_type == "code":
            if cell.get("outputs"):
                cell.outputs = []
                changed = True
            if cell.get("execution_count") is not None:
                cell.execution_count = None
                changed = True
    return changed


def strip_text(text: str) -> str:
    """Return the notebook JSON ``text`` stripped (unchanged text when it is not a notebook)."""
    try:
        nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    except Exception:  # noqa: BLE001 - a git filter must pass through what it cannot read
        return text
    if not strip_notebook(nb):
        return text
    return nbformat.writes(nb) + "\n"


def strip_file(path: Path) -> bool:
    """Strip the notebook at ``path`` in place; return True when it changed."""
    text = path.read_text(encoding="utf-8")
    new = strip_text(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
        return True
    return False


def strip_stream(fin: TextIO = sys.stdin, fout: TextIO = sys.stdout) -> None:
    """Read a notebook from ``fin`` and write it stripped to ``fout`` (a git clean filter)."""
    fout.write(strip_text(fin.read()))
    fout.flush()
