"""nbgrader's Execute step with a sandboxed, limited grading kernel.

- :class:`LimitedKernelManager` starts ``python cnnlab_kernel.py`` (:mod:`autograder.kernel`:
  memory and file-size limits, the in-process guard) inside a bubblewrap sandbox
  (:mod:`autograder.sandbox`), talking to the grader over Unix sockets in a private folder (the
  sandbox has no network, so no TCP); interrupts are sent as messages (the sandbox is in a
  session of its own, signals from outside do not reach it). Where it can, the kernel is forked
  from a warm launcher instead (:mod:`autograder.zygote`: the same sandbox, imports done), and
  started the ordinary way when the launcher fails.
- :class:`GuardedExecute`: a time limit per cell and per notebook; a kernel that dies (segfault,
  ``os._exit``, out of memory) is recorded on the cell where it died and the later cells are
  marked "not run"; a cell that ignores the interrupt sent at its time limit is given a short
  grace, then its kernel is stopped: that cell and the later ones score nothing, the earlier ones
  keep their results. Every output is cut to a byte limit. When the notebook is done, every
  process of its sandbox is killed. Figures are built but not drawn unless ``figures`` is set, and
  the instructor's demonstration cells (:mod:`autograder.demos`) are not run.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from nbgrader.utils import is_grade, is_solution
from traitlets import Bool, Integer, List, Unicode

from . import demos, sandbox, zygote
from .util import Limits

DEFAULT_LIMITS = Limits()

INTERRUPT_GRACE = 3.0     # seconds a cell has to stop after the interrupt at its time limit

# the kernel started for the next notebook while this one is graded: key -> (manager, start task)
_SPARE: dict = {}
STATS = {"prestarted": 0, "fresh": 0}   # kernels used per kind, in this process


class KernelStopped(DeadKernelError):
    """The grader stopped a kernel that ignored the interrupt at a cell's time limit."""


class LimitedKernelManager(AsyncKernelManager):
    """Starts the grading kernel, sandboxed unless ``sandbox_info`` is None (``--unsafe-no-sandbox``)."""

    cnnlab_args: list[str] = []
    sandbox_info: sandbox.Sandbox | None = None
    files_dir: str | None = None
    cgroup: Path | None = None
    channel: Path | None = None
    zygote: zygote.Zygote | None = None   # the warm launcher this kernel is forked from, if any
    kernel_argv: list[str] = []

    def prepare_channel(self) -> None:
        """Unix sockets in a private folder (created here, removed by :meth:`cleanup_sandbox`)."""
        self.channel = self.zygote.kernel_channel() if self.zygote else Path(tempfile.mkdtemp(prefix="cnnlab-ch-"))
        self.transport = "ipc"
        self.ip = str(self.channel / "k")
        self.connection_file = str(self.channel / "kernel.json")

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        try:
            conn = cmd[cmd.index("-f") + 1]
        except (ValueError, IndexError):
            return cmd
        rest = list(cmd[cmd.index("-f") + 2:])
        if self.sandbox_info is None:
            import sys

            args = [*self.cnnlab_args, "--extension", "autograder.kernel"]
            if self.files_dir:
                args += ["--files", self.files_dir]
            return [sys.executable, "-m", "autograder.kernel", *args, "--", "-f", conn, *rest]
        args = [*self.cnnlab_args, "--extension", "cnnlab_kernel"]
        ro_files = {}
        if "--locked" in args:
            i = args.index("--locked") + 1
            ro_files[args[i]] = sandbox.LOCKED
            args[i] = sandbox.LOCKED
        if self.files_dir:
            args += ["--files", sandbox.FILES]
        if self.sandbox_info.pids == "rlimit":
            args += ["--nproc", str(sandbox.MAX_PROCESSES)]
        self.kernel_argv = [*args, "--", "-f", conn, *rest]
        self._ro_files = ro_files
        return self._cold_command() if self.zygote is None else ["(forked by the warm launcher)"]

    def _cold_command(self) -> list[str]:
        self.cgroup = sandbox.new_cgroup(self.sandbox_info)
        return sandbox.command(self.sandbox_info, [f"{sandbox.LIB}/cnnlab_kernel.py", *self.kernel_argv],
                               channel=self.channel, files=Path(self.files_dir) if self.files_dir else None,
                               cgroup=self.cgroup, ro_files=self._ro_files)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        import subprocess

        if self.zygote is not None:
            child = await self.zygote.fork(self.kernel_argv)
            if child is not None:
                prov = self.provisioner
                prov.process, prov.pid, prov.pgid = child, child.pid, None
                prov.cwd = kw.get("cwd")
                self._reconcile_connection_info(prov.connection_info)
                return None
            self.zygote.release()   # it could not fork: start this kernel the ordinary way (its
            self.zygote = None      # channel folder stays until cleanup_sandbox)
            kernel_cmd = self._cold_command()
        kw.setdefault("stdout", subprocess.DEVNULL)   # the kernel's own console noise
        kw.setdefault("stderr", subprocess.DEVNULL)
        return await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_interrupt_kernel(self) -> None:
        if self.has_kernel:
            msg = self.session.msg("interrupt_request", content={})
            self._connect_control_socket()
            self.session.send(self._control_socket, msg)

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        await super()._async_cleanup_resources(restart=restart)
        if not restart:   # nbclient calls this when a notebook is done, then forgets the manager
            self.cleanup_sandbox()

    cleanup_resources = _async_cleanup_resources

    def cleanup_sandbox(self) -> None:
        """Kill whatever is left of the sandbox and remove its channel folder."""
        if self.zygote is not None:
            self.zygote.release()
            self.zygote = None
        sandbox.kill_cgroup(self.cgroup)
        self.cgroup = None
        if self.channel is not None:
            shutil.rmtree(self.channel, ignore_errors=True)
            zygote.forget_channel(self.channel)
            self.channel = None


