"""Students without a roster entry are shown by their id in formgrader, never as "None, None".

Formgrader writes a student's name as ``last_name + ", " + first_name`` and puts "None" for a
missing one, so every student that autograde (the CLI's or formgrader's button) adds to the
gradebook without a roster shows as "None, None". :func:`install` makes the gradebook store such a
student (both names missing when the student is added or updated) with the id as last name and
:data:`NO_ROSTER` as first name: formgrader then lists ``alice, (no roster entry)``. Importing a
roster (``python -m autograder roster``) writes the real names over these.
"""

from __future__ import annotations

NO_ROSTER = "(no roster entry)"


def _fill(mapper, connection, target) -> None:
    cls = type(target)
    if cls.__name__ != "Student" or cls.__module__ != "nbgrader.api":
        return
    if target.first_name is None and target.last_name is None and target.id:
        target.last_name = target.id
        target.first_name = NO_ROSTER


def install() -> None:
    """Register :func:`_fill` with SQLAlchemy for every gradebook this process opens (idempotent)."""
    from sqlalchemy import event
    from sqlalchemy.orm import Mapper

    for name in ("before_insert", "before_update"):
        if not event.contains(Mapper, name, _fill):
            event.listen(Mapper, name, _fill)
