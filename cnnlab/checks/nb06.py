"""Exercise records of notebook 06 (batch normalization and its relatives).

Exercises: ``batchnorm_forward``, ``batchnorm_backward``, ``spatial_batchnorm_forward``,
``spatial_batchnorm_backward``, ``layernorm_forward``, ``layernorm_backward``, ``groupnorm_forward``,
``fold_batchnorm``.  Test cells call ``nb06.check("batchnorm_forward", batchnorm_forward)`` and
``nb06.check(..., tier="hidden")``; the notebook's last cell calls ``nb06.summary(globals())``.

The caches are prescribed by the notebook (its stubs build them outside the answer block), so a
backward pass is checked on a cache built here from plain arrays, never on the reference's cache:

- ``batchnorm_forward`` and ``layernorm_forward`` return ``{"x", "xhat", "mean", "var", "gamma",
  "eps"}`` (batch norm: mean and var of shape (D,); layer norm: (N, 1));
- ``spatial_batchnorm_forward`` returns ``{"bn_cache": <batchnorm_forward's cache of the (N*H*W, C)
  view x.transpose(0, 2, 3, 1).reshape(-1, C)>, "x_shape": (N, C, H, W)}``.

Batch norm follows the reference (PyTorch's conventions): ``running = (1 - momentum) * running +
momentum * batch``, momentum 0.1, the running variance updated with the unbiased batch variance.
The forward's outputs are compared on the cases; the running statistics it writes into
``bn_param`` are checked by ``extra`` over short sequences of calls (train, train, test).
Public gradient cases compare with central differences of the reference forward, hidden ones with
the reference backward.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from cnnlab.grading import numeric_gradient, rng
from cnnlab.grading.closeness import assert_close
from cnnlab.grading.exercise import Bug, Case, Exercise, Notebook, Problem
from cnnlab.grading.guard import run_guarded
from cnnlab.numpy_ref import batchnorm_backward as _np_batchnorm_backward
from cnnlab.numpy_ref import batchnorm_forward as _np_batchnorm_forward
from cnnlab.numpy_ref import fold_batchnorm as ref_fold_batchnorm
from cnnlab.numpy_ref import groupnorm_forward as _np_groupnorm_forward
from cnnlab.numpy_ref import layernorm_backward as _np_layernorm_backward
from cnnlab.numpy_ref import layernorm_forward as _np_layernorm_forward
from cnnlab.numpy_ref import spatial_batchnorm_backward as _np_spatial_batchnorm_backward
from cnnlab.numpy_ref import spatial_batchnorm_forward as _np_spatial_batchnorm_forward

__all__ = [
    "NOTEBOOK", "check", "summary",
    "ref_batchnorm_forward", "ref_batchnorm_backward", "ref_spatial_batchnorm_forward",
    "ref_spatial_batchnorm_backward", "ref_layernorm_forward", "ref_layernorm_backward",
    "ref_groupnorm_forward", "ref_fold_batchnorm", "bn_cache", "ln_cache", "spatial_cache",
]  # fmt: skip

NOTEBOOK = Notebook("06_batchnorm")
check = NOTEBOOK.check
summary = NOTEBOOK.summary

_STATS = ("running_mean", "running_var")
_GRAD_TOL = {"rtol": 1e-5, "atol": 1e-8}  # central differences are good to about 1e-8


# --------------------------------------------------------------------------------------------
# The notebook's caches, built from plain arrays (the check's own arithmetic)
# --------------------------------------------------------------------------------------------

def bn_cache(x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5) -> dict[str, Any]:
    """Return the cache the notebook's ``batchnorm_forward`` builds in train mode for ``x`` (N, D)."""
    x = np.asarray(x, dtype=float)
    mean, var = x.mean(axis=0), x.var(axis=0)
    xhat = (x - mean) / np.sqrt(var + eps)
    return {"x": x, "xhat": xhat, "mean": mean, "var": var, "gamma": np.asarray(gamma, dtype=float), "eps": eps}


def ln_cache(x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5) -> dict[str, Any]:
    """Return the cache the notebook's ``layernorm_forward`` builds for ``x`` (N, D)."""
    x = np.asarray(x, dtype=float)
    mean, var = x.mean(axis=1, keepdims=True), x.var(axis=1, keepdims=True)
    xhat = (x - mean) / np.sqrt(var + eps)
    return {"x": x, "xhat": xhat, "mean": mean, "var": var, "gamma": np.asarray(gamma, dtype=float), "eps": eps}


def _to_rows(x: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*H*W, C), channels last: one row per pixel of every image."""
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


def spatial_cache(x: np.ndarray, gamma: np.ndarray, eps: float = 1e-5) -> dict[str, Any]:
    """Return the cache the notebook's ``spatial_batchnorm_forward`` builds in train mode for ``x`` (N, C, H, W)."""
    x = np.asarray(x, dtype=float)
    return {"bn_cache": bn_cache(_to_rows(x), gamma, eps), "x_shape": x.shape}


# --------------------------------------------------------------------------------------------
# References in the notebook's formats (numpy_ref underneath)
# --------------------------------------------------------------------------------------------

def ref_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                          bn_param: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The reference ``batchnorm_forward`` returning the notebook's cache (updates ``bn_param`` like it)."""
    mode, eps = bn_param.get("mode"), bn_param.get("eps", 1e-5)
    D = np.shape(x)[1]
    rm = np.asarray(bn_param.get("running_mean", np.zeros(D)), dtype=float)
    rv = np.asarray(bn_param.get("running_var", np.ones(D)), dtype=float)
    out, _ = _np_batchnorm_forward(x, gamma, beta, bn_param)
    if mode == "train":
        cache = bn_cache(x, gamma, eps)
    else:
        xhat = (np.asarray(x, dtype=float) - rm) / np.sqrt(rv + eps)
        cache = {"x": x, "xhat": xhat, "mean": rm, "var": rv, "gamma": gamma, "eps": eps}
    return out, cache


