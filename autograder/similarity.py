"""How alike the class's answers are: ``python -m autograder similarity ASSIGNMENT``.

For the instructor, after collect (or autograde): every pair of submissions' answer cells is
compared, exercise by exercise and for all answer cells of the notebook together, with
`copydetect <https://pypi.org/project/copydetect/>`_ (MIT; winnowing fingerprints as in MOSS,
tokens from Pygments), and ranked. Similarity is a reason to look, never a verdict.

What is compared, for each answer cell (``grade_id`` of nbgrader's solution cells):

- the student's code only: the lines of the released template of the cell (its ``def`` line,
  docstring and stub) are left out, and the template is copydetect's *boilerplate* too (fingerprints
  that occur in it are dropped);
- normalised as copydetect does: every name becomes ``V``, every string ``S``, comments and
  whitespace disappear, so renamed variables and changed comments do not hide a copy; fingerprints
  are all k-grams (k = :data:`K` normalised characters, winnowing window 1: every one kept, so the
  result does not depend on Python's per-process string hashing);
- answers that the exercise all but forces, or that the class shares (the reference solution
  posted on a forum, the lecture's own code): a fingerprint that occurs in at least
  :func:`common_threshold` submissions (max(4, 10% of them)) is common and dropped, as MOSS does
  with passages found in many programs; groups of answers that are identical after normalisation
  are listed, not ranked;
- an answer with fewer than :data:`MIN_TOKENS` normalised characters left is too short to compare:
  listed, not ranked (a one-line quiz answer, a stub).

The score of a pair is the mean of copydetect's two similarities (shared tokens over each answer's
tokens). What it can detect: copies with renamed names, changed comments and whitespace, reordered
independent statements (k-grams inside each statement survive), small insertions. What it cannot:
a copy rewritten with different control flow or library calls, copying from outside the class (no
external sources are compared), copying among more students than the common threshold (their
shared code counts as common), or anything in cells that are not answer cells.

Output (atomically replaced): ``<workdir>/reports/similarity-<assignment>.html`` (inert: every
student string is escaped, and a Content-Security-Policy forbids scripts) and ``.csv`` (every pair
that shares any fingerprint; cells that a spreadsheet would read as a formula are neutralised).
"""

from __future__ import annotations

import html
import io
import itertools
import math
import os
import textwrap
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import names
from .config import Course

K = 20                 # k-gram length, in normalised characters
MIN_TOKENS = 40        # fewer normalised characters left than this: too short to compare
SIDE_BY_SIDE = 8       # pairs shown side by side per exercise (the table and the CSV list them all)
TABLE_ROWS = 30        # rows of each exercise's ranking table
WHOLE = "all answer cells"
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
DISCLAIMER = ("Similarity is a reason to look, never a verdict. Two answers can match because the exercise "
              "leaves little freedom, because students learned from the same code, or by chance; and a copy "
              "can be rewritten until nothing matches. Read the code side by side, and talk with the "
              "students, before you conclude anything.")


def common_threshold(n: int) -> int:
    """Fingerprints found in at least this many of ``n`` submissions are common (dropped)."""
    return max(4, math.ceil(0.1 * n))


@dataclass
class Pair:
    """Two students' answers to one exercise (``a`` < ``b``), as copydetect compared them."""

    exercise: str
    a: str
    b: str
    score: float
    sim_a: float
    sim_b: float
    shared: int
    tokens_a: int
    tokens_b: int
    slices_a: object = None
    slices_b: object = None


@dataclass
class ExerciseResult:
    """One exercise (or all answer cells together): the ranked pairs and what was not ranked."""

    name: str
    notebook: str
    answers: dict[str, str]                      # student -> code
    pairs: list[Pair] = field(default_factory=list)
    short: list[str] = field(default_factory=list)
    identical: list[list[str]] = field(default_factory=list)
    common: int = 0                               # fingerprints dropped as common
    threshold: int = 0


@dataclass
class Report:
    """The whole report of one assignment."""

    assignment: str
    students: list[str]
    exercises: list[ExerciseResult]
    skipped: list[str]
    seconds: float = 0.0
    html_path: Path | None = None
    csv_path: Path | None = None


# ----------------------------------------------------------------------------- reading the class

