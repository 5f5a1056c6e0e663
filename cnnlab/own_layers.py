"""Your own layers, from notebook to notebook.

Notebooks 04, 05 and 06 end with one call, ``own_layers.save("04_volumes", globals())``, that
writes the layer functions you wrote there (all but those still stubs) into a small module of
your workspace: ``my_layers/volumes.py``, ``my_layers/pooling.py``,
``my_layers/batchnorm.py``, in the folder that holds the notebook folders (``$CNNLAB_MY_LAYERS``
to put it elsewhere). The module is plain Python: your functions' source, the imports and helper
functions they use, nothing of the course's.

Notebook 07 builds LeNet-5 from them with :func:`lenet_layers`: each layer is yours when it is
saved, loads and passes its notebook's public check again, and the course's reference otherwise,
and the notebook says which it used and why (the failing check's diagnosis). While grading, 07
always uses the course's layers, so that a mistake in 04 never costs points in 07.
"""

from __future__ import annotations

import ast
import dis
import importlib
import importlib.util
import inspect
import os
import sys
import textwrap
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SAVED", "LENET", "folder", "save", "load", "lenet_layers", "Layers", "Layer"]

#: the functions each notebook saves, and the file they go to
SAVED: dict[str, tuple[str, tuple[str, ...]]] = {
    "04_volumes": ("volumes.py", ("conv_forward", "conv_backward")),
    "05_pooling": ("pooling.py", ("max_pool_forward", "max_pool_backward", "avg_pool_forward", "avg_pool_backward")),
    "06_batchnorm": ("batchnorm.py", ("batchnorm_forward", "batchnorm_backward", "spatial_batchnorm_forward",
                                      "spatial_batchnorm_backward")),
}
#: the layers LeNet-5 (notebook 07) takes from them, by notebook: a forward and its backward, which
#: go together (the backward reads the forward's cache)
LENET: dict[str, tuple[str, str]] = {
    "04_volumes": ("conv_forward", "conv_backward"),
    "05_pooling": ("max_pool_forward", "max_pool_backward"),
}
#: what makes a slow layer fast, by notebook
_FASTER = {"04_volumes": "loop over the kernel offsets, not the output positions (04, Exercise 3)",
           "05_pooling": "loop over the positions inside a window, not over every window (05, Exercise 2)"}


def _grading() -> bool:
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def folder(where: str | os.PathLike | None = None) -> Path:
    """The folder of your saved layers: ``where``, else ``$CNNLAB_MY_LAYERS``, else ``my_layers/``
    beside the notebook folders (the parent of a folder named like ``04_volumes``), else in the
    current folder."""
    if where is not None:
        return Path(where)
    env = os.environ.get("CNNLAB_MY_LAYERS")
    if env:
        return Path(env).expanduser()
    cwd = Path.cwd()
    if cwd.name[:2].isdigit() and cwd.name[2:3] == "_":
        return cwd.parent / "my_layers"
    return cwd / "my_layers"


def _shown(path: Path) -> str:
    """``path`` as the notebook shows it: relative to the notebook's folder when it is beside it
    (``../my_layers``), else in full."""
    try:
        rel = os.path.relpath(path, Path.cwd())
    except ValueError:
        return str(path)
    return rel if not rel.startswith(os.path.join("..", "..")) else str(path)


# ---------------------------------------------------------------------------------------------- saving

class _Unsaveable(Exception):
    pass


def _names(code: types.CodeType) -> set[str]:
    """The global names ``code`` (and the functions nested in it) reads."""
    out = {ins.argval for ins in dis.get_instructions(code) if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            out |= _names(const)
    return out


def _source(fn: Callable[..., Any]) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError):
        raise _Unsaveable(f"the source of {fn.__name__} cannot be found (define it in a cell of this notebook)") \
            from None


