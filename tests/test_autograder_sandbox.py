"""What the sandbox guarantees, checked directly (no nbgrader): the same guarantees the README and
``autograder/sandbox.py`` state, and the refusal to grade where no sandbox can start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from autograder import sandbox, verifier
from autograder.verify_worker import dumps, loads

pytestmark = pytest.mark.sandbox   # every test starts a bubblewrap sandbox or the grader
REPO = Path(__file__).resolve().parent.parent
CANARY = "sandbox-canary-31c7"


@pytest.fixture(scope="module")
def sb():
    return sandbox.probe()


def run_inside(sb, code: str, timeout=60, **kw) -> subprocess.CompletedProcess:
    cmd = sandbox.command(sb, ["-c", textwrap.dedent(code)], **kw)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, CNNLAB_SECRET=CANARY))


def test_probe_describes_what_it_found(sb):
    assert sb.version and Path(sb.bwrap).exists()
    assert sb.pids in ("cgroup", "rlimit")
    assert "bubblewrap" in sb.describe()


def test_identity_files_environment_and_network(sb):
    out = run_inside(sb, f"""
        import os, socket, json
        print(json.dumps({{
            "uid": os.getuid(), "gid": os.getgid(),
            "solutions": os.path.exists({str(REPO / 'solutions')!r}),
            "repo": os.path.exists({str(REPO / 'README.md')!r}),
            "tests": os.path.exists({str(Path(__file__))!r}),
            "etc_passwd": os.path.exists('/etc/passwd'),
            "env": dict(os.environ),
            "pids": sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
            "cwd": os.getcwd(),
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
    import json

    facts = json.loads(out.stdout.splitlines()[0])
    assert (facts["uid"], facts["gid"]) == (65534, 65534)
    assert not facts["solutions"] and not facts["repo"] and not facts["tests"] and not facts["etc_passwd"]
    assert CANARY not in json.dumps(facts["env"]) and "CNNLAB_SECRET" not in facts["env"]
    assert facts["pids"] == [1, 2] or max(facts["pids"]) < 10      # its own PID namespace
    assert facts["cwd"] == sandbox.HOME
    assert "loopback closed" in out.stdout and "no network" in out.stdout


def test_read_only_environment_and_size_limited_tmp(sb):
    out = run_inside(sb, """
        import os, sys, cnnlab
        for target in (os.path.dirname(cnnlab.__file__), sys.prefix, '/usr'):
            try:
                open(os.path.join(target, 'x'), 'w')
                print('wrote', target)
            except OSError:
                print('read-only')
        try:
            with open('/tmp/fill', 'wb') as fh:
                for _ in range(64):
                    fh.write(b'0' * (1 << 20))
            print('filled 64 MiB')
        except OSError as exc:
            print('full', exc.errno)
        """, tmpfs_mb=16)
    assert out.stdout.count("read-only") == 3, out.stdout + out.stderr
    if sb.tmpfs_size:
        assert "full" in out.stdout
    else:
        pytest.skip("this bubblewrap has no --size: /tmp is not size-limited")


def test_process_limit(sb):
    cg = sandbox.new_cgroup(sb, 32)
    try:
        code = """
            import os, resource, time
            if {rlimit}:
                resource.setrlimit(resource.RLIMIT_NPROC, (32, 32))
            n = 0
            try:
                for _ in range(200):
                    if os.fork() == 0:
                        time.sleep(30)
                        os._exit(0)
                    n += 1
            except OSError:
                pass
            print('forked', n)
            """.format(rlimit=sb.pids == "rlimit")
        out = run_inside(sb, code, cgroup=cg)
        n = int(out.stdout.split()[-1])
        assert n < 40, out.stdout
    finally:
        sandbox.kill_cgroup(cg)


def _alive(marker: str) -> list[str]:
    found = []
    for p in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                found.append(p.name)
        except OSError:
            pass
    return found


def test_detached_processes_die_with_the_sandbox_and_its_parent(sb):
    marker = "3131.5"
    inner = f"import subprocess; subprocess.Popen(['setsid', 'sleep', '{marker}']); import time; time.sleep(60)"
    cmd = sandbox.command(sb, ["-c", inner])
    # a parent that starts the sandbox, then is killed
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
