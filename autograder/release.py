"""Regenerate the student notebooks (notebooks/) from the nbgrader sources (solutions/), leak-checked.

``python -m autograder.release [ASSIGNMENT ...]`` (or ``python -m autograder release``).

After nbgrader's ``generate_assignment`` the release folder is scanned: no solution or hidden-test
delimiter, no line of a solution or hidden-test region, and no output may appear in it; otherwise
:class:`LeakError` is raised (and the CLI exits non-zero).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from . import config, demos
from .config import Course
from .preprocessors import LEAKS
from .leaks import DELIMITERS, LeakError, notebook_leaks, secret_lines, text_leaks  # noqa: F401 (re-exported)
from .util import env_path, quiet  # noqa: F401  (quiet: importable from here, as before)


# moved to autograder.util (kept importable here under their old names)
_env_path = env_path


def find_leaks(source_dir: Path, release_dir: Path) -> list[str]:
    """Return human-readable leak descriptions for one assignment (empty when clean)."""
    secrets = {"solution": set(), "hidden": set()}
    for src in sorted(Path(source_dir).glob("*.ipynb")):
        for k, v in secret_lines(nbformat.read(src, as_version=4)).items():
            secrets[k] |= v
    problems: list[str] = []
    for path in sorted(Path(release_dir).rglob("*")):
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        rel = path.relative_to(release_dir)
        if path.suffix == ".ipynb":
            found = notebook_leaks(nbformat.read(path, as_version=4), secrets)
        else:
            found = text_leaks(text, secrets)
        problems += [f"{rel}: {p}" for p in found]
    return problems


def generate(course: Course, names: list[str] | None = None, release_dir: Path | None = None,
             db_url: str | None = None) -> list[str]:
    """Run nbgrader's generate_assignment for ``names`` (default: all), writing ``release_dir``
    (default: the course's notebooks/), registering them in the gradebook (``db_url`` or the
    course's). Return the assignments generated."""
    from nbgrader.apps import NbGraderAPI

    env_path()
    names = list(names or course.assignments())
    for name in names:
        for path in course.source_notebooks(name):  # raises ValueError for an unknown assignment
            found = demos.problems(nbformat.read(path, as_version=4))
            if found:
                raise ValueError(f"{path.name}: a cell that is run while grading needs a demonstration cell "
                                 "that is not:\n  " + "\n  ".join(found))
    os.makedirs(course.workdir, exist_ok=True)
    cfg = config.course_config(course.workdir, db_url or course.db_url, solutions=course.solutions,
                               notebooks=course.notebooks, release_directory=release_dir)
    with quiet() as log:
        api = NbGraderAPI(config=cfg)
        for name in names:
            LEAKS.clear()
            result = api.generate_assignment(name, force=True, create=True)
            if not result["success"]:
                text = f"{result.get('error') or ''}\n{result.get('log') or ''}\n{log.getvalue()}"
                if LEAKS:  # autograder.preprocessors.LeakCheck refused the student version
                    raise LeakError(f"{name}: the student version leaks solution or hidden-test "
                                    "material:\n  " + "\n  ".join(LEAKS))
                raise RuntimeError(f"nbgrader could not generate {name}:\n{text.strip()}")
    return names


def release(names: list[str] | None = None, course: Course | None = None) -> list[str]:
    """Regenerate ``notebooks/<assignment>/`` for each assignment and check it for leaks.

    Raises LeakError listing every leak found.
    """
    course = course or Course()
    names = generate(course, names)
    problems = []
    for name in names:
        problems += [f"{name}/{p}" for p in find_leaks(course.solutions / name, course.notebooks / name)]
    if problems:
        raise LeakError("the student notebooks leak solution or hidden-test material:\n  " + "\n  ".join(problems))
    return names


def generate_to_temp(course: Course, name: str) -> Path:
    """Generate the student version of ``name`` into a fresh temporary folder (with its own
    throwaway gradebook) and return the assignment's folder there; the course is untouched."""
    tmp = Path(tempfile.mkdtemp(prefix="cnnlab-release-"))
    sub = course.with_(workdir=tmp / "work", notebooks=tmp / "release", db_url=None)
    generate(sub, [name], release_dir=tmp / "release", db_url=f"sqlite:///{tmp / 'gb.db'}")
    return tmp / "release" / name


def remove_temp(folder: Path) -> None:
    """Delete a folder made by :func:`generate_to_temp`."""
    shutil.rmtree(Path(folder).parent.parent, ignore_errors=True)


if __name__ == "__main__":
    # ``python -m autograder.release [A ...]``: the same as ``python -m autograder release``
    # (an entry point, not an import of the CLI by this module)
    from autograder.cli import main as cli_main

    sys.exit(cli_main(["release", *sys.argv[1:]]))
