"""The class roster: students (id, first and last name, email) imported from an LMS's CSV export.

:func:`read_roster` understands the column names LMSs use (Canvas: ``Student``, ``SIS Login ID``,
``SIS User ID``, ``Email``; Moodle: ``First name``, ``Surname``/``Last name``, ``Username``,
``ID number``, ``Email address``; Blackboard: ``Username``, ``First Name``, ``Last Name``,
``Email``; plain ``id,first_name,last_name,email``). The id is the name a student submits under
(their folder or the prefix of their LMS file name).

:func:`import_roster` writes the students into nbgrader's gradebook (so formgrader shows their
names) and keeps a copy as ``<workdir>/roster.csv``; :func:`not_on_roster` tells collect which
submissions come from students the roster does not know.

A roster is read as UTF-8 (with or without BOM), UTF-16 (Excel's "Unicode text") or, failing
those, Windows-1252 (said in a note); ids follow :func:`autograder.names.student_id`. Any error
(undecodable bytes, no id column, a duplicate or refused id) raises :class:`RosterError` naming the
line and the fix, before anything is imported.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from . import config, names
from .config import Course

ROSTER_FILE = "roster.csv"

# candidate column names, in order of preference (compared lower-cased, without punctuation)
ID_COLUMNS = ("username", "user_name", "login", "sis_login_id", "login_id", "student_id", "studentid",
              "id", "sis_user_id", "id_number", "student_number", "email", "email_address")
FIRST_COLUMNS = ("first_name", "firstname", "first", "given_name", "givenname", "forename")
LAST_COLUMNS = ("last_name", "lastname", "last", "surname", "family_name", "familyname")
FULL_COLUMNS = ("name", "student", "full_name", "student_name", "sortable_name")
EMAIL_COLUMNS = ("email", "email_address", "e_mail", "mail")


class RosterError(ValueError):
    """A roster that cannot be imported; the message names the cause and the fix."""


@dataclass(frozen=True)
class Student:
    """One roster entry. ``lms_ids`` are the other ids the LMS knows the student by (Canvas's user
    id, SIS ids, email), used to match LMS downloads to the roster."""

    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    lms_ids: tuple[str, ...] = ()


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _pick(row: dict[str, str], names_: tuple[str, ...]) -> str | None:
    for n in names_:
        v = (row.get(n) or "").strip()
        if v:
            return v
    return None


def _split_full(name: str) -> tuple[str | None, str | None]:
    """``"Last, First"`` (Canvas's sortable name) or ``"First Last"`` -> (first, last)."""
    if "," in name:
        last, first = (p.strip() for p in name.split(",", 1))
        return first or None, last or None
    parts = name.split()
    if len(parts) == 1:
        return parts[0], None
    return " ".join(parts[:-1]), parts[-1]


def decode_roster(data: bytes, name: str = "the roster") -> tuple[str, str | None]:
    """Return ``(text, note)`` for a roster file's bytes: UTF-8 (BOM or not), UTF-16 (BOM, or the
    zero bytes of Excel's "Unicode text"), else Windows-1252 with a note; raise RosterError naming
    the byte offset when none of them reads it."""
    fix = "save it from your spreadsheet as \"CSV UTF-8\" and import it again"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
            len(data) >= 4 and (data[1::2].count(0) > len(data) // 4 or data[0::2].count(0) > len(data) // 4)):
        enc = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else (
            "utf-16-le" if data[1::2].count(0) >= data[0::2].count(0) else "utf-16-be")
        try:
            return data.decode(enc).lstrip("\ufeff"), None
        except UnicodeDecodeError as exc:
            raise RosterError(f"{name}: byte {exc.start} is not valid UTF-16 (the file looks like UTF-16); {fix}") from None
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        bad = exc.start + (3 if data.startswith(codecs.BOM_UTF8) else 0)
        if data.startswith(codecs.BOM_UTF8):
            raise RosterError(f"{name}: byte {bad} (0x{data[bad]:02x}) is not UTF-8, though the file starts "
                              f"with a UTF-8 mark; {fix}") from None
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise RosterError(f"{name}: byte {bad} (0x{data[bad]:02x}) is not UTF-8, and the file is not "
                              f"UTF-16 or Windows-1252 either; {fix}") from None
        return text, (f"{name} is not UTF-8 (byte {bad} is 0x{data[bad]:02x}); read it as Windows-1252: "
                      "check the names with accents in formgrader")


def parse_roster(text: str, id_column: str | None = None, notes: list[str] | None = None,
                 own: bool = False) -> list[Student]:
    """Parse roster CSV text (see the module docstring); raise RosterError when it cannot be imported.

    ``id_column`` names the column holding the id students submit under (default: the first of
    ``ID_COLUMNS`` the header has). ``notes`` receives what was read differently (an id NFKC
    changed, a row without an id left out). ``own``: the tool's own roster.csv (cells written by
    :func:`autograder.names.csv_cell`).
    """
    notes = [] if notes is None else notes
    text = text.lstrip("\ufeff")
    try:   # only the delimiter is guessed (from the header); quoting is the standard one
        delimiter = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    try:
        header = reader.fieldnames
    except csv.Error as exc:
        raise RosterError(f"the roster's header is not CSV ({exc})") from None
    if not header:
        raise RosterError("the roster is empty")
    keys = [_key(h) for h in header if h]
    column = {_key(h): h for h in header if h}
    shown = names.printable(", ".join(h for h in header if h))   # printed: no terminal escapes from the file
    if id_column:
        if _key(id_column) not in keys:
            raise RosterError(f"the roster has no column {id_column!r} (its columns: {shown}); "
                              "give --id-column one of those")
        id_key = _key(id_column)
    else:
        id_key = next((c for c in ID_COLUMNS if c in keys), None)
        if id_key is None:
            raise RosterError(f"the roster has no student id column (looked for Username, Login ID, SIS Login ID, Student "
                              f"ID, ID, Email; its columns: {shown}); name the column students submit under "
                              "with --id-column")
    alt_keys = [c for c in ("id", "sis_user_id", "sis_login_id", "login_id", "username", "user_name", "login",
                            "student_id", "studentid", "id_number", "student_number", "email", "email_address")
                if c in keys and c != id_key]
    students: dict[str, Student] = {}
    first_line: dict[str, int] = {}
    try:
        rows = list(enumerate(reader, start=2))
    except csv.Error as exc:
        raise RosterError(f"line {reader.line_num}: not CSV ({exc}); {_FIX}") from None
    for lineno, raw in rows:
        row = {_key(k): (v or "") for k, v in raw.items() if k and isinstance(v, str)}
        if own:
            row = {k: names.csv_uncell(v) for k, v in row.items()}
        if not any(v.strip() for v in row.values()):
            continue
        if (row.get("student") or "").strip().lower() == "points possible":  # Canvas's second row
            continue
        first, last = _pick(row, FIRST_COLUMNS), _pick(row, LAST_COLUMNS)
        if first is None and last is None and (full := _pick(row, FULL_COLUMNS)):
            first, last = _split_full(full)
        sid = (row.get(id_key) or "").strip()
        if not sid:
            who = names.printable(" ".join(x for x in (first, last) if x)) or "a row"
            notes.append(f"line {lineno}: {who} has no {column[id_key]!r}; left out")
            continue
        email = _pick(row, EMAIL_COLUMNS)
        if id_key in EMAIL_COLUMNS and "@" in sid:
            sid = sid.split("@", 1)[0]
        try:
            sid, change = names.student_id(sid)
        except names.Refused as exc:
            raise RosterError(f"line {lineno}: the id {sid!r} is refused: {exc}; {_FIX}") from None
        if change:
            notes.append(f"line {lineno}: id {change}")
        if sid in students:
            raise RosterError(f"line {lineno}: the id {sid!r} is already on line {first_line[sid]}; each "
                              f"student must appear once (remove the duplicate, or choose a column of unique ids "
                              f"with --id-column)")
        alts = tuple(dict.fromkeys(v.strip() for k in alt_keys if (v := row.get(k, "")).strip() and
                                   v.strip() != sid and not any(c.isspace() for c in v.strip())))
        if own and row.get("lms_ids"):
            alts = tuple(row["lms_ids"].split())
        students[sid] = Student(sid, first, last, email, alts)
        first_line[sid] = lineno
    if not students:
        raise RosterError("the roster holds no student")
    return list(students.values())


_FIX = "fix the file, or choose another column with --id-column"


def read_roster(path: Path, id_column: str | None = None, notes: list[str] | None = None,
                own: bool = False) -> list[Student]:
    """Read a roster CSV file (see :func:`decode_roster` and :func:`parse_roster`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise RosterError(f"{path}: cannot be read ({exc.strerror})") from None
    text, note = decode_roster(data, path.name)
    mine: list[str] = [note] if note else []
    try:
        students = parse_roster(text, id_column, mine, own)
    except RosterError as exc:
        raise RosterError(f"{path.name}: {exc}") from None
    if notes is not None:
        notes += [n if n.startswith(path.name) else f"{path.name}: {n}" for n in mine]
    return students


def write_roster(students: list[Student], path: Path) -> Path:
    """Write ``id,first_name,last_name,email,lms_ids`` to ``path`` (spreadsheet-safe cells); return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fh = open(tmp, "w", newline="", encoding="utf-8")
    try:   # from here on the temporary file is ours: a failure (a full disk) removes it
        with fh:
            w = names.csv_writer(fh)
            w.writerow(["id", "first_name", "last_name", "email", "lms_ids"])
            for s in sorted(students, key=lambda s: s.id):
                w.writerow([s.id, s.first_name or "", s.last_name or "", s.email or "", " ".join(s.lms_ids)])
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def import_roster(course: Course, path: Path, id_column: str | None = None,
                  notes: list[str] | None = None) -> list[Student]:
    """Add or update every roster student in the gradebook and save ``<workdir>/roster.csv``.

    Students already on the saved roster are kept (a second import adds to it). The whole file is
    read and checked first: a RosterError leaves the gradebook and roster.csv as they were.
    """
    from nbgrader.api import Gradebook

    from .util import env_path, quiet

    new = read_roster(path, id_column, notes)
    merged = {s.id: s for s in load_saved(course)}
    merged.update({s.id: s for s in new})
    env_path()
    course.workdir.mkdir(parents=True, exist_ok=True)
    with quiet(), Gradebook(course.gradebook_url, config.COURSE_ID) as gb:
        for s in new:
            gb.update_or_create_student(s.id, first_name=s.first_name, last_name=s.last_name,
                                        email=s.email)
    write_roster(list(merged.values()), course.workdir / ROSTER_FILE)
    return new


def load_saved(course: Course) -> list[Student]:
    """The roster saved by :func:`import_roster` (empty when none was imported)."""
    path = course.workdir / ROSTER_FILE
    return read_roster(path, "id", own=True) if path.is_file() else []


def directory(course: Course) -> names.Directory:
    """The saved roster, indexed for collect (empty when none was imported)."""
    return names.Directory(load_saved(course))


def not_on_roster(course: Course, students: list[str]) -> list[str]:
    """The ``students`` the imported roster does not list (empty when no roster was imported)."""
    roster = {s.id for s in load_saved(course)}
    return sorted({s for s in students if s not in roster}) if roster else []
