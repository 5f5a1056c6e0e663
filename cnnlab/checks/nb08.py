"""Exercise records of notebook 08 (the self-check quiz): one record per question, ``answer_q1`` ... ``answer_q25``.

A quiz answer is a value, not a function: the student's answer cell sets ``answer_q4 = "29x29x32"``
(or a number, a tuple, a bool; see ``cnnlab.quiz.parse_answer`` for the forgiving forms), and the
question's single test cell calls ``nb08.check("answer_q4", answer_q4)`` (and, in its hidden part,
``tier="hidden"``). The correct answers are ``cnnlab.quiz``'s, every one computed by ``cnnlab.shapes``
for the numbers of the kernel's student (``cnnlab.quiz.current_student``: while grading, the
grader's record of who submitted), at the time of the check.

Feedback never contains the right answer, in either tier: a right answer gets one green line with how
it is computed; a wrong one says "not quite", names the slip when the answer is one of the question's
classic wrong answers (its bug table, built from ``Question.slips``: forgot the bias, forgot the channel
depth, no + 1, padding on one side only, "True" for question 8 ...) and, in the public tier, gives the
question's hint; an unreadable answer is told which form to use.

:class:`QuizAnswer` is an :class:`~cnnlab.grading.exercise.Exercise` whose "function" is the value
itself (``run(value, tier)``); its bugs' ``code`` are whole wrong answer cells, computed from the
student's own numbers where the slip is a computation (``q = question(2)`` then ``answer_q2 = q.n * q.n
* 3 * q.units``), so that they stay wrong, and the same slip, in every student's variant.

For the grader's verifier (outside the kernel): :func:`answer_key` and :meth:`QuizAnswer.confirm`
judge a value against the variant of a given student.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from cnnlab import quiz
from cnnlab.grading.exercise import Bug, Case, Confirmation, Exercise, Notebook, Outcome, Problem, show

__all__ = ["NOTEBOOK", "QuizAnswer", "QuizNotebook", "check", "summary", "answer_name", "answer_key"]


def answer_name(number: int) -> str:
    """The variable (and grade_id) of question ``number``'s answer: ``answer_q4``."""
    return f"answer_q{number}"


def _code(question: quiz.Question, value: object, expression: str = "") -> str:
    """A wrong answer cell as a student writes it: a computation over their numbers where the slip is one
    (``q = question(4)``), else the value (shapes as text, the rest as Python values)."""
    name = answer_name(question.number)
    if expression:
        return f"q = question({question.number})\n{name} = {expression}"
    if question.kind == "shape" and isinstance(value, tuple):
        if question.layout == "NCHW":
            return f"{name} = {value!r}"
        return f'{name} = "{"x".join(str(v) for v in value)}"'
    return f"{name} = {value!r}"


_UNREADABLE = {
    2: ('answer_q2 = "about 27 million"', "cannot read"),
    7: ('answer_q7 = "16 by 16 pixels, 16 channels"', "cannot read"),
    1: ("answer_q1 = 1", "cannot read"),
}


