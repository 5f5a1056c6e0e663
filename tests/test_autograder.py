"""The instructor tool on the toy course (tests/fixtures/toy): release, repair, collect, the demo,
export, validate, the Gradescope package, the CLI."""

from __future__ import annotations

import copy
import csv
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from autograder.config import Course, Limits
from autograder.release import LeakError, find_leaks, release
from autograder.repair import read_submission, repair

FIXTURES = Path(__file__).parent / "fixtures" / "toy" / "solutions"
A = "00_toy"
ENV = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))


def _cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], capture_output=True,
                          text=True, env=ENV, timeout=timeout)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    course = Course(solutions=FIXTURES, notebooks=root / "notebooks", workdir=root / "work",
                    limits=Limits(cell_timeout=10, notebook_timeout=60, memory_mb=3072))
    release([A], course=course)
    return course


def _release_nb(course):
    return nbformat.read(course.notebooks / A / f"{A}.ipynb", as_version=4)


def _gids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


# ----------------------------------------------------------------------------- release

def test_release_has_named_stubs_and_no_leaks(toy):
    nb = _release_nb(toy)
    stubs = [c.source for c in nb.cells if "NotImplementedError" in c.source]
    assert any('raise NotImplementedError("Exercise: scale")' in s for s in stubs)
    assert any('raise NotImplementedError("Exercise: corr1d")' in s for s in stubs)
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN" not in text and "check_scale(scale, tier='hidden')" not in text
    assert find_leaks(FIXTURES / A, toy.notebooks / A) == []


def test_leak_check_catches_solution_and_hidden_text(toy, tmp_path):
    rel = tmp_path / "rel"
    rel.mkdir()
    nb = _release_nb(toy)
    nb.cells[-1].source += "\ntoycheck.check_scale(scale, tier='hidden')"
    nb.cells[3].source += "\n    n_out = len(x) - len(k) + 1"
    nbformat.write(nb, rel / f"{A}.ipynb")
    problems = find_leaks(FIXTURES / A, rel)
    assert any("hidden line" in p for p in problems) and any("solution line" in p for p in problems)


