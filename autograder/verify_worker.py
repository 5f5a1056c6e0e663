"""The verifier's worker: runs a student's answer cells and calls their functions on given cases.

Runs sandboxed (as ``/opt/cnnlab/lib/cnnlab_verify_worker.py``; the standard library, NumPy and
the ``cnnlab`` package) in a fresh process that has never run a test cell. It reads one request
from stdin and writes one reply to file descriptor 3; both carry only plain data (numbers, NumPy
scalars, strings, tuples, lists, dicts with string keys, NumPy arrays and dtypes of non-object
kind), encoded by :func:`dumps` and decoded by :func:`loads` without pickle. Only a request may
name a function, and only one of the course's package (``{"__fn__": "cnnlab.checks.nb05:max_pool_2x2"}``):
:func:`loads` refuses that in a reply.

Request::

    {"prelude": [source], "answers": [source], "argv": [...],
     "policy": {"forbid": [group], "refuse": [module], "functions": [dotted], "allow": [dotted]},
     "calls": [{"name": str, "mode": "call" | "value", "args": [...], "kwargs": {...}, "keep": [int] | None,
                "helpers": {name: function}, "seconds": int}]}

Reply: :data:`MAGIC` (written once the worker is sealed, before any of the student's code runs),
then :data:`STARTED` once before each answer source runs and :data:`ANSWERED` after the last (a
worker that dies in an answer says which one by them), then ``{"calls": [{"ok": value} | {"raised": "module.Type", "message": str} | {"error": str}, ...],
"sealed": {...}}``; a call's reply may also carry ``"called"`` (course functions the policy
forbids that it tried) and ``"refused"`` (audit events refused while it ran). A reply without the
magic means the worker never reached the student's code (an infrastructure failure).

Before any of the student's code runs, the worker *seals* itself (:func:`_seal`) so that nothing
the student's code does can switch the rules off (each piece is attacked in
``tests/test_verify_worker.py``):

- every Python function that the policy forbids (the integrity guard's groups for the exercise:
  the course's references; modules a check refuses, such as ``cnnlab.shapes``; the checks'
  ``ref_*`` functions), except the allowed functions and every course function they reach by
  name, gets its ``__code__`` replaced, for the rest of the process, by a trap that records the
  call and raises. The trap keeps nothing of the original (no switch, no copy, no state to flip):
  aliases the student's code holds are trapped too, from any thread, at any time. Packages
  whose compiled code cannot be trapped (torch, ``cnnlab.torch_ref``, ``scipy.signal``,
  ``scipy.ndimage``) cannot be imported where forbidden, nor a course module that would arrive
  untrapped;
- a seccomp filter (Linux x86-64 and aarch64) refuses new threads and processes (``clone``,
  ``clone3``, ``fork``, ``vfork``) and ``execve``: no fresh, untrapped interpreter can write the
  reply;
- an audit hook (it cannot be removed) refuses ``gc``'s object walks, starting processes,
  ``ctypes`` unless an installed library asks for its own files (torch loading its shared
  objects), compiled modules from outside the installed libraries, opening the source or
  bytecode of a sealed course module (no ``importlib.reload``, no fresh copy, whoever asks) and
  opening ``/proc/*/mem``. Setting a function's ``__code__``, frames and tracers stay allowed:
  with no original left anywhere, they lead nowhere;
- a Landlock rule (Linux 5.13 or later, where enabled) makes the kernel refuse reading the sealed
  modules' source and bytecode, whatever path, ``dir_fd`` or link reaches them: the audit hook
  checks a path before the call opens it, and a ``str`` subclass, a ``dir_fd`` or a signal
  handler that swaps a link after the check open another file than the one checked. Without
  Landlock the verifier flags it (``sealed["landlock"]``).

The worker and the grading kernel look alike to the student's code where that is cheap (the same
``sys.argv``, ``NBGRADER_EXECUTION``, a ``__main__`` module holding the notebook's names), but
nothing relies on it: the verdict is computed outside, from plain values, by
:mod:`autograder.verifier`.
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import struct
import sys

MAX_REPLY = 64 * 1024 * 1024
MAGIC = b"CNNLAB-VERIFY-3\n"
STARTED = b"+"      # written before each answer source runs
ANSWERED = b"|"     # written after the last: the reply follows


def split_reply(data: bytes) -> tuple[int, bool, bytes]:
    """What follows :data:`MAGIC` in a worker's output: (how many answer sources it started, whether
    it finished them all, the encoded reply)."""
    body = data.lstrip(STARTED)
    started = len(data) - len(body)
    if body.startswith(ANSWERED):
        return started, True, body[len(ANSWERED):]
    return started, False, body
KERNEL_ARGV0 = "/opt/cnnlab/lib/cnnlab_kernel.py"   # what the grading kernel's sys.argv[0] is

#: forbidden groups whose code is compiled (cannot be trapped): the worker refuses importing them
UNTRAPPABLE = {"torch": ("torch",), "torch_conv": ("torch",), "torch_ref": ("cnnlab.torch_ref",),
               "scipy": ("scipy.signal", "scipy.ndimage")}


# ----------------------------------------------------------------------------- plain data

def _npy(a) -> bytes:
    import numpy as np

    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def dotted(fn) -> str:
    """``"module:qualname"`` of a function (what a request names it by)."""
    return f"{fn.__module__}:{fn.__qualname__}"


def resolve(name: str):
    """The object a :func:`dotted` name stands for (only in the ``cnnlab`` package)."""
    import importlib

    module, _, qual = str(name).partition(":")
    if not (module == "cnnlab" or module.startswith("cnnlab.")) or not qual:
        raise ValueError(f"not a function of the course's package: {name!r}")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def _enc(obj, blobs: list, functions: bool):
    import numpy as np

    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, np.generic):          # before int and float: np.float64 is a float
        a = np.asarray(obj)
        if a.dtype.hasobject:
            raise TypeError("a NumPy object scalar is not plain data")
        blobs.append(_npy(a))
        return {"__scalar__": len(blobs) - 1}
    if isinstance(obj, str):
        return str(obj)                       # a subclass becomes a plain str
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        f = float(obj)
        return f if math.isfinite(f) else {"__num__": repr(f)}
    if isinstance(obj, complex):
        return {"__complex__": [repr(float(obj.real)), repr(float(obj.imag))]}
    if isinstance(obj, np.ndarray):
        a = np.asarray(obj)
        if a.dtype.hasobject or a.dtype.fields is not None:
            raise TypeError("an array of Python objects or records is not plain data")
        blobs.append(_npy(a))
        return {"__nd__": len(blobs) - 1}
    if isinstance(obj, np.dtype):
        if obj.hasobject or obj.fields is not None:
            raise TypeError("an object or record dtype is not plain data")
        return {"__dtype__": obj.str}
    if isinstance(obj, tuple):
        return {"__tuple__": [_enc(v, blobs, functions) for v in obj]}
    if isinstance(obj, list):
        return [_enc(v, blobs, functions) for v in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("a dict with non-string keys is not plain data")
        return {"__dict__": {str(k): _enc(v, blobs, functions) for k, v in obj.items()}}
    if functions and callable(obj) and hasattr(obj, "__qualname__"):
        name = dotted(obj)
        try:
            same = resolve(name) is obj
        except (ImportError, AttributeError, ValueError):
            same = False
        if not same:
            raise TypeError(f"{name} is not a function of the course's package")
        return {"__fn__": name}
    if hasattr(obj, "__array__") and hasattr(obj, "shape"):   # e.g. a tensor: its values
        return _enc(np.asarray(obj), blobs, functions)
    raise TypeError(f"a {type(obj).__name__} is not plain data")


def dumps(obj, *, functions: bool = False) -> bytes:
    """Encode plain data (see the module docstring); ``functions``: a request may name the course's functions."""
    blobs: list[bytes] = []
    head = json.dumps(_enc(obj, blobs, functions), allow_nan=False).encode()
    parts = [struct.pack("<Q", len(head)), head, struct.pack("<Q", len(blobs))]
    for b in blobs:
        parts += [struct.pack("<Q", len(b)), b]
    return b"".join(parts)


