"""Padding and stride explorer: sliders for n, f, pad and stride over the sliding-window figure.

With a front end attached the cell shows the widget alone; without one (headless execution, or
nbgrader's ``NBGRADER_EXECUTION``) one static figure is drawn, so grading never waits on a widget.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt

from cnnlab import shapes
from cnnlab.viz.padding import plot_sliding_windows
from cnnlab.widgets import interactive_available

__all__ = ["padding_explorer"]


def _describe(n: int, f: int, pad: int, stride: int) -> str:
    """One line on the output size, in strict and in floor mode."""
    if f > n + 2 * pad:
        return f"f={f} is larger than the padded input ({n + 2 * pad}): no output."
    floor = shapes.conv_output_size(n, f, pad, stride, strict=False)
    try:
        shapes.conv_output_size(n, f, pad, stride, strict=True)
        strict = "fits exactly"
    except ValueError:
        strict = f"strict mode refuses it ({(n + 2 * pad - f) % stride} row(s)/column(s) left over)"
    return f"output {floor}x{floor}; the stride {strict}."


def padding_explorer(n: int = 7, f: int = 3, pad: int = 0, stride: int = 1) -> Any:
    """Draw the sliding windows for (n, f, pad, stride): live sliders with a front end, else static.

    Args:
        n: input size (3-12 on the slider); f: window size (1-7); pad: zeros per side (0-3);
            stride: window step (1-4).

    Returns:
        The ipywidgets ``interactive`` object when widgets can be shown (display it, or leave it as
        the cell's last expression), else None after drawing the static figure.
    """
    if not interactive_available():
        plot_sliding_windows(n, f, pad, stride)
        plt.show()
        print(_describe(n, f, pad, stride))
        return None
    import ipywidgets as w

    def draw(n: int, f: int, pad: int, stride: int) -> None:
        plot_sliding_windows(n, f, pad, stride)
        plt.show()
        print(_describe(n, f, pad, stride))

    style = {"description_width": "60px"}
    return w.interactive(
        draw,
        n=w.IntSlider(value=n, min=3, max=12, description="n (input)", style=style),
        f=w.IntSlider(value=f, min=1, max=7, description="f (filter)", style=style),
        pad=w.IntSlider(value=pad, min=0, max=3, description="pad", style=style),
        stride=w.IntSlider(value=stride, min=1, max=4, description="stride", style=style),
    )
