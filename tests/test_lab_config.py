"""One nbgrader configuration for the CLI and JupyterLab; roster; strip-outputs; Gradescope set-up.

The JupyterLab side is exercised the way nbgrader's server extensions load it (a
FormgradeExtension initialised with ``jupyter/instructor`` on ``$JUPYTER_CONFIG_PATH``, in a
separate process on a copy of the course), without a browser: tests/browser does the clicking.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from autograder.config import Course
from autograder.roster import import_roster, not_on_roster, parse_roster

REPO = Path(__file__).resolve().parent.parent
TOY = REPO / "tests" / "fixtures" / "toy" / "solutions" / "00_toy"
A = "00_toy"


def _course_copy(root: Path) -> Path:
    """A course folder holding the toy assignment, the packages and the Jupyter config."""
    root.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("autograder", "cnnlab", "jupyter"):
        shutil.copytree(REPO / name, root / name, ignore=ignore)
    shutil.copy2(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(TOY, root / "solutions" / A)
    (root / "notebooks").mkdir()
    return root


def _env(root: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTER_CONFIG_PATH", "CNNLAB_COURSE_DIR")}
    env.update(PYTHONPATH=str(root), CNNLAB_COURSE_DIR=str(root / "course"),
               JUPYTER_CONFIG_PATH=str(root / "jupyter" / "instructor"),
               PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""), **extra)
    return env


FORMGRADER_GENERATE = textwrap.dedent("""
    import json, sys
    from nbgrader.auth import Authenticator
    from nbgrader.apps import NbGraderAPI
    from nbgrader.server_extensions.formgrader.formgrader import FormgradeExtension

    fg = FormgradeExtension()          # what `jupyter lab` loads, configured from the config files
    fg.initialize([])
    api = NbGraderAPI(fg.coursedir, Authenticator(parent=fg), parent=fg)
    out = api.generate_assignment(sys.argv[1])          # formgrader's Generate button
    cfg = fg.config
    names = lambda key: [getattr(p, "__name__", str(p)) for p in key]
    print(json.dumps({"success": out["success"], "log": out.get("log", ""), "error": out.get("error", ""),
                      "generate": names(cfg.GenerateAssignment.preprocessors),
                      "autograde": names(cfg.Autograde.autograde_preprocessors),
                      "feedback": names(cfg.GenerateFeedback.preprocessors),
                      "memory_mb": cfg.GuardedExecute.memory_mb, "root": fg.coursedir.root,
                      "release": fg.coursedir.release_directory}))
