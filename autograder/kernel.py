"""The grading kernel: ipykernel started with limits and an in-process guard.

``python -m autograder.kernel [--mem-mb N] [--nproc N] [--files DIR] [--protect P1:P2]
[--locked FILE] [--figures off] [--extension NAME] -- <ipykernel args>``; inside the sandbox the same file runs as
``/opt/cnnlab/lib/cnnlab_kernel.py`` (it imports only the standard library).

Before ipykernel starts:

- RLIMIT_AS (memory), RLIMIT_CORE = 0 (no core files from crashes), RLIMIT_FSIZE (no huge files),
  RLIMIT_NPROC when asked (the sandbox's process limit where no cgroup is available);
- the assignment's released files (``--files``) are copied into the working folder.

Loaded as an IPython extension into the kernel (:func:`load_ipython_extension`), for honest
mistakes only (the isolation is the sandbox's, :mod:`autograder.sandbox`, and the points of
hidden checks are confirmed outside, :mod:`autograder.verifier`):

- with ``--figures off`` (the grader's default), matplotlib figures are built but not rendered:
  each shows a one-line placeholder (rendering is about half of a course notebook's run time
  and scores nothing);
- an audit hook that refuses starting processes, signalling processes and ``os._exit``, and,
  when the kernel runs without a sandbox, writes under the protected paths;
- before every locked cell (read-only and test cells, recognised by the sha256 of their source),
  it restores what a student could have patched by accident: ``builtins``, NumPy's functions,
  every ``cnnlab`` module's attributes, the names the locked cells bound, and IPython's error
  reporting.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import os
import sys
import types

_STATE: dict = {}

FIGURES_ENV = "CNNLAB_GRADER_FIGURES"
FIGURE_PLACEHOLDER = "[figure with {n} axes: not drawn while grading; run the notebook to see it]"


def _set_limits(mem_mb: int, nproc: int = 0) -> None:
    import resource

    if nproc > 0:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    if mem_mb > 0:
        limit = mem_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    fsize = 512 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))


def main(argv: list[str] | None = None) -> None:
    """Parse our options, set limits, then run ipykernel with the guard extension."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    ours = argv[:argv.index("--")] if "--" in argv else argv
    opts = dict(zip(ours[::2], ours[1::2]))
    _set_limits(int(opts.get("--mem-mb", "0")), int(opts.get("--nproc", "0")))
    if "--files" in opts and os.path.isdir(opts["--files"]):
        import shutil

        shutil.copytree(opts["--files"], os.getcwd(), symlinks=False, dirs_exist_ok=True,
                        ignore=lambda d, names: [n for n in names if os.path.islink(os.path.join(d, n))])
    if "--protect" in opts:
        os.environ["CNNLAB_GUARD_PROTECT"] = opts["--protect"]
    if "--locked" in opts:
        os.environ["CNNLAB_GUARD_LOCKED"] = opts["--locked"]
    if opts.get("--figures") == "off":
        os.environ[FIGURES_ENV] = "off"
    ext = opts.get("--extension", "autograder.kernel")
    sys.argv = [sys.argv[0], *rest, f"--IPKernelApp.extensions=['{ext}']", "--IPKernelApp.log_level=ERROR"]
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


# ----------------------------------------------------------------------------- inside the kernel

