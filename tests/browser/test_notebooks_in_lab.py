"""Notebooks as a student and an instructor run them in JupyterLab: Run All, figures, widgets, Validate."""

from __future__ import annotations

import importlib.util
import json
import time

import pytest

from jlab import (CODE_CELL, cell_with, dialog_text, error_outputs, images, images_loaded, menu, not_run,
                  open_notebook, run_all, validate_button, wait_kernel_idle)
from labkit import REPO, Watched

FAIL_BOX = ".jp-NotebookPanel:not(.lm-mod-hidden) .cnnlab-check.cnnlab-fail"
PASS_BOX = ".jp-NotebookPanel:not(.lm-mod-hidden) .cnnlab-check.cnnlab-pass"


def _widget_views(scope):
    return scope.locator(".jp-OutputArea-output .widget-container, .jp-OutputArea-output .jupyter-widgets")


STUDENT_NOTEBOOKS = sorted(p.relative_to(REPO / "notebooks").as_posix()
                           for p in (REPO / "notebooks").glob("*/*.ipynb"))


@pytest.mark.parametrize("path", STUDENT_NOTEBOOKS)
def test_student_notebook_run_all(path, student_lab, watched):
    """Every cell runs on the stubs, figures render, failing checks show the course's short box
    (outside nbgrader a failing check displays "✘ <exercise>..." and Run All goes on)."""
    page = watched.page
    open_notebook(watched, student_lab, path)
    ps = run_all(page)
    watched.shot("after-run-all")
    assert not (missing := not_run(ps)), f"code cells {missing} did not run (Run All stopped early?)"
    imgs = images(page)
    assert imgs.count() >= 1 and images_loaded(imgs), f"{imgs.count()} figure(s) rendered"
    imgs.first.scroll_into_view_if_needed()
    watched.shot("first-figure", imgs.first)
    errors = error_outputs(page)
    assert not errors, f"tracebacks shown to the student: {[e[:300] for e in errors[:3]]}"
    boxes = page.locator(FAIL_BOX)
    assert boxes.count() >= 3, f"{boxes.count()} failing-check boxes ({FAIL_BOX}) on the stubs"
    texts = boxes.all_inner_texts()
    assert all(t.strip().startswith("✘ ") for t in texts), texts[:3]
    assert all(len(t) < 600 and "Traceback" not in t for t in texts), "a check box is not short"
    boxes.first.scroll_into_view_if_needed()
    watched.shot("failing-check", boxes.first)
    watched.assert_clean()


