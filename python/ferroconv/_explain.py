"""``explain_conv`` and ``explain_pool``: which algorithm runs for a layer, on
how many tasks, with how much workspace, and what the other algorithms that
could run it would cost. The plan comes from the same code that runs the call
(``src/conv/plan.rs``, ``src/pool/plan.rs``), with the same validation, so a
report describes exactly what the call does on this machine and thread count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, cast

from . import _ferroconv as _native
from ._args import IntOrTuple, as_int, flag, int_list, spatial_shape, text
from ._spec import Padding, adaptive_spec, conv_spec, dtype_name, pool_spec, transpose_spec

__all__ = ["AlgorithmCost", "PassPlan", "Plan", "explain_conv", "explain_pool"]


@dataclass(frozen=True)
class AlgorithmCost:
    """The estimated cost of one algorithm for one pass: counts from the shapes,
    not timings.

    Attributes
    ----------
    algorithm : str
        Its name (e.g. ``"winograd"``, ``"implicit_gemm"``, ``"stride2_simd"``).
    ops : int
        Operations its kernels execute: multiply-adds for a convolution (counting
        the padding of register blocks and positions computed and dropped),
        element visits for pooling.
    copied_bytes : int
        Bytes copied into buffers (gathered columns, phase planes, padded rows).
    workspace_bytes : int
        Bytes of buffers held at once (shared ones plus one set per worker).
    tasks : int
        Parallel tasks the pass is cut into.
    serial : bool
        Whether it runs on the calling thread (too little work, one task or one
        thread).
    """

    algorithm: str
    ops: int
    copied_bytes: int
    workspace_bytes: int
    tasks: int
    serial: bool


@dataclass(frozen=True)
class PassPlan:
    """The plan of one pass.

    Attributes
    ----------
    name : str
        ``"forward"``, ``"input_grad"`` or ``"weight_grad"``.
    chosen : AlgorithmCost
        The algorithm that runs, and its estimate.
    alternatives : tuple of AlgorithmCost
        The other algorithms that could run this pass, with their estimates.
    flops : int
        Floating-point operations of the pass (two per useful multiply-add of a
        convolution, one per element visit of pooling).
    """

    name: str
    chosen: AlgorithmCost
    alternatives: tuple[AlgorithmCost, ...]
    flops: int

    @property
    def algorithm(self) -> str:
        """The name of the algorithm that runs."""
        return self.chosen.algorithm


@dataclass(frozen=True)
class Plan:
    """What a call does on this machine: shapes, element type, the instruction
    set and thread count the kernels run with, and the plan of each pass.

    ``str(plan)`` is a readable table (what ``python -m ferroconv explain``
    prints).
    """

    op: str
    x_shape: tuple[int, ...]
    weight_shape: Optional[tuple[int, ...]]
    out_shape: tuple[int, ...]
    dtype: str
    simd: str
    threads: int
    passes: tuple[PassPlan, ...]
    #: Convolutions: the precision the plan respects (``"default"`` or
    #: ``"highest"``); None for pooling.
    precision: Optional[str] = None

    def pass_named(self, name: str) -> PassPlan:
        """The plan of pass ``name`` (``"forward"``, ``"input_grad"``, ``"weight_grad"``)."""
        for plan in self.passes:
            if plan.name == name:
                return plan
        raise KeyError(f"no pass named {name!r}; passes: {', '.join(p.name for p in self.passes)}")

    def __str__(self) -> str:
        shapes = f"x {self.x_shape}" + (f" * weight {self.weight_shape}" if self.weight_shape else "")
        lines = [
            f"{self.op}: {shapes} -> {self.out_shape}, {self.dtype}"
            + (" (stored; computed in float32)" if self.dtype in ("float16", "bfloat16") else ""),
            f"simd {self.simd}, {self.threads} threads"
            + (f", precision {self.precision}" if self.precision else ""),
            "",
            f"{'pass':<12}{'algorithm':<26}{'GFLOP':>8}{'Gops':>9}{'copied MB':>11}"
            f"{'workspace MB':>14}{'tasks':>8}  run",
        ]
        for plan in self.passes:
            rows = [(plan.name, plan.chosen, "")] + [("", alt, "alternative") for alt in plan.alternatives]
            for label, cost, note in rows:
                mode = "serial" if cost.serial else "parallel"
                gflop = f"{plan.flops / 1e9:8.3f}" if not note else " " * 8
                lines.append(
                    f"{label:<12}{cost.algorithm:<26}{gflop}{cost.ops / 1e9:9.3f}"
                    f"{cost.copied_bytes / 1e6:11.2f}{cost.workspace_bytes / 1e6:14.2f}{cost.tasks:8d}  "
                    f"{mode}{'  (' + note + ')' if note else ''}"
                )
        return "\n".join(lines)


def _cost(entry: dict[str, Any]) -> AlgorithmCost:
    return AlgorithmCost(entry["algorithm"], int(entry["ops"]), int(entry["copied_bytes"]),
                         int(entry["workspace_bytes"]), int(entry["tasks"]), bool(entry["serial"]))


def _plan(op: str, report: dict[str, Any]) -> Plan:
    passes = tuple(
        PassPlan(p["name"], _cost(p["chosen"]), tuple(_cost(a) for a in p["alternatives"]), int(p["flops"]))
        for p in report["passes"]
    )
    weight = report["weight_shape"]
    return Plan(op, tuple(report["x_shape"]), None if weight is None else tuple(weight),
                tuple(report["out_shape"]), report["dtype"], report["simd"], int(report["threads"]), passes,
                report.get("precision"))


def _batched_shape(shape: object, name: str, rank: Optional[int] = None) -> tuple[int, ...]:
    """A shape with 3 to 5 entries (batched) or, when ``rank`` is known, one less
    (unbatched; a batch of 1 is assumed)."""
    items = tuple(int_list(shape, name))
    if rank is not None and len(items) == rank + 1:
        items = (1, *items)
    if not 3 <= len(items) <= 5:
        raise ValueError(f"{name} must be (N, C, *spatial) with 1 to 3 spatial axes, got {items!r}")
    return items


def explain_conv(x_shape: tuple[int, ...], weight_shape: tuple[int, ...], *, dtype: object = "float32",
                 stride: IntOrTuple = 1, padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
                 padding_mode: str = "zeros", transposed: bool = False,
                 output_padding: IntOrTuple = 0, precision: Optional[str] = None) -> Plan:
    """The plan of a convolution: which algorithm runs each pass, and why it is
    fast or slow.

    Parameters
    ----------
    x_shape : tuple of ints
        Input shape ``(N, C_in, *spatial)`` (or unbatched ``(C_in, *spatial)``).
    weight_shape : tuple of ints
        ``(C_out, C_in / groups, *kernel)``; for a transposed convolution
        ``(C_in, C_out / groups, *kernel)``.
    dtype : float32, float64, float16 or bfloat16
    stride, padding, dilation, groups, padding_mode
        As :func:`ferroconv.conv2d` (for ``transposed=True``, as
        :func:`ferroconv.conv_transpose2d`, with ``output_padding``).
    transposed : bool
        Explain ``conv_transpose{1,2,3}d`` instead.
    output_padding : int or tuple of ints
        Of a transposed convolution.
    precision : {"default", "highest"}, optional
        The call's precision (None: the process default, see
        :func:`ferroconv.set_precision`); ``"highest"`` excludes Winograd.

    Returns
    -------
    Plan
        The forward pass, the input gradient and the weight gradient: each with
        the algorithm that runs and its estimated cost, the alternatives that
        could run with theirs, the number of parallel tasks and the workspace.

    Raises
    ------
    ValueError, TypeError
        As the convolution itself would for these shapes and arguments.

    Examples
    --------
    >>> import ferroconv as fc
    >>> plan = fc.explain_conv((8, 64, 56, 56), (64, 64, 3, 3), padding=1)
    >>> plan.pass_named("forward").algorithm
    'winograd'
    >>> plan.out_shape
    (8, 64, 56, 56)
    """
    weight = tuple(int_list(weight_shape, "weight_shape"))
    rank = len(weight) - 2
    if not 1 <= rank <= 3:
        raise ValueError(f"weight_shape must be (C_out, C_in / groups, *kernel) with 1 to 3 kernel axes, "
                         f"got {weight!r}")
    x = _batched_shape(x_shape, "x_shape", rank)
    if flag(transposed, "transposed"):
        # transpose_spec refuses the per-side and string forms of a convolution's padding
        spec = transpose_spec(rank, stride, cast(IntOrTuple, padding), output_padding, groups, dilation,
                              precision=precision)
    else:
        spec = conv_spec(rank, stride, padding, dilation, groups, padding_mode, precision=precision,
                         input_size=x[2:], kernel=weight[2:])
    report = _native.explain_conv(x, weight, spec, dtype_name(dtype))
    return _plan(f"conv_transpose{rank}d" if transposed else f"conv{rank}d", report)


_POOL_KINDS = ("max", "avg", "adaptive_max", "adaptive_avg")


def explain_pool(kind: str, x_shape: tuple[int, ...], kernel_size: IntOrTuple, *,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None, dtype: object = "float32") -> Plan:
    """The plan of a pooling call: the kernel that computes each output row's
    interior, the cut into tasks, and the backward pass.

    Parameters
    ----------
    kind : {"max", "avg", "adaptive_max", "adaptive_avg"}
    x_shape : tuple of ints
        Input shape ``(N, C, *spatial)`` with 1 to 3 spatial axes.
    kernel_size : int or tuple of ints
        The window; for the adaptive kinds, the output size.
    stride, padding, dilation, ceil_mode, count_include_pad, divisor_override
        As :func:`ferroconv.max_pool2d` and :func:`ferroconv.avg_pool2d`.
    dtype : float32, float64, float16 or bfloat16

    Returns
    -------
    Plan
        The forward pass (``"stride2_simd"``, ``"vector_runs_16"``,
        ``"vector_runs_8"`` or ``"scalar"``) and the input gradient
        (``"scatter"`` by index, or ``"window_adjoint"``).

    Raises
    ------
    ValueError, TypeError
        As the pooling itself would for these shapes and arguments.

    Examples
    --------
    >>> import ferroconv as fc
    >>> plan = fc.explain_pool("max", (8, 64, 112, 112), 3, stride=2, padding=1)
    >>> plan.out_shape
    (8, 64, 56, 56)
    >>> plan.pass_named("input_grad").algorithm
    'scatter'
    """
    name = text(kind, "kind")
    if name not in _POOL_KINDS:
        raise ValueError(f"kind must be one of {', '.join(map(repr, _POOL_KINDS))}, got {name!r}")
    x = _batched_shape(x_shape, "x_shape")
    rank = len(x) - 2
    if name.startswith("adaptive"):
        size = spatial_shape(kernel_size, "kernel_size") if not isinstance(kernel_size, int) else (
            (as_int(kernel_size, "kernel_size"),) * rank)
        if len(size) != rank:
            raise ValueError(f"kernel_size (the output size) must have {rank} entries, got {size!r}")
        spec = adaptive_spec(rank, size)
    else:
        spec = pool_spec(rank, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad,
                         divisor_override)
    report = _native.explain_pool(name, x, spec, dtype_name(dtype))
    return _plan(f"{name}_pool{rank}d", report)
