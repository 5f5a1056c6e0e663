"""The trusted verifier: the points of hidden checks are confirmed where the student's code cannot reach.

After nbgrader has run a submission, :func:`verify` starts a fresh sandboxed worker
(:mod:`autograder.verify_worker`) that has never run a test cell, runs in it only the definitions of
the notebook's read-only cells, the student's answer cells and the definitions (imports,
functions, classes, constants) of the student's other cells, and calls each exercise's function
on the exercise record's public and hidden cases (``cnnlab.checks.registry``). The worker sends back plain
arrays and numbers over a pipe (no pickle); the comparison with the reference
(``Exercise.verify``) happens here, in the grader's process. A hidden test cell keeps the points
nbgrader gave it only when the verifier agrees; where they disagree the cell scores zero and the submission is flagged as
possible tampering. The worker compares values only: a ban on calling the course's references
(the integrity guard) is the hidden check's own, inside nbgrader's run, and a call into them is
flagged by the static scan (:mod:`autograder.scan`).

What it does not do: judge exercises whose record has no ``verify`` (training loops and the like:
their points are nbgrader's alone), or tell a student's honest bug that shows only on the hidden
cases from tampering (nbgrader's own hidden check fails those first, so no flag is raised).
"""

from __future__ import annotations

import ast
import contextlib
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.utils import is_grade, is_locked, is_solution

from . import sandbox
from .verify_worker import MAX_REPLY, dumps, loads


_SOURCE = None


def set_exercise_source(fn) -> None:
    """Use ``fn(assignment) -> list[Exercise]`` instead of ``cnnlab.checks.registry.exercises``
    (tests and fixture courses; ``None`` restores the default)."""
    global _SOURCE
    _SOURCE = fn


def exercises_for(assignment: str) -> list:
    """The exercise records of ``assignment`` (empty when it has none)."""
    if _SOURCE is not None:
        return list(_SOURCE(assignment) or [])
    try:
        from cnnlab.checks import registry
    except ImportError:
        return []
    try:
        return list(registry.exercises(assignment) or [])
    except (KeyError, ValueError, LookupError, AttributeError, ImportError):
        return []   # no records (yet) for this assignment: nbgrader's points stand


@dataclass
class Verdict:
    """Per hidden test grade_id whose points are withdrawn: why; and notes for the instructor."""

    withdrawn: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    checked: int = 0


def hidden_grade_ids(source_nb) -> set[str]:
    """grade_ids of the test cells that hold hidden tests in the source notebook."""
    return {c.metadata["nbgrader"]["grade_id"] for c in source_nb.cells
            if c.cell_type == "code" and is_grade(c) and "BEGIN HIDDEN TESTS" in c.source}


DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _definitions(src: str) -> list[str]:
    """The top-level imports, function and class definitions of a cell, and its assignments of
    values that call nothing (``K = 3``, ``SHAPE = (2, 3)``); statements that do something are left out."""
    try:
        tree = ast.parse("\n".join("" if ln.lstrip().startswith(("%", "!")) else ln for ln in src.split("\n")))
    except SyntaxError:
        return []
    out = []
    for node in tree.body:
        if isinstance(node, DEFINITIONS) or (
                isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
                and not any(isinstance(n, (ast.Call, ast.Lambda, ast.Await, ast.NamedExpr)) for n in ast.walk(node.value))
                and all(isinstance(t, ast.Name) for t in (node.targets if isinstance(node, ast.Assign) else [node.target]))):
            out.append(ast.unparse(node))
    return out


def prelude(release_nb) -> list[str]:
    """The definitions (see :func:`_definitions`) of the release's read-only code cells."""
    out = []
    for c in release_nb.cells:
        if c.cell_type == "code" and is_locked(c) and not is_grade(c) and not is_solution(c):
            out += _definitions(c.source)
    return out


def answer_sources(nb) -> list[str]:
    """What the worker runs of the student's code, in notebook order: every answer cell (code
    cells with nbgrader solution metadata, and copies of them that
    :func:`autograder.repair.repair` kept as ordinary cells) whole, and the definitions of their
    other cells (helpers a student wrote in a cell of their own), never their other statements."""
    from .repair import DUPLICATE_KEY

    out = []
    for c in nb.cells:
        if c.cell_type != "code" or is_locked(c):
            continue
        if is_solution(c) or c.metadata.get(DUPLICATE_KEY):
            out.append(c.source)
        else:
            out += _definitions(c.source)
    return out


class WorkerFailed(RuntimeError):
    """The verifier's worker gave no readable reply."""