@pytest.fixture(scope="module")
def solution_02(instructor_lab, browser):
    """The solution notebook 02 opened and run (Run All) once, shared by the tests below."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(60_000)
    w = Watched(ctx.new_page(), "solution_02")
    open_notebook(w, instructor_lab, "solutions/02_filters/02_filters.ipynb")
    w.prompts = run_all(w.page)
    w.shot("after-run-all")
    yield w
    ctx.close()


def test_solution_notebook_run_all_every_check_passes(solution_02):
    page = solution_02.page
    assert not (missing := not_run(solution_02.prompts)), f"code cells {missing} did not run"
    errors = error_outputs(page)
    assert not errors, f"errors in the solution notebook: {[e[:300] for e in errors[:3]]}"
    assert page.locator(FAIL_BOX).count() == 0, page.locator(FAIL_BOX).all_inner_texts()[:3]
    passed = page.locator(PASS_BOX).all_inner_texts()
    assert all(t.strip().startswith("✔ ") for t in passed), passed[:3]
    assert images(page).count() >= 3 and images_loaded(images(page))
    solution_02.assert_clean()


def test_kernel_editor_one_live_figure_that_updates(solution_02):
    page = solution_02.page
    cell = cell_with(page, "kernel_editor(")
    cell.scroll_into_view_if_needed()
    outputs = cell.locator(".jp-OutputArea-output")
    assert _widget_views(cell).count() >= 1, "no live widget in the kernel editor's cell"
    imgs = images(page, cell)
    imgs.first.wait_for()
    assert imgs.count() == 1, f"the kernel editor's cell shows {imgs.count()} figures, not one"
    before = imgs.first.get_attribute("src")
    solution_02.shot("kernel-editor-before", cell)
    box = cell.locator("input[type='number']").nth(4)          # the centre of the 3x3 kernel
    box.fill("5")
    box.press("Enter")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and imgs.first.get_attribute("src") == before:
        time.sleep(0.5)
    after = imgs.first.get_attribute("src")
    solution_02.shot("kernel-editor-after", cell)
    assert after != before, "the figure did not change after editing the kernel"
    assert imgs.count() == 1, f"{imgs.count()} figures after the edit"
    assert not any("Error displaying widget" in t for t in outputs.all_inner_texts())
    solution_02.assert_clean()


def test_widget_cell_after_kernel_restart_shows_no_stale_copy(solution_02):
    """Issue 8: after a restart the cell must not show an error beside a stale static figure."""
    page = solution_02.page
    menu(page, "Kernel", "Restart Kernel…")
    page.locator(".jp-Dialog-button.jp-mod-accept").click()
    wait_kernel_idle(page, 120)
    time.sleep(2)
    cell = cell_with(page, "kernel_editor(")
    cell.scroll_into_view_if_needed()
    solution_02.shot("kernel-editor-after-restart", cell)
    assert images(page, cell).count() <= 1, "a stale static copy beside the widget"
    assert not any("model not found" in t for t in cell.locator(".jp-OutputArea-output").all_inner_texts())
    solution_02.assert_clean()


def test_padding_explorer_sliders_update_the_figure(instructor_lab, watched):
    page = watched.page
    open_notebook(watched, instructor_lab, "solutions/03_padding_stride/03_padding_stride.ipynb")
    ps = run_all(page)
    watched.shot("after-run-all")
    assert not (missing := not_run(ps)), f"code cells {missing} did not run"
    cell = cell_with(page, "padding_explorer(n=")
    cell.scroll_into_view_if_needed()
    sliders = cell.locator(".widget-slider .ui-slider-handle, .widget-slider .noUi-handle")
    assert sliders.count() == 4, f"{sliders.count()} slider handles (n, f, pad, stride expected)"
    imgs = images(page, cell)
    imgs.last.wait_for()
    widget_imgs = imgs.count()
    before = imgs.last.get_attribute("src")
    watched.shot("padding-before", cell)
    sliders.nth(2).click()                      # pad
    page.keyboard.press("ArrowRight")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and imgs.last.get_attribute("src") == before:
        time.sleep(0.5)
    watched.shot("padding-after", cell)
    assert imgs.last.get_attribute("src") != before, "the figure did not change after moving the pad slider"
    assert imgs.count() == widget_imgs
    watched.assert_clean()


def _validate(page) -> str:
    validate_button(page).click()
    return dialog_text(page, timeout=300)


def test_validate_button_on_the_student_notebook_names_failing_exercises(student_lab, watched):
    page = watched.page
    open_notebook(watched, student_lab, "02_filters/02_filters.ipynb")
    text = _validate(page)
    watched.shot("validate-student")
    assert "Success" not in text, text[:500]
    assert "failed" in text.lower() or "error" in text.lower(), text[:500]
    named = [ex for ex in ("corr2d", "conv2d_true") if ex in text]
    assert named, f"the dialog names no exercise: {text[:800]}"
    page.locator(".jp-Dialog-button").last.click()
    watched.assert_clean()


def test_validate_button_on_the_solution_notebook_says_success(instructor_lab, watched):
    page = watched.page
    open_notebook(watched, instructor_lab, "solutions/02_filters/02_filters.ipynb")
    text = _validate(page)
    watched.shot("validate-solution")
    assert "Success! Your notebook passes all the tests." in text, text[:800]
    page.locator(".jp-Dialog-button").last.click()
    watched.assert_clean()


def test_quiz_widget_answers_right_and_wrong(instructor_lab, course_copy, watched):
    if importlib.util.find_spec("cnnlab.widgets.quiz") is None:
        pytest.skip("cnnlab.widgets.quiz (notebook 08's quiz widget) is not in this tree yet")
    from cnnlab import quiz

    q = next(q for q in quiz.questions() if q.kind == "int")     # a count: typed as digits
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": "quiz", "metadata": {}, "outputs": [],
                     "source": f"from cnnlab.widgets.quiz import quiz_widget\nquiz_widget(questions=[{q.number}])"}],
          "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "nbformat": 4, "nbformat_minor": 5}
    (course_copy / "quiz_test.ipynb").write_text(json.dumps(nb))
    page = watched.page
    open_notebook(watched, instructor_lab, "quiz_test.ipynb")
    run_all(page)
    first = page.locator(f"{CODE_CELL} .jp-OutputArea-output").first
    text_in = first.locator(".widget-text input").first
    check = first.locator("button", has_text="Check").first
    text_in.fill("definitely not the answer 12345")
    check.click()
    page.wait_for_selector("text=✘ Not quite")
    watched.shot("quiz-wrong")
    text_in.fill(str(q.answer))
    check.click()
    page.wait_for_selector("text=✔ Correct")
    watched.shot("quiz-right")
    watched.assert_clean()
