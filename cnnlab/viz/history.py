"""Figures for notebook 01 (history): oriented "simple cell" filters, tuning curves, a timeline, shift responses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["oriented_filter", "TIMELINE", "TIMELINE_KINDS", "plot_timeline", "plot_filters_and_bars", "plot_tuning_curves",
           "plot_param_growth", "plot_shift_experiment"]

#: (year, short label, kind) milestones shown by ``plot_timeline``; kind is a key of ``TIMELINE_KINDS``.
TIMELINE: list[tuple[int, str, str]] = [
    (1959, "Hubel & Wiesel:\norientation-selective\nneurons, cat cortex", "neuroscience"),
    (1962, "Hubel & Wiesel:\nsimple and complex\ncells, cat", "neuroscience"),
    (1965, "Hubel & Wiesel:\nhypercomplex\n(end-stopped) cells", "neuroscience"),
    (1968, "Hubel & Wiesel:\nthe same hierarchy\nin monkey cortex", "neuroscience"),
    (1980, "Fukushima:\nNeocognitron (a model,\nno backprop)", "model"),
    (1989, "LeCun et al.:\nbackprop on handwritten\nzip codes", "cnn"),
    (1998, "LeCun et al.:\nLeNet-5, document\nrecognition", "cnn"),
    (2012, "Krizhevsky et al.:\nAlexNet wins\nImageNet", "cnn"),
]

#: kind -> (colour, legend label) for ``plot_timeline``.
TIMELINE_KINDS: dict[str, tuple[str, str]] = {
    "neuroscience": ("tab:blue", "neuroscience (recordings in the visual cortex)"),
    "model": ("tab:green", "network model inspired by the cortex"),
    "cnn": ("tab:red", "CNN trained by backpropagation"),
}


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


def plot_timeline(events: Sequence[tuple[int, str, str]] = TIMELINE):
    """Draw milestones on a horizontal time axis, coloured by kind (neuroscience, model, CNN).

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    from matplotlib.lines import Line2D

    fig, ax = plt.subplots(figsize=(13, 4.4))
    years = [e[0] for e in events]
    ax.axhline(0, color="0.3", linewidth=1.5, zorder=1)
    heights = [0.45, -0.45, 1.45, -1.45]  # close years alternate between four levels
    for idx, (year, label, kind) in enumerate(events):
        color = TIMELINE_KINDS[kind][0]
        h = heights[idx % 4] if year < 1975 else (0.45 if idx % 2 == 0 else -0.45)
        ax.plot([year, year], [0, h], color=color, linewidth=1)
        ax.scatter([year], [0], s=60, color=color, zorder=2)
        ax.text(year, h + (0.05 if h > 0 else -0.05), f"{year}\n{label}" if h > 0 else f"{label}\n{year}",
                ha="center", va="bottom" if h > 0 else "top", fontsize=8.5, color=color)
    ax.set_xlim(min(years) - 7, max(years) + 7)
    ax.set_ylim(-2.6, 2.6)
    ax.axis("off")
    kinds = [k for k in TIMELINE_KINDS if any(e[2] == k for e in events)]
    ax.legend([Line2D([0], [0], marker="o", color=TIMELINE_KINDS[k][0], linestyle="") for k in kinds],
              [TIMELINE_KINDS[k][1] for k in kinds], loc="lower right", fontsize=8, frameon=False)
    ax.set_title("From the visual cortex to deep convolutional networks")
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
                          fmap_realigned: np.ndarray | None = None, n_units: int = 40, shift_text: str = "1 px right"):
    """Draw the shift experiment: inputs, FC responses, conv feature maps, their differences, and the changes.

    The two feature maps share one symmetric diverging scale, the two differences one scale from 0,
    each with a colour bar.

    Args:
        img, shifted: (H, W) input and its shifted copy.
        fc_before, fc_after: (M,) fully connected responses to the two inputs.
        fmap_before, fmap_after: (H', W') conv feature maps of the two inputs.
        changes: label -> relative change, drawn as horizontal bars.
        fmap_realigned: optional (H', W') map of the original input shifted like the input; the figure
            then shows |fmap_after - fmap_realigned| next to |fmap_after - fmap_before|.
        n_units: how many FC units to draw.
        shift_text: how the input was shifted, for the titles.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    fig = plt.figure(figsize=(15, 11))
    grid = fig.add_gridspec(3, 7, width_ratios=[1, 1, 0.06, 0.45, 1, 1, 0.06], height_ratios=[1, 1, 0.7],
                            left=0.03, right=0.95, top=0.95, bottom=0.06, wspace=0.12, hspace=0.3)
    ax_in, ax_sh, cax_in = (fig.add_subplot(grid[0, i]) for i in (0, 1, 2))
    ax_fc = fig.add_subplot(grid[0, 4:])
    ax_maps = [fig.add_subplot(grid[1, i]) for i in (0, 1, 4, 5)]
    cax_map, cax_diff = fig.add_subplot(grid[1, 2]), fig.add_subplot(grid[1, 6])
    ax_bar = fig.add_subplot(grid[2, 2:6])
    lo, hi = float(min(img.min(), shifted.min())), float(max(img.max(), shifted.max()))
    ax_in.imshow(img, cmap="gray", vmin=lo, vmax=hi)
    ax_in.set_title("input digit")
    im = ax_sh.imshow(shifted, cmap="gray", vmin=lo, vmax=hi)
    ax_sh.set_title(f"input shifted {shift_text}")
    fig.colorbar(im, cax=cax_in, label="pixel value")
    units = np.arange(min(n_units, len(fc_before)))
    ax_fc.bar(units - 0.2, np.asarray(fc_before)[units], width=0.4, label="input")
    ax_fc.bar(units + 0.2, np.asarray(fc_after)[units], width=0.4, label="shifted input")
    ax_fc.set_title(f"FC layer: first {len(units)} of {len(fc_before)} units")
    ax_fc.set_xlabel("unit")
    ax_fc.set_ylabel("response")
    ax_fc.legend(fontsize=9)
    lim = float(max(np.abs(fmap_before).max(), np.abs(fmap_after).max())) or 1.0
    ax_maps[0].imshow(fmap_before, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax_maps[0].set_title("conv map of the input", fontsize=10)
    im = ax_maps[1].imshow(fmap_after, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax_maps[1].set_title("conv map of the shifted input", fontsize=10)
    fig.colorbar(im, cax=cax_map, label="feature value (red +, blue -)")
    diffs = [(np.abs(fmap_after - fmap_before), "|difference|, compared in place")]
    if fmap_realigned is not None:
        diffs.append((np.abs(fmap_after - fmap_realigned), f"|difference| after shifting\nthe input's map {shift_text}"))
    dmax = float(max(d.max() for d, _ in diffs)) or 1.0
    for ax, (d, title) in zip(ax_maps[2:], diffs):
        im = ax.imshow(d, cmap="magma", vmin=0.0, vmax=dmax)
        ax.set_title(title, fontsize=10)
    fig.colorbar(im, cax=cax_diff, label="|difference|")
    for ax in [ax_in, ax_sh] + ax_maps:
        ax.set_xticks([])
        ax.set_yticks([])
    if fmap_realigned is None:
        ax_maps[3].axis("off")
    labels = list(changes)
    vals = [float(changes[k]) for k in labels]
    bars = ax_bar.barh(np.arange(len(labels)), vals, color=["tab:red" if v > 0.05 else "tab:green" for v in vals])
    ax_bar.set_yticks(np.arange(len(labels)), labels, fontsize=10)
    ax_bar.invert_yaxis()
    for b, v in zip(bars, vals):
        ax_bar.text(b.get_width(), b.get_y() + b.get_height() / 2, f" {v:.3f}", va="center", fontsize=10)
    ax_bar.set_xlabel("relative change ||after - before|| / ||before||")
    ax_bar.set_xlim(0, max(vals + [0.1]) * 1.2)
    ax_bar.set_title("relative change of the response (0: unchanged)", fontsize=11)
    return fig
