"""The convolution and pooling layers of standard CNNs, as shapes.

Each network is described once, layer after layer, by a small tracer that
carries the activation's shape through the network (``_Trace``); what comes out
is every *distinct* layer (its operation, input shape without the batch,
kernel, stride, padding, dilation and groups) with the number of times it
occurs. ``python -m ferroconv bench --suite networks`` times these layers
against PyTorch; the criterion group ``networks`` of ``cargo bench`` reads the
same list from ``benches/network_layers.json`` (written by
``python -m ferroconv.networks``).

The networks are a sample of the shape space real CNNs use, not a target list:
ResNet-18 and ResNet-50 (torchvision's layout, stride on the 3x3 of the
bottleneck), VGG-16, MobileNetV2 (expansion 6, depthwise 3x3), a 2-D U-Net at
256x256 (padded 3x3 convolutions, 2x2 transposed-convolution upsampling), a
small 3-D U-Net at 64^3 and a 1-D WaveNet-style stack of causal dilated
convolutions (kernel 2, dilations 1..512, per-side padding) over 16k samples.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from typing import Callable, Optional, Sequence, Union

# Per-axis padding: an int for every side, or one (before, after) pair per axis.
LayerPadding = Union[int, tuple[tuple[int, int], ...]]


@dataclass(frozen=True)
class Layer:
    """One distinct layer of a network.

    Attributes
    ----------
    network : str
        The network it belongs to.
    op : str
        ``"conv"``, ``"conv_transpose"``, ``"max_pool"`` (with indices),
        ``"avg_pool"`` or ``"adaptive_avg_pool"`` (to a single cell).
    in_shape : tuple of int
        ``(C, *spatial)``, without the batch axis.
    out_channels : int
        Output channels (pooling keeps ``C``).
    kernel : tuple of int
        Kernel or window size per spatial axis (empty for adaptive pooling).
    stride, dilation : int
        The same along every axis.
    padding : int or tuple of (int, int)
        The same on every side, or ``(before, after)`` per axis.
    groups : int
        Convolution groups (depthwise layers have ``groups == C``).
    count : int
        How many times the layer occurs in the network.
    """

    network: str
    op: str
    in_shape: tuple[int, ...]
    out_channels: int
    kernel: tuple[int, ...]
    stride: int = 1
    padding: LayerPadding = 0
    dilation: int = 1
    groups: int = 1
    count: int = 1

    @property
    def rank(self) -> int:
        return len(self.in_shape) - 1

    @property
    def name(self) -> str:
        """A short label, e.g. ``conv 3x3 s2 128->256 28x28``."""
        size = "x".join(map(str, self.in_shape[1:]))
        if self.op == "adaptive_avg_pool":
            return f"global avg pool {self.in_shape[0]} {size}"
        kernel = "x".join(map(str, self.kernel))
        parts = [self.op.replace("_", " "), kernel]
        if self.stride != 1:
            parts.append(f"s{self.stride}")
        if self.dilation != 1:
            parts.append(f"d{self.dilation}")
        if self.op in ("conv", "conv_transpose"):
            if self.groups == self.in_shape[0] == self.out_channels and self.groups > 1:
                parts.append(f"depthwise {self.groups}")
            else:
                parts.append(f"{self.in_shape[0]}->{self.out_channels}")
                if self.groups > 1:
                    parts.append(f"g{self.groups}")
        else:
            parts.append(str(self.in_shape[0]))
        if isinstance(self.padding, tuple):
            parts.append("causal" if all(hi == 0 for _, hi in self.padding) else f"pad {self.padding}")
        parts.append(size)
        return " ".join(parts)

    def out_shape(self) -> tuple[int, ...]:
        """``(C_out, *spatial)`` of the output, as PyTorch computes it."""
        if self.op == "adaptive_avg_pool":
            return (self.in_shape[0],) + (1,) * self.rank
        pads = self.padding if isinstance(self.padding, tuple) else ((self.padding, self.padding),) * self.rank
        spatial = []
        for size, k, (lo, hi) in zip(self.in_shape[1:], self.kernel, pads):
            reach = self.dilation * (k - 1) + 1
            if self.op == "conv_transpose":
                spatial.append((size - 1) * self.stride - lo - hi + reach)
            else:
                spatial.append((size + lo + hi - reach) // self.stride + 1)
        channels = self.out_channels if self.op in ("conv", "conv_transpose") else self.in_shape[0]
        return (channels, *spatial)

    def weight_shape(self) -> tuple[int, ...]:
        """PyTorch's weight layout: ``(C_out, C_in/g, *k)``, transposed ``(C_in, C_out/g, *k)``."""
        if self.op == "conv":
            return (self.out_channels, self.in_shape[0] // self.groups, *self.kernel)
        if self.op == "conv_transpose":
            return (self.in_shape[0], self.out_channels // self.groups, *self.kernel)
        return ()

    def flops(self, batch: int) -> float:
        """Multiply-adds x 2 of the forward pass (0 for pooling)."""
        if self.op == "conv":
            out = self.out_shape()
            cells = out[0] * _prod(out[1:])
            return 2.0 * batch * cells * (self.in_shape[0] // self.groups) * _prod(self.kernel)
        if self.op == "conv_transpose":
            cells = self.in_shape[0] * _prod(self.in_shape[1:])
            return 2.0 * batch * cells * (self.out_channels // self.groups) * _prod(self.kernel)
        return 0.0


def _prod(values: Sequence[int]) -> int:
    out = 1
    for v in values:
        out *= v
    return out


class _Trace:
    """Carries an activation shape through a network and records its layers."""

    def __init__(self, network: str, shape: tuple[int, ...]):
        self.network = network
        self.shape = shape
        self.layers: dict[Layer, int] = {}

    def _record(self, layer: Layer) -> "_Trace":
        self.layers[layer] = self.layers.get(layer, 0) + 1
        self.shape = layer.out_shape()
        return self

    def conv(self, c_out: int, k: int, stride: int = 1, padding: LayerPadding = 0, dilation: int = 1,
             groups: int = 1) -> "_Trace":
        rank = len(self.shape) - 1
        return self._record(Layer(self.network, "conv", self.shape, c_out, (k,) * rank, stride, padding,
                                  dilation, groups))

    def depthwise(self, k: int, stride: int = 1, padding: int = 0) -> "_Trace":
        return self.conv(self.shape[0], k, stride, padding, groups=self.shape[0])

    def up(self, c_out: int) -> "_Trace":
        """2x upsampling by a 2x..x2, stride-2 transposed convolution."""
        rank = len(self.shape) - 1
        return self._record(Layer(self.network, "conv_transpose", self.shape, c_out, (2,) * rank, 2))

    def max_pool(self, k: int, stride: int, padding: int = 0) -> "_Trace":
        rank = len(self.shape) - 1
        return self._record(Layer(self.network, "max_pool", self.shape, self.shape[0], (k,) * rank, stride,
                                  padding))

    def global_avg_pool(self) -> "_Trace":
        return self._record(Layer(self.network, "adaptive_avg_pool", self.shape, self.shape[0], ()))

    def at(self, shape: tuple[int, ...]) -> "_Trace":
        """Continue from another activation (a branch, or a concatenation)."""
        self.shape = shape
        return self

    def result(self) -> list[Layer]:
        return [Layer(**{**asdict(layer), "count": n}) for layer, n in self.layers.items()]


def resnet18(size: int = 224) -> list[Layer]:
    t = _Trace("ResNet-18", (3, size, size)).conv(64, 7, 2, 3).max_pool(3, 2, 1)
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            s = stride if block == 0 else 1
            x = t.shape
            t.conv(width, 3, s, 1).conv(width, 3, 1, 1)
            if s != 1 or x[0] != width:
                out = t.shape
                t.at(x).conv(width, 1, s).at(out)
    return t.global_avg_pool().result()


def resnet50(size: int = 224) -> list[Layer]:
    t = _Trace("ResNet-50", (3, size, size)).conv(64, 7, 2, 3).max_pool(3, 2, 1)
    for width, blocks, stride in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)):
        for block in range(blocks):
            s = stride if block == 0 else 1
            x = t.shape
            t.conv(width, 1).conv(width, 3, s, 1).conv(4 * width, 1)
            if block == 0:
                out = t.shape
                t.at(x).conv(4 * width, 1, s).at(out)
    return t.global_avg_pool().result()


def vgg16(size: int = 224) -> list[Layer]:
    t = _Trace("VGG-16", (3, size, size))
    for width, convs in ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3)):
        for _ in range(convs):
            t.conv(width, 3, 1, 1)
        t.max_pool(2, 2)
    return t.result()


