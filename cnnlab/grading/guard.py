"""Run a student function under grading: integrity guard, clear errors, input protection.

The integrity guard fails a NumPy exercise whose function delegates to the course's references
or to torch / scipy convolution routines.  Replacing module attributes would not be enough: a
student who wrote ``from cnnlab.numpy_ref import conv_forward as f`` before grading still holds
the original function object.  So the guard acts on what actually runs during the call, in one
of two modes (``guard_mode=``):

- ``"fast"`` (default): for the duration of the call, every Python function of the forbidden
  packages gets its ``__code__`` swapped for a trap with the same name (aliases share the
  function object, so they are trapped too); compiled scipy routines are replaced in their
  modules; torch calls go through a ``TorchFunctionMode``; importing a forbidden package that
  was not imported yet trips an import hook.  The student's own code runs at full speed
  (about 0.6 ms fixed cost per call with torch and scipy imported).
- ``"profile"``: the traps above, and ``sys.setprofile`` sees every Python frame entered (tested
  by its file) and every builtin called (tested by its module).  Catches even compiled internals
  aliased before the call, at about twice the run time of loop-heavy student code.  The previous
  profiler is restored.

Forbidden groups (``forbid=``):

- ``"numpy_ref"``: any code in ``cnnlab/numpy_ref/``;  ``"torch_ref"``: any code in ``cnnlab/torch_ref/``
- ``"torch"``: any torch code at all (Python files of the torch package and its builtins,
  tensor methods included);  ``"torch_conv"``: only torch's convolution, pooling and
  unfold/fold routines (use it instead of ``"torch"`` when torch itself is allowed)
- ``"scipy"``: ``scipy.signal`` and ``scipy.ndimage`` (Python code and their compiled modules)

``forbid_functions=`` adds single functions (an exercise's own reference where it lives in
``cnnlab.checks``, outside every group).

Threads: the traps of the fast mode are in place in every thread, so a thread the student's call
starts (or one started before) that calls a forbidden Python function trips too; in both modes,
a thread started through ``threading`` or ``_thread`` during the call runs under the profiler
(torch and compiled routines are seen there as well), and the result is copied while the traps
are still in place, so that a thread cannot change it afterwards.  This is for honest mistakes
and casual shortcuts: the grader's verifier decides the points outside the kernel.

NumPy itself is never forbidden (``np.lib.stride_tricks.sliding_window_view``, ``np.einsum``,
``np.tensordot``, ``np.fft`` are the student's to use).  The references stay usable outside the
guarded call: only the student's call is watched.
"""

from __future__ import annotations

import functools
import importlib
import importlib.abc
import importlib.util
import inspect
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterable
from types import BuiltinFunctionType, CodeType, FrameType, FunctionType
from typing import Any

import numpy as np
from _thread import get_ident as _thread_ident

__all__ = ["guarded", "run_guarded", "DEFAULT_FORBID", "FORBID_GROUPS", "functions_of", "plain_function"]

DEFAULT_FORBID: tuple[str, ...] = ("numpy_ref", "torch_ref", "torch", "scipy")
FORBID_GROUPS: frozenset[str] = frozenset({"numpy_ref", "torch_ref", "torch", "torch_conv", "scipy"})

#: torch routine names forbidden by the "torch_conv" group (builtins and torch.nn.functional).
TORCH_CONV_NAMES: frozenset[str] = frozenset(
    {
        "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
        "convolution", "_convolution", "conv_tbc", "cudnn_convolution", "mkldnn_convolution",
        "max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices", "max_pool2d_with_indices",
        "max_pool3d_with_indices", "_max_pool1d", "_max_pool2d", "_max_pool3d",
        "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
        "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
        "lp_pool1d", "lp_pool2d", "fractional_max_pool2d", "unfold", "fold", "im2col", "col2im",
        "batch_norm", "group_norm", "layer_norm", "instance_norm",
    }
)  # fmt: skip


class _Tripped(BaseException):
    """Raised inside the student's call to stop it at the first forbidden call.

    A BaseException, so that a student's ``except Exception`` cannot swallow it.  Even if it is
    swallowed (bare ``except:``), the violation is already recorded and the check fails.
    """