def test_release_refuses_a_leaking_source(tmp_path):
    sol = tmp_path / "solutions" / A
    sol.mkdir(parents=True)
    nb = nbformat.read(FIXTURES / A / f"{A}.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("Hint: n_out = len(x) - len(k) + 1 is wrong here"))
    nbformat.write(nb, sol / f"{A}.ipynb")
    (sol / "toycheck.py").write_text((FIXTURES / A / "toycheck.py").read_text() + "\n# return x * a\n")
    course = Course(solutions=tmp_path / "solutions", notebooks=tmp_path / "nb", workdir=tmp_path / "w")
    # a solution line copied into a markdown cell outside the solution region is not secret
    release([A], course=course)
    (sol / "notes.txt").write_text("out_values = [float(np.dot(x[i:i + len(k)], k)) for i in range(n_out)]")
    with pytest.raises(LeakError, match="notes.txt"):
        release([A], course=course)


def test_unknown_assignment_is_a_clear_error(toy):
    with pytest.raises(ValueError, match="unknown assignment"):
        release(["99_nope"], course=toy)


# ----------------------------------------------------------------------------- repair

def test_repair_keeps_a_well_formed_notebook(toy):
    nb = _release_nb(toy)
    fixed, report = repair(nb, nb)
    assert report.problems == [] and _gids(fixed) == _gids(nb)


def test_repair_restores_deleted_duplicated_reordered_and_retyped_cells(toy):
    rel = _release_nb(toy)
    nb = copy.deepcopy(rel)
    i = _gids(nb).index("test_scale_public")
    del nb.cells[i]                                           # deleted
    dup = copy.deepcopy(nb.cells[_gids(nb).index("test_corr1d_public")])
    nb.cells.append(dup)                                      # duplicated (same grade_id)
    j = _gids(nb).index("test_corr1d_hidden")
    nb.cells[j].metadata["nbgrader"]["solution"] = True       # edited metadata
    nb.cells.insert(0, nb.cells.pop(_gids(nb).index("ex_corr1d")))  # reordered
    fixed, report = repair(nb, rel)
    graded = [g for g in _gids(fixed) if g]
    assert sorted(graded) == sorted(g for g in _gids(rel) if g)
    assert len(graded) == len(set(graded))
    assert graded.index("test_scale_public") > graded.index("ex_scale")
    assert graded.index("test_corr1d_hidden") > graded.index("ex_corr1d")
    assert report.problems


def test_read_submission_rejects_garbage(tmp_path):
    p = tmp_path / "x.ipynb"
    p.write_bytes(b"\x00\xffnot json")
    with pytest.raises(ValueError, match="not a readable notebook"):
        read_submission(p)
    p.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a notebook"):
        read_submission(p)


# ----------------------------------------------------------------------------- collect

def test_collect_from_lms_zip_flat_and_nested(toy, tmp_path):
    from autograder.collect import collect_zip

    course = toy.with_(workdir=tmp_path / "w")
    z = tmp_path / "download.zip"
    body = nbformat.writes(_release_nb(toy))
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr(zipfile.ZipInfo(f"alice_12345_{A}.ipynb", (2026, 1, 15, 9, 0, 0)), body)
        zf.writestr(zipfile.ZipInfo(f"bob_{A}.ipynb", (2026, 1, 15, 9, 30, 0)), body)
        zf.writestr(zipfile.ZipInfo(f"carol/{A}/{A}.ipynb", (2026, 1, 15, 10, 0, 0)), body)
        zf.writestr(zipfile.ZipInfo("../evil.ipynb", (2026, 1, 15, 10, 0, 0)), body)
    got = collect_zip(course, z)
    assert got == [("alice", A), ("bob", A), ("carol", A)]
    for s, when in (("alice", "09:00"), ("bob", "09:30"), ("carol", "10:00")):
        assert (course.submitted / s / A / f"{A}.ipynb").exists()
        assert (course.submitted / s / A / "timestamp.txt").read_text() == f"2026-01-15 {when}:00.000000 UTC"
    assert got.report.of("skipped") == ["../evil.ipynb: a path that leaves the zip's folder (absolute or '..'), refused"]
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["submitted"]
    with pytest.raises(ValueError, match="not a zip"):
        collect_zip(course, tmp_path / "w" / "submitted" / "bob" / A / "timestamp.txt")


# ----------------------------------------------------------------------------- end to end

@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    work = tmp_path / "demo"
    out = _cli("demo", "--solutions", FIXTURES, "--notebooks", tmp_path / "nb", "--workdir", work,
               "--no-progress", "--cell-timeout", "10")
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr == ""
    assert "reference" in out.stdout and "grades CSV" in out.stdout
    rows = {r["student"]: r for r in csv.DictReader(open(work / "exports" / "grades.csv"))}
    expected = {"reference": 6, "blank": 0, "partial": 3, "wrong": 0, "syntax": 3, "late": 6, "messy": 6,
                "corrupt": 0, "max": 6}
    assert {k: float(v[A]) for k, v in rows.items()} == expected
    assert {k: float(v["total"]) for k, v in rows.items()} == expected
    res = json.loads((work / "exports" / "gradescope" / "partial" / A / "results.json").read_text())
    assert res["score"] == 3 and len(res["tests"]) == 4
    assert {t["status"] for t in res["tests"]} == {"passed", "failed"}
    html = (work / "feedback" / "wrong" / A / f"{A}.html").read_text()
    assert "tier=&#39;hidden&#39;" not in html and "tier='hidden'" not in html
    with zipfile.ZipFile(work / "exports" / f"gradescope_{A}.zip") as zf:
        names = zf.namelist()
    assert "setup.sh" in names and "run_autograder" in names
    assert f"solutions/{A}/{A}.ipynb" in names and "autograder/engine.py" in names


@pytest.mark.slow
def test_gradescope_package_grades_a_submission(toy, tmp_path):
    from autograder.export import gradescope_package
    from autograder.testing import QuickGrader

    pkg = gradescope_package(toy.with_(workdir=tmp_path / "w"), A)
    root = tmp_path / "autograder"
    with zipfile.ZipFile(pkg) as zf:
        zf.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    g = QuickGrader(toy)
    try:
        nb = g.solution_notebook(A)
        nb.cells[[c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells].index("ex_corr1d")].source = \
            "def corr1d(x, k):\n    raise NotImplementedError"
    finally:
        g.close()
    (root / "submission").mkdir()
    nbformat.write(nb, root / "submission" / "homework.ipynb")
    env = dict(ENV, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable)
    out = subprocess.run([str(root / "source" / "run_autograder")], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    res = json.loads((root / "results" / "results.json").read_text())
    assert res["score"] == 3
    assert [t["score"] for t in res["tests"]] == [1, 2, 0, 0]


def _gradescope_root(toy, tmp_path, isolation="sandbox"):
    from autograder.export import gradescope_package

    pkg = gradescope_package(toy.with_(workdir=tmp_path / "w"), A, isolation=isolation)
    root = tmp_path / "autograder"
    with zipfile.ZipFile(pkg) as zf:
        zf.extractall(root / "source")
    (root / "source" / "run_autograder").chmod(0o755)
    (root / "submission").mkdir()
    return root


@pytest.mark.slow   # the CLI in fresh processes (several seconds of CPU each): not in the fast tier
def test_gradescope_where_the_sandbox_cannot_start_tells_the_staff_not_the_student(toy, tmp_path):
    """Not a 0 with advice for the student: no results.json (Gradescope then says the autograder
    failed), the cause and the fix on the output the course staff see, exit 1."""
    root = _gradescope_root(toy, tmp_path)
    nbformat.write(_release_nb(toy), root / "submission" / f"{A}.ipynb")
    (root / "results").mkdir()
    (root / "results" / "results.json").write_text('{"score": 6}')     # an earlier run's: removed
    env = dict(ENV, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable, CNNLAB_BWRAP="/nonexistent/bwrap")
    out = subprocess.run([str(root / "source" / "run_autograder")], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    assert not (root / "results" / "results.json").exists()
    assert "not graded: the grading sandbox cannot start in this container" in out.stdout, out.stdout
    assert "--gradescope-isolation container" in out.stdout and "Traceback" not in out.stdout + out.stderr
    assert "--isolation sandbox" in (root / "source" / "run_autograder").read_text()


def test_gradescope_package_isolation_is_an_explicit_build_option(toy, tmp_path):
    from autograder.export import gradescope_package

    run = _gradescope_root(toy, tmp_path, "container") / "source" / "run_autograder"
    text = run.read_text()
    words = " ".join(text.replace("#", " ").split())
    assert "--isolation container" in text and "can read the autograder's files" in words
    assert "UNSAFE" not in text                     # no hidden switch: the package says what it does
    with pytest.raises(ValueError, match="unknown isolation"):
        gradescope_package(toy.with_(workdir=tmp_path / "w2"), A, isolation="none")


@pytest.mark.slow
def test_gradescope_container_isolation_grades_without_a_sandbox(toy, tmp_path):
    from autograder.testing import QuickGrader

    root = _gradescope_root(toy, tmp_path, "container")
    g = QuickGrader(toy)
    try:
        nbformat.write(g.solution_notebook(A), root / "submission" / "homework.ipynb")
    finally:
        g.close()
    env = dict(ENV, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable, CNNLAB_BWRAP="/nonexistent/bwrap")
    out = subprocess.run([str(root / "source" / "run_autograder")], capture_output=True, text=True, env=env,
                         timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads((root / "results" / "results.json").read_text())["score"] == 6


@pytest.mark.slow
def test_validate_exit_codes(toy, tmp_path):
    from autograder.testing import QuickGrader

    g = QuickGrader(toy)
    try:
        good = g.solution_notebook(A)
    finally:
        g.close()
    (tmp_path / "good").mkdir()
    nbformat.write(good, tmp_path / "good" / f"{A}.ipynb")
    shutil_copy = (FIXTURES / A / "toycheck.py").read_text()
    (tmp_path / "good" / "toycheck.py").write_text(shutil_copy)
    (tmp_path / "stub").mkdir()
    nbformat.write(_release_nb(toy), tmp_path / "stub" / f"{A}.ipynb")
    (tmp_path / "stub" / "toycheck.py").write_text(shutil_copy)
    common = ["--solutions", FIXTURES, "--workdir", tmp_path / "w"]
    ok = _cli("validate", tmp_path / "good" / f"{A}.ipynb", *common)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _cli("validate", tmp_path / "stub" / f"{A}.ipynb", *common)
    assert bad.returncode == 1 and "NotImplementedError" in bad.stdout
    inv = _cli("validate", tmp_path / "stub" / f"{A}.ipynb", "--invert", *common)
    assert inv.returncode == 0, inv.stdout
    missing = _cli("validate", tmp_path / "nope.ipynb", *common)
    assert missing.returncode == 2


@pytest.mark.parametrize("cmd", ["release", "collect", "autograde", "feedback", "export", "validate", "demo"])
def test_every_command_has_help(cmd):
    from autograder.cli import build_parser

    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([cmd, "--help"])
    assert exc.value.code == 0


# ----------------------------------------------------------------------------- the verifier on the course

REAL = Course()


def _forging_notebook(g, assignment):
    """The stubs, plus a cell that makes every course check pass (the check's code replaced)."""
    nb = g.release_notebook(assignment)
    forge = ("import cnnlab.grading.exercise as _E\n"
             "_E.Exercise.run.__code__ = (lambda self, fn, tier='public', *, only=None, blame=True: "
             "Outcome(self.name, tier, True, 'forged')).__code__")
    first_answer = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution"))
    nb.cells.insert(first_answer, nbformat.v4.new_code_cell(forge))
    return nb


@pytest.mark.slow
def test_verifier_confirms_the_reference_and_withdraws_forged_points():
    from autograder import verifier
    from autograder.testing import QuickGrader

    names = [a for a in REAL.assignments() if verifier.exercises_for(a)][:1]
    if not names:
        pytest.skip("no assignment has exercise records yet")
    a = names[0]
    g = QuickGrader(REAL, Limits(cell_timeout=120, notebook_timeout=600, memory_mb=8192))
    try:
        res, _ = g.grade(a, g.solution_notebook(a))
        assert res.score == res.max_score > 0, res.summary()
        assert not any("tampering" in f for f in res.flags), res.flags
        forged, _ = g.grade(a, _forging_notebook(g, a))
    finally:
        g.close()
    custom = {gid for ex in verifier.exercises_for(a) if ex.custom is not None for gid in ex.grade_ids}
    unverifiable = sum(v[1] for k, v in forged.cells.items() if k.split("/", 1)[1] in custom)
    assert forged.score <= unverifiable, forged.summary()
    assert any("possible tampering" in f for f in forged.flags)
    assert any("__code__" in f for f in forged.flags)


@pytest.mark.slow   # runs `alembic heads` in a fresh process: not in the fast tier
def test_new_gradebooks_get_alembics_schema_version_without_a_subprocess(tmp_path, monkeypatch):
    """util.env_path() answers nbgrader's "which schema version?" in-process (a subprocess took
    2.3 s per new gradebook); the answer is the one ``alembic heads`` gives."""
    import subprocess as sp

    import nbgrader.api as api
    from nbgrader.dbutil import _temp_alembic_ini

    from autograder.util import env_path

    env_path()
    with _temp_alembic_ini("sqlite:////tmp/gradebook.db") as ini:
        heads = sp.check_output(["alembic", "-c", ini, "heads"]).decode().split()[0]
    calls = []
    monkeypatch.setattr(sp, "check_output", lambda *a, **k: calls.append(a) or b"")
    with api.Gradebook(f"sqlite:///{tmp_path / 'gb.db'}") as gb:
        version = gb.db.execute(api.text("SELECT version_num FROM alembic_version")).scalar()
    assert version == heads and calls == []


def test_cell_metadata_is_still_validated_with_the_schema_checked_once(monkeypatch):
    import jsonschema
    import nbformat
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError

    from autograder.util import env_path

    env_path()
    checks = []
    cls = jsonschema.validators.validator_for(MetadataValidator().schema)
    monkeypatch.setattr(cls, "check_schema", classmethod(lambda c, s: checks.append(s)))
    v = MetadataValidator()
    meta = {"grade": True, "grade_id": "a", "locked": True, "points": 1, "schema_version": 3,
            "solution": False, "task": False}
    for _ in range(5):
        v.validate_cell(nbformat.v4.new_code_cell("x", metadata={"nbgrader": dict(meta)}))
    assert len(checks) <= 1
    with pytest.raises(ValidationError, match="not of type 'number'"):
        v.validate_cell(nbformat.v4.new_code_cell("x", metadata={"nbgrader": dict(meta, points="many")}))


def test_the_scan_flags_what_the_student_wrote_not_what_they_were_given():
    import nbformat

    from autograder.scan import scan_notebook

    def nb(demo: str, answer: str):
        answer_cell = nbformat.v4.new_code_cell(answer, metadata={"nbgrader": {"grade_id": "ex", "solution": True,
                                                                               "grade": False, "locked": False}})
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(demo), answer_cell])

    release = nb("import torch\nprint(torch.zeros(2))", "from cnnlab.checks.nb02 import kernel_loss\n\ndef f(x):\n    raise NotImplementedError()")
    untouched = nb("import torch\nprint(torch.zeros(2))", "from cnnlab.checks.nb02 import kernel_loss\n\ndef f(x):\n    return x")
    assert scan_notebook(untouched, "A", release) == []
    assert len(scan_notebook(untouched, "A")) == 2            # without the release everything is the student's
    edited = nb("import torch, ctypes\nprint(torch.zeros(2))",
                "from cnnlab.checks.nb02 import kernel_loss\nimport ctypes\n\ndef f(x):\n    return x")
    found = scan_notebook(edited, "A", release)
    assert any("cell 0 line 1: import ctypes" in f for f in found), found
    assert any("A ex line 2: import ctypes" in f for f in found), found
    assert not any("kernel_loss" in f or "ex line 1" in f for f in found), found
