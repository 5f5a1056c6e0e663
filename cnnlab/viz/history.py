"""Figures for notebook 01 (history): oriented "simple cell" filters, tuning curves, a timeline, shift responses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["oriented_filter", "TIMELINE", "plot_timeline", "plot_filters_and_bars", "plot_tuning_curves",
           "plot_param_growth", "plot_shift_experiment"]

#: (year, short label) milestones shown by ``plot_timeline``.
TIMELINE: list[tuple[int, str]] = [
    (1959, "Hubel & Wiesel:\norientation-tuned cells\nin cat visual cortex"),
    (1968, "Hubel & Wiesel:\nsimple -> complex cells,\nmonkey cortex"),
    (1980, "Fukushima:\nNeocognitron"),
    (1989, "LeCun et al.:\nbackprop on handwritten\nzip codes"),
    (1998, "LeCun et al.:\nLeNet-5, document\nrecognition"),
    (2012, "Krizhevsky et al.:\nAlexNet wins\nImageNet"),
]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def oriented_filter(angle: float, size: int = 15, wavelength: float = 8.0, sigma: float = 3.0,
                    elongation: float = 2.0) -> np.ndarray:
    """Return a zero-mean Gabor filter that responds best to a bright bar at ``angle`` degrees.

    The angle convention matches ``cnnlab.data.bar``: counter-clockwise from the horizontal as
    displayed (0 = horizontal bar, 90 = vertical bar). The filter is a positive stripe flanked by
    negative ones, like the receptive field of a simple cell.

    Args:
        angle: preferred orientation in degrees.
        size: side of the square filter in pixels (odd).
        wavelength: period of the stripes across the preferred orientation, in pixels.
        sigma: width of the Gaussian envelope across the stripes, in pixels.
        elongation: envelope length along the stripes, as a multiple of sigma.

    Returns:
        (size, size) float array with zero mean and unit L2 norm.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer >= 3, got {size}")
    if wavelength <= 0 or sigma <= 0 or elongation <= 0:
        raise ValueError("wavelength, sigma and elongation must be positive")
    theta = np.deg2rad(angle)
    c = (size - 1) / 2.0
    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    x, y = cols - c, c - rows
    along = x * np.cos(theta) + y * np.sin(theta)
    across = -x * np.sin(theta) + y * np.cos(theta)
    g = np.exp(-(across ** 2) / (2 * sigma ** 2) - along ** 2 / (2 * (elongation * sigma) ** 2))
    g = g * np.cos(2 * np.pi * across / wavelength)
    g -= g.mean()
    return g / np.linalg.norm(g)


def plot_timeline(events: Sequence[tuple[int, str]] = TIMELINE, highlight: Sequence[int] = (1989, 1998, 2012)):
    """Draw milestones on a horizontal time axis; years in ``highlight`` are drawn in colour.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(12, 3.2))
    years = [y for y, _ in events]
    ax.axhline(0, color="0.3", linewidth=1.5, zorder=1)
    for idx, (year, label) in enumerate(events):
        up = 1 if idx % 2 == 0 else -1
        color = "tab:red" if year in highlight else "tab:blue"
        ax.plot([year, year], [0, 0.55 * up], color=color, linewidth=1)
        ax.scatter([year], [0], s=60, color=color, zorder=2)
        ax.text(year, 0.62 * up, f"{year}\n{label}" if up > 0 else f"{label}\n{year}", ha="center",
                va="bottom" if up > 0 else "top", fontsize=9, color=color)
    ax.set_xlim(min(years) - 5, max(years) + 5)
    ax.set_ylim(-1.9, 1.9)
    ax.axis("off")
    ax.set_title("From the visual cortex to deep convolutional networks (blue: neuroscience, red: CNNs)")
    fig.tight_layout()
    return fig


def plot_filters_and_bars(filters: Mapping[float, np.ndarray], bar_images: Mapping[float, np.ndarray]):
    """Show the oriented filters (top row) and some bar stimuli (bottom row).

    Args:
        filters: preferred angle -> (k, k) filter.
        bar_images: bar angle -> (S, S) image.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    n = max(len(filters), len(bar_images))
    fig, axes = plt.subplots(2, n, figsize=(2.1 * n, 4.4), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (angle, f) in zip(axes[0], filters.items()):
        lim = float(np.abs(f).max()) or 1.0
        ax.imshow(f, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"cell tuned to {angle:g} deg", fontsize=9)
    for ax, (angle, img) in zip(axes[1], bar_images.items()):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"bar at {angle:g} deg", fontsize=9)
    fig.suptitle("Receptive fields (red excitatory, blue inhibitory) and stimuli")
    fig.tight_layout()
    return fig


