"""cnnlab.numpy_ref: cross-correlation, padding and the convolution layer, against PyTorch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from test_numpy_ref_common import FAST, FEW, assert_close, assert_gradient, conv_cases, dtypes, randn, seeds, t64

from cnnlab import numpy_ref as nr


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


# ----------------------------------------------------------------------------- corr2d / conv2d_true
def test_corr2d_worked_example() -> None:
    x = np.array([[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]])
    k = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    np.testing.assert_array_equal(nr.corr2d(x, k), [[4, 3, 4], [2, 4, 3], [2, 3, 4]])
    x = np.arange(9.0).reshape(3, 3)
    assert nr.corr2d(x, np.arange(4.0).reshape(2, 2))[0, 0] == 19  # 0*0 + 1*1 + 3*2 + 4*3


@FAST
@given(h=st.integers(1, 7), w=st.integers(1, 7), kh=st.integers(1, 4), kw=st.integers(1, 4), dtype=dtypes, seed=seeds)
def test_corr2d_and_true_conv_vs_torch(h: int, w: int, kh: int, kw: int, dtype: Any, seed: int) -> None:
    kh, kw = min(kh, h), min(kw, w)
    rng = np.random.default_rng(seed)
    x, k = randn(rng, (h, w), dtype), randn(rng, (kh, kw), dtype)
    out = nr.corr2d(x, k)
    assert out.dtype == dtype and out.shape == (h - kh + 1, w - kw + 1)
    expected = F.conv2d(t64(x)[None, None], t64(k)[None, None])[0, 0].numpy()
    assert_close(out, expected, dtype, "corr2d")
    flipped = F.conv2d(t64(x)[None, None], t64(k).flip(0, 1)[None, None])[0, 0].numpy()
    assert_close(nr.conv2d_true(x, k), flipped, dtype, "conv2d_true")


def test_true_convolution_is_associative_and_corr_is_not() -> None:
    rng = np.random.default_rng(0)
    x, a, b = rng.standard_normal((9, 9)), rng.standard_normal((3, 3)), rng.standard_normal((2, 2))
    # full 2-D convolution of the two kernels, via conv2d_true on a zero-padded kernel
    ab = nr.conv2d_true(np.pad(a, 1), b)
    np.testing.assert_allclose(nr.conv2d_true(nr.conv2d_true(x, a), b), nr.conv2d_true(x, ab), rtol=1e-10, atol=1e-12)
    ab_corr = nr.corr2d(np.pad(a, 1), b)
    assert not np.allclose(nr.corr2d(nr.corr2d(x, a), b), nr.corr2d(x, ab_corr))


# ----------------------------------------------------------------------------- pad
@FAST
@given(
    shape=st.sampled_from([(5, 6), (2, 4, 5), (2, 3, 4, 5)]),
    pad=st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(0, 3))),
    mode=st.sampled_from(["zero", "constant", "reflect", "replicate"]),
    dtype=dtypes,
    seed=seeds,
)
def test_pad_vs_torch(shape: tuple[int, ...], pad: Any, mode: str, dtype: Any, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = randn(rng, shape, dtype)
    out = nr.pad(x, pad, mode=mode, value=1.5)
    ph, pw = _pair(pad)
    assert out.dtype == dtype and out.shape == shape[:-2] + (shape[-2] + 2 * ph, shape[-1] + 2 * pw)
    t = t64(x)
    while t.ndim < 4:  # torch's reflect/replicate want a batch/channel layout
        t = t[None]
    torch_mode = {"zero": "constant", "constant": "constant", "reflect": "reflect", "replicate": "replicate"}[mode]
    value = 1.5 if mode == "constant" else 0.0
    expected = F.pad(t, (pw, pw, ph, ph), mode=torch_mode, value=value) if torch_mode == "constant" else F.pad(t, (pw, pw, ph, ph), mode=torch_mode)
    np.testing.assert_array_equal(out, expected.reshape(out.shape).numpy().astype(dtype))


def test_pad_small_example() -> None:
    x = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(nr.pad(x, (0, 2), "reflect"), [[3, 2, 1, 2, 3, 2, 1]])
    np.testing.assert_array_equal(nr.pad(x, (0, 2), "replicate"), [[1, 1, 1, 2, 3, 3, 3]])
    np.testing.assert_array_equal(nr.pad(x, (1, 1), "zero"), [[0, 0, 0, 0, 0], [0, 1, 2, 3, 0], [0, 0, 0, 0, 0]])


# ----------------------------------------------------------------------------- conv layer
def _conv_problem(case: dict[str, Any], dtype: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(case["seed"])
    return randn(rng, case["x"], dtype), randn(rng, case["w"], dtype), randn(rng, case["w"][:1], dtype), rng


@FAST
@given(case=conv_cases(), dtype=dtypes)
def test_conv_forward_backward_vs_torch(case: dict[str, Any], dtype: Any) -> None:
    x, w, b, rng = _conv_problem(case, dtype)
    stride, pad = _pair(case["stride"]), _pair(case["pad"])
    tx, tw, tb = t64(x, True), t64(w, True), t64(b, True)
    tout = F.conv2d(tx, tw, tb, stride=stride, padding=pad)
    dout = randn(rng, tuple(tout.shape), dtype)
    tout.backward(t64(dout))

    out, cache = nr.conv_forward(x, w, b, stride=case["stride"], pad=case["pad"])
    assert out.dtype == dtype and out.shape == tuple(tout.shape)
    assert_close(out, tout.detach().numpy(), dtype, "conv_forward")
    out_naive, cache_naive = nr.conv_forward_naive(x, w, b, stride=case["stride"], pad=case["pad"])
    assert out_naive.dtype == dtype
    assert_close(out_naive, tout.detach().numpy(), dtype, "conv_forward_naive")

    expected = (tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy())
    for label, grads in [
        ("fast cache", nr.conv_backward(dout, cache)),
        ("naive cache", nr.conv_backward(dout, cache_naive)),
        ("naive backward", nr.conv_backward_naive(dout, cache)),
    ]:
        for name, g, e in zip(("dx", "dw", "db"), grads, expected):
            assert g.dtype == dtype, f"{name} ({label}) has dtype {g.dtype}"
            assert_close(g, e, dtype, f"{name} ({label})")


@FAST
@given(case=conv_cases(max_out=3))
def test_naive_and_fast_conv_agree(case: dict[str, Any]) -> None:
    x, w, b, _ = _conv_problem(case, np.float64)
    fast, _ = nr.conv_forward(x, w, b, case["stride"], case["pad"])
    naive, _ = nr.conv_forward_naive(x, w, b, case["stride"], case["pad"])
    np.testing.assert_allclose(fast, naive, rtol=1e-12, atol=1e-12)


@FEW
@given(case=conv_cases(max_k=3, max_out=3))
def test_conv_gradients_by_central_difference(case: dict[str, Any]) -> None:
    x, w, b, rng = _conv_problem(case, np.float64)
    s, p = case["stride"], case["pad"]
    out, cache = nr.conv_forward(x, w, b, s, p)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = nr.conv_backward(dout, cache)
    assert_gradient(dx, lambda v: nr.conv_forward(v, w, b, s, p)[0], x, dout, "dx")
    assert_gradient(dw, lambda v: nr.conv_forward(x, v, b, s, p)[0], w, dout, "dw")
    assert_gradient(db, lambda v: nr.conv_forward(x, w, v, s, p)[0], b, dout, "db")


@FAST
@given(case=conv_cases(), alpha=st.floats(-3, 3), beta=st.floats(-3, 3))
def test_conv_is_linear_in_the_kernel(case: dict[str, Any], alpha: float, beta: float) -> None:
    x, w1, b, rng = _conv_problem(case, np.float64)
    w2 = rng.standard_normal(w1.shape)
    zero = np.zeros_like(b)
    s, p = case["stride"], case["pad"]
    lhs = nr.conv_forward(x, alpha * w1 + beta * w2, zero, s, p)[0]
    rhs = alpha * nr.conv_forward(x, w1, zero, s, p)[0] + beta * nr.conv_forward(x, w2, zero, s, p)[0]
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "x_shape, w_shape, pad",
    [((4, 1, 32, 32), (6, 1, 5, 5), 0), ((4, 6, 14, 14), (16, 6, 5, 5), 0), ((2, 3, 32, 32), (32, 3, 7, 7), 3)],
    ids=["lenet-c1", "lenet-c3", "cs231n"],
)
def test_conv_float32_realistic_sizes(x_shape: tuple[int, ...], w_shape: tuple[int, ...], pad: int) -> None:
    rng = np.random.default_rng(1)
    x, w, b = randn(rng, x_shape, np.float32), randn(rng, w_shape, np.float32), randn(rng, w_shape[:1], np.float32)
    out, cache = nr.conv_forward(x, w, b, pad=pad)
    tx, tw, tb = t64(x, True), t64(w, True), t64(b, True)
    tout = F.conv2d(tx, tw, tb, padding=pad)
    dout = randn(rng, out.shape, np.float32)
    tout.backward(t64(dout))
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert_close(out, tout.detach().numpy(), np.float32, "out")
    for name, g, e in zip(("dx", "dw", "db"), nr.conv_backward(dout, cache), (tx.grad, tw.grad, tb.grad)):
        assert g.dtype == np.float32
        assert_close(g, e.numpy(), np.float32, name)


def test_conv_output_size_examples() -> None:
    x = np.ones((1, 1, 7, 7))
    w = np.ones((1, 1, 3, 3))
    b = np.zeros(1)
    assert nr.conv_forward(x, w, b, stride=1)[0].shape == (1, 1, 5, 5)
    assert nr.conv_forward(x, w, b, stride=2)[0].shape == (1, 1, 3, 3)
    assert nr.conv_forward(x, w, b, stride=1, pad=1)[0].shape == (1, 1, 7, 7)
    with pytest.raises(ValueError, match="stride does not fit"):
        nr.conv_forward(x, w, b, stride=3)
