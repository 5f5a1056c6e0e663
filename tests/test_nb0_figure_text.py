"""Figure labels render without a CJK font.

Matplotlib draws text with DejaVu Sans, which has no Hangul: a Korean gloss in a figure title shows
as boxes on a machine without a CJK font (issue 18 found them in 01, 02 and 05). Korean stays in the
notebooks' prose, where the browser's fonts render it; every character in the code that draws the
figures (the notebooks' code cells, ``cnnlab.viz`` and ``cnnlab.widgets``) must be one DejaVu Sans has.
"""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib
import nbformat
import pytest
from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

from autograder.config import Course

COURSE = Course()
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def glyphs() -> set[int]:
    path = font_manager.findfont(font_manager.FontProperties(family=matplotlib.rcParams["font.family"]))
    assert "DejaVu" in Path(path).name, path
    return set(FT2Font(path).get_charmap())


def _strings(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return [source]
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _sources() -> list[tuple[str, str]]:
    out = []
    for a in COURSE.assignments():
        for path in COURSE.source_notebooks(a):
            for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
                if cell.cell_type == "code":
                    out.append((f"{path.name} cell {i}", cell.source))
    for folder in ("viz", "widgets"):
        for path in sorted((REPO / "cnnlab" / folder).glob("*.py")):
            out.append((str(path.relative_to(REPO)), path.read_text(encoding="utf-8")))
    return out


def test_figure_text_has_only_glyphs_of_the_default_font(glyphs):
    missing = {}
    for where, source in _sources():
        for s in _strings(source):
            bad = sorted({ch for ch in s if ord(ch) > 127 and ord(ch) not in glyphs})
            if bad:
                missing.setdefault(where, set()).update(bad)
    assert not missing, f"characters the figures' font lacks (keep them in prose): {missing}"


def test_korean_glosses_stay_in_the_prose():
    """The glossary's Korean terms are in the markdown of 01, 02 and 05 (they render in the browser)."""
    hangul = lambda text: any("\uac00" <= ch <= "\ud7a3" for ch in text)  # noqa: E731
    for a in ("01_history", "02_filters", "05_pooling"):
        cells = nbformat.read(COURSE.source_notebooks(a)[0], as_version=4).cells
        assert any(c.cell_type == "markdown" and hangul(c.source) for c in cells), a
        assert not any(c.cell_type == "code" and hangul(c.source) for c in cells), a
