"""Collect as LMSes export, untrusted names as data, spreadsheet-safe CSVs, roster errors, and
commands that never delete what they did not make.

The zips are built here as Canvas, Moodle and Blackboard build their bulk downloads (names,
folders, resubmission suffixes, receipts, entry times); every test checks the collected set, the
submission times and the collect's report line by line.
"""

from __future__ import annotations

import datetime as dt
import os
import struct
import subprocess
import sys
import unicodedata
import zipfile
import zlib
from pathlib import Path

import pytest

from autograder import names
from autograder.collect import ZipLimits, collect_folder, collect_zip
from autograder.config import Course
from autograder.names import Directory, Refused, csv_cell, csv_uncell, student_id

FIXTURES = Path(__file__).parent / "fixtures" / "toy" / "solutions"
A = "00_toy"
NB = f"{A}.ipynb"
ENV = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
UTC = dt.timezone.utc


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout, cwd=Path(__file__).parent.parent)


@pytest.fixture
def course(tmp_path):
    return Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=tmp_path / "w")


def nb(tag: str) -> str:
    """A notebook's bytes that say whose version it is."""
    return '{"cells": [], "metadata": {"who": "%s"}, "nbformat": 4, "nbformat_minor": 5}' % tag


def add(zf: zipfile.ZipFile, name: str, data: str | bytes, when=(2026, 1, 15, 10, 0, 0)):
    info = zipfile.ZipInfo(name, when)
    info.compress_type = zipfile.ZIP_DEFLATED
    zf.writestr(info, data)


def submitted(course, student) -> str:
    return (course.submitted / student / A / NB).read_text()


def stamp(course, student) -> str | None:
    p = course.submitted / student / A / "timestamp.txt"
    return p.read_text() if p.exists() else None


def lines(got) -> list[str]:
    return [f"{k} {t}" for k, t in got.report.lines]


# ------------------------------------------------------------------------------------ the policy

