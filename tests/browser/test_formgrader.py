"""Formgrader on the demo course, as an instructor uses it: assignments, submissions with scores
and student names, one submission's grades and feedback; Generate gives what release gives."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import time

import pytest

from labkit import Lab, copy_course

A = "01_history"
SCORE = re.compile(r"(\d+(?:\.\d+)?) / (\d+(?:\.\d+)?)")


def _cli_scores(root) -> dict[str, float]:
    """The scores `python -m autograder demo` exported (grades.csv), per student."""
    with open(root / "course" / "exports" / "grades.csv") as fh:
        rows = list(csv.DictReader(fh))
    return {r["student"]: float(r[A]) for r in rows if r["student"] != "max"}


def _formgrader_scores(page) -> dict[str, tuple[str, float]]:
    """Student id -> (name as formgrader shows it, score) from the Manage Submissions table."""
    out = {}
    for row in page.locator("table tbody tr").all():
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        m = SCORE.search(cells[4]) if len(cells) > 4 else None
        if m:
            out[cells[1]] = (cells[0], float(m.group(1)))
    return out
MATHJAX_CDN = "https://cdnjs.cloudflare.com/ajax/libs/mathjax/"


@pytest.fixture(scope="module")
def demo_lab(course_copy, tmp_path_factory, processes_cleanup):
    """`python -m autograder demo 01_history` in a copy of the course (roster imported by the
    demo), then JupyterLab in instructor mode on it."""
    root = tmp_path_factory.mktemp("demo") / "cnnlab"
    copy_course(course_copy, root)
    env = {**__import__("os").environ, "PYTHONPATH": str(root),
           "PATH": f"{root / '.venv' / 'bin'}:{__import__('os').environ['PATH']}"}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "autograder", "demo", A, "--workdir", str(root / "course"),
                          "--no-progress"], cwd=root, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(f"demo: {time.monotonic() - t0:.0f} s")
    lab = Lab(root, "instructor", tmp_path_factory.mktemp("lab-demo"))
    yield lab
    lab.stop()


def test_formgrader_shows_assignments_submissions_names_scores_and_feedback(demo_lab, watched):
    page = watched.page
    page.goto(demo_lab.url("formgrader"))
    page.wait_for_selector(f"text={A}")
    watched.shot("manage-assignments")
    row = page.locator("tr", has_text=A).first
    assert row.locator("td").nth(8).inner_text().strip() == "8", row.inner_text()   # # Submissions
    assert page.locator("text=does not exist and could not be created").count() == 0, "no exchange"

    page.goto(demo_lab.url(f"formgrader/manage_submissions/{A}"))
    page.wait_for_selector("text=Reference, Ada")
    watched.shot("manage-submissions")
    table = page.locator("table").first.inner_text()
    assert "None, None" not in table, "students without names"
    shown = _formgrader_scores(page)
    cli = _cli_scores(demo_lab.root)
    assert shown["reference"][0] == "Reference, Ada" and shown["partial"][0] == "Partial, Chen", shown
    assert len(shown) >= 6, shown
    for student, (name, score) in shown.items():
        assert score == pytest.approx(cli[student]), f"{name}: formgrader {score}, CLI {cli[student]}"
    assert shown["reference"][1] > shown["blank"][1] == 0

    page.goto(demo_lab.url(f"formgrader/manage_students/partial/{A}"))
    page.wait_for_selector(f"text={A}")
    watched.shot("student-submission")
    page.locator("a", has_text=A).last.click()           # the notebook: formgrader's grading view
    page.wait_for_selector(".nbgrader_cell, #notebook-container", timeout=120_000)
    watched.shot("formgrade-view")
    body = page.locator("body").inner_text()
    assert "Submission" in body and "01 History" in body, body[:500]   # the grading view (anonymised)

    page.goto(demo_lab.url(f"files/course/feedback/partial/{A}/{A}.html"))
    page.wait_for_selector("text=Exercise", timeout=60_000)
    watched.shot("feedback")
    text = page.locator("body").inner_text()
    assert "Score:" in text, text[:500]
    assert "BEGIN HIDDEN TESTS" not in text and "tier='hidden'" not in text, "hidden tests in feedback"
    # nbconvert's templates (formgrader's grading view, the feedback HTML) load MathJax 2 from a
    # CDN; this machine is offline, so those requests fail here and only here. Known gap: an
    # offline instructor sees raw LaTeX in those two views (JupyterLab itself bundles MathJax).
    watched.assert_clean(allow=(MATHJAX_CDN, "MathJax is not defined",
                                "Failed to load resource: net::ERR_NAME_NOT_RESOLVED"))


def test_formgrader_generate_equals_release(demo_lab, watched):
    """Generate in formgrader writes the same student notebook as `python -m autograder release`."""
    released = demo_lab.root / "notebooks" / A / f"{A}.ipynb"
    before = released.read_bytes()          # written by the demo's `release` step
    released.unlink()
    page = watched.page
    page.goto(demo_lab.url("formgrader"))
    page.wait_for_selector(f"text={A}")
    row = page.locator("tr", has_text=A).first
    row.locator("td").nth(4).locator("a").click()        # Generate
    page.wait_for_selector(".modal-dialog", timeout=30_000)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "Success" not in (txt := page.locator(".modal-dialog").inner_text()) \
            and "error" not in txt.lower():
        time.sleep(0.5)
    watched.shot("generate")
    assert "Success" in txt, txt[:1500]
    assert released.is_file(), "Generate wrote no student notebook"
    assert released.read_bytes() == before, "formgrader's Generate differs from python -m autograder release"
    watched.assert_clean()


def test_formgrader_autograde_button_grades_like_the_cli(demo_lab, watched):
    """Autograde from formgrader runs the course's limited, sandboxed kernel (GuardedExecute) and
    gives the score the CLI gave (the demo's grades.csv)."""
    page = watched.page
    page.goto(demo_lab.url("formgrader"))       # the token logs in (a cookie for the API calls)
    page.wait_for_selector(f"text={A}")
    page.goto(demo_lab.url(f"formgrader/manage_submissions/{A}"))
    page.wait_for_selector("text=Partial, Chen")
    row = page.locator("tr", has_text="Partial, Chen").first
    row.locator("td").nth(5).locator("a").click()        # Autograde
    page.wait_for_selector(".modal-dialog", timeout=30_000)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        txt = page.locator(".modal-dialog").inner_text()
        if "Success" in txt or "rror" in txt:
            break
        time.sleep(0.5)
    watched.shot("autograde")
    assert "Success" in txt, txt[:1500]
    assert "GuardedExecute" in txt, "formgrader's autograde did not use the course's preprocessors"
    page.goto(demo_lab.url(f"formgrader/manage_submissions/{A}"))
    page.wait_for_selector("text=Partial, Chen")
    line = page.locator("tr", has_text="Partial, Chen").first.inner_text()
    watched.shot("after-autograde")
    m = SCORE.search(line)
    assert m and float(m.group(1)) == pytest.approx(_cli_scores(demo_lab.root)["partial"]), line
    watched.assert_clean()
