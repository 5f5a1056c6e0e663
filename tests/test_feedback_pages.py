"""Inert pages (autograder.sanitise): every attack of tests/feedback_attacks.py runs in nbgrader's
stock feedback page and grading view (the wrong case, measured first) and in neither of the
course's; formgrader's Generate Feedback makes the CLI's page byte for byte; formulas are MathML;
formgrader's lists and nbgrader's logs say what is true (ids without a roster, no "checksum has
changed" for untouched hidden tests, no display_data_priority warnings)."""

from __future__ import annotations

import copy
import html
import io
import logging
import re
import sys
from pathlib import Path

import nbformat
import pytest
from traitlets.config import Config

sys.path.insert(0, str(Path(__file__).parent))
from feedback_attacks import VECTORS, attacked, live_vectors  # noqa: E402

from autograder import sanitise  # noqa: E402
from autograder.config import Course, Limits  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures" / "toy" / "solutions"
A = "00_toy"
# what nbgrader 0.9.6's own feedback page runs, loads or follows (measured on this suite's attack)
STOCK_LIVE = {"png-width-onload", "md-javascript-link", "md-data-html-link", "md-external-img",
              "html-script", "html-img-onerror", "md-raw-onerror", "markdown-output-onerror",
              "html-svg-animate", "iframe-srcdoc", "css-url", "style-import", "link-stylesheet",
              "object-data", "meta-refresh", "form-action", "isolated-iframe", "png-filenames",
              "js-output"}


# ----------------------------------------------------------------------------- the sanitiser alone

@pytest.mark.parametrize("payload", [
    "<script>alert(1)</script>", "<SCRIPT SRC=//x.example/a.js></SCRIPT>", "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)>", "<svg><animate onbegin=alert(1) attributeName=x>",
    "<a href='javascript:alert(1)'>x</a>", "<a href=' JaVaScRiPt:alert(1)'>x</a>",
    "<a href='vbscript:msgbox(1)'>x</a>", "<a href='data:text/html,<script>alert(1)</script>'>x</a>",
    "<iframe srcdoc='<script>alert(1)</script>'></iframe>", "<object data=//x.example/o></object>",
    "<embed src=//x.example/e>", "<link rel=stylesheet href=//x.example/s.css>",
    "<style>@import url(//x.example/s.css)</style>", "<div style='background:url(//x.example/i)'>x</div>",
    "<div style='background-image:url(//x.example/i)'>x</div>", "<meta http-equiv=refresh content='0;url=//x.example'>",
    "<base href=//x.example/>", "<form action=//x.example/f><button>go</button></form>",
    "<img src=//x.example/i.png>", "<img src=http://x.example/i.png>", "<img src=/files/secret.png>",
    "<img src='data:text/html;base64,PHNjcmlwdD4='>", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<math href=javascript:alert(1)><mi>x</mi></math>", "<math><maction actiontype=statusline><mi>x</mi></maction></math>",
    "<noscript><p title='</noscript><img src=x onerror=alert(1)>'></noscript>",
    "<template><img src=x onerror=alert(1)></template>", "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)>", "<video><source onerror=alert(1)></video>",
    "<a href=# style='position:fixed;top:0;left:0;width:100%;height:100%'>x</a>",
])
def test_clean_leaves_nothing_that_runs_or_loads(payload):
    out = sanitise.clean(payload)
    low = out.lower()
    assert "<script" not in low and "<style" not in low and "<iframe" not in low and "<object" not in low
    assert not re.search(r"<[^>]+\son\w+\s*=", low), out
    assert not re.search(r"(href|src|action|data)\s*=\s*\"?\s*(javascript|vbscript|data:text|//|http|/)", low), out
    assert "url(" not in low and "position" not in low and "<form" not in low and "<input" not in low, out
    assert "<base" not in low and "<meta" not in low and "<link" not in low and "<embed" not in low, out


