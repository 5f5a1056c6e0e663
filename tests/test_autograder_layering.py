"""The instructor tool's modules are layered: none imports a module of its own layer or above,
and none imports (or reaches into) a private name of another module.

Imports inside ``if __name__ == "__main__":`` are entry points (``python -m autograder.release``),
not dependencies, and are not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "autograder"

# bottom first; a module may import only modules of strictly lower layers
LAYERS = [
    {"sandbox.inside.nokill"},
    {"autograder", "verify_worker", "util", "authoring", "scan", "leaks", "strip", "demos", "names",
     "sample_class.wrong_answers", "gradebook_names", "hub", "hub.queue",
     "sandbox.inside", "sandbox.inside.kernel", "sandbox.inside.guard"},
    {"preprocessors", "sandbox.host", "repair", "sample_class", "sanitise"},
    {"sandbox.provisioner"},
    {"sandbox"},
    {"execute", "verifier"},
    {"config"},
    {"collect", "release", "store", "hub.workspace", "hub.settings"},
    {"roster", "engine"},
    {"feedback", "export", "testing", "similarity", "reports_server", "hub.accounts"},
    {"cli", "nbgrader_config", "hub.service"},
    {"__main__"},
]
LAYER = {m: i for i, layer in enumerate(LAYERS) for m in layer}


def _modules() -> dict[str, Path]:
    out = {}
    for p in sorted(ROOT.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "autograder"
        out[name] = p
    return out


def _entry_point_lines(tree) -> set[int]:
    lines = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test):
            for sub in ast.walk(node):
                if hasattr(sub, "lineno"):
                    lines.add(sub.lineno)
    return lines


def imports_of(name: str, path: Path) -> tuple[set[str], list[str]]:
    """(autograder modules imported by ``name``, private names it takes from them)."""
    tree = ast.parse(path.read_text())
    skip = _entry_point_lines(tree)
    package = name.split(".")[:-1] if path.name != "__init__.py" else name.split(".")
    if name == "autograder":
        package = []
    known = _modules()
    deps: set[str] = set()
    private: list[str] = []
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
                if not target.startswith("autograder"):
                    continue
                target = target[len("autograder."):] if target != "autograder" else "autograder"
            for a in node.names:
                sub = f"{target}.{a.name}" if target and target != "autograder" else a.name
                if sub in known:
                    deps.add(sub)
                    aliases[a.asname or a.name] = sub
                else:
                    deps.add(target or "autograder")
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        private.append(f"{target}.{a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("autograder."):
                    deps.add(a.name[len("autograder."):])
                    if a.asname:
                        aliases[a.asname] = a.name[len("autograder."):]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            private.append(f"{aliases[node.value.id]}.{node.attr}")
    deps.discard(name)
    return deps, private


def test_every_module_has_a_layer():
    assert set(_modules()) == set(LAYER), "add the new module to LAYERS"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_imports_go_down_only(name):
    deps, _ = imports_of(name, _modules()[name])
    bad = sorted(d for d in deps if d != "autograder" and LAYER.get(d, 99) >= LAYER[name]
                 and not (name == "sample_class" and d.startswith("sample_class.")))
    assert not bad, f"{name} (layer {LAYER[name]}) imports {bad} from its own layer or above"


@pytest.mark.parametrize("name", sorted(_modules()))
def test_no_private_names_across_modules(name):
    _, private = imports_of(name, _modules()[name])
    assert not private, f"{name} uses private names of other modules: {private}"


def test_the_checker_catches_a_cycle_and_a_private_import(tmp_path):
    fake = tmp_path / "collect.py"
    fake.write_text("from .engine import autograde\nfrom .release import _env_path\nfrom . import util\nutil._x\n")
    deps, private = imports_of("collect", fake)
    assert "engine" in deps and LAYER["engine"] >= LAYER["collect"]
    assert private == ["release._env_path", "util._x"]
    entry = tmp_path / "release.py"
    entry.write_text("if __name__ == '__main__':\n    from autograder.cli import main\n")
    assert imports_of("release", entry)[0] == set()
