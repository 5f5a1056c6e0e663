"""The trusted verifier's decisions (``autograder/verifier.py``), without nbgrader: every scored
test cell is confirmed or loses its points, and the :class:`~autograder.verifier.Verdict` says why
in one line, telling a disagreement (possible tampering) from a cell it could not confirm, and an
infrastructure failure (after one retry) from the submission's doing."""

from __future__ import annotations

import copy
import dataclasses
import sys
from pathlib import Path

import nbformat
import pytest

from autograder import verifier
from autograder.sample_class import answer_code

REPO = Path(__file__).resolve().parent.parent
A = "01_history"


@pytest.fixture(scope="module")
def notebooks():
    source = nbformat.read(REPO / "solutions" / A / f"{A}.ipynb", as_version=4)
    release = nbformat.read(REPO / "notebooks" / A / f"{A}.ipynb", as_version=4)
    return source, release


def _gid(c):
    return c.metadata.get("nbgrader", {}).get("grade_id")


def submission(notebooks, **answers):
    """The reference answers, some answer cells replaced."""
    source, release = notebooks
    nb = copy.deepcopy(release)
    sols = {_gid(c): answer_code(c.source) for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    for c in nb.cells:
        if _gid(c) in sols:
            c.source = answers.get(_gid(c), sols[_gid(c)])
    return nb


def verify(notebooks, nb, scores=None, **kw):
    source, release = notebooks
    scores = scores or {g: 1.0 for g in verifier.test_grade_ids(release)}
    return verifier.verify(A, nb, release, source, scores, seconds=30, total_seconds=120, memory_mb=2048,
                           sb=None, **kw)


def test_the_reference_is_confirmed_cell_by_cell(notebooks):
    v = verify(notebooks, submission(notebooks))
    assert v.confirmed == set(verifier.test_grade_ids(notebooks[1])) and not v.withdrawn and not v.flags
    assert not v.tampering and not v.errors


def test_an_honest_numpy_integer_is_confirmed(notebooks):
    """The issue: an honest fc_params returning np.int64 lost 5 points and was flagged."""
    nb = submission(notebooks, fc_params="import numpy as np\ndef fc_params(n_in, n_out, bias=True):\n"
                                         "    return np.int64((n_in + int(bias)) * n_out)")
    v = verify(notebooks, nb)
    assert not v.withdrawn and not v.flags, (v.withdrawn, v.flags)


def test_a_wrong_answer_that_scored_is_withdrawn_as_possible_tampering(notebooks):
    nb = submission(notebooks, fc_params="def fc_params(n_in, n_out, bias=True):\n    return n_in * n_out")
    v = verify(notebooks, nb)
    assert set(v.withdrawn) == {"test_fc_params_public", "test_fc_params_hidden"}
    assert all(m.startswith("possible tampering: ") and "\n" not in m for m in v.withdrawn.values())
    assert v.tampering and not v.errors
    assert "test_conv_params_hidden" in v.confirmed


def test_only_cells_that_scored_are_examined(notebooks):
    nb = submission(notebooks, fc_params="def fc_params(n_in, n_out, bias=True):\n    return 0")
    scores = {g: (0.0 if "fc_params" in g else 1.0) for g in verifier.test_grade_ids(notebooks[1])}
    v = verify(notebooks, nb, scores)
    assert not v.withdrawn and not v.flags


def test_a_malformed_reply_withdraws_and_says_so_without_crying_tampering(notebooks):
    """The issue: {"__dict__": 5} on the pipe crashed the comparison and nbgrader's points stayed."""
    forged = (b'\x0e\x00\x00\x00\x00\x00\x00\x00{"__dict__":5}' + b"\x00" * 8)
    attack = ("import os\nfor _fd in range(3, 64):\n    try:\n"
              f"        os.write(_fd, {forged!r})\n    except OSError:\n        pass\nos._exit(0)\n")
    v = verify(notebooks, submission(notebooks, fc_params=attack))
    assert set(v.withdrawn) == set(verifier.test_grade_ids(notebooks[1]))
    assert all(m.startswith("the verifier could not confirm this check: ") for m in v.withdrawn.values())
    assert any("unreadable" in m for m in v.withdrawn.values()), v.withdrawn
    assert not v.tampering and not v.errors       # the submission's doing, not the machine's


@pytest.mark.parametrize("crash", ["import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)", "import os\nos._exit(3)"])
def test_code_that_ends_the_checking_process_costs_its_own_checks_only(notebooks, crash):
    """A student's answer cell that ends its process (a segfault, os._exit) as its last statement:
    the checks of the earlier cells are still confirmed (the verifier runs again without that cell,
    as the kernel ran the cells before it), the crashing cell's own checks are not, and both say
    why. Before, every check of the notebook lost its points ("the worker sent unreadable data")."""
    source, release = notebooks
    sols = {_gid(c): answer_code(c.source) for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    v = verify(notebooks, submission(notebooks, shift_image=sols["shift_image"] + "\n" + crash))
    tests = verifier.test_grade_ids(release)
    assert {g for g in tests if "fc_params" in g or "conv_params" in g} <= v.confirmed, (v.confirmed, v.withdrawn)
    lost = {g for g in tests if "shift_image" in g}
    assert lost <= set(v.withdrawn), v.withdrawn
    assert all("the code of answer cell shift_image ended the checking process and was left out" in v.withdrawn[g]
               for g in lost), v.withdrawn
    signal = "signal SIGSEGV" if "SIGSEGV" in crash else "exit code 3"
    assert (f"verifier: the code of answer cell shift_image ended the checking process ({signal}); checked without it"
            in v.flags), v.flags
    assert not v.tampering and not v.errors


def test_leaving_out_code_that_ends_the_worker_does_not_hide_tampering(notebooks):
    """The attack: a wrong answer that scored in the notebook, plus a cell of the student's own that
    ends only the verifier's process; the wrong answer must still read as possible tampering."""
    wrong = "def fc_params(n_in, n_out, bias=True):\n    return n_in * n_out"
    nb = submission(notebooks, fc_params=wrong)
    nb.cells.append(nbformat.v4.new_code_cell("class Scratch:\n    import os, sys\n"
                                              "    if 'ipykernel' not in sys.modules:\n        os._exit(3)\n"))
    v = verify(notebooks, nb)
    assert v.tampering, (v.withdrawn, v.flags)
    assert all(v.withdrawn[g].startswith("possible tampering") for g in v.withdrawn if "fc_params" in g), v.withdrawn
    assert any("ended the checking process" in f for f in v.flags), v.flags


def test_a_worker_that_never_starts_is_retried_once_then_an_error(notebooks, monkeypatch):
    starts = []
    real = verifier._exchange

    def failing(request, **kw):
        starts.append(1)
        raise verifier.WorkerFailed("the worker never reached the submission's code (it exited with 1)", infra=True)

    monkeypatch.setattr(verifier, "_exchange", failing)
    v = verify(notebooks, submission(notebooks))
    assert len(starts) == 2                       # one worker for this notebook, retried once
    assert set(v.withdrawn) == set(verifier.test_grade_ids(notebooks[1])) and v.errors and not v.tampering
    assert all("never reached" in m for m in v.withdrawn.values())
    monkeypatch.setattr(verifier, "_exchange", real)


def test_a_failure_of_the_verifier_itself_fails_closed(notebooks, monkeypatch):
    def broken(*a, **k):
        raise RuntimeError("a bug in the verifier")

    monkeypatch.setattr(verifier, "_plan", broken)
    v = verify(notebooks, submission(notebooks))
    assert set(v.withdrawn) == set(verifier.test_grade_ids(notebooks[1]))
    assert v.errors and "a bug in the verifier" in v.errors[0]


def test_a_judge_that_raises_or_a_record_that_cannot_be_confirmed_withdraws(notebooks, monkeypatch):
    from cnnlab.checks import nb01

    ex = nb01.NOTEBOOK["fc_params"]
    monkeypatch.setattr(ex, "verify", lambda *a, **k: 1 / 0)
    v = verify(notebooks, submission(notebooks))
    assert "comparing the result raised ZeroDivisionError" in v.withdrawn["test_fc_params_public"]
    monkeypatch.setattr(ex, "confirmation", lambda *a, **k: None)
    v = verify(notebooks, submission(notebooks))
    assert "cannot be confirmed" in v.withdrawn["test_fc_params_hidden"]
    assert "test_conv_params_public" in v.confirmed


def test_a_scored_cell_that_no_record_covers_loses_its_points(notebooks):
    source, release = notebooks
    rel = copy.deepcopy(release)
    extra = copy.deepcopy(next(c for c in rel.cells if _gid(c) == "test_fc_params_public"))
    extra.metadata["nbgrader"]["grade_id"] = "test_something_else"
    rel.cells.append(extra)
    v = verifier.verify(A, submission(notebooks), rel, source, {"test_something_else": 1.0}, seconds=30,
                        total_seconds=120, memory_mb=2048, sb=None)
    assert "no exercise record covers" in v.withdrawn["test_something_else"]


def test_an_assignment_without_records_keeps_nbgraders_points(notebooks):
    source, release = notebooks
    verifier.set_exercise_source(lambda a: [])
    try:
        v = verify(notebooks, submission(notebooks, fc_params="def fc_params(*a):\n    return 0"))
    finally:
        verifier.set_exercise_source(None)
    assert not v.withdrawn and not v.flags


def test_quiz_answers_are_judged_for_the_student_who_submitted(monkeypatch):
    """The quiz's expected answer is a function of (record, student): the grader's student id."""
    from cnnlab.checks import nb08

    a = "08_quiz"
    source = nbformat.read(REPO / "solutions" / a / f"{a}.ipynb", as_version=4)
    release = nbformat.read(REPO / "notebooks" / a / f"{a}.ipynb", as_version=4)
    nb = copy.deepcopy(release)
    for c in nb.cells:
        if _gid(c) == "answer_q3":
            c.source = "answer_q3 = 1234"
    ex = nb08.NOTEBOOK["answer_q3"]
    seen = []

    def question_for(student=None):
        seen.append(student)
        q = ex.question
        return dataclasses.replace(q, answer=1234) if student == "bob" else q

    monkeypatch.setattr(ex, "question_for", question_for)
    scores = {"test_answer_q3": 1.0}
    alice = verifier.verify(a, nb, release, source, scores, seconds=30, total_seconds=120, memory_mb=2048,
                            sb=None, student="alice")
    bob = verifier.verify(a, nb, release, source, scores, seconds=30, total_seconds=120, memory_mb=2048,
                          sb=None, student="bob")
    assert "test_answer_q3" in alice.withdrawn and "not quite" in alice.withdrawn["test_answer_q3"]
    assert bob.confirmed == {"test_answer_q3"}
    assert seen == ["alice", "bob"]


def test_run_worker_keeps_its_old_call_form_working():
    replies = verifier.run_worker([], ["def f(x):\n    return x + 1\ndef g():\n    raise KeyError('k')"],
                                  [["f", [1], {}], ["g", [], {}]], seconds=10, total_seconds=60, memory_mb=2048, sb=None)
    assert replies[0] == {"ok": 2}
    assert replies[1]["raised"] == "builtins.KeyError" and replies[1]["error"].startswith("KeyError")
    assert sys.executable
