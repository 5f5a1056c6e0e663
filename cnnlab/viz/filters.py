"""Figures for notebook 02 (filters): annotated small arrays, the sliding window, kernel galleries, learning curves."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

__all__ = ["show_matrix", "plot_filter_outputs", "plot_window_step", "show_images", "kernel_gallery", "plot_kernel_learning", "plot_kernels"]


def _plt():
    import matplotlib.pyplot as plt

    return plt


def _signed_limits(a: np.ndarray) -> tuple[float, float]:
    m = float(np.max(np.abs(a))) if a.size else 1.0
    m = m or 1.0
    return -m, m


def show_matrix(a: np.ndarray, ax=None, title: str = "", fmt: str = "{:g}", highlight: tuple | None = None,
                signed: bool | None = None, fontsize: int | None = None, vlim: float | None = None,
                colorbar: bool = False):
    """Draw a small 2-D array as coloured cells with each value written in it.

    Args:
        a: (H, W) array, small enough to read (up to about 12 x 12).
        ax: matplotlib Axes to draw into (a new figure when None).
        title: Axes title.
        fmt: format for each value.
        highlight: optional (row, col, height, width) rectangle drawn in red.
        signed: colour with a diverging map centred at 0 (default: when the array has negative values).
        fontsize: value font size (default: scaled with the array size).
        vlim: for a signed array, the colour scale runs from -vlim to vlim (share one scale between
            several panels); default: the array's largest absolute value.
        colorbar: draw a colour bar beside the Axes.

    Returns:
        The Axes (its image is ``ax.images[-1]``, for a colour bar shared with other panels).
    """
    plt = _plt()
    a = np.asarray(a, dtype=float)
    if a.ndim != 2:
        raise ValueError(f"show_matrix needs a 2-D array, got shape {a.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.5 * a.shape[1] + 1, 0.5 * a.shape[0] + 1))
    signed = bool((a < 0).any()) if signed is None else signed
    if signed:
        vmin, vmax = (-float(vlim), float(vlim)) if vlim else _signed_limits(a)
        cmap = "RdBu_r"
    else:
        vmin, vmax, cmap = min(0.0, float(a.min())), max(float(a.max()), 1e-12), "gray"  # bright = large
    image = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax)
    fs = fontsize or (12 if max(a.shape) <= 6 else 9)
    for (i, j), v in np.ndenumerate(a):
        shade = (v - vmin) / (vmax - vmin + 1e-12)
        dark = shade < 0.45 if not signed else abs(v) > 0.6 * vmax
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=fs, color="white" if dark else "black")
    ax.set_xticks(np.arange(a.shape[1]))
    ax.set_yticks(np.arange(a.shape[0]))
    ax.tick_params(length=0, labelsize=8)
    ax.set_xticks(np.arange(-0.5, a.shape[1]), minor=True)
    ax.set_yticks(np.arange(-0.5, a.shape[0]), minor=True)
    ax.grid(which="minor", color="0.6", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    if highlight is not None:
        from matplotlib.patches import Rectangle

        r, c, h, w = highlight
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), w, h, fill=False, edgecolor="red", linewidth=3))
    ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_filter_outputs(inputs: Sequence[np.ndarray], kernel: np.ndarray, outputs: Sequence[np.ndarray],
                        input_titles: Sequence[str], output_titles: Sequence[str], kernel_title: str = "kernel"):
    """Show small inputs, the kernel, and the outputs, every output on one symmetric diverging scale.

    Layout: input 1, kernel, output 1, input 2, output 2, ... and one colour bar shared by the
    outputs, so that the same value has the same colour in every output (red +, blue -).

    Args:
        inputs: (H, W) small arrays (values written in the cells).
        kernel: (KH, KW) kernel.
        outputs: (H', W') results, one per input.
        input_titles, output_titles: one title per input and per output.
        kernel_title: the kernel's title.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    if not (len(inputs) == len(outputs) == len(input_titles) == len(output_titles)) or not inputs:
        raise ValueError("give as many inputs, outputs and titles, at least one")
    kernel = np.asarray(kernel, dtype=float)
    outputs = [np.asarray(o, dtype=float) for o in outputs]
    lim = max(float(np.max(np.abs(o))) for o in outputs) or 1.0
    panels: list[tuple[str, np.ndarray, str]] = []
    for n, (x, y) in enumerate(zip(inputs, outputs)):
        panels.append(("input", np.asarray(x, dtype=float), input_titles[n]))
        if n == 0:
            panels.append(("kernel", kernel, kernel_title))
        panels.append(("output", y, output_titles[n]))
    widths = [p[1].shape[1] for p in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(0.62 * sum(widths) + 1.8, 0.62 * max(p[1].shape[0] for p in panels) + 1.3),
                             gridspec_kw={"width_ratios": widths})
    axes = np.atleast_1d(axes)
    out_axes = []
    for ax, (kind, a, title) in zip(axes, panels):
        if kind == "output":
            show_matrix(a, ax, title, signed=True, vlim=lim)
            out_axes.append(ax)
        elif kind == "kernel":
            show_matrix(a, ax, title, signed=True)
        else:
            show_matrix(a, ax, title, signed=False)
    fig.tight_layout()
    fig.colorbar(out_axes[-1].images[-1], ax=list(axes), fraction=0.025, pad=0.02,
                 label="output value (same scale in every output)")
    return fig


