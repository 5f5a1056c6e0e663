"""Demonstration cells that the grader does not run.

A source notebook marks a code cell with the cell tag ``skip-in-grading`` when it only
demonstrates (a PyTorch twin, a timing, a big figure) and scores nothing. The grading kernel
then shows one line in its place instead of running it (``GuardedExecute``, which recognises the
cell by the sha256 of its source, as the instructor wrote it: a student who edits the cell gets
it run; a tag a student adds does nothing). Students' own runs are not affected.

Skipping is safe only when nothing after the cell needs what it computes: :func:`problems` lists,
for a source notebook, every name a skipped cell binds that a later cell which is run reads
(a skipped cell may feed later skipped cells). ``release`` refuses a notebook with a problem,
and answer and test cells can never be skipped.
"""

from __future__ import annotations

import ast
import hashlib

from nbgrader.utils import is_grade, is_solution

SKIP_TAG = "skip-in-grading"
NOTE = "[not run while grading: a demonstration that scores nothing; run the notebook to see it]\n"


def is_skipped(cell) -> bool:
    """Whether the source notebook's ``cell`` is a demonstration the grader does not run."""
    return (cell.get("cell_type") == "code" and SKIP_TAG in cell.get("metadata", {}).get("tags", [])
            and not is_grade(cell) and not is_solution(cell))


def digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def skipped_hashes(notebooks) -> list[str]:
    """sha256 of the sources of the skipped cells of the given source notebooks."""
    return sorted({digest(c.source) for nb in notebooks for c in nb.cells if is_skipped(c)})


def _tree(src: str):
    try:
        return ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.split("\n")))
    except SyntaxError:
        return None


def bound_names(src: str) -> set[str]:
    """Names a cell binds at its top level (assignments, loops, imports, definitions)."""
    tree = _tree(src)
    out: set[str] = set()
    if tree is None:
        return out
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        if isinstance(node, ast.Lambda):
            continue
        todo += list(ast.iter_child_nodes(node))
    return out


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _free(scope) -> set[str]:
    """Names read inside a function, lambda, class body or comprehension that it does not bind itself."""
    loads, own = set(), set()
    for n in ast.walk(scope):
        if isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else own).add(n.id)
        elif isinstance(n, ast.arg):
            own.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not scope:
            own.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            own |= {(a.asname or a.name).split(".")[0] for a in n.names}
    return loads - own


def read_names(src: str) -> set[str]:
    """The names a cell needs from the cells before it: what it reads at its top level, and
    the free names of its functions and comprehensions, less what it binds itself."""
    tree = _tree(src)
    if tree is None:
        return set()
    reads: set[str] = set()
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, _SCOPES):
            reads |= _free(node)
            if not isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                todo += list(node.decorator_list) + list(getattr(node, "bases", []))
                args = getattr(node, "args", None)
                if args is not None:
                    todo += [d for d in args.defaults + args.kw_defaults if d is not None]
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            reads.add(node.id)
        todo += list(ast.iter_child_nodes(node))
    return reads - bound_names(src)


def problems(nb) -> list[str]:
    """Names bound by skipped cells and read by a later cell that the grader runs."""
    out = []
    bound: dict[str, int] = {}     # name -> index of the skipped cell that last bound it
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") != "code":
            continue
        if is_skipped(cell):
            for name in bound_names(cell.source):
                bound[name] = i
            continue
        for name in sorted(read_names(cell.source) & set(bound)):
            out.append(f"cell {i} reads {name!r}, which cell {bound[name]} binds, but cell {bound[name]} is "
                       f"tagged {SKIP_TAG!r} and is not run while grading")
    return out