def _dec(obj, blobs, functions: bool):
    import numpy as np

    if isinstance(obj, list):
        return [_dec(v, blobs, functions) for v in obj]
    if isinstance(obj, dict):
        if len(obj) != 1:
            raise ValueError("unknown encoding")
        (key, value), = obj.items()
        if key == "__nd__":
            a = np.load(io.BytesIO(blobs[int(value)]), allow_pickle=False)
            if not isinstance(a, np.ndarray):
                raise ValueError("not an array")
            return a
        if key == "__scalar__":
            a = np.load(io.BytesIO(blobs[int(value)]), allow_pickle=False)
            if not isinstance(a, np.ndarray) or a.shape != ():
                raise ValueError("not a scalar")
            return a[()]
        if key == "__num__":
            f = float(value)
            if math.isfinite(f):
                raise ValueError("a finite number encoded as a special one")
            return f
        if key == "__complex__":
            re, im = value
            return complex(float(re), float(im))
        if key == "__dtype__":
            dt = np.dtype(str(value))
            if dt.hasobject or dt.fields is not None:
                raise ValueError("an object dtype")
            return dt
        if key == "__tuple__":
            if not isinstance(value, list):
                raise ValueError("a tuple must be a list")
            return tuple(_dec(v, blobs, functions) for v in value)
        if key == "__dict__":
            if not isinstance(value, dict):
                raise ValueError("a dict must be an object")
            return {str(k): _dec(v, blobs, functions) for k, v in value.items()}
        if key == "__fn__" and functions:
            return resolve(value)
        raise ValueError("unknown encoding")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ValueError("unknown encoding")


