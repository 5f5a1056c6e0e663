"""Inert pages: the one sanitiser of every page that shows a student's notebook.

Two pages show what a student wrote: the feedback HTML (``python -m autograder feedback`` and
formgrader's Generate Feedback button, both nbgrader's ``GenerateFeedback``) and formgrader's
grading view (``/formgrader/submissions/<id>/``, rendered by formgrader's own ``HTMLExporter``).
Both are built by nbconvert from nbgrader's templates; this module plugs into nbconvert's
extension points so that the same rules hold in both:

1. :class:`InertNotebook`, an exporter preprocessor (``HTMLExporter.preprocessors``), turns every
   field a template interpolates into plain data before any template sees it: output metadata is
   rebuilt (image ``width``/``height`` as integers, nothing else: no ``filenames``, ``isolated``,
   ``unconfined``), MIME types are kept only when the page can show them safely (JavaScript,
   widgets, PDF and unknown types are dropped with a note; Mermaid and LaTeX are shown as text or
   MathML; SVG, GIF and WebP become ``<img>`` data URIs), image payloads must be base64, grade ids,
   cell ids and tags must be plain names, numbers must be numbers, and the student's name and id
   shown by formgrader are HTML-escaped.
2. The template filters ``markdown2html`` and ``highlight_code`` (``HTMLExporter.filters``) and the
   ``cnnlab_inert`` filter that the course's templates (``autograder/templates/``) wrap around every
   output area and raw cell sanitise the HTML *after* markdown rendering and after the template,
   with :data:`CONTENT` (nh3, an allowlist): no script, no event handler, no form, no frame, object
   or embed, no ``<style>``/``<link>``/``<meta>``/``<base>``, no SVG markup, no ``id``/``name``
   (nothing a page's own script could confuse), links only to ``http(s):``, ``mailto:`` or
   ``#fragment``, images only as ``data:image/(png|jpeg|gif|webp|svg+xml);base64`` (an image is
   decoded by the browser as an image: an SVG inside ``<img>`` runs no script and loads nothing),
   inline styles only from a list of properties that take no URL. LaTeX becomes MathML when the
   page is made (latex2mathml): formulas need no script and no network (Chromium renders MathML).
   nh3 is given each fragment as :func:`balanced` rewrites it, well-formed and at most
   :data:`MAX_DEPTH` deep, because its parser's work grows with the depth of deep or misnested HTML.
3. The feedback page is made by :class:`FeedbackExporter` (``GenerateFeedback.exporter_class``),
   which passes the whole ``<body>`` of the finished page through nh3 once more (:data:`PAGE`: as
   :data:`CONTENT`, plus the ids and anchors of the page's own table of contents) and checks that
   the ``<head>`` it built holds no script; the page declares a Content-Security-Policy
   (:data:`FEEDBACK_CSP`) that allows no script at all and no load from anywhere.
4. Formgrader's grading view keeps nbgrader's own scripts (they save the grades), loaded in
   ``<head>`` before a ``<meta>`` Content-Security-Policy (:data:`FORMGRADE_CSP`) that allows no
   further script: none from the page's body, no inline handler, no ``eval``.

:func:`page_config` is the one place that wires all of this into nbgrader's configuration (used by
the CLI, formgrader and the hub through :func:`autograder.config.course_config`).
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from pathlib import Path

import nh3
from jinja2 import pass_context
from nbconvert.exporters import HTMLExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.preprocessors import Preprocessor
from traitlets import List, Unicode, default
from traitlets.config import Config

TEMPLATES = Path(__file__).resolve().parent / "templates"

# ----------------------------------------------------------------------------- the allowlist

_HTML_TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code", "col", "colgroup",
    "dd", "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3",
    "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "main", "mark", "ol", "p", "pre", "q",
    "rp", "rt", "ruby", "s", "samp", "small", "span", "strike", "strong", "sub", "summary", "sup",
    "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "tt", "u", "ul", "var", "wbr",
}
# MathML Core presentation elements (what latex2mathml writes); no maction, no annotation-xml,
# no mglyph/malignmark (the parser quirks of mutation XSS), no href on any of them
_MATHML_TAGS = {
    "math", "mi", "mn", "mo", "ms", "mtext", "mspace", "mrow", "mfrac", "msqrt", "mroot", "mstyle",
    "merror", "mpadded", "mphantom", "menclose", "msub", "msup", "msubsup", "munder", "mover",
    "munderover", "mmultiscripts", "mprescripts", "none", "mtable", "mtr", "mtd", "semantics",
    "annotation",
}
_MATHML_ATTRS = {
    "display", "displaystyle", "mathvariant", "mathcolor", "mathbackground", "mathsize", "scriptlevel",
    "stretchy", "fence", "separator", "form", "lspace", "rspace", "accent", "accentunder", "largeop",
    "movablelimits", "symmetric", "minsize", "maxsize", "linethickness", "columnalign", "rowalign",
    "columnspacing", "rowspacing", "columnlines", "rowlines", "frame", "framespacing", "notation",
    "width", "height", "depth", "voffset", "columnspan", "rowspan", "encoding",
}
# the contents of these go too (not only the tag): code, styles, frames, forms, SVG markup
_DROP_WITH_CONTENT = {
    "script", "style", "template", "noscript", "noembed", "noframes", "xmp", "plaintext", "iframe",
    "frame", "frameset", "object", "embed", "applet", "textarea", "select", "option", "svg", "title",
    "head", "annotation-xml", "mglyph", "malignmark", "maction",
}
# inline style properties that take no URL and cannot lift content out of its place
_STYLE_PROPERTIES = {
    "color", "background-color", "text-align", "text-decoration", "font-weight", "font-style",
    "font-size", "font-family", "font-variant", "vertical-align", "white-space", "word-break",
    "line-height", "letter-spacing", "border", "border-top", "border-right", "border-bottom",
    "border-left", "border-color", "border-style", "border-width", "border-collapse",
    "border-spacing", "padding", "padding-top", "padding-right", "padding-bottom", "padding-left",
    "margin", "margin-top", "margin-right", "margin-bottom", "margin-left", "width", "height",
    "max-width", "min-width", "max-height", "min-height", "display", "text-indent", "text-transform",
    "opacity", "overflow", "overflow-x", "overflow-y", "table-layout",
}
# class names that belong to formgrader's grading widgets and the page's own frame: student content
# may not wear them (a fake "score" box or panel would mislead the grader or the student)
_RESERVED_CLASS = re.compile(
    r"^(tabbable|score|extra-credit|comment|mark-graded|full-credit|no-credit|score-saved|comment-saved|"
    r"save-icon|name-shown|name-hidden|live-notebook|nbgrader_cell|nbgrader-label|modal.*|navbar.*|"
    r"panel.*|btn.*|glyphicon.*|tooltip.*|help|container|late-penalty|pull-right|pull-left)$")
_IMAGE_DATA = re.compile(r"^data:image/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*$", re.I)
_LINK = re.compile(r"^(https?://[^\s]+|mailto:[^\s]+|#[A-Za-z0-9_.:%=-]*)$", re.I)
_NAME = re.compile(r"^[A-Za-z0-9_.:=-]{1,200}$")
_CSS_BAD = re.compile(r"url\s*\(|image\s*\(|image-set|expression|@|\\|javascript:|behavior|-moz-binding",
                      re.I)
_SIZE = re.compile(r"^\d{1,5}(\.\d+)?(px|%|em|ex|pt)?$")


def _attribute_filter(page: bool):
    def check(tag: str, attr: str, value: str) -> str | None:
        if attr == "href":
            return value if _LINK.match(value.strip()) else None
        if attr == "src":
            return value if tag == "img" and _IMAGE_DATA.match(value.strip()) else None
        if attr == "style":
            return None if _CSS_BAD.search(value) else value
        if attr in ("id", "name"):
            return value if _NAME.match(value) else None
        if attr in ("width", "height") and tag in ("img", "td", "th", "col", "table"):
            return value if _SIZE.match(value.strip()) else None
        if attr == "class" and not page:
            kept = [c for c in value.split() if not _RESERVED_CLASS.match(c)]
            return " ".join(kept) or None
        return value
    return check


def _cleaner(page: bool) -> nh3.Cleaner:
    common = {"class", "title", "lang", "dir", "style", "align"}
    if page:
        common |= {"id"}
    attributes = {
        "*": common,
        "a": {"href"} | ({"name"} if page else set()),
        "img": {"src", "alt", "width", "height"},
        "td": {"colspan", "rowspan", "width", "height"},
        "th": {"colspan", "rowspan", "scope", "width", "height"},
        "col": {"span", "width"},
        "colgroup": {"span"},
        "ol": {"start", "type", "reversed"},
        "li": {"value"},
        "details": {"open"},
        "time": {"datetime"},
        "table": {"width", "border"},
        **{t: set(_MATHML_ATTRS) for t in _MATHML_TAGS},
    }
    return nh3.Cleaner(
        tags=_HTML_TAGS | _MATHML_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=attributes,
        attribute_filter=_attribute_filter(page),
        url_schemes={"http", "https", "mailto", "data"},
        url_relative="pass_through",   # judged by the attribute filter: only #fragments survive
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
        filter_style_properties=_STYLE_PROPERTIES,
    )


CONTENT = _cleaner(page=False)
"""Student content anywhere: markdown, code, outputs (no ids, no reserved classes)."""
PAGE = _cleaner(page=True)
"""The whole body of a feedback page: :data:`CONTENT` plus ids and the table of contents' anchors."""

