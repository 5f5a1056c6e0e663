"""An orientation-tuning explorer for notebook 01; draws a static figure when no front end is attached."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cnnlab.widgets import interactive_available

__all__ = ["orientation_explorer"]


def _draw(fig, bar_img: np.ndarray, filt: np.ndarray, response_map: np.ndarray, angle: float,
          curve: tuple[np.ndarray, np.ndarray]) -> None:
    fig.clf()
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 1.6]})
    axes[0].imshow(bar_img, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(f"stimulus: bar at {angle:g} deg", fontsize=9)
    lim = float(np.abs(filt).max()) or 1.0
    axes[1].imshow(filt, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[1].set_title("the cell's receptive field", fontsize=9)
    axes[2].imshow(response_map, cmap="magma", vmin=0, vmax=max(float(curve[1].max()), 1e-9))
    axes[2].set_title(f"response map (max {response_map.max():.2f})", fontsize=9)
    for ax in axes[:3]:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[3].plot(curve[0], curve[1], color="0.5")
    axes[3].scatter([angle], [response_map.max()], color="tab:red", zorder=3)
    axes[3].set_xlabel("bar orientation (deg)")
    axes[3].set_title("tuning curve", fontsize=9)
    axes[3].set_xticks(np.arange(0, 181, 45))
    fig.tight_layout()


def orientation_explorer(filt: np.ndarray, make_bar: Callable[[float], np.ndarray],
                         filt_fn: Callable[[np.ndarray, np.ndarray], np.ndarray], angle: float = 30.0):
    """Rotate a bar with a slider and watch a model "simple cell" respond.

    The cell's response map is ``max(filt_fn(bar, filt), 0)``; its response is the map's maximum.
    With a front end attached the cell shows the widget alone; without one (or under
    ``NBGRADER_EXECUTION``/``CNNLAB_STATIC``) it draws one static figure for ``angle`` and returns None.

    Args:
        filt: (k, k) receptive field, e.g. ``cnnlab.viz.history.oriented_filter(45)``.
        make_bar: angle in degrees -> (S, S) stimulus image, e.g. ``cnnlab.data.bar``.
        filt_fn: (image, kernel) -> valid cross-correlation, e.g. ``cnnlab.numpy_ref.corr2d``.
        angle: starting bar angle in degrees.

    Returns:
        The ipywidgets container when interactive, else None.
    """
    import matplotlib.pyplot as plt

    filt = np.asarray(filt, dtype=float)
    if filt.ndim != 2:
        raise ValueError(f"filt must be a 2-D kernel, got shape {filt.shape}")
    angles = np.arange(0.0, 181.0, 5.0)
    curve = (angles, np.array([np.maximum(filt_fn(make_bar(a), filt), 0).max() for a in angles]))

    def figure(a: float) -> None:
        img = make_bar(a)
        fig = plt.figure(figsize=(12, 3.2))
        _draw(fig, img, filt, np.maximum(filt_fn(img, filt), 0), a, curve)
        plt.show()

    if not interactive_available():
        figure(angle)
        return None

    import ipywidgets as W

    slider = W.FloatSlider(value=angle, min=0, max=180, step=5, description="bar angle", continuous_update=False)
    out = W.Output()

    def redraw(_=None) -> None:
        with out:
            out.clear_output(wait=True)
            figure(slider.value)

    slider.observe(redraw, "value")
    redraw()
    return W.VBox([slider, out])
