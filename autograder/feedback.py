"""HTML feedback per student and notebook: inert, without hidden tests or reference code.

nbgrader's generate_feedback with the course's feedback chain (:func:`autograder.config.preprocessor_config`:
``ClearHiddenTests`` removes hidden-test code from the test cells,
:class:`~autograder.preprocessors.ScrubFeedback` removes hidden-test lines and frames from the
course's packages from tracebacks) plus :class:`SanitizeFeedback`: every line of a hidden test is
replaced by a marker wherever it appears (the student's own output included). The page itself is
made inert by :mod:`autograder.sanitise` (the course's exporter and template, wired in the course's
configuration, so formgrader's Generate Feedback makes the same page): nh3 on the final HTML, no
script, a Content-Security-Policy, formulas as MathML. Every HTML file written is then scanned: a
hidden line that still shows is scrubbed from the page; only a page that cannot be cleaned is
deleted and reported (the rest of the class is unaffected).
"""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

import nbformat
from traitlets import List, Unicode

from . import store
from .config import Course
from .preprocessors import FeedbackPreprocessor, assignment_hidden_lines
from .release import secret_lines
from .util import env_path, is_disk_full, quiet


def html_text(page: str) -> str:
    """The visible text of an HTML page (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def hidden_lines(course: Course, assignment: str) -> list[str]:
    """The stripped lines of the assignment's hidden tests that appear nowhere else."""
    lines: set[str] = set()
    for src in course.source_notebooks(assignment):
        lines |= secret_lines(nbformat.read(src, as_version=4))["hidden"]
    return sorted(lines)


class SanitizeFeedback(FeedbackPreprocessor):   # (a step of the course's feedback chain: quiet about display_data_priority)
    """Scrub hidden-test lines from everything shown (cell sources, text of every output)."""

    hidden_lines = List(Unicode()).tag(config=True)
    hidden_marker = Unicode("(hidden test code not shown)").tag(config=True)

    def preprocess(self, nb, resources):
        # no hidden_lines configured (every caller since the chains are built in one place): the
        # assignment's, read from its sources, as ScrubFeedback does
        self._lines = [h for h in self.hidden_lines if h.strip()] or assignment_hidden_lines(self, resources)
        return super().preprocess(nb, resources)

    def _scrub(self, text):
        if not isinstance(text, str):
            return text
        for h in getattr(self, "_lines", self.hidden_lines):
            if h and h in text:
                text = text.replace(h, self.hidden_marker)
        return text

    def preprocess_cell(self, cell, resources, index):
        cell.source = self._scrub(cell.source)
        if "outputs" in cell:   # a failing check's report (cnnlab.grading.diagnosis) shown as its diagnosis
            cell.outputs = [o for o in cell.outputs if not _check_report_as_html(o.get("data"))]
        for out in cell.get("outputs", []):
            if "text" in out:
                out["text"] = self._scrub(out["text"])
            if out.get("output_type") == "error":
                out["evalue"] = self._scrub(out.get("evalue", ""))
                out["traceback"] = [self._scrub(t) for t in out.get("traceback", [])]
            data = out.get("data")
            if isinstance(data, dict):
                for mime in list(data):
                    value = data[mime]
                    if isinstance(value, list) and all(isinstance(v, str) for v in value):
                        value = "".join(value)
                    if isinstance(value, str) and (mime.startswith("text/") or mime == "image/svg+xml"):
                        data[mime] = self._scrub(value)
        return cell, resources


def _check_report_as_html(data) -> bool:
    """Show a failing check's report (the data its cell carries, ``cnnlab.grading.diagnosis``) as
    its diagnosis, first and set apart; return True when the output should go (a report without a
    diagnosis: the error below it has the whole message)."""
    from cnnlab.grading.diagnosis import MIME, Report

    if not isinstance(data, dict) or MIME not in data:
        return False
    report = Report.from_json(data.pop(MIME))
    if report is None or report.diagnosis is None:
        return not data
    d = report.diagnosis
    data["text/plain"] = d.text()
    data["text/html"] = (f'<div class="cnnlab-check cnnlab-fail cnnlab-diagnosis"><b>Likely bug:</b> '
                         f'{html.escape(d.says)}' + (f"<br><b>Try:</b> {html.escape(d.fix)}" if d.fix else "")
                         + "</div>")
    return False