FEEDBACK_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
                "base-uri 'none'; form-action 'none'")
"""The feedback page's policy: no script of any kind, nothing loaded from anywhere."""
FORMGRADE_CSP = ("script-src 'none'; object-src 'none'; frame-src 'none'; worker-src 'none'; "
                 "base-uri 'none'; form-action 'none'; img-src 'self' data:; font-src 'self' data:; "
                 "style-src 'self' 'unsafe-inline'; connect-src 'self'")
"""Formgrader's grading view, declared after its own scripts: nothing else runs, nothing is framed."""


_FORMGRADE_BINDINGS = """
$(function () {
  $("span.glyphicon.name-hidden").on("click", function () { toggle_name(true); })
    .tooltip({title: "Show student name", placement: "bottom", trigger: "hover"});
  $("span.glyphicon.name-shown").on("click", function () { toggle_name(false); })
    .tooltip({title: "Hide student name", placement: "bottom", trigger: "hover"});
});
"""
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.S | re.I)
_MATHJAX_SCRIPT = re.compile(r"<script\b[^>]*(mathjax|x-mathjax-config)[^>]*>.*?</script\s*>", re.S | re.I)
_INLINE_HANDLER = re.compile(r"\s+on[a-z]+\s*=\s*(\"[^\"]*\"|'[^']*')", re.I)


