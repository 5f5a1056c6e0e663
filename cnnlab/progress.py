"""A progress bar that a saved notebook shows finished.

In Jupyter the bar is one display output updated in place (``display_id``): the notebook file
keeps its last state, so a saved or exported notebook shows "1125/1125" and the time taken, not
the "0%" that a widget's text fallback leaves behind. Elsewhere it is a line on stdout rewritten
with a carriage return. It is silent under nbgrader (``NBGRADER_EXECUTION``) or when disabled.
"""

from __future__ import annotations

import html
import os
import sys
import time
from typing import Any

__all__ = ["Progress"]


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Progress:
    """A progress bar: ``bar = Progress(total, "training", "batches")``, ``bar.update(1, loss=0.3)``,
    ``bar.close()`` (or use it as a context manager).

    Args:
        total: steps in all (0 or less: unknown, the bar shows only the count).
        desc: what is counted, shown first.
        unit: what the steps are called ("batches").
        enabled: False (or NBGRADER_EXECUTION set) shows nothing.
        interval: seconds between redraws (the last state is always drawn on close).
    """

    def __init__(self, total: int, desc: str = "", unit: str = "steps", enabled: bool = True,
                 interval: float = 0.25) -> None:
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.n = 0
        self.postfix: dict[str, Any] = {}
        self.enabled = bool(enabled) and not os.environ.get("NBGRADER_EXECUTION")
        self.interval = interval
        self.start = time.perf_counter()
        self._last = 0.0
        self._handle = None
        self._closed = False
        self._width = 0
        if self.enabled:
            self._draw(force=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def text(self, width: int = 24) -> str:
        """The bar as one line of text: "training |####....| 450/1,125 batches, 3.2 s, loss 0.31"."""
        elapsed = time.perf_counter() - self.start
        if self.total > 0:
            fill = int(round(min(self.n / self.total, 1.0) * width))
            count = f"|{'#' * fill}{'.' * (width - fill)}| {self.n:,}/{self.total:,} {self.unit}"
        else:
            count = f"{self.n:,} {self.unit}"
        head = f"{self.desc} {count}" if self.desc else count
        return ", ".join([head, f"{elapsed:.1f} s", *(f"{k} {v}" for k, v in self.postfix.items())])

    def update(self, n: int = 1, **postfix: Any) -> None:
        """Count ``n`` more steps; ``postfix`` values (loss=..., test=...) are shown after the count."""
        self.n += n
        self.postfix.update(postfix)
        if self.enabled:
            self._draw()

    def set_postfix(self, **postfix: Any) -> None:
        self.postfix.update(postfix)
        if self.enabled:
            self._draw()

    def close(self) -> None:
        """Draw the final state (the one a saved notebook keeps)."""
        if self._closed:
            return
        self._closed = True
        if self.enabled:
            self._draw(force=True, final=True)

    def _draw(self, force: bool = False, final: bool = False) -> None:
        now = time.perf_counter()
        if not force and now - self._last < self.interval:
            return
        self._last = now
        line = self.text()
        if _in_kernel():
            from IPython.display import display

            value = max(min(self.n, self.total), 0)
            bar = (f'<progress value="{value}" max="{max(self.total, 1)}" style="width:12em;vertical-align:middle">'
                   f'</progress> ' if self.total > 0 else "")
            bundle = {"text/plain": line, "text/html": f"<div><code>{bar}{html.escape(line)}</code></div>"}
            if self._handle is None:
                self._handle = display(bundle, raw=True, display_id=True)
            else:
                self._handle.update(bundle, raw=True)
            return
        end = "\n" if final else ""
        print(f"\r{line}{' ' * max(self._width - len(line), 0)}", end=end, file=sys.stdout, flush=True)
        self._width = len(line)