def plot_window_step(x: np.ndarray, k: np.ndarray, out: np.ndarray, i: int = 0, j: int = 0):
    """Show input, kernel and output side by side with the window for output (i, j) marked and the sum written out.

    Args:
        x: (H, W) input.  k: (KH, KW) kernel.  out: (H - KH + 1, W - KW + 1) cross-correlation of x with k.
        i, j: the output position to explain.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    x, k, out = (np.asarray(v, dtype=float) for v in (x, k, out))
    kh, kw = k.shape
    if out.shape != (x.shape[0] - kh + 1, x.shape[1] - kw + 1):
        raise ValueError(f"out has shape {out.shape}, but a valid cross-correlation of {x.shape} with {k.shape} "
                         f"gives {(x.shape[0] - kh + 1, x.shape[1] - kw + 1)}")
    if not (0 <= i < out.shape[0] and 0 <= j < out.shape[1]):
        raise ValueError(f"(i, j) = ({i}, {j}) is outside the output of shape {out.shape}")
    widths = [x.shape[1], k.shape[1], out.shape[1]]
    fig, axes = plt.subplots(1, 3, figsize=(2.2 + 0.6 * sum(widths), 0.6 * x.shape[0] + 1.6),
                             gridspec_kw={"width_ratios": widths})
    show_matrix(x, axes[0], "input x", highlight=(i, j, kh, kw))
    show_matrix(k, axes[1], "kernel k", highlight=(0, 0, kh, kw))
    show_matrix(out, axes[2], "output", highlight=(i, j, 1, 1))
    patch = x[i:i + kh, j:j + kw]
    terms = " + ".join(f"{a:g}*{b:g}" for a, b in zip(patch.ravel(), k.ravel()))
    if len(terms) > 110:
        terms = terms[:107] + "..."
    fig.suptitle(f"output[{i}, {j}] = {terms} = {out[i, j]:g}", fontsize=10)
    fig.tight_layout()
    return fig


def show_images(images: Sequence[np.ndarray], titles: Sequence[str] | None = None, ncols: int | None = None,
                signed: bool | Sequence[bool] | None = None, size: float = 2.6, suptitle: str = "",
                colorbar: bool = False):
    """Show several 2-D images in a grid: grey for non-negative images, red/blue centred at 0 for signed ones.

    Args:
        images: list of (H, W) arrays.
        titles: one title per image.
        ncols: columns of the grid (default: all in one row, at most 6).
        signed: per image or for all; default: signed when the image has negative values.
        size: inches per panel.
        suptitle: figure title.
        colorbar: give every panel a colour bar; the signed panels then share one symmetric scale.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    n = len(images)
    flags = [bool(signed[i]) if isinstance(signed, (list, tuple)) else signed for i in range(n)]
    flags = [bool((np.asarray(im) < 0).any()) if f is None else f for im, f in zip(images, flags)]
    shared = max((float(np.max(np.abs(im))) for im, f in zip(images, flags) if f), default=0.0) or 1.0
    if n == 0:
        raise ValueError("show_images needs at least one image")
    ncols = ncols or min(n, 6)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for idx, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if idx >= n:
            continue
        img = np.asarray(images[idx], dtype=float)
        if flags[idx]:
            vmin, vmax = (-shared, shared) if colorbar else _signed_limits(img)
            im = ax.imshow(img, cmap="RdBu_r", vmin=vmin, vmax=vmax)
        else:
            in_unit = img.min() >= 0.0 and img.max() <= 1.0
            im = ax.imshow(img, cmap="gray", vmin=0.0 if in_unit else float(img.min()),
                           vmax=1.0 if in_unit else float(img.max()))
        if colorbar:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
        if titles is not None:
            ax.set_title(titles[idx], fontsize=10)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def kernel_gallery(img: np.ndarray, kernels: Mapping[str, np.ndarray],
                   maps: np.ndarray | Sequence[np.ndarray] | Callable[[np.ndarray, np.ndarray], np.ndarray],
                   ncols: int = 4, absolute: Sequence[str] = ()):
    """Show each kernel (with its numbers) above the image filtered with it, each output with a colour bar.

    Outputs of kernels that sum to 0 (edge detectors) are signed: red positive, blue negative, on a
    symmetric scale clipped at the 98th percentile of |output| (the colour bar says where); the
    others are grey, clipped to [0, 1].

    Args:
        img: (H, W) grey image in [0, 1].
        kernels: name -> (KH, KW) kernel.
        maps: the (F, H', W') outputs, one per kernel in order (e.g. ``apply_kernels(img, bank)``),
            or a function (image, kernel) -> output to compute them.
        ncols: kernels per row.
        absolute: names whose output is shown as an absolute value (edge strength).

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    names = list(kernels)
    if callable(maps):
        maps = [maps(img, np.asarray(kernels[n], dtype=float)) for n in names]
    if len(maps) != len(names):
        raise ValueError(f"{len(names)} kernels but {len(maps)} output maps")
    nrows = -(-len(names) // ncols)
    fig, axes = plt.subplots(2 * nrows, ncols, figsize=(3.5 * ncols, 4.6 * nrows),
                             gridspec_kw={"height_ratios": [1, 2.6] * nrows})
    axes = np.atleast_2d(axes)
    for ax in axes.ravel():
        ax.axis("off")
    for idx, name in enumerate(names):
        r, c = divmod(idx, ncols)
        k = np.asarray(kernels[name], dtype=float)
        kax, iax = axes[2 * r, c], axes[2 * r + 1, c]
        kax.axis("on")
        show_matrix(k, kax, name, fmt="{:.3g}" if np.any(k != np.round(k)) else "{:g}", fontsize=8)
        kax.set_xticks([])
        kax.set_yticks([])
        out = np.asarray(maps[idx], dtype=float)
        if name in absolute:
            im = iax.imshow(np.abs(out), cmap="gray", vmin=0, vmax=np.percentile(np.abs(out), 98) or 1)
            iax.set_title("|output|", fontsize=9)
        elif (out < -1e-9).any() and np.isclose(k.sum(), 0, atol=1e-9):
            lim = np.percentile(np.abs(out), 98) or 1
            im = iax.imshow(out, cmap="RdBu_r", vmin=-lim, vmax=lim)
            iax.set_title("output (red +, blue -)", fontsize=9)
        else:
            im = iax.imshow(np.clip(out, 0, 1), cmap="gray", vmin=0, vmax=1)
            iax.set_title("output (clipped to [0, 1])", fontsize=9)
        fig.colorbar(im, ax=iax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def plot_kernel_learning(losses: Sequence[float], k_learned: np.ndarray, k_true: np.ndarray,
                         snapshots: Mapping[int, np.ndarray] | None = None, title: str = "",
                         distances: Sequence[float] | None = None, learned_title: str = "learned kernel",
                         true_title: str = "target kernel"):
    """Plot the loss curve (log scale) above the kernels, all kernels on one diverging scale with a colour bar.

    Args:
        losses: loss per step.
        k_learned: (KH, KW) kernel after training.
        k_true: (KH, KW) kernel that made the targets.
        snapshots: optional step -> kernel during training, drawn before the final kernel.
        title: figure title.
        distances: optional per-step max |k_t - k_true|, drawn beside the loss curve.
        learned_title, true_title: titles of the last two kernels.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    snaps = sorted((snapshots or {}).items())
    kernels = [(np.asarray(k, dtype=float), f"kernel after {step} steps") for step, k in snaps]
    kernels += [(np.asarray(k_learned, dtype=float), learned_title), (np.asarray(k_true, dtype=float), true_title)]
    lim = max(float(np.max(np.abs(k))) for k, _ in kernels) or 1.0
    n = len(kernels)
    fig = plt.figure(figsize=(max(2.3 * n + 1.2, 8.0), 5.6))
    grid = fig.add_gridspec(2, n, height_ratios=[1.0, 1.05], hspace=0.45, wspace=0.3, left=0.08, right=0.9,
                            top=0.86 if title else 0.92, bottom=0.04)
    curves = [fig.add_subplot(grid[0, : n // 2 if distances is not None else n])]
    if distances is not None:
        curves.append(fig.add_subplot(grid[0, n // 2:]))
    losses = np.asarray(losses, dtype=float)
    curves[0].semilogy(np.arange(len(losses)), losses)
    curves[0].set_ylabel("loss (mean squared error)")
    curves[0].set_title("training loss")
    if distances is not None:
        d = np.asarray(distances, dtype=float)
        curves[1].semilogy(np.arange(len(d)), d, color="tab:purple")
        curves[1].set_ylabel("max |k - target|")
        curves[1].set_title("distance of the kernel from the target")
    for ax in curves:
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
    axes = [fig.add_subplot(grid[1, i]) for i in range(n)]
    for ax, (k, name) in zip(axes, kernels):
        show_matrix(k, ax, name, fmt="{:.2f}", signed=True, fontsize=9, vlim=lim)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.title.set_fontsize(9)
    if title:
        fig.suptitle(title)
    fig.colorbar(axes[-1].images[-1], ax=axes, fraction=0.03, pad=0.02, label="kernel value (one scale)")
    return fig


def plot_kernels(kernels: Mapping[str, np.ndarray], title: str = ""):
    """Show several small kernels side by side, their values written in, on one diverging scale with a colour bar.

    Args:
        kernels: title -> (KH, KW) kernel.
        title: figure title.

    Returns:
        The matplotlib Figure.
    """
    plt = _plt()
    if not kernels:
        raise ValueError("plot_kernels needs at least one kernel")
    items = [(name, np.asarray(k, dtype=float)) for name, k in kernels.items()]
    lim = max(float(np.max(np.abs(k))) for _, k in items) or 1.0
    fig, axes = plt.subplots(1, len(items), figsize=(2.5 * len(items) + 1.0, 3.1))
    axes = np.atleast_1d(axes)
    for ax, (name, k) in zip(axes, items):
        show_matrix(k, ax, name, fmt="{:.2f}", signed=True, fontsize=9, vlim=lim)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.title.set_fontsize(9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.colorbar(axes[-1].images[-1], ax=list(axes), fraction=0.03, pad=0.02, label="kernel value (one scale)")
    return fig