def test_clean_keeps_what_a_notebook_shows():
    table = ('<table border="1" class="dataframe"><thead><tr style="text-align: right;"><th>a</th></tr>'
             '</thead><tbody><tr><td>1</td></tr></tbody></table>')
    assert sanitise.clean(table) == table.replace("text-align: right;", "text-align:right")  # normalised
    png = '<img src="data:image/png;base64,iVBORw0KGgo=" alt="plot" width="200">'
    assert sanitise.clean(png) == png
    link = sanitise.clean('<a href="https://pytorch.org/docs">docs</a> <a href="#top">top</a>')
    assert 'href="https://pytorch.org/docs"' in link and 'href="#top"' in link
    assert sanitise.clean("<b>bold</b> <code>x</code> <span class=\"ansi-red-fg\">r</span>") == \
        "<b>bold</b> <code>x</code> <span class=\"ansi-red-fg\">r</span>"


def test_student_content_may_not_wear_the_grading_widgets_classes_or_ids():
    out = sanitise.clean('<div id="test_scale" class="score tabbable nbgrader_cell panel-heading mine">x</div>')
    assert out == '<div class="mine">x</div>'
    assert 'id="x"' in sanitise.PAGE.clean('<h2 id="x">t</h2>')     # the feedback page keeps its anchors


def test_formulas_become_mathml_and_a_formula_cannot_carry_html():
    out = sanitise.markdown_to_html("The input has $n_{in}$ units and $$\\frac{a}{b}$$")
    assert "<math" in out and "<msub><mi>n</mi>" in out and 'display="block"' in out and "$" not in out
    evil = sanitise.markdown_to_html("$\\text{<img src=x onerror=alert(1)>}\\href{javascript:alert(2)}{y}$")
    assert "<img" not in evil and "onerror" not in evil and "javascript" not in evil and "<math" in evil
    assert "title=\"formula not converted\"" in sanitise.tex_to_mathml("\\frac{")   # shown as its source