@pytest.mark.parametrize("raw, why", [
    ("-dash", "an id may not start with '-' (it reads as an option)"),
    ("bob smith", "an id may not contain spaces"),
    ("x" * 70, "it is 70 characters long; an id has at most 64"),
    ("..", "an id may not start with '.'"),
    (".hidden", "an id may not start with '.'"),
    ("a/b", "path separator"),
    ("a\\b", "path separator"),
    ("a\x00b", "control or invisible character '\\x00' (U+0000)"),
    ("evil\u202etxt.ipynb", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("zero\u200bwidth", "U+200B ZERO WIDTH SPACE"),
    ("\u0430lice", "'а' (U+0430 CYRILLIC SMALL LETTER A) is not an ASCII letter"),
    ('=HYPERLINK("http://evil","x")', "an id must start with a letter or a digit, not '='"),
    ("+cmd|' /C calc'!A0", "an id must start with a letter or a digit, not '+'"),
    ("@SUM(1+1)", "an id must start with a letter or a digit, not '@'"),
    ("a=b", "'=' is not allowed in an id"),
    ("@admin", "an id must start with a letter or a digit"),
    ("-2+3", "an id may not start with '-'"),
    ("_x", "an id must start with a letter or a digit"),
    ("", "the id is empty"),
])
def test_ids_the_policy_refuses_with_the_reason(raw, why):
    with pytest.raises(Refused) as exc:
        student_id(raw)
    assert why in str(exc.value)


@pytest.mark.parametrize("raw, expected, changed", [
    ("alice", "alice", False),
    ("S1001", "S1001", False),
    ("ada.lovelace@uni.example", "ada.lovelace@uni.example", False),
    ("a_b-c.d", "a_b-c.d", False),
    ("x" * 64, "x" * 64, False),
    ("\uff41lice", "alice", True),           # fullwidth a
    ("\uff21\uff24\uff21", "ADA", True),      # fullwidth ADA
])
def test_ids_the_policy_accepts(raw, expected, changed):
    sid, change = student_id(raw)
    assert sid == expected and (change is not None) == changed
    if changed:
        assert "NFKC" in change


def test_display_names_map_to_roster_ids_and_slugs():
    from autograder.roster import Student

    roster = Directory([Student("ada", "Ada", "Lovelace", lms_ids=("101", "S1")),
                        Student("jose", "Jos\u00e9", "\u00c1lvarez"),
                        Student("js1", "John", "Smith"), Student("js2", "John", "Smith")])
    assert roster.by_lms_id("101") == "ada" and roster.by_lms_id("S1") == "ada" and roster.by_lms_id("9") is None
    assert roster.by_name("lovelaceada") == ("ada", [])                  # Canvas's lastfirst
    assert roster.by_name("Ada Lovelace") == ("ada", [])                 # Moodle's full name
    assert roster.by_name(unicodedata.normalize("NFD", "Jos\u00e9 \u00c1lvarez")) == ("jose", [])
    assert roster.by_name("John Smith") == (None, ["js1", "js2"])        # never a guess
    assert names.slug("Jos\u00e9 \u00c1lvarez") == "jose_alvarez"
    assert names.slug("\uae40\ubbfc\uc900") is None                       # no ASCII left: no id


def test_csv_cells_are_neutralised_and_numbers_stay_numbers(tmp_path):
    evil = ['=HYPERLINK("http://evil.example","click")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3",
            "\t=1+1", "\r=1+1", "'=1+1"]
    assert [csv_cell(v) for v in evil] == ["'" + v for v in evil]
    assert [csv_cell(v) for v in ("alice", "max", "O'Brien", "1+1", "")] == ["alice", "max", "O'Brien", "1+1", ""]
    assert csv_cell(-2) == -2 and csv_cell(-2.5) == -2.5 and csv_cell(0.0) == 0.0 and csv_cell(None) is None
    assert [csv_uncell(csv_cell(v)) for v in evil + ["alice", "'quoted"]] == evil + ["alice", "'quoted"]
    path = tmp_path / "x.csv"
    with open(path, "w", newline="") as fh:
        names.csv_writer(fh).writerow(["-2+3", -2, 1.5, "=A1"])
    assert path.read_bytes() == b"'-2+3,-2,1.5,'=A1\r\n"


def test_grades_csv_neutralises_ids_and_keeps_scores_numeric(course):
    from nbgrader.api import Gradebook

    from autograder import config
    from autograder.export import export_csv
    from autograder.util import env_path

    env_path()                                          # nbgrader's gradebook runs alembic
    course.workdir.mkdir(parents=True)
    with Gradebook(course.gradebook_url, config.COURSE_ID) as gb:
        gb.add_assignment(A)
        for sid in ('=HYPERLINK("http://evil.example","x")', "-2+3", "@SUM(1)", "ada"):
            gb.add_student(sid)
    text = export_csv(course).read_text()
    assert text.splitlines() == [
        f"student,{A},total",
        "'-2+3,0.0,0.0",
        '"\'=HYPERLINK(""http://evil.example"",""x"")",0.0,0.0',
        "'@SUM(1),0.0,0.0",
        "ada,0.0,0.0",
        "max,0.0,0.0",
    ]


# ------------------------------------------------------------------------------------ Canvas

CANVAS_ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section
    Points Possible,,,,
"Lovelace, Ada",101,S1,ada,CNN 101
"Turing, Alan",102,S2,alan,CNN 101
"Hopper, Grace",103,S3,grace,CNN 101
"""


def canvas_zip(path: Path) -> Path:
    """Canvas's "Download Submissions": flat, <lastfirst>_[LATE_]<user id>_<file id>_<file>; a file
    uploaded again under the same name is renamed <file>-1."""
    with zipfile.ZipFile(path, "w") as zf:
        add(zf, f"lovelaceada_101_5001_{A}.ipynb", nb("ada first"), (2026, 1, 14, 9, 0, 0))
        add(zf, f"lovelaceada_101_5107_{A}-1.ipynb", nb("ada resubmitted"), (2026, 1, 15, 10, 30, 0))
        add(zf, "turingalan_LATE_102_5230_\u00dcbung 1 (final).ipynb", nb("alan"), (2026, 1, 16, 8, 0, 0))
        add(zf, f"hoppergrace_103_5150_{A}.ipynb", nb("grace"), (2026, 1, 15, 11, 59, 58))
        add(zf, "hoppergrace_103_5151_notes.pdf", b"%PDF-1.4", (2026, 1, 15, 11, 59, 58))
        add(zf, f"__MACOSX/._hoppergrace_103_5150_{A}.ipynb", b"\x00\x05\x16\x07", (2026, 1, 15, 11, 59, 58))
    return path


def test_canvas_zip_resubmissions_names_and_times(course, tmp_path):
    got = collect_zip(course, canvas_zip(tmp_path / "submissions.zip"))
    assert got == [("hoppergrace", A), ("lovelaceada", A), ("turingalan", A)]
    assert got.layouts == {"Canvas"}
    assert lines(got) == [
        f"skipped __MACOSX/._hoppergrace_103_5150_{A}.ipynb: macOS metadata (__MACOSX/ or ._ file), not a submission",
        "skipped hoppergrace_103_5151_notes.pdf: not a notebook (only .ipynb files are collected)",
        f"took hoppergrace {A}: hoppergrace_103_5150_{A}.ipynb, submitted 2026-01-15 11:59:58 UTC (zip entry time, "
        "read as UTC)",
        f"skipped lovelaceada_101_5001_{A}.ipynb: an earlier submission of lovelaceada {A}; lovelaceada_101_5107_"
        f"{A}-1.ipynb was taken, the later Canvas upload (file id 5107 > 5001)",
        f"took lovelaceada {A}: lovelaceada_101_5107_{A}-1.ipynb (copy suffix '-1'), submitted 2026-01-15 10:30:00 "
        "UTC (zip entry time, read as UTC)",
        f"took turingalan {A}: turingalan_LATE_102_5230_\u00dcbung 1 (final).ipynb (taken as {NB}, the assignment's "
        "notebook), submitted 2026-01-16 08:00:00 UTC (zip entry time, read as UTC); Canvas marks it LATE",
    ]
    assert submitted(course, "lovelaceada") == nb("ada resubmitted")      # the later upload, not the first
    assert submitted(course, "turingalan") == nb("alan")
    assert stamp(course, "lovelaceada") == "2026-01-15 10:30:00.000000 UTC"
    assert stamp(course, "turingalan") == "2026-01-16 08:00:00.000000 UTC"
    assert stamp(course, "hoppergrace") == "2026-01-15 11:59:58.000000 UTC"


@pytest.mark.slow   # the CLI in fresh processes (several seconds of CPU each): not in the fast tier
def test_canvas_zip_with_the_canvas_roster_through_the_cli(course, tmp_path):
    """The instructor's commands: roster (Canvas's gradebook export), then collect with --due on a work
    folder never graded; the output is exactly the report."""
    roster = tmp_path / "canvas.csv"
    roster.write_text(CANVAS_ROSTER)
    common = ["--workdir", course.workdir, "--solutions", FIXTURES, "--notebooks", tmp_path / "nb"]
    out = _cli("roster", roster, *common)
    assert out.returncode == 0, out.stdout + out.stderr
    out = _cli("collect", canvas_zip(tmp_path / "submissions.zip"), "--due", f"{A}=2026-01-15T12:00:00Z", *common)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr == ""
    assert out.stdout.splitlines() == [
        f"collect: {tmp_path / 'submissions.zip'} (Canvas)",
        f"  skipped   __MACOSX/._hoppergrace_103_5150_{A}.ipynb: macOS metadata (__MACOSX/ or ._ file), not a "
        "submission",
        "  skipped   hoppergrace_103_5151_notes.pdf: not a notebook (only .ipynb files are collected)",
        f"  skipped   lovelaceada_101_5001_{A}.ipynb: an earlier submission of ada {A}; lovelaceada_101_5107_{A}-1"
        ".ipynb was taken, the later Canvas upload (file id 5107 > 5001)",
        f"  took      ada {A}: lovelaceada_101_5107_{A}-1.ipynb (copy suffix '-1'), submitted 2026-01-15 10:30:00 UTC "
        "(zip entry time, read as UTC)",
        f"  took      alan {A}: turingalan_LATE_102_5230_\u00dcbung 1 (final).ipynb (taken as {NB}, the assignment's "
        "notebook), submitted 2026-01-16 08:00:00 UTC (zip entry time, read as UTC); Canvas marks it LATE",
        f"  took      grace {A}: hoppergrace_103_5150_{A}.ipynb, submitted 2026-01-15 11:59:58 UTC (zip entry time, "
        "read as UTC)",
        f"collected 3 submission(s) into {course.submitted}; 3 file(s) or name(s) not taken (see 'skipped' and "
        "'refused' above)",
        f"due date of {A}: 2026-01-15 12:00:00 UTC",
    ]
    from nbgrader.api import Gradebook

    with Gradebook(course.gradebook_url, "cnnlab") as gb:
        assert gb.find_assignment(A).duedate == dt.datetime(2026, 1, 15, 12, 0)
    bad = _cli("collect", tmp_path / "submissions.zip", "--due", "tomorrow", *common)
    assert bad.returncode == 1 and bad.stdout.strip() == (
        "collect failed: --due 'tomorrow': write ASSIGNMENT=DATE-TIME, e.g. 01_history=2026-01-15T12:00:00Z")


# ------------------------------------------------------------------------------------ Moodle

def moodle_zip(path: Path, top: str | None) -> Path:
    """Moodle's "Download all submissions" (in folders, the default since 3.1): one folder per student
    and plugin, <Full Name>_<participant id>_assignsubmission_file (older versions end it with '_');
    Moodle's zip writer stamps every entry with the time of the download."""
    download = (2026, 1, 20, 9, 13, 4)
    pre = f"{top}/" if top else ""
    jose = unicodedata.normalize("NFD", "Jos\u00e9 \u00c1lvarez")      # as a macOS unzip/re-zip writes it
    with zipfile.ZipFile(path, "w") as zf:
        add(zf, f"{pre}Ada Lovelace_1234567_assignsubmission_file/{A}.ipynb", nb("ada"), download)
        add(zf, f"{pre}{jose}_1234568_assignsubmission_file/{A} (1).ipynb", nb("jose"), download)
        add(zf, f"{pre}Grace Hopper_1234569_assignsubmission_file_/{A}.ipynb", nb("grace"), download)
        add(zf, f"{pre}Grace Hopper_1234569_assignsubmission_onlinetext_/onlinetext.html", "<p>done</p>", download)
    return path


@pytest.mark.parametrize("top", [None, "CNN101-Homework 0-4242"])
def test_moodle_download_all_with_or_without_a_top_folder(course, tmp_path, top):
    got = collect_zip(course, moodle_zip(tmp_path / "moodle.zip", top))
    pre = f"{top}/" if top else ""
    jose = unicodedata.normalize("NFD", "Jos\u00e9 \u00c1lvarez")
    assert got == [("ada_lovelace", A), ("grace_hopper", A), ("jose_alvarez", A)]
    assert lines(got) == [
        f"skipped {pre}Grace Hopper_1234569_assignsubmission_onlinetext_/onlinetext.html: not a notebook (only "
        ".ipynb files are collected)",
        "note all 3 notebooks of the zip carry the same time (2026-01-20 09:13:04 UTC), the time the zip was made, not "
        "when each was submitted: no submission time is recorded, so none is counted late; check late work in the LMS",
        f"took ada_lovelace {A}: {pre}Ada Lovelace_1234567_assignsubmission_file/{A}.ipynb, no submission time; "
        "Moodle participant 1234567",
        f"took grace_hopper {A}: {pre}Grace Hopper_1234569_assignsubmission_file_/{A}.ipynb, no submission time; "
        "Moodle participant 1234569",
        f"took jose_alvarez {A}: {pre}{jose}_1234568_assignsubmission_file/{A} (1).ipynb (copy suffix ' (1)'), no "
        "submission time; Moodle participant 1234568",
    ]
    assert submitted(course, "jose_alvarez") == nb("jose")
    assert stamp(course, "ada_lovelace") is None                 # never the download time, never the collect's


