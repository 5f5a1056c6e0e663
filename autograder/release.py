"""Regenerate the student notebooks (notebooks/) from the nbgrader sources (solutions/)."""

from __future__ import annotations

import os
import sys

from . import config


def release(names: list[str] | None = None, workdir=None) -> None:
    """Run nbgrader's generate_assignment for each assignment, writing notebooks/<assignment>/."""
    from nbgrader.apps import NbGraderAPI

    workdir = workdir or config.DEFAULT_WORKDIR
    os.makedirs(workdir, exist_ok=True)
    api = NbGraderAPI(config=config.course_config(workdir))
    for name in names or config.assignments():
        result = api.generate_assignment(name, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader could not generate {name}:\n{result.get('error') or result.get('log')}")


if __name__ == "__main__":
    release(sys.argv[1:] or None)
