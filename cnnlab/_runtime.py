"""Process settings that cnnlab's training code needs (private; applied once, on import).

``cnnlab.numpy_ref`` and ``cnnlab.torch_ref`` call :func:`apply` when they are imported, so a
notebook, a grading kernel and a benchmark all run with the same settings. Every step is
best-effort: a platform where a step does not apply skips it silently, and nothing here can raise.

1. **glibc's allocator keeps large freed blocks** (Linux with glibc only; skipped on macOS, musl,
   Windows). By default glibc serves every block above 128 KiB (a threshold that adapts up to
   32 MiB) with a fresh ``mmap`` and unmaps it on ``free``, so the multi-megabyte temporaries of
   each training step are page-faulted in again, zeroed by the kernel, on every step (about 6 us
   per 4 KiB page on the course's virtual machines: a NumPy LeNet epoch ran 2.3 times slower).
   ``mallopt(M_MMAP_THRESHOLD, 32 MiB)`` serves blocks up to 32 MiB (glibc's maximum on 64-bit) from
   the heap, and ``mallopt(M_TRIM_THRESHOLD, 256 MiB)`` keeps up to 256 MiB of freed memory at the
   top of the heap for reuse instead of returning it to the system at once. Peak memory does not
   grow (the kept memory was in use a moment before); the resident size just shrinks later.
   Skipped when ``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_`` or a ``glibc.malloc``
   tunable in ``GLIBC_TUNABLES`` is set: the user's choice wins.
2. **NumPy's BLAS runs on one thread** (OpenBLAS through its own API, found in /proc/self/maps;
   otherwise MKL, BLIS or OpenBLAS through threadpoolctl). OpenBLAS's
   worker threads busy-wait for about 0.1 s after every call; on a machine with few cores the
   spinning threads take the cores that PyTorch's OpenMP threads (or a second grading kernel)
   need, and PyTorch ran 3 to 10 times slower right after NumPy work in the same process. The
   course's NumPy layers are products of small matrices that gain little from a second BLAS
   thread. Skipped when ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, ``BLIS_NUM_THREADS`` or
   ``OMP_NUM_THREADS`` is set; ``CNNLAB_BLAS_THREADS=N`` chooses N threads instead (0: leave the
   library's default).

3. **cnnlab's NumPy layers split their large operations over the cores themselves**
   (``cnnlab.numpy_ref._parallel``: Python threads, which sleep while idle): :func:`numpy_threads`
   is the number of available cores (at most 4) when step 2 gave the BLAS one thread, else 1 (a
   multithreaded BLAS does its own splitting). ``CNNLAB_NUMPY_THREADS=N`` chooses N.
4. **Grading kernels compute on one thread** (``NBGRADER_EXECUTION`` set): the grader runs
   several kernels at once, one per core, and a thread pool that waits at a barrier for a thread
   the system has descheduled loses a whole time slice each time. On two loaded cores PyTorch's
   LeNet-5 training ran 10 times slower on its default two threads than on one. So under grading
   :func:`numpy_threads` is 1 and :func:`apply_torch` (called by ``cnnlab.torch_ref`` on import,
   and by :func:`apply` when torch is already imported) sets ``torch.set_num_threads(1)``, unless ``CNNLAB_TORCH_THREADS=N`` or ``OMP_NUM_THREADS``
   / ``MKL_NUM_THREADS`` says otherwise. Outside grading PyTorch keeps its default.

``CNNLAB_RUNTIME=0`` turns all of this off. :func:`describe` says what was applied (the
benchmarks print it).
"""

from __future__ import annotations

import os
import sys

__all__ = ["apply", "apply_torch", "describe", "numpy_threads"]

_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 256 * 1024 * 1024

MAX_NUMPY_THREADS = 4
BLAS_ONE = "1 thread"

_applied: dict[str, str] | None = None
_numpy_threads: int | None = None


