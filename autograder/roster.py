"""The class roster: students (id, first and last name, email) imported from an LMS's CSV export.

:func:`read_roster` understands the column names LMSs use (Canvas: ``Student``, ``SIS Login ID``,
``SIS User ID``, ``Email``; Moodle: ``First name``, ``Surname``/``Last name``, ``Username``,
``ID number``, ``Email address``; Blackboard: ``Username``, ``First Name``, ``Last Name``,
``Email``; plain ``id,first_name,last_name,email``). The id is the name a student submits under
(their folder or the prefix of their LMS file name).

:func:`import_roster` writes the students into nbgrader's gradebook (so formgrader shows their
names) and keeps a copy as ``<workdir>/roster.csv``; :func:`not_on_roster` tells collect which
submissions come from students the roster does not know.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from . import config
from .config import Course

ROSTER_FILE = "roster.csv"

# candidate column names, in order of preference (compared lower-cased, without punctuation)
ID_COLUMNS = ("username", "user_name", "login", "sis_login_id", "login_id", "student_id", "studentid",
              "id", "sis_user_id", "id_number", "student_number", "email", "email_address")
FIRST_COLUMNS = ("first_name", "firstname", "first", "given_name", "givenname", "forename")
LAST_COLUMNS = ("last_name", "lastname", "last", "surname", "family_name", "familyname")
FULL_COLUMNS = ("name", "student", "full_name", "student_name", "sortable_name")
EMAIL_COLUMNS = ("email", "email_address", "e_mail", "mail")


@dataclass(frozen=True)
class Student:
    """One roster entry."""

    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def _pick(row: dict[str, str], names: tuple[str, ...]) -> str | None:
    for n in names:
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


def parse_roster(text: str, id_column: str | None = None) -> list[Student]:
    """Parse roster CSV text (see the module docstring); raise ValueError when unreadable.

    ``id_column`` names the column holding the id students submit under (default: the first of
    ``ID_COLUMNS`` present).
    """
    from .collect import STUDENT_RE

    text = text.lstrip("\ufeff")
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    if not reader.fieldnames:
        raise ValueError("the roster is empty")
    students: dict[str, Student] = {}
    for lineno, raw in enumerate(reader, start=2):
        row = {_key(k): (v or "") for k, v in raw.items() if k}
        if not any(v.strip() for v in row.values()):
            continue
        if (row.get("student") or "").strip().lower() == "points possible":  # Canvas's second row
            continue
        sid = _pick(row, (_key(id_column),) if id_column else ID_COLUMNS)
        if sid is None:
            raise ValueError(f"roster line {lineno}: no student id (columns {list(raw)})")
        email = _pick(row, EMAIL_COLUMNS)
        if sid == email and "@" in sid:
            sid = sid.split("@", 1)[0]
        if not STUDENT_RE.match(sid):
            raise ValueError(f"roster line {lineno}: {sid!r} is not a usable student id")
        first, last = _pick(row, FIRST_COLUMNS), _pick(row, LAST_COLUMNS)
        if first is None and last is None and (full := _pick(row, FULL_COLUMNS)):
            first, last = _split_full(full)
        students[sid] = Student(sid, first, last, email)
    if not students:
        raise ValueError("the roster holds no student")
    return list(students.values())


def read_roster(path: Path, id_column: str | None = None) -> list[Student]:
    """Read a roster CSV file (UTF-8, with or without BOM)."""
    return parse_roster(Path(path).read_text(encoding="utf-8-sig"), id_column)


def write_roster(students: list[Student], path: Path) -> Path:
    """Write ``id,first_name,last_name,email`` to ``path``; return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "first_name", "last_name", "email"])
        for s in sorted(students, key=lambda s: s.id):
            w.writerow([s.id, s.first_name or "", s.last_name or "", s.email or ""])
    return path


def import_roster(course: Course, path: Path, id_column: str | None = None) -> list[Student]:
    """Add or update every roster student in the gradebook and save ``<workdir>/roster.csv``.

    Students already on the saved roster are kept (a second import adds to it).
    """
    from nbgrader.api import Gradebook

    from .util import env_path, quiet

    new = read_roster(path, id_column)
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
    return read_roster(path) if path.is_file() else []


def not_on_roster(course: Course, students: list[str]) -> list[str]:
    """The ``students`` the imported roster does not list (empty when no roster was imported)."""
    roster = {s.id for s in load_saved(course)}
    return sorted({s for s in students if s not in roster}) if roster else []
