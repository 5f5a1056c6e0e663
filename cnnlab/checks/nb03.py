"""Exercise records of notebook 03 (padding and stride).

``zero_pad``, ``pad``, ``conv_output_size``, ``conv2d`` (strided and padded, one 2-D image and
one 2-D kernel) and ``receptive_field``.  Test cells call ``nb03.check("zero_pad", zero_pad)``
and ``nb03.check(..., tier="hidden")``; the notebook's last cell calls ``nb03.summary(globals())``.

Strict mode (``conv_output_size(..., strict=True)``, as ``cnnlab.shapes``) refuses a stride only
when it skips input pixels: the rows/columns left after the last window, ``(n + 2*pad - f) %
stride`` of them, may all be padding (56 with f=3, pad=1, stride 2 gives 28).  Its check is a
``custom`` loop because some of its cases expect a ValueError, which a call-and-compare cannot
express; it names a bug when the bug's code does the same thing (the same size, or a ValueError).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from cnnlab import shapes
from cnnlab.grading import rng
from cnnlab.grading.closeness import describe
from cnnlab.grading.exercise import Bug, Case, Confirmation, Exercise, Notebook, Problem, Raised
from cnnlab.grading.guard import run_guarded
from cnnlab.grading.probes import refuse_module
from cnnlab.numpy_ref import pad as ref_pad
from cnnlab.shapes import conv_output_size as ref_conv_output_size
from cnnlab.shapes import receptive_field as ref_receptive_field

__all__ = ["NOTEBOOK", "check", "summary", "ref_zero_pad", "ref_conv2d"]

NOTEBOOK = Notebook("03_padding_stride")
check = NOTEBOOK.check
summary = NOTEBOOK.summary

_NO_SHAPES = ("cnnlab.shapes holds this exercise's answers (the notebook imports it for its demos): "
              "write the arithmetic yourself")


def ref_zero_pad(x: np.ndarray, p: int) -> np.ndarray:
    """Pad the last two axes of ``x`` with ``p`` zeros on each side (ValueError for p < 0)."""
    return ref_pad(x, p, mode="zero")


def ref_conv2d(x: np.ndarray, k: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Cross-correlate a 2-D image (H, W) with a 2-D kernel (KH, KW), zero padding ``pad``, step ``stride``.

    Returns (H', W') with H' = (H + 2*pad - KH) // stride + 1 (floor: only strides that fit are checked).
    """
    x, k = np.asarray(x, dtype=float), np.asarray(k, dtype=float)
    xp = np.pad(x, pad)
    windows = sliding_window_view(xp, k.shape)[::stride, ::stride]
    return np.einsum("ijab,ab->ij", windows, k)


def _ask(fn: Any, exercise: str, *args: Any, **kwargs: Any) -> tuple[str, Any]:
    """Run the student's ``fn`` under the guard: ("value", result) or ("raised", the exception).

    A stub, a forbidden call or a changed input becomes a :class:`Problem` at once.
    """
    try:
        result, _ = run_guarded(fn, *args, exercise=exercise, **kwargs)
    except AssertionError as exc:
        if exc.__cause__ is not None and not isinstance(exc.__cause__, NotImplementedError):
            return "raised", exc.__cause__
        text = str(exc)
        for prefix in (f"{exercise}: ", f"exercise {exercise}: "):
            if text.startswith(prefix):
                text = text[len(prefix):]
        title = NOTEBOOK[exercise].title
        raise Problem(f"{title}: {text}") from None
    return "value", result


def _refuses(fn: Any, exercise: str, args: tuple, kwargs: dict, what: str, bug: str) -> None:
    """Fail unless the student's ``fn(*args, **kwargs)`` raises ValueError (``what`` describes the call)."""
    kind, value = _ask(fn, exercise, *args, **kwargs)
    title = NOTEBOOK[exercise].title
    if kind == "raised" and isinstance(value, ValueError):
        return
    if kind == "raised":
        raise Problem(f"{title}: {what} raised {type(value).__name__} ({value}); raise ValueError there", bug=bug)
    raise Problem.named(f"{title}: {what} returned {describe(value)}.", bug)


