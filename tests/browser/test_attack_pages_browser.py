"""Formgrader's own pages in Chromium, attacked through their URL (helper attack-pages-2).

Formgrader writes ids from the URL's path into the HTML and the scripts of its assignment,
submission, student and gradebook pages; a link to one of them with a crafted id (a student's
markdown link in the grading view is enough) ran the id's code in the instructor's Jupyter origin.
Each payload prints ``PWNED:<page>`` on the console when it runs."""

from __future__ import annotations

from urllib.parse import quote

PAGES = {
    "manage_students": "formgrader/manage_students/{}",
    "manage_students_assignment": "formgrader/manage_students/alice/{}",
    "manage_submissions": "formgrader/manage_submissions/{}",
    "gradebook_notebooks": "formgrader/gradebook/{}",
    "gradebook_notebook_submissions": "formgrader/gradebook/01_history/{}",
}


def test_formgraders_pages_run_no_script_from_their_url(instructor_lab, watched):
    page = watched.page
    ran: list[str] = []
    page.on("console", lambda msg: ran.append(msg.text) if "PWNED" in msg.text else None)
    page.on("dialog", lambda d: (ran.append(f"dialog {d.message}"), d.dismiss()))
    page.goto(instructor_lab.url("lab"))                       # signs in (the token sets the cookie)
    for name, path in PAGES.items():
        for payload in (f'";console.log("PWNED:{name}");"', f'</script><script>console.log("PWNED:{name}")</script>',
                        f'<img src=x onerror=console.log("PWNED:{name}")>'):
            response = page.goto(instructor_lab.url(path.format(quote(payload, safe=""))))
            assert response is not None and response.status == 200, (name, payload)
            page.wait_for_timeout(500)
    watched.shot("last-page")
    assert ran == []
    page.goto(instructor_lab.url("formgrader/manage_assignments"))
    page.wait_for_selector("text=01_history")                  # formgrader's own pages still work