""")


def _formgrader_generate(root: Path, assignment: str) -> dict:
    out = subprocess.run([sys.executable, "-c", FORMGRADER_GENERATE, assignment], cwd=root / "solutions",
                         env=_env(root), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cli(root: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=root, env=_env(root),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_formgrader_generate_equals_release_and_uses_the_course_preprocessors(tmp_path):
    ui = _course_copy(tmp_path / "ui")
    cli = _course_copy(tmp_path / "cli")
    got = _formgrader_generate(ui, A)
    assert got["success"], got["error"][-2000:]
    assert got["root"] == str(ui / "course") and got["release"] == str(ui / "notebooks")
    assert got["generate"][-1] == "LeakCheck" and "NamedStubClearSolutions" in got["generate"]
    assert got["autograde"][0] == "GuardedExecute" and "StderrNotFatal" in got["autograde"]
    assert got["feedback"][:2] == ["FeedbackClearHiddenTests", "ScrubFeedback"] and got["memory_mb"] > 0
    out = _cli(cli, "release", A, "--workdir", cli / "course")
    assert out.returncode == 0, out.stdout + out.stderr
    a = (ui / "notebooks" / A / f"{A}.ipynb").read_bytes()
    b = (cli / "notebooks" / A / f"{A}.ipynb").read_bytes()
    assert a == b, "formgrader's Generate and python -m autograder release differ"
    assert b'NotImplementedError(\\"Exercise: scale\\")' in a


@pytest.mark.slow
def test_a_leak_makes_formgrader_generate_and_release_fail(tmp_path):
    for kind in ("ui", "cli"):
        root = _course_copy(tmp_path / kind)
        (root / "solutions" / A / "notes.txt").write_text(
            "out_values = [float(np.dot(x[i:i + len(k)], k)) for i in range(n_out)]\n")
        if kind == "ui":
            got = _formgrader_generate(root, A)
            assert not got["success"]
            assert "LeakError" in got["error"] + got["log"] and "notes.txt" in got["error"] + got["log"]
        else:
            out = _cli(root, "release", A, "--workdir", root / "course")
            assert out.returncode == 1 and "notes.txt" in out.stdout and "leak" in out.stdout, out.stdout


def test_release_strips_outputs_an_instructor_saved(tmp_path):
    """Solutions run and saved in JupyterLab: the student version has no outputs, no leak error."""
    from autograder.release import release

    sol = tmp_path / "solutions" / A
    shutil.copytree(TOY, sol)
    nb = nbformat.read(sol / f"{A}.ipynb", as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ran\n")]
            c.execution_count = 1
    nbformat.write(nb, sol / f"{A}.ipynb")
    course = Course(solutions=tmp_path / "solutions", notebooks=tmp_path / "nb", workdir=tmp_path / "w")
    release([A], course=course)
    rel = nbformat.read(tmp_path / "nb" / A / f"{A}.ipynb", as_version=4)
    assert not any(c.get("outputs") or c.get("execution_count") for c in rel.cells if c.cell_type == "code")


# ----------------------------------------------------------------------------- roster

CANVAS = """Student,ID,SIS User ID,SIS Login ID,Section
"Points Possible",,,,
"Lovelace, Ada",101,S1,ada,CNN
"Turing, Alan",102,S2,alan,CNN
"""
MOODLE = "\ufeffFirst name;Surname;Username;Email address\nGrace;Hopper;grace;grace@example.edu\n"
PLAIN = "id,first_name,last_name,email\nkat,Katherine,Johnson,kj@example.edu\n"


def test_roster_reads_lms_exports():
    canvas = parse_roster(CANVAS)
    assert [(s.id, s.first_name, s.last_name) for s in canvas] == [("ada", "Ada", "Lovelace"), ("alan", "Alan", "Turing")]
    (moodle,) = parse_roster(MOODLE)
    assert (moodle.id, moodle.first_name, moodle.last_name, moodle.email) == ("grace", "Grace", "Hopper", "grace@example.edu")
    (plain,) = parse_roster(PLAIN)
    assert (plain.id, plain.last_name, plain.email) == ("kat", "Johnson", "kj@example.edu")
    assert [s.id for s in parse_roster(CANVAS, id_column="SIS User ID")] == ["S1", "S2"]
    with pytest.raises(ValueError, match="no student id"):
        parse_roster("first_name,last_name\nAda,Lovelace\n")


@pytest.mark.slow   # the CLI in fresh processes (several seconds of CPU each): not in the fast tier
def test_roster_import_names_students_and_collect_warns_about_strangers(tmp_path):
    from nbgrader.api import Gradebook

    course = Course(solutions=TOY.parent, notebooks=tmp_path / "nb", workdir=tmp_path / "w")
    csv = tmp_path / "canvas.csv"
    csv.write_text(CANVAS)
    assert not_on_roster(course, ["zed"]) == []          # no roster imported: no warning
    import_roster(course, csv)
    with Gradebook(course.gradebook_url, "cnnlab") as gb:
        names = {s.id: (s.first_name, s.last_name) for s in gb.students}
    assert names == {"ada": ("Ada", "Lovelace"), "alan": ("Alan", "Turing")}
    assert not_on_roster(course, ["ada", "zed"]) == ["zed"]
    subs = tmp_path / "subs"
    for student in ("ada", "zed"):
        (subs / student / A).mkdir(parents=True)
        shutil.copy2(TOY / f"{A}.ipynb", subs / student / A / f"{A}.ipynb")
    out = subprocess.run([sys.executable, "-m", "autograder", "collect", str(subs), "--workdir", str(course.workdir),
                          "--solutions", str(TOY.parent), "--notebooks", str(tmp_path / "nb")],
                         capture_output=True, text=True, timeout=300, env=_env(REPO))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "not on the roster: zed" in out.stdout and "ada" not in out.stdout.split("roster:")[-1]


# ----------------------------------------------------------------------------- strip-outputs

@pytest.mark.slow   # git and the CLI in fresh processes: not in the fast tier
def test_git_clean_filter_keeps_outputs_out_of_git(tmp_path):
    repo = tmp_path / "r"
    (repo / "solutions" / A).mkdir(parents=True)
    shutil.copy2(REPO / ".gitattributes", repo / ".gitattributes")
    nb = nbformat.read(TOY / f"{A}.ipynb", as_version=4)
    clean = nbformat.writes(nb) + "\n"
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    code.execution_count = 7
    nb.metadata["widgets"] = {"state": {}}
    path = repo / "solutions" / A / f"{A}.ipynb"
    nbformat.write(nb, path)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    filt = f"{sys.executable} -m autograder strip-outputs"
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git[:3], "config", "filter.cnnlab-strip.clean", filt], check=True)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    subprocess.run([*git, "add", "."], check=True, env=env)
    blob = subprocess.run([*git, "show", f":solutions/{A}/{A}.ipynb"], capture_output=True, text=True,
                          check=True).stdout
    assert blob == clean, "the clean filter did not give back the notebook without outputs"
    assert '"image/png"' in path.read_text(), "the working file must keep the instructor's outputs"
    # and the command form: strip in place, --check exits 1 when something was stripped
    out = subprocess.run([sys.executable, "-m", "autograder", "strip-outputs", "--check", str(path)],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 1 and path.read_text() == clean


# ----------------------------------------------------------------------------- Gradescope setup.sh

def test_gradescope_setup_fails_clearly_without_python_311(tmp_path):
    from autograder.export import SETUP_SH

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "grep", "cut", "dirname", "cat", "env"):
        real = shutil.which(tool)
        if real:
            (bindir / tool).symlink_to(real)
    (bindir / "python3").write_text("#!/bin/bash\n[ \"$1\" = --version ] && echo 'Python 3.10.12'\nexit 1\n")
    (bindir / "apt-get").write_text(  # apt works, but has no python3.11 (Ubuntu 22.04 without the PPA)
        "#!/bin/bash\necho \"apt-get $*\" >> \"$APT_LOG\"\ncase \"$*\" in *python3.11*) exit 100;; esac\nexit 0\n")
    (bindir / "add-apt-repository").write_text("#!/bin/bash\necho \"add-apt-repository $*\" >> \"$APT_LOG\"\nexit 1\n")
    for f in ("python3", "apt-get", "add-apt-repository"):
        (bindir / f).chmod(0o755)
    root = tmp_path / "autograder"
    (root / "source").mkdir(parents=True)
    (tmp_path / "setup.sh").write_text(SETUP_SH)
    out = subprocess.run([str(bindir / "bash"), str(tmp_path / "setup.sh")], capture_output=True, text=True,
                         env={"PATH": str(bindir), "AUTOGRADER_ROOT": str(root), "APT_LOG": str(tmp_path / "apt.log")},
                         timeout=60)
    assert out.returncode == 1
    assert "needs Python >= 3.11" in out.stderr and "Python 3.10.12" in out.stderr, out.stderr
    apt = (tmp_path / "apt.log").read_text()
    assert "python3.11" in apt and "ppa:deadsnakes/ppa" in apt
    assert "--index-url https://download.pytorch.org/whl/cpu" in SETUP_SH


# ----------------------------------------------------------------------------- widgets: one figure

WIDGET_CELL = """
import numpy as np
from cnnlab.widgets.filters import kernel_editor
from cnnlab.widgets.padding import padding_explorer
from cnnlab.numpy_ref import corr2d
kernel_editor(np.linspace(0, 1, 64).reshape(8, 8), corr2d, kernel="Sobel x")
"""


@pytest.mark.slow
@pytest.mark.parametrize("front_end", [False, True])
def test_widget_cell_holds_one_figure(front_end, monkeypatch):
    """Headless (nbclient): one static image, no widget. With a front end (JPY_SESSION_NAME, as a
    Jupyter server sets it): the widget alone, no static copy beside it."""
    from nbclient import NotebookClient

    for var in ("NBGRADER_EXECUTION", "CNNLAB_STATIC", "CNNLAB_WIDGETS", "JPY_SESSION_NAME"):
        monkeypatch.delenv(var, raising=False)
    if front_end:
        monkeypatch.setenv("JPY_SESSION_NAME", "explore.ipynb")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(WIDGET_CELL)])
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outs = nb.cells[0].outputs
    assert not [o for o in outs if o.output_type == "error"], outs
    pngs = [o for o in outs if "image/png" in o.get("data", {})]
    views = [o for o in outs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    if front_end:
        assert len(views) == 1 and not pngs, [o.get("data", {}).keys() for o in outs]
    else:
        assert len(pngs) == 1 and not views, [o.get("data", {}).keys() for o in outs]
