"""The bundled sample class, generated from solutions/ so that it always matches the course.

:func:`make_class` writes ``<dest>/<student>/<assignment>/<assignment>.ipynb`` (+ ``timestamp.txt``)
for a small class of realistic submissions, built from each assignment's released (student)
notebook and its solution notebook:

========== =================================================================
reference  every answer is the reference solution
blank      the released notebook, untouched
partial    the first half of the answers solved, the rest left as stubs
wrong      a realistic wrong answer in every exercise (see ``wrong_answers``)
syntax     reference answers, but the first answer has a syntax error
late       reference answers, submitted a day after the due date
messy      reference answers; one test cell deleted, one duplicated, two swapped
corrupt    a truncated, unreadable .ipynb file
========== =================================================================
"""

from __future__ import annotations

import ast
import copy
import datetime as dt
import json
import math
from pathlib import Path

import nbformat

from .wrong_answers import wrong_answers

ROSTER = Path(__file__).with_name("roster.csv")  # the sample class as a Canvas export lists it
KINDS = ("reference", "blank", "partial", "wrong", "syntax", "late", "messy", "corrupt")
DUE = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.timezone.utc)
ON_TIME = DUE - dt.timedelta(hours=2)
LATE = DUE + dt.timedelta(days=1)


def answer_code(source: str) -> str:
    """A solution cell's code with the ``### BEGIN/END SOLUTION`` lines removed."""
    return "\n".join(ln for ln in source.split("\n")
                     if "### BEGIN SOLUTION" not in ln and "### END SOLUTION" not in ln)


def generic_wrong(source: str) -> str:
    """A wrong answer for any solution cell: its first function returns its first argument."""
    code = answer_code(source)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code + "\nraise ValueError('wrong')"
    funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if not funcs:
        return code + "\n_ = None"
    f = funcs[0]
    return code + f"\n\n\ndef {f.name}(*args, **kwargs):\n    return args[0] if args else None\n"


def _gid(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _solutions(solution_nb) -> dict[str, str]:
    return {_gid(c): c.source for c in solution_nb.cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def submission(kind: str, release_nb, solution_nb, assignment: str):
    """Return the notebook a student of ``kind`` submits (None for ``corrupt``)."""
    nb = copy.deepcopy(release_nb)
    sols = _solutions(solution_nb)
    order = [_gid(c) for c in nb.cells if _gid(c) in sols]
    if kind == "blank":
        return nb
    if kind == "corrupt":
        return None
    for c in nb.cells:
        gid = _gid(c)
        if gid not in sols:
            continue
        idx = order.index(gid)
        if kind == "partial" and idx >= math.ceil(len(order) / 2):
            continue
        if kind == "wrong":
            table = wrong_answers(assignment).get(gid)
            c.source = table[0][1] if table else generic_wrong(sols[gid])
        else:
            c.source = answer_code(sols[gid])
        if kind == "syntax" and idx == 0:
            c.source = c.source.replace("def ", "def def ", 1) if "def " in c.source else c.source + "\n)("
    if kind == "messy":
        tests = [i for i, c in enumerate(nb.cells)
                 if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")]
        if len(tests) >= 3:
            dup = copy.deepcopy(nb.cells[tests[1]])
            dup["id"] = "dup" + dup.get("id", "x")[:8]
            a, b = tests[-2], tests[-1]
            nb.cells[a], nb.cells[b] = nb.cells[b], nb.cells[a]
            nb.cells.insert(tests[1] + 1, dup)
            del nb.cells[tests[0]]
    return nb


def make_class(solutions: Path, release: Path, dest: Path, assignments: list[str],
               kinds: tuple[str, ...] = KINDS, copies: int = 1) -> list[tuple[str, str]]:
    """Write the sample class into ``dest``; return (student, assignment) pairs.

    ``copies`` > 1 repeats every kind under numbered student names (for the benchmark).
    """
    made = []
    for a in assignments:
        for src in sorted((Path(solutions) / a).glob("*.ipynb")):
            sol_nb = nbformat.read(src, as_version=4)
            rel_nb = nbformat.read(Path(release) / a / src.name, as_version=4)
            for n in range(copies):
                for kind in kinds:
                    student = kind if copies == 1 else f"{kind}{n + 1:02d}"
                    folder = Path(dest) / student / a
                    folder.mkdir(parents=True, exist_ok=True)
                    nb = submission(kind, rel_nb, sol_nb, a)
                    if nb is None:
                        text = json.dumps(nbformat.v4.new_notebook())[:25]
                        (folder / src.name).write_text(text)
                    else:
                        nbformat.write(nb, folder / src.name)
                    when = LATE if kind == "late" else ON_TIME
                    (folder / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
                    made.append((student, a))
    return sorted(set(made))
