"""The course hub's parts that run without a hub (issue 17): the fair queue, the instructor's
settings, the student's workspace and configuration, account names, and the feedback service on
nbgrader's real exchange with the toy assignment (submit, grade, release, fetch feedback).

The hub itself, with Unix accounts and a browser, is tests/browser/test_hub.py; who can read what
between real accounts is tests/test_hub_permissions.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

from autograder import config
from autograder.config import Course, Limits
from autograder.hub import accounts, settings, workspace
from autograder.hub.queue import CAPPED, GRADED, SUPERSEDED, FairQueue, Setting, Submission, parse_name

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "toy" / "solutions"
A = "00_toy"
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.timezone.utc)


def _sub(student: str, n: int, assignment: str = A, secs: float | None = None) -> Submission:
    when = T0 + dt.timedelta(seconds=n if secs is None else secs)
    stamp = when.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    name = f"{student}+{assignment}+{stamp}+r{n}"
    parsed = parse_name(name)
    assert parsed is not None and parsed.timestamp == when
    return parsed


# ----------------------------------------------------------------------------- the queue

def test_inbound_names_are_parsed_as_nbgrader_writes_them_and_others_ignored():
    s = _sub("alice", 3)
    assert (s.student, s.assignment) == ("alice", A)
    assert parse_name("alice+00_toy+not a time+xyz") is None
    assert parse_name("just-a-folder") is None
    assert parse_name("+00_toy+2026-03-01 09:00:00.000000 UTC+x") is None


def test_a_student_who_submits_fifty_times_does_not_starve_the_class():
    on = {A: Setting(enabled=True)}
    spam = [_sub("spammer", n) for n in range(50)]              # all before the others
    others = [_sub(f"s{i}", 100 + i) for i in range(4)]
    # the wrong case: first come, first served would spend the whole batch on the spammer
    fifo = sorted(spam + others, key=lambda s: s.timestamp)[:5]
    assert {s.student for s in fifo} == {"spammer"}
    q = FairQueue()
    d = q.pick(spam + others, on, batch=5)
    assert sorted(s.student for s in d.grade) == ["s0", "s1", "s2", "s3", "spammer"]
    assert [s for s in d.grade if s.student == "spammer"] == [spam[-1]]       # only the latest
    assert sorted(s.name for s in d.superseded) == sorted(s.name for s in spam[:-1])
    assert all(q.handled[s.name] == SUPERSEDED for s in spam[:-1])
    for s in d.grade:
        q.done(s, GRADED)
    # everyone submits again; a late-comer's first submission goes before all of them (served
    # never), then, with room for two, each of the others once before anyone twice
    again = [_sub("spammer", 200), _sub("s0", 201), _sub("s1", 202), _sub("s2", 203), _sub("s3", 204)]
    newcomer = _sub("late", 300)
    d2 = q.pick(spam + others + again + [newcomer], on, batch=2)
    assert d2.grade[0] == newcomer
    served = [s.student for s in d2.grade[1:]]
    for s in d2.grade:
        q.done(s, GRADED)
    for _ in range(10):
        d = q.pick(spam + others + again, on, batch=2).grade
        served += [s.student for s in d]
        for s in d:
            q.done(s, GRADED)
    assert sorted(served) == ["s0", "s1", "s2", "s3", "spammer"]          # each once, nobody twice


def test_attempt_cap_and_assignments_that_are_off():
    settings_ = {A: Setting(enabled=True, max_attempts=2), "01_other": Setting(enabled=False)}
    q = FairQueue()
    got = []
    for n in range(4):
        d = q.pick([_sub("bob", n), _sub("bob", 50, "01_other")], settings_, batch=5)
        got.append(([s.name for s in d.grade], [s.name for s in d.capped]))
        for s in d.grade:
            q.done(s, GRADED)
    graded = [g for g, _ in got if g]
    assert len(graded) == 2 and q.attempts[f"bob/{A}"] == 2
    assert got[2][1] and got[3][1], got                                    # the third and fourth: capped
    assert q.handled[_sub("bob", 2).name] == CAPPED
    assert _sub("bob", 50, "01_other").name not in q.handled               # off: left for the instructor
    assert FairQueue.from_json(json.loads(json.dumps(q.to_json()))) == q


# ----------------------------------------------------------------------------- settings

@pytest.mark.slow   # the command in fresh processes: not in the fast tier
def test_settings_are_off_by_default_and_set_per_assignment(tmp_path):
    f = tmp_path / "autofeedback.json"
    assert settings.load(f) == {}
    env = dict(os.environ, CNNLAB_FEEDBACK_SETTINGS=str(f), CNNLAB_SOLUTIONS=str(FIXTURES))
    run = lambda *a: subprocess.run([sys.executable, "-m", "autograder.hub.settings", *a], env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    out = run()
    assert out.returncode == 0 and "off for every assignment" in out.stdout
    out = run(A, "--on", "--max-attempts", "3")
    assert out.returncode == 0, out.stderr
    assert settings.load(f) == {A: Setting(True, 3)}
    assert "00_toy: on, at most 3 graded attempt(s)" in out.stdout
    out = run("99_nope", "--on")
    assert out.returncode == 2 and "unknown assignment '99_nope'" in out.stderr
    out = run(A, "--off")
    assert settings.load(f) == {A: Setting(False, 3)}
    f.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read the feedback settings"):
        settings.load(f)


# ----------------------------------------------------------------------------- the student's side

def test_workspace_is_seeded_once_never_over_a_file_and_not_with_released_assignments(tmp_path):
    notebooks = tmp_path / "notebooks"
    for name in ("01_a", "02_b"):
        (notebooks / name).mkdir(parents=True)
        (notebooks / name / f"{name}.ipynb").write_text("{}")
    exchange = tmp_path / "exchange"
    (exchange / "cnnlab" / "outbound" / "02_b").mkdir(parents=True)        # released: fetched instead
    ws = tmp_path / "ws"
    assert workspace.seed(ws, notebooks, exchange) == ["01_a"]
    (ws / "01_a" / "01_a.ipynb").write_text("my answers")
    (notebooks / "01_a" / "01_a.ipynb").write_text("a new release")
    assert workspace.seed(ws, notebooks, exchange) == []
    assert (ws / "01_a" / "01_a.ipynb").read_text() == "my answers"
    assert not (ws / "02_b").exists()
    with pytest.raises(ValueError, match="lies in the release folder"):    # the old layout
        workspace.seed(notebooks, notebooks, exchange)


def _student_config(env: dict) -> dict:
    code = ("import json; from autograder.config import student_config; c = student_config(); "
            "print(json.dumps([c.CourseDirectory.root, c.Exchange.assignment_dir, c.Exchange.root]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    return {"rc": out.returncode, "out": out.stdout, "err": out.stderr}


def test_student_config_uses_the_workspace_not_the_release_folder(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith("CNNLAB_")}
    ws = tmp_path / "ws"
    ws.mkdir()
    got = _student_config(dict(base, CNNLAB_STUDENT_DIR=str(ws), CNNLAB_EXCHANGE=str(tmp_path / "ex")))
    assert got["rc"] == 0, got["err"]
    root, assignment_dir, exchange = json.loads(got["out"])
    assert root == assignment_dir == str(ws.resolve()) and exchange == str(tmp_path / "ex")
    bad = _student_config(dict(base, CNNLAB_STUDENT_DIR=str(config.NOTEBOOKS / "01_history")))
    assert bad["rc"] != 0 and "lies in the release folder" in bad["err"]
    unset = _student_config(base)
    assert unset["rc"] != 0 and "CNNLAB_STUDENT_DIR is not set" in unset["err"]


def test_lab_sh_student_serves_a_workspace_outside_the_release_folder():
    text = (REPO / "scripts" / "lab.sh").read_text()
    assert 'root_dir="$PWD/notebooks"' not in text
    assert 'CNNLAB_STUDENT_DIR="${CNNLAB_STUDENT_DIR:-$PWD/student}"' in text
    assert "/student/" in (REPO / ".gitignore").read_text().splitlines()


# ----------------------------------------------------------------------------- accounts

@pytest.mark.parametrize("name", ["Alice", "1abc", "a b", "x" * 33, "../etc", "root", "al;ice"])
def test_roster_ids_that_cannot_be_unix_accounts_are_refused(name):
    with pytest.raises(ValueError, match="roster id"):
        accounts.check_name(name)


def test_good_ids_pass():
    for name in ("alice", "s_2031", "bob-2", "_x"):
        accounts.check_name(name)


# ----------------------------------------------------------------------------- the service, for real

from autograder.hub import service as svc_mod  # noqa: E402

LIMITS = Limits(cell_timeout=20, notebook_timeout=120, memory_mb=3072)


class Exchange:
    """nbgrader's own exchange classes, as the instructor and as each student use them."""

    def __init__(self, root: Path, course: Course):
        self.root, self.course = root, course
        root.mkdir(parents=True, exist_ok=True)

    def _cfg(self, **kw) -> Config:
        cfg = self.course.config()
        cfg.Exchange.root = str(self.root)
        for k, v in kw.items():
            section, key = k.split("__")
            setattr(getattr(cfg, section), key, v)
        return cfg

    def release(self, assignment: str) -> None:
        from nbgrader.apps import NbGraderAPI

        out = NbGraderAPI(config=self._cfg()).release_assignment(assignment)
        assert out["success"], out.get("error") or out.get("log")

    def _student(self, student: str, ws: Path):
        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.exchange import ExchangeFactory

        cfg = Config()
        cfg.CourseDirectory.root = str(ws)
        cfg.CourseDirectory.course_id = config.COURSE_ID
        cfg.CourseDirectory.student_id = student
        cfg.Exchange.root = str(self.root)
        cfg.Exchange.assignment_dir = str(ws)
        cfg.Exchange.cache = str(ws.parent / f".cache-{student}")
        cd = CourseDirectory(config=cfg)
        return cfg, cd, ExchangeFactory(config=cfg), Authenticator(config=cfg)

    def submit(self, student: str, ws: Path, assignment: str, nb) -> None:
        folder = ws / assignment
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / f"{assignment}.ipynb")
        cfg, cd, fac, auth = self._student(student, ws)
        cd.assignment_id = assignment
        fac.Submit(coursedir=cd, authenticator=auth, config=cfg).start()

    def fetch_feedback(self, student: str, ws: Path, assignment: str) -> list[Path]:
        cfg, cd, fac, auth = self._student(student, ws)
        cd.assignment_id = assignment
        fac.FetchFeedback(coursedir=cd, authenticator=auth, config=cfg).start()
        return sorted((ws / assignment / "feedback").rglob("*.html"))