class QuizAnswer(Exercise):
    """The record of one quiz question: the student's answer is a value checked against ``quiz``'s answer."""

    def __init__(self, question: quiz.Question) -> None:
        codes = question.slip_code or ("",) * len(question.slips)
        bugs = [Bug(says, _code(question, wrong, expr)) for (wrong, says), expr in zip(question.slips, codes)]
        if question.number in _UNREADABLE:
            code, says = _UNREADABLE[question.number]
            bugs.append(Bug(says, code, by_output=False))
        name = answer_name(question.number)
        super().__init__(name, question.number, None, custom=self._judge, bugs=bugs, kind="int",
                         grade_ids=(f"test_{name}",))

    @property
    def question(self) -> quiz.Question:
        """The question with the numbers of this kernel's student (looked up at each check)."""
        return quiz.get(self.number)

    def confirm(self, value: Any, student_id: str | None) -> str | None:
        """None when ``value`` answers ``student_id``'s variant of this question, else why not (for the
        grader's verifier: ``student_id = cnnlab.quiz.graded_student(<the grader's record>)``)."""
        q = quiz.get(self.number, student=student_id)
        if quiz.is_right(q, value):
            return None
        who = f"student {student_id!r}" if student_id else "the original quiz"
        return f"{self.title}: {value!r} is not the answer of {who}'s numbers"

    @property
    def title(self) -> str:
        """ "Question 4 (answer_q4)"."""
        return f"Question {self.number} ({self.name})"

    def bug_function(self, bug: Bug) -> Any:
        """Run a bug's answer cell and return the (wrong) value it sets (a quiz answer is a value), with the
        numbers of this kernel's student (not cached: they depend on the student)."""
        ns: dict[str, Any] = {"__name__": f"cnnlab_bug_{self.name}", "question": quiz.question}
        exec(compile(bug.code, f"<bug of {self.name}>", "exec"), ns)  # noqa: S102 - the course's own table
        if self.name not in ns:
            raise ValueError(f"{self.name}: the code of bug {bug.says!r} sets no {self.name}")
        return ns[self.name]

    def _run(self, value: Any, tier: str, only: str | None) -> str:
        return self._judge(value, tier)

    def question_for(self, student: str | None = None) -> quiz.Question:
        """The question as ``student`` is asked it: ``student`` is the grader's record of who
        submitted (its variant, or the original numbers when variants are off:
        :func:`cnnlab.quiz.graded_student`); None: the original numbers."""
        return quiz.get(self.number, student=quiz.graded_student(student) if student is not None else None)

    def confirmation(self, tier: str, *, only: str | None = None, student: str | None = None) -> Confirmation:
        """The grader's verifier reads the value the student's answer cell binds to ``answer_qN``
        (in a fresh worker) and judges it here, against ``student``'s question (:meth:`question_for`),
        with the check's own rules (any answer form :func:`cnnlab.quiz.parse_answer` reads)."""
        question = self.question_for(student)

        def judge(value: Any, case: Case) -> str | None:
            try:
                self._judge(value, tier, question)
            except Problem as p:
                return p.message.split("\n", 1)[0]
            return None

        return Confirmation(cases=(Case(label="the answer"),), judge=judge, value=True, **self.policy(tier))

    def _judge(self, value: Any, tier: str, question: quiz.Question | None = None) -> str:
        q = self.question if question is None else question
        if value is None or value is Ellipsis:
            raise Problem(f"{self.title}: not answered yet: set {self.name} to {q.answer_format()}")
        if callable(value):
            raise Problem(f"{self.title}: {self.name} is a function; set it to your answer, {q.answer_format()}")
        try:
            got = quiz.parse_answer(q, value)
        except ValueError as err:
            raise Problem(f"{self.title}: cannot read your answer {value!r} ({type(value).__name__}); "
                          f"write {q.answer_format()}", bug="cannot read") from None
        if got == q.answer:
            return "correct" + (f". {q.explanation}" if tier == "public" else "")
        slip = quiz.slip_for(q, got)
        lines = [f"{self.title}: not quite" + (" (hidden check)" if tier == "hidden" else "")]
        if slip:
            lines.append(f"  Likely slip: {slip}")
        if tier == "public":
            lines.append(f"  Hint: {q.hint}")
        raise Problem("\n".join(lines), bug=slip)


class QuizNotebook(Notebook):
    """The quiz's records; its summary counts the right answers among the ``answer_qN`` variables."""

    def _summary(self, namespace: Mapping[str, Any]) -> list[Outcome]:
        outcomes, rows = [], []
        for ex in self.exercises.values():
            value = namespace.get(ex.name)
            outcome = ex.run(value, "public")
            outcomes.append(outcome)
            state = "right" if outcome.passed else ("not answered" if value is None else "not quite")
            rows.append((ex.number, state))
        done = sum(o.passed for o in outcomes)
        head = f"{self.assignment}: {done} of {len(outcomes)} answers right"
        def mark(state: str) -> str:
            return {"right": "\u2714", "not quite": "\u2718"}.get(state, "\u00b7")
        line = "  ".join(f"{mark(s)} Q{n}" for n, s in rows)
        wrong = [n for n, s in rows if s == "not quite"]
        todo = [n for n, s in rows if s == "not answered"]
        text = [head, line]
        if wrong:
            text.append("not quite yet: " + ", ".join(f"Q{n}" for n in wrong))
        if todo:
            text.append("not answered: " + ", ".join(f"Q{n}" for n in todo))
        message = "\n".join(text)
        cells = "".join(f"<span style='margin-right:10px;color:{'#2e7d32' if s == 'right' else '#c62828' if s == 'not quite' else '#777'}'>"
                        f"{mark(s)} Q{n}</span>" for n, s in rows)
        show(message, f'<div class="cnnlab-summary"><b>{html.escape(head)}</b><br>{cells}</div>')
        return outcomes


def answer_key(student_id: str | None) -> dict[str, object]:
    """``{"answer_q1": answer, ...}`` for ``student_id``'s variant (see ``cnnlab.quiz.answer_key``)."""
    return quiz.answer_key(student_id, NOTEBOOK.assignment)


NOTEBOOK = QuizNotebook("08_quiz")
check = NOTEBOOK.check
summary = NOTEBOOK.summary

for _q in quiz.QUESTIONS:
    NOTEBOOK.add(QuizAnswer(_q))

del _q
