"""Exercise records of notebook 07 (LeNet): ``lenet_table``, ``lenet_forward``, ``lenet_backward``,
``sgd_step``, ``train_lenet``, ``train_digits``.

Test cells call ``nb07.check("lenet_forward", lenet_forward)`` and ``nb07.check(..., tier="hidden")``;
the notebook's last cell calls ``nb07.summary(globals())``.  Each record holds its reference (defined
here from the course's NumPy layers), its public and hidden cases and its bug table.

The notebook imports the course's layer functions (``conv_forward``, ``max_pool_forward``,
``relu_forward``, ``affine_forward``, ``flatten_forward`` and their backwards, ``lenet_init``) for the
student: they are allowed inside these exercises (``LAYERS``); the reference LeNet of
``cnnlab.numpy_ref`` (``lenet_loss``, ``train_numpy``, ...) is not.

Cache layout the forward must produce and the backward reads: ``caches[key]`` is exactly what that
layer's forward returned, for the keys of ``CACHE_KEYS`` (conv -> ReLU -> pool, twice; flatten;
fc3 -> ReLU -> fc4 -> ReLU -> fc5).

Every exercise is graded alone, so that a bug costs its own exercise's points and no others: the
backward is checked on caches made by the reference forward; ``train_lenet`` and ``train_digits``
run with the course's references in place of the student's forward, backward, ``sgd_step`` (and
``train_lenet``) for the duration of the check (``_course_helpers``; the student's functions are put
back afterwards).  The notebook's demonstration cells run the student's own functions.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cnnlab import shapes
from cnnlab.grading import rng
from cnnlab.grading.closeness import describe
from cnnlab.grading.exercise import Bug, Case, Confirmation, Exercise, Notebook, Problem, under_nbgrader
from cnnlab.grading.guard import run_guarded
from cnnlab.grading.probes import refuse_module
from cnnlab.numpy_ref import (
    affine_backward,
    affine_forward,
    conv_backward,
    conv_forward,
    flatten_backward,
    flatten_forward,
    lenet_init,
    max_pool_backward,
    max_pool_forward,
    relu_backward,
    relu_forward,
)

__all__ = [
    "NOTEBOOK", "check", "summary", "LAYERS", "CACHE_KEYS", "PARAM_KEYS", "DIGITS_EPOCHS", "DIGITS_BAR",
    "MNIST_TRAIN", "MNIST_EPOCHS", "MNIST_BAR", "TrainingSet", "training_set", "pad32",
    "digits_setting", "standardize", "train_once", "predict",
    "ref_lenet_table", "ref_lenet_forward", "ref_lenet_backward", "ref_sgd_step", "ref_train_lenet",
]

NOTEBOOK = Notebook("07_lenet")
check = NOTEBOOK.check
summary = NOTEBOOK.summary

#: the course's layer functions the notebook imports for the student (usable in every exercise)
LAYERS = (conv_forward, conv_backward, max_pool_forward, max_pool_backward, relu_forward, relu_backward,
          affine_forward, affine_backward, flatten_forward, flatten_backward)
CACHE_KEYS = ("conv1", "relu1", "pool1", "conv2", "relu2", "pool2", "flatten",
              "fc3", "relu3", "fc4", "relu4", "fc5")
PARAM_KEYS = ("W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4", "W5", "b5")

#: Exercise 6 on the embedded digits: epochs and the test-accuracy bar, outside grading (False) and
#: while grading (True); on MNIST (outside grading, when its files are found): the first MNIST_TRAIN
#: training images, MNIST_EPOCHS epochs, all 10,000 test images, MNIST_BAR
DIGITS_EPOCHS = {False: 8, True: 5}
DIGITS_BAR = {False: 0.95, True: 0.90}
MNIST_TRAIN, MNIST_EPOCHS, MNIST_BAR = 15_000, 3, 0.97

_IMPORTS = ("from cnnlab.numpy_ref import (affine_backward, affine_forward, conv_backward, conv_forward,\n"
            "    flatten_backward, flatten_forward, max_pool_backward, max_pool_forward, relu_backward, relu_forward)\n")


def digits_setting() -> tuple[int, float]:
    """Return (epochs, test-accuracy bar) of Exercise 6 on the embedded digits in this run (smaller
    while grading); :func:`training_set` gives the whole setting, MNIST included."""
    fast = under_nbgrader()
    return DIGITS_EPOCHS[fast], DIGITS_BAR[fast]


# --------------------------------------------------------------------------------------------
# references
# --------------------------------------------------------------------------------------------

def ref_lenet_table(input_shape: tuple[int, int, int] = (1, 32, 32), conv_channels: tuple[int, int] = (6, 16),
                    fc_units: tuple[int, ...] = (120, 84), num_classes: int = 10) -> list[tuple]:
    """Return the rows (name, out_shape, activations, params) of a LeNet-5-style network (cnnlab.shapes)."""
    layers: list[Any] = [shapes.Conv(conv_channels[0], 5), shapes.Pool(2),
                         shapes.Conv(conv_channels[1], 5), shapes.Pool(2)]
    layers += [shapes.FC(n) for n in fc_units] + [shapes.FC(num_classes, name="SOFTMAX")]
    rows = shapes.layer_table(layers, input_shape)
    return [(r.name, tuple(r.out_shape), r.activations, r.params) for r in rows[1:]]


def ref_lenet_forward(X: np.ndarray, params: Mapping[str, np.ndarray]) -> tuple[np.ndarray, dict[str, Any]]:
    """Run LeNet-5 (conv-ReLU-pool x2, flatten, fc-ReLU x2, fc) and keep every layer's cache."""
    c: dict[str, Any] = {}
    h, c["conv1"] = conv_forward(X, params["W1"], params["b1"])
    h, c["relu1"] = relu_forward(h)
    h, c["pool1"] = max_pool_forward(h, 2, 2)
    h, c["conv2"] = conv_forward(h, params["W2"], params["b2"])
    h, c["relu2"] = relu_forward(h)
    h, c["pool2"] = max_pool_forward(h, 2, 2)
    h, c["flatten"] = flatten_forward(h)
    h, c["fc3"] = affine_forward(h, params["W3"], params["b3"])
    h, c["relu3"] = relu_forward(h)
    h, c["fc4"] = affine_forward(h, params["W4"], params["b4"])
    h, c["relu4"] = relu_forward(h)
    scores, c["fc5"] = affine_forward(h, params["W5"], params["b5"])
    return scores, c


def ref_lenet_backward(scores: np.ndarray, y: np.ndarray, caches: Mapping[str, Any]) -> tuple[float, dict[str, np.ndarray]]:
    """Return the mean softmax cross-entropy of the scores and the gradient of every parameter."""
    scores = np.asarray(scores)
    n = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = float(-log_p[np.arange(n), y].mean())
    d = np.exp(log_p)
    d[np.arange(n), y] -= 1
    d /= n
    g: dict[str, np.ndarray] = {}
    d, g["W5"], g["b5"] = affine_backward(d, caches["fc5"])
    d = relu_backward(d, caches["relu4"])
    d, g["W4"], g["b4"] = affine_backward(d, caches["fc4"])
    d = relu_backward(d, caches["relu3"])
    d, g["W3"], g["b3"] = affine_backward(d, caches["fc3"])
    d = flatten_backward(d, caches["flatten"])
    d = max_pool_backward(d, caches["pool2"])
    d = relu_backward(d, caches["relu2"])
    d, g["W2"], g["b2"] = conv_backward(d, caches["conv2"])
    d = max_pool_backward(d, caches["pool1"])
    d = relu_backward(d, caches["relu1"])
    _, g["W1"], g["b1"] = conv_backward(d, caches["conv1"])
    return loss, {k: g[k] for k in PARAM_KEYS}