@pytest.fixture(scope="module")
def hubby(tmp_path_factory):
    """The toy course released into an exchange; an instructor's work folder and the service's."""
    from autograder.release import release

    root = tmp_path_factory.mktemp("hubsvc")
    instructor = Course(solutions=FIXTURES, notebooks=root / "notebooks", workdir=root / "course", limits=LIMITS)
    release([A], course=instructor)
    ex = Exchange(root / "exchange", instructor)
    ex.release(A)
    service_course = instructor.with_(workdir=root / "autofeedback")
    sfile = root / "autofeedback.json"
    settings.save({A: Setting(enabled=True, max_attempts=3)}, sfile)
    svc = svc_mod.Service(service_course, ex.root, settings_file=sfile, uid_of=lambda name: os.getuid(),
                          echo=lambda *_: None)
    return root, instructor, ex, svc


def _nbs(course: Course):
    from autograder.sample_class import submission

    rel = nbformat.read(course.notebooks / A / f"{A}.ipynb", as_version=4)
    sol = nbformat.read(course.solutions / A / f"{A}.ipynb", as_version=4)
    return {k: submission(k, rel, sol, A) for k in ("reference", "wrong", "blank")}


def _score(page: Path) -> str:
    import re

    m = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", page.read_text())
    assert m, page.read_text()[:500]
    return f"{float(m.group(1)):g}/{float(m.group(2)):g}"


