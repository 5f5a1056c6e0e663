"""Figures for notebook 05 (pooling): windows and their winners, gradient routing, shift experiments,
pooling against strided convolution, pooled photographs.

The functions draw what they are given (arrays computed by the notebook); the one exception is
``plot_pool_example``, which marks the winner of each max-pool window (the first maximum in
row-major order, as ``np.argmax`` picks it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["plot_pool_example", "plot_gradient_routing", "plot_photo_pooling", "plot_shift_maps",
           "plot_shift_curves", "plot_pool_vs_conv"]

_WINDOW_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _grid(ax, a: np.ndarray, title: str, fmt: str = "{:g}", cmap: str = "Greys", vmin: float | None = None,
          vmax: float | None = None, fontsize: int = 12):
    """Draw a small array as cells with its values written in them; return the image."""
    a = np.asarray(a, dtype=float)
    vmin = float(a.min()) if vmin is None else vmin
    vmax = float(a.max()) if vmax is None else vmax
    im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1, interpolation="nearest")
    for (i, j), v in np.ndenumerate(a):
        shade = (v - vmin) / ((vmax - vmin) or 1.0)
        if cmap in ("RdBu_r", "coolwarm"):
            dark = abs(v) > 0.6 * max(abs(vmin), abs(vmax))
        else:
            dark = shade > 0.55
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=fontsize, color="white" if dark else "black")
    ax.set_xticks(np.arange(a.shape[1]))
    ax.set_yticks(np.arange(a.shape[0]))
    ax.set_xticks(np.arange(-0.5, a.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, a.shape[0]), minor=True)
    ax.grid(which="minor", color="0.6", linewidth=0.6)
    ax.tick_params(which="both", length=0, labelsize=8)
    ax.set_title(title, fontsize=10)
    return im


def plot_pool_example(x: np.ndarray, max_out: np.ndarray, avg_out: np.ndarray, size: int = 2, stride: int = 2):
    """Show a small image with its pooling windows, the winner of each max window, and both pooled outputs.

    Args:
        x: (H, W) small image (up to about 8 x 8).
        max_out, avg_out: (Ho, Wo) max- and average-pooled results (computed by the caller).
        size, stride: the window size and stride (windows are outlined in matching colours).

    Returns:
        The Figure.
    """
    from matplotlib.patches import Rectangle

    plt = _plt()
    x = np.asarray(x, dtype=float)
    ho, wo = np.shape(max_out)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), gridspec_kw={"width_ratios": [x.shape[1], wo, wo]})
    _grid(axes[0], x, f"input {x.shape[0]}x{x.shape[1]}: windows {size}x{size}, stride {stride}\n"
                      "circled: the maximum each window keeps (ties: the first)", vmin=0, vmax=float(x.max()) * 1.6)
    for k, (i, j) in enumerate(np.ndindex(ho, wo)):
        colour = _WINDOW_COLOURS[k % len(_WINDOW_COLOURS)]
        r, c = i * stride, j * stride
        inset = 0.08 * (k % 2)
        axes[0].add_patch(Rectangle((c - 0.5 + inset, r - 0.5 + inset), size - 2 * inset, size - 2 * inset,
                                    fill=False, edgecolor=colour, linewidth=3))
        window = x[r:r + size, c:c + size]
        a, b = np.unravel_index(np.argmax(window), window.shape)  # the first maximum, row by row
        axes[0].add_patch(plt.Circle((c + b, r + a), 0.36, fill=False, edgecolor=colour, linewidth=2.5))
    _grid(axes[1], max_out, f"max pooling -> {ho}x{wo}", vmin=0, vmax=float(x.max()) * 1.6)
    _grid(axes[2], avg_out, f"average pooling -> {ho}x{wo}", fmt="{:.4g}", vmin=0, vmax=float(x.max()) * 1.6)
    for k, (i, j) in enumerate(np.ndindex(ho, wo)):
        colour = _WINDOW_COLOURS[k % len(_WINDOW_COLOURS)]
        for ax in axes[1:]:
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=colour, linewidth=3))
    fig.tight_layout()
    return fig


def plot_gradient_routing(dout: np.ndarray, dx_max: np.ndarray, dx_avg: np.ndarray):
    """Show an upstream gradient and where max and average pooling send it (one shared signed scale).

    Args:
        dout: (Ho, Wo) upstream gradient.
        dx_max, dx_avg: (H, W) gradients with respect to the input.

    Returns:
        The Figure.
    """
    plt = _plt()
    lim = float(max(np.abs(dout).max(), np.abs(dx_max).max(), np.abs(dx_avg).max())) or 1.0
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.8), gridspec_kw={"width_ratios": [dout.shape[1], dx_max.shape[1],
                                                                                   dx_avg.shape[1]]})
    _grid(axes[0], dout, "upstream gradient dout", cmap="RdBu_r", vmin=-lim, vmax=lim)
    _grid(axes[1], dx_max, "dx through max pooling:\nall to one maximum per window", cmap="RdBu_r", vmin=-lim, vmax=lim)
    im = _grid(axes[2], dx_avg, "dx through average pooling:\nspread evenly, dout / (size*size)", fmt="{:.3g}",
               cmap="RdBu_r", vmin=-lim, vmax=lim, fontsize=10)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="gradient value")
    return fig


def plot_photo_pooling(images: Mapping[str, np.ndarray]):
    """Show a photograph and its pooled versions side by side, each at its own pixel size, one grey scale.

    Args:
        images: title -> (H, W) image with values in [0, 1]; the first one is the original.

    Returns:
        The Figure.
    """
    plt = _plt()
    n = len(images)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 4.0))
    axes = np.atleast_1d(axes)
    im = None
    for ax, (title, img) in zip(axes, images.items()):
        im = ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{title}\n{img.shape[0]}x{img.shape[1]} pixels", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes), shrink=0.75, label="brightness")
    return fig


def plot_shift_maps(rows: Sequence[tuple[str, np.ndarray, np.ndarray]]):
    """Feature maps and their 2x2 max-pooled versions for an input shifted by 0, 1, 2 ... pixels.

    Args:
        rows: (label, feature map (H, W), pooled map (H/2, W/2)) for each shift, first the unshifted one.

    Returns:
        The Figure (one row per shift: the map, the pooled map, and each one's difference from the unshifted
        version, on shared colour scales with colour bars).
    """
    plt = _plt()
    base_map, base_pool = rows[0][1], rows[0][2]
    top = float(max(np.abs(r[1]).max() for r in rows)) or 1.0
    diff = float(max(max(np.abs(r[1] - base_map).max(), np.abs(r[2] - base_pool).max()) for r in rows)) or 1.0
    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 2.9 * len(rows)), squeeze=False)
    ims = {}
    for k, (label, fmap, pooled) in enumerate(rows):
        ims["v"] = axes[k, 0].imshow(fmap, cmap="magma", vmin=0, vmax=top, interpolation="nearest")
        axes[k, 1].imshow(pooled, cmap="magma", vmin=0, vmax=top, interpolation="nearest")
        ims["d"] = axes[k, 2].imshow(fmap - base_map, cmap="RdBu_r", vmin=-diff, vmax=diff, interpolation="nearest")
        axes[k, 3].imshow(pooled - base_pool, cmap="RdBu_r", vmin=-diff, vmax=diff, interpolation="nearest")
        axes[k, 0].set_ylabel(label, fontsize=10)
        axes[k, 0].set_title("feature map" if k == 0 else "", fontsize=10)
        axes[k, 1].set_title("2x2 max pooled" if k == 0 else "", fontsize=10)
        axes[k, 2].set_title("map - unshifted map" if k == 0 else "", fontsize=10)
        axes[k, 3].set_title("pooled - unshifted pooled" if k == 0 else "", fontsize=10)
        for ax in axes[k]:
            ax.set_xticks([])
            ax.set_yticks([])
    fig.colorbar(ims["v"], ax=list(axes[:, :2].ravel()), shrink=0.6, label="activation", location="left")
    fig.colorbar(ims["d"], ax=list(axes[:, 2:].ravel()), shrink=0.6, label="difference")
    return fig


def plot_shift_curves(shifts: Sequence[int], changes: Mapping[str, Sequence[float]]):
    """Relative change of a representation against the shift of the input, one line per representation.

    Args:
        shifts: the pixel shifts (x axis).
        changes: label -> relative change for each shift.

    Returns:
        The Figure.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    styles = ["o-", "s-", "^-", "D-", "v-"]
    for k, (label, values) in enumerate(changes.items()):
        ax.plot(shifts, values, styles[k % len(styles)], label=label, linewidth=2, markersize=7)
    ax.set_xlabel("input shifted right by (pixels)")
    ax.set_ylabel("relative change  ||after - before|| / ||before||")
    ax.set_xticks(list(shifts))
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title("How much a shift changes each representation (lower = more invariant)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_pool_vs_conv(target: Mapping[str, np.ndarray], fitted: Mapping[str, np.ndarray],
                      kernels: Mapping[str, np.ndarray]):
    """Best 2x2 stride-2 convolution against max and average pooling: outputs scattered, fitted kernels shown.

    Args:
        target: label -> pooled outputs (any shape), e.g. {"max pooling": ..., "average pooling": ...}.
        fitted: label -> outputs of the best-fitting strided convolution (same shapes).
        kernels: label -> the fitted (2, 2) kernel.

    Returns:
        The Figure.
    """
    plt = _plt()
    labels = list(target)
    fig, axes = plt.subplots(1, 2 * len(labels), figsize=(6.3 * len(labels) + 1, 4.0),
                             gridspec_kw={"width_ratios": [1.6, 1] * len(labels)})
    fig.subplots_adjust(left=0.06, right=0.9, wspace=0.45, bottom=0.15)
    lim = float(max(np.abs(k).max() for k in kernels.values())) or 1.0
    im = None
    for k, label in enumerate(labels):
        ax, kax = axes[2 * k], axes[2 * k + 1]
        t, f = np.ravel(target[label]), np.ravel(fitted[label])
        ax.scatter(t, f, s=6, alpha=0.5)
        lo, hi = float(min(t.min(), f.min())), float(max(t.max(), f.max()))
        ax.plot([lo, hi], [lo, hi], color="0.3", linewidth=1)
        err = np.linalg.norm(f - t) / np.linalg.norm(t)
        ax.set_xlabel(label)
        ax.set_ylabel("best 2x2 stride-2 convolution")
        ax.set_title(f"{label}: relative error {err:.2g}", fontsize=10)
        im = _grid(kax, kernels[label], "its fitted 2x2 kernel", fmt="{:.2f}", cmap="RdBu_r", vmin=-lim, vmax=lim,
                   fontsize=11)
    fig.colorbar(im, ax=list(axes), shrink=0.7, label="kernel weight")
    return fig
