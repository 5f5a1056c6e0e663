"""Attacks on the pages that show a student's notebook (feedback HTML, formgrader's grading view).

A submission carries each vector below in an extra markdown or code cell; grading runs the code
cells, so the outputs (with their metadata) are what a real kernel publishes. Every payload marks
itself with its name: a script prints ``PWNED:<name>`` on the console (seen in any frame, whatever
the page's policy allows it to reach) and a load asks for ``MARK/<name>``, a port of this suite's
range where nothing listens (the browser still reports the request).

:func:`live_vectors` reads a page as HTML and lists the vectors whose payload sits where a browser
would run or load it; the browser tests watch the console and the requests of a real Chromium.
"""

from __future__ import annotations

import base64
import json
import re

import nbformat
from bs4 import BeautifulSoup

MARK = "http://127.0.0.1:18199/pwned"
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def js(name: str) -> str:
    """A script that marks ``name`` on the console."""
    return f"console.log('PWNED:{name}')"


def _display(data: dict, metadata: dict | None = None) -> str:
    return ("from IPython.display import display\n"
            f"display({data!r}, raw=True, metadata={(metadata or {})!r})")


# name -> (cell type, source); "script" vectors print PWNED:<name>, "load" vectors fetch MARK/<name>,
# "link" vectors run or open a page when clicked
VECTORS: dict[str, tuple[str, str, str]] = {
    # measured by the attacker of issue 16
    "png-width-onload": ("script", "code", _display(
        {"image/png": PNG, "text/plain": "img"},
        {"image/png": {"width": f"1 onload={js('png-width-onload')}"}})),
    "md-javascript-link": ("link", "markdown", f"[click](javascript:{js('md-javascript-link')})"),
    "md-data-html-link": ("link", "markdown",
                          f"[open](data:text/html,<script>{js('md-data-html-link')}</script>)"),
    "md-external-img": ("load", "markdown", f"![x]({MARK}/md-external-img)"),
    "mermaid-script": ("script", "code", _display(
        {"text/vnd.mermaid": f"graph TD; A-->B\n<script>{js('mermaid-script')}</script>"
                             f"<img src=x onerror=\"{js('mermaid-script')}\">"})),
    # the usual suspects
    "html-script": ("script", "code", _display({"text/html": f"<script>{js('html-script')}</script>"})),
    "html-img-onerror": ("script", "code", _display(
        {"text/html": f"<img src=x onerror=\"{js('html-img-onerror')}\">"})),
    "md-raw-onerror": ("script", "markdown", f"<img src=x onerror=\"{js('md-raw-onerror')}\">"),
    "markdown-output-onerror": ("script", "code", _display(
        {"text/markdown": f"<img src=x onerror=\"{js('markdown-output-onerror')}\">"})),
    "svg-onload": ("script", "code", _display(
        {"image/svg+xml": f"<svg xmlns='http://www.w3.org/2000/svg' onload=\"{js('svg-onload')}\">"
                          f"<script>{js('svg-onload')}</script></svg>"})),
    "html-svg-animate": ("script", "code", _display(
        {"text/html": f"<svg><animate onbegin=\"{js('html-svg-animate')}\" attributeName=x dur=1s>"})),
    "iframe-srcdoc": ("script", "code", _display(
        {"text/html": f"<iframe srcdoc=\"<script>{js('iframe-srcdoc')}</script>\"></iframe>"})),
    "css-url": ("load", "code", _display(
        {"text/html": f"<div style=\"background:url({MARK}/css-url);width:9px;height:9px\">x</div>"})),
    "style-import": ("load", "code", _display(
        {"text/html": f"<style>@import url({MARK}/style-import);</style>"})),
    "link-stylesheet": ("load", "code", _display(
        {"text/html": f"<link rel=stylesheet href=\"{MARK}/link-stylesheet\">"})),
    "object-data": ("load", "code", _display({"text/html": f"<object data=\"{MARK}/object-data\"></object>"})),
    "meta-refresh": ("load", "code", _display(
        {"text/html": f"<meta http-equiv=refresh content=\"0;url={MARK}/meta-refresh\">"})),
    "form-action": ("link", "code", _display(
        {"text/html": f"<form action=\"{MARK}/form-action\"><button>Submit</button></form>"})),
    "latex-href": ("link", "markdown", f"$\\href{{javascript:{js('latex-href')}}}{{x}}$"),
    # our own: metadata and MIME types nbgrader's template trusts
    "isolated-iframe": ("script", "code", _display(
        {"text/html": f"<b>iso</b><script>{js('isolated-iframe')}</script>"}, {"text/html": {"isolated": True}})),
    "png-filenames": ("load", "code", _display(
        {"image/png": PNG}, {"filenames": {"image/png": f"{MARK}/png-filenames"}})),
    "js-output": ("script", "code", "from IPython.display import Javascript, display\n"
                                    f"display(Javascript(\"{js('js-output')}\"))"),
    "latex-output-text": ("script", "code", _display(
        {"text/latex": f"$x$ \\text{{<img src=x onerror=\"{js('latex-output-text')}\">}}"})),
    # last of the cells: Python's HTML parser (nbconvert re-parses every page with it) takes the rest
    # of the page for the contents of this <style>
    "mathml-mxss": ("script", "markdown",
                    f"<math><mtext><table><mglyph><style><img src=x onerror=\"{js('mathml-mxss')}\">"),
    # not cells: a cell tag that tries to leave its class attribute, and a roster name (formgrader
    # writes the student's name into its navigation bar)
    "tag-escape": ("script", "tag", f'x" onmouseover="{js("tag-escape")}" y="'),
    "roster-name": ("script", "roster", f"<img src=x onerror=\"{js('roster-name')}\">"),
}