# --------------------------------------------------------------------------------------------
# Exercise 1: zero_pad
# --------------------------------------------------------------------------------------------

def _grid(g: np.random.Generator, shape: tuple[int, ...], dtype: Any = float) -> np.ndarray:
    return g.integers(1, 10, size=shape).astype(dtype)


def _zero_pad_public() -> list[Case]:
    g = rng(3)
    return [Case((_grid(g, (2, 3)), 1), label="a 2x3 image, p=1"),
            Case((_grid(g, (3, 4, 5)), 2), label="a (C, H, W) volume, p=2"),
            Case((_grid(g, (2, 3, 4, 4)), 1), label="an (N, C, H, W) batch, p=1"),
            Case((_grid(g, (3, 3)), 0), label="p=0 (nothing to add)")]


def _zero_pad_hidden() -> list[Case]:
    g = rng(3303)
    return [Case((_grid(g, (1, 1, 3, 7)), 3), label="a batch of one, wide image, p=3"),
            Case((_grid(g, (5, 2)), 4), label="a pad larger than the image"),
            Case((_grid(g, (2, 2, 2, 3, 4), np.float32), 1), label="a 5-D float32 array"),
            Case((_grid(g, (4, 6)), 0), label="p=0"),
            Case((_grid(g, (1, 3, 1, 1)), 2), label="1x1 images"),
            Case((_grid(g, (6, 5)), 1), label="a 6x5 image, p=1")]


def _zero_pad_extra(fn: Any, tier: str) -> None:
    _refuses(fn, "zero_pad", (np.ones((4, 5)), -1), {}, "zero_pad(x, -1)",
             "a negative pad is accepted: raise ValueError for p < 0")


_ZP_HEAD = "def zero_pad(x, p):\n    H, W = x.shape[-2:]\n"

