"""Split the large NumPy operations of the reference layers over the CPU cores (private).

NumPy releases the GIL inside matrix products, copies and arithmetic on large arrays, so plain
Python threads run such pieces in parallel. The threads of this pool sleep while idle, unlike
OpenBLAS's own worker threads (which busy-wait about 0.1 s after every call and slow down
PyTorch in the same process; see ``cnnlab._runtime``, which gives the BLAS one thread so that this
pool is the only parallelism on NumPy's side).

``run(tasks)`` hands the tasks out one at a time to the calling thread and the pool's workers
(whoever is free takes the next), so a worker that the operating system starts late costs no
waiting: the caller does the work, and tasks no worker picked up are cancelled. Results come back
in task order, so a sum of partial results is the same whichever thread computed which part.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from .. import _runtime

__all__ = ["threads", "run"]

T = TypeVar("T")

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def threads() -> int:
    """Threads (the caller's included) that ``run`` uses: see ``cnnlab._runtime.numpy_threads``."""
    return _runtime.numpy_threads()


def _get_pool(workers: int) -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None or _pool._max_workers < workers:  # noqa: SLF001 - our own pool
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cnnlab-numpy")
        return _pool


def _forget_pool() -> None:
    """After fork(): the child has none of the parent's threads, so start a new pool when needed."""
    global _pool, _lock
    _pool = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def run(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Run every task once, on up to ``threads()`` threads, and return their results in task order."""
    n = min(threads(), len(tasks))
    if n <= 1:
        return [task() for task in tasks]
    results: list[T | None] = [None] * len(tasks)
    counter = itertools.count()  # next() on it is atomic under the GIL

    def work() -> None:
        while True:
            i = next(counter)
            if i >= len(tasks):
                return
            results[i] = tasks[i]()

    pool = _get_pool(n - 1)
    futures = [pool.submit(work) for _ in range(n - 1)]
    try:
        work()
    finally:
        for future in futures:
            if not future.cancel():  # a worker that never started has nothing to do
                future.result()
    return results  # type: ignore[return-value]