def _package_dir(name: str) -> list[str]:
    """Directories (with trailing separator, raw and resolved) of a package, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return []
    if spec is None or not spec.submodule_search_locations:
        return []
    dirs: set[str] = set()
    for loc in spec.submodule_search_locations:
        for path in (os.path.abspath(loc), os.path.realpath(loc)):
            dirs.add(path.rstrip(os.sep) + os.sep)
    return sorted(dirs)


_CACHE: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _prefixes(groups: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return (file prefixes, builtin-module prefixes) for the forbidden groups (cached)."""
    if groups in _CACHE:
        return _CACHE[groups]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../cnnlab
    files: list[str] = []
    mods: list[str] = []
    for group in groups:
        if group in ("numpy_ref", "torch_ref"):
            for base in {here, os.path.realpath(here)}:
                files.append(os.path.join(base, group) + os.sep)
            mods.append(f"cnnlab.{group}")
        elif group == "torch":
            files += _package_dir("torch")
            mods.append("torch")
        elif group == "scipy":
            for scipy_dir in _package_dir("scipy"):
                files += [scipy_dir + "signal" + os.sep, scipy_dir + "ndimage" + os.sep]
            mods += ["scipy.signal", "scipy.ndimage"]
    _CACHE[groups] = (tuple(files), tuple(mods))
    return _CACHE[groups]


def _qualified(frame: FrameType) -> str:
    module = frame.f_globals.get("__name__", "?")
    return f"{module}.{frame.f_code.co_qualname}"


def _builtin_name(func: Any) -> str:
    """Dotted name of a builtin or torch function: "torch.conv2d", "torch.Tensor.unfold"."""
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)
    module = getattr(func, "__module__", None)
    if module is None:
        owner = getattr(func, "__objclass__", None) or type(getattr(func, "__self__", None))
        module = getattr(owner, "__module__", None) or "builtins"
    if module == "torch" or module.startswith("torch._C"):
        module = "torch"
        qual = qual.replace("TensorBase.", "Tensor.").replace("_VariableFunctionsClass.", "")
    return f"{module}.{qual}"


def _resolve_allowed(allow: Iterable[Any]) -> tuple[set[CodeType], set[str]]:
    """Turn allowed functions or dotted names ("cnnlab.numpy_ref.pad") into code objects / names."""
    codes: set[CodeType] = set()
    names: set[str] = set()
    for item in allow:
        obj = item
        if isinstance(item, str):
            names.add(item)
            module_name, _, attr = item.rpartition(".")
            try:
                obj = getattr(importlib.import_module(module_name), attr)
            except (ImportError, AttributeError, ValueError):
                continue
        obj = inspect.unwrap(obj) if callable(obj) else obj
        code = getattr(obj, "__code__", None)
        if isinstance(code, CodeType):
            codes.add(code)
        else:
            names.add(_builtin_name(obj))
    return codes, names


# threads started, during a guarded call, by an allowed function (the course's conv layer sharing its
# work over threads): they act for that function, as its own frames would (ids of live threads only)
_INHERITED: set[int] = set()


def _allowed_on_stack(frame: FrameType | None, allowed_codes: set[CodeType]) -> bool:
    """True when an allowed function's frame is ``frame`` or one of its callers (or this thread was
    started by an allowed function during the call)."""
    if not allowed_codes:
        return False
    if _INHERITED and _thread_ident() in _INHERITED:
        return True
    while frame is not None:
        if frame.f_code in allowed_codes:
            return True
        frame = frame.f_back
    return False