def answer_cells(nb) -> list[tuple[str, str]]:
    """``(grade_id, source)`` of a notebook's answer (solution) code cells, in order; cells that share a
    grade_id (a student's duplicate) are joined."""
    out: dict[str, list[str]] = {}
    for c in nb.cells:
        meta = c.get("metadata", {}).get("nbgrader", {})
        if c.get("cell_type") == "code" and meta.get("solution") and meta.get("grade_id"):
            out.setdefault(meta["grade_id"], []).append(c.get("source", ""))
    return [(gid, "\n\n".join(srcs)) for gid, srcs in out.items()]


def own_lines(code: str, template: str) -> str:
    """The student's code without the lines the released template already had (its ``def`` line,
    docstring and stub), dedented: what is compared and shown."""
    given = {ln.strip() for ln in template.split("\n") if ln.strip()}
    kept = [ln for ln in code.split("\n") if ln.strip() not in given]
    while kept and not kept[0].strip():
        kept.pop(0)
    return textwrap.dedent("\n".join(kept)).rstrip()


def read_class(course: Course, assignment: str) -> tuple[list[tuple[str, str, str]], dict, list[str], list[str]]:
    """The released answer cells ``[(notebook, grade_id, template)]``, the answers
    ``{(notebook, grade_id): {student: code}}``, the students, and what could not be read."""
    known = course.assignments()
    if assignment not in known:
        raise ValueError(f"unknown assignment {assignment!r}: the course has {', '.join(known) or 'none'} "
                         f"(in {course.solutions}); check the name or --solutions")
    release = course.notebooks / assignment
    nbs = sorted(release.glob("*.ipynb")) if release.is_dir() else []
    if not nbs:
        raise ValueError(f"no released notebook in {release}: run `python -m autograder release {assignment}` first")
    cells = []
    for p in nbs:
        cells += [(p.stem, gid, src) for gid, src in answer_cells(nbformat.read(p, as_version=4))]
    folder = course.submitted
    students = sorted(d.name for d in folder.iterdir() if (d / assignment).is_dir()) if folder.is_dir() else []
    if not students:
        raise ValueError(f"no submissions of {assignment} under {folder}: collect them first "
                         "(python -m autograder collect ...)")
    answers: dict = defaultdict(dict)
    skipped = []
    templates = {(nb, gid): src for nb, gid, src in cells}
    for s in students:
        for p in nbs:
            sub = folder / s / assignment / p.name
            if not sub.is_file():
                skipped.append(f"{s}: {p.name} missing")
                continue
            try:
                nb = nbformat.read(sub, as_version=4)
            except Exception as exc:  # noqa: BLE001 - an unreadable notebook is reported, never fatal
                skipped.append(f"{s}: {p.name} unreadable ({type(exc).__name__})")
                continue
            for gid, src in answer_cells(nb):
                key = (p.stem, gid)
                if key in templates:
                    own = own_lines(src, templates[key])
                    if own.strip():
                        answers[key][s] = own
    return cells, answers, students, skipped


# ----------------------------------------------------------------------------- comparing

def _fingerprint(code: str, boilerplate):
    from copydetect import CodeFingerprint

    return CodeFingerprint("answer.py", K, 1, boilerplate=boilerplate, fp=io.StringIO(code), language="python")


def compare(name: str, notebook: str, template: str, answers: dict[str, str],
            threshold: int | None = None) -> ExerciseResult:
    """Rank every pair of ``answers`` (student -> code) to one exercise (see the module docstring)."""
    import numpy as np
    from copydetect import compare_files

    res = ExerciseResult(name, notebook, dict(answers))
    if not answers:
        return res
    res.threshold = threshold or common_threshold(len(answers))
    base = _fingerprint(template, None).hashes if template.strip() else set()
    first = {s: _fingerprint(code, np.array(sorted(base), dtype=np.int64)) for s, code in answers.items()}
    df = Counter(h for fp in first.values() for h in fp.hashes)
    common = {h for h, c in df.items() if c >= res.threshold}
    res.common = len(common)
    boiler = np.array(sorted(base | common), dtype=np.int64)
    fps = {s: _fingerprint(code, boiler) for s, code in answers.items()}
    groups: dict[str, list[str]] = defaultdict(list)
    for s, fp in first.items():
        groups[fp.filtered_code].append(s)
    res.identical = sorted((sorted(g) for g in groups.values() if len(g) > 1), key=lambda g: (-len(g), g))
    ranked = {s for s, fp in fps.items() if fp.token_coverage >= MIN_TOKENS}
    res.short = sorted(set(answers) - ranked)
    index: dict[int, list[str]] = defaultdict(list)
    for s in sorted(ranked):
        for h in fps[s].hashes:
            index[h].append(s)
    candidates = {(a, b) for owners in index.values() for a, b in itertools.combinations(owners, 2)}
    for a, b in sorted(candidates):
        shared, (sa, sb), (la, lb) = compare_files(fps[a], fps[b])
        if shared <= 0:
            continue
        res.pairs.append(Pair(name, a, b, round((float(sa) + float(sb)) / 2, 4), round(float(sa), 4),
                              round(float(sb), 4), int(shared), int(fps[a].token_coverage),
                              int(fps[b].token_coverage), la, lb))
    res.pairs.sort(key=lambda p: (-p.score, -p.shared, p.a, p.b))
    return res