def mobilenet_v2(size: int = 224) -> list[Layer]:
    t = _Trace("MobileNetV2", (3, size, size)).conv(32, 3, 2, 1)
    for expansion, c, n, stride in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                                    (6, 160, 3, 2), (6, 320, 1, 1)):
        for block in range(n):
            if expansion != 1:
                t.conv(t.shape[0] * expansion, 1)
            t.depthwise(3, stride if block == 0 else 1, 1).conv(c, 1)
    return t.conv(1280, 1).global_avg_pool().result()


def _unet(network: str, shape: tuple[int, ...], widths: Sequence[int], out_channels: int = 2) -> list[Layer]:
    t = _Trace(network, shape)
    skips = []
    for i, width in enumerate(widths):
        if i:
            t.max_pool(2, 2)
        t.conv(width, 3, 1, 1).conv(width, 3, 1, 1)
        skips.append(t.shape)
    for width, skip in zip(reversed(widths[:-1]), reversed(skips[:-1])):
        t.up(width)
        t.at((2 * width, *skip[1:])).conv(width, 3, 1, 1).conv(width, 3, 1, 1)
    return t.conv(out_channels, 1).result()


def unet2d(size: int = 256) -> list[Layer]:
    return _unet("U-Net 2-D", (3, size, size), (64, 128, 256, 512, 1024))


