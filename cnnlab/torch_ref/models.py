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


# ---------------------------------------------------------------------------------------------- 1998

#: The output layer's fixed prototypes: each digit drawn on a 7x12 bitmap ("#" = +1, "." = -1), the
#: course's own drawing of what the 1998 paper describes ("stylized images of the characters drawn
#: on a 7x12 bitmap"; the paper's own bitmaps are not reproduced). Row-major, 84 values each.
PROTOTYPES_7x12: tuple[str, ...] = (
    ".#####." "##...##" "#.....#" "#.....#" "#.....#" "#.....#" "#.....#" "#.....#" "#.....#" "#.....#" "##...##" ".#####.",
    "...#..." "..##..." ".#.#..." "#..#..." "...#..." "...#..." "...#..." "...#..." "...#..." "...#..." "...#..." "#######",
    ".#####." "#.....#" "......#" "......#" ".....#." "....#.." "...#..." "..#...." ".#....." "#......" "#......" "#######",
    ".#####." "#.....#" "......#" "......#" "......#" "..####." "......#" "......#" "......#" "......#" "#.....#" ".#####.",
    "....##." "...#.#." "..#..#." ".#...#." "#....#." "#....#." "#######" ".....#." ".....#." ".....#." ".....#." ".....#.",
    "#######" "#......" "#......" "#......" "######." "......#" "......#" "......#" "......#" "......#" "#.....#" ".#####.",
    "..####." ".#....." "#......" "#......" "######." "#.....#" "#.....#" "#.....#" "#.....#" "#.....#" "#.....#" ".#####.",
    "#######" "......#" ".....#." ".....#." "....#.." "....#.." "...#..." "...#..." "..#...." "..#...." ".#....." ".#.....",
    ".#####." "#.....#" "#.....#" "#.....#" ".#...#." "..###.." ".#...#." "#.....#" "#.....#" "#.....#" "#.....#" ".#####.",
    ".#####." "#.....#" "#.....#" "#.....#" "#.....#" ".######" "......#" "......#" "......#" "......#" ".....#." ".####..",
)


def prototypes() -> np.ndarray:
    """The RBF output layer's 10 fixed prototypes, (10, 84) of +1 and -1 (see ``PROTOTYPES_7x12``)."""
    return np.array([[1.0 if ch == "#" else -1.0 for ch in p] for p in PROTOTYPES_7x12])


def scaled_tanh(x: torch.Tensor) -> torch.Tensor:
    """The paper's squashing function f(a) = 1.7159 tanh(2a/3) (f(1) = 1, f(-1) = -1, steepest at 0)."""
    return 1.7159 * torch.tanh(x * (2.0 / 3.0))


