"""Figures for notebook 07 (LeNet-5): the layer table, digits, training curves, filters, feature maps,
the confusion matrix and the misclassified examples.

- ``plot_table``: parameters and activation sizes per layer, side by side (where the weights are).
- ``plot_digits``: a grid of images with their labels.
- ``plot_losses``: training loss per step for one or more runs (with a moving average).
- ``plot_filters``: first-layer filters on one symmetric diverging scale with a colour bar.
- ``plot_feature_maps``: one image through the layers: conv1, pool1, conv2, pool2, fc3, fc4, the scores
  (``blank_maps``: the maps a ReLU left all zero, marked in the figure).
- ``plot_confusion``: the confusion matrix with its counts written in.
- ``plot_misclassified``: the test images the network got wrong, with true and predicted labels.
- ``plot_speed``: images per second of several implementations.
- ``plot_errors``: test errors of several networks beside the 1998 paper's.
- ``plot_prototypes``: the 1998 output layer's fixed 7x12 prototypes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_table", "plot_digits", "plot_losses", "plot_filters", "plot_feature_maps", "blank_maps",
           "plot_confusion", "plot_misclassified", "plot_speed", "plot_errors", "plot_prototypes"]


def _off(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def plot_table(rows: Sequence[Any], title: str = "") -> Figure:
    """Draw parameters and activations per layer as two bar charts (rows: ``cnnlab.shapes.LayerRow``)."""
    names = [r.name for r in rows]
    params = np.array([r.params for r in rows], dtype=float)
    acts = np.array([r.activations for r in rows], dtype=float)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
    y = np.arange(len(rows))
    for ax, values, label, colour in ((axes[0], params, "trainable parameters", "#c2185b"),
                                      (axes[1], acts, "activations per image (output size)", "#1565c0")):
        ax.barh(y, values, color=colour)
        top = values.max() if values.size else 1
        for i, v in enumerate(values):
            ax.text(v + 0.01 * top, i, f"{int(v):,}", va="center", fontsize=8)
        ax.set_xlim(0, top * 1.25)
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names)
    axes[0].invert_yaxis()
    share = params[[i for i, r in enumerate(rows) if r.kind == "fc"]].sum() / max(params.sum(), 1)
    axes[0].set_title(f"parameters: {share:.0%} in the FC layers", fontsize=10)
    axes[1].set_title("activations: large early, small late", fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_digits(X: np.ndarray, y: Sequence[int], n: int = 12, title: str = "") -> Figure:
    """Show the first ``n`` images of X (N, 1, H, W) with their labels."""
    n = min(n, len(X))
    cols = min(n, 12)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.5 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        _off(ax)
        if i < n:
            ax.imshow(X[i, 0], cmap="gray_r")
            ax.set_title(f"label {int(y[i])}", fontsize=9)
        else:
            ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_losses(curves: Mapping[str, Sequence[float]], xlabel: str = "step", title: str = "training loss") -> Figure:
    """Plot each curve (loss per step, light) with its moving average (dark)."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for i, (name, values) in enumerate(curves.items()):
        v = np.asarray(values, dtype=float)
        colour = f"C{i}"
        ax.plot(v, color=colour, alpha=0.3, lw=1)
        k = max(1, min(20, len(v) // 10))
        if len(v) >= k > 1:
            smooth = np.convolve(v, np.ones(k) / k, mode="valid")
            ax.plot(np.arange(k - 1, len(v)), smooth, color=colour, lw=2, label=f"{name} (mean of {k} steps)")
        else:
            ax.plot(v, color=colour, lw=2, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("softmax cross-entropy")
    ax.set_title(title)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_filters(W: np.ndarray, title: str = "learned first-layer filters") -> Figure:
    """Show filters W (F, C, k, k) (channel 0) on one symmetric diverging scale with a colour bar."""
    W = np.asarray(W, dtype=float)[:, 0]
    f = W.shape[0]
    lim = float(np.abs(W).max()) or 1.0
    fig, axes = plt.subplots(1, f, figsize=(1.7 * f + 1.2, 2.2), squeeze=False)
    im = None
    for i, ax in enumerate(axes[0]):
        im = ax.imshow(W[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"filter {i + 1}", fontsize=9)
        _off(ax)
    fig.colorbar(im, ax=list(axes[0]), fraction=0.03, pad=0.02, label="weight")
    fig.suptitle(title, fontsize=10)
    return fig


def blank_maps(maps: np.ndarray) -> list[int]:
    """The indices of the maps (C, H, W) that are zero everywhere (a ReLU that found nothing)."""
    maps = np.asarray(maps)
    return [c for c in range(maps.shape[0]) if not np.any(maps[c])]


def plot_feature_maps(image: np.ndarray, features: Mapping[str, np.ndarray], label: Any = None,
                      names: Sequence[str] = ("conv1", "pool1", "conv2", "pool2"),
                      vectors: Sequence[str] = ("fc3", "fc4", "scores"), per_row: int = 8,
                      title: str = "one digit through LeNet-5") -> Figure:
    """Follow one image (1, H, W) through the layers: the input large on the left, each layer's maps
    (after the ReLU) in rows of ``per_row`` on the right, the FC layers' values and the scores below.

    ``features`` maps a layer name to its output for this image: (C, H, W) maps, or (D,) vectors
    (``vectors``). Each layer's maps share one colour scale (its colour bar on the right); a map that
    is zero everywhere (its ReLU found nothing in this digit) is drawn grey and marked "0".
    """
    rows: list[tuple[str, np.ndarray, int]] = []          # (layer, maps, first map of this row)
    for name in names:
        if name in features:
            maps = np.asarray(features[name], dtype=float)
            for start in range(0, maps.shape[0], per_row):
                rows.append((name, maps, start))
    n_rows = len(rows)
    fig = plt.figure(figsize=(2.6 + 1.05 * per_row + 1.4, 1.0 * n_rows + 2.9))
    grid = fig.add_gridspec(n_rows + 1, per_row + 3, height_ratios=[1.0] * n_rows + [2.0],
                            width_ratios=[2.6, 0.9] + [1.0] * per_row + [0.12], hspace=0.25, wspace=0.12,
                            left=0.02, right=0.95, top=1 - 0.45 / fig.get_figheight(),
                            bottom=0.55 / fig.get_figheight())
    ax = fig.add_subplot(grid[:min(3, n_rows), 0])
    img = np.asarray(image, dtype=float)[0]
    ax.imshow(img, cmap="gray_r")
    _off(ax)
    ax.set_title("input" + (f", label {label}" if label is not None else "") + f"\n{img.shape[0]}x{img.shape[1]}",
                 fontsize=10)
    for r, (name, maps, start) in enumerate(rows):
        vmax = float(maps.max()) or 1.0
        blank = set(blank_maps(maps))
        im = None
        for c in range(start, min(start + per_row, maps.shape[0])):
            ax = fig.add_subplot(grid[r, 2 + c - start])
            if c in blank:
                ax.imshow(np.zeros_like(maps[c]), cmap="Greys", vmin=-1, vmax=4)
                ax.text(0.5, 0.5, "0", transform=ax.transAxes, ha="center", va="center", fontsize=9, color="#555555")
            else:
                im = ax.imshow(maps[c], cmap="magma", vmin=0, vmax=vmax)
            _off(ax)
        if start == 0:
            fig.text(grid[r, 1].get_position(fig).x1, grid[r, 1].get_position(fig).y0
                     + grid[r, 1].get_position(fig).height / 2,
                     f"{name}\n{maps.shape[0]} maps\n{maps.shape[1]}x{maps.shape[2]}"
                     + (f"\n{len(blank)} all 0" if blank else ""), ha="right", va="center", fontsize=8.5)
            if im is not None:
                fig.colorbar(im, cax=fig.add_subplot(grid[r, per_row + 2]))
    bottom = grid[n_rows, :per_row + 2].subgridspec(1, len(vectors), wspace=0.3)
    for j, name in enumerate(vectors):
        if name not in features:
            continue
        v = np.asarray(features[name], dtype=float).ravel()
        ax = fig.add_subplot(bottom[0, j])
        top = int(np.argmax(v))
        colours = ["#c62828" if (name == "scores" and i == top) else "#455a64" for i in range(v.size)]
        ax.bar(np.arange(v.size), v, color=colours, width=0.9)
        if name == "scores":
            ax.set_title(f"scores (fc5): predicted {top}", fontsize=9)
            ax.set_xticks(range(v.size))
        else:
            ax.set_title(f"{name} after ReLU: {int(np.count_nonzero(v))} of {v.size} non-zero", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{title} (maps after ReLU; each layer on its own colour scale)", fontsize=10)
    return fig


def plot_confusion(cm: np.ndarray, title: str = "confusion matrix") -> Figure:
    """Draw a confusion matrix (true class down, predicted across) with counts written in."""
    cm = np.asarray(cm)
    k = cm.shape[0]
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    im = ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if v > cm.max() / 2 else ("#c62828" if i != j else "black"))
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    acc = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(f"{title}\n{cm.sum():,} test images, accuracy {acc:.2%}", fontsize=10)
    fig.colorbar(im, ax=ax, label="images")
    fig.tight_layout()
    return fig


def plot_misclassified(X: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, n: int = 16,
                       title: str = "misclassified test images") -> Figure:
    """Show up to ``n`` images where the prediction differs from the label ("true 4 -> said 9")."""
    wrong = np.flatnonzero(np.asarray(y_true) != np.asarray(y_pred))[:n]
    cols = 8
    rows = max(1, (len(wrong) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.45 * cols, 2.3 * rows + 0.3), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.axis("on")
        _off(ax)
        ax.imshow(X[i, 0], cmap="gray_r")
        ax.set_title(f"true {int(y_true[i])}\nsaid {int(y_pred[i])}", fontsize=9, color="#c62828")
    total = int(np.sum(np.asarray(y_true) != np.asarray(y_pred)))
    fig.suptitle(f"{title}: {len(wrong)} of {total} shown", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.88 if rows == 1 else 0.94), h_pad=1.5)
    return fig


def plot_speed(rates: Mapping[str, float], title: str = "training speed (same images, batches of 32, one thread each)") -> Figure:
    """Bar chart of images per second, with the ratio to the fastest written on each bar."""
    names = list(rates)
    values = np.array([rates[k] for k in names], dtype=float)
    fig, ax = plt.subplots(figsize=(6.5, 0.7 * len(names) + 1.2))
    ax.barh(names, values, color=["C0", "C1", "C2", "C3"][: len(names)])
    top = values.max()
    for i, v in enumerate(values):
        ax.text(v + 0.01 * top, i, f"{v:,.0f} images/s ({v / top:.2f}x)", va="center", fontsize=9)
    ax.set_xlim(0, top * 1.65)
    ax.invert_yaxis()
    ax.set_xlabel("training images per second (higher is faster)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_errors(errors: Mapping[str, float], paper: float = 0.0095,
                title: str = "test error on MNIST's 10,000 test images") -> Figure:
    """Bar chart of test errors (fractions) with the 1998 paper's LeNet-5 (0.95%) as a line."""
    names = list(errors)
    values = 100 * np.array([errors[k] for k in names], dtype=float)
    fig, ax = plt.subplots(figsize=(7, 0.65 * len(names) + 1.4))
    ax.barh(names, values, color=[f"C{i}" for i in range(len(names))])
    top = max(values.max(), 100 * paper)
    for i, v in enumerate(values):
        ax.text(v + 0.01 * top, i, f"{v:.2f}%", va="center", fontsize=9)
    ax.axvline(100 * paper, color="black", ls="--", lw=1)
    ax.text(100 * paper, -0.62, f" the 1998 paper, on MNIST: {100 * paper:.2f}%", fontsize=8.5, va="bottom")
    ax.set_xlim(0, top * 1.3)
    ax.set_ylim(len(names) - 0.5, -0.9)
    ax.set_xlabel("test error (%), lower is better")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_prototypes(protos: np.ndarray, title: str = "the RBF output layer's fixed prototypes (7x12, +1 dark, -1 light)") -> Figure:
    """Show the 10 prototypes (10, 84) of +1 and -1 as 12x7 bitmaps."""
    protos = np.asarray(protos, dtype=float)
    fig, axes = plt.subplots(1, len(protos), figsize=(0.85 * len(protos) + 0.4, 1.9), squeeze=False)
    for k, ax in enumerate(axes[0]):
        ax.imshow(protos[k].reshape(12, 7), cmap="gray_r", vmin=-1, vmax=1)
        ax.set_title(str(k), fontsize=10)
        _off(ax)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
