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
    """Prepare this process for running nbgrader in it: the environment's ``bin/`` on PATH
    (nbgrader runs ``alembic`` from there), :func:`alembic_head_in_process` and
    :func:`cell_metadata_schema_checked_once`."""
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    alembic_head_in_process()
    cell_metadata_schema_checked_once()


def cell_metadata_schema_checked_once() -> None:
    """Validate nbgrader's cell metadata with one validator per schema.

    nbgrader 0.9.6 checks every graded cell's metadata with ``jsonschema.validate``, which first
    validates the *schema itself* against its meta-schema, on every call: about 0.4 s of CPU per
    graded notebook in CheckCellMetadata, for a schema that never changes. The same check,
    with the same errors (jsonschema's best match, raised), runs here with the schema checked
    once per process.
    """
    try:
        import jsonschema
        from nbgrader.nbgraderformat import common
    except ImportError:
        return
    if getattr(common.jsonschema, "cnnlab", False):
        return
    validators: dict[int, tuple] = {}

    class _Once:
        cnnlab = True

        def __getattr__(self, name):
            return getattr(jsonschema, name)

        @staticmethod
        def validate(instance, schema, *args, **kwargs):
            if args or kwargs:
                return jsonschema.validate(instance, schema, *args, **kwargs)
            if id(schema) not in validators:
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)
                validators[id(schema)] = (schema, cls(schema))   # (the schema kept alive: its id stays unique)
            error = jsonschema.exceptions.best_match(validators[id(schema)][1].iter_errors(instance))
            if error is not None:
                raise error

    common.jsonschema = _Once()


_ALEMBIC_HEAD: list[str] = []


def alembic_head_in_process() -> None:
    """Make nbgrader find its database schema's version without a subprocess.

    Every new gradebook (the grader makes one per run, as a template) makes nbgrader 0.9.6 run
    ``alembic heads`` in a subprocess to learn the schema version: 2.3 s of a fresh Python and
    alembic each time, about half of a small class's grading run. The same answer comes from
    alembic's own API in this process, once. Where that fails, nbgrader's own way is left alone.
    """
    try:
        import nbgrader.api as api
        from alembic.config import Config
        from alembic.script import ScriptDirectory
        from nbgrader.dbutil import _temp_alembic_ini
    except ImportError:
        return
    if getattr(api.get_alembic_version, "cnnlab", False):
        return
    original = api.get_alembic_version

    def get_alembic_version() -> str:
        if not _ALEMBIC_HEAD:
            try:
                with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
                    head = ScriptDirectory.from_config(Config(ini)).get_current_head()
            except Exception:  # noqa: BLE001 - fall back to nbgrader's subprocess
                head = None
            _ALEMBIC_HEAD.append(head or original())
        return _ALEMBIC_HEAD[0]

    get_alembic_version.cnnlab = True
    api.get_alembic_version = get_alembic_version
