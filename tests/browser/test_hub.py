"""The course on JupyterHub, as a class uses it (issue 17), in Debian's chromium.

`scripts/hub.sh start` on a temporary copy of the course, with Unix accounts made for this test
(unique names, removed afterwards, whatever happened): the instructor logs in and releases
01_history and 05_pooling from formgrader and turns feedback on submit on; three students log in,
fetch 05_pooling from their Assignment List, answer it in the notebook (right, wrong, blank) and
submit; each gets feedback from the hub's service without the instructor doing anything; one
student tries to read another's submission and the instructor's solutions and is refused; the
instructor collects and formgrader lists the three with their ids; `scripts/hub.sh stop` leaves
nothing running. Screenshots: out/browser/hub-*.png.

Needs root (Unix accounts, a hub that starts servers as other users), npm (the proxy) and a
Python >= 3.11 that every account can run (Debian's python3.11); skipped with the reason otherwise.
`CNNLAB_TEST_HUB_ENV` reuses a hub environment between runs (otherwise one is made in the hub's
temporary folder: a few minutes)."""

from __future__ import annotations

import csv
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import nbformat
import pytest

from jlab import CODE_CELL, cell_with, menu, wait_kernel_idle
from labkit import OUT

PORT = int(os.environ.get("CNNLAB_TEST_HUB_PORT", "18200"))
BASE = f"http://127.0.0.1:{PORT}"
A = "05_pooling"
KINDS = {"a": "reference", "b": "wrong", "c": "blank"}
EXERCISES = ("max_pool_forward", "max_pool_backward", "avg_pool_forward", "avg_pool_backward", "shift_invariance")
FEEDBACK_LIMIT = 240     # seconds: the service works; the latency goal is measured by bench/bench_feedback.py
SHOTS: list[Path] = []


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the hub test makes Unix accounts and starts servers as them: run as root"
    for tool in ("useradd", "userdel", "runuser", "npm"):
        if shutil.which(tool) is None:
            return f"{tool} is missing"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


def shot(page, step: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"hub-{len(SHOTS) + 1:02d}-{step}.png"
    page.screenshot(path=str(path))
    SHOTS.append(path)
    return path


class Hub:
    def __init__(self, repo: Path):
        tag = uuid.uuid4().hex[:6]
        self.repo = repo
        self.dir = Path(tempfile.mkdtemp(prefix="cnnlab-hubtest-", dir="/tmp"))
        os.chmod(self.dir, 0o755)
        self.prefix = f"cnt{tag}"
        self.instructor = f"ci{tag}"
        self.students = {k: f"s{k}{tag}" for k in KINDS}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("CNNLAB_HUB", "JUPYTER"))}
        self.env.update(CNNLAB_HUB_DIR=str(self.dir), CNNLAB_HUB_PORT=str(PORT),
                        CNNLAB_HUB_INSTRUCTOR=self.instructor, CNNLAB_HUB_GROUP_PREFIX=self.prefix,
                        CNNLAB_HUB_ENV=os.environ.get("CNNLAB_TEST_HUB_ENV") or str(self.dir / "env"))
        self.passwords: dict[str, str] = {}

    def sh(self, *args, timeout=1500, check=True) -> subprocess.CompletedProcess:
        out = subprocess.run(["bash", str(self.repo / "scripts" / "hub.sh"), *args], env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check:
            assert out.returncode == 0, f"hub.sh {' '.join(args)}: {out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out

    def as_user(self, user: str, code: str) -> subprocess.CompletedProcess:
        """Python run as ``user`` (what their kernel or terminal can do: same uid and groups)."""
        py = Path(self.env["CNNLAB_HUB_ENV"]) / "bin" / "python"
        return subprocess.run(["runuser", "-u", user, "--", str(py), "-c", code], capture_output=True,
                              text=True, timeout=120, cwd="/")

    def lab_settings(self, user: str) -> None:
        """A tidy JupyterLab for the screenshots: every cell rendered, no news."""
        pw = pwd.getpwnam(user)
        base = Path(pw.pw_dir) / ".jupyter" / "lab" / "user-settings" / "@jupyterlab"
        for rel, data in {"notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
                          "apputils-extension/notification.jupyterlab-settings":
                              {"fetchNews": "false", "checkForUpdates": False}}.items():
            f = base / rel
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(data))
        for p in [Path(pw.pw_dir) / ".jupyter", *(Path(pw.pw_dir) / ".jupyter").rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)

    def cleanup(self) -> None:
        from autograder.hub.accounts import group_names, remove_group, remove_user

        try:
            self.sh("stop", check=False, timeout=120)
        finally:
            for user in [self.instructor, *self.students.values()]:
                remove_user(user)
            for g in group_names(self.prefix):
                remove_group(g)
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(course_copy, processes_cleanup):
    h = Hub(course_copy)
    try:
        roster = h.dir / "roster.csv"
        names = {"a": ("Ada", "Right"), "b": ("Ben", "Wrong"), "c": ("Cy", "Blank")}
        roster.write_text("id,first_name,last_name,email\n" + "".join(
            f"{h.students[k]},{names[k][0]},{names[k][1]},{h.students[k]}@example.org\n" for k in KINDS))
        t0 = time.monotonic()
        h.sh("add-users", str(roster))
        print(f"hub set-up and accounts: {time.monotonic() - t0:.0f} s")
        with open(h.dir / "accounts.csv") as fh:
            h.passwords = {r["id"]: r["initial_password"] for r in csv.DictReader(fh)}
        for user in [h.instructor, *h.students.values()]:
            h.lab_settings(user)
        out = h.sh("start", timeout=300)
        assert "The hub is running" in out.stdout, out.stdout
        yield h
    finally:
        h.cleanup()