def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _audit_hook(event: str, args: tuple) -> None:
    st = _STATE
    if not st or st.get("busy"):
        return
    if event in ("os.kill", "os.killpg") and len(args) >= 2 and args[1] == 2 and args[0] in (
            os.getpid(), os.getpgid(0)):
        return  # ipykernel interrupting itself (SIGINT): how the grader stops a cell at its time limit
    if event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn",
                 "os.fork", "os.forkpty", "os.kill", "os.killpg", "pty.spawn"):
        raise PermissionError(f"grading sandbox: {event} is not allowed while grading")
    if event == "open":
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if isinstance(path, int) or path is None:
            return
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            mode is None and isinstance(flags, int)
            and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))
        if writing:
            _check_write(event, path)
    elif event == "sqlite3.connect":
        path = args[0] if args else None
        if isinstance(path, (str, bytes, os.PathLike)) and str(path) != ":memory:" and not str(path).startswith("file::memory"):
            _check_write(event, path)
    elif event in ("os.remove", "os.rmdir", "os.truncate", "os.chmod", "os.chown", "os.mkdir",
                   "os.utime", "shutil.rmtree", "os.chflags"):
        if args and not isinstance(args[0], int):
            _check_write(event, args[0])
    elif event in ("os.rename", "os.link", "os.symlink"):
        for p in args[:2]:
            if not isinstance(p, int):
                _check_write(event, p)


def _check_write(event: str, path) -> None:
    st = _STATE
    st["busy"] = True
    try:
        real = os.path.realpath(os.fsdecode(path))
    finally:
        st["busy"] = False
    if _under(real, st["cwd"]):
        return
    for root in st["protect"]:
        if _under(real, root):
            raise PermissionError(f"grading sandbox: {event} on {path!r} is not allowed while grading")


def _no_exit(*_args, **_kwargs):
    raise SystemExit("os._exit() is disabled while grading")


def _names_bound(src: str) -> set[str]:
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                names.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        names.add(n.id)
    return names


def _snapshot_module(mod) -> dict:
    return dict(vars(mod))


def _restore_module(mod, snap: dict) -> None:
    d = vars(mod)
    for k, v in snap.items():
        if d.get(k, _MISSING) is not v:
            try:
                setattr(mod, k, v)
            except (AttributeError, TypeError):
                d[k] = v


_MISSING = object()


def _track_modules() -> None:
    snaps = _STATE["modules"]
    for name, mod in list(sys.modules.items()):
        if mod is None or name in snaps:
            continue
        if name.startswith("cnnlab") or name in ("numpy", "numpy.testing", "numpy.linalg", "math"):
            snaps[name] = _snapshot_module(mod)


def _restore_all(ip) -> None:
    st = _STATE
    _restore_module(builtins, st["builtins"])
    for name, snap in st["modules"].items():
        mod = sys.modules.get(name)
        if mod is not None:
            _restore_module(mod, snap)
    ns = ip.user_ns
    for k, v in st["bound"].items():
        ns[k] = v
    os._exit = _no_exit
    ip.custom_exceptions = st["custom_exceptions"]
    ip.CustomTB = st["CustomTB"]
    for attr in ("showtraceback", "_showtraceback", "showsyntaxerror", "run_cell", "run_cell_async",
                 "run_ast_nodes", "run_code", "transform_cell"):
        ip.__dict__.pop(attr, None)
    sys.excepthook = sys.__excepthook__
    sys.stdout, sys.stderr = st["stdout"], st["stderr"]


class _AfterImport:
    """A meta path finder that calls ``then()`` right after module ``name`` has been executed."""

    def __init__(self, name: str, then) -> None:
        self.name, self.then = name, then

    def find_spec(self, name, path, target=None):
        if name != self.name:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
                run = spec.loader.exec_module

                def exec_module(module, run=run) -> None:
                    run(module)
                    self.then()

                spec.loader.exec_module = exec_module
                return spec
        return None


def _figures_off(ip) -> None:
    """Build figures but do not render them: matplotlib's inline backend gets no image format
    (it reads ``InlineBackend.figure_formats`` when it starts, on the first pyplot import), and a
    figure's plain-text form becomes a placeholder. The backend drops every ``Figure`` formatter
    when it starts (and again on ``%matplotlib inline``), so the placeholder is registered right
    after the backend's module has run, and again after every cell."""
    ip.config.InlineBackend.figure_formats = set()

    def _placeholder(fig, p, cycle) -> None:
        p.text(FIGURE_PLACEHOLDER.format(n=len(getattr(fig, "axes", []))))

    def _register(*_args) -> None:
        if "matplotlib.figure" in sys.modules:
            ip.display_formatter.formatters["text/plain"].for_type_by_name("matplotlib.figure", "Figure", _placeholder)

    backend = "matplotlib_inline.backend_inline"
    if backend in sys.modules:
        _register()
    else:
        sys.meta_path.insert(0, _AfterImport(backend, _register))
    ip.events.register("post_execute", _register)


