"""Warm launchers (autograder/zygote.py): kernels forked from a sandboxed process that has already
imported what kernels import. What one forked kernel leaves or does must not reach the next, the
launcher must not be readable from its kernels, and anything going wrong falls back to a kernel
started the ordinary way. Each test runs notebooks through GuardedExecute, as the grader does."""

from __future__ import annotations

import json
import textwrap

import pytest
from nbformat.v4 import new_code_cell, new_notebook

from autograder import execute, sandbox, zygote
from autograder.execute import GuardedExecute

pytestmark = pytest.mark.sandbox   # every test starts sandboxes and grading kernels

LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"


def cheat(code: str) -> str:
    """A cell that calls libc directly (past the in-kernel guard, as a determined cheat would)."""
    return LIBC + textwrap.dedent(code)


@pytest.fixture(autouse=True)
def fresh_launchers():
    sandbox.probe()
    zygote.close_all()
    zygote._DISABLED.clear()
    zygote._REFUSED[0] = 0
    yield
    zygote.close_all()
    zygote._DISABLED.clear()


def run(*cells: str, prestart: bool = False, warm: bool = True, timeout: int = 60):
    nb = new_notebook(cells=[new_code_cell(textwrap.dedent(c)) for c in cells])
    ep = GuardedExecute(prestart=prestart, warm=warm, figures=False, timeout=timeout)
    ep.preprocess(nb, {"metadata": {"path": "/tmp"}})
    return nb


def text(nb, i: int) -> str:
    outs = nb.cells[i].outputs
    return "".join(o.get("text", "") for o in outs if o.get("output_type") == "stream") + \
        "".join(f"{o.get('ename')}: {o.get('evalue')}" for o in outs if o.get("output_type") == "error")


def facts(nb, i: int = 0) -> dict:
    return json.loads(text(nb, i).strip().splitlines()[-1])


def launchers() -> list[zygote.Zygote]:
    return [z for pool in zygote._ZYGOTES.values() for z in pool]


def test_kernels_are_forked_warm_and_start_fresh():
    probe = """
        import json, os, sys, numpy
        print(json.dumps({"ppid": os.getppid(), "numpy_before": "matplotlib.pyplot" in sys.modules,
                          "draw": float(numpy.random.rand()), "home": sorted(os.listdir(".")),
                          "tmp": sorted(os.listdir("/tmp")), "uid": os.getuid(), "cwd": os.getcwd()}))
        """
    a, b = facts(run(probe)), facts(run(probe))
    zs = launchers()
    assert len(zs) == 1 and zs[0].alive(), "the second notebook reuses the first one's launcher"
    for f in (a, b):
        assert f["ppid"] != 1 and f["numpy_before"], "forked from the launcher, with its imports"
        assert f["uid"] == sandbox.SANDBOX_UID and f["cwd"] == sandbox.HOME
        assert f["home"] == [".ipython"]
    assert a["draw"] != b["draw"], "each kernel draws its own NumPy seed, as a fresh process does"


def test_nothing_a_kernel_leaves_reaches_the_next():
    leave = cheat("""
        import subprocess, time, socket
        open("planted.py", "w").write("print('planted')")
        open("/tmp/left.txt", "w").write("secret answers")
        open("/dev/shm/left", "w").write("secret answers")
        seg = libc.shmget(0x5eed, 4096, 0o1666)          # System V shared memory, IPC_CREAT
        assert seg >= 0, ctypes.get_errno()
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind("\\0cnnlab-left"); srv.listen()          # an abstract socket: names, not files
        pid = libc.fork()                                 # past the in-kernel guard, as a cheat would
        if pid == 0:
            libc.setsid()
            while True:
                try:
                    open("/tmp/home/late.txt", "w").write("written after the notebook")
                except OSError:
                    pass
                time.sleep(0.05)
        print("left", seg, pid)
        """)
    nb = run(leave)
    assert text(nb, 0).startswith("left"), text(nb, 0)
    look = cheat("""
        import json, os, socket, time
        time.sleep(0.3)
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect("\\0cnnlab-left"); sock = "reachable"
        except OSError:
            sock = "gone"
        me = os.getpid()
        others = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me, os.getppid())]
        cmd = [open(f"/proc/{p}/cmdline", "rb").read() for p in others if os.path.exists(f"/proc/{p}/cmdline")]
        print(json.dumps({"home": sorted(os.listdir(".")), "tmp": sorted(os.listdir("/tmp")),
                          "shm": sorted(os.listdir("/dev/shm")), "sysv": libc.shmget(0x5eed, 0, 0),
                          "sock": sock, "others": len([c for c in cmd if c])}))
        """)
    f = facts(run(look))
    assert f["home"] == [".ipython"], f
    assert "left.txt" not in f["tmp"] and f["shm"] == [], f
    assert f["sysv"] == -1, "its own System V IPC namespace"
    assert f["sock"] == "gone", "its own network namespace (abstract sockets)"
    assert f["others"] == 0, "the previous kernel's processes were killed"


