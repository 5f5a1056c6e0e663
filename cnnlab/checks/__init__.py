"""The exercise records of every notebook: ``cnnlab.checks.nbNN`` for assignment ``NN_topic``.

Each module holds one :class:`~cnnlab.grading.exercise.Exercise` per exercise (reference, public
and hidden cases, bug table) in ``NOTEBOOK``; test cells call ``nbNN.check("name", fn)`` and
``nbNN.check("name", fn, tier="hidden")``, the last cell ``nbNN.summary(globals())``.
:mod:`cnnlab.checks.registry` finds the records for the grader, the sample class and the tests.
Checks depend on ``cnnlab.grading`` and the references (``numpy_ref``, ``torch_ref``, ``shapes``),
never the other way round.
"""
