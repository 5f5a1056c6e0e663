"""`scripts/lab.sh student` on one machine (issue 17): the student's JupyterLab shows their own
workspace (student/, git-ignored), not the release folder notebooks/; the Assignment List fetches
into it, submits what the student typed there, and fetches feedback next to it; a release and
formgrader's Generate afterwards leave the student's saved answers as they were."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from jlab import CODE_CELL, cell_with, menu, wait_kernel_idle
from labkit import Lab, copy_course

A = "01_history"
EXERCISES = ("fc_params", "conv_params", "shift_image", "response_change")

FORMGRADER_GENERATE = """
import json, sys
from nbgrader.auth import Authenticator
from nbgrader.apps import NbGraderAPI
from nbgrader.server_extensions.formgrader.formgrader import FormgradeExtension

fg = FormgradeExtension()          # what the instructor's `jupyter lab` loads, from the config files
fg.initialize([])
api = NbGraderAPI(fg.coursedir, Authenticator(parent=fg), parent=fg)
out = api.generate_assignment(sys.argv[1])          # formgrader's Generate button
print(json.dumps({"success": out["success"], "log": out.get("log", "")[-2000:], "error": out.get("error", "")}))
"""


@pytest.fixture(scope="module")
def single(course_copy, tmp_path_factory, processes_cleanup):
    """A copy of the course; 01_history released into the local exchange by the instructor; the
    student's JupyterLab (scripts/lab.sh student) on it."""
    from nbgrader.apps import NbGraderAPI

    from autograder.config import Course

    root = tmp_path_factory.mktemp("single") / "cnnlab"
    copy_course(course_copy, root)
    course = Course(solutions=root / "solutions", notebooks=root / "notebooks", workdir=root / "course")
    cfg = course.config()
    cfg.Exchange.root = str(root / "course" / "exchange")
    (root / "course" / "exchange").mkdir(parents=True)
    out = NbGraderAPI(config=cfg).release_assignment(A)          # formgrader's Release, as the instructor
    assert out["success"], out.get("error") or out.get("log")
    lab = Lab(root, "student", tmp_path_factory.mktemp("lab-single"))
    yield root, course, lab
    lab.stop()


def _answers(root: Path) -> dict[str, str]:
    from autograder.sample_class import submission

    rel = nbformat.read(root / "notebooks" / A / f"{A}.ipynb", as_version=4)
    sol = nbformat.read(root / "solutions" / A / f"{A}.ipynb", as_version=4)
    nb = submission("reference", rel, sol, A)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}


def _refresh(page):
    page.locator("#refresh_assignments_list").click()
    page.wait_for_timeout(500)
    page.wait_for_selector("#released_assignments_list_loading", state="hidden", timeout=60_000)


