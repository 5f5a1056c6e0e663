"""Conversion helpers shared by the functional twins: NumPy in -> NumPy out, tensors in -> tensors out."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor


def pair(value: int | tuple[int, int] | list[int], name: str) -> tuple[int, int]:
    """Turn an int or an (h, w) pair into an (h, w) tuple of Python ints.

    Args:
        value: an int, or a pair of ints (height, width).
        name: the argument's name, used in error messages.

    Returns:
        (h, w) tuple.

    Raises:
        ValueError: when value is neither an int nor a pair of ints.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be an int or a pair of ints (h, w), got {value!r}")


def numpy_dtype(*arrays: Any) -> np.dtype:
    """Pick the computation dtype for NumPy inputs: float32 only when every float input is float32.

    Args:
        arrays: NumPy arrays or None (ignored).

    Returns:
        np.float32 or np.float64.
    """
    present = [a for a in arrays if isinstance(a, np.ndarray)]
    if present and all(a.dtype == np.float32 for a in present):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def to_tensors(*arrays: Any) -> tuple[list[torch.Tensor | None], bool]:
    """Convert the inputs of a twin to tensors.

    When the first input is a NumPy array (or any array-like that is not a tensor), every input
    becomes a CPU tensor: float32 when all NumPy inputs are float32, float64 otherwise. Tensors
    are kept as they are (their dtype and device are respected; other inputs are moved to the
    first tensor's device and floating dtype).

    Args:
        arrays: the inputs (NumPy arrays, tensors, Python scalars or None).

    Returns:
        (tensors, was_numpy): the converted inputs (None stays None) and whether the caller
        should turn the result back into NumPy.

    Raises:
        ValueError: when an input holds NaN.
    """
    first = arrays[0]
    was_numpy = not isinstance(first, torch.Tensor)
    out: list[torch.Tensor | None] = []
    if was_numpy:
        np_arrays = [None if a is None else np.asarray(a) for a in arrays]
        dtype = numpy_dtype(*[a for a in np_arrays if a is not None and a.dtype.kind == "f"])
        torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
        for a in np_arrays:
            if a is None:
                out.append(None)
            else:
                out.append(torch.as_tensor(np.ascontiguousarray(a, dtype=dtype), dtype=torch_dtype))
    else:
        ref = first
        for a in arrays:
            if a is None:
                out.append(None)
            elif isinstance(a, torch.Tensor):
                out.append(a.to(ref.device))
            else:
                out.append(torch.as_tensor(np.asarray(a), dtype=ref.dtype, device=ref.device))
    for i, t in enumerate(out):
        if t is not None and t.is_floating_point() and bool(torch.isnan(t).any()):
            raise ValueError(f"input {i} contains NaN")
    return out, was_numpy


def back(value: Any, was_numpy: bool) -> Any:
    """Convert a result (tensor, tuple of tensors, float) back to NumPy when the inputs were NumPy.

    Args:
        value: a tensor, a tuple/list of them, or a Python number.
        was_numpy: whether the caller passed NumPy arrays.

    Returns:
        The same structure with tensors replaced by NumPy arrays (0-d tensors become floats)
        when was_numpy, else value unchanged.
    """
    if not was_numpy:
        return value
    if isinstance(value, torch.Tensor):
        arr = value.detach().cpu().numpy()
        return float(arr) if arr.ndim == 0 else arr
    if isinstance(value, tuple):
        return tuple(back(v, True) for v in value)
    if isinstance(value, list):
        return [back(v, True) for v in value]
    return value
