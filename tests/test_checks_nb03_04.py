"""Checks of notebooks 03 (padding and stride) and 04 (volumes): what tests/test_exercise_records.py does not prove.

The generic tests prove, for every record, that the solution passes both tiers and that every bug
of the table fails with its phrase.  Here: unusual but correct answers that must pass (a list for
a tuple, float32, NumPy integers, other ways to write the same function), the specific messages
issue 7 asked for (no misleading diagnosis, strict mode's two kinds of leftover rows, blame), the
integrity guard and the refusal of ``cnnlab.shapes``, and per-gradient partial credit.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab.checks import nb03, nb04
from cnnlab.grading.exercise import Bug, Exercise

TIERS = ["public", "hidden"]


@pytest.fixture(autouse=True)
def _outside_nbgrader(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def run(nb, name, fn, tier="public", only=None):
    return nb.NOTEBOOK[name].run(fn, tier, only=only)


def passes(nb, name, fn, only=None):
    for tier in TIERS:
        outcome = run(nb, name, fn, tier, only)
        assert outcome.passed, f"{tier}: {outcome.message}"


# ================================================================================================
# notebook 03
# ================================================================================================

def zero_pad(x, p):
    if p < 0:
        raise ValueError(f"negative pad {p}")
    H, W = x.shape[-2:]
    out = np.zeros(x.shape[:-2] + (H + 2 * p, W + 2 * p), dtype=x.dtype)
    out[..., p:p + H, p:p + W] = x
    return out


def conv_output_size(n, f, pad=0, stride=1, strict=True):
    span = n + 2 * pad - f
    if strict and span % stride > pad:
        raise ValueError(f"stride {stride} skips input pixels (n={n}, f={f}, pad={pad})")
    return span // stride + 1


def conv2d(x, k, stride=1, pad=0):
    xp = zero_pad(x, pad)
    KH, KW = k.shape
    Ho = conv_output_size(x.shape[0], KH, pad, stride)
    Wo = conv_output_size(x.shape[1], KW, pad, stride)
    out = np.zeros((Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            out[i, j] = np.sum(xp[i * stride:i * stride + KH, j * stride:j * stride + KW] * k)
    return out


# ---------------------------------------------------------------- unusual but correct answers

def zero_pad_float64(x, p):  # ignores x's dtype: float32 in, float64 out, same values
    if p < 0:
        raise ValueError("p < 0")
    out = np.zeros(x.shape[:-2] + (x.shape[-2] + 2 * p, x.shape[-1] + 2 * p))
    out[..., p:out.shape[-2] - p, p:out.shape[-1] - p] = x
    return out


def zero_pad_with_np_pad(x, p):
    if p < 0:
        raise ValueError("p < 0")
    return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)])


def pad_by_hand(x, p, mode="zero", value=0.0):
    """Reflect and replicate written with index arrays instead of np.pad's modes."""
    if mode not in ("zero", "constant", "reflect", "replicate"):
        raise ValueError(f"mode must be zero, constant, reflect or replicate, not {mode}")
    H, W = x.shape[-2:]
    if mode in ("zero", "constant"):
        out = np.full(x.shape[:-2] + (H + 2 * p, W + 2 * p), value if mode == "constant" else 0.0)
        out[..., p:p + H, p:p + W] = x
        return out

    def index(n):
        i = np.arange(-p, n + p)
        if mode == "replicate":
            return np.clip(i, 0, n - 1)
        i = np.abs(i)
        return np.where(i > n - 1, 2 * (n - 1) - i, i)

    return x[..., index(H)[:, None], index(W)[None, :]]


def conv_output_size_numpy_int(n, f, pad=0, stride=1, strict=True):
    q, r = divmod(n + 2 * pad - f, stride)
    if strict and r > pad:
        raise ValueError(f"n={n}, f={f}, pad={pad}, stride={stride}: {r - pad} input row(s) skipped")
    return np.int64(q + 1)


def conv2d_vectorised(x, k, stride=1, pad=0):  # calls neither helper
    windows = sliding_window_view(np.pad(x, pad), k.shape)[::stride, ::stride]
    return np.einsum("ijab,ab->ij", windows, k)


@pytest.mark.parametrize("name, fn", [
    ("zero_pad", zero_pad_float64), ("zero_pad", zero_pad_with_np_pad), ("pad", pad_by_hand),
    ("conv_output_size", conv_output_size_numpy_int), ("conv2d", conv2d_vectorised),
    ("receptive_field", lambda layers: int(1 + sum((k - 1) * int(np.prod([s for _, s in layers[:i]]))
                                                   for i, (k, _) in enumerate(layers)))),
], ids=["zero_pad-float64", "zero_pad-np.pad", "pad-by-hand", "size-np.int64", "conv2d-vectorised", "rf-closed-form"])
def test_nb03_unusual_correct_answers_pass(name, fn):
    passes(nb03, name, fn)


