"""The class similarity report, as the instructor opens it from the instructor's JupyterLab server
(``/cnnlab/reports/``): served with a policy that forbids scripts, inert (a student's markup in
their name or code is shown as text, never run) and readable (screenshots under out/browser/)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import similarity_class as sc  # noqa: E402


def test_similarity_report_is_served_inert_and_readable(instructor_lab, course_copy, watched):
    workdir = course_copy / "course"
    sc.write_class(course_copy / "notebooks", workdir)
    out = subprocess.run([sys.executable, "-m", "autograder", "similarity", "02_filters", "--workdir", str(workdir),
                          "--notebooks", str(course_copy / "notebooks"), "--solutions", str(course_copy / "solutions")],
                         cwd=course_copy, env={**os.environ, "PYTHONPATH": str(course_copy)}, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    page = watched.page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    listing = page.goto(instructor_lab.url("cnnlab/reports/"))
    assert listing.status == 200 and "script-src" not in listing.headers["content-security-policy"]
    assert "default-src 'none'" in listing.headers["content-security-policy"]
    assert page.locator("a", has_text="02_filters").count() == 1
    watched.shot("similarity-list")

    resp = page.goto(instructor_lab.url("cnnlab/reports/similarity-02_filters.html"))
    csp = resp.headers["content-security-policy"]
    assert resp.status == 200 and "default-src 'none'" in csp and "sandbox" in csp
    page.wait_for_timeout(500)
    assert page.title() == "Similarity: 02_filters" and not dialogs
    assert page.evaluate("document.scripts.length") == 0 and page.evaluate("document.images.length") == 0
    hostile = next(s for s in sc.COPIES if "<img" in s)
    assert page.get_by_text(hostile, exact=True).count() >= 1            # the name, shown as text
    assert page.get_by_text('document.title = "pwned"').count() >= 1     # the code, shown as text
    assert "never a verdict" in page.locator(".note").inner_text()
    watched.shot("similarity-report")
    page.locator("h2", has_text="corr2d_loops").scroll_into_view_if_needed()
    watched.shot("similarity-corr2d_loops")
    rows = page.locator("h2:has-text('corr2d_loops') ~ table").first.locator("tr")
    top = [frozenset(rows.nth(i).locator("td").nth(j).inner_text() for j in (1, 2)) for i in range(1, 5)]
    assert set(top) == sc.copied_pairs()
    for bad in ("/cnnlab/reports/..%2Fgradebook.db", "/cnnlab/reports/gradebook.db"):
        assert page.goto(instructor_lab.url(bad.lstrip("/"))).status == 404
    watched.assert_clean(allow=("HTTP 404",))