@pytest.mark.sandbox   # the service grades in sandboxed kernels
def test_service_grades_each_submission_and_only_its_author_finds_the_feedback(hubby):
    root, instructor, ex, svc = hubby
    nbs = _nbs(instructor)
    for student, kind in (("ann", "reference"), ("ben", "wrong"), ("cat", "blank")):
        ex.submit(student, root / student, A, nbs[kind])
    before = sorted(p.relative_to(instructor.workdir) for p in instructor.workdir.rglob("*")) \
        if instructor.workdir.exists() else []
    did = svc.poll()
    assert len(did.get(GRADED, [])) == 3, did
    scores = {s: _score(ex.fetch_feedback(s, root / s, A)[0]) for s in ("ann", "ben", "cat")}
    full = scores["ann"].split("/")[1]
    assert scores["ann"] == f"{full}/{full}" and scores["cat"] == f"0/{full}", scores
    assert scores["ben"] != scores["ann"]
    page = ex.fetch_feedback("ann", root / "ann", A)[0].read_text()
    assert "tier='hidden'" not in page and "BEGIN HIDDEN" not in page
    # the exchange's feedback folder holds pages under hashes of each submission's secret: ben's
    # nbgrader (his cache holds only his secrets) finds his page and nothing of ann's
    assert all("ann" not in p.name for p in (ex.root / "cnnlab" / "feedback").iterdir())
    assert len(ex.fetch_feedback("ben", root / "ben", A)) == 1
    # the service kept out of the instructor's work folder
    after = sorted(p.relative_to(instructor.workdir) for p in instructor.workdir.rglob("*")) \
        if instructor.workdir.exists() else []
    assert after == before
    assert svc.poll() == {}                                          # nothing new: nothing done
    lat = (svc.course.workdir / "latency.csv").read_text().splitlines()
    assert len(lat) == 4 and lat[0].startswith("student,assignment,submitted")


