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
    X_train, y_train, _, _ = nb07._digits_standardized()
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
