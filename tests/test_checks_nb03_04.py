"""Tests of the checks of notebooks 03 (padding and stride) and 04 (convolution over volumes).

For every exercise: the notebook's solution passes both tiers and prints one line; each realistic
wrong version fails with an AssertionError whose message names the bug; a stub fails with "not
implemented yet"; delegating to the references fails the hidden tier with the integrity message.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.checks import nb03, nb04


def stub(*args, **kwargs):
    raise NotImplementedError()


def _pad_hw(x, p):
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))


# ================================================================================================
# notebook 04: solutions (as in the notebook) and wrong variants
# ================================================================================================
def _naive(x, w, b, stride=1, pad=0, *, win_step=None, size_plus=1, bias="ok", flip=False, pad_all=False):
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, pad) if pad_all else _pad_hw(x, pad)
    if flip:
        w = w[..., ::-1, ::-1]
    step = stride if win_step is None else win_step
    Ho = (H + 2 * pad - KH) // stride + size_plus
    Wo = (W + 2 * pad - KW) // stride + size_plus
    out = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    window = xp[n, :, i * step:i * step + KH, j * step:j * step + KW]
                    out[n, f, i, j] = np.sum(window * w[f]) + (b[f] if bias == "ok" else 0.0)
    if bias == "width":
        out = out + b
    return out, {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}


def conv_forward_naive(x, w, b, stride=1, pad=0):
    return _naive(x, w, b, stride, pad)


def conv_forward(x, w, b, stride=1, pad=0):
    KH, KW = w.shape[2:]
    xp = _pad_hw(x, pad)
    windows = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + b[None, :, None, None]
    return out, {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}


def _backward(dout, cache, *, crop=True, first_image_dw=False, db_mode="ok", step=None):
    x, w, stride, pad = cache["x"], cache["w"], cache["stride"], cache["pad"]
    N, C, H, W = x.shape
    KH, KW = w.shape[2:]
    Ho, Wo = dout.shape[2:]
    s = stride if step is None else step
    xp = _pad_hw(x, pad)
    dxp = np.zeros((N, C, max(xp.shape[2], (Ho - 1) * s + KH), max(xp.shape[3], (Wo - 1) * s + KW)))
    dw = np.zeros(w.shape)
    db = {"ok": dout.sum(axis=(0, 2, 3)), "first": dout[0].sum(axis=(1, 2)), "mean": dout.mean(axis=(0, 2, 3))}[db_mode]
    for i in range(Ho):
        for j in range(Wo):
            rows, cols = slice(i * s, i * s + KH), slice(j * s, j * s + KW)
            g = dout[:, :, i, j]
            if first_image_dw:
                dw += np.tensordot(g[:1], xp[:1, :, rows, cols], axes=(0, 0))
            else:
                dw += np.tensordot(g, xp[:, :, rows, cols], axes=(0, 0))
            dxp[:, :, rows, cols] += np.tensordot(g, w, axes=(1, 0))
    dx = dxp[:, :, pad:pad + H, pad:pad + W] if crop else dxp[:, :, :H + 2 * pad, :W + 2 * pad]
    return dx, dw, db


def conv_backward(dout, cache):
    return _backward(dout, cache)


def count_conv_params(c_in, c_out, kh, kw, bias=True):
    return (c_in * kh * kw + (1 if bias else 0)) * c_out


def count_conv_macs(in_shape, c_out, kh, kw, stride=1, pad=0):
    c, h, w = in_shape
    return c * kh * kw * c_out * ((h + 2 * pad - kh) // stride + 1) * ((w + 2 * pad - kw) // stride + 1)


NB04 = {
    "conv_forward_naive": (nb04.check_conv_forward_naive, conv_forward_naive),
    "conv_forward": (nb04.check_conv_forward, conv_forward),
    "conv_backward_dx": (nb04.check_conv_backward_dx, conv_backward),
    "conv_backward_dw": (nb04.check_conv_backward_dw, conv_backward),
    "conv_backward_db": (nb04.check_conv_backward_db, conv_backward),
    "count_conv_params": (nb04.check_count_conv_params, count_conv_params),
    "count_conv_macs": (nb04.check_count_conv_macs, count_conv_macs),
}

_FWD_BUGS = [
    ("windows ignore the stride", lambda x, w, b, stride=1, pad=0: _naive(x, w, b, stride, pad, win_step=1),
     "windows move one pixel at a time"),
    ("stride ignored entirely", lambda x, w, b, stride=1, pad=0: _naive(x, w, b, 1, pad), "stride is ignored"),
    ("padding on every axis", lambda x, w, b, stride=1, pad=0: _naive(x, w, b, stride, pad, pad_all=True),
     "batch and channel axes"),
    ("padding ignored", lambda x, w, b, stride=1, pad=0: _naive(x, w, b, stride, 0), "padding is ignored"),
    ("bias missing", lambda x, w, b, stride=1, pad=0: _naive(x, w, b, stride, pad, bias="none"), "bias is missing"),
    ("bias over width", lambda x, w, b, stride=1, pad=0: _naive(x, w, b, stride, pad, bias="width"),
     "broadcast over the width"),
    ("flipped kernel", lambda x, w, b, stride=1, pad=0: _naive(x, w, b, stride, pad, flip=True), "kernel is flipped"),
    ("off by one", lambda x, w, b, stride=1, pad=0: _naive(x, w, b, stride, pad, size_plus=0), "off by one"),
]

_BWD_BUGS = [
    ("conv_backward_dx", "dx not cropped", lambda d, c: _backward(d, c, crop=False), "still includes the padding"),
    ("conv_backward_dx", "dx no stride", lambda d, c: _backward(d, c, step=1), "dx ignores the stride"),
    ("conv_backward_dw", "dw first image", lambda d, c: _backward(d, c, first_image_dw=True), "sum over the batch"),
    ("conv_backward_dw", "dw no stride", lambda d, c: _backward(d, c, step=1), "dw ignores the stride"),
    ("conv_backward_db", "db first image", lambda d, c: _backward(d, c, db_mode="first"), "sum over the batch"),
    ("conv_backward_db", "db mean", lambda d, c: _backward(d, c, db_mode="mean"), "mean instead of a sum"),
]


@pytest.mark.parametrize("name", sorted(NB04))
@pytest.mark.parametrize("tier", ["public", "hidden"])
def test_nb04_solution_passes(name, tier, capsys):
    check, fn = NB04[name]
    check(fn, tier=tier)
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 1 and f"({tier})" in lines[0], out.out
    assert out.err == ""


@pytest.mark.parametrize("name", sorted(NB04))
def test_nb04_stub_fails(name):
    check, _ = NB04[name]
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


@pytest.mark.parametrize("tier", ["public", "hidden"])
@pytest.mark.parametrize("exercise", ["conv_forward_naive", "conv_forward"])
@pytest.mark.parametrize("label,fn,phrase", _FWD_BUGS, ids=[b[0] for b in _FWD_BUGS])
def test_nb04_forward_bugs_named(exercise, tier, label, fn, phrase):
    check = NB04[exercise][0]
    with pytest.raises(AssertionError) as err:
        check(fn, tier=tier)
    assert phrase in str(err.value), str(err.value)
    assert exercise in str(err.value)


def test_nb04_conv_forward_loops_fail():
    with pytest.raises(AssertionError, match="still loops"):
        nb04.check_conv_forward(conv_forward_naive)


@pytest.mark.parametrize("tier", ["public", "hidden"])
@pytest.mark.parametrize("exercise,label,fn,phrase", _BWD_BUGS, ids=[b[1] for b in _BWD_BUGS])
def test_nb04_backward_bugs_named(exercise, label, fn, phrase, tier):
    check = NB04[exercise][0]
    with pytest.raises(AssertionError) as err:
        check(fn, tier=tier)
    assert phrase in str(err.value), str(err.value)


def test_nb04_backward_parts_are_independent(capsys):
    # a wrong db does not cost the dx and dw cells their points
    bad_db = lambda d, c: _backward(d, c, db_mode="first")  # noqa: E731
    nb04.check_conv_backward_dx(bad_db)
    nb04.check_conv_backward_dw(bad_db)
    with pytest.raises(AssertionError):
        nb04.check_conv_backward_db(bad_db)


@pytest.mark.parametrize("fn,phrase", [
    (lambda c_in, c_out, kh, kw, bias=True: c_in * kh * kw * c_out + 1, "once for the layer"),
    (lambda c_in, c_out, kh, kw, bias=True: c_in * kh * kw * c_out, "bias is forgotten"),
    (lambda c_in, c_out, kh, kw, bias=True: (c_in * kh * kw + 1) * c_out, "bias=False was ignored"),
    (lambda c_in, c_out, kh, kw, bias=True: (kh * kw + bias) * c_out, "filter depth"),
    (lambda c_in, c_out, kh, kw, bias=True: float((c_in * kh * kw + bias) * c_out), "float"),
])
def test_nb04_count_params_bugs(fn, phrase):
    with pytest.raises(AssertionError) as err:
        nb04.check_count_conv_params(fn)
        nb04.check_count_conv_params(fn, tier="hidden")
    assert phrase in str(err.value), str(err.value)


def _macs_bug(kind):
    def fn(in_shape, c_out, kh, kw, stride=1, pad=0):
        c, h, w = in_shape
        ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        if kind == "input size":
            ho, wo = h, w
        if kind == "no stride":
            ho, wo = h + 2 * pad - kh + 1, w + 2 * pad - kw + 1
        extra = 1 if kind == "bias" else 0
        return (c * kh * kw + extra) * c_out * ho * wo
    return fn


@pytest.mark.parametrize("kind,phrase", [("input size", "input size (H, W) is used"), ("bias", "bias addition"),
                                         ("no stride", "stride is ignored")])
def test_nb04_count_macs_bugs(kind, phrase):
    with pytest.raises(AssertionError) as err:
        nb04.check_count_conv_macs(_macs_bug(kind))
        nb04.check_count_conv_macs(_macs_bug(kind), tier="hidden")
    assert phrase in str(err.value), str(err.value)


def test_nb04_delegation_scores_zero():
    from cnnlab import numpy_ref, torch_ref

    def via_numpy_ref(x, w, b, stride=1, pad=0):
        return numpy_ref.conv_forward(x, w, b, stride=stride, pad=pad)

    def via_torch(x, w, b, stride=1, pad=0):
        return torch_ref.conv_forward(x, w, b, stride=stride, pad=pad), {}

    def backward_via_ref(dout, cache):
        _, c = numpy_ref.conv_forward(cache["x"], cache["w"], cache["b"], stride=cache["stride"], pad=cache["pad"])
        return numpy_ref.conv_backward(dout, c)

    for check, fn in [(nb04.check_conv_forward_naive, via_numpy_ref), (nb04.check_conv_forward, via_torch),
                      (nb04.check_conv_backward_dx, backward_via_ref)]:
        with pytest.raises(AssertionError, match="write it with NumPy yourself"):
            check(fn, tier="hidden")


def test_nb04_bad_tier():
    with pytest.raises(ValueError, match="tier"):
        nb04.check_count_conv_params(count_conv_params, tier="secret")


# ================================================================================================
# notebook 03: solutions (as in the notebook) and wrong variants
# ================================================================================================
def conv_output_size(n, f, pad=0, stride=1, strict=True):
    span = n + 2 * pad - f
    if strict and span % stride:
        raise ValueError(f"stride {stride} does not fit: n={n}, f={f}, pad={pad}")
    return span // stride + 1


def zero_pad(x, p):
    if p < 0:
        raise ValueError(f"negative pad {p}")
    out = np.zeros(x.shape[:-2] + (x.shape[-2] + 2 * p, x.shape[-1] + 2 * p), dtype=x.dtype)
    out[..., p:p + x.shape[-2], p:p + x.shape[-1]] = x
    return out


def pad(x, p, mode="zero", value=0.0):
    modes = {"zero": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge"}
    if mode not in modes:
        raise ValueError(f"unknown mode {mode!r}")
    width = [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)]
    if mode == "constant":
        return np.pad(x, width, constant_values=value)
    return np.pad(x, width, mode=modes[mode])


def _conv2d(x, k, stride=1, pad=0, *, win_step=None, flip=False, pad_mode="both", plus=1):
    if flip:
        k = k[::-1, ::-1]
    width = {"both": ((pad, pad), (pad, pad)), "none": ((0, 0), (0, 0)), "one": ((pad, 0), (pad, 0))}[pad_mode]
    xp = np.pad(x, width)
    kh, kw = k.shape
    step = stride if win_step is None else win_step
    ho = (xp.shape[0] - kh) // stride + plus
    wo = (xp.shape[1] - kw) // stride + plus
    out = np.zeros((ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[i, j] = np.sum(xp[i * step:i * step + kh, j * step:j * step + kw] * k)
    return out


def conv2d(x, k, stride=1, pad=0):
    return _conv2d(x, k, stride, pad)


def receptive_field(layers):
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r


NB03 = {
    "conv_output_size": (nb03.check_conv_output_size, conv_output_size),
    "zero_pad": (nb03.check_zero_pad, zero_pad),
    "pad": (nb03.check_pad, pad),
    "conv2d": (nb03.check_conv2d, conv2d),
    "receptive_field": (nb03.check_receptive_field, receptive_field),
}


@pytest.mark.parametrize("name", sorted(NB03))
@pytest.mark.parametrize("tier", ["public", "hidden"])
def test_nb03_solution_passes(name, tier, capsys):
    check, fn = NB03[name]
    check(fn, tier=tier)
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 1 and f"({tier})" in lines[0], out.out
    assert out.err == ""


@pytest.mark.parametrize("name", sorted(NB03))
def test_nb03_stub_fails(name):
    check, _ = NB03[name]
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def _size_bug(kind):
    def fn(n, f, pad=0, stride=1, strict=True):
        span = n + 2 * pad - f
        if kind == "floor in strict":
            return span // stride + 1
        if kind == "always strict" and span % stride:
            raise ValueError("does not fit")
        if kind == "no plus one":
            return span // stride
        if kind == "pad once":
            return (n + pad - f) // stride + 1
        if kind == "no stride":
            return span + 1
        if kind == "float":
            return span / stride + 1
        if strict and span % stride:
            raise ValueError("does not fit")
        if kind == "ceil":
            return -(-span // stride) + 1
        return span // stride + 1
    return fn


@pytest.mark.parametrize("tier", ["public", "hidden"])
@pytest.mark.parametrize("kind,phrase", [
    ("floor in strict", "strict and floor are confused"), ("always strict", "strict and floor are confused"),
    ("no plus one", "off by one"), ("pad once", "one side only"), ("no stride", "stride is ignored"),
    ("float", "float"), ("ceil", "ceiling instead of floor"),
])
def test_nb03_conv_output_size_bugs(kind, phrase, tier):
    with pytest.raises(AssertionError) as err:
        nb03.check_conv_output_size(_size_bug(kind), tier=tier)
    assert phrase in str(err.value), str(err.value)


_ZERO_PAD_BUGS = [
    ("all axes", lambda x, p: np.pad(x, p), "batch/channel axes"),
    ("one side", lambda x, p: np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, p), (0, p)]), "one side only"),
    ("2p", lambda x, p: np.pad(x, [(0, 0)] * (x.ndim - 2) + [(2 * p, 2 * p)] * 2), "2p per side"),
    ("empty", lambda x, p: np.zeros(x.shape[:-2] + (x.shape[-2] + 2 * p, x.shape[-1] + 2 * p)), "not copied"),
    ("negative accepted", lambda x, p: np.pad(x, [(0, 0)] * (x.ndim - 2) + [(max(p, 0), max(p, 0))] * 2),
     "negative pad"),
]


@pytest.mark.parametrize("tier", ["public", "hidden"])
@pytest.mark.parametrize("label,fn,phrase", _ZERO_PAD_BUGS, ids=[b[0] for b in _ZERO_PAD_BUGS])
def test_nb03_zero_pad_bugs(label, fn, phrase, tier):
    with pytest.raises(AssertionError) as err:
        nb03.check_zero_pad(fn, tier=tier)
    assert phrase in str(err.value), str(err.value)


def _pad_bug(kind):
    def fn(x, p, mode="zero", value=0.0):
        width = [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)]
        np_mode = {"zero": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge"}
        if mode not in np_mode:
            raise ValueError(mode)
        if kind == "symmetric" and mode == "reflect":
            return np.pad(x, width, mode="symmetric")
        if kind == "swap" and mode in ("reflect", "replicate"):
            return np.pad(x, width, mode={"reflect": "edge", "replicate": "reflect"}[mode])
        if kind == "value ignored" and mode == "constant":
            return np.pad(x, width)
        if kind == "all axes" and x.ndim > 2:
            return np.pad(x, p, mode=np_mode[mode], **({"constant_values": value} if mode == "constant" else {}))
        if mode == "constant":
            return np.pad(x, width, constant_values=value)
        return np.pad(x, width, mode=np_mode[mode])
    return fn


@pytest.mark.parametrize("tier", ["public", "hidden"])
@pytest.mark.parametrize("kind,phrase", [("symmetric", "'symmetric'"), ("swap", "gives the re"),
                                         ("value ignored", "constant value is ignored"),
                                         ("all axes", "batch/channel axes")])
def test_nb03_pad_bugs(kind, phrase, tier):
    with pytest.raises(AssertionError) as err:
        nb03.check_pad(_pad_bug(kind), tier=tier)
    assert phrase in str(err.value), str(err.value)


def test_nb03_pad_unknown_mode_must_raise():
    def lenient(x, p, mode="zero", value=0.0):
        return pad(x, p, mode if mode in ("zero", "constant", "reflect", "replicate") else "zero", value)

    with pytest.raises(AssertionError, match="unknown mode"):
        nb03.check_pad(lenient)


_CONV2D_BUGS = [
    ("stride ignored", lambda x, k, stride=1, pad=0: _conv2d(x, k, 1, pad), "stride is ignored"),
    ("windows not strided", lambda x, k, stride=1, pad=0: _conv2d(x, k, stride, pad, win_step=1),
     "windows move one pixel at a time"),
    ("padding ignored", lambda x, k, stride=1, pad=0: _conv2d(x, k, stride, pad, pad_mode="none"),
     "padding is ignored"),
    ("flipped", lambda x, k, stride=1, pad=0: _conv2d(x, k, stride, pad, flip=True), "kernel is flipped"),
    ("off by one", lambda x, k, stride=1, pad=0: _conv2d(x, k, stride, pad, plus=0), "off by one"),
]


@pytest.mark.parametrize("tier", ["public", "hidden"])
@pytest.mark.parametrize("label,fn,phrase", _CONV2D_BUGS, ids=[b[0] for b in _CONV2D_BUGS])
def test_nb03_conv2d_bugs(label, fn, phrase, tier):
    with pytest.raises(AssertionError) as err:
        nb03.check_conv2d(fn, tier=tier)
    assert phrase in str(err.value), str(err.value)


def _rf_bug(kind):
    def fn(layers):
        r, jump = 1, 1
        for k, s in layers:
            if kind == "no stride":
                r += k - 1
            elif kind == "early":
                jump *= s
                r += (k - 1) * jump
            else:
                r += (k - 1) * jump
                jump *= s
        return r - 1 if kind == "no one" else r
    return fn


@pytest.mark.parametrize("tier", ["public", "hidden"])
@pytest.mark.parametrize("kind,phrase", [("no stride", "strides are ignored"), ("early", "used too early"),
                                         ("no one", "starting 1")])
def test_nb03_receptive_field_bugs(kind, phrase, tier):
    with pytest.raises(AssertionError) as err:
        nb03.check_receptive_field(_rf_bug(kind), tier=tier)
    assert phrase in str(err.value), str(err.value)


def test_nb03_delegation_scores_zero():
    from cnnlab import numpy_ref, shapes

    def conv2d_via_ref(x, k, stride=1, pad=0):
        return numpy_ref.conv_forward(x[None, None], k[None, None], np.zeros(1), stride=stride, pad=pad)[0][0, 0]

    cases = [
        (nb03.check_conv2d, conv2d_via_ref),
        (nb03.check_pad, lambda x, p, mode="zero", value=0.0: numpy_ref.pad(x, p, mode=mode, value=value)),
        (nb03.check_zero_pad, lambda x, p: numpy_ref.pad(x, p)),
        (nb03.check_conv_output_size, shapes.conv_output_size),
        (nb03.check_receptive_field, shapes.receptive_field),
    ]
    for check, fn in cases:
        with pytest.raises(AssertionError, match="yourself"):
            check(fn, tier="hidden")


def test_nb04_counters_refuse_shapes():
    from cnnlab import shapes

    def params_via_shapes(c_in, c_out, kh, kw, bias=True):
        return shapes.conv_params(c_in, c_out, kh, kw, bias=bias)

    def macs_via_shapes(in_shape, c_out, kh, kw, stride=1, pad=0):
        c, h, w = in_shape
        ho = shapes.conv_output_size(h, kh, pad, stride)
        return shapes.conv_macs(c, c_out, kh, kw, ho, shapes.conv_output_size(w, kw, pad, stride))

    for check, fn in [(nb04.check_count_conv_params, params_via_shapes), (nb04.check_count_conv_macs, macs_via_shapes)]:
        check(fn)  # the public tier only compares values
        with pytest.raises(AssertionError, match="cnnlab.shapes"):
            check(fn, tier="hidden")


# ================================================================================================
# figures and the explorer widget
# ================================================================================================
def test_usage_counts():
    from cnnlab.viz.padding import usage_counts

    c = usage_counts(7, 3)
    assert c[0, 0] == 1 and c[3, 3] == 9 and c.sum() == 9 * 25
    assert usage_counts(7, 3, pad=1)[0, 0] == 4
    c3 = usage_counts(7, 3, stride=3)  # floor mode: the last row and column are never read
    assert c3[-1].sum() == 0 and c3[:, -1].sum() == 0 and c3.sum() == 9 * 4


def test_figures_draw(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from cnnlab.viz import padding as vp
    from cnnlab.viz import volumes as vv

    figs = [
        vp.plot_sliding_windows(7, 3, 0, 3), vp.plot_sliding_windows(4, 7, 0, 1), vp.plot_usage(7, 3, (0, 1)),
        vp.plot_pad_modes(np.random.default_rng(0).random((8, 8)), 2),
        vp.plot_receptive_field_growth({"a": [(3, 1)] * 3}), vp.plot_receptive_field_tree([(3, 2)] * 2, 9),
        vv.plot_channel_conv(np.random.default_rng(0).random((3, 8, 8)), np.ones((3, 3, 3))),
        vv.plot_volumes((3, 32, 32), 10, 5, (10, 32, 32), pad=2), vv.plot_maps([np.eye(3)], ["I"], values=True),
        vv.plot_counts(["a"], [456], [14455392]), vv.plot_timings({"slow": 1.0, "fast": 0.01}),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    plt.close("all")
    with pytest.raises(ValueError, match="same C"):
        vv.plot_channel_conv(np.ones((3, 8, 8)), np.ones((2, 3, 3)))


def test_padding_explorer_static_under_grading(monkeypatch, capsys):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnlab.widgets.padding import padding_explorer

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert padding_explorer(7, 3, 0, 3) is None
    assert "strict mode refuses" in capsys.readouterr().out
    plt.close("all")