def unet3d(size: int = 64) -> list[Layer]:
    return _unet("U-Net 3-D", (1, size, size, size), (16, 32, 64, 128))


def wavenet(samples: int = 16384, channels: int = 64) -> list[Layer]:
    """Causal dilated convolutions (kernel 2, left padding = dilation) with gated
    activations (filter and gate as one 2*channels convolution), 1x1 residual and
    skip convolutions."""
    t = _Trace("WaveNet 1-D", (1, samples)).conv(channels, 2, padding=((1, 0),))
    for dilation in (1 << i for i in range(10)):
        x = t.shape
        t.conv(2 * channels, 2, padding=((dilation, 0),), dilation=dilation)
        t.at(x).conv(channels, 1).at(x).conv(channels, 1)
    return t.result()


NETWORKS: dict[str, Callable[[], list[Layer]]] = {
    "resnet18": resnet18,
    "resnet50": resnet50,
    "vgg16": vgg16,
    "mobilenet_v2": mobilenet_v2,
    "unet2d": unet2d,
    "unet3d": unet3d,
    "wavenet": wavenet,
}


def layers(networks: Optional[Sequence[str]] = None) -> list[Layer]:
    """The distinct layers of the named networks (all of :data:`NETWORKS` by default)."""
    names = list(NETWORKS) if not networks else list(networks)
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        raise ValueError(f"unknown network(s) {unknown}; choose from {sorted(NETWORKS)}")
    return [layer for name in names for layer in NETWORKS[name]()]


def to_json(layer_list: Sequence[Layer]) -> str:
    """The layers as JSON records (with their output and weight shapes), for the
    criterion benches."""
    records = []
    for layer in layer_list:
        record = asdict(layer)
        record["padding"] = (
            [list(pair) for pair in layer.padding] if isinstance(layer.padding, tuple)
            else [[layer.padding, layer.padding]] * layer.rank)
        record.update(name=layer.name, out_shape=list(layer.out_shape()), weight_shape=list(layer.weight_shape()))
        records.append(record)
    return json.dumps(records, indent=1) + "\n"


if __name__ == "__main__":
    sys.stdout.write(to_json(layers(sys.argv[1:] or None)))