def _clean_page(page: str, secret: list[str], marker: str) -> str:
    for s in secret:
        for form in {s, html.escape(s), html.escape(s, quote=False), s.replace("'", "&#39;"),
                     s.replace('"', "&#34;")}:
            page = page.replace(form, marker)
    return page


def generate_feedback(course: Course, assignments: list[str] | None = None,
                      students: list[str] | None = None) -> list[Path]:
    """Write ``<workdir>/feedback/<student>/<assignment>/<notebook>.html``; return the files."""
    from nbgrader.apps import NbGraderAPI

    from .collect import find_submissions
    from .engine import cause_line
    from .names import printable

    env_path()
    subs = [(s, a) for s, a, _ in find_submissions(course, students, assignments)
            if (course.autograded / s / a).is_dir()]
    written: list[Path] = []
    problems: list[str] = []
    LEFT_OUT.clear()
    cfg = course.config()   # the course's one feedback chain (autograder.config.pipeline_config)
    for a in sorted({a for _, a in subs}):
        secret = hidden_lines(course, a)
        with quiet(errors=True):
            api = NbGraderAPI(config=cfg)
            for s in sorted(s for s, aa in subs if aa == a):
                out = api.generate_feedback(a, s, force=True)
                if not out.get("success"):
                    said = "\n".join(filter(None, (out.get("log"), out.get("error"))))
                    if is_disk_full(said):
                        _confirm_disk_full(course.feedback)   # raises OSError ENOSPC when it is so
                    problems.append(printable(f"{s}/{a}: {cause_line(said)}"[:300]))   # (text a submission may carry)
        pages = {f"{nb.stem}.html" for nb in course.source_notebooks(a)}
        for s in sorted(s for s, aa in subs if aa == a):
            folder = course.feedback / s / a
            for extra in sorted(folder.rglob("*")) if folder.is_dir() else []:
                if extra.is_symlink() or (extra.is_file() and extra.suffix != ".html"):
                    extra.unlink()   # nothing but the feedback pages goes back to a student
                elif extra.is_file() and (extra.parent != folder or extra.name not in pages):
                    # an .html file the submission carried (nbgrader copies a submission's other files
                    # along): not a page this tool made, it would run what the student wrote
                    extra.unlink()
                    LEFT_OUT.append(f"{extra}: a file of the submission, not a feedback page; removed")
            for name in RELEASE_READS if folder.is_dir() else ():
                src = course.submitted / s / a / name
                if src.is_file() and not src.is_symlink():   # written by collect (a secret checked there)
                    _write_whole(folder / name, src.read_bytes())
            for f in sorted(folder.glob("*.html")):
                page = f.read_text(encoding="utf-8")
                if any(ln in html_text(page) for ln in secret):
                    page = _clean_page(page, secret, "(hidden test code not shown)")
                    _write_whole(f, page.encode("utf-8"))
                bad = [ln for ln in secret if ln in html_text(page)]
                if bad:
                    f.unlink()
                    LEFT_OUT.append(f"{f}: hidden test text could not be scrubbed; file removed")
                else:
                    written.append(f)
    if problems:
        raise RuntimeError("feedback problems:\n  " + "\n  ".join(problems))
    return written


def _write_whole(path: Path, data: bytes) -> None:
    """Write ``path`` whole or not at all: a write that fails (a full disk) removes the file, which
    this run made (nbgrader wrote the page, or it is a copy of the submission's), so no student is
    given half a page; the error is raised."""
    try:
        path.write_bytes(data)
    except OSError:
        path.unlink(missing_ok=True)
        raise


def _confirm_disk_full(folder: Path) -> None:
    """nbgrader's log says the disk is full: raise the OSError (ENOSPC) of a write of our own in
    ``folder`` when it is so. The log alone is not trusted (an error it quotes may carry a
    submission's text); a write that succeeds leaves that student's failure as a failure of one
    submission."""
    probe = folder / f".cnnlab-space-probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        with os.fdopen(fd, "wb", buffering=0) as fh:
            fh.write(b"\0" * 65536)
            os.fsync(fh.fileno())
    finally:
        probe.unlink(missing_ok=True)


LEFT_OUT: list[str] = []   # pages removed by the last run (reported by the CLI)
RELEASE_READS = store.RELEASE_READS