def test_moodle_names_map_to_the_roster(course, tmp_path):
    from autograder.roster import import_roster, directory

    roster = tmp_path / "participants.csv"
    roster.write_text("First name,Surname,Username,Email address\nAda,Lovelace,ada,ada@uni.example\n"
                      "Jos\u00e9,\u00c1lvarez,jalvarez,jose@uni.example\nGrace,Hopper,ghopper,grace@uni.example\n")
    import_roster(course, roster)
    got = collect_zip(course, moodle_zip(tmp_path / "moodle.zip", None), roster=directory(course))
    assert got == [("ada", A), ("ghopper", A), ("jalvarez", A)]


# ------------------------------------------------------------------------------------ Blackboard

def bb_receipt(full: str, user: str, stamp_: str, submitted_: str, files: list[tuple[str, str]]) -> str:
    text = (f"Name: {full} ({user})\r\nAssignment: Homework 0\r\nDate Submitted: {submitted_}\r\n"
            "Current Grade: Needs Grading\r\n\r\nSubmission Field:\r\nThere is no student submission text data for "
            "this assignment.\r\n\r\nComments:\r\nThere are no student comments for this assignment.\r\n\r\nFiles:\r\n")
    for orig, stored in files:
        text += f"\tOriginal filename: {orig}\r\n\tFilename: {stored}\r\n"
    return text


def test_blackboard_attempts_receipts_and_time_zone(course, tmp_path):
    """Blackboard Learn's "Download Assignment" (all attempts): <Assignment>_<username>_attempt_<time>_<file>
    and one .txt receipt per attempt; the attempt time is the server's local time."""
    z = tmp_path / "gradebook_CNN101_Homework20_0.zip"
    first, last, grace = "2026-01-14-22-15-03", "2026-01-15-06-40-00", "2026-01-15-08-00-00"
    with zipfile.ZipFile(z, "w") as zf:
        for ts, tag, when in ((first, "ada 1", "Wednesday, January 14, 2026 10:15:03 PM EST"),
                              (last, "ada 2", "Thursday, January 15, 2026 6:40:00 AM EST")):
            stored = f"Homework 0_ada_attempt_{ts}_{NB}"
            add(zf, stored, nb(tag))
            add(zf, f"Homework 0_ada_attempt_{ts}.txt", bb_receipt("Ada Lovelace", "ada", ts, when, [(NB, stored)]))
        stored = f"Homework 0_grace_h_attempt_{grace}_my notebook.ipynb"
        add(zf, stored, nb("grace"))
        add(zf, f"Homework 0_grace_h_attempt_{grace}.txt",
            bb_receipt("Grace Hopper", "grace_h", grace, "Thursday, January 15, 2026 8:00:00 AM EST",
                       [("my notebook.ipynb", stored)]))
    from zoneinfo import ZoneInfo

    got = collect_zip(course, z, tz=ZoneInfo("America/New_York"))
    assert got == [("ada", A), ("grace_h", A)]
    assert lines(got) == [
        f"skipped Homework 0_ada_attempt_{first}_{NB}: an earlier submission of ada {A}; Homework 0_ada_attempt_"
        f"{last}_{NB} was taken, the later submission (2026-01-15 11:40:00 UTC > 2026-01-15 03:15:03 UTC, "
        "Blackboard attempt time, read as America/New_York)",
        f"took ada {A}: Homework 0_ada_attempt_{last}_{NB}, submitted 2026-01-15 11:40:00 UTC (Blackboard attempt "
        "time, read as America/New_York)",
        f"took grace_h {A}: Homework 0_grace_h_attempt_{grace}_my notebook.ipynb (taken as {NB}, the assignment's "
        "notebook), submitted 2026-01-15 13:00:00 UTC (Blackboard attempt time, read as America/New_York)",
    ]
    assert submitted(course, "ada") == nb("ada 2")
    assert stamp(course, "ada") == "2026-01-15 11:40:00.000000 UTC"


# ------------------------------------------------------------------------------------ nbgrader, plain

def test_nbgrader_layouts_in_a_zip_with_timestamps(course, tmp_path):
    z = tmp_path / "course.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, f"submitted/alice/{A}/{NB}", nb("alice"), (2026, 1, 20, 0, 0, 0))
        add(zf, f"submitted/alice/{A}/timestamp.txt", "2026-01-15 11:00:00.000000 UTC")
        zf.writestr(zipfile.ZipInfo(f"submitted/bob/{A}/"), b"")
        add(zf, f"inbound/carol+{A}+2026-01-15 09:00:00.000000 UTC+x7f3/{NB}", nb("carol"), (2026, 1, 20, 0, 0, 0))
        add(zf, f"submitted/dave/{A}/.ipynb_checkpoints/{A}-checkpoint.ipynb", nb("dave"))
        add(zf, f"submitted/dave/{A}/{NB}", nb("dave"), (2026, 1, 14, 8, 0, 0))
    got = collect_zip(course, z)
    assert got == [("alice", A), ("carol", A), ("dave", A)]
    assert got.layouts == {"nbgrader", "nbgrader exchange"}
    assert lines(got) == [
        f"skipped submitted/dave/{A}/.ipynb_checkpoints/{A}-checkpoint.ipynb: a Jupyter checkpoint, not a submission",
        f"took alice {A}: submitted/alice/{A}/{NB}, submitted 2026-01-15 11:00:00 UTC (timestamp.txt)",
        f"took carol {A}: inbound/carol+{A}+2026-01-15 09:00:00.000000 UTC+x7f3/{NB}, submitted 2026-01-15 09:00:00 "
        "UTC (exchange folder name)",
        f"took dave {A}: submitted/dave/{A}/{NB}, submitted 2026-01-14 08:00:00 UTC (zip entry time, read as UTC)",
        f"skipped submitted/bob/{A}/: holds no notebook",
    ]


def test_nbgrader_layout_keeps_other_notebook_names_for_the_grader_to_report(course, tmp_path):
    """nbgrader fixed the names when it released the assignment: a notebook under another name is
    copied as it is (the grader then reports the assignment's notebook missing and names it); a name
    that could not be written safely is refused."""
    src = tmp_path / "subs"
    for student, fname in (("erin", "my homework.ipynb"), ("finn", "-rf.ipynb"), ("gus", "x\u202egpj.ipynb")):
        (src / student / A).mkdir(parents=True)
        (src / student / A / fname).write_text(nb(student))
        (src / student / A / "timestamp.txt").write_text("2026-01-15 11:00:00.000000 UTC")
    got = collect_folder(course, src)
    assert got == [("erin", A)]
    assert sorted(p.name for p in (course.submitted / "erin" / A).iterdir()) == ["my homework.ipynb", "timestamp.txt"]
    assert lines(got) == [
        f"refused finn/{A}/-rf.ipynb: file name '-rf.ipynb': it starts with '-' (it reads as an option)",
        f"refused gus/{A}/x\\u202egpj.ipynb: file name 'x\\u202egpj.ipynb': it holds the control or invisible "
        "character '\\u202e' (U+202E RIGHT-TO-LEFT OVERRIDE)",
        f"took erin {A}: erin/{A}/my homework.ipynb (not {NB}: copied under its own name; the grader will report "
        f"{NB} missing), submitted 2026-01-15 11:00:00 UTC (timestamp.txt)",
    ]


