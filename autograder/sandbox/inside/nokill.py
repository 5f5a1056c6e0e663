"""A grading kernel's way of dying that only the outside can choose (sandbox side, standard library only).

The grader must tell a kernel that the submission's own code ended (a segfault, ``os._exit``, its
memory limit: the student's) from one killed from outside (an administrator's ``kill -9``, the
host's OOM killer: a failure of the tool, graded again and never a 0).

The kernel runs as process 1 of its own PID namespace (bubblewrap's ``--as-pid-1``, see
:class:`autograder.sandbox.host.Sandboxed`): Linux delivers a signal sent from inside the namespace
to its process 1 only where that process handles it, and SIGKILL cannot be handled. So no process
of the sandbox can SIGKILL the kernel, by whatever route Linux sends signals (``kill``, a child's
exit signal, ``F_SETSIG``, a POSIX timer, a message queue): only the outside can, and Linux itself
(a real fault, the memory cgroup's OOM killer, a CPU-time limit). :func:`install` then loads a
seccomp filter, inherited by every process the kernel starts, for what remains:

- ending with an exit status of 128 or more (``exit``/``exit_group``; the status is its low
  byte) kills the process with ``SIGSYS`` instead: bubblewrap reports a command killed by signal
  N as exit status 128 + N, so ``os._exit(137)`` cannot pass for a SIGKILL;
- setting a CPU-time or real-time limit (``setrlimit``/``prlimit64`` of ``RLIMIT_CPU`` or
  ``RLIMIT_RTTIME``: Linux itself SIGKILLs a process past either hard limit, which process 1 cannot
  ignore; a limit of 0 with a CPU-time timer did it at once) and ``ptrace`` (``PTRACE_KILL``) fail
  with ``EPERM``;
- another system-call ABI (``int 0x80`` and x32 on x86-64) is refused (``EPERM``): its numbers
  would pass the rest of the filter;
- ``kill`` and the other calls that send a signal fail with ``EPERM`` for SIGKILL (process 1
  would ignore it; a clear error is kinder to the student than nothing), and so do the other ways to
  have Linux send SIGKILL later, which a race can make reach process 1 (the third attack cleared its
  protection with a fault whose signal a second thread caught): ``fcntl(F_SETSIG, SIGKILL)``, a
  ``clone`` whose child's exit signal is SIGKILL (``clone3``, whose flags the filter cannot read,
  says ENOSYS and the C library falls back to ``clone``), ``ioctl(TIOCSIG)``, ``timer_create`` and
  ``mq_notify`` (their signal is in memory the filter cannot read), and io_uring (the attack's delay).

What is left: a submission that finds another way to have Linux SIGKILL its kernel gets "not
graded" (an error the instructor sees, never points), not its own 0.

So a kernel that ends by ``SIGKILL`` was killed from outside its sandbox, or by its memory
cgroup's OOM killer (which the grader reads in the cgroup). Returns "on", or why the filter
could not be installed (the grader then cannot tell, and says so).
"""

from __future__ import annotations

import platform
import sys

SIGKILL = 9
RLIMIT_CPU, RLIMIT_RTTIME = 0, 15    # the two limits past whose hard value Linux sends SIGKILL
F_SETSIG = 10                        # fcntl: the signal sent when a file is ready (SIGIO by default)
TIOCSIG = 0x40045436                 # ioctl: send a signal to a terminal's foreground group
CSIGNAL = 0xFF                       # clone: the signal its parent gets when the child ends
ENOSYS = 38
_ARCH = {   # machine -> AUDIT_ARCH_* and the system calls the filter judges
    "x86_64": dict(arch=0xC000003E, signalling={62: 1, 200: 1, 234: 2, 129: 1, 297: 2, 424: 1}, exits=(60, 231),
                   limits={160: 0, 302: 1}, refused=(101, 222, 244, 425, 426, 427), fcntl=72, ioctl=16,
                   clone=56, clone3=435),
    "aarch64": dict(arch=0xC00000B7, signalling={129: 1, 130: 1, 131: 2, 138: 1, 240: 2, 424: 1}, exits=(93, 94),
                    limits={164: 0, 261: 1}, refused=(117, 107, 184, 425, 426, 427), fcntl=25, ioctl=29,
                    clone=220, clone3=435),
}
# refused: ptrace (PTRACE_KILL), timer_create and mq_notify (a signal of any number, SIGKILL
# included, named in memory the filter cannot read), io_uring_setup/enter/register (its deferred
# work lets a fault and a new handler race: the third attack cleared process 1's protection with it)


