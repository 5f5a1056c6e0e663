"""cnnlab.numpy_ref: affine, ReLU, tanh, flatten and softmax cross-entropy, against PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from test_numpy_ref_common import FAST, FEW, assert_close, assert_gradient, dtypes, randn, seeds, t64

from cnnlab import numpy_ref as nr

feature_shapes = st.one_of(
    st.tuples(st.integers(1, 6)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
)


@FAST
@given(n=st.integers(1, 4), feat=feature_shapes, m=st.integers(1, 5), dtype=dtypes, seed=seeds)
def test_affine_vs_torch(n: int, feat: tuple[int, ...], m: int, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    d = int(np.prod(feat))
    x, w, b = randn(rng, (n, *feat), dtype), randn(rng, (d, m), dtype), randn(rng, (m,), dtype)
    out, cache = nr.affine_forward(x, w, b)
    tx, tw, tb = t64(x, True), t64(w, True), t64(b, True)
    tout = tx.reshape(n, d) @ tw + tb
    dout = randn(rng, (n, m), dtype)
    tout.backward(t64(dout))
    assert out.dtype == dtype
    assert_close(out, tout.detach().numpy(), dtype, "out")
    dx, dw, db = nr.affine_backward(dout, cache)
    assert dx.shape == x.shape
    for name, g, t in zip(("dx", "dw", "db"), (dx, dw, db), (tx, tw, tb)):
        assert g.dtype == dtype
        assert_close(g, t.grad.numpy(), dtype, name)


@FAST
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)), kind=st.sampled_from(["relu", "tanh"]), dtype=dtypes, seed=seeds)
def test_activations_vs_torch(shape: tuple[int, ...], kind: str, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = randn(rng, shape, dtype)
    tx = t64(x, True)
    tout = torch.relu(tx) if kind == "relu" else torch.tanh(tx)
    dout = randn(rng, shape, dtype)
    tout.backward(t64(dout))
    forward = nr.relu_forward if kind == "relu" else nr.tanh_forward
    backward = nr.relu_backward if kind == "relu" else nr.tanh_backward
    out, cache = forward(x)
    dx = backward(dout, cache)
    assert out.dtype == dtype and dx.dtype == dtype
    assert_close(out, tout.detach().numpy(), dtype, f"{kind} out")
    assert_close(dx, tx.grad.numpy(), dtype, f"{kind} dx")


def test_relu_gradient_at_zero_is_zero() -> None:
    out, cache = nr.relu_forward(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(nr.relu_backward(np.ones(3), cache), [0.0, 0.0, 1.0])


@FAST
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)), dtype=dtypes, seed=seeds)
def test_flatten_round_trip(shape: tuple[int, ...], dtype: Any, seed: int) -> None:
    x = randn(np.random.default_rng(seed), shape, dtype)
    out, cache = nr.flatten_forward(x)
    np.testing.assert_array_equal(out, torch.flatten(t64(x), 1).numpy().astype(dtype))
    dx = nr.flatten_backward(out * 2, cache)
    assert dx.shape == shape and dx.dtype == dtype
    np.testing.assert_array_equal(dx, 2 * x)


@FAST
@given(n=st.integers(1, 5), m=st.integers(2, 6), scale=st.sampled_from([1.0, 30.0, 1000.0]), dtype=dtypes, seed=seeds)
def test_softmax_loss_vs_torch(n: int, m: int, scale: float, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = (scale * rng.standard_normal((n, m))).astype(dtype)  # large scores: must not overflow
    y = rng.integers(0, m, n)
    loss, dscores = nr.softmax_loss(scores, y)
    ts = t64(scores, True)
    tloss = F.cross_entropy(ts, torch.tensor(y))
    tloss.backward()
    assert isinstance(loss, float) and np.isfinite(loss)
    assert abs(loss - tloss.item()) <= TOL_LOSS[np.dtype(dtype)] * max(1.0, abs(tloss.item()))
    assert dscores.dtype == dtype
    # entries of dscores lie in [-1/N, 1/N]: measure errors on that scale, since for saturated
    # scores the true gradient underflows and torch's p - 1 rounds where ours (minus the other
    # classes' probabilities) does not
    assert_close(dscores, ts.grad.numpy(), dtype, "dscores", floor=1.0 / n)


TOL_LOSS = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}


def test_softmax_loss_uniform_scores_give_log_classes() -> None:
    loss, dscores = nr.softmax_loss(np.zeros((4, 10)), np.arange(4))
    assert abs(loss - np.log(10)) < 1e-12
    np.testing.assert_allclose(dscores.sum(axis=1), 0, atol=1e-15)


@FEW
@given(n=st.integers(1, 3), d=st.integers(1, 4), m=st.integers(2, 4), seed=seeds)
def test_layer_gradients_by_central_difference(n: int, d: int, m: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((n, d)), rng.standard_normal((d, m)), rng.standard_normal(m)
    out, cache = nr.affine_forward(x, w, b)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = nr.affine_backward(dout, cache)
    assert_gradient(dx, lambda v: nr.affine_forward(v, w, b)[0], x, dout, "affine dx")
    assert_gradient(dw, lambda v: nr.affine_forward(x, v, b)[0], w, dout, "affine dw")
    assert_gradient(db, lambda v: nr.affine_forward(x, w, v)[0], b, dout, "affine db")
    t_out, t_cache = nr.tanh_forward(x)
    dt = rng.standard_normal(x.shape)
    assert_gradient(nr.tanh_backward(dt, t_cache), lambda v: nr.tanh_forward(v)[0], x, dt, "tanh dx")
    xr = np.where(np.abs(x) < 1e-3, 0.5, x)  # keep away from the kink at 0
    _, r_cache = nr.relu_forward(xr)
    assert_gradient(nr.relu_backward(dt, r_cache), lambda v: nr.relu_forward(v)[0], xr, dt, "relu dx")
    y = rng.integers(0, m, n)
    _, dscores = nr.softmax_loss(out, y)
    assert_gradient(dscores, lambda s: np.array(nr.softmax_loss(s, y)[0]), out, np.array(1.0), "dscores")
