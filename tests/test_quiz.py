"""Tests for cnnlab.quiz: the computed answers equal the syllabus numbers; responses are parsed leniently;
feedback on a wrong answer names the slip and gives a hint but never the answer (unless asked); every
student gets their own numbers (variants), answered by cnnlab.shapes, from the id the course's
environment or the grader gives, never from one the student's code sets while graded."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from cnnlab import quiz, shapes


@pytest.fixture(autouse=True)
def _no_student(monkeypatch):
    """No student id in the environment, none set by a grader: the original numbers."""
    for var in (quiz.ID_ENV, "JUPYTERHUB_USER", quiz.VARIANTS_ENV, "NBGRADER_EXECUTION"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(quiz, "_GRADED", {})

EXPECTED = {
    1: "vertical edges", 2: 27_000_100, 3: 7_600, 4: (29, 29, 32), 5: (19, 19, 8), 6: 3, 7: (16, 16, 16), 8: False,
    9: 456, 10: 14_455_392, 11: 1_520, 12: 27_106_560, 13: 306, 14: 760, 15: 768_000, 16: 7, 17: 8,
    18: (14, 14, 6), 19: 62_958, 20: False, 21: 2, 22: 3, 23: (8, 256, 6, 6), 24: 512, 25: 0,
}


def test_answers_match_the_syllabus():
    assert {q.number: q.answer for q in quiz.questions()} == EXPECTED
    assert [q.number for q in quiz.QUESTIONS] == list(range(1, len(EXPECTED) + 1))


def test_every_question_states_its_layout_and_has_an_answer_free_hint_and_slips():
    for q in quiz.QUESTIONS:
        assert q.layout in quiz.LAYOUTS
        if q.kind == "shape" or "x" in q.text.split("?")[0] and q.layout:
            assert ("H x W x C" in q.prompt()) or ("(N, C, H, W)" in q.prompt()), q.number
        assert q.hint and q.explanation and q.slips, q.number
        for wrong, says in q.slips:
            assert quiz.parse_answer(q, wrong) != q.answer, (q.number, wrong)
            assert says
    assert {q.layout for q in quiz.QUESTIONS} == {"", "HWC", "NCHW"}


@pytest.mark.parametrize("number, response", [
    (1, "vertical edges"), (1, "A"), (1, "(a)"), (1, "a)"), (1, "Vertical"), (1, "vertical edge"),
    (2, 27000100), (2, "27,000,100"), (2, "27 000 100"), (2, "27_000_100"), (2, np.int64(27000100)),
    (2, "27000100 parameters"), (2, 27000100.0),
    (4, "29x29x32"), (4, "29 x 29 x 32"), (4, "(29, 29, 32)"), (4, [29, 29, 32]), (4, "29×29×32"),
    (4, "29X29X32"), (4, "29 by 29 by 32"), (4, np.array([29, 29, 32])), (4, (29.0, 29, 32)),
    (6, 3.0), (6, "3"), (8, False), (8, "false"), (8, "F"), (8, "no"), (8, np.bool_(False)),
    (23, (8, 256, 6, 6)), (23, "8x256x6x6"), (23, "(8, 256, 6, 6)"),
])
def test_correct_responses(number, response):
    ok, feedback = quiz.check(number, response)
    assert ok, feedback
    assert feedback.startswith("Correct: ")


def test_wrong_answers_get_the_slip_and_a_hint_but_not_the_answer():
    ok, feedback = quiz.check(4, (28, 28, 32))
    assert not ok and feedback.startswith("Not quite.") and "+ 1" in feedback and "Hint:" in feedback
    assert "29" not in feedback
    ok, feedback = quiz.check(8, True)
    assert not ok and "THROUGH pooling" in feedback and "False" not in feedback
    ok, feedback = quiz.check(2, 27_000_000)
    assert not ok and "forgot the biases" in feedback and "27,000,100" not in feedback
    ok, feedback = quiz.check(4, (30, 30, 32))  # not a classic slip: a hint only
    assert not ok and "Likely slip" not in feedback and "Hint:" in feedback


def test_reveal_shows_the_answer():
    ok, feedback = quiz.check(4, (30, 30, 32), reveal=True)
    assert not ok and "The answer is 29x29x32" in feedback and "floor" in feedback


def test_unreadable_responses_say_the_form():
    ok, feedback = quiz.check(2, "lots")
    assert not ok and "needs a whole number" in feedback
    ok, feedback = quiz.check(1, "z")
    assert not ok and "letter" in feedback and "(a) vertical edges" in feedback
    ok, feedback = quiz.check(1, 0)  # an index is ambiguous (0- or 1-based?): refused
    assert not ok and "letter" in feedback
    ok, feedback = quiz.check(1, "edges")  # matches several choices
    assert not ok
    ok, feedback = quiz.check(8, "maybe")
    assert not ok and "True or False" in feedback
    ok, feedback = quiz.check(7, "16 by 16 pixels")
    assert not ok and "HxWxC" in feedback
    ok, feedback = quiz.check(2, "29x29x32")
    assert not ok and "whole number" in feedback
    ok, feedback = quiz.check(6, 3.5)
    assert not ok and "whole number" in feedback


def test_get_and_answer_text():
    assert quiz.get(2).answer_text() == "27,000,100"
    assert quiz.get(5).answer_text() == "19x19x8"
    assert quiz.get(8).answer_text() == "False"
    assert quiz.get(23).answer_text() == "(8, 256, 6, 6)"
    with pytest.raises(ValueError, match="no question 99"):
        quiz.get(99)


def test_slip_for():
    q = quiz.get(5)
    assert "once instead of twice" in quiz.slip_for(q, (17, 17, 8))
    assert quiz.slip_for(q, (18, 18, 8)) is None


def test_the_quiz_filter_ignores_horizontal_edges():
    """The computation behind question 1: a strong response to vertical edges, none to horizontal ones."""
    from cnnlab.data import edge_image

    def peak(img, k):
        return max(abs(float(np.sum(img[i:i + 4, j:j + 4] * k))) for i in range(5) for j in range(5))

    assert peak(edge_image(8), quiz._Q1_FILTER) == 100
    assert peak(edge_image(8, orientation="horizontal"), quiz._Q1_FILTER) == 0


# ----------------------------------------------------------------------------- layouts (issue 18)

VOLUME = re.compile(r"\d+x\d+x\d+|\(\d+, \d+, \d+, \d+\)")


@pytest.mark.parametrize("student", [None, "alice", "bob", "s0042"])
def test_layout_note_only_where_a_question_has_a_volume(student):
    """The "(sizes are H x W x C ...)" note stands only where the question states a volume or asks
    for one (it stood on 11 questions, several with none: 13, 3, 15)."""
    for q in quiz.variant(student):
        has_volume = bool(VOLUME.search(q.text)) or q.kind == "shape"
        has_note = "(Sizes are" in q.prompt() or "(Shapes are" in q.prompt()
        assert has_note == has_volume, (q.number, q.prompt())
        if q.layout == "NCHW":
            assert "(N, C, H, W)" in q.prompt()


@pytest.mark.parametrize("response, count", [((6, 6, 256), 3), ((256, 6), 2), ((8, 256, 6, 6, 1), 5)])
def test_a_shape_with_the_wrong_count_of_numbers_is_named(response, count):
    """Issue 18: an (N, C, H, W) question answered with 3 numbers said only "not quite"."""
    ok, feedback = quiz.check(23, response)
    assert not ok and "Likely slip" in feedback and f"{count} numbers" in feedback and "(N, C, H, W)" in feedback
    assert "6, 6" not in feedback.split("Likely slip")[1].split("Hint")[0].replace(str(response), "")
    ok, feedback = quiz.check(4, (29, 29, 32, 1))
    assert not ok and "4 numbers where a volume has 3" in feedback


# ----------------------------------------------------------------------------- variants

def _by_shapes(q: quiz.Question) -> object:
    """The answer of one question, computed here with cnnlab.shapes from the student's numbers alone."""
    s, v = shapes, q.numbers
    if q.number == 2:
        return s.fc_params(v["n"] * v["n"] * 3, v["units"])
    if q.number in (3, 9, 11, 14):
        return s.conv_params(3, v["filters"], v["f"])
    if q.number == 4:
        o = s.conv_output_size(v["n"], v["f"], 0, v["stride"])
        return (o, o, v["filters"])
    if q.number == 5:
        return (v["n"] + 2 * v["pad"], v["n"] + 2 * v["pad"], v["c"])
    if q.number in (6, 21):
        return s.same_padding(v["f"])
    if q.number == 7:
        o = s.pool_output_size(v["n"], v["k"], v["stride"])
        return (o, o, v["c"])
    if q.number in (10, 12):
        o = s.conv_output_size(v["n"], v["f"])
        return s.fc_params(v["n"] * v["n"] * 3, o * o * v["filters"])
    if q.number == 13:
        return s.conv_params(v["c"], v["filters"], v["f"])
    if q.number == 15:
        o = s.conv_output_size(v["n"], v["f"], v["pad"])
        return s.conv_macs(3, v["filters"], v["f"], v["f"], o, o)
    if q.number == 16:
        return s.receptive_field([(v["k"], 1)] * v["layers"])
    if q.number == 17:
        return s.receptive_field([(v["k1"], 1), (v["p"], v["p"]), (v["k2"], 1)])
    if q.number == 18:
        o = s.pool_output_size(v["n"], 2)
        return (o, o, v["c"])
    if q.number == 19:
        net = [s.Conv(v["c1"], 5), s.Pool(2), s.Conv(v["c2"], 5), s.Pool(2), s.FC(v["fc1"]), s.FC(84), s.FC(10)]
        return s.total_params(s.layer_table(net, (v["c"], v["n"], v["n"])))
    if q.number == 20:
        return (v["n"] - v["f"]) % v["stride"] == 0
    if q.number == 22:
        return s.conv_output_size(v["n"], v["f"], 0, v["stride"])
    if q.number == 23:
        o = s.pool_output_size(v["H"], 3, 2)
        return (v["N"], v["C"], o, o)
    if q.number == 24:
        return v["C"]
    if q.number == 25:
        return 0
    return EXPECTED[q.number]        # 1 and 8: no numbers


