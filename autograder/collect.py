"""Collect submissions into ``<workdir>/submitted/<student>/<assignment>/``.

Three sources:

- a folder laid out ``<student>/<assignment>/*.ipynb`` (an optional ``timestamp.txt`` beside the
  notebooks is kept; without one the newest notebook's modification time is used);
- an LMS download zip: either that same layout inside the zip, or flat files whose names match
  ``--pattern`` (a regular expression with named groups ``student`` and ``assignment``; the
  default fits ``<student>_<assignment>.ipynb`` and ``<student>_<anything>_<assignment>.ipynb``);
- nbgrader's exchange (``nbgrader collect`` through its API, for JupyterHub courses).

Only regular files inside the submission's own folder are taken: a symlink (to a file or a
folder), or a path that resolves outside the folder, is refused and reported.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from .config import Course

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


def parse_timestamp(text: str) -> dt.datetime | None:
    """Parse an nbgrader timestamp (any ISO-like form); None when unreadable."""
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(text.strip())
    except (ValueError, TypeError, OverflowError):
        return None


def _write_timestamp(dest: Path, when: dt.datetime) -> None:
    (dest / "timestamp.txt").write_text(when.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


REFUSED: list[str] = []   # what the last collect refused (symlinks, paths outside the folder)


def _inside(path: Path, folder: Path) -> bool:
    """A regular file (not a symlink) whose real path lies inside ``folder``."""
    try:
        return (not path.is_symlink() and path.is_file()
                and path.resolve().is_relative_to(folder.resolve()))
    except OSError:
        return False


def _copy_submission(src: Path, dest: Path) -> int:
    """Copy notebooks (and timestamp.txt) from ``src`` to ``dest``; return notebooks copied."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    n = 0
    newest = None
    for f in sorted(src.iterdir()):
        if f.suffix == ".ipynb" and (f.is_symlink() or not _inside(f, src)):
            REFUSED.append(f"{f}: a symlink or a file outside the submission folder, refused")
            continue
        if f.is_file() and f.suffix == ".ipynb":
            shutil.copyfile(f, dest / f.name, follow_symlinks=False)
            n += 1
            m = f.stat().st_mtime
            newest = m if newest is None else max(newest, m)
    ts = src / "timestamp.txt"
    if _inside(ts, src) and parse_timestamp(ts.read_text()) is not None:
        shutil.copyfile(ts, dest / "timestamp.txt")
    elif newest is not None:
        _write_timestamp(dest, dt.datetime.fromtimestamp(newest, dt.timezone.utc))
    return n


def collect_folder(course: Course, folder: Path, assignments: list[str] | None = None) -> list[tuple[str, str]]:
    """Copy ``folder/<student>/<assignment>/*.ipynb``; return the (student, assignment) pairs."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no such folder: {folder}")
    known = set(course.assignments())
    got = []
    REFUSED.clear()
    for sdir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if not STUDENT_RE.match(sdir.name):
            continue
        if sdir.is_symlink():
            REFUSED.append(f"{sdir}: a symlinked student folder, refused")
            continue
        for adir in sorted(p for p in sdir.iterdir() if p.is_dir()):
            if adir.is_symlink():
                REFUSED.append(f"{adir}: a symlinked assignment folder, refused")
                continue
            if adir.name not in known or (assignments and adir.name not in assignments):
                continue
            _copy_submission(adir, course.submitted / sdir.name / adir.name)
            got.append((sdir.name, adir.name))
    return got


DEFAULT_PATTERN = r"^(?P<student>[A-Za-z0-9.@-]+)_(?:.*_)?(?P<assignment>\d\d_[a-z0-9_]+?)(?:_\d+)?\.ipynb$"


def collect_zip(course: Course, zip_path: Path, pattern: str = DEFAULT_PATTERN,
                assignments: list[str] | None = None) -> list[tuple[str, str]]:
    """Collect an LMS download zip (see the module docstring)."""
    tmp = Path(tempfile.mkdtemp(prefix="cnnlab-zip-"))
    try:
        try:
            with zipfile.ZipFile(zip_path) as zf:
                for info in zf.infolist():
                    name = Path(info.filename)
                    if info.is_dir() or name.is_absolute() or ".." in name.parts:
                        continue
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:   # a symlink entry
                        continue
                    target = tmp / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(info) as fin, open(target, "wb") as fout:
                        shutil.copyfileobj(fin, fout)
        except zipfile.BadZipFile as exc:
            raise ValueError(f"{zip_path} is not a zip file: {exc}") from exc
        got = collect_folder(course, tmp, assignments)
        regex = re.compile(pattern)
        known = set(course.assignments())
        flat: dict[tuple[str, str], list[Path]] = {}
        for f in sorted(tmp.rglob("*.ipynb")):
            m = regex.match(f.name)
            if not m or m.group("assignment") not in known:
                continue
            key = (m.group("student"), m.group("assignment"))
            if assignments and key[1] not in assignments:
                continue
            flat.setdefault(key, []).append(f)
        for (student, assignment), files in flat.items():
            dest = course.submitted / student / assignment
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            newest = max(files, key=lambda p: p.stat().st_mtime)
            shutil.copyfile(newest, dest / f"{assignment}.ipynb")
            _write_timestamp(dest, dt.datetime.fromtimestamp(newest.stat().st_mtime, dt.timezone.utc))
            got.append((student, assignment))
        return sorted(set(got))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def collect_exchange(course: Course, assignments: list[str], exchange_root: str | None = None) -> list[tuple[str, str]]:
    """Collect from nbgrader's exchange into the work folder's submitted/ (nbgrader collect)."""
    from nbgrader.apps import NbGraderAPI

    from .util import quiet

    cfg = course.config()
    if exchange_root:
        cfg.Exchange.root = str(exchange_root)
    cfg.CourseDirectory.submitted_directory = "submitted"
    got = []
    with quiet():
        api = NbGraderAPI(config=cfg)
        for a in assignments:
            out = api.collect(a, update=True)
            if not out.get("success"):
                raise RuntimeError(f"nbgrader collect {a} failed: {out.get('error') or out.get('log')}")
    for student, assignment, _ in find_submissions(course, assignments=assignments):
        got.append((student, assignment))
    return got


def find_submissions(course: Course, students=None, assignments=None) -> list[tuple[str, str, Path]]:
    """(student, assignment, folder) for every collected submission, filtered."""
    out = []
    root = course.submitted
    if not root.is_dir():
        return out
    known = set(course.assignments())
    for sdir in sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")):
        if students and sdir.name not in students:
            continue
        for adir in sorted(p for p in sdir.iterdir() if p.is_dir() and not p.is_symlink()):
            if adir.name not in known or (assignments and adir.name not in assignments):
                continue
            out.append((sdir.name, adir.name, adir))
    return out
