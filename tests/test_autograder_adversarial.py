"""An adversarial class, graded once per session by the real tool, every grade asserted exactly.

The toy assignment (tests/fixtures/toy) has two exercises: ``scale`` (3 points: public 1,
hidden 2) and ``corr1d`` (3 points: public 1, hidden 2 with an integrity guard). The toy's
exercise records (tests/fixtures/toy/records.py) feed the trusted verifier.

Kinds of attack (each with the grade its honest work deserves): broken files and kernels (syntax,
loops, memory, exits, segfaults, corrupt JSON, the wrong assignment); edited, deleted, moved and
duplicated cells; forged scores inside the kernel (patched checks, a function's ``__code__``
replaced, a thread re-patching the checks, ``sys.modules`` poisoned, ``run_cell`` wrapped,
errors swallowed, a printed "passed"); reading what is not theirs (solutions, the work folder,
the gradebook, the instructor's environment); damaging classmates (the gradebook through an
SQLite URI, ``kill(-1)``, a worker that dies); leftovers and bulk (100 detached processes, a fork
bomb, 50 MB on one line, files and symlinks left in the kernel's folder, an interrupt swallowed);
HTML with scripts and event handlers in the feedback.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import cnnlab
from autograder import engine, verifier
from autograder.collect import collect_folder
from autograder.config import Course, Limits
from autograder.release import release
from autograder.sample_class import LATE, ON_TIME

pytestmark = pytest.mark.slow
FIXTURES = Path(__file__).parent / "fixtures" / "toy" / "solutions"
SECRET_ENV = "CNNLAB_INSTRUCTOR_CANARY"
SECRET_VALUE = "instructor-canary-7f3a9"
A = "00_toy"
LIMITS = Limits(cell_timeout=8, notebook_timeout=90, memory_mb=3072)

SCALE_OK = "def scale(x, a):\n    return x * a"
CORR_OK = ("def corr1d(x, k):\n    n_out = len(x) - len(k) + 1\n"
           "    return np.array([float(np.dot(x[i:i + len(k)], k)) for i in range(n_out)])")
CORR_WRONG = "def corr1d(x, k):\n    return np.zeros(len(x) - len(k) + 1) + 1.0"
CANARY_NAME = "_adversarial_canary.txt"

ATTACK_FILES = f'''
import os, sqlite3, cnnlab
report = []
try:
    with open(os.path.join(os.path.dirname(cnnlab.__file__), {CANARY_NAME!r}), "w") as fh:
        fh.write("hacked")
    report.append("cnnlab written")
except OSError:
    report.append("cnnlab blocked")
d = os.getcwd()
for _ in range(7):
    d = os.path.dirname(d)
    for name in ("gradebook.db", "template.db"):
        p = os.path.join(d, name)
        if os.path.exists(p):
            try:
                con = sqlite3.connect(p)
                con.execute("UPDATE grade SET auto_score = 99")
                con.commit()
                report.append("db written")
            except Exception:
                report.append("db blocked")
try:
    os.system("echo hacked")
    report.append("shell ran")
except OSError:
    report.append("shell blocked")
print(report)
'''


def _gid(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _index(nb, gid):
    return next(i for i, c in enumerate(nb.cells) if _gid(c) == gid)


def _code(src):
    return nbformat.v4.new_code_cell(src)


READ_SECRETS = """
import glob, os
seen = {{}}
for p in [{solutions!r}, {workdir!r}, '/root', '/work', '/home', '/etc/passwd', '/proc/1/environ']:
    seen[p] = os.path.exists(p)
print('seen', seen)
print('env', dict(os.environ))
for pattern in ['/tmp/**/*.ipynb', '/opt/**/*.ipynb', '/work/**/*.ipynb', '/root/*/*.ipynb']:
    for f in glob.glob(pattern, recursive=True)[:20]:
        print(f, open(f, errors='replace').read()[:3000])
