"""The grading kernel's entry point (sandbox side): limits, the channel, then ipykernel with the guard.

Inside a sandbox it runs as ``python -m cnnlab_sandbox.kernel`` (from ``/opt/cnnlab/lib``);
without one (``--unsafe-no-sandbox``) as ``python -m autograder.sandbox.inside.kernel``::

    ... [--mem-mb N] [--files DIR] [--protect P1:P2] [--locked FILE] [--figures off]
        --channel DIR -- <ipykernel arguments>

It reads the kernel's connection information (JSON, as jupyter_client writes it, with ``ip`` the
socket path prefix) from stdin and writes it to ``DIR/kernel.json``; sets RLIMIT_AS (memory,
``--mem-mb``), RLIMIT_CORE = 0 (no core files from crashes) and RLIMIT_FSIZE (no file larger
than 512 MiB); loads the :mod:`.nokill` filter (only the outside can SIGKILL it) and says
``nokill on`` (or why not) on stdout; copies the assignment's released files (``--files``) into its working folder; says
``ready`` on stdout (an error before that is on stderr, which the grader reports); points its
stdin, stdout and stderr at /dev/null; then starts ipykernel on that connection file (Unix
sockets ``<ip>-<port>`` in DIR) with the guard (:mod:`.guard`) as an extension. ``--figures
off``, ``--locked`` and ``--protect`` reach the guard through the environment.

Standard library only, until ipykernel.
"""

from __future__ import annotations

import json
import os
import sys

FSIZE = 512 * 1024 * 1024


def _set_limits(mem_mb: int) -> None:
    import resource

    if mem_mb > 0:
        limit = mem_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FSIZE, FSIZE))


def _channel(folder: str) -> str:
    """Write the connection file the grader sent on stdin into ``folder``; return its path."""
    info = json.loads(sys.stdin.buffer.read(1 << 20) or b"{}")
    if info.get("transport") == "ipc":
        info["ip"] = os.path.join(folder, "k")
    path = os.path.join(folder, "kernel.json")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    return path


def _copy_files(src: str, dest: str) -> None:
    """Copy the released files into ``dest`` (the home: its own mode and owner stay as they are)."""
    import shutil

    for name in sorted(os.listdir(src)):
        path = os.path.join(src, name)
        if os.path.islink(path):
            continue
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(dest, name), symlinks=False, dirs_exist_ok=True,
                            ignore=lambda d, names: [n for n in names if os.path.islink(os.path.join(d, n))])
        else:
            shutil.copy2(path, os.path.join(dest, name))


def _quiet() -> None:
    """stdin, stdout and stderr to /dev/null (the grader stops reading them once ``ready``)."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)


def main(argv: list[str] | None = None) -> None:
    """Parse our options, write the channel, set limits, then run ipykernel with the guard."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = argv[argv.index("--") + 1:] if "--" in argv else []
    ours = argv[:argv.index("--")] if "--" in argv else argv
    opts = dict(zip(ours[::2], ours[1::2]))
    conn = _channel(opts["--channel"])
    _set_limits(int(opts.get("--mem-mb", "0")))
    from . import nokill

    sys.stdout.write(f"nokill {nokill.install()}\n")   # only the outside can SIGKILL it now (see nokill)
    if "--files" in opts and os.path.isdir(opts["--files"]):
        _copy_files(opts["--files"], os.getcwd())
    sys.stdout.write("ready\n")     # (an error before this line reaches the grader on stderr)
    sys.stdout.flush()
    _quiet()
    if "--protect" in opts:
        os.environ["CNNLAB_GUARD_PROTECT"] = opts["--protect"]
    if "--locked" in opts:
        os.environ["CNNLAB_GUARD_LOCKED"] = opts["--locked"]
    if opts.get("--figures") == "off":
        os.environ["CNNLAB_GRADER_FIGURES"] = "off"
    guard = f"{__package__ or 'cnnlab_sandbox'}.guard"
    sys.argv = [sys.argv[0], "-f", conn, *rest, f"--IPKernelApp.extensions=['{guard}']",
                "--IPKernelApp.log_level=ERROR"]
    from ipykernel.kernelapp import launch_new_instance

    launch_new_instance()


if __name__ == "__main__":
    main()