NOTEBOOK.add(Exercise(
    "zero_pad", 1, ref_zero_pad, _zero_pad_public, _zero_pad_hidden, extra=_zero_pad_extra,
    bugs=[
        Bug("padded on one side only: add p zeros before AND after each of H and W (the size grows by 2p)",
            _ZP_HEAD + "    out = np.zeros(x.shape[:-2] + (H + p, W + p), dtype=x.dtype)\n"
            "    out[..., p:, p:] = x\n    return out", loses=("conv2d",)),
        Bug("x is copied into the top-left corner: put it in the middle, rows p to p + H, columns p to p + W",
            _ZP_HEAD + "    out = np.zeros(x.shape[:-2] + (H + 2 * p, W + 2 * p), dtype=x.dtype)\n"
            "    out[..., :H, :W] = x\n    return out", loses=("conv2d",)),
        Bug("every axis is padded, batch and channels too: pad only the last two axes (H, W)",
            "def zero_pad(x, p):\n    out = np.zeros(tuple(s + 2 * p for s in x.shape), dtype=x.dtype)\n"
            "    out[tuple(slice(p, p + s) for s in x.shape)] = x\n    return out"),
        Bug("2p zeros on each side: p is the padding on EACH side, so the size grows by 2p in all",
            _ZP_HEAD + "    out = np.zeros(x.shape[:-2] + (H + 4 * p, W + 4 * p), dtype=x.dtype)\n"
            "    out[..., 2 * p:2 * p + H, 2 * p:2 * p + W] = x\n    return out", loses=("conv2d",)),
        Bug("only the height is padded: pad the width too",
            _ZP_HEAD + "    out = np.zeros(x.shape[:-2] + (H + 2 * p, W), dtype=x.dtype)\n"
            "    out[..., p:p + H, :] = x\n    return out", loses=("conv2d",)),
        Bug("only the width is padded: pad the height too",
            _ZP_HEAD + "    out = np.zeros(x.shape[:-2] + (H, W + 2 * p), dtype=x.dtype)\n"
            "    out[..., :, p:p + W] = x\n    return out", loses=("conv2d",)),
        Bug("x is never copied in: the result is all zeros",
            _ZP_HEAD + "    return np.zeros(x.shape[:-2] + (H + 2 * p, W + 2 * p), dtype=x.dtype)", loses=("conv2d",)),
        Bug("out[..., p:-p, p:-p] is empty when p = 0 (-0 is 0): slice with p:p + H and p:p + W",
            _ZP_HEAD + "    out = np.zeros(x.shape[:-2] + (H + 2 * p, W + 2 * p), dtype=x.dtype)\n"
            "    out[..., p:-p, p:-p] = x\n    return out", loses=("conv2d",)),
        Bug("got integer dtype",
            _ZP_HEAD + "    out = np.zeros(x.shape[:-2] + (H + 2 * p, W + 2 * p), dtype=int)\n"
            "    out[..., p:p + H, p:p + W] = x\n    return out", loses=("conv2d",), by_output=False),
        Bug("a negative pad is accepted: raise ValueError for p < 0",
            _ZP_HEAD + "    p = max(p, 0)\n    out = np.zeros(x.shape[:-2] + (H + 2 * p, W + 2 * p), dtype=x.dtype)\n"
            "    out[..., p:p + H, p:p + W] = x\n    return out", by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 2: pad (zero, constant, reflect, replicate)
# --------------------------------------------------------------------------------------------

def _pad_public() -> list[Case]:
    g = rng(33)
    return [Case((_grid(g, (3, 4)), 1), {"mode": "zero"}, "zero, 3x4, p=1"),
            Case((_grid(g, (3, 4)), 2), {"mode": "constant", "value": 0.5}, "constant 0.5, p=2"),
            Case((_grid(g, (3, 4)), 2), {"mode": "reflect"}, "reflect, p=2"),
            Case((_grid(g, (3, 4)), 2), {"mode": "replicate"}, "replicate, p=2"),
            Case((_grid(g, (2, 3, 4)), 1), {"mode": "reflect"}, "reflect, a (C, H, W) volume"),
            Case((_grid(g, (2, 3, 4)), 1), {"mode": "replicate"}, "replicate, a (C, H, W) volume")]


def _pad_hidden() -> list[Case]:
    g = rng(3333)
    return [Case((_grid(g, (2, 2, 5, 6)), 3), {"mode": "reflect"}, "reflect, a batch, p=3"),
            Case((_grid(g, (2, 2, 5, 6)), 3), {"mode": "replicate"}, "replicate, a batch, p=3"),
            Case((_grid(g, (4, 7)), 2), {"mode": "constant", "value": -1.5}, "a negative constant"),
            Case((_grid(g, (1, 5, 5)), 4), {"mode": "reflect"}, "reflect, p = H - 1"),
            Case((_grid(g, (3, 2)), 4), {"mode": "replicate"}, "replicate, a pad larger than the image"),
            Case((_grid(g, (6, 6)), 0), {"mode": "reflect"}, "p=0"),
            Case((_grid(g, (2, 4, 3)), 2), {"mode": "zero"}, "zero, a volume"),
            Case((_grid(g, (4, 4)), 1), {"mode": "constant", "value": 2.0}, "constant 2, p=1")]


def _pad_extra(fn: Any, tier: str) -> None:
    _refuses(fn, "pad", (np.ones((3, 3)), 1), {"mode": "mirror"}, "pad(x, 1, mode='mirror')",
             "an unknown mode is accepted: raise ValueError naming the four valid modes")


def _pad_code(modes: str, width: str = "[(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)]", constant: str = "value",
              guard: bool = True) -> str:
    lines = ["def pad(x, p, mode='zero', value=0.0):", f"    modes = {modes}"]
    if guard:
        lines.append("    if mode not in modes:\n        raise ValueError(f'unknown mode {mode!r}')")
    lines += [f"    width = {width}",
              "    if mode == 'constant':",
              f"        return np.pad(x, width, mode='constant', constant_values={constant})",
              "    return np.pad(x, width, mode=modes.get(mode, 'constant'))"]
    return "\n".join(lines)


_MODES = "{'zero': 'constant', 'constant': 'constant', 'reflect': 'reflect', 'replicate': 'edge'}"

NOTEBOOK.add(Exercise(
    "pad", 2, ref_pad, _pad_public, _pad_hidden, extra=_pad_extra,
    bugs=[
        Bug("reflect repeats the border pixel (that is NumPy's 'symmetric'): reflect gives [c b | a b c | b a], "
            "NumPy mode 'reflect'",
            _pad_code(_MODES.replace("'reflect': 'reflect'", "'reflect': 'symmetric'"))),
        Bug("reflect gives the replicate result: reflect mirrors without repeating the border pixel "
            "(NumPy 'reflect'), replicate repeats it (NumPy 'edge')",
            _pad_code(_MODES.replace("'reflect': 'reflect'", "'reflect': 'edge'"))),
        Bug("replicate gives the reflect result: replicate repeats the border pixel, NumPy mode 'edge'",
            _pad_code(_MODES.replace("'replicate': 'edge'", "'replicate': 'reflect'"))),
        Bug("reflect wraps around (NumPy 'wrap'): mirror at the border instead",
            _pad_code(_MODES.replace("'reflect': 'reflect'", "'reflect': 'wrap'"))),
        Bug("replicate pads with zeros: repeat the border pixel, NumPy mode 'edge'",
            _pad_code(_MODES.replace("'replicate': 'edge'", "'replicate': 'constant'"))),
        Bug("replicate mirrors (NumPy 'symmetric'): replicate repeats only the border pixel, NumPy 'edge'",
            _pad_code(_MODES.replace("'replicate': 'edge'", "'replicate': 'symmetric'"))),
        Bug("the constant value is ignored (zeros): fill with `value` in mode 'constant'",
            _pad_code(_MODES, constant="0.0")),
        Bug("every axis is padded, batch and channels too: give np.pad a pad_width of (0, 0) for the leading axes",
            _pad_code(_MODES, width="p")),
        Bug("only the height is padded: pad the width too",
            _pad_code(_MODES, width="[(0, 0)] * (x.ndim - 2) + [(p, p), (0, 0)]")),
        Bug("the course's mode names go straight to np.pad, which knows no 'zero' or 'replicate': map them "
            "to NumPy's ('constant', 'edge')",
            "def pad(x, p, mode='zero', value=0.0):\n    width = [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)]\n"
            "    if mode == 'constant':\n        return np.pad(x, width, mode='constant', constant_values=value)\n"
            "    return np.pad(x, width, mode=mode)"),
        Bug("constant_values is passed for every mode: np.pad accepts it only with mode 'constant'",
            "def pad(x, p, mode='zero', value=0.0):\n"
            f"    modes = {_MODES}\n    width = [(0, 0)] * (x.ndim - 2) + [(p, p), (p, p)]\n"
            "    return np.pad(x, width, mode=modes[mode], constant_values=value if mode == 'constant' else 0.0)"),
        Bug("an unknown mode is accepted: raise ValueError naming the four valid modes",
            _pad_code(_MODES, guard=False), by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 3: conv_output_size (strict and floor)
# --------------------------------------------------------------------------------------------

def _size(n: int, f: int, pad: int = 0, stride: int = 1, strict: bool = True, label: str = "") -> Case:
    return Case((n, f), {"pad": pad, "stride": stride, "strict": strict}, label)


def _size_public() -> list[Case]:
    return [_size(7, 3, label="the lecture's 7x7 input, 3x3 filter, stride 1"),
            _size(7, 3, stride=2, label="stride 2"),
            _size(7, 3, pad=1, label="pad 1 keeps 7x7"),
            _size(7, 3, stride=3, label="stride 3 skips the last column: strict mode refuses it"),
            _size(7, 3, stride=3, strict=False, label="stride 3 in floor mode"),
            _size(32, 5, pad=2, label="same padding for a 5x5 filter"),
            _size(28, 5, label="valid, 28x28 with 5x5"),
            _size(56, 3, pad=1, stride=2, label="a stride-2 'same' layer: the one row left over is padding"),
            _size(224, 7, pad=3, stride=2, label="the 7x7 stride-2 stem: only padding left over"),
            _size(8, 3, stride=2, strict=False, label="floor mode, one input row left over"),
            _size(63, 7, stride=2, label="63x63, 7x7 filters, stride 2")]


def _size_hidden() -> list[Case]:
    return [_size(227, 11, stride=4, label="a large input, stride 4"),
            _size(224, 7, pad=3, stride=2, strict=False, label="floor mode, only padding left over"),
            _size(5, 5, label="a filter as large as the input"),
            _size(6, 2, stride=2, label="an even filter, stride 2"),
            _size(10, 4, pad=1, stride=3, label="strict, two rows left over and one pad: refuse"),
            _size(10, 4, pad=1, stride=3, strict=False, label="floor mode, input rows left over"),
            _size(15, 3, pad=2, label="padding larger than same"),
            _size(9, 1, stride=4, label="a 1x1 filter, stride 4"),
            _size(11, 4, pad=2, stride=3, strict=False, label="floor mode, only padding left over"),
            _size(13, 4, stride=3, label="an even filter, stride 3"),
            _size(4, 3, pad=1, label="a tiny input, same padding"),
            _size(112, 3, pad=1, stride=2, label="a stride-2 'same' layer"),
            _size(12, 3, pad=1, stride=4, label="strict, input pixels left over: refuse"),
            _size(30, 5, pad=1, stride=3, label="stride 3 that fits exactly")]


def _outcome(fn: Any, case: Case) -> tuple[str, Any]:
    """("value", result) or ("raised", exception type) of a trusted function (reference or bug code)."""
    try:
        return "value", fn(*case.args, **dict(case.kwargs))
    except Exception as exc:  # noqa: BLE001 - a refusal, compared with the student's
        return "raised", type(exc)


def _same(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "raised":
        return a[1] is b[1]
    value, other = a[1], b[1]
    ints = all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in (value, other))
    return ints and int(value) == int(other)


def _size_custom(fn: Any, tier: str) -> str:
    ex = NOTEBOOK["conv_output_size"]
    cases = ex.cases(tier)
    answers = [_ask(fn, ex.name, *case.args, **dict(case.kwargs)) for case in cases]
    student = [(kind, type(got) if kind == "raised" else got) for kind, got in answers]
    wanted = [_outcome(ex.reference, case) for case in cases]

    def right(i: int) -> bool:
        (kind, got), want = answers[i], wanted[i]
        if kind == "value" and want[0] == "value":
            return ex._differs(got, want[1], "result", tier, 0, 0) is None
        return _same(student[i], want)

    wrong = [i for i in range(len(cases)) if not right(i)]
    if not wrong:
        return f"all {len(cases)} cases right, strict and floor"
    i = wrong[0]
    case, (kind, got), want = cases[i], answers[i], wanted[i]
    n, f = case.args
    p, s = case.kwargs["pad"], case.kwargs["stride"]
    left = (n + 2 * p - f) % s
    if want[0] == "value" and kind == "value":
        line = ex._differs(got, want[1], "result", tier, 0, 0)
    elif want[0] == "value":
        if tier == "hidden":
            line = f"  raised {type(got).__name__} where a size was expected"
        elif case.kwargs["strict"] and isinstance(got, ValueError) and left:
            line = (f"  raised ValueError ({str(got).splitlines()[0][:80]}), but the {left} row(s) left after the "
                    f"last window are padding (pad={p}): no input pixel is skipped, so the answer is {want[1]}")
        else:
            line = f"  raised {type(got).__name__} ({str(got).splitlines()[0][:80]}); expected {want[1]}"
    elif kind == "value":
        line = (f"  returned {describe(got)}; strict mode must refuse this stride with a ValueError"
                + ("" if tier == "hidden" else
                   f" ({n} + 2*{p} - {f} leaves {left} row(s) after the last window, {left - p} of them input pixels)"))
    else:
        line = f"  raised {type(got).__name__}; strict mode refuses with a ValueError"
    # name a bug only when its code does what the student's did on every case of the tier
    bug = next((b for b in ex.bugs if b.by_output and all(
        _same(_outcome(ex.bug_function(b), c), student[j]) for j, c in enumerate(cases))), None)
    where = ex._where(case, tier, i, len(cases))
    raise Problem(f"{ex.title}, {where}:\n{line}", diagnosis=ex._diagnosis(bug, where) if bug else None)


_SIZE_HEAD = "def conv_output_size(n, f, pad=0, stride=1, strict=True):\n    span = n + 2 * pad - f\n"
_SIZE_STRICT = ("    if strict and span % stride > pad:\n"
                "        raise ValueError(f'stride {stride} skips input pixels (n={n}, f={f}, pad={pad})')\n")

class _SizeExercise(Exercise):
    """conv_output_size's record: what the function raises is part of the answer. The grader's
    verifier confirms it on the same cases with the same comparison as ``_size_custom``."""

    def confirmation(self, tier: str, *, only: str | None = None, student: str | None = None) -> Confirmation:
        def judge(result: Any, case: Case) -> str | None:
            want = _outcome(self.reference, case)
            if isinstance(result, Raised):
                if want[0] == "raised" and result.type == f"{want[1].__module__}.{want[1].__qualname__}":
                    return None
                return f"raised {result.type.rsplit('.', 1)[-1]}" + ("" if want[0] == "raised" else " where a size was expected")
            if want[0] == "value":
                return self._differs(result, want[1], "result", tier, 0, 0)
            return "returned a size where strict mode must refuse the stride with a ValueError"

        return Confirmation(cases=tuple(self.cases(tier)), judge=judge, raises=True, **self.policy(tier))


NOTEBOOK.add(_SizeExercise(
    "conv_output_size", 3, ref_conv_output_size, _size_public, _size_hidden, kind="int",
    custom=_size_custom, extra=refuse_module(shapes, 32, 5, pad=2, stride=1, strict=True, advice=_NO_SHAPES),
    bugs=[
        Bug("strict mode refuses a stride that only leaves padding unread: raise only when input pixels are "
            "skipped, i.e. when (n + 2*pad - f) % stride > pad",
            _SIZE_HEAD + "    if strict and span % stride != 0:\n"
            "        raise ValueError(f'stride {stride} does not fit (n={n}, f={f}, pad={pad})')\n"
            "    return span // stride + 1", loses=("conv2d",)),
        Bug("strict mode does not refuse a stride that skips input pixels: raise ValueError when "
            "(n + 2*pad - f) % stride > pad",
            _SIZE_HEAD + "    return span // stride + 1"),
        Bug("strict=False must floor like PyTorch, not raise: refuse only when strict is True",
            _SIZE_HEAD + "    if span % stride > pad:\n        raise ValueError(f'stride {stride} skips input pixels')\n"
            "    return span // stride + 1"),
        Bug("off by one: the formula is (n + 2*pad - f) // stride + 1 (the + 1 counts the first window)",
            _SIZE_HEAD + _SIZE_STRICT + "    return span // stride", loses=("conv2d",)),
        Bug("off by one: the formula is (n + 2*pad - f) // stride + 1, not + 2",
            _SIZE_HEAD + _SIZE_STRICT + "    return span // stride + 2", loses=("conv2d",)),
        Bug("the padding is added on one side only: use n + 2*pad",
            "def conv_output_size(n, f, pad=0, stride=1, strict=True):\n    span = n + pad - f\n"
            + _SIZE_STRICT + "    return span // stride + 1", loses=("conv2d",)),
        Bug("the stride is ignored: divide (n + 2*pad - f) by the stride",
            _SIZE_HEAD + _SIZE_STRICT + "    return span + 1", loses=("conv2d",)),
        Bug("the padding is ignored: the windows slide over n + 2*pad positions",
            "def conv_output_size(n, f, pad=0, stride=1, strict=True):\n    span = n - f\n"
            "    if strict and span % stride:\n        raise ValueError(f'stride {stride} does not fit')\n"
            "    return span // stride + 1", loses=("conv2d",)),
        Bug("ceiling instead of floor: frameworks drop the last incomplete window (use //)",
            _SIZE_HEAD + _SIZE_STRICT + "    return -(-span // stride) + 1", loses=("conv2d",)),
        Bug("the + 1 is inside the division: it is (n + 2*pad - f) // stride + 1",
            _SIZE_HEAD + _SIZE_STRICT + "    return (span + 1) // stride", loses=("conv2d",)),
        Bug("returned the float",
            _SIZE_HEAD + _SIZE_STRICT + "    return span / stride + 1", loses=("conv2d",), by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 4: conv2d with stride and padding
# --------------------------------------------------------------------------------------------

def _conv2d_cases(seed: int, specs: list[tuple[tuple[int, int], tuple[int, int], int, int, str]]) -> list[Case]:
    g = rng(seed)
    return [Case((g.standard_normal(xs), g.standard_normal(ks)), {"stride": s, "pad": p}, label)
            for xs, ks, s, p, label in specs]


def _conv2d_public() -> list[Case]:
    return _conv2d_cases(30, [((7, 7), (3, 3), 1, 0, "the lecture's 7x7, stride 1"),
                              ((7, 7), (3, 3), 2, 0, "stride 2"),
                              ((7, 7), (3, 3), 1, 1, "pad 1"),
                              ((7, 7), (3, 3), 2, 1, "stride 2, pad 1"),
                              ((6, 8), (2, 4), 2, 0, "a rectangular kernel, stride 2"),
                              ((8, 8), (3, 3), 2, 1, "a stride-2 'same' layer (one padding row unread)")])


def _conv2d_hidden() -> list[Case]:
    return _conv2d_cases(3030, [((9, 11), (3, 5), 2, 1, "a rectangular kernel, stride 2, pad 1"),
                                ((8, 8), (4, 4), 2, 1, "an even kernel, stride 2, pad 1"),
                                ((10, 7), (1, 1), 3, 0, "a 1x1 kernel, stride 3"),
                                ((5, 5), (5, 5), 1, 2, "a kernel as large as the image, pad 2"),
                                ((12, 9), (3, 3), 3, 0, "stride 3"),
                                ((6, 10), (2, 3), 1, 2, "pad 2, rectangular"),
                                ((13, 11), (5, 3), 4, 0, "stride 4"),
                                ((16, 16), (3, 3), 2, 1, "a stride-2 'same' layer")])


def _conv2d_code(*, pad_x: str = "zero_pad(x, pad)", size: str = "conv_output_size({n}, {k}, pad, stride)",
                 rows: str = "i * stride", cols: str = "j * stride", kernel: str = "k", kw: str = "k.shape[1]",
                 dtype: str = "") -> str:
    return ("def conv2d(x, k, stride=1, pad=0):\n"
            f"    xp = {pad_x}\n    KH, KW = k.shape[0], {kw}\n"
            f"    Ho = {size.format(n='x.shape[0]', k='KH')}\n"
            f"    Wo = {size.format(n='x.shape[1]', k='KW')}\n"
            f"    out = np.zeros((Ho, Wo){dtype})\n"
            "    for i in range(Ho):\n        for j in range(Wo):\n"
            f"            r, c = {rows}, {cols}\n"
            f"            out[i, j] = np.sum(xp[r:r + KH, c:c + KW] * {kernel})\n"
            "    return out")


NOTEBOOK.add(Exercise(
    "conv2d", 4, ref_conv2d, _conv2d_public, _conv2d_hidden, uses=("zero_pad", "conv_output_size"),
    bugs=[
        Bug("the stride is ignored: the windows move one pixel at a time and the output is too large",
            _conv2d_code(size="conv_output_size({n}, {k}, pad, 1)", rows="i", cols="j")),
        Bug("the windows move one pixel at a time: window (i, j) starts at row i*stride, column j*stride",
            _conv2d_code(rows="i", cols="j")),
        Bug("the stride-1 output is subsampled from the wrong offset: full[stride - 1::stride] drops the first "
            "window; window (i, j) starts at row i*stride, so keep full[::stride, ::stride]",
            _conv2d_code(size="conv_output_size({n}, {k}, pad, 1)", rows="i", cols="j").replace(
                "    return out", "    return out[stride - 1::stride, stride - 1::stride]")),
        Bug("the padding is ignored: zero-pad x (zero_pad(x, pad)) before sliding the kernel",
            _conv2d_code(pad_x="x", size="({n} - {k}) // stride + 1")),
        Bug("the output size ignores the padding: compute H' from H + 2*pad",
            _conv2d_code(size="({n} - {k}) // stride + 1")),
        Bug("the padding is hard-coded to 1: pad by `pad`",
            _conv2d_code(pad_x="zero_pad(x, 1)", size="({n} + 2 - {k}) // stride + 1")),
        Bug("the kernel is flipped: this course's convolution is cross-correlation (no flip)",
            _conv2d_code(kernel="k[::-1, ::-1]")),
        Bug("off by one: the output misses its last row and column (H' = (H + 2*pad - KH) // stride + 1)",
            _conv2d_code(size="({n} + 2 * pad - {k}) // stride")),
        Bug("KW is taken from k.shape[0]: the kernel may be rectangular, KW = k.shape[1]",
            _conv2d_code(kw="k.shape[0]", kernel="k[:, :KW]")),
        Bug("padded on one side only (top and left): pad both sides, zero_pad(x, pad)",
            _conv2d_code(pad_x="np.pad(x, ((pad, 0), (pad, 0)))")),
        Bug("the output is transposed: rows are i (height), columns j (width)",
            _conv2d_code().replace("    return out", "    return out.T")),
        Bug("got integer dtype", _conv2d_code(dtype=", dtype=int"), by_output=False),
    ],
))


# --------------------------------------------------------------------------------------------
# Exercise 5: receptive_field
# --------------------------------------------------------------------------------------------

def _rf_public() -> list[Case]:
    stacks = [([(3, 1)], "one 3x3 layer"), ([(3, 1)] * 2, "two 3x3 layers"), ([(3, 1)] * 3, "three 3x3 layers"),
              ([(5, 1)] * 2, "two 5x5 layers"), ([(3, 2), (3, 1)], "a strided layer first"),
              ([(2, 2)] * 3, "three 2x2 pools"), ([(5, 1), (2, 2), (5, 1), (2, 2)], "conv, pool, conv, pool"),
              ([], "an empty stack")]
    return [Case((layers,), label=f"{label} {layers}") for layers, label in stacks]


def _rf_hidden() -> list[Case]:
    stacks = [([(7, 2), (3, 2), (3, 1), (3, 1)], "a ResNet-like stem"),
              ([(11, 4), (3, 2), (5, 1), (3, 2), (3, 1)], "an AlexNet-like stack"),
              ([(1, 1)] * 3, "1x1 layers"), ([(3, 3)] * 3, "stride 3 everywhere"), ([(3, 1)] * 10, "ten 3x3 layers"),
              ([(4, 2), (1, 1), (2, 3)], "mixed strides"), ([(5, 1), (3, 1), (2, 2)], "a pool last"),
              ([(3, 2), (3, 2), (3, 2)], "three strided layers")]
    return [Case((layers,), label=label) for layers, label in stacks]


_RF_LOOP = "def receptive_field(layers):\n    r, jump = 1, 1\n    for k, s in layers:\n"

NOTEBOOK.add(Exercise(
    "receptive_field", 5, ref_receptive_field, _rf_public, _rf_hidden, kind="int",
    extra=refuse_module(shapes, [(3, 1), (3, 2)], advice=_NO_SHAPES),
    bugs=[
        Bug("the strides are ignored: 1 + sum(k - 1) only holds for stride 1; multiply each (k - 1) by the "
            "jump, the product of the EARLIER layers' strides",
            "def receptive_field(layers):\n    return 1 + sum(k - 1 for k, s in layers)"),
        Bug("each layer's own stride is used too early: add (k - 1) * jump first, then multiply the jump by s",
            _RF_LOOP + "        jump *= s\n        r += (k - 1) * jump\n    return r"),
        Bug("the jump is replaced by each stride (jump = s): it is the product of all earlier strides (jump *= s)",
            _RF_LOOP + "        r += (k - 1) * jump\n        jump = s\n    return r"),
        Bug("the starting 1 is forgotten: a stack of no layers sees 1 pixel",
            "def receptive_field(layers):\n    r, jump = 0, 1\n    for k, s in layers:\n"
            "        r += (k - 1) * jump\n        jump *= s\n    return r"),
        Bug("the kernel sizes are summed: each layer adds (k - 1) * jump to a field that starts at 1",
            "def receptive_field(layers):\n    return sum(k for k, s in layers)"),
        Bug("the kernel sizes are multiplied (or the jump by k instead of the stride): each layer adds "
            "(k - 1) * jump, and the jump grows by the stride s",
            "def receptive_field(layers):\n    r = 1\n    for k, s in layers:\n        r *= k\n    return r"),
    ],
))
