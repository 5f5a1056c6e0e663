"""What public and hidden notebook tests call: closeness, gradients, cases, the integrity guard.

Writing an exercise's check (in ``cnnlab/checks/nbXX.py``)::

    import numpy as np

    from cnnlab import grading as G
    from cnnlab import numpy_ref as ref

    def _corr2d_cases(seed, shapes):
        gen = G.rng(seed)
        return [G.Case((gen.standard_normal(xs), gen.standard_normal(ks)), label=f"{xs} * {ks}")
                for xs, ks in shapes]

    _corr2d = G.Check(
        "corr2d",
        reference=ref.corr2d,
        cases={
            "public": [G.Case((np.arange(9.0).reshape(3, 3), np.arange(4.0).reshape(2, 2)), label="d2l 3x3")],
            "hidden": lambda: _corr2d_cases(123, [((5, 6), (3, 2)), ((4, 4), (1, 1)), ((7, 5), (3, 3))]),
        },
        outputs="out",                        # one returned value; ("out", "cache") for a tuple
        bugs=lambda x, k: {"the kernel is flipped (that is true convolution)": ref.conv2d_true(x, k)},
    )

    def check_corr2d(fn, tier="public"):
        \"\"\"Check a student's corr2d(x, k) on the public or the hidden cases.\"\"\"
        _corr2d(fn, tier)              # prints "✔ corr2d: 1 case matches (public)" or raises

For a forward function returning ``(out, cache)`` use ``outputs=("out", "cache")`` (only "out"
is compared); for a backward one ``outputs=("dx", "dw", "db")`` and ``bugs`` may return
``{description: {"dw": array}}``.  ``extra=lambda fn, tier: ...`` adds checks beyond values.
Custom checks can use the building blocks directly::

    out = G.guarded(fn, x, w, b, stride=2, exercise="conv_forward")   # guard + clear errors
    G.assert_close(out[0], expected, name="out", bugs={"stride ignored": wrong})
    G.assert_gradient(dx, lambda x_: ref.conv_forward(x_, w, b)[0], x, dout, name="dx")
    G.passed("conv_backward", "gradients match (hidden)")

Contents:

- :func:`rel_error`, :func:`assert_close` (``closeness``): AssertionError-only comparison whose
  message says what is wrong: None returned, shape (with hints), dtype, NaN, where and how much.
- :func:`numeric_gradient`, :func:`assert_gradient` (``gradients``): central differences.
- :func:`rng`, :func:`conv_case`, :func:`pool_case`, :func:`norm_case`, :func:`affine_case`
  (``cases``): seeded local generators, sizes that fit, small enough for loops.
- :func:`guarded`, :func:`run_guarded` (``guard``): run a student function on copies of its
  inputs; forbidden code (``cnnlab.numpy_ref``, ``cnnlab.torch_ref``, torch, scipy.signal /
  scipy.ndimage) that runs during the call fails the exercise; student exceptions, in-place
  changes of inputs become AssertionError; warnings are captured.
- :func:`passed` (``report``): the one success line.
- :class:`Check`, :class:`Case` (``check``): the public/hidden tier framework above.
"""

from .cases import (
    AffineCase,
    ConvCase,
    NormCase,
    PoolCase,
    affine_case,
    conv_case,
    fit_input_size,
    norm_case,
    pool_case,
    random_conv_case,
    rng,
)
from .check import TIERS, Case, Check
from .closeness import assert_close, describe, rel_error, set_tier
from .gradients import assert_gradient, numeric_gradient
from .guard import DEFAULT_FORBID, FORBID_GROUPS, guarded, run_guarded
from .report import passed

__all__ = [
    "rel_error", "assert_close", "describe", "set_tier",
    "numeric_gradient", "assert_gradient",
    "rng", "conv_case", "random_conv_case", "pool_case", "norm_case", "affine_case", "fit_input_size",
    "ConvCase", "PoolCase", "NormCase", "AffineCase",
    "guarded", "run_guarded", "DEFAULT_FORBID", "FORBID_GROUPS",
    "passed",
    "Case", "Check", "TIERS",
]  # fmt: skip
