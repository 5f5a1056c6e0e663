"""Warm launchers: grading kernels forked from a sandboxed process that has already imported
what every kernel imports (host side of :func:`autograder.kernel.zygote_main`).

A new grading kernel spends about 1 s of CPU importing ipykernel, IPython, NumPy, matplotlib and
cnnlab before it runs a cell, as much as grading a light notebook's cells. A :class:`Zygote` is
one bubblewrap sandbox (the same as a kernel's: :mod:`autograder.sandbox`) whose launcher imports
them once and then forks one kernel per notebook. Each forked kernel enters namespaces of its own
(IPC, network, hostname, user: what a freshly started sandbox gives) with no capabilities, and
before the next fork the launcher kills every process the previous kernel left and empties
``/tmp`` (the home) and ``/dev/shm``: a submission finds nothing of the one graded before it. The
launcher serves one kernel at a time (a worker holds two, so that the next notebook's kernel can
start while this one runs) and is not dumpable (no ptrace, no ``/proc/<pid>/mem`` for its kernels).

Anything unexpected (the launcher died, was stopped, did not answer within
:data:`ANSWER_SECONDS`, or the machine cannot nest namespaces) closes it and the kernel is started
the ordinary way: a warm launcher only ever saves time.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from . import sandbox

ANSWER_SECONDS = 5.0      # a fork or kill request; longer: the launcher is closed, kernels start cold
READY_SECONDS = 60.0      # the launcher's imports (on a loaded machine)
PER_KEY = 2               # launchers per configuration: one kernel runs while the next one starts
IDLE_SECONDS = 120.0      # launchers nobody used for this long are closed (a Jupyter server grades now and then)

_ZYGOTES: dict[tuple, list["Zygote"]] = {}
_DISABLED: dict[str, str] = {}   # "all" -> why, when the machine cannot nest namespaces
_REFUSED = [0]                   # launchers in a row whose forked kernels could not isolate themselves
REFUSALS_TO_DISABLE = 3          # (once can be a passing shortage, e.g. of user namespaces)
_LOCK = threading.RLock()
_REAPER: list[threading.Thread] = []


def _digest(path: str | None) -> str:
    """What a launcher's sandbox binds from ``path`` (a file or a folder), as a key."""
    if not path or not os.path.exists(path):
        return ""
    h = hashlib.sha256(path.encode())
    p = Path(path)
    for f in sorted([p] if p.is_file() else p.rglob("*")):
        with contextlib.suppress(OSError):
            st = f.stat()
            h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


class Child:
    """A forked kernel, as jupyter_client's provisioner sees a ``Popen``."""

    stdin = stdout = stderr = None

    def __init__(self, zygote: "Zygote", pid: int) -> None:
        self.zygote, self.pid, self.returncode = zygote, pid, None

    def poll(self):
        if self.returncode is None and not self.zygote.alive():
            self.returncode = -signal.SIGKILL
        return self.returncode

    def wait(self, timeout=None):
        end = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if end is not None and time.monotonic() > end:
                raise subprocess.TimeoutExpired("kernel", timeout)
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        if signum in (signal.SIGKILL, signal.SIGTERM):
            self.kill()
        # other signals (SIGINT) do not reach a sandboxed kernel: interrupts are messages

    def kill(self) -> None:
        if self.returncode is None:
            self.zygote.kill_kernel()
            if self.returncode is None and not self.zygote.wait_exit(self, 2.0):
                self.zygote.close()
                self.returncode = -signal.SIGKILL

    terminate = kill


