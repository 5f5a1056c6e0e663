"""Notebook 07 (LeNet) beyond the generic record tests: the syllabus numbers, the references against
the course's LeNet and central differences, the accuracy bar in both settings, unusual correct
answers, the integrity guard, and a short real-MNIST run (skipped when the files are absent)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cnnlab import numpy_ref, shapes
from cnnlab.checks import nb07
from cnnlab.grading import rng
from tests.test_exercise_records import solution_namespace, with_answer

A = "07_lenet"
MNIST = Path(os.environ.get("CNNLAB_MNIST_DIR", "/work/shared/data"))


@pytest.fixture(autouse=True)
def _outside_nbgrader(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)


def _run(name, code, tier="public"):
    return nb07.NOTEBOOK[name].run(with_answer(A, code)[name], tier)


def _namespace(replacements: dict[str, str]) -> dict:
    """The set-up and every answer cell executed in one namespace, some answers replaced (as a
    student's notebook runs them, so that helpers see each other's replacements)."""
    import nbformat

    from autograder.config import Course
    from autograder.sample_class import answer_code

    ns: dict = {"__name__": "__main__"}
    for cell in nbformat.read(Course().source_notebooks(A)[0], as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("grade_id") == "setup" or meta.get("solution")):
            code = replacements.get(meta["grade_id"], answer_code(cell.source))
            exec(compile(code, f"<{meta['grade_id']}>", "exec"), ns)  # noqa: S102 - the course's own cells
    return ns


# ------------------------------------------------------------------ the table
def test_lecture_table_numbers():
    rows = nb07.ref_lenet_table((3, 32, 32), conv_channels=(8, 16))
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("CONV1", (8, 28, 28), 608), ("POOL1", (8, 14, 14), 0), ("CONV2", (16, 10, 10), 3216),
        ("POOL2", (16, 5, 5), 0), ("FC3", (120,), 48120), ("FC4", (84,), 10164), ("SOFTMAX", (10,), 850)]
    assert [r[2] for r in rows] == [6272, 1568, 1600, 400, 120, 84, 10]
    lecture = shapes.layer_table(shapes.LENET5_LECTURE)[1:]
    assert [(r.name, r.out_shape, r.activations, r.params) for r in lecture] == rows


def test_lenet5_table_numbers_and_the_solution_agrees():
    rows = nb07.ref_lenet_table()
    assert [r[1] for r in rows][:4] == [(6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 5, 5)]
    assert rows[0][3] == 156 and rows[2][3] == 2416 and sum(r[3] for r in rows) == 61706
    table = solution_namespace(A)["lenet_table"]
    for kwargs in ({}, {"input_shape": (3, 32, 32), "conv_channels": (8, 16)},
                   {"input_shape": (1, 32, 40), "fc_units": (50,)}):  # a rectangular input too
        assert [tuple(r) for r in table(**kwargs)] == nb07.ref_lenet_table(**kwargs)
    paper = shapes.layer_table(shapes.LENET5)
    assert [r.params for r in paper[1:]] == [156, 12, 1516, 32, 48120, 10164, 840]


def test_table_accepts_lists_and_numpy_ints():
    code = '''
import numpy as np
def lenet_table(input_shape=(1, 32, 32), conv_channels=(6, 16), fc_units=(120, 84), num_classes=10):
    c, h, w = input_shape
    rows = []
    for i, f in enumerate(conv_channels, start=1):
        h, w = h - 4, w - 4
        rows.append([f"conv{i}", [f, h, w], np.int64(f * h * w), np.int64((c * 25 + 1) * f)])
        c, h, w = f, h // 2, w // 2
        rows.append([f"pool{i}", np.array([c, h, w]), c * h * w, 0])
    d = c * h * w
    sizes = list(fc_units) + [num_classes]
    for j, m in enumerate(sizes):
        rows.append([f"FC{j + 3}" if j < len(fc_units) else "softmax", [m], m, (d + 1) * m])
        d = m
    return rows
'''
    for tier in ("public", "hidden"):
        outcome = _run("lenet_table", code, tier)
        assert outcome.passed, outcome.message


def test_table_may_not_call_shapes():
    code = '''
from cnnlab import shapes
def lenet_table(input_shape=(1, 32, 32), conv_channels=(6, 16), fc_units=(120, 84), num_classes=10):
    layers = [shapes.Conv(conv_channels[0], 5), shapes.Pool(2), shapes.Conv(conv_channels[1], 5), shapes.Pool(2)]
    layers += [shapes.FC(n) for n in fc_units] + [shapes.FC(num_classes, name="SOFTMAX")]
    return [(r.name, r.out_shape, r.activations, r.params) for r in shapes.layer_table(layers, input_shape)[1:]]
'''
    assert _run("lenet_table", code, "public").passed
    hidden = _run("lenet_table", code, "hidden")
    assert not hidden.passed and "cnnlab.shapes" in hidden.message


# ------------------------------------------------------------------ references
def test_reference_forward_and_backward_equal_the_course_lenet():
    params = nb07._params(3)
    X, y = rng(3).standard_normal((4, 1, 32, 32)), np.array([1, 7, 3, 3])
    scores, caches = nb07.ref_lenet_forward(X, params)
    loss, grads = nb07.ref_lenet_backward(scores, y, caches)
    loss_ref, grads_ref = numpy_ref.lenet_loss(params, X, y)
    np.testing.assert_allclose(scores, numpy_ref.lenet_loss(params, X), rtol=1e-10, atol=1e-12)
    assert loss == pytest.approx(loss_ref, rel=1e-12)
    for k in nb07.PARAM_KEYS:
        np.testing.assert_allclose(grads[k], grads_ref[k], rtol=1e-8, atol=1e-12, err_msg=k)


def test_reference_backward_agrees_with_central_differences():
    params = nb07._params(5)
    X, y = rng(5).standard_normal((2, 1, 32, 32)), np.array([4, 9])

    def loss_of(p):
        s, c = nb07.ref_lenet_forward(X, p)
        return nb07.ref_lenet_backward(s, y, c)[0]

    scores, caches = nb07.ref_lenet_forward(X, params)
    _, grads = nb07.ref_lenet_backward(scores, y, caches)
    pick, h = rng(6), 1e-6
    for key in nb07.PARAM_KEYS:
        for _ in range(4):
            idx = tuple(int(pick.integers(0, s)) for s in params[key].shape)
            plus = {k: v.copy() for k, v in params.items()}
            minus = {k: v.copy() for k, v in params.items()}
            plus[key][idx] += h
            minus[key][idx] -= h
            numeric = (loss_of(plus) - loss_of(minus)) / (2 * h)
            assert numeric == pytest.approx(grads[key][idx], rel=1e-4, abs=1e-7), (key, idx)


# ------------------------------------------------------------------ decoupling and blame
def test_backward_is_graded_on_the_course_caches_not_the_students_forward():
    ns = with_answer(A, nb07.NOTEBOOK["lenet_forward"].bugs[0].code)  # a wrong forward
    assert not nb07.NOTEBOOK["lenet_forward"].run(ns["lenet_forward"]).passed
    assert nb07.NOTEBOOK["lenet_backward"].run(ns["lenet_backward"]).passed


def test_train_lenet_is_graded_alone_and_the_students_helpers_come_back():
    ns = _namespace({"sgd_step": nb07.NOTEBOOK["sgd_step"].bugs[0].code})  # the step adds the gradient
    wrong = ns["sgd_step"]
    assert not nb07.NOTEBOOK["sgd_step"].run(wrong).passed
    for tier in ("public", "hidden"):
        outcome = nb07.NOTEBOOK["train_lenet"].run(ns["train_lenet"], tier)
        assert outcome.passed, outcome.message
    assert ns["sgd_step"] is wrong


# ------------------------------------------------------------------ unusual correct answers
def test_unusual_correct_answers_pass():
    forward = '''
def lenet_forward(X, params):
    caches, h = {}, X
    for i in (1, 2):
        h, caches[f"conv{i}"] = conv_forward(h, params[f"W{i}"], params[f"b{i}"])
        h, caches[f"relu{i}"] = relu_forward(h)
        h, caches[f"pool{i}"] = max_pool_forward(h, 2, 2)
    h, caches["flatten"] = flatten_forward(h)
    for i, key in ((3, "fc3"), (4, "fc4")):
        h, caches[key] = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        h, caches[f"relu{i}"] = relu_forward(h)
    scores, caches["fc5"] = affine_forward(h, params["W5"], params["b5"])
    return [scores, caches]
'''
    backward = '''
def lenet_backward(scores, y, caches):
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.mean(np.log(p[np.arange(n), y]))
    onehot = np.zeros_like(p)
    onehot[np.arange(n), y] = 1
    d = (p - onehot) / n
    grads = {}
    for i, (fc, relu) in ((5, ("fc5", "relu4")), (4, ("fc4", "relu3")), (3, ("fc3", None))):
        d, grads[f"W{i}"], grads[f"b{i}"] = affine_backward(d, caches[fc])
        if relu:
            d = relu_backward(d, caches[relu])
    d = flatten_backward(d, caches["flatten"])
    for i in (2, 1):
        d = relu_backward(max_pool_backward(d, caches[f"pool{i}"]), caches[f"relu{i}"])
        d, grads[f"W{i}"], grads[f"b{i}"] = conv_backward(d, caches[f"conv{i}"])
    return loss, grads
'''
    sgd_in_place = '''
def sgd_step(params, grads, velocity, lr, momentum=0.9):
    for k in params:
        velocity[k] = momentum * velocity[k] - lr * grads[k]
        params[k] = params[k] + velocity[k]
    return params, velocity
'''
    train_array_losses = '''
def train_lenet(params, X, y, epochs=1, batch_size=32, lr=0.01, momentum=0.9, seed=0):
    gen = np.random.default_rng(seed)
    velocity = {k: 0 * v for k, v in params.items()}
    losses = np.zeros(0)
    for _ in range(epochs):
        order = gen.permutation(len(X))
        for batch in [order[i:i + batch_size] for i in range(0, len(X), batch_size)]:
            scores, caches = lenet_forward(X[batch], params)
            loss, grads = lenet_backward(scores, y[batch], caches)
            params, velocity = sgd_step(params, grads, velocity, lr, momentum)
            losses = np.append(losses, loss)
    return params, losses
'''
    for name, code in (("lenet_forward", forward), ("lenet_backward", backward), ("sgd_step", sgd_in_place),
                       ("train_lenet", train_array_losses)):
        for tier in ("public", "hidden"):
            outcome = _run(name, code, tier)
            assert outcome.passed, outcome.message


# ------------------------------------------------------------------ integrity guard
def test_the_course_lenet_is_off_limits():
    code = '''
from cnnlab.numpy_ref import lenet_loss
def lenet_forward(X, params):
    return lenet_loss(params, X), {}
'''
    outcome = _run("lenet_forward", code)
    assert not outcome.passed and "lenet_loss" in outcome.message and "off limits" in outcome.message


def test_train_digits_may_not_use_train_numpy():
    code = '''
def train_digits(X_train, y_train, epochs):
    from cnnlab.numpy_ref import lenet_init, train_numpy
    params = lenet_init(seed=0)
    train_numpy(params, (X_train, y_train), epochs=epochs)
    return params, []
'''
    outcome = _run("train_digits", code)
    assert not outcome.passed and "train_numpy" in outcome.message


# ------------------------------------------------------------------ the accuracy bar
@pytest.mark.slow   # trains on the digits
def test_accuracy_bar_reachable_while_grading(monkeypatch):
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    epochs, bar = nb07.digits_setting()
    assert (epochs, bar) == (nb07.DIGITS_EPOCHS[True], nb07.DIGITS_BAR[True]) and bar < nb07.DIGITS_BAR[False]
    fn = solution_namespace(A)["train_digits"]
    outcome = nb07.NOTEBOOK["train_digits"].run(fn, "public")
    assert outcome.passed, outcome.message
    assert f">= {bar:.0%}" in outcome.message


def test_train_once_uses_the_students_helpers_and_remembers_the_run():
    fn = solution_namespace(A)["train_digits"]
    digits = nb07.training_set(use_mnist=False)
    X_train, y_train = digits.X_train, digits.y_train
    run = nb07.train_once(fn, X_train, y_train, epochs=1)
    assert run is not None and len(run["losses"]) == int(np.ceil(len(X_train) / 32))
    key = nb07._key(fn, X_train, y_train, 1, "own")
    assert nb07._train_run(fn, X_train, y_train, 1, "own") is nb07._RUNS[key]  # no second training


@pytest.mark.slow   # trains on the digits
def test_accuracy_check_grades_train_digits_alone():
    """A wrong sgd_step costs Exercise 4 and 5, not the accuracy: the check runs the student's
    train_digits on the course's forward, backward, update and loop, and restores the student's."""
    ns = _namespace({"sgd_step": nb07.NOTEBOOK["sgd_step"].bugs[0].code})
    wrong = ns["sgd_step"]
    outcome = nb07.NOTEBOOK["train_digits"].run(ns["train_digits"], "public")
    assert outcome.passed, outcome.message
    assert ns["sgd_step"] is wrong


def test_train_once_on_a_stub_says_what_to_do(capsys):
    ns = with_answer(A, "def train_digits(X_train, y_train, epochs):\n    raise NotImplementedError()\n")
    X = np.zeros((4, 1, 32, 32), np.float32)
    assert nb07.train_once(ns["train_digits"], X, np.zeros(4, int), epochs=1) is None
    assert "Finish Exercises 2-6" in capsys.readouterr().out


# ------------------------------------------------------------------ real MNIST (the benchmark's data)
@pytest.mark.skipif(not (MNIST / "mnist" / "t10k-images-idx3-ubyte.gz").is_file(), reason="no MNIST files")
@pytest.mark.slow   # trains on MNIST: not in the fast tier
def test_short_mnist_run_reaches_a_modest_accuracy(monkeypatch):
    pytest.importorskip("torch")
    import torch

    from bench import bench_mnist
    from cnnlab import torch_ref

    monkeypatch.setenv("CNNLAB_DATA", str(MNIST))
    X_train, y_train, X_test, y_test = bench_mnist.load(5000)
    assert X_train.shape == (5000, 1, 32, 32) and X_test.shape == (10000, 1, 32, 32)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        net = torch_ref.LeNet5("modern", seed=0)
        torch_ref.train(net, (X_train, y_train), epochs=2, lr=0.03, batch_size=32, device="cpu", progress=False)
        acc = torch_ref.evaluate(net, (X_test[:2000], y_test[:2000]))
    finally:
        torch.set_num_threads(threads)
    assert acc > 0.85, acc


def test_bench_names_the_missing_file(monkeypatch, tmp_path, capsys):
    from bench import bench_mnist

    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path))
    with pytest.raises(SystemExit) as info:
        bench_mnist.load(10)
    assert "train-images-idx3-ubyte" in str(info.value) and str(tmp_path) in str(info.value)


# ------------------------------------------------------------------ the student's own layers (04, 05 -> 07)
def _cells(assignment: str, replacements: dict[str, str] | None = None) -> dict:
    """A student's namespace as a kernel builds it: the set-up cell and every answer cell run in
    order, each under a file name that ``inspect.getsource`` can read back (as IPython's cells are)."""
    import linecache

    import nbformat

    from autograder.config import Course
    from autograder.sample_class import answer_code

    ns: dict = {"__name__": "__main__"}
    for n, cell in enumerate(nbformat.read(Course().source_notebooks(assignment)[0], as_version=4).cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and (meta.get("grade_id") == "setup" or meta.get("solution")):
            code = (replacements or {}).get(meta["grade_id"], answer_code(cell.source))
            name = f"<cell-{assignment}-{n}-{abs(hash(code))}>"
            linecache.cache[name] = (len(code), None, code.splitlines(True), name)
            exec(compile(code, name, "exec"), ns)  # noqa: S102 - the course's own cells
    return ns


@pytest.fixture()
def my_layers(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_MY_LAYERS", str(tmp_path))
    return tmp_path


def _save(assignment: str, folder, replacements: dict[str, str] | None = None, verbose: bool = False):
    from cnnlab import own_layers

    return own_layers.save(assignment, _cells(assignment, replacements), where=folder, verbose=verbose)


def test_07_builds_lenet_from_the_students_own_layers(my_layers, capsys):
    """04 and 05 save their right layers; 07's set-up cell takes them (and says so), the checks of
    Exercises 2-5 pass with them in the namespace, and a short training with them learns."""
    from cnnlab import own_layers

    path = _save("04_volumes", my_layers)
    assert path is not None and path.parent == my_layers and "def conv_backward" in path.read_text()
    assert "import numpy as np" in path.read_text() and "cnnlab" not in path.read_text().split('"""', 2)[2]
    _save("05_pooling", my_layers)
    capsys.readouterr()
    ns = _cells(A)                                           # 07's set-up cell and answers
    shown = capsys.readouterr().out
    assert "4 of 4 yours" in shown and "the course's" not in shown, shown
    assert ns["conv_backward"].__module__ == "cnnlab_my_layers_04_volumes"
    assert ns["max_pool_backward"].__module__ == "cnnlab_my_layers_05_pooling"
    assert ns["layers"].yours() == ["conv_forward", "conv_backward", "max_pool_forward", "max_pool_backward"]
    for name in ("lenet_forward", "lenet_backward", "sgd_step", "train_lenet"):
        for tier in ("public", "hidden"):
            outcome = nb07.NOTEBOOK[name].run(ns[name], tier)
            assert outcome.passed, outcome.message
    assert ns["conv_backward"].__module__ == "cnnlab_my_layers_04_volumes"   # put back after the checks
    digits = nb07.training_set(use_mnist=False)
    X, y = digits.X_train[:96], digits.y_train[:96]
    params = {k: v.astype(np.float32) for k, v in numpy_ref.lenet_init(seed=0).items()}
    calls = []
    own = ns["conv_backward"]
    ns["conv_backward"] = lambda *a, **k: calls.append(1) or own(*a, **k)
    _, losses = ns["train_lenet"](params, X, y, epochs=3, batch_size=32, lr=0.01)
    assert len(calls) == 2 * 9 and np.mean(losses[-3:]) < np.mean(losses[:3])   # the student's layer trained it
    # too slow to train with: the course's pair takes over for the training, and says why
    slow = ns["layers"]
    timings = slow.keep_fast(steps=10, slack=-1.0, factor=0.0, namespace=ns, verbose=False)
    assert set(timings) == {"04_volumes", "05_pooling"} and slow.yours() == []
    assert "per batch of 32" in slow.layers["conv_backward"].why and "kernel offsets" in slow.layers["conv_backward"].why


def test_07_reports_a_bug_in_the_students_conv_backward_as_the_cause(my_layers, capsys):
    """A conv_backward with a known bug (db taken from the first image only, say) is saved with a
    warning; 07 checks it again, says which bug, and builds LeNet-5 from the course's conv pair."""
    from cnnlab.checks import nb04

    bug = next(b for b in nb04.NOTEBOOK["conv_backward"].bugs if b.by_output and "db" in b.says)
    capsys.readouterr()
    path = _save("04_volumes", my_layers, {"conv_backward": bug.code}, verbose=True)
    assert path is not None and "fails its public check" in capsys.readouterr().out
    _save("05_pooling", my_layers)
    capsys.readouterr()
    ns = _cells(A)
    shown = capsys.readouterr().out
    line = next(ln for ln in shown.splitlines() if ln.strip().startswith("conv_backward"))
    assert "the course's" in line and "yours fails its check" in line and bug.says in line, shown
    forward = next(ln for ln in shown.splitlines() if ln.strip().startswith("conv_forward"))
    assert "the course's" in forward and "cache" in forward                    # the pair goes together
    assert ns["conv_backward"] is numpy_ref.conv_backward and ns["conv_forward"] is numpy_ref.conv_forward
    assert ns["max_pool_backward"].__module__ == "cnnlab_my_layers_05_pooling"
    layer = ns["layers"].layers["conv_backward"]
    assert layer.diagnosis is not None and layer.diagnosis.says == bug.says and layer.diagnosis.exercise == "conv_backward"


def test_07_uses_the_course_layers_while_grading(my_layers, monkeypatch, capsys):
    _save("04_volumes", my_layers)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    capsys.readouterr()
    ns = _cells(A)
    assert ns["conv_forward"] is numpy_ref.conv_forward and ns["max_pool_backward"] is numpy_ref.max_pool_backward
    assert "Grading" in capsys.readouterr().out
    from cnnlab import own_layers

    assert own_layers.save("04_volumes", ns, where=my_layers, verbose=False) is None


def test_saving_refuses_the_course_code_and_keeps_helpers(tmp_path):
    import linecache

    from cnnlab import own_layers

    code = '''
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view as windows
SCALE = 1.0

def _pad(x, p):
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))

def conv_forward(x, w, b, stride=1, pad=0):
    KH, KW = w.shape[2:]
    win = windows(_pad(x, pad), (KH, KW), axis=(2, 3))[:, :, ::stride, ::stride]
    out = SCALE * np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2) + b[None, :, None, None]
    return out, {"x": x, "w": w, "b": b, "stride": stride, "pad": pad}
'''
    linecache.cache["<t1>"] = (len(code), None, code.splitlines(True), "<t1>")
    ns: dict = {"__name__": "__main__"}
    exec(compile(code, "<t1>", "exec"), ns)  # noqa: S102
    path = own_layers.save("04_volumes", ns, where=tmp_path, verbose=False)
    text = path.read_text()
    assert "def _pad" in text and "SCALE = 1.0" in text and "sliding_window_view as windows" in text
    loaded, problem = own_layers.load("04_volumes", where=tmp_path)
    assert problem == "" and set(loaded) == {"conv_forward"}
    x, w, b = rng(1).standard_normal((2, 1, 6, 6)), rng(2).standard_normal((3, 1, 3, 3)), np.zeros(3)
    np.testing.assert_allclose(loaded["conv_forward"](x, w, b, pad=1)[0], numpy_ref.conv_forward(x, w, b, pad=1)[0])
    cheat = 'from cnnlab.numpy_ref import conv_forward as _ref\n\ndef conv_forward(x, w, b, stride=1, pad=0):\n' \
            '    return _ref(x, w, b, stride=stride, pad=pad)\n'
    linecache.cache["<t2>"] = (len(cheat), None, cheat.splitlines(True), "<t2>")
    ns2: dict = {"__name__": "__main__"}
    exec(compile(cheat, "<t2>", "exec"), ns2)  # noqa: S102
    assert own_layers.save("04_volumes", ns2, where=tmp_path / "other", verbose=False) is None
    assert not (tmp_path / "other").exists()


# ------------------------------------------------------------------ held-out answers: each message names its cause
_SOFTMAX_NO_MAX = '''
def lenet_backward(scores, y, caches):
    e = np.exp(scores)                      # no row maximum subtracted
    p = e / e.sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.mean(np.log(p[np.arange(n), y]))
    d = p.copy()
    d[np.arange(n), y] -= 1
    d /= n
    grads = {}
    d, grads["W5"], grads["b5"] = affine_backward(d, caches["fc5"])
    d = relu_backward(d, caches["relu4"])
    d, grads["W4"], grads["b4"] = affine_backward(d, caches["fc4"])
    d = relu_backward(d, caches["relu3"])
    d, grads["W3"], grads["b3"] = affine_backward(d, caches["fc3"])
    d = flatten_backward(d, caches["flatten"])
    d = relu_backward(max_pool_backward(d, caches["pool2"]), caches["relu2"])
    d, grads["W2"], grads["b2"] = conv_backward(d, caches["conv2"])
    d = relu_backward(max_pool_backward(d, caches["pool1"]), caches["relu1"])
    _, grads["W1"], grads["b1"] = conv_backward(d, caches["conv1"])
    return loss, grads
'''


def test_a_softmax_without_the_row_maximum_is_caught_and_named():
    """The notebook asks for the row maximum to be subtracted; until a case had scores near 1000 a
    softmax without it got full marks. Written another way than the bug table's code, it is named."""
    for tier in ("public", "hidden"):
        outcome = _run("lenet_backward", _SOFTMAX_NO_MAX, tier)
        assert not outcome.passed and "every score near 1000" in outcome.message, outcome.message
        assert outcome.diagnosis is not None and outcome.diagnosis.says.startswith("the softmax overflows")
        assert "subtract each row's maximum" in outcome.message
    right = _SOFTMAX_NO_MAX.replace("np.exp(scores)", "np.exp(scores - scores.max(axis=1, keepdims=True))")
    assert _run("lenet_backward", right).passed


def test_a_summed_loss_with_an_unaveraged_gradient_is_not_told_the_gradient_averages():
    code = nb07._BWD.replace("    d /= n\n", "").replace("    loss = -log_p[np.arange(n), y].mean()",
                                                           "    loss = -log_p[np.arange(n), y].sum()")
    for tier in ("public", "hidden"):
        outcome = _run("lenet_backward", code, tier)
        assert not outcome.passed and "as the gradient does" not in outcome.message
        assert "your gradient is divided by N" not in outcome.message
        assert outcome.diagnosis is not None and "both are means over the batch" in outcome.diagnosis.says
    only_loss = nb07._BWD.replace("    loss = -log_p[np.arange(n), y].mean()", "    loss = -log_p[np.arange(n), y].sum()")
    assert "your gradient is divided by N" in _run("lenet_backward", only_loss).message


def test_a_table_without_any_bias_is_named():
    code = nb07._table_code(conv_params="c * 5 * 5 * f", fc_params="d * n")
    for tier in ("public", "hidden"):
        outcome = _run("lenet_table", code, tier)
        assert not outcome.passed and "no layer counts its biases" in outcome.message, outcome.message


@pytest.mark.slow   # trains a network: not in the fast tier
def test_a_diverging_learning_rate_is_called_diverged_not_too_short():
    """lr 0.3 made the loss jump to about 50 and end at chance level: the message said "10.0%" and
    "train longer"; now it says the training diverged, with what the loss did."""
    code = nb07._DIGITS.replace("EPOCHS", "epochs").replace("LR", "0.3")
    outcome = _run("train_digits", code)
    assert not outcome.passed and "diverged" in outcome.diagnosis.says and "train longer" not in outcome.message
    assert "the loss went from" in outcome.message and "chance level" in outcome.message
