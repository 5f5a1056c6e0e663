"""The verifier's worker: runs a student's answer cells and calls their functions on given cases.

Runs sandboxed (as ``/opt/cnnlab/lib/cnnlab_verify_worker.py``; standard library and NumPy only)
in a fresh process that has never run a test cell. It reads one request from stdin and writes
one reply to file descriptor 3; both carry only plain data (numbers, strings, tuples, lists,
dicts with string keys, NumPy arrays of non-object dtype), encoded by :func:`dumps` and decoded
by :func:`loads` without pickle.

Request: ``{"prelude": [source], "answers": [source], "calls": [[name, args, kwargs], ...],
"seconds": per-call limit}``; reply: ``[{"ok": value} | {"error": "Type: message"}, ...]``.
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


def _enc(obj, blobs: list):
    import numpy as np

    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__num__": repr(obj)}
    if isinstance(obj, np.generic):
        return _enc(np.asarray(obj), blobs)
    if isinstance(obj, np.ndarray):
        if obj.dtype.hasobject:
            raise TypeError("an array of Python objects is not plain data")
        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=False)
        blobs.append(buf.getvalue())
        return {"__nd__": len(blobs) - 1}
    if isinstance(obj, complex):
        return {"__complex__": [obj.real, obj.imag]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_enc(v, blobs) for v in obj]}
    if isinstance(obj, list):
        return [_enc(v, blobs) for v in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError("a dict with non-string keys is not plain data")
        return {"__dict__": {k: _enc(v, blobs) for k, v in obj.items()}}
    if hasattr(obj, "__array__") and hasattr(obj, "shape"):   # e.g. a tensor: its values
        return _enc(np.asarray(obj), blobs)
    raise TypeError(f"a {type(obj).__name__} is not plain data")


def dumps(obj) -> bytes:
    """Encode plain data (see the module docstring)."""
    blobs: list[bytes] = []
    head = json.dumps(_enc(obj, blobs), allow_nan=False).encode()
    parts = [struct.pack("<Q", len(head)), head, struct.pack("<Q", len(blobs))]
    for b in blobs:
        parts += [struct.pack("<Q", len(b)), b]
    return b"".join(parts)


def _dec(obj, blobs):
    import numpy as np

    if isinstance(obj, list):
        return [_dec(v, blobs) for v in obj]
    if isinstance(obj, dict):
        if "__nd__" in obj:
            return np.load(io.BytesIO(blobs[int(obj["__nd__"])]), allow_pickle=False)
        if "__num__" in obj:
            return float(obj["__num__"])
        if "__complex__" in obj:
            return complex(*obj["__complex__"])
        if "__tuple__" in obj:
            return tuple(_dec(v, blobs) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {str(k): _dec(v, blobs) for k, v in obj["__dict__"].items()}
        raise ValueError("unknown encoding")
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise ValueError("unknown encoding")


def loads(data: bytes):
    """Decode :func:`dumps`' bytes (raises ValueError on anything else; never unpickles)."""
    try:
        (n,) = struct.unpack_from("<Q", data, 0)
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
            blobs.append(data[pos:pos + m])
            pos += m
        return _dec(head, blobs)
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError, IndexError, KeyError, TypeError) as exc:
        raise ValueError(f"unreadable reply ({type(exc).__name__})") from exc


def _strip_magics(src: str) -> str:
    return "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.split("\n"))


class _Inert:
    """Stands for IPython's ``display``/``get_ipython`` in answer cells: accepts anything, does nothing."""

    def __getattr__(self, name):
        return self

    def __call__(self, *args, **kwargs):
        return self


# ----------------------------------------------------------------------------- deferred imports
#
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
    except Exception:  # noqa: BLE001 - as a failed import in the notebook: the name stays unbound
        return False
    return True


def run_source(src: str, label: str, ns: dict, deferred: dict) -> None:
    """Run one cell's source statement by statement (see above); the first statement that
    raises ends the cell, as in a notebook."""
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
            except BaseException:  # noqa: BLE001 - as in a notebook, later cells still run
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
    notebook it names, transitively) reads."""
    seen: set[int] = set()
    todo = [fn]
    while todo and deferred:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, type):
            todo += [v for v in vars(obj).values() if callable(v) or isinstance(v, (staticmethod, classmethod, property))]
            continue
        obj = getattr(obj, "__func__", obj)
        if getattr(obj, "__wrapped__", None) is not None:
            todo.append(obj.__wrapped__)
        if isinstance(obj, property):
            todo += [f for f in (obj.fget, obj.fset) if f is not None]
            continue
        code = getattr(obj, "__code__", None)
        if code is None or getattr(obj, "__globals__", None) is not ns:
            continue
        for c in _codes(code):
            for name in c.co_names:
                if name in deferred:
                    _bind(name, ns, deferred)
                value = ns.get(name)
                if value is not None and (getattr(value, "__globals__", None) is ns or (
                        isinstance(value, type) and getattr(value, "__module__", None) == "__main__")):
                    todo.append(value)


def main() -> None:
    """Serve one request (see the module docstring)."""
    import resource
    import signal

    argv = sys.argv[1:]
    opts = dict(zip(argv[::2], argv[1::2]))
    if int(opts.get("--nproc", "0")) > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (int(opts["--nproc"]),) * 2)
    if int(opts.get("--mem-mb", "0")) > 0:
        resource.setrlimit(resource.RLIMIT_AS, (int(opts["--mem-mb"]) << 20,) * 2)
    out = os.fdopen(int(opts.get("--fd", "3")), "wb")
    request = loads(sys.stdin.buffer.read())
    ns: dict = {"__name__": "__main__", "display": _Inert(), "get_ipython": _Inert()}
    deferred: dict = {}
    for src in request.get("prelude", []):
        run_source(src, "<setup>", ns, deferred)
    for i, src in enumerate(request.get("answers", [])):
        run_source(_strip_magics(src), f"<answer {i}>", ns, deferred)
    seconds = int(request.get("seconds", 30))

    def _alarm(*_):
        raise TimeoutError(f"no result within {seconds} s")

    signal.signal(signal.SIGALRM, _alarm)
    replies = []
    for name, args, kwargs, *rest in request.get("calls", []):
        keep = rest[0] if rest else None  # positions of the compared outputs; the rest stays here
        fn = ns.get(name)
        try:
            if not callable(fn):
                raise NameError(f"no function {name!r} was defined")
            bind_needed(fn, ns, deferred)
            signal.alarm(seconds)
            try:
                try:
                    value = fn(*args, **kwargs)
                except NameError as exc:   # a global read in a way the scan cannot see (eval, globals())
                    if not (getattr(exc, "name", None) in deferred and _bind(exc.name, ns, deferred)):
                        raise
                    value = fn(*args, **kwargs)
            finally:
                signal.alarm(0)
            if keep is not None and isinstance(value, tuple | list) and len(value) > max(keep, default=-1):
                value = [v if i in keep else None for i, v in enumerate(value)]
            dumps(value)  # plain data, or TypeError
            replies.append({"ok": value})
        except BaseException as exc:  # noqa: BLE001 - report, never crash
            replies.append({"error": f"{type(exc).__name__}: {str(exc)[:300]}"})
    out.write(dumps(replies))
    out.flush()


if __name__ == "__main__":
    main()