def test_a_kernel_cannot_read_or_trace_its_launcher():
    nb = run(cheat("""
        import json, os
        out = {}
        for what in ("mem", "environ", "maps"):
            try:
                open(f"/proc/{os.getppid()}/{what}", "rb").read(16); out[what] = "read"
            except OSError as e:
                out[what] = type(e).__name__
        out["ptrace"] = libc.ptrace(16, os.getppid(), 0, 0)        # PTRACE_ATTACH
        out["cap_eff"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
        print(json.dumps(out))
        """))
    f = facts(nb)
    assert f["mem"] != "read" and f["environ"] != "read" and f["maps"] != "read", f
    assert f["ptrace"] == -1, f
    assert int(f["cap_eff"], 16) == 0, "no capabilities in its own namespaces"


@pytest.mark.parametrize("signal_name", ["SIGKILL", "SIGSTOP"])
def test_a_kernel_that_kills_or_stops_its_launcher_does_not_stop_the_next(signal_name, monkeypatch):
    monkeypatch.setattr(zygote, "ANSWER_SECONDS", 2.0)
    nb = run(cheat(f"import signal\nlibc.kill(os.getppid(), signal.{signal_name})\nprint('sent')"), "print('after')",
             timeout=20)
    assert "sent" in text(nb, 0) or "KernelDied" in text(nb, 0)
    nb = run("print(6 * 7)")
    assert text(nb, 0).strip() == "42", text(nb, 0)


def test_falls_back_to_a_cold_kernel(monkeypatch):
    async def no_fork(self, argv):
        return None

    monkeypatch.setattr(zygote.Zygote, "fork", no_fork)
    before = execute.STATS["fresh"]
    nb = run("import os; print(os.getppid())")
    assert text(nb, 0).strip() == "1", "started the ordinary way: the sandbox's init is its parent"
    assert execute.STATS["fresh"] == before + 1


def test_off_means_cold_and_machines_without_nested_namespaces_fall_back():
    nb = run("import os; print(os.getppid())", warm=False)
    assert text(nb, 0).strip() == "1" and not launchers()
    zygote._DISABLED["all"] = "a forked kernel cannot enter namespaces of its own here"
    nb = run("import os; print(os.getppid())")
    assert text(nb, 0).strip() == "1" and not launchers()


def test_prestarted_kernels_alternate_between_two_launchers():
    seen = set()
    for _ in range(4):
        nb = run("import os; print(os.getppid())", prestart=True)
        assert text(nb, 0).strip() not in ("", "1"), text(nb, 0)
    for z in launchers():
        seen.add(id(z))
    assert len(seen) == zygote.PER_KEY
    execute.discard_spares()


@pytest.mark.parametrize("warm", [True, False])
def test_no_channel_folder_or_cgroup_is_left(warm, monkeypatch):
    import os
    import shutil
    import tempfile
    from pathlib import Path

    tmp_path = Path(tempfile.mkdtemp(prefix="zt-", dir="/tmp"))   # short: Unix socket paths are limited
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    mine = f"cnnlab-{os.getpid()}-"
    before = {p.name for p in sandbox.CGROUP_PIDS.glob(mine + "*")} if sandbox.CGROUP_PIDS.is_dir() else set()
    for _ in range(2):
        assert text(run("print(1)", warm=warm), 0).strip() == "1"
    zygote.close_all()
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(("cnnlab-ch-", "cnnlab-zy-"))]
    shutil.rmtree(tmp_path, ignore_errors=True)
    assert not left
    if sandbox.CGROUP_PIDS.is_dir():
        assert {p.name for p in sandbox.CGROUP_PIDS.glob(mine + "*")} <= before


def _in_forked_worker(q) -> None:
    q.put(text(run("print(6 * 7)", prestart=True), 0).strip())


def test_a_forked_worker_starts_launchers_of_its_own():
    """The engine's workers are forked: they must not use (or wait on) the parent's launchers,
    spare kernels or event-loop threads."""
    import multiprocessing

    assert text(run("print(1)", prestart=True), 0).strip() == "1"
    assert launchers()
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_in_forked_worker, args=(q,))
    p.start()
    try:
        assert q.get(timeout=60) == "42"
    finally:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()
    assert all(z.alive() for z in launchers()), "the parent's launchers are untouched"
    execute.discard_spares()


def test_a_spare_kernel_abandoned_while_it_forks_does_not_hang_the_grader():
    """The next notebook's kernel is started early; when it is discarded before its fork has been
    answered (the notebook that comes needs another configuration), the grader must go on."""
    import asyncio

    assert text(run("print(1)"), 0).strip() == "1"
    z = launchers()[0]
    z.owner = "someone"
    loop = asyncio.new_event_loop()
    try:
        task = loop.create_task(z.fork(["--mem-mb", "0"]))
        loop.run_until_complete(asyncio.sleep(0))   # the fork request holds the launcher now
        assert z._lock.locked()
        task.cancel()
        z.release()                                 # what discard() does: must not block
        assert not z.alive()
    finally:
        loop.close()
    assert text(run("print(2)"), 0).strip() == "2"
