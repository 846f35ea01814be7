"""``Module.summary``: the per-layer table students draw by hand — output shape,
parameters, multiply-adds, activation memory and the receptive field (size and
jump) at each depth — measured by running one forward pass and watching every
layer call."""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import IO, Any, Optional

import numpy as np

from .module import Module, _state

Field = tuple[float, ...]


@dataclass(frozen=True)
class LayerSummary:
    """One layer call of the summarised forward pass.

    Attributes
    ----------
    name : str
        The layer's dotted name in the model (``"body.0"``), as in ``state_dict``
        keys; joins made by :func:`~ferroconv.nn.add` / :func:`~ferroconv.nn.cat`
        are named after their kind.
    kind : str
        The layer's class name.
    depth : int
        Nesting depth (1 for the model's direct children).
    output_shape : tuple of int
    params : int
        Parameters of the layer; for a container, of everything inside it.
    macs : int
        Multiply-adds of the call: convolutions, transposed convolutions and
        linear layers, and one per element for normalisation (scale and shift);
        pooling and activations count none. For a container, the sum inside it.
    activation_bytes : int
        Bytes of the layer's output (what a training forward keeps for backward).
    receptive_field : tuple of float, or None
        Per spatial axis, how many input cells one output cell depends on (the
        whole input once the spatial axes are gone). None without spatial input.
    jump : tuple of float, or None
        Per spatial axis, the distance in input cells between neighbouring
        output cells (the product of the strides so far; below 1 after
        upsampling).
    container : bool
        Whether the row groups other rows (its children follow it, one deeper).
    """

    name: str
    kind: str
    depth: int
    output_shape: tuple[int, ...]
    params: int
    macs: int
    activation_bytes: int
    receptive_field: Optional[Field]
    jump: Optional[Field]
    container: bool


@dataclass(frozen=True)
class Summary:
    """The result of :meth:`Module.summary`; ``str(summary)`` is the table.

    Attributes
    ----------
    input_shape : tuple of int
    dtype : str
    layers : list of LayerSummary
        In call order, containers before their contents.
    total_params : int
    param_bytes : int
    total_macs : int
    activation_bytes : int
        Sum over the layers (not the containers) of their output bytes.
    """

    input_shape: tuple[int, ...]
    dtype: str
    layers: list[LayerSummary]
    total_params: int
    param_bytes: int
    total_macs: int
    activation_bytes: int

    def rows(self) -> list[dict[str, Any]]:
        """The layers as plain dicts (e.g. for ``pandas.DataFrame``)."""
        return [asdict(layer) for layer in self.layers]

    def __str__(self) -> str:
        header = ("Layer (type)", "Output shape", "Params", "Mult-adds", "Memory", "Receptive field", "Jump")
        table = [header]
        for layer in self.layers:
            table.append((
                "  " * (layer.depth - 1) + f"{layer.name} ({layer.kind})",
                str(layer.output_shape),
                f"({layer.params:,})" if layer.container else f"{layer.params:,}",
                f"({_count(layer.macs)})" if layer.container else _count(layer.macs),
                _bytes(layer.activation_bytes),
                _field(layer.receptive_field),
                _field(layer.jump),
            ))
        widths = [max(len(row[i]) for row in table) for i in range(len(header))]
        lines = []
        for number, row in enumerate(table):
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
            cells += [cell.rjust(width) for cell, width in zip(row[2:], widths[2:])]
            lines.append("  ".join(cells).rstrip())
            if number == 0:
                lines.append("-" * len(lines[0]))
        lines.append("-" * len(lines[0]))
        lines.append(f"Input: {self.input_shape} {self.dtype}")
        lines.append(f"Parameters: {self.total_params:,} ({_bytes(self.param_bytes)})")
        lines.append(f"Multiply-adds per forward: {_count(self.total_macs)}")
        lines.append(f"Activations per forward: {_bytes(self.activation_bytes)}")
        lines.append("(parenthesised: totals of a container's contents)")
        return "\n".join(lines)


def _count(value: int) -> str:
    for size, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.2f} {unit}"
    return str(value)


