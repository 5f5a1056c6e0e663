"""Figures for notebook 07 (LeNet-5): the layer table, digits, training curves, filters, feature maps,
the confusion matrix and the misclassified examples.

- ``plot_table``: parameters and activation sizes per layer, side by side (where the weights are).
- ``plot_digits``: a grid of images with their labels.
- ``plot_losses``: training loss per step for one or more runs (with a moving average).
- ``plot_filters``: first-layer filters on one symmetric diverging scale with a colour bar.
- ``plot_feature_maps``: one image through the layers: conv1, pool1, conv2, pool2, fc1, fc2, scores.
- ``plot_confusion``: the confusion matrix with its counts written in.
- ``plot_misclassified``: the test images the network got wrong, with true and predicted labels.
- ``plot_speed``: images per second of several implementations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_table", "plot_digits", "plot_losses", "plot_filters", "plot_feature_maps", "plot_confusion",
           "plot_misclassified", "plot_speed"]


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


def plot_feature_maps(image: np.ndarray, features: Mapping[str, np.ndarray], label: Any = None,
                      names: Sequence[str] = ("conv1", "pool1", "conv2", "pool2")) -> Figure:
    """Follow one image (1, H, W) through the layers: one row per feature-map layer, then fc1, fc2 and the scores.

    ``features`` maps a layer name to its output for this image: (C, H, W) maps after the ReLU, or
    (D,) vectors ('fc1', 'fc2', 'scores').  Each row shares one colour scale (colour bar on the right).
    """
    rows = [n for n in names if n in features]
    width = max([features[n].shape[0] for n in rows] + [8])
    cols = min(width, 16)
    fig = plt.figure(figsize=(1.0 * cols + 2.0, 1.25 * (len(rows) + 1) + 2.6))
    grid = fig.add_gridspec(len(rows) + 2, cols + 1, height_ratios=[1.1] * (len(rows) + 1) + [1.6],
                            width_ratios=[1] * cols + [0.08])
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(np.asarray(image)[0], cmap="gray_r")
    _off(ax)
    ax.set_title("input" + (f" (label {label})" if label is not None else ""), fontsize=9, loc="left")
    for r, name in enumerate(rows, start=1):
        maps = np.asarray(features[name], dtype=float)
        vmax = float(maps.max()) or 1.0
        im = None
        for c in range(min(maps.shape[0], cols)):
            ax = fig.add_subplot(grid[r, c])
            im = ax.imshow(maps[c], cmap="magma", vmin=0, vmax=vmax)
            _off(ax)
            if c == 0:
                ax.set_ylabel(f"{name}\n{maps.shape[1]}x{maps.shape[2]}", fontsize=9, rotation=0, ha="right", va="center")
        cax = fig.add_subplot(grid[r, cols])
        fig.colorbar(im, cax=cax)
    bottom = grid[len(rows) + 1, :cols].subgridspec(1, 3, wspace=0.35)
    for j, name in enumerate(("fc1", "fc2", "scores")):
        if name not in features:
            continue
        v = np.asarray(features[name], dtype=float).ravel()
        ax = fig.add_subplot(bottom[0, j])
        colours = ["#c62828" if (name == "scores" and i == int(np.argmax(v))) else "#455a64" for i in range(v.size)]
        ax.bar(np.arange(v.size), v, color=colours, width=0.9)
        ax.set_title(f"{name} ({v.size} values)" if name != "scores" else f"scores: predicted {int(np.argmax(v))}",
                     fontsize=9)
        if name == "scores":
            ax.set_xticks(range(v.size))
        ax.tick_params(labelsize=7)
    fig.suptitle("one digit through LeNet-5 (maps after ReLU; each row on its own scale)", fontsize=10)
    fig.subplots_adjust(top=0.93, bottom=0.05)
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
    fig, axes = plt.subplots(rows, cols, figsize=(1.45 * cols, 2.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, wrong):
        ax.axis("on")
        _off(ax)
        ax.imshow(X[i, 0], cmap="gray_r")
        ax.set_title(f"true {int(y_true[i])}\nsaid {int(y_pred[i])}", fontsize=9, color="#c62828")
    total = int(np.sum(np.asarray(y_true) != np.asarray(y_pred)))
    fig.suptitle(f"{title}: {len(wrong)} of {total} shown", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.88 if rows == 1 else 0.94))
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
    ax.set_xlim(0, top * 1.5)
    ax.invert_yaxis()
    ax.set_xlabel("training images per second (higher is faster)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig
