"""cnnlab.numpy_ref: batch, spatial batch, layer, group and instance norm, and BN folding, against PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from test_numpy_ref_common import FAST, FEW, assert_close, assert_gradient, dtypes, randn, seeds, t64

from cnnlab import numpy_ref as nr


def _affine(rng: np.random.Generator, n: int, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    return (1 + 0.5 * rng.standard_normal(n)).astype(dtype), randn(rng, (n,), dtype)


def _compare_grads(grads: tuple[np.ndarray, ...], tensors: tuple[torch.Tensor, ...], dtype: Any) -> None:
    for name, g, t in zip(("dx", "dgamma", "dbeta"), grads, tensors):
        assert g.dtype == dtype, f"{name} has dtype {g.dtype}"
        assert_close(g, t.grad.numpy(), dtype, name)


# ----------------------------------------------------------------------------- batch norm
@FAST
@given(
    shape=st.one_of(
        st.tuples(st.integers(3, 8), st.integers(1, 5)),
        st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(3, 5)),  # >= 3 values per channel
    ),
    mode=st.sampled_from(["train", "test"]),
    dtype=dtypes,
    seed=seeds,
)
def test_batchnorm_vs_torch(shape: tuple[int, ...], mode: str, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (3 + 2 * rng.standard_normal(shape)).astype(dtype)
    C = shape[1]
    gamma, beta = _affine(rng, C, dtype)
    rm, rv = randn(rng, (C,), dtype), (0.5 + rng.random(C)).astype(dtype)
    bn_param = {"mode": mode, "running_mean": rm.copy(), "running_var": rv.copy()}
    forward, backward = (nr.batchnorm_forward, nr.batchnorm_backward) if len(shape) == 2 else (nr.spatial_batchnorm_forward, nr.spatial_batchnorm_backward)
    out, cache = forward(x, gamma, beta, bn_param)

    tx, tg, tb = t64(x, True), t64(gamma, True), t64(beta, True)
    trm, trv = t64(rm), t64(rv)
    tout = F.batch_norm(tx, trm, trv, tg, tb, training=mode == "train", momentum=0.1, eps=1e-5)
    dout = randn(rng, shape, dtype)
    tout.backward(t64(dout))
    assert out.dtype == dtype
    assert_close(out, tout.detach().numpy(), dtype, "out")
    assert_close(bn_param["running_mean"], trm.numpy(), dtype, "running_mean")
    assert_close(bn_param["running_var"], trv.numpy(), dtype, "running_var")
    _compare_grads(backward(dout, cache), (tx, tg, tb), dtype)


def test_running_stats_follow_torch_batchnorm2d_over_steps() -> None:
    rng = np.random.default_rng(3)
    C = 4
    layer = torch.nn.BatchNorm2d(C, dtype=torch.float64)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(1 + 0.3 * rng.standard_normal(C)))
        layer.bias.copy_(torch.tensor(rng.standard_normal(C)))
    gamma, beta = layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy()
    bn_param: dict[str, Any] = {"mode": "train"}  # defaults: running mean 0, running var 1, momentum 0.1
    layer.train()
    for step in range(6):
        x = 2 + 3 * rng.standard_normal((5, C, 3, 4))
        out, _ = nr.spatial_batchnorm_forward(x, gamma, beta, bn_param)
        expected = layer(t64(x)).detach().numpy()
        assert_close(out, expected, np.float64, f"train output, step {step}")
        assert_close(bn_param["running_mean"], layer.running_mean.numpy(), np.float64, f"running_mean, step {step}")
        assert_close(bn_param["running_var"], layer.running_var.numpy(), np.float64, f"running_var, step {step}")
    layer.eval()
    x = rng.standard_normal((3, C, 3, 4))
    bn_param["mode"] = "test"
    before = bn_param["running_mean"].copy()
    out, _ = nr.spatial_batchnorm_forward(x, gamma, beta, bn_param)
    assert_close(out, layer(t64(x)).detach().numpy(), np.float64, "test output")
    np.testing.assert_array_equal(bn_param["running_mean"], before)


@FEW
@given(n=st.integers(3, 5), d=st.integers(1, 3), mode=st.sampled_from(["train", "test"]), seed=seeds)
def test_batchnorm_gradient_by_central_difference(n: int, d: int, mode: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    gamma, beta = _affine(rng, d, np.float64)

    def f(xv: np.ndarray, g: np.ndarray = gamma, b: np.ndarray = beta) -> np.ndarray:
        return nr.batchnorm_forward(xv, g, b, {"mode": mode, "running_var": np.full(d, 0.7)})[0]

    out, cache = nr.batchnorm_forward(x, gamma, beta, {"mode": mode, "running_var": np.full(d, 0.7)})
    dout = rng.standard_normal(out.shape)
    dx, dgamma, dbeta = nr.batchnorm_backward(dout, cache)
    assert_gradient(dx, f, x, dout, "dx")
    assert_gradient(dgamma, lambda g: f(x, g=g), gamma, dout, "dgamma")
    assert_gradient(dbeta, lambda b: f(x, b=b), beta, dout, "dbeta")


# ----------------------------------------------------------------------------- layer norm
@FAST
@given(n=st.integers(1, 4), d=st.integers(3, 8), dtype=dtypes, seed=seeds)
def test_layernorm_vs_torch(n: int, d: int, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (1 + 2 * rng.standard_normal((n, d))).astype(dtype)
    gamma, beta = _affine(rng, d, dtype)
    out, cache = nr.layernorm_forward(x, gamma, beta)
    tx, tg, tb = t64(x, True), t64(gamma, True), t64(beta, True)
    tout = F.layer_norm(tx, (d,), tg, tb, eps=1e-5)
    dout = randn(rng, (n, d), dtype)
    tout.backward(t64(dout))
    assert out.dtype == dtype
    assert_close(out, tout.detach().numpy(), dtype, "out")
    _compare_grads(nr.layernorm_backward(dout, cache), (tx, tg, tb), dtype)


@FEW
@given(n=st.integers(1, 3), d=st.integers(3, 5), seed=seeds)
def test_layernorm_gradient_by_central_difference(n: int, d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    gamma, beta = _affine(rng, d, np.float64)
    out, cache = nr.layernorm_forward(x, gamma, beta)
    dout = rng.standard_normal(out.shape)
    dx, dgamma, _ = nr.layernorm_backward(dout, cache)
    assert_gradient(dx, lambda v: nr.layernorm_forward(v, gamma, beta)[0], x, dout, "dx")
    assert_gradient(dgamma, lambda g: nr.layernorm_forward(x, g, beta)[0], gamma, dout, "dgamma")


# ----------------------------------------------------------------------------- group / instance norm
@st.composite
def group_cases(draw: st.DrawFn) -> dict[str, Any]:
    G = draw(st.integers(1, 3))
    C = G * draw(st.integers(1, 3))
    H, W = draw(st.integers(1, 3)), draw(st.integers(3, 4))  # >= 3 values per group: with 2 the exact dx is ~0
    return {"shape": (draw(st.integers(1, 3)), C, H, W), "G": G, "seed": draw(seeds)}


@FAST
@given(case=group_cases(), dtype=dtypes, instance=st.booleans())
def test_groupnorm_and_instancenorm_vs_torch(case: dict[str, Any], dtype: Any, instance: bool) -> None:
    rng = np.random.default_rng(case["seed"])
    shape = case["shape"]
    C = shape[1]
    x = (1 + 2 * rng.standard_normal(shape)).astype(dtype)
    gamma, beta = _affine(rng, C, dtype)
    tx, tg, tb = t64(x, True), t64(gamma, True), t64(beta, True)
    if instance:
        out, cache = nr.instancenorm_forward(x, gamma, beta)
        tout = F.instance_norm(tx, weight=tg, bias=tb, eps=1e-5)
        backward = nr.instancenorm_backward
    else:
        out, cache = nr.groupnorm_forward(x, gamma, beta, case["G"])
        tout = F.group_norm(tx, case["G"], tg, tb, eps=1e-5)
        backward = nr.groupnorm_backward
    dout = randn(rng, shape, dtype)
    tout.backward(t64(dout))
    assert out.dtype == dtype
    assert_close(out, tout.detach().numpy(), dtype, "out")
    _compare_grads(backward(dout, cache), (tx, tg, tb), dtype)


@FEW
@given(case=group_cases())
def test_groupnorm_gradient_by_central_difference(case: dict[str, Any]) -> None:
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["shape"])
    gamma, beta = _affine(rng, case["shape"][1], np.float64)
    out, cache = nr.groupnorm_forward(x, gamma, beta, case["G"])
    dout = rng.standard_normal(out.shape)
    dx, dgamma, _ = nr.groupnorm_backward(dout, cache)
    assert_gradient(dx, lambda v: nr.groupnorm_forward(v, gamma, beta, case["G"])[0], x, dout, "dx")
    assert_gradient(dgamma, lambda g: nr.groupnorm_forward(x, g, beta, case["G"])[0], gamma, dout, "dgamma")


# ----------------------------------------------------------------------------- folding
@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_conv_equals_conv_then_bn_eval(bias: bool) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 8, 8))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4) if bias else None
    conv = torch.nn.Conv2d(3, 4, 3, padding=1, bias=bias, dtype=torch.float64)
    bn = torch.nn.BatchNorm2d(4, dtype=torch.float64)
    with torch.no_grad():
        conv.weight.copy_(t64(w))
        if bias:
            conv.bias.copy_(t64(b))
        bn.weight.copy_(t64(1 + 0.3 * rng.standard_normal(4)))
        bn.bias.copy_(t64(rng.standard_normal(4)))
        bn.running_mean.copy_(t64(rng.standard_normal(4)))
        bn.running_var.copy_(t64(0.5 + rng.random(4)))
    bn.eval()
    expected = bn(conv(t64(x))).detach().numpy()
    wf, bf = nr.fold_batchnorm(w, b, bn.weight.detach().numpy(), bn.bias.detach().numpy(), bn.running_mean.numpy(), bn.running_var.numpy(), eps=bn.eps)
    assert wf.shape == w.shape and bf.shape == (4,)
    out, _ = nr.conv_forward(x, wf, bf, pad=1)
    assert_close(out, expected, np.float64, "folded conv")


def test_fold_batchnorm_fc_equals_affine_then_bn_eval() -> None:
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((5, 6)), rng.standard_normal((6, 3)), rng.standard_normal(3)
    gamma, beta = _affine(rng, 3, np.float64)
    rm, rv = rng.standard_normal(3), 0.5 + rng.random(3)
    z, _ = nr.affine_forward(x, w, b)
    expected, _ = nr.batchnorm_forward(z, gamma, beta, {"mode": "test", "running_mean": rm, "running_var": rv})
    torch_expected = F.batch_norm(t64(z), t64(rm), t64(rv), t64(gamma), t64(beta), training=False, eps=1e-5).numpy()
    assert_close(expected, torch_expected, np.float64, "batchnorm test mode")
    wf, bf = nr.fold_batchnorm(w, b, gamma, beta, rm, rv)
    assert_close(nr.affine_forward(x, wf, bf)[0], expected, np.float64, "folded FC")
