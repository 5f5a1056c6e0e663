"""A static scan of the code a student wrote, for the instructor: reflection, patching, escapes.

:func:`scan_notebook` reads every code cell that is not locked (answer cells and the student's own
cells) and returns one line per finding, e.g. ``00_toy ex_corr1d line 2: sys.modules (patching the
import system)``. Findings are advice for a person to look at, never a reason to change a score and never a
defence: a legitimate answer may use ``threading``, and a cheat may be written in a way no scan
sees (the points are confirmed by :mod:`autograder.verifier`, which does not read this). Names
built from pieces of text (``__builtins__["ex" + "ec"]``, ``vars(sys)["modu" + "les"]``) are
flagged as such.
"""

from __future__ import annotations

import ast

from nbgrader.utils import is_locked

ATTRIBUTES = {
    "__code__": "replacing a function's code", "__globals__": "reaching a function's globals",
    "__closure__": "reaching a function's closure", "__builtins__": "patching builtins",
    "__subclasses__": "reflection",
    "f_back": "frame inspection", "f_globals": "frame inspection", "f_locals": "frame inspection",
    "tb_frame": "frame inspection", "modules": "patching the import system",
    "meta_path": "an import hook", "path_hooks": "an import hook", "settrace": "a tracer",
    "setprofile": "a profiler hook", "addaudithook": "an audit hook", "set_custom_exc": "hiding errors",
    "showtraceback": "hiding errors", "run_cell": "patching IPython",
    "excepthook": "hiding errors", "_exit": "killing the process", "kill": "signalling processes",
    "pidfd_send_signal": "signalling processes", "setsid": "detaching processes", "fork": "starting processes",
}
MODULES = {
    "ctypes": "ctypes", "cffi": "ctypes", "gc": "reflection", "inspect": "reflection",
    "importlib": "the import system", "builtins": "patching builtins", "threading": "threads",
    "_thread": "threads", "multiprocessing": "processes", "subprocess": "processes", "signal": "signals",
    "socket": "network", "sqlite3": "databases", "pickle": "pickle", "marshal": "code objects",
    "types": "building code or modules", "sys": None, "os": None,
    "torch": "a forbidden library in a NumPy exercise", "scipy": "a forbidden library",
    "cnnlab.numpy_ref": "the course's reference code", "cnnlab.torch_ref": "the course's reference code",
    "cnnlab.checks": "the course's checks", "cnnlab.grading": "the course's checks",
}
CALLS = {"setattr": "setattr (patching)", "__import__": "__import__", "exec": "exec", "eval": "eval",
         "compile": "compile", "globals": "globals()", "get_ipython": "IPython internals", "vars": "vars() (reflection)",
         "breakpoint": "breakpoint()"}
ATTRIBUTES.update({"__setattr__": "setattr (patching)", "__delattr__": "delattr (patching)",
                   "__dict__": "reaching an object's attributes", "b64decode": "decoding hidden code",
                   "decompress": "decoding hidden code", "loads": "decoding hidden code"})
MODULES.update({"base64": "decoding hidden code", "codecs": "decoding hidden code", "zlib": "decoding hidden code",
                "runpy": "running code", "code": "running code"})
#: names whose appearance as text (a string, or one built from pieces: "ex" + "ec") is worth a look
NAMES = {**{k: v for k, v in ATTRIBUTES.items() if k not in ("loads", "kill", "decompress")},
         **{k: v for k, v in CALLS.items() if k not in ("get_ipython",)},
         "builtins": "patching builtins", "sys": "the interpreter", "cnnlab": "the course's package"}


def scan_source(src: str) -> list[tuple[int, str]]:
    """(line, finding) for one cell's source; a cell that does not parse gives nothing."""
    try:
        tree = ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.split("\n")))
    except SyntaxError:
        return []
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        text = _text(node)
        if text is not None and text in NAMES and not isinstance(node, ast.Constant | ast.JoinedStr):
            found.append((line, f"builds the name {text!r} from pieces ({NAMES[text]})"))
        elif text is not None and text in NAMES:
            found.append((line, f"the name {text!r} as text ({NAMES[text]})"))
        if isinstance(node, ast.Name) and node.id == "__builtins__":
            found.append((line, "__builtins__ (patching builtins)"))
        if isinstance(node, ast.Attribute) and node.attr in ATTRIBUTES:
            found.append((line, f"{node.attr} ({ATTRIBUTES[node.attr]})"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                for mod, why in MODULES.items():
                    if why and (name == mod or name.startswith(mod + ".")):
                        found.append((line, f"import {name} ({why})"))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in CALLS:
            found.append((line, CALLS[node.func.id]))
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Attribute) and not (isinstance(t.value, ast.Name) and t.value.id == "self"):
                    found.append((line, f"assigns {ast.unparse(t)} (patching a module)"))
    return sorted(set(found))


def _text(node) -> str | None:
    """The string an expression spells when it is built only of constants ("ex" + "ec",
    f"{'modu'}les", "".join(["__co", "de__"])), else None."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left), _text(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            part = _text(v.value) if isinstance(v, ast.FormattedValue) else _text(v)
            if part is None:
                return None
            parts.append(part)
        return "".join(parts)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and len(node.args) == 1 and isinstance(node.args[0], ast.List | ast.Tuple)):
        sep, parts = _text(node.func.value), [_text(e) for e in node.args[0].elts]
        return sep.join(parts) if sep is not None and None not in parts else None
    return None


def scan_notebook(nb, label: str, release_nb=None) -> list[str]:
    """Findings in the student-written code of ``nb`` (see the module docstring). With the
    released notebook, code the student was given is not theirs: an ordinary cell left as
    released is skipped, and so are lines an answer cell's released version already had (a
    given ``import``, say)."""
    given_cells: set[str] = set()
    given_lines: dict[str, set[str]] = {}
    for c in release_nb.cells if release_nb is not None else []:
        if c.cell_type != "code":
            continue
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid:
            given_lines[gid] = {ln.strip() for ln in c.source.split("\n") if ln.strip()}
        else:
            given_cells.add(c.source)
    out = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or is_locked(cell):
            continue
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not gid and cell.source in given_cells:
            continue
        lines, given = cell.source.split("\n"), given_lines.get(gid, set())
        for line, what in scan_source(cell.source):
            if 0 < line <= len(lines) and lines[line - 1].strip() in given:
                continue
            out.append(f"{label} {gid or f'cell {i}'} line {line}: {what}")
    return out