def run_worker(prelude_src: list[str], answers: list[str], calls: list, *, seconds: int, total_seconds: int,
               memory_mb: int, sb: sandbox.Sandbox | None) -> list[dict]:
    """Run the worker on one request; return its replies (one per call)."""
    r, w = os.pipe()
    argv = ["--fd", str(w), "--mem-mb", str(memory_mb)]
    box = None
    chunks: list[bytes] = []

    def _read() -> None:
        size = 0
        with os.fdopen(r, "rb") as fh:
            while True:
                b = fh.read(1 << 16)
                if not b:
                    break
                size += len(b)
                if size <= MAX_REPLY:
                    chunks.append(b)

    reader = threading.Thread(target=_read, daemon=True)
    try:
        if sb is not None:   # a fresh sandbox: 64 processes at most, every one killed at the end
            box = sandbox.Sandboxed(sb, [sandbox.VERIFY_WORKER, *argv], max_processes=64, pass_fds=(w,),
                                    stdin=subprocess.PIPE)
            proc = box.proc
        else:
            proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("verify_worker.py")), *argv],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    pass_fds=(w,), start_new_session=True)
    finally:
        os.close(w)
    reader.start()
    try:
        with contextlib.suppress(BrokenPipeError):
            proc.stdin.write(dumps({"prelude": prelude_src, "answers": answers, "calls": calls,
                                    "seconds": seconds}))
            proc.stdin.close()
        try:
            proc.wait(timeout=total_seconds)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise WorkerFailed(f"no answer within {total_seconds} s") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if box is not None:
            box.kill()
        reader.join(timeout=10)
    data = b"".join(chunks)
    if sum(len(c) for c in chunks) >= MAX_REPLY:
        raise WorkerFailed("the reply was larger than the limit")
    try:
        replies = loads(data)
    except ValueError as exc:
        raise WorkerFailed(f"{exc} (the worker exited with {proc.returncode})") from None
    if not isinstance(replies, list) or len(replies) != len(calls) or not all(isinstance(x, dict) for x in replies):
        raise WorkerFailed("the reply does not match the request")
    return replies


def _plain(case) -> bool:
    """Whether a case's arguments can cross the channel (a function or a dtype cannot: no verdict)."""
    try:
        dumps([list(case.args), dict(case.kwargs)])
    except (TypeError, ValueError):
        return False
    return True


def _kept(ex) -> list[int] | None:
    """Positions of the outputs the record compares (the rest, such as caches, stay in the worker)."""
    outputs = tuple(getattr(ex, "outputs", ()) or ())
    if getattr(ex, "single", True) or not outputs:
        return None
    compared = set(getattr(ex, "compare", outputs))
    return [i for i, name in enumerate(outputs) if name in compared]


def _cases(ex, tier: str) -> list:
    try:
        return list(ex.cases(tier) or [])
    except (KeyError, ValueError, TypeError, LookupError):
        return []


def _disagrees(ex, value, case, output: str | None) -> str | None:
    """The reference's verdict on one result (for one output where test cells check one each)."""
    try:
        msg = ex.verify(value, case) if output is None else ex.verify(value, case, only=output)
    except TypeError:
        return None          # this record cannot verify one output alone: no verdict
    except Exception as exc:  # noqa: BLE001 - a result the reference cannot compare disagrees
        return f"{type(exc).__name__}: {exc}"
    return str(msg)[:300] if msg else None


def verify(assignment: str, graded_nb, release_nb, source_nb, scores: dict[str, float], *, seconds: int,
           total_seconds: int, memory_mb: int, sb: sandbox.Sandbox | None) -> Verdict:
    """Re-run every exercise of this notebook on its record's cases (see the module docstring).

    ``scores``: nbgrader's points per grade_id; only cells that scored are examined. A test cell
    loses its points when a case of its tier disagrees or raises. Where an exercise's test
    cells each check one output (``Exercise.output_cells``), each is judged on its output alone.
    """
    verdict = Verdict()
    hidden = hidden_grade_ids(source_nb)
    present = {c.metadata.get("nbgrader", {}).get("grade_id") for c in release_nb.cells}
    todo = []   # (exercise, tier, [(output, cells)], cases)
    for ex in exercises_for(assignment):
        if (getattr(ex, "verify", None) is None or getattr(ex, "custom", None) is not None
                or not getattr(ex, "verifiable", True) or getattr(ex, "course_helpers", ())):
            continue  # not a plain call-and-compare, or checked with the course's helpers in place
        per_output = dict(getattr(ex, "output_cells", None) or {}) or {None: tuple(getattr(ex, "grade_ids", ()))}
        for tier in ("public", "hidden"):
            groups = []
            for output, cells in per_output.items():
                cells = [g for g in cells if g in present and (g in hidden) == (tier == "hidden")
                         and scores.get(g, 0) > 0]
                if cells:
                    groups.append((output, cells))
            cases = [c for c in _cases(ex, tier) if _plain(c)] if groups else []
            if cases:
                todo.append((ex, tier, groups, cases))
    if not todo:
        return verdict
    calls = [[ex.name, list(case.args), dict(case.kwargs), _kept(ex)] for ex, _, _, cases in todo for case in cases]
    try:
        replies = run_worker(prelude(release_nb), answer_sources(graded_nb), calls, seconds=seconds,
                             total_seconds=total_seconds, memory_mb=memory_mb, sb=sb)
    except WorkerFailed as exc:
        for ex, tier, groups, _ in todo:
            for _, cells in groups:
                for g in cells:
                    verdict.withdrawn[g] = f"the verifier could not re-run {ex.name}: {exc}"
        verdict.flags.append(f"verifier: {exc}")
        return verdict
    i = 0
    for ex, tier, groups, cases in todo:
        mine = replies[i:i + len(cases)]
        i += len(cases)
        verdict.checked += 1
        for output, cells in groups:
            problem = None
            for case, reply in zip(cases, mine):
                if "error" in reply:
                    problem = f"raised {str(reply['error'])[:200]}"
                else:
                    problem = _disagrees(ex, reply.get("ok"), case, output)
                if problem:
                    break
            if not problem:
                continue
            what = ex.name + (f" ({output})" if output else "")
            for g in cells:
                verdict.withdrawn[g] = (f"possible tampering: this check passed in the notebook, but a fresh run of "
                                        f"{what} on its {tier} cases disagrees ({problem})")
            verdict.flags.append(f"possible tampering: {what} passed its {tier} check in the notebook but not "
                                 f"in the verifier ({problem})")
    return verdict