class Zygote:
    """One warm launcher in its own sandbox, serving one kernel at a time."""

    def __init__(self, sb: sandbox.Sandbox, files_dir: str | None, locked_file: str | None) -> None:
        self.channel = Path(tempfile.mkdtemp(prefix=f"cnnlab-zy-{os.getpid()}-"))
        self.cgroup = sandbox.new_cgroup(sb)
        ro_files = {locked_file: sandbox.LOCKED} if locked_file else {}
        argv = [f"{sandbox.LIB}/cnnlab_kernel.py", "--zygote", str(self.channel)]
        cmd = sandbox.command(sb, argv, channel=self.channel, files=Path(files_dir) if files_dir else None,
                              cgroup=self.cgroup, ro_files=ro_files)
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.replies: queue.Queue = queue.Queue()
        self.ready: bool | None = None
        self.why = ""
        self.owner = None          # the kernel manager using this launcher now
        self.child: Child | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.used = time.monotonic()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if "ready" in msg:
                self.ready, self.why = bool(msg["ready"]), msg.get("why", "")
            elif "exit" in msg:
                c = self.child
                if c is not None and c.pid == msg["exit"]:
                    c.returncode = int(msg.get("code", -1))
            else:
                self.replies.put(msg)
        if self.ready is None:
            self.ready = False
            self.why = self.why or "the launcher ended before it was ready"

    def alive(self) -> bool:
        return not self._closed and self.proc.poll() is None

    def _send(self, req: dict) -> bool:
        if not self.alive():
            return False
        with contextlib.suppress(queue.Empty):
            while True:
                self.replies.get_nowait()   # a late answer to an earlier request
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def _ask(self, req: dict) -> dict | None:
        if not self._lock.acquire(blocking=False):
            # a fork is in flight for a kernel start that was abandoned (a spare kernel discarded
            # before it started): what the launcher is doing is unknown, so it is closed
            self.close()
            return None
        try:
            if not self._send(req):
                return None
            try:
                return self.replies.get(timeout=ANSWER_SECONDS)
            except queue.Empty:
                return None
        finally:
            self._lock.release()

    async def _ask_async(self, req: dict) -> dict | None:
        """:meth:`_ask` for an event loop: waits by sleeping on the loop, not in a thread (the
        engine's workers are forked, and a loop's thread pool does not survive a fork)."""
        import asyncio

        end = time.monotonic() + ANSWER_SECONDS
        while not self._lock.acquire(blocking=False):
            if time.monotonic() > end:
                return None
            await asyncio.sleep(0.002)
        try:
            if not self._send(req):
                return None
            while time.monotonic() < end:
                with contextlib.suppress(queue.Empty):
                    return self.replies.get_nowait()
                await asyncio.sleep(0.002)
            return None
        finally:
            self._lock.release()

    async def wait_ready(self, seconds: float = READY_SECONDS) -> bool:
        import asyncio

        end = time.monotonic() + seconds
        while self.ready is None and time.monotonic() < end and self.proc.poll() is None:
            await asyncio.sleep(0.005)
        return bool(self.ready) and self.alive()

    def kernel_channel(self) -> Path:
        """A fresh folder for one kernel's connection file and sockets; anything else in the
        launcher's channel (left by an earlier kernel) is removed."""
        for entry in list(self.channel.iterdir()):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()
        path = self.channel / os.urandom(4).hex()   # (short: a Unix socket's path has at most 107 bytes)
        path.mkdir(mode=0o700)
        return path

    async def fork(self, argv: list[str]) -> Child | None:
        """Fork one kernel (``argv``: the kernel's own arguments, as for ``cnnlab_kernel.py``)."""
        if not await self.wait_ready():
            if not self.ready and self.why:
                _REFUSED[0] += 1
                if _REFUSED[0] >= REFUSALS_TO_DISABLE:
                    _DISABLED.setdefault("all", self.why)
            self.close()
            return None
        _REFUSED[0] = 0
        reply = await self._ask_async({"op": "fork", "argv": argv})
        if not reply or "pid" not in reply:
            self.close()
            return None
        self.child = Child(self, int(reply["pid"]))
        return self.child

    def kill_kernel(self) -> None:
        if self.child is None or self.child.returncode is not None:
            return
        reply = self._ask({"op": "kill"})
        if not reply or not reply.get("ok"):
            self.close()

    def wait_exit(self, child: Child, seconds: float) -> bool:
        end = time.monotonic() + seconds
        while child.returncode is None and time.monotonic() < end and self.alive():
            time.sleep(0.005)
        return child.returncode is not None

    def release(self) -> None:
        """The kernel is done: kill what is left of it, free the launcher for the next one."""
        if self.child is not None and self.child.returncode is None:
            self.child.kill()
        elif self.alive():
            reply = self._ask({"op": "kill"})
            if not reply or not reply.get("ok"):
                self.close()
        self.child = None
        self.owner = None
        self.used = time.monotonic()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self.proc.kill()
        sandbox.kill_cgroup(self.cgroup)
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        for f in (self.proc.stdin, self.proc.stdout):
            with contextlib.suppress(Exception):
                f.close()
        if self.owner is None:   # else the kernel manager's channel is inside: removed by release/forget_channel
            shutil.rmtree(self.channel, ignore_errors=True)
        if self.child is not None and self.child.returncode is None:
            self.child.returncode = -signal.SIGKILL