def loads(data: bytes, *, functions: bool = False):
    """Decode :func:`dumps`' bytes. Anything else, trailing bytes included, raises ValueError
    (never another exception; never unpickles; names a function only with ``functions``)."""
    try:
        data = bytes(data)
        (n,) = struct.unpack_from("<Q", data, 0)
        if n > len(data):
            raise ValueError("a header longer than the data")
        head = json.loads(data[8:8 + n])
        pos = 8 + n
        (count,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        if count > 100_000:
            raise ValueError("too many arrays")
        blobs = []
        for _ in range(count):
            (m,) = struct.unpack_from("<Q", data, pos)
            pos += 8
            if pos + m > len(data):
                raise ValueError("an array longer than the data")
            blobs.append(data[pos:pos + m])
            pos += m
        if pos != len(data):
            raise ValueError("bytes after the end")
        return _dec(head, blobs, functions)
    except ValueError as exc:
        raise ValueError(f"unreadable data ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - whatever the bytes do, the answer is "unreadable"
        raise ValueError(f"unreadable data ({type(exc).__name__})") from None


# ----------------------------------------------------------------------------- running cells

def _strip_magics(src: str) -> str:
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.split("\n"))


class _Inert:
    """Stands for IPython's ``display``/``get_ipython`` in answer cells: accepts anything, does nothing."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


# A notebook's set-up and answer cells import far more than the functions under test use
# (PyTorch, matplotlib, the course's figure helpers): importing them took 90% of the worker's
# time. So a module-level import is not run where it stands; the names it would bind are
# recorded, and the import runs when a statement being run, or a function about to be called,
# needs one of them (a NameError for that name, or the name among the globals its code reads).
# A name bound again later (``np = ...``) is no longer deferred; an import that fails leaves the
# name unbound, as the failed import would have in the notebook.


def _deferrable(node) -> bool:
    if isinstance(node, ast.Import):
        return True
    return (isinstance(node, ast.ImportFrom) and not node.level and node.module != "__future__"
            and not any(a.name == "*" for a in node.names))


def _defer(node, ns: dict, deferred: dict) -> None:
    for alias in node.names:
        name = alias.asname or alias.name.split(".")[0]
        one = type(node)(names=[alias], **({"module": node.module, "level": 0} if isinstance(node, ast.ImportFrom) else {}))
        deferred[name] = ast.unparse(one)
        ns.pop(name, None)     # a later import rebinds: the earlier value must not be found


def _bind(name: str, ns: dict, deferred: dict) -> bool:
    src = deferred.pop(name, None)
    if src is None:
        return False
    try:
        exec(compile(src, "<import>", "exec"), ns)
    except BaseException:  # noqa: BLE001 - as a failed import in the notebook: the name stays unbound
        return False
    return True


def run_source(src: str, label: str, ns: dict, deferred: dict, tripped: type | None = None) -> None:
    """Run one cell's source statement by statement (see above); the first statement that
    raises ends the cell, as in a notebook, except one stopped by a trap (``tripped``): the
    kernel would have run it, so the cell goes on."""
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return
    for node in tree.body:
        if _deferrable(node):
            _defer(node, ns, deferred)
            continue
        try:
            code = compile(ast.Module(body=[node], type_ignores=[]), label, "exec")
        except (SyntaxError, ValueError):
            return
        while True:
            try:
                exec(code, ns)
                break
            except NameError as exc:
                if getattr(exc, "name", None) in deferred and _bind(exc.name, ns, deferred):
                    continue
                return
            except BaseException as exc:  # noqa: BLE001 - as in a notebook, later cells still run
                if tripped is not None and isinstance(exc, tripped):
                    break
                return
        for name in [n for n in deferred if n in ns]:
            del deferred[name]     # bound again by this statement


def _codes(code):
    yield code
    for c in code.co_consts:
        if hasattr(c, "co_names"):
            yield from _codes(c)


def bind_needed(fn, ns: dict, deferred: dict) -> None:
    """Run the deferred imports of the globals that ``fn`` (and the functions and classes of the
    notebook it names, transitively) reads. Only the notebook's own functions are looked into."""
    seen: set[int] = set()
    todo = [fn]
    while todo and deferred:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, type):
            if getattr(obj, "__module__", None) == "__main__":
                todo += [v for v in vars(obj).values()
                         if callable(v) or isinstance(v, (staticmethod, classmethod, property))]
            continue
        obj = getattr(obj, "__func__", obj)
        if isinstance(obj, property):
            todo += [f for f in (obj.fget, obj.fset) if f is not None]
            continue
        if getattr(obj, "__globals__", None) is not ns:
            continue               # not the notebook's: the course's code is never looked into
        if getattr(obj, "__wrapped__", None) is not None:
            todo.append(obj.__wrapped__)
        code = getattr(obj, "__code__", None)
        if code is None:
            continue
        for c in _codes(code):
            for name in c.co_names:
                if name in deferred:
                    _bind(name, ns, deferred)
                value = ns.get(name)
                if value is not None and (getattr(value, "__globals__", None) is ns or (
                        isinstance(value, type) and getattr(value, "__module__", None) == "__main__")):
                    todo.append(value)


