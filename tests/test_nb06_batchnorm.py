"""Notebook 06 (batch normalization) beyond the generic record tests.

- the train/test mix-up the notebook shows really differs (batch-dependent outputs, a batch of one
  giving beta), and folding BN into the conv gives equal outputs;
- unusual but correct answers get full marks (float32 input, lists instead of tuples, a spatial BN
  written directly over axes (0, 2, 3), layer norm through batch norm on the transpose, group norm
  with a loop over groups);
- blame: a right spatial BN over a wrong batchnorm_forward is told to fix batchnorm_forward;
- the running-statistics property: in-place updates are fine, a missing update is named;
- the with/without-BN experiment is deterministic and starts both nets from the same weights;
- the figures build.
"""

from __future__ import annotations

import matplotlib
import nbformat
import numpy as np
import pytest

from autograder.config import Course
from autograder.sample_class import answer_code
from cnnlab.checks import nb06
from cnnlab.numpy_ref import batchnorm_forward as ref_bn
from cnnlab.numpy_ref import conv_forward as ref_conv
from cnnlab.numpy_ref import spatial_batchnorm_forward as ref_sbn

matplotlib.use("Agg")

ASSIGNMENT = "06_batchnorm"


@pytest.fixture(autouse=True)
def _outside_nbgrader(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def notebook_namespace(replace: dict[str, str] | None = None) -> dict:
    """The globals after the set-up cell and every answer cell, with some answer cells replaced."""
    nb = nbformat.read(Course().source_notebooks(ASSIGNMENT)[0], as_version=4)
    ns: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("grade_id") == "setup" or meta.get("solution")):
            src = (replace or {}).get(meta["grade_id"], answer_code(cell.source))
            exec(compile(src, f"<{meta['grade_id']}>", "exec"), ns)  # noqa: S102
    return ns


@pytest.fixture(scope="module")
def solution() -> dict:
    """The globals of a student who answered everything right (set-up cell and answer cells)."""
    return notebook_namespace()


def _with(solution: dict, code: str) -> dict:
    ns = dict(solution)
    exec(compile(code, "<answer>", "exec"), ns)  # noqa: S102 - test answers
    return ns


def _passes(name: str, fn) -> None:
    for tier in ("public", "hidden"):
        outcome = nb06.NOTEBOOK[name].run(fn, tier)
        assert outcome.passed, outcome.message


# ----------------------------------------------------------------------------- what the notebook shows

def test_train_mode_output_depends_on_the_batch_test_mode_does_not():
    g = np.random.default_rng(3)
    trained = {"mode": "train"}
    for _ in range(50):
        ref_bn(g.standard_normal((32, 3)) * 2 + 1, np.ones(3), np.zeros(3), trained)
    example = np.array([[0.5, 2.0, -1.0]])
    train, test = [], []
    for _ in range(4):
        batch = np.vstack([example, g.standard_normal((7, 3)) * 2 + 1])
        train.append(ref_bn(batch, np.ones(3), np.zeros(3), dict(trained, mode="train"))[0][0])
        test.append(ref_bn(batch, np.ones(3), np.zeros(3), dict(trained, mode="test"))[0][0])
    assert np.ptp(np.array(train), axis=0).min() > 1e-3  # changes with the batch-mates
    assert np.ptp(np.array(test), axis=0).max() < 1e-12  # the same every time


def test_a_batch_of_one_in_train_mode_outputs_beta(solution):
    beta = np.array([0.5, -1.0, 2.0])
    for x in (np.array([[-2.5, 2.0, 10.0]]), np.array([[100.0, -50.0, 3.0]])):
        with np.errstate(all="ignore"):  # N / (N - 1) for the running variance divides by zero
            out, _ = solution["batchnorm_forward"](x, np.ones(3), beta, {"mode": "train"})
        np.testing.assert_allclose(out[0], beta)
    with pytest.raises(ValueError, match="more than 1 value"):
        ref_bn(np.ones((1, 3)), np.ones(3), beta, {"mode": "train"})


