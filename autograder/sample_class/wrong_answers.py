"""Realistic wrong answers per exercise, read from the exercise records' bug tables.

``wrong_answers(assignment)`` returns ``{answer grade_id: [(description, code, lost test grade_ids)]}``
built from ``cnnlab.checks`` (each record's :class:`~cnnlab.grading.exercise.Bug` entries, in
order); the sample class uses the first entry of each exercise.  The toy fixture course
(``00_toy``, used by the tests) has no records and keeps its own small table here.  Exercises
without an entry get a generic wrong answer (the function returns its first argument).
"""

from __future__ import annotations

TOY: dict[str, list[tuple[str, str, list[str]]]] = {
    "ex_scale": [("adds instead of multiplying", "def scale(x, a):\n    return x + a",
                  ["test_scale_public", "test_scale_hidden"])],
    "ex_corr1d": [("one output too few", "def corr1d(x, k):\n"
                   "    return np.array([float(np.dot(x[i:i + len(k)], k)) for i in range(len(x) - len(k))])",
                   ["test_corr1d_public", "test_corr1d_hidden"])],
}


def wrong_answers(assignment: str) -> dict[str, list[tuple[str, str, list[str]]]]:
    """Return ``{answer grade_id: [(description, code, lost test grade_ids), ...]}`` for ``assignment``."""
    if assignment == "00_toy":
        return TOY
    from cnnlab.checks import registry

    try:
        nb = registry.notebook(assignment)
    except KeyError:
        return {}
    table = {}
    for ex in nb.exercises.values():
        rows = []
        for bug in ex.bugs:
            lost = list(ex.cells_lost_by(bug)) + [g for other in bug.loses for g in nb[other].grade_ids]
            rows.append((bug.says, bug.code, lost))
        if rows:
            table[ex.name] = rows
    return table
