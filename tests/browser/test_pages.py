"""Inert pages in Chromium: no attack of tests/feedback_attacks.py runs, loads or navigates in the
feedback page (opened as a file, as a student opens it) or in formgrader's grading view (in the
instructor's Jupyter origin), while nbgrader's stock feedback page runs them (the wrong case, in
the same browser); formgrader's Generate Feedback button writes the CLI's page; formulas render
with every request off the machine refused; formgrader lists ids, never "None, None".

Each payload prints ``PWNED:<name>`` on the console or asks for ``/pwned/<name>`` (see
feedback_attacks.py): the browser reports both from any frame, whatever the page's policy lets a
script reach. Screenshots go to out/browser/."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from labkit import OUT, Lab, copy_course

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from feedback_attacks import VECTORS, attacked  # noqa: E402

A = "01_history"
LOCAL = ("http://127.0.0.1:", "file://", "data:", "about:", "blob:")
# live in nbgrader 0.9.6's own feedback page in Chromium (measured): the wrong case must show them
STOCK_LIVE_IN_CHROMIUM = {"png-width-onload", "md-javascript-link", "md-data-html-link", "md-external-img",
                          "html-img-onerror", "md-raw-onerror", "markdown-output-onerror", "iframe-srcdoc",
                          "css-url", "isolated-iframe", "png-filenames", "html-script"}


def _run(root: Path, *args, timeout=900) -> str:
    env = {**os.environ, "PYTHONPATH": str(root), "PATH": f"{root / '.venv' / 'bin'}:{os.environ['PATH']}"}
    out = subprocess.run([sys.executable, "-m", "autograder", *map(str, args), "--workdir", str(root / "course")],
                         cwd=root, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def pages_lab(course_copy, tmp_path_factory, processes_cleanup):
    """01_history released, collected and graded for an attacker (every vector; a roster name that
    is markup) and a student missing from the roster; the CLI's feedback and nbgrader's stock
    feedback (``course/feedback_stock``); then JupyterLab in instructor mode."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    from autograder.config import Course
    from autograder.util import env_path, quiet

    root = tmp_path_factory.mktemp("pages") / "cnnlab"
    copy_course(course_copy, root)
    t0 = time.monotonic()
    _run(root, "release", A)
    rel = nbformat.read(root / "notebooks" / A / f"{A}.ipynb", as_version=4)
    for student, nb in {"attacker": attacked(rel), "plain": rel}.items():
        folder = root / "class" / student / A
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{A}.ipynb")
    with open(root / "roster.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["id", "first_name", "last_name"], ["attacker", "Eve", VECTORS["roster-name"][2]]])
    _run(root, "roster", root / "roster.csv")
    _run(root, "collect", root / "class")
    _run(root, "autograde", "--no-progress")
    _run(root, "feedback")
    course = Course(solutions=root / "solutions", notebooks=root / "notebooks", workdir=root / "course")
    stock = Config()
    for key, value in course.config().CourseDirectory.items():
        stock.CourseDirectory[key] = value
    stock.CourseDirectory.feedback_directory = "feedback_stock"
    env_path()
    with quiet():
        assert NbGraderAPI(config=stock).generate_feedback(A, "attacker", force=True)["success"]
    print(f"graded and fed back: {time.monotonic() - t0:.0f} s")
    lab = Lab(root, "instructor", tmp_path_factory.mktemp("lab-pages"))
    yield lab
    lab.stop()


class Watch:
    """What a page did: console markers, requests (every one leaving the machine is refused)."""

    def __init__(self, ctx, page):
        self.page, self.marks, self.requests, self.outside, self.console = page, set(), [], [], []
        page.on("console", self._console)
        ctx.on("console", self._console)
        page.on("request", lambda r: self.requests.append(r.url))
        ctx.route("**/*", self._route)

    def _console(self, msg):
        self.console.append(f"{msg.type}: {msg.text}")
        self.marks |= set(re.findall(r"PWNED:([a-z0-9-]+)", msg.text))

    def _route(self, route):
        url = route.request.url
        if "/pwned/" in url:      # a marker: noted, answered "no content" (a navigation stays put)
            self.marks |= set(re.findall(r"/pwned/([a-z0-9-]+)", url))
            route.fulfill(status=204)
        elif url.startswith(LOCAL):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def live(self) -> set[str]:
        """Markers seen, plus links a click would run (javascript:, vbscript:, data:)."""
        hrefs = self.page.evaluate("""() => [...document.querySelectorAll('a[href], area[href]')]
                                          .map(a => a.getAttribute('href'))""")
        links = {n for h in hrefs if re.match(r"\s*(javascript|vbscript|data):", h or "", re.I)
                 for n in VECTORS if n in h}
        return (self.marks | links) & set(VECTORS)


def _open(browser, url: str, name: str):
    ctx = browser.new_context(viewport={"width": 1300, "height": 900})
    ctx.set_default_timeout(60_000)
    page = ctx.new_page()
    watch = Watch(ctx, page)
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(1500)           # onload, onerror, meta refresh, CSS loads
    OUT.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(OUT / f"pages-{name}.png"), full_page=False)
    return ctx, page, watch


def _formula(page) -> dict:
    """Layout of the first formula n_{in}: the subscript must sit lower and smaller than its base."""
    return page.evaluate("""() => {
        for (const s of document.querySelectorAll('math msub')) {
            const [base, sub] = s.children;
            if (!base || !sub || base.textContent !== 'n' || sub.textContent !== 'in') continue;
            s.closest('math').scrollIntoView({block: 'center'});
            const b = base.getBoundingClientRect(), u = sub.getBoundingClientRect();
            return {found: true, base_bottom: b.bottom, sub_bottom: u.bottom, base_h: b.height, sub_h: u.height,
                    width: s.getBoundingClientRect().width,
                    sub_font: parseFloat(getComputedStyle(sub).fontSize),
                    base_font: parseFloat(getComputedStyle(base).fontSize)};
        }
        return {found: false};
    }""")


