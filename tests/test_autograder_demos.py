"""Demonstration cells tagged ``skip-in-grading``: the grader shows a note instead of running them,
only where the instructor's source says so, and only where nothing graded needs them."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import demos
from autograder.config import Course
from autograder.release import release
from autograder.testing import QuickGrader

TOY = Path(__file__).parent / "fixtures" / "toy" / "solutions"
A = "00_toy"


def _code(src: str, tags=()) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(src)
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def test_problems_name_what_a_run_cell_needs_from_a_skipped_one():
    nb = nbformat.v4.new_notebook(cells=[
        _code("import numpy as np\nBASE = 2"),
        _code("import torch\nDEMO = torch.zeros(3)\nfor step in range(3):\n    pass", tags=[demos.SKIP_TAG]),
        _code("print(DEMO.shape, BASE)", tags=[demos.SKIP_TAG]),            # a skipped cell may use it
        _code("def f(x, step=1):\n    n = len(x)\n    return [v * step for v in x] + [n, BASE]"),  # locals only
        _code("print(f([1]), torch.__version__)"),                           # needs the skipped import
    ])
    found = demos.problems(nb)
    assert len(found) == 1 and "cell 4 reads 'torch'" in found[0] and "cell 1" in found[0], found
    nb.cells[4].source = "print(f([1]))"
    assert demos.problems(nb) == []
    # answer and test cells are never skipped, whatever their tags
    graded = _code("assert True", tags=[demos.SKIP_TAG])
    graded.metadata["nbgrader"] = {"grade": True, "grade_id": "t", "points": 1, "solution": False, "locked": True}
    assert not demos.is_skipped(graded) and demos.is_skipped(nb.cells[1])


@pytest.fixture()
def course(tmp_path):
    sol = tmp_path / "solutions"
    shutil.copytree(TOY, sol)
    path = sol / A / f"{A}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(8, _code("print('the demo ran')", tags=[demos.SKIP_TAG]))
    nb.cells.insert(9, _code("print('the plain cell ran')"))
    nbformat.write(nb, path)
    return Course(solutions=sol, notebooks=tmp_path / "release", workdir=tmp_path / "work")


def _outputs(nb, text: str) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
            and any(text in str(o.get("text", "")) for o in c.get("outputs", []))]


@pytest.mark.sandbox
def test_the_grader_skips_the_instructors_demo_cells_only(course):
    q = QuickGrader(course)
    try:
        nb = q.solution_notebook(A)
        res, graded = q.grade(A, nb)
        assert res.score == res.max_score == 6, res.summary()
        assert _outputs(graded, "the plain cell ran") and not _outputs(graded, "the demo ran")
        assert _outputs(graded, demos.NOTE.strip()), "the skipped cell must say why it has no output"

        # a student who edits the demo cell gets it run (it is no longer the instructor's cell)
        edited = q.solution_notebook(A)
        i = next(i for i, c in enumerate(edited.cells) if c.source == "print('the demo ran')")
        edited.cells[i].source = "print('the demo ran', 'with my change')"
        _, graded = q.grade(A, edited)
        assert _outputs(graded, "with my change")

        # a tag a student adds to a test cell does nothing: the failing test still runs and fails
        tagged = q.solution_notebook(A)
        for c in tagged.cells:
            gid = c.metadata.get("nbgrader", {}).get("grade_id")
            if gid == "ex_scale":
                c.source = "def scale(x, a):\n    return x"
            if gid and gid.startswith("test_scale"):
                c.metadata["tags"] = [demos.SKIP_TAG]
        res, _ = q.grade(A, tagged)
        assert res.cells[f"{A}/test_scale_public"][0] == 0 and res.cells[f"{A}/test_scale_hidden"][0] == 0, res.cells
    finally:
        q.close()


def test_release_refuses_a_notebook_whose_run_cells_need_a_skipped_one(course):
    path = course.solutions / A / f"{A}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(9, _code("DEMO_VALUE = 3", tags=[demos.SKIP_TAG]))
    nb.cells.insert(10, _code("print(DEMO_VALUE)"))
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="DEMO_VALUE"):
        release([A], course=course)


def test_the_course_notebooks_skip_only_what_nothing_graded_needs():
    root = Path(__file__).resolve().parent.parent / "solutions"
    tagged = 0
    for path in sorted(root.glob("*/*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        assert demos.problems(nb) == [], path.name
        tagged += sum(demos.is_skipped(c) for c in nb.cells)
    assert tagged >= 10   # the PyTorch twins and timings of 02, 03, 04 and 07


@pytest.mark.sandbox
def test_nbgraders_own_autograde_skips_them_too(course, tmp_path):
    """formgrader's Autograde button (nbgrader with the course's configuration) reads the demo
    cells from the source notebook and skips them as the CLI does."""
    from nbgrader.apps import NbGraderAPI

    from autograder.config import course_config
    from autograder.util import env_path, quiet

    release([A], course=course)
    q = QuickGrader(course)
    try:
        nb = q.solution_notebook(A)
    finally:
        q.close()
    sub = course.workdir / "submitted" / "s1" / A
    sub.mkdir(parents=True)
    nbformat.write(nb, sub / f"{A}.ipynb")
    env_path()
    with quiet():
        out = NbGraderAPI(config=course_config(course.workdir, solutions=course.solutions,
                                               notebooks=course.notebooks)).autograde(A, "s1", force=True, create=True)
    assert out["success"], out.get("error") or out.get("log")
    graded = nbformat.read(course.workdir / "autograded" / "s1" / A / f"{A}.ipynb", as_version=4)
    assert _outputs(graded, demos.NOTE.strip()) and not _outputs(graded, "the demo ran")
    assert _outputs(graded, "the plain cell ran")