STUDENTS = [f"s{i:04d}" for i in range(120)] + ["alice", "bob", "Zoë Ünal", "jdoe@example.edu", "x" * 80]


def test_two_students_get_different_numbers():
    alice, bob = quiz.variant("alice"), quiz.variant("bob")
    numbered = [n for n, q in enumerate(quiz.QUESTIONS) if q.params]
    assert len(numbered) == 23                       # all but the filter (1) and the true/false on pooling (8)
    differ = [n + 1 for n in numbered if alice[n].params != bob[n].params]
    assert len(differ) >= 20, differ
    keys = quiz.answer_key("alice"), quiz.answer_key("bob")
    assert sum(keys[0][k] != keys[1][k] for k in keys[0]) >= 15
    assert alice[3].text != bob[3].text and all(str(v) in alice[3].text for v in alice[3].numbers.values())


@pytest.mark.parametrize("student", [None, *STUDENTS])
def test_every_variant_is_answered_by_shapes_and_stays_meaningful(student):
    original = {q.number: q for q in quiz.QUESTIONS}
    for q in quiz.variant(student):
        assert q.answer == _by_shapes(q), (student, q.number, q.numbers)
        if q.kind == "int":
            assert isinstance(q.answer, int) and q.answer >= 0
        if q.kind == "shape":
            assert all(isinstance(v, int) and v > 0 for v in q.answer)
            assert len(q.answer) == len(original[q.number].answer) and q.layout == original[q.number].layout
        for name, value in q.numbers.items():          # the text states every number the student may use
            assert str(value) in q.text, (q.number, name, q.text)
        values = [quiz.parse_answer(q, wrong) for wrong, _ in q.slips]
        assert q.answer not in values and len(set(map(str, values))) == len(values), (student, q.number)
        # the classic slips are the same mistakes, said the same way, in every variant
        assert [says for _, says in q.slips] == [says for _, says in original[q.number].slips]
        for (wrong, _), code in zip(q.slips, q.slip_code):
            if code:
                from types import SimpleNamespace

                assert eval(code, {}, {"q": SimpleNamespace(**q.numbers)}) == wrong  # noqa: S307


