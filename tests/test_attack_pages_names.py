"""Attacks on the README's "pages that show a student's notebook" and "untrusted names" by a helper
that did not write them; each test holds the attack that broke a guarantee (it fails without the fix).

The exchange is attacked as a student on a shared machine can: any folder name in ``inbound/``, a
symlinked folder or notebook, a FIFO, extra files, a ``timestamp.txt`` of their choosing, a folder
put there under a classmate's name.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path

import pytest

from autograder.config import Course

FIXTURES = Path(__file__).parent / "fixtures" / "toy" / "solutions"
A = "00_toy"
NB = f"{A}.ipynb"
UTC = dt.timezone.utc
ENV = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))


def nb(tag: str) -> str:
    return '{"cells": [], "metadata": {"who": "%s"}, "nbformat": 4, "nbformat_minor": 5}' % tag


def lines(got) -> list[str]:
    return [f"{k} {t}" for k, t in got.report.lines]


# ------------------------------------------------------------------------------------ LMS zips

def _zip(path: Path, entries: list[tuple[str, str, bytes]]) -> Path:
    """A zip of ``(name, text, extra field)`` entries, deflated, dated 2026-01-15 10:00:00."""
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, text, extra in entries:
            info = zipfile.ZipInfo(name, (2026, 1, 15, 10, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.extra = extra
            zf.writestr(info, text)
    return path


def _patch(path: Path, name: str, *, flags: int | None = None, method: int | None = None) -> None:
    """Set the general-purpose flags or the compression method of entry ``name`` in both its headers
    (what an encrypting or Deflate64 zip writer puts there)."""
    import struct
    import zipfile

    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        local = zf.getinfo(name).header_offset
    cd = raw.index(b"PK\x01\x02")                       # the first central directory record
    while True:
        n = struct.unpack_from("<H", raw, cd + 28)[0]
        if raw[cd + 46:cd + 46 + n].decode() == name:
            break
        cd = raw.index(b"PK\x01\x02", cd + 4)
    for off, central in ((local, False), (cd, True)):
        base = off + (2 if central else 0)
        if flags is not None:
            struct.pack_into("<H", raw, base + 6, flags)
        if method is not None:
            struct.pack_into("<H", raw, base + 8, method)
    path.write_bytes(bytes(raw))


@pytest.fixture
def course(tmp_path):
    return Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=tmp_path / "w")


def test_an_encrypted_or_deflate64_entry_is_skipped_and_the_rest_kept(course, tmp_path):
    """zipfile raises RuntimeError (a password) and NotImplementedError (Deflate64, AES) on open: the
    whole collect stopped with a bare traceback, the honest submissions beside them lost."""
    from autograder.collect import collect_zip

    z = _zip(tmp_path / "lms.zip", [(f"alice_{A}.ipynb", nb("alice"), b""), (f"bob_{A}.ipynb", nb("bob"), b""),
                                    (f"carol_{A}.ipynb", nb("carol"), b"")])
    _patch(z, f"bob_{A}.ipynb", flags=0x1)
    _patch(z, f"carol_{A}.ipynb", method=9)
    got = collect_zip(course, z)
    assert got == [("alice", A)]
    assert [ln for ln in lines(got) if ln.startswith("skipped")] == [
        f"skipped bob_{A}.ipynb: unreadable (encrypted: a password-protected zip entry; ask for it without a "
        "password)",
        f"skipped carol_{A}.ipynb: unreadable (NotImplementedError: That compression method is not supported; "
        "re-zip it with ordinary (deflate) compression)",
    ]


def test_a_zip_entry_time_out_of_range_is_no_time(course, tmp_path):
    """An NTFS time field (0x000A) 58,000 years after 1601 raised OverflowError while the zip was
    listed: the whole collect stopped with a bare traceback (the CLI does not catch it)."""
    import struct

    from autograder.collect import collect_zip

    ntfs = struct.pack("<HHI", 0x000A, 32, 0) + struct.pack("<HHQQQ", 1, 24, 2**63, 0, 0)
    z = _zip(tmp_path / "lms.zip", [(f"alice_{A}.ipynb", nb("alice"), b""), (f"bob_{A}.ipynb", nb("bob"), ntfs)])
    got = collect_zip(course, z)
    assert got == [("alice", A), ("bob", A)]
    assert f"took bob {A}: bob_{A}.ipynb, no submission time" in lines(got)
    assert not (course.submitted / "bob" / A / "timestamp.txt").exists()


def test_two_moodle_students_of_one_name_stay_two(course, tmp_path):
    """Moodle names its folders <Full Name>_<participant number>_...: two students called Ann Lee were
    both made 'ann_lee', and the second one's notebook was dropped as an "earlier submission" of
    the first."""
    from autograder.collect import collect_zip

    z = _zip(tmp_path / "moodle.zip", [
        (f"Ann Lee_1111_assignsubmission_file/{NB}", nb("first Ann"), b""),
        (f"Ann Lee_2222_assignsubmission_file/{NB}", nb("second Ann"), b""),
        (f"Bo Chen_3333_assignsubmission_file/{NB}", nb("bo"), b"")])
    got = collect_zip(course, z)
    assert got == [("bo_chen", A)]
    assert not (course.submitted / "ann_lee").exists()
    assert lines(got)[:2] == [
        f"refused Ann Lee_1111_assignsubmission_file/{NB}: 'Ann Lee' would be student 'ann_lee', as would "
        "'Ann Lee (id 2222)'; rename one (or import a roster)",
        f"refused Ann Lee_2222_assignsubmission_file/{NB}: 'Ann Lee' would be student 'ann_lee', as would "
        "'Ann Lee (id 1111)'; rename one (or import a roster)",
    ]
