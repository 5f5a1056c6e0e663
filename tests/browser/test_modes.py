"""Student and instructor modes: what each JupyterLab offers (scripts/lab.sh student|instructor)."""

from __future__ import annotations

import urllib.error

import pytest

from jlab import open_notebook, validate_button


def _nbgrader_menu_items(page) -> list[str]:
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").first.click()
    items = page.locator("#jp-mainmenu-nbgrader .lm-Menu-item:visible .lm-Menu-itemLabel").all_inner_texts()
    page.keyboard.press("Escape")
    return [t.strip() for t in items if t.strip()]


def _right_sidebar_titles(page) -> list[str]:
    return [t.strip() for t in page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab").evaluate_all(
        "tabs => tabs.map(t => t.getAttribute('title') || t.innerText)")]


def test_student_sees_validate_and_assignment_list_only(student_lab, watched):
    page = watched.page
    open_notebook(watched, student_lab, "02_filters/02_filters.ipynb")
    watched.shot("student-lab")
    items = _nbgrader_menu_items(page)
    assert items == ["Assignment List"], f"a student's Nbgrader menu holds {items}"
    assert not any("Create Assignment" in t for t in _right_sidebar_titles(page)), _right_sidebar_titles(page)
    assert validate_button(page).count() == 1, "no Validate button"
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Assignment List").first.click()
    page.wait_for_selector("text=Released assignments")
    watched.shot("student-assignment-list")
    assert page.locator("text=Error fetching courses").count() == 0
    with pytest.raises(urllib.error.HTTPError) as err:      # no formgrader behind the menu either
        student_lab.api("formgrader/api/assignments")
    assert err.value.code == 404
    watched.assert_clean()


def test_instructor_sees_formgrader_and_create_assignment(instructor_lab, watched):
    page = watched.page
    open_notebook(watched, instructor_lab, "solutions/02_filters/02_filters.ipynb")
    items = _nbgrader_menu_items(page)
    assert "Formgrader" in items and "Assignment List" in items and "Course List" in items, items
    assert any("Create Assignment" in t for t in _right_sidebar_titles(page)), _right_sidebar_titles(page)
    page.locator(".jp-SideBar.jp-mod-right .lm-TabBar-tab[title*='Create Assignment']").first.click()
    watched.shot("instructor-create-assignment")
    page.locator(".lm-MenuBar-itemLabel", has_text="Nbgrader").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Course List").first.click()
    page.get_by_text("cnnlab", exact=True).first.wait_for(timeout=60_000)   # the course, from the config
    watched.shot("instructor-course-list")
    assert page.locator("text=Error fetching courses").count() == 0
    assert instructor_lab.api("formgrader/api/assignments") is not None
    watched.assert_clean()
