"""Checks of notebooks 01 (history) and 02 (filters): what tests/test_exercise_records.py does not prove.

The generic tests already prove, for every record, that the solution passes both tiers and that
every bug-table entry fails its own check with its phrase (and through nbgrader loses exactly its
points).  Here: unusual but correct answers that must pass, blame through helpers, specific
messages (stubs, the integrity guard, the vectorisation probe), the public helpers, the policy
statements in the notebooks, and the figures.
"""

from __future__ import annotations

import nbformat
import numpy as np
import pytest

from cnnlab.checks import nb01, nb02

TIERS = ["public", "hidden"]


@pytest.fixture(autouse=True)
def _outside_nbgrader(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def _run(module, name: str, fn, tier: str):
    return module.NOTEBOOK[name].run(fn, tier)


def _passes(module, name: str, fn) -> None:
    for tier in TIERS:
        outcome = _run(module, name, fn, tier)
        assert outcome.passed, outcome.message


def _fails(module, name: str, fn, tier: str, *words: str, absent: tuple[str, ...] = ()) -> str:
    outcome = _run(module, name, fn, tier)
    assert not outcome.passed, f"{name} passed ({tier})"
    for word in words:
        assert word in outcome.message, f"expected {word!r} in:\n{outcome.message}"
    for word in absent:
        assert word not in outcome.message, f"did not expect {word!r} in:\n{outcome.message}"
    return outcome.message


def _stub(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------------------------------------
# notebook 02: correct answers written in other ways
# ------------------------------------------------------------------------------------------------

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


def corr2d_einsum(x, k):
    return np.einsum("ijab,ab->ij", np.lib.stride_tricks.sliding_window_view(x, k.shape), k)


def corr2d_rows(x, k):
    """One Python loop over output rows, each row vectorised: not a loop over every pixel."""
    kh, kw = k.shape
    windows = np.lib.stride_tricks.sliding_window_view(x, k.shape)
    out = np.empty((x.shape[0] - kh + 1, x.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        out[i] = np.einsum("jab,ab->j", windows[i], k)
    return out


def corr2d_float32(x, k):
    return corr2d(x, k).astype(np.float32)


def corr2d_loops_zeros_like(x, k):
    kh, kw = k.shape
    out = np.zeros_like(x, dtype=float)[: x.shape[0] - kh + 1, : x.shape[1] - kw + 1]
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = (x[i:i + kh, j:j + kw] * k).sum()
    return out


@pytest.mark.parametrize("fn", [corr2d_offsets, corr2d_einsum, corr2d_rows, corr2d_float32])
def test_corr2d_other_correct_versions_pass(fn):
    _passes(nb02, "corr2d", fn)


def test_corr2d_loops_other_correct_versions_pass():
    _passes(nb02, "corr2d_loops", corr2d_loops_zeros_like)
    _passes(nb02, "corr2d_loops", corr2d)  # a vectorised answer is fine for the loop exercise


@pytest.mark.parametrize("fn", [lambda x, k: corr2d(x, np.rot90(k, 2)), lambda x, k: corr2d(x, np.flip(k)),
                                lambda x, k: corr2d(x[::-1, ::-1], k)[::-1, ::-1]])
def test_conv2d_true_other_correct_versions_pass(fn):
    _passes(nb02, "conv2d_true", fn)


def test_apply_kernels_list_and_comprehension_pass():
    _passes(nb02, "apply_kernels", lambda img, kernels: [corr2d(img, k) for k in kernels])
    _passes(nb02, "apply_kernels", lambda img, kernels: np.einsum(
        "ijab,fab->fij", np.lib.stride_tricks.sliding_window_view(img, kernels.shape[1:]), kernels))


def kernel_grad_einsum(X, Y, k):
    windows = np.lib.stride_tricks.sliding_window_view(X, k.shape, axis=(1, 2))  # (N, H', W', KH, KW)
    err = np.einsum("nijab,ab->nij", windows, k) - Y
    return 2 * np.einsum("nijab,nij->ab", windows, err) / err.size


def kernel_grad(X, Y, k):
    errors = np.stack([corr2d(x, k) for x in X]) - Y
    return 2.0 / errors.size * sum(corr2d(x, e) for x, e in zip(X, errors))


def test_kernel_grad_vectorised_over_the_batch_passes():
    _passes(nb02, "kernel_grad", kernel_grad_einsum)


def learn_kernel(X, Y, shape=(3, 3), lr=0.1, steps=100):
    k = np.zeros(shape)
    losses = []
    for _ in range(steps):
        losses.append(nb02.kernel_loss(X, Y, k))
        k = k - lr * kernel_grad(X, Y, k)
    return k, losses


def learn_kernel_list_own_loss(X, Y, shape=(3, 3), lr=0.1, steps=100):
    """Returns a list [k, losses] with losses as an array, and computes the loss itself."""
    k = np.zeros(shape)
    losses = np.zeros(steps)
    for t in range(steps):
        pred = np.stack([corr2d(x, k) for x in X])
        losses[t] = np.mean((pred - Y) ** 2)
        k -= lr * kernel_grad(X, Y, k)
    return [k, losses]


def test_learn_kernel_list_for_the_pair_and_own_loss_pass():
    _passes(nb02, "learn_kernel", learn_kernel)
    _passes(nb02, "learn_kernel", learn_kernel_list_own_loss)


def test_learn_kernel_not_a_pair_is_told_so():
    _fails(nb02, "learn_kernel", lambda X, Y, shape=(3, 3), lr=0.1, steps=100: learn_kernel(X, Y, shape, lr, steps)[0],
           "public", "expected 2 return values (k, losses)")


# ------------------------------------------------------------------------------------------------
# notebook 02: blame, stubs, guard, probe
# ------------------------------------------------------------------------------------------------

def _namespace(**functions):
    """Define the given functions as if in one notebook: each sees the others as globals."""
    ns = {"np": np, "nb02": nb02}
    for name, fn in functions.items():
        ns[name] = type(fn)(fn.__code__, ns, name, fn.__defaults__, fn.__closure__)
    return ns


def _conv2d_true(x, k):
    return corr2d(x, k[::-1, ::-1])  # noqa: F821 - bound by _namespace


def _apply_kernels(img, kernels):
    return np.stack([corr2d(img, k) for k in kernels])  # noqa: F821


def _learn_kernel(X, Y, shape=(3, 3), lr=0.1, steps=100):
    k = np.zeros(shape)
    losses = []
    for _ in range(steps):
        losses.append(nb02.kernel_loss(X, Y, k))
        k = k - lr * kernel_grad(X, Y, k)  # noqa: F821
    return k, losses


def _corr_flipped(x, k):
    return np.einsum("ijab,ab->ij", np.lib.stride_tricks.sliding_window_view(x, k.shape), k[::-1, ::-1])


def _grad_wrong_sign(X, Y, k):
    errors = Y - np.stack([corr2d(x, k) for x in X])  # noqa: F821 - bound by _namespace
    return 2.0 / errors.size * sum(corr2d(x, e) for x, e in zip(X, errors))  # noqa: F821


@pytest.mark.parametrize("tier", TIERS)
def test_conv2d_true_blames_a_wrong_corr2d(tier):
    ns = _namespace(corr2d=_corr_flipped, conv2d_true=_conv2d_true)
    _fails(nb02, "conv2d_true", ns["conv2d_true"], tier, "calls your corr2d, which fails its own check",
           "kernel flipped: that is true convolution", absent=("kernel not flipped",))


def test_apply_kernels_blames_an_unfinished_corr2d():
    ns = _namespace(corr2d=_stub, apply_kernels=_apply_kernels)
    _fails(nb02, "apply_kernels", ns["apply_kernels"], "public", "calls your corr2d", "not implemented yet")


@pytest.mark.parametrize("tier", TIERS)
def test_learn_kernel_blames_kernel_grad_not_its_update(tier):
    """The issue's case: a right update over a wrong-sign kernel_grad must not be told 'wrong sign in the update'."""
    ns = _namespace(corr2d=corr2d, kernel_grad=_grad_wrong_sign, learn_kernel=_learn_kernel)
    _fails(nb02, "learn_kernel", ns["learn_kernel"], tier, "calls your kernel_grad, which fails its own check",
           "wrong sign: the error is prediction - target", absent=("wrong sign in the update",))


@pytest.mark.parametrize("name", list(nb02.NOTEBOOK.exercises))
@pytest.mark.parametrize("tier", TIERS)
def test_nb02_stubs_say_not_implemented(name, tier):
    _fails(nb02, name, _stub, tier, f"{name} (Exercise", "not implemented yet")


def _corr_delegates(x, k):
    from cnnlab.numpy_ref import corr2d as ref

    return ref(x, k)


@pytest.mark.parametrize("tier", TIERS)
def test_corr2d_delegating_to_the_reference_is_refused(tier):
    _fails(nb02, "corr2d", _corr_delegates, tier, "cnnlab.numpy_ref", "off limits")


def test_kernel_grad_calling_the_checks_reference_is_refused():
    _fails(nb02, "kernel_grad", nb02.ref_kernel_grad, "hidden", "off limits")


def test_corr2d_pixel_loop_message_counts_lines():
    msg = _fails(nb02, "corr2d", corr2d_loops_zeros_like, "public", "lines of Python for a 38x38 output",
                 "Try: loop over the KH*KW kernel offsets")
    assert len(msg.splitlines()) <= 4, msg


def test_kernel_loss_values_and_validation():
    X = np.arange(2 * 4 * 4, dtype=float).reshape(2, 4, 4)
    k = np.ones((2, 2))
    Y = np.stack([corr2d(x, k) for x in X])
    assert nb02.kernel_loss(X, Y, k) == 0.0
    assert np.isclose(nb02.kernel_loss(X, Y + 1.0, k), 1.0)
    with pytest.raises(ValueError, match="ndim"):
        nb02.kernel_loss(np.zeros((4, 4)), np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="Y has shape"):
        nb02.kernel_loss(np.zeros((1, 4, 4)), np.zeros((1, 3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="larger than the images"):
        nb02.kernel_loss(np.zeros((1, 2, 2)), np.zeros((1, 1, 1)), np.zeros((3, 3)))


def test_kernel_loss_may_be_called_inside_a_guarded_exercise():
    from cnnlab.grading import run_guarded

    X, Y, k = np.ones((1, 4, 4)), np.zeros((1, 2, 2)), np.zeros((3, 3))
    result, _ = run_guarded(nb02.kernel_loss, X, Y, k, exercise="learn_kernel")
    assert result == 0.0


def test_ref_kernel_grad_matches_central_differences():
    g = np.random.default_rng(0)
    X, Y, k = g.standard_normal((3, 6, 5)), g.standard_normal((3, 4, 4)), g.standard_normal((3, 2))
    num = np.zeros_like(k)
    for idx in np.ndindex(k.shape):
        e = np.zeros_like(k)
        e[idx] = 1e-6
        num[idx] = (nb02.kernel_loss(X, Y, k + e) - nb02.kernel_loss(X, Y, k - e)) / 2e-6
    assert np.allclose(nb02.ref_kernel_grad(X, Y, k), num, atol=1e-7)


# ------------------------------------------------------------------------------------------------
# notebook 01
# ------------------------------------------------------------------------------------------------

def test_fc_and_conv_params_numpy_integers_and_kw_or_pass():
    _passes(nb01, "fc_params", lambda n_in, n_out, bias=True: np.int64(n_in) * n_out + (n_out if bias else 0))
    _passes(nb01, "conv_params", lambda c_in, c_out, kh, kw=None, bias=True:
            int(np.prod([c_in, kh, kw or kh])) * c_out + bias * c_out)


def test_shift_image_and_response_change_other_versions_pass():
    def shift_pad(img, dx, dy):
        h, w = img.shape
        padded = np.pad(img.astype(float), ((abs(dy), abs(dy)), (abs(dx), abs(dx))))
        return padded[abs(dy) - dy:abs(dy) - dy + h, abs(dx) - dx:abs(dx) - dx + w]

    _passes(nb01, "shift_image", shift_pad)
    _passes(nb01, "response_change", lambda b, a: np.sqrt(np.sum((a - b) ** 2)) / np.sqrt(np.sum(b ** 2)))
    _passes(nb01, "response_change", lambda b, a: np.linalg.norm((a - b).ravel()) / np.linalg.norm(b.ravel()))


def test_counters_refuse_cnnlab_shapes_in_the_hidden_tier():
    from cnnlab import shapes

    _passes_public = nb01.NOTEBOOK["fc_params"].run(shapes.fc_params, "public")
    assert _passes_public.passed
    _fails(nb01, "fc_params", shapes.fc_params, "hidden", "cnnlab.shapes")
    _fails(nb01, "conv_params", shapes.conv_params, "hidden", "cnnlab.shapes")


def test_shift_and_change_refuse_the_checks_references():
    _fails(nb01, "shift_image", nb01.ref_shift_image, "hidden", "ref_shift_image", "write the slicing yourself")
    _fails(nb01, "response_change", nb01.ref_response_change, "hidden", "ref_response_change")


@pytest.mark.parametrize("name", list(nb01.NOTEBOOK.exercises))
def test_nb01_stubs_say_not_implemented(name):
    _fails(nb01, name, _stub, "public", "not implemented yet")


def test_ref_shift_image_validates():
    with pytest.raises(ValueError, match="2-D"):
        nb01.ref_shift_image(np.zeros((2, 3, 3)), 1, 1)
    with pytest.raises(ValueError, match="does not fit"):
        nb01.ref_shift_image(np.zeros((3, 3)), 3, 0)


# ------------------------------------------------------------------------------------------------
# the notebooks: policy statements and issue items
# ------------------------------------------------------------------------------------------------

def _cells(assignment: str):
    return nbformat.read(f"solutions/{assignment}/{assignment}.ipynb", as_version=4).cells


@pytest.mark.parametrize("assignment", ["01_history", "02_filters"])
def test_setup_imports_no_reference_a_student_could_mistake_for_a_tool(assignment):
    setup = next(c for c in _cells(assignment) if c.metadata.get("nbgrader", {}).get("grade_id") == "setup")
    imported = [line for line in setup.source.splitlines() if "numpy_ref import" in line]
    assert all(" as ref_" in line for line in imported), imported
    intro = _cells(assignment)[0].source
    assert "What you may use" in intro and "refuse" in intro


@pytest.mark.parametrize("assignment,module", [("01_history", "nb01"), ("02_filters", "nb02")])
def test_notebook_ends_with_its_summary(assignment, module):
    assert _cells(assignment)[-1].source.strip() == f"{module}.summary(globals())"


def test_notebook_02_has_the_apply_kernels_exercise_and_the_flip_demo():
    text = "\n".join(c.source for c in _cells("02_filters"))
    assert "def apply_kernels(img, kernels)" in text and 'nb02.check("apply_kernels", apply_kernels)' in text
    assert "torch.flip(w_flip" in text and "kernel_grad(X_train, Y_train, k0)" in text


# ------------------------------------------------------------------------------------------------
# figures (smoke tests, inputs checked)
# ------------------------------------------------------------------------------------------------

def test_viz_smoke():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cnnlab.viz import filters as vf
    from cnnlab.viz import history as vh

    x, k = np.arange(9.0).reshape(3, 3), np.array([[0.0, 1.0], [2.0, 3.0]])
    vf.plot_window_step(x, k, corr2d(x, k), 1, 1)
    edge = np.repeat([[10.0] * 3 + [0.0] * 3], 6, axis=0)
    kv = np.array([[1.0, 0, -1]] * 3)
    fig = vf.plot_filter_outputs([edge, edge[:, ::-1]], kv, [corr2d(edge, kv), corr2d(edge[:, ::-1], kv)],
                                 ["a", "b"], ["+30", "-30"])
    outs = [im for ax in fig.axes for im in ax.images if im.cmap.name == "RdBu_r"]
    assert {im.get_clim() for im in outs[1:]} == {(-30.0, 30.0)}  # both outputs share one scale
    img = np.random.default_rng(0).random((20, 20))
    bank = {"id": np.pad([[1.0]], 1), "edge": kv}
    vf.kernel_gallery(img, bank, np.stack([corr2d(img, v) for v in bank.values()]), ncols=2)
    vf.kernel_gallery(img, bank, corr2d, ncols=2)
    vf.show_images([img, img - 0.5, 2 * (img - 0.5)], ["a", "b", "c"], colorbar=True)
    vf.plot_kernel_learning([1.0, 0.5, 0.1], np.ones((3, 3)), np.ones((3, 3)), snapshots={1: np.zeros((3, 3))},
                            distances=[1.0, 0.5, 0.2])
    vf.plot_kernels({"a": np.eye(3), "b": -np.eye(3)})
    vh.plot_timeline()
    vh.plot_tuning_curves(np.array([0.0, 90.0]), {"cell": np.array([1.0, 0.0])})
    vh.plot_param_growth([28, 64], [10, 20], [5, 5])
    fm = np.ones((4, 4))
    vh.plot_shift_experiment(img, img, np.ones(5), np.ones(5), fm, fm, {"FC": 0.2, "conv": 0.0}, fmap_realigned=fm)
    plt.close("all")


def test_timeline_dates_and_kinds():
    from cnnlab.viz.history import TIMELINE

    years = {year: (label, kind) for year, label, kind in TIMELINE}
    assert "simple and complex" in years[1962][0] and "hypercomplex" in years[1965][0]
    assert "Neocognitron" in years[1980][0] and years[1980][1] != "neuroscience"
    assert years[1959][1] == years[1968][1] == "neuroscience"


def test_viz_rejects_bad_input():
    from cnnlab.viz import filters as vf
    from cnnlab.viz import history as vh

    with pytest.raises(ValueError, match="odd"):
        vh.oriented_filter(0, size=8)
    with pytest.raises(ValueError, match="2-D"):
        vf.show_matrix(np.zeros(3))
    with pytest.raises(ValueError, match="out has shape"):
        vf.plot_window_step(np.zeros((3, 3)), np.zeros((2, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="kernels but"):
        vf.kernel_gallery(np.zeros((5, 5)), {"a": np.eye(3)}, np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="as many"):
        vf.plot_filter_outputs([np.zeros((3, 3))], np.eye(2), [], ["a"], [])