# ----------------------------------------------------------------------------- the seal

#: audit events refused once the worker is sealed (besides those decided case by case below)
REFUSED_EVENTS = frozenset({
    "gc.get_objects", "gc.get_referrers", "gc.get_referents", "os.exec", "os.fork", "os.forkpty",
    "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen", "pty.spawn", "os.startfile",
})

_SYSCALLS = {  # machine -> (AUDIT_ARCH, {name: number})
    "x86_64": (0xC000003E, {"clone": 56, "fork": 57, "vfork": 58, "execve": 59, "execveat": 322, "clone3": 435}),
    "aarch64": (0xC00000B7, {"clone": 220, "clone3": 435, "execve": 221, "execveat": 281}),
}


def _seccomp() -> str:
    """Refuse (EPERM) new threads and processes and ``execve`` for the rest of this process.
    Returns "on", or why the filter could not be installed."""
    import ctypes
    import platform

    machine = platform.machine()
    if not sys.platform.startswith("linux") or machine not in _SYSCALLS:
        return f"no seccomp filter for {sys.platform} {machine}"
    arch, numbers = _SYSCALLS[machine]
    ld_w_abs, jeq_k, jge_k, ret_k = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | 1          # SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO | EPERM
    prog = [(ld_w_abs, 0, 0, 4), (jeq_k, 1, 0, arch), (ret_k, 0, 0, deny), (ld_w_abs, 0, 0, 0),
            (jge_k, 0, 1, 0x40000000), (ret_k, 0, 0, deny)]   # another ABI, or x32's numbers: refused
    nrs = sorted(set(numbers.values()))
    for i, nr in enumerate(nrs):
        prog.append((jeq_k, len(nrs) - i, 0, nr))        # to the final "deny"
    prog += [(ret_k, 0, 0, allow), (ret_k, 0, 0, deny)]

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(prog))(*[Filter(*f) for f in prog])
    fprog = Prog(len(prog), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0:                  # PR_SET_NO_NEW_PRIVS
        return f"PR_SET_NO_NEW_PRIVS failed (errno {ctypes.get_errno()})"
    if libc.prctl(22, 2, ctypes.cast(ctypes.pointer(fprog), ctypes.c_void_p), 0, 0) != 0:   # SECCOMP_MODE_FILTER
        return f"the seccomp filter was refused (errno {ctypes.get_errno()})"
    return "on"


_LANDLOCK = {"create_ruleset": 444, "add_rule": 445, "restrict_self": 446}   # x86-64 and aarch64 alike
_READ_FILE = 1 << 2            # LANDLOCK_ACCESS_FS_READ_FILE


def _landlock(course_dir: str, sealed) -> str:
    """Refuse, in the Linux kernel, reading every file of the course package that ``sealed(path)``
    names (the sealed modules' source and bytecode), for the rest of this process; every other file
    stays readable. The kernel decides on the file itself, whatever path, descriptor or link reaches
    it and whenever it is opened: the audit hook's check of a path cannot be that (a ``str`` subclass
    steers ``os.path.realpath``, ``dir_fd`` is not in the audit event, a signal handler can swap a
    link after the check). Returns "on", or why Landlock could not be used."""
    import ctypes
    import struct

    if not sys.platform.startswith("linux"):
        return f"no Landlock on {sys.platform}"
    denied = set()
    for root, _dirs, files in os.walk(course_dir):
        for name in files:
            path = os.path.join(root, name)
            if sealed(os.path.realpath(path)):
                denied.add(path)
    if not denied:
        return "on"
    ancestors = set()
    for path in denied:
        while path != os.sep:
            path = os.path.dirname(path)
            ancestors.add(path)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    attr = ctypes.create_string_buffer(struct.pack("<Q", _READ_FILE), 8)
    ruleset = libc.syscall(ctypes.c_long(_LANDLOCK["create_ruleset"]), attr, ctypes.c_size_t(8), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"Landlock is not available (errno {ctypes.get_errno()})"
    try:
        def allow(path: str) -> None:
            if path in denied or os.path.islink(path):
                return
            if path in ancestors:
                for name in os.listdir(path):
                    allow(os.path.join(path, name))
                return
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC | os.O_NOFOLLOW)
            except OSError:
                return
            try:
                rule = ctypes.create_string_buffer(struct.pack("<Qi", _READ_FILE, fd), 12)
                libc.syscall(ctypes.c_long(_LANDLOCK["add_rule"]), ctypes.c_int(ruleset), ctypes.c_int(1), rule,
                             ctypes.c_uint32(0))   # (a rule refused leaves that file unreadable: safe)
            finally:
                os.close(fd)

        allow(os.sep)
        if libc.prctl(38, 1, 0, 0, 0) != 0:                     # PR_SET_NO_NEW_PRIVS
            return f"PR_SET_NO_NEW_PRIVS failed (errno {ctypes.get_errno()})"
        if libc.syscall(ctypes.c_long(_LANDLOCK["restrict_self"]), ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            return f"Landlock refused the rules (errno {ctypes.get_errno()})"
    finally:
        os.close(ruleset)
    return "on"


_MARKER = "__cnnlab_verifier_hook__"


def _trap_template(nfree: int):
    """Code of ``def f(*args, **kwargs): return MARKER(args, kwargs)`` with ``nfree`` free variables."""
    import warnings

    cells = [f"_c{i}" for i in range(nfree)]
    lines = ["def _outer():"]
    if cells:
        lines.append("    " + " = ".join(cells) + " = None")
    lines.append("    def _f(*args, **kwargs):")
    if cells:
        lines.append("        (" + ", ".join(cells) + ",)")
    lines.append(f"        return {_MARKER!r}(args, kwargs)")
    lines.append("    return _f")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # "'str' object is not callable": replaced by the hook
        module = compile("\n".join(lines), "<cnnlab verifier trap>", "exec")
    outer = next(c for c in module.co_consts if hasattr(c, "co_code"))
    return next(c for c in outer.co_consts if hasattr(c, "co_code"))


def _codes_of(fn):
    code = fn.__code__
    todo = [code]
    while todo:
        c = todo.pop()
        yield c
        todo += [k for k in c.co_consts if hasattr(k, "co_code")]


def reachable(functions, package: str = "cnnlab") -> dict[int, object]:
    """The course functions that ``functions`` can reach by name (their globals, modules' and
    classes' attributes they name), transitively: what an allowed function needs to run."""
    import builtins
    import types

    def ours(obj) -> bool:
        module = getattr(obj, "__module__", None) or ""
        return module == package or module.startswith(package + ".")

    found: dict[int, object] = {}
    todo = [f for f in functions if isinstance(f, types.FunctionType)]
    while todo:
        f = todo.pop()
        if id(f) in found or not ours(f):
            continue
        found[id(f)] = f
        names = {n for c in _codes_of(f) for n in c.co_names}
        for name in names:
            value = f.__globals__.get(name, getattr(builtins, name, None))
            values = [value]
            if isinstance(value, (types.ModuleType, type)):
                if not (ours(value) or (getattr(value, "__name__", "") or "").startswith(package)):
                    continue
                values = [getattr(value, n, None) for n in names]
                if isinstance(value, type):
                    values += list(vars(value).values())
            for v in values:
                v = getattr(v, "__func__", v)
                if isinstance(v, types.FunctionType) and ours(v):
                    todo.append(v)
                    wrapped = getattr(v, "__wrapped__", None)
                    if wrapped is not None:
                        todo.append(wrapped)
                    for cell in v.__closure__ or ():
                        try:
                            if isinstance(cell.cell_contents, types.FunctionType):
                                todo.append(cell.cell_contents)
                        except ValueError:
                            continue
    return found


def _seal(policy: dict):
    """Trap the policy's forbidden functions for good, install the seccomp filter and the audit
    hook (see the module docstring). A trap keeps nothing of the original: it records the call
    and raises, always; the allowed functions, and every course function they reach by name, are
    left as they are. Returns ``(log, tripped, arm, state)``: ``log() -> (called, refused)``
    (and clears them), the exception a trap raises, ``arm()`` (the audit hook refuses from then
    on) and a description of the seal."""
    import importlib
    import signal
    import types

    import numpy  # noqa: F401 - before the filter (OpenBLAS sets itself up on import)

    from cnnlab.grading import guard

    groups = tuple(policy.get("forbid", ()))
    refuse_imports = sorted({m for g in groups for m in UNTRAPPABLE.get(g, ())})
    for name in policy.get("allow", ()):
        module = str(name).partition(":")[0]
        if any(module == m or module.startswith(m + ".") for m in refuse_imports):
            raise ValueError(f"{name} is allowed, but its package cannot be imported where it is forbidden")
    python_groups = tuple(g for g in groups if g not in UNTRAPPABLE)
    for g in python_groups:
        importlib.import_module(f"cnnlab.{g}")
    modules = [importlib.import_module(m) for m in policy.get("refuse", ())]
    forbidden = {id(f): f for f in guard.functions_of(python_groups, modules=modules)}
    for name in policy.get("functions", ()):
        f = guard.plain_function(resolve(name))
        if f is not None:
            forbidden[id(f)] = f
    allowed = [guard.plain_function(resolve(name)) for name in policy.get("allow", ())]
    for fid in reachable([f for f in allowed if f is not None]):
        forbidden.pop(fid, None)
    # packages whose code may not run here, and whose modules must not come in later untrapped
    sealed_packages = tuple(sorted({f"cnnlab.{g}" for g in python_groups} | {m.__name__ for m in modules}
                                   | {"cnnlab.checks"}))

    class Tripped(BaseException):
        """A course function that this check forbids was called: its value is not computed."""

    called: list[str] = []
    refused: list[str] = []

    def make_hook(name: str):
        def hook(args, kwargs):
            called.append(name)
            raise Tripped(f"{name} may not run here")
        return hook

    templates: dict[int, types.CodeType] = {}
    trapped = 0
    for f in forbidden.values():
        code = f.__code__
        nfree = len(code.co_freevars)
        if nfree not in templates:
            templates[nfree] = _trap_template(nfree)
        template = templates[nfree]
        hook = make_hook(f"{f.__module__}.{f.__qualname__}")
        trap = template.replace(
            co_consts=tuple(hook if isinstance(c, str) and c == _MARKER else c for c in template.co_consts),
            co_name=code.co_name, co_qualname=code.co_qualname, co_filename=code.co_filename,
            co_firstlineno=code.co_firstlineno)
        try:
            f.__code__ = trap
        except ValueError:      # an unusual function (closure mismatch): cannot be trapped
            continue
        trapped += 1
    del forbidden, allowed

    course_dir = os.path.dirname(os.path.realpath(importlib.import_module("cnnlab").__file__))
    sealed_dirs = tuple(os.path.join(course_dir, *p.split(".")[1:]) for p in sealed_packages)
    loaded_files: set[str] = set()
    for name in [n for n in sys.modules if n == "cnnlab" or n.startswith("cnnlab.")]:
        for attr in ("__file__", "__cached__"):
            p = getattr(sys.modules.get(name), attr, None)
            if isinstance(p, str):
                loaded_files.add(os.path.realpath(p))

    def _alarm(*_):   # how a call is stopped at its time limit
        raise TimeoutError("no result within the time limit")

    signal.signal(signal.SIGALRM, _alarm)
    state = {"seccomp": _seccomp(), "trapped": trapped, "refused imports": refuse_imports}

    armed = [False]
    busy = [False]
    here = os.path.realpath(__file__)

    def refuse(event: str, detail: str = "") -> None:
        what = event + (f" ({detail})" if detail else "")
        busy[0] = True
        try:       # where it came from: the first frame outside this file
            frame = sys._getframe(2)
            while frame is not None and os.path.realpath(frame.f_code.co_filename) == here:
                frame = frame.f_back
            if frame is not None:
                what += f" at {os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"
        except Exception:  # noqa: BLE001 - the place is a courtesy
            pass
        finally:
            busy[0] = False
        refused.append(what)
        raise PermissionError(f"the verifier's worker refuses {what}")

    def sealed_file(path: str) -> bool:
        if path in loaded_files:
            return True
        return path.endswith((".py", ".pyc")) and any(
            path == d + ".py" or path.startswith(d + os.sep) or path.startswith(os.path.dirname(d) + os.sep + "__pycache__"
                                                                                 + os.sep + os.path.basename(d) + ".")
            for d in sealed_dirs)

    import ctypes as _ctypes
    import sysconfig

    ctypes_dir = os.path.dirname(os.path.realpath(_ctypes.__file__)) + os.sep
    library_dirs = tuple(sorted({os.path.realpath(p).rstrip(os.sep) + os.sep for p in (
        sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
        *(sysconfig.get_paths().get(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")),
        "/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib") if p}))
    course_prefix = course_dir.rstrip(os.sep) + os.sep

    def library(path: str) -> bool:
        return path.startswith(library_dirs) and not path.startswith(course_prefix)

    def from_library() -> bool:
        """Whether the code that asked (the first frame outside ctypes and this file) is an
        installed library's (torch loading its own shared objects), not the student's."""
        busy[0] = True
        try:
            frame = sys._getframe(2)
            while frame is not None:
                path = os.path.realpath(frame.f_code.co_filename)
                if path != here and not path.startswith(ctypes_dir):
                    return library(path)
                frame = frame.f_back
            return False
        finally:
            busy[0] = False

    def audit(event: str, args: tuple) -> None:
        if not armed[0] or busy[0]:
            return
        if event in REFUSED_EVENTS:
            refuse(event)
        elif event.startswith("ctypes."):
            # the student's code may not use ctypes (it could read the course's files past the
            # "open" rule below, or write memory); an installed library may, on its own files
            name = args[0] if event == "ctypes.dlopen" and args else None
            if not from_library():
                refuse(event)
            if isinstance(name, str) and os.sep in name:
                busy[0] = True
                try:
                    where = os.path.realpath(name)
                finally:
                    busy[0] = False
                if not library(where):
                    refuse(event, name)
        elif event == "import" and args:
            name = str(args[0])
            if any(name == m or name.startswith(m + ".") for m in (*refuse_imports, *sealed_packages)):
                refuse(event, name)     # a forbidden package, or a course module that would come in untrapped
            if len(args) >= 2 and isinstance(args[1], str):      # an extension module's file
                busy[0] = True
                try:
                    where = os.path.realpath(args[1])
                finally:
                    busy[0] = False
                if not library(where):
                    refuse(event, f"compiled code from {args[1]}")
        elif event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
            busy[0] = True
            try:     # the string the call used, never a subclass's methods (the kernel's rule decides anyway)
                name = os.fsdecode(args[0])
                path = os.path.realpath(str.__str__(name) if isinstance(name, str) else name)
            finally:
                busy[0] = False
            if sealed_file(path):
                refuse(event, "a course module's code")   # no reload, no fresh untrapped copy
            if path.startswith("/proc/") and path.endswith("/mem"):
                refuse(event, path)

    state["landlock"] = _landlock(course_dir, sealed_file)
    sys.addaudithook(audit)

    def log() -> tuple[list[str], list[str]]:
        out = (list(called), list(refused))
        called.clear()
        refused.clear()
        return out

    def arm() -> None:
        armed[0] = True

    return log, Tripped, arm, state


# ----------------------------------------------------------------------------- serving one request

def _exception_name(exc: BaseException) -> str:
    t = type(exc)
    return f"{t.__module__}.{t.__qualname__}"


def main() -> None:
    """Serve one request (see the module docstring)."""
    import resource
    import signal
    import types

    argv = sys.argv[1:]
    opts = dict(zip(argv[::2], argv[1::2]))
    if int(opts.get("--nproc", "0")) > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (int(opts["--nproc"]),) * 2)
    if int(opts.get("--mem-mb", "0")) > 0:
        resource.setrlimit(resource.RLIMIT_AS, (int(opts["--mem-mb"]) << 20,) * 2)
    out = os.fdopen(int(opts.get("--fd", "3")), "wb")
    write, flush, exit_now = out.write, out.flush, os._exit
    # as in a grading kernel (set before cnnlab is imported: it reads them)
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(k, "1")
    request = loads(sys.stdin.buffer.read(), functions=True)
    calls = list(request.get("calls", []))
    log, tripped, arm, sealed = _seal(dict(request.get("policy") or {}))
    sys.argv = [str(a) for a in request.get("argv") or [KERNEL_ARGV0]]

    user = types.ModuleType("__main__")      # what IPython's __main__ is: the notebook's namespace
    ns = user.__dict__
    ns.update({"display": _Inert(), "get_ipython": _Inert()})
    sys.modules["__main__"] = user
    deferred: dict = {}
    alarm = signal.alarm
    write(MAGIC)
    flush()
    arm()
    for src in request.get("prelude", []):
        run_source(src, "<setup>", ns, deferred, tripped)
    for i, src in enumerate(request.get("answers", [])):
        write(STARTED)
        flush()
        run_source(_strip_magics(src), f"<answer {i}>", ns, deferred, tripped)
    write(ANSWERED)
    flush()
    log()
    replies = []
    for call in calls:
        name, mode = str(call.get("name")), call.get("mode", "call")
        args, kwargs = list(call.get("args") or []), dict(call.get("kwargs") or {})
        keep, seconds = call.get("keep"), max(1, int(call.get("seconds") or 30))
        helpers = {str(k): v for k, v in dict(call.get("helpers") or {}).items()}
        reply: dict = {}
        saved = {h: ns.get(h, _Inert) for h in helpers}
        try:
            fn = ns.get(name)
            if mode == "value":
                if name not in ns and name in deferred:
                    _bind(name, ns, deferred)
                if name not in ns:
                    raise NameError(f"{name!r} was not set")
                value = ns[name]
            else:
                if not callable(fn):
                    raise NameError(f"no function {name!r} was defined")
                ns.update(helpers)
                bind_needed(fn, ns, deferred)
                alarm(seconds)
                try:
                    try:
                        value = fn(*args, **kwargs)
                    except NameError as exc:   # a global read in a way the scan cannot see (eval, globals())
                        if not (getattr(exc, "name", None) in deferred and _bind(exc.name, ns, deferred)):
                            raise
                        value = fn(*args, **kwargs)
                finally:
                    alarm(0)
            if keep is not None and isinstance(value, tuple | list) and len(value) > max(keep, default=-1):
                value = [v if i in keep else None for i, v in enumerate(value)]
            try:
                dumps(value)
                reply["ok"] = value
            except BaseException as exc:  # noqa: BLE001 - not plain data (or its encoding raised)
                reply["error"] = f"the result is not plain data: {type(exc).__name__}: {str(exc)[:200]}"
        except BaseException as exc:  # noqa: BLE001 - report, never crash
            reply.update(raised=_exception_name(exc), message=str(exc)[:300])
        finally:
            for h, v in saved.items():
                if v is _Inert:
                    ns.pop(h, None)
                else:
                    ns[h] = v
        called, refused = log()
        if called:
            reply["called"] = called[:5]
        if refused:
            reply["refused"] = refused[:5]
        replies.append(reply)
    try:
        data = dumps({"calls": replies, "sealed": sealed})
    except BaseException as exc:  # noqa: BLE001 - a value that passed dumps once but not now
        data = dumps({"error": f"the reply could not be encoded: {type(exc).__name__}"})
    write(data)
    flush()
    exit_now(0)     # no atexit handler of the student's code runs after the reply


if __name__ == "__main__":
    main()
