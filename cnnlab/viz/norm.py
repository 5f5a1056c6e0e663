"""Figures for notebook 06: normalisation layers.

- :func:`plot_norm_cubes`: which axes batch, layer, instance and group norm take their statistics over
  (the N / C / H*W cube of Wu and He's group-norm paper, drawn from scratch)
- :func:`plot_layer_stats`: the spread of the activations layer by layer in a deep net
- :func:`plot_feature_histograms`: features before and after batch normalisation
- :func:`plot_running_stats`: running averages converging to the data's mean and variance
- :func:`plot_batch_dependence`: one example's output in train mode (depends on its batch) and test mode
- :func:`plot_loss_curves`: the same net trained with and without batch norm, side by side
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_norm_cubes", "plot_layer_stats", "plot_feature_histograms", "plot_running_stats",
           "plot_batch_dependence", "plot_loss_curves", "NORM_GROUPS"]

#: for each normalisation, the boolean mask over an (N, C, HW) grid of the values that share one
#: mean and variance (the first sample's first group), as a function of (N, C, HW, G)
NORM_GROUPS = {
    "Batch norm": "per channel, over N, H, W",
    "Layer norm": "per sample, over C, H, W",
    "Instance norm": "per sample and channel, over H, W",
    "Group norm": "per sample and group of channels,\nover the group's C, H, W",
}


def _mask(kind: str, n: int, c: int, hw: int, groups: int) -> np.ndarray:
    m = np.zeros((n, c, hw), dtype=bool)
    if kind == "Batch norm":
        m[:, 0, :] = True
    elif kind == "Layer norm":
        m[0, :, :] = True
    elif kind == "Instance norm":
        m[0, 0, :] = True
    elif kind == "Group norm":
        m[0, : c // groups, :] = True
    else:
        raise ValueError(f"unknown normalisation {kind!r}; choose from {list(NORM_GROUPS)}")
    return m


def _visible_faces(mask: np.ndarray) -> Any:
    """The three faces of the (N, C, HW) cube seen from the front left (sample 0, channel 0, the top),
    one quad per cell, blue where ``mask`` is set; axes x = C, y = N, z = H*W."""
    from matplotlib.colors import to_rgb
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    n, c, hw = mask.shape
    quads, colours = [], []

    def add(corners: list[tuple[float, float, float]], on: bool, shade: float) -> None:
        quads.append(corners)
        colours.append(tuple(shade * v for v in to_rgb("#1f77b4" if on else "#dfe6ee")))

    for ci in range(c):  # front face: sample 0 (y = 0), all channels and positions
        for zi in range(hw):
            add([(ci, 0, zi), (ci + 1, 0, zi), (ci + 1, 0, zi + 1), (ci, 0, zi + 1)], mask[0, ci, zi], 1.0)
    for ni in range(n):  # left face: channel 0 (x = 0), all samples and positions
        for zi in range(hw):
            add([(0, ni, zi), (0, ni + 1, zi), (0, ni + 1, zi + 1), (0, ni, zi + 1)], mask[ni, 0, zi], 0.8)
    for ci in range(c):  # top face: the last position of every sample and channel
        for ni in range(n):
            add([(ci, ni, hw), (ci + 1, ni, hw), (ci + 1, ni + 1, hw), (ci, ni + 1, hw)], mask[ni, ci, hw - 1], 0.92)
    return Poly3DCollection(quads, facecolors=colours, edgecolors="#4a5a6a", linewidths=0.5)


def plot_norm_cubes(n: int = 5, c: int = 6, hw: int = 4, groups: int = 3) -> Figure:
    """Draw the (N, C, H*W) cube four times, shading the values one mean and variance are taken over.

    Args:
        n, c, hw: the cube's size along the batch, channel and (flattened) spatial axes.
        groups: number of channel groups for group norm (must divide c).

    Returns:
        The figure (four 3-D panels: batch, layer, instance and group norm).
    """
    if c % groups:
        raise ValueError(f"groups={groups} must divide c={c}")
    fig = plt.figure(figsize=(15, 5.2))
    for i, kind in enumerate(NORM_GROUPS):
        ax = fig.add_subplot(1, 4, i + 1, projection="3d")
        mask = _mask(kind, n, c, hw, groups)
        ax.add_collection3d(_visible_faces(mask))
        ax.set_xlim(0, c)
        ax.set_ylim(0, n)
        ax.set_zlim(0, hw)
        ax.set_xlabel("C (channels)", labelpad=-10)
        ax.set_ylabel("N (batch)", labelpad=-10)
        ax.set_zlabel("H, W (positions)", labelpad=-10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_zticks([])
        ax.set_box_aspect((c, n, hw))
        ax.view_init(elev=24, azim=-125)
        title = kind + (f" (G={groups})" if kind == "Group norm" else "")
        ax.set_title(f"{title}\n{NORM_GROUPS[kind]}", fontsize=10)
    fig.suptitle("Blue: the values that share one mean and variance (one group shown; every group gets its own).\n"
                 "gamma and beta are per channel (C,) in all four.", fontsize=10, y=0.02, va="bottom")
    fig.subplots_adjust(left=0.02, right=0.98, top=0.86, bottom=0.14, wspace=0.05)
    return fig


def plot_layer_stats(stats: Mapping[str, Sequence[float]], ylabel: str = "std of the activations",
                     title: str = "Spread of the activations, layer by layer", dashed: Sequence[str] = ()) -> Figure:
    """Plot one line per setting of a per-layer statistic (log scale).

    Args:
        stats: {label: per-layer values}.
        dashed: labels drawn dashed with hollow markers (lines that may lie on top of others).
    """
    fig, ax = plt.subplots(figsize=(9.5, 3.8))
    for k, (label, values) in enumerate(stats.items()):
        style = dict(ls="--", marker="s", mfc="none", ms=9 - 3 * (k % 2)) if label in dashed else dict(marker="o")
        ax.semilogy(np.arange(1, len(values) + 1), values, label=label, **style)
    ax.set_xlabel("layer")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def plot_feature_histograms(before: np.ndarray, after: np.ndarray, max_features: int = 3) -> Figure:
    """Histograms of a few features of an (N, D) batch before and after batch normalisation."""
    d = min(before.shape[1], max_features)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    for j in range(d):
        axes[0].hist(before[:, j], bins=30, alpha=0.6, label=f"feature {j}")
        axes[1].hist(after[:, j], bins=30, alpha=0.6, label=f"feature {j}")
    axes[0].set_title("before: each feature has its own mean and spread")
    axes[1].set_title("after (gamma = 1, beta = 0): mean 0, variance 1 each")
    for ax in axes:
        ax.set_xlabel("value")
        ax.set_ylabel("count")
        ax.legend()
    fig.tight_layout()
    return fig


def plot_running_stats(means: np.ndarray, variances: np.ndarray, true_mean: np.ndarray, true_var: np.ndarray,
                       momentum: float) -> Figure:
    """Running mean and variance of a few features after each training step, with the data's values dashed.

    Args:
        means, variances: (steps, D) running statistics after each step.
        true_mean, true_var: (D,) the statistics of the whole data set.
    """
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    steps = np.arange(1, len(means) + 1)
    for j in range(means.shape[1]):
        line, = axes[0].plot(steps, means[:, j], label=f"feature {j}")
        axes[0].axhline(true_mean[j], color=line.get_color(), ls="--", lw=1)
        line, = axes[1].plot(steps, variances[:, j], label=f"feature {j}")
        axes[1].axhline(true_var[j], color=line.get_color(), ls="--", lw=1)
    axes[0].set_title(f"running_mean (momentum {momentum:g}); dashed: data mean")
    axes[1].set_title("running_var; dashed: data variance")
    for ax in axes:
        ax.set_xlabel("training step (one batch each)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_batch_dependence(train_outputs: np.ndarray, test_outputs: np.ndarray, feature: int = 0) -> Figure:
    """One example's normalised feature when it sits in different batches: train mode vs test mode.

    Args:
        train_outputs, test_outputs: (B,) the example's output in each of B batches.
    """
    fig, ax = plt.subplots(figsize=(7, 3.4))
    b = np.arange(1, len(train_outputs) + 1)
    ax.plot(b, train_outputs, "o-", label="train mode (batch statistics)")
    ax.plot(b, test_outputs, "s-", label="test mode (running statistics)")
    ax.set_xticks(b)
    ax.set_xlabel("the same example, evaluated inside batch number ...")
    ax.set_ylabel(f"its output, feature {feature}")
    ax.set_title("In train mode an example's output depends on its batch-mates")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_loss_curves(results: Mapping[str, Mapping[str, Sequence[float]]], smooth: int = 10,
                     ymax: float = 3.0) -> Figure:
    """Training-loss curves side by side: one panel per setting, one line per net.

    A run whose loss becomes NaN, infinite or larger than ``10 * ymax`` is marked "diverged" with a
    cross where that happens; the curve stops there.

    Args:
        results: {panel title: {line label: losses per step}}.
        smooth: width of the moving average drawn over the raw (faint) curve.
        ymax: top of the loss axis (chance level for 10 classes is ln 10 = 2.30).
    """
    panels = list(results)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), sharey=True, squeeze=False)
    for ax, title in zip(axes[0], panels):
        for label, losses in results[title].items():
            losses = np.asarray(losses, dtype=float)
            bad = np.flatnonzero(~np.isfinite(losses) | (losses > 10 * ymax))
            if bad.size:
                losses = losses[: bad[0]]
                label = f"{label} (diverged at step {bad[0] + 1})"
            steps = np.arange(1, len(losses) + 1)
            line, = ax.plot(steps, losses, alpha=0.25)
            if bad.size:
                ax.plot([bad[0] + 1], [ymax * 0.97], "x", ms=12, mew=3, color=line.get_color())
            k = max(1, min(smooth, len(losses)))
            avg = np.convolve(losses, np.ones(k) / k, mode="valid")
            ax.plot(steps[k - 1:], avg, color=line.get_color(), label=label)
        ax.axhline(np.log(10), color="grey", ls=":", lw=1)
        ax.set_ylim(0, ymax)
        ax.set_title(title)
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left")
    axes[0][-1].text(0.98, np.log(10) + 0.05, "chance (ln 10)", color="grey", fontsize=8, ha="right",
                     transform=axes[0][-1].get_yaxis_transform())
    axes[0][0].set_ylabel("training loss (cross-entropy)")
    fig.tight_layout()
    return fig