def test_every_formula_of_the_course_converts():
    pattern = re.compile(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", re.S)
    failed, count = [], 0
    for path in sorted((Path(__file__).parent.parent / "solutions").glob("*/*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                for m in pattern.finditer(cell.source):
                    count += 1
                    if "not converted" in sanitise.tex_to_mathml(m.group(1) or m.group(2)):
                        failed.append((path.name, m.group(0)))
    assert count > 100 and not failed, failed


def test_inert_notebook_makes_output_fields_plain_data():
    nb = nbformat.v4.new_notebook()
    out = [
        nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "p"},
                               metadata={"image/png": {"width": "1 onload=alert(1)", "height": 30},
                                         "filenames": {"image/png": "http://x.example/i.png"}}),
        nbformat.v4.new_output("display_data", data={"text/html": "<b>x</b>"}, metadata={"text/html": {"isolated": True}}),
        nbformat.v4.new_output("display_data", data={"application/javascript": "alert(1)"}),
        nbformat.v4.new_output("display_data", data={"text/vnd.mermaid": "graph TD; <script>x</script>"}),
        nbformat.v4.new_output("display_data", data={"image/svg+xml": "<svg onload='alert(1)'/>"}),
        nbformat.v4.new_output("display_data", data={"image/png": 'x" onerror="alert(1)'}),
    ]
    nb.cells = [nbformat.v4.new_code_cell("x", outputs=out)]
    nb.cells[0].metadata["nbgrader"] = {"grade_id": '"><script>', "grade": True, "points": 1}
    nb.cells[0].metadata["tags"] = ["ok", 'x" onclick="alert(1)']
    res = {"student": "<b>eve</b>", "last_name": "<img src=x onerror=alert(1)>", "first_name": None}
    nb, res = sanitise.InertNotebook().preprocess(nb, res)
    outs = nb.cells[0].outputs
    assert outs[0].metadata == {"image/png": {"height": 30, "alt": ""}}               # no width, no filenames
    assert outs[1].metadata == {} and outs[1].data == {"text/html": "<b>x</b>"}      # not isolated
    assert outs[2].data == {"text/plain": "(output of type application/javascript not shown on this page)"}
    assert outs[3].data == {"text/plain": "graph TD; <script>x</script>"}             # shown as text
    assert outs[4].data["text/html"].startswith('<img src="data:image/svg+xml;base64,')
    assert "image/png" not in outs[5].data
    assert "nbgrader" not in nb.cells[0].metadata and nb.cells[0].metadata["tags"] == ["ok"]
    assert res["last_name"] == "&lt;img src=x onerror=alert(1)&gt;" and res["student"] == "&lt;b&gt;eve&lt;/b&gt;"


# ----------------------------------------------------------------------------- graded pages

@pytest.fixture(scope="module")
def toy_class(tmp_path_factory):
    """The toy assignment graded for an honest student and an attacker (every vector)."""
    from autograder import engine
    from autograder.collect import collect_folder
    from autograder.release import release

    root = tmp_path_factory.mktemp("pages")
    course = Course(solutions=FIXTURES, notebooks=root / "notebooks", workdir=root / "work",
                    limits=Limits(cell_timeout=10, notebook_timeout=120, memory_mb=3072))
    release([A], course=course)
    rel = nbformat.read(course.notebooks / A / f"{A}.ipynb", as_version=4)
    for student, nb in {"attacker": attacked(rel), "honest": rel}.items():
        folder = root / "class" / student / A
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{A}.ipynb")
    collect_folder(course, root / "class")
    results = engine.autograde(course, jobs=1, progress=False, echo=lambda *_: None)
    assert {r.student: r.status for r in results} == {"attacker": "graded", "honest": "graded"}
    return course


def _stock_config(course: Course, feedback_dir: str) -> Config:
    """nbgrader as it comes: only the course's folders and gradebook."""
    cfg = Config()
    for key, value in course.config().CourseDirectory.items():
        cfg.CourseDirectory[key] = value
    cfg.CourseDirectory.feedback_directory = feedback_dir
    return cfg


def _api_feedback(cfg: Config, student: str, logged: bool = False) -> dict:
    """nbgrader's Generate Feedback (what formgrader's button calls); its log when ``logged``."""
    import contextlib

    from nbgrader.apps import NbGraderAPI

    from autograder.util import env_path, quiet

    env_path()
    with contextlib.nullcontext() if logged else quiet():
        return NbGraderAPI(config=cfg).generate_feedback(A, student, force=True)


def test_stock_nbgrader_feedback_runs_the_attacks(toy_class):
    """The wrong case: nbgrader's own Generate Feedback on the attacker's notebook."""
    out = _api_feedback(_stock_config(toy_class, "feedback_stock"), "attacker")
    assert out["success"], out.get("log")
    page = (toy_class.workdir / "feedback_stock" / "attacker" / A / f"{A}.html").read_text()
    assert live_vectors(page) == STOCK_LIVE
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" in page          # formulas need the network


def test_course_feedback_is_inert(toy_class):
    from autograder.feedback import generate_feedback, html_text

    files = generate_feedback(toy_class, [A])
    assert len(files) == 2
    for f in files:
        page = f.read_text()
        assert live_vectors(page) == set(), f
        assert "<script" not in page.lower() and not re.search(r"<[^>]+\son\w+\s*=", page, re.I)
        csp = re.search(r'<meta[^>]*http-equiv="Content-Security-Policy"[^>]*>', page)
        assert csp and sanitise.FEEDBACK_CSP in html.unescape(csp.group(0))
        assert page.index("Content-Security-Policy") < page.index("<body")
        for src in re.findall(r'<img[^>]*\ssrc="([^"]*)"', page):
            assert src.startswith("data:image/"), src
        for href in re.findall(r'<a[^>]*\shref="([^"]*)"', page):
            assert href.startswith(("#", "https://", "http://", "mailto:")), href
        assert "mathjax" not in page.lower()
        # nothing the policy would block and a browser would log (nbconvert's icon font by a relative URL)
        styles = "".join(re.findall(r"<style[^>]*>(.*?)</style>", page, re.S | re.I))
        assert re.findall(r"url\(\s*(?![\"']?data:)[^)]*\)", styles) == [], f
    attacker = (toy_class.feedback / "attacker" / A / f"{A}.html").read_text()
    assert "PWNED:html-script" in html.unescape(html_text(attacker))        # shown as the student's code
    assert "&lt;IPython.core.display.Javascript object&gt;" in attacker      # its text, never its code


def test_formgrader_generate_feedback_makes_the_clis_page(toy_class):
    """Formgrader's button (nbgrader's API with the course's configuration, as formgrader loads it)
    writes the CLI's page byte for byte: the same sanitiser, template and policy."""
    from autograder.feedback import generate_feedback

    cli = {f.parent.parent.name: f.read_bytes() for f in generate_feedback(toy_class, [A])}
    cfg = toy_class.config()
    cfg.CourseDirectory.feedback_directory = "feedback_formgrader"
    for student, page in cli.items():
        out = _api_feedback(cfg, student)
        assert out["success"], out.get("log")
        made = (toy_class.workdir / "feedback_formgrader" / student / A / f"{A}.html").read_bytes()
        assert made == page, student
        assert live_vectors(made.decode()) == set()


def _formgrade_view(course: Course, config: Config, last_name: str) -> str:
    """Formgrader's grading view of the attacker, rendered the way formgrader's SubmissionHandler
    does: a plain HTMLExporter built from formgrader's configuration (its own extra config, then
    ``config`` loaded over it)."""
    from nbconvert.exporters import HTMLExporter

    cfg = Config()
    cfg.HTMLExporter.template_name = "formgrade"
    cfg.HTMLExporter.extra_template_basedirs = [sanitise._nbgrader_templates()[0]]
    cfg.merge(config)
    resources = {"assignment_id": A, "notebook_id": A, "submission_id": "0123", "index": 0, "total": 2,
                 "base_url": "", "student": "attacker", "last_name": last_name, "first_name": "Eve",
                 "notebook_path": f"course/autograded/attacker/{A}/{A}.ipynb"}
    page, _ = HTMLExporter(config=cfg).from_filename(
        str(course.autograded / "attacker" / A / f"{A}.ipynb"), resources=resources)
    return page


def test_formgrade_view_stock_runs_the_attacks_and_the_courses_does_not(toy_class):
    name = VECTORS["roster-name"][2]
    stock = _formgrade_view(toy_class, Config(), name)
    assert live_vectors(stock) == STOCK_LIVE | {"roster-name"}            # the wrong case
    ours = _formgrade_view(toy_class, toy_class.config(), name)
    assert live_vectors(ours) == set()
    head, body = ours.split("<body", 1)
    csp = head.index("Content-Security-Policy")
    scripts = [m.start() for m in re.finditer(r"<script", head)]
    assert scripts and max(scripts) < csp, "the page's own scripts come before its policy, none after"
    assert "<script" not in body and not re.search(r"<[^>]+\son\w+\s*=", body, re.I)
    assert "formgrade.js" in head and "mathjax" not in ours.lower()
    assert 'class="score tabbable"' in body and "<math" in body      # grading widgets kept; formulas MathML


def test_feedback_page_without_the_courses_head_is_refused():
    with pytest.raises(ValueError, match="script"):
        sanitise.inert_page("<html><head><script>x</script></head><body>b</body></html>")
    with pytest.raises(ValueError, match="Content-Security-Policy"):
        sanitise.inert_page("<html><head></head><body>b</body></html>")
    meta = f'<meta http-equiv="Content-Security-Policy" content="{sanitise.FEEDBACK_CSP}">'
    page = sanitise.inert_page(f"<html><head>{meta}</head><body><p onclick=x>b</p><script>y</script></body></html>")
    assert page.endswith("<body>\n<p>b</p>\n</body>\n</html>\n")


# ----------------------------------------------------------------------------- what formgrader says

def _warnings_of(pp_class, nb, resources):
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    pp = pp_class()
    pp.log.addHandler(handler)
    pp.log.setLevel(logging.WARNING)
    try:
        pp.preprocess(nb, resources)
    finally:
        pp.log.removeHandler(handler)
    return log.getvalue()


def test_checksum_changed_only_for_cells_the_student_changed(toy_class):
    """nbgrader's OverwriteCells reports every untouched hidden-test cell as changed (the wrong
    case); the course's reports only a locked cell the student edited, and restores both."""
    from nbgrader.preprocessors import OverwriteCells

    from autograder.preprocessors import ReleasedOverwriteCells

    rel = nbformat.read(toy_class.notebooks / A / f"{A}.ipynb", as_version=4)
    res = {"nbgrader": {"notebook": A, "assignment": A, "db_url": toy_class.gradebook_url}}
    stock = _warnings_of(OverwriteCells, copy.deepcopy(rel), copy.deepcopy(res))
    assert "'checksum' for cell test_scale_hidden has changed" in stock
    assert "'checksum' for cell test_corr1d_hidden has changed" in stock
    untouched = copy.deepcopy(rel)
    assert _warnings_of(ReleasedOverwriteCells, untouched, copy.deepcopy(res)) == ""
    hidden = next(c for c in untouched.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_scale_hidden")
    assert "tier='hidden'" in hidden.source                  # restored: the hidden test runs

    edited = copy.deepcopy(rel)
    for c in edited.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") in ("test_scale_public", "test_corr1d_hidden"):
            c.source = "pass  # the student's edit"
    report = _warnings_of(ReleasedOverwriteCells, edited, copy.deepcopy(res))
    assert "'checksum' for cell test_scale_public has changed" in report
    assert "'checksum' for cell test_corr1d_hidden has changed" in report
    assert "test_scale_hidden" not in report
    assert all("the student's edit" not in c.source for c in edited.cells)


def test_feedback_logs_no_display_data_priority_warning(toy_class):
    cfg = toy_class.config()
    cfg.CourseDirectory.feedback_directory = "feedback_log"
    out = _api_feedback(cfg, "honest", logged=True)
    assert out["success"], out
    assert "[INFO] Converting notebook" in out["log"]                  # the log was captured
    assert "display_data_priority" not in out["log"] and "Alternative text" not in out["log"], out["log"]
    stock = toy_class.config()
    from nbgrader.preprocessors import ClearHiddenTests, GetGrades

    from autograder.preprocessors import ScrubFeedback

    stock.GenerateFeedback.preprocessors = [ClearHiddenTests, ScrubFeedback, GetGrades]
    stock.CourseDirectory.feedback_directory = "feedback_log_stock"
    out = _api_feedback(stock, "honest", logged=True)
    assert "Config option `display_data_priority` not recognized by `ClearHiddenTests`" in out["log"]


def test_students_without_a_roster_are_shown_by_id(toy_class):
    """Formgrader lists (manage submissions, students) write last_name + ", " + first_name with
    "None" for a missing name; the gradebook of a class without a roster names each student by id."""
    from nbgrader.apps import NbGraderAPI

    from autograder.gradebook_names import NO_ROSTER
    from autograder.roster import import_roster
    from autograder.util import env_path, quiet

    from nbgrader.api import Gradebook
    from sqlalchemy import event
    from sqlalchemy.orm import Mapper

    from autograder import gradebook_names

    env_path()
    # the wrong case: nbgrader alone adds a student without names
    event.remove(Mapper, "before_insert", gradebook_names._fill)
    try:
        with quiet(), Gradebook(toy_class.gradebook_url) as gb:
            gb.update_or_create_student("plain")
            assert (gb.find_student("plain").last_name, gb.find_student("plain").first_name) == (None, None)
            gb.remove_student("plain")
    finally:
        gradebook_names.install()
    with quiet():
        subs = NbGraderAPI(config=toy_class.config()).get_submissions(A)
    shown = {s["student"]: f"{s['last_name']}, {s['first_name']}" for s in subs}
    assert shown == {"attacker": f"attacker, {NO_ROSTER}", "honest": f"honest, {NO_ROSTER}"}
    roster = toy_class.workdir.parent / "roster.csv"
    roster.write_text("id,first_name,last_name,email\nhonest,Ada,Lovelace,ada@example.org\n")
    import_roster(toy_class, roster)
    with quiet():
        subs = NbGraderAPI(config=toy_class.config()).get_submissions(A)
    assert {s["student"]: (s["last_name"], s["first_name"]) for s in subs}["honest"] == ("Lovelace", "Ada")