def plot_tuning_curves(angles: np.ndarray, responses: Mapping[str, np.ndarray], title: str = ""):
    """Plot response against bar angle, one curve per cell, on a Cartesian and a polar axis.

    Args:
        angles: (A,) bar angles in degrees (0 to 180).
        responses: cell label -> (A,) responses.
        title: figure title.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    angles = np.asarray(angles, dtype=float)
    fig = plt.figure(figsize=(11, 4))
    ax = fig.add_subplot(1, 2, 1)
    pax = fig.add_subplot(1, 2, 2, projection="polar")
    for label, r in responses.items():
        r = np.asarray(r, dtype=float)
        if r.shape != angles.shape:
            raise ValueError(f"responses[{label!r}] has shape {r.shape}, angles {angles.shape}")
        line, = ax.plot(angles, r, marker="o", markersize=3, label=label)
        # orientation is 180-periodic: draw each response at theta and theta + 180 degrees
        theta = np.deg2rad(np.concatenate([angles, angles + 180.0, angles[:1] + 360.0]))
        pax.plot(theta, np.concatenate([r, r, r[:1]]), color=line.get_color())
    ax.set_xlabel("bar orientation (degrees)")
    ax.set_ylabel("response (max over positions, after ReLU)")
    ax.set_xticks(np.arange(0, 181, 45))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title("tuning curves")
    pax.set_title("the same, polar (orientation repeats every 180 deg)", fontsize=9)
    pax.set_yticklabels([])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_param_growth(sides: Sequence[int], fc_counts: Sequence[int], conv_counts: Sequence[int],
                      fc_label: str = "fully connected", conv_label: str = "convolutional"):
    """Plot parameter counts against image side on a log scale.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.semilogy(sides, fc_counts, marker="o", label=fc_label)
    ax.semilogy(sides, conv_counts, marker="s", label=conv_label)
    for i, (s, c) in enumerate(zip(sides, fc_counts)):
        ax.annotate(f"{c:,}", (s, c), textcoords="offset points", xytext=(0 if i < len(sides) - 1 else -4, 6),
                    ha="center" if i < len(sides) - 1 else "right", fontsize=7)
    ax.annotate(f"{conv_counts[-1]:,} at every size", (sides[-1], conv_counts[-1]), textcoords="offset points",
                xytext=(-10, 8), ha="right", fontsize=8)
    ax.set_xlabel("image side (pixels, square grey image)")
    ax.set_ylabel("parameters")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title("Parameters of one layer with 300 outputs (biases included)")
    ax.margins(x=0.05, y=0.15)
    fig.tight_layout()
    return fig


def plot_shift_experiment(img: np.ndarray, shifted: np.ndarray, fc_before: np.ndarray, fc_after: np.ndarray,
                          fmap_before: np.ndarray, fmap_after: np.ndarray, changes: Mapping[str, float],
                          fmap_realigned: np.ndarray | None = None, n_units: int = 40):
    """Draw the shift experiment: inputs, FC responses, conv feature maps, their differences, and the changes.

    Args:
        img, shifted: (H, W) input and its shifted copy.
        fc_before, fc_after: (M,) fully connected responses to the two inputs.
        fmap_before, fmap_after: (H', W') conv feature maps of the two inputs.
        changes: label -> relative change, drawn as horizontal bars.
        fmap_realigned: optional (H', W') map of the original input shifted like the input; the figure
            then shows |fmap_after - fmap_realigned| next to |fmap_after - fmap_before|.
        n_units: how many FC units to draw.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    fig = plt.figure(figsize=(14, 6.4))
    grid = fig.add_gridspec(2, 5, width_ratios=[1, 1, 1, 1, 1.5])
    ax_in, ax_sh = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax_fc = fig.add_subplot(grid[0, 2:4])
    ax_maps = [fig.add_subplot(grid[1, i]) for i in range(4)]
    ax_bar = fig.add_subplot(grid[:, 4])
    ax_in.imshow(img, cmap="gray")
    ax_in.set_title("input")
    ax_sh.imshow(shifted, cmap="gray")
    ax_sh.set_title("input shifted 1 px right")
    units = np.arange(min(n_units, len(fc_before)))
    ax_fc.bar(units - 0.2, np.asarray(fc_before)[units], width=0.4, label="input")
    ax_fc.bar(units + 0.2, np.asarray(fc_after)[units], width=0.4, label="shifted input")
    ax_fc.set_title(f"FC layer: first {len(units)} of {len(fc_before)} units")
    ax_fc.set_xlabel("unit")
    ax_fc.legend(fontsize=8)
    lim = float(max(np.abs(fmap_before).max(), np.abs(fmap_after).max())) or 1.0
    panels = [(fmap_before, "conv map of input", "RdBu_r", -lim),
              (fmap_after, "conv map of shifted input", "RdBu_r", -lim),
              (np.abs(fmap_after - fmap_before), "|difference|, in place", "magma", 0.0)]
    if fmap_realigned is not None:
        panels.append((np.abs(fmap_after - fmap_realigned), "|difference| after\nshifting the map back", "magma", 0.0))
    for ax, (m, title, cmap, lo) in zip(ax_maps, panels):
        ax.imshow(m, cmap=cmap, vmin=lo, vmax=lim)
        ax.set_title(title, fontsize=10)
    for ax in [ax_in, ax_sh] + ax_maps:
        ax.set_xticks([])
        ax.set_yticks([])
    if fmap_realigned is None:
        ax_maps[3].axis("off")
    labels = list(changes)
    vals = [float(changes[k]) for k in labels]
    bars = ax_bar.barh(np.arange(len(labels)), vals, color=["tab:red" if v > 0.05 else "tab:green" for v in vals])
    ax_bar.set_yticks(np.arange(len(labels)), [lab.replace(", ", ",\n") for lab in labels], fontsize=9)
    ax_bar.invert_yaxis()
    for b, v in zip(bars, vals):
        ax_bar.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:.2f}", va="center", fontsize=9)
    ax_bar.set_xlabel("||after - before|| / ||before||")
    ax_bar.set_xlim(0, max(vals + [0.1]) * 1.35)
    ax_bar.set_title("relative change of the response", fontsize=10)
    fig.tight_layout()
    return fig
