"""The trusted verifier: every scored test cell is confirmed where the student's code cannot reach.

After nbgrader has run a submission, :func:`verify` starts a fresh sandboxed worker
(:mod:`autograder.verify_worker`) that has never run a test cell, runs in it only the definitions of
the notebook's read-only cells, the student's answer cells and the definitions (imports,
functions, classes, constants) of the student's other cells, and, for every test cell that
scored, asks each exercise record (``cnnlab.checks.registry``) how to confirm it
(:meth:`cnnlab.grading.exercise.Exercise.confirmation`): the student's function is called on the
record's public or hidden cases (the quiz's answers are read; notebook 07's training functions are
re-run on the check's data with the course's helpers in place), under the same rules as the
in-kernel check (the integrity guard's forbidden groups, modules and references, sealed in the
worker so that the student's code cannot switch them off). The worker sends back plain values over
a pipe (no pickle); each record's judge compares them here, in the grader's process.

A test cell keeps nbgrader's points only when the verifier confirms them (it *fails closed*):

- the worker's result disagrees with the reference (or the call tried a forbidden function):
  the cell scores zero, its message and a flag say "possible tampering" (``Verdict.flags``);
- no verdict is possible (the record cannot be confirmed, the worker died, timed out, sent a
  malformed or oversized reply, or decoding or comparing raised): the cell scores zero and says
  "the verifier could not confirm this check: <cause>". Where the cause is the infrastructure
  (the worker never reached the student's code, after one retry; the verifier's own error), it is
  also listed in ``Verdict.errors``: the engine records the submission as an error to grade again.

What it does not do: confirm properties of a check beyond the values it compares (a
"vectorised?" line count, running statistics), or tell a student's honest bug that shows only on
the hidden cases from tampering (nbgrader's own hidden check fails those first, so no flag is raised).
"""

from __future__ import annotations

import ast
import contextlib
import os
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.utils import is_grade, is_locked, is_solution

from . import sandbox
from .verify_worker import KERNEL_ARGV0, MAGIC, MAX_REPLY, UNTRAPPABLE, dumps, loads, reachable, resolve, split_reply

_SOURCE = None

TAMPERING = "possible tampering"
UNCONFIRMED = "the verifier could not confirm this check"


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
    """What the verifier decided about one notebook.

    ``withdrawn``: grade_id -> the one line the cell shows (its points are withdrawn);
    ``flags``: one line each for the instructor (``exports/flags.csv``); disagreements start with
    ``possible tampering``, cells that could not be confirmed with ``the verifier could not confirm``;
    ``errors``: infrastructure failures among those (the worker never started after a retry, the
    verifier's own error): the engine should record the submission as an error, to grade again;
    ``confirmed``: the grade_ids whose points the verifier confirmed; ``checked``: exercises looked at.
    """

    withdrawn: dict[str, str] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    confirmed: set[str] = field(default_factory=set)
    checked: int = 0

    @property
    def tampering(self) -> bool:
        """Whether the verifier disagreed with the notebook's run somewhere."""
        return any(f.startswith(TAMPERING) for f in self.flags)


def hidden_grade_ids(source_nb) -> set[str]:
    """grade_ids of the test cells that hold hidden tests in the source notebook."""
    return {c.metadata["nbgrader"]["grade_id"] for c in source_nb.cells
            if c.cell_type == "code" and is_grade(c) and "BEGIN HIDDEN TESTS" in c.source}


def test_grade_ids(nb) -> list[str]:
    """grade_ids of the autograded test cells (graded, not answer cells) of a notebook."""
    return [c.metadata["nbgrader"]["grade_id"] for c in nb.cells
            if c.cell_type == "code" and is_grade(c) and not is_solution(c)]


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
    return [src for _, src in answer_cells(nb)]


def answer_cells(nb) -> list[tuple[str, str]]:
    """:func:`answer_sources`, each with the cell it comes from, as a student would name it (the
    answer cell's id, or ``cell N``)."""
    from .repair import DUPLICATE_KEY

    out = []
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code" or is_locked(c):
            continue
        label = c.metadata.get("nbgrader", {}).get("grade_id") if is_solution(c) else None
        label = f"answer cell {label}" if label else f"cell {i + 1}"
        if is_solution(c) or c.metadata.get(DUPLICATE_KEY):
            out.append((label, c.source))
        else:
            out += [(label, d) for d in _definitions(c.source)]
    return out


class WorkerFailed(RuntimeError):
    """The verifier's worker gave no readable reply. ``infra``: it never reached the student's
    code (the sandbox or the worker itself failed to start): an infrastructure failure."""

    def __init__(self, message: str, *, infra: bool = False, crashed_at: int | None = None) -> None:
        super().__init__(message)
        self.infra = infra
        self.crashed_at = crashed_at     # the answer source the worker died in (it ended the process)


