"""Nothing shared between two students' runs, every byte accounted for: attacks on the sandbox,
graded by the real tool with ONE worker, so that each attacker's classmate is graded right after
it by the same worker.

The class (the toy assignment of tests/fixtures/toy): a first classmate, then each attacker
followed by a classmate. Every attacker has honest answers (its work deserves 6/6, the print
flood 3/6) and an attack in cells of its own; every classmate has honest answers and a cell that
reports what its kernel sees. Each attacker must get exactly what its honest work deserves; every
classmate must score 6/6 and see exactly what the first one saw (but its own NumPy seed); nothing
may be left running, written to the host or set-uid there. The class is graded twice: with the
process limit this machine gives, and with RLIMIT_NPROC forced (a machine without a pids cgroup).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import socket
import stat
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest

from autograder import engine, sandbox, verifier
from autograder.collect import collect_folder
from autograder.config import Course
from autograder.release import release
from test_autograder_adversarial import A, CORR_OK, FIXTURES, LIMITS, SCALE_OK, _code, _index, _protected_digest, write_class

pytestmark = pytest.mark.slow
MARK = "isol7c3"   # in the command line or thread name of every process an attacker leaves

LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"

WRITE_LIB = LIBC + """
report = {}
for path in ('/opt/cnnlab/lib/cnnlab_kernel/__init__.py', '/opt/cnnlab/lib/cnnlab_sandbox/guard.py',
             '/opt/cnnlab/lib/cnnlab_sandbox/evil.py', '/opt/cnnlab/lib/sitecustomize.py',
             '/opt/cnnlab/lib/cnnlab/__init__.py', '/etc/ipython/ipython_kernel_config.py',
             '/tmp/home/.ipython/profile_default/startup/00-spy.py'):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as fh:
            fh.write('get_ipython().events.register("pre_run_cell", lambda i: open("/tmp/spy", "a").write(i.raw_cell))')
        report[path] = 'written'
    except OSError as exc:
        report[path] = exc.strerror
print(report)
"""

PLANTED = ["/planted-7c3", "/etc/planted-7c3", "/dev/planted-7c3", "/opt/planted-7c3", "/opt/cnnlab/planted-7c3",
           "/tmp/planted-7c3", "/dev/shm/planted-7c3", "/tmp/home/planted-7c3.py", "/tmp/.channel/planted-7c3"]

LEAVE = LIBC + f"""
import socket, time
report = {{}}
for path in {PLANTED!r}:
    try:
        open(path, 'w').write('answers of the attacker')
        report[path] = 'written'
    except OSError as exc:
        report[path] = exc.strerror
report['sysv'] = libc.shmget(0x5eed, 4096, 0o1666)                    # System V shared memory
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind('\\0cnnlab-left-7c3'); srv.listen()                           # an abstract socket
report['detached'] = libc.system(b"setsid sh -c 'exec python -c \\"import time; time.sleep(3600)\\" {MARK}' "
                                 b">/dev/null 2>&1 &")                 # a detached process (past the guard)
print(report)
"""

EXITED_LEADER = LIBC + f"""
code = ("import ctypes, threading, time\\n"
        "def live():\\n"
        "    ctypes.CDLL(None).prctl(15, b'{MARK}', 0, 0, 0)\\n"         # PR_SET_NAME: findable from outside
        "    while True:\\n"
        "        time.sleep(0.05)\\n"
        "threading.Thread(target=live).start()\\n"
        "time.sleep(0.2)\\n"
        "ctypes.CDLL(None).pthread_exit(None)\\n")
open('/tmp/leader.py', 'w').write(code)
print('started', libc.system(b'setsid python /tmp/leader.py {MARK} >/dev/null 2>&1 &'))
import time
time.sleep(1)
"""

FILL = """
import os
path = %r
written = 0
try:
    with open(path, 'wb') as fh:
        for _ in range(640):
            fh.write(b'\\0' * (1 << 20))
            fh.flush()
            written += 1 << 20
    print(path, 'wrote 640 MiB')
