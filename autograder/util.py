"""Small helpers shared by the instructor tool's modules (the bottom of its layering)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Limits:
    """Resource limits for one grading kernel.

    cell_timeout: seconds per cell; notebook_timeout: seconds for the whole notebook;
    memory_mb: address-space limit (RLIMIT_AS) of the kernel process; 0 disables it;
    output_bytes: bytes of output kept per cell (the rest is cut); figures: draw matplotlib
    figures into the graded notebooks (off by default: a grading kernel builds every figure but
    shows a one-line placeholder instead of rendering it, which is about half of the course
    notebooks' run time and scores nothing; on, the feedback shows the figures). The single
    definition of these defaults: the CLI, the grading preprocessors and the configuration read them here.
    """

    cell_timeout: int = 60
    notebook_timeout: int = 300
    memory_mb: int = 6144
    output_bytes: int = 100_000
    figures: bool = False


@contextlib.contextmanager
def quiet(errors: bool = False):
    """Silence nbgrader's logging and console output; yields the captured text.

    With ``errors``, records of level ERROR and above still reach the loggers' handlers: nbgrader's
    API captures them (``capture_log``: its result's ``"log"``, where the cause of a failure is, e.g.
    ``OSError: [Errno 28] No space left on device``; without them there is only nbgrader's pointer
    to "the above traceback"); a handler writing to the console writes into the captured text."""
    buf = io.StringIO()
    old = logging.root.manager.disable
    logging.disable(logging.WARNING if errors else logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield buf
    finally:
        logging.disable(old)


def env_path() -> None:
    """Prepare this process for running nbgrader in it: the environment's ``bin/`` on PATH
    (nbgrader runs ``alembic`` from there), :func:`alembic_head_in_process` and
    :func:`cell_metadata_schema_checked_once`."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    alembic_head_in_process()
    cell_metadata_schema_checked_once()


def cell_metadata_schema_checked_once() -> None:
    """Validate nbgrader's cell metadata with one validator per schema.

    nbgrader 0.9.6 checks every graded cell's metadata with ``jsonschema.validate``, which first
    validates the *schema itself* against its meta-schema, on every call: about 0.4 s of CPU per
    graded notebook in CheckCellMetadata, for a schema that never changes. The same check,
    with the same errors (jsonschema's best match, raised), runs here with the schema checked
    once per process.
    """
    try:
        import jsonschema
        from nbgrader.nbgraderformat import common
    except ImportError:
        return
    if getattr(common.jsonschema, "cnnlab", False):
        return
    validators: dict[int, tuple] = {}

    class _Once:
        cnnlab = True

        def __getattr__(self, name):
            return getattr(jsonschema, name)

        @staticmethod
        def validate(instance, schema, *args, **kwargs):
            if args or kwargs:
                return jsonschema.validate(instance, schema, *args, **kwargs)
            if id(schema) not in validators:
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)
                validators[id(schema)] = (schema, cls(schema))   # (the schema kept alive: its id stays unique)
            error = jsonschema.exceptions.best_match(validators[id(schema)][1].iter_errors(instance))
            if error is not None:
                raise error

    common.jsonschema = _Once()


_ALEMBIC_HEAD: list[str] = []


def alembic_head_in_process() -> None:
    """Make nbgrader find its database schema's version without a subprocess.

    Every new gradebook (the grader makes one per run, as a template) makes nbgrader 0.9.6 run
    ``alembic heads`` in a subprocess to learn the schema version: 2.3 s of a fresh Python and
    alembic each time, about half of a small class's grading run. The same answer comes from
    alembic's own API in this process, once. Where that fails, nbgrader's own way is left alone.
    """
    try:
        import nbgrader.api as api
        from alembic.config import Config
        from alembic.script import ScriptDirectory
        from nbgrader.dbutil import _temp_alembic_ini
    except ImportError:
        return
    if getattr(api.get_alembic_version, "cnnlab", False):
        return
    original = api.get_alembic_version

    def get_alembic_version() -> str:
        if not _ALEMBIC_HEAD:
            try:
                with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
                    head = ScriptDirectory.from_config(Config(ini)).get_current_head()
            except Exception:  # noqa: BLE001 - fall back to nbgrader's subprocess
                head = None
            _ALEMBIC_HEAD.append(head or original())
        return _ALEMBIC_HEAD[0]

    get_alembic_version.cnnlab = True
    api.get_alembic_version = get_alembic_version