def _module_text(fns: Mapping[str, Callable[..., Any]], assignment: str) -> str:
    """The module that defines ``fns``: their imports, the helpers and constants they read, their source."""
    imports: dict[str, str] = {}
    constants: dict[str, str] = {}
    sources: dict[str, str] = {}
    todo = list(fns.items())
    while todo:
        name, fn = todo.pop(0)
        if name in sources:
            continue
        sources[name] = _source(fn)
        namespace = fn.__globals__
        for ref in sorted(_names(fn.__code__)):
            if ref in sources or ref in imports or ref in constants or ref not in namespace:
                continue   # already written, or a builtin
            value = namespace[ref]
            if isinstance(value, types.ModuleType):
                mod = value.__name__
                if mod.startswith("cnnlab"):
                    raise _Unsaveable(f"{name} uses the course's module {mod}: your layers must be your own code")
                imports[ref] = f"import {mod}" if mod == ref else f"import {mod} as {ref}"
            elif isinstance(value, types.FunctionType) and value.__module__ in ("__main__", fn.__module__) \
                    and getattr(value, "__globals__", None) is namespace:
                todo.append((ref, value))
            elif callable(value) and getattr(value, "__module__", None) and getattr(value, "__qualname__", None):
                mod, qual = value.__module__, value.__qualname__
                if mod.startswith("cnnlab"):
                    raise _Unsaveable(f"{name} calls the course's {mod}.{qual}: your layers must be your own code")
                try:
                    same = getattr(importlib.import_module(mod), qual) is value
                except (ImportError, AttributeError):
                    same = False
                if not same:
                    raise _Unsaveable(f"{name} uses {ref}, which cannot be imported by name ({mod}.{qual})")
                imports[ref] = f"from {mod} import {qual}" + ("" if qual == ref else f" as {ref}")
            elif isinstance(value, bool | int | float | str | tuple | type(None)):
                try:
                    if ast.literal_eval(repr(value)) == value:
                        constants[ref] = f"{ref} = {value!r}"
                        continue
                except (ValueError, SyntaxError):
                    pass
                raise _Unsaveable(f"{name} reads the global {ref}, which cannot be written into a module")
            else:
                raise _Unsaveable(f"{name} reads the global {ref} ({type(value).__name__}), "
                                  "which cannot be written into a module")
    header = (f'"""Your layer functions from notebook {assignment}, saved by cnnlab.own_layers.save on '
              f'{time.strftime("%Y-%m-%d %H:%M")}.\n\nEdit them in the notebook and save again; notebook 07 '
              f'loads this module and checks every function again."""\n')
    import_lines = sorted(imports.values(), key=lambda line: (line.startswith("from"), line))
    parts = [header, "\n".join(import_lines), "\n".join(constants[k] for k in sorted(constants))]
    parts += [sources[k] for k in reversed(list(sources))]   # helpers before the functions that call them
    return "\n\n".join(p.rstrip() for p in parts if p.strip()) + "\n"


def _record(assignment: str, name: str) -> Any:
    from cnnlab.checks import registry

    return registry.notebook(assignment)[name]


def save(assignment: str, namespace: Mapping[str, Any], where: str | os.PathLike | None = None,
         verbose: bool = True) -> Path | None:
    """Save your layer functions of ``assignment`` ("04_volumes", ...) for notebook 07.

    Every function written so far is saved (a stub that still raises NotImplementedError is not);
    one that fails its public check is saved too, with a warning: 07 checks each function again and
    uses the course's in place of a failing one, saying why. The module is rewritten each time.

    Args:
        assignment: the notebook ("04_volumes", "05_pooling" or "06_batchnorm").
        namespace: where your functions are (the notebook's ``globals()``).
        where: the folder (default: :func:`folder`).
        verbose: print what was saved and what was not, and why.

    Returns:
        The module's path, or None when nothing was saved (while grading, or nothing written yet).
    """
    if assignment not in SAVED:
        raise ValueError(f"assignment must be one of {sorted(SAVED)}, got {assignment!r}")
    say = print if verbose else (lambda *a, **k: None)
    if _grading():
        say("Not saved while grading (notebook 07 uses the course's layers then).")
        return None
    filename, names = SAVED[assignment]
    keep: dict[str, Callable[..., Any]] = {}
    skipped, failing = [], []
    for name in names:
        fn = namespace.get(name)
        if not callable(fn):
            skipped.append(f"{name}: not defined")
            continue
        outcome = _record(assignment, name).run(fn, "public", blame=False)
        if not outcome.passed and "not implemented yet" in outcome.message:
            skipped.append(f"{name}: not written yet")
            continue
        if not outcome.passed:
            failing.append(name)
        keep[name] = fn
    target = folder(where) / filename
    if not keep:
        say(f"Nothing saved: {'; '.join(skipped)}. Notebook 07 will use the course's layers.")
        return None
    try:
        text = _module_text(keep, assignment)
    except _Unsaveable as err:
        say(f"Not saved: {err}. Notebook 07 will use the course's layers.")
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    say(f"Saved your {', '.join(keep)} to {_shown(target)} (notebook 07 loads them).")
    for name in failing:
        say(f"  {name} fails its public check: 07 will use the course's {name} until you fix yours and save again")
    for line in skipped:
        say(f"  not saved: {line}")
    return target


