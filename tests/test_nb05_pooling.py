"""Notebook 05 (pooling) beyond the generic record tests: the references' conventions (ties, overlap),
the hand example's numbers, the shift-invariance measurement, unusual but correct answers, figures."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from cnnlab.checks import nb05
from cnnlab.grading import rng

matplotlib.use("Agg")


def _solution(name: str):
    ns = {"np": np}
    code = {
        "max_pool_forward": nb05._fwd_replace("max_pool_forward", "window.max(axis=(2, 3))", "", ""),
        "avg_pool_forward": nb05._fwd_replace("avg_pool_forward", "window.mean(axis=(2, 3))", "", ""),
        "max_pool_backward": nb05._MAX_BWD, "avg_pool_backward": nb05._AVG_BWD,
        "shift_invariance": nb05._SHIFT}[name]
    exec(code, ns)  # noqa: S102 - the course's own code
    return ns[name]


def test_the_hand_example():
    x = nb05.HAND_X.astype(float)
    out, cache = nb05.ref_max_pool_forward(x, 2, 2)
    assert out[0, 0].tolist() == [[6, 5], [3, 8]]
    assert nb05.ref_avg_pool_forward(x, 2, 2)[0][0, 0].tolist() == [[3.5, 3.25], [1.75, 4.5]]
    dx = nb05.ref_max_pool_backward(np.array([[1.0, 2.0], [3.0, 4.0]])[None, None], cache)[0, 0]
    # ties: the FIRST maximum in row-major order gets the gradient (the 5 at (1, 2), the 3 at (2, 0))
    assert dx.tolist() == [[0, 0, 0, 0], [0, 1, 2, 0], [3, 0, 0, 0], [0, 0, 0, 4]]


def test_ties_and_overlap_match_pytorch():
    torch = pytest.importorskip("torch")
    g = rng(3)
    x = g.integers(0, 3, (2, 3, 9, 9)).astype(float)  # many ties, overlapping windows
    dout = g.standard_normal((2, 3, 4, 4))
    dx = nb05.ref_max_pool_backward(dout, (x, 3, 2))
    xt = torch.tensor(x, requires_grad=True)
    (torch.nn.functional.max_pool2d(xt, 3, 2) * torch.tensor(dout)).sum().backward()
    np.testing.assert_allclose(dx, xt.grad.numpy(), atol=1e-12)
    assert np.isclose(dx.sum(), dout.sum())  # one maximum per window: nothing counted twice


def test_shift_invariance_numbers():
    # a ramp 0..7 along the columns, shifted right by 1 with a zero column entering on the left
    ramp = np.tile(np.arange(8.0), (8, 1))[None, None]
    moved = nb05.shift_right(ramp, 1)
    before = np.linalg.norm(moved - ramp) / np.linalg.norm(ramp)
    assert np.isclose(before, np.sqrt(8 * 7) / np.sqrt(8 * np.sum(np.arange(8.0) ** 2)))  # 7 columns of -1
    got = nb05.ref_shift_invariance(ramp, nb05.avg_pool_2x2, (1,))
    assert got.shape == (1, 2) and np.isclose(got[0, 0], before)
    # one bright pixel inside a 2x2 window: moving it within the window leaves max pooling unchanged
    peak = np.zeros((1, 1, 6, 6))
    peak[0, 0, 2, 2] = 5.0
    r = nb05.ref_shift_invariance(peak, nb05.max_pool_2x2, (1, 2))
    assert np.isclose(r[0, 0], np.sqrt(2)) and r[0, 1] == 0.0      # shift 1: the map changes, pooling does not
    assert np.isclose(r[1, 1], np.sqrt(2))                           # shift 2: it lands in the next window
    assert np.all(nb05.ref_shift_invariance(peak, nb05.global_max_pool, (1, 2, 3))[:, 1] == 0)


def test_pooling_reduces_the_change_on_digits_as_the_notebook_says():
    from cnnlab import data

    X = data.digits(size=32)[0][:30]
    sobel = np.array([[1.0, 0, -1], [2, 0, -2], [1, 0, -1]])
    filters = np.stack([sobel, sobel.T, -sobel, -sobel.T])
    windows = np.lib.stride_tricks.sliding_window_view(X[:, 0], (3, 3), axis=(1, 2))
    maps = np.maximum(np.einsum("nhwij,kij->nkhw", windows, filters), 0)
    def mean_change(pool):
        return np.mean([nb05.ref_shift_invariance(maps[i:i + 1], pool, (1, 2)) for i in range(len(maps))], axis=0)
    raw = mean_change(nb05.max_pool_2x2)[:, 0]
    two = mean_change(nb05.max_pool_2x2)[:, 1]
    six = mean_change(lambda a: nb05.ref_max_pool_forward(a, 6, 6)[0])[:, 1]
    glob = mean_change(nb05.global_max_pool)[:, 1]
    assert np.all(glob < 0.05) and np.all(glob < six) and np.all(six < two) and np.all(two < raw)
    assert 0.2 < raw[0] < 0.6  # a one-pixel shift changes the raw maps a lot


@pytest.mark.parametrize("variant", ["windows", "per_image_loops", "list", "float32"])
def test_unusual_correct_forward_answers_pass(variant):
    codes = {
        "windows": ("def max_pool_forward(x, size=2, stride=2):\n"
                    "    w = np.lib.stride_tricks.sliding_window_view(np.asarray(x, float), (size, size), axis=(2, 3))\n"
                    "    return w[:, :, ::stride, ::stride].max(axis=(-2, -1)), (x, size, stride)\n"),
        "per_image_loops": ("def max_pool_forward(x, size=2, stride=2):\n"
                            "    N, C, H, W = x.shape\n"
                            "    out = np.empty((N, C, (H - size) // stride + 1, (W - size) // stride + 1))\n"
                            "    for n in range(N):\n"
                            "        for c in range(C):\n"
                            "            for i in range(out.shape[2]):\n"
                            "                for j in range(out.shape[3]):\n"
                            "                    r, s = i * stride, j * stride\n"
                            "                    out[n, c, i, j] = np.max(x[n, c, r:r + size, s:s + size])\n"
                            "    return out, (x, size, stride)\n"),
        "list": ("def max_pool_forward(x, size=2, stride=2):\n"
                 "    w = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]\n"
                 "    return [w.max(axis=(4, 5)).astype(float), (x, size, stride)]\n"),
        "float32": ("def max_pool_forward(x, size=2, stride=2):\n"
                    "    w = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]\n"
                    "    return w.max(axis=(4, 5)).astype(np.float32), (x, size, stride)\n"),
    }
    ns = {"np": np}
    exec(codes[variant], ns)  # noqa: S102
    ex = nb05.NOTEBOOK["max_pool_forward"]
    for tier in ("public", "hidden"):
        outcome = ex.run(ns["max_pool_forward"], tier)
        assert outcome.passed, outcome.message


def test_vectorised_backward_passes():
    code = ("def max_pool_backward(dout, cache):\n"
            "    x, size, stride = cache\n"
            "    N, C, Ho, Wo = dout.shape\n"
            "    w = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]\n"
            "    arg = w.reshape(N, C, Ho, Wo, -1).argmax(axis=-1)\n"
            "    a, b = np.divmod(arg, size)\n"
            "    rows = np.arange(Ho)[:, None] * stride + a\n"
            "    cols = np.arange(Wo)[None, :] * stride + b\n"
            "    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing='ij')\n"
            "    dx = np.zeros(x.shape)\n"
            "    np.add.at(dx, (n[..., None, None], c[..., None, None], rows, cols), dout)\n"
            "    return dx\n")
    ns = {"np": np}
    exec(code, ns)  # noqa: S102
    ex = nb05.NOTEBOOK["max_pool_backward"]
    for tier in ("public", "hidden"):
        outcome = ex.run(ns["max_pool_backward"], tier)
        assert outcome.passed, outcome.message


def test_shift_invariance_with_roll_and_slice_pad_passes():
    code = ("def shift_invariance(fmap, pool, shifts=(1, 2)):\n"
            "    out = np.empty((len(shifts), 2))\n"
            "    for k, s in enumerate(shifts):\n"
            "        moved = np.pad(fmap, [(0, 0)] * (fmap.ndim - 1) + [(s, 0)])[..., :fmap.shape[-1]]\n"
            "        rel = lambda a, b: np.linalg.norm(b - a) / np.linalg.norm(a)\n"
            "        out[k] = rel(fmap, moved), rel(pool(fmap), pool(moved))\n"
            "    return out\n")
    ns = {"np": np}
    exec(code, ns)  # noqa: S102
    for tier in ("public", "hidden"):
        outcome = nb05.NOTEBOOK["shift_invariance"].run(ns["shift_invariance"], tier)
        assert outcome.passed, outcome.message


def test_blame_free_and_messages_name_the_case_kind():
    bug = nb05.NOTEBOOK["max_pool_backward"].bug("overwriting")
    ns = {"np": np}
    exec(bug.code, ns)  # noqa: S102
    hidden = nb05.NOTEBOOK["max_pool_backward"].run(ns["max_pool_backward"], "hidden").message
    assert "overlapping" in hidden and "got" not in hidden and "expected:" not in hidden


def test_figures_draw():
    import matplotlib.pyplot as plt

    from cnnlab.viz import pooling as vp

    x = nb05.HAND_X[0, 0].astype(float)
    out = nb05.ref_max_pool_forward(nb05.HAND_X, 2, 2)[0][0, 0]
    avg = nb05.ref_avg_pool_forward(nb05.HAND_X, 2, 2)[0][0, 0]
    figs = [vp.plot_pool_example(x, out, avg),
            vp.plot_gradient_routing(np.ones((2, 2)), np.eye(4), np.full((4, 4), 0.25)),
            vp.plot_photo_pooling({"a": np.zeros((8, 8)), "b": np.ones((4, 4))}),
            vp.plot_shift_maps([("0", np.ones((4, 4)), np.ones((2, 2))), ("1", np.eye(4), np.eye(2))]),
            vp.plot_shift_curves((1, 2), {"raw": [0.3, 0.6], "pooled": [0.2, 0.5]}),
            vp.plot_pool_vs_conv({"max": np.arange(5.0)}, {"max": np.arange(5.0) + 0.1}, {"max": np.eye(2)})]
    for f in figs:
        assert f.axes
        plt.close(f)


def test_windows_stepping_by_the_size_are_named_in_both_tiers():
    """Windows that step by the window size instead of the stride: the hidden check showed only
    NumPy's "zero-size array" ValueError (a window past the edge); both tiers now name the cause."""
    code = nb05._fwd_replace("max_pool_forward", "window.max(axis=(2, 3))",
                             "x[:, :, i * stride:i * stride + size, j * stride:j * stride + size]",
                             "x[:, :, i * size:i * size + size, j * size:j * size + size]")
    ns: dict = {"np": np}
    exec(compile(code, "<answer>", "exec"), ns)  # noqa: S102 - a test answer
    for tier in ("public", "hidden"):
        outcome = nb05.NOTEBOOK["max_pool_forward"].run(ns["max_pool_forward"], tier)
        assert not outcome.passed and "step by the window size, not the stride" in outcome.message, outcome.message
    hidden = nb05.NOTEBOOK["max_pool_forward"].run(ns["max_pool_forward"], "hidden").message
    assert "zero-size array" in hidden       # what NumPy said is kept, the cause comes with it
