"""Size arithmetic for convolutional networks: output sizes, padding, parameter and multiply-add counts.

Everything here is pure integer arithmetic on sizes; no arrays are created. The course computes every
number it quotes (quiz answers, parameter counts, the LeNet-5 tables) with these functions.

Conventions: shapes are channel-first, ``(C, H, W)`` for one image (the batch axis of NCHW is left
out) and ``(D,)`` for a flat vector. ``n`` is an input size along one axis, ``f`` a filter (kernel)
size, ``pad`` the zero padding added on *each* side, ``stride`` the step of the window.

    >>> conv_output_size(7, 3, stride=2)
    3
    >>> conv_params(3, 6, 5)          # (5*5*3 + 1) * 6
    456
    >>> print(format_layer_table(layer_table(LENET5_LECTURE)))   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from numbers import Integral
from typing import NamedTuple, Union

__all__ = [
    "conv_output_size",
    "pool_output_size",
    "same_padding",
    "conv_params",
    "fc_params",
    "conv_macs",
    "fc_macs",
    "receptive_field",
    "Conv",
    "Pool",
    "Flatten",
    "FC",
    "RBF",
    "Act",
    "Net",
    "LayerRow",
    "layer_table",
    "format_layer_table",
    "total_params",
    "LENET5_C3_TABLE",
    "LENET5",
    "LENET5_MODERN",
    "LENET5_LECTURE",
]


# ----------------------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------------------
def _as_int(name: str, value: object, minimum: int) -> int:
    """Return ``value`` as a Python int, or raise ValueError naming ``name``.

    Booleans and floats (even 7.0) are refused: a size is a whole number, and a float usually means
    that a division went wrong upstream.
    """
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if value < minimum:
        if minimum == 0:
            raise ValueError(f"{name} must be non-negative, got {name}={value}")
        raise ValueError(f"{name} must be a positive integer (>= {minimum}), got {name}={value}")
    return value


def _pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """Return an ``(h, w)`` pair from an int or a 2-sequence of ints, validated like ``_as_int``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or an (h, w) pair, got {value!r}")
        return _as_int(f"{name}[0]", value[0], minimum), _as_int(f"{name}[1]", value[1], minimum)
    v = _as_int(name, value, minimum)
    return v, v


# ----------------------------------------------------------------------------------------------
# output sizes and padding
# ----------------------------------------------------------------------------------------------
def conv_output_size(n: int, f: int, pad: int = 0, stride: int = 1, strict: bool = True) -> int:
    """Return the output size of a convolution along one axis: floor((n + 2*pad - f) / stride) + 1.

    Args:
        n: input size (height or width), >= 1.
        f: filter size along the same axis, >= 1 and at most ``n + 2*pad``.
        pad: zero padding added on each side, >= 0.
        stride: step between window positions, >= 1.
        strict: if True (the course's default), refuse a stride that skips input pixels. The last
            window ends ``(n + 2*pad - f) % stride`` rows/columns before the end of the padded
            input; when all of them are padding (at most ``pad``), no pixel of the input is lost
            and the size is accepted (the usual stride-2 "same" layers: 56 with f=3, pad=1 -> 28;
            224 with f=7, pad=3 -> 112). When some are input pixels, they would be silently
            ignored, so strict mode raises. If False, floor like PyTorch and TensorFlow.

    Returns:
        The number of window positions along the axis (an int >= 1).

    Raises:
        ValueError: non-integer or out-of-range arguments, a filter larger than the padded input,
            or (strict only) a stride that skips input pixels; the message names n, f, pad and stride.
    """
    n = _as_int("n", n, 1)
    f = _as_int("f", f, 1)
    pad = _as_int("pad", pad, 0)
    stride = _as_int("stride", stride, 1)
    padded = n + 2 * pad
    if f > padded:
        raise ValueError(
            f"filter size f={f} is larger than the padded input n + 2*pad = {n} + 2*{pad} = {padded} "
            f"(n={n}, f={f}, pad={pad}, stride={stride})"
        )
    span = padded - f
    unread = span % stride
    if strict and unread > pad:
        skipped = unread - pad
        raise ValueError(
            f"stride {stride} does not fit: n + 2*pad - f = {n} + 2*{pad} - {f} = {span} leaves {unread} "
            f"row(s)/column(s) after the last window, {skipped} of them input pixels that no window reads "
            f"(n={n}, f={f}, pad={pad}, stride={stride}). Change pad or stride, or pass strict=False to floor "
            f"like PyTorch does."
        )
    return span // stride + 1


