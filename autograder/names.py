"""Untrusted names are data: the one place that decides which student ids, file names and CSV cells
the tool accepts, and how.

Student ids (from folder names, LMS zips and rosters) go through :func:`student_id`:

- Unicode NFKC first: fullwidth and other compatibility letters become plain ones (``ａlice`` is
  read as ``alice``, and the report says so);
- then an id is 1 to 64 ASCII characters: letters, digits, ``.``, ``_``, ``-``, ``@``, starting
  with a letter or a digit (so never ``-x``, which reads as an option, ``.x`` or ``..``, a hidden
  file or the parent folder, nor ``=``, ``+``, ``@`` which spreadsheets read as formulas);
- refused, with the reason and the fix: spaces, path separators, control and invisible format
  characters (zero-width space, right-to-left override), and any letter that is still not ASCII
  after NFKC (a Cyrillic ``а`` that looks like a Latin ``a`` cannot pose as another student).

An LMS display name (Moodle's ``Ada Lovelace``, Canvas's ``lovelaceada``) is a name, not an id:
:class:`Directory` maps it to a roster id (by the LMS's user id, then by the name); without a roster
:func:`slug` makes an id of it (accents dropped, lower case, words joined by ``_``).

Nothing is written under a name a student chose: destinations are built from validated ids and
the course's own notebook names, and :func:`inside` resolves every destination and refuses one
that leaves its root or passes through a symlink.

Every CSV the tool writes goes through :func:`csv_cell` (or :func:`csv_writer`): a text cell that
starts with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'`` (OWASP's advice
against CSV injection), as does each such start after a ``;`` inside it (where Excel splits a line
in locales whose list separator is ';'), numbers stay numbers. :func:`csv_uncell` reverses it for the tool's own
files.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

MAX_ID = 64
ID_CHARS = re.compile(r"[A-Za-z0-9._@-]")
ALLOWED = "ASCII letters, digits, '.', '_', '-' and '@'"


class Refused(ValueError):
    """A name the policy does not accept; ``str(exc)`` is the reason (without the name)."""


def _char(c: str) -> str:
    name = unicodedata.name(c, "")
    return f"{c!r} (U+{ord(c):04X}{' ' + name if name else ''})"


def student_id(raw: str) -> tuple[str, str | None]:
    """Return ``(id, change)`` for a student id taken from a folder, a zip or a roster.

    ``change`` says how the id was read when NFKC changed it (None otherwise). Raise
    :class:`Refused` with the reason when the policy refuses it (see the module docstring).
    """
    if not isinstance(raw, str):
        raise Refused("an id must be text")
    sid = unicodedata.normalize("NFKC", raw)
    change = f"read as {sid!r} (Unicode NFKC: fullwidth or compatibility letters)" if sid != raw else None
    if not sid:
        raise Refused("the id is empty")
    for c in sid:
        cat = unicodedata.category(c)
        if cat in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise Refused(f"it holds the control or invisible character {_char(c)}")
    if sid.startswith("."):
        raise Refused("an id may not start with '.' (a hidden file, or '..', the parent folder)")
    if sid.startswith("-"):
        raise Refused("an id may not start with '-' (it reads as an option)")
    if not sid[0].isalnum():
        raise Refused(f"an id must start with a letter or a digit, not {sid[0]!r}"
                      + (" (a spreadsheet reads '=', '+', '@' as the start of a formula)" if sid[0] in "=+@" else ""))
    if "/" in sid or "\\" in sid:
        raise Refused("it holds a path separator ('/' or '\\')")
    if any(c.isspace() for c in sid):
        raise Refused("an id may not contain spaces")
    for c in sid:
        if ord(c) > 127:
            raise Refused(f"{_char(c)} is not an ASCII letter; ids are {ALLOWED}, so that a look-alike "
                          "letter cannot pose as another student")
    for c in sid:
        if not ID_CHARS.fullmatch(c):
            raise Refused(f"{c!r} is not allowed in an id (allowed: {ALLOWED})")
    if len(sid) > MAX_ID:
        raise Refused(f"it is {len(sid)} characters long; an id has at most {MAX_ID}")
    return sid, change


def is_student_id(raw: str) -> bool:
    """Whether ``raw`` is an id exactly as the policy accepts it (no NFKC change needed)."""
    try:
        return student_id(raw) == (raw, None)
    except Refused:
        return False


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: control and invisible format characters (an escape
    sequence, a right-to-left override in a file name) written as ``\\uXXXX``."""
    return "".join(c if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")
                   else f"\\u{ord(c):04x}" for c in text)


