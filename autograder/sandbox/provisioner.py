"""The grading kernel as jupyter_client sees it: a kernel provisioner and the kernel spec that names it.

:class:`SandboxProvisioner` is registered in ``pyproject.toml`` under the entry point group
``jupyter_client.kernel_provisioners`` as ``cnnlab-sandbox``. A stock ``AsyncKernelManager``
uses it when its kernel spec's metadata says so: :func:`grading_kernel_spec` makes that spec
(with the limits of one notebook in the provisioner's ``config``) and :class:`GradingKernelSpecs`
gives it to the manager for whatever kernel name a notebook asks for
(:class:`autograder.execute.GuardedExecute` does both).

One provisioner starts one kernel in a fresh sandbox (:class:`~autograder.sandbox.host.Sandboxed`)
and ends it with every process of that sandbox. The kernel's Unix sockets and connection file
are in the sandbox's own size-limited tmpfs (``/tmp/.channel``); the grader reaches them through a
link in a private host folder (``<tmp>/cnnlab-ch-<pid>-*/ch``) to a descriptor of that folder,
opened through ``/proc/<first process>/root`` once the kernel runs. When the tool is root, the
channel folder belongs to root (sticky, writable for the kernel to make its sockets) and each
socket is handed to root as soon as it exists, so the kernel cannot remove or replace them. The
connection information goes to the kernel on its stdin (no file of the host is bound into it).
Interrupts are messages (``interrupt_mode: message``): no signal from outside reaches a sandbox.

Without a sandbox (``sandboxed: false``, the CLI's ``--unsafe-no-sandbox``) the same entry point runs
on the host in a session of its own, with its channel in the private host folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.provisioning import KernelProvisionerBase
from traitlets import Bool, Float, Instance, Integer, List, Unicode

from . import host

PROVISIONER = "cnnlab-sandbox"        # the entry point's name (pyproject.toml)
KERNEL_NAME = "cnnlab-grading"
PORTS = {"shell_port": 1, "iopub_port": 2, "stdin_port": 3, "control_port": 4, "hb_port": 5}
POLL = 0.01


class KernelStartFailed(RuntimeError):
    """The grading kernel did not start (the message says what was seen)."""


def grading_kernel_spec(**config: Any) -> KernelSpec:
    """The kernel spec of a grading kernel whose provisioner gets ``config`` (its traits:
    ``sandboxed``, ``memory_mb``, ``figures``, ``locked_file``, ``files_dir``, ``protect``)."""
    return KernelSpec(argv=["python", "-m", f"{host.SIDE_PACKAGE}.kernel", "--", "-f", "{connection_file}"],
                      display_name="cnnlab grading kernel (sandboxed)", language="python",
                      interrupt_mode="message",
                      metadata={"kernel_provisioner": {"provisioner_name": PROVISIONER, "config": dict(config)}})


class GradingKernelSpecs(KernelSpecManager):
    """A kernel spec manager that has one kernel, ``spec``, under every name: the kernel a
    submission's metadata asks for (``python3``, ``bash``, ...) is always the grading kernel."""

    spec = Instance(KernelSpec)

    def find_kernel_specs(self) -> dict[str, str]:
        return {KERNEL_NAME: ""}

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        return self.spec