def test_nb03_zero_pad_float32_case_is_checked_in_float32():
    case = next(c for c in nb03.NOTEBOOK["zero_pad"].cases("hidden") if "float32" in c.label)
    assert case.args[0].dtype == np.float32
    assert nb03.ref_zero_pad(*case.args).dtype == np.float32


# ---------------------------------------------------------------- strict mode: padding vs input pixels

def test_strict_accepts_the_usual_stride_2_same_layers():
    for n, f, p in [(56, 3, 1), (224, 7, 3), (64, 3, 1)]:
        assert conv_output_size(n, f, p, 2) == nb03.ref_conv_output_size(n, f, p, 2) == (n + 2 * p - f) // 2 + 1
    labels = [c.label for c in nb03.NOTEBOOK["conv_output_size"].cases("public")]
    assert any("only padding" in lab for lab in labels) and any("skips the last column" in lab for lab in labels)


def test_old_strict_rule_is_told_that_the_leftover_row_is_padding():
    bug = nb03.NOTEBOOK["conv_output_size"].bug("strict mode refuses a stride that only leaves padding")
    ns = {"np": np}
    exec(bug.code, ns)
    msg = run(nb03, "conv_output_size", ns["conv_output_size"]).message
    assert "inputs 56, 3, pad=1, stride=2, strict=True" in msg
    assert "are padding (pad=1): no input pixel is skipped, so the answer is 28" in msg
    hidden = run(nb03, "conv_output_size", ns["conv_output_size"], "hidden").message
    assert "raised ValueError where a size was expected" in hidden and "28" not in hidden and "56" not in hidden


def test_strict_refusal_with_the_wrong_exception_type():
    def size(n, f, pad=0, stride=1, strict=True):
        span = n + 2 * pad - f
        if strict and span % stride > pad:
            raise TypeError("does not fit")
        return span // stride + 1
    msg = run(nb03, "conv_output_size", size).message
    assert "raised TypeError; strict mode refuses with a ValueError" in msg
    assert "Likely bug" not in msg  # no bug of the table raises a TypeError


def test_a_size_that_is_wrong_in_two_ways_names_no_bug():
    def size(n, f, pad=0, stride=1, strict=True):  # no + 1 AND never refuses
        return (n + 2 * pad - f) // stride
    msg = run(nb03, "conv_output_size", size).message
    assert "returned 4, expected 5" in msg and "Likely bug" not in msg


@pytest.mark.parametrize("name, args", [("conv_output_size", "(n, f, pad, stride, strict)"),
                                        ("receptive_field", "(layers)")])
def test_size_exercises_may_not_call_shapes(name, args):
    def answer(*a, **k):
        from cnnlab import shapes
        return getattr(shapes, name)(*a, **k)
    assert run(nb03, name, answer, "public").passed  # the public tier only compares values
    msg = run(nb03, name, answer, "hidden").message
    assert "your function called cnnlab.shapes" in msg and "write the arithmetic yourself" in msg


# ---------------------------------------------------------------- messages issue 7 found misleading

def test_one_sided_zero_pad_is_not_told_about_the_output_size_formula():
    def one_sided(x, p):
        H, W = x.shape[-2:]
        out = np.zeros(x.shape[:-2] + (H + p, W + p))
        out[..., p:, p:] = x
        return out
    msg = run(nb03, "zero_pad", one_sided).message
    assert "padded on one side only" in msg
    assert "formula" not in msg and "off by one" not in msg and "stride" not in msg


def test_zero_pad_exception_is_named_only_when_it_is_the_same_error():
    def empty_slice(x, p):
        H, W = x.shape[-2:]
        out = np.zeros(x.shape[:-2] + (H + 2 * p, W + 2 * p))
        out[..., p:-p, p:-p] = x
        return out

    def other_error(x, p):
        if p == 0:
            raise ValueError("could not broadcast, but another way")
        return zero_pad(x, p)
    named = run(nb03, "zero_pad", empty_slice).message
    assert "Likely bug: out[..., p:-p, p:-p] is empty when p = 0" in named
    unnamed = run(nb03, "zero_pad", other_error).message
    assert "raised ValueError: could not broadcast, but another way" in unnamed and "Likely bug" not in unnamed


