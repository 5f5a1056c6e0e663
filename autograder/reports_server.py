"""The instructor's Jupyter server shows the similarity reports at ``<base_url>/cnnlab/reports/``.

A Jupyter server extension (enabled for ``scripts/lab.sh instructor`` in
``jupyter/instructor/jupyter_server_config.json``): one authenticated handler that lists
``<work folder>/reports/similarity-*.html`` and serves them, and their CSV, with a
Content-Security-Policy that forbids every script and runs the page in a sandbox (the report
escapes every student string already; this is the second lock). The work folder is
``$CNNLAB_COURSE_DIR`` (set by ``scripts/lab.sh``), else the course's default.

Formgrader offers no supported place for an extra link; this page is the instructor server's own,
beside formgrader (``/formgrader``), under the same login.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .config import DEFAULT_WORKDIR

NAME = re.compile(r"similarity-[A-Za-z0-9_.-]+\.(html|csv)")
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'self'; sandbox")


def reports_dir() -> Path:
    """Where ``python -m autograder similarity`` writes its reports for this server's course."""
    return Path(os.environ.get("CNNLAB_COURSE_DIR") or DEFAULT_WORKDIR) / "reports"


class ReportsHandler(JupyterHandler):
    """``/cnnlab/reports/``: the list; ``/cnnlab/reports/similarity-<assignment>.html``: one report."""

    @property
    def content_security_policy(self) -> str:
        return CSP

    def write_error(self, status_code: int, **kwargs) -> None:
        """A plain error page (Jupyter's own loads styles and scripts this policy blocks)."""
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {'no such report' if status_code == 404 else self._reason}\n")

    @web.authenticated
    def get(self, name: str = "") -> None:
        self.set_header("Cache-Control", "no-store")
        folder = reports_dir()
        if not name:
            files = sorted(p.name for p in folder.glob("similarity-*.html")) if folder.is_dir() else []
            items = "".join(f'<li><a href="{html.escape(f)}">{html.escape(f[len("similarity-"):-len(".html")])}</a> '
                            f'(<a href="{html.escape(f[:-5])}.csv">CSV</a>)</li>' for f in files)
            body = (f"<ul>{items}</ul>" if files else
                    f"<p>No report yet in {html.escape(str(folder))}: run "
                    "<code>python -m autograder similarity ASSIGNMENT</code> after collecting.</p>")
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.finish('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Similarity reports</title>'
                        "</head><body style=\"font:14px system-ui,sans-serif;margin:24px\">"
                        "<h1>Similarity reports</h1><p>A reason to look, never a verdict.</p>" + body + "</body></html>")
            return
        path = folder / name
        if not NAME.fullmatch(name) or not path.is_file():
            raise web.HTTPError(404)
        if name.endswith(".csv"):
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        else:
            self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(path.read_bytes())


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "autograder.reports_server"}]


def _load_jupyter_server_extension(serverapp) -> None:
    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, "cnnlab/reports/?"), ReportsHandler),
        (url_path_join(base, "cnnlab/reports/([^/]+)"), ReportsHandler),
    ])