def ref_sgd_step(params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray], velocity: Mapping[str, np.ndarray],
                 lr: float, momentum: float = 0.9) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """One step of SGD with momentum: v = momentum * v - lr * grad, then param + v (new dicts)."""
    new_v = {k: momentum * velocity[k] - lr * grads[k] for k in params}
    return {k: params[k] + new_v[k] for k in params}, new_v


def ref_train_lenet(params: Mapping[str, np.ndarray], X: np.ndarray, y: np.ndarray, epochs: int = 1,
                    batch_size: int = 32, lr: float = 0.01, momentum: float = 0.9,
                    seed: int = 0) -> tuple[dict[str, np.ndarray], list[float]]:
    """Train with minibatch SGD + momentum; a new order from one seeded generator every epoch."""
    gen = np.random.default_rng(seed)
    params = dict(params)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    losses: list[float] = []
    n = X.shape[0]
    for _ in range(epochs):
        order = gen.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            scores, caches = ref_lenet_forward(X[idx], params)
            loss, grads = ref_lenet_backward(scores, y[idx], caches)
            params, velocity = ref_sgd_step(params, grads, velocity, lr, momentum)
            losses.append(loss)
    return params, losses


#: the layers of notebooks 04 and 05 that the notebook may take from the student's own modules
#: (``cnnlab.own_layers``): the checks of Exercises 2 and 3 run with the course's in their place
_COURSE_LAYERS: dict[str, Callable[..., Any]] = {"conv_forward": conv_forward, "conv_backward": conv_backward,
                                                 "max_pool_forward": max_pool_forward,
                                                 "max_pool_backward": max_pool_backward}
_LAYER_NAMES = tuple(_COURSE_LAYERS)

#: what the checks put in place of the student's helpers (see ``_course_helpers``)
_REFERENCES: dict[str, Callable[..., Any]] = {"lenet_forward": ref_lenet_forward, "lenet_backward": ref_lenet_backward,
                                              "sgd_step": ref_sgd_step, "train_lenet": ref_train_lenet}


