"""Tests for cnnlab.shapes: every size and count quoted in SYLLABUS.md, properties, and error messages."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnlab.shapes import (
    FC,
    LENET5,
    LENET5_C3_TABLE,
    LENET5_LECTURE,
    LENET5_MODERN,
    RBF,
    Act,
    Conv,
    Flatten,
    LayerRow,
    Net,
    Pool,
    conv_macs,
    conv_output_size,
    conv_params,
    fc_macs,
    fc_params,
    format_layer_table,
    layer_table,
    pool_output_size,
    receptive_field,
    same_padding,
    total_params,
)

SETTINGS = settings(max_examples=40, deadline=None)


# ----------------------------------------------------------------------------------------------
# the self-check quiz (SYLLABUS 08)
# ----------------------------------------------------------------------------------------------
def test_quiz_q2_fc_on_300x300_rgb():
    assert fc_params(300 * 300 * 3, 100) == 27_000_100


def test_quiz_q3_conv_100_filters_5x5_rgb():
    assert conv_params(3, 100, 5) == 7_600


def test_quiz_q4_strided_conv_volume():
    n = conv_output_size(63, 7, pad=0, stride=2)
    assert (n, n, 32) == (29, 29, 32)


def test_quiz_q5_padding():
    # padding adds 2 on each side; a 1x1 "window" with stride 1 shows the padded size
    assert conv_output_size(15, 1, pad=2) == 19
    assert 15 + 2 * 2 == 19


def test_quiz_q6_same_padding():
    assert same_padding(7) == 3
    assert conv_output_size(63, 7, pad=same_padding(7)) == 63


def test_quiz_q7_max_pool():
    assert pool_output_size(32, 2, 2) == 16
    assert pool_output_size(32) == 16  # defaults: 2x2 window, stride = window


# ----------------------------------------------------------------------------------------------
# notebook 01: FC versus conv parameter counts
# ----------------------------------------------------------------------------------------------
def test_fc_128x128_into_300_units():
    assert fc_params(128 * 128, 300, bias=False) == 4_915_200  # the seed's "about 3 million" is wrong
    assert fc_params(128 * 128 * 3, 300, bias=False) == 14_745_600
    assert fc_params(128 * 128, 300) == 4_915_200 + 300


def test_fc_1000x1000_into_300_units():
    assert fc_params(1000 * 1000, 300, bias=False) == 300_000_000


# ----------------------------------------------------------------------------------------------
# notebook 04: parameters and multiply-adds of conv layers
# ----------------------------------------------------------------------------------------------
def test_conv_six_5x5_filters_rgb():
    assert conv_params(3, 6, 5) == 456 == (5 * 5 * 3 + 1) * 6


def test_conv_vs_fc_28x28x3_to_24x24x20():
    assert conv_output_size(28, 5) == 24
    assert conv_params(3, 20, 5) == 1_520
    assert fc_params(28 * 28 * 3, 24 * 24 * 20) == 27_106_560


def test_conv_vs_fc_32x32x3_to_28x28x6():
    assert conv_output_size(32, 5) == 28
    assert conv_params(3, 6, 5, 5) == 456
    assert fc_params(32 * 32 * 3, 28 * 28 * 6) == 14_455_392


def test_two_channel_input_six_filters():
    assert conv_params(2, 6, 5) == 306


def test_32x32x3_ten_filters_pad_2():
    n = conv_output_size(32, 5, pad=2, stride=1)
    assert n == 32
    assert conv_params(3, 10, 5) == 760
    assert conv_params(3, 10, 5, bias=False) == 750
    assert conv_macs(3, 10, 5, 5, n, n) == 768_000


def test_non_square_kernels_and_fc_macs():
    assert conv_params(4, 2, 3, 5) == (4 * 15 + 1) * 2
    assert conv_macs(1, 1, 3, 5, 2, 2) == 60
    assert fc_macs(400, 120) == 48_000


# ----------------------------------------------------------------------------------------------
# notebook 03: output sizes, strict and floor
# ----------------------------------------------------------------------------------------------
def test_7x7_examples():
    assert conv_output_size(7, 3) == 5
    assert conv_output_size(7, 3, stride=1) == 5
    assert conv_output_size(7, 3, stride=2) == 3
    assert conv_output_size(7, 3, stride=3, strict=False) == 2
    assert conv_output_size(7, 3, pad=1) == 7


def test_stride_that_does_not_fit_names_everything():
    with pytest.raises(ValueError) as err:
        conv_output_size(7, 3, stride=3)
    msg = str(err.value)
    for part in ("stride 3 does not fit", "n=7", "f=3", "pad=0", "stride=3", "strict=False",
                 "1 of them input pixels"):
        assert part in msg, msg


@pytest.mark.parametrize("n, f, pad, stride, out", [
    (56, 3, 1, 2, 28),     # ResNet-style stride-2 "same" 3x3: the one unread row is padding
    (224, 7, 3, 2, 112),   # the 7x7 stride-2 stem
    (64, 3, 1, 2, 32),     # notebook 03's photo
    (10, 3, 1, 4, 3),      # (10 + 2 - 3) % 4 = 1 <= pad
    (7, 3, 2, 3, 3),       # (7 + 4 - 3) % 3 = 2 <= pad: both leftover columns are padding
])
def test_strict_accepts_a_stride_that_leaves_only_padding_unread(n, f, pad, stride, out):
    assert conv_output_size(n, f, pad, stride) == out == conv_output_size(n, f, pad, stride, strict=False)
    assert (n + 2 * pad - f) % stride != 0  # the windows do not tile the padded input exactly


@pytest.mark.parametrize("n, f, pad, stride, skipped", [
    (7, 3, 0, 3, 1), (8, 3, 0, 2, 1), (11, 3, 1, 4, 1), (12, 3, 1, 4, 2), (57, 3, 1, 2, 0),
])
def test_strict_refuses_a_stride_that_skips_input_pixels(n, f, pad, stride, skipped):
    if skipped == 0:
        assert conv_output_size(n, f, pad, stride) == conv_output_size(n, f, pad, stride, strict=False)
        return
    with pytest.raises(ValueError, match=f"{skipped} of them input pixels"):
        conv_output_size(n, f, pad, stride)


def test_valid_and_same():
    assert conv_output_size(6, 3) == 4  # n - f + 1
    assert conv_output_size(6, 3, pad=same_padding(3)) == 6
    assert [same_padding(f) for f in (1, 3, 5, 7, 11)] == [0, 1, 2, 3, 5]


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(n=7, f=3, pad=-1), "pad must be non-negative"),
        (dict(n=7, f=3, stride=0), "stride must be a positive integer"),
        (dict(n=7, f=3, stride=-2), "stride must be a positive integer"),
        (dict(n=7, f=0), "f must be a positive integer"),
        (dict(n=0, f=1), "n must be a positive integer"),
        (dict(n=7, f=10), "f=10 is larger than the padded input"),
        (dict(n=7, f=10, pad=1), "n + 2*pad = 7 + 2*1 = 9"),
        (dict(n=7.0, f=3), "n must be an integer"),
        (dict(n=7, f=3, pad=0.5), "pad must be an integer"),
        (dict(n=7, f=3, stride=True), "stride must be an integer"),
        (dict(n="7", f=3), "n must be an integer"),
    ],
)
def test_conv_output_size_bad_input(kwargs, fragment):
    with pytest.raises(ValueError, match=None) as err:
        conv_output_size(**kwargs)
    assert fragment in str(err.value), str(err.value)


def test_numpy_integers_are_accepted():
    assert conv_output_size(np.int64(7), np.int32(3), pad=np.int8(1)) == 7
    assert conv_params(np.int64(3), 6, 5) == 456


def test_same_padding_even_filter():
    with pytest.raises(ValueError, match="odd filter size, got f=4"):
        same_padding(4)
    with pytest.raises(ValueError, match="f must be a positive integer"):
        same_padding(0)


def test_pool_sizes_and_errors():
    assert pool_output_size(28, 2) == 14
    assert pool_output_size(10, 3, 1) == 8
    assert pool_output_size(5, 2, strict=False) == 2
    assert pool_output_size(7, 3, 2, pad=1) == 4
    with pytest.raises(ValueError, match="stride 2 does not fit"):
        pool_output_size(5, 2)
    with pytest.raises(ValueError, match="more than half the window"):
        pool_output_size(8, 2, pad=2)


@pytest.mark.parametrize("fn, args, fragment", [
    (conv_params, (0, 6, 5), "c_in must be a positive integer"),
    (conv_params, (3, 6, 5.0), "kh must be an integer"),
    (fc_params, (-1, 3), "n_in must be a positive integer"),
    (fc_params, (10, 2.5), "n_out must be an integer"),
    (conv_macs, (3, 10, 5, 5, 0, 32), "h_out must be a positive integer"),
])
def test_count_bad_input(fn, args, fragment):
    with pytest.raises(ValueError) as err:
        fn(*args)
    assert fragment in str(err.value)


# ----------------------------------------------------------------------------------------------
# receptive field
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", range(0, 7))
@pytest.mark.parametrize("k", [1, 3, 5, 7])
def test_receptive_field_stride_one(depth, k):
    assert receptive_field([(k, 1)] * depth) == 1 + depth * (k - 1)


def test_receptive_field_with_strides_and_pooling():
    assert receptive_field([(3, 1), (3, 1)]) == 5
    assert receptive_field([(3, 1), (2, 2), (3, 1)]) == 8  # 3, then +1, then +2*2
    assert receptive_field([(3, 2), (3, 2), (3, 2)]) == 15  # 1 + 2 + 4 + 8
    # specs work too; a pool's stride defaults to its window; activations do not change it
    assert receptive_field([Conv(8, 3), Act(), Pool(2), Conv(16, 3)]) == 8
    # LeNet-5's C5 sees the whole 32x32 input
    assert receptive_field([Conv(6, 5), Pool(2), Conv(16, 5), Pool(2), Conv(120, 5)]) == 32
    # downsampling: three stride-2 3x3 layers see 15 pixels; stride-1 ones need 7 layers for that
    assert receptive_field([(3, 1)] * 7) == 15


def test_receptive_field_bad_input():
    with pytest.raises(ValueError, match=r"layers\[1\] stride must be a positive integer"):
        receptive_field([(3, 1), (3, 0)])
    with pytest.raises(ValueError, match=r"layers\[0\] is FC"):
        receptive_field([FC(10)])
    with pytest.raises(ValueError, match=r"layers\[0\] must be a \(kernel, stride\) pair"):
        receptive_field(["conv"])
    with pytest.raises(ValueError, match="non-square"):
        receptive_field([Conv(4, (3, 5))])


def _brute_force_receptive_field(layers):
    """Propagate which input positions output 0 depends on, one layer at a time, from the top down."""
    lo, hi = 0, 0  # inclusive index range at the current layer's output
    for k, s in reversed(layers):
        lo, hi = lo * s, hi * s + k - 1
    return hi - lo + 1


@SETTINGS
@given(st.lists(st.tuples(st.integers(1, 7), st.integers(1, 3)), max_size=6))
def test_receptive_field_matches_brute_force(layers):
    assert receptive_field(layers) == _brute_force_receptive_field(layers)


# ----------------------------------------------------------------------------------------------
# properties of the output-size formula
# ----------------------------------------------------------------------------------------------
@st.composite
def conv_cases(draw):
    n = draw(st.integers(1, 40))
    pad = draw(st.integers(0, 4))
    f = draw(st.integers(1, n + 2 * pad))
    stride = draw(st.integers(1, 6))
    return n, f, pad, stride


@SETTINGS
@given(conv_cases())
def test_strict_agrees_with_floor_when_stride_fits(case):
    n, f, pad, stride = case
    floor = conv_output_size(n, f, pad, stride, strict=False)
    assert floor == (n + 2 * pad - f) // stride + 1
    # strict accepts exactly when the last window reaches the last input pixel (padded index pad + n - 1)
    last_read = (floor - 1) * stride + f - 1
    if last_read >= pad + n - 1:
        assert conv_output_size(n, f, pad, stride) == floor
    else:
        with pytest.raises(ValueError, match="does not fit"):
            conv_output_size(n, f, pad, stride)


@SETTINGS
@given(conv_cases())
def test_last_window_stays_inside_the_padded_input(case):
    n, f, pad, stride = case
    out = conv_output_size(n, f, pad, stride, strict=False)
    assert (out - 1) * stride + f <= n + 2 * pad < out * stride + f


@SETTINGS
@given(conv_cases())
def test_floor_mode_matches_torch_conv2d(case):
    torch = pytest.importorskip("torch")
    n, f, pad, stride = case
    x = torch.zeros(1, 1, n, n + 1)
    w = torch.zeros(1, 1, f, f)
    out = torch.nn.functional.conv2d(x, w, stride=stride, padding=pad)
    assert out.shape[-2] == conv_output_size(n, f, pad, stride, strict=False)
    if f <= n + 1 + 2 * pad:
        assert out.shape[-1] == conv_output_size(n + 1, f, pad, stride, strict=False)


@SETTINGS
@given(st.integers(1, 40), st.integers(1, 6), st.integers(1, 6), st.data())
def test_pool_floor_mode_matches_torch_max_pool(n, f, stride, data):
    torch = pytest.importorskip("torch")
    pad = data.draw(st.integers(0, f // 2))
    if f > n + 2 * pad:
        return
    out = torch.nn.functional.max_pool2d(torch.zeros(1, 1, n, n), f, stride=stride, padding=pad)
    assert out.shape[-1] == pool_output_size(n, f, stride, pad, strict=False)


@SETTINGS
@given(st.integers(1, 8), st.integers(1, 8), st.integers(1, 5), st.integers(1, 5), st.booleans())
def test_conv_and_fc_params_match_torch(c_in, c_out, kh, kw, bias):
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv2d(c_in, c_out, (kh, kw), bias=bias)
    assert conv_params(c_in, c_out, kh, kw, bias=bias) == sum(p.numel() for p in conv.parameters())
    fc = torch.nn.Linear(c_in * kh, c_out, bias=bias)
    assert fc_params(c_in * kh, c_out, bias=bias) == sum(p.numel() for p in fc.parameters())


# ----------------------------------------------------------------------------------------------
# layer tables
# ----------------------------------------------------------------------------------------------
def test_lecture_lenet_table_row_by_row():
    rows = layer_table(LENET5_LECTURE)
    assert [tuple(r) for r in rows] == [
        ("INPUT", "input", (3, 32, 32), 3_072, 0),
        ("CONV1", "conv", (8, 28, 28), 6_272, 608),
        ("POOL1", "pool", (8, 14, 14), 1_568, 0),
        ("CONV2", "conv", (16, 10, 10), 1_600, 3_216),
        ("POOL2", "pool", (16, 5, 5), 400, 0),
        ("FC3", "fc", (120,), 120, 48_120),
        ("FC4", "fc", (84,), 84, 10_164),
        ("SOFTMAX", "fc", (10,), 10, 850),
    ]
    assert total_params(rows) == 62_958
    # most parameters sit in the FC layers; activations shrink with depth (each 2x2 pool by 4;
    # CONV2's 1,600 is the one small rise, over POOL1's 1,568)
    assert sum(r.params for r in rows if r.kind == "fc") / total_params(rows) > 0.9
    acts = [r.activations for r in rows[1:]]
    assert acts[0] == max(acts) and acts[-1] == min(acts)
    assert all(rows[i].activations * 4 == rows[i - 1].activations for i in (2, 4))


def test_classic_lenet5_table_row_by_row():
    rows = layer_table(LENET5)
    assert [tuple(r) for r in rows] == [
        ("INPUT", "input", (1, 32, 32), 1_024, 0),
        ("C1", "conv", (6, 28, 28), 4_704, 156),
        ("S2", "pool", (6, 14, 14), 1_176, 12),  # trainable subsampling: coefficient + bias per map
        ("C3", "conv", (16, 10, 10), 1_600, 1_516),  # the sparse connection table
        ("S4", "pool", (16, 5, 5), 400, 32),
        ("C5", "conv", (120, 1, 1), 120, 48_120),
        ("F6", "fc", (84,), 84, 10_164),
        ("OUTPUT", "rbf", (10,), 10, 840),
    ]
    # the paper's "about 60,000 trainable parameters" (C1..F6)
    assert total_params(rows[:-1]) == 60_000


def test_modern_lenet5_table():
    rows = layer_table(LENET5_MODERN)
    assert [r.out_shape for r in rows] == [(1, 32, 32), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5),
                                           (120,), (84,), (10,)]
    assert [r.params for r in rows] == [0, 156, 0, 2_416, 0, 48_120, 10_164, 850]
    assert total_params(rows) == 61_706


def test_c3_table_has_60_connections():
    assert len(LENET5_C3_TABLE) == 16
    assert sum(len(c) for c in LENET5_C3_TABLE) == 60
    assert len({tuple(sorted(c)) for c in LENET5_C3_TABLE}) == 16


def test_layer_table_matches_torch_modules():
    torch = pytest.importorskip("torch")
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(3, 8, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    rows = layer_table(LENET5_LECTURE)
    assert total_params(rows) == sum(p.numel() for p in model.parameters())
    x = torch.zeros(1, 3, 32, 32)
    shapes = []
    for m in model:
        x = m(x)
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.Linear)):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [r.out_shape for r in rows[1:]]


def test_auto_names_plain_list_flatten_act_and_same_pad():
    spec = [Conv(4, 3, pad="same"), Act("relu"), Pool(2), Conv(8, (4, 4), stride=2, pad=(1, 1)), Pool(2, mode="avg"),
            Flatten(), FC(10, bias=False)]
    rows = layer_table(spec, (1, 16, 16))
    assert [(r.name, r.kind, r.out_shape, r.params) for r in rows] == [
        ("INPUT", "input", (1, 16, 16), 0),
        ("CONV1", "conv", (4, 16, 16), 40),
        ("RELU", "act", (4, 16, 16), 0),
        ("POOL1", "pool", (4, 8, 8), 0),
        ("CONV2", "conv", (8, 4, 4), 520),
        ("POOL2", "pool", (8, 2, 2), 0),
        ("FLATTEN", "flatten", (32,), 0),
        ("FC3", "fc", (10,), 320),
    ]
    assert all(isinstance(r, LayerRow) for r in rows)


def test_layer_table_strict_and_floor():
    spec = [Conv(2, 3, stride=3)]
    with pytest.raises(ValueError) as err:
        layer_table(spec, (1, 7, 7))
    assert "layer 0 (CONV1)" in str(err.value) and "stride 3 does not fit" in str(err.value)
    assert layer_table(spec, (1, 7, 7), strict=False)[-1].out_shape == (2, 2, 2)


@pytest.mark.parametrize("spec, shape, fragment", [
    ([Conv(4, 3)], None, "input_shape is required"),
    ([Conv(4, 3)], (1, 32), "input_shape must be (C, H, W) or (D,)"),
    ([Conv(4, 3)], (1, 0, 5), "input_shape[1] must be a positive integer"),
    ([FC(10), Conv(4, 3)], (1, 8, 8), "needs a (C, H, W) input"),
    ([Conv(4, 9)], (1, 8, 8), "larger than the padded input"),
    ([Conv(4, 3, pad=-1)], (1, 8, 8), "pad must be non-negative"),
    ([Conv(2, 3, connections=((0,), (3,)))], (2, 8, 8), "channel mismatch"),
    ([Conv(3, 3, connections=((0,), (1,)))], (2, 8, 8), "connections lists 2 output maps, but c_out=3"),
    ([Conv(4, 4, pad="same")], (1, 8, 8), "odd filter size"),
    ([Pool(2, mode="median")], (1, 8, 8), "pool mode must be 'max' or 'avg'"),
    (["conv"], (1, 8, 8), "unknown layer spec"),
])
def test_layer_table_bad_input(spec, shape, fragment):
    with pytest.raises(ValueError) as err:
        layer_table(spec, shape)
    assert fragment in str(err.value), str(err.value)


def test_net_iterates_and_input_shape_override():
    assert len(LENET5_LECTURE) == 7 and list(LENET5_LECTURE)[0] == Conv(8, 5, name="CONV1")
    rows = layer_table(LENET5_LECTURE, (1, 32, 32))
    assert rows[1].params == conv_params(1, 8, 5)
    assert isinstance(LENET5, Net) and isinstance(LENET5.layers[-1], RBF)


def test_format_layer_table():
    text = format_layer_table(layer_table(LENET5_LECTURE), layout="hwc")
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["Layer", "Kind"] and "Output (H, W, C)" in lines[0]
    assert "(28, 28, 8)" in text and "48,120" in text and "3,216" in text
    assert lines[-1].split() == ["Total", "62,958"]
    # aligned: every line of the body ends at the same column (numbers are right-aligned)
    body = [ln for ln in lines if not ln.startswith("-")]
    assert len({len(ln) for ln in body}) == 1
    chw = format_layer_table(layer_table(LENET5))
    assert "(6, 28, 28)" in chw and "1,516" in chw and "Output (C, H, W)" in chw
    with pytest.raises(ValueError, match="layout must be 'chw' or 'hwc'"):
        format_layer_table([], layout="nhwc")
