"""Train and evaluate classifiers such as LeNet5 on (X, y) pairs, on any device.

Nothing here assumes CUDA: the device comes from :func:`cnnlab.torch_ref.device` unless given.
Shuffling uses a local torch.Generator, so the global random state is left alone.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import _runtime
from .functional import device as best_device

__all__ = ["train", "evaluate", "predict", "confusion_matrix"]

# One NumPy BLAS thread and glibc's allocator settings (see cnnlab._runtime): OpenBLAS threads that
# busy-wait after NumPy work would otherwise slow down PyTorch's training in the same process.
# Grading kernels (NBGRADER_EXECUTION) run PyTorch on one thread: several kernels share the cores.
_runtime.apply()
_runtime.apply_torch()


def _as_xy(xy: Sequence[Any], name: str, dev: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn an (X, y) pair of arrays or tensors into tensors on dev (X in dtype, y int64)."""
    if not isinstance(xy, (tuple, list)) or len(xy) != 2:
        raise ValueError(f"{name} must be a pair (X, y), got {type(xy).__name__}")
    x, y = xy
    tx = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    ty = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    if tx.ndim < 2:
        raise ValueError(f"{name}: X must have a batch axis, got shape {tuple(tx.shape)}")
    if ty.ndim != 1 or ty.shape[0] != tx.shape[0]:
        raise ValueError(f"{name}: y must have shape ({tx.shape[0]},), got {tuple(ty.shape)}")
    if ty.is_floating_point():
        raise ValueError(f"{name}: y must hold integer labels, got dtype {ty.dtype}")
    tx = tx.to(device=dev, dtype=dtype)
    if bool(torch.isnan(tx).any()):
        raise ValueError(f"{name}: X contains NaN")
    return tx, ty.to(device=dev, dtype=torch.long)