_FONT_FACE = re.compile(r"@font-face\s*\{[^{}]*\}", re.I)
_EXTERNAL_URL = re.compile(r"url\(\s*(?![\"']?data:)", re.I)


def head(markup, kind: str):
    """The ``cnnlab_head`` template filter, on the ``<head>`` that nbgrader's template wrote.

    ``feedback``: every script removed (MathJax from a CDN: formulas are MathML), the CSP first.
    ``formgrade``: MathJax removed, nbgrader's own scripts kept, then the page's bindings for the
    name toggle (nbgrader writes them inline in the body, which the policy forbids), then the CSP.
    """
    from markupsafe import Markup

    text = re.sub(r"<!--.*?-->", "", str(markup), flags=re.S)
    if kind == "feedback":
        text = _SCRIPT.sub("", text)
        # nbconvert's inlined stylesheet declares Bootstrap's icon font by a relative URL, which the
        # page's policy blocks (and a page saved alone cannot reach): drop the declaration
        text = _FONT_FACE.sub(lambda m: "" if _EXTERNAL_URL.search(m.group(0)) else m.group(0), text)
        meta = f'<meta http-equiv="Content-Security-Policy" content="{html.escape(FEEDBACK_CSP)}">'
        text, n = re.subn(r"(<head\b[^>]*>)", lambda m: m.group(1) + "\n" + meta, text, count=1, flags=re.I)
    elif kind == "formgrade":
        text = _MATHJAX_SCRIPT.sub("", text)
        meta = (f"<script>{_FORMGRADE_BINDINGS}</script>\n"
                f'<meta http-equiv="Content-Security-Policy" content="{html.escape(FORMGRADE_CSP)}">\n')
        text, n = re.subn(r"(</head\s*>)", lambda m: meta + m.group(1), text, count=1, flags=re.I)
    else:
        raise ValueError(f"unknown page kind {kind!r}")
    if n != 1:
        raise ValueError(f"the {kind} template wrote no <head>: cannot declare its Content-Security-Policy")
    return Markup(text)  # noqa: S704 - the template's own head