def test_copies_the_latest_wins_and_the_choice_is_printed(course, tmp_path):
    """`_1` / `_2` copies (the older, wrong one was graded) and a browser's ` (1)` copy."""
    z = tmp_path / "flat.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, f"alice_{A}_1.ipynb", nb("alice wrong"), (2026, 1, 15, 9, 0, 0))
        add(zf, f"alice_{A}_2.ipynb", nb("alice right"), (2026, 1, 15, 9, 30, 0))
        add(zf, f"bob_{A}.ipynb", nb("bob old"), (2026, 1, 15, 8, 0, 0))
        add(zf, f"bob_{A} (1).ipynb", nb("bob new"), (2026, 1, 15, 8, 5, 0))
    got = collect_zip(course, z)
    assert got == [("alice", A), ("bob", A)]
    assert submitted(course, "alice") == nb("alice right") and submitted(course, "bob") == nb("bob new")
    assert lines(got)[0] == (f"skipped alice_{A}_1.ipynb: an earlier submission of alice {A}; alice_{A}_2.ipynb was "
                             "taken, the later copy (2 > 1)")
    assert lines(got)[2] == (f"skipped bob_{A}.ipynb: an earlier submission of bob {A}; bob_{A} (1).ipynb was taken, "
                             "the later copy (1 > 0)")


def test_which_assignment_a_zip_is(tmp_path):
    """A course with two assignments: a notebook's name tells its assignment; a student's notebook under
    another name is taken only when the zip's assignment is known (--assignments, or the one assignment
    every named notebook of the zip belongs to)."""
    import shutil

    sol = tmp_path / "solutions"
    shutil.copytree(FIXTURES / A, sol / A)
    (sol / "01_more").mkdir()
    shutil.copy(FIXTURES / A / NB, sol / "01_more" / "01_more.ipynb")
    course = Course(solutions=sol, notebooks=tmp_path / "nb", workdir=tmp_path / "w")
    z = tmp_path / "canvas.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, "lovelaceada_101_7001_01_more.ipynb", nb("ada"), (2026, 2, 1, 9, 0, 0))
        add(zf, "turingalan_102_7002_homework two.ipynb", nb("alan"), (2026, 2, 1, 9, 2, 0))
    got = collect_zip(course, z)                                   # inferred: every named notebook is 01_more's
    assert got == [("lovelaceada", "01_more"), ("turingalan", "01_more")]
    z2 = tmp_path / "canvas2.zip"
    with zipfile.ZipFile(z2, "w") as zf:
        add(zf, "turingalan_102_7002_homework two.ipynb", nb("alan"), (2026, 2, 1, 9, 2, 0))
        add(zf, f"hoppergrace_103_7003_{NB}", nb("grace"), (2026, 2, 1, 9, 4, 0))
    course2 = course.with_(workdir=tmp_path / "w2")
    got = collect_zip(course2, z2, assignments=["01_more"])
    assert got == [("turingalan", "01_more")]
    assert lines(got)[0] == f"skipped hoppergrace_103_7003_{NB}: assignment '{A}' is not among --assignments"
    got = collect_zip(course.with_(workdir=tmp_path / "w3"), z2)       # 00_toy by its named notebook
    assert got == [("hoppergrace", A), ("turingalan", A)]
    z3 = tmp_path / "canvas3.zip"
    with zipfile.ZipFile(z3, "w") as zf:
        add(zf, "turingalan_102_7002_homework two.ipynb", nb("alan"), (2026, 2, 1, 9, 2, 0))
    got = collect_zip(course.with_(workdir=tmp_path / "w4"), z3)
    assert got == []
    assert lines(got) == [f"skipped turingalan_102_7002_homework two.ipynb: 'homework two.ipynb' is no notebook of the "
                          f"course (expected {NB}, 01_more.ipynb); rename it, or give --assignments A when all of it "
                          "is A"]


@pytest.mark.slow   # the CLI in fresh processes (several seconds of CPU each): not in the fast tier
def test_a_pattern_for_a_layout_collect_does_not_know(course, tmp_path):
    z = tmp_path / "other-lms.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, "hw0-ada.ipynb", nb("ada"))
    got = collect_zip(course, z, r"^hw0-(?P<student>\w+)\.ipynb$")
    assert got == [("ada", A)] and submitted(course, "ada") == nb("ada")
    assert got.layouts == {"--pattern"}
    with pytest.raises(ValueError, match=r"needs a \(\?P<student>...\) group"):
        collect_zip(course, z, r"^hw0-(\w+)\.ipynb$")
    with pytest.raises(ValueError, match="is not a regular expression"):
        collect_zip(course, z, r"^hw0-(?P<student>\w+")
    out = _cli("collect", z, "--lms-timezone", "Mars/Olympus_Mons", "--workdir", tmp_path / "w2", "--solutions",
               FIXTURES, "--notebooks", tmp_path / "nb")
    assert out.returncode == 1 and out.stdout.strip() == (
        "collect failed: unknown time zone 'Mars/Olympus_Mons' for --lms-timezone (use a name such as "
        "Europe/Berlin or America/New_York)")


# ------------------------------------------------------------------------------------ hostile names

def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() and not p.is_symlink() else b"<dir>")
            for p in sorted(root.rglob("*"))}


def test_nothing_is_written_outside_the_work_folder(course, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    course.submitted.mkdir(parents=True)
    (course.submitted / "mallory").symlink_to(outside, target_is_directory=True)
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, f".._{A}.ipynb", nb("dotdot"))
        add(zf, f"../outside/alice_{A}.ipynb", nb("up"))
        add(zf, f"/tmp/alice_{A}.ipynb", nb("absolute"))
        add(zf, f"x/../../outside/{A}/{NB}", nb("traversal"))
        link = zipfile.ZipInfo(f"eve_{A}.ipynb", (2026, 1, 15, 10, 0, 0))
        link.external_attr = (0o120777 << 16)
        zf.writestr(link, "/etc/passwd")
        add(zf, f"mallory_{A}.ipynb", nb("through a symlink"), (2026, 1, 15, 10, 5, 0))
        add(zf, f"alice_{A}.ipynb", nb("alice"))
    before = _tree(outside)
    got = collect_zip(course, z)
    assert got == [("alice", A)]
    assert _tree(outside) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.zip", "outside", "w"]
    assert lines(got) == [
        f"skipped .._{A}.ipynb: a hidden (dot) file '.._{A}.ipynb', not a submission",
        f"skipped ../outside/alice_{A}.ipynb: a path that leaves the zip's folder (absolute or '..'), refused",
        f"skipped /tmp/alice_{A}.ipynb: a path that leaves the zip's folder (absolute or '..'), refused",
        f"skipped x/../../outside/{A}/{NB}: a path that leaves the zip's folder (absolute or '..'), refused",
        f"skipped eve_{A}.ipynb: a symlink in the zip, refused",
        f"took alice {A}: alice_{A}.ipynb, submitted 2026-01-15 10:00:00 UTC (zip entry time, read as UTC)",
        f"refused mallory/{A}: {course.submitted / 'mallory'} is a symlink",
    ]


