"""Figures for notebook 04 (convolution over volumes): channels, filters and output volumes.

- ``plot_channel_conv``: each input channel, its filter slice, the per-channel result and their sum.
- ``plot_volumes``: input volume -> F filters -> output volume, drawn as boxes with their sizes.
- ``plot_maps``: a row of 2-D maps (feature maps, kernels) on one colour scale, with an optional
  colour bar and values written in.
- ``plot_counts``: parameter counts of conv vs fully connected layers on a log scale.
- ``plot_timings``: bar chart of run times with the speed-up written on the bars.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

__all__ = ["plot_channel_conv", "plot_volumes", "plot_maps", "plot_counts", "plot_timings"]

_CHANNEL_NAMES = ("red", "green", "blue")


def _show(ax: Axes, img: np.ndarray, title: str, cmap: str = "gray", values: bool = False,
          vmin: float | None = None, vmax: float | None = None, fmt: str = "{:g}") -> Any:
    im = ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if values:
        for (i, j), v in np.ndenumerate(img):
            r, g, b_, _ = im.cmap(im.norm(v))
            dark = 0.299 * r + 0.587 * g + 0.114 * b_ < 0.5
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8, color="white" if dark else "black")
    return im


def plot_channel_conv(x: np.ndarray, w: np.ndarray, b: float = 0.0, title: str | None = None) -> Figure:
    """Draw a multi-channel convolution with one filter: channel by channel, then the sum.

    Args:
        x: (C, H, W) image (channel first), e.g. an RGB photo with C = 3.
        w: (C, KH, KW) one filter; its depth equals the input's.
        b: the filter's bias, added to the sum.
        title: figure title.

    Returns:
        The figure: one row per channel (input channel, filter slice, that channel's map), and on
        the right the output map, the sum over channels plus the bias.
    """
    x = np.asarray(x, dtype=float)
    w = np.asarray(w, dtype=float)
    if x.ndim != 3 or w.ndim != 3 or x.shape[0] != w.shape[0]:
        raise ValueError(f"x must be (C, H, W) and w (C, KH, KW) with the same C, got {x.shape} and {w.shape}")
    C = x.shape[0]
    from cnnlab.numpy_ref import corr2d

    maps = np.stack([corr2d(x[c], w[c]) for c in range(C)])
    out = maps.sum(axis=0) + b
    fig = plt.figure(figsize=(11.5, 2.3 * C + 0.6), layout="constrained")
    grid = fig.add_gridspec(C, 4, width_ratios=[1, 0.55, 1, 1.6])
    # the per-channel maps and their sum are the same kind of quantity: one symmetric scale for all
    lim = max(np.abs(maps).max(), np.abs(out).max(), 1e-12)
    wlim = max(np.abs(w).max(), 1e-12)
    map_axes, w_axes = [], []
    for c in range(C):
        name = _CHANNEL_NAMES[c] if C == 3 else f"channel {c}"
        ax = fig.add_subplot(grid[c, 0])
        if C == 3:  # show the channel in its own colour: bright = much of that colour
            tinted = np.zeros(x.shape[1:] + (3,))
            tinted[..., c] = x[c] / max(x.max(), 1e-12)
            ax.imshow(tinted, interpolation="nearest")
            ax.set_title(f"input: {name} channel", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            _show(ax, x[c], f"input: {name}", cmap="gray", vmin=0, vmax=max(x.max(), 1e-12))
        small = w.shape[1] * w.shape[2] <= 25
        w_axes.append(fig.add_subplot(grid[c, 1]))
        wim = _show(w_axes[-1], w[c], f"filter slice {c}", cmap="RdBu_r", values=small, vmin=-wlim, vmax=wlim)
        map_axes.append(fig.add_subplot(grid[c, 2]))
        _show(map_axes[-1], maps[c], f"{name} \u22c6 slice {c}", cmap="RdBu_r", vmin=-lim, vmax=lim)
    map_axes.append(fig.add_subplot(grid[:, 3]))
    mim = _show(map_axes[-1], out, "output = sum over channels" + (f" + b ({b:g})" if b else ""),
                cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(wim, ax=w_axes, shrink=0.6, label="filter weight", location="left")
    fig.colorbar(mim, ax=map_axes, shrink=0.6, label="response (one scale for all maps)")
    if title:
        fig.suptitle(title)
    return fig


def _box(ax: Axes, x0: float, y0: float, width: float, height: float, depth: float, color: str,
         label: str | None = None, alpha: float = 0.85) -> None:
    """Draw an oblique box: front face width x height at (x0, y0), receding by depth up and right."""
    dx, dy = 0.5 * depth, 0.35 * depth
    front = [(x0, y0), (x0 + width, y0), (x0 + width, y0 + height), (x0, y0 + height)]
    top = [(x0, y0 + height), (x0 + width, y0 + height), (x0 + width + dx, y0 + height + dy), (x0 + dx, y0 + height + dy)]
    side = [(x0 + width, y0), (x0 + width + dx, y0 + dy), (x0 + width + dx, y0 + height + dy), (x0 + width, y0 + height)]
    for face, shade in ((front, 1.0), (top, 0.8), (side, 0.65)):
        rgb = np.array(plt.matplotlib.colors.to_rgb(color)) * shade
        ax.add_patch(Polygon(face, closed=True, facecolor=rgb, edgecolor="black", lw=0.8, alpha=alpha))
    if label:
        ax.text(x0 + width / 2, y0 - 0.35, label, ha="center", va="top", fontsize=9)


def plot_volumes(in_shape: Sequence[int], n_filters: int, k: int | tuple[int, int], out_shape: Sequence[int],
                 stride: int = 1, pad: int = 0, ax: Axes | None = None) -> Figure:
    """Draw one conv layer as volumes: (C, H, W) input, F filters of C x KH x KW, (F, H', W') output.

    Box sizes grow with the sizes they stand for (on a square-root scale, so small and large
    layers both fit); the labels give the exact numbers.
    """
    C, H, W = (int(v) for v in in_shape)
    F, Ho, Wo = (int(v) for v in out_shape)
    kh, kw = (k, k) if isinstance(k, int) else k
    if ax is None:
        fig, ax = plt.subplots(figsize=(10, 3.4), layout="constrained")
    else:
        fig = ax.figure

    def s(v: float) -> float:
        return 0.55 * np.sqrt(v)

    x = 0.0
    _box(ax, x, 0, s(W), s(H), s(C), "#c9d9f0", f"input\n{H} x {W} x {C}\n(H x W x C)")
    x += s(W) + s(C) * 0.5 + 1.6
    ax.annotate("", xy=(x - 0.2, s(H) / 2), xytext=(x - 1.4, s(H) / 2), arrowprops=dict(arrowstyle="->"))
    shown = min(F, 4)
    fx = x
    for i in range(shown):
        _box(ax, fx + 0.35 * i, 0.3 * i, s(kw), s(kh), s(C), "#f4c27a")
    ax.text(fx + s(kw) / 2 + 0.5, -0.35, f"{F} filter{'s' if F > 1 else ''}\n{kh} x {kw} x {C} each"
            f"\n+ {F} bias{'es' if F > 1 else ''}", ha="center", va="top", fontsize=9)
    x = fx + s(kw) + s(C) * 0.5 + 0.35 * shown + 1.8
    ax.annotate("", xy=(x - 0.2, s(H) / 2), xytext=(x - 1.4, s(H) / 2), arrowprops=dict(arrowstyle="->"))
    ax.text(x - 0.8, s(H) / 2 + 0.25, f"stride {stride}\npad {pad}", ha="center", va="bottom", fontsize=8)
    _box(ax, x, 0, s(Wo), s(Ho), s(F), "#9fd3a8", f"output\n{Ho} x {Wo} x {F}\n(depth = number of filters)")
    x += s(Wo) + s(F) * 0.5
    ax.set_xlim(-0.5, x + 0.5)
    ax.set_ylim(-2.4, max(s(H), s(Ho)) + 0.5 * max(s(C), s(F)) + 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


def plot_maps(maps: Sequence[np.ndarray], titles: Sequence[str] | None = None, values: bool = False,
              cmap: str = "gray", suptitle: str | None = None, fmt: str = "{:g}", symmetric: bool = False,
              colorbar: str | None = None) -> Figure:
    """Draw 2-D arrays side by side (feature maps or kernels) on ONE colour scale; ``values`` writes each entry in.

    Args:
        maps: 2-D arrays of one kind of quantity.
        symmetric: a scale from -m to m (m the largest absolute value), for signed maps with a
            diverging ``cmap``; otherwise from the smallest to the largest value of all maps.
        colorbar: the colour bar's label; None draws no colour bar.
    """
    n = len(maps)
    arrays = [np.asarray(m, dtype=float) for m in maps]
    fig, axes = plt.subplots(1, n, figsize=(2.6 * n + (1.0 if colorbar else 0.0), 2.9), layout="constrained",
                             squeeze=False)
    if symmetric:
        lim = max(max(float(np.abs(m).max()) for m in arrays), 1e-12)
        vmin, vmax = -lim, lim
    else:
        vmin, vmax = min(float(m.min()) for m in arrays), max(float(m.max()) for m in arrays)
    im = None
    for i, (ax, m) in enumerate(zip(axes[0], arrays)):
        im = _show(ax, m, titles[i] if titles else "", cmap=cmap, values=values, fmt=fmt, vmin=vmin, vmax=vmax)
    if colorbar and im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85, label=colorbar)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_counts(labels: Sequence[str], conv: Sequence[int], fc: Sequence[int]) -> Figure:
    """Bar chart (log scale) of parameter counts: a conv layer vs the FC layer with the same input and output sizes."""
    y = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(9, 0.9 * len(labels) + 1.2), layout="constrained")
    ax.barh(y + 0.2, conv, height=0.38, color="#4c8bd6", label="conv layer")
    ax.barh(y - 0.2, fc, height=0.38, color="#d6794c", label="fully connected, same input and output")
    for yi, c, f in zip(y, conv, fc):
        ax.text(c * 1.15, yi + 0.2, f"{c:,}", va="center", fontsize=9)
        ax.text(f * 1.15, yi - 0.2, f"{f:,}  ({f / c:,.0f}x more)", va="center", fontsize=9)
    ax.set_yticks(y, labels)
    ax.set_xscale("log")
    ax.set_xlim(10, max(fc) * 60)
    ax.set_xlabel("parameters (log scale)")
    ax.invert_yaxis()
    ax.legend(loc="lower right", fontsize=9)
    return fig


def plot_timings(timings: Mapping[str, float], title: str = "") -> Figure:
    """Bar chart of run times in milliseconds; each bar is labelled with its speed-up over the slowest."""
    names = list(timings)
    ms = np.array([timings[n] * 1e3 for n in names])
    fig, ax = plt.subplots(figsize=(7, 0.7 * len(names) + 1.2), layout="constrained")
    ax.barh(names, ms, color=["#d6794c" if m == ms.max() else "#4c8bd6" for m in ms])
    for i, m in enumerate(ms):
        ax.text(m, i, f"  {m:.2f} ms" + (f"  ({ms.max() / m:.0f}x faster)" if m < ms.max() else ""),
                va="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_xlim(ms.min() / 2, ms.max() * 30)
    ax.set_xlabel("time per call (ms, log scale)")
    ax.invert_yaxis()
    if title:
        ax.set_title(title)
    return fig
