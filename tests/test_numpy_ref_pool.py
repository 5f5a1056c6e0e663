"""cnnlab.numpy_ref: max, average and global average pooling, against PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from test_numpy_ref_common import FAST, FEW, assert_close, assert_gradient, distinct, dtypes, pool_cases, randn, seeds, t64

from cnnlab import numpy_ref as nr


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


@FAST
@given(case=pool_cases(), dtype=dtypes, kind=st.sampled_from(["max", "avg"]))
def test_pool_forward_backward_vs_torch(case: dict[str, Any], dtype: Any, kind: str) -> None:
    rng = np.random.default_rng(case["seed"])
    x = distinct(rng, case["x"], dtype)  # no ties, so the max is unique
    size, stride = _pair(case["size"]), _pair(case["stride"])
    tx = t64(x, True)
    torch_pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    tout = torch_pool(tx, size, stride)
    dout = randn(rng, tuple(tout.shape), dtype)
    tout.backward(t64(dout))
    forward = nr.max_pool_forward if kind == "max" else nr.avg_pool_forward
    backward = nr.max_pool_backward if kind == "max" else nr.avg_pool_backward
    out, cache = forward(x, size=case["size"], stride=case["stride"])
    assert out.dtype == dtype and out.shape == tuple(tout.shape)
    assert_close(out, tout.detach().numpy(), dtype, f"{kind}_pool out")
    dx = backward(dout, cache)
    assert dx.dtype == dtype and dx.shape == x.shape
    assert_close(dx, tx.grad.numpy(), dtype, f"{kind}_pool dx")


@FEW
@given(case=pool_cases(), kind=st.sampled_from(["max", "avg"]))
def test_pool_gradient_by_central_difference(case: dict[str, Any], kind: str) -> None:
    rng = np.random.default_rng(case["seed"])
    x = distinct(rng, case["x"], np.float64)  # entries at least 4/n apart, far more than h
    forward = nr.max_pool_forward if kind == "max" else nr.avg_pool_forward
    backward = nr.max_pool_backward if kind == "max" else nr.avg_pool_backward
    out, cache = forward(x, case["size"], case["stride"])
    dout = rng.standard_normal(out.shape)
    assert_gradient(backward(dout, cache), lambda v: forward(v, case["size"], case["stride"])[0], x, dout, "dx")


@FAST
@given(case=pool_cases())
def test_max_pool_at_least_avg_pool(case: dict[str, Any]) -> None:
    x = np.random.default_rng(case["seed"]).standard_normal(case["x"])
    mx = nr.max_pool_forward(x, case["size"], case["stride"])[0]
    av = nr.avg_pool_forward(x, case["size"], case["stride"])[0]
    assert np.all(mx >= av - 1e-12)


@FAST
@given(case=pool_cases(), kind=st.sampled_from(["max", "avg"]))
def test_channels_pooled_independently(case: dict[str, Any], kind: str) -> None:
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal(case["x"])
    forward = nr.max_pool_forward if kind == "max" else nr.avg_pool_forward
    whole = forward(x, case["size"], case["stride"])[0]
    for c in range(x.shape[1]):
        alone = forward(x[:, c : c + 1], case["size"], case["stride"])[0]
        np.testing.assert_array_equal(alone[:, 0], whole[:, c])
    # changing one channel leaves the others' outputs alone
    y = x.copy()
    y[:, 0] = rng.standard_normal(y[:, 0].shape)
    np.testing.assert_array_equal(forward(y, case["size"], case["stride"])[0][:, 1:], whole[:, 1:])


def test_max_pool_tie_rule_matches_torch() -> None:
    """Ties: the gradient goes to the first maximum in row-major order, as in PyTorch's CPU kernel."""
    x = np.array([[[[1.0, 3.0, 3.0, 0.0], [3.0, 2.0, 5.0, 5.0], [0.0, 0.0, 7.0, 1.0], [0.0, 0.0, 7.0, 7.0]]]])
    out, cache = nr.max_pool_forward(x, 2, 2)
    dout = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    dx = nr.max_pool_backward(dout, cache)
    tx = t64(x, True)
    F.max_pool2d(tx, 2, 2).backward(t64(dout))
    np.testing.assert_array_equal(dx, tx.grad.numpy())
    np.testing.assert_array_equal(dx, [[[[0, 1, 0, 0], [0, 0, 2, 0], [3, 0, 4, 0], [0, 0, 0, 0]]]])
    # overlapping windows with zeros everywhere: every window picks its own top-left element
    z = np.zeros((1, 1, 3, 3))
    dz = nr.max_pool_backward(np.ones((1, 1, 2, 2)), nr.max_pool_forward(z, 2, 1)[1])
    tz = t64(z, True)
    F.max_pool2d(tz, 2, 1).backward(torch.ones(1, 1, 2, 2, dtype=torch.float64))
    np.testing.assert_array_equal(dz, tz.grad.numpy())


@FAST
@given(n=st.integers(1, 3), c=st.integers(1, 4), h=st.integers(1, 5), w=st.integers(1, 5), dtype=dtypes, seed=seeds)
def test_global_avg_pool_vs_torch(n: int, c: int, h: int, w: int, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = randn(rng, (n, c, h, w), dtype)
    tx = t64(x, True)
    tout = F.adaptive_avg_pool2d(tx, 1)[:, :, 0, 0]
    dout = randn(rng, (n, c), dtype)
    tout.backward(t64(dout))
    out, cache = nr.global_avg_pool_forward(x)
    assert out.shape == (n, c) and out.dtype == dtype
    assert_close(out, tout.detach().numpy(), dtype, "out")
    dx = nr.global_avg_pool_backward(dout, cache)
    assert dx.dtype == dtype
    assert_close(dx, tx.grad.numpy(), dtype, "dx")


def test_pool_defaults_halve_the_size() -> None:
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 6))
    assert nr.max_pool_forward(x)[0].shape == (2, 3, 4, 3)
    assert nr.avg_pool_forward(x, size=(2, 3), stride=(2, 3))[0].shape == (2, 3, 4, 2)
    assert nr.max_pool_forward(x, size=2, stride=None)[0].shape == (2, 3, 4, 3)
