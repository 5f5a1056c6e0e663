"""The class similarity report (autograder/similarity.py, ``python -m autograder similarity``).

- On a class written here (tests/fixtures/similarity_class.py: five honest, different, correct
  answers to 02's ``corr2d_loops`` and four disguised copies), every copied pair ranks above every
  pair of independently written answers.
- On the sample class, whose students hand in identical reference answers, those do not flood the
  top: their fingerprints are common to much of the class and dropped (with the common threshold
  off, they do flood it: the wrong case).
- One-line answers (the quiz's) are too short to compare: listed, not ranked.
- The page is inert (every student string escaped, a policy forbidding scripts); the CSV's cells
  cannot become spreadsheet formulas; two runs (two hash seeds) write the same CSV.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import similarity as sim
from autograder.config import Course

sys.path.insert(0, str(Path(__file__).resolve().parent / "fixtures"))

import similarity_class as sc  # noqa: E402

COURSE = Course()


@pytest.fixture(scope="module")
def class_report(tmp_path_factory):
    course = COURSE.with_(workdir=tmp_path_factory.mktemp("simclass") / "work")
    sc.write_class(course.notebooks, course.workdir)
    return course, sim.similarity(course, sc.ASSIGNMENT)


def _exercise(report, name):
    return next(ex for ex in report.exercises if ex.name == name)


@pytest.mark.parametrize("name", [sc.EXERCISE, sim.WHOLE])
def test_copies_rank_above_every_independent_pair(class_report, name):
    _, report = class_report
    ex = _exercise(report, name)
    copied = sc.copied_pairs()
    students = sorted(sc.bodies())
    scores = {frozenset((p.a, p.b)): p.score for p in ex.pairs}
    honest = [frozenset(pair) for pair in __import__("itertools").combinations(students, 2)
              if frozenset(pair) not in copied]
    lowest_copy = min(scores[c] for c in copied)
    highest_honest = max(scores.get(h, 0.0) for h in honest)
    assert lowest_copy > highest_honest + 0.3, (lowest_copy, highest_honest)
    assert {frozenset((p.a, p.b)) for p in ex.pairs[:len(copied)]} == copied
    assert ex.short == [] and len(ex.answers) == len(students)


def test_each_disguise_alone_still_matches(tmp_path):
    """Renamed names, reordered independent lines, changed comments: each one alone keeps the
    copy above 80%."""
    base = sc.HONEST["chloe"]
    disguises = {
        "renamed": base.replace("total", "acc").replace("rows", "nr").replace("cols", "nc").replace("out", "res"),
        "reordered": base.replace("    rows = len(x) - len(k) + 1\n    cols = len(x[0]) - len(k[0]) + 1",
                                  "    cols = len(x[0]) - len(k[0]) + 1\n    rows = len(x) - len(k) + 1"),
        "comments": base.replace("    out = np.empty((rows, cols))",
                                 "    # the output\n    out = np.empty((rows, cols))  # filled below"),
    }
    for what, body in disguises.items():
        assert body != base, what
        answers = {**sc.HONEST, "copier": body}
        res = sim.compare(sc.EXERCISE, sc.ASSIGNMENT, "", {s: sim.own_lines(b, "") for s, b in answers.items()})
        top = res.pairs[0]
        assert {top.a, top.b} == {"chloe", "copier"} and top.score > 0.8, (what, top)


@pytest.fixture(scope="module")
def sample_course(tmp_path_factory):
    from autograder.sample_class import make_class

    course = COURSE.with_(workdir=tmp_path_factory.mktemp("simsample") / "work")
    make_class(course.solutions, course.notebooks, course.workdir / "submitted", ["02_filters", "08_quiz"])
    return course


REFERENCE_LIKE = {"reference", "late", "messy", "syntax", "partial"}   # the sample class's reference answers


def test_identical_reference_answers_do_not_flood_the_top(sample_course):
    # the wrong case first: without dropping common fingerprints, identical references fill the top
    flooded = sim.similarity(sample_course, "02_filters", threshold=10_000)
    long_enough = [ex for ex in flooded.exercises if len(ex.short) < len(ex.answers)]
    assert len(long_enough) >= 4
    for ex in long_enough:
        assert ex.pairs and all({p.a, p.b} <= REFERENCE_LIKE for p in ex.pairs[:3]), ex.name
    report = sim.similarity(sample_course, "02_filters")
    for ex in report.exercises:
        assert not any({p.a, p.b} <= REFERENCE_LIKE for p in ex.pairs), (ex.name, ex.pairs[:3])
        if ex.name != sim.WHOLE:
            assert any(len(g) >= ex.threshold and set(g) <= REFERENCE_LIKE for g in ex.identical), ex.name
    page = report.html_path.read_text()
    assert "shared by much of the class: common, not counted" in page


def test_one_line_answers_are_too_short_to_compare(sample_course):
    report = sim.similarity(sample_course, "08_quiz")
    per_question = [ex for ex in report.exercises if ex.name.startswith("answer_q")]
    assert len(per_question) == 25
    assert all(ex.answers and not ex.pairs for ex in per_question)
    assert sum(set(ex.short) == set(ex.answers) for ex in per_question) >= 18   # one-liners: nothing to rank
    assert "Too short to compare" in report.html_path.read_text()


def test_the_page_is_inert(class_report):
    _, report = class_report
    page = report.html_path.read_text()
    assert f'<meta http-equiv="Content-Security-Policy" content="{sim.CSP}">'.replace("'", "&#x27;") in page
    assert "script-src" not in sim.CSP and "default-src 'none'" in sim.CSP
    lowered = page.lower()
    assert "<script" not in lowered and "<img" not in lowered and "onerror=" not in lowered.replace("onerror=alert", "")
    assert "eve&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;/pre&gt;&lt;script&gt;document.title = &quot;pwned&quot;&lt;/script&gt;" in page
    assert sim.DISCLAIMER.split(".")[0] in page


@pytest.mark.parametrize("text, safe", [
    ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"), ("+1", "'+1"), ("-2", "'-2"),
    ("@SUM(A1)", "'@SUM(A1)"), ("\tx", "'\tx"), ("\rx", "'\rx"), ("alice", "alice"), ("0.95", "0.95"), ("", ""),
])
def test_csv_cells_cannot_be_formulas(text, safe):
    from autograder.names import csv_cell

    assert csv_cell(text) == safe


def test_the_csv(tmp_path):
    course = COURSE.with_(workdir=tmp_path / "work")
    sc.write_class(course.notebooks, course.workdir, extra={"=cmd|' -C calc'!A0": sc.HONEST["ana"]})
    report = sim.similarity(course, sc.ASSIGNMENT)
    rows = list(csv.DictReader(report.csv_path.open()))
    assert rows and all(float(r["score"]) > 0 for r in rows)
    assert {r["exercise"] for r in rows} == {sim.WHOLE, sc.EXERCISE}
    named = [r for r in rows if "cmd|" in r["student_a"] + r["student_b"]]
    assert named and all(not (r["student_a"] + r["student_b"]).startswith("=") for r in named)
    assert all(r["student_a"].startswith("'=") or r["student_b"].startswith("'=") for r in named)


@pytest.mark.slow   # the report in fresh processes: not in the fast tier
def test_two_runs_write_the_same_csv(class_report):
    """Fingerprints are every k-gram (no winnowing by hash value): Python's per-process string
    hashing does not change the result."""
    course, report = class_report
    code = ("import sys; from autograder.config import Course; from autograder.similarity import similarity; "
            f"similarity(Course(workdir={str(course.workdir)!r}), {sc.ASSIGNMENT!r})")
    texts = []
    for seed in ("1", "2"):
        subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONHASHSEED": seed},
                       cwd=Path(__file__).resolve().parent.parent)
        texts.append(report.csv_path.read_text())
    assert texts[0] == texts[1] and texts[0].count("\n") > 5


def test_the_command(tmp_path, capsys):
    from autograder.cli import main

    work = tmp_path / "work"
    assert main(["similarity", "02_filters", "--workdir", str(work)]) == 2
    assert "no submissions of 02_filters" in capsys.readouterr().out
    sc.write_class(COURSE.notebooks, work)
    assert main(["similarity", "02_filters", "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    assert "compared 9 submissions" in out and "never a verdict" in out
    assert (work / "reports" / "similarity-02_filters.html").is_file()
    assert main(["similarity", "no_such", "--workdir", str(work)]) == 2
    out = capsys.readouterr().out   # the unknown name and the known ones, not "release no_such" (not an assignment)
    assert "unknown assignment 'no_such'" in out and "02_filters" in out and "release no_such" not in out, out
