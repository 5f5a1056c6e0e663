"""Clear errors (issue 20, item 6): a failure of the machine or of the input is one or two lines
that name the cause and the fix, never a traceback, a pointer to one, or a wrong hint.

Each test is the reviewer's case, run as the instructor runs it (the CLI), with the wrong output
it gave first asserted away.
"""

from __future__ import annotations

import sqlite3
import subprocess

import pytest

from test_grading_trust import (A, FIXTURES, _cli, _collect, _course, _fill, _run, _scripted, _tmpfs, released)  # noqa: F401 (a fixture)


def _graded(tmp_path, released, monkeypatch, capsys, students=("alice", "bob")):
    course = _course(tmp_path, released)
    _collect(course, released, list(students), tmp_path)
    _scripted(monkeypatch, tmp_path / "plan", {s: ["ok"] for s in students})
    rc, out = _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "--no-progress")
    assert rc == 0, out
    return course


@pytest.mark.slow   # mounts a small tmpfs and fills it: the full suite runs it
def test_feedback_on_a_full_disk_is_one_line_naming_it_and_leaves_no_page(tmp_path, released, monkeypatch, capsys):
    work = tmp_path / "work"
    _tmpfs(work, "8m")
    try:
        course = _graded(tmp_path, released, monkeypatch, capsys)
        filler = _fill(work)
        rc, out = _cli(course, capsys, "feedback")
        lines = [ln for ln in out.strip().splitlines() if ln.strip()]
        assert rc == 1, out
        assert "above traceback" not in out and "Traceback" not in out and "File \"" not in out, out
        assert f"disk full: no space left on the file system at {work}" in out, out
        assert len(lines) == 1, out
        assert not list(course.feedback.rglob("*.html")) if course.feedback.exists() else True
        filler.unlink()
        rc, out = _cli(course, capsys, "feedback")
        assert rc == 0 and len(list(course.feedback.rglob("*.html"))) == 2, out
    finally:
        subprocess.run(["umount", "-l", str(work)], check=False)


def test_a_students_feedback_failure_names_the_error_nbgrader_logged(tmp_path, released, monkeypatch, capsys):
    """Not "raise NbGraderException(msg)" nor "Please see the above traceback": the error itself."""
    course = _graded(tmp_path, released, monkeypatch, capsys)
    (course.autograded / "bob" / A / f"{A}.ipynb").write_text("{not json")
    rc, out = _cli(course, capsys, "feedback")
    assert rc == 1, out
    assert "NbGraderException" not in out and "above traceback" not in out and "File \"" not in out, out
    bob = [ln for ln in out.splitlines() if "bob/00_toy" in ln]
    assert len(bob) == 1 and "NotJSONError" in bob[0] and "does not appear to be JSON" in bob[0], out
    assert (course.feedback / "alice" / A / f"{A}.html").is_file()


def test_a_log_that_only_says_disk_full_does_not_stop_the_class(tmp_path):
    """The log's word is checked by a write of our own: with space left, nothing is raised and no
    probe is left behind (an error message quoting a submission cannot stop everyone's feedback)."""
    from autograder import feedback

    folder = tmp_path / "feedback"
    feedback._confirm_disk_full(folder)
    assert list(folder.iterdir()) == []


@pytest.mark.slow   # mounts a small tmpfs and fills it: the full suite runs it
def test_export_and_roster_on_a_full_disk_name_it_and_leave_no_temporary_file(tmp_path, released, monkeypatch, capsys):
    work = tmp_path / "work"
    _tmpfs(work, "8m")
    try:
        course = _graded(tmp_path, released, monkeypatch, capsys)
        roster = tmp_path / "roster.csv"
        roster.write_text("id,first_name,last_name\nalice,Alice,A\nbob,Bob,B\n" + "".join(
            f"s{i:04d},First{i},Last{i}\n" for i in range(3000)))
        filler = _fill(work)
        rc, out = _cli(course, capsys, "export")
        assert rc == 1, out
        assert f"export: disk full: no space left on the file system at {work}" in out, out
        assert "Traceback" not in out and len(out.strip().splitlines()) == 1, out
        left = sorted(p.name for p in (course.exports).iterdir()) if course.exports.exists() else []
        assert not [n for n in left if n.endswith(".tmp")], left
        rc, out = _cli(course, capsys, "roster", roster)
        assert rc == 1, out
        assert "disk full: no space left on the file system at" in out and "Free some space" in out, out
        assert "OperationalError" not in out and "Traceback" not in out and len(out.strip().splitlines()) == 1, out
        assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]
        filler.unlink()
        assert _cli(course, capsys, "export")[0] == 0
        rc, out = _cli(course, capsys, "roster", roster)
        assert rc == 0 and "imported 3002 student(s)" in out, out
    finally:
        subprocess.run(["umount", "-l", str(work)], check=False)


def test_a_roster_copy_that_cannot_be_written_leaves_no_temporary_file(tmp_path):
    from autograder.roster import Student, write_roster

    mnt = tmp_path / "mnt"
    _tmpfs(mnt, "1m")
    try:
        (mnt / "other.tmp").write_text("not ours")
        filler = _fill(mnt)
        with pytest.raises(OSError):
            write_roster([Student(f"s{i:05d}", "First", "Last") for i in range(20000)], mnt / "roster.csv")
        assert sorted(p.name for p in mnt.iterdir()) == ["filler.bin", "other.tmp"]
        filler.unlink()
        write_roster([Student("ada", "Ada", "L")], mnt / "roster.csv")
        assert sorted(p.name for p in mnt.iterdir()) == ["other.tmp", "roster.csv"]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


# ----------------------------------------------------------------------------- the gradebook

