"""The grading kernel's filter (``autograder/sandbox/inside/nokill.py``): nothing that runs in the
kernel can end it in a way that reads as a kill from outside (SIGKILL, or an exit status of 128 + 9
as bubblewrap reports one), so the grader can tell a student's crash from a failure of the machine.
Each way is tried in a fresh interpreter with the filter loaded."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

INSIDE = Path(__file__).resolve().parent.parent / "autograder" / "sandbox" / "inside"
LOAD = f"import sys\nsys.path.insert(0, {str(INSIDE)!r})\nimport nokill\nassert nokill.install() == 'on'\n"

pytestmark = [pytest.mark.sandbox, pytest.mark.skipif(not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "aarch64"),
                                reason="the filter is for Linux on x86-64 and aarch64")]   # (sandbox-side code)


def _run(code: str, load: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", (LOAD if load else "") + code], capture_output=True, text=True, start_new_session=True,
                          timeout=60)


SELF_KILLS = {
    "os.kill": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
    "raise_signal": "import signal\nsignal.raise_signal(signal.SIGKILL)",
    "killpg": "import os, signal\nos.killpg(0, signal.SIGKILL)",
    "pthread_kill": "import signal, threading\nsignal.pthread_kill(threading.get_ident(), signal.SIGKILL)",
    "pidfd": "import os, signal\nsignal.pidfd_send_signal(os.pidfd_open(os.getpid()), signal.SIGKILL)",
    "a child kills its parent": ("import os, signal, time\nif os.fork() == 0:\n    try:\n"
                                 "        os.kill(os.getppid(), signal.SIGKILL)\n    finally:\n        os._exit(0)\n"
                                 "os.wait()\nprint('survived')"),
    "cpu limit": "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1, 1))\nwhile True:\n    pass",
    # the first attack's routes, which the third made reach process 1 again (after a race that clears
    # its protection): refused at the call, so they fail here, in a process that is not process 1
    "F_SETSIG": ("import fcntl, os, time\nr, w = os.pipe()\nfcntl.fcntl(r, 10, 9)\n"
                 "fcntl.fcntl(r, fcntl.F_SETOWN, os.getpid())\n"
                 "fcntl.fcntl(r, fcntl.F_SETFL, fcntl.fcntl(r, fcntl.F_GETFL) | os.O_ASYNC)\n"
                 "os.write(w, b'x')\ntime.sleep(1)"),
    "a child's exit signal": ("import ctypes, os, platform, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                              "libc.syscall.restype = ctypes.c_long\n"
                              "nr = 56 if platform.machine() == 'x86_64' else 220\n"
                              "pid = libc.syscall(nr, 9, 0, 0, 0, 0)\nif pid == 0:\n    os._exit(0)\n"
                              "assert pid > 0, ctypes.get_errno()\ntime.sleep(1)"),
    "a timer": ("import ctypes, time\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                "class Ev(ctypes.Structure):\n"
                "    _fields_ = [('v', ctypes.c_void_p), ('signo', ctypes.c_int), ('notify', ctypes.c_int),"
                " ('pad', ctypes.c_byte * 48)]\n"
                "class Spec(ctypes.Structure):\n"
                "    _fields_ = [('interval', ctypes.c_long * 2), ('value', ctypes.c_long * 2)]\n"
                "tid = ctypes.c_void_p()\n"
                "assert libc.timer_create(1, ctypes.byref(Ev(None, 9, 0)), ctypes.byref(tid)) == 0, ctypes.get_errno()\n"
                "libc.timer_settime(tid, 0, ctypes.byref(Spec((0, 0), (0, 1_000_000))), None)\ntime.sleep(1)"),
    "real-time limit": ("import ctypes, resource, signal, time\n"     # the second attack: Linux's own SIGKILL
                        "resource.setrlimit(resource.RLIMIT_RTTIME, (0, 0))\n"
                        "libc = ctypes.CDLL(None, use_errno=True)\n"
                        "class Ev(ctypes.Structure):\n"
                        "    _fields_ = [('v', ctypes.c_void_p), ('signo', ctypes.c_int), ('notify', ctypes.c_int),"
                        " ('pad', ctypes.c_byte * 48)]\n"
                        "class Spec(ctypes.Structure):\n"
                        "    _fields_ = [('interval', ctypes.c_long * 2), ('value', ctypes.c_long * 2)]\n"
                        "tid = ctypes.c_void_p()\n"
                        "libc.timer_create(3, ctypes.byref(Ev(None, int(signal.SIGWINCH), 0)), ctypes.byref(tid))\n"
                        "libc.timer_settime(tid, 0, ctypes.byref(Spec((0, 0), (0, 10_000_000))), None)\n"
                        "end = time.time() + 5\nwhile time.time() < end:\n    pass\n"),
    "ptrace kill": ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
                    "assert libc.ptrace(16, os.getppid(), 0, 0) == -1\nprint('refused')"),
}


@pytest.mark.parametrize("how", SELF_KILLS)
def test_nothing_inside_can_sigkill(how):
    out = _run(SELF_KILLS[how])
    assert out.returncode != -9, (how, out.stderr[-500:])
    if how != "ptrace kill":      # (unfiltered, as root, it would stop the test's own process)
        unfiltered = _run(SELF_KILLS[how], load=False)        # the wrong case: without the filter, it works
        assert unfiltered.returncode == -9, (how, unfiltered.returncode, unfiltered.stderr[-300:])


@pytest.mark.parametrize("status", [137, 128, 255, 393])
def test_an_exit_status_that_reads_as_a_signal_becomes_sigsys(status):
    out = _run(f"import os\nos._exit({status})")
    assert out.returncode == -31, out.returncode      # SIGSYS: the student's own crash, never "killed"
    assert _run(f"import os\nos._exit({status})", load=False).returncode == status % 256


def test_io_uring_is_refused():
    """The third attack used io_uring's deferred work to win a race against process 1's protection."""
    code = ("import ctypes, platform\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\n"
            "params = ctypes.create_string_buffer(120)\n"
            "fd = libc.syscall(425, 8, params)\nprint(fd, ctypes.get_errno())")
    assert _run(code).stdout.split() == ["-1", "1"]                        # EPERM
    fd, errno = _run(code, load=False).stdout.split()                        # the wrong case: a ring,
    assert int(fd) >= 0 or errno != "1", (fd, errno)                         # unless the host disabled them


def test_ordinary_work_goes_on():
    out = _run("import os, resource, signal, subprocess, sys, threading\n"
               "t = threading.Thread(target=print, args=('thread',)); t.start(); t.join()\n"
               "print(resource.getrlimit(resource.RLIMIT_CPU) is not None)\n"
               "resource.setrlimit(resource.RLIMIT_NOFILE, resource.getrlimit(resource.RLIMIT_NOFILE))\n"
               "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); p.terminate()\n"
               "print(p.wait())\n"
               "os.kill(os.getpid(), 0)\n"
               "signal.signal(signal.SIGUSR1, lambda *a: print('usr1')); os.kill(os.getpid(), signal.SIGUSR1)\n"
               "os._exit(3)")
    assert out.returncode == 3, out.stderr[-500:]
    assert out.stdout.split() == ["thread", "True", "-15", "usr1"], out.stdout


INT80_EXIT_137 = """\
import ctypes, mmap
code = bytes([0x53, 0xb8, 1, 0, 0, 0, 0xbb, 137, 0, 0, 0, 0xcd, 0x80, 0x5b, 0xc3])   # exit(137) by int 0x80
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(code)
print('returned', ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))())
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the 32-bit system-call ABI of x86-64")
def test_the_32_bit_abi_is_refused():
    """The attack: the filter judged only x86-64 numbers and let the i386 ABI (int 0x80) through,
    where exit(137) and kill(self, SIGKILL) have other numbers."""
    out = _run(INT80_EXIT_137)
    assert out.returncode == 0 and out.stdout.strip() == "returned -1", (out.returncode, out.stdout, out.stderr[-300:])
    assert _run(INT80_EXIT_137, load=False).returncode == 137      # the wrong case: it ends as if SIGKILLed