def acquire(owner, sb: sandbox.Sandbox, files_dir: str | None, locked_file: str | None) -> Zygote | None:
    """A free warm launcher for this sandbox configuration, started when needed (None: none free,
    or warm launchers do not work on this machine). Launchers of other configurations are closed."""
    if "all" in _DISABLED:
        return None
    with _LOCK:
        if not _REAPER:
            _REAPER.append(threading.Thread(target=_close_idle, daemon=True))
            _REAPER[0].start()
        return _acquire(owner, sb, files_dir, locked_file)


def _acquire(owner, sb, files_dir, locked_file) -> Zygote | None:
    # (a sandbox takes some of the environment in when it starts: NBGRADER_EXECUTION, thread counts)
    key = (sb, files_dir or "", _digest(files_dir), locked_file or "", _digest(locked_file), tuple(sandbox.command(sb, [])))
    for other in list(_ZYGOTES):
        if other != key:
            for z in _ZYGOTES.pop(other):
                z.close()
    pool = [z for z in _ZYGOTES.get(key, []) if z.alive() or z.ready is None]
    for z in pool:
        if z.owner is None and z.child is None:
            z.owner = owner
            z.used = time.monotonic()
            _ZYGOTES[key] = pool
            return z
    if len(pool) >= PER_KEY:
        _ZYGOTES[key] = pool
        return None
    try:
        z = Zygote(sb, files_dir, locked_file)
    except (OSError, sandbox.SandboxUnavailable):
        return None
    z.owner = owner
    pool.append(z)
    _ZYGOTES[key] = pool
    return z


def forget_channel(channel: Path) -> None:
    """A kernel's channel folder was removed: remove its launcher's folder too if that launcher
    is closed (a kernel started the ordinary way after its launcher failed keeps the folder)."""
    parent = Path(channel).parent
    if parent.name.startswith("cnnlab-zy-") and not any(z.channel == parent and not z._closed
                                                         for pool in _ZYGOTES.values() for z in pool):
        shutil.rmtree(parent, ignore_errors=True)


def _close_idle() -> None:
    while True:
        time.sleep(min(IDLE_SECONDS, 10.0))
        with _LOCK:
            now = time.monotonic()
            for key in list(_ZYGOTES):
                pool = _ZYGOTES[key]
                if all(z.owner is None and now - z.used > IDLE_SECONDS for z in pool):
                    for z in _ZYGOTES.pop(key):
                        z.close()


def remove_stale() -> None:
    """Remove the channel folders of launchers whose process is gone (a killed worker leaves them)."""
    with contextlib.suppress(OSError):
        for d in Path(tempfile.gettempdir()).glob("cnnlab-zy-*-*"):
            with contextlib.suppress(ValueError, IndexError):
                pid = int(d.name.split("-")[2])
                if pid != os.getpid() and not Path(f"/proc/{pid}").exists():
                    shutil.rmtree(d, ignore_errors=True)


def close_all() -> None:
    with _LOCK:
        for key in list(_ZYGOTES):
            for z in _ZYGOTES.pop(key):
                z.close()


def _forget_inherited() -> None:
    """In a forked process (the engine's workers): the launchers are the parent's, not ours."""
    global _LOCK
    _ZYGOTES.clear()
    _REAPER.clear()
    _LOCK = threading.RLock()


atexit.register(close_all)
os.register_at_fork(after_in_child=_forget_inherited)