"""

FORGE_CODE = ("def _fake(*a, **k):\n    print('corr1d: all cases match')\n"
              "toycheck.check_corr1d.__code__ = _fake.__code__")
THREAD_REPATCH = ("import threading, time\ndef _loop():\n    while True:\n"
                  "        toycheck._compare = lambda *a, **k: None\n        time.sleep(0.0002)\n"
                  "threading.Thread(target=_loop, daemon=True).start()")
POISON_MODULES = ("import sys, types\nfake = types.ModuleType('toycheck')\n"
                  "fake.check_corr1d = fake.check_scale = lambda *a, **k: print('ok')\n"
                  "sys.modules['toycheck'] = fake\nimport toycheck")
WRAP_RUN_CELL = ("ip = get_ipython()\n_orig = ip.run_cell\n"
                 "ip.run_cell = lambda raw_cell, *a, **k: _orig('pass', *a, **k)")
KILL_ALL = "import ctypes\nctypes.CDLL(None).kill(-1, 9)"
DETACH = ("import ctypes\nctypes.CDLL(None).system(b'for i in $(seq 100); do setsid sleep 4242.5 "
          ">/dev/null 2>&1 & done')\nprint('detached')")
FORK_BOMB = "import ctypes\nctypes.CDLL(None).system(b'b(){ b|b& }; b')\nimport time\ntime.sleep(2)"
SWALLOW = ("import time\n\ndef corr1d(x, k):\n    while True:\n        try:\n            time.sleep(100)\n"
           "        except KeyboardInterrupt:\n            pass")
LEAVE_FILES = ("import os\nos.symlink('/etc/passwd', 'evil_link')\nos.symlink('/', 'root_link')\n"
               "open('big.bin', 'wb').write(b'0' * 10_000_000)\nprint(sorted(os.listdir('.')))")
SCRIPT_OUT = ("from IPython.display import HTML, display\n"
              "display(HTML('<script>alert(\"pwned\")</script><img src=x onerror=alert(2)>'))")


def build_class(release_nb, paths: dict | None = None) -> dict[str, tuple]:
    """kind -> (notebook or bytes or None, expected score, timestamp, extra checks)."""

    def nb_with(scale=SCALE_OK, corr=CORR_OK):
        nb = copy.deepcopy(release_nb)
        if scale is not None:
            nb.cells[_index(nb, "ex_scale")].source = scale
        if corr is not None:
            nb.cells[_index(nb, "ex_corr1d")].source = corr
        return nb

    def insert_before(nb, gid, src):
        nb.cells.insert(_index(nb, gid), _code(src))
        return nb

    kinds: dict[str, tuple] = {}
    kinds["correct"] = (nb_with(), 6)
    kinds["blank"] = (copy.deepcopy(release_nb), 0)
    kinds["partial"] = (nb_with(corr=None), 3)
    kinds["syntax_error"] = (nb_with(corr="def corr1d(x, k)\n    return x"), 3)
    kinds["infinite_loop"] = (nb_with(corr="def corr1d(x, k):\n    while True:\n        pass"), 3)
    kinds["memory_bomb"] = (nb_with(corr="def corr1d(x, k):\n    hog = np.ones(1 << 40)\n    return hog"), 3)
    kinds["sys_exit"] = (insert_before(nb_with(), "ex_corr1d", "import sys\nsys.exit(1)"), 6)
    kinds["os_exit"] = (insert_before(nb_with(), "ex_corr1d", "import os\nos._exit(3)"), 6)
    kinds["segfault"] = (insert_before(nb_with(), "ex_corr1d", "import ctypes\nctypes.string_at(0)"), 3)
    nb = nb_with()
    del nb.cells[_index(nb, "test_corr1d_hidden")]
    del nb.cells[_index(nb, "test_corr1d_public")]
    kinds["deleted_tests"] = (nb, 6)
    nb = nb_with()
    nb.cells.append(copy.deepcopy(nb.cells[_index(nb, "test_scale_public")]))
    nb.cells[-1]["id"] = "duplicate1"
    kinds["duplicated_test"] = (nb, 6)
    nb = nb_with()
    dup = copy.deepcopy(nb.cells[_index(nb, "ex_scale")])
    dup["id"] = "duplicate2"
    nb.cells[_index(nb, "ex_scale")].source = copy.deepcopy(release_nb.cells[_index(release_nb, "ex_scale")].source)
    nb.cells.insert(_index(nb, "ex_scale") + 1, dup)
    kinds["duplicated_answer"] = (nb, 6)
    nb = nb_with()
    moved = [nb.cells.pop(_index(nb, g)) for g in ("test_corr1d_public", "test_corr1d_hidden")]
    for c in reversed(moved):
        nb.cells.insert(1, c)
    kinds["reordered_tests"] = (nb, 6)
    nb = nb_with(corr=CORR_WRONG)
    for g in ("test_corr1d_public", "test_corr1d_hidden"):
        nb.cells[_index(nb, g)].source = "pass"
    kinds["edited_tests"] = (nb, 3)
    nb = nb_with(corr=CORR_WRONG)
    for g in ("test_corr1d_public", "test_corr1d_hidden"):
        cell = nb.cells[_index(nb, g)]
        cell.metadata["nbgrader"].update(solution=True, grade=False, locked=False)
        cell.source = "print('all good')"
    kinds["edited_metadata"] = (nb, 3)
    nb = nb_with()
    nb.cells[_index(nb, "test_scale_public")].metadata["nbgrader"]["points"] = 100
    kinds["inflated_points"] = (nb, 6)
    kinds["patch_allclose"] = (insert_before(nb_with(corr=CORR_WRONG), "test_corr1d_public",
                                             "np.allclose = lambda *a, **k: True"), 3)
    kinds["patch_allclose_in_call"] = (nb_with(corr="def corr1d(x, k):\n    np.allclose = lambda *a, **k: True\n"
                                                    "    return np.zeros(len(x) - len(k) + 1)"), 3)
    kinds["patch_check"] = (insert_before(nb_with(corr=CORR_WRONG), "test_corr1d_public",
                                          "toycheck.check_corr1d = lambda *a, **k: None"), 3)
    kinds["rebind_check_module"] = (insert_before(
        nb_with(scale="def scale(x, a):\n    return x", corr=CORR_WRONG), "ex_scale",
        "import types\ntoycheck = types.SimpleNamespace(check_scale=lambda *a, **k: None,\n"
        "    check_corr1d=lambda *a, **k: None)"), 0)
    kinds["swallow_errors"] = (insert_before(nb_with(corr=CORR_WRONG), "test_corr1d_public",
                                             "get_ipython().set_custom_exc((BaseException,), lambda *a, **k: None)\n"
                                             "import builtins\nbuiltins.AssertionError = Warning"), 3)
    kinds["fake_passed"] = (nb_with(corr=CORR_WRONG + "\nprint('corr1d: all cases match (hidden)')"), 3)
    kinds["delegate_scipy"] = (nb_with(corr="from scipy.signal import correlate\n\ndef corr1d(x, k):\n"
                                            "    return correlate(x, k, mode='valid')"), 4)
    kinds["delegate_torch"] = (nb_with(corr="import torch\n\ndef corr1d(x, k):\n"
                                            "    t = torch.nn.functional.conv1d(torch.tensor(x)[None, None], "
                                            "torch.tensor(k)[None, None])\n    return t[0, 0].numpy()"), 4)
    kinds["delegate_numpy_ref"] = (nb_with(corr="from cnnlab import numpy_ref\n\ndef corr1d(x, k):\n"
                                                "    return numpy_ref.corr2d(x[None, :], k[None, :])[0]"), 4)
    kinds["write_files"] = (insert_before(nb_with(), "ex_corr1d", ATTACK_FILES), 6)
    kinds["stderr_warnings"] = (nb_with(scale="import warnings, sys\n\ndef scale(x, a):\n"
                                              "    warnings.warn('careful with dtypes')\n"
                                              "    print('debug output', file=sys.stderr)\n    return x * a"), 6)
    kinds["nan"] = (nb_with(corr="def corr1d(x, k):\n    return np.full(len(x) - len(k) + 1, np.nan)"), 3)
    kinds["wrong_dtype"] = (nb_with(scale="def scale(x, a):\n    return (x * a).astype(int)"), 3)
    kinds["wrong_shape"] = (nb_with(corr="def corr1d(x, k):\n    return np.convolve(x, k[::-1], mode='full')"), 3)
    kinds["mutates_input"] = (nb_with(scale="def scale(x, a):\n    x *= a\n    return x"), 3)
    kinds["huge_output"] = (nb_with(scale="for _i in range(20000):\n    print('spam', _i)\n\n" + SCALE_OK), 6)
    other = nbformat.v4.new_notebook(cells=[copy.deepcopy(c) for c in release_nb.cells])
    for c in other.cells:
        if "nbgrader" in c.metadata:
            c.metadata["nbgrader"]["grade_id"] = "other_" + c.metadata["nbgrader"]["grade_id"]
    kinds["other_assignment"] = (other, 0)
    kinds["corrupt"] = (b'{"cells": [ {"cell_type": "code", "sour', 0)
    kinds["late"] = (nb_with(), 6)
    kinds["missing_notebook"] = (None, 0)
    # forged scores: each passes nbgrader's run, the verifier withdraws what corr1d did not earn
    kinds["forge_code_object"] = (insert_before(nb_with(corr=CORR_WRONG), "test_corr1d_public", FORGE_CODE), 3)
    kinds["thread_repatch"] = (insert_before(nb_with(corr=CORR_WRONG), "test_corr1d_public", THREAD_REPATCH), 3)
    kinds["poison_sys_modules"] = (insert_before(nb_with(corr=CORR_WRONG), "test_corr1d_public", POISON_MODULES), 3)
    kinds["wrap_run_cell"] = (insert_before(nb_with(corr=CORR_WRONG), "test_corr1d_public", WRAP_RUN_CELL), 3)
    # reading and damaging: honest answers, the attack in a cell of its own at the end
    paths = paths or {"solutions": "/nonexistent", "workdir": "/nonexistent"}
    nb = nb_with()
    nb.cells.append(_code(READ_SECRETS.format(**paths)))
    kinds["read_secrets"] = (nb, 6)
    nb = nb_with()
    nb.cells.append(_code(f"import sqlite3\ntry:\n    con = sqlite3.connect('file:{paths['workdir']}/gradebook.db?mode=rw',"
                          " uri=True)\n    con.execute('UPDATE grade SET auto_score = 0')\n    con.commit()\n"
                          "    print('db written')\nexcept Exception as exc:\n    print('db blocked', exc)"))
    kinds["gradebook_uri"] = (nb, 6)
    for kind, src in (("kill_all", KILL_ALL), ("detach_processes", DETACH), ("fork_bomb", FORK_BOMB),
                      ("leave_files", LEAVE_FILES), ("script_output", SCRIPT_OUT),
                      ("huge_line", "print('x' * 50_000_000)"),
                      ("figure", "import os\nprint('mode', os.environ.get('NBGRADER_EXECUTION'))\n"
                                 "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")):
        nb = nb_with()
        nb.cells.append(_code(src))
        kinds[kind] = (nb, 6)
    kinds["swallow_interrupt"] = (nb_with(corr=SWALLOW), 3)
    kinds["kills_worker"] = (nb_with(), 0)   # the worker grading it dies (fault injection): recorded as crashed
    return kinds


def write_class(kinds: dict, dest: Path) -> None:
    for kind, (nb, _) in kinds.items():
        folder = dest / kind / A
        folder.mkdir(parents=True, exist_ok=True)
        if isinstance(nb, bytes):
            (folder / f"{A}.ipynb").write_bytes(nb)
        elif nb is None:
            (folder / "my_homework.ipynb").write_text("{}")
        else:
            nbformat.write(nb, folder / f"{A}.ipynb")
        when = LATE if kind == "late" else ON_TIME
        (folder / "timestamp.txt").write_text(when.strftime("%Y-%m-%d %H:%M:%S.%f UTC"))


def _canary() -> Path:
    return Path(cnnlab.__file__).parent / CANARY_NAME


def _digest(*folders: Path) -> str:
    h = hashlib.sha256()
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p).encode())
                h.update(p.read_bytes())
    return h.hexdigest()


def _class_processes() -> list[str]:
    """Processes this class could have left behind: the detached sleepers (a unique duration),
    anything in a pids cgroup of this process, kernels and verifier workers descending from it."""
    me = str(os.getpid())
    parents = {}
    info = {}
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            ppid = (proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1]
            cgroup = (proc_dir / "cgroup").read_text()
        except (OSError, IndexError):
            continue
        parents[proc_dir.name] = ppid
        info[proc_dir.name] = (cmd, cgroup)

    def descends(pid):
        for _ in range(50):
            pid = parents.get(pid)
            if pid is None or pid == "0":
                return False
            if pid == me:
                return True
        return False

    out = []
    for pid, (cmd, cgroup) in info.items():
        if ("sleep 4242.5" in cmd or f"cnnlab-{me}-" in cgroup
                or (descends(pid) and any(m in cmd for m in ("cnnlab_sandbox.kernel", "cnnlab_verify_worker", "bwrap")))):
            out.append(f"{pid}: {cmd[:120]}")
    return out


def _protected_digest(course) -> str:
    return _digest(Path(cnnlab.__file__).parent, Path(engine.__file__).parent, FIXTURES, course.notebooks)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("adversarial")
    course = Course(solutions=FIXTURES, notebooks=root / "notebooks", workdir=root / "work", limits=LIMITS)
    release([A], course=course)
    rel = nbformat.read(course.notebooks / A / f"{A}.ipynb", as_version=4)
    kinds = build_class(rel, {"solutions": str(FIXTURES), "workdir": str(course.workdir)})
    write_class(kinds, root / "class")
    collect_folder(course, root / "class")
    from autograder.cli import set_due_dates
    from autograder.sample_class import DUE

    set_due_dates(course, [f"{A}={DUE.isoformat()}"])
    before = _protected_digest(course)
    sys.path.insert(0, str(FIXTURES.parent))
    import records

    verifier.set_exercise_source(records.exercises)
    os.environ[SECRET_ENV] = SECRET_VALUE
    os.environ[engine.FAULT_ENV] = "kills_worker"
    t0 = time.monotonic()
    try:
        results = engine.autograde(course, jobs=2, progress=False, echo=lambda *_: None)
    finally:
        os.environ.pop(engine.FAULT_ENV)
    seconds = time.monotonic() - t0
    left = _class_processes()
    yield {"course": course, "kinds": kinds, "results": {r.student: r for r in results},
           "root": root, "before": before, "seconds": seconds, "left": left}
    verifier.set_exercise_source(None)
    os.environ.pop(SECRET_ENV, None)


def test_class_has_at_least_25_kinds(graded):
    assert len(graded["kinds"]) >= 45
    assert set(graded["results"]) == set(graded["kinds"])


KIND_NAMES = list(build_class(nbformat.v4.new_notebook(cells=[
    nbformat.v4.new_code_cell("", metadata={"nbgrader": {"grade_id": g}})
    for g in ("ex_scale", "test_scale_public", "test_scale_hidden", "ex_corr1d",
              "test_corr1d_public", "test_corr1d_hidden")])))


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_grade_is_exact(graded, kind):
    res = graded["results"][kind]
    expected = graded["kinds"][kind][1]
    assert res.max_score == 6, res
    assert res.score == expected, f"{kind}: {res.summary()} {res.cells}"


def test_gradebook_matches_and_nothing_double_counted(graded):
    from nbgrader.api import Gradebook

    course = graded["course"]
    with Gradebook(course.gradebook_url, "cnnlab") as gb:
        subs = gb.assignment_submissions(A)
        by_student = {}
        for s in subs:
            by_student.setdefault(s.student.id, []).append(float(s.score))
        assert sorted(by_student) == sorted(graded["kinds"])
        for kind, scores in by_student.items():
            assert scores == [graded["kinds"][kind][1]], kind
        assert gb.find_assignment(A).max_score == 6


def test_statuses_and_lateness(graded):
    r = graded["results"]
    assert r["corrupt"].status == "corrupt"
    assert r["missing_notebook"].status == "missing"
    assert r["late"].seconds_late > 0 and r["correct"].seconds_late == 0
    assert r["segfault"].status == "graded"
    died = [v for v in r["segfault"].cells.values() if v[2]]
    assert died and all(v[0] == 0 for v in died)


def _outputs(course, kind) -> str:
    out = course.autograded / kind / A / f"{A}.ipynb"
    nb = nbformat.read(out, as_version=4)
    return "".join(str(o.get("text", "")) + str(o.get("data", "")) + str(o.get("evalue", ""))
                   for c in nb.cells for o in c.get("outputs", []))


def test_sandbox_blocked_writes(graded):
    assert not _canary().exists()
    assert _protected_digest(graded["course"]) == graded["before"]
    out = graded["course"].autograded / "write_files" / A / f"{A}.ipynb"
    text = "".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    assert "cnnlab blocked" in text and "written" not in text and "shell ran" not in text


def test_forged_scores_are_withdrawn_and_flagged(graded):
    r = graded["results"]
    for kind in ("forge_code_object", "wrap_run_cell"):
        assert any("possible tampering" in f for f in r[kind].flags), (kind, r[kind].flags)
        assert "possible tampering" in r[kind].cells[f"{A}/test_corr1d_hidden"][2]
    assert any("__code__" in f for f in r["forge_code_object"].flags)
    assert any("threads" in f for f in r["thread_repatch"].flags)
    assert any("modules" in f for f in r["poison_sys_modules"].flags)
    for kind in ("correct", "late", "partial", "delegate_torch", "stderr_warnings"):
        assert not any("tampering" in f for f in r[kind].flags), (kind, r[kind].flags)


def test_nothing_of_the_instructor_is_seen(graded):
    course = graded["course"]
    text = _outputs(course, "read_secrets")
    assert f"{str(FIXTURES)!r}: False" in text and f"{str(course.workdir)!r}: False" in text
    assert "'/home': False" in text and "'/etc/passwd': False" in text
    assert SECRET_VALUE not in text and "BEGIN SOLUTION" not in text and "tier='hidden'" not in text
    assert "db blocked" in _outputs(course, "gradebook_uri")


def test_only_the_graded_notebook_comes_back(graded):
    course = graded["course"]
    for kind in ("leave_files", "correct", "huge_line"):
        got = sorted(p.name for p in (course.autograded / kind / A).iterdir())
        # the notebook, and collect's timestamp (for nbgrader's feedback release): nothing the kernel wrote
        assert [n for n in got if n != "timestamp.txt"] == [f"{A}.ipynb"], kind
        if "timestamp.txt" in got:
            assert (course.autograded / kind / A / "timestamp.txt").read_bytes() == \
                (course.submitted / kind / A / "timestamp.txt").read_bytes()
    assert "evil_link" in _outputs(course, "leave_files")        # it did write them, in its own folder
    size = (course.autograded / "huge_line" / A / f"{A}.ipynb").stat().st_size
    assert size < 1_000_000, size


def test_results_json_carries_nothing_of_the_instructor(graded):
    from autograder.export import export_flags, export_gradescope_results

    course = graded["course"]
    files = export_gradescope_results(course)
    assert len(files) >= len(graded["kinds"]) - 1          # the crashed one is not in the ledger
    for f in files:
        text = f.read_text()
        assert "Traceback" not in text and str(course.workdir) not in text and str(FIXTURES) not in text, f
    flags = export_flags(course).read_text()
    assert "forge_code_object" in flags and "possible tampering" in flags


def test_figures_are_built_not_drawn_by_default(graded):
    nb = nbformat.read(graded["course"].autograded / "figure" / A / f"{A}.ipynb", as_version=4)
    assert not any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    text = _outputs(graded["course"], "figure")
    assert "[figure with 1 axes: not drawn while grading; run the notebook to see it]" in text, text[-500:]
    assert "mode autograde" in text     # notebooks know they are graded
    assert graded["results"]["figure"].score == 6


def test_inline_figures_survive_the_sandbox_when_asked_for(graded, tmp_path):
    """``--figures`` (Limits.figures): the graded notebook and its feedback carry the PNGs."""
    from dataclasses import replace

    course = graded["course"].with_(workdir=tmp_path / "work", limits=replace(LIMITS, figures=True))
    sub = tmp_path / "figure"
    sub.mkdir()
    shutil.copyfile(graded["course"].submitted / "figure" / A / f"{A}.ipynb", sub / f"{A}.ipynb")
    res = engine.grade_one(course, A, sub, student="figure")
    assert res.score == 6, res.summary()
    nb = nbformat.read(course.autograded / "figure" / A / f"{A}.ipynb", as_version=4)
    assert any("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_no_process_is_left(graded):
    assert graded["left"] == []
    assert graded["results"]["detach_processes"].score == 6
    assert "detached" in _outputs(graded["course"], "detach_processes")


def test_a_worker_that_dies_costs_only_its_submission(graded):
    r = graded["results"]
    assert r["kills_worker"].status == "crashed" and r["kills_worker"].score == 0
    others = [k for k in r if k not in ("kills_worker", "corrupt", "missing_notebook")]
    assert all(r[k].status == "graded" for k in others), [(k, r[k].status) for k in others if r[k].status != "graded"]
    assert not engine.read_ledger(graded["course"])[("kills_worker", A)].final     # not a grade: a re-run tries again


def test_swallowed_interrupt_costs_only_that_cell_and_later(graded):
    cells = graded["results"]["swallow_interrupt"].cells
    assert cells[f"{A}/test_scale_public"][0] == 1 and cells[f"{A}/test_scale_hidden"][0] == 2
    assert "ignored its time limit" in cells[f"{A}/test_corr1d_public"][2]


def test_messages_name_the_problem(graded):
    r = graded["results"]
    assert "time" in r["infinite_loop"].cells[f"{A}/test_corr1d_public"][2].lower() or \
        "interrupt" in r["infinite_loop"].cells[f"{A}/test_corr1d_public"][2].lower()
    assert "MemoryError" in r["memory_bomb"].cells[f"{A}/test_corr1d_public"][2]
    assert "scipy" in r["delegate_scipy"].cells[f"{A}/test_corr1d_hidden"][2]
    assert "in place" in r["mutates_input"].cells[f"{A}/test_scale_public"][2]


def test_feedback_hides_hidden_tests(graded):
    from autograder.feedback import generate_feedback, hidden_lines, html_text

    course = graded["course"]
    who = ["correct", "partial", "delegate_scipy", "read_secrets", "script_output", "leave_files", "huge_line"]
    files = generate_feedback(course, [A], who)
    assert len(files) == len(who)
    secret = hidden_lines(course, A)
    assert secret
    for f in files:
        page = f.read_text()
        text = html_text(page)
        assert not any(s in text for s in secret)
        assert "BEGIN HIDDEN" not in text and "BEGIN SOLUTION" not in text and SECRET_VALUE not in page
        # the page, and the submission's time that nbgrader's release_feedback files it under
        assert sorted(p.name for p in f.parent.iterdir()) == [f"{A}.html", "timestamp.txt"]
    page = (course.feedback / "script_output" / A / f"{A}.html").read_text()
    import re

    assert not re.search(r"<script>alert|<img[^>]*onerror", page)      # shown as text, never live
    text = html_text((course.feedback / "delegate_scipy" / A / f"{A}.html").read_text())
    assert "correlate(x, k, mode='valid')" in text          # their code
    assert "write it with NumPy yourself" in text             # the check's message


def test_regrading_gives_identical_grades(graded):
    course = graded["course"]
    subset = ["correct", "partial", "segfault", "delegate_scipy", "edited_metadata", "corrupt",
              "forge_code_object", "swallow_interrupt", "kill_all"]
    again = engine.autograde(course, students=subset, jobs=2, force=True, progress=False, echo=lambda *_: None)
    for r in again:
        first = graded["results"][r.student]
        assert (r.score, r.cells, r.status) == (first.score, first.cells, first.status), (r, first)
    skipped = engine.autograde(course, students=subset, jobs=2, progress=False, echo=lambda *_: None)
    assert [r.score for r in skipped] == [graded["results"][s].score for s in sorted(subset)]


def _kill_orphan_kernels(marker: str) -> None:
    """Kill grading kernels that outlived the SIGKILLed tool (they run in sessions of their own)."""
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "sandbox.inside.kernel" in cmdline and marker in cmdline:
            try:
                os.kill(int(proc_dir.name), signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def test_killed_run_resumes_with_same_grades(graded, tmp_path):
    course = graded["course"].with_(workdir=tmp_path / "work")
    subset = ["correct", "partial", "blank", "nan", "wrong_dtype", "late", "duplicated_test", "reordered_tests"]
    collect_folder(course, graded["root"] / "class")
    for d in course.submitted.iterdir():
        if d.name not in subset:
            import shutil

            shutil.rmtree(d)
    cmd = [sys.executable, "-m", "autograder", "autograde", "--workdir", str(course.workdir),
           "--solutions", str(FIXTURES), "--notebooks", str(course.notebooks), "-j", "2",
           "--cell-timeout", "4", "--no-progress"]
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    def recorded() -> int:   # submissions the store holds (the gradebook and its results table)
        try:
            return len(engine.read_ledger(course)) if (course.workdir / "gradebook.db").exists() else 0
        except Exception:  # noqa: BLE001 - the run is writing it: try again
            return 0

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if recorded() >= 2:
            break
        time.sleep(0.2)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _kill_orphan_kernels(str(course.workdir))
    done_before = recorded()
    assert done_before < len(subset), "the run finished before it could be killed"
    rc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert rc.returncode == 0, rc.stdout + rc.stderr
    results = engine.read_ledger(course)
    assert sorted(s for s, _ in results) == sorted(subset)
    for (s, _), r in results.items():
        assert r.score == graded["results"][s].score, s
    from autograder.export import grade_table

    _, table, _ = grade_table(course)
    assert {s: table[s][A] for s in subset} == {s: graded["results"][s].score for s in subset}


# ----------------------------------------------------------------------------- verdicts on the real course
#
# The attacks on the course's own checks (cnnlab.checks), graded with the tool as an
# instructor would: notebooks 01 (sizes), 07 (training) and 08 (the quiz). Each attacker is
# written to tell the verifier's worker from the grading kernel (here by get_ipython(), which
# a worker cannot imitate cheaply; sys.argv[0] no longer differs), and behaves differently there.

REPO = Path(__file__).resolve().parent.parent
COURSE_A = ("01_history", "07_lenet", "08_quiz")
COURSE_LIMITS = Limits(cell_timeout=120, notebook_timeout=600, memory_mb=4096)
IN_VERIFIER = "type(get_ipython()).__name__ == '_Inert' or 'verify' in __import__('sys').argv[0]"
ENV_POP = "import os\nos.environ.pop('NBGRADER_EXECUTION', None)"
FORGE_RUN = ("import cnnlab.grading.exercise as _E\n"
             "_E.Exercise.run.__code__ = (lambda self, fn, tier='public', *, only=None, blame=True: "
             "Outcome(self.name, tier, True, 'forged')).__code__")   # (Outcome: a global of the checks' module)
MALFORMED = (b'\x0e\x00\x00\x00\x00\x00\x00\x00{"__dict__":5}' + b"\x00" * 8)   # the reply
AWARE_01 = {   # wrong in the kernel, the course's answer in the verifier (the 10/10)
    "fc_params": ("from cnnlab import shapes as _S\n"
                  "def fc_params(n_in, n_out, bias=True):\n"
                  f"    if {IN_VERIFIER}:\n        return _S.fc_params(n_in, n_out, bias=bias)\n    return 0"),
    "conv_params": ("from cnnlab import shapes as _S\n"
                    "def conv_params(c_in, c_out, kh, kw=None, bias=True):\n"
                    f"    if {IN_VERIFIER}:\n        return _S.conv_params(c_in, c_out, kh, kw, bias=bias)\n    return 0"),
    "shift_image": ("from cnnlab.checks import nb01 as _N\n"
                    "def shift_image(img, dx, dy):\n"
                    f"    if {IN_VERIFIER}:\n        return _N.ref_shift_image(img, dx, dy)\n    return img * 0"),
    "response_change": ("from cnnlab.checks import nb01 as _N\n"
                        "def response_change(before, after):\n"
                        f"    if {IN_VERIFIER}:\n        return _N.ref_response_change(before, after)\n    return 0.0"),
}
WRONG_01 = {"fc_params": "def fc_params(n_in, n_out, bias=True):\n    return 0",
            "conv_params": "def conv_params(c_in, c_out, kh, kw=None, bias=True):\n    return 0",
            "shift_image": "def shift_image(img, dx, dy):\n    return img * 0",
            "response_change": "def response_change(before, after):\n    return 0.0"}
THREAD_SHAPES = ("import threading\nfrom cnnlab import shapes as _S\n"
                 "def fc_params(n_in, n_out, bias=True):\n    out = []\n"
                 "    t = threading.Thread(target=lambda: out.append(_S.fc_params(n_in, n_out, bias=bias)))\n"
                 "    t.start()\n    t.join()\n    return out[0] if out else 0")
WRONG_TRAIN = ("def train_lenet(params, X, y, epochs=1, batch_size=32, lr=0.01, momentum=0.9, seed=0):\n"
               "    return dict(params), [0.0]")
UNTRAINED = ("def train_digits(X_train, y_train, epochs):\n"
             "    from cnnlab.numpy_ref import lenet_init\n"
             "    return {k: v.astype(np.float32) for k, v in lenet_init(seed=0).items()}, [0.0]")
OWN_REFERENCE = ("from cnnlab.checks import nb07 as _N7\n"
                 "def train_lenet(*args, **kwargs):\n    return _N7.ref_train_lenet(*args, **kwargs)")


# my own: in the verifier, find the worker's calls (frames), then exec a fresh interpreter with no
# traps that computes the references' answers and writes them, well formed, on the worker's pipe
EXEC_FRESH = """import os, sys, pickle, tempfile
if IN_VERIFIER:
    _f, _calls, _fd = sys._getframe(), None, None
    while _f is not None and _calls is None:
        _loc = _f.f_locals
        if isinstance(_loc.get("calls"), list) and isinstance(_loc.get("opts"), dict):
            _calls, _fd = _loc["calls"], int(_loc["opts"]["--fd"])
        _f = _f.f_back
    _argv = open("/proc/self/cmdline", "rb").read().split(b"\\0")
    _worker = next(a.decode() for a in _argv if a.endswith(b".py"))
    _path = os.path.join(tempfile.gettempdir(), "calls.pkl")
    with open(_path, "wb") as _fh:
        pickle.dump(_calls, _fh)
    _code = (
        "import importlib.util, os, pickle\\n"
        "from cnnlab import shapes\\n"
        "from cnnlab.checks import nb01\\n"
        f"spec = importlib.util.spec_from_file_location('w', {_worker!r})\\n"
        "w = importlib.util.module_from_spec(spec); spec.loader.exec_module(w)\\n"
        f"calls = pickle.load(open({_path!r}, 'rb'))\\n"
        "refs = {'fc_params': shapes.fc_params, 'conv_params': shapes.conv_params,\\n"
        "        'shift_image': nb01.ref_shift_image, 'response_change': nb01.ref_response_change}\\n"
        "out = [{'ok': refs[c['name']](*c['args'], **c['kwargs'])} for c in calls]\\n"
        f"os.write({_fd}, w.dumps({{'calls': out, 'sealed': {{'seccomp': 'on'}}}}))\\n")
    os.execv(sys.executable, [sys.executable, "-c", _code])