class SandboxProvisioner(KernelProvisionerBase):
    """Starts one grading kernel (:mod:`autograder.sandbox.inside.kernel`) in a fresh sandbox."""

    sandboxed = Bool(True, help="run the kernel in a bubblewrap sandbox (off: on the host, unsafe)")
    memory_mb = Integer(0, help="memory limit in MiB (0: none): RLIMIT_AS of the kernel, and of its whole "
                                "sandbox where a memory cgroup can be made (see host.new_memory_cgroup)")
    figures = Bool(False, help="render matplotlib figures (off: a one-line placeholder each)")
    locked_file = Unicode("", help="host file: JSON list of sha256 of the locked cells (the guard)")
    files_dir = Unicode("", help="host folder: the released files, copied into the kernel's home")
    protect = List(Unicode(), help="host paths a kernel without a sandbox may not write to (the guard)")
    startup_timeout = Float(60.0, help="seconds for the kernel to make its sockets")

    nokill = "not reported"                  # "on" when the kernel's nokill filter is loaded
    box: host.Sandboxed | None = None       # sandboxed
    process: subprocess.Popen | None = None  # either way: the process whose exit is the kernel's
    _dir: Path | None = None                 # private host folder: the link to the channel, connection file
    _channel_fd: int | None = None

    # ------------------------------------------------------------------ state
    @property
    def has_process(self) -> bool:
        return self.process is not None

    async def poll(self) -> int | None:
        return self.process.poll() if self.process is not None else 0

    async def wait(self) -> int | None:
        if self.process is None:
            return 0
        while self.process.poll() is None:
            await asyncio.sleep(0.05)
        return self.process.returncode

    def ending(self, wait: float = 3.0) -> tuple[str, str]:
        """How the kernel ended, once it has (waiting up to ``wait`` seconds): (who, how in words).

        who: ``outside`` (ended by SIGKILL, which nothing in its sandbox can send: it is the
        sandbox's process 1 and loads :mod:`.inside.nokill`; and not by the sandbox's memory
        limit), ``itself`` (anything else: a fault, an exit status, its memory limit: the
        submission's doing), or ``unknown`` (no sandbox, or no filter, or a SIGKILL where the
        sandbox has no memory cgroup: either could be)."""
        if self.process is None:
            return "unknown", "no process"
        end = time.monotonic() + wait
        while self.process.poll() is None and time.monotonic() < end:
            time.sleep(0.02)
        code = self.process.poll()
        how = host.exit_text(code)
        if code is None or self.box is None or self.nokill != "on":
            return "unknown", how
        if code in (-signal.SIGKILL, 128 + signal.SIGKILL):
            if host.oom_kills(self.box.memcg):
                return "itself", f"{how}: its memory limit ({self.memory_mb} MiB)"
            if self.box.memcg is None:
                # no memory cgroup: pages a submission holds outside its address-space limit
                # (memfd) can make the machine's OOM killer pick the kernel, which nothing counts
                return "unknown", f"{how}: killed from outside, or by the machine's OOM killer"
            import resource

            finite = [name for name in ("RLIMIT_CPU", "RLIMIT_RTTIME")
                      if resource.getrlimit(getattr(resource, name))[1] != resource.RLIM_INFINITY]
            if finite:   # inherited by the kernel from whoever started the tool: Linux enforces them with SIGKILL
                return "unknown", f"{how}: killed from outside, or by its {' and '.join(finite)} (set for the tool)"
            return "outside", how
        return "itself", how

    async def send_signal(self, signum: int) -> None:
        """Signal 0 asks whether it runs; any other signal ends the kernel and its sandbox (a
        signal from outside cannot be delivered into it; interrupts are messages)."""
        if signum == 0 or self.process is None:
            return
        self._kill()

    async def kill(self, restart: bool = False) -> None:
        self._kill()

    async def terminate(self, restart: bool = False) -> None:
        self._kill()

    def _kill(self) -> None:
        if self.box is not None:
            self.box.kill()
        elif self.process is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)

    async def cleanup(self, restart: bool = False) -> None:
        """Kill whatever is left, close the channel descriptor, remove the private host folder."""
        self._kill()
        if self._dir is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._dir / "ch")   # first: later removals through it find nothing
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
        if self._channel_fd is not None:
            os.close(self._channel_fd)
            self._channel_fd = None

    def get_shutdown_wait_time(self, recommended: float = 5.0) -> float:
        return min(recommended, 1.0)

    # ------------------------------------------------------------------ start
    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        km = self.parent
        extra = list(kwargs.pop("extra_arguments", []) or [])
        if not any(a.startswith("--HistoryManager.hist_file") for a in extra):
            extra.append("--HistoryManager.hist_file=:memory:")
        self._dir = Path(tempfile.mkdtemp(prefix=f"{host.STALE_PREFIX}{os.getpid()}-"))
        km.transport = "ipc"
        km.ip = str(self._dir / "ch" / "k")
        if len(km.ip) + 3 > 100:
            raise KernelStartFailed(f"the temporary folder's path is too long for Unix sockets ({km.ip}): "
                                    "set TMPDIR to a short folder")
        for name, port in PORTS.items():
            setattr(km, name, port)
        km.connection_file = str(self._dir / "kernel.json")
        self.connection_info = km.get_connection_info()
        args = ["--mem-mb", str(self.memory_mb)]
        if not self.figures:
            args += ["--figures", "off"]
        if self.sandboxed:
            if self.locked_file:
                args += ["--locked", host.LOCKED]
            if self.files_dir:
                args += ["--files", host.FILES]
            cmd = ["-m", f"{host.SIDE_PACKAGE}.kernel", *args, "--channel", host.CHANNEL, "--", *extra]
        else:
            if self.locked_file:
                args += ["--locked", self.locked_file]
            if self.files_dir:
                args += ["--files", self.files_dir]
            if self.protect:
                args += ["--protect", ":".join(self.protect)]
            (self._dir / "ch").mkdir(mode=0o700)
            cmd = [sys.executable, "-m", "autograder.sandbox.inside.kernel", *args,
                   "--channel", str(self._dir / "ch"), "--", *extra]
        return await super().pre_launch(cmd=cmd, **kwargs)

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict:
        try:
            if self.sandboxed:
                await self._launch_sandboxed(cmd)
            else:
                self.process = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=subprocess.DEVNULL, start_new_session=True,
                                                cwd=kwargs.get("cwd"), env=kwargs.get("env"))
                self._send_connection(self.process)
                await self._until_ready(self.process)
                self._channel_fd = os.open(self._dir / "ch", os.O_PATH | os.O_DIRECTORY)
                await self._until_sockets()
        except BaseException:
            await self.cleanup()
            self.process = self.box = None
            raise
        return self.connection_info

    async def _launch_sandboxed(self, cmd: list[str]) -> None:
        sb = host.probe()
        ro_files = {}
        if self.locked_file:
            ro_files[self.locked_file] = host.LOCKED
        if self.files_dir:
            ro_files[self.files_dir] = host.FILES
        self.box = host.Sandboxed(sb, cmd, ro_files=ro_files, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, pin=False,   # (pinned below, without blocking the loop)
                                  memory_mb=self.memory_mb, as_pid_1=True)   # only the outside can SIGKILL it
        self.process = self.box.proc
        self._send_connection(self.process)
        await self._until(self.box.poll_info, "the sandbox to start")
        await self._until_ready(self.process)
        self._channel_fd = self.box.open_inside(host.CHANNEL)
        await self._until_sockets()
        if sb.as_root:
            # the folder is root's and sticky: once root owns them, the kernel can neither remove
            # nor replace its sockets (nor make them links to another socket of the host)
            for name in self._socket_names():
                os.chown(name, 0, 0, dir_fd=self._channel_fd, follow_symlinks=False)
        os.symlink(f"/proc/self/fd/{self._channel_fd}", self._dir / "ch")

    def _send_connection(self, proc: subprocess.Popen) -> None:
        info = dict(self.connection_info)
        info["key"] = info["key"].decode() if isinstance(info.get("key"), bytes) else info.get("key", "")
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write(json.dumps(info).encode())
            proc.stdin.close()

    def _socket_names(self) -> list[str]:
        return [f"k-{port}" for port in PORTS.values()]

    async def _until(self, ready, what: str) -> None:
        end = time.monotonic() + self.startup_timeout
        while not ready():
            if self.process.poll() is not None:
                why = self.box.errors() if self.box is not None else ""
                raise KernelStartFailed(f"the grading kernel exited (code {self.process.returncode}) while waiting "
                                        f"for {what}{': ' + why if why else ''}")
            if time.monotonic() > end:
                raise KernelStartFailed(f"the grading kernel did not start: no {what} within "
                                        f"{self.startup_timeout:.0f} s")
            await asyncio.sleep(POLL)

    async def _until_ready(self, proc: subprocess.Popen) -> None:
        out = proc.stdout
        os.set_blocking(out.fileno(), False)
        seen = bytearray()

        def ready() -> bool:
            with contextlib.suppress(BlockingIOError, TypeError):
                seen.extend(out.read(64) or b"")
            if b"ready\n" not in seen:
                return False
            for line in bytes(seen).decode(errors="replace").splitlines():
                if line.startswith("nokill "):
                    self.nokill = line[len("nokill "):][:200]
            return True

        try:
            await self._until(ready, "the kernel's start")
        finally:
            out.close()

    async def _until_sockets(self) -> None:
        def made() -> bool:
            for name in self._socket_names():
                try:
                    st = os.stat(name, dir_fd=self._channel_fd, follow_symlinks=False)
                except FileNotFoundError:
                    return False
                if not stat.S_ISSOCK(st.st_mode):
                    raise KernelStartFailed(f"the grading kernel's channel holds something other than a socket: {name}")
            return True

        await self._until(made, "sockets from the kernel")
