"""One check per notebook exercise, ``check_<exercise>(student_fn, tier="public"|"hidden")``.

The public tier uses the notebook's own cases; the hidden tier uses new seeds, shapes, strides and
paddings and the integrity guard.  A check prints one line when it passes and raises
AssertionError with a message naming the likely bug when it fails.  Checks depend on
``cnnlab.grading`` and the references (``numpy_ref``, ``torch_ref``), never the other way round.
"""