def own_markup(markup):
    """The ``cnnlab_own_markup`` filter: the page's own inline scripts and handlers removed from
    the body (formgrader writes a tooltip script and two ``onclick`` in its navigation bar; the
    policy would refuse them, :func:`head` binds the same behaviour from ``<head>``)."""
    from markupsafe import Markup

    return Markup(_INLINE_HANDLER.sub("", _SCRIPT.sub("", str(markup))))  # noqa: S704


# ----------------------------------------------------------------------------- nesting

MAX_DEPTH = 128
"""Deepest nesting of elements given to nh3 (browsers stop at 512; the course's pages need under 40)."""
MAX_ATTRIBUTES = 64
"""Attributes kept per element (nh3 keeps a handful of names; its parser checks each new one against all)."""
# html5ever (nh3's parser) spends time proportional to the depth of its stack of open elements on
# many tokens, and checks every attribute of an element against the others: 10,000 nested <rt>,
# <optgroup>, <li><dd>, <div/>, <x_1></x_2> or <div title="</div>"> (40 to 200 kB) took 0.5 to 3.4 s
# and a megabyte takes minutes, in formgrader's server as in the CLI. So nh3 is given the fragment
# re-written by :func:`balanced` (linear): well-formed, at most MAX_DEPTH deep by construction.
_VOID = frozenset("area base basefont bgsound br col embed frame hr image img input keygen link meta param source "
                  "track wbr".split())
_RAW = frozenset("script style xmp iframe noembed noframes noscript textarea title plaintext".split())
_TAG_NAME = re.compile(r"[a-z][a-z0-9-]*")
_ATTR_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:.-]*")
_NAME_TO = re.compile(r"[^\t\n\f\r />]*")
_ATTRIBUTE = re.compile(r"""[\t\n\f\r ]*(?:/(?!>)[\t\n\f\r ]*)*(?P<n>[^\t\n\f\r />][^\t\n\f\r /=>]*)?"""
                        r"""(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"(?P<d>[^"]*)(?P<dq>"?)|'(?P<s>[^']*)(?P<sq>'?)"""
                        r"""|(?P<u>[^\t\n\f\r >]*)))?""")
_COMMENT_END = re.compile(r"--!?>")
# start tags that close the element on top when it is one of these (as HTML parsers do), so that an
# honest list or table without end tags does not nest
_CLOSES = {"p": {"p"}, "li": {"li", "p"}, "dt": {"dt", "dd", "p"}, "dd": {"dt", "dd", "p"},
           "option": {"option"}, "optgroup": {"option"}, "td": {"td", "th"}, "th": {"td", "th"},
           "tr": {"td", "th", "tr"}, "tbody": {"td", "th", "tr", "tbody", "thead"},
           "thead": {"td", "th", "tr", "tbody", "thead"}, "tfoot": {"td", "th", "tr", "tbody", "thead"},
           **{t: {"p"} for t in "address article aside blockquote center details dialog dir div dl fieldset "
                                "figcaption figure footer header hgroup main menu nav ol pre section summary "
                                "table ul h1 h2 h3 h4 h5 h6 hr".split()}}


def _tag(text: str, i: int) -> tuple[str, list[tuple[str, str]], bool, int] | None:
    """The tag that starts at ``text[i]`` (just after ``<`` or ``</``): (name, attributes,
    self-closing, index after ``>``); None when the text ends inside it (HTML drops such a tag)."""
    m = _NAME_TO.match(text, i)
    name, j, attrs, n = m.group(0).lower(), m.end(), [], len(text)
    while True:
        a = _ATTRIBUTE.match(text, j)
        if a.group("n") is None and a.end() == j:
            break
        if (a.group("d") is not None and not a.group("dq")) or (a.group("s") is not None and not a.group("sq")):
            return None                                   # a quote that never closes
        if a.group("n") is not None:
            value = next((v for v in (a.group("d"), a.group("s"), a.group("u")) if v is not None), "")
            attrs.append((a.group("n"), value))
        j = a.end()
    if j >= n:
        return None
    if text.startswith("/>", j):
        return name, attrs, True, j + 2
    return (name, attrs, False, j + 1) if text[j] == ">" else None