def test_without_an_id_the_original_numbers():
    assert quiz.current_student().id is None
    assert quiz.questions() == list(quiz.QUESTIONS) == list(quiz.variant(None)) == list(quiz.variant("  "))
    assert {q.number: q.answer for q in quiz.questions()} == EXPECTED


GOLDEN_ALICE = {2: {"n": 64, "units": 200}, 4: {"n": 97, "c": 32, "filters": 8, "f": 11, "stride": 2},
                19: {"n": 32, "c": 1, "c1": 10, "c2": 12, "fc1": 120}, 23: {"N": 16, "C": 96, "H": 25}}


def test_the_seed_is_a_keyed_hash_the_same_in_every_process():
    """Not Python's hash(): two interpreters with different hash seeds draw the same numbers, and
    they are the ones recorded here (a change of the drawing would change every student's quiz)."""
    code = ("import json; from cnnlab import quiz; "
            "print(json.dumps({q.number: q.numbers for q in quiz.variant('alice')}))")
    runs = []
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed})
        runs.append(json.loads(out.stdout))
    assert runs[0] == runs[1]
    assert {int(k): v for k, v in runs[0].items() if int(k) in GOLDEN_ALICE} == GOLDEN_ALICE
    assert {q.number: q.numbers for q in quiz.variant("alice") if q.number in GOLDEN_ALICE} == GOLDEN_ALICE
    assert quiz.variant("alice", "08_quiz_retake")[3].numbers != GOLDEN_ALICE[4]   # per assignment too