def _model_state(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    p = next(model.parameters())
    return p.device, p.dtype


def _progress_enabled(progress: bool) -> bool:
    # Grading runs (nbgrader sets NBGRADER_EXECUTION) stay quiet.
    return bool(progress) and not os.environ.get("NBGRADER_EXECUTION")


@torch.no_grad()
def predict(model: nn.Module, x: Any, batch_size: int = 512, device: torch.device | str | None = None) -> np.ndarray:
    """Predict class labels.

    Args:
        model: a classifier returning (N, K) scores.
        x: (N, C, H, W) images (NumPy or tensor).
        batch_size: images per forward pass.
        device: where to run; defaults to where the model's parameters are.

    Returns:
        (N,) int64 NumPy array of predicted labels.
    """
    dev = torch.device(device) if device is not None else _model_state(model)[0]
    model.to(dev)
    _, dtype = _model_state(model)
    tx = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    was_training = model.training
    model.eval()
    preds = []
    for start in range(0, tx.shape[0], batch_size):
        batch = tx[start : start + batch_size].to(device=dev, dtype=dtype)
        preds.append(model(batch).argmax(dim=1).cpu())
    model.train(was_training)
    if not preds:
        return np.zeros(0, dtype=np.int64)
    return torch.cat(preds).numpy().astype(np.int64)


def evaluate(model: nn.Module, xy: Sequence[Any], batch_size: int = 512, device: torch.device | str | None = None) -> float:
    """Compute the classification accuracy of model on a labelled set.

    Args:
        model: a classifier returning (N, K) scores.
        xy: pair (X (N, C, H, W), y (N,)) of NumPy arrays or tensors.
        batch_size: images per forward pass.
        device: where to run; defaults to where the model's parameters are.

    Returns:
        Fraction of correct predictions in [0, 1].
    """
    if not isinstance(xy, (tuple, list)) or len(xy) != 2:
        raise ValueError(f"xy must be a pair (X, y), got {type(xy).__name__}")
    y = xy[1].detach().cpu().numpy() if isinstance(xy[1], torch.Tensor) else np.asarray(xy[1])
    pred = predict(model, xy[0], batch_size=batch_size, device=device)
    if y.shape != pred.shape:
        raise ValueError(f"y must have shape {pred.shape}, got {y.shape}")
    return float((pred == y).mean()) if y.size else 0.0


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """Count how often each true class is predicted as each class.

    Args:
        y_true: (N,) integer labels.
        y_pred: (N,) integer predictions.
        num_classes: K; defaults to 1 + the largest label seen.

    Returns:
        (K, K) int64 array; entry [i, j] counts samples of true class i predicted as j.
    """
    t = np.asarray(y_true.detach().cpu() if isinstance(y_true, torch.Tensor) else y_true)
    p = np.asarray(y_pred.detach().cpu() if isinstance(y_pred, torch.Tensor) else y_pred)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D of the same length, got {t.shape} and {p.shape}")
    if t.dtype.kind not in "iu" or p.dtype.kind not in "iu":
        raise ValueError(f"labels must be integers, got dtypes {t.dtype} and {p.dtype}")
    k = int(num_classes) if num_classes is not None else int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    if t.size and (t.min() < 0 or p.min() < 0 or t.max() >= k or p.max() >= k):
        raise ValueError(f"labels must lie in [0, {k})")
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def train(
    model: nn.Module,
    train_xy: Sequence[Any],
    test_xy: Sequence[Any] | None = None,
    epochs: int = 10,
    lr: float = 0.02,
    batch_size: int = 64,
    device: torch.device | str | None = None,
    progress: bool = True,
    seed: int = 0,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    optimizer: str = "sgd",
    schedule: str = "cosine",
) -> dict[str, list[float]]:
    """Train a classifier with minibatch SGD (momentum) or Adam on softmax cross-entropy.

    The whole data set is moved to the device once (it is small); each epoch visits it in an
    order drawn from a local torch.Generator seeded with ``seed``. A progress bar
    (``cnnlab.progress``: a saved notebook shows it finished) shows the epoch, loss and
    accuracies unless ``progress`` is False or the NBGRADER_EXECUTION environment variable is set.

    Args:
        model: module mapping (B, C, H, W) to (B, K) scores; moved to ``device``.
        train_xy: (X (N, C, H, W), y (N,)) training pair, NumPy or tensors.
        test_xy: optional (X, y) pair evaluated after every epoch.
        epochs: passes over the training set.
        lr: learning rate.
        batch_size: samples per step.
        device: torch.device or name; defaults to :func:`cnnlab.torch_ref.device`.
        progress: show a progress bar.
        seed: seed of the shuffling generator.
        momentum: SGD momentum.
        weight_decay: L2 penalty.
        optimizer: "sgd" or "adam".
        schedule: "cosine" (the learning rate decays from lr to 0 along a half cosine over all
            steps, which makes the last epochs settle) or "constant".

    Returns:
        history dict: 'loss' (mean training loss per epoch), 'train_acc' (accuracy on the
        training batches during the epoch), 'test_acc' (after each epoch; empty without test_xy),
        'seconds' (wall time per epoch, test evaluation included), 'train_seconds' (wall time
        per epoch spent on the training steps alone: images / train_seconds is the speed).
    """
    if epochs < 0 or batch_size <= 0 or lr <= 0:
        raise ValueError(f"need epochs >= 0, batch_size > 0 and lr > 0, got {epochs}, {batch_size}, {lr}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    dev = torch.device(device) if device is not None else best_device()
    model.to(dev)
    _, dtype = _model_state(model)
    x_tr, y_tr = _as_xy(train_xy, "train_xy", dev, dtype)
    test = _as_xy(test_xy, "test_xy", dev, dtype) if test_xy is not None else None
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(seed)
    n = x_tr.shape[0]
    steps = (n + batch_size - 1) // batch_size
    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "test_acc": [], "seconds": [],
                                       "train_seconds": []}
    total_steps = max(1, epochs * steps)
    step = 0

    from cnnlab.progress import Progress

    bar = Progress(epochs * steps, "training", "batches", enabled=_progress_enabled(progress))
    try:
        for epoch in range(epochs):
            start = time.perf_counter()
            model.train()
            order = torch.randperm(n, generator=gen).to(dev)
            loss_sum = torch.zeros((), device=dev, dtype=torch.float64)
            correct = torch.zeros((), device=dev, dtype=torch.long)
            for i in range(steps):
                idx = order[i * batch_size : (i + 1) * batch_size]
                xb, yb = x_tr[idx], y_tr[idx]
                if schedule == "cosine":
                    for group in opt.param_groups:
                        group["lr"] = 0.5 * lr * (1.0 + math.cos(math.pi * step / total_steps))
                step += 1
                scores = model(xb)
                loss = F.cross_entropy(scores, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                loss_sum += loss.detach().double() * xb.shape[0]
                correct += (scores.detach().argmax(dim=1) == yb).sum()
                bar.update(1)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            history["train_seconds"].append(time.perf_counter() - start)
            history["loss"].append(float(loss_sum) / n)
            history["train_acc"].append(float(correct) / n)
            if test is not None:
                history["test_acc"].append(evaluate(model, test, device=dev))
            history["seconds"].append(time.perf_counter() - start)
            postfix = {"epoch": epoch + 1, "loss": f"{history['loss'][-1]:.3f}", "train": f"{history['train_acc'][-1]:.3f}"}
            if history["test_acc"]:
                postfix["test"] = f"{history['test_acc'][-1]:.3f}"
            bar.set_postfix(**postfix)
    finally:
        bar.close()
    model.eval()
    return history
