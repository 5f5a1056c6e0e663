"""Update rules and a small training loop for the NumPy LeNet-5.

Update rules follow the CS231n convention: ``update(w, dw, config) -> (next_w, config)``, where
config carries the hyperparameters and any state (the velocity) from one step to the next.
The input ``w`` is never modified; a new array comes back.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

__all__ = ["sgd", "sgd_momentum", "train_numpy", "lenet_predict"]


def _check_pair(w: Any, dw: Any) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(w)
    dw = np.asarray(dw)
    if w.shape != dw.shape:
        raise ValueError(f"dw must have the shape of w {w.shape}, got {dw.shape}")
    if w.dtype.kind != "f" or dw.dtype.kind != "f":
        raise ValueError(f"w and dw must be float arrays, got {w.dtype} and {dw.dtype}")
    if np.isnan(np.add.reduce(dw, axis=None)) and np.isnan(dw).any():  # one pass when there is no NaN
        raise ValueError("dw contains NaN")
    return w, dw


def sgd(w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Take one plain gradient-descent step: ``w - learning_rate * dw``.

    Args:
        w: parameter array, any shape.
        dw: gradient of the loss with respect to w, same shape.
        config: dict with 'learning_rate' (default 1e-2).

    Returns:
        (next_w, config): the updated parameters (a new array) and the config.
    """
    w, dw = _check_pair(w, dw)
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    return w - config["learning_rate"] * dw, config


def sgd_momentum(
    w: np.ndarray, dw: np.ndarray, config: dict[str, Any] | None = None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Take one step of gradient descent with momentum.

    ``v = momentum * v - learning_rate * dw`` then ``w + v``: the velocity v is a running,
    decaying sum of past steps, so consistent gradient directions speed up and oscillating
    ones cancel.

    Args:
        w: parameter array, any shape.
        dw: gradient of the loss with respect to w, same shape.
        config: dict with 'learning_rate' (default 1e-2), 'momentum' (default 0.9) and
            'velocity' (zeros like w when missing); the new velocity is stored back in it.

    Returns:
        (next_w, config): the updated parameters (a new array) and the config.

    Raises:
        ValueError: shapes differ, non-float arrays, NaN in dw, momentum outside [0, 1).
    """
    w, dw = _check_pair(w, dw)
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    if not 0.0 <= config["momentum"] < 1.0:
        raise ValueError(f"momentum must lie in [0, 1), got {config['momentum']}")
    v = config.get("velocity")
    if v is None:
        v = np.zeros_like(w)
    elif np.shape(v) != w.shape:
        raise ValueError(f"config['velocity'] has shape {np.shape(v)}, expected {w.shape}")
    v = config["momentum"] * v - config["learning_rate"] * dw
    config["velocity"] = v
    return w + v, config


def lenet_predict(
    params: dict[str, np.ndarray], X: np.ndarray, variant: str = "modern", batch_size: int = 256
) -> np.ndarray:
    """Predict labels with the NumPy LeNet-5.

    Args:
        params: LeNet parameter dict (see lenet_init).
        X: (N, C, 32, 32) images.
        variant: "modern" or "classic".
        batch_size: images per forward pass.

    Returns:
        (N,) int64 predicted labels.
    """
    from .lenet import lenet_loss

    preds = [
        np.argmax(lenet_loss(params, X[i : i + batch_size], variant=variant), axis=1)
        for i in range(0, X.shape[0], batch_size)
    ]
    return np.concatenate(preds).astype(np.int64) if preds else np.zeros(0, dtype=np.int64)


def train_numpy(
    params: dict[str, np.ndarray],
    data: Sequence[np.ndarray],
    epochs: int = 2,
    batch_size: int = 32,
    lr: float = 0.02,
    seed: int = 0,
    variant: str = "modern",
    momentum: float = 0.9,
    lr_decay: float = 1.0,
    progress: bool = False,
) -> dict[str, list[float]]:
    """Train the NumPy LeNet-5 with minibatch SGD + momentum; params are updated in place.

    Args:
        params: LeNet parameter dict from lenet_init; its arrays are replaced by trained ones.
        data: (X_train, y_train) or (X_train, y_train, X_test, y_test), as cnnlab.data.digits() gives;
            X (N, C, 32, 32) float, y (N,) int.
        epochs: passes over the training set.
        batch_size: samples per step.
        lr: learning rate.
        seed: seed of the local generator that shuffles the data.
        variant: "modern" or "classic".
        momentum: momentum of sgd_momentum.
        lr_decay: learning rate multiplier applied after every epoch.
        progress: show a progress bar over batches (``cnnlab.progress``).

    Returns:
        history: 'loss' (mean training loss per epoch), 'batch_loss' (every step), 'train_acc'
        (accuracy on the training set after each epoch), 'test_acc' (after each epoch; empty
        without test data), 'seconds' (wall time per epoch).
    """
    from .lenet import lenet_loss

    if len(data) not in (2, 4):
        raise ValueError(f"data must be (X_train, y_train) or (X_train, y_train, X_test, y_test), got {len(data)} items")
    if epochs < 0 or batch_size <= 0 or lr <= 0:
        raise ValueError(f"need epochs >= 0, batch_size > 0 and lr > 0, got {epochs}, {batch_size}, {lr}")
    X, y = np.asarray(data[0]), np.asarray(data[1])
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X_train has {X.shape[0]} samples but y_train has {y.shape[0]}")
    test = (np.asarray(data[2]), np.asarray(data[3])) if len(data) == 4 else None
    rng = np.random.default_rng(seed)
    configs = {k: {"learning_rate": lr, "momentum": momentum} for k in params}
    history: dict[str, list[float]] = {"loss": [], "batch_loss": [], "train_acc": [], "test_acc": [], "seconds": []}
    n = X.shape[0]
    steps = (n + batch_size - 1) // batch_size

    from cnnlab.progress import Progress

    bar = Progress(epochs * steps, "numpy LeNet", "batches", enabled=progress)
    try:
        for _ in range(epochs):
            start = time.perf_counter()
            order = rng.permutation(n)
            total = 0.0
            for i in range(steps):
                idx = order[i * batch_size : (i + 1) * batch_size]
                loss, grads = lenet_loss(params, X[idx], y[idx], variant=variant)
                for k in params:
                    params[k], configs[k] = sgd_momentum(params[k], grads[k], configs[k])
                history["batch_loss"].append(float(loss))
                total += float(loss) * idx.size
                bar.update(1, loss=f"{float(loss):.3f}")
            history["loss"].append(total / n)
            history["train_acc"].append(float(np.mean(lenet_predict(params, X, variant) == y)))
            if test is not None:
                history["test_acc"].append(float(np.mean(lenet_predict(params, test[0], variant) == test[1])))
            history["seconds"].append(time.perf_counter() - start)
            for c in configs.values():
                c["learning_rate"] *= lr_decay
    finally:
        bar.close()
    return history
