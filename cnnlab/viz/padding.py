"""Figures for notebook 03 (padding and stride).

- ``plot_sliding_windows``: a padded n x n input, the window positions along the first row and
  column, the cells no window reaches, and the output grid beside it.
- ``usage_counts`` / ``plot_usage``: how many windows use each input pixel (border vs centre).
- ``plot_pad_modes``: one image padded in several modes side by side, with a colour bar.
- ``plot_stride_demo``: an image and signed maps of it on one symmetric diverging scale.
- ``plot_receptive_field_growth``: receptive field against depth for several layer stacks.
- ``plot_receptive_field_tree``: which units of each layer one output unit depends on (1-D).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnnlab import shapes

__all__ = ["plot_sliding_windows", "usage_counts", "plot_usage", "plot_pad_modes", "plot_stride_demo",
           "plot_receptive_field_growth", "plot_receptive_field_tree"]

_COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _window_starts(n: int, f: int, pad: int, stride: int) -> list[int]:
    """Start positions (in padded coordinates) of the windows along one axis, floor mode."""
    m = shapes.conv_output_size(n, f, pad, stride, strict=False)
    return [i * stride for i in range(m)]


def usage_counts(n: int, f: int, pad: int = 0, stride: int = 1) -> np.ndarray:
    """Count how many f x f windows use each pixel of an n x n input.

    Args:
        n: input size; f: window size; pad: zero padding on each side; stride: window step
            (floor mode: windows that would stick out are dropped).

    Returns:
        (n, n) int array; a 0 marks a pixel that no window reads.
    """
    counts = np.zeros(n + 2 * pad, dtype=int)
    for s in _window_starts(n, f, pad, stride):
        counts[s:s + f] += 1
    c = counts[pad:pad + n]
    return np.outer(c, c)


def plot_sliding_windows(n: int, f: int, pad: int = 0, stride: int = 1, ax: Axes | None = None) -> Figure:
    """Draw an n x n input with ``pad`` zeros around it and where an f x f window lands with ``stride``.

    Every window position along the first row and the first column is outlined in its own colour
    (shifted slightly so overlapping windows stay visible); cells that no window reads (floor mode,
    like PyTorch) are hatched, and the title says whether they are padding only (strict mode
    accepts) or input pixels (strict mode refuses). The output grid is drawn on the right.
    """
    padded = n + 2 * pad
    if ax is None:
        fig, ax = plt.subplots(figsize=(8.5, 4.6), layout="constrained")
    else:
        fig = ax.figure
    ax.set_aspect("equal")
    ax.axis("off")
    if f > padded:
        ax.text(0.5, 0.5, f"the {f}x{f} window does not fit in the padded {padded}x{padded} input",
                ha="center", va="center", transform=ax.transAxes)
        return fig
    starts = _window_starts(n, f, pad, stride)
    m = len(starts)
    left = (padded - f) % stride      # rows/columns after the last window
    skipped = max(left - pad, 0)      # ... of which input pixels
    covered = np.zeros(padded, dtype=bool)
    for s in starts:
        covered[s:s + f] = True
    # the grid (row 0 at the top)
    for i in range(padded):
        for j in range(padded):
            is_pad = not (pad <= i < pad + n and pad <= j < pad + n)
            unused = not (covered[i] and covered[j])
            face = "#e6e6e6" if is_pad else "white"
            ax.add_patch(Rectangle((j, padded - 1 - i), 1, 1, facecolor=face, edgecolor="#999999", lw=0.6,
                                   hatch="///" if unused else None))
            if is_pad and padded <= 14:
                ax.text(j + 0.5, padded - 0.5 - i, "0", ha="center", va="center", fontsize=7, color="#777777")
    ax.add_patch(Rectangle((pad, pad), n, n, fill=False, edgecolor="black", lw=1.6))
    # windows along the first row and the first column
    shown = [(0, c) for c in range(m)] + [(r, 0) for r in range(1, m)]
    for idx, (r, c) in enumerate(shown):
        color = _COLORS[idx % len(_COLORS)]
        inset = 0.08 + 0.06 * (idx % 3)
        x0, y0 = starts[c] + inset, padded - starts[r] - f + inset
        ax.add_patch(Rectangle((x0, y0), f - 2 * inset, f - 2 * inset, fill=False, edgecolor=color, lw=2))
    # the output grid
    ox = padded + 2.5
    oy = (padded - m) / 2
    for i in range(m):
        for j in range(m):
            k = shown.index((i, j)) if (i, j) in shown else None
            face = _COLORS[k % len(_COLORS)] if k is not None else "white"
            ax.add_patch(Rectangle((ox + j, oy + m - 1 - i), 1, 1, facecolor=face, alpha=0.55 if k is not None else 1,
                                   edgecolor="black", lw=0.8))
    ax.annotate("", xy=(ox - 0.3, padded / 2), xytext=(padded + 0.3, padded / 2), arrowprops=dict(arrowstyle="->"))
    ax.text(pad + n / 2, -0.8, f"input {n}x{n}" + (f", padded to {padded}x{padded}" if pad else ""),
            ha="center", va="top", fontsize=10)
    ax.text(ox + m / 2, oy - 0.8, f"output {m}x{m}", ha="center", va="top", fontsize=10)
    formula = f"({n} + 2*{pad} - {f}) // {stride} + 1 = {m}"
    if skipped:
        note = (f"\n{skipped} input row(s)/column(s) never read (hatched): strict mode refuses, "
                f"floor mode drops them")
    elif left:
        note = f"\nonly padding is left unread (hatched): no input pixel is lost, strict mode accepts"
    else:
        note = "\nthe windows tile the padded input exactly"
    ax.set_title(f"n={n}, f={f}, pad={pad}, stride={stride}:  {formula}{note}", fontsize=10)
    ax.set_xlim(-0.5, ox + m + 0.5)
    ax.set_ylim(-2.0, padded + 0.5)
    return fig


def plot_usage(n: int, f: int, pads: Sequence[int] = (0,), stride: int = 1) -> Figure:
    """Heat maps of ``usage_counts`` for each padding in ``pads``, counts written in the cells."""
    fig, axes = plt.subplots(1, len(pads), figsize=(4.2 * len(pads), 4.4), layout="constrained", squeeze=False)
    vmax = max(usage_counts(n, f, p, stride).max() for p in pads)
    for ax, p in zip(axes[0], pads):
        c = usage_counts(n, f, p, stride)
        im = ax.imshow(c, cmap="viridis", vmin=0, vmax=vmax)
        for (i, j), v in np.ndenumerate(c):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v < 0.6 * vmax else "black")
        out = shapes.conv_output_size(n, f, p, stride, strict=False)
        ax.set_title(f"pad {p}: output {out}x{out}\ncorner used {c[0, 0]}x, centre {c[n // 2, n // 2]}x", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label=f"windows ({f}x{f}) that read the pixel")
    return fig


def plot_pad_modes(img: np.ndarray, p: int, modes: Sequence[str] = ("zero", "constant", "reflect", "replicate"),
                   value: float = 0.5) -> Figure:
    """Show a 2-D image padded by ``p`` in each mode; a box marks the original image."""
    from cnnlab.numpy_ref import pad

    img = np.asarray(img, dtype=float)
    fig, axes = plt.subplots(1, len(modes), figsize=(3.4 * len(modes) + 0.8, 3.8), layout="constrained",
                             squeeze=False)
    for ax, mode in zip(axes[0], modes):
        padded = pad(img, p, mode=mode, value=value)
        im = ax.imshow(padded, cmap="gray", vmin=0, vmax=1)
        ax.add_patch(Rectangle((p - 0.5, p - 0.5), img.shape[1], img.shape[0], fill=False, edgecolor="#ff3030", lw=1.5))
        ax.set_title(mode + (f" (value {value:g})" if mode == "constant" else ""), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label="pixel value (0 black, 1 white)")
    fig.suptitle(f"{img.shape[0]}x{img.shape[1]} image padded by {p} pixels (red box: the original)", fontsize=11)
    return fig


def plot_stride_demo(img: np.ndarray, maps: Sequence[np.ndarray], titles: Sequence[str],
                     img_title: str = "input") -> Figure:
    """Show an image and signed feature maps of it; the maps share one symmetric diverging scale.

    Args:
        img: (H, W) grey image with values in [0, 1] (drawn with its own grey colour bar).
        maps: signed 2-D maps (edge responses at several strides), drawn on one scale from -m to m
            (m the largest absolute value among them) with one colour bar, so that equal colours
            mean equal values in every panel.
        titles: one title per map.
    """
    fig, axes = plt.subplots(1, len(maps) + 1, figsize=(3.6 * (len(maps) + 1) + 1.2, 3.9), layout="constrained")
    im = axes[0].imshow(img, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title(img_title, fontsize=10)
    fig.colorbar(im, ax=axes[0], shrink=0.8, label="pixel value")
    lim = max(float(np.max(np.abs(m))) for m in maps) or 1.0
    for ax, m, title in zip(axes[1:], maps, titles):
        sm = ax.imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_title(title, fontsize=10)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(sm, ax=list(axes[1:]), shrink=0.8, label="response (one scale for both maps)")
    return fig


def plot_receptive_field_growth(stacks: Mapping[str, Sequence[tuple[int, int]]]) -> Figure:
    """Plot the receptive field (``shapes.receptive_field``) after each layer of each stack."""
    fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
    finals = []
    for label, layers in stacks.items():
        depth = np.arange(len(layers) + 1)
        rf = [shapes.receptive_field(list(layers)[:d]) for d in depth]
        line, = ax.plot(depth, rf, "o-", label=label)
        finals.append((rf[-1], depth[-1], line.get_color()))
    # final values written at the right, spread apart so that close values stay readable
    gap = 0.06 * max(f[0] for f in finals)
    placed: list[float] = []
    for value, x, color in sorted(finals):
        y = max([value] + [p + gap for p in placed])
        placed.append(y)
        ax.annotate(str(value), (x, value), xytext=(x + 0.15, y), va="center", fontsize=9, color=color)
    ax.set_xlabel("number of layers")
    ax.set_ylabel("receptive field (pixels per side)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    return fig


def plot_receptive_field_tree(layers: Sequence[tuple[int, int]], n_in: int, ax: Axes | None = None,
                              title: str | None = None) -> Figure:
    """Draw a 1-D stack: every unit of every layer as a dot, and the units one top unit depends on.

    Args:
        layers: (kernel, stride) pairs, first layer first (no padding).
        n_in: input length.
    """
    sizes = [n_in]
    for k, s in layers:
        sizes.append(shapes.conv_output_size(sizes[-1], k, 0, s, strict=False))
    # position of unit i of layer l: the centre of its receptive field in input coordinates
    starts_jump = [(0.0, 1)]
    rf = [1]
    for k, s in layers:
        jump = starts_jump[-1][1]
        rf.append(rf[-1] + (k - 1) * jump)
        starts_jump.append((0.0, jump * s))
    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 0.9 * len(sizes) + 0.8), layout="constrained")
    else:
        fig = ax.figure

    def pos(level: int, i: int) -> float:
        return i * starts_jump[level][1] + (rf[level] - 1) / 2

    top = len(sizes) - 1
    lo = hi = sizes[top] // 2
    active = {top: (lo, hi)}
    for level in range(top, 0, -1):
        k, s = layers[level - 1]
        lo, hi = lo * s, hi * s + k - 1
        active[level - 1] = (lo, hi)
    for level, size in enumerate(sizes):
        a_lo, a_hi = active[level]
        xs = [pos(level, i) for i in range(size)]
        colors = ["#d62728" if a_lo <= i <= a_hi else "#bbbbbb" for i in range(size)]
        ax.scatter(xs, [level] * size, c=colors, s=40, zorder=3)
        if level > 0:
            k, s = layers[level - 1]
            for i in range(a_lo, a_hi + 1):
                for d in range(k):
                    ax.plot([pos(level, i), pos(level - 1, i * s + d)], [level, level - 1], color="#d62728",
                            lw=0.7, alpha=0.5, zorder=2)
        name = "input" if level == 0 else f"layer {level} (k={layers[level - 1][0]}, s={layers[level - 1][1]})"
        ax.text(-1.5, level, name, ha="right", va="center", fontsize=9)
    a_lo, a_hi = active[0]
    ax.set_title(title or f"one top unit sees {a_hi - a_lo + 1} input pixels "
                          f"(receptive_field = {shapes.receptive_field(list(layers))})", fontsize=10)
    ax.set_xlim(-12, n_in + 0.5)
    ax.set_ylim(-0.6, top + 0.6)
    ax.axis("off")
    return fig