def login(browser, hub: Hub, user: str):
    ctx = browser.new_context(viewport={"width": 1400, "height": 950})
    ctx.set_default_timeout(60_000)
    page = ctx.new_page()
    page.goto(f"{BASE}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", hub.passwords[user])
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf"/user/{user}/lab"), timeout=300_000)
    page.wait_for_selector(".jp-LabShell", timeout=120_000)
    page.wait_for_selector(".jp-DirListing-content", timeout=120_000)
    return ctx, page


def assignment_list(page):
    menu(page, "Nbgrader", "Assignment List")
    page.wait_for_selector("#released_assignments_list", timeout=60_000)
    refresh(page)


def refresh(page):
    page.locator("#refresh_assignments_list").click()
    page.wait_for_timeout(500)
    page.wait_for_selector("#released_assignments_list_loading", state="hidden", timeout=60_000)


def answers(hub: Hub) -> dict[str, dict[str, str]]:
    """The answer cells each kind of student types: from the sample class (the course's own)."""
    from autograder.sample_class import submission

    rel = nbformat.read(hub.repo / "notebooks" / A / f"{A}.ipynb", as_version=4)
    sol = nbformat.read(hub.repo / "solutions" / A / f"{A}.ipynb", as_version=4)
    out = {}
    for k, kind in KINDS.items():
        nb = submission(kind, rel, sol, A)
        out[k] = {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
                  if c.metadata.get("nbgrader", {}).get("solution") and c.cell_type == "code"}
    return out


def formgrader_action(page, name: str, column: int, success: str) -> str:
    """Click formgrader's button in ``column`` of ``name``'s row; wait for its dialog; close it."""
    row = page.locator("tr", has_text=name).first
    row.locator("td").nth(column).locator("a").click()
    dialog = page.locator(".modal-dialog")
    dialog.wait_for(timeout=300_000)
    deadline = time.monotonic() + 300
    while success not in (text := dialog.inner_text()) and "rror" not in text and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    shot(page, f"instructor-{name}-{success.split()[-1]}")
    assert success in text, text[:2000]
    page.locator(".modal-footer button").first.click()
    dialog.wait_for(state="hidden", timeout=30_000)
    page.wait_for_timeout(500)
    return text