def discard(km: LimitedKernelManager, task=None) -> None:
    """Stop a kernel that was started for a notebook that never came."""
    if task is not None and not task.done():
        task.cancel()
    with contextlib.suppress(Exception):
        if km.has_kernel and km.provisioner is not None and km.provisioner.process is not None:
            km.provisioner.process.kill()
    km.cleanup_sandbox()


def discard_spares() -> None:
    """Stop every spare kernel of this process (the worker calls this before it exits)."""
    for key in list(_SPARE):
        discard(*_SPARE.pop(key))


atexit.register(discard_spares)
os.register_at_fork(after_in_child=_SPARE.clear)   # a forked worker must not use its parent's kernels


def _error(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


def limit_output_bytes(cell: NotebookNode, max_bytes: int) -> None:
    """Cut the outputs of ``cell`` so that their text and data take at most ``max_bytes``."""
    budget = max_bytes
    kept = []
    for out in cell.get("outputs", []):
        size = 0
        if out.get("output_type") == "stream":
            text = out.get("text", "")
            if len(text.encode("utf-8", "replace")) > budget:
                out["text"] = text.encode("utf-8", "replace")[:max(budget, 0)].decode("utf-8", "ignore") + \
                    f"\n[output cut: more than {max_bytes} bytes]\n"
            size = len(out["text"].encode("utf-8", "replace"))
        elif out.get("output_type") == "error":
            tb = [str(t)[:4000] for t in out.get("traceback", [])][-60:]
            out["traceback"] = tb
            out["evalue"] = str(out.get("evalue", ""))[:4000]
            size = sum(len(t) for t in tb) + len(out["evalue"])
        else:
            data = out.get("data", {})
            size = sum(len(str(v)) for v in data.values())
            if size > budget:
                out = NotebookNode(output_type="stream", name="stdout",
                                   text=f"[output removed: more than {max_bytes} bytes]\n")
                size = len(out["text"])
        budget -= size
        kept.append(out)
        if budget <= 0:
            break
    cell["outputs"] = kept


def _student_preamble(resources) -> str | None:
    """honest (quiz variants): the code that tells a grading kernel whose submission it runs (None: nothing)."""
    student = ((resources or {}).get("nbgrader") or {}).get("student")
    if not student:
        return None
    try:
        from cnnlab.quiz import kernel_preamble
    except ImportError:
        return None
    return kernel_preamble(student)


class GuardedExecute(Execute):
    """nbgrader's Execute with limits, a sandboxed kernel and survival of kernel deaths."""

    notebook_timeout = Integer(DEFAULT_LIMITS.notebook_timeout, help="seconds for the whole notebook").tag(config=True)
    memory_mb = Integer(DEFAULT_LIMITS.memory_mb, help="RLIMIT_AS of the kernel in MiB (0: none)").tag(config=True)
    output_bytes = Integer(DEFAULT_LIMITS.output_bytes, help="bytes of output kept per cell").tag(config=True)
    protect = List(Unicode(), help="paths the kernel may not write to (without a sandbox)").tag(config=True)
    locked_file = Unicode("", help="JSON list of sha256 of locked cell sources").tag(config=True)
    files_dir = Unicode("", help="released files copied into the kernel's folder").tag(config=True)
    use_sandbox = Bool(True, help="run the kernel in a bubblewrap sandbox").tag(config=True)
    prestart = Bool(True, help="start the next notebook's kernel while this one runs").tag(config=True)
    skip_file = Unicode("", help="JSON list of sha256 of demonstration cells not to run (autograder.demos)").tag(config=True)
    source_directory = Unicode("", help="nbgrader's source folder: where skip_file is not given, the demonstration "
                                        "cells are read from <source_directory>/<assignment>/<notebook>.ipynb").tag(config=True)
    figures = Bool(False, help="render matplotlib figures (off: a one-line placeholder each)").tag(config=True)
    warm = Bool(True, help="fork sandboxed kernels from a warm launcher that has imported what kernels import "
                           "(autograder.zygote); off: every kernel starts from scratch").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        # the sandbox is killed right after the notebook: a graceful shutdown only waits (about 1 s)
        kwargs.setdefault("shutdown_kernel", "immediate")
        super().__init__(*args, **kwargs)
        self._deadline = None
        self._stopped = None
        self._grace_until = None
        self._skip: set[str] = set()
        self.timeout_func = self._cell_timeout

    def _cell_timeout(self, cell) -> int:
        left = (self._deadline - time.monotonic()) if self._deadline else self.timeout
        return max(1, int(min(self.timeout or 1e9, left) + 0.999))

    def _new_kernel_manager(self):
        km = super().create_kernel_manager()
        args = ["--mem-mb", str(self.memory_mb)]
        if not self.figures:
            args += ["--figures", "off"]
        if self.locked_file:
            args += ["--locked", self.locked_file]
        km.sandbox_info = sandbox.probe() if self.use_sandbox else None
        if km.sandbox_info is None and self.protect:
            args += ["--protect", ":".join(self.protect)]
        km.cnnlab_args = args
        km.files_dir = self.files_dir or None
        if self.warm and km.sandbox_info is not None:
            km.zygote = zygote.acquire(km, km.sandbox_info, km.files_dir, self.locked_file or None)
        km.prepare_channel()
        return km

    def _spare_key(self) -> tuple:
        return (self.memory_mb, self.figures, self.locked_file, self.files_dir, self.use_sandbox, tuple(self.protect),
                tuple(self.extra_arguments), self.kernel_name, self.warm)

    def create_kernel_manager(self):
        """The kernel started while the previous notebook was graded, when it fits; and start
        the next one now (it boots while this notebook runs)."""
        key = self._spare_key()
        km = None
        spare = _SPARE.pop(key, None)
        if spare is not None:
            old, task = spare
            if task.done() and not task.cancelled() and task.exception() is None and old.has_kernel:
                km = old
            else:
                discard(old, task)
        for other in list(_SPARE):
            discard(*_SPARE.pop(other))
        if self.prestart and self.use_sandbox:   # (unsandboxed kernels need the notebook's folder)
            nxt = self._new_kernel_manager()
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:   # nbclient's sync path: the thread's loop, run by the next run_sync
                from jupyter_core.utils import ensure_event_loop

                loop = ensure_event_loop()
            task = loop.create_task(nxt.start_kernel(extra_arguments=self.extra_arguments,
                                                     cwd=tempfile.gettempdir()))
            _SPARE[key] = (nxt, task)
        STATS["prestarted" if km is not None else "fresh"] += 1
        return km if km is not None else self._new_kernel_manager()

    def preprocess(self, nb, resources=None, km=None):
        # honest (quiz variants): whose submission this is, from nbgrader's record (the submitted
        # folder's student id), told to the kernel before the first cell; see _tell_student
        self._preamble = _student_preamble(resources)
        self._deadline = time.monotonic() + self.notebook_timeout
        self._skip = set()
        if self.skip_file:
            with open(self.skip_file) as fh:
                self._skip = set(json.load(fh))
        elif self.source_directory:   # nbgrader's own autograde (formgrader's button): the source notebook
            info = (resources or {}).get("nbgrader", {})
            src = Path(self.source_directory) / str(info.get("assignment", "")) / f"{info.get('notebook', '')}.ipynb"
            if info.get("assignment") and src.is_file():
                import nbformat

                with contextlib.suppress(Exception):
                    self._skip = set(demos.skipped_hashes([nbformat.read(src, as_version=4)]))
        self._stopped = None
        try:
            return super().preprocess(nb, resources, km)
        finally:
            if isinstance(self.km, LimitedKernelManager):
                self.km.cleanup_sandbox()

    async def _async_handle_timeout(self, timeout, cell=None):
        now = time.monotonic()
        if self._grace_until is None:
            self._grace_until = now + INTERRUPT_GRACE
            with contextlib.suppress(Exception):
                await self.km.interrupt_kernel()
            await asyncio.sleep(0.05)
            return None
        if now < self._grace_until:
            await asyncio.sleep(0.1)
            return None
        with contextlib.suppress(Exception):
            await self.km.shutdown_kernel(now=True)
        raise KernelStopped(f"the cell ran past its time limit ({timeout} s) and ignored the interrupt: "
                            "its kernel was stopped; later cells were not run")

    def _tell_student(self) -> None:
        """honest (quiz variants): run the student preamble silently in the kernel, once, before the first
        cell (kernels are started, or forked, before the grader knows whose notebook they will run, so
        the id cannot be in their environment)."""
        code, self._preamble = self._preamble, None
        if not code or self.kc is None:
            return
        try:
            reply = self.wait_for_reply(self.kc.execute(code, silent=True, store_history=False, allow_stdin=False))
        except DeadKernelError:
            return   # the first cell records the dead kernel, as it would without the preamble
        if not reply or reply.get("content", {}).get("status") != "ok":
            raise RuntimeError("the grading kernel did not take the submission's student id")

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if getattr(self, "_preamble", None):
            self._tell_student()
        self._grace_until = None
        if self._skip and demos.digest(cell.source) in self._skip and not is_grade(cell) and not is_solution(cell):
            cell.outputs = [NotebookNode(output_type="stream", name="stdout", text=demos.NOTE)]
            cell.execution_count = None
            return cell, resources
        if self._stopped is None and time.monotonic() > self._deadline:
            self._stopped = f"not run: the notebook exceeded its time limit ({self.notebook_timeout} s)"
        if self._stopped is not None:
            cell.outputs = [_error("NotRun", self._stopped)]
            cell.execution_count = None
            return cell, resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except KernelStopped as exc:
            cell.outputs = list(cell.get("outputs", [])) + [_error("TimeoutError", str(exc))]
            self._stopped = "not run: an earlier cell ignored its time limit and its kernel was stopped"
        except DeadKernelError:
            cell.outputs = list(cell.get("outputs", [])) + [
                _error("KernelDied", "the kernel died while running this cell (crash, os._exit, "
                                     "or out of memory); later cells were not run")]
            self._stopped = "not run: the kernel died in an earlier cell"
        limit_output_bytes(cell, self.output_bytes)
        return cell, resources