def ref_batchnorm_backward(dout: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference train-mode ``batchnorm_backward`` on the notebook's cache."""
    x, gamma = cache["x"], np.asarray(cache["gamma"], dtype=float)
    _, c = _np_batchnorm_forward(x, gamma, np.zeros_like(gamma), {"mode": "train", "eps": cache["eps"]})
    return _np_batchnorm_backward(dout, c)


def ref_spatial_batchnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                                  bn_param: dict[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The reference ``spatial_batchnorm_forward`` returning the notebook's cache."""
    mode, eps = bn_param.get("mode"), bn_param.get("eps", 1e-5)
    C = np.shape(x)[1]
    rm = np.asarray(bn_param.get("running_mean", np.zeros(C)), dtype=float)
    rv = np.asarray(bn_param.get("running_var", np.ones(C)), dtype=float)
    out, _ = _np_spatial_batchnorm_forward(x, gamma, beta, bn_param)
    rows = _to_rows(np.asarray(x, dtype=float))
    if mode == "train":
        inner = bn_cache(rows, gamma, eps)
    else:
        inner = {"x": rows, "xhat": (rows - rm) / np.sqrt(rv + eps), "mean": rm, "var": rv, "gamma": gamma, "eps": eps}
    return out, {"bn_cache": inner, "x_shape": np.shape(x)}


def ref_spatial_batchnorm_backward(dout: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference train-mode ``spatial_batchnorm_backward`` on the notebook's cache."""
    N, C, H, W = cache["x_shape"]
    inner = cache["bn_cache"]
    x = np.asarray(inner["x"], dtype=float).reshape(N, H, W, C).transpose(0, 3, 1, 2)
    gamma = np.asarray(inner["gamma"], dtype=float)
    _, c = _np_spatial_batchnorm_forward(x, gamma, np.zeros_like(gamma), {"mode": "train", "eps": inner["eps"]})
    return _np_spatial_batchnorm_backward(dout, c)


def ref_layernorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                          eps: float = 1e-5) -> tuple[np.ndarray, dict[str, Any]]:
    """The reference ``layernorm_forward`` returning the notebook's cache."""
    out, _ = _np_layernorm_forward(x, gamma, beta, eps)
    return out, ln_cache(x, gamma, eps)


def ref_layernorm_backward(dout: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reference ``layernorm_backward`` on the notebook's cache."""
    gamma = np.asarray(cache["gamma"], dtype=float)
    _, c = _np_layernorm_forward(cache["x"], gamma, np.zeros_like(gamma), cache["eps"])
    return _np_layernorm_backward(dout, c)


def ref_groupnorm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, eps: float = 1e-5) -> np.ndarray:
    """The reference ``groupnorm_forward``, its output only (the notebook's version returns out)."""
    return _np_groupnorm_forward(x, gamma, beta, G, eps)[0]


# --------------------------------------------------------------------------------------------
# Central differences for the public gradient cases
# --------------------------------------------------------------------------------------------

def _numeric_norm_grads(forward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
                        x: np.ndarray, gamma: np.ndarray, dout: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    beta = np.zeros_like(gamma)
    dx = numeric_gradient(lambda v: forward(v, gamma, beta), x, dout)
    dgamma = numeric_gradient(lambda g: forward(x, g, beta), gamma, dout)
    dbeta = numeric_gradient(lambda b: forward(x, gamma, b), beta, dout)
    return dx, dgamma, dbeta


def _numeric_bn(dout: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    eps = cache["eps"]
    fwd = lambda x, g, b: _np_batchnorm_forward(x, g, b, {"mode": "train", "eps": eps})[0]  # noqa: E731
    return _numeric_norm_grads(fwd, cache["x"], np.asarray(cache["gamma"], dtype=float), dout)


def _numeric_spatial(dout: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    N, C, H, W = cache["x_shape"]
    inner = cache["bn_cache"]
    # contiguous: numeric_gradient perturbs x through a reshape(-1) view, which a transposed array does not give
    x = np.ascontiguousarray(np.asarray(inner["x"], dtype=float).reshape(N, H, W, C).transpose(0, 3, 1, 2))
    fwd = lambda x, g, b: _np_spatial_batchnorm_forward(x, g, b, {"mode": "train", "eps": inner["eps"]})[0]  # noqa: E731
    return _numeric_norm_grads(fwd, x, np.asarray(inner["gamma"], dtype=float), dout)


def _numeric_ln(dout: np.ndarray, cache: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    eps = cache["eps"]
    fwd = lambda x, g, b: _np_layernorm_forward(x, g, b, eps)[0]  # noqa: E731
    return _numeric_norm_grads(fwd, cache["x"], np.asarray(cache["gamma"], dtype=float), dout)


# --------------------------------------------------------------------------------------------
# Running statistics: short sequences of calls, checked after every call
# --------------------------------------------------------------------------------------------

class Scenario:
    """A sequence of calls on one ``bn_param`` dict: ``calls`` is a list of (mode, x, gamma, beta)."""

    def __init__(self, label: str, param: dict[str, Any], calls: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]):
        self.label, self.param, self.calls = label, param, calls


def _stats_of(param: dict[str, Any]) -> dict[str, Any]:
    snap: dict[str, Any] = {}
    for key in _STATS:
        if key not in param:
            snap[key] = None
            continue
        try:
            snap[key] = np.array(param[key], dtype=float, copy=True)
        except (TypeError, ValueError):
            snap[key] = param[key]
    return snap


def _trace(fn: Callable[..., Any], scenario: Scenario, exercise: Exercise | None) -> list[dict[str, Any]]:
    """Run the calls of ``scenario`` and return the running statistics after each call.

    With ``exercise`` the student's calls run under the integrity guard and their errors become
    AssertionError (the guard's message); without it (references and bugs) errors propagate.
    """
    param = copy.deepcopy(scenario.param)
    trace = []
    for mode, x, gamma, beta in scenario.calls:
        param["mode"] = mode
        args = (x.copy(), gamma.copy(), beta.copy(), param)
        if exercise is None:
            fn(*args)
        else:
            run_guarded(fn, *args, exercise=exercise.name, allow=exercise.allow, forbid=exercise.forbid,
                        guard_mode=exercise.guard_mode)
        trace.append(_stats_of(param))
    return trace


def _same_stat(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    except (TypeError, ValueError):
        return False
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9))


def _stats_property(name: str, scenarios: Callable[[str], list[Scenario]]) -> Callable[[Callable[..., Any], str], str]:
    """An ``extra`` that checks the running statistics ``fn`` leaves in ``bn_param`` after each call."""

    def extra(fn: Callable[..., Any], tier: str) -> str:
        ex = NOTEBOOK[name]
        cases = scenarios(tier)
        for i, sc in enumerate(cases):
            where = (f"hidden running-statistics sequence {i + 1} of {len(cases)}: {sc.label}" if tier == "hidden"
                     else f"running-statistics sequence {i + 1} of {len(cases)}: {sc.label}")
            want = _trace(ex.reference, sc, None)
            try:
                got = _trace(fn, sc, ex)
            except AssertionError as exc:
                text = str(exc).split(": ", 1)[-1] if str(exc).startswith(("exercise ", name)) else str(exc)
                raise Problem(f"{ex.title}, {where}:\n  {text}") from None
            for step, (g, w) in enumerate(zip(got, want, strict=True)):
                mode = sc.calls[step][0]
                for key in _STATS:
                    if _same_stat(g[key], w[key]):
                        continue
                    lines = [f"{ex.title}, {where}:"]
                    at = f"after call {step + 1} ({mode} mode)"
                    if g[key] is None:
                        lines.append(f"  {at}, bn_param has no {key!r}: store the updated statistic in "
                                     f"bn_param[{key!r}]")
                    else:
                        try:
                            assert_close(g[key], w[key], name=f"  {at}, bn_param[{key!r}]", guesses=False,
                                         show_values=(tier == "public"))
                            lines.append(f"  {at}, bn_param[{key!r}] differs")
                        except AssertionError as diff:
                            lines.append(str(diff))
                    bug = _stats_bug(ex, sc, step, key, g[key], w[key])
                    if bug is not None:
                        raise Problem("\n".join(lines), diagnosis=ex._diagnosis(bug, where))
                    raise Problem("\n".join(lines))
        return "running statistics right"

    return extra


def _stats_bug(ex: Exercise, sc: Scenario, step: int, key: str, got: Any, want: Any) -> Bug | None:
    # only the bugs recognised here: a bug with wrong outputs would have failed the cases already
    for bug in (b for b in ex.bugs if not b.by_output):
        try:
            trace = _trace(ex.bug_function(bug), sc, None)
        except Exception:  # noqa: BLE001 - a bug that does not apply to this sequence
            continue
        wrong = trace[step][key]
        if not _same_stat(wrong, want) and _same_stat(wrong, got):
            return bug
    return None


# --------------------------------------------------------------------------------------------
# Exercise 1: batchnorm_forward
# --------------------------------------------------------------------------------------------

def _features(g: np.random.Generator, n: int, d: int, spread: bool = False) -> np.ndarray:
    """A batch whose features have different means and scales (tiny ones too, when ``spread``)."""
    scale = np.logspace(-2, 1, d) if spread else g.uniform(0.5, 3.0, d)
    return g.standard_normal((n, d)) * scale + g.uniform(-3, 3, d)


def _affine(g: np.random.Generator, d: int) -> tuple[np.ndarray, np.ndarray]:
    return g.uniform(0.5, 2.0, d), g.uniform(-1.0, 1.0, d)


def _running(g: np.random.Generator, d: int) -> dict[str, np.ndarray]:
    return {"running_mean": g.uniform(-1, 1, d), "running_var": g.uniform(0.5, 2.0, d)}


def _bn_public() -> list[Case]:
    g = rng(6)
    x1, (g1, b1) = _features(g, 4, 3), _affine(g, 3)
    x2, (g2, b2) = _features(g, 6, 5, spread=True), _affine(g, 5)
    x3, (g3, b3) = _features(g, 5, 3), _affine(g, 3)
    x4, (g4, b4) = _features(g, 8, 4), _affine(g, 4)
    return [Case((x1, g1, b1, {"mode": "train"}), label="train mode, a batch of 4 with 3 features"),
            Case((x2, g2, b2, {"mode": "train"}), label="train mode, features from 0.01 to 10 in scale"),
            Case((x3, g3, b3, {"mode": "test", **_running(g, 3)}), label="test mode, given running statistics"),
            Case((x4, g4, b4, {"mode": "train", "eps": 1e-2}), label="train mode, eps = 0.01")]


def _bn_hidden() -> list[Case]:
    g = rng(60_606)
    cases = []
    for n, d in ((2, 3), (7, 1), (16, 6)):
        x, (ga, be) = _features(g, n, d, spread=True), _affine(g, d)
        cases.append(Case((x, ga, be, {"mode": "train"}), label=f"train mode, N={n}, D={d}"))
    x, (ga, be) = _features(g, 9, 4), _affine(g, 4)
    cases.append(Case((x, ga, be, {"mode": "test", "eps": 1e-3, **_running(g, 4)}), label="test mode, eps 1e-3"))
    x, (ga, be) = _features(g, 1, 5), _affine(g, 5)
    cases.append(Case((x, ga, be, {"mode": "test", **_running(g, 5)}), label="test mode on a batch of one"))
    x, (ga, be) = _features(g, 10, 3), _affine(g, 3)
    cases.append(Case((x.astype(np.float32), ga.astype(np.float32), be.astype(np.float32), {"mode": "train"}),
                      label="float32 train batch"))
    return cases


def _bn_scenarios(tier: str, make_x: Callable[[np.random.Generator, int, int], np.ndarray] | None = None,
                  d: int = 3) -> list[Scenario]:
    g = rng(7 if tier == "public" else 70_707)
    make_x = make_x or (lambda g, n, d: _features(g, n, d))
    ga, be = _affine(g, d)
    first = Scenario("two train-mode calls on a fresh bn_param (momentum 0.1)", {},
                     [("train", make_x(g, 5, d), ga, be), ("train", make_x(g, 5, d), ga, be)])
    second = Scenario("a train-mode call with momentum 0.3 on given running statistics",
                      {"momentum": 0.3, **_running(g, d)}, [("train", make_x(g, 4, d), ga, be)])
    third = Scenario("a test-mode call after a train-mode call", {"momentum": 0.2, **_running(g, d)},
                     [("train", make_x(g, 6, d), ga, be), ("test", make_x(g, 3, d), ga, be)])
    if tier == "hidden":
        first.label = "three train-mode calls, then a test-mode call"
        first.calls += [("train", make_x(g, 2, d), ga, be), ("test", make_x(g, 4, d), ga, be)]
    return [first, second, third]


_BN_HEAD = '''def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.1)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D))
    running_var = bn_param.get("running_var", np.ones(D))
'''
_BN_TAIL = '''    cache = {"x": x, "xhat": xhat, "mean": mean, "var": var, "gamma": gamma, "eps": eps}
    return out, cache
'''
_BN_UPDATE = '''        n = x.shape[0]
        bn_param["running_mean"] = (1 - momentum) * running_mean + momentum * mean
        bn_param["running_var"] = (1 - momentum) * running_var + momentum * var * n / (n - 1)
'''
_BN_NORM = '''    xhat = (x - mean) / np.sqrt(var + eps)
    out = gamma * xhat + beta
'''


def _bn_code(stats: str = "        mean = x.mean(axis=0)\n        var = x.var(axis=0)\n", update: str = _BN_UPDATE,
             test: str = "        mean, var = running_mean, running_var\n", norm: str = _BN_NORM) -> str:
    return _BN_HEAD + '    if mode == "train":\n' + stats + update + "    else:\n" + test + norm + _BN_TAIL


_SPATIAL_F = ("spatial_batchnorm_forward",)

NOTEBOOK.add(Exercise(
    "batchnorm_forward", 1, ref_batchnorm_forward, _bn_public, _bn_hidden,
    outputs=("out", "cache"), compare=("out",),
    extra=_stats_property("batchnorm_forward", _bn_scenarios),
    bugs=[
        Bug("the variance is taken over the wrong axis: each feature's statistics are over the batch (axis 0)",
            _bn_code(stats="        mean = x.mean(axis=0)\n        var = x.var(axis=1, keepdims=True)\n"),
            fix="var = x.var(axis=0), like the mean", loses=_SPATIAL_F),
        Bug("statistics per sample over its features: that is layer norm; batch norm averages over the batch (axis 0)",
            _bn_code(stats="        mean = x.mean(axis=1, keepdims=True)\n        var = x.var(axis=1, keepdims=True)\n"),
            fix="mean = x.mean(axis=0), var = x.var(axis=0)", loses=_SPATIAL_F),
        Bug("one mean and variance for the whole batch: batch norm keeps one per feature (axis=0)",
            _bn_code(stats="        mean = x.mean()\n        var = x.var()\n"), loses=_SPATIAL_F),
        Bug("normalised with the unbiased variance (ddof=1): batch norm divides by N, the biased variance",
            _bn_code(stats="        mean = x.mean(axis=0)\n        var = x.var(axis=0, ddof=1)\n",
                     update=_BN_UPDATE.replace(" * n / (n - 1)", "")),
            fix="var = x.var(axis=0) to normalise; the N / (N - 1) correction is for the running variance only",
            loses=_SPATIAL_F),
        Bug("epsilon outside the square root: divide by np.sqrt(var + eps), not np.sqrt(var) + eps",
            _bn_code(norm="    xhat = (x - mean) / (np.sqrt(var) + eps)\n    out = gamma * xhat + beta\n"),
            loses=_SPATIAL_F),
        Bug("test mode uses the batch statistics: at test time normalise with the running mean and variance",
            _bn_code(test="        mean, var = x.mean(axis=0), x.var(axis=0)\n"), loses=_SPATIAL_F),
        Bug("gamma and beta are not applied: out = gamma * xhat + beta",
            _bn_code(norm="    xhat = (x - mean) / np.sqrt(var + eps)\n    out = xhat\n"), loses=_SPATIAL_F),
        Bug("gamma and beta swapped: gamma scales, beta shifts",
            _bn_code(norm="    xhat = (x - mean) / np.sqrt(var + eps)\n    out = beta * xhat + gamma\n"),
            loses=_SPATIAL_F),
        Bug("the running statistics are updated in test mode too: test mode must leave bn_param unchanged",
            _BN_HEAD + "    mean, var = x.mean(axis=0), x.var(axis=0)\n    n = x.shape[0]\n"
            '    bn_param["running_mean"] = (1 - momentum) * running_mean + momentum * mean\n'
            '    bn_param["running_var"] = (1 - momentum) * running_var + momentum * var * n / max(n - 1, 1)\n'
            '    if mode == "test":\n        mean, var = running_mean, running_var\n' + _BN_NORM + _BN_TAIL,
            fix='update bn_param only inside `if mode == "train":`', by_output=False, loses=_SPATIAL_F),
        Bug("the running statistics are not stored in train mode: write them back into bn_param",
            _bn_code(update=_BN_UPDATE.replace('bn_param["running_mean"]', "running_mean")
                     .replace('bn_param["running_var"]', "running_var")),
            fix='bn_param["running_mean"] = ... and bn_param["running_var"] = ...', by_output=False,
            loses=_SPATIAL_F),
        Bug("momentum the wrong way round: running = (1 - momentum) * running + momentum * batch",
            _bn_code(update=_BN_UPDATE.replace("(1 - momentum) * running_mean + momentum * mean",
                                               "momentum * running_mean + (1 - momentum) * mean")
                     .replace("(1 - momentum) * running_var + momentum * var",
                              "momentum * running_var + (1 - momentum) * var")),
            fix="momentum = 0.1 means: keep 90% of the old running value, take 10% of the batch's",
            by_output=False, loses=_SPATIAL_F),
        Bug("the running variance is updated with the biased batch variance: use the unbiased one, var * N / (N - 1)",
            _bn_code(update=_BN_UPDATE.replace(" * n / (n - 1)", "")),
            fix="this course follows PyTorch: the running variance estimates the population variance",
            by_output=False, loses=_SPATIAL_F),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 2: batchnorm_backward
# --------------------------------------------------------------------------------------------

def _bn_grad_public() -> list[Case]:
    g = rng(8)
    cases = []
    for n, d, label in ((4, 3, "a batch of 4 with 3 features"), (6, 5, "features from 0.01 to 10 in scale")):
        x, (ga, _) = _features(g, n, d, spread=(d == 5)), _affine(g, d)
        cases.append(Case((g.standard_normal((n, d)), bn_cache(x, ga)), label=label + ", against central differences",
                          expect=_numeric_bn, **_GRAD_TOL))
    return cases


def _bn_grad_hidden() -> list[Case]:
    g = rng(80_808)
    cases = []
    for n, d, eps in ((2, 4, 1e-5), (9, 3, 1e-5), (16, 7, 1e-3), (5, 1, 1e-5)):
        x, (ga, _) = _features(g, n, d, spread=True), _affine(g, d)
        cases.append(Case((g.standard_normal((n, d)), bn_cache(x, ga, eps)), label=f"N={n}, D={d}, eps={eps:g}"))
    return cases


_BNB_HEAD = '''def batchnorm_backward(dout, cache):
    x, xhat, var, gamma, eps = cache["x"], cache["xhat"], cache["var"], cache["gamma"], cache["eps"]
    N = x.shape[0]
    inv_std = 1.0 / np.sqrt(var + eps)
'''
_BNB_SUMS = "    dgamma = np.sum(dout * xhat, axis=0)\n    dbeta = np.sum(dout, axis=0)\n"
_BNB_DX = ("    dxhat = dout * gamma\n"
           "    dx = inv_std * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))\n")
_SPATIAL_B = ("spatial_batchnorm_backward",)

NOTEBOOK.add(Exercise(
    "batchnorm_backward", 2, ref_batchnorm_backward, _bn_grad_public, _bn_grad_hidden,
    outputs=("dx", "dgamma", "dbeta"),
    bugs=[
        Bug("dx misses the terms through the batch mean and variance (the 'simplified' gamma * dout / std)",
            _BNB_HEAD + _BNB_SUMS + "    dx = gamma * dout * inv_std\n    return dx, dgamma, dbeta\n",
            fix="the mean and the variance depend on every x: dx = inv_std * (dxhat - mean(dxhat) - "
                "xhat * mean(dxhat * xhat)), means over the batch", loses=_SPATIAL_B),
        Bug("dx misses the term through the batch variance (only the mean's term is there)",
            _BNB_HEAD + _BNB_SUMS + "    dxhat = dout * gamma\n    dx = inv_std * (dxhat - dxhat.mean(axis=0))\n"
            "    return dx, dgamma, dbeta\n", loses=_SPATIAL_B),
        Bug("dgamma and dbeta are not summed over the batch: one gradient per feature, shape (D,)",
            _BNB_HEAD + "    dgamma = dout * xhat\n    dbeta = dout\n" + _BNB_DX + "    return dx, dgamma, dbeta\n",
            fix="np.sum(..., axis=0)", loses=_SPATIAL_B),
        Bug("dgamma and dbeta swapped: dgamma = sum(dout * xhat), dbeta = sum(dout)",
            _BNB_HEAD + _BNB_SUMS + _BNB_DX + "    return dx, dbeta, dgamma\n", loses=_SPATIAL_B),
        Bug("gamma left out of dx: the gradient reaching xhat is dout * gamma",
            _BNB_HEAD + _BNB_SUMS + _BNB_DX.replace("dout * gamma", "dout") + "    return dx, dgamma, dbeta\n",
            loses=_SPATIAL_B),
        Bug("the means in dx are over the features (axis 1) instead of the batch (axis 0)",
            _BNB_HEAD + _BNB_SUMS + _BNB_DX.replace("axis=0", "axis=1, keepdims=True") + "    return dx, dgamma, dbeta\n",
            loses=_SPATIAL_B),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 3: spatial_batchnorm_forward
# --------------------------------------------------------------------------------------------

def _images(g: np.random.Generator, n: int, c: int, h: int, w: int, spread: bool = False) -> np.ndarray:
    scale = np.logspace(-2, 1, c) if spread else g.uniform(0.5, 3.0, c)
    return g.standard_normal((n, c, h, w)) * scale[:, None, None] + g.uniform(-3, 3, c)[:, None, None]


def _sbn_public() -> list[Case]:
    g = rng(9)
    x1, (g1, b1) = _images(g, 2, 3, 4, 5), _affine(g, 3)
    x2, (g2, b2) = _images(g, 3, 4, 3, 3, spread=True), _affine(g, 4)
    x3, (g3, b3) = _images(g, 2, 3, 4, 4), _affine(g, 3)
    return [Case((x1, g1, b1, {"mode": "train"}), label="train mode, 2 images, 3 channels of 4x5"),
            Case((x2, g2, b2, {"mode": "train"}), label="train mode, channels from 0.01 to 10 in scale"),
            Case((x3, g3, b3, {"mode": "test", **_running(g, 3)}), label="test mode, given running statistics")]


def _sbn_hidden() -> list[Case]:
    g = rng(90_909)
    cases = []
    for shape in ((1, 2, 3, 3), (4, 5, 2, 6), (3, 1, 5, 5)):
        x, (ga, be) = _images(g, *shape, spread=True), _affine(g, shape[1])
        cases.append(Case((x, ga, be, {"mode": "train"}), label=f"train mode, x of shape {shape}"))
    x, (ga, be) = _images(g, 1, 4, 3, 2), _affine(g, 4)
    cases.append(Case((x, ga, be, {"mode": "test", "eps": 1e-3, **_running(g, 4)}), label="test mode, one image"))
    return cases


def _sbn_scenarios(tier: str) -> list[Scenario]:
    return _bn_scenarios(tier, make_x=lambda g, n, c: _images(g, max(n // 2, 1), c, 2, 3), d=3)


_SBN_HEAD = '''def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
'''
_SBN_TAIL = '''    cache = {"bn_cache": bn_cache, "x_shape": x.shape}
    return out, cache
'''
_SBN_ROWS = "    rows = x.transpose(0, 2, 3, 1).reshape(-1, C)\n"
_SBN_BACK = "    out = out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
_SBN_CALL = "    out_rows, bn_cache = batchnorm_forward(rows, gamma, beta, bn_param)\n"

NOTEBOOK.add(Exercise(
    "spatial_batchnorm_forward", 3, ref_spatial_batchnorm_forward, _sbn_public, _sbn_hidden,
    outputs=("out", "cache"), compare=("out",), uses=("batchnorm_forward",),
    extra=_stats_property("spatial_batchnorm_forward", _sbn_scenarios),
    bugs=[
        Bug("normalised per pixel (statistics over the batch only): spatial batch norm pools N, H and W per channel",
            _SBN_HEAD + "    rows = x.reshape(N, -1)\n    g = np.repeat(gamma, H * W)\n    b = np.repeat(beta, H * W)\n"
            + "    out_rows, bn_cache = batchnorm_forward(rows, g, b, bn_param)\n"
            + "    out = out_rows.reshape(N, C, H, W)\n" + _SBN_TAIL,
            fix="move C last and make one row per pixel: x.transpose(0, 2, 3, 1).reshape(-1, C)"),
        Bug("reshaped to (N*H*W, C) without moving C last first: the rows mix channels",
            _SBN_HEAD + "    rows = x.reshape(-1, C)\n" + _SBN_CALL + "    out = out_rows.reshape(N, C, H, W)\n"
            + _SBN_TAIL, fix="x.transpose(0, 2, 3, 1).reshape(-1, C), and back the same way"),
        Bug("the result is reshaped back without moving C back to axis 1",
            _SBN_HEAD + _SBN_ROWS + _SBN_CALL + "    out = out_rows.reshape(N, C, H, W)\n" + _SBN_TAIL,
            fix="out_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)"),
        Bug("statistics per image and channel (over H and W only): that is instance norm",
            _SBN_HEAD + "    rows = x.reshape(N * C, H * W).T\n    g = np.tile(gamma, N)\n    b = np.tile(beta, N)\n"
            + '    p = {"mode": "train", "eps": bn_param.get("eps", 1e-5)}\n'
            + "    out_rows, bn_cache = batchnorm_forward(rows, g, b, p)\n"
            + "    out = out_rows.T.reshape(N, C, H, W)\n" + _SBN_TAIL),
        Bug("a copy of bn_param is passed on: the running statistics never reach the caller's bn_param",
            _SBN_HEAD + _SBN_ROWS + "    out_rows, bn_cache = batchnorm_forward(rows, gamma, beta, dict(bn_param))\n"
            + _SBN_BACK + _SBN_TAIL, fix="pass bn_param itself to batchnorm_forward", by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 4: spatial_batchnorm_backward
# --------------------------------------------------------------------------------------------

def _sbn_grad_public() -> list[Case]:
    g = rng(10)
    x, (ga, _) = _images(g, 2, 3, 3, 4), _affine(g, 3)
    return [Case((g.standard_normal(x.shape), spatial_cache(x, ga)),
                 label="2 images, 3 channels of 3x4, against central differences", expect=_numeric_spatial, **_GRAD_TOL)]


def _sbn_grad_hidden() -> list[Case]:
    g = rng(101_010)
    cases = []
    for shape in ((1, 2, 3, 3), (4, 5, 2, 6), (3, 1, 4, 4)):
        x, (ga, _) = _images(g, *shape, spread=True), _affine(g, shape[1])
        cases.append(Case((g.standard_normal(shape), spatial_cache(x, ga)), label=f"x of shape {shape}"))
    return cases


_SBNB_HEAD = '''def spatial_batchnorm_backward(dout, cache):
    N, C, H, W = cache["x_shape"]
'''
_SBNB_TAIL = "    return dx, dgamma, dbeta\n"

NOTEBOOK.add(Exercise(
    "spatial_batchnorm_backward", 4, ref_spatial_batchnorm_backward, _sbn_grad_public, _sbn_grad_hidden,
    outputs=("dx", "dgamma", "dbeta"), uses=("batchnorm_backward",),
    bugs=[
        Bug("dout reshaped to (N*H*W, C) without moving C last first: its rows do not match the cache's",
            _SBNB_HEAD + "    dx_rows, dgamma, dbeta = batchnorm_backward(dout.reshape(-1, C), cache['bn_cache'])\n"
            "    dx = dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n" + _SBNB_TAIL,
            fix="dout.transpose(0, 2, 3, 1).reshape(-1, C)"),
        Bug("dx reshaped back without moving C back to axis 1",
            _SBNB_HEAD + "    d = dout.transpose(0, 2, 3, 1).reshape(-1, C)\n"
            "    dx_rows, dgamma, dbeta = batchnorm_backward(d, cache['bn_cache'])\n"
            "    dx = dx_rows.reshape(N, C, H, W)\n" + _SBNB_TAIL,
            fix="dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)"),
        Bug("dgamma and dbeta are summed over the batch only: sum over N, H and W (one value per channel)",
            _SBNB_HEAD + "    d = dout.transpose(0, 2, 3, 1).reshape(-1, C)\n"
            "    dx_rows, _, _ = batchnorm_backward(d, cache['bn_cache'])\n"
            "    dx = dx_rows.reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
            "    xhat = cache['bn_cache']['xhat'].reshape(N, H, W, C).transpose(0, 3, 1, 2)\n"
            "    dgamma = (dout * xhat).sum(axis=0)\n    dbeta = dout.sum(axis=0)\n" + _SBNB_TAIL),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 5: fold_batchnorm
# --------------------------------------------------------------------------------------------

def _bn_layer(g: np.random.Generator, f: int, tiny: bool = False) -> tuple[np.ndarray, ...]:
    var = g.uniform(1e-4, 1e-3, f) if tiny else g.uniform(0.3, 3.0, f)
    return g.uniform(0.5, 2.0, f), g.uniform(-1, 1, f), g.uniform(-2, 2, f), var


def _fold_public() -> list[Case]:
    g = rng(14)
    w1, b1 = g.standard_normal((4, 3, 3, 3)), g.standard_normal(4)
    w2, b2 = g.standard_normal((3, 2, 1, 1)), g.standard_normal(3)
    w3 = g.standard_normal((2, 3, 3, 3))
    # the first case shows every bug plainly: running variances about 1e-4 make eps (1e-5) change the
    # scale by several percent, and running means far from 0 make a forgotten mean obvious
    return [Case((w1, b1, *_bn_layer(g, 4, tiny=True)), label="4 filters 3x3x3 with bias, running variances "
                 "about 1e-4 (eps matters)"),
            Case((w2, b2, *_bn_layer(g, 3)), label="1x1 filters"),
            Case((w3, None, *_bn_layer(g, 2)), {"eps": 1e-3}, label="a conv without bias (b=None), eps = 1e-3")]


def _fold_hidden() -> list[Case]:
    g = rng(141_414)
    cases = []
    for (f, c, k), bias in (((6, 2, 3), True), ((1, 4, 5), True), ((5, 5, 1), False), ((3, 1, 2), True)):
        w = g.standard_normal((f, c, k, k))
        b = g.standard_normal(f) if bias else None
        tiny = f in (6, 5)
        cases.append(Case((w, b, *_bn_layer(g, f, tiny=tiny)), label=f"{f} filters {k}x{k}x{c}"
                          + ("" if bias else ", no bias") + (", running variances about 1e-4" if tiny else "")))
    return cases


_FOLD_HEAD = '''def fold_batchnorm(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    if b is None:
        b = np.zeros(w.shape[0])
'''
_FOLD_SCALE = "    scale = gamma / np.sqrt(running_var + eps)\n"
_FOLD_W = "    w_folded = w * scale[:, None, None, None]\n"

NOTEBOOK.add(Exercise(
    "fold_batchnorm", 5, ref_fold_batchnorm, _fold_public, _fold_hidden, outputs=("w_folded", "b_folded"),
    bugs=[
        Bug("the conv's own bias is forgotten: it passes through the batch norm too, b' = scale * (b - mean) + beta",
            _FOLD_HEAD + _FOLD_SCALE + _FOLD_W + "    b_folded = beta - scale * running_mean\n"
            "    return w_folded, b_folded\n"),
        Bug("the conv's bias is not scaled: b' = scale * (b - running_mean) + beta",
            _FOLD_HEAD + _FOLD_SCALE + _FOLD_W + "    b_folded = b - scale * running_mean + beta\n"
            "    return w_folded, b_folded\n"),
        Bug("beta scaled too: beta is added after the scaling, b' = scale * (b - running_mean) + beta",
            _FOLD_HEAD + _FOLD_SCALE + _FOLD_W + "    b_folded = scale * (b - running_mean + beta)\n"
            "    return w_folded, b_folded\n"),
        Bug("the scale uses the variance, not the standard deviation: gamma / np.sqrt(running_var + eps)",
            _FOLD_HEAD + "    scale = gamma / (running_var + eps)\n" + _FOLD_W
            + "    b_folded = scale * (b - running_mean) + beta\n    return w_folded, b_folded\n"),
        Bug("epsilon outside the square root: gamma / np.sqrt(running_var + eps), not np.sqrt(running_var) + eps",
            _FOLD_HEAD + "    scale = gamma / (np.sqrt(running_var) + eps)\n" + _FOLD_W
            + "    b_folded = scale * (b - running_mean) + beta\n    return w_folded, b_folded\n"),
        Bug("the running mean is forgotten: the batch norm subtracts it before scaling, b' = scale * (b - running_mean) "
            "+ beta",
            _FOLD_HEAD + _FOLD_SCALE + _FOLD_W + "    b_folded = scale * b + beta\n    return w_folded, b_folded\n"),
        Bug("eps is forgotten: the scale is gamma / np.sqrt(running_var + eps), which matters when a running "
            "variance is small",
            _FOLD_HEAD + "    scale = gamma / np.sqrt(running_var)\n" + _FOLD_W
            + "    b_folded = scale * (b - running_mean) + beta\n    return w_folded, b_folded\n"),
        Bug("the weights are not scaled: every weight of filter f is multiplied by scale[f]",
            _FOLD_HEAD + _FOLD_SCALE + "    w_folded = w.copy()\n"
            "    b_folded = scale * (b - running_mean) + beta\n    return w_folded, b_folded\n"),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 6: layernorm_forward
# --------------------------------------------------------------------------------------------

def _samples(g: np.random.Generator, n: int, d: int) -> np.ndarray:
    """A batch whose samples have different means and scales (one tiny)."""
    scale = np.logspace(-2, 1, n)[:, None]
    return g.standard_normal((n, d)) * scale + g.uniform(-3, 3, (n, 1))


def _ln_public() -> list[Case]:
    g = rng(11)
    x1, (g1, b1) = _samples(g, 4, 4), _affine(g, 4)
    x2, (g2, b2) = _samples(g, 3, 6), _affine(g, 6)
    x3, (g3, b3) = _samples(g, 5, 2), _affine(g, 2)
    return [Case((x1, g1, b1), label="a square batch (N = D = 4)"),
            Case((x2, g2, b2), label="3 samples, 6 features, from 0.01 to 10 in scale"),
            Case((x3, g3, b3), {"eps": 1e-2}, label="5 samples, 2 features, eps = 0.01")]


def _ln_hidden() -> list[Case]:
    g = rng(111_111)
    cases = []
    for n, d in ((1, 5), (6, 6), (8, 3), (2, 9)):
        x, (ga, be) = _samples(g, n, d), _affine(g, d)
        cases.append(Case((x, ga, be), label=f"N={n}, D={d}"))
    x, (ga, be) = _samples(g, 4, 7), _affine(g, 7)
    cases.append(Case((x.astype(np.float32), ga.astype(np.float32), be.astype(np.float32)), {"eps": 1e-3},
                      label="float32, eps 1e-3"))
    return cases


_LN_HEAD = "def layernorm_forward(x, gamma, beta, eps=1e-5):\n"
_LN_TAIL = '''    cache = {"x": x, "xhat": xhat, "mean": mean, "var": var, "gamma": gamma, "eps": eps}
    return out, cache
'''
_LN_STATS = "    mean = x.mean(axis=1, keepdims=True)\n    var = x.var(axis=1, keepdims=True)\n"


def _ln_code(stats: str = _LN_STATS, xhat: str = "    xhat = (x - mean) / np.sqrt(var + eps)\n",
             out: str = "    out = gamma * xhat + beta\n") -> str:
    return _LN_HEAD + stats + xhat + out + _LN_TAIL


NOTEBOOK.add(Exercise(
    "layernorm_forward", 6, ref_layernorm_forward, _ln_public, _ln_hidden, outputs=("out", "cache"), compare=("out",),
    bugs=[
        Bug("gamma and beta per sample: they stay one per feature, shape (D,); only the statistics are per sample",
            _ln_code(out="    out = gamma[:, None] * xhat + beta[:, None]\n"),
            fix="out = gamma * xhat + beta (broadcast over the rows)"),
        Bug("statistics over the batch (axis 0): that is batch norm; layer norm normalises each sample over its features",
            _ln_code(stats="    mean = x.mean(axis=0)\n    var = x.var(axis=0)\n")),
        Bug("the per-sample statistics lost their axis (keepdims=False), so they broadcast along the features",
            _ln_code(stats="    mean = x.mean(axis=1)\n    var = x.var(axis=1)\n"),
            fix="x.mean(axis=1, keepdims=True): shape (N, 1)"),
        Bug("epsilon outside the square root: divide by np.sqrt(var + eps), not np.sqrt(var) + eps",
            _ln_code(xhat="    xhat = (x - mean) / (np.sqrt(var) + eps)\n")),
        Bug("normalised with the unbiased variance (ddof=1): layer norm divides by D",
            _ln_code(stats="    mean = x.mean(axis=1, keepdims=True)\n    var = x.var(axis=1, ddof=1, keepdims=True)\n")),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 7: layernorm_backward
# --------------------------------------------------------------------------------------------

def _ln_grad_public() -> list[Case]:
    g = rng(12)
    cases = []
    for n, d in ((3, 5), (4, 4)):
        x, (ga, _) = _samples(g, n, d), _affine(g, d)
        cases.append(Case((g.standard_normal((n, d)), ln_cache(x, ga)),
                          label=f"{n} samples, {d} features, against central differences", expect=_numeric_ln, **_GRAD_TOL))
    return cases


def _ln_grad_hidden() -> list[Case]:
    g = rng(121_212)
    cases = []
    for n, d, eps in ((1, 6, 1e-5), (5, 5, 1e-5), (7, 3, 1e-5), (2, 8, 1e-3)):
        x, (ga, _) = _samples(g, n, d), _affine(g, d)
        cases.append(Case((g.standard_normal((n, d)), ln_cache(x, ga, eps)), label=f"N={n}, D={d}, eps={eps:g}"))
    return cases


_LNB_HEAD = '''def layernorm_backward(dout, cache):
    x, xhat, var, gamma, eps = cache["x"], cache["xhat"], cache["var"], cache["gamma"], cache["eps"]
    inv_std = 1.0 / np.sqrt(var + eps)
'''
_LNB_SUMS = "    dgamma = np.sum(dout * xhat, axis=0)\n    dbeta = np.sum(dout, axis=0)\n"
_LNB_DX = ("    dxhat = dout * gamma\n"
           "    dx = inv_std * (dxhat - dxhat.mean(axis=1, keepdims=True)"
           " - xhat * (dxhat * xhat).mean(axis=1, keepdims=True))\n")
_LNB_RET = "    return dx, dgamma, dbeta\n"

NOTEBOOK.add(Exercise(
    "layernorm_backward", 7, ref_layernorm_backward, _ln_grad_public, _ln_grad_hidden,
    outputs=("dx", "dgamma", "dbeta"),
    bugs=[
        Bug("dx misses the terms through the per-sample mean and variance (the 'simplified' gamma * dout / std)",
            _LNB_HEAD + _LNB_SUMS + "    dx = gamma * dout * inv_std\n" + _LNB_RET),
        Bug("the means in dx are over the batch (axis 0, batch norm's formula); layer norm's are over the features",
            _LNB_HEAD + _LNB_SUMS + "    dxhat = dout * gamma\n"
            "    dx = inv_std * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))\n" + _LNB_RET),
        Bug("dgamma and dbeta summed over the features: gamma and beta are per feature, so sum over the batch (axis 0)",
            _LNB_HEAD + "    dgamma = np.sum(dout * xhat, axis=1)\n    dbeta = np.sum(dout, axis=1)\n" + _LNB_DX
            + _LNB_RET),
        Bug("dgamma and dbeta are not summed over the batch: one gradient per feature, shape (D,)",
            _LNB_HEAD + "    dgamma = dout * xhat\n    dbeta = dout\n" + _LNB_DX + _LNB_RET),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 8: groupnorm_forward
# --------------------------------------------------------------------------------------------

def _gn_public() -> list[Case]:
    g = rng(13)
    x1, (g1, b1) = _images(g, 2, 4, 3, 3), _affine(g, 4)
    x2, (g2, b2) = _images(g, 2, 6, 2, 3, spread=True), _affine(g, 6)
    x3, (g3, b3) = _images(g, 3, 3, 4, 4), _affine(g, 3)
    x4, (g4, b4) = _images(g, 2, 4, 2, 2), _affine(g, 4)
    return [Case((x1, g1, b1, 2), label="4 channels in G=2 groups"),
            Case((x2, g2, b2, 3), label="6 channels in G=3 groups, channels from 0.01 to 10 in scale"),
            Case((x3, g3, b3, 3), label="G = C = 3: instance norm"),
            Case((x4, g4, b4, 1), {"eps": 1e-2}, label="G = 1 (layer norm of each image), eps = 0.01")]


def _gn_hidden() -> list[Case]:
    g = rng(131_313)
    cases = []
    for shape, G in (((1, 8, 2, 2), 4), ((3, 6, 3, 2), 2), ((2, 5, 3, 3), 5), ((2, 4, 1, 5), 1), ((4, 9, 2, 2), 3)):
        x, (ga, be) = _images(g, *shape, spread=True), _affine(g, shape[1])
        cases.append(Case((x, ga, be, G), label=f"x of shape {shape}, G={G}"))
    return cases


_GN_HEAD = "def groupnorm_forward(x, gamma, beta, G, eps=1e-5):\n    N, C, H, W = x.shape\n"
_GN_GROUPS = "    xg = x.reshape(N, G, C // G, H, W)\n"
_GN_STATS = ("    mean = xg.mean(axis=(2, 3, 4), keepdims=True)\n"
             "    var = xg.var(axis=(2, 3, 4), keepdims=True)\n")
_GN_NORM = "    xhat = ((xg - mean) / np.sqrt(var + eps)).reshape(N, C, H, W)\n"
_GN_OUT = "    return gamma.reshape(1, C, 1, 1) * xhat + beta.reshape(1, C, 1, 1)\n"

NOTEBOOK.add(Exercise(
    "groupnorm_forward", 8, ref_groupnorm_forward, _gn_public, _gn_hidden,
    bugs=[
        Bug("groups taken along the wrong axis: reshape to (N, G, C // G, H, W) so that a group is C // G neighbouring "
            "channels",
            _GN_HEAD + "    xg = x.reshape(N, C // G, G, H, W)\n"
            "    mean = xg.mean(axis=(1, 3, 4), keepdims=True)\n    var = xg.var(axis=(1, 3, 4), keepdims=True)\n"
            + _GN_NORM + _GN_OUT),
        Bug("statistics over H and W only (the groups are ignored): that is instance norm, the case G = C",
            _GN_HEAD + "    mean = x.mean(axis=(2, 3), keepdims=True)\n    var = x.var(axis=(2, 3), keepdims=True)\n"
            "    xhat = (x - mean) / np.sqrt(var + eps)\n" + _GN_OUT),
        Bug("statistics pooled over the batch too: group norm normalises each sample on its own",
            _GN_HEAD + _GN_GROUPS + "    mean = xg.mean(axis=(0, 2, 3, 4), keepdims=True)\n"
            "    var = xg.var(axis=(0, 2, 3, 4), keepdims=True)\n" + _GN_NORM + _GN_OUT),
        Bug("statistics over the group's channels only, not its H x W positions",
            _GN_HEAD + _GN_GROUPS + "    mean = xg.mean(axis=2, keepdims=True)\n    var = xg.var(axis=2, keepdims=True)\n"
            + _GN_NORM + _GN_OUT),
        Bug("epsilon outside the square root: divide by np.sqrt(var + eps), not np.sqrt(var) + eps",
            _GN_HEAD + _GN_GROUPS + _GN_STATS
            + "    xhat = ((xg - mean) / (np.sqrt(var) + eps)).reshape(N, C, H, W)\n" + _GN_OUT),
        Bug("gamma and beta are not applied: out = gamma * xhat + beta, per channel",
            _GN_HEAD + _GN_GROUPS + _GN_STATS + _GN_NORM + "    return xhat\n"),
    ],
))
