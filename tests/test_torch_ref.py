"""cnnlab.torch_ref: functional twins against cnnlab.numpy_ref (float64), conversions, training helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab import numpy_ref as npr
from cnnlab import torch_ref as tr


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def close(a: np.ndarray, b: np.ndarray, tol: float = 1e-9) -> None:
    assert np.shape(a) == np.shape(b), (np.shape(a), np.shape(b))
    assert rel_error(a, b) < tol, rel_error(a, b)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------------- device and conversion


def test_device_falls_back_to_cpu() -> None:
    dev = tr.device()
    assert isinstance(dev, torch.device)
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        assert dev.type == "mps"
    else:
        assert dev.type == "cpu"


def test_numpy_in_numpy_out_and_dtypes(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3, 6, 6))
    w = rng.standard_normal((4, 3, 3, 3))
    b = rng.standard_normal(4)
    out = tr.conv_forward(x, w, b)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    out32 = tr.conv_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32))
    assert isinstance(out32, np.ndarray) and out32.dtype == np.float32
    # integer inputs compute in float64
    assert tr.relu(np.arange(-2, 3)).dtype == np.float64
    # tensors in, tensors out
    tout = tr.conv_forward(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b))
    assert isinstance(tout, torch.Tensor) and tout.dtype == torch.float64
    np.testing.assert_allclose(tout.numpy(), out, rtol=1e-12)


def test_tensor_twins_keep_autograd(rng: np.random.Generator) -> None:
    x = torch.tensor(rng.standard_normal((2, 3, 6, 6)), requires_grad=True)
    w = torch.tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    out = tr.max_pool(tr.relu(tr.conv_forward(x, w, None, pad=1)))
    out.sum().backward()
    assert x.grad is not None and w.grad is not None and x.grad.shape == x.shape


# ----------------------------------------------------------------------------- twins against numpy_ref

CONV_CASES = [
    # (N, C, H, W), (F, KH, KW), stride, pad
    ((2, 3, 7, 7), (4, 3, 3), 1, 0),
    ((2, 3, 7, 7), (4, 3, 3), 2, 1),
    ((1, 2, 8, 6), (3, 3, 2), (1, 2), (1, 0)),
    ((3, 1, 32, 32), (6, 5, 5), 1, 0),
    ((2, 4, 5, 5), (2, 1, 1), 1, 2),
]


@pytest.mark.parametrize("xs,ws,stride,pad", CONV_CASES)
def test_conv_forward_backward_match_numpy(rng: np.random.Generator, xs, ws, stride, pad) -> None:
    x = rng.standard_normal(xs)
    w = rng.standard_normal((ws[0], xs[1], ws[1], ws[2]))
    b = rng.standard_normal(ws[0])
    out_np, cache = npr.conv_forward(x, w, b, stride=stride, pad=pad)
    out_t = tr.conv_forward(x, w, b, stride=stride, pad=pad)
    close(out_t, out_np)
    dout = rng.standard_normal(out_np.shape)
    for got, want in zip(tr.conv_backward(dout, x, w, b, stride, pad), npr.conv_backward(dout, cache)):
        close(got, want)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 2),
    c=st.integers(1, 3),
    f=st.integers(1, 3),
    k=st.integers(1, 4),
    stride=st.integers(1, 3),
    pad=st.integers(0, 2),
    steps=st.integers(0, 3),
    seed=st.integers(0, 2**16),
)
def test_conv_property_matches_numpy(n, c, f, k, stride, pad, steps, seed) -> None:
    size = k - 2 * pad + stride * steps
    if size < 1:
        size += stride * ((1 - size + stride - 1) // stride)
    g = np.random.default_rng(seed)
    x = g.standard_normal((n, c, size, size + stride))
    w = g.standard_normal((f, c, k, k))
    b = g.standard_normal(f)
    out_np, _ = npr.conv_forward(x, w, b, stride=stride, pad=pad)
    close(tr.conv_forward(x, w, b, stride=stride, pad=pad), out_np)


def test_corr2d_conv2d_true_pad_match_numpy(rng: np.random.Generator) -> None:
    x = rng.standard_normal((6, 7))
    k = rng.standard_normal((3, 2))
    close(tr.corr2d(x, k), npr.corr2d(x, k))
    close(tr.conv2d_true(x, k), npr.conv2d_true(x, k))
    x3 = rng.standard_normal((2, 5, 6))
    for mode in ("zero", "constant", "reflect", "replicate"):
        close(tr.pad(x3, (2, 1), mode=mode, value=3.0), npr.pad(x3, (2, 1), mode=mode, value=3.0))


@pytest.mark.parametrize("shape,size,stride", [((2, 3, 8, 8), 2, 2), ((1, 2, 7, 9), 3, 2), ((2, 1, 6, 6), (2, 3), (2, 3))])
def test_pools_match_numpy(rng: np.random.Generator, shape, size, stride) -> None:
    x = rng.standard_normal(shape)
    for fwd, bwd, t_fwd, t_bwd in (
        (npr.max_pool_forward, npr.max_pool_backward, tr.max_pool, tr.max_pool_backward),
        (npr.avg_pool_forward, npr.avg_pool_backward, tr.avg_pool, tr.avg_pool_backward),
    ):
        out, cache = fwd(x, size=size, stride=stride)
        close(t_fwd(x, size, stride), out)
        dout = rng.standard_normal(out.shape)
        close(t_bwd(dout, x, size, stride), bwd(dout, cache))
    gap, gcache = npr.global_avg_pool_forward(x)
    close(tr.global_avg_pool(x), gap)
    dg = rng.standard_normal(gap.shape)
    close(tr.vjp(tr.global_avg_pool, dg, x)[0], npr.global_avg_pool_backward(dg, gcache))


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 5, 6)])
def test_batchnorm_train_and_test_match_numpy(rng: np.random.Generator, shape) -> None:
    c = shape[1]
    gamma = rng.standard_normal(c)
    beta = rng.standard_normal(c)
    fwd = npr.batchnorm_forward if len(shape) == 2 else npr.spatial_batchnorm_forward
    bwd = npr.batchnorm_backward if len(shape) == 2 else npr.spatial_batchnorm_backward
    p_np = {"mode": "train", "momentum": 0.2}
    p_t = {"mode": "train", "momentum": 0.2}
    for _ in range(3):
        x = 2.0 + 3.0 * rng.standard_normal(shape)
        out_np, cache = fwd(x, gamma, beta, p_np)
        close(tr.batchnorm(x, gamma, beta, p_t), out_np)
        close(p_t["running_mean"], p_np["running_mean"])
        close(p_t["running_var"], p_np["running_var"])
    dout = rng.standard_normal(shape)
    got = tr.vjp(tr.batchnorm, dout, x, gamma, beta, bn_param={"mode": "train"})
    for g, want in zip(got, bwd(dout, cache)):
        close(g, want, 1e-8)
    p_np["mode"] = p_t["mode"] = "test"
    x = rng.standard_normal(shape)
    close(tr.batchnorm(x, gamma, beta, p_t), fwd(x, gamma, beta, p_np)[0])


def test_layernorm_groupnorm_match_numpy(rng: np.random.Generator) -> None:
    x = rng.standard_normal((4, 7))
    g, b = rng.standard_normal(7), rng.standard_normal(7)
    out, cache = npr.layernorm_forward(x, g, b)
    close(tr.layernorm(x, g, b), out)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(tr.vjp(tr.layernorm, dout, x, g, b), npr.layernorm_backward(dout, cache)):
        close(got, want, 1e-8)
    x4 = rng.standard_normal((2, 6, 4, 5))
    g6, b6 = rng.standard_normal(6), rng.standard_normal(6)
    for groups in (1, 2, 3, 6):
        out, cache = npr.groupnorm_forward(x4, g6, b6, groups)
        close(tr.groupnorm(x4, g6, b6, groups), out)
        dout = rng.standard_normal(out.shape)
        for got, want in zip(tr.vjp(tr.groupnorm, dout, x4, g6, b6, G=groups), npr.groupnorm_backward(dout, cache)):
            close(got, want, 1e-8)
    close(tr.instancenorm(x4, g6, b6), npr.groupnorm_forward(x4, g6, b6, 6)[0])


def test_affine_activations_softmax_match_numpy(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 2, 4))
    w = rng.standard_normal((8, 5))
    b = rng.standard_normal(5)
    out, cache = npr.affine_forward(x, w, b)
    close(tr.affine(x, w, b), out)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(tr.vjp(tr.affine, dout, x, w, b), npr.affine_backward(dout, cache)):
        close(got, want)
    z = rng.standard_normal((4, 5))
    close(tr.relu(z), npr.relu_forward(z)[0])
    close(tr.tanh(z), npr.tanh_forward(z)[0])
    close(tr.flatten(x), npr.flatten_forward(x)[0])
    y = np.array([0, 4, 2, 1])
    loss_t, d_t = tr.softmax_loss(z, y)
    loss_n, d_n = npr.softmax_loss(z, y)
    assert isinstance(loss_t, float)
    close(loss_t, loss_n)
    close(d_t, d_n)


# ----------------------------------------------------------------------------- input validation


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(x=(1, 3, 5, 5), w=(2, 2, 3, 3)), "channel mismatch"),
        (dict(x=(1, 3, 5), w=(2, 3, 3, 3)), "4-D"),
        (dict(x=(1, 3, 6, 6), w=(2, 3, 3, 3), stride=2), "stride 2 does not fit"),
        (dict(x=(1, 3, 5, 5), w=(2, 3, 3, 3), pad=-1), "non-negative"),
        (dict(x=(1, 3, 5, 5), w=(2, 3, 3, 3), b=(3,)), "one bias per filter"),
    ],
)
def test_conv_forward_rejects_bad_input(kwargs, match) -> None:
    g = np.random.default_rng(0)
    x = g.standard_normal(kwargs.pop("x"))
    w = g.standard_normal(kwargs.pop("w"))
    b = g.standard_normal(kwargs.pop("b", (w.shape[0],)))
    with pytest.raises(ValueError, match=match):
        tr.conv_forward(x, w, b, **kwargs)


def test_other_bad_inputs() -> None:
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tr.max_pool(x)
    with pytest.raises(ValueError, match="does not fit"):
        tr.max_pool(np.zeros((1, 1, 5, 5)), 2, 2)
    assert tr.max_pool(np.zeros((1, 1, 5, 5)), 2, 2, strict=False).shape == (1, 1, 2, 2)
    with pytest.raises(ValueError, match="divides"):
        tr.groupnorm(np.zeros((1, 4, 2, 2)), np.ones(4), np.zeros(4), 3)
    with pytest.raises(ValueError, match="mode"):
        tr.batchnorm(np.zeros((2, 3)), np.ones(3), np.zeros(3), {"mode": "eval"})
    with pytest.raises(ValueError, match="labels"):
        tr.softmax_loss(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="padding mode"):
        tr.pad(np.zeros((3, 3)), 1, mode="wrap")


# ----------------------------------------------------------------------------- training helpers


def test_confusion_matrix_counts() -> None:
    cm = tr.confusion_matrix(np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 2, 1]), num_classes=4)
    assert cm.shape == (4, 4) and cm.dtype == np.int64
    assert cm.sum() == 5 and cm[1, 2] == 1 and cm[2, 2] == 2 and cm[3].sum() == 0
    with pytest.raises(ValueError):
        tr.confusion_matrix(np.array([0, 1]), np.array([0]))


@pytest.mark.slow   # trains a network: not in the fast tier
def test_train_history_on_cpu_is_quiet_and_reproducible(capsys) -> None:
    g = np.random.default_rng(0)
    # two separable classes of 32x32 images: bright top half vs bright bottom half
    y = g.integers(0, 2, 64)
    X = g.uniform(0, 0.2, (64, 1, 32, 32)).astype(np.float32)
    X[y == 0, :, :16] += 0.8
    X[y == 1, :, 16:] += 0.8
    runs = []
    for _ in range(2):
        model = tr.LeNet5("modern", seed=3)
        hist = tr.train(model, (X, y), (X, y), epochs=2, lr=0.02, batch_size=16, device="cpu", progress=False, seed=5)
        runs.append(hist)
    assert set(hist) >= {"loss", "train_acc", "test_acc"}
    assert len(hist["loss"]) == len(hist["train_acc"]) == len(hist["test_acc"]) == 2
    assert runs[0]["loss"] == runs[1]["loss"]
    assert tr.evaluate(model, (X, y)) == hist["test_acc"][-1]
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