def test_student_folders_with_hostile_or_odd_names_are_reported(course, tmp_path):
    src = tmp_path / "subs"
    folders = {"-dash": "dash", "=HYPERLINK(1)": "formula", "bob smith": "bob", "x" * 70: "long",
               "\u0430lice": "cyrillic", "\uff41lice": "fullwidth"}
    for folder, tag in folders.items():
        (src / folder / A).mkdir(parents=True)
        (src / folder / A / NB).write_text(nb(tag))
        os.utime(src / folder / A / NB, (1768471200, 1768471200))     # 2026-01-15 10:00:00 UTC
    got = collect_folder(course, src)
    assert got == [("alice", A)]
    assert submitted(course, "alice") == nb("fullwidth")
    assert stamp(course, "alice") == "2026-01-15 10:00:00.000000 UTC"
    long = "x" * 70
    assert lines(got) == [
        f"refused -dash/{A}/{NB}: student folder '-dash': an id may not start with '-' (it reads as an option); "
        "rename it",
        f"refused =HYPERLINK(1)/{A}/{NB}: student folder '=HYPERLINK(1)': an id must start with a letter or a digit, "
        "not '=' (a spreadsheet reads '=', '+', '@' as the start of a formula); rename it",
        f"refused bob smith/{A}/{NB}: student folder 'bob smith': an id may not contain spaces; rename it",
        f"refused {long}/{A}/{NB}: student folder '{long}': it is 70 characters long; an id has at most 64; rename it",
        f"refused \u0430lice/{A}/{NB}: student folder '\u0430lice': '\u0430' (U+0430 CYRILLIC SMALL LETTER A) is not "
        "an ASCII letter; ids are ASCII letters, digits, '.', '_', '-' and '@', so that a look-alike letter cannot "
        "pose as another student; rename it",
        "changed student folder '\uff41lice' read as 'alice' (Unicode NFKC: fullwidth or compatibility letters)",
        f"took alice {A}: \uff41lice/{A}/{NB}, submitted 2026-01-15 10:00:00 UTC (file modification time)",
    ]
    # a real alice beside the fullwidth one: the look-alike is refused, never merged
    (src / "alice" / A).mkdir(parents=True)
    (src / "alice" / A / NB).write_text(nb("real alice"))
    os.utime(src / "alice" / A / NB, (1768471260, 1768471260))
    got = collect_folder(course, src)
    assert submitted(course, "alice") == nb("real alice")
    assert (f"refused \uff41lice/{A}/{NB}: '\uff41lice' would be student 'alice', as would 'alice'; rename one (or "
            "import a roster)") in lines(got)


def test_a_roster_names_a_folder_named_by_display_name(course, tmp_path):
    from autograder.roster import Student

    src = tmp_path / "subs"
    (src / "bob smith" / A).mkdir(parents=True)
    (src / "bob smith" / A / NB).write_text(nb("bob"))
    got = collect_folder(course, src, roster=Directory([Student("bsmith", "Bob", "Smith")]))
    assert got == [("bsmith", A)]
    assert lines(got)[0] == "changed student folder 'bob smith' is roster student 'bsmith' (by name)"


# ------------------------------------------------------------------------------------ zip limits

class RawZip:
    """A zip written byte by byte, so that an entry can carry any deflate stream and any header sizes."""

    def __init__(self):
        self.local, self.central, self.count = b"", b"", 0

    def add(self, name: str, deflated: bytes, crc: int, size: int, when=(2026, 1, 15, 10, 0, 0)):
        raw = name.encode()
        dostime = when[3] << 11 | when[4] << 5 | when[5] // 2
        dosdate = (when[0] - 1980) << 9 | when[1] << 5 | when[2]
        offset = len(self.local)
        self.local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, 8, dostime, dosdate, crc, len(deflated),
                                  size, len(raw), 0) + raw + deflated
        self.central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0x800, 8, dostime, dosdate, crc,
                                    len(deflated), size, len(raw), 0, 0, 0, 0, 0, offset) + raw
        self.count += 1

    def add_text(self, name: str, text: str, when=(2026, 1, 15, 10, 0, 0)):
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = text.encode()
        self.add(name, c.compress(data) + c.flush(), zlib.crc32(data), len(data), when)

    def write(self, path: Path) -> Path:
        end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, self.count, self.count, len(self.central), len(self.local), 0)
        path.write_bytes(self.local + self.central + end)
        return path