def attack_cells() -> list:
    """The cells a submission adds to its notebook, one per vector."""
    cells = []
    for name, (_, kind, source) in VECTORS.items():
        if kind in ("markdown", "code"):
            cells.append(nbformat.v4.new_markdown_cell(source) if kind == "markdown"
                         else nbformat.v4.new_code_cell(source))
            cells[-1].metadata["tags"] = [f"vector-{name}"]
    cells[0].metadata["tags"].append(VECTORS["tag-escape"][2])
    return cells


def attacked(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with every attack cell appended."""
    nb = nbformat.from_dict(json.loads(json.dumps(notebook)))
    nb.cells.extend(attack_cells())
    return nb


# ----------------------------------------------------------------------------- reading a page

_URL_ATTRS = {"src", "href", "action", "formaction", "data", "srcdoc", "xlink:href", "poster",
              "background", "content", "codebase", "srcset"}
_LOADING_TAGS = {"iframe", "frame", "object", "embed", "link", "meta", "base", "form", "applet", "script"}
_DANGEROUS_SCHEME = re.compile(r"^\s*(javascript|vbscript|data):", re.I)
_SAFE_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,", re.I)


def live_vectors(page: str, region: str | None = None) -> set[str]:
    """The vectors of :data:`VECTORS` whose payload a browser would run, load or follow in ``page``
    (in the element with id ``region`` only, when given)."""
    soup = BeautifulSoup(page, "html.parser")
    root = soup.find(id=region) if region else soup
    assert root is not None, f"no element #{region} in the page"
    found: set[str] = set()

    def names_in(text: str) -> set[str]:
        for m in re.finditer(r"data:[^,;]*;base64,([A-Za-z0-9+/=]+)", text):   # what a data: URL holds
            text += base64.b64decode(m.group(1) + "==").decode("utf-8", "replace")
        return {n for n in VECTORS if f"PWNED:{n}" in text or f"/pwned/{n}" in text}

    for el in root.find_all(True):
        tag = el.name.lower()
        if tag in ("script", "style"):
            found |= names_in(el.get_text() + " ".join(str(v) for v in el.attrs.values()))
        for attr, value in el.attrs.items():
            value = " ".join(value) if isinstance(value, list) else str(value)
            hits = names_in(value)
            if not hits:
                continue
            a = attr.lower()
            if a.startswith("on") or tag in _LOADING_TAGS:
                found |= hits
            elif a == "style" and "url(" in value.lower():
                found |= hits
            elif a in _URL_ATTRS:
                if tag == "a" and not _DANGEROUS_SCHEME.match(value):
                    continue          # a plain link to a web page is a link, not a load
                if tag == "img" and _SAFE_IMAGE.match(value):
                    continue          # an image decoded as an image runs nothing
                found |= hits
    return found


def data_image_payloads(page: str) -> list[str]:
    """The decoded SVG images of ``page`` (an SVG inside <img> is inert: checked separately)."""
    out = []
    for m in re.finditer(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", page):
        out.append(base64.b64decode(m.group(1)).decode("utf-8", "replace"))
    return out