def balanced(text: str, max_depth: int = MAX_DEPTH) -> str:
    """``text`` (an HTML fragment) re-written well-formed: every element closed in order, at most
    ``max_depth`` deep (deeper start tags are dropped, their content kept), attributes quoted (the
    first of a name, at most :data:`MAX_ATTRIBUTES`), comments and the elements whose contents are
    raw text (script, style, textarea...: all dropped by the allowlist) removed, a ``<`` that starts
    no tag written ``&lt;``. Linear in the length of ``text``; what it keeps is then nh3's to judge."""
    out: list[str] = []
    stack: list[str] = []
    count: dict[str, int] = {}
    i, n = 0, len(text)

    def close(name: str) -> None:
        while stack:
            top = stack.pop()
            count[top] -= 1
            out.append(f"</{top}>")
            if top == name:
                return

    while i < n:
        lt = text.find("<", i)
        if lt < 0:
            out.append(text[i:])
            break
        out.append(text[i:lt])
        i = lt
        if text.startswith("<!--", i):                    # comment: <!-->, <!--->, then up to --> or --!>
            if text.startswith(">", i + 4):
                i += 5
            elif text.startswith("->", i + 4):
                i += 6
            else:
                m = _COMMENT_END.search(text, i + 4)
                i = m.end() if m else n
            continue
        nxt = text[i + 1:i + 2]
        end = nxt == "/"
        first = text[i + 2:i + 3] if end else nxt
        if nxt in ("!", "?") or (end and first and not first.isascii() or end and first and not first.isalpha()):
            if end and first == ">":
                i += 3                                    # </> is nothing
                continue
            gt = text.find(">", i + 2)                    # doctype, CDATA, bogus comment: up to >
            i = gt + 1 if gt >= 0 else n
            continue
        if not (first.isascii() and first.isalpha()):
            out.append("&lt;")                            # a < that starts no tag
            i += 1
            continue
        tag = _tag(text, i + (2 if end else 1))
        if tag is None:
            break                                         # the text ends inside a tag
        name, attrs, self_closing, i = tag
        if not _TAG_NAME.fullmatch(name):
            continue                                      # no allowed element has such a name
        if end:
            if count.get(name):
                close(name)
            continue
        if name in _RAW:                                  # up to its end tag, all of it removed
            m = re.compile(rf"</{name}(?=[\t\n\f\r />])", re.I).search(text, i) if name != "plaintext" else None
            i = n if m is None else (text.find(">", m.end()) + 1 or n)
            continue
        while stack and stack[-1] in _CLOSES.get(name, ()):
            close(stack[-1])
        seen, kept = set(), []
        for a, v in attrs:
            if a.lower() not in seen and _ATTR_NAME.fullmatch(a) and len(kept) < MAX_ATTRIBUTES:
                seen.add(a.lower())
                kept.append(f' {a}="{v.replace(chr(34), "&quot;")}"')
        if name in _VOID:
            out.append(f"<{name}{''.join(kept)}>")
        elif len(stack) < max_depth:
            out.append(f"<{name}{''.join(kept)}>")
            if self_closing:
                out.append(f"</{name}>")
            else:
                stack.append(name)
                count[name] = count.get(name, 0) + 1
    while stack:
        close(stack[-1])
    return "".join(out).replace("\0", "\ufffd")


def clean(text: str, policy: nh3.Cleaner = CONTENT) -> str:
    """``text`` (an HTML fragment) with only what :data:`CONTENT` (or ``policy``) allows, given to nh3
    as :func:`balanced` writes it (so that its parser's work stays linear)."""
    return policy.clean(balanced(str(text)))


def inert(text) -> str:
    """The ``cnnlab_inert`` template filter: an HTML fragment after the template, sanitised."""
    from markupsafe import Markup

    return Markup(clean(text))  # noqa: S704 - the sanitiser's output is the markup to insert


# ----------------------------------------------------------------------------- formulas

