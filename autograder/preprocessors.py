"""nbgrader preprocessors used by the course.

- :class:`NamedStubClearSolutions`: the uniform stub names the exercise:
  ``raise NotImplementedError("Exercise: <name>")``.
- ``GuardedExecute`` (the sandboxed, limited Execute step) lives in :mod:`autograder.execute`.
- :class:`ScrubFeedback`: removes hidden-test code and reference-code frames from tracebacks.
- :class:`LeakCheck`: the last step of generate_assignment; refuses a student version that holds
  outputs, delimiters or lines of a solution or hidden-test region (so formgrader's Generate
  button fails on a leak exactly as ``python -m autograder release`` does).
- :class:`ReleasedOverwriteCells`: autograde's OverwriteCells without nbgrader's false report
  "checksum ... has changed!" for every hidden-test cell the student never touched.
- :class:`FeedbackClearHiddenTests`, :class:`FeedbackGetGrades`: nbgrader's steps of the feedback
  chain, taking the exporter's ``display_data_priority`` (nbgrader's base class re-declares it
  without the config tag, so every feedback run logged "Config option display_data_priority not
  recognized").
"""

from __future__ import annotations

import os
import re

from nbgrader.preprocessors import (ClearHiddenTests, ClearSolutions, GetGrades, NbGraderPreprocessor,
                                    OverwriteCells)
from nbgrader.utils import is_grade, is_locked, is_solution
from traitlets import List, Unicode

from .leaks import LeakError, notebook_leaks, secret_lines, text_leaks

EXERCISE_PREFIXES = ("exercise_", "ex_", "solution_", "sol_", "answer_", "impl_")


def exercise_name(grade_id: str) -> str:
    """Return the exercise named by a solution cell's grade_id (``ex_corr2d`` -> ``corr2d``)."""
    name = grade_id
    for prefix in EXERCISE_PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            name = name[len(prefix):]
            break
    return name


class NamedStubClearSolutions(ClearSolutions):
    """ClearSolutions whose code stub names the exercise (from the cell's grade_id)."""

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type != "code" or not grade_id:
            return super().preprocess_cell(cell, resources, cell_index)
        saved = dict(self.code_stub)
        stub = f'# YOUR CODE HERE\nraise NotImplementedError("Exercise: {exercise_name(grade_id)}")'
        self.code_stub = {**saved, resources.get("language", "python"): stub}
        try:
            return super().preprocess_cell(cell, resources, cell_index)
        finally:
            self.code_stub = saved


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


_PRIORITY = ["text/html", "application/pdf", "text/latex", "image/svg+xml", "image/png", "image/jpeg",
             "text/plain"]


class _TakesPriority(NbGraderPreprocessor):
    """nbgrader's ``NbGraderPreprocessor.display_data_priority``, configurable again (nbconvert's
    HTMLExporter configures ``NbConvertBase.display_data_priority`` for every step it runs)."""

    display_data_priority = List(_PRIORITY).tag(config=True)


FeedbackPreprocessor = _TakesPriority   # the base of a step of the course's feedback chain (quiet)


class FeedbackClearHiddenTests(_TakesPriority, ClearHiddenTests):
    """nbgrader's ClearHiddenTests, quiet in the feedback chain."""


class FeedbackGetGrades(_TakesPriority, GetGrades):
    """nbgrader's GetGrades, quiet in the feedback chain."""


class ReleasedOverwriteCells(OverwriteCells):
    """nbgrader's OverwriteCells that reports a locked cell as changed only when the student changed it.

    The gradebook keeps the checksum of each locked cell as the source notebook has it, hidden
    tests included; the student received the cell with its hidden tests removed, so nbgrader
    (issue 1961 on its tracker) logs "Attribute 'checksum' for cell ... has changed!" for every
    hidden-test cell of every submission before restoring it. Here a locked cell whose source is
    exactly what was released (the source cell less its hidden tests) is restored without a
    report; a cell that differs in any other way is reported and restored as before.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        from nbgrader.api import MissingEntry

        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None and cell.cell_type in ("code", "markdown"):
            try:
                source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source_cell = None
            if (source_cell is not None and source_cell.locked and is_locked(cell)
                    and cell.cell_type == source_cell.cell_type and cell.source != source_cell.source
                    and cell.source == self._released(source_cell)):
                cell.source = source_cell.source
        return super().preprocess_cell(cell, resources, cell_index)

    def _released(self, source_cell) -> str | None:
        import nbformat

        released = nbformat.v4.new_code_cell(source_cell.source)
        released.metadata["nbgrader"] = {"grade": True, "grade_id": source_cell.name, "locked": True}
        try:
            released, _ = ClearHiddenTests(parent=self).preprocess_cell(released, {}, 0)
        except RuntimeError:
            return None
        return released.source if released.source != source_cell.source else None


class ScrubFeedback(_TakesPriority, NbGraderPreprocessor):
    """Remove hidden-test lines and reference-code frames from error tracebacks in feedback.

    Every traceback entry that quotes a line of a hidden test (``hidden_lines``) or a frame from
    a file of the course package is dropped; test cells keep only the final error line.
    """

    hidden_lines = List(Unicode()).tag(config=True)
    hidden_marker = Unicode("(hidden test code not shown)").tag(config=True)

    def preprocess(self, nb, resources):
        self._hidden = [h for h in self.hidden_lines if h.strip()] or assignment_hidden_lines(self, resources)
        return super().preprocess(nb, resources)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        is_test = is_grade(cell) and not is_solution(cell)
        hidden = getattr(self, "_hidden", None)
        if hidden is None:
            hidden = [h for h in self.hidden_lines if h.strip()]
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            tb = list(out.get("traceback", []))
            if is_test:
                tb = tb[-1:]
            kept = []
            for entry in tb:
                plain = _ANSI.sub("", entry)
                if any(h in plain for h in hidden):
                    kept.append(self.hidden_marker)
                elif re.search(r"(site-packages|cnnlab/|autograder/)[^\n]*\.py", plain) and entry is not tb[-1]:
                    continue
                else:
                    kept.append(entry)
            out["traceback"] = kept
            for h in hidden:
                if h in out.get("evalue", ""):
                    out["evalue"] = out["evalue"].replace(h, self.hidden_marker)
        return cell, resources


class StderrNotFatal(NbGraderPreprocessor):
    """Turn stderr output of test cells into stdout, so that a warning printed while a check
    passes does not zero the cell (nbgrader fails any test cell with stderr output)."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and is_grade(cell) and not is_solution(cell):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    out["name"] = "stdout"
        return cell, resources


