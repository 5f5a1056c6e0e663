"""The browser suite's machinery: JupyterLab servers started by scripts/lab.sh, pages whose
console errors and failed requests are recorded, and the processes the suite started."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path


REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CNNLAB_CHROMIUM", "/usr/bin/chromium")
OUT = Path(os.environ.get("CNNLAB_BROWSER_OUT", REPO / "out" / "browser"))
RUN_ID = f"cnnlab-browser-{uuid.uuid4().hex[:12]}"   # marks every process the suite starts
COPY_ITEMS = ("autograder", "cnnlab", "jupyter", "scripts", "solutions", "notebooks",
              "nbgrader_config.py", "pyproject.toml", "requirements-lock.txt")

# What a test's server or command may have made at the top of the shared course copy (a work
# folder, a student workspace, hub data): a test that copies the course leaves these out.
MADE_AT_RUN_TIME = ("course", "student", "hub-data", "out", "quiz_test.ipynb")


def copy_course(src: Path, dst: Path) -> Path:
    """Copy the shared course copy ``src`` to ``dst`` as the repository holds it: what other tests
    made at its top (``MADE_AT_RUN_TIME``) stays behind."""
    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n in MADE_AT_RUN_TIME] if Path(folder) == src else []
    shutil.copytree(src, dst, symlinks=True, ignore=ignore)
    return dst


# Browser-side messages that are JupyterLab's own noise, not the course's: each with its reason.
ALLOWED_CONSOLE = (
    # JupyterLab probes optional services; a 404 on them is logged as a console error
    re.compile(r"Failed to load resource: the server responded with a status of 404"),
)
ALLOWED_HTTP = (
    # optional endpoints JupyterLab asks for and that this server does not provide
    re.compile(r"/api/kernelspecs/[^/]+/logo|/lab/api/listings/|/lsp/status|/api/me\b"),
)


# ----------------------------------------------------------------------------- processes

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pids_with_marker() -> list[int]:
    """PIDs of processes whose environment carries this run's RUN_ID (what the suite started)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            if RUN_ID.encode() in (d / "environ").read_bytes():
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def kill_marked(sig: int = signal.SIGKILL) -> None:
    for pid in pids_with_marker():
        try:
            os.kill(pid, sig)
        except OSError:
            pass


class Lab:
    """One JupyterLab server started by scripts/lab.sh on a course folder."""

    def __init__(self, root: Path, mode: str, state: Path):
        self.root, self.mode = root, mode
        self.port = _free_port()
        self.token = uuid.uuid4().hex
        state.mkdir(parents=True, exist_ok=True)
        settings = state / "settings"
        for name, data in {
            "@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                {"fetchNews": "false", "checkForUpdates": False},
            "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
            # two tabs of one notebook in successive tests: no autosave, no "File Changed" dialog
            "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        }.items():
            (settings / name).parent.mkdir(parents=True, exist_ok=True)
            (settings / name).write_text(json.dumps(data))
        env = {k: v for k, v in os.environ.items()
               if k not in ("NBGRADER_EXECUTION", "CNNLAB_STATIC", "CNNLAB_WIDGETS", "JUPYTER_CONFIG_PATH",
                            "MPLBACKEND", "JPY_SESSION_NAME")}
        env.update(CNNLAB_SKIP_SETUP="1", CNNLAB_COURSE_DIR=str(root / "course"), PYTHONPATH=str(root),
                   JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(state / "ws"),
                   JUPYTER_RUNTIME_DIR=str(state / "runtime"), IPYTHONDIR=str(state / "ipython"),
                   CNNLAB_BROWSER_RUN=RUN_ID)
        self.log = state / f"lab-{mode}.log"
        cmd = ["bash", str(root / "scripts" / "lab.sh"), mode, "--no-browser", f"--port={self.port}",
               "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1", "--allow-root",
               f"--IdentityProvider.token={self.token}"]
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=open(self.log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 180
        while True:
            try:
                self.api("api/status")
                break
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"JupyterLab ({mode}) did not start:\n{self.log_tail()}")
                time.sleep(0.5)

    def url(self, path: str) -> str:
        sep = "&" if "?" in path else "?"
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, method: str = "GET", data: dict | None = None):
        req = urllib.request.Request(self.url(path), method=method,
                                     data=None if data is None else json.dumps(data).encode(),
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            body = r.read()
        return json.loads(body) if body else None

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def stop(self) -> None:
        try:
            for k in self.api("api/kernels") or []:
                self.api(f"api/kernels/{k['id']}", method="DELETE")
        except Exception:  # noqa: BLE001 - the server may already be gone
            pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


class Watched:
    """A page whose console errors, failed requests and HTTP errors are recorded."""

    def __init__(self, page, name: str):
        self.page, self.name = page, name
        self.problems: list[str] = []
        self.shots: list[Path] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, msg) -> None:
        if msg.type == "error" and not any(p.search(msg.text) for p in ALLOWED_CONSOLE):
            self.problems.append(f"console error: {msg.text[:500]}")

    def _failed(self, req) -> None:
        failure = req.failure or ""
        if "ERR_ABORTED" in failure:   # navigation away / cancelled polling, not a failure
            return
        self.problems.append(f"request failed: {req.method} {req.url.split('?')[0]} ({failure})")

    def _response(self, resp) -> None:
        url = resp.url.split("?")[0]
        if resp.status >= 400 and not any(p.search(url) for p in ALLOWED_HTTP):
            self.problems.append(f"HTTP {resp.status}: {resp.request.method} {url}")

    def shot(self, step: str, locator=None) -> Path:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{self.name}-{len(self.shots) + 1:02d}-{step}.png"
        (locator or self.page).screenshot(path=str(path), **({} if locator else {"full_page": False}))
        self.shots.append(path)
        return path

    def assert_clean(self, allow: tuple[str, ...] = ()) -> None:
        bad = [p for p in self.problems if not any(a in p for a in allow)]
        assert not bad, "the browser reported problems:\n  " + "\n  ".join(bad)