def pool_output_size(n: int, f: int = 2, stride: int | None = None, pad: int = 0, strict: bool = True) -> int:
    """Return the output size of a pooling window along one axis: floor((n + 2*pad - f) / stride) + 1.

    Args:
        n: input size (height or width), >= 1.
        f: window size, >= 1 (default 2).
        stride: step of the window; ``None`` (default) means ``stride = f`` (non-overlapping windows).
        pad: padding on each side, >= 0 and at most ``f // 2`` (the limit PyTorch enforces; padding
            is rare in pooling).
        strict: refuse a stride that skips input pixels (see ``conv_output_size``); False floors.

    Returns:
        The number of window positions along the axis.

    Raises:
        ValueError: as ``conv_output_size``, or when ``pad > f // 2``.
    """
    f = _as_int("f", f, 1)
    stride = f if stride is None else _as_int("stride", stride, 1)
    pad = _as_int("pad", pad, 0)
    if pad > f // 2:
        raise ValueError(
            f"pooling pad={pad} is more than half the window f={f}: a window could then lie entirely in "
            f"the padding; frameworks refuse this (n={n}, f={f}, pad={pad}, stride={stride})"
        )
    return conv_output_size(n, f, pad=pad, stride=stride, strict=strict)


def same_padding(f: int) -> int:
    """Return the padding p = (f - 1) / 2 that keeps the size unchanged for a stride-1 ('same') convolution.

    Args:
        f: an odd filter size >= 1.

    Raises:
        ValueError: for an even ``f`` (no symmetric padding gives 'same' then; one reason filter sizes
            are odd) or a non-positive / non-integer ``f``.
    """
    f = _as_int("f", f, 1)
    if f % 2 == 0:
        raise ValueError(
            f"same padding needs an odd filter size, got f={f}: (f - 1) / 2 = {(f - 1) / 2} is not a whole "
            f"number, so the padding would have to differ between the two sides"
        )
    return (f - 1) // 2


# ----------------------------------------------------------------------------------------------
# parameter and multiply-add counts
# ----------------------------------------------------------------------------------------------
def conv_params(c_in: int, c_out: int, kh: int, kw: int | None = None, bias: bool = True) -> int:
    """Return the number of parameters of a conv layer: (c_in * kh * kw + 1) * c_out (without the +1 if no bias).

    Weights have shape (c_out, c_in, kh, kw), one bias per filter. The count does not depend on the
    input's height and width: that is parameter sharing.

    Args:
        c_in: input channels (the depth of every filter).
        c_out: number of filters (output channels).
        kh: kernel height; kw: kernel width (defaults to ``kh``, a square kernel).
        bias: whether each filter has a bias.
    """
    c_in = _as_int("c_in", c_in, 1)
    c_out = _as_int("c_out", c_out, 1)
    kh = _as_int("kh", kh, 1)
    kw = kh if kw is None else _as_int("kw", kw, 1)
    return (c_in * kh * kw + (1 if bias else 0)) * c_out


def fc_params(n_in: int, n_out: int, bias: bool = True) -> int:
    """Return the number of parameters of a fully connected layer: n_in * n_out weights + n_out biases.

    Args:
        n_in: input features (for an image: C * H * W after flattening).
        n_out: output units.
        bias: whether each output unit has a bias.
    """
    n_in = _as_int("n_in", n_in, 1)
    n_out = _as_int("n_out", n_out, 1)
    return n_in * n_out + (n_out if bias else 0)


def conv_macs(c_in: int, c_out: int, kh: int, kw: int, h_out: int, w_out: int) -> int:
    """Return the multiply-adds of a conv layer for one image: (c_in * kh * kw) * (c_out * h_out * w_out).

    Each of the c_out * h_out * w_out outputs is a dot product of length c_in * kh * kw (bias
    additions are not counted).
    """
    c_in = _as_int("c_in", c_in, 1)
    c_out = _as_int("c_out", c_out, 1)
    kh = _as_int("kh", kh, 1)
    kw = _as_int("kw", kw, 1)
    h_out = _as_int("h_out", h_out, 1)
    w_out = _as_int("w_out", w_out, 1)
    return (c_in * kh * kw) * (c_out * h_out * w_out)


