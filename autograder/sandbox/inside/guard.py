"""The in-kernel guard: an IPython extension loaded into every grading kernel (sandbox side).

This file runs inside the sandbox (``/opt/cnnlab/lib/cnnlab_sandbox/guard.py``, standard library
only at import) and is loaded by :mod:`autograder.sandbox.inside.kernel` as the extension
``cnnlab_sandbox.guard`` (``autograder.sandbox.inside.guard`` for a kernel without a sandbox). It
is for honest mistakes only: the isolation is the sandbox's (:mod:`autograder.sandbox.host`), and
the points of hidden checks are confirmed outside (:mod:`autograder.verifier`).

- with ``CNNLAB_GRADER_FIGURES=off`` (the grader's default), matplotlib figures are built but not
  rendered: each shows a one-line placeholder (rendering is about half of a course notebook's run
  time and scores nothing);
- an audit hook that refuses starting processes, signalling processes and ``os._exit``, and,
  when the kernel runs without a sandbox, writes under the protected paths
  (``CNNLAB_GUARD_PROTECT``);
- before every locked cell (read-only and test cells, recognised by the sha256 of their source,
  ``CNNLAB_GUARD_LOCKED``), it restores what a student could have patched by accident:
  ``builtins``, NumPy's functions, every ``cnnlab`` module's attributes, the names the locked
  cells bound, and IPython's error reporting.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import os
import sys
import types

_STATE: dict = {}

FIGURES_ENV = "CNNLAB_GRADER_FIGURES"
FIGURE_PLACEHOLDER = "[figure with {n} axes: not drawn while grading; run the notebook to see it]"


# ----------------------------------------------------------------------------- inside the kernel

def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _audit_hook(event: str, args: tuple) -> None:
    st = _STATE
    if not st or st.get("busy"):
        return
    if event in ("os.kill", "os.killpg") and len(args) >= 2 and args[1] == 2 and args[0] in (
            os.getpid(), os.getpgid(0)):
        return  # ipykernel interrupting itself (SIGINT): how the grader stops a cell at its time limit
    if event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                 "os.fork", "os.forkpty", "os.kill", "os.killpg", "pty.spawn"):
        raise PermissionError(f"grading sandbox: {event} is not allowed while grading")
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if isinstance(path, int) or path is None:
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int)
            and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
        if writing:
            _check_write(event, path)
    elif event == "sqlite3.connect":
        path = args[0] if args else None
        if isinstance(path, (str, bytes, os.PathLike)) and str(path) != ":memory:" and not str(path).startswith("file::memory"):
            _check_write(event, path)
    elif event in ("os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.mkdir",
                   "os.utime", "shutil.rmtree", "os.chflags"):
        if args and not isinstance(args[0], int):
            _check_write(event, args[0])
    elif event in ("os.rename", "os.link", "os.symlink"):
        for p in args[:2]:
            if not isinstance(p, int):
                _check_write(event, p)


def _check_write(event: str, path) -> None:
    st = _STATE
    st["busy"] = True
    try:
        real = os.path.realpath(os.fsdecode(path))
    finally:
        st["busy"] = False
    if _under(real, st["cwd"]):
        return
    for root in st["protect"]:
        if _under(real, root):
            raise PermissionError(f"grading sandbox: {event} on {path!r} is not allowed while grading")


def _no_exit(*_args, **_kwargs):
    raise SystemExit("os._exit() is disabled while grading")


def _names_bound(src: str) -> set[str]:
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                names.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
    return names


def _snapshot_module(mod) -> dict:
    return dict(vars(mod))


def _restore_module(mod, snap: dict) -> None:
    d = vars(mod)
    for k, v in snap.items():
        if d.get(k, _MISSING) is not v:
            try:
                setattr(mod, k, v)
            except (AttributeError, TypeError):
                d[k] = v


_MISSING = object()


def _track_modules() -> None:
    snaps = _STATE["modules"]
    for name, mod in list(sys.modules.items()):
        if mod is None or name in snaps:
            continue
        if name.startswith("cnnlab") or name in ("numpy", "numpy.testing", "numpy.linalg", "math"):
            snaps[name] = _snapshot_module(mod)


def _restore_all(ip) -> None:
    st = _STATE
    _restore_module(builtins, st["builtins"])
    for name, snap in st["modules"].items():
        mod = sys.modules.get(name)
        if mod is not None:
            _restore_module(mod, snap)
    ns = ip.user_ns
    for k, v in st["bound"].items():
        ns[k] = v
    os._exit = _no_exit
    ip.custom_exceptions = st["custom_exceptions"]
    ip.CustomTB = st["CustomTB"]
    for attr in ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
                 "run_ast_nodes", "run_code", "transform_cell"):
        ip.__dict__.pop(attr, None)
    sys.excepthook = sys.__excepthook__
    sys.stdout, sys.stderr = st["stdout"], st["stderr"]


class _AfterImport:
    """A meta path finder that calls ``then()`` right after module ``name`` has been executed."""

    def __init__(self, name: str, then) -> None:
        self.name, self.then = name, then

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                run = spec.loader.exec_module

                def exec_module(module, run=run) -> None:
                    run(module)
                    self.then()

                spec.loader.exec_module = exec_module
                return spec
        return None


def _figures_off(ip) -> None:
    """Build figures but do not render them: matplotlib's inline backend gets no image format
    (it reads ``InlineBackend.figure_formats`` when it starts, on the first pyplot import), and a
    figure's plain-text form becomes a placeholder. The backend drops every ``Figure`` formatter
    when it starts (and again on ``%matplotlib inline``), so the placeholder is registered right
    after the backend's module has run, and again after every cell."""
    ip.config.InlineBackend.figure_formats = set()

    def _placeholder(fig, p, cycle) -> None:
        p.text(FIGURE_PLACEHOLDER.format(n=len(getattr(fig, "axes", []))))

    def _register(*_args) -> None:
        if "matplotlib.figure" in sys.modules:
            ip.display_formatter.formatters["text/plain"].for_type_by_name("matplotlib.figure", "Figure", _placeholder)

    backend = "matplotlib_inline.backend_inline"
    if backend in sys.modules:
        _register()
    else:
        sys.meta_path.insert(0, _AfterImport(backend, _register))
    ip.events.register("post_execute", _register)


