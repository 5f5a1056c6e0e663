"""Tests for cnnlab.grading: messages, gradient check, cases, the integrity guard, Check."""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab import grading as G
from cnnlab import numpy_ref

MODES = ("fast", "profile")


# ----------------------------------------------------------------------------- helpers
def honest_corr2d(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Valid cross-correlation with loops (what a student writes)."""
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i : i + kh, j : j + kw] * k)
    return out


def naive_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> tuple[np.ndarray, None]:
    """Loop convolution, NCHW, with many Python-level NumPy calls."""
    n_, _, h, wd = x.shape
    f_, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((n_, f_, ho, wo))
    for n in range(n_):
        for f in range(f_):
            for i in range(ho):
                for j in range(wo):
                    win = xp[n, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
                    out[n, f, i, j] = np.sum(win * w[f]) + b[f]
    return out, None


@pytest.fixture
def xk() -> tuple[np.ndarray, np.ndarray]:
    gen = G.rng(7)
    return gen.standard_normal((6, 5)), gen.standard_normal((3, 2))


def message(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------- rel_error
def test_rel_error() -> None:
    assert G.rel_error(np.ones(3), np.ones(3)) == 0.0
    assert G.rel_error([1.0], [3.0]) == pytest.approx(0.5)
    assert G.rel_error(np.zeros(0), np.zeros(0)) == 0.0


# ----------------------------------------------------------------------------- assert_close
def test_assert_close_passes_and_accepts_float32() -> None:
    e = np.linspace(-1, 1, 12).reshape(3, 4)
    G.assert_close(e + 1e-12, e)
    G.assert_close(e.astype(np.float32), e)  # a float32 answer is not wrong
    G.assert_close(2.0, np.float64(2.0))
    G.assert_close(np.array([2.0]), 2.0)  # size-1 result for a scalar is fine
    G.assert_close([[1.0, 2.0]], np.array([[1.0, 2.0]]))  # a list of numbers is fine


def test_none_returned() -> None:
    msg = message(G.assert_close, None, np.ones(3))
    assert "returned None" in msg and "return" in msg


def test_tuple_instead_of_array() -> None:
    msg = message(G.assert_close, (np.ones((2, 2)), {"x": 1}), np.ones((2, 2)), name="out")
    assert msg.startswith("out:") and "tuple of 2" in msg and "(2, 2)" in msg


@pytest.mark.parametrize(
    ("got", "want", "hint"),
    [
        ((3, 4), (4, 4), "off by one"),
        ((5, 3), (3, 5), "transposed"),
        ((3, 4, 4), (2, 3, 4, 4), "batch (N) axis"),
        ((2, 4, 4), (2, 3, 4, 4), "channel (C) axis"),
        ((2, 3, 4, 1), (2, 3, 4), "extra axis"),
        ((2, 2, 6), (2, 6, 2), "axes swapped"),
    ],
)
def test_shape_messages(got: tuple[int, ...], want: tuple[int, ...], hint: str) -> None:
    msg = message(G.assert_close, np.zeros(got), np.ones(want), name="out")
    assert f"wrong shape {got}" in msg and f"expected {want}" in msg
    assert hint in msg


def test_integer_dtype() -> None:
    msg = message(G.assert_close, np.array([1, 2]), np.array([1.0, 2.0]))
    assert "integer dtype int64" in msg and "float" in msg
    G.assert_close(np.array([1, 2]), np.array([1, 2]))  # integers where integers are expected


@pytest.mark.parametrize(
    "bad",
    ["abc", {"a": 1}, np.array(["a", "b"]), np.array([1 + 2j, 3j]), np.array([True, False]), [np.ones(2), np.ones(3)], object()],
)
def test_only_assertion_errors(bad: object) -> None:
    with pytest.raises(AssertionError):
        G.assert_close(bad, np.ones(2))


def test_torch_tensor_returned() -> None:
    torch = pytest.importorskip("torch")
    msg = message(G.assert_close, torch.ones(2, requires_grad=True), np.ones(2))
    assert "torch.Tensor" in msg and "NumPy" in msg


def test_nan_message() -> None:
    a = np.ones((2, 3))
    a[1, 2] = np.nan
    msg = message(G.assert_close, a, np.ones((2, 3)))
    assert "NaN" in msg and "(1, 2)" in msg and "1 of 6" in msg
    G.assert_close(np.array([np.nan, 1.0]), np.array([np.nan, 1.0]))  # NaN expected there


def test_off_values_where_and_how_much() -> None:
    e = np.arange(200.0).reshape(10, 20)
    a = e.copy()
    a[3, 7] += 0.5
    a[9, 19] += 0.01
    msg = message(G.assert_close, a, e, name="out")
    assert "2 of 200 values differ" in msg
    assert "(3, 7)" in msg and "got 67.5, expected 67" in msg
    assert "max abs diff 0.5" in msg
    assert len(msg.splitlines()) <= 6  # concise, no giant dump


def test_value_hints() -> None:
    e = np.arange(1.0, 7.0).reshape(2, 3)
    assert "2 times" in message(G.assert_close, 2 * e, e)
    assert "same amount" in message(G.assert_close, e + 1, e)
    assert "never filled" in message(G.assert_close, np.zeros_like(e), e)
    assert "sign" in message(G.assert_close, -e, e)
    sq = np.arange(9.0).reshape(3, 3)
    assert "transposed" in message(G.assert_close, sq.T, sq)


def test_known_bug_recognised(xk: tuple[np.ndarray, np.ndarray]) -> None:
    x, k = xk
    want = numpy_ref.corr2d(x, k)
    flipped = numpy_ref.conv2d_true(x, k)
    bugs = {"the kernel is flipped (true convolution)": flipped, "unrelated": np.zeros_like(want)}
    msg = message(G.assert_close, flipped, want, bugs=bugs)
    assert "Likely bug: the kernel is flipped" in msg and "unrelated" not in msg
    # a bug with another shape is recognised on shape mismatch too
    short = want[:-1]
    msg = message(G.assert_close, short, want, bugs={"loop range one too short": short})
    assert "Likely bug: loop range one too short" in msg
    # no false claim when nothing matches
    assert "Likely bug" not in message(G.assert_close, want + 1.0, want, bugs={"flipped": flipped})


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=4).map(tuple),
    seed=st.integers(0, 2**16),
    noise=st.floats(0, 10),
)
def test_assert_close_never_crashes(shape: tuple[int, ...], seed: int, noise: float) -> None:
    gen = G.rng(seed)
    e = gen.standard_normal(shape)
    a = e + noise * gen.standard_normal(shape)
    try:
        G.assert_close(a, e)
    except AssertionError as exc:
        assert len(str(exc).splitlines()) <= 12


# ----------------------------------------------------------------------------- gradients
def test_numeric_gradient_matches_analytic() -> None:
    gen = G.rng(0)
    x = gen.standard_normal((3, 4))
    df = gen.standard_normal((3, 4))
    num = G.numeric_gradient(np.tanh, x, df)
    np.testing.assert_allclose(num, df * (1 - np.tanh(x) ** 2), rtol=1e-6, atol=1e-9)
    x_before = x.copy()
    g = G.numeric_gradient(lambda v: float(np.sum(v**2)), x)  # scalar f, df None
    np.testing.assert_allclose(g, 2 * x, rtol=1e-6)
    np.testing.assert_array_equal(x, x_before)


def test_assert_gradient_catches_missing_batch_sum() -> None:
    c = G.affine_case(G.rng(3), n=4, in_shape=(3,), m=5)
    dout = G.rng(4).standard_normal((4, 5))

    def forward_b(b: np.ndarray) -> np.ndarray:
        return c.x.reshape(4, -1) @ c.w + b

    G.assert_gradient(dout.sum(axis=0), forward_b, c.b, dout, name="db")  # correct
    msg = message(G.assert_gradient, dout[0], forward_b, c.b, dout, name="db",
                  bugs={"db uses only the first sample: sum dout over the batch axis": dout[0]})
    assert "received derivative" in msg and "central difference gives" in msg and "index (" in msg
    assert "Likely bug: db uses only the first sample" in msg
    assert "0.25 times" in message(G.assert_gradient, dout.mean(axis=0), forward_b, c.b, dout, name="db")
    assert "wrong shape" in message(G.assert_gradient, dout, forward_b, c.b, dout, name="db")


# ----------------------------------------------------------------------------- cases
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), aniso=st.booleans())
def test_conv_case_fits(seed: int, aniso: bool) -> None:
    x, w, b, stride, pad = G.conv_case(G.rng(seed), anisotropic=aniso)
    sh, sw = stride if isinstance(stride, tuple) else (stride, stride)
    ph, pw = pad if isinstance(pad, tuple) else (pad, pad)
    assert x.ndim == 4 and w.ndim == 4 and b.shape == (w.shape[0],) and x.shape[1] == w.shape[1]
    assert (x.shape[2] + 2 * ph - w.shape[2]) % sh == 0 and (x.shape[3] + 2 * pw - w.shape[3]) % sw == 0
    assert x.shape[2] >= 1 and x.shape[3] >= 1 and x.size <= 3 * 3 * 40 * 40


def test_cases_are_seeded_and_local() -> None:
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    a, b = G.conv_case(G.rng(5)), G.conv_case(G.rng(5))
    np.testing.assert_array_equal(a.x, b.x)
    p = G.pool_case(G.rng(1), size=2, stride=2)
    assert p.x.shape[2] % 2 == 0
    for kind in ("batch", "layer", "spatial", "group", "instance"):
        nc = G.norm_case(G.rng(2), kind)
        assert nc.gamma.shape == (nc.x.shape[1],) and nc.x.shape[1] % nc.groups == 0
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    with pytest.raises(ValueError, match="kind"):
        G.norm_case(G.rng(0), "weird")


# ----------------------------------------------------------------------------- passed
def test_passed_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    G.passed("corr2d", "6 cases match (public)")
    out, err = capsys.readouterr()
    assert out == "\u2714 corr2d: 6 cases match (public)\n" and err == ""


# ----------------------------------------------------------------------------- guard
def _forbidden_callers() -> dict[str, object]:
    torch = pytest.importorskip("torch")
    import scipy.ndimage
    import scipy.signal
    import torch.nn.functional as F
    from cnnlab.numpy_ref import corr2d as aliased  # imported before grading

    def via_torch(x: np.ndarray, k: np.ndarray) -> np.ndarray:
        return F.conv2d(torch.from_numpy(x)[None, None], torch.from_numpy(k)[None, None])[0, 0].numpy()

    def via_unfold(x: np.ndarray, k: np.ndarray) -> np.ndarray:
        win = torch.from_numpy(x).unfold(0, k.shape[0], 1).unfold(1, k.shape[1], 1)
        return (win.numpy() * k).sum(axis=(2, 3))

    def swallowing(x: np.ndarray, k: np.ndarray) -> np.ndarray:
        try:
            return numpy_ref.corr2d(x, k)
        except:  # noqa: E722 -- a student hiding the guard: still caught
            return honest_corr2d(x, k)

    return {
        "direct": numpy_ref.corr2d,
        "alias": lambda x, k: aliased(x, k),
        "lambda": lambda x, k: (lambda a, b: numpy_ref.corr2d(a, b))(x, k),
        "torch_conv2d": via_torch,
        "torch_unfold": via_unfold,
        "scipy_signal": lambda x, k: scipy.signal.correlate2d(x, k, mode="valid"),
        "scipy_ndimage": lambda x, k: scipy.ndimage.correlate(x, k),
        "swallowing": swallowing,
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "case", ["direct", "alias", "lambda", "torch_conv2d", "torch_unfold", "scipy_signal", "scipy_ndimage", "swallowing"]
)
def test_guard_catches(case: str, mode: str, xk: tuple[np.ndarray, np.ndarray]) -> None:
    fn = _forbidden_callers()[case]
    msg = message(G.guarded, fn, *xk, exercise="corr2d", guard_mode=mode)
    assert msg.startswith("exercise corr2d: your function called ")
    assert "write it with NumPy yourself" in msg
    expected_origin = {"scipy_signal": "scipy.signal", "scipy_ndimage": "scipy.ndimage"}.get(case, "")
    if case.startswith("torch"):
        expected_origin = "torch"
    elif not expected_origin:
        expected_origin = "cnnlab.numpy_ref.corr.corr2d"
    assert expected_origin in msg
    # the references work again after the guarded call
    np.testing.assert_allclose(numpy_ref.corr2d(*xk), honest_corr2d(*xk))


@pytest.mark.parametrize("mode", MODES)
def test_guard_catches_conv_alias(mode: str) -> None:
    from cnnlab.numpy_ref import conv_forward as f

    c = G.conv_case(G.rng(0))
    msg = message(G.guarded, lambda x, w, b, s, p: f(x, w, b, s, p), *c, exercise="conv_forward", guard_mode=mode)
    assert "cnnlab.numpy_ref.conv.conv_forward" in msg
    out, _ = f(*c)  # outside the guard: fine
    assert out.ndim == 4


@pytest.mark.parametrize("mode", MODES)
def test_guard_does_not_fire_on_honest_numpy(mode: str, xk: tuple[np.ndarray, np.ndarray]) -> None:
    x, k = xk
    want = numpy_ref.corr2d(x, k)
    honest = {
        "loops": honest_corr2d,
        "sliding_window_view+einsum": lambda a, b: np.einsum("ijkl,kl->ij", sliding_window_view(a, b.shape), b),
        "tensordot": lambda a, b: np.tensordot(sliding_window_view(a, b.shape), b, axes=([2, 3], [0, 1])),
    }
    for fn in honest.values():
        np.testing.assert_allclose(G.guarded(fn, x, k, exercise="corr2d", guard_mode=mode), want)
    c = G.conv_case(G.rng(1))
    G.guarded(naive_conv, *c[:3], exercise="conv_forward", guard_mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_guard_allow(mode: str, xk: tuple[np.ndarray, np.ndarray]) -> None:
    def uses_pad(x: np.ndarray) -> np.ndarray:
        return numpy_ref.pad(x, 1)  # pad's own helpers run too

    assert G.guarded(uses_pad, xk[0], exercise="p", allow=("cnnlab.numpy_ref.pad",), guard_mode=mode).shape == (8, 7)
    assert G.guarded(uses_pad, xk[0], exercise="p", allow=(numpy_ref.pad,), guard_mode=mode).shape == (8, 7)
    assert "padding.pad" in message(G.guarded, uses_pad, xk[0], exercise="p", guard_mode=mode)


def test_guard_torch_allowed_when_not_forbidden(xk: tuple[np.ndarray, np.ndarray]) -> None:
    torch = pytest.importorskip("torch")

    def torch_ok(x: np.ndarray) -> np.ndarray:
        return (torch.from_numpy(x) * 2).numpy()

    for mode in MODES:
        np.testing.assert_allclose(G.guarded(torch_ok, xk[0], exercise="t", forbid=("numpy_ref", "torch_conv"), guard_mode=mode), 2 * xk[0])
        assert "torch" in message(G.guarded, _forbidden_callers()["torch_conv2d"], *xk, exercise="t", forbid=("torch_conv",), guard_mode=mode)


@pytest.mark.parametrize("mode", MODES)
def test_previous_profiler_restored(mode: str, xk: tuple[np.ndarray, np.ndarray]) -> None:
    calls: list[str] = []

    def mine(frame, event, arg):  # noqa: ANN001, ANN202
        calls.append(event)

    previous = sys.getprofile()
    sys.setprofile(mine)
    try:
        G.guarded(honest_corr2d, *xk, exercise="corr2d", guard_mode=mode)
        with pytest.raises(AssertionError):
            G.guarded(numpy_ref.corr2d, *xk, exercise="corr2d", guard_mode=mode)
        assert sys.getprofile() is mine
    finally:
        sys.setprofile(previous)


@pytest.mark.parametrize("mode", MODES)
def test_guard_errors_become_assertions(mode: str) -> None:
    def stub(x: np.ndarray) -> np.ndarray:
        raise NotImplementedError()

    def broken(x: np.ndarray) -> np.ndarray:
        return x[10]

    msg = message(G.guarded, stub, np.ones(2), exercise="corr2d", guard_mode=mode)
    assert msg == "corr2d: not implemented yet — replace `raise NotImplementedError()` with your code"
    msg = message(G.guarded, broken, np.ones(2), exercise="corr2d", guard_mode=mode)
    assert msg.startswith("corr2d: your function raised IndexError: index 10 is out of bounds")
    assert "return x[10]" in msg  # the student's line
    assert "expected your function" in message(G.guarded, None, np.ones(2), exercise="corr2d")
    with pytest.raises(ValueError, match="forbid"):
        G.guarded(broken, np.ones(2), exercise="x", forbid=("nonsense",))


def test_guard_detects_input_mutation() -> None:
    def relu_backward_inplace(dout: np.ndarray, x: np.ndarray) -> np.ndarray:
        dx = dout
        dx[x <= 0] = 0
        return dx

    x = np.array([-1.0, 2.0, -3.0])
    dout = np.ones(3)
    msg = message(G.guarded, relu_backward_inplace, dout, x, exercise="relu_backward")
    assert "changed its input `dout` in place" in msg
    np.testing.assert_array_equal(dout, np.ones(3))  # the caller's array is untouched
    G.guarded(relu_backward_inplace, dout, x, exercise="relu_backward", check_mutation=False)


def test_guard_captures_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    def warns(x: np.ndarray) -> np.ndarray:
        warnings.warn("student warning", UserWarning, stacklevel=1)
        return np.log(x - x)  # divide-by-zero RuntimeWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any escaping warning would raise here
        result, caught = G.run_guarded(warns, np.ones(2), exercise="w")
    assert np.all(np.isneginf(result)) and len(caught) == 2
    assert capsys.readouterr().err == ""


# ----------------------------------------------------------------------------- Exercise records
def _corr_notebook() -> "G.Notebook":
    from cnnlab.numpy_ref import conv2d_true, corr2d

    nb = G.Notebook("99_demo")

    def public() -> list:
        return [G.Case((np.arange(9.0).reshape(3, 3), np.array([[0.0, 1.0], [2.0, 3.0]])), label="the 3x3 example")]

    def hidden() -> list:
        gen = G.rng(11)
        return [G.Case((gen.standard_normal((5, 6)), gen.standard_normal(ks)), label=f"a {ks} kernel")
                for ks in [(3, 2), (1, 1), (2, 3)]]

    nb.add(G.Exercise("corr2d", 1, corr2d, public, hidden, bugs=[
        G.Bug("kernel flipped", "def corr2d(x, k):\n    k = k[::-1, ::-1]\n"
              "    win = np.lib.stride_tricks.sliding_window_view(x, k.shape)\n"
              "    return np.einsum('ijab,ab->ij', win, k)", fix="use k as it is"),
        G.Bug("kernel transposed", "def corr2d(x, k):\n    k = k.T\n"
              "    win = np.lib.stride_tricks.sliding_window_view(x, k.shape)\n"
              "    return np.einsum('ijab,ab->ij', win, k)"),
    ]))
    nb.add(G.Exercise("conv2d_true", 2, conv2d_true, public, hidden, uses=("corr2d",), bugs=[
        G.Bug("kernel not flipped", "def conv2d_true(x, k):\n    return corr2d(x, k)"),
    ]))
    return nb


OWN_CORR = ("def corr2d(x, k):\n    win = np.lib.stride_tricks.sliding_window_view(x, k.shape)\n"
            "    return np.einsum('ijab,ab->ij', win, k)\n")


def _student(code: str, **helpers: object):
    ns: dict = {"np": np, **helpers}
    exec(code, ns)  # noqa: S102
    return ns


def test_exercise_passes_and_names_a_bug_only_when_the_output_matches() -> None:
    nb = _corr_notebook()
    ex = nb["corr2d"]
    assert ex.run(_student(OWN_CORR)["corr2d"]).passed
    flipped = ex.bug_function(ex.bug("kernel flipped"))
    msg = ex.run(flipped).message
    assert msg.startswith("\u2718 corr2d (Exercise 1), case 1 of 1: the 3x3 example")
    assert "Likely bug: kernel flipped" in msg and "Try: use k as it is" in msg
    # a different wrong answer: the message says where and how much, and names no bug
    off = _student(OWN_CORR + "def off(x, k):\n    return corr2d(x, k) + 0.5")
    msg = ex.run(off["off"], "public").message
    assert "Likely bug" not in msg and "values differ" in msg
    own = _student(OWN_CORR)["corr2d"]
    msg = ex.run(lambda x, k: own(x, k) * 2.0).message
    assert "every value is 2 times the expected one" in msg and "Likely bug" not in msg


def test_hidden_tier_says_what_kind_of_case_and_never_the_expected_values() -> None:
    ex = _corr_notebook()["corr2d"]
    own = _student(OWN_CORR)["corr2d"]
    msg = ex.run(lambda x, k: own(x, k) + 1.0, "hidden").message
    assert "hidden case 1 of 3: a (3, 2) kernel" in msg
    assert "expected:" not in msg and "got " not in msg and "inputs" not in msg


def test_blame_names_the_helper_that_fails_its_own_check() -> None:
    nb = _corr_notebook()
    wrong_corr = nb["corr2d"].bug_function(nb["corr2d"].bug("kernel transposed"))
    student = _student("def conv2d_true(x, k):\n    return corr2d(x, k[::-1, ::-1])", corr2d=wrong_corr)
    msg = nb["conv2d_true"].run(student["conv2d_true"]).message
    assert "calls your corr2d, which fails its own check (Exercise 1)" in msg
    assert "fix corr2d first" in msg
    # a helper that is right: the exercise's own bug is named
    own = _student("def conv2d_true(x, k):\n    return corr2d(x, k)", corr2d=_student(OWN_CORR)["corr2d"])
    msg = nb["conv2d_true"].run(own["conv2d_true"]).message
    assert "Likely bug: kernel not flipped" in msg and "calls your" not in msg
    # an unfinished helper is blamed too, not the finished exercise
    def stub(x, k):
        raise NotImplementedError("Exercise: corr2d")
    finished = _student("def conv2d_true(x, k):\n    return corr2d(x, k[::-1, ::-1])", corr2d=stub)
    msg = nb["conv2d_true"].run(finished["conv2d_true"]).message
    assert "calls your corr2d" in msg and "not implemented yet" in msg


def test_tuple_outputs_accept_a_list_and_only_compares_one() -> None:
    def ref(x: np.ndarray, w: np.ndarray) -> tuple:
        return x @ w, x.sum(axis=0), {"x": x}

    gen = G.rng(0)
    cases = lambda: [G.Case((gen.standard_normal((3, 2)), gen.standard_normal((2, 2))))]  # noqa: E731
    ex = G.Exercise("pair", 1, ref, cases, cases, outputs=("out", "colsum", "cache"), bugs=[
        G.Bug("sum over the batch missing", "def pair(x, w):\n    return x @ w, x[0], {}")])
    assert ex.run(lambda x, w: list(ref(x, w))).passed
    msg = ex.run(ex.bug_function(ex.bugs[0])).message
    assert "colsum:" in msg and "Likely bug: sum over the batch missing" in msg
    assert ex.run(ex.bug_function(ex.bugs[0]), only="out").passed
    msg = ex.run(lambda x, w: x @ w).message
    assert "expected 3 return values (out, colsum, cache)" in msg
    with pytest.raises(ValueError, match="tier must be"):
        ex.run(ref, tier="secret")


def test_failing_check_is_at_most_fifteen_lines() -> None:
    ex = _corr_notebook()["corr2d"]

    def noisy(x, k):
        raise ValueError("\n".join(f"line {i}" for i in range(40)))

    msg = ex.run(noisy).message
    assert len(msg.splitlines()) <= 15 and "raised ValueError: line 0" in msg


def test_fast_guard_traps_wrapped_functions_and_imports() -> None:
    import functools
    import importlib
    import types

    fake = types.ModuleType("cnnlab.numpy_ref._fake_for_test")
    source = '''
import functools

def base(x):
    return x * 2

def deco(f):
    @functools.wraps(f)
    def wrapper(*a, **k):
        return f(*a, **k)
    return wrapper

@deco
def wrapped(x):
    return x * 3

@functools.lru_cache(maxsize=None)
def cached(n):
    return n + 1

twice = functools.partial(base)

class Layer:
    @staticmethod
    def forward(x):
        return x + 1
'''
    exec(compile(source, "<fake numpy_ref module>", "exec"), fake.__dict__)  # noqa: S102
    sys.modules[fake.__name__] = fake
    try:
        held = (fake.base, fake.wrapped, fake.cached, fake.twice, fake.Layer.forward)
        for fn in held:
            msg = message(G.guarded, lambda v, fn=fn: fn(v), 1, exercise="x", guard_mode="fast")
            assert "your function called cnnlab.numpy_ref._fake_for_test." in msg
        assert [fn(1) for fn in held] == [2, 3, 2, 2, 2]  # restored afterwards
        msg = message(G.guarded, lambda: importlib.import_module("scipy.ndimage._not_there"), exercise="x")
        # the first forbidden import trips: scipy.ndimage itself when no earlier test imported it
        assert "your function called import scipy.ndimage" in msg
    finally:
        del sys.modules[fake.__name__]


def test_hidden_tier_messages_never_show_the_expected_array() -> None:
    expected = np.arange(16.0).reshape(4, 4)
    wrong = expected.copy()
    wrong[1, 2] += 1
    try:
        G.set_tier("public")
        with pytest.raises(AssertionError, match="expected: ") as public:
            G.assert_close(wrong, expected)
        assert "worst at index (1, 2)" in str(public.value)
        G.set_tier("hidden")
        with pytest.raises(AssertionError) as hidden:
            G.assert_close(wrong, expected)
        message = str(hidden.value)
        assert "worst at index (1, 2)" in message and "expected: " not in message
        assert "[12. 13. 14. 15.]" not in message
    finally:
        G.set_tier("public")
    with pytest.raises(ValueError, match="tier must be"):
        G.set_tier("secret")


def test_numeric_gradient_of_a_transposed_array() -> None:
    x = np.arange(6.0).reshape(2, 3).T  # not C-contiguous
    grad = G.numeric_gradient(lambda a: float(np.sum(a ** 2)), x)
    np.testing.assert_allclose(grad, 2 * x, rtol=1e-6)


def test_a_shortened_message_keeps_its_diagnosis() -> None:
    from cnnlab.grading.exercise import _shorten

    long = "\n".join(["\u2718 ex (Exercise 1), case 1:"] + [f"  line {i}" for i in range(30)]
                     + ["  Likely bug: the bias is missing", "  Try: add b"])
    short = _shorten(long)
    assert len(short.splitlines()) == 15
    assert short.splitlines()[-2:] == ["  Likely bug: the bias is missing", "  Try: add b"]
    assert short.splitlines()[0].startswith("\u2718 ex")


# ----------------------------------------------------------------------------- threads, references, the mode
def _in_thread(raw: bool):
    """A student function that gets the reference's answer from a second thread."""

    def delegate(x: np.ndarray, k: np.ndarray) -> np.ndarray:
        import _thread
        import threading

        out: list[np.ndarray] = []
        if raw:
            done = threading.Event()

            def work() -> None:
                try:
                    out.append(numpy_ref.corr2d(x, k))
                finally:
                    done.set()

            _thread.start_new_thread(work, ())
            done.wait(10)
        else:
            t = threading.Thread(target=lambda: out.append(numpy_ref.corr2d(x, k)))
            t.start()
            t.join()
        return out[0] if out else np.zeros((x.shape[0] - k.shape[0] + 1, x.shape[1] - k.shape[1] + 1))

    return delegate


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("raw", [False, True], ids=["threading", "_thread"])
def test_guard_catches_a_reference_called_from_another_thread(mode: str, raw: bool, xk) -> None:
    msg = message(G.guarded, _in_thread(raw), *xk, exercise="corr2d", guard_mode=mode)
    assert "cnnlab.numpy_ref.corr.corr2d" in msg, msg
    np.testing.assert_allclose(numpy_ref.corr2d(*xk), honest_corr2d(*xk))   # and it works again afterwards


def test_guard_catches_torch_called_from_another_thread(xk) -> None:
    torch = pytest.importorskip("torch")

    def delegate(x: np.ndarray, k: np.ndarray) -> np.ndarray:
        import threading

        out: list[np.ndarray] = []

        def work() -> None:
            t = torch.nn.functional.conv2d(torch.tensor(x)[None, None], torch.tensor(k)[None, None])
            out.append(t[0, 0].numpy())

        th = threading.Thread(target=work)
        th.start()
        th.join()
        return out[0] if out else np.zeros(1)

    msg = message(G.guarded, delegate, *xk, exercise="corr2d")
    assert "torch" in msg, msg


def test_probe_sees_a_module_called_from_another_thread() -> None:
    """The issue's attack: cnnlab.shapes called from a thread escaped ``refuse_module``."""
    import threading

    from cnnlab import shapes
    from cnnlab.grading.probes import refuse_module

    def fc_params(n_in: int, n_out: int) -> int:
        out: list[int] = []
        t = threading.Thread(target=lambda: out.append(shapes.fc_params(n_in, n_out)))
        t.start()
        t.join()
        return out[0] if out else 0

    extra = refuse_module(shapes, 7, 5)
    with pytest.raises(G.Problem) as info:
        extra(fc_params, "hidden")
    assert "cnnlab.shapes.fc_params" in info.value.message
    assert extra.refuses == "cnnlab.shapes" and extra.tiers == ("hidden",)
    assert shapes.fc_params(7, 5) == 40      # untrapped again


def test_a_check_forbids_its_own_reference_from_the_checks_module() -> None:
    """train_lenet delegating to nb07.ref_train_lenet passed its check (no forbidden group covers
    cnnlab.checks); the record's references are forbidden in its call now, its helpers are not."""
    from cnnlab.checks import nb07

    def train_lenet(*args, **kwargs):
        return nb07.ref_train_lenet(*args, **kwargs)

    ex = nb07.NOTEBOOK["train_lenet"]
    outcome = ex.run(train_lenet, "hidden")
    assert not outcome.passed and "ref_train_lenet" in outcome.message, outcome.message
    assert nb07.ref_lenet_forward not in ex.forbidden_references()     # a helper the check puts in place
    assert nb07.ref_train_lenet in ex.forbidden_references()


def test_the_grading_mode_is_fixed_when_the_kernel_starts() -> None:
    """Once a grading kernel has fixed the mode, a failing check raises whatever the student's code
    does to the environment, to the module's globals during the call, or to the check classes."""
    import subprocess

    code = """
import os
os.environ["NBGRADER_EXECUTION"] = "autograde"
from cnnlab.grading import exercise as E
from cnnlab.checks import nb01
print(E.fix_grading_mode())
os.environ.pop("NBGRADER_EXECUTION")          # the issue's attack
print(E.fix_grading_mode(False))              # a second call changes nothing

def attempt(fn):
    try:
        nb01.check("fc_params", fn)
        return "shown"
    except AssertionError:
        return "raised"

def wrong(n_in, n_out):
    return 0

def flips_the_mode(n_in, n_out):
    E._GRADING = False                        # during the call: decided before it
    return 0

print(attempt(wrong), attempt(flips_the_mode))
E._GRADING = True                             # (the kernel's guard restores module attributes)
type.__setattr__(E.Exercise, "check", lambda *a, **k: None)     # a class attribute patched
print(attempt(wrong))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "True", "raised", "raised", "raised"], out.stdout + out.stderr[-2000:]