def program(machine: str) -> list[tuple[int, int, int, int]]:
    """The classic BPF program (code, jt, jf, k) of the filter for ``machine``."""
    m = _ARCH[machine]
    ld, jeq, jge, ret, alu_and = 0x20, 0x15, 0x35, 0x06, 0x54     # BPF_LD|W|ABS, JEQ|K, JGE|K, RET|K, ALU|AND|K
    allow, eperm, kill = 0x7FFF0000, 0x00050000 | 1, 0x80000000    # RET_ALLOW, RET_ERRNO|EPERM, RET_KILL_PROCESS
    enosys = 0x00050000 | ENOSYS

    def arg(i: int) -> int:             # the low 32 bits of argument i
        return 16 + 8 * i

    prog = [(ld, 0, 0, 4), (jeq, 1, 0, m["arch"]), (ret, 0, 0, eperm),  # another ABI (int 0x80 on x86-64): refused
            (ld, 0, 0, 0), (jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]   # (and x32's numbers)
    for nr in m["exits"]:      # exit(status), exit_group(status): a status >= 128 -> SIGSYS
        prog += [(jeq, 0, 5, nr), (ld, 0, 0, arg(0)), (alu_and, 0, 0, 0xFF), (jge, 0, 1, 128), (ret, 0, 0, kill),
                 (ret, 0, 0, allow)]
    judged = [(nr, i, SIGKILL) for nr, i in m["signalling"].items()]      # SIGKILL -> EPERM
    judged += [(m["fcntl"], 1, F_SETSIG)]                                  # (then its signal, below)
    for nr, i, value in judged:
        if nr == m["fcntl"]:             # fcntl(fd, F_SETSIG, SIGKILL) -> EPERM
            prog += [(jeq, 0, 6, nr), (ld, 0, 0, arg(1)), (jeq, 0, 3, F_SETSIG), (ld, 0, 0, arg(2)),
                     (jeq, 0, 1, SIGKILL), (ret, 0, 0, eperm), (ret, 0, 0, allow)]
            continue
        prog += [(jeq, 0, 4, nr), (ld, 0, 0, arg(i)), (jeq, 0, 1, value), (ret, 0, 0, eperm),
                 (ret, 0, 0, allow)]
    prog += [(jeq, 0, 4, m["ioctl"]), (ld, 0, 0, arg(1)), (jeq, 0, 1, TIOCSIG), (ret, 0, 0, eperm),
             (ret, 0, 0, allow)]        # ioctl(tty, TIOCSIG, n) -> EPERM
    prog += [(jeq, 0, 5, m["clone"]), (ld, 0, 0, arg(0)), (alu_and, 0, 0, CSIGNAL), (jeq, 0, 1, SIGKILL),
             (ret, 0, 0, eperm), (ret, 0, 0, allow)]      # clone whose child ends with SIGKILL to its parent -> EPERM
    prog += [(jeq, 0, 1, m["clone3"]), (ret, 0, 0, enosys)]   # clone3 (flags in memory): ENOSYS, the C library uses clone
    for nr, i in m["limits"].items():    # setting RLIMIT_CPU or RLIMIT_RTTIME -> EPERM (reading them: allowed)
        new_limit = i + 1                # prlimit64(pid, resource, new, old); setrlimit(resource, new)
        prog += [(jeq, 0, 9, nr), (ld, 0, 0, arg(i)), (jeq, 1, 0, RLIMIT_CPU), (jeq, 0, 5, RLIMIT_RTTIME),
                 (ld, 0, 0, arg(new_limit)), (jeq, 0, 2, 0), (ld, 0, 0, arg(new_limit) + 4), (jeq, 1, 0, 0),
                 (ret, 0, 0, eperm), (ret, 0, 0, allow)]
    for nr in m["refused"]:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    prog.append((ret, 0, 0, allow))
    return prog


def install() -> str:
    """Load the filter into this process (and every process it starts); "on", or why not."""
    import ctypes

    machine = platform.machine()
    if not sys.platform.startswith("linux") or machine not in _ARCH:
        return f"no filter for {sys.platform} {machine}"
    prog = program(machine)

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(prog))(*[Filter(*f) for f in prog])
    fprog = Prog(len(prog), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(38, 1, None, 0, 0) != 0:                  # PR_SET_NO_NEW_PRIVS
        return f"PR_SET_NO_NEW_PRIVS failed (errno {ctypes.get_errno()})"
    if libc.prctl(22, 2, ctypes.cast(ctypes.pointer(fprog), ctypes.c_void_p), 0, 0) != 0:   # SECCOMP_MODE_FILTER
        return f"the seccomp filter was refused (errno {ctypes.get_errno()})"
    return "on"
