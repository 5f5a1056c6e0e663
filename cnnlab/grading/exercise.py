"""One record per exercise, and the one way a notebook checks a student's function.

An :class:`Exercise` holds everything about one exercise: the reference it is compared with, its
public and hidden cases, and its table of known bugs (:class:`Bug`), each with the wrong code that
makes it and the phrase the feedback must contain.  The check, the sample class
(``autograder.sample_class``) and the tests all read that one record.

A notebook's checks module (``cnnlab/checks/nbNN.py``) collects its records in a
:class:`Notebook`; its test cells call ``nbNN.check("corr2d", corr2d)`` (public tier) and
``nbNN.check("corr2d", corr2d, tier="hidden")``, and its last cell ``nbNN.summary(globals())``.

How a check behaves (as Otter-Grader's ``grader.check`` does):

- outside nbgrader, a failing check *shows* a red box (exercise, case, what differs, the likely
  bug when the output matches a known bug's output, what to try) and returns, so Run All goes on;
  a passing one shows one green line;
- under nbgrader (``NBGRADER_EXECUTION`` is set by validate and autograde; a grading kernel fixes
  the mode when it starts, :func:`fix_grading_mode`, so the student's code cannot switch it off)
  a failing check raises :class:`CheckFailed`, an AssertionError with the same short message, so
  the cell scores zero;
  the course's own frames are hidden from the traceback (``__tracebackhide__``).

Messages are right or they say less: a bug is named only when the student's output equals that
bug's output on the case (every compared output, not only the first that differs; where several
bugs fit the case, the one that also fits the tier's other cases, or none); otherwise the message
says where and by how much the output differs.

The diagnosis is data, a :class:`~cnnlab.grading.diagnosis.Diagnosis` carried by the
:class:`Problem`, the :class:`Outcome` and, under nbgrader, a display output of its own MIME type
(``diagnosis.MIME``) that the instructor tool reads; messages are shortened around it, never through
it (``_compose``).
Hidden-tier messages say which property failed and on what kind of case, never the expected value
or array, nor the hidden inputs' values.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import html
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .closeness import assert_close, describe, matches
from .diagnosis import Diagnosis, Report
from .guard import DEFAULT_FORBID, run_guarded

__all__ = ["Bug", "Case", "CheckFailed", "Confirmation", "Diagnosis", "Exercise", "Notebook", "Outcome", "Problem",
           "Raised", "Report", "TIERS", "fix_grading_mode", "under_nbgrader"]

TIERS: tuple[str, ...] = ("public", "hidden")
MAX_LINES = 15  # a failing check's whole output, first line included
_MARK = {True: "\u2714", False: "\u2718"}


_GRADING: bool | None = None   # fixed once, when a grading kernel starts (fix_grading_mode)
_CLASSES: dict[type, dict[str, Any]] = {}   # the check classes' attributes, as they were then


def fix_grading_mode(grading: bool | None = None) -> bool:
    """Fix, for the life of this process, whether a failing check raises (grading) or shows a box.

    The grading kernel calls it when it starts, before any of the student's code runs (default:
    whether ``NBGRADER_EXECUTION`` is set then); a later call, or a change of the environment,
    changes nothing. It also records the check classes' attributes, which every check puts back
    before it runs (a class patched by a student's cell checks as written). In-process measures
    serve honest mistakes only: the points are confirmed outside by the grader's verifier.
    """
    global _GRADING
    if _GRADING is None:
        _GRADING = bool(os.environ.get("NBGRADER_EXECUTION")) if grading is None else bool(grading)
        for cls in (Exercise, *_subclasses(Exercise), Notebook, *_subclasses(Notebook)):
            _CLASSES[cls] = dict(vars(cls))
    return _GRADING


def under_nbgrader() -> bool:
    """Return True inside a grading kernel (nbgrader's validate or autograde): as fixed when the
    kernel started (:func:`fix_grading_mode`), else whether ``NBGRADER_EXECUTION`` is set."""
    if _GRADING is not None:
        return _GRADING
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in type.__subclasses__(cls):
        out += [sub, *_subclasses(sub)]
    return out


def _restore_classes() -> None:
    """Put back the check classes' attributes recorded by :func:`fix_grading_mode`."""
    for cls, attrs in _CLASSES.items():
        for name, value in attrs.items():
            if name in ("__dict__", "__weakref__"):
                continue
            if vars(cls).get(name, _ABSENT) is not value:
                type.__setattr__(cls, name, value)
        for name in [n for n in vars(cls) if n not in attrs]:
            type.__delattr__(cls, name)


_ABSENT = object()


class CheckFailed(AssertionError):
    """A check failed: the message is the whole feedback (under nbgrader it scores the cell zero).

    ``report`` holds the same feedback as data (:class:`Report`: message, detail, diagnosis).
    """

    def __init__(self, message: str, report: Report | None = None) -> None:
        super().__init__(message)
        self.report = report


class Problem(Exception):
    """Raised by an exercise's own code (``extra``, ``custom``) to fail the check with ``message``.

    ``diagnosis`` is the likely bug when the property that failed identifies it: it is shown after
    the message (never inside it) and travels as data. ``bug`` is the known bug's phrase (kept for
    checks that write their own hint into the message; with a ``diagnosis`` it is its ``says``).
    """

    def __init__(self, message: str, bug: str | None = None, fix: str = "", *,
                 diagnosis: Diagnosis | None = None, candidates: Sequence[Bug] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.diagnosis = diagnosis
        self.bug = diagnosis.says if diagnosis is not None else bug
        self.fix = diagnosis.fix if diagnosis is not None else fix
        self.candidates = tuple(candidates)   # several bugs fit this case: the check narrows them down

    @classmethod
    def named(cls, message: str, bug: Bug | str, fix: str = "", exercise: str = "") -> Problem:
        """A Problem whose likely bug is ``bug`` (a bug-table entry, or a phrase and ``fix``)."""
        if isinstance(bug, Bug):
            says, fix = bug.says, bug.fix
        else:
            says = bug
        return cls(message, diagnosis=Diagnosis(says, fix, exercise))


@dataclass(frozen=True)
class Case:
    """One call of the student's function.

    Args:
        args, kwargs: the arguments (plain NumPy arrays, numbers, tuples); copied before each call.
        label: the kind of case, shown in messages of both tiers ("a strided stack, pad 2").
        expect: optional ``expect(*args, **kwargs)`` giving the expected result instead of the
            exercise's reference (central differences for a gradient, say).
        rtol, atol: this case's tolerances, when not the exercise's.
    """

    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""
    expect: Callable[..., Any] | None = None
    rtol: float | None = None
    atol: float | None = None


@dataclass(frozen=True)
class Bug:
    """A mistake students really make, as the exercise's bug table records it.

    Args:
        says: the diagnosis; the feedback for this bug must contain it ("the biases are missing").
        code: a wrong answer cell (the whole cell's code) that makes exactly this bug.  The tests
            and the sample class run it as a student's answer, and the check runs it on a failing
            case: the bug is named only when the student's output equals what this code returns.
            It may use ``np`` and the exercise's helpers (``uses``, bound to their references).
        fix: what to try, shown after the diagnosis.
        loses: the other exercises whose checks fail too because they call this one.
        by_output: False for a bug that another part of the check recognises (a guard message,
            a dtype test, a property in ``extra``) rather than by comparing outputs.
        outputs: where the exercise's test cells check one output each (``only=``, with
            ``grade_ids`` given per output), the outputs this bug gets wrong ("dx"); empty: all.
    """

    says: str
    code: str
    fix: str = ""
    loses: tuple[str, ...] = ()
    by_output: bool = True
    outputs: tuple[str, ...] = ()


@dataclass
class Outcome:
    """The result of running one tier of a check: ``passed``, and the short ``message``.

    ``detail`` is the message without its diagnosis; ``diagnosis`` the likely bug as data (None
    when the check names none).
    """

    exercise: str
    tier: str
    passed: bool
    message: str
    bug: str | None = None
    diagnosis: Diagnosis | None = None
    detail: str = ""

    def _repr_html_(self) -> str:
        return _html(self.message, self.passed)

    def __repr__(self) -> str:
        return self.message

    def report(self) -> Report:
        """This outcome as a :class:`Report` (what a graded notebook carries)."""
        return Report(self.exercise, self.tier, self.message, self.detail or self.message, self.diagnosis,
                      passed=self.passed)


@dataclass(frozen=True)
class Raised:
    """What the student's function raised, as the verifier's worker reports it (judged outside)."""

    type: str            # "builtins.ValueError"
    message: str = ""


@dataclass(frozen=True)
class Confirmation:
    """How the grader's trusted verifier confirms one tier of an exercise (:meth:`Exercise.confirmation`).

    ``cases``: the student's function is called on each in a fresh worker (``value``: the answer is
    the value the student's cells bind to the exercise's name, read once, as the quiz's); ``judge(result,
    case)`` runs outside, in the grader's process, and returns None when the result is right, else why
    (``result`` is a :class:`Raised` when the call raised and ``raises`` says that is an answer);
    ``helpers``: names in the student's namespace -> the course function (``module:qualname``) put
    there during the call; ``forbid``, ``refuse``, ``functions``, ``allow``: what may not run in
    the call (:meth:`Exercise.policy`); ``seconds``: the time one call may take, when more than a
    cell's limit.
    """

    cases: tuple[Case, ...]
    judge: Callable[[Any, Case], str | None]
    value: bool = False
    raises: bool = False
    helpers: Mapping[str, str] = field(default_factory=dict)
    forbid: tuple[str, ...] = ()
    refuse: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    seconds: int | None = None


def _dotted(fn: Any) -> str:
    fn = getattr(fn, "__func__", fn)
    return f"{fn.__module__}:{fn.__qualname__}"


def _html(text: str, ok: bool) -> str:
    colour, back, cls = ("#2e7d32", "#edf7ee", "cnnlab-pass") if ok else ("#c62828", "#fdecea", "cnnlab-fail")
    return (f'<div class="cnnlab-check {cls}" style="border-left:4px solid {colour};background:{back};'
            f'padding:4px 10px;margin:2px 0;font-family:var(--jp-code-font-family,monospace);'
            f'font-size:var(--jp-code-font-size,13px);white-space:pre-wrap">{html.escape(text)}</div>')


def _shorten(message: str, limit: int = MAX_LINES) -> str:
    """Cut a message to ``limit`` lines, keeping its diagnosis ("Likely bug", "Try") at the end.

    For messages whose hint is written into the text (the quiz's checks); the course's own checks
    carry their diagnosis as data and are shortened by :func:`_compose`.
    """
    lines = message.rstrip().split("\n")
    if len(lines) <= limit:
        return "\n".join(lines)
    key = [ln for ln in lines[1:] if ln.lstrip().startswith(("Likely bug:", "Try:"))][-2:]
    body = [ln for ln in lines if ln not in key]
    return "\n".join(body[: limit - 1 - len(key)] + ["  (... shortened)"] + key)


def _compose(text: str, diagnosis: Diagnosis | None, limit: int = MAX_LINES) -> tuple[str, str]:
    """Return (message, detail): ``text`` cut so that the whole message, the diagnosis's lines
    included, fits ``limit`` lines; the diagnosis always comes whole, last."""
    if diagnosis is None:
        detail = _shorten(text, limit)
        return detail, detail
    tail = diagnosis.lines()
    lines = text.rstrip().split("\n")
    room = limit - len(tail)
    if len(lines) > room:
        lines = lines[:room - 1] + ["  (... shortened)"]
    detail = "\n".join(lines)
    return "\n".join([detail, *tail]), detail


def _summary(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    def one(a: Any) -> str:
        if isinstance(a, np.ndarray):
            return f"shape {a.shape}" if a.ndim else repr(a.item())
        if isinstance(a, bool | int | float | str | tuple) and len(repr(a)) <= 20:
            return repr(a)
        return type(a).__name__
    parts = [one(a) for a in args] + [f"{k}={one(v)}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)



_MEMO_SIZE = 512   # expected values remembered per exercise


def _content_key(value: Any) -> str | None:
    """A digest of plain data (numbers, strings, None, arrays of numbers, and tuples, lists and
    dicts of them); None for anything else (such cases are recomputed every time)."""
    h = hashlib.sha256()

    def walk(v: Any) -> bool:
        if v is None or isinstance(v, (bool, int, float, complex, str, np.generic)):
            h.update(f"{type(v).__name__}:{v!r};".encode())
            return True
        if isinstance(v, np.ndarray):
            if v.dtype.hasobject:
                return False
            h.update(f"nd:{v.dtype.str}:{v.shape};".encode())
            h.update(np.ascontiguousarray(v).tobytes())
            return True
        if isinstance(v, (tuple, list)):
            h.update(f"{type(v).__name__}:{len(v)};".encode())
            return all(walk(x) for x in v)
        if isinstance(v, Mapping):
            if not all(isinstance(k, str) for k in v):
                return False
            h.update(f"map:{len(v)};".encode())
            return all(walk(k) and walk(v[k]) for k in sorted(v))
        return False

    return h.hexdigest() if walk(value) else None

class Exercise:
    """One exercise's record: reference, cases, bug table; ``run`` checks a student's function.

    Args:
        name: the student function's name, also its answer cell's grade_id ("corr2d").
        number: the exercise's number in its notebook ("Exercise 2").
        reference: the correct function, called with each case's arguments.
        public, hidden: zero-argument functions returning each tier's list of :class:`Case`
            (built only when that tier runs).
        bugs: the bug table.
        outputs: the names of what the function returns: "out" for one value, ("out", "cache")
            or ("dx", "dw", "db") for a tuple (a list of the same values is accepted).
        compare: which outputs are compared (default: all but "cache").
        kind: "array" (assert_close), "int" (exact whole number) or "float" (one number).
        uses: names of the student's other functions this one calls; when it fails and one of
            them fails its own check, the message says so and names it.
        extra: ``extra(fn, tier)`` checks properties beyond the cases' values (vectorised,
            running statistics, ...); it raises :class:`Problem`.
        custom: ``custom(fn, tier) -> str`` replaces the case loop for checks that are not a
            call-and-compare (a training loop); it raises :class:`Problem` or returns the detail
            of the success line.
        forbid, allow, guard_mode: the integrity guard's settings (see ``grading.guarded``).
        grade_ids: the test cells that check this exercise (default ``test_<name>_public`` and
            ``test_<name>_hidden``); a mapping ``{output: cells}`` where each cell checks one
            output (``only=``), so that a bug's ``outputs`` say which cells it loses.
        rtol, atol: tolerances.
        verifiable: False where the grader's trusted verifier cannot confirm the exercise: its
            test cells then lose the points nbgrader gave (the verifier fails closed). A record
            says how it is confirmed with :meth:`confirmation` (and :meth:`helpers`).
    """

    def __init__(
        self,
        name: str,
        number: int,
        reference: Callable[..., Any] | None,
        public: Callable[[], Sequence[Case]] | None = None,
        hidden: Callable[[], Sequence[Case]] | None = None,
        *,
        bugs: Sequence[Bug] = (),
        outputs: str | Sequence[str] = "out",
        compare: Sequence[str] | None = None,
        kind: str = "array",
        uses: Sequence[str] = (),
        extra: Callable[[Callable[..., Any], str], None] | None = None,
        custom: Callable[[Callable[..., Any], str], str] | None = None,
        forbid: Sequence[str] = DEFAULT_FORBID,
        allow: Sequence[Any] = (),
        guard_mode: str = "fast",
        grade_ids: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
        rtol: float = 1e-6,
        atol: float = 1e-9,
        verifiable: bool = True,
    ) -> None:
        if kind not in ("array", "int", "float"):
            raise ValueError(f"{name}: kind must be 'array', 'int' or 'float', got {kind!r}")
        if custom is None and (reference is None or public is None or hidden is None):
            raise ValueError(f"{name}: give reference, public and hidden cases, or a custom check")
        self.name = name
        self.number = number
        self.reference = reference
        self._cases = {"public": public, "hidden": hidden}
        self.bugs = tuple(bugs)
        self.single = isinstance(outputs, str)
        self.outputs: tuple[str, ...] = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        self.compare = tuple(compare) if compare is not None else tuple(o for o in self.outputs if o != "cache")
        unknown = set(self.compare) - set(self.outputs)
        if unknown:
            raise ValueError(f"{name}: compare names {sorted(unknown)} are not among outputs {self.outputs}")
        self.kind = kind
        self.uses = tuple(uses)
        self.extra = extra
        self.custom = custom
        self.forbid = tuple(forbid)
        self.allow = tuple(allow)
        self.guard_mode = guard_mode
        self.output_cells: dict[str, tuple[str, ...]] = {}
        if isinstance(grade_ids, Mapping):
            self.output_cells = {o: tuple(cells) for o, cells in grade_ids.items()}
            if set(self.output_cells) - set(self.compare):
                raise ValueError(f"{name}: grade_ids names outputs {sorted(set(self.output_cells) - set(self.compare))} "
                                 f"that are not compared")
            grade_ids = [c for cells in self.output_cells.values() for c in cells]
        self.grade_ids = tuple(grade_ids) if grade_ids else (f"test_{name}_public", f"test_{name}_hidden")
        for bug in self.bugs:
            if set(bug.outputs) - set(self.compare):
                raise ValueError(f"{name}: bug {bug.says!r} names outputs {bug.outputs} not among {self.compare}")
        self.rtol = rtol
        self.atol = atol
        self.verifiable = verifiable
        self.notebook: Notebook | None = None
        self._bug_fns: dict[str, Callable[..., Any]] = {}
        self._memo: dict[tuple, Any] = {}   # expected values by case content (see _expected)

    # ------------------------------------------------------------------ public API
    @property
    def title(self) -> str:
        """ "corr2d (Exercise 2)"."""
        return f"{self.name} (Exercise {self.number})"

    def cases(self, tier: str) -> list[Case]:
        """Return the list of cases of ``tier`` ("public" or "hidden"); empty for custom checks."""
        _tier(tier)
        make = self._cases[tier]
        return [] if make is None else list(make())

    def run(self, fn: Any, tier: str = "public", *, only: str | None = None, blame: bool = True) -> Outcome:
        """Check ``fn`` on the cases of ``tier``; return an :class:`Outcome` (nothing is shown).

        ``only`` restricts the comparison to one of the outputs (a test cell per gradient).
        """
        _tier(tier)
        if only is not None and only not in self.compare:
            raise ValueError(f"{self.name}: only={only!r} is not one of {self.compare}")
        try:
            detail = self._run(fn, tier, only)
        except Problem as p:
            text, diagnosis = p.message, p.diagnosis
            if blame:
                text, diagnosis = self._blame(fn, tier) or (text, diagnosis)
            if diagnosis is not None and not diagnosis.exercise:
                diagnosis = dataclasses.replace(diagnosis, exercise=self.name)
            message, shown = _compose(f"\u2718 {text}", diagnosis)
            return Outcome(self.name, tier, False, message, bug=diagnosis.says if diagnosis else p.bug,
                           diagnosis=diagnosis, detail=shown)
        what = f"{self.name}, {only}" if only else self.name
        message = f"\u2714 {what}: {detail} ({tier})"
        return Outcome(self.name, tier, True, message, detail=message)

    def check(self, fn: Any, tier: str = "public", *, only: str | None = None) -> None:
        """Run the check and show its outcome; under nbgrader, raise :class:`CheckFailed` on failure.

        Use :meth:`run` to get the :class:`Outcome` without showing it.
        """
        __tracebackhide__ = True
        grading = under_nbgrader()      # decided before the student's code runs
        outcome = self.run(fn, tier, only=only)
        if not outcome.passed and grading:
            _short_tracebacks()
            report = outcome.report()
            _publish(report)
            raise CheckFailed(outcome.message, report) from None
        _show(outcome)

    def verify(self, result: Any, case: Case, *, only: str | None = None) -> str | None:
        """Compare a result computed elsewhere (plain data) with the reference on ``case``.

        Returns None when they agree, else a short message; used by the grader's trusted verifier.
        ``only`` compares one output (for test cells that check one output each).  Custom checks
        cannot be verified this way and return None.
        """
        if self.custom is not None:
            return None
        if only is not None and only not in self.compare:
            raise ValueError(f"{self.name}: only={only!r} is not one of {self.compare}")
        try:
            self._compare(result, case, "hidden", only, caught=[])
        except Problem as p:
            return p.message
        return None

    # ------------------------------------------------------------------ what the grader's verifier needs
    def helpers(self) -> dict[str, Callable[..., Any]]:
        """The course's functions put in the student's namespace, under these names, while this
        exercise is checked (so that it is graded alone); none by default."""
        return {}

    def forbidden_references(self) -> tuple[Callable[..., Any], ...]:
        """The course's references that may not run inside this exercise's call although no
        forbidden group covers them: the ``ref_*`` functions and records' references defined in
        the checks modules of this notebook (``cnnlab.checks``), less the allowed and the helpers."""
        cached = self.__dict__.get("_forbidden_refs")
        if cached is not None:
            return cached
        records = list(self.notebook.exercises.values()) if self.notebook is not None else [self]
        found: dict[int, Callable[..., Any]] = {}
        modules = set()
        for ex in records:
            ref = getattr(ex, "reference", None)
            module = getattr(ref, "__module__", "") or ""
            if callable(ref) and module.startswith("cnnlab.checks."):
                found[id(ref)] = ref
                modules.add(module)
        for module in sorted(modules):
            for name, value in list(vars(sys.modules[module]).items()):
                if name.startswith("ref_") and callable(value) and getattr(value, "__module__", None) == module:
                    found[id(value)] = value
        keep = {id(f) for f in (*self.allow, *self.helpers().values())}
        cached = tuple(f for i, f in found.items() if i not in keep)
        self.__dict__["_forbidden_refs"] = cached
        return cached

    def policy(self, tier: str) -> dict[str, tuple[str, ...]]:
        """What may not run in a call of ``tier`` (what the in-kernel check forbids): guard groups,
        modules refused by ``extra`` (``probes.refuse_module``), functions, and what is allowed
        (dotted ``module:qualname`` names)."""
        refuses = getattr(self.extra, "refuses", None)
        refuse = (refuses,) if refuses and tier in getattr(self.extra, "tiers", TIERS) else ()
        allow = tuple(_dotted(f) for f in (*self.allow, *self.helpers().values()) if callable(f))
        return {"forbid": tuple(self.forbid), "refuse": refuse,
                "functions": tuple(_dotted(f) for f in self.forbidden_references()), "allow": allow}

    def confirmation(self, tier: str, *, only: str | None = None, student: str | None = None) -> Confirmation | None:
        """How the grader's trusted verifier confirms ``tier`` (and output ``only``) outside the
        kernel, for ``student`` (the grader's record of who submitted): the cases the student's
        function is called on in a fresh worker, and the judge of each result, run outside. None
        where this record cannot be confirmed that way: its test cells then lose their points.
        Records with a ``custom`` check override this."""
        if self.custom is not None:
            return None
        if only is not None and only not in self.compare:
            raise ValueError(f"{self.name}: only={only!r} is not one of {self.compare}")
        return Confirmation(cases=tuple(self.cases(tier)), judge=lambda result, case: self.verify(result, case, only=only),
                            helpers={k: _dotted(f) for k, f in self.helpers().items()}, **self.policy(tier))

    def cells_lost_by(self, bug: Bug) -> tuple[str, ...]:
        """The test cells of this exercise that ``bug`` loses: those of its ``outputs``, else all."""
        if not bug.outputs or not self.output_cells:
            return self.grade_ids
        return tuple(c for o in bug.outputs for c in self.output_cells.get(o, ()))

    def bug(self, says: str) -> Bug:
        """Return the bug-table entry whose ``says`` starts with ``says``."""
        for b in self.bugs:
            if b.says.startswith(says):
                return b
        raise KeyError(f"{self.name}: no bug starting with {says!r}")

    # ------------------------------------------------------------------ internals
    def _run(self, fn: Any, tier: str, only: str | None) -> str:
        if not callable(fn):
            raise Problem(f"{self.title}: expected your function, got {describe(fn)} "
                          "(run the cell that defines it first)")
        if self.custom is not None:
            detail = self.custom(fn, tier)
        else:
            cases = self.cases(tier)
            for i, case in enumerate(cases):
                self._one(fn, case, tier, i, len(cases), only)
            n = len(cases)
            detail = f"all {n} cases match" if n != 1 else "1 case matches"
        if self.extra is not None:
            extra_detail = self.extra(fn, tier)
            if extra_detail:
                detail = f"{detail}, {extra_detail}"
        return detail

    def _where(self, case: Case, tier: str, index: int, total: int) -> str:
        label = f": {case.label}" if case.label else ""
        if tier == "hidden":
            return f"hidden case {index + 1} of {total}{label}"
        return f"case {index + 1} of {total}{label}; inputs {_summary(case.args, case.kwargs)}"

    def _one(self, fn: Callable[..., Any], case: Case, tier: str, index: int, total: int,
             only: str | None) -> None:
        args, kwargs = copy.deepcopy(tuple(case.args)), copy.deepcopy(dict(case.kwargs))
        try:
            result, caught = run_guarded(fn, *args, exercise=self.name, allow=self.allow, forbid=self.forbid,
                                         guard_mode=self.guard_mode, forbid_functions=self.forbidden_references(),
                                         **kwargs)
        except AssertionError as exc:  # the student's exception, a forbidden call, an input changed in place
            text = str(exc)
            if text.startswith(f"{self.name}: "):
                text = text[len(self.name) + 2:]
            elif text.startswith(f"exercise {self.name}: "):
                text = text[len(self.name) + 11:]
            if text.startswith("not implemented yet"):
                raise Problem(f"{self.title}: {text}") from None
            advice = getattr(self.extra, "advice", "")
            if advice and text.startswith("your function called "):
                # the exercise's own advice says more than the guard's general one
                text = f"{text.split(';', 1)[0]}; the course's references are off limits here: {advice}"
            where = self._where(case, tier, index, total)
            bug = self._match_error(case, exc.__cause__)
            raise Problem(f"{self.title}, {where}:\n  {text}",
                          diagnosis=self._diagnosis(bug, where) if bug else None) from None
        try:
            self._compare(result, case, tier, only, caught=caught)
        except Problem as p:
            where = self._where(case, tier, index, total)
            diagnosis = p.diagnosis
            if diagnosis is None and p.candidates:
                bug = self._narrow(fn, p.candidates, case, tier, only)
                diagnosis = self._diagnosis(bug, where) if bug else None
            elif diagnosis is not None and not diagnosis.case:
                diagnosis = dataclasses.replace(diagnosis, case=where)
            raise Problem(f"{self.title}, {where}:\n{p.message}", bug=p.bug, diagnosis=diagnosis) from None

    def _diagnosis(self, bug: Bug, where: str = "") -> Diagnosis:
        return Diagnosis(bug.says, bug.fix, self.name, where)

    def _narrow(self, fn: Callable[..., Any], candidates: Sequence[Bug], failing: Case, tier: str,
                only: str | None) -> Bug | None:
        """Several bugs give the student's output on the failing case: keep the one whose code also
        gives the student's outputs on the tier's other cases; None unless exactly one does."""
        names = (only,) if only else self.compare
        left = list(candidates)
        for case in self.cases(tier):
            if case is failing or len(left) <= 1:
                continue
            args, kwargs = copy.deepcopy(tuple(case.args)), copy.deepcopy(dict(case.kwargs))
            try:
                got = self._split(run_guarded(fn, *args, exercise=self.name, allow=self.allow, forbid=self.forbid,
                                              guard_mode=self.guard_mode, **kwargs)[0], "your function")
            except (AssertionError, Problem):
                continue
            results = dict((b.says, v) for b, v in self._bug_results(case))
            left = [b for b in left if b.says in results and all(
                self._same_output(got[o], results[b.says].get(o, _NOTHING)) for o in names)]
        return left[0] if len(left) == 1 else None

    def _same_output(self, got: Any, wrong: Any) -> bool:
        if wrong is _NOTHING:
            return False
        if self.kind == "int":
            return _is_int(got) and _is_int(wrong) and int(got) == int(wrong)
        try:
            return matches(np.asarray(got, dtype=float) if _numeric(got) else got, wrong, 1e-6, 1e-9)
        except (TypeError, ValueError):
            return False

    def _expected(self, case: Case) -> Any:
        """The reference's answer on ``case``, remembered by the case's content: the same cases
        come back in every test cell of a tier and, in the grader, for every submission (some
        expectations are central differences that take a second). Only cases made of plain data
        are remembered; a copy is handed out each time."""
        make = case.expect or self.reference
        key = _content_key((case.args, case.kwargs))
        if key is not None and (id(make), key) in self._memo:
            return copy.deepcopy(self._memo[(id(make), key)][1])
        args, kwargs = copy.deepcopy(tuple(case.args)), copy.deepcopy(dict(case.kwargs))
        value = make(*args, **kwargs)
        if key is not None and len(self._memo) < _MEMO_SIZE:
            self._memo[(id(make), key)] = (make, copy.deepcopy(value))   # (make: its id stays unique)
        return value

    def _split(self, value: Any, what: str) -> dict[str, Any]:
        if self.single:
            return {self.outputs[0]: value}
        k = len(self.outputs)
        if not isinstance(value, tuple | list) or len(value) != k:
            raise Problem(f"  expected {k} return values ({', '.join(self.outputs)}); "
                          f"{what} returned {describe(value)}")
        return dict(zip(self.outputs, value, strict=True))

    def namespace(self) -> dict[str, Any]:
        """The globals a bug's code runs in: NumPy and the references of the helpers it uses."""
        ns: dict[str, Any] = {"np": np, "__name__": f"cnnlab_bug_{self.name}"}
        for name in self.uses:
            record = self.notebook.exercises.get(name) if self.notebook else None
            if record is not None and record.reference is not None:
                ns[name] = record.reference
        return ns

    def bug_function(self, bug: Bug) -> Callable[..., Any]:
        """Compile a bug's code and return the (wrong) function it defines."""
        cached = self._bug_fns.get(bug.says)
        if cached is None:
            ns = self.namespace()
            exec(compile(bug.code, f"<bug of {self.name}>", "exec"), ns)  # noqa: S102 - the course's own table
            if not callable(ns.get(self.name)):
                raise ValueError(f"{self.name}: the code of bug {bug.says!r} defines no function {self.name}")
            cached = self._bug_fns[bug.says] = ns[self.name]
        return cached

    def _bug_results(self, case: Case) -> list[tuple[Bug, dict[str, Any]]]:
        found = []
        for bug in self.bugs:
            if not bug.by_output:
                continue
            args, kwargs = copy.deepcopy(tuple(case.args)), copy.deepcopy(dict(case.kwargs))
            try:
                value = self.bug_function(bug)(*args, **kwargs)
            except Exception:  # noqa: BLE001 - a bug that does not apply to this case
                continue
            try:
                found.append((bug, self._split(value, "the bug")))
            except Problem:
                continue
        return found

    def _match_error(self, case: Case, error: BaseException | None) -> Bug | None:
        """The bug whose code raises the very exception (type and message) the student's code raised."""
        if not isinstance(error, Exception) or isinstance(error, NotImplementedError):
            return None
        for bug in self.bugs:
            if not bug.by_output:
                continue
            args, kwargs = copy.deepcopy(tuple(case.args)), copy.deepcopy(dict(case.kwargs))
            try:
                self.bug_function(bug)(*args, **kwargs)
            except Exception as wrong:  # noqa: BLE001 - the bug's own error, compared below
                if type(wrong) is type(error) and str(wrong) == str(error):
                    return bug
        return None

    def _compare(self, result: Any, case: Case, tier: str, only: str | None, caught: list) -> None:
        got = self._split(result, "your function")
        want = self._split(self._expected(case), "the reference")
        rtol = self.rtol if case.rtol is None else case.rtol
        atol = self.atol if case.atol is None else case.atol
        names = (only,) if only else self.compare
        for output in names:
            label = "result" if self.single else output
            problem = self._differs(got[output], want[output], label, tier, rtol, atol)
            if problem is None:
                continue
            bugs = self._match_bugs(case, names, got, want, rtol, atol)
            lines = [problem]
            if caught:
                first = caught[0]
                lines.append(f"  NumPy warned: {first.category.__name__}: {first.message}")
            if len(bugs) == 1:
                raise Problem("\n".join(lines), diagnosis=self._diagnosis(bugs[0]))
            raise Problem("\n".join(lines), candidates=bugs)

    def _differs(self, got: Any, want: Any, output: str, tier: str, rtol: float, atol: float) -> str | None:
        what = "returned" if output == "result" else f"{output} is"
        if self.kind == "int":
            if _is_int(got) and int(got) == int(want):
                return None
            if isinstance(got, bool | np.bool_):
                return f"  {what} a bool; return an int"
            if not _is_int(got):
                if isinstance(got, float | np.floating) and float(got).is_integer():
                    shown = f"the float {got!r}" if tier == "public" else "a float"
                    return f"  {what} {shown}; return an int (use // for whole-number division, or int(...))"
                return f"  {what} {describe(got) if tier == 'public' else 'not a whole number'}; return an int"
            if tier == "hidden":
                side = "too large" if int(got) > int(want) else "too small"
                return f"  the count is wrong ({side})"
            return f"  {what} {int(got):,}, expected {int(want):,}"
        if self.kind == "float" and _numeric(got) and np.ndim(got) == 0 and np.isfinite(float(got)):
            g, w = float(got), float(want)
            if abs(g - w) <= atol + rtol * abs(w):
                return None
            rel = abs(g - w) / max(abs(w), 1e-300)
            if tier == "hidden":
                return f"  the value is wrong (relative error {rel:.3g})"
            return f"  {what} {g:.6g}, expected {w:.6g} (relative error {rel:.3g})"
        try:
            assert_close(got, want, name=f"  {output}", rtol=rtol, atol=atol, guesses=False,
                         show_values=(tier == "public"))
        except AssertionError as exc:
            return str(exc)
        return None

    def _match_bugs(self, case: Case, names: Sequence[str], got: Mapping[str, Any], want: Mapping[str, Any],
                    rtol: float, atol: float) -> list[Bug]:
        """The bugs whose code gives the student's output on ``case``: every compared output equal
        to the student's, at least one of them different from the reference's."""
        found = []
        for bug, values in self._bug_results(case):
            if not all(o in values for o in names):
                continue
            if all(self._output_fits(got[o], values[o], want[o], rtol, atol) for o in names) and \
                    any(not self._output_fits(want[o], values[o], want[o], rtol, atol) for o in names):
                found.append(bug)
        return found

    def _output_fits(self, got: Any, wrong: Any, want: Any, rtol: float, atol: float) -> bool:
        """Whether ``got`` equals the bug's ``wrong`` output (``want``: the reference's)."""
        if self.kind == "int":
            return _is_int(got) and _is_int(wrong) and int(got) == int(wrong)
        try:
            return matches(np.asarray(got, dtype=float) if _numeric(got) else got, wrong,
                           max(rtol, 1e-6), max(atol, 1e-9))
        except (TypeError, ValueError):
            return False

    def _own_stub(self, fn: Callable[..., Any], tier: str) -> bool:
        """True when ``fn`` itself is still the stub (its own body raises NotImplementedError)."""
        cases = self.cases(tier) if self.custom is None else []
        if not cases or not hasattr(fn, "__code__"):
            return False
        case = cases[0]
        try:
            fn(*copy.deepcopy(tuple(case.args)), **copy.deepcopy(dict(case.kwargs)))
        except NotImplementedError as exc:
            tb = exc.__traceback__
            while tb is not None and tb.tb_next is not None:
                tb = tb.tb_next
            return tb is not None and tb.tb_frame.f_code is fn.__code__
        except Exception:  # noqa: BLE001 - any other failure is not a stub
            return False
        return False

    def _blame(self, fn: Callable[..., Any], tier: str) -> tuple[str, Diagnosis | None] | None:
        """When ``fn`` calls a helper of the student's that fails its own check, say so: the
        message, and the helper's diagnosis (kept whole, whatever the length of its message)."""
        if not self.uses or self.notebook is None or self._own_stub(fn, tier):
            return None
        namespace = getattr(fn, "__globals__", {})
        for helper_name in self.uses:
            helper = namespace.get(helper_name)
            record = self.notebook.exercises.get(helper_name)
            if record is None or not callable(helper):
                continue
            outcome = record.run(helper, "public", blame=True)
            if outcome.passed:
                continue
            first = (outcome.detail or outcome.message).split("\n", 1)
            rest = first[1] if len(first) > 1 else ""
            text = (f"{self.title} calls your {helper_name}, which fails its own check (Exercise "
                    f"{record.number}); fix {helper_name} first, then run this check again.\n"
                    f"  {helper_name}: {first[0].lstrip(chr(0x2718) + ' ')}\n{rest}").rstrip()
            return text, outcome.diagnosis
        return None


_NOTHING = object()


def _numeric(value: Any) -> bool:
    try:
        np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        return False
    return True


def _tier(tier: str) -> str:
    if tier not in TIERS:
        raise ValueError(f"tier must be 'public' or 'hidden', got {tier!r}")
    return tier


def _short_tracebacks() -> None:
    """In IPython, show a :class:`CheckFailed` as its message alone, with no frame of the course's code."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or getattr(shell, "_cnnlab_short_tracebacks", False):
        return

    def handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None) -> list[str]:
        stb = [f"\x1b[31m{etype.__name__}\x1b[0m: {value}"]
        shell._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((CheckFailed,), handler)
    shell._cnnlab_short_tracebacks = True


def show(text: str, html_text: str) -> None:
    """Show ``text`` as the cell's output: ``html_text`` where a front end renders HTML, text elsewhere."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain Python
        print(text)
        return
    if get_ipython() is None:
        print(text)
        return
    display({"text/plain": text, "text/html": html_text}, raw=True)


def _show(outcome: Outcome) -> None:
    show(outcome.message, _html(outcome.message, outcome.passed))


def _publish(report: Report) -> None:
    """Under nbgrader, put the failing check's report into the cell as data (its own MIME type,
    no text form: the exception that follows shows the message)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:
        return
    if get_ipython() is None:
        return
    display(report.bundle(), raw=True)


class Notebook:
    """The exercises of one notebook, in order: ``check``, ``summary`` and the registry read it."""

    def __init__(self, assignment: str) -> None:
        self.assignment = assignment
        self.exercises: dict[str, Exercise] = {}

    def add(self, exercise: Exercise) -> Exercise:
        """Register ``exercise`` (names are unique within a notebook) and return it."""
        if exercise.name in self.exercises:
            raise ValueError(f"{self.assignment}: exercise {exercise.name!r} is defined twice")
        exercise.notebook = self
        self.exercises[exercise.name] = exercise
        return exercise

    def __getitem__(self, name: str) -> Exercise:
        try:
            return self.exercises[name]
        except KeyError:
            raise KeyError(f"{self.assignment} has no exercise {name!r}; it has {list(self.exercises)}") from None

    def check(self, name: str, fn: Any, tier: str = "public", *, only: str | None = None) -> None:
        """Check the student's ``fn`` for exercise ``name`` (see :meth:`Exercise.check`)."""
        __tracebackhide__ = True
        if _CLASSES:
            _restore_classes()
        self[name].check(fn, tier, only=only)

    def summary(self, namespace: Mapping[str, Any]) -> None:
        """Re-run every public check on the functions in ``namespace`` and show a table.

        Under nbgrader the table is skipped (the graded cells have already scored).
        """
        if under_nbgrader():
            print("Summary skipped while grading.")
            return
        self._summary(namespace)

    def _summary(self, namespace: Mapping[str, Any]) -> list[Outcome]:
        outcomes = []
        rows = []
        for ex in self.exercises.values():
            fn = namespace.get(ex.name)
            outcome = ex.run(fn, "public") if callable(fn) else Outcome(ex.name, "public", False,
                                                                        "not defined yet")
            outcomes.append(outcome)
            first = outcome.message.split("\n", 1)[0]
            state = "pass" if outcome.passed else ("not started" if "not implemented yet" in outcome.message
                                                   or "not defined" in first else "fails")
            rows.append((ex.number, ex.name, state))
        done = sum(o.passed for o in outcomes)
        text = [f"{self.assignment}: {done} of {len(outcomes)} public checks pass"]
        text += [f"  {_MARK[s == 'pass']} Exercise {n}: {name:<24} {s}" for n, name, s in rows]
        message = "\n".join(text)
        cells = "".join(
            f"<tr><td>Exercise {n}</td><td><code>{html.escape(name)}</code></td>"
            f"<td style='color:{'#2e7d32' if s == 'pass' else '#c62828'}'>"
            f"{_MARK[s == 'pass']} {s}</td></tr>" for n, name, s in rows)
        table = (f'<div class="cnnlab-summary"><b>{html.escape(text[0])}</b>'
                 f"<table>{cells}</table></div>")
        show(message, table)
        return outcomes

