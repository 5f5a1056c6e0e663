"""What public and hidden notebook tests call: closeness, gradients, cases, the integrity guard.

Writing an exercise's check: one record per exercise, in ``cnnlab/checks/nbNN.py``
(see :mod:`cnnlab.grading.exercise` and ``cnnlab/checks/nb01.py`` for a whole notebook)::

    from cnnlab.grading import rng
    from cnnlab.grading.exercise import Bug, Case, Exercise, Notebook
    from cnnlab.numpy_ref import corr2d as ref_corr2d     # the reference, imported at the top

    NOTEBOOK = Notebook("02_filters")
    check, summary = NOTEBOOK.check, NOTEBOOK.summary

    def _public():
        return [Case((np.arange(9.0).reshape(3, 3), np.array([[0.0, 1], [2, 3]])), label="the 3x3 example")]

    def _hidden():
        g = rng(123)
        return [Case((g.standard_normal((5, 6)), g.standard_normal((3, 2))), label="a rectangular kernel")]

    NOTEBOOK.add(Exercise("corr2d", 2, ref_corr2d, _public, _hidden, bugs=[
        Bug("kernel flipped: that is true convolution, not cross-correlation",
            "def corr2d(x, k):\n    k = k[::-1, ::-1]\n    ...", fix="use k as it is"),
    ]))

A test cell is ``nb02.check("corr2d", corr2d)`` (or ``tier="hidden"``); the notebook's last cell
``nb02.summary(globals())``.  The building blocks below remain available for ``extra`` and
``custom`` properties.

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
- :class:`Exercise`, :class:`Bug`, :class:`Case`, :class:`Notebook`, :class:`Problem`,
  :class:`CheckFailed` (``exercise``): one record per exercise, the one way to check;
  :func:`count_user_lines`, :func:`calls_into`, :func:`refuse_module` (``probes``).
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
from .closeness import assert_close, describe, rel_error, set_tier
from .exercise import TIERS, Bug, Case, CheckFailed, Exercise, Notebook, Outcome, Problem, under_nbgrader
from .gradients import assert_gradient, numeric_gradient
from .probes import calls_into, count_user_lines, refuse_module
from .guard import DEFAULT_FORBID, FORBID_GROUPS, guarded, run_guarded
from .report import passed

__all__ = [
    "rel_error", "assert_close", "describe", "set_tier",
    "numeric_gradient", "assert_gradient",
    "rng", "conv_case", "random_conv_case", "pool_case", "norm_case", "affine_case", "fit_input_size",
    "ConvCase", "PoolCase", "NormCase", "AffineCase",
    "guarded", "run_guarded", "DEFAULT_FORBID", "FORBID_GROUPS",
    "passed",
    "Exercise", "Bug", "Case", "Notebook", "Outcome", "Problem", "CheckFailed", "TIERS", "under_nbgrader",
    "count_user_lines", "calls_into", "refuse_module",
]  # fmt: skip