def _exchange(request: dict, *, total_seconds: int, memory_mb: int, sb: sandbox.Sandbox | None) -> dict:
    """Run one worker on ``request``; return its decoded reply (raises :class:`WorkerFailed`)."""
    r, w = os.pipe()
    argv = ["--fd", str(w), "--mem-mb", str(memory_mb)]
    box = None
    try:
        payload = dumps(request, functions=True)
    except BaseException:
        os.close(r)
        os.close(w)
        raise
    chunks: list[bytes] = []
    size = [0]

    def _read() -> None:
        with os.fdopen(r, "rb") as fh:
            while True:
                b = fh.read(1 << 16)
                if not b:
                    break
                size[0] += len(b)
                if size[0] <= MAX_REPLY + len(MAGIC):
                    chunks.append(b)

    reader = threading.Thread(target=_read, daemon=True)
    try:
        if sb is not None:   # a fresh sandbox: 64 processes at most, every one killed at the end
            box = sandbox.Sandboxed(sb, [sandbox.VERIFY_WORKER, *argv], max_processes=64, pass_fds=(w,),
                                    stdin=subprocess.PIPE, memory_mb=memory_mb)
            proc = box.proc
        else:
            proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("verify_worker.py")), *argv],
                                    stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    pass_fds=(w,), start_new_session=True)
    except OSError as exc:
        os.close(r)
        if box is not None:
            box.kill()
        raise WorkerFailed(f"the worker could not be started ({type(exc).__name__}: {exc})", infra=True) from None
    finally:
        os.close(w)
    reader.start()
    timed_out = False
    try:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write(payload)
            proc.stdin.close()
        try:
            proc.wait(timeout=total_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if box is not None:
            box.kill()
        reader.join(timeout=10)
    data = b"".join(chunks)
    if not data.startswith(MAGIC):
        why = f"no answer within {total_seconds} s" if timed_out else f"it exited with {proc.returncode}"
        raise WorkerFailed(f"the worker never reached the submission's code ({why})", infra=True)
    if timed_out:
        raise WorkerFailed(f"the worker gave no answer within {total_seconds} s")
    if size[0] > MAX_REPLY + len(MAGIC):
        raise WorkerFailed(f"the reply was larger than {MAX_REPLY >> 20} MiB")
    started, answered, body = split_reply(data[len(MAGIC):])
    if not answered and not body:
        if not started:
            raise WorkerFailed(f"the worker ended before the submission's code ({sandbox.exit_text(proc.returncode)})",
                               infra=True)
        raise WorkerFailed(f"the submission's code ended the checking process ({sandbox.exit_text(proc.returncode)})",
                           crashed_at=started - 1)
    try:
        reply = loads(body)
    except ValueError as exc:
        raise WorkerFailed(f"the worker sent {exc} (it exited with {proc.returncode})") from None
    if not isinstance(reply, dict) or not isinstance(reply.get("calls"), list):
        raise WorkerFailed("the reply does not match the request")
    return reply


def run_worker(prelude_src: list[str], answers: list[str], calls: list, *, seconds: int, total_seconds: int,
               memory_mb: int, sb: sandbox.Sandbox | None, policy: dict | None = None,
               argv: list[str] | None = None) -> list[dict]:
    """Run the worker on one request; return its replies (one per call): ``{"ok": value}``, or
    ``{"raised": "module.Type", "message": ..., "error": "Type: message"}``, or ``{"error": why}``;
    ``"called"``/``"refused"`` say what the policy stopped. ``calls``: dicts as in
    :mod:`autograder.verify_worker`, or ``[name, args, kwargs(, keep)]``."""
    norm = []
    for c in calls:
        if isinstance(c, dict):
            norm.append({"seconds": seconds, **c})
        else:
            name, args, kwargs, *rest = c
            norm.append({"name": name, "args": list(args), "kwargs": dict(kwargs), "keep": rest[0] if rest else None,
                         "seconds": seconds})
    request = {"prelude": list(prelude_src), "answers": list(answers), "calls": norm,
               "policy": policy or {}, "argv": argv or [KERNEL_ARGV0]}
    reply = _exchange(request, total_seconds=total_seconds, memory_mb=memory_mb, sb=sb)
    replies = reply["calls"]
    if len(replies) != len(norm) or not all(isinstance(x, dict) for x in replies):
        raise WorkerFailed("the reply does not match the request")
    for x in replies:
        if "raised" in x:
            x.setdefault("error", f"{str(x['raised']).rsplit('.', 1)[-1]}: {x.get('message', '')}")
    return replies


# ----------------------------------------------------------------------------- the plan

@dataclass
class _Item:
    """One tier (and output) of one exercise: the cells it confirms and how."""

    ex: object
    tier: str
    output: str | None
    cells: list[str]
    conf: object = None
    calls: list[int] = field(default_factory=list)     # positions in the worker's request
    worker: int = 0
    problem: str | None = None        # why it cannot be confirmed (no calls made)
    infra: bool = False

    @property
    def what(self) -> str:
        return getattr(self.ex, "name", "?") + (f" ({self.output})" if self.output else "")


def _confirmation(ex, tier: str, output: str | None, student: str | None):
    """The record's :class:`Confirmation`, or one built from a duck-typed record's ``cases`` and
    ``verify`` (fixture courses); None where none is possible."""
    from cnnlab.grading.exercise import Confirmation

    if hasattr(ex, "confirmation"):
        if not getattr(ex, "verifiable", True):
            return None
        return ex.confirmation(tier, only=output, student=student)
    if getattr(ex, "verify", None) is None:
        return None

    def judge(result, case):
        return ex.verify(result, case) if output is None else ex.verify(result, case, only=output)

    return Confirmation(cases=tuple(ex.cases(tier) or ()), judge=judge, forbid=tuple(getattr(ex, "forbid", ()) or ()))


def _policy(conf) -> dict:
    return {"forbid": sorted(set(conf.forbid)), "refuse": sorted(set(conf.refuse)),
            "functions": sorted(set(conf.functions)), "allow": sorted(set(conf.allow))}


def _explicit(policy: dict) -> set[int]:
    """ids of the functions a policy forbids by name or by refused module (not by group)."""
    from cnnlab.grading.guard import functions_of, plain_function

    out = set()
    for name in policy["functions"]:
        with contextlib.suppress(Exception):
            out.add(id(plain_function(resolve(name))))
    for name in policy["refuse"]:
        with contextlib.suppress(Exception):
            import importlib

            out.update(id(f) for f in functions_of(modules=[importlib.import_module(name)]))
    return out


def _reach(policy: dict) -> set[int]:
    """ids of the course functions a policy's allowed functions reach (they run untrapped)."""
    from cnnlab.grading.guard import plain_function

    allowed = []
    for name in policy["allow"]:
        with contextlib.suppress(Exception):
            allowed.append(plain_function(resolve(name)))
    return set(reachable([f for f in allowed if f is not None]))


def _place(workers: list[dict], policy: dict) -> int:
    """The worker that runs calls of ``policy``: one whose merged policy refuses the same
    untrappable imports and does not allow what this one forbids by name (nor the reverse);
    else a new one. Merging forbids the union, allows the union."""
    key = _worker_key(policy)
    for i, w in enumerate(workers):
        p = w["policy"]
        if _worker_key(p) != key:
            continue
        if _reach(p) & _explicit(policy) or _reach(policy) & _explicit(p):
            continue
        w["policy"] = {k: sorted(set(p[k]) | set(policy[k])) for k in p}
        return i
    workers.append({"policy": dict(policy), "calls": []})
    return len(workers) - 1


def _worker_key(policy: dict) -> tuple[str, ...]:
    """Only policies that refuse the same untrappable imports can share a worker."""
    return tuple(sorted({m for g in policy["forbid"] for m in UNTRAPPABLE.get(g, ())}))


def _plan(assignment: str, release_nb, source_nb, scores: dict[str, float], student: str | None):
    """(items, cells no record confirms): what to confirm for the test cells that scored."""
    hidden = hidden_grade_ids(source_nb)
    tests = test_grade_ids(release_nb)
    scored = [g for g in tests if scores.get(g, 0) > 0]
    records = exercises_for(assignment)
    if not records:
        return [], []
    covered: set[str] = set()
    items: list[_Item] = []
    for ex in records:
        per_output = dict(getattr(ex, "output_cells", None) or {}) or {None: tuple(getattr(ex, "grade_ids", ()))}
        for output, cells in per_output.items():
            covered.update(cells)
            for tier in ("public", "hidden"):
                mine = [g for g in cells if g in scored and (g in hidden) == (tier == "hidden")]
                if mine:
                    items.append(_Item(ex, tier, output, mine))
    return items, [g for g in scored if g not in covered]


def _judge(item: _Item, replies: list[dict]) -> tuple[str | None, str | None]:
    """(disagreement, cannot-confirm cause) for one item, from its replies."""
    from cnnlab.grading.exercise import Raised

    conf = item.conf
    for case, reply in zip(conf.cases, replies):
        notes = []
        if reply.get("called"):
            notes.append(f"it called {reply['called'][0]}, which this check forbids")
        if reply.get("refused"):
            notes.append(f"the worker refused {reply['refused'][0]}")
        note = f" ({'; '.join(notes)})" if notes else ""
        try:
            if "ok" in reply:
                problem = conf.judge(reply["ok"], case)
            elif "raised" in reply and conf.raises:
                problem = conf.judge(Raised(str(reply["raised"]), str(reply.get("message", ""))), case)
            elif "raised" in reply:
                problem = f"raised {str(reply['raised']).rsplit('.', 1)[-1]}: {str(reply.get('message', ''))[:200]}"
            else:
                problem = str(reply.get("error", "no result"))[:200]
        except Exception as exc:  # noqa: BLE001 - a result the judge cannot compare: no verdict
            return None, f"comparing the result raised {type(exc).__name__}: {str(exc)[:200]}{note}"
        if problem:
            return str(problem).strip().replace("\n", " ")[:300] + note, None
    return None, None


def verify(assignment: str, graded_nb, release_nb, source_nb, scores: dict[str, float], *, seconds: int,
           total_seconds: int, memory_mb: int, sb: sandbox.Sandbox | None, student: str | None = None) -> Verdict:
    """Confirm every test cell of this notebook that scored (see the module docstring).

    ``scores``: nbgrader's points per grade_id; only cells that scored are examined; ``student``:
    the grader's record of who submitted (quiz variants are per student). Never raises: any error
    of the verifier itself withdraws the points it could not confirm.
    """
    verdict = Verdict()
    try:
        _verify(verdict, assignment, graded_nb, release_nb, source_nb, scores, seconds=seconds,
                total_seconds=total_seconds, memory_mb=memory_mb, sb=sb, student=student)
    except Exception as exc:  # noqa: BLE001 - fail closed, and say why
        cause = f"the verifier failed ({type(exc).__name__}: {str(exc)[:200]})"
        sys.stderr.write(traceback.format_exc(limit=5))
        for g in test_grade_ids(release_nb):
            if scores.get(g, 0) > 0 and g not in verdict.confirmed:
                verdict.withdrawn.setdefault(g, f"{UNCONFIRMED}: {cause}")
        verdict.errors.append(cause)
        verdict.flags.append(f"{UNCONFIRMED}: {cause}")
        verdict.confirmed.clear()
    return verdict


MAX_SKIPS = 3     # pieces of a submission's code that ended the verifier's process, run without


def _withdraw(verdict: Verdict, item: _Item, cause: str, *, infra: bool) -> None:
    for g in item.cells:
        verdict.withdrawn[g] = f"{UNCONFIRMED}: {cause}"
    line = f"{UNCONFIRMED.replace('this check', item.what)} ({item.tier}): {cause}"
    verdict.flags.append(line)
    if infra:
        verdict.errors.append(line)


def _verify(verdict: Verdict, assignment, graded_nb, release_nb, source_nb, scores, *, seconds, total_seconds,
            memory_mb, sb, student) -> None:
    items, orphans = _plan(assignment, release_nb, source_nb, scores, student)
    for g in orphans:
        verdict.withdrawn[g] = f"{UNCONFIRMED}: no exercise record covers this test cell"
        verdict.flags.append(f"{UNCONFIRMED.replace('this check', g)}: no exercise record covers it")
    if not items:
        return
    workers: list[dict] = []      # {"policy": merged policy, "calls": [...]}
    for item in items:
        try:
            conf = _confirmation(item.ex, item.tier, item.output, student)
        except Exception as exc:  # noqa: BLE001 - the record's own error: no verdict
            item.problem, item.infra = f"its record raised {type(exc).__name__}: {str(exc)[:200]}", True
            continue
        if conf is None:
            item.problem = "its record cannot be confirmed outside the notebook"
            continue
        if not conf.cases:
            item.problem = "its record has no case to confirm it with"
            continue
        keep = _kept(item.ex)
        calls = []
        try:
            for case in conf.cases:
                call = {"name": item.ex.name, "mode": "value" if conf.value else "call", "args": list(case.args),
                        "kwargs": dict(case.kwargs), "keep": keep, "helpers": {k: resolve(v) for k, v in conf.helpers.items()},
                        "seconds": int(conf.seconds or seconds)}
                dumps(call, functions=True)
                calls.append(call)
        except (TypeError, ValueError, ImportError, AttributeError) as exc:
            item.problem, item.infra = f"its cases cannot be sent to the worker ({exc})", True
            continue
        item.conf = conf
        item.worker = _place(workers, _policy(conf))
        w = workers[item.worker]
        item.calls = list(range(len(w["calls"]), len(w["calls"]) + len(calls)))
        w["calls"] += calls
    prelude_src, answers = prelude(release_nb), answer_cells(graded_nb)
    if student is not None:   # whose quiz numbers the answer cells see (question(N)): the grader's record
        from cnnlab import quiz

        preamble = quiz.kernel_preamble(student)
        if preamble:
            prelude_src = [preamble, *prelude_src]
    results: list[tuple[list[dict] | None, str | None, bool]] = []
    notes: list[str] = []       # per worker: the student's code it had to leave out
    for w in workers:
        request = {"prelude": prelude_src, "calls": w["calls"], "policy": w["policy"], "argv": [KERNEL_ARGV0]}
        outcome: tuple[list[dict] | None, str | None, bool] = (None, "no attempt", True)
        kept, infra_tries, skips, left_out = list(answers), 0, 0, []
        while True:
            request["answers"] = [src for _, src in kept]
            try:
                reply = _exchange(request, total_seconds=total_seconds, memory_mb=memory_mb, sb=sb)
                calls = reply["calls"]
                if len(calls) != len(w["calls"]) or not all(isinstance(x, dict) for x in calls):
                    raise WorkerFailed("the reply does not match the request")
                sealed = reply.get("sealed") if isinstance(reply.get("sealed"), dict) else {}
                if sealed.get("seccomp") != "on":
                    line = (f"verifier: its worker ran without the system-call filter ({str(sealed.get('seccomp'))[:120]}); "
                            f"the traps hold without it")
                    if line not in verdict.flags:
                        verdict.flags.append(line)
                if sealed.get("landlock") != "on":
                    line = (f"verifier: its worker ran without the kernel's file rule (Landlock: "
                            f"{str(sealed.get('landlock'))[:120]}); the course's code was kept from it by a path check only")
                    if line not in verdict.flags:
                        verdict.flags.append(line)
                outcome = (calls, None, False)
                break
            except WorkerFailed as exc:
                outcome = (None, str(exc), exc.infra)
                if exc.infra and infra_tries < 1:
                    infra_tries += 1
                    continue
                if exc.crashed_at is not None and 0 <= exc.crashed_at < len(kept) and skips < MAX_SKIPS:
                    # the student's code ended the process (as it would end a kernel): the checks
                    # run again without that piece, as the cells before and after it ran in the notebook
                    label, _ = kept.pop(exc.crashed_at)
                    skips += 1
                    left_out.append(f"the code of {label} ended the checking process and was left out")
                    line = f"verifier: the code of {label} {str(exc).split('code ', 1)[-1]}; checked without it"
                    if line not in verdict.flags:
                        verdict.flags.append(line)
                    continue
                break               # the submission's code ran: running it again gives the same
        results.append(outcome)
        notes.append("; ".join(dict.fromkeys(left_out)))
    for item in items:
        verdict.checked += 1
        if item.problem is not None:
            _withdraw(verdict, item, item.problem, infra=item.infra)
            continue
        replies, failure, infra = results[item.worker]
        if replies is None:
            _withdraw(verdict, item, failure or "no reply", infra=infra)
            continue
        mine = [replies[i] for i in item.calls]
        disagreement, cause = _judge(item, mine)
        note = notes[item.worker]
        if note and disagreement is not None and any(str(r.get("raised", "")).endswith("NameError") for r in mine):
            # what it calls was in the code left out: no verdict (a wrong value stays a disagreement)
            cause, disagreement = f"a fresh run of {item.what} on its {item.tier} cases: {disagreement}", None
        if cause is not None:
            _withdraw(verdict, item, f"{cause} ({note})" if note else cause, infra=False)
        elif disagreement is not None:
            for g in item.cells:
                verdict.withdrawn[g] = (f"{TAMPERING}: this check passed in the notebook, but a fresh run of "
                                        f"{item.what} on its {item.tier} cases disagrees ({disagreement})")
            verdict.flags.append(f"{TAMPERING}: {item.what} passed its {item.tier} check in the notebook but "
                                 f"not in the verifier ({disagreement})")
        else:
            verdict.confirmed.update(item.cells)


def _kept(ex) -> list[int] | None:
    """Positions of the outputs the record compares (the rest, such as caches, stay in the worker)."""
    outputs = tuple(getattr(ex, "outputs", ()) or ())
    if getattr(ex, "single", True) or not outputs:
        return None
    compared = set(getattr(ex, "compare", outputs))
    return [i for i, name in enumerate(outputs) if name in compared]