def tex_to_mathml(tex: str, display: bool = False) -> str:
    """MathML for one LaTeX formula; the formula as code when latex2mathml cannot read it."""
    from latex2mathml.converter import convert

    try:
        return convert(tex.strip(), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - any formula it cannot read is shown as its source
        return f'<code class="tex" title="formula not converted">{html.escape(tex)}</code>'


def _markdown_renderer(attachments):
    from nbconvert.filters.markdown_mistune import IPythonRenderer, InvalidNotebook

    class InertRenderer(IPythonRenderer):
        """nbconvert's renderer with formulas as MathML and no anchors or missing-attachment errors."""

        def block_math(self, body):
            return tex_to_mathml(body, display=True)

        def multiline_math(self, text):
            return self._math_text(text)

        def latex_environment(self, name, body):
            return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)

        def inline_math(self, body):
            return tex_to_mathml(body)

        def block_mermaidjs(self, code):
            return f'<pre class="mermaid-source"><code>{html.escape(code.strip())}</code></pre>'

        def _embed_image_or_attachment(self, src):
            try:
                return super()._embed_image_or_attachment(src)
            except InvalidNotebook:
                return ""

        @staticmethod
        def _math_text(text):
            t = text.strip()
            for a, b in (("$$", "$$"), ("\\[", "\\]")):
                if t.startswith(a) and t.endswith(b) and len(t) >= len(a) + len(b):
                    return tex_to_mathml(t[len(a):-len(b)], display=True)
            return tex_to_mathml(t, display=True)

    return InertRenderer(escape=False, attachments=attachments, exclude_anchor_links=True)


def markdown_to_html(source: str, attachments: dict | None = None) -> str:
    """Markdown (with LaTeX) as sanitised HTML with MathML formulas."""
    from nbconvert.filters.markdown_mistune import MarkdownWithMath

    rendered = MarkdownWithMath(renderer=_markdown_renderer(attachments or {})).render(str(source or ""))
    return clean(rendered)


@pass_context
def markdown2html(context, source):
    """The ``markdown2html`` template filter: the cell's attachments, MathML, sanitised."""
    cell = context.get("cell") or {}
    attachments = cell.get("attachments") if hasattr(cell, "get") else None
    return markdown_to_html(source, attachments if isinstance(attachments, dict) else {})


class InertHighlight(Highlight2HTML):
    """The ``highlight_code`` template filter: Pygments' HTML of a code cell, sanitised."""

    def __call__(self, source, language=None, metadata=None):
        return clean(super().__call__(source, language=language, metadata=metadata))


# ----------------------------------------------------------------------------- notebook fields

_B64 = re.compile(r"^[A-Za-z0-9+/=\s]*$")
_IMAGE_MIME = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp",
               "image/svg+xml": "svg+xml"}


def _text(value) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


def _base64(value) -> str | None:
    text = _text(value)
    if not text or not _B64.match(text):
        return None
    try:
        base64.b64decode(re.sub(r"\s+", "", text), validate=True)
    except (binascii.Error, ValueError):
        return None
    return re.sub(r"\s+", "", text)


def _dimension(value) -> int | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if 0 < number < 100000 else None


