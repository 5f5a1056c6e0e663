"""The feedback service's one queue: which submissions to grade next, fairly.

Pure bookkeeping, no I/O (the service scans the exchange and grades; this decides):

- only the **latest** pending submission of a (student, assignment) is graded; earlier pending
  ones are ``superseded`` (a student who submits 50 times in a minute costs one grading);
- at most **one submission per student per batch**, students taken **round-robin** (the ones
  served longest ago first, then by submission time): a busy student cannot starve the class;
- an assignment's **attempt cap** (graded attempts per student) turns later submissions into
  ``capped``: they get a notice instead of a grade, and the instructor grades them after the
  deadline as usual;
- every submission is decided once (its inbound folder name is remembered).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.utils import parse_utc

GRADED, SUPERSEDED, CAPPED, FAILED, REJECTED = "graded", "superseded", "capped", "failed", "rejected"


@dataclass(frozen=True)
class Submission:
    """One submission folder in nbgrader's inbound: ``<student>+<assignment>+<timestamp>+<random>``."""

    name: str
    student: str
    assignment: str
    timestamp: dt.datetime
    path: Path

    @property
    def key(self) -> tuple[str, str]:
        return self.student, self.assignment


def parse_name(name: str, path: Path | None = None) -> Submission | None:
    """The submission an inbound folder name describes, or None for a name nbgrader did not make."""
    parts = name.rsplit("+", 3)
    if len(parts) != 4 or not all(parts[:3]):
        return None
    student, assignment, stamp, _ = parts
    try:
        when = parse_utc(stamp)
    except Exception:  # noqa: BLE001 - dateutil raises several kinds
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return Submission(name, student, assignment, when, Path(path) if path else Path(name))


@dataclass
class Setting:
    """Feedback on submit for one assignment: on or off, and the cap on graded attempts (0: none)."""

    enabled: bool = False
    max_attempts: int = 0


@dataclass
class Decision:
    grade: list[Submission] = field(default_factory=list)
    superseded: list[Submission] = field(default_factory=list)
    capped: list[Submission] = field(default_factory=list)


@dataclass
class FairQueue:
    """The state the decisions depend on (saved by the service between polls)."""

    handled: dict[str, str] = field(default_factory=dict)          # inbound name -> outcome
    attempts: dict[str, int] = field(default_factory=dict)         # "student/assignment" -> graded
    served: dict[str, int] = field(default_factory=dict)           # student -> turn last served
    turn: int = 0

    def pick(self, pending: list[Submission], settings: dict[str, Setting], batch: int) -> Decision:
        """Decide about ``pending`` (complete submissions of the exchange, any order): what to grade
        now (at most ``batch``, one per student), what is superseded, what is over its cap.
        Submissions of assignments that are off, and those already decided, are left alone."""
        out = Decision()
        latest: dict[tuple[str, str], Submission] = {}
        for sub in sorted(pending, key=lambda s: (s.timestamp, s.name)):
            setting = settings.get(sub.assignment)
            if sub.name in self.handled or setting is None or not setting.enabled:
                continue
            prev = latest.get(sub.key)
            if prev is not None:
                out.superseded.append(prev)
            latest[sub.key] = sub
        candidates = []
        for key, sub in latest.items():
            cap = settings[sub.assignment].max_attempts
            if cap and self.attempts.get("/".join(key), 0) >= cap:
                out.capped.append(sub)
            else:
                candidates.append(sub)
        candidates.sort(key=lambda s: (self.served.get(s.student, -1), s.timestamp, s.name))
        chosen_students: set[str] = set()
        for sub in candidates:
            if len(out.grade) >= batch:
                break
            if sub.student in chosen_students:
                continue
            chosen_students.add(sub.student)
            out.grade.append(sub)
        if out.grade:
            self.turn += 1                       # one batch, one turn: its students wait the same
            for sub in out.grade:
                self.served[sub.student] = self.turn
        for sub in out.superseded:
            self.handled[sub.name] = SUPERSEDED
        for sub in out.capped:
            self.handled[sub.name] = CAPPED
        return out

    def done(self, sub: Submission, outcome: str) -> None:
        """Record what became of a submission picked for grading."""
        self.handled[sub.name] = outcome
        if outcome == GRADED:
            k = "/".join(sub.key)
            self.attempts[k] = self.attempts.get(k, 0) + 1

    def to_json(self) -> dict:
        return {"handled": self.handled, "attempts": self.attempts, "served": self.served, "turn": self.turn}

    @classmethod
    def from_json(cls, data: dict) -> "FairQueue":
        return cls(dict(data.get("handled", {})), dict(data.get("attempts", {})),
                   dict(data.get("served", {})), int(data.get("turn", 0)))