def zeros(chunks: int, chunk: int = 1 << 24) -> tuple[bytes, int, int]:
    """A deflate stream of ``chunks * chunk`` zero bytes, built without compressing all of them: after a
    full flush the compressor starts afresh, so each chunk compresses to the same bytes."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    seg = c.compress(b"\0" * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()
    crc = 0
    block = b"\0" * chunk
    for _ in range(chunks):
        crc = zlib.crc32(block, crc)
    return seg * chunks + tail, crc, chunks * chunk


def test_zip_bombs_are_skipped_and_the_honest_submissions_kept(course, tmp_path):
    bomb, crc, size = zeros(64)                       # 1 GiB of zeros in about 1 MB
    assert 0.9e6 < len(bomb) < 1.2e6 and size == 1 << 30
    small, small_crc, small_size = zeros(5, 1 << 22)   # 20 MiB in 20 kB: a ratio of about 1000
    z = RawZip()
    z.add_text(f"alice_{A}.ipynb", nb("alice"))
    z.add(f"bob_{A}.ipynb", bomb, crc, size)                       # honest header: 1 GiB
    z.add(f"carol_{A}.ipynb", bomb, crc, 1_000_000)                # the header lies: 1 MB
    z.add(f"dave_{A}.ipynb", small, small_crc, small_size)        # under the size limit, over the ratio
    z.add_text(f"erin_{A}.ipynb", nb("erin"))
    got = collect_zip(course, z.write(tmp_path / "bomb.zip"))
    assert got == [("alice", A), ("erin", A)]
    assert submitted(course, "alice") == nb("alice") and submitted(course, "erin") == nb("erin")
    assert [ln for ln in lines(got) if ln.startswith("skipped")] == [
        f"skipped bob_{A}.ipynb: it is 1024 MiB, more than 64 MiB (the limit for one file); not taken, the rest is kept",
        f"skipped carol_{A}.ipynb: unreadable (BadZipFile: Bad CRC-32 for file 'carol_{A}.ipynb')",
        f"skipped dave_{A}.ipynb: it inflates more than 100 times its {len(small)} compressed bytes (a zip bomb); "
        "not taken, the rest is kept",
    ]
    assert not (course.submitted / "bob").exists() and not (course.submitted / "dave").exists()
    assert sorted(p.name for p in course.workdir.iterdir()) == ["submitted"]      # no staging left behind


def test_the_total_limit_counts_bytes_written(course, tmp_path):
    z = tmp_path / "many.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for s in ("a1", "a2", "a3"):
            add(zf, f"{s}_{A}.ipynb", nb(s) + " " * 3000)
    got = collect_zip(course, z, limits=ZipLimits(max_total=7000))
    assert got == [("a1", A), ("a2", A)]
    assert f"skipped a3_{A}.ipynb: the files taken pass {7000 / 2**20:g} MiB together (the limit for one collect); " \
           "not taken, the rest is kept" in lines(got)


def test_names_and_times_as_zip_writers_encode_them(course, tmp_path):
    """UTF-8 names without the UTF-8 flag (many Windows tools), and the UTC extended-timestamp field
    (Info-ZIP's zip) over the DOS time."""
    z = RawZip()
    z.add_text(f"emile_{A}.ipynb", nb("emile"))
    data = nb("zoe").encode()
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    deflated = c.compress(data) + c.flush()
    z.add(f"zo\u00eb/{A}/{NB}", deflated, zlib.crc32(data), len(data))
    raw = z.write(tmp_path / "names.zip").read_bytes()
    # drop the UTF-8 flag from zoë's headers: the name stays UTF-8 bytes
    raw = raw.replace(struct.pack("<H", 0x800) + struct.pack("<H", 8), struct.pack("<H", 0) + struct.pack("<H", 8))
    (tmp_path / "names.zip").write_bytes(raw)
    with zipfile.ZipFile(tmp_path / "names.zip") as zf:
        assert f"zo\u00eb/{A}/{NB}" not in zf.namelist()         # zipfile alone reads it as cp437
    got = collect_zip(course, tmp_path / "names.zip")
    assert (f"refused zo\u00eb/{A}/{NB}: student folder 'zo\u00eb': '\u00eb' (U+00EB LATIN SMALL LETTER E WITH "
            "DIAERESIS) is not an ASCII letter; ids are ASCII letters, digits, '.', '_', '-' and '@', so that a "
            "look-alike letter cannot pose as another student; rename it") in lines(got)
    # the extended timestamp (UTC) wins over the DOS time
    z2 = tmp_path / "ut.zip"
    with zipfile.ZipFile(z2, "w") as zf:
        info = zipfile.ZipInfo(f"kim_{A}.ipynb", (2026, 1, 15, 23, 0, 0))
        info.extra = struct.pack("<HHB", 0x5455, 5, 1) + struct.pack("<i", 1768471200)   # 2026-01-15 10:00 UTC
        zf.writestr(info, nb("kim"))
    got = collect_zip(course, z2)
    assert stamp(course, "kim") == "2026-01-15 10:00:00.000000 UTC"
    assert "(zip entry time)" in lines(got)[-1]


# ------------------------------------------------------------------------------------ re-collect

def test_recollect_never_deletes_a_collected_notebook(course, tmp_path):
    def src(name: str, tag: str | None, when: int):
        root = tmp_path / name
        (root / "alice" / A).mkdir(parents=True)
        if tag is None:
            (root / "alice" / A / "notes.txt").write_text("forgot the notebook")
        else:
            (root / "alice" / A / NB).write_text(nb(tag))
            os.utime(root / "alice" / A / NB, (when, when))
        return root

    t0 = 1768471200                                     # 2026-01-15 10:00:00 UTC
    got = collect_folder(course, src("first", "v1", t0))
    assert got == [("alice", A)] and submitted(course, "alice") == nb("v1")
    # a folder without a notebook: the collected one stays, and the report says so
    got = collect_folder(course, src("empty", None, t0))
    assert got == [] and submitted(course, "alice") == nb("v1")
    assert lines(got) == [
        f"skipped alice/{A}/notes.txt: not a notebook (only .ipynb files are collected)",
        f"kept alice {A}: alice/{A}/ holds no notebook; the earlier collection is left as it was",
    ]
    # the same again: unchanged
    got = collect_folder(course, src("again", "v1", t0))
    assert lines(got) == [f"unchanged alice {A}: already collected, the same notebook"]
    # an older one: the collected, newer one stays
    got = collect_folder(course, src("older", "v0", t0 - 3600))
    assert submitted(course, "alice") == nb("v1")
    assert lines(got) == [f"kept alice {A}: the collected submission (2026-01-15 10:00:00 UTC) is newer than this "
                          "one (2026-01-15 09:00:00 UTC); left as it was"]
    # a newer one replaces it, and the earlier one is kept under replaced/
    got = collect_folder(course, src("newer", "v2", t0 + 3600))
    assert submitted(course, "alice") == nb("v2") and stamp(course, "alice") == "2026-01-15 11:00:00.000000 UTC"
    (kept,) = (course.workdir / "replaced" / "alice" / A).iterdir()
    assert (kept / NB).read_text() == nb("v1")
    assert (kept / "timestamp.txt").read_text() == "2026-01-15 10:00:00.000000 UTC"
    assert lines(got) == [
        f"took alice {A}: alice/{A}/{NB}, submitted 2026-01-15 11:00:00 UTC (file modification time)",
        f"replaced alice {A}: the earlier collection was moved to replaced/alice/{A}/{kept.name}",
    ]


# ------------------------------------------------------------------------------------ roster errors

def _roster_cli(course, tmp_path, data: bytes, *extra):
    path = tmp_path / "roster.csv"
    path.write_bytes(data)
    return _cli("roster", path, "--workdir", course.workdir, "--solutions", FIXTURES, "--notebooks",
                tmp_path / "nb", *extra)


def _students(course) -> dict:
    from nbgrader.api import Gradebook

    if not (course.workdir / "gradebook.db").exists():
        return {}
    with Gradebook(course.gradebook_url, "cnnlab") as gb:
        return {s.id: (s.first_name, s.last_name) for s in gb.students}


@pytest.mark.parametrize("data, message", [
    (b"id,first_name\nada,Ada\nbob,B\x81b\n",
     "roster not imported: roster.csv: byte 27 (0x81) is not UTF-8, and the file is not UTF-16 or Windows-1252 "
     "either; save it from your spreadsheet as \"CSV UTF-8\" and import it again"),
    (b"id,first_name\nada,Ada\nbob,Bob\nada,Ada again\n",
     "roster not imported: roster.csv: line 4: the id 'ada' is already on line 2; each student must appear once "
     "(remove the duplicate, or choose a column of unique ids with --id-column)"),
    (b"First name,Last name\nAda,Lovelace\n",
     "roster not imported: roster.csv: the roster has no student id column (looked for Username, Login ID, SIS Login "
     "ID, Student ID, ID, Email; its columns: First name, Last name); name the column students submit under with "
     "--id-column"),
    (b"Username,First name\nada,Ada\n=cmd|' /C calc'!A0,Eve\n",
     "roster not imported: roster.csv: line 3: the id \"=cmd|' /C calc'!A0\" is refused: an id must start with a "
     "letter or a digit, not '=' (a spreadsheet reads '=', '+', '@' as the start of a formula); fix the file, or "
     "choose another column with --id-column"),
])
@pytest.mark.slow   # the CLI in fresh processes (several seconds of CPU each): not in the fast tier
def test_roster_errors_name_the_cause_and_import_nothing(course, tmp_path, data, message):
    out = _roster_cli(course, tmp_path, data)
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.splitlines() == [message] and out.stderr == ""
    assert _students(course) == {} and not (course.workdir / "roster.csv").exists()


@pytest.mark.slow   # the CLI in fresh processes (several seconds of CPU each): not in the fast tier
def test_roster_encodings_lms_exports_use(course, tmp_path):
    excel_utf16 = "\ufeffUsername\tFirst name\tLast name\nada\tAda\tLovelace\nzoe\tZo\u00eb\tKrav\u010d\n"
    out = _roster_cli(course, tmp_path, excel_utf16.encode("utf-16"))          # BOM, then UTF-16
    assert out.returncode == 0, out.stdout
    assert _students(course)["zoe"] == ("Zo\u00eb", "Krav\u010d")
    out = _roster_cli(course, tmp_path, "Username,First name\nrene,Ren\u00e9\n".encode("cp1252"))
    assert out.returncode == 0, out.stdout
    assert out.stdout.splitlines()[0] == ("note: roster.csv is not UTF-8 (byte 28 is 0xe9); read it as Windows-1252: "
                                          "check the names with accents in formgrader")
    assert _students(course)["rene"] == ("Ren\u00e9", None)
    out = _roster_cli(course, tmp_path, "\ufeffUsername;First name\nmia;M\u00eda\n".encode("utf-8"))
    assert out.returncode == 0 and out.stdout.startswith("imported 1 student(s)")


def test_roster_names_are_data_in_roster_csv(course, tmp_path):
    from autograder.roster import import_roster, load_saved

    evil = {"a1": '=HYPERLINK("http://evil.example","click")', "a2": "+cmd|' /C calc'!A0", "a3": "@SUM(1+1)",
            "a4": "-2+3"}
    path = tmp_path / "r.csv"
    with open(path, "w", newline="") as fh:
        import csv

        w = csv.writer(fh)
        w.writerow(["Username", "First name", "Last name"])
        for sid, first in evil.items():
            w.writerow([sid, first, "Tab\tname"])
    import_roster(course, path)
    text = (course.workdir / "roster.csv").read_text()
    for line in text.splitlines()[1:]:
        cells = next(iter(__import__("csv").reader([line])))
        assert all(not c or c[0] not in "=+-@\t\r" for c in cells), line
    assert {s.id: s.first_name for s in load_saved(course)} == evil          # read back as they were
    assert {k: v[0] for k, v in _students(course).items()} == evil            # the gradebook holds the data


# ------------------------------------------------------------------------------------ demo

@pytest.mark.slow   # the CLI in fresh processes (several seconds of CPU each): not in the fast tier
def test_demo_refuses_a_folder_it_did_not_make(tmp_path):
    work = tmp_path / "mine"
    work.mkdir()
    (work / "thesis.tex").write_text("precious")
    out = _cli("demo", "--solutions", FIXTURES, "--notebooks", tmp_path / "nb", "--workdir", work, "--no-progress")
    assert out.returncode == 2
    assert out.stdout.strip() == (f"demo: {work} is not empty (thesis.tex) and the demo did not make it; nothing was "
                                  "changed. Give a new or empty folder with --workdir")
    assert sorted(p.name for p in work.iterdir()) == ["thesis.tex"] and (work / "thesis.tex").read_text() == "precious"
    assert not (tmp_path / "nb").exists()


def test_demo_replaces_only_what_an_earlier_demo_made(tmp_path, capsys):
    from autograder.cli import DEMO_MARK, _demo_folder

    work = tmp_path / "demo"
    assert _demo_folder(work) == (None, set()) and (work / DEMO_MARK).is_file()
    (work / "submitted" / "x").mkdir(parents=True)
    (work / "gradebook.db").write_text("db")
    (work / "made_later").mkdir()
    (work / DEMO_MARK).write_text("made by the demo\nsubmitted\ngradebook.db\nmade_later\n")
    (work / "notes.txt").write_text("mine")
    assert _demo_folder(work) == (None, {"notes.txt"})
    assert sorted(p.name for p in work.iterdir()) == [DEMO_MARK, "notes.txt"]
    assert capsys.readouterr().out.splitlines() == [
        f"demo: replacing the earlier demo in {work}",
        "demo: left as they were (the demo did not make them): notes.txt",
    ]


# ------------------------------------------------------------------------------------ a full disk, one name in two
# Unicode forms, submission times, --due without the environment on PATH

def _tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                         text=True)
    if out.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {out.stderr.strip() or 'mount failed'}")


