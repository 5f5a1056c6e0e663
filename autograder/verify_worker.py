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
    for src in request.get("prelude", []):
        try:
            exec(compile(src, "<setup>", "exec"), ns)
        except BaseException:  # noqa: BLE001 - a failing import is the student's problem later
            pass
    for i, src in enumerate(request.get("answers", [])):
        try:
            exec(compile(_strip_magics(src), f"<answer {i}>", "exec"), ns)
        except BaseException:  # noqa: BLE001 - as in a notebook, later cells still run
            pass
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
            signal.alarm(seconds)
            try:
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
