"""Collect submissions into ``<workdir>/submitted/<student>/<assignment>/``, from a folder or an LMS's
bulk download zip as the LMS makes it, or from nbgrader's exchange.

Layouts understood (in a zip or a folder, at any depth, so a zip whose entries sit under one top
folder works the same):

- nbgrader's own: ``<student>/<assignment>/<notebook>.ipynb`` (+ ``timestamp.txt``), and the
  exchange's ``<student>+<assignment>+<timestamp>[+...]/<notebook>.ipynb``;
- Canvas: ``<name>_[LATE_]<user id>_<file id>_<file>`` flat; Canvas renames a re-uploaded file
  ``<file>-1``, ``<file>-2``; the later upload (the larger file id) wins;
- Moodle's "download all": ``<Full Name>_<id>_assignsubmission_file[_]/<file>`` folders (or the
  same prefix on flat files); Moodle keeps one submission per student;
- Blackboard: ``<Assignment>_<username>_attempt_<YYYY-MM-DD-HH-MM-SS>_<file>`` with its ``.txt``
  receipt (which names the username and the file's original name); the latest attempt wins;
- plain: ``<student>_..._<notebook>.ipynb`` flat, or ``<student>/<notebook>.ipynb``, with
  browser or LMS copies ``_1``, ``-2``, `` (3)``: the highest copy wins.

A student's file may have any name the LMS allows (spaces, other scripts, a copy suffix): it is
matched to the course's notebook names, and when a student's only notebook matches none it is
taken as the assignment's notebook if the assignment is known (``--assignments``, or the one
assignment of the whole zip). ``__MACOSX/``, ``._*`` and other dot files are ignored. The
submission time comes from the LMS (Blackboard's attempt time, nbgrader's ``timestamp.txt``, the
zip entry's date-time; a folder's file modification time), never from the time of the collect.

Every decision is a line of the :class:`Report`: what was taken, each resubmission choice, each
name read differently or refused (:mod:`autograder.names` is the policy), and every file not taken
with the reason. Files are streamed out of the zip with per-file, total and compression-ratio
limits (:class:`ZipLimits`): a zip bomb is skipped and the rest kept. Nothing is written outside
the work folder, and nothing collected is deleted: a newer submission replaces a collected
notebook after the old one is moved to ``<workdir>/replaced/``, a folder without a notebook leaves
the earlier collection as it was.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nbgrader.exchange.default.collect import ExchangeCollect
from traitlets import List

from . import names
from .config import Course
from .names import Directory, Refused

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
UTC = dt.timezone.utc


def parse_timestamp(text: str) -> dt.datetime | None:
    """Parse an nbgrader timestamp (any ISO-like form); None when unreadable."""
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(text.strip())
    except (ValueError, TypeError, OverflowError):
        return None


def _utc(text: str) -> dt.datetime | None:
    """An nbgrader timestamp as an aware UTC datetime (nbgrader's own are naive UTC)."""
    when = parse_timestamp(text)
    return when.replace(tzinfo=UTC) if when is not None and when.tzinfo is None else when


def _fmt(when: dt.datetime | None) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else "no time"


def _write_timestamp(dest: Path, when: dt.datetime) -> None:
    """``dest/timestamp.txt``, written under a temporary name beside it and renamed: whole or not at all."""
    tmp = dest / f".timestamp.txt.{os.getpid()}.tmp"
    try:
        tmp.write_text(when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC"))
        os.replace(tmp, dest / "timestamp.txt")
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------ results

@dataclass(frozen=True)
class ZipLimits:
    """Limits on what one collect unpacks (bytes actually written, never the zip's headers alone)."""

    max_file: int = 64 * 2**20        # one notebook
    max_total: int = 1 * 2**30        # everything taken from one source
    max_ratio: int = 100              # uncompressed / compressed, checked once a file passes ratio_floor
    ratio_floor: int = 2**20
    max_entries: int = 100_000


NOT_TAKEN = ("skipped", "refused")


@dataclass
class Report:
    """The collect's decisions, one ``(kind, text)`` per line, in the order they were made.

    Kinds: ``took``, ``chose``, ``replaced``, ``unchanged``, ``kept``, ``changed`` (a name read
    differently), ``refused`` (a name the policy refuses), ``skipped`` (a file not taken), ``note``.
    """

    lines: list[tuple[str, str]] = field(default_factory=list)

    def add(self, kind: str, text: str) -> None:
        self.lines.append((kind, names.printable(text)))

    def of(self, kind: str) -> list[str]:
        return [t for k, t in self.lines if k == kind]

    def not_taken(self) -> int:
        return sum(1 for k, _ in self.lines if k in NOT_TAKEN)

    def render(self) -> list[str]:
        return [f"  {k:<9} {t}" for k, t in self.lines]


class Collection(list):
    """The ``(student, assignment)`` pairs collected, with the :class:`Report` and the layouts seen."""

    def __init__(self, pairs=(), report: Report | None = None, layouts: set[str] | None = None):
        super().__init__(pairs)
        self.report = report or Report()
        self.layouts = layouts or set()


# ------------------------------------------------------------------------------------ sources

@dataclass
class _Item:
    """One file of the source (a zip entry or a file of a folder)."""

    path: str                                  # as the source names it, for messages
    parts: tuple[str, ...]
    size: int                                  # what the header or stat says
    time: dt.datetime | None
    time_from: str
    read: Callable                             # () -> binary file object
    compressed: int | None = None              # zip: compressed size (for the ratio limit)


def _extras(extra: bytes):
    i = 0
    while i + 4 <= len(extra):
        hid, size = int.from_bytes(extra[i:i + 2], "little"), int.from_bytes(extra[i + 2:i + 4], "little")
        yield hid, extra[i + 4:i + 4 + size]
        i += 4 + size


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as its writer meant it: UTF-8 flag, Info-ZIP's Unicode path field, or UTF-8
    written without the flag (common), before the cp437 that zipfile assumes."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        raw = info.orig_filename.encode("cp437")
    except UnicodeEncodeError:
        return info.filename
    for hid, data in _extras(info.extra):
        if hid == 0x7075 and len(data) > 5 and data[0] == 1 and int.from_bytes(data[1:5], "little") == zlib.crc32(raw):
            try:
                return data[5:].decode("utf-8")
            except UnicodeDecodeError:
                pass
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return info.filename


def _entry_time(info: zipfile.ZipInfo, tz: dt.tzinfo) -> tuple[dt.datetime | None, str]:
    """The entry's modification time: the UTC extended-timestamp or NTFS field when the writer added
    one, else the DOS date-time read in ``tz`` (zips carry no time zone)."""
    for hid, data in _extras(info.extra):
        if hid == 0x5455 and len(data) >= 5 and data[0] & 1:
            secs = int.from_bytes(data[1:5], "little", signed=True)
            try:
                return dt.datetime.fromtimestamp(secs, UTC), "zip entry time"
            except (OverflowError, OSError, ValueError):
                return None, "no valid time in the zip entry"
        if hid == 0x000A and len(data) >= 32:
            j = 4
            while j + 4 <= len(data):
                tag, size = int.from_bytes(data[j:j + 2], "little"), int.from_bytes(data[j + 2:j + 4], "little")
                if tag == 1 and size >= 8:
                    ticks = int.from_bytes(data[j + 4:j + 12], "little")
                    try:
                        return (dt.datetime(1601, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=ticks // 10),
                                "zip entry time")
                    except OverflowError:
                        return None, "no valid time in the zip entry"
                j += 4 + size
    if info.date_time[:3] <= (1980, 1, 1):
        return None, "no time in the zip entry"
    try:
        when = dt.datetime(*info.date_time, tzinfo=tz)
    except ValueError:
        return None, "no valid time in the zip entry"
    return when, f"zip entry time, read as {_tzname(tz)}"


def _tzname(tz: dt.tzinfo) -> str:
    return getattr(tz, "key", None) or tz.tzname(None) or str(tz)


def _parts(name: str) -> tuple[str, ...]:
    return tuple(p for p in re.split(r"[/\\]", name) if p not in ("", "."))


MAX_PATH_PARTS = 16
"""A file deeper than this (folders and name) in a zip or a folder is not looked at: LMS downloads are a
few folders deep, and every folder of a path is a candidate ``<student>/<assignment>/``, so the work on
one path grows with the square of its depth (one zip entry 4,000 folders deep took 22 s)."""


def _too_deep(parts: tuple[str, ...]) -> str:
    return f"a path {len(parts)} folders deep (more than {MAX_PATH_PARTS}), not an LMS download's; not looked at"


def _ignored(parts: tuple[str, ...]) -> str | None:
    """Why a file is not looked at (macOS metadata, dot files, checkpoints), or None."""
    if any(p == "__MACOSX" for p in parts) or parts[-1].startswith("._"):
        return "macOS metadata (__MACOSX/ or ._ file), not a submission"
    if any(p == ".ipynb_checkpoints" for p in parts):
        return "a Jupyter checkpoint, not a submission"
    if parts[-1] in (".DS_Store", "Thumbs.db", "desktop.ini"):
        return "file-manager metadata, not a submission"
    hidden = next((p for p in parts if p.startswith(".")), None)
    if hidden is not None:
        return f"a hidden (dot) {'file' if hidden == parts[-1] else 'folder'} {hidden!r}, not a submission"
    return None


def _zip_items(zf: zipfile.ZipFile, tz: dt.tzinfo, report: Report, limits: ZipLimits) -> list[_Item]:
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise ValueError(f"the zip holds {len(infos)} entries, more than {limits.max_entries}; "
                         "it is not an LMS download")
    items = []
    for info in infos:
        name = _entry_name(info)
        if info.is_dir() or name.endswith(("/", "\\")):
            continue
        parts = _parts(name)
        if not parts:
            continue
        if len(parts) > MAX_PATH_PARTS:
            report.add("skipped", f"{'/'.join(parts[:MAX_PATH_PARTS])}/...: {_too_deep(parts)}")
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            report.add("skipped", f"{name}: a symlink in the zip, refused")
            continue
        if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            report.add("skipped", f"{name}: a path that leaves the zip's folder (absolute or '..'), refused")
            continue
        why = _ignored(parts)
        if why:
            report.add("skipped", f"{name}: {why}")
            continue
        when, source = _entry_time(info, tz)
        items.append(_Item(name, parts, info.file_size, when, source,
                           (lambda info=info: zf.open(info)), info.compress_size))
    return items


def _folder_items(folder: Path, report: Report) -> list[_Item]:
    items = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        here = Path(dirpath)
        rel = here.relative_to(folder).parts
        for d in sorted(dirnames):
            parts = rel + (d,)
            if len(parts) >= MAX_PATH_PARTS:
                report.add("skipped", f"{'/'.join(parts)}/: {_too_deep(parts + ('',))}")
                dirnames.remove(d)
            elif (here / d).is_symlink():
                report.add("skipped", f"{'/'.join(parts)}/: a symlinked folder, refused")
                dirnames.remove(d)
            elif _ignored(parts):
                count = sum(len(f) for _, _, f in os.walk(here / d))
                report.add("skipped", f"{'/'.join(parts)}/ ({count} file(s)): {_ignored(parts)}")
                dirnames.remove(d)
        dirnames.sort()
        for f in sorted(filenames):
            p, parts = here / f, rel + (f,)
            shown = "/".join(parts)
            if p.is_symlink():
                report.add("skipped", f"{shown}: a symlink, refused")
                continue
            why = _ignored(parts)
            if why:
                report.add("skipped", f"{shown}: {why}")
                continue
            try:
                st = p.stat()
            except OSError as exc:
                report.add("skipped", f"{shown}: unreadable ({exc.strerror})")
                continue
            if not stat.S_ISREG(st.st_mode):
                report.add("skipped", f"{shown}: not a regular file")
                continue
            items.append(_Item(shown, parts, st.st_size, dt.datetime.fromtimestamp(st.st_mtime, UTC),
                               "file modification time", (lambda parts=parts: _open_under(folder, parts))))
    return items


def _open_under(folder: Path, parts: tuple[str, ...]):
    """``folder/parts...`` opened for reading without following a symlink anywhere below ``folder``
    (one swapped in since the folder was listed: a student's folder in a shared inbound turned into a
    link to the solutions between the listing and the copy), and only if it is a regular file."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        f = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(os.fstat(f).st_mode):
        os.close(f)
        raise OSError(errno.EINVAL, "not a regular file")
    return os.fdopen(f, "rb")


# ------------------------------------------------------------------------------------ layouts

MOODLE_DIR = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assign(?:submission|feedback)_(?P<plugin>[a-z]+)_?$")
MOODLE_FLAT = re.compile(r"^(?P<name>.+)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.+)$")
CANVAS = re.compile(r"^(?P<name>[^_]+)_(?P<late>LATE_)?(?P<uid>\d+)_(?P<fid>\d+)_(?P<file>.+)$")
BLACKBOARD = re.compile(r"^(?P<prefix>(?P<asg>.+)_(?P<user>[^_]+)_attempt_"
                        r"(?P<ts>\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d))(?:_(?P<file>.+)|\.txt)$")
EXCHANGE = re.compile(r"^(?P<student>[^+]+)\+(?P<assignment>[^+]+)\+(?P<ts>[^+]+)(?:\+.*)?$")
RECEIPT_NAME = re.compile(r"^Name:\s*(?P<full>.*?)\s*\((?P<user>[^()]+)\)\s*$", re.M)
RECEIPT_FILES = re.compile(r"Original filename:\s*(?P<orig>.+?)\s*\n\s*Filename:\s*(?P<stored>.+?)\s*$", re.M)


@dataclass
class _Claim:
    """One notebook file and whose it is, as the layout says."""

    item: _Item
    layout: str
    who: str                      # as the source names the student
    is_id: bool                   # ``who`` is meant as an id (a folder, a username), not a display name
    filename: str                 # the student's own file name
    lms_id: str | None = None     # the LMS's id for the student (Canvas user id), also looked up in the roster
    participant: str | None = None  # Moodle's participant number: tells two students of one name apart
    assignment: str | None = None
    time: dt.datetime | None = None
    time_from: str = ""
    order: tuple = ()             # the LMS's own order of uploads (file id, attempt time)
    note: str = ""


@dataclass
class _Context:
    course: Course
    notebooks: dict[str, str]                 # notebook file name -> assignment (in scope)
    by_assignment: dict[str, list[str]]       # assignment (in scope) -> its notebook names
    known: set[str]                           # every assignment of the course
    everything: dict[str, str]                # notebook file name -> assignment (all of the course)
    tz: dt.tzinfo
    pattern: re.Pattern | None
    receipts: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    stamps: dict[tuple[str, ...], tuple[dt.datetime | None, str]] = field(default_factory=dict)


def _lms_time(text: str, tz: dt.tzinfo) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d-%H-%M-%S").replace(tzinfo=tz)
    except ValueError:
        return None


def _generic(base: str, ctx: _Context) -> tuple[str, str] | None:
    """``<student>_..._<notebook>``: the student before the first '_', the longest tail that is a
    notebook of the course (copy suffixes allowed)."""
    if "_" not in base:
        return None
    student = base.split("_", 1)[0]
    cuts = [i for i, c in enumerate(base) if c == "_"]
    for i in cuts:
        tail = base[i + 1:]
        if names.match_notebook(tail, list(ctx.notebooks)):
            return student, tail
    return None


def _classify(item: _Item, ctx: _Context, report: Report) -> _Claim | None:
    """Whose notebook ``item`` is, by the first layout that fits; None (and a report line) if none."""
    parts, base = item.parts, item.parts[-1]
    t, tf = item.time, item.time_from
    if ctx.pattern is not None:
        m = ctx.pattern.match(base)
        if m:
            gd = m.groupdict()
            return _Claim(item, "--pattern", gd["student"], True, base, assignment=gd.get("assignment"),
                          time=t, time_from=tf)
    for i, p in enumerate(parts[:-1]):
        m = MOODLE_DIR.match(p)
        if m:
            if m["plugin"] != "file":
                report.add("skipped", f"{item.path}: Moodle's {m['plugin']!r} part of a submission, not a file")
                return None
            return _Claim(item, "Moodle", m["name"], False, base, participant=m["id"],
                          time=t, time_from=tf, note=f"Moodle participant {m['id']}")
    if len(parts) >= 3 and parts[-2] in ctx.known:
        stamp = ctx.stamps.get(parts[:-1])
        when, source = (stamp if stamp and stamp[0] else (t, tf))
        return _Claim(item, "nbgrader", parts[-3], True, base, assignment=parts[-2], time=when, time_from=source,
                      order=((when.timestamp(),) if stamp and stamp[0] else ()))
    if len(parts) >= 2 and (m := EXCHANGE.match(parts[-2])) and m["assignment"] in ctx.known:
        when = _utc(m["ts"])
        return _Claim(item, "nbgrader exchange", m["student"], True, base, assignment=m["assignment"],
                      time=when or t, time_from="exchange folder name" if when else tf,
                      order=((when.timestamp(),) if when else ()))
    m = BLACKBOARD.match(base)
    if m and m["file"]:
        user, originals = ctx.receipts.get(m["prefix"], (m["user"], {}))
        when = _lms_time(m["ts"], ctx.tz)
        return _Claim(item, "Blackboard", user, True, originals.get(base, m["file"]),
                      time=when, time_from=f"Blackboard attempt time, read as {_tzname(ctx.tz)}",
                      order=((when.timestamp(),) if when else ()))
    m = CANVAS.match(base)
    if m:
        generic = _generic(base, ctx)
        if names.match_notebook(m["file"], list(ctx.notebooks)) or not generic:
            return _Claim(item, "Canvas", m["name"], False, m["file"], lms_id=m["uid"], time=t, time_from=tf,
                          order=(int(m["fid"]),), note="Canvas marks it LATE" if m["late"] else "")
    m = MOODLE_FLAT.match(base)
    if m:
        if m["plugin"] != "file":
            report.add("skipped", f"{item.path}: Moodle's {m['plugin']!r} part of a submission, not a file")
            return None
        return _Claim(item, "Moodle", m["name"], False, m["file"], participant=m["id"], time=t, time_from=tf,
                      note=f"Moodle participant {m['id']}")
    generic = _generic(base, ctx)
    if generic:
        return _Claim(item, "flat", generic[0], True, generic[1], time=t, time_from=tf)
    if len(parts) >= 2 and names.match_notebook(base, list(ctx.notebooks)):
        return _Claim(item, "folder", parts[-2], True, base, time=t, time_from=tf)
    report.add("skipped", f"{item.path}: whose notebook this is cannot be told (no layout this tool knows: "
                          "<student>/<assignment>/<notebook>, Canvas, Moodle, Blackboard, <student>_<notebook>)")
    return None


# what reading one entry may raise: a damaged entry (BadZipFile, zlib.error, EOFError), an encrypted one
# (RuntimeError: zipfile asks for a password), a compression method zipfile does not have (NotImplementedError:
# Deflate64, AES); each skips that entry only
_UNREADABLE = (OSError, zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError)


def _why_unreadable(exc: BaseException) -> str:
    if isinstance(exc, RuntimeError) and "encrypted" in str(exc):
        return "encrypted: a password-protected zip entry; ask for it without a password"
    if isinstance(exc, NotImplementedError):
        return f"NotImplementedError: {exc}; re-zip it with ordinary (deflate) compression"
    return f"{type(exc).__name__}: {exc}"


def _read_small(item: _Item, limit: int = 64 * 1024) -> str | None:
    if item.size > limit:
        return None
    try:
        with item.read() as fh:
            data = fh.read(limit + 1)
    except _UNREADABLE:
        return None
    if len(data) > limit:
        return None
    return data.decode("utf-8", errors="replace")


def _side_files(items: list[_Item], ctx: _Context, report: Report) -> list[_Item]:
    """Read Blackboard receipts and nbgrader ``timestamp.txt`` files; return the notebooks and
    report every other file as not taken."""
    rest = []
    for item in items:
        base = item.parts[-1]
        m = BLACKBOARD.match(base)
        if m and not m["file"]:
            text = _read_small(item) or ""
            who = RECEIPT_NAME.search(text)
            files = {mm["stored"]: mm["orig"] for mm in RECEIPT_FILES.finditer(text)}
            ctx.receipts[m["prefix"]] = (who["user"].strip() if who else m["user"], files)
            continue
        if base == "timestamp.txt" and len(item.parts) >= 2:
            text = _read_small(item, 1024)
            when = _utc(text) if text else None
            if when is None:
                report.add("note", f"{item.path}: unreadable, so the notebook's own time is used")
            ctx.stamps[item.parts[:-1]] = (when, "timestamp.txt")
            continue
        if not base.lower().endswith(".ipynb"):
            report.add("skipped", f"{item.path}: not a notebook (only .ipynb files are collected)")
            continue
        rest.append(item)
    return rest


# ------------------------------------------------------------------------------------ names

def _resolve(claim: _Claim, roster: Directory) -> tuple[str, str | None]:
    """The student id for ``claim`` and a note on how it was found (None when it is ``who``)."""
    what = {"nbgrader": "student folder", "folder": "student folder", "nbgrader exchange": "exchange folder",
            "Blackboard": "Blackboard username", "flat": "student name in the file name",
            "--pattern": "student in the file name"}.get(claim.layout, f"{claim.layout} name")
    if claim.is_id:
        try:
            sid, change = names.student_id(claim.who)
        except Refused as exc:
            if roster:
                rid, many = roster.by_name(claim.who)
                if rid:
                    return rid, f"{what} {claim.who!r} is roster student {rid!r} (by name)"
            raise Refused(f"{what} {claim.who!r}: {exc}; rename it") from None
        if roster and sid not in roster.ids and (rid := roster.by_lms_id(sid)):
            return rid, f"{what} {claim.who!r} is roster student {rid!r}"
        return sid, (f"{what} {claim.who!r} {change}" if change else None)
    if roster:
        if claim.lms_id and (rid := roster.by_lms_id(claim.lms_id)):
            return rid, None
        rid, many = roster.by_name(claim.who)
        if rid:
            return rid, None
        if many:
            raise Refused(f"{what} {claim.who!r} fits several roster students ({', '.join(many)}); "
                          "collect them from folders named by id")
    base = claim.who
    if claim.layout == "Moodle" and claim.who.strip().casefold() == "participant":   # blind marking
        base = f"participant {claim.note.rsplit(' ', 1)[-1]}"
    made = names.slug(base) or (f"u{claim.lms_id}" if claim.lms_id else None)
    if made is None:
        raise Refused(f"{what} {claim.who!r} gives no usable id; import a roster that lists this student")
    sid, _ = names.student_id(made)
    return sid, None


# ------------------------------------------------------------------------------------ collect

NBGRADER_LAYOUTS = ("nbgrader", "nbgrader exchange")


@dataclass
class _Pick:
    claim: _Claim
    student: str
    assignment: str
    notebook: str
    match: names.Match | None     # None: not the name of one of the assignment's notebooks
    how: str = ""                 # how the file became ``notebook`` ("" when it has its name)
    rank: tuple = ()


def _why_later(a: _Pick, b: _Pick) -> str:
    """Why ``a`` ranks above ``b`` (the first difference in their rank)."""
    if (a.match is not None) != (b.match is not None):
        return "its name is the notebook's"
    if a.claim.order != b.claim.order:
        if a.claim.layout == "Canvas":
            return f"the later Canvas upload (file id {a.claim.order[0]} > {b.claim.order[0]})"
        return f"the later submission ({_fmt(a.claim.time)} > {_fmt(b.claim.time)}, {a.claim.time_from})"
    ca, cb = (a.match.copy if a.match else 0), (b.match.copy if b.match else 0)
    if ca != cb:
        return f"the later copy ({ca} > {cb})"
    if a.claim.time != b.claim.time:
        return f"the later file ({_fmt(a.claim.time)} > {_fmt(b.claim.time)}, {a.claim.time_from})"
    return "nothing orders them (same time, no copy number); the last by name was taken"


def _rank(p: _Pick) -> tuple:
    t = p.claim.time.timestamp() if p.claim.time else float("-inf")
    return (p.match is not None, p.claim.order, p.match.copy if p.match else 0, t, p.claim.item.path)


def _identity(c: _Claim) -> tuple:
    """Who a claim says submitted: the layout and the LMS's number for the student (Canvas's user id,
    Moodle's participant number) where it gives one, so that two students of one display name stay
    two and one student's files stay one however the name is written; else the layout and the name,
    compared in Unicode NFC (a macOS zip writes accents decomposed: ``álvarezjosé`` in NFD is the
    same name). NFKC differences (a fullwidth ``ａlice``) stay different names."""
    number = c.lms_id or c.participant
    return (c.layout, "#", number) if number else (c.layout, names.file_key(c.who), None)


def _shown(c: _Claim) -> str:
    number = c.lms_id or c.participant
    return names.file_key(c.who) + (f" (id {number})" if number else "")


def _plan(claims: list[_Claim], ctx: _Context, roster: Directory, report: Report,
          scope: list[str]) -> dict[tuple[str, str], dict[str, list[_Pick]]]:
    """Resolve ids and notebooks; group the picks by (student, assignment) and notebook."""
    resolved: list[tuple[_Claim, str]] = []
    for c in claims:
        try:
            sid, how = _resolve(c, roster)
        except Refused as exc:
            report.add("refused", f"{c.item.path}: {exc}")
            continue
        if how:
            report.add("changed", how)
        resolved.append((c, sid))
    # two different students (as the source names them: name and the LMS's number) must not become one id
    identities: dict[str, dict[tuple, _Claim]] = {}
    for c, sid in resolved:
        identities.setdefault(sid, {}).setdefault(_identity(c), c)
    clash = {sid for sid, ids in identities.items() if len(ids) > 1}
    kept: list[tuple[_Claim, str]] = []
    for c, sid in resolved:
        if sid in clash:
            exact = [i for i, first in identities[sid].items() if names.file_key(first.who) == sid]
            if len(exact) == 1 and _identity(c) == exact[0]:
                kept.append((c, sid))
                continue
            others = sorted(_shown(first) for i, first in identities[sid].items() if i != _identity(c))
            report.add("refused", f"{c.item.path}: {c.who!r} would be student {sid!r}, as would "
                                  f"{', '.join(repr(o) for o in others)}; rename one (or import a roster)")
            continue
        kept.append((c, sid))
    # which notebook of which assignment
    zip_assignment = scope[0] if len(scope) == 1 else None
    matched = {ctx.notebooks[m.notebook] for c, _ in kept
               if not c.assignment and (m := names.match_notebook(c.filename, list(ctx.notebooks)))}
    matched |= {c.assignment for c, _ in kept if c.assignment in ctx.by_assignment}
    if zip_assignment is None and len(matched) == 1:
        zip_assignment = next(iter(matched))
    groups: dict[tuple[str, str], dict[str, list[_Pick]]] = {}
    for c, sid in kept:
        if c.assignment is not None and c.assignment not in ctx.by_assignment:
            why = "not an assignment of the course" if c.assignment not in ctx.known else "not among --assignments"
            report.add("skipped", f"{c.item.path}: assignment {c.assignment!r} is {why}")
            continue
        pool = ctx.by_assignment[c.assignment] if c.assignment else list(ctx.notebooks)
        m = names.match_notebook(c.filename, pool)
        if m is not None:
            a = ctx.notebooks[m.notebook]
            pick = _Pick(c, sid, a, m.notebook, m, m.how)
        elif c.layout in NBGRADER_LAYOUTS:
            # nbgrader fixed the file names when it released the assignment: another name is kept as it
            # is, and the grader reports the assignment's notebook missing (and names this one)
            try:
                own = names.file_name(c.filename)
            except Refused as exc:
                report.add("refused", f"{c.item.path}: file name {c.filename!r}: {exc}")
                continue
            a = c.assignment
            expected = " and ".join(ctx.by_assignment[a])
            pick = _Pick(c, sid, a, own, None, f"not {expected}: copied under its own name; the grader "
                                                           f"will report {expected} missing")
        else:
            other = names.match_notebook(c.filename, list(ctx.everything))
            if other is not None:
                owner = ctx.everything[other.notebook]
                where = (f"it is assignment {owner!r}'s notebook, in {c.assignment!r}'s folder" if c.assignment
                         else f"assignment {owner!r} is not among --assignments")
                report.add("skipped", f"{c.item.path}: {where}")
                continue
            a = c.assignment or zip_assignment
            if a is None or len(ctx.by_assignment.get(a, [])) != 1:
                expected = ", ".join(sorted(ctx.by_assignment.get(a) or ctx.notebooks))
                report.add("skipped", f"{c.item.path}: {c.filename!r} is no notebook of the course (expected "
                                      f"{expected}); rename it, or give --assignments A when all of it is A")
                continue
            pick = _Pick(c, sid, a, ctx.by_assignment[a][0], None,
                         f"taken as {ctx.by_assignment[a][0]}, the assignment's notebook")
        pick.rank = _rank(pick)
        groups.setdefault((sid, a), {}).setdefault(pick.notebook, []).append(pick)
    return groups


class _TooBig(Exception):
    pass


def _mib(n: int) -> str:
    return f"{n / 2**20:g} MiB"


class _Unreadable(Exception):
    """Reading one source file failed (``args[0]``: what was raised): that file is skipped."""


def _read_chunk(fin, size: int) -> bytes:
    try:
        return fin.read(size)
    except _UNREADABLE as exc:
        raise _Unreadable(exc) from exc


def _unpack(item: _Item, dest: Path, limits: ZipLimits, used: list[int]) -> int:
    """Stream ``item`` into ``dest`` within the limits (counting the bytes actually written).

    A failure to read the source is :class:`_Unreadable` (the file is skipped); a failure to write
    (a full disk above all) is raised as it is: it is the machine's, never the student's file's, and
    stops the collect."""
    if item.size > limits.max_file:
        raise _TooBig(f"it is {_mib(item.size)}, more than {_mib(limits.max_file)} (the limit for one file)")
    n = 0
    try:
        fin = item.read()
    except _UNREADABLE as exc:
        raise _Unreadable(exc) from exc
    with fin, open(dest, "wb") as fout:
        while True:
            chunk = _read_chunk(fin, 1 << 16)
            if not chunk:
                break
            n += len(chunk)
            if n > limits.max_file:
                raise _TooBig(f"it inflates past {_mib(limits.max_file)} (the limit for one file)")
            if (item.compressed is not None and n > limits.ratio_floor
                    and n > limits.max_ratio * max(item.compressed, 1)):
                raise _TooBig(f"it inflates more than {limits.max_ratio} times its {item.compressed} compressed "
                              "bytes (a zip bomb)")
            if used[0] + n > limits.max_total:
                raise _TooBig(f"the files taken pass {_mib(limits.max_total)} together (the limit for one collect)")
            fout.write(chunk)
    used[0] += n
    return n


def _backup_folder(workdir: Path, student: str, assignment: str) -> Path:
    """A new, empty ``<workdir>/replaced/<student>/<assignment>/<UTC time>[-k]/`` for an earlier collection."""
    stamp = dt.datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    base = names.inside(workdir, "replaced", student, assignment, create=True)
    base.mkdir(exist_ok=True)
    k, backup = 0, base / stamp
    while backup.exists():
        k += 1
        backup = base / f"{stamp}-{k}"
    backup.mkdir()
    return backup


def _store(course: Course, student: str, assignment: str, picks: dict[str, _Pick], staging: Path,
           limits: ZipLimits, used: list[int], report: Report) -> bool:
    """Put the chosen notebooks of one submission in place; True when the submission is collected."""
    folder = staging / f"{len(list(staging.iterdir()))}"
    folder.mkdir()
    staged: dict[str, Path] = {}
    for nb, p in sorted(picks.items()):
        try:
            _unpack(p.claim.item, folder / nb, limits, used)
        except _TooBig as exc:
            report.add("skipped", f"{p.claim.item.path}: {exc}; not taken, the rest is kept")
            continue
        except _Unreadable as exc:
            report.add("skipped", f"{p.claim.item.path}: unreadable ({_why_unreadable(exc.args[0])})")
            continue
        staged[nb] = folder / nb
    if not staged:
        return False
    times = [p.claim.time for nb, p in picks.items() if nb in staged and p.claim.time]
    when = max(times) if times else None
    try:
        dest = names.inside(course.submitted, student, assignment)
    except Refused as exc:
        report.add("refused", f"{student}/{assignment}: {exc}")
        return False
    old_when = None
    if (dest / "timestamp.txt").is_file():
        old_when = _utc((dest / "timestamp.txt").read_text(errors="replace")[:200])
    earlier = {p.name for p in dest.glob("*.ipynb") if p.is_file() and not p.is_symlink()} if dest.is_dir() else set()
    same = earlier == set(staged) and all((dest / nb).read_bytes() == staged[nb].read_bytes() for nb in earlier)
    if same:
        if old_when is None and when is not None:
            _write_timestamp(dest, when)
        report.add("unchanged", f"{student} {assignment}: already collected, the same notebook")
        return True
    # which replaces which: a newer one replaces the collected one, an older one does not; with a time on
    # one side only, the order cannot be told and the side with a time stays (a time is evidence, its
    # absence is none); with no time on either side the later collect's is taken (an LMS keeps one
    # submission per student, and a later download holds the later one). Every case is a line.
    if earlier and old_when and when and when < old_when:
        report.add("kept", f"{student} {assignment}: the collected submission ({_fmt(old_when)}) is newer than "
                           f"this one ({_fmt(when)}); left as it was")
        return False
    if earlier and old_when and when is None:
        why = sorted({p.claim.time_from or "the zip gives every notebook one time, its own" for nb, p in picks.items()
                      if nb in staged})
        report.add("kept", f"{student} {assignment}: this submission has no time ({', '.join(why)}), the collected "
                           f"one was submitted {_fmt(old_when)}; which is newer cannot be told, so the collected one "
                           f"is left as it was (to take this one, move submitted/{student}/{assignment}/ into "
                           "replaced/ and collect again)")
        return False
    names.inside(course.submitted, student, assignment, create=True).mkdir(exist_ok=True)
    moved_to = None
    if earlier or (dest / "timestamp.txt").exists():
        backup = _backup_folder(course.workdir, student, assignment)
        for f in sorted(earlier) + (["timestamp.txt"] if (dest / "timestamp.txt").exists() else []):
            os.replace(dest / f, backup / f)
        moved_to = backup
    for nb, src in staged.items():
        os.replace(src, dest / nb)
    if when is not None:
        _write_timestamp(dest, when)
    for nb, p in sorted(picks.items()):
        if nb not in staged:
            continue
        c = p.claim
        how = [p.how] if p.how else []
        extra = f"; {c.note}" if c.note else ""
        report.add("took", f"{student} {assignment}: {c.item.path}" + (f" ({'; '.join(how)})" if how else "")
                   + (f", submitted {_fmt(c.time)} ({c.time_from})" if c.time else ", no submission time") + extra)
    if moved_to is not None:
        report.add("replaced", f"{student} {assignment}: the earlier collection was moved to "
                               f"{moved_to.relative_to(course.workdir)}"
                               + (" (neither has a submission time: this later collect's is taken)"
                                  if earlier and old_when is None and when is None else ""))
    return True


def _collect(course: Course, items: list[_Item], report: Report, *, assignments, roster, pattern, tz, limits,
             seen_dirs: set[tuple[str, ...]]) -> Collection:
    known = set(course.assignments())
    scope = [a for a in (assignments or sorted(known))]
    unknown = [a for a in scope if a not in known]
    if unknown:
        raise ValueError(f"unknown assignment(s) {', '.join(unknown)}; the course has {', '.join(sorted(known))}")
    by_assignment = {a: [p.name for p in course.source_notebooks(a)] for a in scope}
    notebooks: dict[str, str] = {}
    for a, nbs in by_assignment.items():
        for nb in nbs:
            notebooks[nb] = a
    everything = {p.name: a for a in sorted(known, reverse=True) for p in course.source_notebooks(a)}
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error as exc:
        raise ValueError(f"--pattern {pattern!r} is not a regular expression ({exc})") from None
    if regex is not None and "student" not in regex.groupindex:
        raise ValueError(f"--pattern {pattern!r} needs a (?P<student>...) group")
    ctx = _Context(course, notebooks, by_assignment, known, everything, tz, regex)
    items = _side_files(items, ctx, report)
    claims = [c for c in (_classify(i, ctx, report) for i in items) if c is not None]
    groups = _plan(claims, ctx, roster or Directory(), report, scope)
    got = Collection(report=report, layouts={c.layout for c in claims})
    course.workdir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".collect-", dir=course.workdir))
    used = [0]
    for by_nb in groups.values():
        for picks in by_nb.values():
            picks.sort(key=lambda p: p.rank, reverse=True)
    _download_stamp(items, [p for by_nb in groups.values() for ps in by_nb.values() for p in ps], report)
    try:
        for (student, assignment), by_nb in sorted(groups.items()):
            winners: dict[str, _Pick] = {}
            for nb, picks in sorted(by_nb.items()):
                winners[nb] = picks[0]
                for loser in picks[1:]:
                    what = ("another file of" if (loser.match is None) != (picks[0].match is None)
                            else "an earlier submission of")
                    report.add("skipped", f"{loser.claim.item.path}: {what} {student} {assignment}; "
                                          f"{picks[0].claim.item.path} was taken, {_why_later(picks[0], loser)}")
            if _store(course, student, assignment, winners, staging, limits, used, report):
                got.append((student, assignment))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # nbgrader folders that hold no notebook: the earlier collection stays as it was
    with_nb = {c.item.parts[:-1] for c in claims}
    for d in sorted(seen_dirs - with_nb):
        try:
            sid, _ = names.student_id(d[-2])
        except Refused:
            continue
        if d[-1] not in by_assignment:
            continue
        shown = "/".join(d) + "/"
        earlier = course.submitted / sid / d[-1]
        if earlier.is_dir() and any(earlier.glob("*.ipynb")):
            report.add("kept", f"{sid} {d[-1]}: {shown} holds no notebook; the earlier collection is left as it was")
        else:
            report.add("skipped", f"{shown}: holds no notebook")
    got.sort()
    return got


def _download_stamp(notebooks: list[_Item], picks: list[_Pick], report: Report) -> None:
    """An LMS that stamps every zip entry with the time of the download (Moodle's zip writer does
    unless told otherwise) gives no submission time. That is the case when every notebook entry of
    the zip (``notebooks``: all of them, taken or not, resubmissions included) carries one and the
    same zip entry time and they are two or more students' files: then that time is dropped from
    ``picks`` (none is counted late) and said. Entries with different times are real times, even
    where the files taken happen to share one (two students who submitted at the same moment)."""
    times = {i.time for i in notebooks if i.time and i.time_from.startswith("zip entry time")}
    if len(times) != 1 or any(not (i.time and i.time_from.startswith("zip entry time")) for i in notebooks):
        return
    stamped = [p for p in picks if p.claim.time and p.claim.time_from.startswith("zip entry time")]
    if len({p.student for p in stamped}) < 2:
        return
    when = stamped[0].claim.time
    for p in stamped:
        p.claim.time, p.claim.time_from = None, ""
    rest = [p for p in picks if p.claim.time]
    report.add("note", f"all {len(notebooks)} notebooks of the zip carry the same time ({_fmt(when)}), the time the "
                       "zip was made, not when each was submitted: no submission time is recorded"
                       + (f" for the {len(stamped)} without a time of their own" if rest else "")
                       + ", so none is counted late; check late work in the LMS")


def _nbgrader_dirs(paths: list[tuple[str, ...]], known: set[str]) -> set[tuple[str, ...]]:
    """``<student>/<assignment>`` folders (assignment a known one) among the given folder paths."""
    out = set()
    for parts in paths:
        for i in range(1, len(parts)):
            if parts[i] in known:
                out.add(parts[: i + 1])
    return out


def collect_folder(course: Course, folder: Path, assignments: list[str] | None = None, *,
                   roster: Directory | None = None, pattern: str | None = None, tz: dt.tzinfo = UTC,
                   limits: ZipLimits = ZipLimits()) -> Collection:
    """Collect a folder (any layout of the module docstring); return the collected pairs and the report."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"no such folder: {folder}")
    report = Report()
    items = _folder_items(folder, report)
    dirs = [p for d, _, _ in os.walk(folder, followlinks=False)
            if len(p := Path(d).relative_to(folder).parts) < MAX_PATH_PARTS]
    known = set(course.assignments())
    seen = {d for d in _nbgrader_dirs(dirs, known) if len(d) >= 2 and not _ignored(d)}
    return _collect(course, items, report, assignments=assignments, roster=roster, pattern=pattern, tz=tz,
                    limits=limits, seen_dirs=seen)


def collect_zip(course: Course, zip_path: Path, pattern: str | None = None, assignments: list[str] | None = None,
                *, roster: Directory | None = None, tz: dt.tzinfo = UTC,
                limits: ZipLimits = ZipLimits()) -> Collection:
    """Collect an LMS download zip (see the module docstring); return the collected pairs and the report."""
    report = Report()
    try:
        with zipfile.ZipFile(zip_path) as zf:
            items = _zip_items(zf, tz, report, limits)
            dirs = [p for i in zf.infolist() if i.is_dir()
                    and len(p := _parts(_entry_name(i).rstrip("/\\"))) < MAX_PATH_PARTS]
            dirs += [it.parts[:-1] for it in items]
            known = set(course.assignments())
            seen = {d for d in _nbgrader_dirs(dirs, known) if len(d) >= 2 and ".." not in d and not _ignored(d)}
            return _collect(course, items, report, assignments=assignments, roster=roster, pattern=pattern, tz=tz,
                            limits=limits, seen_dirs=seen)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{zip_path} is not a zip file: {exc}") from exc


# ------------------------------------------------------------------------------------ the exchange

_EXCHANGE_DRIFT = dt.timedelta(minutes=10)
_SECRET = re.compile(r"[0-9A-Za-z]{1,1000}")


class CourseExchangeCollect(ExchangeCollect):
    """nbgrader's exchange collect under the course's rules for untrusted names (the course's
    configuration names it as ``ExchangeFactory.collect``, so ``collect --exchange``, ``nbgrader
    collect`` and formgrader's Collect button all use it).

    On a shared exchange every student can write any folder into ``inbound/``; nbgrader takes the
    student id and the time from the folder's name, stops the whole collect on one name it cannot
    read, and copies the folder with ``shutil.copytree``, which follows a symlinked folder as the
    instructor (a link to ``solutions/<assignment>`` is collected, graded and fed back as the
    student's). Here, each refusal a line of the report and the rest collected:

    - an inbound folder is taken only when its name is ``<id>+<assignment>+<time>[+<random>]``
      with a time that reads, an id the policy accepts (:func:`autograder.names.student_id`, no
      NFKC change: the exchange would file it under the name as written), and it is a real folder
      (not a symlink); with ``check_owner`` (nbgrader's default) one that another named unix user
      put there is refused, so it cannot replace the student's own;
    - only its notebooks (and nbgrader's ``submission_secret.txt``, which release_feedback needs) are
      copied (every other file is listed, as collect from a zip does): regular
      files only, opened without following a symlink, names checked by
      :func:`autograder.names.file_name`, within ``CourseDirectory.max_file_size``;
      ``timestamp.txt`` is written from the folder's name (the time nbgrader orders by), never
      copied (a student's own could not be read by the next collect);
    - a folder without a notebook leaves the earlier collection as it was, and a newer one
      replaces it only after it is moved to ``<workdir>/replaced/`` (nbgrader deletes it);
    - a time in the name far from when the folder appeared in the exchange (its change time, which
      no user can set) is noted.

    Each decision is logged (formgrader shows the log) and kept in :attr:`decisions`, which
    :func:`collect_exchange` reports; :attr:`collected` lists the students collected.
    """

    decisions = List()   # (kind, text) per decision, in the order made: the lines of the collect's report
    collected = List()   # the students whose submission is in submitted/ after this collect

    def _say(self, kind: str, text: str) -> None:
        self.decisions.append((kind, text))
        self.log.warning("%s: %s", kind, names.printable(text))

    # ---- which inbound folders

    def init_src(self):
        self._refused: dict[str, str] = {}
        super().init_src()
        kept = []
        for rec in sorted(self.src_records, key=lambda r: r["filename"]):
            why = self._refused.get(rec["filename"])
            if why is not None:
                self._say("refused", f"inbound/{rec['filename']}/: {why}; not collected")
                continue
            kept.append(rec)
        self.src_records = kept

    def _path_to_record(self, path):
        """nbgrader's record of an inbound folder; a folder refused gets a record of its own (a
        username no student has) that :meth:`init_src` reports and drops, so that it neither
        stops the collect nor hides the student's own folders."""
        filename = os.path.basename(path)
        rec, why = self._read_record(path, filename)
        if why is None:
            return rec
        self._refused[filename] = why
        return {"username": ("refused", filename), "filename": filename, "timestamp": dt.datetime.min}

    def _read_record(self, path: str, filename: str) -> tuple[dict | None, str | None]:
        assignment = self.coursedir.assignment_id
        parts = filename.rsplit("+", 3)
        if len(parts) == 4 and parts[1] != assignment:
            parts = filename.rsplit("+", 2)
        if len(parts) < 3 or parts[1] != assignment:
            return None, f"not <student>+{assignment}+<time>[+<random>]"
        user, when = parts[0], parse_timestamp(parts[2])
        try:
            sid, change = names.student_id(user)
            if change:
                raise Refused(f"{change}, but the exchange would file it under the name as written")
        except Refused as exc:
            return None, f"username {user!r}: {exc}"
        if when is None:
            return None, f"the time {parts[2]!r} in its name does not read as a time"
        when = when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
        try:
            st = os.lstat(path)
        except OSError as exc:
            return None, f"unreadable ({exc.strerror})"
        if stat.S_ISLNK(st.st_mode):
            return None, "a symlink, refused (it would collect what it points to)"
        if not stat.S_ISDIR(st.st_mode):
            return None, "not a folder"
        if self.check_owner and st.st_uid != os.geteuid():
            import pwd

            try:
                owner = pwd.getpwuid(st.st_uid).pw_name
            except KeyError:
                owner = None
            if owner is not None and owner != sid:
                return None, (f"put there by unix user {owner!r}, not by {sid!r} (where one account owns every "
                              "student's files, set c.ExchangeCollect.check_owner = False)")
        appeared = dt.datetime.fromtimestamp(st.st_ctime, UTC)
        return {"username": user, "filename": filename, "timestamp": when, "appeared": appeared}, None

    # ---- copying

    def copy_files(self):
        from nbgrader.utils import temp_attrs

        root = Path(self.coursedir.root)
        assignment = self.coursedir.assignment_id
        kept = []
        for rec in self.src_records:
            student = rec["username"]
            src = Path(self.inbound_path) / rec["filename"]
            dest = Path(self.coursedir.format_path(self.coursedir.submitted_directory, student, assignment))
            earlier = dest.is_dir() and any(p.is_file() and not p.is_symlink() for p in dest.glob("*.ipynb"))
            if not any(p.is_file() and not p.is_symlink() for p in src.glob("*.ipynb")):
                if earlier:
                    self._say("kept", f"{student} {assignment}: inbound/{rec['filename']}/ holds no notebook; "
                                      "the earlier collection is left as it was")
                    self.collected.append(student)
                else:
                    self._say("skipped", f"inbound/{rec['filename']}/: holds no notebook")
                continue
            if dest.is_dir():
                if not self._replaces(dest, rec):
                    self._say("unchanged", f"{student} {assignment}: already collected, no newer submission")
                    self.collected.append(student)
                    continue
                backup = _backup_folder(root, student, assignment)
                for f in sorted(dest.iterdir()):
                    os.replace(f, backup / f.name)
                dest.rmdir()
                self._say("replaced", f"{student} {assignment}: the earlier collection was moved to "
                                      f"{backup.relative_to(root)}")
            if abs(rec["appeared"] - rec["timestamp"].replace(tzinfo=UTC)) > _EXCHANGE_DRIFT:
                self._say("note", f"inbound/{rec['filename']}/: its name says "
                                  f"{_fmt(rec['timestamp'].replace(tzinfo=UTC))}, but it appeared in the exchange at "
                                  f"{_fmt(rec['appeared'])} (its change time, which no user can set); the name's "
                                  "time is recorded, check it")
            kept.append(rec)
        self.src_records = kept
        self._records = {os.path.join(self.inbound_path, r["filename"]): r for r in kept}
        with temp_attrs(self, check_owner=False):   # checked (and refused) in _read_record
            super().copy_files()

    def _replaces(self, dest: Path, rec: dict) -> bool:
        """Whether nbgrader's copy_files would replace the collection at ``dest`` with ``rec`` (a
        ``timestamp.txt`` that does not read counts as none)."""
        p = dest / "timestamp.txt"
        existing = _utc(p.read_text(errors="replace")[:200]) if p.is_file() else None
        existing = existing.astimezone(UTC).replace(tzinfo=None) if existing else None
        new = rec["timestamp"]
        return bool((self.update and (existing is None or new > existing))
                    or (self.before_duedate and existing != new))

    def do_copy(self, src, dest, log=None):
        """Copy the notebooks of one inbound folder (see the class's doc) and write its timestamp."""
        rec = self._records[src]
        shown = f"inbound/{rec['filename']}"
        student, assignment = rec["username"], self.coursedir.assignment_id
        inbound = os.open(self.inbound_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            top = os.open(rec["filename"], os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=inbound)
        except OSError as exc:
            self._say("skipped", f"{shown}/: not read ({exc.strerror})")
            return
        finally:
            os.close(inbound)
        os.makedirs(dest, exist_ok=True)
        per_file, total = 1000 * self.coursedir.max_file_size, 1000 * self.coursedir.max_dir_size
        used, taken, own_stamp = 0, [], None
        try:
            for name in sorted(os.listdir(top)):
                where = f"{shown}/{name}"
                if name == "timestamp.txt":
                    own_stamp = self._read_small(top, name)
                    continue
                if name == "submission_secret.txt":   # the key under which the student fetches feedback
                    secret = self._read_small(top, name)
                    if secret is not None and _SECRET.fullmatch(secret):
                        (Path(dest) / name).write_text(secret)
                    else:
                        self._say("skipped", f"{where}: not a secret as nbgrader's submit writes it (letters and "
                                             "digits); this student's feedback cannot be released to them")
                    continue
                if not name.endswith(".ipynb"):
                    self._say("skipped", f"{where}: not a notebook (only .ipynb files are collected)")
                    continue
                try:
                    nb_name = names.file_name(name)
                except Refused as exc:
                    self._say("refused", f"{where}: file name {name!r}: {exc}")
                    continue
                try:
                    n = self._copy_one(top, name, Path(dest) / nb_name, per_file, total - used)
                except _TooBig as exc:
                    self._say("skipped", f"{where}: {exc}; not taken, the rest is kept")
                    continue
                except FileExistsError:
                    self._say("skipped", f"{where}: the same name as another notebook of the folder once "
                                         "Unicode is normalised (NFC); that one was taken")
                    continue
                except OSError as exc:
                    why = ("a symlink, refused (it would copy what it points to)" if exc.errno == errno.ELOOP
                           else exc.strerror or str(exc))
                    self._say("skipped", f"{where}: {why}")
                    continue
                used += n
                taken.append(nb_name)
        finally:
            os.close(top)
        when = rec["timestamp"].replace(tzinfo=UTC)
        _write_timestamp(Path(dest), when)
        if own_stamp is not None and (_utc(own_stamp) is None
                                      or abs(_utc(own_stamp) - when) > dt.timedelta(seconds=1)):
            self._say("note", f"{shown}/timestamp.txt says {own_stamp.strip()[:60]!r}, not the time of the "
                              f"folder's name; {_fmt(when)} is recorded")
        if self.coursedir.groupshared:
            for path, bits in [(dest, 0o2770)] + [(os.path.join(dest, f), 0o660) for f in os.listdir(dest)]:
                mode = os.stat(path).st_mode
                if mode & bits != bits:
                    try:
                        os.chmod(path, (mode | bits) & (0o2777 if bits == 0o2770 else 0o777))
                    except PermissionError:
                        self.log.warning("Could not update permissions of %s to make it groupshared", path)
        if taken:
            self._say("took", f"{student} {assignment}: {shown}/ ({', '.join(taken)}), submitted {_fmt(when)} "
                              "(exchange folder name)")
            self.collected.append(student)

    @staticmethod
    def _open(folder: int, name: str) -> int:
        """A regular file of ``folder`` opened for reading, never through a symlink, never blocking
        on a FIFO (OSError otherwise)."""
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise OSError(0, "not a regular file")
        return fd

    def _read_small(self, folder: int, name: str, limit: int = 1024) -> str | None:
        try:
            with os.fdopen(self._open(folder, name), "rb") as fh:
                return fh.read(limit).decode("utf-8", errors="replace")
        except OSError:
            return None

    def _copy_one(self, folder: int, name: str, dest: Path, limit: int, room: int) -> int:
        with os.fdopen(self._open(folder, name), "rb") as fin:
            st = os.fstat(fin.fileno())
            if st.st_size > limit:
                raise _TooBig(f"it is {st.st_size} bytes, more than CourseDirectory.max_file_size "
                              f"({self.coursedir.max_file_size} kB)")
            n = 0
            out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            try:
                with os.fdopen(out, "wb") as fout:
                    while chunk := fin.read(1 << 16):
                        n += len(chunk)
                        if n > limit or n > room:
                            raise _TooBig("it grew past CourseDirectory.max_file_size while read" if n > limit
                                          else "the folder passes CourseDirectory.max_dir_size "
                                               f"({self.coursedir.max_dir_size} kB)")
                        fout.write(chunk)
            except BaseException:
                dest.unlink(missing_ok=True)
                raise
        os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
        return n


def collect_exchange(course: Course, assignments: list[str], exchange_root: str | None = None) -> Collection:
    """Collect from nbgrader's exchange into the work folder's submitted/ (nbgrader collect with
    :class:`CourseExchangeCollect`); each of its decisions becomes a line of the report."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.utils import capture_log, temp_attrs

    from .util import env_path, quiet

    env_path()
    course.workdir.mkdir(parents=True, exist_ok=True)   # the gradebook lives there
    cfg = course.config()
    if exchange_root:
        cfg.Exchange.root = str(exchange_root)
    cfg.CourseDirectory.submitted_directory = "submitted"
    got = Collection(layouts={"nbgrader exchange"})
    with quiet():
        api = NbGraderAPI(config=cfg)
        for a in assignments:
            with temp_attrs(api.coursedir, assignment_id=a):   # what NbGraderAPI.collect does
                app = api.exchange.Collect(coursedir=api.coursedir, authenticator=api.authenticator, parent=api)
                app.update = True
                out = capture_log(app)
            for kind, text in getattr(app, "decisions", []):
                got.report.add(kind, text)
            if not out.get("success"):
                last = (out.get("error") or out.get("log") or "").strip().splitlines()[-1:] or ["no message"]
                raise RuntimeError(f"nbgrader collect {a} failed: {last[0].rsplit('Error: ', 1)[-1]}")
            got.extend((s, a) for s in sorted(set(getattr(app, "collected", []))))
    got.sort()
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
