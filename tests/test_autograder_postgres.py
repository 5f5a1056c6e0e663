"""The gradebook on a real PostgreSQL server started by the test (loopback, throwaway cluster).

Skips cleanly when PostgreSQL's binaries (Debian's postgresql package) or a Python driver
(psycopg 3 or psycopg2) are not installed, or the server does not start.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
FIXTURES = Path(__file__).parent / "fixtures" / "toy" / "solutions"
A = "00_toy"


def _driver() -> str | None:
    for mod, scheme in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        try:
            __import__(mod)
            return scheme
        except ImportError:
            continue
    return None


def _bindir() -> Path | None:
    for cand in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(cand) / "initdb").exists():
            return Path(cand)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pg_url(tmp_path_factory):
    scheme, bindir = _driver(), _bindir()
    if scheme is None:
        pytest.skip("no PostgreSQL driver for Python (psycopg or psycopg2)")
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (initdb not found)")
    base = Path(tempfile.mkdtemp(prefix="cnnlab-pg-"))  # outside pytest's private (0700) tmp tree
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres system user
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser")
        try:
            shutil.chown(data, "postgres")
            shutil.chown(data.parent, "postgres")
        except (LookupError, PermissionError):
            pytest.skip("no postgres system user")
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    run = lambda *cmd: subprocess.run([*prefix, *cmd], capture_output=True, text=True, timeout=120)  # noqa: E731
    out = run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
    if out.returncode != 0:
        pytest.skip(f"initdb failed: {out.stderr[-300:]}")
    out = run(str(bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60", "-l", str(data / "log"),
              "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {data}", "start")
    if out.returncode != 0:
        pytest.skip(f"PostgreSQL did not start: {out.stderr[-300:]}")
    try:
        yield f"{scheme}://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        time.sleep(0.2)
        shutil.rmtree(base, ignore_errors=True)


def test_grading_into_postgresql(pg_url, tmp_path):
    import nbformat

    from autograder import engine
    from autograder.collect import collect_folder
    from autograder.config import Course, Limits
    from autograder.export import grade_table
    from autograder.release import release
    from autograder.sample_class import make_class

    course = Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=tmp_path / "work", db_url=pg_url,
                    limits=Limits(cell_timeout=10, notebook_timeout=60, memory_mb=3072))
    release([A], course=course)
    make_class(FIXTURES, course.notebooks, tmp_path / "class", [A], kinds=("reference", "partial", "blank"))
    collect_folder(course, tmp_path / "class")
    results = engine.autograde(course, jobs=2, progress=False, echo=lambda *_: None)
    assert {r.student: r.score for r in results} == {"reference": 6, "partial": 3, "blank": 0}
    _, table, maxes = grade_table(course)
    assert {s: table[s][A] for s in table} == {"reference": 6, "partial": 3, "blank": 0}
    assert maxes == {A: 6}
    assert not (course.workdir / "gradebook.db").exists()  # nothing went to SQLite
    assert nbformat  # imported for side effects of the fixture's course


def _fresh_database(pg_url: str, name: str) -> str:
    """A new, empty database on the test's server; its URL."""
    from sqlalchemy import create_engine, text

    engine = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


def test_schema_creation_waits_for_the_other_grader(pg_url):
    """Two graders' first runs on a fresh database create the schema one after the other (nbgrader
    alone races in CREATE TABLE: IntegrityError pg_type_typname_nsp_index). Shown without timing:
    while the test holds the lock, a grader's schema creation waits on it, and creates nothing."""
    import threading

    from sqlalchemy import create_engine, inspect, text

    from autograder import store

    url = _fresh_database(pg_url, "fresh_lock")
    holder = create_engine(url, future=True)
    done, failed = threading.Event(), []

    def grader():
        try:
            store.ensure_schema(url)
        except Exception as exc:  # noqa: BLE001 - reported below
            failed.append(exc)
        done.set()

    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": store.LOCK_KEY})
        conn.commit()
        t = threading.Thread(target=grader)
        t.start()
        deadline = time.monotonic() + 120
        waiting = 0
        while time.monotonic() < deadline and not waiting and not done.is_set():
            waiting = conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                                        "AND pid <> pg_backend_pid()")).scalar()
            conn.commit()
            time.sleep(0.05)
        assert waiting == 1, "the grader did not wait for the schema lock"
        assert inspect(holder).get_table_names() == []          # nothing created while another holds it
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": store.LOCK_KEY})
        conn.commit()
    t.join(timeout=120)
    holder.dispose()
    assert done.is_set() and not failed, failed
    from sqlalchemy import create_engine as ce

    check = ce(url, future=True)
    tables = set(inspect(check).get_table_names())
    check.dispose()
    assert {"alembic_version", "submitted_assignment", "grade", store.TABLE} <= tables


def test_two_first_runs_at_once_on_a_fresh_database(pg_url, tmp_path):
    """The issue's case: two graders start their first autograde on a fresh database at the same
    moment (each with its own work folder and students): both finish, every grade is there."""
    import subprocess
    import sys

    from autograder.collect import collect_folder
    from autograder.config import Course, Limits
    from autograder.export import grade_table
    from autograder.release import release
    from autograder.sample_class import make_class

    url = _fresh_database(pg_url, "fresh_runs")
    lim = Limits(cell_timeout=10, notebook_timeout=60, memory_mb=3072)
    courses = [Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=tmp_path / f"work{i}", db_url=url,
                      limits=lim) for i in (1, 2)]
    release([A], course=Course(solutions=FIXTURES, notebooks=tmp_path / "nb", workdir=tmp_path / "w0"))
    make_class(FIXTURES, tmp_path / "nb", tmp_path / "class", [A], kinds=("reference", "partial", "blank", "wrong"))
    for course, part in zip(courses, (("reference", "partial"), ("blank", "wrong"))):
        for s in part:
            shutil.copytree(tmp_path / "class" / s, tmp_path / f"class_{course.workdir.name}" / s)
        collect_folder(course, tmp_path / f"class_{course.workdir.name}")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    procs = [subprocess.Popen([sys.executable, "-m", "autograder", "autograde", "--no-progress", "-j", "1",
                               "--workdir", c.workdir, "--solutions", FIXTURES, "--notebooks", tmp_path / "nb",
                               "--db", url, "--cell-timeout", "10"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, env=env) for c in courses]
    outs = [p.communicate(timeout=900)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert not any("IntegrityError" in o or "Traceback" in o for o in outs), outs
    _, table, _ = grade_table(courses[0])
    assert {s: table[s][A] for s in table} == {"reference": 6, "partial": 3, "blank": 0, "wrong": 0}