def test_negative_pad_accepted_and_unknown_mode_accepted():
    assert "zero_pad(x, -1) returned an array of shape (6, 7)" in run(nb03, "zero_pad",
                                                                     lambda x, p: zero_pad(x, abs(p))).message

    def pad_any(x, p, mode="zero", value=0.0):  # an unknown mode falls back to zeros
        return pad_by_hand(x, p, mode if mode in ("zero", "constant", "reflect", "replicate") else "zero", value)
    msg = run(nb03, "pad", pad_any, "hidden").message
    assert "pad(x, 1, mode='mirror') returned" in msg and "raise ValueError naming the four valid modes" in msg


# ---------------------------------------------------------------- blame and the guard

def _with_globals(fn, **names):
    """Rebind ``fn`` to globals where the given helpers replace the good ones."""
    import types
    g = dict(fn.__globals__)
    g.update(names)
    return types.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__)


def test_conv2d_blames_a_wrong_zero_pad_and_names_it():
    def corner(x, p):
        out = np.zeros(x.shape[:-2] + (x.shape[-2] + 2 * p, x.shape[-1] + 2 * p))
        out[..., :x.shape[-2], :x.shape[-1]] = x
        return out
    msg = run(nb03, "conv2d", _with_globals(conv2d, zero_pad=corner)).message
    assert msg.startswith("\u2718 conv2d (Exercise 4) calls your zero_pad, which fails its own check (Exercise 1)")
    assert "x is copied into the top-left corner" in msg


def test_conv2d_blames_an_old_strict_conv_output_size():
    def old_strict(n, f, pad=0, stride=1, strict=True):
        if strict and (n + 2 * pad - f) % stride:
            raise ValueError("does not fit")
        return (n + 2 * pad - f) // stride + 1
    msg = run(nb03, "conv2d", _with_globals(conv2d, conv_output_size=old_strict)).message
    assert "calls your conv_output_size, which fails its own check (Exercise 3)" in msg


def test_a_stub_is_not_blamed_on_its_unfinished_helper():
    def stub_zero_pad(x, p):
        raise NotImplementedError()

    def conv2d_stub(x, k, stride=1, pad=0):
        raise NotImplementedError()
    stub = _with_globals(conv2d_stub, zero_pad=stub_zero_pad)
    assert run(nb03, "conv2d", stub).message == ("\u2718 conv2d (Exercise 4): not implemented yet \u2014 replace "
                                                 "`raise NotImplementedError()` with your code")
    finished = _with_globals(conv2d, zero_pad=stub_zero_pad)  # finished, over an unfinished helper
    assert "calls your zero_pad, which fails its own check" in run(nb03, "conv2d", finished).message


@pytest.mark.parametrize("tier", TIERS)
def test_conv2d_with_torch_is_refused(tier):
    def conv2d_torch(x, k, stride=1, pad=0):
        import torch
        return torch.nn.functional.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(k)[None, None],
                                          stride=stride, padding=pad)[0, 0].numpy()
    msg = run(nb03, "conv2d", conv2d_torch, tier).message
    assert "torch" in msg and "write it with NumPy yourself" in msg


# ================================================================================================
# notebook 04
# ================================================================================================

def conv_forward(x, w, b, stride=1, pad=0):
    KH, KW = w.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + b[None, :, None, None]
    return out, {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}


def conv_backward(dout, cache):
    x, w, stride, pad = cache["x"], cache["w"], cache["stride"], cache["pad"]
    N, C, H, W = x.shape
    KH, KW = w.shape[2:]
    Ho, Wo = dout.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros(xp.shape), np.zeros(w.shape)
    for i in range(Ho):
        for j in range(Wo):
            r, c = i * stride, j * stride
            g = dout[:, :, i, j]
            dw += np.tensordot(g, xp[:, :, r:r + KH, c:c + KW], axes=(0, 0))
            dxp[:, :, r:r + KH, c:c + KW] += np.tensordot(g, w, axes=(1, 0))
    return dxp[:, :, pad:pad + H, pad:pad + W], dw, dout.sum(axis=(0, 2, 3))


# ---------------------------------------------------------------- unusual but correct answers

def conv_forward_offsets(x, w, b, stride=1, pad=0):
    """A loop over the KH x KW kernel offsets only: vectorised enough."""
    N, C, H, W = x.shape
    F, _, KH, KW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    Ho, Wo = (H + 2 * pad - KH) // stride + 1, (W + 2 * pad - KW) // stride + 1
    out = np.zeros((N, F, Ho, Wo), dtype=np.result_type(x, w))
    for a in range(KH):
        for d in range(KW):
            patch = xp[:, :, a:a + stride * Ho:stride, d:d + stride * Wo:stride]
            out += np.einsum("nchw,fc->nfhw", patch, w[:, :, a, d])
    return out + b.reshape(1, -1, 1, 1), {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}


