"""Browser tests: JupyterLab from the project's environment, driven in Debian's chromium.

Playwright (the Python package) drives ``/usr/bin/chromium`` (``$CNNLAB_CHROMIUM``) through its
executable path, headless, with ``--no-sandbox`` (CI runs as root): no browser is downloaded.
JupyterLab is started by ``scripts/lab.sh student|instructor`` on a temporary copy of the course,
on a free 127.0.0.1 port with a random token; every process it started is ended afterwards.
Screenshots of each step go to ``out/browser/`` (git-ignored).

Every test in this folder carries the ``browser`` marker and is skipped, with the reason, when
chromium or playwright is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from labkit import CHROMIUM, COPY_ITEMS, HERE, REPO, RUN_ID, Lab, Watched, pids_with_marker, kill_marked

def _skip_reason() -> str | None:
    if not Path(CHROMIUM).exists():
        return (f"no chromium at {CHROMIUM} (apt-get install chromium; .ci/run does it), "
                "or set CNNLAB_CHROMIUM")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (it is in requirements-lock.txt)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _skip_reason()
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="session")
def course_copy(tmp_path_factory) -> Path:
    """A temporary copy of the course (the repository's course files), the tests' playground."""
    root = tmp_path_factory.mktemp("browser") / "cnnlab"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in COPY_ITEMS:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=ignore)
        elif src.is_file():
            shutil.copy2(src, root / name)
    (root / ".venv").symlink_to(Path(sys.prefix))
    return root


@pytest.fixture(scope="session")
def processes_cleanup():
    """End every process the suite started (marked with RUN_ID), whatever happened."""
    yield
    kill_marked(signal.SIGTERM)
    time.sleep(1)
    kill_marked(signal.SIGKILL)
    left = pids_with_marker()
    assert not left, f"processes left behind: {left}"


@pytest.fixture(scope="session")
def instructor_lab(course_copy, tmp_path_factory, processes_cleanup):
    lab = Lab(course_copy, "instructor", tmp_path_factory.mktemp("lab-instructor"))
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def student_lab(course_copy, tmp_path_factory, processes_cleanup):
    lab = Lab(course_copy, "student", tmp_path_factory.mktemp("lab-student"))
    yield lab
    lab.stop()


@pytest.fixture(scope="session")
def browser(processes_cleanup):
    from playwright.sync_api import sync_playwright

    os.environ["CNNLAB_BROWSER_RUN"] = RUN_ID  # chromium and the playwright driver carry the marker
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                           args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"])
    yield b
    b.close()
    pw.stop()
    os.environ.pop("CNNLAB_BROWSER_RUN", None)


@pytest.fixture
def watched(browser, request):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(60_000)
    page = ctx.new_page()
    w = Watched(page, re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name)[:60])
    yield w
    ctx.close()