# ------------------------------------------------------------------------------ one run per work folder

LOCK_FILE = ".cnnlab-run.lock"     # in the work folder: held (flock) by the command that uses it
RUN_PREFIX = "run-"                # <workdir>/.work/run-<owner>-<random>/: one running command's own folder


class WorkFolderBusy(RuntimeError):
    """Another command holds the work folder (the message names it and what to do)."""


def _proc_start_ticks(pid: int) -> str:
    """The start time of process ``pid`` (clock ticks since boot; "" where /proc is missing):
    a pid and its start time name one process, even after the pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2:].split()[19]
    except (OSError, ValueError, IndexError):
        return ""


def _machine_token() -> str:
    """This machine, boot and PID namespace: a pid means the same process only within them."""
    import hashlib
    import socket

    parts = [socket.gethostname()]
    for p in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(os.readlink(p) if p.endswith("/pid") else Path(p).read_text().strip())
        except OSError:
            parts.append("?")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:12]


def owner_token(pid: int | None = None) -> str:
    """``<pid>-<start ticks>-<machine token>``: names one process for :func:`owner_is_gone`."""
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{_proc_start_ticks(pid) or 0}-{_machine_token()}"


def owner_is_gone(token: str) -> bool:
    """True only when the process named by ``token`` provably no longer runs: it ran on this
    machine, boot and PID namespace, and no process with its pid and start time exists now.
    A token from elsewhere (another host or container sharing the folder) or unreadable: False."""
    try:
        pid_s, ticks, machine = token.split("-")[:3]
        pid = int(pid_s)
    except ValueError:
        return False
    if machine != _machine_token() or pid <= 0:
        return False
    if not Path("/proc/self/stat").exists():    # no /proc (macOS): only a pid that is free
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False
    now = _proc_start_ticks(pid)
    return now == "" or (ticks != "0" and now != ticks)


_HELD: dict[str, list] = {}   # resolved work folder -> [fd, depth, pid]: locks this process holds


def _lock_owner(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another command (it did not say which)"
    return (f"`{info.get('command', '?')}` (pid {info.get('pid', '?')} on {info.get('host', '?')}, "
            f"started {info.get('started', '?')}: {info.get('argv', '')})")


@contextlib.contextmanager
def work_lock(workdir: str | Path, command: str, wait: float | None = 0, echo=print, advice: str | None = None):
    """Hold the work folder for one command (an OS lock, ``fcntl.flock``, on
    ``<workdir>/.cnnlab-run.lock``): a second command on the same folder waits or is refused.

    ``wait``: seconds to wait for the folder (0: refuse at once; None: wait as long as it takes);
    a refusal raises :class:`WorkFolderBusy`, whose message names the other command, its pid and
    what to do (``advice``: instead of the CLI's). While waiting, ``echo`` says so once. The lock is the kernel's: it goes when its
    process ends (killed or not), so a dead run never blocks the next. Re-entrant within a
    process (``demo`` runs collect, autograde and feedback under one lock). Works whatever the
    gradebook is (SQLite or PostgreSQL): it guards the folder's files.
    """
    import fcntl
    import time

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    key = str(workdir.resolve())
    held = _HELD.get(key)
    if held is not None and held[2] == os.getpid():
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    path = workdir / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = None if wait is None else time.monotonic() + max(0.0, wait)
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                owner = _lock_owner(path)
                if deadline is not None and time.monotonic() >= deadline:
                    waited = f" (waited {wait:g} s)" if wait else ""
                    raise WorkFolderBusy(
                        f"{command}: the work folder {workdir} is in use by {owner}{waited}. Nothing was "
                        "changed. " + (advice or f"Run {command} again when that one has finished, or add "
                                       "--wait to queue behind it.")) from None
                if not told:
                    echo(f"{command}: waiting for {owner} to finish with {workdir} ...")
                    told = True
                time.sleep(0.2 if deadline is None else max(0.01, min(0.2, deadline - time.monotonic())))
        import datetime as dt
        import socket
        import sys

        info = {"command": command, "pid": os.getpid(), "host": socket.gethostname(),
                "started": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"),
                "argv": " ".join(sys.argv)[:300]}
        with contextlib.suppress(OSError):   # (a full disk: the lock holds; only its note is missing)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        _HELD[key] = [fd, 1, os.getpid()]
        try:
            yield
        finally:
            _HELD.pop(key, None)
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def remove_stale_run_folders(workdir: str | Path) -> list[Path]:
    """Remove the run folders (``<workdir>/.work/run-*``) and half-published notebook folders
    (``<workdir>/autograded/<student>/.<assignment>.new-*`` / ``.old-*``) of runs whose process
    provably ended (:func:`owner_is_gone`); return what was removed. Nothing else is touched."""
    import shutil

    workdir = Path(workdir)
    removed = []
    cands = list((workdir / ".work").glob(f"{RUN_PREFIX}*")) if (workdir / ".work").is_dir() else []
    if (workdir / "autograded").is_dir():
        for sdir in (workdir / "autograded").iterdir():
            if sdir.is_dir() and not sdir.is_symlink():
                cands += [p for p in sdir.glob(".*") if ".new-" in p.name or ".old-" in p.name]
    for p in cands:
        token = p.name.split(".new-" if ".new-" in p.name else ".old-" if ".old-" in p.name else RUN_PREFIX, 1)[-1]
        if p.is_dir() and not p.is_symlink() and owner_is_gone(token):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextlib.contextmanager
def run_folder(workdir: str | Path):
    """A folder of this run's own, ``<workdir>/.work/run-<owner token>-<random>/``, removed when
    the run ends; first removes the folders of runs that provably ended
    (:func:`remove_stale_run_folders`), never one of a live run."""
    import shutil
    import tempfile

    work = Path(workdir) / ".work"
    work.mkdir(parents=True, exist_ok=True)
    remove_stale_run_folders(workdir)
    folder = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{owner_token()}-", dir=work))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------------------ failures that are not grades

def no_work_folder(folder: str | Path) -> str:
    """The message for a work folder that does not exist (a typo in --workdir, or nothing collected yet)."""
    return (f"the work folder {folder} does not exist. Point --workdir at your work folder, or make this "
            f"one: python -m autograder collect SUBMISSIONS --workdir {folder}")


def is_disk_full(exc: BaseException | str) -> bool:
    """True for "no space left" (ENOSPC, EDQUOT, SQLite's "database or disk is full"), anywhere
    in an exception's chain or in a log text."""
    import errno

    if isinstance(exc, str):
        low = exc.lower()
        return "no space left on device" in low or "database or disk is full" in low or "disk quota exceeded" in low
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if is_disk_full(str(exc)):
            return True
        exc = exc.__cause__ or exc.__context__ or getattr(exc, "orig", None)
    return False


def disk_full_path(exc: BaseException | None) -> str:
    """The file an ENOSPC error in ``exc``'s chain was about ("" when none says)."""
    import errno

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT) and exc.filename:
            return str(exc.filename)
        exc = exc.__cause__ or exc.__context__
    return ""


def disk_full_message(path: str | Path) -> str:
    """One line: which file system is full and what to do."""
    import shutil

    path = Path(path)
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    mount = probe.resolve()
    while not os.path.ismount(mount) and mount != mount.parent:
        mount = mount.parent
    try:
        free = shutil.disk_usage(probe).free
        left = f"{free / 2**20:.1f} MiB free"
    except OSError:
        left = "free space unknown"
    return (f"disk full: no space left on the file system at {mount} (holding {path}; {left}). "
            "Free some space there, then run the same command again: what was not finished is redone.")