except OSError as exc:
    print(path, f'{exc.strerror} after {written >> 20} MiB')
if os.path.exists(path):
    os.remove(path)
"""
FILLED = ("/big", "/tmp/big", "/tmp/home/big", "/tmp/.channel/big", "/dev/shm/big")

SETUID = """
import os, shutil, stat
report = {}
for place in ('/tmp/home', '/tmp', '/dev/shm', '/tmp/.channel'):
    dest = os.path.join(place, 'true-7c3')
    shutil.copy('/usr/bin/true', dest)
    os.chmod(dest, 0o6755)
    report[place] = oct(os.stat(dest).st_mode & 0o7777)
print(report)
"""

HUGE_OUTPUTS = ["print('y' * 99_000)" for _ in range(130)]

SWAP_CHANNEL = LIBC + """
import socket
report = {}
names = ['k-1', 'k-2', 'k-3', 'k-4', 'k-5']
for name in names:
    path = '/tmp/.channel/' + name
    for what, act in (('unlink', lambda: os.unlink(path)), ('rename', lambda: os.rename(path, path + '.old')),
                      ('chmod', lambda: os.chmod(path, 0o777))):
        try:
            act()
            report[f'{name} {what}'] = 'done'
        except OSError as exc:
            report[f'{name} {what}'] = exc.strerror
    try:
        os.symlink(HOST_SOCKET, '/tmp/.channel/new-' + name)
        os.rename('/tmp/.channel/new-' + name, path)
        report[f'{name} replaced'] = 'done'
    except OSError as exc:
        report[f'{name} replaced'] = exc.strerror
print(report)
"""

PRINT_FLOOD = "def scale(x, a):\n    print('z' * 150_000)\n    return x + a"

PROBE = """
import json, os, socket, sys
import ctypes
import numpy as np
libc = ctypes.CDLL(None, use_errno=True)
def ls(p):
    try:
        return sorted(os.listdir(p))
    except OSError as exc:
        return exc.strerror
c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    c.connect('\\0cnnlab-left-7c3'); sock = 'reachable'
except OSError:
    sock = 'gone'
facts = {f: ls(f) for f in ('/', '/etc', '/dev', '/opt', '/opt/cnnlab', '/opt/cnnlab/lib', '/tmp', '/dev/shm', '.')}
facts.update({'planted': [p for p in %r if os.path.exists(p)], 'channel': os.path.exists('/tmp/.channel/big'),
              'sysv': libc.shmget(0x5eed, 0, 0), 'sock': sock, 'spy': os.path.exists('/tmp/spy'),
              'others': sorted(int(p) for p in os.listdir('/proc') if p.isdigit() and int(p) not in (1, os.getpid())),
              'modules': sorted(m for m in sys.modules if 'evil' in m or 'spy' in m),
              'startup': ls(os.path.expanduser('~/.ipython/profile_default/startup'))})
