"""HTML feedback per student and notebook, without hidden tests or reference code.

nbgrader's generate_feedback with ``ClearHiddenTests`` (hidden-test code removed from the test
cells) and :class:`~autograder.preprocessors.ScrubFeedback` (hidden-test lines and frames from the
course's packages removed from tracebacks).  Every HTML file written is then scanned: if a line of
a hidden test still appears, the file is deleted and the failure reported.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import nbformat

from . import config
from .config import Course
from .release import secret_lines
from .util import env_path, quiet


def html_text(page: str) -> str:
    """The visible text of an HTML page (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def hidden_lines(course: Course, assignment: str) -> list[str]:
    """The stripped lines of the assignment's hidden tests that appear nowhere else."""
    lines: set[str] = set()
    for src in course.source_notebooks(assignment):
        lines |= secret_lines(nbformat.read(src, as_version=4))["hidden"]
    return sorted(lines)


def generate_feedback(course: Course, assignments: list[str] | None = None,
                      students: list[str] | None = None) -> list[Path]:
    """Write ``<workdir>/feedback/<student>/<assignment>/<notebook>.html``; return the files."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.converters.generate_feedback import GenerateFeedback
    from nbgrader.preprocessors import ClearHiddenTests

    from .engine import find_submissions
    from .preprocessors import ScrubFeedback

    env_path()
    subs = [(s, a) for s, a, _ in find_submissions(course, students, assignments)
            if (course.autograded / s / a).is_dir()]
    written: list[Path] = []
    problems: list[str] = []
    for a in sorted({a for _, a in subs}):
        cfg = course.config()
        pps = list(GenerateFeedback.class_traits()["preprocessors"].make_dynamic_default())
        cfg.GenerateFeedback.preprocessors = [ClearHiddenTests, ScrubFeedback, *pps]
        secret = hidden_lines(course, a)
        cfg.ScrubFeedback.hidden_lines = secret
        with quiet():
            api = NbGraderAPI(config=cfg)
            for s in sorted(s for s, aa in subs if aa == a):
                out = api.generate_feedback(a, s, force=True)
                if not out.get("success"):
                    problems.append(f"{s}/{a}: {(out.get('error') or out.get('log') or '')[-300:]}")
        for s in sorted(s for s, aa in subs if aa == a):
            for f in sorted((course.feedback / s / a).glob("*.html")):
                text = html_text(f.read_text(encoding="utf-8"))
                bad = [ln for ln in secret if ln in text]
                if bad:
                    f.unlink()
                    problems.append(f"{f}: hidden test text {bad[0]!r}; file removed")
                else:
                    written.append(f)
    if problems:
        raise RuntimeError("feedback problems:\n  " + "\n  ".join(problems))
    return written


__all__ = ["generate_feedback", "hidden_lines", "config"]
