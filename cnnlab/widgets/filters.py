"""A live 3x3 kernel editor for notebook 02; draws a static figure when no front end is attached."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from cnnlab.widgets import interactive_available

__all__ = ["PRESETS", "kernel_editor"]

PRESETS: dict[str, np.ndarray] = {
    "identity": np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=float),
    "vertical edge": np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], dtype=float),
    "horizontal edge": np.array([[1, 1, 1], [0, 0, 0], [-1, -1, -1]], dtype=float),
    "Sobel x": np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=float),
    "Laplacian (8 neighbours)": np.array([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]], dtype=float),
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=float),
    "box blur": np.full((3, 3), 1.0 / 9.0),
}


def _draw(fig, img: np.ndarray, k: np.ndarray, filt: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> None:
    from cnnlab.viz.filters import show_matrix

    fig.clf()
    axes = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1, 2, 2]})
    show_matrix(k, axes[0], "kernel", fmt="{:.3g}", signed=True, fontsize=9)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    axes[1].imshow(img, cmap="gray", vmin=0, vmax=1)
    axes[1].set_title("input")
    out = filt(img, k)
    if np.isclose(k.sum(), 0.0, atol=1e-9):
        lim = float(np.percentile(np.abs(out), 99.5)) or 1.0
        axes[2].imshow(out, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[2].set_title("output (kernel sums to 0: red +, blue -)", fontsize=9)
    else:
        axes[2].imshow(np.clip(out, 0, 1), cmap="gray", vmin=0, vmax=1)
        axes[2].set_title("output (clipped to [0, 1])", fontsize=9)
    for ax in axes[1:]:
        ax.axis("off")
    fig.tight_layout()


def kernel_editor(img: np.ndarray, filt: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  kernel: np.ndarray | str = "Sobel x", presets: Mapping[str, np.ndarray] | None = None):
    """Edit a 3x3 kernel in nine number boxes and see the filtered image update live.

    With a front end attached the cell shows the widget alone (its figure updates in place);
    without one (or under ``NBGRADER_EXECUTION``/``CNNLAB_STATIC``) it draws one static figure for
    ``kernel`` and returns None.

    Args:
        img: (H, W) grey image in [0, 1].
        filt: function (image, kernel) -> filtered image, e.g. your vectorised ``corr2d``.
        kernel: starting (3, 3) kernel, or the name of a preset.
        presets: name -> (3, 3) kernel for the drop-down (default ``PRESETS``).

    Returns:
        The ipywidgets container when interactive (display it as a cell's last value), else None.
    """
    import matplotlib.pyplot as plt

    presets = dict(PRESETS if presets is None else presets)
    k0 = presets[kernel] if isinstance(kernel, str) else np.asarray(kernel, dtype=float)
    if k0.shape != (3, 3):
        raise ValueError(f"kernel must be 3x3, got shape {k0.shape}")
    img = np.asarray(img, dtype=float)
    if img.ndim != 2:
        raise ValueError(f"img must be a 2-D grey image, got shape {img.shape}")
    if not interactive_available():
        fig = plt.figure(figsize=(10, 3.6))
        _draw(fig, img, k0, filt)
        plt.show()
        return None

    import ipywidgets as W

    boxes = [W.FloatText(value=float(v), step=0.5, layout=W.Layout(width="70px")) for v in k0.ravel()]
    grid = W.GridBox(boxes, layout=W.Layout(grid_template_columns="repeat(3, 75px)"))
    choice = W.Dropdown(options=["(custom)"] + list(presets), value="(custom)", description="preset")
    out = W.Output()

    def current() -> np.ndarray:
        return np.array([b.value for b in boxes], dtype=float).reshape(3, 3)

    def redraw(_=None) -> None:
        with out:
            out.clear_output(wait=True)
            fig = plt.figure(figsize=(10, 3.6))
            _draw(fig, img, current(), filt)
            plt.show()

    def load(change) -> None:
        if change["new"] in presets:
            for b, v in zip(boxes, presets[change["new"]].ravel()):
                b.unobserve(redraw, "value")
                b.value = float(v)
                b.observe(redraw, "value")
            redraw()

    for b in boxes:
        b.observe(redraw, "value")
    choice.observe(load, "value")
    redraw()
    return W.VBox([W.HBox([grid, choice]), out])