def _glibc_version() -> str | None:
    """'2.36' on glibc, None elsewhere (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION")  # "glibc 2.36"; unknown name or None off glibc
    except (ValueError, OSError, AttributeError):
        return None
    if not text or not text.startswith("glibc"):
        return None
    return text.split()[-1]


def _set_malloc() -> str:
    version = _glibc_version()
    if version is None:
        return "not glibc: left alone"
    if os.environ.get("MALLOC_MMAP_THRESHOLD_") or os.environ.get("MALLOC_TRIM_THRESHOLD_") or (
        "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
    ):
        return "set by the environment: left alone"
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        mallopt.restype = ctypes.c_int
        ok_mmap = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        ok_trim = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError, TypeError, ValueError):
        return f"glibc {version}: mallopt unavailable, left alone"
    parts = []
    if ok_mmap:
        parts.append(f"mmap threshold {MMAP_THRESHOLD >> 20} MiB")
    if ok_trim:
        parts.append(f"trim threshold {TRIM_THRESHOLD >> 20} MiB")
    return f"glibc {version}: " + (", ".join(parts) if parts else "mallopt refused, left alone")


def _set_blas_threads() -> str:
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var):
            return f"{var}={os.environ[var]} in the environment: left alone"
    wanted = os.environ.get("CNNLAB_BLAS_THREADS", "1").strip()
    try:
        n = int(wanted)
    except ValueError:
        return f"CNNLAB_BLAS_THREADS={wanted!r} is not an integer: left alone"
    if n <= 0:
        return "CNNLAB_BLAS_THREADS=0: left alone"
    if not _set_openblas_directly(n):
        try:
            from threadpoolctl import threadpool_limits

            threadpool_limits(limits=n, user_api="blas")  # not used as a context: the limit stays
        except Exception as exc:  # noqa: BLE001 - a missing or failing threadpoolctl must not break imports
            return f"not set ({type(exc).__name__}: {exc})"
    return BLAS_ONE if n == 1 else f"{n} threads"


_OPENBLAS_SETTERS = (
    ("openblas_set_num_threads", "openblas_get_num_threads"),
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
)


def _set_openblas_directly(n: int) -> bool:
    """Set every loaded OpenBLAS (Linux) to n threads through its own API, as threadpoolctl does.

    Importing threadpoolctl and letting it inspect every loaded library takes 20-30 ms, which every
    grading kernel would pay; reading /proc/self/maps takes well under 1 ms. Returns False (so
    that threadpoolctl is used) when no OpenBLAS is found or one of them does not take the setting.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split(maxsplit=5)[-1].strip() for line in maps if "openblas" in line.lower()}
        paths = {p for p in paths if p.startswith("/") and ".so" in os.path.basename(p)}
        if not paths:
            return False
        import ctypes

        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            for setter, getter in _OPENBLAS_SETTERS:
                if hasattr(lib, setter) and hasattr(lib, getter):
                    getattr(lib, setter)(ctypes.c_int(n))
                    if getattr(lib, getter)() != n:
                        return False
                    break
            else:
                return False
    except (OSError, ValueError, AttributeError):
        return False
    return True


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _grading() -> bool:
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def _off() -> bool:
    return os.environ.get("CNNLAB_RUNTIME", "1").strip() in ("0", "off", "false", "no")


def apply_torch() -> str:
    """Set PyTorch's intra-op threads for grading kernels (step 4); returns what was done.

    Call it where torch is already imported (``cnnlab.torch_ref`` does); later calls do nothing new.
    """
    done = apply()
    if "torch" in done:
        return done["torch"]
    if _off():
        result = "CNNLAB_RUNTIME=0: left alone"
    else:
        wanted = os.environ.get("CNNLAB_TORCH_THREADS", "").strip()
        env = next((v for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if os.environ.get(v)), None)
        n = int(wanted) if wanted.isdigit() and int(wanted) > 0 else (1 if _grading() and env is None else 0)
        if n == 0:
            result = f"{env} in the environment: left alone" if env else "default (not grading)"
        else:
            try:
                import torch

                torch.set_num_threads(n)
                result = f"{n} thread{'s' if n > 1 else ''}" + (" (grading)" if not wanted else "")
            except Exception as exc:  # noqa: BLE001 - never break an import
                result = f"not set ({type(exc).__name__})"
    done["torch"] = result
    return result


def numpy_threads() -> int:
    """Threads for the NumPy layers' own splitting (``cnnlab.numpy_ref._parallel``); see step 3."""
    global _numpy_threads
    if _numpy_threads is None:
        wanted = os.environ.get("CNNLAB_NUMPY_THREADS", "").strip()
        if wanted.isdigit() and int(wanted) > 0:
            _numpy_threads = int(wanted)
        elif _grading():
            _numpy_threads = 1
        elif apply()["blas"] == BLAS_ONE:
            _numpy_threads = max(1, min(_cores(), MAX_NUMPY_THREADS))
        else:
            _numpy_threads = 1
    return _numpy_threads


def apply() -> dict[str, str]:
    """Apply the process settings once (later calls return the first result).

    Returns:
        dict with 'malloc' and 'blas' describing what was done (and 'torch' once
        :func:`apply_torch` ran), for the benchmarks' headers.
    """
    global _applied
    if _applied is not None:
        return _applied
    if _off():
        _applied = {"malloc": "CNNLAB_RUNTIME=0: left alone", "blas": "CNNLAB_RUNTIME=0: left alone"}
        return _applied
    result = {}
    for key, step in (("malloc", _set_malloc), ("blas", _set_blas_threads)):
        try:
            result[key] = step()
        except Exception as exc:  # noqa: BLE001 - best effort, never break an import
            result[key] = f"skipped ({type(exc).__name__})"
    _applied = result
    if "torch" in sys.modules:  # already imported (a notebook's set-up cell): step 4 now, at no cost
        apply_torch()
    return _applied


def describe() -> str:
    """One line saying what :func:`apply` did, e.g. 'malloc: glibc 2.36: ...; BLAS: 1 thread'."""
    done = apply()
    torch_part = f"; PyTorch threads: {done['torch']}" if "torch" in done else ""
    return f"malloc: {done['malloc']}; NumPy BLAS: {done['blas']}; cnnlab NumPy threads: {numpy_threads()}{torch_part}"