def similarity(course: Course, assignment: str, threshold: int | None = None) -> Report:
    """Compare the class's answers to ``assignment`` and write the HTML and CSV reports."""
    t0 = time.monotonic()
    cells, answers, students, skipped = read_class(course, assignment)
    results = []
    for nb, gid, template in cells:
        results.append(compare(gid, nb, template, answers.get((nb, gid), {}), threshold))
    # all answer cells of a student together (what a student who copies a whole notebook shares)
    whole = {}
    for s in students:
        parts = [f"# {gid}\n{answers[(nb, gid)][s]}" for nb, gid, _ in cells if s in answers.get((nb, gid), {})]
        if parts:
            whole[s] = "\n\n".join(parts)
    results.insert(0, compare(WHOLE, "", "", whole, threshold))
    report = Report(assignment, students, results, skipped)
    out = course.workdir / "reports"
    out.mkdir(parents=True, exist_ok=True)
    report.seconds = time.monotonic() - t0
    report.csv_path = _atomic(out / f"similarity-{assignment}.csv", _csv(report))
    report.html_path = _atomic(out / f"similarity-{assignment}.html", render_html(report))
    return report


def _atomic(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _csv(report: Report) -> str:
    buf = io.StringIO()
    w = names.csv_writer(buf)   # every cell spreadsheet-safe (the course's one CSV rule)
    w.writerow(["exercise", "student_a", "student_b", "score", "similarity_a", "similarity_b", "shared_tokens",
                "tokens_a", "tokens_b", "rank"])
    for ex in report.exercises:
        for i, p in enumerate(ex.pairs, 1):
            w.writerow([ex.name, p.a, p.b, round(p.score, 4), round(p.sim_a, 4), round(p.sim_b, 4),
                        p.shared, p.tokens_a, p.tokens_b, i])
    return buf.getvalue()


# ----------------------------------------------------------------------------- the page

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1400px;color:#1d1d1f;padding:0 16px}
h1{font-size:22px;margin:0 0 6px}h2{font-size:18px;margin:28px 0 6px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.note{background:#fff8e1;border:1px solid #f0c36d;padding:10px 14px;border-radius:4px;margin:12px 0}
.muted{color:#666}table{border-collapse:collapse;margin:6px 0 12px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{display:inline-block;height:9px;background:#c62828;vertical-align:middle;margin-right:6px}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:12px;margin:6px 0 18px}
.pair>div{min-width:0}.who{font-weight:600;margin-bottom:2px}
pre{background:#fafafa;border:1px solid #e4e4e4;padding:8px;margin:0;overflow-x:auto;font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace;white-space:pre}
mark{background:#ffd54f;color:inherit}
ul{margin:4px 0}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _anchor(ex: str, i: int) -> str:
    return "p-" + "".join(ch if ch.isalnum() else "-" for ch in ex) + f"-{i}"


def _highlighted(code: str, slices) -> str:
    """The code, escaped, with copydetect's matching slices marked."""
    from copydetect.utils import highlight_overlap

    try:
        if "\x00" in code or slices is None or len(slices) == 0 or slices.shape[-1] == 0:
            return _e(code)
        marked, _ = highlight_overlap(code, slices, "\x00MARK\x01", "\x00/MARK\x01")
    except Exception:  # noqa: BLE001 - a display nicety: fall back to the plain code
        return _e(code)
    return _e(marked).replace("\x00MARK\x01", "<mark>").replace("\x00/MARK\x01", "</mark>")


def render_html(report: Report) -> str:
    """The report's page: inert (every student string escaped; the CSP forbids scripts)."""
    import copydetect

    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f'<meta http-equiv="Content-Security-Policy" content="{_e(CSP)}">',
           '<meta name="referrer" content="no-referrer">',
           f"<title>Similarity: {_e(report.assignment)}</title><style>{_STYLE}</style></head><body>",
           f"<h1>Similarity of answers: {_e(report.assignment)}</h1>",
           f'<p class="muted">{len(report.students)} submissions; written {_e(time.strftime("%Y-%m-%d %H:%M"))} in '
           f"{report.seconds:.1f} s by copydetect {_e(copydetect.__version__)}</p>",
           f'<div class="note"><b>{_e(DISCLAIMER)}</b></div>',
           "<p>For each answer cell, the students' own code (the released template removed) is normalised "
           "(names, strings and comments do not count) and cut into fingerprints of "
           f"{K} characters. A fingerprint found in at least the number of submissions given under each "
           "exercise is common (forced by the exercise, or shared by much of the class) and does not "
           f"count; answers with fewer than {MIN_TOKENS} characters left are too short to compare. The score "
           "is the mean of the two shares of matching code. Highlighted: the matching parts.</p>",
           "<p>Contents: " + ", ".join(f'<a href="#x-{i}">{_e(ex.name)}</a>' for i, ex in enumerate(report.exercises))
           + "</p>"]
    for i, ex in enumerate(report.exercises):
        title = ex.name if ex.name == WHOLE else f"{ex.name} ({ex.notebook})"
        out.append(f'<h2 id="x-{i}">{_e(title)}</h2>')
        out.append(f'<p class="muted">{len(ex.answers)} answers; fingerprints in at least {ex.threshold} of them '
                   f"are common ({ex.common} dropped); {len(ex.pairs)} pairs share code.</p>")
        if ex.identical:
            items = "".join(f"<li>{len(g)} identical: {_e(', '.join(g))}"
                            + (" (shared by much of the class: common, not counted)" if len(g) >= ex.threshold
                               else " (ranked below)") + "</li>" for g in ex.identical[:10])
            out.append(f"<p>Identical after normalisation:</p><ul>{items}</ul>")
        if ex.short:
            out.append(f'<p class="muted">Too short to compare: {_e(", ".join(ex.short[:40]))}'
                       f'{" ..." if len(ex.short) > 40 else ""}</p>')
        if not ex.pairs:
            out.append("<p>No pair shares code beyond what is common.</p>")
            continue
        rows = []
        for j, p in enumerate(ex.pairs[:TABLE_ROWS]):
            link = f'<a href="#{_anchor(ex.name, j)}">{j + 1}</a>' if j < SIDE_BY_SIDE else str(j + 1)
            rows.append(f"<tr><td>{link}</td><td>{_e(p.a)}</td><td>{_e(p.b)}</td>"
                        f'<td class="num"><span class="bar" style="width:{int(60 * p.score)}px"></span>{p.score:.0%}</td>'
                        f'<td class="num">{p.sim_a:.0%} / {p.sim_b:.0%}</td><td class="num">{p.shared}</td></tr>')
        out.append("<table><tr><th>#</th><th>student</th><th>student</th><th>score</th><th>share of each</th>"
                   f"<th>matching characters</th></tr>{''.join(rows)}</table>")
        if len(ex.pairs) > TABLE_ROWS:
            out.append(f'<p class="muted">{len(ex.pairs) - TABLE_ROWS} more pairs in the CSV.</p>')
        for j, p in enumerate(ex.pairs[:SIDE_BY_SIDE]):
            out.append(f'<h3 id="{_anchor(ex.name, j)}">#{j + 1}: {_e(p.a)} and {_e(p.b)}, {p.score:.0%}</h3>'
                       '<div class="pair">'
                       f'<div><div class="who">{_e(p.a)} ({p.sim_a:.0%} matches)</div>'
                       f"<pre>{_highlighted(ex.answers[p.a], p.slices_a)}</pre></div>"
                       f'<div><div class="who">{_e(p.b)} ({p.sim_b:.0%} matches)</div>'
                       f"<pre>{_highlighted(ex.answers[p.b], p.slices_b)}</pre></div></div>")
    if report.skipped:
        items = "".join(f"<li>{_e(s)}</li>" for s in report.skipped[:200])
        out.append(f"<h2>Not compared</h2><ul>{items}</ul>")
    out.append("</body></html>")
    return "\n".join(out)