def fc_macs(n_in: int, n_out: int) -> int:
    """Return the multiply-adds of a fully connected layer for one input vector: n_in * n_out."""
    return _as_int("n_in", n_in, 1) * _as_int("n_out", n_out, 1)


# ----------------------------------------------------------------------------------------------
# receptive field
# ----------------------------------------------------------------------------------------------
def _kernel_stride(layer: object, i: int) -> tuple[int, int]:
    """Return (kernel, stride) of one entry of a receptive-field stack."""
    if isinstance(layer, (Conv, Pool)):
        kh, kw = _pair(f"layers[{i}].k", layer.k, 1)
        stride = layer.k if isinstance(layer, Pool) and layer.stride is None else layer.stride
        sh, sw = _pair(f"layers[{i}].stride", stride, 1)
        if kh != kw or sh != sw:
            raise ValueError(f"layers[{i}] has a non-square kernel or stride ({layer!r}); "
                             f"pass (kernel, stride) pairs for one axis instead")
        return kh, sh
    if isinstance(layer, (FC, RBF, Flatten)):
        raise ValueError(f"layers[{i}] is {type(layer).__name__}: a fully connected layer sees its whole input, "
                         f"so a receptive field is only defined for conv and pooling layers")
    if isinstance(layer, Act):
        return 1, 1
    if isinstance(layer, Sequence) and not isinstance(layer, str) and len(layer) == 2:
        return _as_int(f"layers[{i}] kernel", layer[0], 1), _as_int(f"layers[{i}] stride", layer[1], 1)
    raise ValueError(f"layers[{i}] must be a (kernel, stride) pair, a Conv or a Pool, got {layer!r}")


def receptive_field(layers: Iterable[object]) -> int:
    """Return the receptive field (in input pixels, along one axis) of one output of a stack of layers.

    With r = 1 and jump j = 1 to start, each layer with kernel k and stride s does
    r += (k - 1) * j, then j *= s. For L stacked k x k stride-1 layers this gives 1 + L * (k - 1);
    strides and pooling multiply the jump, so later layers grow the field faster.

    Args:
        layers: the stack, first layer first; each item a ``(kernel, stride)`` pair of ints, or a
            ``Conv`` / ``Pool`` spec with a square kernel (``Act`` entries are ignored).

    Returns:
        The receptive field size (1 for an empty stack).

    Raises:
        ValueError: an item that is not a valid pair/spec (the message gives its index).
    """
    r, jump = 1, 1
    for i, layer in enumerate(layers):
        k, s = _kernel_stride(layer, i)
        r += (k - 1) * jump
        jump *= s
    return r


# ----------------------------------------------------------------------------------------------
# layer specs and tables
# ----------------------------------------------------------------------------------------------
IntOrPair = Union[int, tuple[int, int]]


@dataclass(frozen=True)
class Conv:
    """A convolution layer spec: ``c_out`` filters of size ``k`` (int or (kh, kw)).

    ``pad`` may be an int, an (h, w) pair or ``"same"`` (odd kernels, stride 1 keeps the size).
    ``connections`` (optional) lists, for each output map, the input maps it reads: LeNet-5's
    sparse C3 layer (see ``LENET5_C3_TABLE``); ``None`` means every filter sees every input map.
    """

    c_out: int
    k: IntOrPair
    stride: IntOrPair = 1
    pad: IntOrPair | str = 0
    bias: bool = True
    connections: tuple[tuple[int, ...], ...] | None = None
    name: str | None = None


@dataclass(frozen=True)
class Pool:
    """A pooling layer spec: window ``k``, ``stride`` (default ``k``), ``mode`` "max" or "avg".

    ``trainable=True`` models LeNet-5's original subsampling layers: each map's window sum is
    multiplied by a trainable coefficient and a trainable bias is added, so 2 parameters per map.
    Modern max/avg pooling has no parameters.
    """

    k: IntOrPair = 2
    stride: IntOrPair | None = None
    pad: IntOrPair = 0
    mode: str = "max"
    trainable: bool = False
    name: str | None = None