def test_collect_onto_a_full_disk_stops_names_it_and_a_rerun_takes_everything(tmp_path, capsys):
    """Six Canvas students' notebooks of 200 kB onto a file system with room for two or three: a
    full disk is the machine's problem, not the students' files (it was reported as 'unreadable'
    for four of them, "collected 2", exit 0). The collect stops with one line naming the file system
    and the fix, exits 1, leaves no half-written notebook, and the same collect after freeing space
    takes everything."""
    import random

    from autograder.cli import main

    mnt = tmp_path / "mnt"
    work = mnt / "w"
    rng = random.Random(7)
    payload = {s: nb(s + " " + "".join(rng.choice("0123456789abcdef") for _ in range(200_000)))
               for s in ("ada", "bea", "cyd", "dan", "eve", "fay")}
    z = tmp_path / "canvas.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for k, (s, data) in enumerate(payload.items()):
            add(zf, f"{s}x_{100 + k}_{5000 + k}_{A}.ipynb", data, (2026, 1, 15, 10, k, 0))
    argv = ["collect", str(z), "--workdir", str(work), "--solutions", str(FIXTURES), "--notebooks",
            str(tmp_path / "nb")]
    _tmpfs(mnt, "2m")
    try:
        work.mkdir()
        filler = mnt / "filler.bin"
        filler.write_bytes(b"\0" * (2 * 2**20 - 520 * 1024))        # about 500 kB left: two notebooks fit
        assert main(argv) == 1
        out = capsys.readouterr().out.splitlines()
        assert len(out) == 1, out
        assert out[0].startswith(f"collect: disk full: no space left on the file system at {mnt} (holding {work}; ")
        assert out[0].endswith("Free some space there, then run the same command again: what was not finished is "
                               "redone."), out
        assert "unreadable" not in out[0]
        # nothing half-written: every notebook in submitted/ is whole, no staging folder is left behind
        taken = sorted(p.parent.parent.name for p in (work / "submitted").glob(f"*/{A}/{NB}"))
        assert 1 <= len(taken) < 6, taken
        for p in (work / "submitted").rglob("*.ipynb"):
            assert p.read_text() == payload[p.parent.parent.name[:-1]]
        assert not [p.name for p in (work / "submitted").rglob("*") if p.is_file()
                    and p.name not in (NB, "timestamp.txt")]
        assert not list(work.glob(".collect-*"))
        filler.unlink()
        assert main(argv) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[-1] == f"collected 6 submission(s) into {work / 'submitted'}"
        assert sum(ln.startswith("  unchanged ") for ln in out) == len(taken)
        assert sum(ln.startswith("  took ") for ln in out) == 6 - len(taken)
        for k, (s, data) in enumerate(payload.items()):
            assert (work / "submitted" / f"{s}x" / A / NB).read_text() == data
            assert (work / "submitted" / f"{s}x" / A / "timestamp.txt").read_text() == \
                f"2026-01-15 10:{k:02d}:00.000000 UTC"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_write_that_fails_is_never_blamed_on_the_students_file(course, tmp_path, monkeypatch):
    """Where no tmpfs can be mounted the same rule holds: an error while writing (here EIO) stops the
    collect (it was 'skipped ...: unreadable' for every student and the collect went on)."""
    import builtins
    import errno

    z = tmp_path / "flat.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, f"ada_{A}.ipynb", nb("ada"))
        add(zf, f"bea_{A}.ipynb", nb("bea"))
    real_open = builtins.open

    class Failing:
        def __init__(self, fh):
            self.fh = fh

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(errno.EIO, "Input/output error")

    def fake_open(file, mode="r", *args, **kwargs):
        fh = real_open(file, mode, *args, **kwargs)
        return Failing(fh) if "w" in mode and str(file).endswith(".ipynb") else fh

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(OSError) as exc:
        collect_zip(course, z)
    assert exc.value.errno == errno.EIO
    assert not (course.submitted / "ada").exists() and not list(course.workdir.glob(".collect-*"))


def test_one_canvas_student_in_two_unicode_forms_is_one_student(course, tmp_path):
    """Canvas user 1009's two uploads, one file name in NFC and one in NFD (a macOS re-zip): one
    student, whose later upload wins, with or without a roster; two different user ids of one
    display name are still refused."""
    from autograder.roster import Student

    nfc = unicodedata.normalize("NFC", "\u00e1lvarezjos\u00e9")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    z = tmp_path / "canvas.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, f"smithjohn_2001_7001_{A}.ipynb", nb("john one"), (2026, 1, 15, 10, 0, 0))
        add(zf, f"smithjohn_2002_7002_{A}.ipynb", nb("john two"), (2026, 1, 15, 10, 0, 0))
        add(zf, f"{nfc}_1009_7003_{A}.ipynb", nb("jose first"), (2026, 1, 15, 10, 0, 0))
        add(zf, f"{nfd}_1009_7004_{A}-1.ipynb", nb("jose second"), (2026, 1, 15, 11, 30, 0))
    refused = [
        f"refused smithjohn_2001_7001_{A}.ipynb: 'smithjohn' would be student 'smithjohn', as would 'smithjohn "
        "(id 2002)'; rename one (or import a roster)",
        f"refused smithjohn_2002_7002_{A}.ipynb: 'smithjohn' would be student 'smithjohn', as would 'smithjohn "
        "(id 2001)'; rename one (or import a roster)",
    ]
    for roster, sid in [(None, "alvarezjose"), (Directory([Student("jose", "Jos\u00e9", "\u00c1lvarez",
                                                                   lms_ids=("1009",))]), "jose")]:
        c = course.with_(workdir=tmp_path / sid)
        got = collect_zip(c, z, roster=roster)
        assert got == [(sid, A)]
        assert submitted(c, sid) == nb("jose second")
        assert lines(got) == refused + [
            f"skipped {nfc}_1009_7003_{A}.ipynb: an earlier submission of {sid} {A}; {nfd}_1009_7004_{A}-1.ipynb was "
            "taken, the later Canvas upload (file id 7004 > 7003)",
            f"took {sid} {A}: {nfd}_1009_7004_{A}-1.ipynb (copy suffix '-1'), submitted 2026-01-15 11:30:00 UTC (zip "
            "entry time, read as UTC)",
        ]