def load(assignment: str, where: str | os.PathLike | None = None) -> tuple[dict[str, Callable[..., Any]], str]:
    """Import your saved module of ``assignment``; return ({name: function}, "" or why none)."""
    filename, names = SAVED[assignment]
    path = folder(where) / filename
    if not path.is_file():
        return {}, f"not saved (run the last cells of {assignment})"
    module_name = f"cnnlab_my_layers_{assignment}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # noqa: BLE001 - the student's file: report, do not stop the notebook
        return {}, f"{path.name} does not load: {type(err).__name__}: {str(err)[:120]}"
    sys.modules.pop(module_name, None)
    return {n: getattr(module, n) for n in names if callable(getattr(module, n, None))}, ""


# ---------------------------------------------------------------------------------------------- 07

@dataclass
class Layer:
    """One layer function of the network and where it comes from."""

    name: str
    fn: Callable[..., Any]
    yours: bool
    notebook: str
    why: str = ""          # why the course's is used, or ""
    diagnosis: Any = None  # the failing check's Diagnosis, when that is the reason


@dataclass
class Layers:
    """The layer functions LeNet-5 is built from (``layers.conv_forward``, ...) and their origin."""

    layers: dict[str, Layer] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        try:
            return self.__dict__["layers"][name].fn
        except KeyError:
            raise AttributeError(name) from None

    def functions(self) -> dict[str, Callable[..., Any]]:
        return {n: layer.fn for n, layer in self.layers.items()}

    def yours(self) -> list[str]:
        return [n for n, layer in self.layers.items() if layer.yours]

    def table(self) -> str:
        """One line per layer: whose it is, and why where it is the course's."""
        lines = []
        for layer in self.layers.values():
            who = f"yours ({layer.notebook})" if layer.yours else "the course's"
            lines.append(f"  {layer.name:<18} {who}" + (f": {layer.why}" if layer.why else ""))
        return "\n".join(lines)

    def use_course(self, name: str, why: str) -> None:
        """Put the course's reference in place of ``name`` (too slow to train with, say)."""
        from cnnlab import numpy_ref

        layer = self.layers[name]
        self.layers[name] = Layer(name, getattr(numpy_ref, name), False, layer.notebook, why)

    def bind(self, namespace: dict[str, Any]) -> None:
        """Put the layer functions into ``namespace`` (the notebook's ``globals()``) under their names."""
        namespace.update(self.functions())

    def keep_fast(self, steps: int, batch: int = 32, slack: float = 20.0, factor: float = 3.0,
                  namespace: dict[str, Any] | None = None, verbose: bool = True) -> dict[str, float]:
        """Time one LeNet-5 batch through each of your layer pairs and through the course's; where
        yours is more than ``factor`` times slower and would make a training of ``steps`` batches
        more than ``slack`` seconds longer (a loop over every window, say), the training uses the
        course's pair, and this says so with the numbers and what makes yours fast. Returns
        {notebook: seconds per batch of yours} and binds into ``namespace``.
        """
        from cnnlab import numpy_ref

        say = print if verbose else (lambda *a, **k: None)
        timings = {}
        for nb, (fwd, bwd) in LENET.items():
            if not self.layers[fwd].yours:
                continue
            own = _time_pair(nb, self.layers[fwd].fn, self.layers[bwd].fn, batch)
            course = _time_pair(nb, getattr(numpy_ref, fwd), getattr(numpy_ref, bwd), batch)
            timings[nb] = own
            extra = (own - course) * steps
            if extra > slack and own > factor * course:
                why = (f"yours takes {own * 1e3:,.0f} ms per batch of {batch} through LeNet-5's two layers, the "
                       f"course's {course * 1e3:,.0f} ms: about {extra:,.0f} s more over {steps:,} steps, so this "
                       f"training uses the course's; to train with yours, {_FASTER[nb]}")
                self.use_course(fwd, why)
                self.use_course(bwd, why)
                say(f"{fwd} / {bwd}: {why}")
        if namespace is not None:
            self.bind(namespace)
        return timings