print('FACTS', json.dumps(facts))
print('DRAW', float(np.random.rand()))
""" % (PLANTED,)

ATTACKS = {   # kind -> (cells appended after the honest answers, score its honest work deserves)
    "write_lib": ([WRITE_LIB], 6),
    "leave_files": ([LEAVE], 6),
    "exited_leader": ([EXITED_LEADER], 6),
    "fill_disk": ([FILL % (path,) for path in FILLED], 6),
    "setuid_copy": ([SETUID], 6),
    "huge_outputs": (HUGE_OUTPUTS, 6),
    "swap_channel": ([SWAP_CHANNEL], 6),
    "print_flood": ([], 3),
}


def _honest(release_nb, scale=SCALE_OK):
    nb = copy.deepcopy(release_nb)
    nb.cells[_index(nb, "ex_scale")].source = scale
    nb.cells[_index(nb, "ex_corr1d")].source = CORR_OK
    return nb


def build(release_nb, host_socket: str) -> dict[str, tuple]:
    """student -> (notebook, expected score); sorted names: first, then attacker, classmate, ..."""
    kinds: dict[str, tuple] = {}
    mate = _honest(release_nb)
    mate.cells.append(_code(PROBE))
    kinds["00_first"] = (mate, 6)
    for i, (kind, (cells, score)) in enumerate(ATTACKS.items(), start=1):
        nb = _honest(release_nb, PRINT_FLOOD if kind == "print_flood" else SCALE_OK)
        for src in cells:
            nb.cells.append(_code(src.replace("HOST_SOCKET", repr(host_socket))))
        kinds[f"{i:02d}a_{kind}"] = (nb, score)
        kinds[f"{i:02d}b_mate"] = (copy.deepcopy(mate), 6)
    return kinds


def _left_running() -> list[str]:
    """Processes (or threads) an attacker left: they carry MARK in their command line or name."""
    found = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            names = [t.read_text().strip() for t in proc_dir.glob("task/*/comm")]
        except OSError:
            continue
        if MARK in cmd or MARK in names:
            found.append(f"{proc_dir.name}: {cmd[:100]} {names}")
    return found


def _sizes(*folders: Path) -> int:
    total = 0
    for folder in folders:
        for p in folder.rglob("*"):
            with_stat = p.lstat()
            if stat.S_ISREG(with_stat.st_mode):
                total += with_stat.st_size
    return total


def _host_findings(*folders: Path) -> list[str]:
    """Set-uid or set-gid files, and copies of /usr/bin/true, in the host folders the grader used."""
    true = Path("/usr/bin/true").read_bytes()
    digest = hashlib.sha256(true).hexdigest()
    out = []
    for folder in folders:
        for p in folder.rglob("*"):
            st = p.lstat()
            if not stat.S_ISREG(st.st_mode):
                continue
            if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                out.append(f"set-uid/gid: {p}")
            if st.st_size == len(true) and hashlib.sha256(p.read_bytes()).hexdigest() == digest:
                out.append(f"a copy of /usr/bin/true: {p}")
    return out


def _outputs(course, student) -> str:
    nb = nbformat.read(course.autograded / student / A / f"{A}.ipynb", as_version=4)
    return "".join(str(o.get("text", "")) + str(o.get("data", "")) + str(o.get("evalue", ""))
                   for c in nb.cells for o in c.get("outputs", []))


@pytest.fixture(scope="module", params=["machine", "rlimit"])
def graded(request, tmp_path_factory):
    old_env = {k: os.environ.get(k) for k in (sandbox.PIDS_ENV, "TMPDIR")}
    if request.param == "rlimit":
        os.environ[sandbox.PIDS_ENV] = "rlimit"
    else:
        os.environ.pop(sandbox.PIDS_ENV, None)
    root = tmp_path_factory.mktemp(f"isolation-{request.param}")
    private_tmp = Path(tempfile.mkdtemp(prefix="iso-", dir="/tmp"))   # short: Unix socket paths are limited
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    host_socket = str(private_tmp / "host.sock")
    listener.bind(host_socket)
    listener.listen(8)
    listener.setblocking(False)
    os.environ["TMPDIR"] = str(private_tmp / "tmp")
    (private_tmp / "tmp").mkdir()
    tempfile.tempdir = None
    try:
        course = Course(solutions=FIXTURES, notebooks=root / "notebooks", workdir=root / "work", limits=LIMITS)
        release([A], course=course)
        rel = nbformat.read(course.notebooks / A / f"{A}.ipynb", as_version=4)
        kinds = build(rel, host_socket)
        write_class(kinds, root / "class")
        collect_folder(course, root / "class")
        before = _protected_digest(course)
        sys.path.insert(0, str(FIXTURES.parent))
        import records

        verifier.set_exercise_source(records.exercises)
        cgroups = set(sandbox.CGROUP_PIDS.glob("cnnlab-*")) if sandbox.CGROUP_PIDS.is_dir() else set()
        t0 = time.monotonic()
        results = engine.autograde(course, jobs=1, progress=False, echo=lambda *_: None)
        seconds = time.monotonic() - t0
        left_folders = [p.name for p in (private_tmp / "tmp").iterdir() if p.name.startswith("cnnlab-")]
        new_cgroups = (set(sandbox.CGROUP_PIDS.glob("cnnlab-*")) if sandbox.CGROUP_PIDS.is_dir() else set()) - cgroups
        left_cgroups = [c.name for c in new_cgroups if not Path(f"/proc/{c.name.split('-')[1]}").exists()]
        try:
            conn, _ = listener.accept()
            conn.close()
            reached = True
        except BlockingIOError:
            reached = False
        yield {"course": course, "kinds": kinds, "results": {r.student: r for r in results}, "before": before,
               "seconds": seconds, "left": _left_running(), "reached": reached, "tmp": private_tmp / "tmp",
               "left_folders": left_folders, "left_cgroups": left_cgroups,
               "sb": sandbox.probe(), "root": root}
    finally:
        verifier.set_exercise_source(None)
        listener.close()
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        tempfile.tempdir = None
        shutil.rmtree(private_tmp, ignore_errors=True)


def test_every_submission_gets_exactly_its_honest_grade(graded):
    r = graded["results"]
    assert sorted(r) == sorted(graded["kinds"])
    wrong = {s: (r[s].score, graded["kinds"][s][1], r[s].status, r[s].problems) for s in r
             if (r[s].score, r[s].status) != (graded["kinds"][s][1], "graded")}
    assert wrong == {}, wrong


def test_classmates_see_exactly_what_the_first_one_saw(graded):
    course = graded["course"]
    facts, draws = {}, {}
    for s in graded["kinds"]:
        if s == "00_first" or s.endswith("_mate"):
            text = _outputs(course, s)
            facts[s] = json.loads(text.split("FACTS ", 1)[1].split("\n", 1)[0])
            draws[s] = text.split("DRAW ", 1)[1].split("\n", 1)[0]
    first = facts.pop("00_first")
    assert first["planted"] == [] and first["sysv"] == -1 and first["sock"] == "gone" and first["others"] == []
    assert "00-spy.py" not in first["startup"] and first["modules"] == [] and first["spy"] is False
    assert {s: f for s, f in facts.items() if f != first} == {}, first
    assert len(set(draws.values())) == len(draws), "each kernel draws its own NumPy seed, as a fresh process does"


def test_the_library_and_the_kernel_config_cannot_be_written(graded):
    report = _outputs(graded["course"], "01a_write_lib")
    for path in ("/opt/cnnlab/lib/cnnlab_kernel/__init__.py", "/opt/cnnlab/lib/cnnlab_sandbox/guard.py",
                 "/opt/cnnlab/lib/sitecustomize.py", "/opt/cnnlab/lib/cnnlab/__init__.py",
                 "/etc/ipython/ipython_kernel_config.py"):
        assert f"'{path}': 'Read-only file system'" in report, report
    assert "00-spy.py': 'written'" in report        # its own home: gone with its sandbox (see the classmates)


def test_files_left_in_the_root_fail_and_the_rest_dies_with_the_sandbox(graded):
    report = _outputs(graded["course"], "02a_leave_files")
    for path in ("/planted-7c3", "/etc/planted-7c3", "/dev/planted-7c3", "/opt/planted-7c3"):
        assert f"'{path}': 'Read-only file system'" in report, report
    for path in ("/tmp/planted-7c3", "/dev/shm/planted-7c3", "/tmp/home/planted-7c3.py", "/tmp/.channel/planted-7c3"):
        assert f"'{path}': 'written'" in report, report
    assert not any(os.path.exists(p) for p in ("/planted-7c3", "/etc/planted-7c3", "/opt/planted-7c3"))


def test_nothing_is_left_running(graded):
    assert "started 0" in _outputs(graded["course"], "03a_exited_leader")
    assert graded["left"] == []


def test_no_channel_folder_or_cgroup_is_left(graded):
    assert graded["left_folders"] == [] and graded["left_cgroups"] == []


def test_filling_the_disk_is_a_clear_error_and_stays_in_the_sandbox(graded):
    report = _outputs(graded["course"], "04a_fill_disk")
    assert "/big Read-only file system after 0 MiB" in report, report
    for path in FILLED[1:]:
        assert f"{path} No space left on device after 5" in report, report     # after 5xx MiB
    assert _sizes(graded["tmp"], graded["course"].workdir) < 50 << 20


def test_no_set_uid_file_and_nothing_of_the_kernel_on_the_host(graded):
    report = _outputs(graded["course"], "05a_setuid_copy")
    assert "0o6755" in report                         # it made them, in its own tmpfs (mounted nosuid)
    assert _host_findings(graded["tmp"], graded["course"].workdir, graded["root"]) == []


def test_the_graded_notebook_is_bounded(graded):
    course = graded["course"]
    size = (course.autograded / "06a_huge_outputs" / A / f"{A}.ipynb").stat().st_size
    assert size < 3_000_000, size                     # 130 cells of 99 kB: 12.9 MB without the budget
    assert "the notebook's outputs reached their limit" in _outputs(course, "06a_huge_outputs")


def test_a_kernel_cannot_swap_its_sockets(graded):
    report = _outputs(graded["course"], "07a_swap_channel")
    if not graded["sb"].as_root:
        pytest.skip("the tool is not root: the channel folder is the kernel's own (README: what it does not do)")
    for name in ("k-1", "k-2", "k-3", "k-4", "k-5"):
        for what in ("unlink", "rename", "chmod", "replaced"):
            assert f"'{name} {what}': 'Operation not permitted'" in report, report
    assert not graded["reached"], "the grader connected to a socket of the host"


def test_output_cut_never_drops_a_failed_test(graded):
    res = graded["results"]["08a_print_flood"]
    assert res.cells[f"{A}/test_scale_public"][0] == 0 and res.cells[f"{A}/test_scale_hidden"][0] == 0
    assert not any("tampering" in f for f in res.flags), res.flags     # nbgrader failed it itself


def test_the_course_files_are_unchanged(graded):
    assert _protected_digest(graded["course"]) == graded["before"]


def test_output_limits_keep_what_decides_a_grade():
    """nbgrader scores a test cell by its first error (0) or its first result (partial credit):
    whatever the limits, both stay (cut short); text and displays past the limit go, with a note.
    (The old limiter stopped at the limit and dropped the error after it: a failed test passed.)"""
    from nbformat import NotebookNode

    from autograder.execute import SMALL, limit_output_bytes, output_size

    big = "x" * 150_000

    def cell():
        return NotebookNode(outputs=[
            NotebookNode(output_type="stream", name="stdout", text=big),
            NotebookNode(output_type="display_data", data={"text/html": big}, metadata={}),
            NotebookNode(output_type="execute_result", data={"text/plain": "0.5", "text/html": big}, metadata={},
                         execution_count=1),
            NotebookNode(output_type="error", ename="AssertionError", evalue=big, traceback=[big] * 100)])

    c = cell()
    limit_output_bytes(c, 100_000)
    assert [o.output_type for o in c.outputs] == ["stream", "execute_result", "error"]
    assert "[output cut: more than 100000 bytes]" in c.outputs[0].text
    assert c.outputs[1].data["text/plain"] == "0.5" and c.outputs[2].ename == "AssertionError"
    assert sum(output_size(o) for o in c.outputs) < 110_000
    c = cell()      # the notebook's budget is spent: only the note, the result and the error, short
    limit_output_bytes(c, 0, "[output cut: the notebook's outputs reached their limit]")
    assert [o.output_type for o in c.outputs] == ["stream", "execute_result", "error"]
    assert c.outputs[0].text.strip() == "[output cut: the notebook's outputs reached their limit]"
    assert c.outputs[1].data == {"text/plain": "0.5"}
    assert len(c.outputs[2].evalue) <= SMALL and sum(map(len, c.outputs[2].traceback)) <= SMALL
