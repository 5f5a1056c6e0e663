"""What a user does in JupyterLab, as Playwright steps (menus, toolbar, cells)."""

from __future__ import annotations

import time

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"     # the notebook in the current tab
CELL = f"{PANEL} .jp-Notebook .jp-Cell"
CODE_CELL = f"{PANEL} .jp-Notebook .jp-CodeCell"


def open_notebook(w, lab, path: str) -> None:
    """Open ``path`` (relative to the server root) and wait for its kernel to be idle."""
    w.page.goto(lab.url(f"lab/tree/{path}?reset"))     # ?reset: no tabs restored from earlier tests
    w.page.wait_for_selector(CODE_CELL, timeout=120_000)
    wait_kernel_idle(w.page, 180)


def kernel_status(page) -> str:
    """The kernel's status as the status bar shows it ("Idle", "Busy", "Starting", ...)."""
    texts = page.locator(".jp-StatusBar-Widget").all_inner_texts()
    for t in texts:
        if "|" in t and "(" in t:
            return (t.rsplit("|", 1)[-1].strip().splitlines() or [""])[0].strip()
    return ""


def wait_kernel_idle(page, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while kernel_status(page) != "Idle":
        if time.monotonic() > deadline:
            raise AssertionError(f"the kernel is not idle after {timeout} s: {kernel_status(page)!r}")
        time.sleep(0.5)


def menu(page, top: str, item: str) -> None:
    """Click ``top`` in the menu bar, then ``item`` in its menu."""
    page.locator(".lm-MenuBar-itemLabel", has_text=top).first.click()
    page.locator(".lm-Menu-itemLabel", has_text=item).first.click()


def prompts(page) -> list[str]:
    """The input prompts of the code cells ("[3]:", "[*]:", "[ ]:"); "" for an empty cell (a
    student notebook's hidden-test cells are empty: running them gives no execution count)."""
    return page.locator(CODE_CELL).evaluate_all(
        """cells => cells.map(c => {
             const src = (c.querySelector('.cm-content') || {}).innerText || '';
             const p = c.querySelector('.jp-InputArea-prompt');
             return src.trim() ? (p ? p.innerText : '?') : '';
           })""")


def run_all(page, timeout: float = 300) -> list[str]:
    """Run > Run All Cells; wait until nothing runs (3 s quiet); return the input prompts."""
    menu(page, "Run", "Run All Cells")
    deadline = time.monotonic() + timeout
    quiet_since = None
    started = False
    while time.monotonic() < deadline:
        ps = prompts(page)
        started = started or any(("*" in p or any(ch.isdigit() for ch in p)) for p in ps)
        busy = not started or any("*" in p for p in ps) or kernel_status(page) != "Idle"
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > 3:
            return ps
        time.sleep(0.5)
    raise AssertionError(f"Run All did not finish in {timeout} s; prompts: {prompts(page)}")


def not_run(ps: list[str]) -> list[int]:
    """Indices of non-empty code cells without an execution count."""
    return [i for i, p in enumerate(ps) if p and not any(ch.isdigit() for ch in p)]


def error_outputs(page) -> list[str]:
    """Texts of error (traceback) outputs in the open notebook."""
    loc = page.locator(f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return [t for t in loc.all_inner_texts() if "Traceback" in t or "Error" in t]


def images(page, scope=None):
    """The rendered images (matplotlib figures) in the notebook or in ``scope``."""
    return scope.locator(".jp-OutputArea-output img") if scope else page.locator(f"{PANEL} .jp-OutputArea-output img")


def images_loaded(loc) -> bool:
    return all(loc.nth(i).evaluate("im => im.complete && im.naturalWidth > 0") for i in range(loc.count()))


def cell_with(page, text: str):
    """The code cell whose source contains ``text``."""
    cell = page.locator(CODE_CELL).filter(has=page.locator(".jp-InputArea-editor", has_text=text))
    assert cell.count() >= 1, f"no code cell contains {text!r}"
    return cell.first


def dialog_text(page, timeout: float = 300) -> str:
    dlg = page.locator(".jp-Dialog-content")
    dlg.wait_for(timeout=timeout * 1000)
    return dlg.inner_text()


def validate_button(page):
    """nbgrader's Validate button in the notebook's toolbar."""
    return page.locator(f"{PANEL} .jp-NotebookPanel-toolbar").get_by_role("button", name="Validate", exact=True)