def test_feedback_page_runs_nothing_a_student_wrote(pages_lab, browser):
    root = pages_lab.root / "course"
    stock_url = (root / "feedback_stock" / "attacker" / A / f"{A}.html").as_uri()
    ctx, page, watch = _open(browser, stock_url, "feedback-stock")
    stock = watch.live()
    ctx.close()
    print("live in nbgrader's stock feedback:", sorted(stock))
    assert stock >= STOCK_LIVE_IN_CHROMIUM, sorted(STOCK_LIVE_IN_CHROMIUM - stock)     # the wrong case

    ours_url = (root / "feedback" / "attacker" / A / f"{A}.html").as_uri()
    ctx, page, watch = _open(browser, ours_url, "feedback-course")
    assert watch.live() == set(), watch.console
    assert watch.outside == [], watch.outside
    assert page.evaluate("document.scripts.length") == 0
    text = page.locator("body").inner_text()
    assert "Score:" in text and "PWNED:html-script" in text          # the student's code, shown as text
    ctx.close()


def test_formgrader_grading_view_runs_nothing_a_student_wrote(pages_lab, browser):
    subs = pages_lab.api(f"formgrader/api/submitted_notebooks/{A}/{A}")
    sub = next(s for s in subs if s["student"] == "attacker")
    ctx, page, watch = _open(browser, pages_lab.url("formgrader"), "formgrader-login")   # the token's cookie
    page.goto(pages_lab.url(f"formgrader/submissions/{sub['id']}/"))
    page.wait_for_selector(".nbgrader_cell")
    # formgrader's own scripts ran: they fetched the grades and wrote each auto score as a placeholder
    page.wait_for_function("() => window.$ && $('.score').length > 0 && $('.score').first().attr('placeholder') !== undefined")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(OUT / "pages-formgrader-view.png"))
    assert watch.live() == set(), watch.console
    assert watch.outside == [], watch.outside
    refused = [c for c in watch.console if "Content Security Policy" in c]
    assert refused == [], refused                      # the page's own scripts all run under its policy
    shown = page.locator("nav a.name-shown").first.text_content()
    assert "<img src=x onerror=" in shown, shown                          # the roster name is text
    # the grading widgets work: a manual score typed in is saved through formgrader's API
    box = page.locator("input.score").first
    grade_id = box.get_attribute("id")
    box.fill("0.5")
    box.press("Tab")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        grades = pages_lab.api(f"formgrader/api/grades?submission_id={sub['id']}")
        mine = [g for g in grades if g["name"] == grade_id]
        if mine and mine[0]["manual_score"] == 0.5:
            break
        time.sleep(0.5)
    assert mine and mine[0]["manual_score"] == 0.5, mine
    ctx.close()


def test_formgrader_generate_feedback_button_writes_the_clis_page(pages_lab, browser):
    page_file = pages_lab.root / "course" / "feedback" / "attacker" / A / f"{A}.html"
    _run(pages_lab.root, "feedback", A, "--student", "attacker")   # after any grade changed in formgrader
    cli = page_file.read_bytes()
    page_file.unlink()
    ctx, page, watch = _open(browser, pages_lab.url("formgrader"), "formgrader-manage")
    page.goto(pages_lab.url(f"formgrader/manage_submissions/{A}"))
    page.wait_for_selector("text=attacker")
    table = page.locator("table").first.inner_text()
    assert "None, None" not in table and "plain, (no roster entry)" in table, table   # ids, not None
    page.locator("tr", has_text="attacker").first.locator("td.generate-feedback a").click()
    page.wait_for_selector("#success-modal, #error-modal", timeout=300_000)
    page.screenshot(path=str(OUT / "pages-generate-feedback.png"))
    assert page.locator("#success-modal").count() == 1, page.locator(".modal-dialog").inner_text()
    ctx.close()
    assert page_file.read_bytes() == cli, "formgrader's Generate Feedback made another page than the CLI"
    ctx, page, watch = _open(browser, page_file.as_uri(), "feedback-from-formgrader")
    assert watch.live() == set() and page.evaluate("document.scripts.length") == 0
    ctx.close()


def test_formulas_render_without_a_network(pages_lab, browser):
    """n_{in} is MathML in both pages: laid out by Chromium (the subscript lower and smaller), with
    every request that would leave the machine refused and none attempted."""
    page_file = pages_lab.root / "course" / "feedback" / "plain" / A / f"{A}.html"
    subs = pages_lab.api(f"formgrader/api/submitted_notebooks/{A}/{A}")
    sub = next(s for s in subs if s["student"] == "plain")
    for name, url in (("feedback", page_file.as_uri()),
                      ("formgrader", pages_lab.url(f"formgrader/submissions/{sub['id']}/"))):
        ctx, page, watch = _open(browser, pages_lab.url("formgrader") if name == "formgrader" else url,
                                 f"math-{name}-open")
        if name == "formgrader":
            page.goto(url)
            page.wait_for_selector(".nbgrader_cell")
        f = _formula(page)
        assert f["found"], f"no MathML n_in in the {name} page"
        assert f["sub_bottom"] > f["base_bottom"] and f["sub_font"] < f["base_font"] and f["width"] > 5, f
        page.locator("math:has(msub)").first.evaluate("m => m.closest('p, li, div').style.outline = '2px solid #d33'")
        page.screenshot(path=str(OUT / f"pages-math-{name}.png"))
        assert watch.outside == [], watch.outside
        assert "$n_{in}$" not in page.locator("body").inner_text()
        ctx.close()
