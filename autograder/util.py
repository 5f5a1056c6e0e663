"""Small helpers shared by the instructor tool's modules (the bottom of its layering)."""

from __future__ import annotations

import contextlib
import io
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
def quiet():
    """Silence nbgrader's logging and console output; yields the captured text."""
    buf = io.StringIO()
    old = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield buf
    finally:
        logging.disable(old)


def env_path() -> None:
    """Put the environment's ``bin/`` on PATH (nbgrader runs ``alembic`` from there)."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
