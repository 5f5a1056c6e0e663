"""Find the exercise records of an assignment: ``exercises("02_filters")``.

Assignment ``NN_topic`` has its records in ``cnnlab.checks.nbNN`` (a :class:`~cnnlab.grading.Notebook`
named ``NOTEBOOK``).  The grader, the sample class and the tests read the records through here.
"""

from __future__ import annotations

import importlib
import pkgutil

from cnnlab.grading.exercise import Exercise, Notebook

__all__ = ["assignments", "exercises", "notebook"]


def _module_name(assignment: str) -> str:
    number = assignment.split("_", 1)[0]
    if not number.isdigit():
        raise ValueError(f"assignment names start with their number (01_history), got {assignment!r}")
    return f"cnnlab.checks.nb{int(number):02d}"


def notebook(assignment: str) -> Notebook:
    """Return the :class:`Notebook` of exercise records for ``assignment``."""
    try:
        module = importlib.import_module(_module_name(assignment))
    except ModuleNotFoundError as exc:
        raise KeyError(f"no checks module for assignment {assignment!r} ({_module_name(assignment)})") from exc
    nb = module.NOTEBOOK
    if nb.assignment != assignment:
        raise KeyError(f"{_module_name(assignment)} holds the checks of {nb.assignment!r}, not {assignment!r}")
    return nb


def exercises(assignment: str) -> list[Exercise]:
    """Return the exercise records of ``assignment`` in notebook order."""
    return list(notebook(assignment).exercises.values())


def assignments() -> list[str]:
    """Return the assignments that have a checks module, in order."""
    import cnnlab.checks as package

    names = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("nb") and info.name[2:].isdigit():
            module = importlib.import_module(f"cnnlab.checks.{info.name}")
            if hasattr(module, "NOTEBOOK"):
                names.append(module.NOTEBOOK.assignment)
    return names


def index_markdown() -> str:
    """The README's exercise index: exercise -> notebook, check, reference, bug table (generated)."""
    rows = ["| exercise | notebook | check (test cells) | reference | bug table |", "|---|---|---|---|---|"]
    for assignment in assignments():
        module = _module_name(assignment).rsplit(".", 1)[1]
        for ex in exercises(assignment):
            ref = ex.reference
            where = f"`{ref.__module__}.{ref.__qualname__}`" if ref is not None else "custom check"
            rows.append(f"| `{ex.name}` (Ex. {ex.number}) | {assignment} | `{module}.check(\"{ex.name}\", ...)` "
                        f"({len(ex.grade_ids)}) | {where} | `cnnlab/checks/{module}.py`, {len(ex.bugs)} bugs |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m cnnlab.checks.registry: print the README's exercise index
    print(index_markdown())