def test_a_class_on_the_hub(hub, browser):
    # --- the instructor releases 01_history and 05_pooling in formgrader, turns feedback on
    ictx, ipage = login(browser, hub, hub.instructor)
    shot(ipage, "instructor-lab")
    ipage.goto(f"{BASE}/user/{hub.instructor}/formgrader")
    ipage.wait_for_selector("text=01_history", timeout=120_000)
    for name in ("01_history", A):
        formgrader_action(ipage, name, 4, "Successfully created")            # Generate
        formgrader_action(ipage, name, 6, "Successfully released")           # Release
    ipage.goto(f"{BASE}/user/{hub.instructor}/formgrader")
    ipage.wait_for_selector("text=01_history", timeout=120_000)
    shot(ipage, "instructor-released")
    outbound = hub.dir / "exchange" / "cnnlab" / "outbound"
    assert sorted(p.name for p in outbound.iterdir()) == ["01_history", A]
    for name in ("01_history", A):
        hub.sh("feedback", name, "--on", "--max-attempts", "5")

    # --- three students: fetch, answer, save
    code = answers(hub)
    pages = {}
    for k, kind in KINDS.items():
        user = hub.students[k]
        ctx, page = login(browser, hub, user)
        pages[k] = (ctx, page)
        assignment_list(page)
        released = page.locator("#released_assignments_list .list_item:not(.nested_list_item)", has_text=A)
        released.get_by_role("button", name="Fetch").click()
        page.locator("#fetched_assignments_list .list_item:not(.nested_list_item)", has_text=A).wait_for(timeout=60_000)
        shot(page, f"student-{kind}-fetched")
        ws = Path(pwd.getpwnam(user).pw_dir) / "cnnlab" / A / f"{A}.ipynb"
        assert ws.is_file(), "the fetched notebook is not in the student's workspace"
        page.goto(f"{BASE}/user/{user}/lab/tree/{A}/{A}.ipynb")
        page.wait_for_selector(CODE_CELL, timeout=120_000)
        wait_kernel_idle(page, 180)
        if kind != "blank":
            for ex in EXERCISES:
                cell = cell_with(page, f"def {ex}(")
                cell.locator(".cm-content").click()
                page.keyboard.press("Control+a")
                page.keyboard.insert_text(code[k][ex])
            menu(page, "File", "Save Notebook")
            page.wait_for_timeout(1500)
            saved = nbformat.read(ws, as_version=4)
            mine = [c.source for c in saved.cells if c.metadata.get("nbgrader", {}).get("grade_id") in EXERCISES]
            assert mine == [code[k][ex] for ex in EXERCISES], "the answers were not saved as typed"
        shot(page, f"student-{kind}-answered")

    # --- all three submit, one after the other, at once
    submitted = {}
    for k, kind in KINDS.items():
        page = pages[k][1]
        assignment_list(page)
        page.locator("#fetched_assignments_list .list_item:not(.nested_list_item)", has_text=A).get_by_role("button", name="Submit").click()
        page.locator("#submitted_assignments_list .list_item:not(.nested_list_item)", has_text=A).first.wait_for(timeout=60_000)
        submitted[k] = time.monotonic()
    # --- feedback arrives without the instructor: Fetch Feedback, then the page
    waited = {}
    scores = {}
    for k, kind in KINDS.items():
        user, page = hub.students[k], pages[k][1]
        row = page.locator("#submitted_assignments_list .list_item:not(.nested_list_item)", has_text=A).first
        ready = page.locator("#submitted_assignments_list").get_by_text("(feedback available to fetch)")
        while ready.count() == 0:
            assert time.monotonic() - submitted[k] < FEEDBACK_LIMIT, \
                f"no feedback for {kind} after {FEEDBACK_LIMIT} s:\n" + \
                (hub.dir / "logs" / "hub.log").read_text()[-3000:]
            page.wait_for_timeout(1000)
            refresh(page)
            row = page.locator("#submitted_assignments_list .list_item:not(.nested_list_item)", has_text=A).first
            ready = page.locator("#submitted_assignments_list").get_by_text("(feedback available to fetch)")
        waited[kind] = time.monotonic() - submitted[k]
        shot(page, f"student-{kind}-feedback-ready")
        row.get_by_role("button", name="Fetch Feedback").click()
        fb_dir = Path(pwd.getpwnam(user).pw_dir) / "cnnlab" / A / "feedback"
        deadline = time.monotonic() + 60
        while not (html := sorted(fb_dir.rglob(f"{A}.html"))) and time.monotonic() < deadline:
            page.wait_for_timeout(500)
        page.locator("#submitted_assignments_list").get_by_text("(view feedback)").first.wait_for(timeout=60_000)
        shot(page, f"student-{kind}-feedback-fetched")
        assert html, "Fetch Feedback wrote no page into the workspace:\n" + page.locator(
            "#submitted_assignments_list").inner_text() + (hub.dir / "logs" / "hub.log").read_text()[-3000:]
        rel = html[-1].relative_to(Path(pwd.getpwnam(user).pw_dir) / "cnnlab")
        fb = pages[k][0].new_page()
        fb.goto(f"{BASE}/user/{user}/files/{rel.as_posix()}")
        fb.wait_for_selector("text=Score", timeout=60_000)
        shot(fb, f"student-{kind}-feedback-page")
        text = fb.locator("body").inner_text()
        assert "tier='hidden'" not in text and "BEGIN HIDDEN" not in text
        m = re.search(r"Score:\s*([\d.]+)\s*/\s*([\d.]+)", text)
        assert m, text[:800]
        scores[kind] = (float(m.group(1)), float(m.group(2)))
        fb.close()
    print(f"submit to Fetch Feedback in the browser: {waited}")
    (OUT / "hub-latency.json").write_text(json.dumps({"seconds": waited, "scores": scores}, indent=1))
    full = scores["reference"][1]
    assert scores["reference"][0] == full and scores["blank"][0] == 0, scores
    assert 0 <= scores["wrong"][0] < full, scores

    # --- student b tries to read a's submission and the instructor's solutions: refused
    b, a = hub.students["b"], hub.students["a"]
    bpage = pages["b"][1]
    bpage.goto(f"{BASE}/user/{a}/lab")
    bpage.wait_for_load_state()
    body = bpage.locator("body").inner_text()
    shot(bpage, "student-b-opens-a-lab")
    assert "403" in body or "Forbidden" in body, body[:500]
    sol = hub.dir / "course" / "solutions" / A / f"{A}.ipynb"
    resp = bpage.goto(f"{BASE}/user/{b}/files/{'..%2F' * 8}{str(sol).lstrip('/').replace('/', '%2F')}")
    shot(bpage, "student-b-opens-solutions")
    assert resp.status in (403, 404), resp.status
    inbound = hub.dir / "exchange" / "cnnlab" / "inbound"
    probe = hub.as_user(b, "import json, os, sys\n"
                        "out = {}\n"
                        f"for label, path in {json.dumps({'solutions': str(sol), 'inbound list': str(inbound), 'gradebook': str(hub.dir / 'course' / 'gradebook.db'), 'a workspace': str(Path(pwd.getpwnam(a).pw_dir) / 'cnnlab'), 'service work folder': str(hub.dir / 'autofeedback'), 'feedback list': str(hub.dir / 'exchange' / 'cnnlab' / 'feedback')})}.items():\n"
                        "    try:\n"
                        "        os.listdir(path) if not path.endswith(('.ipynb', '.db')) else open(path).read(10)\n"
                        "        out[label] = 'READ'\n"
                        "    except PermissionError:\n"
                        "        out[label] = 'refused'\n"
                        "import glob\n"
                        f"out['a submission'] = 'READ' if glob.glob({str(inbound)!r} + '/{a}+*/*.ipynb') else 'refused'\n"
                        "print(json.dumps(out))\n")
    assert probe.returncode == 0, probe.stderr
    seen = json.loads(probe.stdout)
    print(f"what {b} can read: {seen}")
    # nbgrader's inbound (mode 733) cannot be listed: a's submission, whose folder name ends in
    # 72 random bits, cannot be found (nbgrader's protection: its files are readable by name)
    assert seen["solutions"] == seen["inbound list"] == seen["gradebook"] == seen["a submission"] == "refused", seen
    assert seen["a workspace"] == seen["service work folder"] == seen["feedback list"] == "refused", seen

    # --- the instructor collects; formgrader shows the three, with ids
    ipage.goto(f"{BASE}/user/{hub.instructor}/formgrader")
    ipage.wait_for_selector(f"text={A}", timeout=120_000)
    formgrader_action(ipage, A, 7, "Successfully collected")                 # Collect
    ipage.goto(f"{BASE}/user/{hub.instructor}/formgrader/manage_submissions/{A}")
    for user in hub.students.values():
        ipage.wait_for_selector(f"text={user}", timeout=60_000)
    table = ipage.locator("table").first.inner_text()
    shot(ipage, "instructor-formgrader-submissions")
    assert "None, None" not in table
    for k, (first, last) in {"a": ("Ada", "Right"), "b": ("Ben", "Wrong"), "c": ("Cy", "Blank")}.items():
        assert hub.students[k] in table and f"{last}, {first}" in table, table
    for ctx, _ in pages.values():
        ctx.close()
    ictx.close()


def test_the_hub_stops_with_nothing_left(hub):
    out = hub.sh("stop", timeout=120)
    assert "nothing of it is running" in out.stdout
    status = hub.sh("status", check=False)
    assert status.returncode != 0 and "not running" in status.stdout and "processes of this hub" not in status.stdout
    for user in [hub.instructor, *hub.students.values()]:
        from autograder.hub.accounts import processes_of

        assert processes_of(pwd.getpwnam(user).pw_uid) == [], f"{user} still has processes"
