"""Checks of notebooks 01 (history) and 02 (filters): references pass, realistic bugs fail with their name."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.checks import nb01, nb02

TIERS = ["public", "hidden"]


def _stub(*args, **kwargs):
    raise NotImplementedError()


def _passes(check, fn, tier, capsys) -> None:
    check(fn, tier=tier)
    out = capsys.readouterr()
    lines = [line for line in out.out.splitlines() if line.strip()]
    assert len(lines) == 1, out.out
    assert tier in lines[0]
    assert out.err == ""


def _fails(check, fn, tier, *words: str) -> str:
    with pytest.raises(AssertionError) as info:
        check(fn, tier=tier)
    msg = str(info.value)
    for word in words:
        assert word.lower() in msg.lower(), f"expected {word!r} in: {msg}"
    return msg


# ------------------------------------------------------------------------------------------------
# notebook 02: reference solutions and wrong variants
# ------------------------------------------------------------------------------------------------

def corr2d_loops(x, k):
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i:i + kh, j:j + kw] * k)
    return out


def corr2d(x, k):
    windows = np.lib.stride_tricks.sliding_window_view(x, k.shape)
    return np.tensordot(windows, k, axes=([2, 3], [0, 1]))


def corr2d_offsets(x, k):
    kh, kw = k.shape
    h, w = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    out = np.zeros((h, w))
    for a in range(kh):
        for b in range(kw):
            out += k[a, b] * x[a:a + h, b:b + w]
    return out


def conv2d_true(x, k):
    return corr2d(x, k[::-1, ::-1])


def kernel_grad(X, Y, k):
    errors = np.stack([corr2d(x, k) for x in X]) - Y
    return 2.0 / errors.size * sum(corr2d(x, e) for x, e in zip(X, errors))


def learn_kernel(X, Y, shape=(3, 3), lr=0.1, steps=100):
    k = np.zeros(shape)
    losses = []
    for _ in range(steps):
        losses.append(nb02.kernel_loss(X, Y, k))
        k = k - lr * kernel_grad(X, Y, k)
    return k, losses


def corr_off_by_one(x, k):
    kh, kw = k.shape
    return corr2d(x, k)[:-1, :-1] if x.shape[0] > kh and x.shape[1] > kw else np.zeros((0, 0))


def corr_flipped(x, k):
    return corr2d(x, k[::-1, ::-1])


def corr_square_kernel(x, k):
    kh = k.shape[0]
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kh + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(x[i:i + kh, j:j + kh] * k[:, :kh]) if kh <= k.shape[1] else 0.0
    return out


def corr_same_size(x, k):
    out = np.zeros(x.shape)
    valid = corr2d(x, k)
    out[:valid.shape[0], :valid.shape[1]] = valid
    return out


def corr_no_return(x, k):
    corr2d(x, k)


def corr_delegates(x, k):
    from cnnlab.numpy_ref import corr2d as ref

    return ref(x, k)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("check, fn", [(nb02.check_corr2d_loops, corr2d_loops), (nb02.check_corr2d, corr2d),
                                       (nb02.check_corr2d, corr2d_offsets),
                                       (nb02.check_conv2d_true, conv2d_true), (nb02.check_kernel_grad, kernel_grad),
                                       (nb02.check_learn_kernel, learn_kernel)])
def test_nb02_reference_passes(check, fn, tier, capsys):
    _passes(check, fn, tier, capsys)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("check", [nb02.check_corr2d_loops, nb02.check_corr2d])
@pytest.mark.parametrize("fn, words", [
    (corr_off_by_one, ["off-by-one", "range(H - KH + 1)"]),
    (corr_flipped, ["kernel flipped", "conv2d_true"]),
    (corr_square_kernel, ["one kernel size used for both axes"]),
    (corr_same_size, ["the input's size"]),
    (corr_no_return, ["returned None"]),
    (corr_delegates, ["cnnlab.numpy_ref"]),
    (_stub, ["not implemented"]),
])
def test_nb02_corr_bugs(check, fn, words, tier):
    _fails(check, fn, tier, *words)


@pytest.mark.parametrize("tier", TIERS)
def test_nb02_corr2d_rejects_pixel_loops(tier):
    _fails(nb02.check_corr2d, corr2d_loops, tier, "not vectorised", "loops over the output pixels")


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn, words", [
    (corr2d, ["kernel not flipped"]),
    (lambda x, k: corr2d(x, k[::-1]), ["only upside down"]),
    (lambda x, k: corr2d(x, k[:, ::-1]), ["only left-right"]),
    (lambda x, k: corr2d(x[::-1, ::-1], k), ["flipped the image instead of the kernel"]),
    (lambda x, k: corr2d(x, k[::-1, ::-1])[:-1], ["off-by-one"]),
    (_stub, ["conv2d_true", "not implemented"]),
])
def test_nb02_conv2d_true_bugs(fn, words, tier):
    _fails(nb02.check_conv2d_true, fn, tier, *words)


def test_nb02_conv2d_true_transposed_kernel():
    _fails(nb02.check_conv2d_true, lambda x, k: corr2d(x, k.T), "public", "transposed")


def _grad_first_image(X, Y, k):
    e = corr2d(X[0], k) - Y[0]
    return 2.0 / e.size * corr2d(X[0], e)


def _grad_per_image(X, Y, k):
    errors = np.stack([corr2d(x, k) for x in X]) - Y
    return np.stack([2.0 / errors.size * corr2d(x, e) for x, e in zip(X, errors)])


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn, words", [
    (lambda X, Y, k: -kernel_grad(X, Y, k), ["wrong sign"]),
    (lambda X, Y, k: kernel_grad(X, Y, k) / 2, ["factor 2"]),
    (lambda X, Y, k: kernel_grad(X, Y, k) * Y.size, ["summed instead of averaged"]),
    (_grad_first_image, ["missing the sum over the batch"]),
    (_grad_per_image, ["one gradient per image"]),
    (lambda X, Y, k: kernel_grad(X, Y, k)[::-1, ::-1], ["gradient flipped"]),
    (_stub, ["kernel_grad", "not implemented"]),
])
def test_nb02_kernel_grad_bugs(fn, words, tier):
    _fails(nb02.check_kernel_grad, fn, tier, *words)


def _learn_variant(sign=1.0, use_lr=True, assign=True, after=False, extra=0):
    def learn(X, Y, shape=(3, 3), lr=0.1, steps=100):
        k = np.zeros(shape)
        losses = []
        for _ in range(steps + extra):
            if not after:
                losses.append(nb02.kernel_loss(X, Y, k))
            new = k - sign * (lr if use_lr else 1.0) * kernel_grad(X, Y, k)
            if assign:
                k = new
            if after:
                losses.append(nb02.kernel_loss(X, Y, k))
        return k, losses[:steps] if extra < 0 else losses
    return learn


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn, words", [
    (_learn_variant(sign=-1.0), ["wrong sign in the update"]),
    (_learn_variant(use_lr=False), ["learning rate is ignored"]),
    (_learn_variant(assign=False), ["never changes"]),
    (_learn_variant(after=True), ["recorded after the update"]),
    (_learn_variant(extra=-1), ["losses has shape", "one loss per step"]),
    (lambda X, Y, shape=(3, 3), lr=0.1, steps=100: learn_kernel(X, Y, shape, lr, steps)[0], ["return a pair"]),
    (_stub, ["learn_kernel", "not implemented"]),
])
def test_nb02_learn_kernel_bugs(fn, words, tier):
    _fails(nb02.check_learn_kernel, fn, tier, *words)


def test_nb02_bad_tier():
    with pytest.raises(ValueError, match="tier"):
        nb02.check_corr2d(corr2d, tier="secret")


def test_nb02_kernel_loss_validates():
    with pytest.raises(ValueError, match="ndim"):
        nb02.kernel_loss(np.zeros((4, 4)), np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Y has shape"):
        nb02.kernel_loss(np.zeros((1, 4, 4)), np.zeros((1, 3, 3)), np.zeros((3, 3)))


# ------------------------------------------------------------------------------------------------
# notebook 01: reference solutions and wrong variants
# ------------------------------------------------------------------------------------------------

def fc_params(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def conv_params(c_in, c_out, kh, kw=None, bias=True):
    kw = kh if kw is None else kw
    return (c_in * kh * kw + (1 if bias else 0)) * c_out


def shift_image(img, dx, dy):
    h, w = img.shape
    out = np.zeros_like(img, dtype=float)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = img[max(-dy, 0):h - max(dy, 0),
                                                                    max(-dx, 0):w - max(dx, 0)]
    return out


def response_change(before, after):
    return float(np.linalg.norm(after - before) / np.linalg.norm(before))


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("check, fn", [(nb01.check_fc_params, fc_params), (nb01.check_conv_params, conv_params),
                                       (nb01.check_shift_image, shift_image),
                                       (nb01.check_shift_image, nb01.shift_reference),
                                       (nb01.check_response_change, response_change)])
def test_nb01_reference_passes(check, fn, tier, capsys):
    _passes(check, fn, tier, capsys)


def _fc_delegates(n_in, n_out, bias=True):
    from cnnlab import shapes

    return shapes.fc_params(n_in, n_out, bias)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn, words", [
    (lambda n_in, n_out, bias=True: n_in * n_out, ["biases are missing"]),
    (lambda n_in, n_out, bias=True: n_in * n_out + n_out, ["bias argument is ignored"]),
    (lambda n_in, n_out, bias=True: n_in * n_out + (n_in if bias else 0), ["per input"]),
    (lambda n_in, n_out, bias=True: (n_in + 1) * n_out / 1 if bias else n_in * n_out / 1, ["float", "int"]),
    (_stub, ["fc_params", "not implemented"]),
])
def test_nb01_fc_params_bugs(fn, words, tier):
    _fails(nb01.check_fc_params, fn, tier, *words)


def test_nb01_fc_params_delegation_fails_hidden():
    _fails(nb01.check_fc_params, _fc_delegates, "hidden", "cnnlab.shapes")


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn, words", [
    (lambda c_in, c_out, kh, kw=None, bias=True: c_in * kh * (kw or kh) * c_out, ["biases are missing"]),
    (lambda c_in, c_out, kh, kw=None, bias=True: (kh * (kw or kh) + (1 if bias else 0)) * c_out,
     ["input channels are missing"]),
    (lambda c_in, c_out, kh, kw=None, bias=True: c_in * kh * (kw or kh) * c_out + (1 if bias else 0),
     ["single shared bias"]),
    (lambda c_in, c_out, kh, kw=None, bias=True: (c_in * kh * kh + (1 if bias else 0)) * c_out, ["kw ignored"]),
    (lambda c_in, c_out, kh, kw=None, bias=True: (c_in * kh * kw + (1 if bias else 0)) * c_out, ["kw=None"]),
    (lambda c_in, c_out, kh, kw=None, bias=True: (c_in * kh * (kw or kh) + 1) * c_out, ["bias argument"]),
    (_stub, ["conv_params", "not implemented"]),
])
def test_nb01_conv_params_bugs(fn, words, tier):
    _fails(nb01.check_conv_params, fn, tier, *words)


def _shift_inplace(img, dx, dy):
    img[:] = shift_image(img.copy(), dx, dy)
    return img


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn, words", [
    (lambda img, dx, dy: np.roll(img, (dy, dx), axis=(0, 1)), ["wraps around"]),
    (lambda img, dx, dy: shift_image(img, -dx, -dy), ["wrong way"]),
    (lambda img, dx, dy: shift_image(img, dx, -dy), ["dy moves the content up"]),
    (lambda img, dx, dy: shift_image(img, dy, dx) if abs(dy) < img.shape[1] and abs(dx) < img.shape[0]
     else shift_image(img, dx, dy) + 1, ["swapped"]),
    (lambda img, dx, dy: np.pad(img, ((max(dy, 0), 0), (max(dx, 0), 0))), ["keeps the input's shape"]),
    (_shift_inplace, ["place"]),
    (lambda img, dx, dy: None, ["returned None"]),
    (_stub, ["shift_image", "not implemented"]),
])
def test_nb01_shift_image_bugs(fn, words, tier):
    _fails(nb01.check_shift_image, fn, tier, *words)


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("fn, words", [
    (lambda b, a: float(np.linalg.norm(a - b)), ["not divided by ||before||"]),
    (lambda b, a: float(np.linalg.norm(a - b) / np.linalg.norm(a)), ["divided by ||after||"]),
    (lambda b, a: float(np.sum((a - b) ** 2) / np.sum(b ** 2)), ["squared norms"]),
    (lambda b, a: float(abs(np.linalg.norm(a) - np.linalg.norm(b)) / np.linalg.norm(b)), ["subtract the arrays first"]),
    (lambda b, a: np.abs(a - b) / np.linalg.norm(b), ["return one number"]),
    (_stub, ["response_change", "not implemented"]),
])
def test_nb01_response_change_bugs(fn, words, tier):
    _fails(nb01.check_response_change, fn, tier, *words)


def test_nb01_shift_reference_validates():
    with pytest.raises(ValueError, match="2-D"):
        nb01.shift_reference(np.zeros((2, 3, 3)), 1, 1)
    with pytest.raises(ValueError, match="does not fit"):
        nb01.shift_reference(np.zeros((3, 3)), 3, 0)


# ------------------------------------------------------------------------------------------------
# figures and widgets of notebooks 01 and 02 (smoke tests, static fallback)
# ------------------------------------------------------------------------------------------------

def test_viz_and_widgets_smoke(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnlab.viz import filters as vf
    from cnnlab.viz import history as vh
    from cnnlab.widgets.filters import kernel_editor
    from cnnlab.widgets.history import orientation_explorer

    monkeypatch.setenv("CNNLAB_STATIC", "1")
    x, k = np.arange(9.0).reshape(3, 3), np.array([[0.0, 1.0], [2.0, 3.0]])
    vf.plot_window_step(x, k, corr2d(x, k), 1, 1)
    img = np.random.default_rng(0).random((20, 20))
    vf.kernel_gallery(img, {"id": np.eye(3), "edge": np.array([[1.0, 0, -1]] * 3)}, corr2d, ncols=2)
    vf.show_images([img, img - 0.5], ["a", "b"])
    vf.plot_kernel_learning([1.0, 0.5, 0.1], np.ones((3, 3)), np.ones((3, 3)))
    assert kernel_editor(img, corr2d) is None
    f = vh.oriented_filter(45, size=7)
    assert f.shape == (7, 7) and abs(f.mean()) < 1e-12 and np.isclose(np.linalg.norm(f), 1.0)
    assert orientation_explorer(f, lambda a: np.ones((9, 9)), corr2d) is None
    vh.plot_timeline()
    vh.plot_tuning_curves(np.array([0.0, 90.0]), {"cell": np.array([1.0, 0.0])})
    vh.plot_param_growth([28, 64], [10, 20], [5, 5])
    fm = np.ones((4, 4))
    vh.plot_shift_experiment(img, img, np.ones(5), np.ones(5), fm, fm, {"FC": 0.2, "conv": 0.0}, fmap_realigned=fm)
    plt.close("all")


def test_viz_rejects_bad_input():
    from cnnlab.viz import filters as vf
    from cnnlab.viz import history as vh

    with pytest.raises(ValueError, match="odd"):
        vh.oriented_filter(0, size=8)
    with pytest.raises(ValueError, match="2-D"):
        vf.show_matrix(np.zeros(3))
    with pytest.raises(ValueError, match="out has shape"):
        vf.plot_window_step(np.zeros((3, 3)), np.zeros((2, 2)), np.zeros((3, 3)))