def file_name(raw: str) -> str:
    """A submitted file name that may be written as it is (NFC): one plain path component, not hidden,
    not an option, no control or invisible characters, at most 255 bytes; spaces and other scripts are
    fine. Raise :class:`Refused` with the reason otherwise."""
    name = unicodedata.normalize("NFC", raw)
    if not name or name in (".", ".."):
        raise Refused("an empty name, '.' or '..'")
    for c in name:
        if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise Refused(f"it holds the control or invisible character {_char(c)}")
    if "/" in name or "\\" in name:
        raise Refused("it holds a path separator ('/' or '\\')")
    if name.startswith("."):
        raise Refused("a hidden file (it starts with '.')")
    if name.startswith("-"):
        raise Refused("it starts with '-' (it reads as an option)")
    if len(name.encode()) > 255:
        raise Refused("it is longer than 255 bytes")
    return name


def _ascii_words(text: str) -> list[str]:
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return re.findall(r"[a-z0-9]+", plain)


def slug(display_name: str) -> str | None:
    """An id made of an LMS display name: ``"José Álvarez"`` -> ``"jose_alvarez"``; None when
    nothing ASCII is left (a name written only in another script)."""
    s = "_".join(_ascii_words(display_name))[:MAX_ID].strip("_")
    return s if s and s[0].isalnum() else None


def name_key(display_name: str) -> str:
    """A key that compares display names: accents, case, spaces and punctuation ignored
    (``"Lovelace, Ada"``, ``"lovelaceada"`` and ``"LOVELACE Ada"`` have the same key)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", display_name))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return "".join(c for c in plain if c.isalnum())


def file_key(name: str) -> str:
    """A file name as it should compare: NFC (zips from macOS write accents decomposed)."""
    return unicodedata.normalize("NFC", name)


COPY_SUFFIX = re.compile(r"^(?P<stem>.+?)(?:-(?P<dash>\d{1,3})|_(?P<under>\d{1,3})| ?\((?P<paren>\d{1,3})\))$")


@dataclass(frozen=True)
class Match:
    """A submitted file name matched to one of the course's notebook names."""

    notebook: str          # the course's notebook file name, e.g. "01_history.ipynb"
    copy: int = 0          # the LMS's or the browser's copy number (-1, _2, " (3)"); 0 for none
    how: str = ""          # how the name differs ("" when it is the notebook's name exactly)


def match_notebook(filename: str, notebooks: list[str]) -> Match | None:
    """Match a submitted ``filename`` to one of ``notebooks`` (exact, then without a copy suffix
    ``-1`` / ``_2`` / `` (3)``, then ignoring letter case); None when none matches."""
    name = file_key(filename)
    if not name.lower().endswith(".ipynb"):
        return None
    stem = name[: -len(".ipynb")]
    by_stem = {n[: -len(".ipynb")]: n for n in notebooks}
    folded = {s.casefold(): n for s, n in by_stem.items()}
    if stem in by_stem and name.endswith(".ipynb"):
        return Match(by_stem[stem])
    m = COPY_SUFFIX.match(stem)
    if m and m["stem"] in by_stem:
        n = int(m["dash"] or m["under"] or m["paren"])
        return Match(by_stem[m["stem"]], n, f"copy suffix {stem[len(m['stem']):]!r}")
    if stem.casefold() in folded:
        return Match(folded[stem.casefold()], 0, "letter case differs")
    if m and m["stem"].casefold() in folded:
        n = int(m["dash"] or m["under"] or m["paren"])
        return Match(folded[m["stem"].casefold()], n, f"copy suffix {stem[len(m['stem']):]!r}, letter case differs")
    return None


