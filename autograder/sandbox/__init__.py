"""Every process that runs a student's code runs in a fresh bubblewrap sandbox: this package.

Which code a student's process can touch, at a glance:

- ``inside/``: the sandbox side. Bound read-only into every sandbox at
  ``/opt/cnnlab/lib/cnnlab_sandbox``; it runs with the student's code and must assume that code
  attacks it. ``inside/kernel.py`` is the grading kernel's entry point (limits, its channel,
  ipykernel), ``inside/guard.py`` the in-kernel guard (an IPython extension: figures not drawn,
  locked cells restored, an audit hook; help for honest mistakes, not a defence). The verifier's
  worker, ``autograder/verify_worker.py``, is bound next to them as ``cnnlab_verify_worker.py``.
- ``host.py``: the host side, never inside a sandbox: the bubblewrap command line (read-only root,
  one size-limited writable tmpfs, no network, PID namespace, a fresh unprivileged uid when the
  tool is root), the process limit (pids cgroup or RLIMIT_NPROC), the memory limit of a whole
  sandbox (a memory cgroup, where one can be made), the kill of every process of a sandbox, and
  :func:`probe`.
- ``provisioner.py``: the grading kernel for jupyter_client: a kernel provisioner (entry point
  ``cnnlab-sandbox``) that starts each kernel in a fresh sandbox and reaches its sockets from the
  host. :class:`autograder.execute.GuardedExecute`, nbgrader's Execute step, uses it through a
  stock ``AsyncKernelManager``.

The host-side API used by the rest of the tool (imported from here): :func:`probe`,
:class:`Sandbox`, :class:`SandboxUnavailable`, :func:`run_python` and :class:`Sandboxed` (a
sandbox-side Python file run in a fresh sandbox: the verifier's worker), :func:`remove_stale`,
and the paths inside (:data:`LIB`, :data:`VERIFY_WORKER`, :data:`HOME`, ...).

What it does not do: limit CPU time (the grader's timeouts do), hide the course package's own
source (the checks run inside; the points are decided outside, see :mod:`autograder.verifier`),
limit a sandbox's memory as a whole where no memory cgroup can be made (then each process has its
own RLIMIT_AS: ``Sandbox.memory`` says which), or protect against exploits of the Linux kernel.
"""

from .host import (CGROUP_MEMORY, CGROUP_PIDS, CHANNEL, FILES, HOME, INSIDE_UID, LIB, LOCKED, MAX_PROCESSES,
                   MEMORY_ENV, PIDS_ENV, SHM, TMPFS_MB, VERIFY_WORKER, Sandbox, Sandboxed, SandboxUnavailable,
                   exit_text, find_bwrap, lift_kill_limits, probe, remove_stale, run_python)

__all__ = ["CGROUP_MEMORY", "CGROUP_PIDS", "CHANNEL", "FILES", "HOME", "INSIDE_UID", "LIB", "LOCKED", "MAX_PROCESSES",
           "MEMORY_ENV", "PIDS_ENV", "SHM", "TMPFS_MB", "VERIFY_WORKER", "Sandbox", "Sandboxed", "SandboxUnavailable", "exit_text", "find_bwrap", "lift_kill_limits", "probe",
           "remove_stale", "run_python"]
