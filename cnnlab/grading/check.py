"""A small framework for one exercise's check with a public and a hidden tier.

See the example in ``cnnlab.grading``'s docstring.  A :class:`Check` runs the student's function
on each case under the integrity guard (on copies of the inputs), runs the reference on its own
copies outside the guard, compares the named outputs with :func:`assert_close` (naming known bugs),
and prints one line when every case passes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .closeness import assert_close, describe, set_tier
from .guard import DEFAULT_FORBID, run_guarded
from .report import passed

__all__ = ["Case", "Check", "TIERS"]

TIERS: tuple[str, ...] = ("public", "hidden")


@dataclass(frozen=True)
class Case:
    """One call: positional ``args``, keyword ``kwargs``, a short ``label`` for messages.

    ``rtol`` / ``atol`` override the check's tolerances for this case when not None.
    """

    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    rtol: float | None = None
    atol: float | None = None


def _summary(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    parts = []
    for a in args:
        if isinstance(a, np.ndarray):
            parts.append(f"shape {a.shape}" if a.ndim else repr(a.item()))
        elif isinstance(a, int | float | str | tuple) and len(repr(a)) <= 20:
            parts.append(repr(a))
        else:
            parts.append(type(a).__name__)
    for k, v in kwargs.items():
        val = f"shape {v.shape}" if isinstance(v, np.ndarray) else (repr(v) if len(repr(v)) <= 20 else type(v).__name__)
        parts.append(f"{k}={val}")
    return ", ".join(parts)


class Check:
    """Compare a student's function with a reference on public or hidden cases.

    Args:
        exercise: the exercise's name, used in messages ("corr2d").
        reference: the correct function, called with the same arguments (outside the guard).
        cases: ``{"public": cases, "hidden": cases}`` where each value is a list of
            :class:`Case` or a zero-argument function returning one (so hidden cases are only
            built when needed), or a function ``tier -> list of Case``.
        outputs: names of the values the function returns: one name ("out") for a function
            returning one value, several (("out", "cache"), ("dx", "dw", "db")) for a tuple.
        compare: which of ``outputs`` to compare (default: every name except "cache").
        bugs: optional ``bugs(*args, **kwargs) -> {description: result}`` giving what known
            buggy versions return for a case (computed only when a comparison fails); a result
            is an array for the first compared output or ``{output name: array}``.
        rtol, atol: tolerances of :func:`assert_close`.
        forbid, allow: the integrity guard's settings (see :func:`guarded`); ``forbid=()`` for
            exercises where any library is fine.
        guard_tiers: tiers that run the integrity guard (default both).
        guard_mode: "fast" or "profile" (see :func:`guarded`).
        extra: optional ``extra(fn, tier)`` run after the cases (for checks beyond values:
            the cache's content, running statistics, ...); raise AssertionError there.

    Calling ``check(fn, tier="public")`` runs the tier's cases and prints one line
    ("✔ corr2d: all 3 cases match (public)") or raises AssertionError.
    """

    def __init__(
        self,
        exercise: str,
        reference: Callable[..., Any],
        cases: Mapping[str, Iterable[Case] | Callable[[], Iterable[Case]]] | Callable[[str], Iterable[Case]],
        *,
        outputs: str | Sequence[str] = "out",
        compare: Sequence[str] | None = None,
        bugs: Callable[..., Mapping[str, Any]] | None = None,
        rtol: float = 1e-6,
        atol: float = 1e-9,
        forbid: Iterable[str] = DEFAULT_FORBID,
        allow: Iterable[Any] = (),
        guard_tiers: Iterable[str] = TIERS,
        guard_mode: str = "fast",
        extra: Callable[[Callable[..., Any], str], None] | None = None,
    ) -> None:
        self.exercise = exercise
        self.reference = reference
        self.cases = cases
        self.single = isinstance(outputs, str)
        self.outputs: tuple[str, ...] = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        names = tuple(compare) if compare is not None else tuple(o for o in self.outputs if o != "cache")
        unknown = set(names) - set(self.outputs)
        if unknown:
            raise ValueError(f"compare names {sorted(unknown)} are not among outputs {self.outputs}")
        self.compare = names
        self.bugs = bugs
        self.rtol = rtol
        self.atol = atol
        self.forbid = tuple(forbid)
        self.allow = tuple(allow)
        self.guard_tiers = tuple(guard_tiers)
        self.guard_mode = guard_mode
        self.extra = extra

    def cases_for(self, tier: str) -> list[Case]:
        """Return the list of cases of a tier ("public" or "hidden")."""
        if tier not in TIERS:
            raise ValueError(f"tier must be 'public' or 'hidden', got {tier!r}")
        source: Any
        if isinstance(self.cases, Mapping):
            if tier not in self.cases:
                raise ValueError(f"{self.exercise}: no {tier} cases defined")
            source = self.cases[tier]
            if callable(source):
                source = source()
        else:
            source = self.cases(tier)
        return list(source)

    def _split(self, result: Any) -> dict[str, Any]:
        """Map output names to the student's values, or fail when the structure is wrong."""
        if self.single:
            return {self.outputs[0]: result}
        k = len(self.outputs)
        if not isinstance(result, tuple | list) or len(result) != k:
            raise AssertionError(
                f"{self.exercise}: expected your function to return {k} values "
                f"({', '.join(self.outputs)}); it returned {describe(result)}"
            )
        return dict(zip(self.outputs, result, strict=True))

    def _bug_table(self, case: Case, output: str) -> dict[str, Any] | None:
        if self.bugs is None:
            return None
        table = self.bugs(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
        picked: dict[str, Any] = {}
        for description, value in table.items():
            if isinstance(value, Mapping):
                if output in value:
                    picked[description] = value[output]
            elif output == self.compare[0]:
                picked[description] = value
        return picked

    def run_case(self, fn: Callable[..., Any], case: Case, *, tier: str, index: int = 0, total: int = 1) -> None:
        """Run one case and raise AssertionError with a located message when it fails."""
        forbid = self.forbid if tier in self.guard_tiers else ()
        s_args, s_kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        label = f" '{case.label}'" if case.label else ""
        where = f"{tier} case {index + 1} of {total}{label}; inputs: {_summary(case.args, case.kwargs)}"
        try:
            result, caught = run_guarded(
                fn,
                *s_args,
                exercise=self.exercise,
                allow=self.allow,
                forbid=forbid,
                guard_mode=self.guard_mode,
                **s_kwargs,
            )
        except AssertionError as exc:
            if str(exc).startswith(f"exercise {self.exercise}:"):  # integrity guard: no case needed
                raise
            raise AssertionError(f"{exc}\n  ({where})") from exc.__cause__
        r_args, r_kwargs = copy.deepcopy(case.args), copy.deepcopy(case.kwargs)
        expected = self.reference(*r_args, **r_kwargs)
        got = self._split(result)
        want = dict(zip(self.outputs, (expected,) if self.single else expected, strict=True))
        for output in self.compare:
            try:
                assert_close(
                    got[output],
                    want[output],
                    name=output,
                    rtol=self.rtol if case.rtol is None else case.rtol,
                    atol=self.atol if case.atol is None else case.atol,
                    bugs=None,
                )
            except AssertionError as exc:
                message = str(exc)
                bugs = self._bug_table(case, output)
                if bugs:
                    try:
                        assert_close(got[output], want[output], name=output, rtol=self.rtol, atol=self.atol, bugs=bugs)
                    except AssertionError as exc2:
                        message = str(exc2)
                head = f"{self.exercise} ({where})"
                tail = ""
                if caught:
                    first = caught[0]
                    tail = f"\n  numpy warned: {first.category.__name__}: {first.message}"
                raise AssertionError(f"{head}\n{message}{tail}") from None

    def __call__(self, fn: Callable[..., Any], tier: str = "public") -> None:
        """Run every case of ``tier``; print one line on success, raise AssertionError otherwise."""
        cases = self.cases_for(tier)
        set_tier(tier)
        for i, case in enumerate(cases):
            self.run_case(fn, case, tier=tier, index=i, total=len(cases))
        if self.extra is not None:
            self.extra(fn, tier)
        n = len(cases)
        passed(self.exercise, f"all {n} cases match ({tier})" if n != 1 else f"1 case matches ({tier})")