class _Subsampling(nn.Module):
    """S2/S4: each map's 2x2 sums times a trainable coefficient plus a trainable bias (2 per map)."""

    def __init__(self, maps: int) -> None:
        super().__init__()
        self.coef = nn.Parameter(torch.ones(maps))
        self.bias = nn.Parameter(torch.zeros(maps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sums = F.avg_pool2d(x, 2, 2) * 4.0
        return sums * self.coef[None, :, None, None] + self.bias[None, :, None, None]


class LeNet1998(nn.Module):
    """LeNet-5 as the 1998 paper built it, for (N, 1, 32, 32) images.

    C1 (6 maps, 5x5) -> S2 (trainable subsampling) -> C3 (16 maps, 5x5, the sparse connection table
    ``cnnlab.shapes.LENET5_C3_TABLE``) -> S4 -> C5 (120 maps, 5x5, i.e. fully connected on 5x5) ->
    F6 (84 units) -> 10 Euclidean RBF units with fixed +-1 prototypes (``prototypes()``); the scaled
    tanh after every layer up to F6. ``forward`` returns the negated RBF distances
    ``-||f6 - prototype_k||^2``, so that the largest score is the nearest prototype and
    ``cross_entropy(scores, y)`` is the paper's criterion (its eq. 9) without the constant
    ``exp(-j)`` term. Weights start uniform in +-2.4 / fan-in, as in the paper.

    Trainable parameters: C1 156, S2 12, C3 1,516 (the table's 60 map connections), S4 32,
    C5 48,120, F6 10,164: 60,000; the prototypes (840 values) stay fixed (a buffer).

    What differs from the paper: the optimiser (the paper used a stochastic diagonal
    Levenberg-Marquardt method; notebook 07 trains it with ``cnnlab.torch_ref.train`` and Adam, on
    which plain SGD with the paper's small initial weights learns far more slowly), the subsampling
    coefficients' start (1, the plain sum; the paper does not give it), and the prototypes' bitmaps,
    the course's drawing.
    """

    def __init__(self, seed: int | None = 0) -> None:
        super().__init__()
        from cnnlab.shapes import LENET5_C3_TABLE

        with torch.random.fork_rng(devices=[]):
            self.c1 = nn.Conv2d(1, 6, 5)
            self.s2 = _Subsampling(6)
            self.c3 = nn.Conv2d(6, 16, 5)
            self.s4 = _Subsampling(16)
            self.c5 = nn.Conv2d(16, 120, 5)
            self.f6 = nn.Linear(120, 84)
        mask = torch.zeros(16, 6, 1, 1)
        for f, inputs in enumerate(LENET5_C3_TABLE):
            mask[f, list(inputs)] = 1.0
        self.register_buffer("c3_mask", mask)
        self.register_buffer("prototypes", torch.as_tensor(prototypes(), dtype=torch.float32))
        self.reset_parameters(0 if seed is None else seed)

    def reset_parameters(self, seed: int = 0) -> None:
        """Weights uniform in +-2.4 / fan-in (fan-in: the inputs a unit really has, C3's sparse
        ones included), zero biases, subsampling coefficients 1 (the plain sum of each window to begin with)."""
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in (self.c1, self.c3, self.c5, self.f6):
                w = layer.weight
                fan_in = w[0].numel()
                if layer is self.c3:
                    fan_in = self.c3_mask.sum(dim=1).view(-1, 1, 1, 1) * 25   # per map: 75, 100 or 150
                bound = 2.4 / fan_in
                w.copy_((torch.rand(w.shape, generator=gen, dtype=torch.float64) * 2 - 1).to(w.dtype) * bound)
                layer.bias.zero_()
            self.c3.weight.mul_(self.c3_mask)
            for s in (self.s2, self.s4):
                s.coef.fill_(1.0)
                s.bias.zero_()

    def trainable_counts(self) -> dict[str, int]:
        """Trainable parameters per layer (C3: the table's connections only)."""
        c3 = int(self.c3_mask.sum().item()) * 25 + self.c3.bias.numel()
        return {"C1": sum(p.numel() for p in self.c1.parameters()), "S2": 12, "C3": c3, "S4": 32,
                "C5": sum(p.numel() for p in self.c5.parameters()), "F6": sum(p.numel() for p in self.f6.parameters())}

    def features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every layer's output: 'C1' ... 'F6' (after the squashing) and 'scores'."""
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, 32, 32):
            raise ValueError(f"LeNet1998 expects input of shape (N, 1, 32, 32), got {tuple(x.shape)}")
        out: dict[str, torch.Tensor] = {}
        h = out["C1"] = scaled_tanh(self.c1(x))
        h = out["S2"] = scaled_tanh(self.s2(h))
        h = out["C3"] = scaled_tanh(F.conv2d(h, self.c3.weight * self.c3_mask, self.c3.bias))
        h = out["S4"] = scaled_tanh(self.s4(h))
        h = out["C5"] = scaled_tanh(self.c5(h)).flatten(1)
        h = out["F6"] = scaled_tanh(self.f6(h))
        out["scores"] = -((h[:, None, :] - self.prototypes[None]) ** 2).sum(dim=2)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Negated squared distances of F6 to the 10 prototypes, (N, 10): the nearest is the prediction."""
        return self.features(x)["scores"]