def test_fetch_answer_submit_and_feedback_in_the_students_workspace(single, watched):
    root, course, lab = single
    ws = root / "student"
    page = watched.page
    assert not (ws / A).exists(), "a released assignment was copied instead of fetched"
    assert (ws / "02_filters" / "02_filters.ipynb").is_file(), "the unreleased ones are not in the workspace"
    page.goto(lab.url("lab?reset"))
    page.wait_for_selector(".jp-DirListing-content", timeout=120_000)
    menu(page, "Nbgrader", "Assignment List")
    page.wait_for_selector("#released_assignments_list", timeout=60_000)
    _refresh(page)
    page.locator("#released_assignments_list .list_item:not(.nested_list_item)", has_text=A).get_by_role("button", name="Fetch").click()
    page.locator("#fetched_assignments_list .list_item:not(.nested_list_item)", has_text=A).wait_for(timeout=60_000)
    watched.shot("fetched")
    nb_path = ws / A / f"{A}.ipynb"
    assert nb_path.is_file(), "Fetch did not write into the workspace the Lab shows"
    assert not (root / A).exists(), "Fetch wrote into the repository root"

    page.goto(lab.url(f"lab/tree/{A}/{A}.ipynb"))                 # the fetched notebook opens (no 404)
    page.wait_for_selector(CODE_CELL, timeout=120_000)
    wait_kernel_idle(page, 180)
    code = _answers(root)
    for ex in EXERCISES:
        cell = cell_with(page, f"def {ex}(")
        cell.locator(".cm-content").click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(code[ex])
    menu(page, "File", "Save Notebook")
    page.wait_for_timeout(1500)
    watched.shot("answered")
    saved = nbformat.read(nb_path, as_version=4)
    mine = {c.metadata["nbgrader"]["grade_id"]: c.source for c in saved.cells
            if c.metadata.get("nbgrader", {}).get("grade_id") in EXERCISES}
    assert mine == {ex: code[ex] for ex in EXERCISES}

    menu(page, "Nbgrader", "Assignment List")
    _refresh(page)
    page.locator("#fetched_assignments_list .list_item:not(.nested_list_item)", has_text=A).get_by_role("button", name="Submit").click()
    page.locator("#submitted_assignments_list .list_item:not(.nested_list_item)", has_text=A).first.wait_for(timeout=60_000)
    watched.shot("submitted")
    inbound = list((root / "course" / "exchange" / "cnnlab" / "inbound").iterdir())
    assert len(inbound) == 1
    sent = nbformat.read(inbound[0] / f"{A}.ipynb", as_version=4)
    assert [c.source for c in sent.cells if c.metadata.get("nbgrader", {}).get("grade_id") in EXERCISES] == \
        [code[ex] for ex in EXERCISES], "Submit did not send the student's answers"

    # the instructor's side hands feedback back through the exchange (the hub's service, run once)
    from autograder.hub import service, settings
    from autograder.hub.queue import Setting

    sfile = root / "course" / "autofeedback.json"
    settings.save({A: Setting(enabled=True)}, sfile)
    svc = service.Service(course.with_(workdir=root / "autofeedback"), root / "course" / "exchange",
                          settings_file=sfile, echo=print)
    assert svc.poll().get("graded"), "the submission was not graded"

    _refresh(page)
    row = page.locator("#submitted_assignments_list .list_item:not(.nested_list_item)", has_text=A).first
    row.get_by_role("button", name="Fetch Feedback").click()
    page.locator("#submitted_assignments_list").get_by_text("(view feedback)").first.wait_for(timeout=60_000)
    watched.shot("feedback-fetched")
    pages = sorted((ws / A / "feedback").rglob(f"{A}.html"))
    assert pages, "Fetch Feedback wrote nothing next to the notebook"
    page.goto(lab.url(f"files/{pages[-1].relative_to(ws).as_posix()}"))
    page.wait_for_selector("text=Score", timeout=60_000)
    watched.shot("feedback-page")
    m = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", page.locator("body").inner_text())
    assert m and float(m.group(1)) == float(m.group(2)) > 0, page.locator("body").inner_text()[:800]


def test_release_and_generate_leave_the_students_answers(single):
    root, course, lab = single
    nb_path = root / "student" / A / f"{A}.ipynb"
    before = nb_path.read_bytes()
    assert b"NotImplementedError(\\\"Exercise: fc_params" not in before
    env = {**os.environ, "PYTHONPATH": str(root), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
           "CNNLAB_COURSE_DIR": str(root / "course"), "JUPYTER_CONFIG_PATH": str(root / "jupyter" / "instructor")}
    env.pop("CNNLAB_STUDENT_DIR", None)
    out = subprocess.run([sys.executable, "-m", "autograder", "release", A], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    out = subprocess.run([sys.executable, "-c", FORMGRADER_GENERATE, A], cwd=root, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["success"], res
    assert nb_path.read_bytes() == before, "release or Generate changed the student's notebook"
    assert (root / "notebooks" / A / f"{A}.ipynb").is_file()