def test_how_the_grader_reads_a_kernels_end(tmp_path):
    """SandboxProvisioner.ending: SIGKILL is "outside" only where the sandbox has a memory cgroup
    that counted no OOM kill, and the filter is on; anything else it reads as the submission's doing,
    or cannot tell (the second attack: with no memory cgroup, memory held outside the kernel's address
    space let a submission push the machine's OOM killer onto its kernel)."""
    from types import SimpleNamespace

    from autograder.sandbox.provisioner import SandboxProvisioner

    memcg = tmp_path / "memcg"
    memcg.mkdir()

    def ending(code, *, cgroup=True, oom=0, nokill="on", box=True):
        (memcg / "memory.oom_control").write_text(f"oom_kill_disable 0\nunder_oom 0\noom_kill {oom}\n")
        prov = SandboxProvisioner.__new__(SandboxProvisioner)
        prov.__dict__.update(process=SimpleNamespace(poll=lambda: code), nokill=nokill,
                             box=SimpleNamespace(memcg=memcg if cgroup else None) if box else None)
        prov._trait_values = {"memory_mb": 2048}
        return prov.ending(wait=0)

    assert ending(137) == ("outside", "signal SIGKILL")
    assert ending(-9) == ("outside", "signal SIGKILL")
    assert ending(137, oom=1) == ("itself", "signal SIGKILL: its memory limit (2048 MiB)")
    assert ending(137, cgroup=False)[0] == "unknown"
    assert ending(137, nokill="the seccomp filter was refused (errno 22)")[0] == "unknown"
    assert ending(137, box=False)[0] == "unknown"
    assert ending(139) == ("itself", "signal SIGSEGV")
    assert ending(159) == ("itself", "signal SIGSYS")
    assert ending(3) == ("itself", "exit code 3")
    import resource                    # the third attack: a hard CPU limit the tool was started with
    real = resource.getrlimit
    try:
        resource.getrlimit = lambda r: (2, 3) if r == resource.RLIMIT_CPU else real(r)
        assert ending(137) == ("unknown", "signal SIGKILL: killed from outside, or by its RLIMIT_CPU (set for the tool)")
    finally:
        resource.getrlimit = real
