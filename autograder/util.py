"""Small helpers shared by the instructor tool's modules (the bottom of its layering)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import warnings
from pathlib import Path


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