def _import_checks() -> None:
    """Import cnnlab's grading helpers and every check module (what test cells use)."""
    import importlib
    import pkgutil

    for name in ("cnnlab.grading", "cnnlab.checks"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    checks = sys.modules.get("cnnlab.checks")
    if checks is not None:
        for info in pkgutil.iter_modules(checks.__path__):
            try:
                importlib.import_module(f"cnnlab.checks.{info.name}")
            except Exception:  # noqa: BLE001 - a broken check module must not kill the kernel
                continue


def load_ipython_extension(ip) -> None:
    """Install the sandbox and the pre-cell restoration into the grading kernel."""

    if os.environ.get(FIGURES_ENV) == "off":
        _figures_off(ip)

    locked: set[str] = set()
    path = os.environ.get("CNNLAB_GUARD_LOCKED")
    if path and os.path.exists(path):
        with open(path) as fh:
            locked = set(json.load(fh))
    protect = [os.path.realpath(p) for p in os.environ.get("CNNLAB_GUARD_PROTECT", "").split(":") if p]
    # import what test cells use, so that pristine copies are snapshotted before any student code
    import numpy  # noqa: F401
    import numpy.testing  # noqa: F401
    _import_checks()
    try:  # whether checks raise or show is fixed now, before any of the student's code runs
        from cnnlab.grading.exercise import fix_grading_mode
        fix_grading_mode()
    except ImportError:
        pass
    _STATE.update(
        cwd=os.path.realpath(os.getcwd()), protect=protect, locked=locked, busy=False,
        builtins=dict(vars(builtins)), modules={}, bound={},
        custom_exceptions=ip.custom_exceptions, CustomTB=ip.CustomTB,
        stdout=sys.stdout, stderr=sys.stderr)
    _track_modules()
    os._exit = _no_exit

    def pre_run_cell(info) -> None:
        _track_modules()
        src = getattr(info, "raw_cell", "") or ""
        if hashlib.sha256(src.encode()).hexdigest() in _STATE["locked"]:
            _restore_all(ip)

    def post_run_cell(result) -> None:
        src = getattr(result.info, "raw_cell", "") or ""
        if hashlib.sha256(src.encode()).hexdigest() in _STATE["locked"]:
            ns = ip.user_ns
            for name in _names_bound(src):
                if name in ns:
                    value = ns[name]
                    _STATE["bound"][name] = value
                    if isinstance(value, types.ModuleType) and value.__name__ not in _STATE["modules"]:
                        _STATE["modules"][value.__name__] = _snapshot_module(value)
        _track_modules()

    ip.events.register("pre_run_cell", pre_run_cell)
    ip.events.register("post_run_cell", post_run_cell)
    sys.addaudithook(_audit_hook)


def locked_hashes(sources: list[str]) -> list[str]:
    """Return the sha256 hex digests the guard uses to recognise locked cells."""
    return sorted({hashlib.sha256(s.encode()).hexdigest() for s in sources})