def inside(root: Path, *parts: str, create: bool = False) -> Path:
    """``root/parts...``, refused (:class:`Refused`) unless every part is one plain path component
    and the result, resolved, stays inside ``root`` without passing through a symlink.

    With ``create`` the folders are made, one at a time, each checked before the next.
    """
    root = Path(root)
    if create:
        root.mkdir(parents=True, exist_ok=True)
    base = root.resolve()
    path = root
    for i, part in enumerate(parts):
        if not part or part in (".", "..") or "/" in part or "\\" in part or "\x00" in part:
            raise Refused(f"{part!r} is not a plain file or folder name")
        path = path / part
        if path.is_symlink():
            raise Refused(f"{path} is a symlink")
        if create and i < len(parts) - 1:
            path.mkdir(exist_ok=True)
    real = path.resolve()
    if not real.is_relative_to(base):
        raise Refused(f"{path} resolves to {real}, outside {base}")
    return path


# ------------------------------------------------------------------------------------ rosters

@dataclass
class Directory:
    """The roster, indexed to map LMS identities to roster ids.

    ``students`` are objects with ``id``, ``first_name``, ``last_name`` and ``lms_ids`` (the other
    ids an LMS knows the student by: Canvas's user id, SIS ids, email).
    """

    students: list = field(default_factory=list)

    def __post_init__(self):
        self.ids = {s.id for s in self.students}
        self._alt: dict[str, set[str]] = {}
        self._names: dict[str, set[str]] = {}
        for s in self.students:
            for alt in getattr(s, "lms_ids", ()) or ():
                self._alt.setdefault(alt, set()).add(s.id)
            first, last = (s.first_name or "").strip(), (s.last_name or "").strip()
            for full in {f"{first} {last}", f"{last} {first}"}:
                if name_key(full):
                    self._names.setdefault(name_key(full), set()).add(s.id)

    def __bool__(self) -> bool:
        return bool(self.students)

    def by_lms_id(self, lms_id: str) -> str | None:
        """The roster id of the student an LMS knows by ``lms_id`` (their id or another id)."""
        if lms_id in self.ids:
            return lms_id
        found = self._alt.get(lms_id, set())
        return next(iter(found)) if len(found) == 1 else None

    def by_name(self, display_name: str) -> tuple[str | None, list[str]]:
        """``(id, [])`` for the one roster student with this name, ``(None, ids)`` when several
        have it, ``(None, [])`` when none."""
        found = sorted(self._names.get(name_key(display_name), set()))
        return (found[0], []) if len(found) == 1 else (None, found)


# ------------------------------------------------------------------------------------ CSV cells

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NEUTRALISED = re.compile(r"^[ '\"]*[=+\-@\t\r]")   # spaces and quotes first: some programs skip them
# where a spreadsheet of another locale starts a cell inside ours: after ';' (Excel where the list
# separator is ';', as in most of Europe, splits "Smith;=HYPERLINK(...)" in two, quoted or not: the
# quote is not at the start of its ';' field), then spaces or a quote
_INNER = re.compile(r"(;)(?=[ '\"]*[=+\-@\t\r])")
_INNER_UNDO = re.compile(r"(;)'(?=[ '\"]*[=+\-@\t\r])")


def csv_cell(value):
    """A value as a spreadsheet-safe CSV cell: text that starts with ``=``, ``+``, ``-``, ``@``,
    tab or carriage return (or with spaces or quotes before one of them) gets one more leading ``'``, and so
    does each such start after a ``;`` inside it (see :data:`_INNER`); numbers (``-2`` as a score)
    are left as they are, so they stay numbers."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = _INNER.sub(r"\1'", str(value))
    return "'" + text if _NEUTRALISED.match(text) else text


def csv_uncell(text: str) -> str:
    """Undo :func:`csv_cell` on a cell read back from one of the tool's own CSV files."""
    text = text[1:] if text.startswith("'") and _NEUTRALISED.match(text) else text
    return _INNER_UNDO.sub(r"\1", text)


class _SafeWriter:
    def __init__(self, fh, **kwargs):
        self._w = csv.writer(fh, **kwargs)

    def writerow(self, row):
        return self._w.writerow([csv_cell(v) for v in row])

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


def csv_writer(fh, **kwargs) -> _SafeWriter:
    """``csv.writer(fh)`` whose every cell goes through :func:`csv_cell`."""
    return _SafeWriter(fh, **kwargs)