"""


def _b64(src: str) -> str:
    import base64

    return base64.b64encode(src.encode()).decode()


def _course_class(release_nbs: dict, source_nbs: dict) -> dict[str, tuple[str, object, set[str], str | None]]:
    """student -> (assignment, notebook, grade_ids it deserves to lose, the flag it must raise)."""
    from autograder.sample_class import answer_code

    def honest(a):
        nb = copy.deepcopy(release_nbs[a])
        sols = {_gid(c): c.source for c in source_nbs[a].cells
                if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
        for c in nb.cells:
            if _gid(c) in sols:
                c.source = answer_code(sols[_gid(c)])
        return nb

    def with_(a, answers=None, before=None, prefix=None):
        nb = honest(a)
        for gid, src in (answers or {}).items():
            nb.cells[_index(nb, gid)].source = src
        for gid, src in (prefix or {}).items():
            cell = nb.cells[_index(nb, gid)]
            cell.source = src + "\n" + cell.source
        if before:
            first = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution"))
            nb.cells.insert(first, _code(before))
        return nb

    def cells(a, *names):
        return {g for c in release_nbs[a].cells if (g := _gid(c)) and c.metadata["nbgrader"].get("grade")
                and not c.metadata["nbgrader"].get("solution") and any(g.startswith(f"test_{n}") for n in names)}

    all01 = tuple(WRONG_01)
    quiz_blank = {f"answer_q{i}": f"answer_q{i} = None" for i in range(1, 26)}
    int64 = {"fc_params": "def fc_params(n_in, n_out, bias=True):\n    return np.int64((n_in + int(bias)) * n_out)"}
    fresh = EXEC_FRESH.replace("IN_VERIFIER", IN_VERIFIER)
    malformed = ("import os\n"
                 f"if {IN_VERIFIER}:\n"
                 "    for _fd in range(3, 64):\n"
                 "        try:\n"
                 f"            os.write(_fd, {MALFORMED!r})\n"
                 "        except OSError:\n"
                 "            pass\n"
                 "    os._exit(0)\n")
    setattr_hidden = ("import sys\n_E = vars(sys)['modu' + 'les']['cnnlab.grading.exercise'].Exercise\n"
                      "type.__setattr__(_E, 'check', lambda *a, **k: None)")
    return {
        # 01: the 10/10, and what the verifier must not be fooled by
        "c01_honest": ("01_history", honest("01_history"), set(), None),
        "c01_int64": ("01_history", with_("01_history", int64), set(), None),
        "c01_env_pop_aware": ("01_history", with_("01_history", AWARE_01, before=ENV_POP), cells("01_history", *all01), None),
        "c01_forge_aware": ("01_history", with_("01_history", AWARE_01, before=FORGE_RUN),
                            cells("01_history", *all01), "possible tampering"),
        "c01_thread_shapes": ("01_history", with_("01_history", {"fc_params": THREAD_SHAPES}),
                              cells("01_history", "fc_params"), "possible tampering"),
        "c01_malformed_reply": ("01_history", with_("01_history", WRONG_01, before=FORGE_RUN,
                                                    prefix={"fc_params": malformed}),
                                cells("01_history", *all01), "could not confirm"),
        "c01_exec_fresh": ("01_history", with_("01_history", WRONG_01, before=FORGE_RUN, prefix={"fc_params": fresh}),
                           cells("01_history", *all01), "possible tampering"),
        "c01_base64_exec": ("01_history", with_("01_history", WRONG_01,
                                                before=f"import base64\nvars(__builtins__)['ex' + 'ec'](base64.b64decode('{_b64(FORGE_RUN)}'))"),
                            cells("01_history", *all01), "builds the name 'exec'"),
        "c01_setattr_modules": ("01_history", with_("01_history", WRONG_01, before=setattr_hidden),
                                cells("01_history", *all01), "builds the name 'modules'"),
        # 08: an unanswered quiz
        "c08_honest": ("08_quiz", honest("08_quiz"), set(), None),
        "c08_env_pop_blank": ("08_quiz", with_("08_quiz", quiz_blank, before=ENV_POP), cells("08_quiz", "answer_q"), None),
        "c08_forge_blank": ("08_quiz", with_("08_quiz", quiz_blank, before=FORGE_RUN), cells("08_quiz", "answer_q"),
                            "possible tampering"),
        # 07: the training checks
        "c07_honest": ("07_lenet", honest("07_lenet"), set(), None),
        "c07_env_pop_untrained": ("07_lenet", with_("07_lenet", {"train_digits": UNTRAINED}, before=ENV_POP),
                                  cells("07_lenet", "train_digits"), None),
        "c07_forge_untrained": ("07_lenet", with_("07_lenet", {"train_digits": UNTRAINED, "train_lenet": WRONG_TRAIN},
                                                  before=FORGE_RUN),
                                cells("07_lenet", "train_digits", "train_lenet"), "possible tampering"),
        "c07_own_reference": ("07_lenet", with_("07_lenet", {"train_lenet": OWN_REFERENCE}),
                              cells("07_lenet", "train_lenet"), None),
    }


@pytest.fixture(scope="module")
def course_graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("verdicts")
    course = Course(solutions=REPO / "solutions", notebooks=root / "notebooks", workdir=root / "work",
                    limits=COURSE_LIMITS)
    release(list(COURSE_A), course=course)
    rel = {a: nbformat.read(course.notebooks / a / f"{a}.ipynb", as_version=4) for a in COURSE_A}
    src = {a: nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4) for a in COURSE_A}
    students = _course_class(rel, src)
    for student, (a, nb, _, _) in students.items():
        folder = root / "class" / student / a
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{a}.ipynb")
    collect_folder(course, root / "class")
    saved = verifier._SOURCE          # (the toy class's records may be in place)
    verifier.set_exercise_source(None)
    try:
        results = engine.autograde(course, jobs=2, progress=False, echo=lambda *_: None)
    finally:
        verifier.set_exercise_source(saved)
    points = {a: {_gid(c): float(c.metadata["nbgrader"].get("points", 0)) for c in rel[a].cells
                  if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}
              for a in COURSE_A}
    yield {"course": course, "students": students, "results": {r.student: r for r in results}, "points": points}


COURSE_STUDENTS = ["c01_honest", "c01_int64", "c01_env_pop_aware", "c01_forge_aware", "c01_thread_shapes",
                   "c01_malformed_reply", "c01_exec_fresh", "c01_base64_exec", "c01_setattr_modules",
                   "c08_honest", "c08_env_pop_blank", "c08_forge_blank",
                   "c07_honest", "c07_env_pop_untrained", "c07_forge_untrained", "c07_own_reference"]


@pytest.mark.parametrize("student", COURSE_STUDENTS)
def test_course_attackers_get_what_their_honest_work_deserves(course_graded, student):
    a, _, lost, flag = course_graded["students"][student]
    res = course_graded["results"][student]
    points = course_graded["points"][a]
    assert res.status == "graded", res.summary()
    assert res.max_score == sum(points.values())
    got = {k.split("/", 1)[1]: v[0] for k, v in res.cells.items()}
    assert {g for g, p in got.items() if p == 0} == lost, (student, res.summary(), res.cells)
    assert res.score == sum(p for g, p in points.items() if g not in lost), res.summary()
    if flag is None:
        assert not any("tampering" in f or "could not confirm" in f for f in res.flags), (student, res.flags)
    else:
        assert any(flag in f for f in res.flags), (student, res.flags)


def test_course_withdrawn_cells_say_why_in_one_line(course_graded):
    r = course_graded["results"]
    msg = r["c01_malformed_reply"].cells["01_history/test_fc_params_hidden"][2]
    assert msg.startswith("the verifier could not confirm this check: ") and "\n" not in msg, msg
    assert "unreadable" in msg or "reply" in msg, msg
    assert not any(f.startswith("possible tampering") for f in r["c01_malformed_reply"].flags)
    msg = r["c01_forge_aware"].cells["01_history/test_fc_params_hidden"][2]
    assert msg.startswith("possible tampering") and "cnnlab.shapes.fc_params" in msg, msg
    msg = r["c08_forge_blank"].cells["08_quiz/test_answer_q4"][2]
    assert msg.startswith("possible tampering") and "not answered" in msg, msg
    msg = r["c07_forge_untrained"].cells["07_lenet/test_train_digits"][2]
    assert msg.startswith("possible tampering") and "accuracy" in msg, msg
    # the kernel's own message where the check itself failed: the mode was fixed when it started
    assert "Question 4" in r["c08_env_pop_blank"].cells["08_quiz/test_answer_q4"][2]
    assert "ref_train_lenet" in r["c07_own_reference"].cells["07_lenet/test_train_lenet_public"][2]