class _Watch:
    """State of one guarded call: what is forbidden, what is allowed, the first violation."""

    def __init__(self, groups: tuple[str, ...], allow: Iterable[Any], functions: Iterable[Any] = ()) -> None:
        self.groups = groups
        self.functions = [f for f in (plain_function(x) for x in functions) if f is not None]
        self.codes = frozenset(f.__code__ for f in self.functions)
        self.files, self.mods = _prefixes(groups)
        self.torch_all = "torch" in groups
        self.torch_conv = "torch_conv" in groups and not self.torch_all
        self.torch_files = tuple(_package_dir("torch")) if self.torch_conv else ()
        self.allowed_codes, self.allowed_names = _resolve_allowed(allow)
        self.hit: str | None = None

    def trip(self, what: str) -> None:
        """Record the first violation and stop the student's call."""
        if self.hit is None:
            self.hit = what
        raise _Tripped(what)

    # ----- "profile" mode: sys.setprofile sees every Python frame and builtin call ------------
    def make_profiler(self) -> Callable[[FrameType, str, Any], None]:
        """Build the profile callback (a closure over local bindings, for speed)."""
        files = self.files
        mods = self.mods
        torch_conv = self.torch_conv
        torch_files = self.torch_files
        conv_names = TORCH_CONV_NAMES
        allowed_codes = self.allowed_codes
        allowed_names = self.allowed_names
        codes = self.codes
        trip = self.trip

        def profile(frame: FrameType, event: str, arg: Any) -> None:
            if event == "call":
                filename = frame.f_code.co_filename
                if (files and filename.startswith(files)) or frame.f_code in codes or (
                    torch_conv and filename.startswith(torch_files) and frame.f_code.co_name in conv_names
                ):
                    if not _allowed_on_stack(frame, allowed_codes):
                        trip(_qualified(frame))
            elif event == "c_call":
                module = arg.__module__
                if module is None:
                    module = type(arg.__self__).__module__
                if module and (
                    module.startswith(mods)
                    or (torch_conv and module.startswith("torch") and arg.__name__ in conv_names)
                ):
                    name = _builtin_name(arg)
                    if name not in allowed_names and not _allowed_on_stack(frame, allowed_codes):
                        trip(name)

        return profile

    # ----- "fast" mode: trap the forbidden functions themselves --------------------------------
    def install_traps(self) -> Callable[[], None]:
        """Swap the code of every forbidden Python function for a trap; return the undo function.

        Aliases (``from cnnlab.numpy_ref import conv_forward as f``) share the function object,
        so they are trapped too.  torch calls are caught by a TorchFunctionMode, imports of
        forbidden packages during the call by an import hook.  No cost for the student's own code.
        """
        undo: list[Callable[[], None]] = []
        trap_mods = tuple(m for m in self.mods if m != "torch")  # torch: the function mode below
        functions = _forbidden_functions(trap_mods, self.files)
        if self.functions:
            functions = list({id(f): f for f in [*functions, *self.functions]}.values())
        allowed = self.allowed_codes
        swapped: list[tuple[FunctionType, CodeType]] = []
        for func in functions:
            code = func.__code__
            if allowed and code in allowed:
                continue
            cached = _TRAP_FOR.get(id(func))
            if cached is None or cached[0] is not code:
                trap = _trap_code(code)
                _TRAPS[trap] = (func, code)
                cached = _TRAP_FOR[id(func)] = (code, trap)
            try:
                func.__code__ = cached[1]
            except ValueError:  # an unusual function (closure mismatch): leave it to the other traps
                continue
            swapped.append((func, code))

        replaced: list[tuple[Any, str, Any]] = []
        for module, attr, builtin in _forbidden_builtins(trap_mods):
            if _builtin_name(builtin) in self.allowed_names:
                continue
            setattr(module, attr, _builtin_trap(self, builtin))
            replaced.append((module, attr, builtin))

        def restore_functions() -> None:
            for func, code in swapped:
                func.__code__ = code
            for module, attr, builtin in replaced:
                setattr(module, attr, builtin)

        undo.append(restore_functions)
        finder = _ImportTrip(self)
        sys.meta_path.insert(0, finder)
        undo.append(lambda: sys.meta_path.remove(finder) if finder in sys.meta_path else None)
        if (self.torch_all or self.torch_conv) and "torch" in sys.modules:
            mode = _torch_mode(self)
            mode.__enter__()
            undo.append(lambda: mode.__exit__(None, None, None))

        def undo_all() -> None:
            for step in reversed(undo):
                step()

        return undo_all


class _ImportTrip(importlib.abc.MetaPathFinder):
    """Fail the call when it imports a forbidden package that was not imported before."""

    def __init__(self, watch: _Watch) -> None:
        self.watch = watch
        packages = list(self.watch.mods)
        if self.watch.torch_conv and "torch" not in sys.modules:
            packages.append("torch")  # its function mode could not be entered: forbid the import
        self.packages = tuple(packages)

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> None:
        if self.packages and (fullname.startswith(self.packages)) and any(
            fullname == p or fullname.startswith(p + ".") for p in self.packages
        ):
            if not _allowed_on_stack(sys._getframe(1), self.watch.allowed_codes):
                self.watch.trip(f"import {fullname}")
        return None