def _import_checks() -> None:
    """Import cnnlab's grading helpers and every check module (what test cells use)."""
    import importlib
    import pkgutil

    for name in ("cnnlab.grading", "cnnlab.checks"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
    checks = sys.modules.get("cnnlab.checks")
    if checks is not None:
        for info in pkgutil.iter_modules(checks.__path__):
            try:
                importlib.import_module(f"cnnlab.checks.{info.name}")
            except Exception:  # noqa: BLE001 - a broken check module must not kill the kernel
                continue


def load_ipython_extension(ip) -> None:
    """Install the sandbox and the pre-cell restoration into the grading kernel."""

    if os.environ.get(FIGURES_ENV) == "off":
        _figures_off(ip)

    locked: set[str] = set()
    path = os.environ.get("CNNLAB_GUARD_LOCKED")
    if path and os.path.exists(path):
        with open(path) as fh:
            locked = set(json.load(fh))
    protect = [os.path.realpath(p) for p in os.environ.get("CNNLAB_GUARD_PROTECT", "").split(":") if p]
    # import what test cells use, so that pristine copies are snapshotted before any student code
    import numpy  # noqa: F401
    import numpy.testing  # noqa: F401
    _import_checks()
    try:  # [verdicts] whether checks raise or show is fixed now, before any of the student's code runs
        from cnnlab.grading.exercise import fix_grading_mode
        fix_grading_mode()
    except ImportError:
        pass
    _STATE.update(
        cwd=os.path.realpath(os.getcwd()), protect=protect, locked=locked, busy=False,
        builtins=dict(vars(builtins)), modules={}, bound={},
        custom_exceptions=ip.custom_exceptions, CustomTB=ip.CustomTB,
        stdout=sys.stdout, stderr=sys.stderr)
    _track_modules()
    os._exit = _no_exit

    def pre_run_cell(info) -> None:
        _track_modules()
        src = getattr(info, "raw_cell", "") or ""
        if hashlib.sha256(src.encode()).hexdigest() in _STATE["locked"]:
            _restore_all(ip)

    def post_run_cell(result) -> None:
        src = getattr(result.info, "raw_cell", "") or ""
        if hashlib.sha256(src.encode()).hexdigest() in _STATE["locked"]:
            ns = ip.user_ns
            for name in _names_bound(src):
                if name in ns:
                    value = ns[name]
                    _STATE["bound"][name] = value
                    if isinstance(value, types.ModuleType) and value.__name__ not in _STATE["modules"]:
                        _STATE["modules"][value.__name__] = _snapshot_module(value)
        _track_modules()

    ip.events.register("pre_run_cell", pre_run_cell)
    ip.events.register("post_run_cell", post_run_cell)
    sys.addaudithook(_audit_hook)


def locked_hashes(sources: list[str]) -> list[str]:
    """Return the sha256 hex digests the guard uses to recognise locked cells."""
    return sorted({hashlib.sha256(s.encode()).hexdigest() for s in sources})


# ----------------------------------------------------------------------------- the warm launcher

# What a grading kernel imports before it runs a cell (ipykernel, IPython, NumPy, matplotlib and
# cnnlab take about 1 s of CPU in every new kernel, a third of grading a course notebook), imported
# once per sandbox by a launcher that then forks one kernel per notebook (:func:`zygote_main`).
WARM_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "ipykernel.zmqshell", "IPython.core.interactiveshell",
                "numpy", "numpy.testing", "matplotlib", "matplotlib.pyplot", "matplotlib.figure")
