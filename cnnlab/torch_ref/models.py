"""LeNet-5 as a torch.nn.Module, in the classic (1998-style) and modern variants.

The layer names and shapes mirror ``cnnlab.numpy_ref.lenet`` so that weights move between the
two implementations with :meth:`LeNet5.load_numpy_params` and :meth:`LeNet5.numpy_params`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LeNet5", "VARIANTS"]

VARIANTS = ("modern", "classic")

# (NumPy key, submodule, attribute); fc weights are (D, M) in NumPy and (M, D) in torch
_PARAM_MAP: tuple[tuple[str, str, str], ...] = (
    ("W1", "conv1", "weight"),
    ("b1", "conv1", "bias"),
    ("W2", "conv2", "weight"),
    ("b2", "conv2", "bias"),
    ("W3", "fc1", "weight"),
    ("b3", "fc1", "bias"),
    ("W4", "fc2", "weight"),
    ("b4", "fc2", "bias"),
    ("W5", "fc3", "weight"),
    ("b5", "fc3", "bias"),
)


class LeNet5(nn.Module):
    """LeNet-5 for (N, C, 32, 32) images.

    Layers: conv1 (6 filters 5x5) -> pool 2/2 -> conv2 (16 filters 5x5) -> pool 2/2 -> flatten
    (16*5*5 = 400) -> fc1 (120) -> fc2 (84) -> fc3 (num_classes scores).

    - ``variant="modern"``: ReLU after every hidden layer, 2x2 max pooling, He (Kaiming) init.
    - ``variant="classic"``: tanh and 2x2 average pooling, LeCun init, as in the 1998 paper, with
      three simplifications: the paper's subsampling layers had a trainable scale and bias per
      map (here plain averages), C3 connected each of its 16 maps to a fixed subset of S2's maps
      (here every map sees all 6), and the output layer was made of Euclidean RBF units (here an
      ordinary fully connected layer trained with softmax cross-entropy).

    Args:
        variant: "modern" or "classic".
        in_channels: channels C of the input images (1 for digits, 3 for colour).
        num_classes: number of output scores.
        conv_channels: filters in conv1 and conv2; (6, 16) is LeNet-5, the lecture variant uses (8, 16).
        seed: when given, initialise the weights from a local torch.Generator with this seed
            (He for modern, LeCun for classic, zero biases); otherwise PyTorch's default init.
    """

    def __init__(
        self,
        variant: str = "modern",
        in_channels: int = 1,
        num_classes: int = 10,
        conv_channels: tuple[int, int] = (6, 16),
        seed: int | None = None,
    ) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        if in_channels <= 0 or num_classes <= 0:
            raise ValueError(f"in_channels and num_classes must be positive, got {in_channels}, {num_classes}")
        c1, c2 = conv_channels
        self.variant = variant
        self.in_channels = in_channels
        self.num_classes = num_classes
        if seed is None:
            self._build(in_channels, c1, c2, num_classes)
        else:
            # the layers' default init draws from the global generator: restore it afterwards
            with torch.random.fork_rng(devices=[]):
                self._build(in_channels, c1, c2, num_classes)
            self.reset_parameters(seed)

    def _build(self, in_channels: int, c1: int, c2: int, num_classes: int) -> None:
        self.conv1 = nn.Conv2d(in_channels, c1, 5)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.fc1 = nn.Linear(c2 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def reset_parameters(self, seed: int = 0) -> None:
        """Re-initialise every weight from a local generator: He normal (modern) or LeCun normal
        (classic), zero biases.

        Args:
            seed: seed of the local torch.Generator.
        """
        gen = torch.Generator().manual_seed(seed)
        gain = 2.0 if self.variant == "modern" else 1.0
        with torch.no_grad():
            for layer in (self.conv1, self.conv2, self.fc1, self.fc2, self.fc3):
                w = layer.weight
                fan_in = w[0].numel()
                std = math.sqrt(gain / fan_in)
                w.copy_(torch.randn(w.shape, generator=gen, dtype=torch.float64).to(w.dtype) * std)
                layer.bias.zero_()

    def _act(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) if self.variant == "modern" else torch.tanh(x)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 2, 2) if self.variant == "modern" else F.avg_pool2d(x, 2, 2)

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Run the network and keep every intermediate activation (for feature-map figures).

        Args:
            x: (N, C, 32, 32) images.

        Returns:
            dict with 'conv1' (N, 6, 28, 28), 'pool1' (N, 6, 14, 14), 'conv2' (N, 16, 10, 10),
            'pool2' (N, 16, 5, 5), 'fc1' (N, 120), 'fc2' (N, 84), 'scores' (N, num_classes);
            conv and fc entries are after the activation.
        """
        self._check_input(x)
        out: dict[str, torch.Tensor] = {}
        h = out["conv1"] = self._act(self.conv1(x))
        h = out["pool1"] = self._pool(h)
        h = out["conv2"] = self._act(self.conv2(h))
        h = out["pool2"] = self._pool(h)
        h = out["fc1"] = self._act(self.fc1(h.flatten(1)))
        h = out["fc2"] = self._act(self.fc2(h))
        out["scores"] = self.fc3(h)
        return out

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != (self.in_channels, 32, 32):
            raise ValueError(
                f"LeNet5 expects input of shape (N, {self.in_channels}, 32, 32), got {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Compute class scores.

        Args:
            x: (N, C, 32, 32) images.

        Returns:
            (N, num_classes) unnormalised scores.
        """
        self._check_input(x)
        h = self._pool(self._act(self.conv1(x)))
        h = self._pool(self._act(self.conv2(h)))
        h = self._act(self.fc1(h.flatten(1)))
        h = self._act(self.fc2(h))
        return self.fc3(h)

    def load_numpy_params(self, params: dict[str, np.ndarray]) -> "LeNet5":
        """Copy a ``cnnlab.numpy_ref.lenet`` parameter dict into this module.

        NumPy stores fully connected weights as (D, M) (``x @ W``); torch.nn.Linear stores
        (M, D), so W3, W4 and W5 are transposed. Values are cast to the module's dtype.

        Args:
            params: dict with W1..W5 and b1..b5 (see lenet_init).

        Returns:
            self, for chaining.

        Raises:
            ValueError: a missing key or a shape that does not fit this module.
        """
        missing = [key for key, _, _ in _PARAM_MAP if key not in params]
        if missing:
            raise ValueError(f"params is missing {missing}; create it with lenet_init")
        staged: list[tuple[torch.Tensor, np.ndarray]] = []
        for key, layer_name, attr in _PARAM_MAP:
            value = np.asarray(params[key])
            if layer_name.startswith("fc") and attr == "weight":
                value = value.T
            target: torch.Tensor = getattr(getattr(self, layer_name), attr)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(
                    f"params[{key!r}] has shape {np.asarray(params[key]).shape}, "
                    f"which does not fit {layer_name}.{attr} {tuple(target.shape)}"
                )
            if np.isnan(value).any():
                raise ValueError(f"params[{key!r}] contains NaN")
            staged.append((target, value))
        # copy only after every entry passed, so a failed load leaves the module unchanged
        with torch.no_grad():
            for target, value in staged:
                target.copy_(torch.as_tensor(np.ascontiguousarray(value)).to(target.dtype))
        return self

    def numpy_params(self) -> dict[str, np.ndarray]:
        """Export the weights as a ``cnnlab.numpy_ref.lenet`` parameter dict.

        Returns:
            dict W1..W5, b1..b5 of NumPy arrays (module dtype), FC weights transposed to (D, M).
        """
        out: dict[str, np.ndarray] = {}
        for key, layer_name, attr in _PARAM_MAP:
            value = getattr(getattr(self, layer_name), attr).detach().cpu().numpy()
            if layer_name.startswith("fc") and attr == "weight":
                value = value.T
            out[key] = np.ascontiguousarray(value).copy()
        return out