class InertNotebook(Preprocessor):
    """Every field a template writes into the page made plain data (see the module's doc).

    Runs on the copy of the notebook that is rendered, never on a file.
    """

    shown_mime = List(["text/html", "text/markdown", "text/latex", "image/png", "image/jpeg",
                       "text/plain"]).tag(config=True)
    not_shown = Unicode("(output of type {mime} not shown on this page)").tag(config=True)

    def preprocess(self, nb, resources):
        for key in ("student", "first_name", "last_name"):
            if isinstance(resources.get(key), str):
                resources[key] = html.escape(resources[key])
        for key in list(nb.metadata):
            if key not in ("kernelspec", "language_info", "nbgrader"):
                del nb.metadata[key]
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if not _NAME.match(str(cell.get("id", "x"))):
            cell["id"] = f"cell-{index}"
        meta = cell.setdefault("metadata", {})
        tags = meta.get("tags")
        if tags is not None:
            meta["tags"] = [t for t in tags if isinstance(t, str) and _NAME.match(t)] if isinstance(tags, list) else []
        nbg = meta.get("nbgrader")
        if nbg is not None:
            if not isinstance(nbg, dict) or not _NAME.match(str(nbg.get("grade_id", "x"))):
                del meta["nbgrader"]
            else:
                for key in ("points", "score"):
                    if key in nbg:
                        try:
                            nbg[key] = float(nbg[key])
                        except (TypeError, ValueError):
                            del nbg[key]
        if "attachments" in cell:
            cell["attachments"] = self._attachments(cell.get("attachments"))
        if cell.get("cell_type") == "code":
            if not isinstance(cell.get("execution_count"), int) or isinstance(cell.get("execution_count"), bool):
                cell["execution_count"] = None
            cell["outputs"] = [self._output(o) for o in cell.get("outputs", []) if isinstance(o, dict)]
        return cell, resources

    @staticmethod
    def _attachments(attachments) -> dict:
        out = {}
        if isinstance(attachments, dict):
            for name, bundle in attachments.items():
                if not isinstance(bundle, dict):
                    continue
                kept = {m: b for m, v in bundle.items() if m in _IMAGE_MIME and (b := _base64(v))}
                if kept:
                    out[str(name)] = kept
        return out

    def _output(self, out):
        from nbformat.v4 import new_output

        kind = out.get("output_type")
        if kind == "stream":
            return new_output("stream", name="stderr" if out.get("name") == "stderr" else "stdout",
                              text=_text(out.get("text")))
        if kind == "error":
            tb = out.get("traceback")
            return new_output("error", ename=_text(out.get("ename")), evalue=_text(out.get("evalue")),
                              traceback=[_text(t) for t in tb] if isinstance(tb, list) else [])
        if kind not in ("display_data", "execute_result"):
            return new_output("stream", name="stdout", text=f"(output of kind {_text(kind)[:40]!r} not shown)\n")
        data = out.get("data") if isinstance(out.get("data"), dict) else {}
        meta = out.get("metadata") if isinstance(out.get("metadata"), dict) else {}
        new_data, new_meta, dropped = {}, {}, []
        for mime, value in data.items():
            if mime in ("text/plain", "text/html", "text/markdown"):
                new_data[mime] = _text(value)
            elif mime == "text/latex":
                new_data.setdefault("text/html", markdown_to_html(_text(value)))
            elif mime in ("image/png", "image/jpeg"):
                b64 = _base64(value)
                if b64:
                    new_data[mime] = b64
                    own = meta.get(mime) if isinstance(meta.get(mime), dict) else {}
                    shown = {k: d for k in ("width", "height")
                             if (d := _dimension(own.get(k, meta.get(k)))) is not None}
                    alt = own.get("alt", meta.get("alt"))
                    shown["alt"] = alt if isinstance(alt, str) else ""   # the template escapes it
                    new_meta[mime] = shown
                else:
                    dropped.append(mime)
            elif mime in _IMAGE_MIME:     # SVG, GIF, WebP: an <img> of a data URI, decoded as an image
                raw = _text(value)
                b64 = base64.b64encode(raw.encode()).decode() if mime == "image/svg+xml" else _base64(value)
                if b64:
                    new_data.setdefault("text/html", f'<img src="data:{mime};base64,{b64}" alt="">')
                else:
                    dropped.append(mime)
            elif mime == "text/vnd.mermaid":   # a diagram's source, shown as text
                new_data.setdefault("text/plain", _text(value))
            else:
                dropped.append(mime)
        if not new_data:
            new_data["text/plain"] = "\n".join(self.not_shown.format(mime=m) for m in dropped) or "(empty output)"
        if kind == "execute_result":
            ec = out.get("execution_count")
            return new_output("execute_result", data=new_data, metadata=new_meta,
                              execution_count=ec if isinstance(ec, int) and not isinstance(ec, bool) else None)
        return new_output("display_data", data=new_data, metadata=new_meta)


# ----------------------------------------------------------------------------- the feedback page

_BODY = re.compile(r"<body\b[^>]*>(.*)</body\s*>", re.S | re.I)