def _source_folder(pp: NbGraderPreprocessor, resources: dict) -> str | None:
    """``<CourseDirectory.source_directory>/<assignment>`` behind ``resources`` (None if unknown)."""
    info = resources.get("nbgrader", {})
    if not info.get("assignment"):
        return None
    src_dir = pp.config.CourseDirectory.get("source_directory", "source")
    root = pp.config.CourseDirectory.get("root", os.getcwd())
    folder = os.path.join(root, src_dir, info["assignment"])
    return folder if os.path.isdir(folder) else None


def _source_secrets(pp: NbGraderPreprocessor, resources: dict, whole_assignment: bool = False) -> dict[str, set[str]]:
    """Secret lines of the nbgrader source notebook behind ``resources`` (of every notebook of
    its assignment with ``whole_assignment``); empty when the source is not found."""
    import nbformat

    secrets: dict[str, set[str]] = {"solution": set(), "hidden": set()}
    folder = _source_folder(pp, resources)
    if folder is None:
        return secrets
    name = f"{resources.get('nbgrader', {}).get('notebook', '')}.ipynb"
    for entry in sorted(os.listdir(folder)):
        if entry.endswith(".ipynb") and (whole_assignment or entry == name):
            for k, v in secret_lines(nbformat.read(os.path.join(folder, entry), as_version=4)).items():
                secrets[k] |= v
    return secrets


def assignment_hidden_lines(pp: NbGraderPreprocessor, resources: dict) -> list[str]:
    """The hidden-test lines of every notebook of the assignment behind ``resources``, read from
    its nbgrader sources (what ``feedback.hidden_lines`` gives for it); empty when not found."""
    return sorted(_source_secrets(pp, resources, whole_assignment=True)["hidden"])


LEAKS: list[str] = []   # what LeakCheck refused in this process, newest last (read by release)


class LeakCheck(NbGraderPreprocessor):
    """Fail generate_assignment when the student version leaks (see :mod:`autograder.leaks`).

    Runs last in ``GenerateAssignment.preprocessors``: the generated notebook must hold no
    output, delimiter or line of its source's solution and hidden-test regions, and the other
    files of the source folder (copied to the release as they are) no such line of any of the
    assignment's notebooks. The secrets are read from the sources themselves.
    """

    def preprocess(self, nb, resources):
        info = resources.get("nbgrader", {})
        name = f"{info.get('assignment', '?')}/{info.get('notebook', '?')}.ipynb"
        problems = [f"{name}: {p}" for p in notebook_leaks(nb, _source_secrets(self, resources))]
        folder = _source_folder(self, resources)
        if folder is not None:
            secrets = _source_secrets(self, resources, whole_assignment=True)
            for dirpath, dirnames, filenames in os.walk(folder):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                for f in sorted(filenames):
                    if f.endswith(".ipynb") or f.startswith("."):
                        continue
                    path = os.path.join(dirpath, f)
                    try:
                        with open(path, encoding="utf-8") as fh:
                            text = fh.read()
                    except (UnicodeDecodeError, OSError):
                        continue
                    rel = os.path.relpath(path, os.path.dirname(folder))
                    problems += [f"{rel}: {p}" for p in text_leaks(text, secrets)]
        if problems:
            LEAKS[:] = (LEAKS + problems)[-200:]
            raise LeakError("the student version leaks solution or hidden-test material:\n  "
                            + "\n  ".join(problems))
        return nb, resources
