"""A student's workspace: the folder their JupyterLab shows, where Fetch writes and Submit reads.

It is never the release folder (``notebooks/``, rewritten by ``python -m autograder release`` and
formgrader's Generate). ``scripts/lab.sh student`` uses ``student/`` of the clone (git-ignored) or
``$CNNLAB_STUDENT_DIR``; the hub gives each student ``~/cnnlab``.

For a learner without an instructor, :func:`seed` copies the assignments that nobody released
through the exchange from the release folder, once: an assignment released in the exchange is
fetched from the Assignment List instead, and nothing already in the workspace is ever replaced.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from .. import config


def released_in_exchange(exchange_root: Path, course_id: str = config.COURSE_ID) -> set[str]:
    """Assignments released through nbgrader's exchange (``<root>/<course>/outbound/<name>/``)."""
    outbound = Path(exchange_root) / course_id / "outbound"
    try:
        return {p.name for p in outbound.iterdir() if p.is_dir()}
    except OSError:
        return set()


def seed(workspace: Path, notebooks: Path, exchange_root: Path) -> list[str]:
    """Copy into ``workspace`` each assignment of ``notebooks`` that it lacks and that the exchange
    does not offer; return their names. Existing files are never touched."""
    workspace, notebooks = Path(workspace).resolve(), Path(notebooks).resolve()
    if workspace == notebooks or workspace.is_relative_to(notebooks):
        raise ValueError(f"the student workspace {workspace} lies in the release folder {notebooks}")
    workspace.mkdir(parents=True, exist_ok=True)
    offered = released_in_exchange(exchange_root)
    copied = []
    if not notebooks.is_dir():
        return copied
    for src in sorted(p for p in notebooks.iterdir() if p.is_dir() and not p.name.startswith(".")):
        dest = workspace / src.name
        if src.name in offered or dest.exists() or not any(src.glob("*.ipynb")):
            continue
        shutil.copytree(src, dest, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        copied.append(src.name)
    return copied


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m autograder.hub.workspace", description=__doc__.split("\n\n")[0])
    p.add_argument("workspace", type=Path)
    p.add_argument("--notebooks", type=Path, default=config.NOTEBOOKS)
    p.add_argument("--exchange", type=Path, default=None,
                   help="nbgrader exchange root (default: $CNNLAB_EXCHANGE or <work folder>/exchange)")
    args = p.parse_args(argv)
    exchange = args.exchange or Path(config.student_config().Exchange.root)
    try:
        copied = seed(args.workspace, args.notebooks, exchange)
    except ValueError as exc:
        print(f"cnnlab: {exc}; choose another CNNLAB_STUDENT_DIR", file=sys.stderr)
        return 2
    if copied:
        print(f"cnnlab: copied {', '.join(copied)} from {args.notebooks} into your workspace {args.workspace} "
              "(the assignments your instructor releases appear in Nbgrader > Assignment List)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