def _torch_mode(watch: _Watch) -> Any:
    """A torch function mode that trips on torch calls (all, or conv/pool/unfold only)."""
    from torch.overrides import TorchFunctionMode

    class _TorchTrip(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            name = getattr(func, "__name__", "")
            if watch.torch_all or name in TORCH_CONV_NAMES:
                full = _builtin_name(func)
                if full not in watch.allowed_names and not _allowed_on_stack(sys._getframe(1), watch.allowed_codes):
                    watch.trip(full)
            return func(*args, **(kwargs or {}))

    return _TorchTrip()


_MARKER = "__cnnlab_guard_trap__"
_TRAPS: dict[CodeType, tuple[FunctionType, CodeType]] = {}  # trap code -> (function, original code)
_TRAP_FOR: dict[int, tuple[CodeType, CodeType]] = {}  # id(function) -> (original code, trap code)
_ACTIVE: list[_Watch] = []


@functools.lru_cache(maxsize=None)
def _trap_template(nfree: int) -> CodeType:
    """Code of ``def trap(*args, **kwargs): return HOOK(args, kwargs)`` with ``nfree`` free variables."""
    cells = [f"_cell{i}" for i in range(nfree)]
    lines = ["def _outer():"]
    if cells:
        lines.append("    " + " = ".join(cells) + " = None")
    lines.append("    def _trap(*args, **kwargs):")
    if cells:
        lines.append("        (" + ", ".join(cells) + ",)")
    lines.append(f"        return {_MARKER!r}(args, kwargs)")
    lines.append("    return _trap")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "'str' object is not callable": replaced below
        module = compile("\n".join(lines), "<cnnlab guard>", "exec")
    outer = next(c for c in module.co_consts if isinstance(c, CodeType))
    return next(c for c in outer.co_consts if isinstance(c, CodeType))


def _trap_code(original: CodeType) -> CodeType:
    """A trap with the original's name, file and closure size, calling :func:`_on_trap`."""
    template = _trap_template(len(original.co_freevars))
    consts = tuple(_on_trap if (isinstance(c, str) and c == _MARKER) else c for c in template.co_consts)
    return template.replace(
        co_consts=consts,
        co_name=original.co_name,
        co_qualname=original.co_qualname,
        co_filename=original.co_filename,
        co_firstlineno=original.co_firstlineno,
    )


def _on_trap(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Called by a trapped function: trip, or run the original when an allowed caller asked."""
    frame = sys._getframe(1)
    func, original = _TRAPS.get(frame.f_code, (None, None))
    watch = _ACTIVE[-1] if _ACTIVE else None
    if func is None or original is None or watch is None:  # a trap outlived its call: cannot happen
        raise RuntimeError("cnnlab.grading: integrity guard trap called outside a guarded call")
    if _allowed_on_stack(frame.f_back, watch.allowed_codes):
        clone = FunctionType(original, func.__globals__, func.__name__, func.__defaults__, func.__closure__)
        clone.__kwdefaults__ = func.__kwdefaults__
        return clone(*args, **kwargs)
    watch.trip(_qualified(frame))
    return None


def _forbidden_functions(mods: tuple[str, ...], files: tuple[str, ...]) -> list[FunctionType]:
    """Every Python function defined in an imported forbidden module (module level, classes, wrapped)."""
    if not mods:
        return []
    names = tuple(sorted(n for n in list(sys.modules) if n.startswith(mods) and _in_package(n, mods)))
    key = (mods, names)
    cached = _FUNCTION_CACHE.get(key)
    if cached is not None:
        return cached
    found: dict[int, FunctionType] = {}

    def mine(func: FunctionType) -> bool:
        module = getattr(func, "__module__", None) or ""
        return _in_package(module, mods) or func.__code__.co_filename.startswith(files)

    def add(value: Any, depth: int = 0) -> None:
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if isinstance(value, property):
            for part in (value.fget, value.fset, value.fdel):
                add(part, depth)
            return
        if isinstance(value, FunctionType):
            if id(value) not in found and mine(value):
                found[id(value)] = value
                wrapped = getattr(value, "__wrapped__", None)
                if wrapped is not None and depth < 5:
                    add(wrapped, depth + 1)
        elif isinstance(value, functools.partial):
            add(value.func, depth + 1)
        elif type(value).__name__ == "_lru_cache_wrapper":
            add(getattr(value, "__wrapped__", None), depth + 1)
        elif isinstance(value, type) and depth == 0 and _in_package(getattr(value, "__module__", "") or "", mods):
            for member in list(vars(value).values()):
                add(member, 1)

    for name in names:
        module = sys.modules.get(name)
        if module is None:
            continue
        for value in list(vars(module).values()):
            add(value)
    result = list(found.values())
    _FUNCTION_CACHE.clear()
    _FUNCTION_CACHE[key] = result
    return result


def _forbidden_builtins(mods: tuple[str, ...]) -> list[tuple[Any, str, Any]]:
    """(module, name, builtin) for the builtins of imported compiled forbidden modules (scipy's C code)."""
    if not mods:
        return []
    names = tuple(n for n in list(sys.modules) if n.startswith(mods) and _in_package(n, mods))
    cached = _BUILTIN_CACHE.get((mods, names))
    if cached is not None:
        return cached
    out: list[tuple[Any, str, Any]] = []
    for name in names:
        module = sys.modules.get(name)
        filename = getattr(module, "__file__", None) or ""
        if module is None or filename.endswith(".py"):
            continue
        for attr, value in list(vars(module).items()):
            if isinstance(value, BuiltinFunctionType) and not attr.startswith("__"):
                out.append((module, attr, value))
    _BUILTIN_CACHE.clear()
    _BUILTIN_CACHE[(mods, names)] = out
    return out


_BUILTIN_CACHE: dict[tuple[tuple[str, ...], tuple[str, ...]], list[tuple[Any, str, Any]]] = {}


def _builtin_trap(watch: _Watch, builtin: Any) -> Callable[..., Any]:
    """A stand-in for a compiled forbidden routine, looked up through its module during the call."""

    def trap(*args: Any, **kwargs: Any) -> Any:
        if _allowed_on_stack(sys._getframe(1), watch.allowed_codes):
            return builtin(*args, **kwargs)
        watch.trip(_builtin_name(builtin))
        return None

    return trap


_FUNCTION_CACHE: dict[tuple[tuple[str, ...], tuple[str, ...]], list[FunctionType]] = {}


def plain_function(obj: Any) -> FunctionType | None:
    """The Python function ``obj`` is (a method's or a partial's function), or None."""
    obj = getattr(obj, "__func__", obj)
    if isinstance(obj, functools.partial):
        obj = obj.func
    return obj if isinstance(obj, FunctionType) else None


def functions_of(groups: Iterable[str] = (), *, modules: Iterable[Any] = ()) -> list[FunctionType]:
    """The Python functions the guard traps for ``groups`` (of their modules imported now), and
    every function whose code is in the file of one of ``modules`` (module level, in classes,
    wrapped or in a closure): what the verifier's worker traps for the rest of its life."""
    groups = tuple(sorted(set(groups)))
    files, mods = _prefixes(groups)
    found = {id(f): f for f in _forbidden_functions(tuple(m for m in mods if m != "torch"), files)}
    for module in modules:
        path = os.path.realpath(getattr(module, "__file__", "") or "")
        if not path:
            continue
        seen: set[int] = set()

        def add(value: Any, depth: int = 0, path: str = path, seen: set[int] = seen) -> None:
            if id(value) in seen or depth > 4:
                return
            seen.add(id(value))
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            if isinstance(value, property):
                for part in (value.fget, value.fset, value.fdel):
                    add(part, depth + 1)
            elif isinstance(value, functools.partial):
                add(value.func, depth + 1)
            elif isinstance(value, FunctionType):
                if os.path.realpath(value.__code__.co_filename) == path:
                    found[id(value)] = value
                    add(getattr(value, "__wrapped__", None), depth + 1)
                    for cell in value.__closure__ or ():
                        try:
                            add(cell.cell_contents, depth + 1)
                        except ValueError:   # an empty cell
                            continue
            elif isinstance(value, type) and depth == 0 and getattr(value, "__module__", None) == module.__name__:
                for member in list(vars(value).values()):
                    add(member, 1)

        for value in list(vars(module).values()):
            add(value)
    return list(found.values())


def _snapshot(value: Any) -> Any:
    """A copy of the arrays in a result (in plain tuples, lists and dicts), taken while the traps
    are still in place: a thread the call started cannot change what is compared afterwards."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if type(value) in (tuple, list):
        return type(value)(_snapshot(v) for v in value)
    if type(value) is dict:
        return {k: _snapshot(v) for k, v in value.items()}
    return value


def _watch_threads(watch: _Watch) -> Callable[[], None]:
    """For the duration of a guarded call, every thread started through ``threading`` or
    ``_thread`` runs under the watch's profiler (torch and compiled routines are seen there;
    the traps of Python functions catch every thread anyway). Returns the undo function."""
    import _thread
    import threading

    profiler = watch.make_profiler()
    originals = (_thread.start_new_thread, threading._start_new_thread)

    def start(function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any] | None = None) -> int:
        inherit = _allowed_on_stack(sys._getframe(1), watch.allowed_codes)   # started by an allowed function

        def run(*a: Any, **k: Any) -> Any:
            me = _thread_ident()
            if inherit:
                _INHERITED.add(me)
            sys.setprofile(profiler)
            try:
                return function(*a, **k)
            except _Tripped:
                return None          # recorded in the watch: the check fails
            finally:
                sys.setprofile(None)
                _INHERITED.discard(me)
        return originals[0](run, tuple(args), dict(kwargs or {}))

    hook = threading.excepthook

    def quiet(args: Any) -> None:      # a trap that stopped a thread is the check's message, not a traceback
        if not isinstance(args.exc_value, _Tripped):
            hook(args)

    _thread.start_new_thread = start
    threading._start_new_thread = start
    threading.excepthook = quiet

    def undo() -> None:
        _thread.start_new_thread, threading._start_new_thread = originals
        if threading.excepthook is quiet:
            threading.excepthook = hook

    return undo


def _in_package(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _student_line(tb: Any) -> str:
    """Return ' (line N: `source`)' for the deepest traceback frame outside numpy/torch/cnnlab."""
    skip = tuple(
        d
        for name in ("numpy", "torch", "scipy", "cnnlab")
        for d in _package_dir(name)
    ) + (os.path.dirname(os.__file__) + os.sep,)
    best = None
    for entry in traceback.extract_tb(tb):
        if not os.path.abspath(entry.filename).startswith(skip):
            best = entry
    if best is None or best.lineno is None:
        return ""
    src = (best.line or "").strip()
    return f" (line {best.lineno}: `{src}`)" if src else f" (line {best.lineno})"


def _copy_arrays(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    new_args = tuple(a.copy(order="K") if isinstance(a, np.ndarray) else a for a in args)
    new_kwargs = {k: (v.copy(order="K") if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
    return new_args, new_kwargs


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))


def _mutated(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             new_args: tuple[Any, ...], new_kwargs: dict[str, Any]) -> str | None:
    """Name the first input array the student's call changed in place, or None."""
    names: list[str] = []
    try:
        params = list(inspect.signature(fn).parameters.values())
        names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    for i, (old, new) in enumerate(zip(args, new_args, strict=True)):
        if isinstance(old, np.ndarray) and not _same(old, new):
            return f"`{names[i]}`" if i < len(names) else f"argument {i + 1}"
    for key, old in kwargs.items():
        if isinstance(old, np.ndarray) and not _same(old, new_kwargs[key]):
            return f"`{key}`"
    return None


def run_guarded(
    fn: Callable[..., Any],
    *args: Any,
    exercise: str,
    allow: Iterable[Any] = (),
    forbid: Iterable[str] = DEFAULT_FORBID,
    check_mutation: bool = True,
    guard_mode: str = "fast",
    forbid_functions: Iterable[Any] = (),
    **kwargs: Any,
) -> tuple[Any, list[warnings.WarningMessage]]:
    """Like :func:`guarded`, but also return the warnings the student's code raised."""
    groups = tuple(sorted(set(forbid)))
    unknown = set(groups) - FORBID_GROUPS
    if unknown:
        raise ValueError(f"unknown forbid group(s) {sorted(unknown)}; choose from {sorted(FORBID_GROUPS)}")
    if not callable(fn):
        raise AssertionError(
            f"{exercise}: expected your function, got {type(fn).__name__} "
            "(run the cell that defines it first)"
        )
    if guard_mode not in ("fast", "profile"):
        raise ValueError(f"guard_mode must be 'fast' or 'profile', got {guard_mode!r}")
    call_args, call_kwargs = _copy_arrays(args, kwargs)
    extra = tuple(forbid_functions)
    watch = _Watch(groups, allow, extra) if (groups or extra) else None
    previous = sys.getprofile()
    error: BaseException | None = None
    result: Any = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            undo: Callable[[], None] | None = None
            threads: Callable[[], None] | None = None
            if watch is not None:
                _ACTIVE.append(watch)
                undo = watch.install_traps()     # both modes: traps see every thread
                threads = _watch_threads(watch)
                if guard_mode == "profile":
                    sys.setprofile(watch.make_profiler())
            try:
                result = fn(*call_args, **call_kwargs)
                if watch is not None:
                    # a thread of the call could still change the result once the traps are gone
                    result = _snapshot(result)
            finally:
                if watch is not None:
                    if guard_mode == "profile":
                        sys.setprofile(previous)
                    if threads is not None:
                        threads()
                    if undo is not None:
                        undo()
                    _ACTIVE.remove(watch)
        except _Tripped:
            pass
        except Exception as exc:  # the student's error, reported below as an AssertionError
            error = exc
    if watch is not None and watch.hit is not None:
        raise AssertionError(
            f"exercise {exercise}: your function called {watch.hit}; the course's references, torch "
            "and scipy convolution routines are off limits here: write it with NumPy yourself "
            "(NumPy functions such as np.einsum or sliding_window_view are fine)"
        )
    if error is not None:
        if isinstance(error, NotImplementedError):
            raise AssertionError(
                f"{exercise}: not implemented yet — replace `raise NotImplementedError()` with your code"
            ) from None
        where = _student_line(error.__traceback__)
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise AssertionError(
            f"{exercise}: your function raised {type(error).__name__}: {message}{where}"
        ) from error
    if check_mutation:
        changed = _mutated(fn, args, kwargs, call_args, call_kwargs)
        if changed is not None:
            raise AssertionError(
                f"{exercise}: your function changed its input {changed} in place; "
                "leave inputs untouched (work on a copy: x = x.copy(), or build a new array)"
            )
    return result, list(caught)


def guarded(
    fn: Callable[..., Any],
    *args: Any,
    exercise: str,
    allow: Iterable[Any] = (),
    forbid: Iterable[str] = DEFAULT_FORBID,
    check_mutation: bool = True,
    guard_mode: str = "fast",
    forbid_functions: Iterable[Any] = (),
    **kwargs: Any,
) -> Any:
    """Run a student's function on copies of the inputs, under the integrity guard.

    Args:
        fn: the student's function.
        *args, **kwargs: its arguments; ndarray arguments are copied before the call.
        exercise: the exercise's name, used in messages.
        allow: functions (or dotted names such as "cnnlab.numpy_ref.pad") the student may call
            even though their package is forbidden; code they call is allowed too.
        forbid: forbidden groups (see the module docstring); ``()`` turns the guard off.
        forbid_functions: more functions (objects) that may not run in the call (the exercise's
            own reference where it lives outside the groups, in ``cnnlab.checks``).
        check_mutation: fail when the call changed an input array in place.
        guard_mode: "fast" (default): the forbidden Python functions' code is swapped for a trap
            during the call (aliases share the function object, so they are caught), torch
            calls go through a TorchFunctionMode and imports of forbidden packages through an
            import hook; the student's own code runs at full speed.  "profile": watch every
            frame and builtin with ``sys.setprofile`` (also catches compiled scipy internals
            called directly), at about twice the run time of loop-heavy code.

    Returns:
        Whatever ``fn`` returned.

    Raises:
        AssertionError: forbidden code ran ("exercise <name>: your function called <module.qualname>;
            ... write it with NumPy yourself"); the student's code raised (``"<exercise>: your
            function raised <Type>: <msg>"``, or "not implemented yet" for NotImplementedError);
            an input array was changed in place.
        ValueError: an unknown forbid group (a mistake in the check, not the student's).

    Warnings raised inside are captured and never reach stderr; the previous profiler
    (``sys.getprofile()``) is restored afterwards.
    """
    result, _ = run_guarded(
        fn,
        *args,
        exercise=exercise,
        allow=allow,
        forbid=forbid,
        check_mutation=check_mutation,
        guard_mode=guard_mode,
        forbid_functions=forbid_functions,
        **kwargs,
    )
    return result