@pytest.mark.sandbox   # the service grades in sandboxed kernels
def test_early_feedback_leaves_the_final_grades_the_instructors(hubby, tmp_path):
    """After the deadline the instructor collects and grades as without the service: same grades
    as a class graded where no service ever ran (ben fixes his answers after his feedback)."""
    from autograder import engine
    from autograder.collect import collect_exchange

    root, instructor, ex, svc = hubby
    nbs = _nbs(instructor)
    ex.submit("ben", root / "ben", A, nbs["reference"])          # ben's second try
    assert svc.poll().get(GRADED) == [n for n in svc.queue.handled if n.startswith("ben+")][-1:]
    assert _score(ex.fetch_feedback("ben", root / "ben", A)[-1]).split("/")[0] != "0"

    def final(course: Course) -> dict:
        course.workdir.mkdir(parents=True, exist_ok=True)
        collect_exchange(course, [A], str(ex.root))
        res = engine.autograde(course, assignments=[A], progress=False, echo=lambda *_: None)
        return {(r.student, r.assignment): (r.status, r.score) for r in res}

    with_service = final(instructor)
    control = final(instructor.with_(workdir=tmp_path / "control"))
    assert with_service == control
    assert with_service[("ben", A)][1] == with_service[("ann", A)][1] > with_service[("cat", A)][1] == 0


def test_the_service_refuses_the_instructors_work_folder(monkeypatch):
    monkeypatch.setenv("CNNLAB_FEEDBACK_WORKDIR", str(config.DEFAULT_WORKDIR))
    monkeypatch.setenv("CNNLAB_EXCHANGE", "/nonexistent")
    with pytest.raises(SystemExit, match="must not be the instructor's work folder"):
        svc_mod.course_from_env()


@pytest.mark.sandbox   # the service grades in sandboxed kernels
def test_attempt_cap_gives_a_notice_not_a_grade(hubby):
    root, instructor, ex, svc = hubby
    nbs = _nbs(instructor)
    for _ in range(2):          # cat: 1 graded; 2 more graded reach the cap of 3, then a notice
        ex.submit("cat", root / "cat", A, nbs["blank"])
        svc.poll()
    ex.submit("cat", root / "cat", A, nbs["reference"])
    did = svc.poll()
    assert len(did.get(CAPPED, [])) == 1, did
    pages = ex.fetch_feedback("cat", root / "cat", A)
    assert "attempt limit reached" in pages[-1].read_text() or any(
        "attempt limit reached" in p.read_text() for p in pages)


def test_submissions_that_are_not_the_students_own_files_are_refused(tmp_path):
    secret = tmp_path / "solutions.ipynb"
    secret.write_text('{"the": "solution"}')
    stamp = "2026-03-01 09:00:00.000000 UTC"
    inbound = tmp_path / "exchange" / "cnnlab" / "inbound"
    # the attack: a folder in the inbound whose notebook is a link to a file the service can read
    linked = inbound / f"eve+{A}+{stamp}+x1"
    linked.mkdir(parents=True)
    (linked / f"{A}.ipynb").symlink_to(secret)
    (linked / "submission_secret.txt").write_text("a" * 128)
    sub = svc_mod.scan(tmp_path / "exchange")[0]
    with pytest.raises(svc_mod.Refused, match="cannot be read safely"):
        svc_mod.safe_copy(sub, tmp_path / "copy", os.getuid())
    # a folder owned by someone else than the student it names
    with pytest.raises(svc_mod.Refused, match="belongs to uid"):
        svc_mod.safe_copy(sub, tmp_path / "copy", os.getuid() + 1)
    with pytest.raises(svc_mod.Refused, match="no Unix account"):
        svc_mod.safe_copy(sub, tmp_path / "copy", None)
    # the right case: plain files of the student are copied
    (linked / f"{A}.ipynb").unlink()
    (linked / f"{A}.ipynb").write_text("{}")
    svc_mod.safe_copy(sub, tmp_path / "copy", os.getuid())
    assert (tmp_path / "copy" / f"{A}.ipynb").read_text() == "{}"
    # a half-written submission (no secret yet) is not seen
    (inbound / f"eve+{A}+{stamp}+x2").mkdir()
    assert [s.name for s in svc_mod.scan(tmp_path / "exchange")] == [sub.name]