def test_test_mode_leaves_bn_param_unchanged(solution):
    param = {"mode": "test", "running_mean": np.array([1.0, 2.0]), "running_var": np.array([3.0, 4.0])}
    solution["batchnorm_forward"](np.random.default_rng(0).standard_normal((5, 2)), np.ones(2), np.zeros(2), param)
    np.testing.assert_array_equal(param["running_mean"], [1.0, 2.0])
    np.testing.assert_array_equal(param["running_var"], [3.0, 4.0])


def test_gamma_sigma_beta_mu_recovers_the_identity(solution):
    x = np.random.default_rng(1).standard_normal((20, 4)) * 3 + 2
    out, _ = solution["batchnorm_forward"](x, np.sqrt(x.var(axis=0) + 1e-5), x.mean(axis=0), {"mode": "train"})
    np.testing.assert_allclose(out, x, atol=1e-12)


@pytest.mark.parametrize("bias", [True, False])
def test_folded_conv_equals_conv_then_batchnorm(solution, bias):
    g = np.random.default_rng(2)
    x = g.standard_normal((2, 3, 7, 9))
    w, b = g.standard_normal((5, 3, 3, 3)), (g.standard_normal(5) if bias else None)
    gamma, beta = g.uniform(0.5, 2, 5), g.standard_normal(5)
    param = {"mode": "test", "running_mean": g.standard_normal(5), "running_var": g.uniform(0.1, 2, 5)}
    z, _ = ref_conv(x, w, b if bias else np.zeros(5), stride=2, pad=1)
    two, _ = ref_sbn(z, gamma, beta, param)
    wf, bf = solution["fold_batchnorm"](w, b, gamma, beta, param["running_mean"], param["running_var"])
    one, _ = ref_conv(x, wf, bf, stride=2, pad=1)
    np.testing.assert_allclose(one, two, rtol=1e-10, atol=1e-12)