def _first_line(outcome: Any) -> str:
    text = (outcome.detail or outcome.message).split("\n")
    head = text[0].lstrip("\u2718 ")
    return head if len(text) < 2 else f"{head} {text[1].strip()}"


def lenet_layers(where: str | os.PathLike | None = None, verbose: bool = True) -> Layers:
    """The conv and max-pool layers for LeNet-5: yours where saved and right, the course's otherwise.

    Each saved function is loaded from your module and checked again with its notebook's public
    check; one that fails (or is missing) is replaced by the course's reference, and the table
    printed says which is which and why (the check's likely bug when it names one). While grading,
    every layer is the course's (07's points never depend on 04 or 05).
    """
    from cnnlab import numpy_ref

    say = print if verbose else (lambda *a, **k: None)
    out = Layers()
    if _grading():
        for nb, names in LENET.items():
            for n in names:
                out.layers[n] = Layer(n, getattr(numpy_ref, n), False, nb, "")
        say("Grading: LeNet-5 is built from the course's layers (your 04 and 05 are graded on their own).")
        return out
    for nb, names in LENET.items():
        saved, problem = load(nb, where)
        for n in names:
            fn = saved.get(n)
            if fn is None:
                out.layers[n] = Layer(n, getattr(numpy_ref, n), False, nb, problem or f"not in your saved {nb} module")
                continue
            outcome = _record(nb, n).run(fn, "public", blame=False)
            if outcome.passed:
                out.layers[n] = Layer(n, fn, True, nb)
            else:
                why = f"yours fails its check: {_first_line(outcome)}"
                if outcome.diagnosis is not None:
                    why += f"; likely bug: {outcome.diagnosis.says}"
                out.layers[n] = Layer(n, getattr(numpy_ref, n), False, nb, why, outcome.diagnosis)
    for nb, (fwd, bwd) in LENET.items():   # a forward and its backward go together (the cache)
        a, b = out.layers[fwd], out.layers[bwd]
        if a.yours != b.yours:
            bad, good = (b, a) if a.yours else (a, b)
            out.layers[good.name] = Layer(good.name, getattr(numpy_ref, good.name), False, nb,
                                          f"the course's, to go with its {bad.name} (the backward reads the forward's "
                                          "cache)")
    mine = out.yours()
    say(f"LeNet-5's layers ({len(mine)} of {len(out.layers)} yours, from {_shown(folder(where))}):")
    say(out.table())
    others = _others(where)
    if others:
        say("Also saved (LeNet-5 has no normalisation layer):")
        say(others)
    return out


def _others(where: str | os.PathLike | None) -> str:
    """One line per saved function that LeNet-5 does not use: whether it passes its check."""
    lines = []
    for nb, (_, names) in SAVED.items():
        if nb in LENET:
            continue
        saved, _ = load(nb, where)
        for n in names:
            if n in saved:
                ok = _record(nb, n).run(saved[n], "public", blame=False).passed
                lines.append(f"  {n:<27} yours ({nb}): {'passes its check' if ok else 'fails its check'}")
    return "\n".join(lines)


def _time_pair(notebook: str, forward: Callable[..., Any], backward: Callable[..., Any], batch: int) -> float:
    """Seconds for one float32 batch through LeNet-5's two layers of this kind, forward and
    backward (the better of two runs, after a warm-up)."""
    import numpy as np

    g = np.random.default_rng(0)
    if notebook == "04_volumes":
        calls = [(g.standard_normal((batch, 1, 32, 32)).astype(np.float32),
                  (0.2 * g.standard_normal((6, 1, 5, 5))).astype(np.float32), np.zeros(6, np.float32)),
                 (g.standard_normal((batch, 6, 14, 14)).astype(np.float32),
                  (0.1 * g.standard_normal((16, 6, 5, 5))).astype(np.float32), np.zeros(16, np.float32))]
    else:
        calls = [(g.standard_normal((batch, 6, 28, 28)).astype(np.float32), 2, 2),
                 (g.standard_normal((batch, 16, 10, 10)).astype(np.float32), 2, 2)]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for args in calls:
            out, cache = forward(*args)
            backward(np.ones_like(out), cache)
        best = min(best, time.perf_counter() - start)
    return best