@dataclass(frozen=True)
class Flatten:
    """Flatten (C, H, W) to (C*H*W,). Optional: FC layers flatten their input themselves."""

    name: str | None = None


@dataclass(frozen=True)
class FC:
    """A fully connected (affine) layer spec with ``n_out`` units; it flattens a (C, H, W) input."""

    n_out: int
    bias: bool = True
    name: str | None = None


@dataclass(frozen=True)
class RBF:
    """LeNet-5's original output layer: ``n_out`` Euclidean radial-basis units, each with an ``n_in`` prototype.

    It has n_in * n_out parameters and no bias (in the 1998 paper the prototypes were set by hand
    to stylised 7x12 bitmaps of the characters and kept fixed, at least at first).
    """

    n_out: int
    name: str | None = None


@dataclass(frozen=True)
class Act:
    """An element-wise nonlinearity ("relu", "tanh", "sigmoid", "softmax"): same shape, no parameters."""

    fn: str = "relu"
    name: str | None = None


Layer = Union[Conv, Pool, Flatten, FC, RBF, Act]


@dataclass(frozen=True)
class Net:
    """A named network spec: an input shape (C, H, W) and a sequence of layer specs."""

    name: str
    input_shape: tuple[int, ...]
    layers: tuple[Layer, ...] = field(default_factory=tuple)

    def __iter__(self):  # noqa: D105 - iterate over the layers
        return iter(self.layers)

    def __len__(self) -> int:  # noqa: D105
        return len(self.layers)


class LayerRow(NamedTuple):
    """One row of a layer table.

    name: layer name ("CONV1"); kind: "input", "conv", "pool", "flatten", "fc", "rbf" or "act";
    out_shape: (C, H, W) or (D,); activations: number of values in the output for one image;
    params: trainable parameters of the layer.
    """

    name: str
    kind: str
    out_shape: tuple[int, ...]
    activations: int
    params: int


def _prod(shape: Iterable[int]) -> int:
    out = 1
    for s in shape:
        out *= s
    return out


def _check_input_shape(input_shape: object) -> tuple[int, ...]:
    if not isinstance(input_shape, Sequence) or isinstance(input_shape, str) or len(input_shape) not in (1, 3):
        raise ValueError(f"input_shape must be (C, H, W) or (D,), got {input_shape!r}")
    return tuple(_as_int(f"input_shape[{i}]", s, 1) for i, s in enumerate(input_shape))