def test_running_statistics_follow_pytorch(solution):
    """The convention the notebook teaches (momentum 0.1 on the new batch, unbiased running variance)
    is torch.nn.BatchNorm1d's."""
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(5)
    bn = torch.nn.BatchNorm1d(3, momentum=0.1, dtype=torch.float64)
    param = {"mode": "train", "momentum": 0.1}
    for _ in range(3):
        x = g.standard_normal((6, 3)) * 2 + 1
        out, _ = solution["batchnorm_forward"](x, np.ones(3), np.zeros(3), param)
        want = bn(torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(out, want, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(param["running_mean"], bn.running_mean.numpy(), rtol=1e-12)
    np.testing.assert_allclose(param["running_var"], bn.running_var.numpy(), rtol=1e-12)
    bn.eval()
    x = g.standard_normal((4, 3))
    out, _ = solution["batchnorm_forward"](x, np.ones(3), np.zeros(3), dict(param, mode="test"))
    np.testing.assert_allclose(out, bn(torch.from_numpy(x)).detach().numpy(), rtol=1e-6, atol=1e-8)


# ----------------------------------------------------------------------------- unusual correct answers

def test_solutions_accept_float32_input(solution):
    g = np.random.default_rng(4)
    x = g.standard_normal((6, 3)).astype(np.float32)
    out, _ = solution["batchnorm_forward"](x, np.ones(3, np.float32), np.zeros(3, np.float32), {"mode": "train"})
    want, _ = ref_bn(x, np.ones(3, np.float32), np.zeros(3, np.float32), {"mode": "train"})
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)
    _passes("batchnorm_forward", solution["batchnorm_forward"])  # its hidden tier has a float32 case


LIST_ANSWERS = {
    "batchnorm_backward": '''
def batchnorm_backward(dout, cache):
    xhat, var, gamma, eps = cache["xhat"], cache["var"], cache["gamma"], cache["eps"]
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / np.sqrt(var + eps)
    return [dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)]
''',
    "fold_batchnorm": '''
def fold_batchnorm(w, b, gamma, beta, running_mean, running_var, eps=1e-5):
    s = gamma / np.sqrt(running_var + eps)
    b = 0.0 if b is None else b
    return [w * s[:, None, None, None], s * (b - running_mean) + beta]
''',
    "layernorm_forward": '''
def layernorm_forward(x, gamma, beta, eps=1e-5):
    # the CS231n trick: layer norm is batch norm of the transpose, then the per-feature affine
    xhat_t, _ = batchnorm_forward(x.T, np.ones(x.shape[0]), np.zeros(x.shape[0]), {"mode": "train", "eps": eps})
    xhat = xhat_t.T
    return [gamma * xhat + beta, {"xhat": xhat}]
''',
}


@pytest.mark.parametrize("name", sorted(LIST_ANSWERS))
def test_lists_and_other_correct_ways_pass(solution, name):
    _passes(name, _with(solution, LIST_ANSWERS[name])[name])


def test_spatial_batchnorm_written_directly_passes(solution):
    code = '''
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    eps, m = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.1)
    C = x.shape[1]
    if bn_param["mode"] == "train":
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        n = x.size // C
        rm = bn_param.get("running_mean", np.zeros(C))
        rv = bn_param.get("running_var", np.ones(C))
        rm *= 1 - m          # in place on the caller's array: fine
        rm += m * mean
        bn_param["running_mean"] = rm
        bn_param["running_var"] = (1 - m) * rv + m * var * n / (n - 1)
    else:
        mean, var = bn_param["running_mean"], bn_param["running_var"]
    shape = (1, C, 1, 1)
    out = gamma.reshape(shape) * (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) + beta.reshape(shape)
    return out, None
'''
    _passes("spatial_batchnorm_forward", _with(solution, code)["spatial_batchnorm_forward"])


def test_groupnorm_with_a_loop_over_groups_passes(solution):
    code = '''
def groupnorm_forward(x, gamma, beta, G, eps=1e-5):
    out = np.empty_like(x, dtype=float)
    k = x.shape[1] // G
    for grp in range(G):
        part = x[:, grp * k:(grp + 1) * k]
        mu = part.mean(axis=(1, 2, 3), keepdims=True)
        var = part.var(axis=(1, 2, 3), keepdims=True)
        out[:, grp * k:(grp + 1) * k] = (part - mu) / np.sqrt(var + eps)
    return out * gamma[None, :, None, None] + beta[None, :, None, None]
'''
    _passes("groupnorm_forward", _with(solution, code)["groupnorm_forward"])


# ----------------------------------------------------------------------------- messages

def test_spatial_blames_a_wrong_batchnorm_forward(solution):
    bug = nb06.NOTEBOOK["batchnorm_forward"].bug("epsilon outside")
    ns = notebook_namespace({"batchnorm_forward": bug.code})  # spatial's globals hold the wrong helper
    outcome = nb06.NOTEBOOK["spatial_batchnorm_forward"].run(ns["spatial_batchnorm_forward"], "public")
    assert not outcome.passed
    assert "calls your batchnorm_forward, which fails its own check" in outcome.message
    assert "epsilon outside the square root" in outcome.message
    assert len(outcome.message.splitlines()) <= 15


def test_missing_running_statistics_are_named(solution):
    bug = nb06.NOTEBOOK["batchnorm_forward"].bug("the running statistics are not stored")
    outcome = nb06.NOTEBOOK["batchnorm_forward"].run(_with(solution, bug.code)["batchnorm_forward"], "public")
    assert "bn_param has no 'running_mean'" in outcome.message and bug.says in outcome.message
    hidden = nb06.NOTEBOOK["batchnorm_forward"].run(_with(solution, bug.code)["batchnorm_forward"], "hidden")
    assert "hidden running-statistics sequence" in hidden.message and "expected" not in hidden.message


def test_an_unknown_running_statistics_error_names_no_bug(solution):
    code = solution_code_with(solution, "batchnorm_forward",
                              'bn_param["running_mean"] = (1 - momentum) * running_mean + momentum * mean',
                              'bn_param["running_mean"] = (1 - momentum) * running_mean + momentum * mean + 0.01')
    outcome = nb06.NOTEBOOK["batchnorm_forward"].run(_with(solution, code)["batchnorm_forward"], "public")
    assert not outcome.passed and "running_mean" in outcome.message
    assert "Likely bug" not in outcome.message


def solution_code_with(solution: dict, name: str, old: str, new: str) -> str:
    nb = nbformat.read(Course().source_notebooks(ASSIGNMENT)[0], as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == name:
            src = answer_code(cell.source)
            assert old in src
            return src.replace(old, new)
    raise KeyError(name)


def test_delegating_to_the_reference_is_refused(solution):
    code = '''
from cnnlab.numpy_ref import groupnorm_forward as _gn
def groupnorm_forward(x, gamma, beta, G, eps=1e-5):
    return _gn(x, gamma, beta, G, eps)[0]
'''
    outcome = nb06.NOTEBOOK["groupnorm_forward"].run(_with(solution, code)["groupnorm_forward"], "hidden")
    assert not outcome.passed and "off limits" in outcome.message


# ----------------------------------------------------------------------------- the experiment, the figures

def test_bn_experiment_same_start_and_deterministic():
    torch = pytest.importorskip("torch")
    from cnnlab.torch_ref.bn_experiment import deep_mlp, train_losses

    plain, bn = deep_mlp(depth=3, width=16, batchnorm=False, seed=5), deep_mlp(depth=3, width=16, batchnorm=True, seed=5)
    lin_plain = [m.weight for m in plain if isinstance(m, torch.nn.Linear)]
    lin_bn = [m.weight for m in bn if isinstance(m, torch.nn.Linear)]
    assert all(torch.equal(a, b) for a, b in zip(lin_plain, lin_bn, strict=True))
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in bn)
    a = train_losses(deep_mlp(depth=3, width=16, batchnorm=True, seed=5), steps=5, dev="cpu")
    b = train_losses(deep_mlp(depth=3, width=16, batchnorm=True, seed=5), steps=5, dev="cpu")
    assert a.losses == b.losses and len(a.losses) == 5 and 0.0 <= a.test_accuracy <= 1.0


def test_figures_build():
    import matplotlib.pyplot as plt

    from cnnlab.viz import norm as vn

    figs = [vn.plot_norm_cubes(), vn.plot_layer_stats({"a": [1.0, 0.5], "b": [1.0, 1.0]}, dashed=["b"]),
            vn.plot_loss_curves({"lr": {"plain": [2.3, 2.0, float("nan")], "bn": [2.3, 1.0, 0.5]}}),
            vn.plot_batch_dependence(np.arange(3.0), np.ones(3)),
            vn.plot_running_stats(np.zeros((4, 2)), np.ones((4, 2)), np.zeros(2), np.ones(2), 0.1),
            vn.plot_feature_histograms(np.random.default_rng(0).standard_normal((50, 2)),
                                       np.random.default_rng(1).standard_normal((50, 2)))]
    legend = figs[2].axes[0].get_legend().get_texts()
    assert any("diverged at step 3" in t.get_text() for t in legend)
    for f in figs:
        plt.close(f)
    with pytest.raises(ValueError, match="must divide"):
        vn.plot_norm_cubes(c=5, groups=3)


# ----------------------------------------------------------------------------- messages that name their cause

@pytest.mark.parametrize("helper", ["batchnorm_forward", "batchnorm_backward"])
def test_a_cascade_from_batchnorm_keeps_its_diagnosis(helper):
    """spatial_batchnorm_* over a wrong batchnorm_*: the nested message is long (the helper's arrays),
    and cutting it at 15 lines used to drop the "Likely bug" line (4 of 10 held-out cases). The
    diagnosis is data now: it is always there, whole, last, and names the helper."""
    spatial = {"batchnorm_forward": "spatial_batchnorm_forward", "batchnorm_backward": "spatial_batchnorm_backward"}[helper]
    for bug in nb06.NOTEBOOK[helper].bugs:
        if not bug.by_output:
            continue
        ns = notebook_namespace({helper: bug.code})
        outcome = nb06.NOTEBOOK[spatial].run(ns[spatial], "public")
        assert not outcome.passed and f"calls your {helper}" in outcome.message
        assert len(outcome.message.splitlines()) <= 15
        own = nb06.NOTEBOOK[helper].run(ns[helper], "public")
        if own.diagnosis is None:
            continue
        assert outcome.diagnosis == own.diagnosis and outcome.diagnosis.exercise == helper
        assert outcome.message.splitlines()[-len(own.diagnosis.lines()):] == own.diagnosis.lines(), outcome.message


def test_fold_batchnorm_forgetting_the_mean_or_eps_shows_and_is_named(solution):
    """Forgetting eps changed the first case by a relative 3e-6: the arrays shown looked identical
    and no bug was named. The first case now has running variances near 1e-4, where eps shows."""
    head = nb06._FOLD_HEAD
    no_eps = head + "    scale = gamma / np.sqrt(running_var)\n" + nb06._FOLD_W + \
        "    b_folded = scale * (b - running_mean) + beta\n    return w_folded, b_folded\n"
    no_mean = head + nb06._FOLD_SCALE + nb06._FOLD_W + "    b_folded = scale * b + beta\n    return w_folded, b_folded\n"
    for code, phrase in ((no_eps, "eps is forgotten"), (no_mean, "the running mean is forgotten")):
        fn = _with(solution, code)["fold_batchnorm"]
        for tier in ("public", "hidden"):
            outcome = nb06.NOTEBOOK["fold_batchnorm"].run(fn, tier)
            assert not outcome.passed and phrase in outcome.message, outcome.message
        public = nb06.NOTEBOOK["fold_batchnorm"].run(fn, "public").message
        assert "case 1 of" in public
        rel = float(public.split("rel error ")[1].split(")")[0])
        assert rel > 1e-3, public    # a difference a student can see in the arrays shown


def test_layer_norm_is_the_same_in_any_batch_and_alone(solution):
    """What the notebook's cell shows: an example's layer-norm output does not depend on its batch
    (nor on being alone), where batch norm's train-mode output does."""
    g = np.random.default_rng(3)
    example = g.standard_normal((1, 6)) * 2 + 1
    ln, bn = [], []
    for _ in range(5):
        batch = np.vstack([example, g.standard_normal((7, 6)) * 2 + 1])
        ln.append(solution["layernorm_forward"](batch, np.ones(6), np.zeros(6))[0][0])
        bn.append(ref_bn(batch, np.ones(6), np.zeros(6), {"mode": "train"})[0][0])
    alone = solution["layernorm_forward"](example, np.ones(6), np.zeros(6))[0][0]
    assert np.ptp(ln, axis=0).max() < 1e-12 and np.abs(alone - ln[0]).max() < 1e-12
    assert np.ptp(bn, axis=0).max() > 0.05


@pytest.mark.slow   # trains a network: not in the fast tier
def test_bn_experiment_on_a_conv_net_uses_spatial_batch_norm():
    torch = pytest.importorskip("torch")
    from cnnlab.torch_ref.bn_experiment import compare, deep_convnet, train_losses

    plain, bn = deep_convnet(depth=3, channels=4, seed=5), deep_convnet(depth=3, channels=4, batchnorm=True, seed=5)
    convs = lambda net: [m.weight for m in net if isinstance(m, torch.nn.Conv2d)]  # noqa: E731
    assert all(torch.equal(a, b) for a, b in zip(convs(plain), convs(bn), strict=True))
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in bn) == 3 and not any(
        isinstance(m, torch.nn.BatchNorm2d) for m in plain)
    a = train_losses(deep_convnet(depth=2, channels=4, batchnorm=True, seed=1), steps=4, dev="cpu")
    b = train_losses(deep_convnet(depth=2, channels=4, batchnorm=True, seed=1), steps=4, dev="cpu")
    assert a.losses == b.losses and len(a.losses) == 4
    runs = compare(settings=((0.05, 2 ** 0.5),), steps=3, depth=2, width=4, dev="cpu", net="conv")
    assert set(runs[(0.05, 2 ** 0.5)]) == {"without BN", "with BN"}
    with pytest.raises(ValueError, match="net must be"):
        compare(net="resnet")