def conv_forward_float32(x, w, b, stride=1, pad=0):
    out, cache = conv_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), stride, pad)
    return out.astype(np.float32), cache


def test_nb04_unusual_correct_forward_answers_pass():
    passes(nb04, "conv_forward", conv_forward_offsets)
    passes(nb04, "conv_forward_naive", conv_forward_offsets)
    passes(nb04, "conv_forward", conv_forward_float32)  # float32 all the way, within float32's resolution
    passes(nb04, "conv_forward", lambda *a, **k: list(conv_forward(*a, **k)))  # [out, cache]


def test_nb04_hidden_forward_has_a_float32_batch():
    case = next(c for c in nb04.NOTEBOOK["conv_forward"].cases("hidden") if "float32" in c.label)
    assert all(a.dtype == np.float32 for a in case.args)


@pytest.mark.parametrize("only", ["dx", "dw", "db"])
def test_conv_backward_as_a_list_gets_full_marks(only):
    passes(nb04, "conv_backward", lambda dout, cache: list(conv_backward(dout, cache)), only=only)


def test_conv_backward_public_tier_compares_with_central_differences():
    ex = nb04.NOTEBOOK["conv_backward"]
    public, hidden = ex.cases("public"), ex.cases("hidden")
    assert all(c.expect is nb04.numeric_conv_backward for c in public)
    assert all(c.expect is None for c in hidden)
    for case in public:
        numeric, ref = nb04.numeric_conv_backward(*case.args), nb04.ref_conv_backward(*case.args)
        for a, b in zip(numeric, ref, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)


def test_a_dx_bug_loses_only_the_dx_cells():
    ex = nb04.NOTEBOOK["conv_backward"]
    bug = ex.bug("dx is assigned (=) instead of accumulated")
    ns = {"np": np}
    exec(bug.code, ns)
    wrong = ns["conv_backward"]
    assert not run(nb04, "conv_backward", wrong, only="dx").passed
    assert run(nb04, "conv_backward", wrong, only="dw").passed and run(nb04, "conv_backward", wrong, only="db").passed
    assert set(ex.cells_lost_by(bug)) == {"test_conv_backward_dx_public", "test_conv_backward_dx_hidden"}
    assert len(ex.grade_ids) == 6
    shared = ex.bug("the backward pass ignores the stride")
    assert len(ex.cells_lost_by(shared)) == 4


def test_cells_lost_by_rejects_unknown_outputs():
    with pytest.raises(ValueError, match="names outputs"):
        Exercise("f", 1, lambda x: x, list, list, outputs=("a", "b"), bugs=[Bug("x", "", outputs=("c",))])
    with pytest.raises(ValueError, match="not compared"):
        Exercise("f", 1, lambda x: x, list, list, outputs=("a", "b"), grade_ids={"c": ("t",)})


# ---------------------------------------------------------------- messages issue 7 found misleading

def test_bias_reshaped_to_f111_is_not_told_about_padding():
    def forward(x, w, b, stride=1, pad=0):
        out, cache = conv_forward(x, w, np.zeros_like(b), stride, pad)
        return out + b.reshape(-1, 1, 1, 1), cache
    msg = run(nb04, "conv_forward", forward).message
    assert "Likely bug: the bias is reshaped to (F, 1, 1, 1)" in msg
    assert "batch and channel axes" not in msg and "padding" not in msg


def test_padding_on_every_axis_is_named_only_for_the_same_error():
    def pad_all_einsum(x, w, b, stride=1, pad=0):  # the same mistake, another error message
        KH, KW = w.shape[2:]
        windows = sliding_window_view(np.pad(x, pad), (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]
        out = np.einsum("nchwij,fcij->nfhw", windows, w)
        return out + b[None, :, None, None], {}
    msg = run(nb04, "conv_forward", pad_all_einsum).message
    assert "raised ValueError" in msg and "Likely bug" not in msg
    bug = nb04.NOTEBOOK["conv_forward_naive"].bug("padding applied to the batch and channel axes")
    ns = {"np": np}
    exec(bug.code, ns)
    assert "Likely bug: padding applied to the batch and channel axes" in run(
        nb04, "conv_forward_naive", ns["conv_forward_naive"]).message


@pytest.mark.parametrize("tier", TIERS)
def test_conv_forward_with_torch_is_refused(tier):
    def forward(x, w, b, stride=1, pad=0):
        import torch
        out = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                         stride=stride, padding=pad)
        return out.numpy(), {}
    msg = run(nb04, "conv_forward", forward, tier).message
    assert "torch" in msg and "write it with NumPy yourself" in msg


