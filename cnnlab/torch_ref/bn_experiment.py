"""The same deep net trained with and without batch normalisation (notebook 06).

A small deep conv net (``deep_convnet``: 3x3 conv layers, spatial batch norm ``BatchNorm2d`` before
each ReLU in the BN version, global average pooling, one linear output layer) or a deep fully
connected net (``deep_mlp``), on the embedded 8x8 digits (10 classes), plain SGD, the same initial
weights for both versions (BN adds its gamma = 1, beta = 0 and nothing else), the same batches in the
same order.  Deterministic for a given seed on the CPU.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from cnnlab import data

from .functional import device as best_device

__all__ = ["deep_convnet", "deep_mlp", "train_losses", "compare", "Run"]


def deep_convnet(depth: int = 6, channels: int = 16, batchnorm: bool = False, gain: float = 2 ** 0.5,
                 in_channels: int = 1, n_out: int = 10, seed: int = 0) -> nn.Sequential:
    """Build ``depth`` layers of 3x3 Conv2d (padding 1) (-> BatchNorm2d) -> ReLU, then global average
    pooling and a Linear output layer.

    With ``batchnorm`` each conv is followed by spatial batch norm (one mean, variance, gamma and
    beta per channel, over the batch and every position), before the ReLU, and has no bias. The conv
    weights come from one seeded generator, so the nets with and without BN start from the same
    weights: normal with std ``gain / sqrt(fan_in)`` (fan_in = channels in x 3 x 3); gain sqrt(2) is
    He initialisation, a smaller gain makes the signal shrink layer by layer.
    """
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    c_in = in_channels
    for _ in range(depth):
        conv = nn.Conv2d(c_in, channels, 3, padding=1, bias=not batchnorm)
        fan_in = c_in * 9
        with torch.no_grad():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * gain / np.sqrt(fan_in))
            if conv.bias is not None:
                conv.bias.zero_()
        layers.append(conv)
        if batchnorm:
            layers.append(nn.BatchNorm2d(channels))
        layers.append(nn.ReLU())
        c_in = channels
    out = nn.Linear(c_in, n_out)
    with torch.no_grad():
        out.weight.copy_(torch.randn(out.weight.shape, generator=gen) / np.sqrt(c_in))
        out.bias.zero_()
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), out]
    return nn.Sequential(*layers)


def deep_mlp(depth: int = 8, width: int = 64, batchnorm: bool = False, gain: float = 2 ** 0.5, n_in: int = 64,
             n_out: int = 10, seed: int = 0) -> nn.Sequential:
    """Build ``depth`` hidden layers of Linear (-> BatchNorm1d) -> ReLU, then a Linear output layer.

    With ``batchnorm`` each hidden Linear is followed by BatchNorm1d, before the ReLU (and has no bias:
    BN's beta replaces it).  The Linear weights are drawn from one seeded generator, so the nets with
    and without BN start from the same weights: normal with std ``gain / sqrt(fan_in)``; gain sqrt(2)
    is He initialisation (it keeps a ReLU net's signal at a constant size), a smaller gain makes the
    signal shrink layer by layer.
    """
    gen = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    fan_in = n_in
    for _ in range(depth):
        lin = nn.Linear(fan_in, width, bias=not batchnorm)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(lin.weight.shape, generator=gen) * gain / np.sqrt(fan_in))
            if lin.bias is not None:
                lin.bias.zero_()
        layers.append(lin)
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(nn.ReLU())
        fan_in = width
    out = nn.Linear(fan_in, n_out)
    with torch.no_grad():
        out.weight.copy_(torch.randn(out.weight.shape, generator=gen) / np.sqrt(fan_in))
        out.bias.zero_()
    layers.append(out)
    return nn.Sequential(*layers)


@dataclass
class Run:
    """One training run: losses per step, test accuracy at the end, seconds, device."""

    losses: list[float] = field(default_factory=list)
    test_accuracy: float = 0.0
    seconds: float = 0.0
    device: str = "cpu"


def _digits(images: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The 8x8 digits, standardised: (N, 1, 8, 8) images, or (N, 64) vectors."""
    xtr, ytr, xte, yte = data.digits(size=8)
    mean, std = xtr.mean(), xtr.std()
    shape = (lambda a: a.shape) if images else (lambda a: (len(a), -1))
    f = lambda a: torch.from_numpy(((a.reshape(shape(a)) - mean) / std).astype(np.float32))  # noqa: E731
    return f(xtr), torch.from_numpy(ytr), f(xte), torch.from_numpy(yte)


def train_losses(model: nn.Module, steps: int = 300, lr: float = 0.05, batch: int = 64, seed: int = 0,
                 dev: torch.device | str | None = None) -> Run:
    """Train ``model`` with plain SGD on the digits for ``steps`` batches; return a :class:`Run`.

    The batches are drawn by a seeded generator, so two models see the same batches in the same order.
    """
    dev = torch.device(dev) if dev is not None else best_device()
    xtr, ytr, xte, yte = _digits(images=isinstance(model[0], nn.Conv2d))
    model = model.to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    run = Run(device=str(dev))
    start = time.perf_counter()
    model.train()
    xtr_d, ytr_d = xtr.to(dev), ytr.to(dev)
    for _ in range(steps):
        idx = torch.randint(0, len(xtr), (batch,), generator=gen).to(dev)
        loss = loss_fn(model(xtr_d[idx]), ytr_d[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.losses.append(float(loss.detach()))
    model.eval()
    with torch.no_grad():
        pred = model(xte.to(dev)).argmax(dim=1).cpu()
    run.test_accuracy = float((pred == yte).float().mean())
    run.seconds = time.perf_counter() - start
    return run


def compare(settings: tuple[tuple[float, float], ...] = ((0.05, 2 ** 0.5), (0.5, 2 ** 0.5), (0.05, 0.5)),
            steps: int = 300, depth: int = 8, width: int = 64, seed: int = 0,
            dev: torch.device | str | None = None, net: str = "mlp") -> dict[tuple[float, float], dict[str, Run]]:
    """Train the net with and without BN for each (learning rate, init gain).

    Args:
        net: "mlp" (``deep_mlp(depth, width)``) or "conv" (``deep_convnet(depth, channels=width)``).

    Returns:
        {(lr, gain): {"without BN": Run, "with BN": Run}}.
    """
    if net not in ("mlp", "conv"):
        raise ValueError(f"net must be 'mlp' or 'conv', got {net!r}")
    build = deep_mlp if net == "mlp" else (lambda d, w, **kw: deep_convnet(d, w, **kw))
    torch.manual_seed(seed)
    results: dict[tuple[float, float], dict[str, Run]] = {}
    for lr, gain in settings:
        results[(lr, gain)] = {}
        for label, bn in (("without BN", False), ("with BN", True)):
            model = build(depth, width, batchnorm=bn, gain=gain, seed=seed)
            results[(lr, gain)][label] = train_losses(model, steps=steps, lr=lr, seed=seed, dev=dev)
    return results