_CLONE_NEWUTS, _CLONE_NEWIPC, _CLONE_NEWUSER, _CLONE_NEWNET = 0x04000000, 0x08000000, 0x10000000, 0x40000000


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _isolate() -> None:
    """Put this (forked, single-threaded) process into namespaces of its own, as the sandbox
    does for a freshly started kernel: System V IPC, network (loopback only), hostname, and a user
    namespace mapping only its own uid; then drop every capability that namespace gave it."""
    import ctypes

    libc = _libc()
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWIPC | _CLONE_NEWNET | _CLONE_NEWUTS) != 0:
        raise OSError(ctypes.get_errno(), "unshare: " + os.strerror(ctypes.get_errno()))
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as fh:
            fh.write(text)
    for cap in range(64):   # the bounding set, then effective/permitted/inheritable
        if libc.prctl(24, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:   # PR_CAPBSET_DROP; EINVAL: no such cap
            break

    class _Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class _Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    if libc.capset(ctypes.byref(_Header(0x20080522, 0)), (_Data * 2)()) != 0:
        raise OSError(ctypes.get_errno(), "capset: " + os.strerror(ctypes.get_errno()))
    libc.prctl(38, 1, 0, 0, 0)   # PR_SET_NO_NEW_PRIVS


def _others() -> list[int]:
    """Live processes of this sandbox other than its init (pid 1) and this launcher."""
    me, out = os.getpid(), []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in (1, me):
            continue
        try:
            with open(f"/proc/{name}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            out.append(int(name))
    return out


_EXITED: list[tuple[int, int]] = []   # (pid, exit code) of the launcher's children, not yet reported


def _reap() -> list[tuple[int, int]]:
    """Reap ended children; return every exit not reported yet (and forget them)."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        _EXITED.append((pid, os.waitstatus_to_exitcode(status)))
    done = list(_EXITED)
    _EXITED.clear()
    return done


def _kill_others() -> bool:
    import signal
    import time

    for _ in range(200):
        pids = _others()
        if not pids:
            return True
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.005)
        _EXITED.extend(_reap())
    return not _others()


def _wipe(keep: str = "") -> bool:
    """Empty the sandbox's writable places (its /tmp with the home in it, /dev/shm) and check;
    ``keep``: the grader's channel folder (bound in from outside, managed there) and its parents."""
    import shutil
    import stat

    def _writable(func, path, _exc) -> None:
        try:
            os.chmod(os.path.dirname(path), stat.S_IRWXU)
            os.chmod(path, stat.S_IRWXU)
        except OSError:
            pass
        try:
            (shutil.rmtree if os.path.isdir(path) and not os.path.islink(path) else os.unlink)(path)
        except OSError:
            pass

    def _kept(path: str) -> bool:
        return bool(keep) and _under(keep, path)

    def _empty(root: str) -> None:
        for entry in os.listdir(root):
            path = os.path.join(root, entry)
            if _kept(path):
                if path != keep and os.path.isdir(path) and not os.path.islink(path):
                    _empty(path)
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, onerror=_writable)
            else:
                _writable(None, path, None)

    for root in ("/tmp", "/dev/shm"):
        if os.path.isdir(root):
            _empty(root)
    home = os.environ.get("HOME", "/tmp/home")
    os.makedirs(home, exist_ok=True)
    left = [e for e in os.listdir("/tmp") if os.path.join("/tmp", e) != home and not _kept(os.path.join("/tmp", e))]
    return not left and not os.listdir(home) and not (os.path.isdir("/dev/shm") and os.listdir("/dev/shm"))


def _child(argv: list[str], fds: list[int], started: int) -> None:
    """In the forked kernel process: never returns into the launcher's loop. Writes one byte to
    ``started`` once it is isolated and about to start ipykernel."""
    code = 1
    try:
        import signal

        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in fds:
            os.close(fd)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.setsid()
        _isolate()
        _libc().prctl(4, 1, 0, 0, 0)   # PR_SET_DUMPABLE: this kernel's own processes may inspect it
        import numpy

        numpy.random.seed()   # a fresh process draws its own seed; a fork would share the launcher's
        os.chdir(os.environ.get("HOME", "/tmp/home"))
        os.write(started, b"1")
        os.close(started)
        os.closerange(3, 65536)
        main(argv)
        code = 0
    except BaseException:   # noqa: BLE001 - nothing may go back into the launcher's loop
        code = 1
    finally:
        os._exit(code)


def zygote_main(keep: str = "") -> None:
    """The warm launcher (``cnnlab_kernel.py --zygote``): import what kernels use, then serve
    JSON lines on stdin, one reply line each on stdout: ``{"op": "fork", "argv": [...]}`` kills
    whatever is left of the previous kernel, empties /tmp and /dev/shm, forks a kernel (in
    namespaces of its own, :func:`_isolate`) and answers ``{"pid": n}``; ``{"op": "kill"}``
    kills every other process of the sandbox and answers ``{"ok": true}``. When a kernel ends it
    says ``{"exit": pid, "code": c}``. It serves one kernel at a time, and cannot be read or
    traced by the kernels it forks (it is not dumpable)."""
    import select
    import signal

    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")   # what ipykernel sets
    import importlib

    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a module that does not import is imported (and fails) in the kernel
            pass
    _import_checks()
    _libc().prctl(4, 0, 0, 0, 0)   # PR_SET_DUMPABLE 0: no ptrace, no /proc/<pid>/mem for the kernels
    out = os.fdopen(os.dup(1), "w", buffering=1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 1)
    os.dup2(null, 2)
    rd, wr = os.pipe()
    os.set_blocking(wr, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wr)

    def say(msg: dict) -> None:
        out.write(json.dumps(msg) + "\n")

    # can a forked kernel isolate itself here? (nested user namespaces may be off)
    pid = os.fork()
    if pid == 0:
        try:
            _isolate()
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(3)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    say({"ready": code == 0, "why": "" if code == 0 else "a forked kernel cannot enter namespaces of its own here"})
    if code != 0:
        return
    inbox = sys.stdin.buffer
    buf = b""
    while True:
        ready, _, _ = select.select([0, rd], [], [], 1.0)
        if rd in ready:
            try:
                os.read(rd, 512)
            except BlockingIOError:
                pass
        for cpid, ccode in _reap():
            say({"exit": cpid, "code": ccode})
        if 0 not in ready:
            continue
        chunk = os.read(0, 1 << 16)
        if not chunk:
            _kill_others()
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            try:
                req = json.loads(line)
            except ValueError:
                say({"error": "bad request"})
                continue
            if req.get("op") == "kill":
                ok = _kill_others()
                for cpid, ccode in _reap():
                    say({"exit": cpid, "code": ccode})
                say({"ok": ok})
            elif req.get("op") == "fork":
                if not (_kill_others() and _wipe(keep)):
                    say({"error": "the previous kernel's processes or files could not be removed"})
                    continue
                for cpid, ccode in _reap():
                    say({"exit": cpid, "code": ccode})
                started_r, started_w = os.pipe()
                child = os.fork()
                if child == 0:
                    os.close(started_r)
                    _child([str(a) for a in req.get("argv", [])], [rd, wr, out.fileno(), null], started_w)
                os.close(started_w)
                ok = select.select([started_r], [], [], 4.0)[0] and os.read(started_r, 1) == b"1"
                os.close(started_r)
                if ok:
                    say({"pid": child})
                else:   # it could not isolate itself: the grader starts this kernel the ordinary way
                    _kill_others()
                    for cpid, ccode in _reap():
                        say({"exit": cpid, "code": ccode})
                    say({"error": "the forked kernel did not start"})
            else:
                say({"error": "unknown request"})


if __name__ == "__main__":
    if sys.argv[1:2] == ["--zygote"]:
        zygote_main(sys.argv[2] if len(sys.argv) > 2 else "")
    else:
        main()
