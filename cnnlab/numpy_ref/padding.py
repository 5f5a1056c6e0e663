"""Padding the last two axes of an array: zero, constant, reflect and replicate modes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import as_float_array, as_pair, check_finite

__all__ = ["pad", "PAD_MODES"]

#: Supported modes and the NumPy ``np.pad`` mode each one maps to.
PAD_MODES = {"zero": "constant", "constant": "constant", "reflect": "reflect", "replicate": "edge"}


def pad(x: np.ndarray, pad: Any, mode: str = "zero", value: float = 0.0) -> np.ndarray:
    """Pad the last two axes (H, W) of ``x`` by ``pad`` pixels on each side.

    Modes (PyTorch's ``F.pad`` names in brackets):
      - "zero": fill with 0 (the usual choice before a convolution);
      - "constant": fill with ``value``;
      - "reflect": mirror without repeating the border pixel, ``[a b c] -> [c b | a b c | b a]``
        (needs pad < size along each axis, as in PyTorch);
      - "replicate": repeat the border pixel, ``[a b c] -> [a a | a b c | c c]``.

    Args:
        x: (..., H, W) array, e.g. (H, W), (C, H, W) or (N, C, H, W).
        pad: int or (ph, pw) pair, the padding on each side of H and of W; non-negative.
        mode: one of "zero", "constant", "reflect", "replicate".
        value: fill value for mode "constant".

    Returns:
        (..., H + 2*ph, W + 2*pw) array with the dtype of x.
    """
    if mode not in PAD_MODES:
        raise ValueError(f"unknown pad mode {mode!r}; choose one of {sorted(PAD_MODES)}")
    x = as_float_array(x, "x")
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 dimensions (..., H, W), got ndim={x.ndim} with shape {x.shape}")
    ph, pw = as_pair(pad, "pad", minimum=0)
    check_finite(x, "x")
    if mode == "reflect":
        H, W = x.shape[-2:]
        if ph >= H or pw >= W:
            raise ValueError(
                f"reflect padding must be smaller than the input: pad=({ph}, {pw}) with H={H}, W={W}"
            )
    width = [(0, 0)] * (x.ndim - 2) + [(ph, ph), (pw, pw)]
    if mode == "constant":
        if not np.isfinite(value):
            raise ValueError(f"value must be finite, got {value!r}")
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode=PAD_MODES[mode])
