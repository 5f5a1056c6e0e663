"""A check's diagnosis as data: what the likely bug is, what to try, where it showed.

A failing check names a likely bug only when the student's output equals what that bug's code
gives (``cnnlab.grading.exercise``). The diagnosis travels as a :class:`Diagnosis` from the
exercise record to every place that shows it, instead of being flattened into "Likely bug:" text
and parsed back:

- the red box and the exception a check raises under nbgrader render it (``lines``) after the
  rest of the message, which is shortened around it, never through it;
- under nbgrader the check also puts a display output with its own MIME type (:data:`MIME`) into
  the cell before it raises: the graded notebook then carries the :class:`Report` (exercise,
  tier, message, detail, diagnosis) as JSON, and the instructor tool (validate, export to
  Gradescope, feedback) reads it with :func:`report_in` rather than parsing the message.

Only the standard library is imported here, so the instructor tool can read reports without
NumPy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["MIME", "Diagnosis", "Report", "report_in"]

#: the MIME type of the display output that carries a failing check's :class:`Report`
MIME = "application/vnd.cnnlab.check+json"


@dataclass(frozen=True)
class Diagnosis:
    """The likely bug a failing check found.

    Args:
        says: the bug table's phrase ("the biases are missing: one bias per output unit").
        fix: what to try, or "".
        exercise: the exercise whose bug it is: the checked one, or a helper of the student's
            that the checked function calls (a cascade: ``spatial_batchnorm_forward`` failing
            because the student's ``batchnorm_forward`` does).
        case: where it showed ("case 2 of 5: stride 2" / "hidden case 1 of 3: a rectangular kernel").
    """

    says: str
    fix: str = ""
    exercise: str = ""
    case: str = ""

    def lines(self, indent: str = "  ") -> list[str]:
        """The diagnosis as the lines a message ends with: "Likely bug: ...", then "Try: ..."."""
        out = [f"{indent}Likely bug: {self.says}"]
        if self.fix:
            out.append(f"{indent}Try: {self.fix}")
        return out

    def text(self) -> str:
        """The diagnosis on its own (what an export puts first)."""
        return "\n".join(self.lines(indent=""))

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Diagnosis | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("says"), str):
            return None
        return cls(**{k: str(data.get(k) or "") for k in ("says", "fix", "exercise", "case")})


@dataclass(frozen=True)
class Report:
    """What one failing check tells the student, as data.

    Args:
        exercise, tier: the check ("corr2d", "public").
        message: the whole message as the red box and the exception show it (at most 15 lines,
            the diagnosis last).
        detail: the message without the diagnosis lines (what differs, where).
        diagnosis: the likely bug, or None when the check names none.
        passed: False for a failing check (reports are only emitted for those).
    """

    exercise: str
    tier: str
    message: str
    detail: str
    diagnosis: Diagnosis | None = None
    passed: bool = False
    version: int = field(default=1)

    def diagnosis_first(self, limit: int = 2000) -> str:
        """The message for an instructor's export: the diagnosis first, then the detail; cut to
        ``limit`` characters only after the diagnosis."""
        text = self.detail.strip()
        if self.diagnosis is not None:
            text = self.diagnosis.text() + "\n" + text
        return text if len(text) <= limit else text[:limit - 4] + " ..."

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["diagnosis"] = self.diagnosis.to_json() if self.diagnosis else None
        return data

    @classmethod
    def from_json(cls, data: Any) -> Report | None:
        if not isinstance(data, Mapping) or not isinstance(data.get("message"), str):
            return None
        return cls(exercise=str(data.get("exercise", "")), tier=str(data.get("tier", "")),
                   message=data["message"], detail=str(data.get("detail", data["message"])),
                   diagnosis=Diagnosis.from_json(data.get("diagnosis")), passed=bool(data.get("passed", False)),
                   version=int(data.get("version", 1) or 1))

    def bundle(self) -> dict[str, Any]:
        """The display bundle that carries this report in a notebook (no text form: the
        exception that follows shows the message)."""
        return {MIME: self.to_json()}


def report_in(outputs: Iterable[Mapping[str, Any]]) -> Report | None:
    """The last check report among a cell's outputs (nbformat dicts), or None."""
    found = None
    for out in outputs or ():
        data = out.get("data") if isinstance(out, Mapping) else None
        if isinstance(data, Mapping) and MIME in data:
            payload = data[MIME]
            if isinstance(payload, str):   # some writers store JSON MIME types as text
                import json
                try:
                    payload = json.loads(payload)
                except ValueError:
                    continue
            found = Report.from_json(payload) or found
    return found