def test_an_unreachable_postgresql_names_the_variable_as_it_is_spelled(tmp_path, released, capsys):
    course = _course(tmp_path, released)
    rc, out = _cli(course, capsys, "export", "--db", "postgresql+psycopg://grader@127.0.0.1:9/nowhere")
    assert rc == 1 and "$CNNLAB_DB" in out and "$cnnlab_db" not in out, out


@pytest.mark.parametrize("url, says", [
    ("mysql://grader@127.0.0.1/grades", "mysql is not supported"),
    ("oracle://grader@127.0.0.1/grades", "oracle is not supported"),
    ("gradebook.db", "not a database URL"),
    ("postgresql+nodriver://grader@127.0.0.1/grades", "no driver nodriver"),
])
def test_a_database_the_tool_does_not_support_is_one_line_saying_which_it_does(tmp_path, released, capsys, url, says):
    course = _course(tmp_path, released)
    for cmd in (["export"], ["roster", tmp_path / "r.csv"], ["feedback"]):
        rc, out = _cli(course, capsys, *cmd, "--db", url)
        assert rc == 2, out
        assert "Traceback" not in out and "MySQLdb" not in out and len(out.strip().splitlines()) == 1, out
        assert says in out and "SQLite" in out and "postgresql+psycopg://" in out, out
    assert not course.workdir.exists()


def test_a_postgresql_driver_that_is_not_installed_says_which_to_write(tmp_path, released, capsys):
    """The lock installs psycopg (3); a URL naming psycopg2 where it is missing gets the URL to write."""
    try:
        import psycopg2  # noqa: F401
        pytest.skip("psycopg2 is installed here")
    except ImportError:
        pass
    course = _course(tmp_path, released)
    rc, out = _cli(course, capsys, "export", "--db", "postgresql+psycopg2://grader:secret@127.0.0.1:9/grades")
    assert rc == 2 and "Traceback" not in out and len(out.strip().splitlines()) == 1, out
    assert "psycopg2" in out and "not installed" in out and "postgresql+psycopg://" in out, out
    assert "secret" not in out, out


def test_a_work_folder_that_does_not_exist_is_named_with_the_fix(tmp_path, released, capsys):
    course = _course(tmp_path, released)
    for cmd, code in ((["export"], 1), (["feedback"], 2)):
        rc, out = _cli(course, capsys, *cmd)
        assert rc == code, out
        assert "readable and writable" not in out and len(out.strip().splitlines()) <= 2, out
        assert f"the work folder {course.workdir} does not exist" in out and "--workdir" in out, out
        assert "collect" in out
    assert not course.workdir.exists()


@pytest.mark.slow   # waits out SQLite's busy timeout (5 s): the full suite runs it, the fast tier does not
def test_a_locked_gradebook_says_another_process_holds_it(tmp_path, released, monkeypatch, capsys):
    course = _graded(tmp_path, released, monkeypatch, capsys, students=("alice",))
    holder = sqlite3.connect(course.workdir / "gradebook.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        rc, out = _cli(course, capsys, "export")
    finally:
        holder.close()
    assert rc == 1, out
    assert "readable and writable" not in out and len(out.strip().splitlines()) <= 2, out
    assert "locked by another process" in out and "again" in out, out
    assert _cli(course, capsys, "export")[0] == 0


# ----------------------------------------------------------------------------- unknown names

def test_an_unknown_student_is_named_and_nothing_is_graded(tmp_path, released, monkeypatch, capsys):
    course = _graded(tmp_path, released, monkeypatch, capsys)
    for cmd in (["autograde", "--unsafe-no-sandbox", "--no-progress", "--force"], ["feedback"]):
        rc, out = _cli(course, capsys, *cmd, "--student", "alice", "nobody")
        assert rc == 2, out
        assert "graded 0" not in out and "wrote 0" not in out and len(out.strip().splitlines()) == 1, out
        assert "'nobody'" in out and "alice, bob" in out and "'alice'" not in out, out
    assert (tmp_path / "plan" / "alice.count").read_text() == "1"      # graded once, by _graded
    assert not course.feedback.exists()
    rc, out = _cli(course, capsys, "autograde", A, "--student", "alice", "--unsafe-no-sandbox", "--no-progress")
    assert rc == 0 and "unchanged" in out, out


def test_similarity_of_an_unknown_assignment_names_it_and_the_known_ones(tmp_path, released, capsys):
    course = _course(tmp_path, released)
    rc, out = _cli(course, capsys, "similarity", "99_nope")
    assert rc == 2, out
    assert "release 99_nope" not in out and len(out.strip().splitlines()) == 1, out
    assert "unknown assignment '99_nope'" in out and A in out and "--solutions" in out, out


def test_exports_list_of_submissions_a_stopped_run_left_names_why_it_stopped(tmp_path, released, monkeypatch, capsys):
    """export never printed the "cause above" its list pointed to: the recorded cause says it."""
    course = _course(tmp_path, released)
    _collect(course, released, ["a_first", "b"], tmp_path)
    _scripted(monkeypatch, tmp_path / "plan", {"a_first": ["enospc"], "b": ["ok"]})
    assert _cli(course, capsys, "autograde", "--unsafe-no-sandbox", "-j", "1", "--no-progress")[0] == 1
    rc, out = _cli(course, capsys, "export")
    assert rc == 1 and "INCOMPLETE" in out, out
    b = [ln for ln in out.splitlines() if ln.strip().startswith("b/00_toy:")]
    assert len(b) == 1 and "cause above" not in b[0], out
    assert "the run stopped before grading it" in b[0] and "disk full" in b[0] and "autograde again" in b[0], out
    assert "a_first" not in b[0], out   # the other student's path stays on its own line