def test_real_times_are_kept_when_the_winners_happen_to_share_one(course, tmp_path):
    """The download-stamp rule looks at every notebook of the zip: here the entries carry three
    times and the two students' latest copies share one; both times are real and recorded (all
    were dropped as "every file of the zip carries the same time")."""
    t1, t2, t3 = (2026, 1, 15, 10, 0, 0), (2026, 1, 15, 11, 30, 0), (2026, 1, 16, 9, 0, 0)
    z = tmp_path / "plain.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, f"hw/ada_{A}.ipynb", nb("ada 0"), t1)
        add(zf, f"hw/ada_{A}_1.ipynb", nb("ada 1"), t2)
        add(zf, f"hw/ada_{A}_2.ipynb", nb("ada 2"), t3)
        add(zf, f"hw/dara_{A} (3).ipynb", nb("dara 3"), t3)
        add(zf, f"hw/dara_{A}.ipynb", nb("dara 0"), t1)
    got = collect_zip(course, z)
    assert got == [("ada", A), ("dara", A)]
    assert not [ln for ln in lines(got) if ln.startswith("note ")]
    assert stamp(course, "ada") == stamp(course, "dara") == "2026-01-16 09:00:00.000000 UTC"
    # two students who submitted at the same moment, among others who did not: real times, kept
    z2 = tmp_path / "canvas.zip"
    with zipfile.ZipFile(z2, "w") as zf:
        add(zf, f"ab_101_7001_{A}.ipynb", nb("ab"), t2)
        add(zf, f"cd_102_7002_{A}.ipynb", nb("cd"), t2)
        add(zf, f"ef_103_7003_{A}.ipynb", nb("ef"), t1)
    c2 = course.with_(workdir=tmp_path / "w2")
    got = collect_zip(c2, z2)
    assert not [ln for ln in lines(got) if ln.startswith("note ")]
    assert stamp(c2, "ab") == stamp(c2, "cd") == "2026-01-15 11:30:00.000000 UTC"
    # every notebook of the zip with one time (resubmissions included): a download stamp, and said so
    z3 = tmp_path / "stamped.zip"
    with zipfile.ZipFile(z3, "w") as zf:
        add(zf, f"ada_{A}.ipynb", nb("ada 0"), t3)
        add(zf, f"ada_{A}_1.ipynb", nb("ada 1"), t3)
        add(zf, f"dara_{A}.ipynb", nb("dara"), t3)
    c3 = course.with_(workdir=tmp_path / "w3")
    got = collect_zip(c3, z3)
    assert ("note all 3 notebooks of the zip carry the same time (2026-01-16 09:00:00 UTC), the time the zip was "
            "made, not when each was submitted: no submission time is recorded, so none is counted late; check late "
            "work in the LMS") in lines(got)
    assert stamp(c3, "ada") is None and stamp(c3, "dara") is None


def test_a_submission_without_a_time_never_silently_replaces_one_with_a_time(course, tmp_path):
    """A collected notebook with a submission time, then another of the same student whose time is
    unknown: which is newer cannot be told, so the collected one stays, and the report says so and
    how to take the other; without a time on either side the later collect's is taken, and said."""
    z = tmp_path / "first.zip"
    with zipfile.ZipFile(z, "w") as zf:
        add(zf, f"wrongdara_1004_5002_{A}.ipynb", nb("dara timed"), (2026, 1, 15, 10, 0, 0))
    collect_zip(course, z)
    z2 = tmp_path / "no-time.zip"
    with zipfile.ZipFile(z2, "w") as zf:
        add(zf, f"wrongdara_1004_5030_{A}.ipynb", nb("dara no time"), (1980, 1, 1, 0, 0, 0))
    got = collect_zip(course, z2)
    assert got == []
    assert submitted(course, "wrongdara") == nb("dara timed")
    assert stamp(course, "wrongdara") == "2026-01-15 10:00:00.000000 UTC"
    assert lines(got) == [
        f"kept wrongdara {A}: this submission has no time (no time in the zip entry), the collected one was "
        "submitted 2026-01-15 10:00:00 UTC; which is newer cannot be told, so the collected one is left as it "
        f"was (to take this one, move submitted/wrongdara/{A}/ into replaced/ and collect again)"]
    # neither with a time: the later collect's is taken, the earlier moved to replaced/, both said
    c2 = course.with_(workdir=tmp_path / "w2")
    collect_zip(c2, z2)
    z3 = tmp_path / "no-time-2.zip"
    with zipfile.ZipFile(z3, "w") as zf:
        add(zf, f"wrongdara_1004_5031_{A}.ipynb", nb("dara later"), (1980, 1, 1, 0, 0, 0))
    got = collect_zip(c2, z3)
    assert got == [("wrongdara", A)] and submitted(c2, "wrongdara") == nb("dara later")
    (kept,) = (c2.workdir / "replaced" / "wrongdara" / A).iterdir()
    assert lines(got) == [
        f"took wrongdara {A}: wrongdara_1004_5031_{A}.ipynb, no submission time",
        f"replaced wrongdara {A}: the earlier collection was moved to replaced/wrongdara/{A}/{kept.name} (neither "
        "has a submission time: this later collect's is taken)",
    ]


@pytest.mark.slow   # the CLI in a fresh process
def test_due_on_a_first_collect_without_the_environment_on_path(course, tmp_path):
    """`.venv/bin/python -m autograder collect --due ...` from a shell whose PATH lacks the
    environment's bin/ (nbgrader runs `alembic` from there): it failed with "[Errno 2] No such file or
    directory: 'alembic'" after collecting."""
    import shutil

    empty = tmp_path / "bin"
    empty.mkdir()
    assert shutil.which("alembic", path=str(empty)) is None
    out = subprocess.run([sys.executable, "-m", "autograder", "collect", canvas_zip(tmp_path / "submissions.zip"),
                          "--due", f"{A}=2026-01-15T12:00:00Z", "--workdir", course.workdir, "--solutions",
                          FIXTURES, "--notebooks", tmp_path / "nb"], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PATH=str(empty)), cwd=Path(__file__).parent.parent)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[-1] == f"due date of {A}: 2026-01-15 12:00:00 UTC"
    from nbgrader.api import Gradebook

    with Gradebook(course.gradebook_url, "cnnlab") as gb:
        assert gb.find_assignment(A).duedate == dt.datetime(2026, 1, 15, 12, 0)
    # an unknown assignment in --due is refused before anything is collected
    fresh = tmp_path / "fresh"
    bad = _cli("collect", tmp_path / "submissions.zip", "--due", "99_nope=2026-01-15T12:00:00Z", "--workdir", fresh,
               "--solutions", FIXTURES, "--notebooks", tmp_path / "nb")
    assert bad.returncode == 1 and bad.stdout.strip() == "collect failed: --due names unknown assignment(s) 99_nope"
    assert not (fresh / "submitted").exists() and not (fresh / "gradebook.db").exists()