def _bytes(value: int) -> str:
    for size, unit in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value} B"


def _field(values: Optional[Field]) -> str:
    if values is None:
        return "-"
    return "x".join(f"{v:g}" for v in values)


def _spatial(value: Any) -> Optional[tuple[int, ...]]:
    shape = np.shape(value)
    return tuple(shape[2:]) if len(shape) > 2 else None


def _own_params(module: Module) -> int:
    return sum(param.data.size for param in module._parameters.values())


def _macs(module: Module, inputs: tuple[Any, ...], output: Any) -> int:
    out_size = int(np.size(output)) if isinstance(output, np.ndarray) else 0
    kernel = getattr(module, "kernel_size", None)
    groups = int(getattr(module, "groups", 0))
    if hasattr(module, "in_channels") and groups and kernel is not None:
        taps = int(math.prod(kernel))
        if getattr(module, "transposed", False):
            return int(np.size(inputs[0])) * (int(getattr(module, "out_channels")) // groups) * taps
        return out_size * (int(getattr(module, "in_channels")) // groups) * taps
    if hasattr(module, "in_features"):
        return out_size * int(getattr(module, "in_features"))
    if "Norm" in type(module).__name__:
        return out_size
    return 0


def _step(module: Module, rf: Field, jump: Field, before: Optional[tuple[int, ...]],
          after: Optional[tuple[int, ...]]) -> tuple[Field, Field]:
    """The receptive field and jump after ``module``, from those of its input."""
    if before is None or len(rf) != len(before):
        return rf, jump
    if after is None or len(after) != len(before):
        # the spatial axes are gone (global pooling, flatten): the whole input
        return tuple(r + (n - 1) * j for r, j, n in zip(rf, jump, before)), jump
    kernel = getattr(module, "kernel_size", None)
    stride = getattr(module, "stride", None)
    if isinstance(kernel, tuple) and isinstance(stride, tuple) and len(kernel) == len(rf) == len(stride):
        dilation = getattr(module, "dilation", None)
        dilation = dilation if isinstance(dilation, tuple) and len(dilation) == len(rf) else (1,) * len(rf)
        if getattr(module, "transposed", False):
            # an output cell gathers at most ceil(((k - 1) d + 1) / s) neighbouring input cells
            rf = tuple(r + (math.ceil(((k - 1) * d + 1) / s) - 1) * j
                       for r, k, d, s, j in zip(rf, kernel, dilation, stride, jump))
            return rf, tuple(j / s for j, s in zip(jump, stride))
        rf = tuple(r + (k - 1) * d * j for r, k, d, j in zip(rf, kernel, dilation, jump))
        return rf, tuple(j * s for j, s in zip(jump, stride))
    # no window attributes: read the geometry off the shapes (adaptive pooling,
    # upsampling; element-wise layers keep the shape and the field)
    new_rf, new_jump = [], []
    for r, j, n, m in zip(rf, jump, before, after):
        if m < n and m > 0:
            step = n // m
            new_rf.append(r + (n - (m - 1) * step - 1) * j)
            new_jump.append(j * step)
        else:
            new_rf.append(r)
            new_jump.append(j * n / m if m > n else j)
    return tuple(new_rf), tuple(new_jump)


class _Watcher:
    """Watches every layer call of the summarised forward (``Module.__call__``
    reports to it), keeping rows in call order and receptive fields per array."""

    def __init__(self, root: Module, x: np.ndarray) -> None:
        self.names = {id(module): name for name, module in _named_modules(root)}
        self.rows: list[Optional[LayerSummary]] = []
        # (row index, layer, inputs, len(self.made) when the call began)
        self.stack: list[tuple[int, Module, tuple[Any, ...], int]] = []
        self.fields: dict[int, tuple[Field, Field, Optional[tuple[int, ...]]]] = {}
        self.made: list[Any] = []  # arrays with a field, in order; keeps their ids unique
        self.unnamed = 0
        spatial = _spatial(x)
        if spatial is not None:
            self._give(x, ((1.0,) * len(spatial), (1.0,) * len(spatial), spatial))

    def _give(self, value: Any, field: tuple[Field, Field, Optional[tuple[int, ...]]]) -> None:
        self.fields[id(value)] = field
        self.made.append(value)

    def enter(self, module: Module, inputs: tuple[Any, ...]) -> int:
        self.rows.append(None)
        self.stack.append((len(self.rows) - 1, module, inputs, len(self.made)))
        return len(self.rows) - 1

    def exit(self, token: int, output: Any) -> None:
        index, module, inputs, mark = self.stack.pop()
        depth = len(self.stack)
        children = [row for row in self.rows[index + 1:] if row is not None and row.depth == depth + 1]
        container = bool(module._modules) or bool(children)
        if isinstance(output, np.ndarray) and id(output) not in self.fields:
            if container:
                # e.g. Residual's sum: the widest field among the arrays made inside
                inner = [self.fields[id(value)] for value in self.made[mark:]]
                if inner:
                    rf = tuple(max(values) for values in zip(*(f[0] for f in inner)))
                    self._give(output, (rf, inner[-1][1], _spatial(output)))
            else:
                known = [self.fields[id(value)] for value in inputs if id(value) in self.fields]
                if known:
                    rf = tuple(max(values) for values in zip(*(f[0] for f in known)))
                    rf, jump = _step(module, rf, known[0][1], known[0][2], _spatial(output))
                    self._give(output, (rf, jump, _spatial(output)))
        final = self.fields.get(id(output))
        name = self.names.get(id(module))
        if name is None:  # a join made by nn.add / nn.cat
            self.unnamed += 1
            name = f"{type(module).__name__.lower()}#{self.unnamed}"
        self.rows[index] = LayerSummary(
            name=name or type(module).__name__, kind=type(module).__name__, depth=depth,
            output_shape=tuple(np.shape(output)),
            params=sum(p.data.size for p in module.parameters()) if container else _own_params(module),
            macs=sum(row.macs for row in children) if container else _macs(module, inputs, output),
            activation_bytes=int(output.nbytes) if isinstance(output, np.ndarray) else 0,
            receptive_field=None if final is None else final[0], jump=None if final is None else final[1],
            container=container)


def _named_modules(root: Module, prefix: str = "") -> list[tuple[str, Module]]:
    found = [(prefix.rstrip("."), root)]
    for name, child in root._modules.items():
        found += _named_modules(child, f"{prefix}{name}.")
    return found


def summarize(model: Module, input_shape: Sequence[int], dtype: Any = None, file: Optional[IO[str]] = None,
              show: bool = True) -> Summary:
    """See :meth:`Module.summary`."""
    try:
        shape = tuple(int(n) for n in input_shape)
    except TypeError:
        raise TypeError(f"summary: input_shape must be a sequence of ints, got {input_shape!r}") from None
    if any(n < 1 for n in shape):
        raise ValueError(f"summary: input_shape must hold positive sizes, got {shape}")
    if dtype is None:
        params = model.parameters()
        dtype = params[0].dtype if params else np.float32
    x = np.zeros(shape, np.dtype(dtype))
    modes = [(module, module.training) for module in model.modules()]
    watcher = _Watcher(model, x)
    model.eval()  # running statistics stay as they are
    _state.watcher = watcher
    try:
        model(x)
    finally:
        _state.watcher = None
        for module, training in modes:
            object.__setattr__(module, "training", training)
    rows = [row for row in watcher.rows if row is not None]
    if len(rows) > 1:
        rows = [row for row in rows if row.depth > 0]  # the model itself is the totals
    leaves = [row for row in rows if not row.container]
    params = model.parameters()
    result = Summary(
        input_shape=shape, dtype=str(np.dtype(dtype)), layers=rows,
        total_params=sum(p.data.size for p in params), param_bytes=sum(p.data.nbytes for p in params),
        total_macs=sum(row.macs for row in leaves), activation_bytes=sum(row.activation_bytes for row in leaves))
    if show:
        print(result, file=file if file is not None else sys.stdout)
    return result
