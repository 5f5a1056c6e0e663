"""Helpers for testing notebooks through the grader (used by tests/test_notebooks.py).

:class:`QuickGrader` grades a notebook object through nbgrader (repair, limited kernel, hidden
tests) in a private work folder, reusing one template per assignment, and returns the scores per
grade_id and the executed notebook.  :meth:`QuickGrader.grade_variant` answers "what does the
reference solution score with this one answer cell replaced by that code?".
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import nbformat

from .config import Course, Limits
from .engine import Result, build_template, check_sandbox, default_protect, grade_submission
from .util import env_path
from .sample_class import answer_code


class QuickGrader:
    """Grade notebooks of ``course`` without touching its work folder or gradebook."""

    def __init__(self, course: Course, limits: Limits | None = None) -> None:
        env_path()
        self.tmp = Path(tempfile.mkdtemp(prefix="cnnlab-quickgrade-"))
        self.course = course.with_(workdir=self.tmp / "work", notebooks=self.tmp / "release", db_url=None,
                                   **({"limits": limits} if limits else {}))
        self.course.workdir.mkdir(parents=True)
        self._templates: dict = {}
        self._n = 0
        # sandboxed like the real tool; CNNLAB_UNSAFE_NO_SANDBOX=1 where no sandbox can start
        self.sandboxed = check_sandbox(os.environ.get("CNNLAB_UNSAFE_NO_SANDBOX") == "1", echo=lambda *_: None)

    def template(self, assignment: str):
        if assignment not in self._templates:
            tpl = build_template(self.course, [assignment])
            # keep it outside .work so that later builds do not collide
            self._templates[assignment] = tpl
        return self._templates[assignment]

    def release_notebook(self, assignment: str) -> nbformat.NotebookNode:
        """The generated student version of the assignment's (single) notebook."""
        tpl = self.template(assignment)
        path = sorted((tpl.release / assignment).glob("*.ipynb"))[0]
        return nbformat.read(path, as_version=4)

    def solution_notebook(self, assignment: str) -> nbformat.NotebookNode:
        """The reference answers in the student version (what a perfect student submits)."""
        nb = self.release_notebook(assignment)
        src = nbformat.read(self.course.source_notebooks(assignment)[0], as_version=4)
        sols = {c.metadata["nbgrader"]["grade_id"]: c.source for c in src.cells
                if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
        for c in nb.cells:
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            if gid in sols:
                c.source = answer_code(sols[gid])
        return nb

    def grade(self, assignment: str, nb: nbformat.NotebookNode) -> tuple[Result, nbformat.NotebookNode | None]:
        """Grade ``nb`` as a submission; return the result and the autograded notebook."""
        self._n += 1
        student = f"s{self._n:04d}"
        sub = self.tmp / "in" / student / assignment
        sub.mkdir(parents=True)
        name = self.course.source_notebooks(assignment)[0].name
        nbformat.write(nb, sub / name)
        res = grade_submission(self.course, self.template(assignment), student, assignment, sub,
                               default_protect(self.course), self.sandboxed)
        out = self.course.autograded / student / assignment / name
        return res, (nbformat.read(out, as_version=4) if out.exists() else None)

    def grade_variant(self, assignment: str, replacements: dict[str, str]) -> dict[str, float]:
        """Points per test grade_id of the reference solution with some answer cells replaced."""
        nb = self.solution_notebook(assignment)
        for c in nb.cells:
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            if gid in replacements:
                c.source = replacements[gid]
        unknown = set(replacements) - {c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells}
        if unknown:
            raise ValueError(f"no answer cell with grade_id {sorted(unknown)} in {assignment}")
        res, _ = self.grade(assignment, nb)
        return {k.split("/", 1)[1]: v[0] for k, v in res.cells.items()}

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)