def inert_page(page: str) -> str:
    """The finished feedback page with its ``<body>`` sanitised once more (:data:`PAGE`).

    Refuses (ValueError) a page whose ``<head>`` holds a script or lacks the course's CSP: the head
    is the template's own, so either means the template is not the course's.
    """
    m = _BODY.search(page)
    if m is None:
        raise ValueError("feedback page without a <body>: not made by the course's template")
    head = page[:m.start()]
    if re.search(r"<script\b", head, re.I):
        raise ValueError("feedback page whose <head> holds a script: not made by the course's template")
    if FEEDBACK_CSP not in html.unescape(head):
        raise ValueError("feedback page without the course's Content-Security-Policy")
    return f"{head}<body>\n{PAGE.clean(balanced(m.group(1), 2 * MAX_DEPTH))}\n</body>\n</html>\n"


class FeedbackExporter(HTMLExporter):
    """nbgrader's feedback HTML, made inert: the course's template, then the body sanitised."""

    @default("template_file")
    def _template_file_default(self):
        return "cnnlab_feedback.html.j2"

    def from_notebook_node(self, nb, resources=None, **kw):
        page, resources = super().from_notebook_node(nb, resources, **kw)
        return inert_page(page), resources


# ----------------------------------------------------------------------------- wiring

def _nbgrader_templates() -> tuple[str, str]:
    from importlib.util import find_spec

    root = Path(find_spec("nbgrader").origin).resolve().parent / "server_extensions" / "formgrader"
    return (str(root / "templates"),
            str(root / "static" / "node_modules" / "bootstrap" / "dist" / "css"))


def escape_formgrader_pages() -> None:
    """Formgrader's own pages (assignments, submissions, students, gradebook) come from a Jinja
    environment without autoescape that writes ids taken from the URL's path into their HTML and
    scripts (``var student_id = "{{ student_id }}";``): a link to
    ``/formgrader/manage_students/";<code>;"``, in a student's notebook shown in the grading view or
    anywhere else, ran ``<code>`` in the instructor's Jupyter origin when clicked. This turns
    autoescape on for that environment (formgrader builds it after loading this configuration);
    idempotent."""
    from nbgrader.server_extensions.formgrader.formgrader import FormgradeExtension

    original = FormgradeExtension.init_tornado_settings
    if getattr(original, "cnnlab_escaping", False):
        return

    def init_tornado_settings(self, webapp):
        original(self, webapp)
        webapp.settings["nbgrader_jinja2_env"].autoescape = True

    init_tornado_settings.cnnlab_escaping = True
    FormgradeExtension.init_tornado_settings = init_tornado_settings


def page_config() -> Config:
    """The configuration that makes the feedback HTML and formgrader's grading view inert.

    - ``GenerateFeedback.exporter_class``: :class:`FeedbackExporter` with the course's feedback
      template (``autograder/templates/cnnlab_feedback.html.j2``, which extends nbgrader's);
    - ``HTMLExporter`` (formgrader's grading view uses a plain ``HTMLExporter`` built from this
      configuration): the course's formgrade template, :class:`InertNotebook` and the sanitising
      filters. The feedback exporter inherits the filters and the preprocessor.
    """
    from .gradebook_names import install

    install()   # formgrader's lists: student ids where there is no roster (not "None, None")
    escape_formgrader_pages()
    templates, bootstrap = _nbgrader_templates()
    c = Config()
    here = __name__
    c.HTMLExporter.preprocessors = [f"{here}.InertNotebook"]
    c.HTMLExporter.filters = {"markdown2html": f"{here}.markdown2html",
                              "highlight_code": f"{here}.InertHighlight",
                              "cnnlab_inert": f"{here}.inert", "cnnlab_head": f"{here}.head",
                              "cnnlab_own_markup": f"{here}.own_markup"}
    c.HTMLExporter.template_name = "formgrade"
    c.HTMLExporter.template_file = "cnnlab_formgrade.html.j2"
    c.HTMLExporter.extra_template_basedirs = [templates]
    c.HTMLExporter.extra_template_paths = [str(TEMPLATES)]
    c.HTMLExporter.exclude_anchor_links = True
    c.GenerateFeedback.exporter_class = f"{here}.FeedbackExporter"
    c.FeedbackExporter.template_name = "feedback"
    c.FeedbackExporter.template_file = "cnnlab_feedback.html.j2"
    c.FeedbackExporter.extra_template_basedirs = [templates]
    c.FeedbackExporter.extra_template_paths = [str(TEMPLATES), bootstrap]
    return c
