"""cnnlab.numpy_ref: bad input raises ValueError with a message that names the problem."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from cnnlab import numpy_ref as nr

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 3, 8, 8))
W = RNG.standard_normal((4, 3, 3, 3))
B = np.zeros(4)
CONVS = [nr.conv_forward, nr.conv_forward_naive]


def _nan(a: np.ndarray, value: float = np.nan) -> np.ndarray:
    a = a.copy()
    a.flat[3] = value
    return a


@pytest.mark.parametrize("conv", CONVS, ids=["fast", "naive"])
@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        ((X, RNG.standard_normal((4, 2, 3, 3)), B), {}, r"channel mismatch: x has C=3 channels but w expects 2"),
        ((X, W, B), {"stride": 2}, r"stride does not fit along H.*H=8, KH=3, pad=0, stride=2"),
        ((X, W, B), {"stride": (1, 4), "pad": (0, 1)}, r"stride does not fit along W.*W=8, KW=3, pad=1, stride=4"),
        ((X, W, B), {"pad": -1}, r"pad must be non-negative"),
        ((X, W, B), {"stride": 0}, r"stride must be at least 1"),
        ((X, W, B), {"stride": 1.5}, r"stride must be an integer"),
        ((X[0], W, B), {}, r"x must be 4-D \(N, C, H, W\), got ndim=3"),
        ((X, W[0], B), {}, r"w must be 4-D \(F, C, KH, KW\), got ndim=3"),
        ((_nan(X), W, B), {}, r"x contains non-finite values \(1 NaN, 0 inf\)"),
        ((X, _nan(W, np.inf), B), {}, r"w contains non-finite values \(0 NaN, 1 inf\)"),
        ((X, W, np.zeros(3)), {}, r"bias shape mismatch: b has shape \(3,\) but w has F=4 filters"),
        ((X, RNG.standard_normal((4, 3, 9, 3)), B), {}, r"kernel is larger than the padded input: KH=9 > H \+ 2\*pad = 8"),
        ((X, W, B), {"pad": (1, 2, 3)}, r"pad must be an int or an \(h, w\) pair"),
    ],
)
def test_conv_bad_input(conv: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        conv(*args, **kwargs)


def test_conv_backward_bad_dout() -> None:
    out, cache = nr.conv_forward(X, W, B)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 4, 5, 6\) but shape \(2, 4, 6, 6\) was expected"):
        nr.conv_backward(np.zeros((2, 4, 5, 6)), cache)
    with pytest.raises(ValueError, match="dout contains non-finite values"):
        nr.conv_backward(_nan(out), cache)
    with pytest.raises(ValueError, match="cache must be the dict returned by conv_forward"):
        nr.conv_backward(out, (X, W, B))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: nr.corr2d(np.ones((3, 3)), np.ones((4, 2))), r"kernel is larger than the input"),
        (lambda: nr.corr2d(np.ones((1, 3, 3)), np.ones((2, 2))), r"x must be 2-D \(H, W\)"),
        (lambda: nr.conv2d_true(np.ones((3, 3)), np.full((2, 2), np.nan)), r"k contains non-finite values"),
        (lambda: nr.pad(np.ones((3, 3)), 1, mode="mirror"), r"unknown pad mode 'mirror'"),
        (lambda: nr.pad(np.ones((3, 3)), -1), r"pad must be non-negative"),
        (lambda: nr.pad(np.ones((3, 3)), 3, mode="reflect"), r"reflect padding must be smaller than the input"),
        (lambda: nr.pad(np.ones(3), 1), r"x must have at least 2 dimensions"),
        (lambda: nr.pad(np.array([[1.0, np.inf]]), 1), r"x contains non-finite values"),
        (lambda: nr.max_pool_forward(np.ones((1, 1, 5, 5)), 2, 2), r"stride does not fit along H.*H=5, KH=2, pad=0, stride=2"),
        (lambda: nr.avg_pool_forward(np.ones((1, 1, 4, 4)), 5, 1), r"pool window is larger than the padded input"),
        (lambda: nr.max_pool_forward(np.ones((1, 4, 4)), 2, 2), r"x must be 4-D \(N, C, H, W\), got ndim=3"),
        (lambda: nr.avg_pool_forward(np.ones((1, 1, 4, 4)), 0), r"size must be at least 1"),
        (lambda: nr.max_pool_forward(_nan(np.ones((1, 1, 4, 4)))), r"x contains non-finite values"),
        (lambda: nr.global_avg_pool_forward(np.ones((4, 4))), r"x must be 4-D"),
        (lambda: nr.batchnorm_forward(np.ones((4, 3)), np.ones(2), np.zeros(3), {"mode": "train"}), r"gamma has shape \(2,\) but x has D=3 features"),
        (lambda: nr.batchnorm_forward(np.ones((4, 3)), np.ones(3), np.zeros(3), {"mode": "eval"}), r"bn_param\['mode'\] must be 'train' or 'test'"),
        (lambda: nr.batchnorm_forward(np.ones((1, 3)), np.ones(3), np.zeros(3), {"mode": "train"}), r"more than 1 value per feature"),
        (lambda: nr.batchnorm_forward(np.ones((4, 3, 1)), np.ones(3), np.zeros(3), {"mode": "train"}), r"x must be 2-D \(N, D\)"),
        (lambda: nr.spatial_batchnorm_forward(np.ones((2, 3, 2, 2)), np.ones(4), np.zeros(4), {"mode": "train"}), r"gamma has shape \(4,\) but x has C=3 channels"),
        (lambda: nr.batchnorm_forward(_nan(np.ones((4, 3))), np.ones(3), np.zeros(3), {"mode": "train"}), r"x contains non-finite values"),
        (lambda: nr.layernorm_forward(np.ones((4, 3)), np.ones(4), np.zeros(3)), r"gamma has shape \(4,\)"),
        (lambda: nr.groupnorm_forward(np.ones((2, 6, 2, 2)), np.ones(6), np.zeros(6), 4), r"G=4 groups do not divide C=6 channels"),
        (lambda: nr.groupnorm_forward(np.ones((2, 6, 2, 2)), np.ones(6), np.zeros(6), 0), r"G \(the number of groups\) must be a positive integer"),
        (lambda: nr.fold_batchnorm(np.ones((4, 3, 3, 3)), np.zeros(3), np.ones(4), np.zeros(4), np.zeros(4), np.ones(4)), r"b has shape \(3,\) but the conv layer has 4 outputs"),
        (lambda: nr.fold_batchnorm(np.ones((4, 3, 3)), None, np.ones(4), np.zeros(4), np.zeros(4), np.ones(4)), r"w must be 4-D conv weights .* or 2-D FC weights"),
        (lambda: nr.affine_forward(np.ones((2, 5)), np.ones((4, 3)), np.zeros(3)), r"x has D=5 features per sample .* but w expects 4"),
        (lambda: nr.affine_forward(np.ones((2, 4)), np.ones((4, 3)), np.zeros(2)), r"bias shape mismatch: b has shape \(2,\)"),
        (lambda: nr.relu_forward(np.array([np.nan])), r"x contains non-finite values"),
        (lambda: nr.softmax_loss(np.zeros((3, 4)), np.array([0, 1, 4])), r"labels y must lie in \[0, 4\)"),
        (lambda: nr.softmax_loss(np.zeros((3, 4)), np.array([0.0, 1.0, 2.0])), r"y must hold integer class labels"),
        (lambda: nr.softmax_loss(np.zeros((3, 4)), np.array([0, 1])), r"y has shape \(2,\) but shape \(3,\) was expected"),
        (lambda: nr.softmax_loss(np.zeros(4), np.array([0])), r"scores must be 2-D \(N, M\)"),
    ],
)
def test_bad_input_messages(call: Callable[[], Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_backward_rejects_wrong_dout_shape() -> None:
    x = np.ones((2, 3, 4, 4))
    _, cache = nr.max_pool_forward(x)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 3, 4, 4\) but shape \(2, 3, 2, 2\) was expected"):
        nr.max_pool_backward(x, cache)
    _, cache = nr.relu_forward(x)
    with pytest.raises(ValueError, match=r"dout has shape \(2, 3\)"):
        nr.relu_backward(np.ones((2, 3)), cache)
    _, cache = nr.layernorm_forward(np.ones((2, 3)) * [[1, 2, 3]], np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match=r"cache must be the dict returned by batchnorm_forward \(got the cache of layernorm_forward\)"):
        nr.batchnorm_backward(np.ones((2, 3)), cache)


def test_stride_that_leaves_only_padding_unread_is_accepted():
    """56, k3, s2, p1 and 224, k7, s2, p3: the row left over is padding (as cnnlab.shapes says)."""
    from cnnlab import numpy_ref, shapes

    x = RNG.standard_normal((1, 1, 56, 56))
    out, _ = numpy_ref.conv_forward(x, RNG.standard_normal((2, 1, 3, 3)), np.zeros(2), stride=2, pad=1)
    assert out.shape == (1, 2, 28, 28) == (1, 2, shapes.conv_output_size(56, 3, 1, 2), 28)