@pytest.mark.parametrize("name, answer", [
    ("count_conv_params", lambda c_in, c_out, kh, kw, bias=True: np.int32((c_in * kh * kw + bias) * c_out)),
    ("count_conv_macs", lambda s, c_out, kh, kw, stride=1, pad=0: np.prod(
        [s[0] * kh * kw, c_out, (s[1] + 2 * pad - kh) // stride + 1, (s[2] + 2 * pad - kw) // stride + 1])),
])
def test_counters_accept_numpy_integers(name, answer):
    passes(nb04, name, answer)


@pytest.mark.parametrize("name, args", [("count_conv_params", None), ("count_conv_macs", None)])
def test_counters_may_not_call_shapes(name, args):
    def params(c_in, c_out, kh, kw, bias=True):
        from cnnlab import shapes
        return shapes.conv_params(c_in, c_out, kh, kw, bias=bias)

    def macs(in_shape, c_out, kh, kw, stride=1, pad=0):
        from cnnlab import shapes
        c, h, w = in_shape
        return shapes.conv_macs(c, c_out, kh, kw, shapes.conv_output_size(h, kh, pad, stride),
                                shapes.conv_output_size(w, kw, pad, stride))
    fn = params if name == "count_conv_params" else macs
    assert run(nb04, name, fn, "public").passed
    msg = run(nb04, name, fn, "hidden").message
    assert "your function called cnnlab.shapes" in msg and "count with + and * yourself" in msg


def test_hidden_int_messages_hide_the_numbers():
    msg = run(nb04, "count_conv_macs", lambda s, c_out, kh, kw, stride=1, pad=0: 7, "hidden").message
    assert "the count is wrong (too small)" in msg
    assert not any(str(v) in msg for v in (768000, 64 * 56 * 56))


def test_success_line_names_the_gradient():
    outcome = run(nb04, "conv_backward", conv_backward, only="dw")
    assert outcome.message == "\u2714 conv_backward, dw: all 3 cases match (public)"


def test_vectorised_check_counts_lines_not_time():
    def per_image_and_filter(x, w, b, stride=1, pad=0):  # loops over N and F, positions vectorised
        KH, KW = w.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        win = sliding_window_view(xp, (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]
        out = np.zeros((x.shape[0], w.shape[0]) + win.shape[2:4])
        for n in range(x.shape[0]):
            for f in range(w.shape[0]):
                out[n, f] = np.einsum("chwij,cij->hw", win[n], w[f]) + b[f]
        return out, {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}

    def per_position(x, w, b, stride=1, pad=0):  # batch and filters vectorised, positions looped
        KH, KW = w.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        Ho, Wo = (xp.shape[2] - KH) // stride + 1, (xp.shape[3] - KW) // stride + 1
        out = np.zeros((x.shape[0], w.shape[0], Ho, Wo))
        for i in range(Ho):
            for j in range(Wo):
                out[:, :, i, j] = np.tensordot(xp[:, :, i * stride:i * stride + KH, j * stride:j * stride + KW],
                                               w, axes=([1, 2, 3], [1, 2, 3])) + b
        return out, {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}
    passes(nb04, "conv_forward", per_image_and_filter)
    for tier in TIERS:
        msg = run(nb04, "conv_forward", per_position, tier).message
        assert "lines of your own Python code" in msg and "Likely bug: it still loops over the output positions" in msg


def test_conv2d_subsampling_the_full_output_from_the_wrong_offset_is_not_told_the_padding_is_ignored():
    """A conv2d that pads, computes the stride-1 output and keeps full[s-1::s]: on stride 2 and pad 1
    its output equals "padding ignored"'s, and the hidden check said so. Where two bugs fit a case,
    the one that also fits the tier's other cases is named."""
    def wrong(x, k, stride=1, pad=0):
        xp = zero_pad(x, pad)
        full = np.einsum("hwij,ij->hw", sliding_window_view(xp, k.shape), k)
        return full[stride - 1::stride, stride - 1::stride]

    for tier in TIERS:
        outcome = run(nb03, "conv2d", wrong, tier)
        assert not outcome.passed and "the padding is ignored" not in outcome.message, outcome.message
        assert "full[stride - 1::stride]" in outcome.message
    padding = nb03.NOTEBOOK["conv2d"].bug("the padding is ignored")
    ns: dict = {"np": np, "zero_pad": zero_pad, "conv_output_size": conv_output_size}
    exec(compile(padding.code, "<answer>", "exec"), ns)  # noqa: S102 - the bug table's own code
    assert "the padding is ignored" in run(nb03, "conv2d", ns["conv2d"], "hidden").message