def predict(params: Mapping[str, np.ndarray], X: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Predicted labels of the reference forward with ``params`` (what the accuracy check uses)."""
    out = [np.argmax(ref_lenet_forward(X[i:i + batch_size], params)[0], axis=1) for i in range(0, len(X), batch_size)]
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def standardize(X_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """Shift and scale images by the training set's mean and standard deviation (float32)."""
    mean, std = np.float32(X_train.mean()), np.float32(X_train.std())
    return tuple(((x - mean) / std).astype(np.float32) for x in (X_train, *others))


# --------------------------------------------------------------------------------------------
# helpers for records whose outputs hold dicts of arrays
# --------------------------------------------------------------------------------------------

_MISSING = object()


@contextlib.contextmanager
def _course_helpers(fn: Callable[..., Any], names: tuple[str, ...]) -> Iterator[None]:
    """For the duration of a check, let ``fn`` call the course's references under ``names``
    (its own module's globals get them; the student's functions are put back afterwards)."""
    namespace = getattr(fn, "__globals__", None)
    if not names or not isinstance(namespace, dict):
        yield
        return
    saved = {h: namespace.get(h, _MISSING) for h in names}
    namespace.update({h: _REFERENCES.get(h) or _COURSE_LAYERS[h] for h in names})
    try:
        yield
    finally:
        for h, value in saved.items():
            if value is _MISSING:
                namespace.pop(h, None)
            else:
                namespace[h] = value


class _Alone(Exercise):
    """An exercise graded alone.

    ``course_helpers`` names other exercises' functions that are replaced by the course's
    references while this one is checked, so that a bug in a helper costs the helper's points only
    (the grader's verifier, which runs the student's own helpers, leaves these exercises alone).
    ``course_layers`` names the layers of 04 and 05 that the notebook may take from the student's
    own modules: the course's are put in their place for the check, so that the cases' caches (made
    by the course's layers) fit; while grading the notebook binds the course's layers anyway, so the
    verifier can re-run these exercises as they are.
    """

    def __init__(self, *args: Any, course_helpers: tuple[str, ...] = (), course_layers: tuple[str, ...] = (),
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.course_helpers = tuple(course_helpers)
        self.course_layers = tuple(course_layers)

    def helpers(self) -> dict[str, Callable[..., Any]]:
        """The course's references put in place of the student's helpers during the check."""
        return {h: _REFERENCES[h] for h in self.course_helpers}

    def _run(self, fn: Any, tier: str, only: str | None) -> str:
        with _course_helpers(fn, self.course_helpers + self.course_layers):
            return super()._run(fn, tier, only)

    def namespace(self) -> dict[str, Any]:
        """The bugs' globals: NumPy, the helpers' references, and the course's helpers and layers."""
        ns = super().namespace()
        ns.update({h: _REFERENCES.get(h) or _COURSE_LAYERS[h] for h in self.course_helpers + self.course_layers})
        return ns


class _DictOutputs(_Alone):
    """An exercise returning dicts of arrays (params, grads): compared entry by entry.

    ``split(value)`` turns what the function returned into {output name: value}; the output names
    ("grads['W1']", ...) are those of ``outputs``.
    """

    def __init__(self, *args: Any, split: Callable[[Any], dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._splitter = split

    def _split(self, value: Any, what: str) -> dict[str, Any]:
        return self._splitter(value)


def _entries(value: Any, label: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise Problem(f"  {label} must be a dict with the keys {', '.join(keys)}; got {describe(value)}")
    missing = [k for k in keys if k not in value]
    if missing:
        raise Problem(f"  {label} has no entry {missing[0]!r} (it needs {', '.join(keys)})")
    return {f"{label}['{k}']": value[k] for k in _COMPARE_ORDER if k in keys}


def _pair(value: Any, names: tuple[str, str]) -> tuple[Any, Any]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise Problem(f"  expected 2 return values ({', '.join(names)}); your function returned {describe(value)}")
    return value[0], value[1]


#: gradients and updates are compared from the last layer back, biases before weights: the first
#: entry that differs is where a bug starts, and a short vector gives the shortest message
_COMPARE_ORDER = ("b5", "W5", "b4", "W4", "b3", "W3", "b2", "W2", "b1", "W1")


def _dict_outputs(label: str) -> tuple[str, ...]:
    return tuple(f"{label}['{k}']" for k in _COMPARE_ORDER)


def _params(seed: int, in_channels: int = 1, conv_channels: tuple[int, int] = (6, 16), num_classes: int = 10,
            bias_scale: float = 0.1) -> dict[str, np.ndarray]:
    """LeNet parameters with random (not zero) biases, so that a forgotten bias shows."""
    p = lenet_init("modern", in_channels=in_channels, num_classes=num_classes, seed=seed, conv_channels=conv_channels)
    g = rng(seed + 7)
    for k in PARAM_KEYS:
        if k.startswith("b"):
            p[k] = bias_scale * g.standard_normal(p[k].shape)
    return p


def _images(seed: int, n: int, c: int = 1) -> np.ndarray:
    return rng(seed).standard_normal((n, c, 32, 32))


def _labels(seed: int, n: int, k: int = 10) -> np.ndarray:
    return rng(seed + 1).integers(0, k, size=n)


# --------------------------------------------------------------------------------------------
# Exercise 1: lenet_table
# --------------------------------------------------------------------------------------------

def _table_public() -> list[Case]:
    return [Case(((1, 32, 32),), {}, "LeNet-5 on a 32x32x1 digit"),
            Case(((3, 32, 32),), {"conv_channels": (8, 16)}, "the lecture's variant: 32x32x3, 8 and 16 filters")]


def _table_hidden() -> list[Case]:
    return [Case(((3, 32, 32),), {"conv_channels": (8, 16)}, "the lecture's variant"),
            Case(((2, 36, 36),), {"conv_channels": (4, 12), "fc_units": (64, 32), "num_classes": 5},
                 "a 36x36x2 input, other widths"),
            Case(((1, 28, 28),), {"conv_channels": (6, 16), "fc_units": (100,)}, "28x28 input, one hidden FC layer"),
            Case(((3, 40, 40),), {"conv_channels": (10, 20), "fc_units": (200, 50, 30), "num_classes": 7},
                 "three hidden FC layers")]


def _norm_rows(value: Any) -> list[tuple] | str:
    """Rows as (NAME, shape tuple, activations, params), or a string saying what is wrong."""
    if not isinstance(value, list | tuple):
        return f"return a list of rows; got {describe(value)}"
    rows = []
    for i, row in enumerate(value):
        if not isinstance(row, list | tuple) or len(row) != 4:
            return f"row {i + 1} must be (name, out_shape, activations, params); got {describe(row)}"
        name, shape, acts, params = row
        try:
            shape_t = tuple(int(s) for s in shape)
        except TypeError:
            return f"row {i + 1} ({name}): out_shape must be a tuple such as (6, 28, 28) or (120,); got {describe(shape)}"
        for what, v in (("activations", acts), ("params", params)):
            if isinstance(v, bool) or not isinstance(v, int | np.integer):
                return f"row {i + 1} ({name}): {what} must be an int; got {describe(v)}"
        rows.append((str(name).upper(), shape_t, int(acts), int(params)))
    return rows


def _table_diff(got: list[tuple], want: list[tuple], tier: str) -> str | None:
    if len(got) != len(want):
        names = ", ".join(r[0] for r in want) if tier == "public" else "one per layer"
        return f"  {len(got)} rows, expected {len(want)} ({names})"
    for g, w in zip(got, want, strict=True):
        if g[0] != w[0]:
            return f"  a row is named {g[0]!r} where {w[0]!r} was expected (names: CONV1, POOL1, CONV2, POOL2, FC3, ..., SOFTMAX)"
        for j, what in ((1, "out_shape"), (2, "activations"), (3, "params")):
            if g[j] != w[j]:
                if tier == "hidden":
                    side = "" if j == 1 else (" (too large)" if g[j] > w[j] else " (too small)")
                    return f"  {w[0]}: {what} is wrong{side}"
                shown = (lambda v: f"{v}" if j == 1 else f"{v:,}")
                return f"  {w[0]}: {what} {shown(g[j])}, expected {shown(w[j])}"
    return None


def _table_custom(fn: Callable[..., Any], tier: str) -> str:
    ex = NOTEBOOK["lenet_table"]
    cases = _table_hidden() if tier == "hidden" else _table_public()
    for i, case in enumerate(cases):
        where = ex._where(case, tier, i, len(cases))
        try:
            value, _ = run_guarded(fn, *case.args, exercise=ex.name, forbid=(),
                                   forbid_functions=ex.forbidden_references(), **case.kwargs)
        except AssertionError as exc:
            text = str(exc).replace(f"{ex.name}: ", "", 1)
            if text.startswith("not implemented yet"):
                raise Problem(f"{ex.title}: {text}") from None
            raise Problem(f"{ex.title}, {where}:\n  {text}") from None
        got = _norm_rows(value)
        if isinstance(got, str):
            raise Problem(f"{ex.title}, {where}:\n  {got}")
        want = ref_lenet_table(*case.args, **case.kwargs)
        problem = _table_diff(got, want, tier)
        if problem is None:
            continue
        lines = [f"{ex.title}, {where}:", problem]
        for bug in ex.bugs:
            if not bug.by_output:
                continue
            try:
                wrong = _norm_rows(ex.bug_function(bug)(*case.args, **case.kwargs))
            except Exception:  # noqa: BLE001 - a bug that does not apply to this case
                continue
            if wrong == got and wrong != want:
                raise Problem("\n".join(lines), diagnosis=ex._diagnosis(bug, where))
        raise Problem("\n".join(lines))
    return f"all {len(cases)} tables match"


_TABLE_HEAD = '''def lenet_table(input_shape=(1, 32, 32), conv_channels=(6, 16), fc_units=(120, 84), num_classes=10):
    c, h, w = input_shape
    rows = []
'''


def _table_code(conv_params: str = "(c * 5 * 5 + 1) * f", conv_out: str = "h - 5 + 1",
                pool_params: str = "0", fc_params: str = "(d + 1) * n", acts: str = "f * h * w") -> str:
    return _TABLE_HEAD + f'''    for i, f in enumerate(conv_channels, start=1):
        params = {conv_params}
        h = w = {conv_out}
        rows.append((f"CONV{{i}}", (f, h, w), {acts}, params))
        c = f
        h, w = h // 2, w // 2
        rows.append((f"POOL{{i}}", (f, h, w), {acts}, {pool_params}))
    d = c * h * w
    names = [f"FC{{i}}" for i in range(3, 3 + len(fc_units))] + ["SOFTMAX"]
    for name, n in zip(names, list(fc_units) + [num_classes]):
        rows.append((name, (n,), n, {fc_params}))
        d = n
    return rows
'''


class _Table(Exercise):
    """lenet_table's record: a custom check (rows compared field by field), confirmed by the
    grader's verifier on the same cases with the same comparison."""

    def confirmation(self, tier: str, *, only: str | None = None, student: str | None = None) -> Confirmation:
        def judge(value: Any, case: Case) -> str | None:
            got = _norm_rows(value)
            if isinstance(got, str):
                return got
            return _table_diff(got, ref_lenet_table(*case.args, **case.kwargs), tier)

        cases = _table_hidden() if tier == "hidden" else _table_public()
        return Confirmation(cases=tuple(cases), judge=judge, **{**self.policy(tier), "forbid": ()})


NOTEBOOK.add(_Table(
    "lenet_table", 1, ref_lenet_table, custom=_table_custom,
    extra=refuse_module(shapes, advice="count the sizes and parameters yourself with + and * "
                                       "(cnnlab.shapes holds the answers)"),
    bugs=[
        Bug("the conv biases are missing: each filter has one bias ((C*5*5 + 1) * F, e.g. CONV1 of LeNet-5 has 156, not 150)",
            _table_code(conv_params="c * 5 * 5 * f"), fix="add one bias per filter"),
        Bug("the input depth is missing: each filter spans all C input channels ((C*5*5 + 1) * F)",
            _table_code(conv_params="(5 * 5 + 1) * f"), fix="multiply the kernel area by the input channels"),
        Bug("the FC biases are missing: a fully connected layer has (D + 1) * M parameters",
            _table_code(fc_params="d * n")),
        Bug("no layer counts its biases: a conv layer has (C*5*5 + 1) * F parameters (one bias per filter), an FC "
            "layer (D + 1) * M (one per unit)",
            _table_code(conv_params="c * 5 * 5 * f", fc_params="d * n"), fix="add F to each conv count, M to each FC count"),
        Bug("pooling layers have no parameters (a 2x2 max or average takes no weights)",
            _table_code(pool_params="2 * f")),
        Bug("the conv output size is n - f + 1 (a 5x5 kernel turns 32 into 28, not 27)",
            _table_code(conv_out="h - 5")),
        Bug("the activation size counts every channel: C * H * W values per image",
            _table_code(acts="h * w")),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 2: lenet_forward
# --------------------------------------------------------------------------------------------

def _fwd_public() -> list[Case]:
    return [Case((_images(1, 2), _params(1)), label="2 images, LeNet-5 (1 channel)"),
            Case((_images(2, 1), _params(2)), label="1 image")]


def _fwd_hidden() -> list[Case]:
    return [Case((_images(70, 3, 3), _params(70, in_channels=3, conv_channels=(8, 16))),
                 label="the lecture's variant: 3 channels, 8 and 16 filters"),
            Case((_images(71, 4), _params(71, num_classes=5)), label="4 images, 5 classes"),
            Case((_images(72, 1), _params(72)), label="a single image, another seed")]


def _same(a: Any, b: Any) -> bool:
    """Whether two caches (dicts, tuples, arrays, scalars) hold the same values."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape or a.dtype.kind != b.dtype.kind:
            return False
        return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12)) if a.dtype.kind in "fc" else bool(np.array_equal(a, b))
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001
        return False


_SWAPPED = "caches stored under another layer's key: caches[name] must be what that layer's forward returned"


def _fwd_extra(fn: Callable[..., Any], tier: str) -> str:
    """The caches: every key present, each exactly the cache its layer's forward returned."""
    case = (_fwd_hidden() if tier == "hidden" else _fwd_public())[0]
    X, params = case.args
    result, _ = run_guarded(fn, X.copy(), {k: v.copy() for k, v in params.items()}, exercise="lenet_forward",
                            allow=LAYERS)
    caches = result[1]
    title = NOTEBOOK["lenet_forward"].title
    if not isinstance(caches, Mapping):
        raise Problem(f"{title}: caches must be a dict {{'conv1': ..., 'relu1': ..., ...}}; got {describe(caches)}")
    _, want = ref_lenet_forward(X, params)
    missing = [k for k in CACHE_KEYS if k not in caches]
    if missing:
        raise Problem(f"{title}: caches has no entry {missing[0]!r}; keep every layer's cache under the keys "
                      f"{', '.join(CACHE_KEYS)}")
    for key in CACHE_KEYS:
        if _same(caches[key], want[key]):
            continue
        other = next((k for k in CACHE_KEYS if k != key and _same(caches[key], want[k])), None)
        if other is not None:
            raise Problem.named(f"{title}: caches[{key!r}] holds the cache of {other}.", _SWAPPED)
        raise Problem(f"{title}: caches[{key!r}] is not what {key}'s forward returned on this network; "
                      "apply conv -> ReLU -> pool in that order and store each layer's cache as it comes")
    return "caches complete"


_FWD = _IMPORTS + '''
def lenet_forward(X, params):
    caches = {}
    h, caches["conv1"] = conv_forward(X, params["W1"], params["b1"])
    h, caches["relu1"] = relu_forward(h)
    h, caches["pool1"] = max_pool_forward(h, 2, 2)
    h, caches["conv2"] = conv_forward(h, params["W2"], params["b2"])
    h, caches["relu2"] = relu_forward(h)
    h, caches["pool2"] = max_pool_forward(h, 2, 2)
    h, caches["flatten"] = FLATTEN
    h, caches["fc3"] = affine_forward(h, params["W3"], params["b3"])
    h, caches["relu3"] = relu_forward(h)
    h, caches["fc4"] = affine_forward(h, params["W4"], params["b4"])
    h, caches["relu4"] = relu_forward(h)
    scores, caches["fc5"] = affine_forward(h, params["W5"], params["b5"])
    return scores, caches
'''


def _fwd(flatten: str = "flatten_forward(h)") -> str:
    return _FWD.replace("FLATTEN", flatten)


_FWD_SWAPPED = (_fwd()
                .replace('h, caches["conv1"] = conv_forward', 'h, caches["pool1_"] = conv_forward')
                .replace('h, caches["pool1"] = max_pool_forward', 'h, caches["conv1"] = max_pool_forward')
                .replace('caches["pool1_"]', 'caches["pool1"]'))


NOTEBOOK.add(_Alone(
    "lenet_forward", 2, ref_lenet_forward, _fwd_public, _fwd_hidden, outputs=("scores", "caches"),
    compare=("scores",), extra=_fwd_extra, allow=LAYERS, course_layers=_LAYER_NAMES,
    bugs=[
        Bug("the flatten is in channels-last (N, H, W, C) order: flatten the (N, C, H, W) maps as they are",
            _fwd(flatten="flatten_forward(h.transpose(0, 2, 3, 1))"),
            fix="flatten_forward(h), or h.reshape(len(h), -1), without a transpose"),
        Bug("a ReLU is applied to the scores: the last layer (fc5) gives raw scores, no ReLU after it",
            _fwd().replace("    return scores, caches", "    scores = np.maximum(scores, 0)\n    return scores, caches")),
        Bug("the ReLU after fc4 is missing",
            _fwd().replace('    h, caches["relu4"] = relu_forward(h)\n',
                           '    _, caches["relu4"] = relu_forward(h)\n')),
        Bug("the ReLU after conv2 is missing",
            _fwd().replace('    h, caches["relu2"] = relu_forward(h)\n',
                           '    _, caches["relu2"] = relu_forward(h)\n')),
        Bug(_SWAPPED, _FWD_SWAPPED, by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 3: lenet_backward
# --------------------------------------------------------------------------------------------

def _bwd_case(seed: int, n: int, label: str, score_offset: float = 0.0, **net: Any) -> Case:
    params = _params(seed, **net)
    if score_offset:   # every score near score_offset: np.exp overflows unless each row's maximum is subtracted
        params["b5"] = params["b5"] + score_offset
    X = _images(seed, n, net.get("in_channels", 1))
    scores, caches = ref_lenet_forward(X, params)
    return Case((scores, _labels(seed, n, net.get("num_classes", 10)), caches), label=label)


#: the cases whose scores are all near 1000: np.exp overflows (float64 ends near e^709) unless each row's
#: maximum is subtracted; the differences between scores stay ordinary, so the softmax itself is not extreme
_OVERFLOW = "every score near 1000 (np.exp overflows unless each row's maximum is subtracted)"


def _bwd_public() -> list[Case]:
    return [_bwd_case(3, 4, "4 images, LeNet-5 (1 channel)"), _bwd_case(4, 2, "2 images"),
            _bwd_case(5, 3, f"3 images, {_OVERFLOW}", score_offset=1000.0)]


def _bwd_hidden() -> list[Case]:
    return [_bwd_case(80, 3, "the lecture's variant: 3 channels, 8 and 16 filters", in_channels=3, conv_channels=(8, 16)),
            _bwd_case(81, 5, "5 images, 5 classes", num_classes=5),
            _bwd_case(82, 1, "a single image"),
            _bwd_case(83, 2, f"2 images, {_OVERFLOW}", score_offset=900.0)]


def _bwd_split(value: Any) -> dict[str, Any]:
    loss, grads = _pair(value, ("loss", "grads"))
    return {"loss": loss, **_entries(grads, "grads", PARAM_KEYS)}


_BWD_HEAD = _IMPORTS + '''
def lenet_backward(scores, y, caches):
    n = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_p[np.arange(n), y].mean()
    d = np.exp(log_p)
    d[np.arange(n), y] -= 1
    d /= n
'''
_BWD_BODY = '''    grads = {}
    d, grads["W5"], grads["b5"] = affine_backward(d, caches["fc5"])
    d = relu_backward(d, caches["relu4"])
    d, grads["W4"], grads["b4"] = affine_backward(d, caches["fc4"])
    d = relu_backward(d, caches["relu3"])
    d, grads["W3"], grads["b3"] = affine_backward(d, caches["fc3"])
    d = flatten_backward(d, caches["flatten"])
    d = max_pool_backward(d, caches["pool2"])
    d = relu_backward(d, caches["relu2"])
    d, grads["W2"], grads["b2"] = conv_backward(d, caches["conv2"])
    d = max_pool_backward(d, caches["pool1"])
    d = relu_backward(d, caches["relu1"])
    _, grads["W1"], grads["b1"] = conv_backward(d, caches["conv1"])
    return loss, grads
'''
_BWD = _BWD_HEAD + _BWD_BODY
_BWD_NO_MAX = _BWD.replace("    shifted = scores - scores.max(axis=1, keepdims=True)\n", "    shifted = scores\n")
_OVERFLOWS = ("the softmax overflows: np.exp of a score near 1000 is inf, and inf / inf is NaN; subtract "
              "each row's maximum from the scores first (it cancels in p)")


class _Backward(_DictOutputs):
    """lenet_backward: on a case whose scores overflow np.exp (every score near 1000) the reference's
    loss and gradients are finite; where the student's function then raises or returns NaN or inf,
    its softmax skipped the row maximum, however the student wrote the softmax (equal outputs could
    not say so: each way of writing it fails differently)."""

    def _one(self, fn: Callable[..., Any], case: Case, tier: str, index: int, total: int, only: str | None) -> None:
        try:
            super()._one(fn, case, tier, index, total, only)
        except Problem as p:
            if p.diagnosis is None and _OVERFLOW in case.label and not self._finite_on(fn, case):
                where = self._where(case, tier, index, total)
                raise Problem(p.message, diagnosis=self._diagnosis(self.bug(_OVERFLOWS[:40]), where)) from None
            raise

    def _finite_on(self, fn: Callable[..., Any], case: Case) -> bool:
        """Whether ``fn`` runs on ``case`` and returns finite values only."""
        args = copy.deepcopy(tuple(case.args))
        try:
            result, _ = run_guarded(fn, *args, exercise=self.name, allow=self.allow, forbid=self.forbid,
                                    guard_mode=self.guard_mode)
            values = self._split(result, "your function")
        except (AssertionError, Problem):
            return False
        for v in values.values():
            try:
                if not np.all(np.isfinite(np.asarray(v, dtype=float))):
                    return False
            except (TypeError, ValueError):
                continue
        return True


NOTEBOOK.add(_Backward(
    "lenet_backward", 3, ref_lenet_backward, _bwd_public, _bwd_hidden, split=_bwd_split, course_layers=_LAYER_NAMES,
    outputs=("loss", *_dict_outputs("grads")), allow=LAYERS, rtol=1e-6, atol=1e-10,
    bugs=[
        Bug("the softmax gradient is not divided by N: the loss is a mean over the batch, so dscores = (p - onehot) / N",
            _BWD.replace("    d /= n\n", "")),
        Bug("the loss is summed over the batch instead of averaged: your gradient is divided by N, the loss must be "
            "too (use the mean)",
            _BWD.replace("    loss = -log_p[np.arange(n), y].mean()", "    loss = -log_p[np.arange(n), y].sum()")),
        Bug("the loss is summed over the batch and the gradient is not divided by N: both are means over the batch",
            _BWD.replace("    loss = -log_p[np.arange(n), y].mean()", "    loss = -log_p[np.arange(n), y].sum()")
                .replace("    d /= n\n", ""), fix="loss = the mean over the batch; dscores = (p - onehot) / N"),
        Bug(_OVERFLOWS, _BWD_NO_MAX, by_output=False,
            fix="shifted = scores - scores.max(axis=1, keepdims=True), then use shifted in np.exp"),
        Bug("the softmax gradient has the wrong sign: dscores = p - onehot, not onehot - p",
            _BWD.replace("    d /= n\n", "    d = -d / n\n")),
        Bug("the gradient skips the ReLU after fc4: call relu_backward with the relu4 cache",
            _BWD.replace('    d = relu_backward(d, caches["relu4"])\n', "")),
        Bug("the gradient skips the ReLU after conv1: call relu_backward with the relu1 cache",
            _BWD.replace('    d = relu_backward(d, caches["relu1"])\n', "")),
        Bug("relu_backward is given another layer's cache: at relu4 use caches['relu4'], the mask of that layer's input",
            _BWD.replace('relu_backward(d, caches["relu4"])', 'relu_backward(d, caches["relu3"])')),
        Bug("the pooling caches are swapped: at pool2 use caches['pool2'], at pool1 caches['pool1']",
            _BWD.replace('max_pool_backward(d, caches["pool2"])', 'max_pool_backward(d, caches["POOL"])')
                .replace('max_pool_backward(d, caches["pool1"])', 'max_pool_backward(d, caches["pool2"])')
                .replace('caches["POOL"]', 'caches["pool1"]')),
        Bug("the backward steps are out of order: undo the forward in reverse, pool2 first, then relu2, then conv2",
            _BWD.replace('    d = max_pool_backward(d, caches["pool2"])\n    d = relu_backward(d, caches["relu2"])\n',
                         '    d = relu_backward(d, caches["relu2"])\n    d = max_pool_backward(d, caches["pool2"])\n')),
        Bug("the FC weight gradients are transposed: grads['W3'], grads['W4'] and grads['W5'] have their weights' "
            "shapes (D, M), as affine_backward returns them",
            _BWD.replace("    return loss, grads\n",
                         '    for k in ("W3", "W4", "W5"):\n        grads[k] = grads[k].T\n    return loss, grads\n')),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 4: sgd_step
# --------------------------------------------------------------------------------------------

def _sgd_case(seed: int, lr: float, momentum: float, label: str, zero_velocity: bool = False) -> Case:
    p = _params(seed)
    g = rng(seed + 100)
    grads = {k: g.standard_normal(v.shape) for k, v in p.items()}
    vel = {k: (np.zeros_like(v) if zero_velocity else 0.1 * g.standard_normal(v.shape)) for k, v in p.items()}
    return Case((p, grads, vel, lr), {"momentum": momentum}, label)


def _sgd_public() -> list[Case]:
    return [_sgd_case(5, 0.1, 0.9, "LeNet-5's parameters, lr 0.1, momentum 0.9"),
            _sgd_case(6, 0.05, 0.9, "the first step: velocity zero", zero_velocity=True)]


def _sgd_hidden() -> list[Case]:
    return [_sgd_case(90, 0.01, 0.5, "momentum 0.5"), _sgd_case(91, 0.3, 0.0, "momentum 0 (plain SGD)"),
            _sgd_case(92, 0.02, 0.99, "momentum 0.99, small learning rate")]


def _sgd_split(value: Any) -> dict[str, Any]:
    params, velocity = _pair(value, ("params", "velocity"))
    return {**_entries(params, "params", PARAM_KEYS), **_entries(velocity, "velocity", PARAM_KEYS)}


_SGD = '''def sgd_step(params, grads, velocity, lr, momentum=0.9):
    new_params, new_velocity = {}, {}
    for k in params:
        new_velocity[k] = momentum * velocity[k] - lr * grads[k]
        new_params[k] = params[k] + new_velocity[k]
    return new_params, new_velocity
'''

NOTEBOOK.add(_DictOutputs(
    "sgd_step", 4, ref_sgd_step, _sgd_public, _sgd_hidden, split=_sgd_split,
    outputs=(*_dict_outputs("params"), *_dict_outputs("velocity")),
    bugs=[
        Bug("the step adds the gradient: move against it (velocity = momentum * velocity - lr * grad)",
            _SGD.replace("- lr * grads[k]", "+ lr * grads[k]")),
        Bug("the momentum is ignored: the new velocity is momentum * velocity - lr * grad",
            _SGD.replace("momentum * velocity[k] - lr", "-lr")),
        Bug("the parameters move by the old velocity: update the velocity first, then add it",
            _SGD.replace("        new_params[k] = params[k] + new_velocity[k]",
                         "        new_params[k] = params[k] + velocity[k]")),
        Bug("only the weights are updated: the biases b1..b5 learn too",
            _SGD.replace("        new_params[k] = params[k] + new_velocity[k]",
                         "        new_params[k] = params[k] + new_velocity[k] if k.startswith('W') else params[k]")),
        Bug("the learning rate is not applied to the gradient",
            _SGD.replace("- lr * grads[k]", "- grads[k]")),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 5: train_lenet
# --------------------------------------------------------------------------------------------

def _train_case(seed: int, n: int, label: str, epochs: int = 2, batch_size: int = 4, lr: float = 0.01,
                momentum: float = 0.9, **net: Any) -> Case:
    X = _images(seed, n, net.get("in_channels", 1))
    y = _labels(seed, n, net.get("num_classes", 10))
    return Case((_params(seed, **net), X, y),
                {"epochs": epochs, "batch_size": batch_size, "lr": lr, "momentum": momentum, "seed": seed}, label)


def _train_public() -> list[Case]:
    return [_train_case(7, 10, "10 images, 2 epochs of batches of 4 (the last batch has 2)")]


def _train_hidden() -> list[Case]:
    return [_train_case(95, 9, "3 epochs of 3 batches", epochs=3, batch_size=3),
            _train_case(96, 7, "the lecture's variant, 2 epochs, batch 5", batch_size=5, in_channels=3,
                        conv_channels=(8, 16))]


def _train_split(value: Any) -> dict[str, Any]:
    params, losses = _pair(value, ("params", "losses"))
    try:
        losses = np.asarray(losses, dtype=float)
    except (TypeError, ValueError):
        raise Problem(f"  losses must be a list of numbers (one per step); got {describe(losses)}") from None
    return {"losses": losses, **_entries(params, "params", PARAM_KEYS)}


_TRAIN = '''def train_lenet(params, X, y, epochs=1, batch_size=32, lr=0.01, momentum=0.9, seed=0):
    gen = np.random.default_rng(seed)
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    losses = []
    n = X.shape[0]
    for epoch in range(epochs):
        order = gen.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            scores, caches = lenet_forward(X[idx], params)
            loss, grads = lenet_backward(scores, y[idx], caches)
            params, velocity = sgd_step(params, grads, velocity, lr, momentum)
            losses.append(loss)
    return params, losses
'''


NOTEBOOK.add(_DictOutputs(
    "train_lenet", 5, ref_train_lenet, _train_public, _train_hidden, split=_train_split,
    outputs=("losses", *_dict_outputs("params")), course_helpers=("lenet_forward", "lenet_backward", "sgd_step"),
    allow=LAYERS, rtol=1e-6, atol=1e-9,
    bugs=[
        Bug("the data are not shuffled: draw a new order with gen.permutation(n) every epoch",
            _TRAIN.replace("        order = gen.permutation(n)", "        order = np.arange(n)")),
        Bug("every step uses the same batch: take the batch order[start:start + batch_size]",
            _TRAIN.replace("            idx = order[start:start + batch_size]", "            idx = order[:batch_size]")),
        Bug("the generator is created inside the epoch loop, so every epoch visits the data in the same order",
            _TRAIN.replace("    gen = np.random.default_rng(seed)\n", "")
                  .replace("        order = gen.permutation(n)",
                           "        gen = np.random.default_rng(seed)\n        order = gen.permutation(n)")),
        Bug("the velocity is reset at every step: keep it from one step to the next",
            _TRAIN.replace("            params, velocity = sgd_step(params, grads, velocity, lr, momentum)",
                           "            velocity = {k: np.zeros_like(v) for k, v in params.items()}\n"
                           "            params, velocity = sgd_step(params, grads, velocity, lr, momentum)")),
        Bug("the last, smaller batch of each epoch is skipped: range(0, n, batch_size) visits every sample",
            _TRAIN.replace("range(0, n, batch_size)", "range(0, n - batch_size + 1, batch_size)")),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 6: train_digits (the stated accuracy)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingSet:
    """The data Exercise 6 trains on, the epochs and the test-accuracy bar.

    ``name`` is "MNIST" (a subset of its training images, all 10,000 test images) or "digits" (the
    embedded scikit-learn digits, 1,437 / 360); images are standardised with the training set's
    mean and standard deviation (float32). ``note`` says where the data came from, or why MNIST
    was not used.
    """

    name: str
    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    epochs: int
    bar: float
    note: str
    mean: float = 0.0
    std: float = 1.0

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """MNIST-style uint8 images (N, 28, 28) padded to (N, 1, 32, 32) and standardised with this
        training set's mean and standard deviation (as its own images were)."""
        return ((pad32(images) - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)

    def describe(self) -> str:
        what = "MNIST" if self.name == "MNIST" else "the embedded digits"
        return (f"{what}: {len(self.X_train):,} training images, {len(self.X_test):,} test images, "
                f"{self.epochs} epochs, test accuracy at least {self.bar:.0%}")


def pad32(images: np.ndarray) -> np.ndarray:
    """MNIST's uint8 (N, 28, 28) images as float32 (N, 1, 32, 32) in [0, 1], 2 pixels of zeros around."""
    out = np.zeros((len(images), 1, 32, 32), dtype=np.float32)
    out[:, 0, 2:30, 2:30] = np.asarray(images, dtype=np.float32) / np.float32(255)
    return out


_SETS: dict[tuple, TrainingSet] = {}


def training_set(root: str | None = None, use_mnist: bool = True, grading: bool | None = None) -> TrainingSet:
    """The data of Exercise 6 in this run (the notebook and the check read the same one).

    Outside grading: the first ``MNIST_TRAIN`` of MNIST's training images and its 10,000 test
    images when the files are found (``cnnlab.data.load_mnist``: ``$CNNLAB_DATA``, the course's
    data folder), ``MNIST_EPOCHS`` epochs, bar ``MNIST_BAR``; otherwise the embedded digits
    (``DIGITS_EPOCHS``, ``DIGITS_BAR``), saying why. While grading: always the digits, shorter
    (``grading``: as while grading or not, whatever this process is; the grader's verifier judges
    with the grading setting).
    """
    from cnnlab import data

    grading = under_nbgrader() if grading is None else bool(grading)
    key = (grading, str(data.data_root(root)), use_mnist)
    if key in _SETS:
        return _SETS[key]
    note = ""
    found = None
    if grading:
        note = "grading: the embedded digits, a shorter run"
    elif use_mnist:
        where = f"the folder mnist inside {data.data_root(root)}"
        try:
            (xtr, ytr), (xte, yte) = data.load_mnist("mnist", "train", root), data.load_mnist("mnist", "test", root)
            found = (pad32(xtr[:MNIST_TRAIN]), ytr[:MNIST_TRAIN], pad32(xte), yte)
            note = f"MNIST from {where} (the first {MNIST_TRAIN:,} of its 60,000 training images)"
        except FileNotFoundError:
            note = (f"MNIST not found: its four files belong in {where} ($CNNLAB_DATA for another folder; "
                    "DOWNLOAD_MNIST = True fetches them). The embedded digits instead.")
        except ValueError:
            note = (f"MNIST not used: a file in {where} is damaged (wrong checksum or size); delete it and "
                    "get it again. The embedded digits instead.")
    if found is not None:
        stats = float(np.float32(found[0].mean())), float(np.float32(found[0].std()))
        X_train, X_test = standardize(found[0], found[2])
        ts = TrainingSet("MNIST", X_train, found[1], X_test, found[3], MNIST_EPOCHS, MNIST_BAR, note, *stats)
    else:
        X_train, y_train, X_test, y_test = data.digits()
        stats = float(np.float32(X_train.mean())), float(np.float32(X_train.std()))
        X_train, X_test = standardize(X_train, X_test)
        ts = TrainingSet("digits", X_train, y_train, X_test, y_test, DIGITS_EPOCHS[grading], DIGITS_BAR[grading],
                         note or "the embedded digits (MNIST not asked for)", *stats)
    _SETS[key] = ts
    return ts


_RUNS: dict[tuple, dict[str, Any]] = {}


def _key(fn: Callable[..., Any], X: np.ndarray, y: np.ndarray, epochs: int, helpers: str) -> tuple:
    """What a training run depends on: the function, its helpers, the data and the epochs."""
    ns = getattr(fn, "__globals__", {})
    names = tuple(_REFERENCES) + tuple(_LAYER_NAMES)
    own = tuple((h, id(ns.get(h)), getattr(ns.get(h), "__code__", None)) for h in names) if helpers == "own" else ()
    return (id(fn), getattr(fn, "__code__", None), helpers, own, epochs, X.shape,
            float(np.asarray(X, float).sum()), int(np.asarray(y).sum()))


def _train_run(fn: Callable[..., Any], X: np.ndarray, y: np.ndarray, epochs: int, helpers: str) -> dict[str, Any]:
    """Run the student's train_digits once under the guard (remembered for the next call).

    helpers="own": with the student's lenet_forward, lenet_backward, sgd_step and train_lenet (the
    notebook's demonstration); helpers="course": with the course's references put in their place for
    the call, so that the accuracy check grades train_digits alone (a bug in Exercises 2-5 costs
    those exercises' points, not these).
    """
    key = _key(fn, X, y, epochs, helpers)
    if key in _RUNS:
        return _RUNS[key]
    start, cpu = time.perf_counter(), time.process_time()
    with _course_helpers(fn, tuple(_REFERENCES) if helpers == "course" else ()):
        result, _ = run_guarded(fn, X, y, epochs, exercise="train_digits", allow=(*LAYERS, lenet_init),
                                check_mutation=False)
    run = {"result": result, "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
           "epochs": epochs, "helpers": helpers}
    if len(_RUNS) > 4:
        _RUNS.clear()
    _RUNS[key] = run
    return run


def train_once(train_digits: Callable[..., Any], X_train: np.ndarray | TrainingSet, y_train: np.ndarray | None = None,
               epochs: int | None = None) -> dict[str, Any] | None:
    """Train with the student's ``train_digits`` and their own helpers (the notebook's demonstration).

    ``X_train`` may be a :class:`TrainingSet` (its training images and epochs). Returns {"params",
    "losses", "seconds", "cpu_seconds", "epochs", "images"}, or None (with a printed reason) when the
    function is not written yet or fails. The accuracy check uses this run when the student's
    helpers pass their own checks (the network is trained once).
    """
    if isinstance(X_train, TrainingSet):
        ts = X_train
        X_train, y_train, epochs = ts.X_train, ts.y_train, ts.epochs if epochs is None else epochs
    epochs = training_set().epochs if epochs is None else epochs
    try:
        run = _train_run(train_digits, X_train, y_train, epochs, "own")
    except AssertionError as exc:
        text = str(exc)
        if "not implemented yet" in text:
            print("Finish Exercises 2-6 to train your network here.")
        else:
            print(text.split("\n")[0][:300])
        return None
    try:
        params, losses = _pair(run["result"], ("params", "losses"))
        losses = list(np.asarray(losses, dtype=float))
    except (Problem, TypeError, ValueError) as err:
        print(f"train_digits: {getattr(err, 'message', err)}".strip())
        return None
    return {"params": params, "losses": losses, "seconds": run["seconds"], "cpu_seconds": run["cpu_seconds"],
            "epochs": epochs, "images": epochs * len(X_train)}


_DIVERGED = "the training diverged (NaN or inf): lower the learning rate"
_BLEW_UP = ("the training diverged: the loss jumped up and ended at chance level (the network predicts one class); "
            "lower the learning rate")
_STALLED = "the loss hardly went down: the learning rate is too small or too few steps were taken"
_BELOW = "the test accuracy is below the bar: tune the learning rate (and its decay), the batch size and momentum"


def _loss_story(losses: Any, classes: int = 10) -> tuple[str, str] | None:
    """(what the loss did, the bug phrase) when the losses show a diverged or stalled training."""
    try:
        v = np.asarray(losses, dtype=float).ravel()
    except (TypeError, ValueError):
        return None
    if v.size < 2:
        return None
    if not np.all(np.isfinite(v)):
        first_bad = int(np.flatnonzero(~np.isfinite(v))[0])
        return f"the loss became {v[first_bad]} at step {first_bad + 1} of {v.size}", _DIVERGED
    k = max(1, min(20, v.size // 10))
    start, end, peak = float(v[:k].mean()), float(v[-k:].mean()), float(v.max())
    chance = float(np.log(classes))
    if peak > 2 * max(start, chance) and end > chance - 0.1:
        return (f"the loss went from {start:.2f} up to {peak:.3g} and ended at {end:.2f} (chance level: "
                f"ln {classes} = {chance:.2f})"), _BLEW_UP
    if end > 0.8 * start:
        return f"the loss went from {start:.2f} to {end:.2f} in {v.size:,} steps", _STALLED
    return None


def _helpers_pass(fn: Callable[..., Any]) -> bool:
    """Whether the student's lenet_forward, lenet_backward, sgd_step and train_lenet (those
    ``fn`` calls) all pass their public checks."""
    ns = getattr(fn, "__globals__", {})
    for name in _REFERENCES:
        helper = ns.get(name)
        if not callable(helper) or not NOTEBOOK[name].run(helper, "public", blame=False).passed:
            return False
    return True


def _digits_custom(fn: Callable[..., Any], tier: str) -> str:
    ex = NOTEBOOK["train_digits"]
    ts = training_set()
    X_train, y_train, X_test, y_test, epochs, bar = ts.X_train, ts.y_train, ts.X_test, ts.y_test, ts.epochs, ts.bar
    own_key = _key(fn, X_train, y_train, epochs, "own")
    reuse = not under_nbgrader() and own_key in _RUNS and _helpers_pass(fn)
    try:
        run = _RUNS[own_key] if reuse else _train_run(fn, X_train, y_train, epochs, "course")
    except AssertionError as exc:
        text = str(exc).replace("train_digits: ", "", 1)
        if text.startswith("not implemented yet"):
            raise Problem(f"{ex.title}: {text}") from None
        if "NaN" in text or "nan" in text or "inf" in text:
            raise Problem.named(f"{ex.title}: {text}", _DIVERGED) from None
        raise Problem(f"{ex.title}:\n  {text}") from None
    acc, setting = _judge_trained(run["result"], tier, ts, run)
    how = "your run above, your helpers pass their checks" if reuse else f"{run['seconds']:.1f} s"
    return f"test accuracy {acc:.1%} >= {bar:.0%} ({setting}; {how})"


def _judge_trained(result: Any, tier: str, ts: "TrainingSet", run: dict[str, Any] | None = None) -> tuple[float, str]:
    """The accuracy criterion of Exercise 6 on what train_digits returned, for training set ``ts``
    (the check's, and the grader's verifier's, outside the worker): (accuracy, setting), or
    :class:`Problem`. ``run``: the check's record of this run (the accuracy is measured once)."""
    ex = NOTEBOOK["train_digits"]
    params, losses = _pair(result, ("params", "losses"))
    values = _entries(params, "params", PARAM_KEYS)
    default = lenet_init(seed=0)
    for name, v in values.items():
        v, want = np.asarray(v), np.shape(default[name[8:10]])
        if v.shape != want:
            raise Problem(f"{ex.title}: {name} has shape {v.shape}, expected {want}")
        if not np.all(np.isfinite(v)):
            raise Problem.named(f"{ex.title}: {name} holds NaN or inf.", _DIVERGED)
    run = {} if run is None else run
    if "test_accuracy" not in run:   # the same run checked again (the summary): measured once
        run["test_accuracy"] = float(np.mean(predict(params, ts.X_test) == ts.y_test))
    acc = run["test_accuracy"]
    data = "MNIST" if ts.name == "MNIST" else "digits"
    setting = f"{ts.epochs} epochs on {len(ts.X_train):,} training {data}, {len(ts.X_test):,} test {data}"
    if acc < ts.bar:
        shown = f"{acc:.1%}" if tier == "public" else "too low"
        story = _loss_story(losses)
        text = f"{ex.title} ({setting}): test accuracy {shown}, the bar is {ts.bar:.0%}."
        if story is not None:
            raise Problem.named(f"{text}\n  {story[0]}", story[1])
        raise Problem.named(text, _BELOW)
    return acc, setting


class _Digits(Exercise):
    """train_digits' record: the check trains once with the course's helpers and tests the
    accuracy. The grader's verifier re-runs the student's train_digits in its worker on the same
    data, epochs and helpers as a grading kernel's check (the embedded digits, the grading setting),
    and judges the returned parameters outside with :func:`_judge_trained` (one training run)."""

    def helpers(self) -> dict[str, Callable[..., Any]]:
        return dict(_REFERENCES)

    def confirmation(self, tier: str, *, only: str | None = None, student: str | None = None) -> Confirmation:
        ts = training_set(grading=True)      # as while grading

        def judge(value: Any, case: Case) -> str | None:
            try:
                _judge_trained(value, tier, ts)
            except Problem as p:
                return p.message.split("\n", 1)[0]
            return None

        policy = self.policy(tier)
        policy["allow"] += tuple(f"{f.__module__}:{f.__qualname__}" for f in (*LAYERS, lenet_init))
        return Confirmation(cases=(Case((ts.X_train, ts.y_train, ts.epochs), label="the digits, as while grading"),),
                            judge=judge, helpers={k: f"{f.__module__}:{f.__qualname__}" for k, f in _REFERENCES.items()},
                            **policy)


_DIGITS = '''def train_digits(X_train, y_train, epochs):
    from cnnlab.numpy_ref import lenet_init
    params = {k: v.astype(np.float32) for k, v in lenet_init(seed=0).items()}
    return train_lenet(params, X_train, y_train, epochs=EPOCHS, batch_size=32, lr=LR, momentum=0.9, seed=0)
'''

NOTEBOOK.add(_Digits(
    "train_digits", 6, None, custom=_digits_custom,
    grade_ids=("test_train_digits",),
    bugs=[
        Bug(_DIVERGED, _DIGITS.replace("EPOCHS", "epochs").replace("LR", "5.0"), by_output=False),
        Bug(_BLEW_UP, _DIGITS.replace("EPOCHS", "epochs").replace("LR", "0.3"), by_output=False),
        Bug(_STALLED, _DIGITS.replace("EPOCHS", "1").replace("LR", "1e-5"), by_output=False),
        Bug(_BELOW, _DIGITS.replace("EPOCHS", "1").replace("LR", "0.002"), by_output=False),
    ],
))
