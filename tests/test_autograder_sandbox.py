"""What the sandbox guarantees, checked directly (no nbgrader): the guarantees the README and
``autograder/sandbox/`` state, and the refusal to grade where no sandbox can start.

Every test that starts a sandbox runs twice: with the process and memory limits this machine
gives (pids and memory cgroups when the tool is root and may write cgroup v1's pids and memory
controllers) and with both cgroups refused (``CNNLAB_SANDBOX_PIDS=rlimit`` and
``CNNLAB_SANDBOX_MEMORY=rlimit``: RLIMIT_NPROC and RLIMIT_AS alone, what a machine without those
cgroups gets).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autograder import sandbox, verifier
from autograder.sandbox import host
from autograder.verify_worker import dumps, loads

pytestmark = pytest.mark.sandbox   # every test starts a bubblewrap sandbox or the grader
REPO = Path(__file__).resolve().parent.parent
CANARY = "sandbox-canary-31c7"


@pytest.fixture(params=["machine", "rlimit"])
def sb(request, monkeypatch):
    """The sandbox as this machine makes it, and with the process and memory limits forced to
    rlimits (no cgroup)."""
    for env in (sandbox.PIDS_ENV, sandbox.MEMORY_ENV):
        if request.param == "rlimit":
            monkeypatch.setenv(env, "rlimit")
        else:
            monkeypatch.delenv(env, raising=False)
    found = sandbox.probe()
    if request.param == "rlimit":
        assert (found.pids, found.memory) == ("rlimit", "rlimit")
    return found


def run_inside(sb, code: str, timeout=120, **kw) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh sandbox; its stdout and bubblewrap's (and Python's) stderr."""
    with sandbox.Sandboxed(sb, ["-c", textwrap.dedent(code)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           **kw) as box:
        out, err = box.proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(box.proc.args, box.proc.returncode, out.decode(), err.decode())


def test_probe_describes_what_it_found(sb):
    assert sb.version and Path(sb.bwrap).exists()
    assert sb.pids in ("cgroup", "rlimit") and sb.memory in ("cgroup", "rlimit")
    assert sb.as_root == (os.geteuid() == 0)
    assert "bubblewrap" in sb.describe() and "read-only root" in sb.describe()
    assert f"memory limit by {sb.memory}" in sb.describe()


def test_identity_files_environment_and_network(sb, monkeypatch):
    monkeypatch.setenv("CNNLAB_SECRET", CANARY)
    out = run_inside(sb, f"""
        import os, socket, json
        print(json.dumps({{
            "uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(), "groups": os.getgroups(),
            "solutions": os.path.exists({str(REPO / 'solutions')!r}),
            "repo": os.path.exists({str(REPO / 'README.md')!r}),
            "tests": os.path.exists({str(Path(__file__))!r}),
            "etc_passwd": os.path.exists('/etc/passwd'),
            "env": dict(os.environ),
            "pids": sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
            "cwd": os.getcwd(),
            "status": [l.split() for l in open('/proc/self/status') if l.startswith(('Cap', 'NoNewPrivs'))],
        }}))
        try:
            socket.create_connection(('127.0.0.1', 22), timeout=1)
            print('loopback reachable')
        except OSError:
            print('loopback closed')
        try:
            socket.create_connection(('1.1.1.1', 53), timeout=1)
            print('network reachable')
        except OSError:
            print('no network')
        """)
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout.splitlines()[0])
    assert facts["uid"] == facts["euid"] == facts["gid"] and facts["uid"] != 0 and facts["uid"] != os.getuid()
    if sb.as_root:   # a fresh uid that no account of the host has
        import pwd

        assert facts["uid"] >= 1 << 30 and facts["groups"] == []
        with pytest.raises(KeyError):
            pwd.getpwuid(facts["uid"])
    else:
        assert facts["uid"] == sandbox.INSIDE_UID
    status = {row[0].rstrip(":"): row[1] for row in facts["status"]}
    assert all(int(status[k], 16) == 0 for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")), status
    assert status["NoNewPrivs"] == "1"
    assert not facts["solutions"] and not facts["repo"] and not facts["tests"] and not facts["etc_passwd"]
    assert CANARY not in json.dumps(facts["env"]) and "CNNLAB_SECRET" not in facts["env"]
    assert facts["pids"] == [1, 2] or max(facts["pids"]) < 10      # its own PID namespace
    assert facts["cwd"] == sandbox.HOME
    assert "loopback closed" in out.stdout and "no network" in out.stdout


WRITES = """
    import json, os, sys, cnnlab
    out = {}
    targets = ['/x', '/etc/x', '/etc/ipython/ipython_kernel_config.py', '/dev/x', '/opt/x',
               '/opt/cnnlab/lib/x.py', '/opt/cnnlab/lib/cnnlab_sandbox/guard.py',
               '/opt/cnnlab/lib/sitecustomize.py', os.path.join(os.path.dirname(cnnlab.__file__), 'x'),
               os.path.join(sys.prefix, 'x'), '/usr/x', '/proc/x',
               '/tmp/x', '/tmp/home/x', '/dev/shm/x', '/tmp/.channel/x']
    for p in targets:
        try:
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, 'w') as fh:
                fh.write('1')
            out[p] = 'written'
        except OSError as exc:
            out[p] = exc.strerror
    print(json.dumps(out))
    """


def test_the_root_is_read_only_and_four_places_are_writable(sb):
    out = run_inside(sb, WRITES)
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    writable = {"/tmp/x", "/tmp/home/x", "/dev/shm/x", "/tmp/.channel/x"}
    assert {p for p, v in facts.items() if v == "written"} == writable, facts
    # read-only for any uid (not merely not this uid's): the root and every bind are mounted read-only
    assert all(v == "Read-only file system" for p, v in facts.items() if p not in writable and p != "/proc/x"), facts


def test_one_size_limit_for_every_writable_place(sb):
    """home, /tmp, /dev/shm and the channel folder share one tmpfs of ``tmpfs_mb``: 6 MiB in
    each of them does not fit into 16 MiB, and what does not fit is a clear error."""
    out = run_inside(sb, """
        import json
        out = {}
        for place in ('/tmp/home', '/dev/shm', '/tmp/.channel', '/tmp'):
            try:
                with open(place + '/fill', 'wb') as fh:
                    for _ in range(6):
                        fh.write(b'0' * (1 << 20))
                        fh.flush()
                out[place] = 'ok'
            except OSError as exc:
                out[place] = exc.strerror
        print(json.dumps(out))
        """, tmpfs_mb=16)
    facts = json.loads(out.stdout.strip().splitlines()[-1])
    assert list(facts.values())[:2] == ["ok", "ok"], facts
    assert "No space left on device" in facts.values(), facts


FORK = """
    import os, sys, time
    n = 0
    try:
        for _ in range(200):
            if os.fork() == 0:
                time.sleep(60)
                os._exit(0)
            n += 1
    except OSError:
        pass
    print('forked', n, flush=True)
    time.sleep(60)
    """


def test_process_limit_per_sandbox(sb):
    """A sandbox limited to 32 processes cannot start 200; a second one started while the first
    holds its 32 gets its own 32 (the limit is never shared)."""
    boxes = [sandbox.Sandboxed(sb, ["-c", textwrap.dedent(FORK)], max_processes=32, stdout=subprocess.PIPE)
             for _ in range(2)]
    try:
        counts = [int(b.proc.stdout.readline().split()[-1]) for b in boxes]
    finally:
        for b in boxes:
            b.kill()
    assert all(24 <= n < 32 for n in counts), counts


def _our_memory_cgroups() -> set[Path]:
    """The memory cgroups this test process made (named after its pid)."""
    root = sandbox.CGROUP_MEMORY
    return set(root.glob(f"cnnlab-{os.getpid()}-*")) if root.is_dir() else set()


def test_memory_limit_falls_back_to_rlimit_by_request(monkeypatch):
    """``CNNLAB_SANDBOX_MEMORY=rlimit`` gives RLIMIT_AS alone (what a machine without a writable
    memory controller gets), whatever this machine could do, and leaves the process limit alone."""
    monkeypatch.delenv(sandbox.MEMORY_ENV, raising=False)
    machine = sandbox.probe()
    monkeypatch.setenv(sandbox.MEMORY_ENV, "rlimit")
    forced = sandbox.probe()
    assert forced.memory == "rlimit" and forced.pids == machine.pids
    assert "memory limit by rlimit, per process" in forced.describe()
    before = _our_memory_cgroups()
    with sandbox.Sandboxed(forced, ["-c", "pass"], memory_mb=256) as box:
        assert box.memcg is None
        box.proc.wait(timeout=60)
    assert _our_memory_cgroups() == before


def test_memory_cgroup_per_sandbox_removed_at_its_end(sb):
    """Where the probe says "cgroup", each sandbox gets its own memory cgroup limited to the memory
    limit plus its tmpfs, holding its processes; it is gone when the sandbox ends. No cgroup of
    this process is left under the memory controller either way."""
    before = _our_memory_cgroups()
    boxes = [sandbox.Sandboxed(sb, ["-c", "import time; time.sleep(60)"], memory_mb=300, tmpfs_mb=64)
             for _ in range(2)]
    try:
        cgs = [b.memcg for b in boxes]
        if sb.memory == "cgroup":
            assert cgs[0] != cgs[1] and all(c.is_dir() for c in cgs)
            for b, c in zip(boxes, cgs):
                assert int((c / "memory.limit_in_bytes").read_text()) == (300 + 64) << 20
                if (c / "memory.memsw.limit_in_bytes").exists():
                    assert int((c / "memory.memsw.limit_in_bytes").read_text()) == (300 + 64) << 20
                procs = (c / "cgroup.procs").read_text().split()
                assert str(b.proc.pid) in procs and str(b.child_pid) in procs
        else:
            assert cgs == [None, None]
    finally:
        for b in boxes:
            b.kill()
    assert all(c is None or not c.exists() for c in cgs)
    assert _our_memory_cgroups() == before


# two processes of one sandbox hold 100 MiB each at the same time (detached from each other)
TWO_HOGS = """
    import json, os, subprocess, sys, time
    child = ("import os, time\\nb = b'x' * (100 << 20)\\nopen('/tmp/held%d', 'w').close()\\n"
             "end = time.time() + 20\\n"
             "while time.time() < end and len([f for f in os.listdir('/tmp') if f.startswith('held')]) < 2:\\n"
             "    time.sleep(0.05)\\n")
    procs = [subprocess.Popen([sys.executable, '-c', child % i], stderr=subprocess.DEVNULL) for i in range(2)]
    end = time.time() + 30
    while time.time() < end and all(p.poll() is None for p in procs) and \\
            len([f for f in os.listdir('/tmp') if f.startswith('held')]) < 2:
        time.sleep(0.05)
    print(json.dumps([sorted(f for f in os.listdir('/tmp') if f.startswith('held')), [p.poll() for p in procs]]))
    """


def test_memory_limit_holds_for_the_sandbox_as_a_whole(sb):
    """Two processes of 100 MiB each in a sandbox limited to 64 MiB (+ 64 MiB of tmpfs): with a
    memory cgroup they cannot hold them together (the cgroup's OOM killer ends one: SIGKILL);
    with RLIMIT_AS alone (set inside by the sandbox-side code, not here) both do."""
    out = run_inside(sb, TWO_HOGS, memory_mb=64, tmpfs_mb=64)
    assert out.returncode == 0, out.stderr[-2000:]
    held, codes = json.loads(out.stdout.strip().splitlines()[-1])
    if sb.memory == "cgroup":
        assert len(held) < 2 and -signal.SIGKILL in codes, out.stdout
    else:
        assert held == ["held0", "held1"], out.stdout


def test_remove_stale_removes_cgroups_of_dead_runs():
    """A tool process killed before it removed its cgroups: the next run removes them, pids and
    memory alike, and leaves those of live processes alone."""
    roots = [r for r in (sandbox.CGROUP_PIDS, sandbox.CGROUP_MEMORY)
             if os.geteuid() == 0 and (r / "cgroup.procs").exists() and os.access(r, os.W_OK)]
    if not roots:
        pytest.skip("no writable cgroup v1 pids or memory controller here")
    dead = subprocess.Popen(["true"])
    dead.wait()
    made = []
    try:
        for r in roots:
            for owner in (dead.pid, os.getpid()):
                cg = r / f"cnnlab-{owner}-stale{os.getpid()}"
                cg.mkdir()
                made.append(cg)
        sandbox.remove_stale()
        assert [c.exists() for c in made] == [False, True] * len(roots)
    finally:
        for c in made:
            with contextlib.suppress(OSError):
                c.rmdir()


def _alive(marker: str) -> list[str]:
    found = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(p.name)
        except OSError:
            pass
    return found


def _stat(pid) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state first), or [] when gone."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (through /proc/<pid>/task/*/children: a process whose leader
    thread exited has no command line to find it by)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                kids = [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


EXITED_LEADER = """
    import ctypes, os, sys, threading, time
    # a child whose main thread exits while another thread lives on: /proc shows it as a zombie
    # ("Z"), a sweep that skips zombies leaves its thread running
    if os.fork() == 0:
        os.setsid()
        def live():
            while True:
                time.sleep(0.05)
        threading.Thread(target=live).start()
        time.sleep(0.2)
        ctypes.CDLL(None).pthread_exit(None)
    if os.fork() == 0:                       # and a detached sleeper
        os.setsid()
        os.execvp('sleep', ['sleep', '{marker}'])
    time.sleep(60)
    """


def test_every_process_dies_with_the_sandbox_whatever_its_state(sb):
    marker = "3131.7"
    box = sandbox.Sandboxed(sb, ["-c", textwrap.dedent(EXITED_LEADER.format(marker=marker))])
    try:
        box.wait_info()
        deadline = time.monotonic() + 60
        leaders: list[int] = []
        while time.monotonic() < deadline:
            procs = {p: _stat(p) for p in _descendants(box.child_pid)}
            leaders = [p for p, st in procs.items() if st and st[0] == "Z" and len(list(Path(f"/proc/{p}/task").glob("*"))) >= 2]
            if leaders and _alive(f"sleep {marker}"):
                break
            time.sleep(0.1)
        assert leaders, "the attack did not take shape: no process whose leader thread exited while another lives"
        started = {p: st[19] for p, st in procs.items() if st}     # start times: a reused pid is another process
        # the wrong sweep (the warm launchers' one): SIGKILL to every process not shown as a zombie
        # (but the sandbox's command itself) leaves the exited leader's thread running
        command = int(Path(f"/proc/{box.child_pid}/task/{box.child_pid}/children").read_text().split()[0])
        for p, st in procs.items():
            if p != command and st and st[0] != "Z":
                os.kill(p, signal.SIGKILL)
        time.sleep(0.5)
        assert all(_stat(p) and len(list(Path(f"/proc/{p}/task").glob("*"))) >= 2 for p in leaders)
    finally:
        box.kill()
    assert [p for p, t in started.items() if _stat(p) and _stat(p)[19] == t] == []
    assert _alive(f"sleep {marker}") == []


def test_detached_processes_die_with_the_sandbox_and_its_parent(sb):
    marker = "3131.5"
    inner = f"import subprocess; subprocess.Popen(['setsid', 'sleep', '{marker}']); import time; time.sleep(60)"
    cmd = host.command(sb, ["-c", inner])
    # a parent that starts the sandbox (as the grader does, without a cgroup), then is killed
    parent = subprocess.Popen([sys.executable, "-c", f"import subprocess, time; subprocess.Popen({cmd!r}); time.sleep(60)"])
    deadline = time.monotonic() + 30
    while not _alive(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive(f"sleep {marker}"), "the detached sleeper did not start"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(f"sleep {marker}") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive(f"sleep {marker}") == []


LEAVE = """
    import ctypes, json, os, socket, sys, time
    libc = ctypes.CDLL(None, use_errno=True)
    for p in ('/tmp/home/planted.py', '/tmp/left.txt', '/dev/shm/left', '/tmp/.channel/left'):
        open(p, 'w').write('secret answers')
    assert libc.shmget(0x5eed, 4096, 0o1666) >= 0, ctypes.get_errno()      # System V shared memory
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind('\\0cnnlab-left'); srv.listen()                               # an abstract socket
    if os.fork() == 0:                                                     # a detached process
        os.setsid()
        while True:
            time.sleep(0.05)
    print('left', flush=True)
    time.sleep(60)
    """

LOOK = """
    import ctypes, json, os, socket
    libc = ctypes.CDLL(None, use_errno=True)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        c.connect('\\0cnnlab-left'); sock = 'reachable'
    except OSError:
        sock = 'gone'
    me = os.getpid()
    others = [int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, me)]
    print(json.dumps({'home': sorted(os.listdir('.')), 'tmp': sorted(os.listdir('/tmp')),
                      'shm': sorted(os.listdir('/dev/shm')), 'channel': os.path.exists('/tmp/.channel/left'),
                      'sysv': libc.shmget(0x5eed, 0, 0), 'sock': sock, 'others': others}))
    """


def test_a_sandbox_finds_nothing_of_the_one_before(sb):
    """Files in every writable place, System V IPC, an abstract socket and a detached process
    left by one sandbox, still running: the next sandbox sees none of them."""
    first = sandbox.Sandboxed(sb, ["-c", textwrap.dedent(LEAVE)], stdout=subprocess.PIPE)
    try:
        assert first.proc.stdout.readline().strip() == b"left"
        look = json.loads(run_inside(sb, LOOK).stdout.strip().splitlines()[-1])
    finally:
        first.kill()
    # (a checkout or Python under /tmp, such as a fresh clone there, is bound read-only at its own path)
    bound = {p.parts[2] for p in (REPO, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve())
             if p.parts[:2] == ("/", "tmp") and len(p.parts) > 2}
    assert look == {"home": [], "tmp": sorted({".channel", ".shm", "home", *bound}), "shm": [], "channel": False,
                    "sysv": -1, "sock": "gone", "others": []}, look


def test_nothing_it_writes_is_root_owned_or_set_uid_on_the_host(sb, tmp_path):
    """A set-uid copy of /usr/bin/id in every writable place: it exists only in the sandbox's
    tmpfs (mounted nosuid), belongs to the sandbox's unprivileged uid, runs without privileges,
    and nothing appears on the host; through /proc the host sees the same."""
    code = """
        import os, shutil, subprocess, time
        for place in ('/tmp/home', '/tmp', '/dev/shm', '/tmp/.channel'):
            dest = os.path.join(place, 'suid-id-7d1')
            shutil.copy('/usr/bin/id', dest)
            os.chmod(dest, 0o6755)
        print(subprocess.run(['/tmp/home/suid-id-7d1', '-u'], capture_output=True, text=True).stdout.strip(), flush=True)
        time.sleep(60)
        """
    box = sandbox.Sandboxed(sb, ["-c", textwrap.dedent(code)], stdout=subprocess.PIPE)
    try:
        box.wait_info()
        ran_as = int(box.proc.stdout.readline())
        root = f"/proc/{box.child_pid}/root"
        seen = []
        for place in ("tmp/home", "tmp", "tmp/.shm", "tmp/.channel"):
            st = os.stat(f"{root}/{place}/suid-id-7d1")
            seen.append((st.st_uid, bool(st.st_mode & stat.S_ISUID)))
        mounts = [m.split() for m in Path(f"/proc/{box.child_pid}/mountinfo").read_text().splitlines()]
    finally:
        box.kill()
    assert ran_as != 0 and (not sb.as_root or ran_as == box.uid), "the set-uid bit gave it nothing"
    assert all(uid != 0 for uid, _ in seen) and all(suid for _, suid in seen), seen
    # every mount it can write to: its tmpfs (nosuid), its /proc, and the five device files
    writable = {m[4]: (m[m.index("-") + 1], m[5]) for m in mounts if "rw" in m[5].split(",")}
    assert writable.pop("/tmp")[0] == "tmpfs" and set(writable) <= {"/proc", *(f"/dev/{d}" for d in host.DEVICES)}, \
        writable
    assert all("nosuid" in m[5] for m in mounts), [m for m in mounts if "nosuid" not in m[5]]
    assert not list(Path(tempfile.gettempdir()).glob("suid-id-7d1")) and not list(tmp_path.rglob("suid-id-7d1"))


def test_the_grader_reaches_the_channel_through_proc_and_nowhere_else(sb):
    """The channel folder lives in the sandbox's tmpfs: the host reaches it through
    /proc/<pid>/root, and it is not any folder of the host's /tmp."""
    box = sandbox.Sandboxed(sb, ["-c", "open('/tmp/.channel/hello', 'w').write('hi'); print('ok', flush=True); "
                                       "import time; time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        box.wait_info()
        assert box.proc.stdout.readline().strip() == b"ok"
        fd = box.open_inside(sandbox.CHANNEL)
        try:
            assert os.listdir(f"/proc/self/fd/{fd}") == ["hello"]
            vfs = os.statvfs(f"/proc/self/fd/{fd}")
            assert vfs.f_blocks * vfs.f_frsize == sandbox.TMPFS_MB * 1024 * 1024     # the sandbox's tmpfs
            st = os.fstat(fd)
            if sb.as_root:   # root's, sticky: the kernel makes entries, cannot remove root's
                assert st.st_uid == 0 and st.st_mode & stat.S_ISVTX
        finally:
            os.close(fd)
    finally:
        box.kill()
    assert not os.path.exists("/tmp/.channel/hello")


def test_no_sandbox_means_refusal(tmp_path):
    env = dict(os.environ, CNNLAB_BWRAP=str(tmp_path / "no-bwrap"),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    fixtures = REPO / "tests" / "fixtures" / "toy" / "solutions"
    out = subprocess.run([sys.executable, "-m", "autograder", "autograde", "--workdir", str(tmp_path / "w"),
                          "--solutions", str(fixtures), "--notebooks", str(tmp_path / "nb"), "--no-progress"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 3, out.stdout + out.stderr
    assert "no sandbox" in out.stdout and "--unsafe-no-sandbox" in out.stdout
    ok = subprocess.run([sys.executable, "-m", "autograder", "autograde", "--workdir", str(tmp_path / "w"),
                         "--solutions", str(fixtures), "--notebooks", str(tmp_path / "nb"), "--no-progress",
                         "--unsafe-no-sandbox"], capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0 and "WARNING: grading without a sandbox" in ok.stdout, ok.stdout + ok.stderr


# ----------------------------------------------------------------------------- the verifier's channel

def test_plain_data_round_trips_and_nothing_else_passes():
    value = {"a": (np.arange(6.0).reshape(2, 3), 1, 2.5, float("nan"), None, [np.float32(2)], "s", 1 + 2j)}
    back = loads(dumps(value))
    assert np.array_equal(back["a"][0], value["a"][0]) and back["a"][1:3] == (1, 2.5)
    assert np.isnan(back["a"][3]) and back["a"][5][0].shape == () and back["a"][7] == 1 + 2j
    with pytest.raises(TypeError):
        dumps(np.array([object()]))
    with pytest.raises(TypeError):
        dumps(lambda: 1)
    with pytest.raises(ValueError):
        loads(b"\x80\x04garbage")          # a pickle is never read


def test_worker_runs_answers_and_reports_each_call(sb):
    replies = verifier.run_worker(
        ["import numpy as np"],
        ["def f(x):\n    return x * 2", "def g(x):\n    from cnnlab.numpy_ref import corr2d\n    return corr2d(x, x)",
         "def h(x):\n    while True:\n        pass", "raise RuntimeError('a broken cell does not stop the others')"],
        [["f", [np.arange(3.0)], {}], ["g", [np.ones((2, 2))], {}], ["h", [1], {}], ["nope", [], {}]],
        seconds=2, total_seconds=60, memory_mb=2048, sb=sb)
    assert np.array_equal(replies[0]["ok"], [0.0, 2.0, 4.0])
    assert replies[1]["ok"].shape == (1, 1)           # the course's package is there (helpers notebooks give)
    assert "TimeoutError" in replies[2]["error"]
    assert "NameError" in replies[3]["error"]


def test_a_worker_that_dies_or_forges_gives_no_verdict(sb):
    with pytest.raises(verifier.WorkerFailed):
        verifier.run_worker([], ["import os\nos._exit(3)"], [["f", [], {}]], seconds=2, total_seconds=30,
                            memory_mb=2048, sb=sb)
    with pytest.raises(verifier.WorkerFailed):   # writes garbage to its own channel, then dies
        verifier.run_worker([], ["import os\nfor fd in range(3, 20):\n    try:\n        os.write(fd, b'x' * 100)\n"
                                 "    except OSError:\n        pass\nos._exit(0)"],
                            [["f", [], {}]], seconds=2, total_seconds=30, memory_mb=2048, sb=sb)


def test_run_python_kills_everything_it_started(sb):
    """The host-side function the verifier uses: a sandbox-side file, read-only files bound in,
    an fd passed in, and every process gone when the block ends."""
    marker = "3131.9"
    data = Path(tempfile.mkdtemp()) / "data.txt"     # (its folder is 0700: bound by bubblewrap, not walked)
    data.write_text("read-only data")
    r, w = os.pipe()
    try:
        with sandbox.run_python(sb, "-c", ["import os, subprocess, sys; subprocess.Popen(['setsid', 'sleep', "
                                           f"'{marker}']); os.write({w}, open('/opt/cnnlab/data.txt').read().encode()); "
                                           "open('/opt/cnnlab/data.txt', 'w')"],
                                ro_files={str(data): "/opt/cnnlab/data.txt"}, pass_fds=(w,)) as proc:
            os.close(w)
            w = None
            assert os.read(r, 100) == b"read-only data"
            proc.wait(timeout=60)
            assert proc.returncode != 0          # opening the read-only file for writing failed
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
        data.unlink()
        data.parent.rmdir()
    assert _alive(f"sleep {marker}") == []


def test_worker_defers_imports_until_a_name_is_needed():
    """Module-level imports run only when a statement or a called function needs their name; a
    name bound again later is not overwritten; a failed import leaves the name unbound."""
    from autograder import verify_worker as vw

    code = r'''
import sys
from autograder import verify_worker as vw
ns, d = {"__name__": "__main__"}, {}
vw.run_source("import json\nimport decimal\nfrom fractions import Fraction\nimport xml.dom.minidom as md\nK = 3", "<a>", ns, d)
assert sorted(d) == ["Fraction", "decimal", "json", "md"], d
assert "decimal" not in sys.modules and "xml.dom.minidom" not in sys.modules
vw.run_source("def half(x):\n    return Fraction(x, 2) * K\nclass D(decimal.Decimal):\n    pass\n", "<b>", ns, d)
assert "decimal" in sys.modules and "fractions" not in sys.modules     # a class body needs its base now
vw.bind_needed(ns["half"], ns, d)
assert ns["half"](3) == __import__("fractions").Fraction(9, 2) and "xml.dom.minidom" not in sys.modules
vw.run_source("json = 'mine'", "<c>", ns, d)
assert ns["json"] == "mine" and "json" not in d
vw.run_source("import no_such_module_here\ndef f():\n    return no_such_module_here.x", "<d>", ns, d)
vw.bind_needed(ns["f"], ns, d)
try:
    ns["f"]()
except NameError:
    print("ok")
'''
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(Path(vw.__file__).parent.parent))
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
