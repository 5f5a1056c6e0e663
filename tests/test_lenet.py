"""LeNet-5: NumPy (cnnlab.numpy_ref.lenet) and PyTorch (cnnlab.torch_ref.LeNet5) agree and both learn digits."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnnlab import torch_ref as tr
from cnnlab.data import digits
from cnnlab.numpy_ref.lenet import lenet_features, lenet_init, lenet_loss
from cnnlab.numpy_ref.optim import sgd, sgd_momentum, train_numpy

VARIANTS = ["modern", "classic"]
FC_KEYS = {"W3", "W4", "W5"}


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


@pytest.fixture(scope="module")
def digit_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return digits()


# ----------------------------------------------------------------------------- initialisation


@pytest.mark.parametrize("variant", VARIANTS)
def test_lenet_init_shapes_seed_and_global_rng(variant: str) -> None:
    state = np.random.get_state()[1].copy()
    p = lenet_init(variant, in_channels=3, num_classes=7, seed=4)
    assert np.array_equal(np.random.get_state()[1], state), "lenet_init must not touch the global RNG"
    expected = {
        "W1": (6, 3, 5, 5), "b1": (6,), "W2": (16, 6, 5, 5), "b2": (16,), "W3": (400, 120),
        "b3": (120,), "W4": (120, 84), "b4": (84,), "W5": (84, 7), "b5": (7,),
    }
    assert {k: v.shape for k, v in p.items()} == expected
    assert all(v.dtype == np.float64 for v in p.values())
    q = lenet_init(variant, in_channels=3, num_classes=7, seed=4)
    assert all(np.array_equal(p[k], q[k]) for k in p)
    assert not np.array_equal(p["W1"], lenet_init(variant, 3, 7, seed=5)["W1"])
    gain = 2.0 if variant == "modern" else 1.0
    assert abs(p["W3"].std() - np.sqrt(gain / 400)) < 0.1 * np.sqrt(gain / 400)
    assert all(not v.any() for k, v in p.items() if k.startswith("b"))


def test_lenet_rejects_bad_input() -> None:
    p = lenet_init()
    with pytest.raises(ValueError, match=r"\(N, C, 32, 32\)"):
        lenet_loss(p, np.zeros((2, 1, 28, 28)))
    with pytest.raises(ValueError, match="channel mismatch"):
        lenet_loss(p, np.zeros((2, 3, 32, 32)))
    with pytest.raises(ValueError, match="variant"):
        lenet_loss(p, np.zeros((2, 1, 32, 32)), variant="lenet1")
    with pytest.raises(ValueError, match="missing"):
        lenet_loss({"W1": p["W1"]}, np.zeros((2, 1, 32, 32)))
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        tr.LeNet5()(torch.zeros(2, 1, 28, 28))
    with pytest.raises(ValueError, match="variant"):
        tr.LeNet5("vintage")


# ----------------------------------------------------------------------------- NumPy vs PyTorch


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("in_channels", [1, 3])
def test_numpy_and_torch_lenet_agree(variant: str, in_channels: int) -> None:
    rng = np.random.default_rng(11)
    params = lenet_init(variant, in_channels=in_channels, seed=2)
    # nonzero biases so that their gradients and the FC transposes are really exercised
    params = {k: v + 0.05 * rng.standard_normal(v.shape) if k.startswith("b") else v for k, v in params.items()}
    X = rng.standard_normal((4, in_channels, 32, 32))
    y = np.array([3, 0, 9, 3])

    model = tr.LeNet5(variant, in_channels=in_channels).double().load_numpy_params(params)
    xt = torch.from_numpy(X)
    scores_t = model(xt)
    loss_t = F.cross_entropy(scores_t, torch.from_numpy(y))
    loss_t.backward()

    scores_np = lenet_loss(params, X, variant=variant)
    loss_np, grads_np = lenet_loss(params, X, y, variant=variant)
    assert rel_error(scores_np, scores_t.detach().numpy()) < 1e-9
    assert abs(loss_np - loss_t.item()) / abs(loss_np) < 1e-9

    torch_grads = {
        "W1": model.conv1.weight.grad, "b1": model.conv1.bias.grad,
        "W2": model.conv2.weight.grad, "b2": model.conv2.bias.grad,
        "W3": model.fc1.weight.grad, "b3": model.fc1.bias.grad,
        "W4": model.fc2.weight.grad, "b4": model.fc2.bias.grad,
        "W5": model.fc3.weight.grad, "b5": model.fc3.bias.grad,
    }
    for key, g in torch_grads.items():
        g_np = g.numpy().T if key in FC_KEYS else g.numpy()
        assert g_np.shape == grads_np[key].shape, key
        assert rel_error(grads_np[key], g_np) < 1e-9, (key, rel_error(grads_np[key], g_np))

    # parameters round-trip, and intermediate features agree too
    back = model.numpy_params()
    assert all(np.array_equal(back[k], params[k]) for k in params)
    feats_np = lenet_features(params, X, variant)
    feats_t = model.features(xt)
    for name in ("conv1", "pool1", "conv2", "pool2", "fc1", "fc2", "scores"):
        assert rel_error(feats_np[name], feats_t[name].detach().numpy()) < 1e-9, name


def test_load_numpy_params_rejects_wrong_shapes() -> None:
    params = lenet_init(in_channels=3)
    with pytest.raises(ValueError, match="W1"):
        tr.LeNet5(in_channels=1).load_numpy_params(params)
    with pytest.raises(ValueError, match="missing"):
        tr.LeNet5().load_numpy_params({"W1": lenet_init()["W1"]})


def test_torch_seeded_init_is_local_and_reproducible() -> None:
    torch.manual_seed(0)
    before = torch.get_rng_state()
    a = tr.LeNet5("modern", seed=7)
    assert torch.equal(before, torch.get_rng_state()), "seeded init must use a local generator"
    b = tr.LeNet5("modern", seed=7)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert abs(a.fc1.weight.std().item() - np.sqrt(2 / 400)) < 0.1 * np.sqrt(2 / 400)


# ----------------------------------------------------------------------------- gradient check


@pytest.mark.parametrize("variant", VARIANTS)
def test_numpy_lenet_gradient_check(variant: str) -> None:
    """Central differences on a sample of entries of every parameter, tiny batch, float64."""
    rng = np.random.default_rng(5)
    params = lenet_init(variant, seed=1)
    params = {k: v + 0.05 * rng.standard_normal(v.shape) if k.startswith("b") else v for k, v in params.items()}
    X = rng.standard_normal((2, 1, 32, 32))
    y = np.array([1, 7])
    _, grads = lenet_loss(params, X, y, variant=variant)
    h = 1e-6
    for key, value in params.items():
        flat_idx = rng.choice(value.size, size=min(6, value.size), replace=False)
        for i in flat_idx:
            idx = np.unravel_index(i, value.shape)
            old = value[idx]
            value[idx] = old + h
            plus, _ = lenet_loss(params, X, y, variant=variant)
            value[idx] = old - h
            minus, _ = lenet_loss(params, X, y, variant=variant)
            value[idx] = old
            numeric = (plus - minus) / (2 * h)
            analytic = grads[key][idx]
            err = abs(numeric - analytic) / max(1e-7, abs(numeric) + abs(analytic))
            assert err < 1e-5, (
                f"{key}{idx}: received derivative {analytic:.8g}, central difference gives {numeric:.8g}"
            )


def test_sgd_momentum_and_sgd() -> None:
    w = np.array([1.0, -2.0, 3.0])
    dw = np.array([0.5, 0.5, -1.0])
    w_copy = w.copy()
    w1, cfg = sgd_momentum(w, dw)
    assert np.array_equal(w, w_copy), "the input array must not change"
    assert cfg["learning_rate"] == 1e-2 and cfg["momentum"] == 0.9
    np.testing.assert_allclose(w1, w - 1e-2 * dw)
    w2, cfg = sgd_momentum(w1, dw, cfg)
    v2 = 0.9 * (-1e-2 * dw) - 1e-2 * dw
    np.testing.assert_allclose(cfg["velocity"], v2)
    np.testing.assert_allclose(w2, w1 + v2)
    np.testing.assert_allclose(sgd(w, dw, {"learning_rate": 0.1})[0], w - 0.1 * dw)
    with pytest.raises(ValueError, match="shape"):
        sgd_momentum(w, dw[:2])
    with pytest.raises(ValueError, match="NaN"):
        sgd_momentum(w, np.array([np.nan, 0.0, 0.0]))


# ----------------------------------------------------------------------------- training on digits


@pytest.mark.slow   # trains a network: not in the fast tier
def test_numpy_lenet_learns_digits(digit_data) -> None:
    X_train, y_train, X_test, y_test = digit_data
    params = lenet_init("modern", seed=0)
    start = time.perf_counter()
    hist = train_numpy(params, (X_train[:800], y_train[:800], X_test, y_test), epochs=3, batch_size=32, lr=0.02, seed=0)
    seconds = time.perf_counter() - start
    print(f"numpy LeNet: test accuracy {hist['test_acc'][-1]:.3f} in {seconds:.1f} s")
    assert hist["loss"][-1] < hist["loss"][0]
    assert hist["test_acc"][-1] > 0.80, hist


@pytest.mark.slow   # trains LeNet-5 in PyTorch (about 40 s of CPU)
def test_torch_lenet_learns_digits(digit_data) -> None:
    X_train, y_train, X_test, y_test = digit_data
    torch.manual_seed(0)
    model = tr.LeNet5("modern", seed=0)
    start = time.perf_counter()
    hist = tr.train(model, (X_train, y_train), (X_test, y_test), epochs=4, lr=0.02, batch_size=32,
                    device="cpu", progress=False, seed=0)
    seconds = time.perf_counter() - start
    print(f"torch LeNet: test accuracy {hist['test_acc'][-1]:.3f} in {seconds:.1f} s")
    assert hist["test_acc"][-1] > 0.90, hist
    assert tr.evaluate(model, (X_test, y_test)) == pytest.approx(hist["test_acc"][-1])
    cm = tr.confusion_matrix(y_test, tr.predict(model, X_test), num_classes=10)
    assert cm.shape == (10, 10) and cm.sum() == len(y_test)
    assert np.trace(cm) / cm.sum() == pytest.approx(hist["test_acc"][-1])


# ----------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_lenet_on_cuda_matches_cpu_and_trains(digit_data) -> None:
    assert tr.device().type == "cuda"
    X_train, y_train, X_test, y_test = digit_data
    params = lenet_init("modern", seed=3)
    cpu = tr.LeNet5("modern").double().load_numpy_params(params)
    gpu = tr.LeNet5("modern").double().load_numpy_params(params).to("cuda")
    x = torch.from_numpy(X_test[:64].astype(np.float64))
    with torch.no_grad():
        out_cpu = cpu(x).numpy()
        out_gpu = gpu(x.to("cuda")).cpu().numpy()
    assert rel_error(out_cpu, out_gpu) < 1e-9
    # the default (float32) model trains on the GPU through train(device=None)
    model = tr.LeNet5("modern", seed=0)
    hist = tr.train(model, (X_train, y_train), (X_test, y_test), epochs=3, lr=0.02, batch_size=32, progress=False)
    assert next(model.parameters()).device.type == "cuda"
    assert np.isfinite(hist["loss"]).all() and hist["test_acc"][-1] > 0.85


# ----------------------------------------------------------------------------- the 1998 network


def test_lenet1998_is_the_papers_network() -> None:
    """C3's table, the scaled tanh, trainable subsampling, fixed RBF prototypes: 60,000 trainable
    parameters as the paper counts them (Section 2's table), and a nearest-prototype prediction."""
    from cnnlab import shapes
    from cnnlab.torch_ref.models import LeNet1998, prototypes, scaled_tanh

    net = LeNet1998(seed=0)
    counts = net.trainable_counts()
    table = {r.name: r.params for r in shapes.layer_table(shapes.LENET5)[1:]}
    assert counts == {k: table[k] for k in counts} and sum(counts.values()) == 60000
    assert table["OUTPUT"] == net.prototypes.numel() == 840 and not net.prototypes.requires_grad
    P = prototypes()
    assert P.shape == (10, 84) and set(np.unique(P)) == {-1.0, 1.0} and len({tuple(r) for r in P}) == 10
    assert float(scaled_tanh(torch.tensor(1.0))) == pytest.approx(1.0, abs=2e-4)
    x = torch.randn(3, 1, 32, 32)
    feats = net.features(x)
    assert [tuple(feats[k].shape) for k in ("C1", "S2", "C3", "S4", "C5", "F6", "scores")] == [
        (3, 6, 28, 28), (3, 6, 14, 14), (3, 16, 10, 10), (3, 16, 5, 5), (3, 120), (3, 84), (3, 10)]
    # the scores are minus the squared distances to the prototypes: the largest is the nearest one
    dist = ((feats["F6"][:, None, :] - net.prototypes[None]) ** 2).sum(dim=2)
    assert torch.allclose(feats["scores"], -dist)
    # C3 reads only the table's maps: the weights outside it stay zero and get no gradient
    net(x).sum().backward()
    outside = net.c3_mask.expand_as(net.c3.weight) == 0
    assert torch.all(net.c3.weight.grad[outside] == 0) and torch.all(net.c3.weight.detach()[outside] == 0)
    assert net.s2.coef.grad is not None and net.s4.bias.grad is not None     # subsampling is trained
    with pytest.raises(ValueError, match=r"\(N, 1, 32, 32\)"):
        net(torch.zeros(2, 3, 32, 32))


@pytest.mark.slow   # trains a network: not in the fast tier
def test_lenet1998_learns_digits(digit_data) -> None:
    from cnnlab.torch_ref.models import LeNet1998

    X_train, y_train, X_test, y_test = digit_data
    m, s = X_train.mean(), X_train.std()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = LeNet1998(seed=0)
        tr.train(net, ((X_train - m) / s, y_train), epochs=4, lr=1e-3, batch_size=32, device="cpu",
                 progress=False, optimizer="adam")
        acc = tr.evaluate(net, ((X_test - m) / s, y_test))
    finally:
        torch.set_num_threads(threads)
    assert acc > 0.9, acc


@pytest.mark.slow   # trains a network: not in the fast tier
def test_training_history_times_the_steps_apart() -> None:
    X = np.random.default_rng(0).standard_normal((64, 1, 32, 32)).astype(np.float32)
    y = np.arange(64) % 10
    h = tr.train(tr.LeNet5("modern", seed=0), (X, y), (X, y), epochs=2, batch_size=32, device="cpu", progress=False)
    assert len(h["train_seconds"]) == 2 and all(0 < t <= s for t, s in zip(h["train_seconds"], h["seconds"]))


# ----------------------------------------------------------------------------- the progress bar


def test_progress_bar_ends_finished_in_a_saved_notebook(monkeypatch) -> None:
    """In a kernel the bar is one display updated in place, so the notebook keeps its last state:
    "1,407/1,407" and the time, not the "0%" a widget leaves behind."""
    import cnnlab.progress as progress

    shown: list[dict] = []

    class Handle:
        def update(self, bundle, raw=True):
            shown.append(bundle)

    def display(bundle, raw=True, display_id=False):
        shown.append(bundle)
        return Handle()

    monkeypatch.setattr(progress, "_in_kernel", lambda: True)
    import IPython.display

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    bar = progress.Progress(1407, "training", "batches", interval=10.0)
    for _ in range(1407):
        bar.update(1, loss="0.05")
    bar.close()
    assert "0/1,407" in shown[0]["text/plain"] and "1,407/1,407 batches" in shown[-1]["text/plain"]
    assert "loss 0.05" in shown[-1]["text/plain"] and 'value="1407"' in shown[-1]["text/html"]
    assert len(shown) == 2          # drawn at the start and at the end (the interval is long)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    shown.clear()
    quiet = progress.Progress(10, "training")
    quiet.update(10)
    quiet.close()
    assert shown == []