def test_whose_numbers(monkeypatch, capsys):
    assert quiz.whose_numbers().id is None and "original numbers" in capsys.readouterr().out
    monkeypatch.setenv("JUPYTERHUB_USER", "bob")
    assert quiz.current_student().id == "bob" and quiz.get(4) == quiz.variant("bob")[3]
    monkeypatch.setenv(quiz.ID_ENV, "alice")                 # the course's own setting comes first
    me = quiz.whose_numbers()
    assert me.id == "alice" and "'alice'" in capsys.readouterr().out
    assert quiz.question(4).n == quiz.variant("alice")[3].numbers["n"]
    monkeypatch.setenv(quiz.VARIANTS_ENV, "off")
    assert quiz.current_student().id is None and quiz.get(4) == quiz.QUESTIONS[3]


def test_while_graded_only_the_graders_record_counts(monkeypatch):
    """Under autograde, the environment says nothing (a student's cell may set it); the grader's
    preamble does, once."""
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    monkeypatch.setenv(quiz.ID_ENV, "alice")
    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    assert quiz.current_student().id is None                 # no record yet: the original numbers
    preamble = quiz.kernel_preamble("bob")
    exec(preamble, {})  # noqa: S102 - what the grader runs in the kernel
    assert quiz.current_student() == quiz.Student("bob", "the grader's record of who submitted")
    os.environ[quiz.ID_ENV] = "alice"                       # what a student's cell could do
    assert quiz.current_student().id == "bob"
    with pytest.raises(RuntimeError, match="set once per kernel"):
        quiz.set_graded_student("alice")
    quiz.set_graded_student("bob")                          # the same id again is harmless
    assert quiz.get(4) == quiz.variant("bob")[3]
    monkeypatch.setenv(quiz.VARIANTS_ENV, "off")
    assert quiz.kernel_preamble("bob") is None and quiz.graded_student("bob") is None


def test_the_answer_key_matches_check_and_the_widget(monkeypatch):
    from cnnlab.checks import nb08
    from cnnlab.widgets import quiz as wq

    monkeypatch.setenv("JUPYTERHUB_USER", "alice")
    mine, theirs = quiz.answer_key("alice"), quiz.answer_key("bob")
    assert mine == nb08.answer_key("alice") and quiz.answer_key(None) == {f"answer_q{n}": a for n, a in EXPECTED.items()}
    for q in quiz.questions():
        name = f"answer_q{q.number}"
        for value, right in ((mine[name], True), (theirs[name], mine[name] == theirs[name])):
            text = q.answer_text() if right else (
                "x".join(map(str, value)) if isinstance(value, tuple) else str(value))
            assert quiz.check(q.number, value)[0] is right, (q.number, value)
            assert wq.feedback(q.number, text)[0] is right, (q.number, text)
            assert nb08.NOTEBOOK[name].run(value).passed is right, (q.number, value)
            assert (nb08.NOTEBOOK[name].confirm(value, "alice") is None) is right
            assert nb08.NOTEBOOK[name].confirm(theirs[name], "bob") is None


def test_quiz_key_command(tmp_path, capsys):
    from autograder.cli import main

    assert main(["quiz-key", "alice", "--workdir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    q4 = quiz.variant("alice")[3]
    assert "quiz variant of student 'alice'" in out and q4.prompt() in out and f"answer: {q4.answer_text()}" in out
    (tmp_path / "submitted" / "bob" / "08_quiz").mkdir(parents=True)
    assert main(["quiz-key", "--all", "--original", "--csv", str(tmp_path / "key.csv"), "--workdir", str(tmp_path)]) == 0
    import csv

    rows = list(csv.reader((tmp_path / "key.csv").open()))
    assert rows[0][:2] == ["student", "answer_q1"] and len(rows) == 3
    assert rows[1][:3] == ["(original)", "vertical edges", "27,000,100"]
    assert rows[2] == ["bob", *[q.answer_text() for q in quiz.variant("bob")]]
    assert main(["quiz-key", "--workdir", str(tmp_path)]) == 2
