"""The self-check quiz as ipywidgets, with immediate right / wrong feedback (notebook 08 and self-learners).

``quiz_widget()`` shows every question of ``cnnlab.quiz`` (or the ones asked for) with, for each one,

- an ipywidgets ``Text`` box for the answer,
- a ``Button`` whose description is "Check",
- a feedback ``HTML`` whose text starts with "✔ Correct" or "✘ Not quite", followed by one line: how
  the answer is computed when it is right; the likely slip and a hint, never the answer, when it is
  wrong; the expected form when the answer cannot be read;

and a score line at the top. The questions carry this kernel's student's numbers (``cnnlab.quiz``'s
variants), the same ones as notebook 08's cells and ``cnnlab.quiz.check``. The widget is practice
only: what is typed into it is not saved with the notebook and does not count toward a grade (the
score line says so); notebook 08 grades its answer cells. Under ``NBGRADER_EXECUTION`` (grading),
with ``CNNLAB_STATIC`` set, or when no front end is attached, it builds no widget: it prints one
static summary of the questions and returns None, so grading never waits on a widget.

The logic is testable without a browser: :func:`feedback` is a pure function, and :func:`build`
returns the container and the per-question :class:`QuizItem` (whose ``button.click()`` runs the check).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from cnnlab import quiz
from cnnlab.widgets import interactive_available

__all__ = ["quiz_widget", "feedback", "build", "QuizItem", "static_summary", "CORRECT", "NOT_QUITE", "PRACTICE"]

CORRECT = "\u2714 Correct"
NOT_QUITE = "\u2718 Not quite"
_COLOURS = {True: "#2e7d32", False: "#c62828"}
PRACTICE = ("practice only: answers typed here are not saved and do not count toward your grade; "
            "only the answer cells are graded")


def feedback(question: quiz.Question | int, response: object) -> tuple[bool, str]:
    """Return (right, one line of feedback) for a response; the line never contains the answer when wrong.

    "✔ Correct. <how it is computed>"; "✘ Not quite. [Likely slip: ...] Hint: ..."; for an empty or
    unreadable response "✘ Not quite: <the form to use>".
    """
    q = quiz.get(question) if isinstance(question, int) else question
    if response is None or (isinstance(response, str) and not response.strip()):
        return False, f"{NOT_QUITE}: type your answer first, as {q.answer_format()}."
    try:
        value = quiz.parse_answer(q, response)
    except ValueError:
        return False, f"{NOT_QUITE}: cannot read {response!r}; write {q.answer_format()}."
    if value == q.answer:
        return True, f"{CORRECT}. {q.explanation}"
    slip = quiz.slip_for(q, value)
    return False, f"{NOT_QUITE}." + (f" Likely slip: {slip}." if slip else "") + f" Hint: {q.hint}"


def _selected(questions: Iterable[quiz.Question | int] | None) -> list[quiz.Question]:
    if questions is None:
        return quiz.questions()
    return [quiz.get(q) if isinstance(q, int) else q for q in questions]


def _tag(q: quiz.Question) -> str:
    return {"HWC": "H x W x C", "NCHW": "(N, C, H, W)"}.get(q.layout, "")


@dataclass
class QuizItem:
    """One question's widgets: ``text`` (Text), ``button`` (Button "Check"), ``feedback`` (HTML).

    ``right`` is None before the first check, then whether the last checked answer was right;
    ``line`` is the last feedback line as plain text.
    """

    question: quiz.Question
    text: Any
    button: Any
    feedback: Any
    right: bool | None = None
    line: str = ""


def build(questions: Iterable[quiz.Question | int] | None = None) -> tuple[Any, list[QuizItem]]:
    """Build the quiz's widgets (needs ipywidgets, not a front end); return (container, items)."""
    import ipywidgets as W

    chosen = _selected(questions)
    score = W.HTML(value="")
    items: list[QuizItem] = []

    def update_score() -> None:
        right = sum(bool(it.right) for it in items)
        tried = sum(it.right is not None for it in items)
        score.value = (f"<b>Self-check quiz: {right} of {len(items)} right</b> "
                       f"({tried} checked; answers are never shown, only hints)<br><small>{html.escape(PRACTICE)}.</small>")

    rows = []
    for q in chosen:
        tag = f" <i>[{_tag(q)}]</i>" if _tag(q) else ""
        title = W.HTML(value=f"<b>Q{q.number}.</b> {html.escape(q.prompt())}{tag}"
                             f"<br><small>Answer with {html.escape(q.answer_format())}.</small>",
                       layout=W.Layout(width="100%"))
        text = W.Text(value="", placeholder="your answer", description=f"Q{q.number}:",
                      layout=W.Layout(width="320px"))
        button = W.Button(description="Check", tooltip=f"check your answer to question {q.number}",
                          layout=W.Layout(width="90px"))
        out = W.HTML(value="")
        item = QuizItem(q, text, button, out)

        def on_click(_button: Any, item: QuizItem = item) -> None:
            right, line = feedback(item.question, item.text.value)
            item.right, item.line = right, line
            item.feedback.value = f'<span style="color:{_COLOURS[right]}">{html.escape(line)}</span>'
            update_score()

        button.on_click(on_click)
        items.append(item)
        rows.append(W.VBox([title, W.HBox([text, button]), out],
                           layout=W.Layout(margin="0 0 12px 0", border_bottom="1px solid #ddd")))
    update_score()
    summary = static_summary(chosen)

    class QuizBox(W.VBox):
        """The quiz's container; its plain-text form (what a notebook run without a browser keeps) is
        the static summary, not the widget tree."""

        def __repr__(self) -> str:
            return summary

    return QuizBox([score, *rows]), items


def static_summary(questions: Sequence[quiz.Question]) -> str:
    """The text shown instead of the widget: one line per question, no answers."""
    lines = [f"Self-check quiz: {len(questions)} questions, an answer box and a Check button each (live notebooks only).",
             f"It is {PRACTICE}.",
             "Without a browser: answer in the cells above, or call cnnlab.quiz.check(n, answer)."]
    for q in questions:
        text = q.text if len(q.text) <= 96 else q.text[:93] + "..."
        tag = f" [{_tag(q)}]" if _tag(q) else ""
        lines.append(f"  Q{q.number}{tag}: {text}")
    return "\n".join(lines)


def quiz_widget(questions: Iterable[quiz.Question | int] | None = None):
    """Show the quiz with an answer box, a "Check" button and instant feedback for each question.

    Args:
        questions: question numbers or ``quiz.Question`` objects; None (default) for all of them.

    Returns:
        The ipywidgets container when a front end is attached, else None (after printing a static
        summary; no widget is built under ``NBGRADER_EXECUTION``).
    """
    chosen = _selected(questions)
    if not interactive_available():
        print(static_summary(chosen))
        return None
    container, _ = build(chosen)
    return container