def _need_chw(shape: tuple[int, ...], name: str, kind: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ValueError(f"layer {name} ({kind}) needs a (C, H, W) input, got the flat shape {shape}; "
                         f"put conv and pooling layers before the first FC layer")
    return shape  # type: ignore[return-value]


def _layer_name(layer: Layer, counters: dict[str, int]) -> str:
    """Auto-name layers the lecture way: CONV1, POOL1, CONV2, POOL2, FC3, FC4, ... (a pool shares its conv's number)."""
    if isinstance(layer, (Conv, FC, RBF)):
        counters["layer"] += 1
        counters["pool_of"] = counters["layer"]
        return {Conv: "CONV", FC: "FC", RBF: "RBF"}[type(layer)] + str(counters["layer"])
    if isinstance(layer, Pool):
        return f"POOL{max(counters['pool_of'], 1)}"
    if isinstance(layer, Flatten):
        return "FLATTEN"
    return layer.fn.upper()  # Act


def layer_table(spec: Net | Iterable[Layer], input_shape: Sequence[int] | None = None,
                strict: bool = True) -> list[LayerRow]:
    """Compute output shape, activation size and parameter count of every layer of a network.

    Args:
        spec: a ``Net`` (which carries its input shape) or a sequence of layer specs
            (``Conv``, ``Pool``, ``Flatten``, ``FC``, ``RBF``, ``Act``).
        input_shape: (C, H, W) of one input image (overrides ``spec.input_shape``); required for a
            plain sequence.
        strict: passed to ``conv_output_size`` / ``pool_output_size`` (refuse strides that skip input pixels).

    Returns:
        A list of ``LayerRow(name, kind, out_shape, activations, params)``, starting with an "input"
        row (0 parameters), then one row per layer.

    Raises:
        ValueError: a bad input shape, a size that does not fit (the message names the layer), a
            channel mismatch in a connection table, a conv/pool after the input was flattened.
    """
    if input_shape is None:
        if not isinstance(spec, Net):
            raise ValueError("input_shape is required when spec is a plain list of layers")
        input_shape = spec.input_shape
    shape = _check_input_shape(input_shape)
    layers = list(spec.layers if isinstance(spec, Net) else spec)
    rows = [LayerRow("INPUT", "input", shape, _prod(shape), 0)]
    counters = {"layer": 0, "pool_of": 0}
    for i, layer in enumerate(layers):
        auto = _layer_name(layer, counters) if isinstance(layer, (Conv, Pool, Flatten, FC, RBF, Act)) else ""
        name = getattr(layer, "name", None) or auto
        try:
            if isinstance(layer, Conv):
                c, h, w = _need_chw(shape, name, "conv")
                c_out = _as_int("c_out", layer.c_out, 1)
                kh, kw = _pair("k", layer.k, 1)
                sh, sw = _pair("stride", layer.stride, 1)
                if layer.pad == "same":
                    if (sh, sw) != (1, 1):
                        raise ValueError("pad='same' needs stride 1")
                    ph, pw = same_padding(kh), same_padding(kw)
                else:
                    ph, pw = _pair("pad", layer.pad, 0)
                ho = conv_output_size(h, kh, ph, sh, strict)
                wo = conv_output_size(w, kw, pw, sw, strict)
                if layer.connections is None:
                    params = conv_params(c, c_out, kh, kw, bias=layer.bias)
                else:
                    if len(layer.connections) != c_out:
                        raise ValueError(f"connections lists {len(layer.connections)} output maps, "
                                         f"but c_out={c_out}")
                    n_links = 0
                    for j, inputs in enumerate(layer.connections):
                        bad = [m for m in inputs if not (isinstance(m, Integral) and 0 <= m < c)]
                        if bad or not inputs or len(set(inputs)) != len(inputs):
                            raise ValueError(f"connections[{j}]={tuple(inputs)} must be distinct input map "
                                             f"indices in 0..{c - 1} (channel mismatch: the input has {c} maps)")
                        n_links += len(inputs)
                    params = n_links * kh * kw + (c_out if layer.bias else 0)
                shape = (c_out, ho, wo)
                rows.append(LayerRow(name, "conv", shape, _prod(shape), params))
            elif isinstance(layer, Pool):
                c, h, w = _need_chw(shape, name, "pool")
                if layer.mode not in ("max", "avg"):
                    raise ValueError(f"pool mode must be 'max' or 'avg', got {layer.mode!r}")
                kh, kw = _pair("k", layer.k, 1)
                sh, sw = (kh, kw) if layer.stride is None else _pair("stride", layer.stride, 1)
                ph, pw = _pair("pad", layer.pad, 0)
                shape = (c, pool_output_size(h, kh, sh, ph, strict), pool_output_size(w, kw, sw, pw, strict))
                rows.append(LayerRow(name, "pool", shape, _prod(shape), 2 * c if layer.trainable else 0))
            elif isinstance(layer, Flatten):
                shape = (_prod(shape),)
                rows.append(LayerRow(name, "flatten", shape, shape[0], 0))
            elif isinstance(layer, FC):
                n_in = _prod(shape)
                shape = (_as_int("n_out", layer.n_out, 1),)
                rows.append(LayerRow(name, "fc", shape, shape[0], fc_params(n_in, shape[0], bias=layer.bias)))
            elif isinstance(layer, RBF):
                n_in = _prod(shape)
                shape = (_as_int("n_out", layer.n_out, 1),)
                rows.append(LayerRow(name, "rbf", shape, shape[0], fc_params(n_in, shape[0], bias=False)))
            elif isinstance(layer, Act):
                rows.append(LayerRow(name, "act", shape, _prod(shape), 0))
            else:
                raise ValueError(f"unknown layer spec {layer!r}; use Conv, Pool, Flatten, FC, RBF or Act")
        except ValueError as err:
            raise ValueError(f"layer {i} ({name or type(layer).__name__}) with input shape {shape}: {err}") from None
    return rows


def total_params(rows: Iterable[LayerRow]) -> int:
    """Return the sum of the ``params`` column of a layer table."""
    return sum(row.params for row in rows)


def _fmt_shape(shape: tuple[int, ...], layout: str) -> str:
    if len(shape) == 1:
        return str(shape[0])
    if layout == "hwc":
        shape = (shape[1], shape[2], shape[0])
    return "(" + ", ".join(str(s) for s in shape) + ")"


def format_layer_table(rows: Sequence[LayerRow], layout: str = "chw") -> str:
    """Format a layer table as aligned plain text with a total-parameters line.

    Args:
        rows: the output of ``layer_table``.
        layout: "chw" shows shapes as (C, H, W) like PyTorch; "hwc" as (H, W, C) like the
            Coursera lecture's table.

    Returns:
        A multi-line string (no trailing newline).
    """
    if layout not in ("chw", "hwc"):
        raise ValueError(f"layout must be 'chw' or 'hwc', got {layout!r}")
    shape_head = "Output (C, H, W)" if layout == "chw" else "Output (H, W, C)"
    header = ("Layer", "Kind", shape_head, "Activations", "Parameters")
    body = [(r.name, r.kind, _fmt_shape(r.out_shape, layout), f"{r.activations:,}", f"{r.params:,}") for r in rows]
    total = ("Total", "", "", "", f"{total_params(rows):,}")
    widths = [max(len(line[j]) for line in [header, *body, total]) for j in range(5)]

    def fmt(line: tuple[str, ...]) -> str:
        left = [line[j].ljust(widths[j]) for j in range(3)]
        right = [line[j].rjust(widths[j]) for j in range(3, 5)]
        return "  ".join(left + right).rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([fmt(header), rule, *(fmt(line) for line in body), rule, fmt(total)])


# ----------------------------------------------------------------------------------------------
# LeNet-5 specs
# ----------------------------------------------------------------------------------------------
#: LeNet-5's C3 connection table (LeCun et al. 1998, Table I): for each of the 16 C3 maps, the S2
#: maps it reads. 6 maps read 3 neighbours, 6 read 4 neighbours, 3 read 4 non-contiguous maps, 1 reads all 6.
LENET5_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

#: The 1998 LeNet-5: 32x32x1 -> C1 6@28x28 -> S2 6@14x14 -> C3 16@10x10 -> S4 16@5x5 -> C5 120 -> F6 84 -> 10.
#: Trainable subsampling (2 parameters per map), the sparse C3 table (1,516 parameters), RBF outputs.
LENET5 = Net("LeNet-5 (LeCun et al. 1998)", (1, 32, 32), (
    Conv(6, 5, name="C1"),
    Pool(2, mode="avg", trainable=True, name="S2"),
    Conv(16, 5, connections=LENET5_C3_TABLE, name="C3"),
    Pool(2, mode="avg", trainable=True, name="S4"),
    Conv(120, 5, name="C5"),
    FC(84, name="F6"),
    RBF(10, name="OUTPUT"),
))

#: Today's usual LeNet-5 on 32x32x1: ReLU, 2x2 max pooling (no parameters), dense C3, an FC softmax output.
LENET5_MODERN = Net("LeNet-5 (modern)", (1, 32, 32), (
    Conv(6, 5, name="CONV1"),
    Pool(2, name="POOL1"),
    Conv(16, 5, name="CONV2"),
    Pool(2, name="POOL2"),
    FC(120, name="FC3"),
    FC(84, name="FC4"),
    FC(10, name="SOFTMAX"),
))

#: The lecture's LeNet-5-like network on a 32x32x3 input with 8 and 16 filters.
LENET5_LECTURE = Net("LeNet-5-like lecture network", (3, 32, 32), (
    Conv(8, 5, name="CONV1"),
    Pool(2, name="POOL1"),
    Conv(16, 5, name="CONV2"),
    Pool(2, name="POOL2"),
    FC(120, name="FC3"),
    FC(84, name="FC4"),
    FC(10, name="SOFTMAX"),
))
