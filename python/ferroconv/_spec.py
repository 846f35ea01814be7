"""One normaliser per op family: the user's arguments (ints, tuples, strings,
per-side pairs) checked for types and arities and handed to the native module
as one spec value, :class:`ConvSpec` or :class:`PoolSpec`, whose constructor
checks the values. Functional ops build a spec per call; ``nn`` layers build
theirs once, when they are constructed (so a bad argument fails there, as in
PyTorch), and the dask layer builds one to check its arguments before it builds
a graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional, Union

import numpy as np

from ._args import IntOrTuple, as_int, flag, int_list, int_tuple, is_sequence, items_of, text
from ._ferroconv import ConvSpec, PoolSpec

Padding = Union[int, str, Sequence[int], Sequence[Sequence[int]]]
OutputSize = Union[int, None, Sequence[Optional[int]]]

__all__ = ["ConvSpec", "PoolSpec", "conv_spec", "transpose_spec", "pool_spec", "adaptive_spec",
           "unpool_spec", "adaptive_size", "norm_type"]


def _per_side(padding: Padding, rank: int) -> Optional[tuple[tuple[int, int], ...]]:
    """``padding`` as ``rank`` ``(lo, hi)`` pairs when it is given as per-side
    pairs (a sequence holding a sequence), else None."""
    if not (is_sequence(padding) and any(is_sequence(p) for p in items_of(padding))):
        return None
    pairs = [items_of(p) if is_sequence(p) else [p] for p in items_of(padding)]
    if len(pairs) != rank or not all(len(p) == 2 for p in pairs):
        raise ValueError(f"padding given as per-side pairs must be {rank} (lo, hi) pairs, got {padding!r}")
    return tuple((as_int(lo, "padding"), as_int(hi, "padding")) for lo, hi in pairs)


def conv_padding(padding: Padding, rank: int) -> Union[str, tuple[tuple[int, int], ...]]:
    """A convolution's padding as ``"same"``/``"valid"`` (any other string is
    refused by :class:`ConvSpec`) or ``rank`` ``(lo, hi)`` pairs: from an int, a
    tuple per axis, or per-side pairs."""
    if isinstance(padding, str):
        return padding
    pairs = _per_side(padding, rank)
    if pairs is not None:
        return pairs
    return tuple((p, p) for p in int_tuple(padding, rank, "padding"))


def pool_padding(padding: Padding, rank: int) -> Union[str, tuple[int, ...], tuple[tuple[int, int], ...]]:
    """A pooling's padding as a string (``"same"``, ``"same_lower"``, ``"valid"``;
    others are refused by :class:`PoolSpec`), ``rank`` ints (PyTorch's symmetric
    padding, at most half the kernel) or ``rank`` ``(lo, hi)`` pairs (each side
    below the dilated kernel size)."""
    if isinstance(padding, str):
        return padding
    pairs = _per_side(padding, rank)
    return pairs if pairs is not None else int_tuple(padding, rank, "padding")


def _options(precision: object, activation: object,
             negative_slope: object) -> tuple[Optional[str], Optional[str], float]:
    """The precision and epilogue options of a spec (None: not given)."""
    if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.floating, np.integer)):
        raise TypeError(f"negative_slope must be a number, got {type(negative_slope).__name__}")
    return (None if precision is None else text(precision, "precision"),
            None if activation is None else text(activation, "activation"),
            float(negative_slope))


def auto_padding(mode: str, input_size: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                 dilations: Sequence[int]) -> tuple[tuple[int, int], ...]:
    """ONNX's ``auto_pad`` for a convolution: the ``(lo, hi)`` padding that gives
    ``ceil(input / stride)`` outputs, an odd cell at the end (``"same"``, SAME_UPPER)
    or at the start (``"same_lower"``). At stride 1 ``"same"`` is PyTorch's."""
    pairs = []
    for n, k, s, d in zip(input_size, kernel, strides, dilations):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        small, large = total // 2, total - total // 2
        pairs.append((small, large) if mode == "same" else (large, small))
    return tuple(pairs)


def conv_spec(rank: int, stride: IntOrTuple = 1, padding: Padding = 0, dilation: IntOrTuple = 1,
              groups: object = 1, padding_mode: object = "zeros", *,
              kernel_size: Optional[tuple[int, ...]] = None, precision: object = None,
              activation: object = None, negative_slope: object = 0.01,
              input_size: Optional[Sequence[int]] = None, kernel: Optional[Sequence[int]] = None) -> ConvSpec:
    """The spec of a ``conv{rank}d`` call (with the ``kernel_size`` of a layer,
    which the spec checks too; a functional call's comes with its weight), its
    ``precision`` and its forward epilogue's ``activation``. ``"same"`` with a
    stride above 1 and ``"same_lower"`` (ONNX's auto_pad) depend on the input's
    size: they are resolved to pairs from ``input_size`` and ``kernel``."""
    precision_name, activation_name, slope = _options(precision, activation, negative_slope)
    strides = int_tuple(stride, rank, "stride")
    dilations = int_tuple(dilation, rank, "dilation")
    resolved: Union[str, tuple[tuple[int, int], ...]] = conv_padding(padding, rank)
    sizes = kernel if kernel is not None else kernel_size
    if resolved == "same_lower" or (resolved == "same" and any(s != 1 for s in strides)):
        if input_size is not None and sizes is not None and min(strides + dilations, default=1) >= 1:
            resolved = auto_padding(resolved, input_size, sizes, strides, dilations)
        elif resolved == "same_lower":
            raise ValueError("padding='same_lower' depends on the input's size; give the padding as (lo, hi) "
                             "pairs here")
        # else: a spec without an input (a layer's) keeps PyTorch's refusal of a strided "same"
    return ConvSpec(
        rank=rank,
        stride=strides,
        padding=resolved,
        dilation=dilations,
        groups=as_int(groups, "groups"),
        padding_mode=text(padding_mode, "padding_mode"),
        kernel_size=kernel_size,
        precision=precision_name,
        activation=activation_name,
        negative_slope=slope,
    )


def transpose_padding(padding: Padding, output_padding: IntOrTuple, output_size: object, rank: int,
                      input_size: Optional[Sequence[int]], kernel_size: Optional[Sequence[int]],
                      stride: IntOrTuple, dilation: IntOrTuple
                      ) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...]]:
    """A transposed convolution's ``(lo, hi)`` cells removed from each end of its
    full output, and its ``output_padding``: from an int, a tuple per axis,
    per-side pairs, ``"valid"`` (none removed), ``"same"`` (ONNX's SAME_UPPER: the
    output is ``input * stride``, an odd cell removed at the end) or
    ``"same_lower"`` (at the start); ``output_size`` (PyTorch's ConvTranspose
    modules: the wanted spatial size, optionally with the leading batch and
    channel sizes) sets ``output_padding``. ``"same"`` and ``output_size`` need
    the input's spatial size and the kernel size."""
    strides = int_tuple(stride, rank, "stride")
    dilations = int_tuple(dilation, rank, "dilation")
    extra = int_tuple(output_padding, rank, "output_padding")
    if isinstance(padding, str) and padding in ("same", "same_lower"):
        if output_size is not None:
            raise ValueError(f"give padding={padding!r} or output_size, not both")
        if input_size is None or kernel_size is None:
            raise ValueError(f"padding={padding!r} of a transposed convolution needs the input and kernel sizes")
        pairs = []
        for n, k, s, d, op in zip(input_size, kernel_size, strides, dilations, extra):
            total = d * (k - 1) + 1 + op - s  # full output (n - 1) s + d (k - 1) + 1 + op, less n s
            if total < 0:
                raise ValueError(
                    f"padding={padding!r}: a transposed convolution's output is input * stride only when the "
                    f"dilated kernel ({d * (k - 1) + 1}) plus output_padding ({op}) reaches the stride ({s})"
                )
            small, large = total // 2, total - total // 2
            pairs.append((small, large) if padding == "same" else (large, small))
        return tuple(pairs), extra
    if isinstance(padding, str):
        if padding != "valid":
            raise ValueError(f"padding must be an int, a tuple, (lo, hi) pairs, 'valid', 'same' or 'same_lower', "
                             f"got {padding!r}")
        pairs_given: Union[str, tuple[tuple[int, int], ...]] = tuple((0, 0) for _ in range(rank))
    else:
        pairs_given = conv_padding(padding, rank)
    assert not isinstance(pairs_given, str)
    if output_size is None:
        return pairs_given, extra
    if any(extra):
        raise ValueError("give output_size or output_padding, not both")
    if input_size is None or kernel_size is None:
        raise ValueError("output_size of a transposed convolution needs the input and kernel sizes")
    wanted = int_list(output_size, "output_size") if is_sequence(output_size) else [as_int(output_size, "output_size")] * rank
    if len(wanted) in (rank + 1, rank + 2):  # PyTorch accepts (N, C, *spatial) too
        wanted = wanted[-rank:]
    if len(wanted) != rank:
        raise ValueError(f"output_size must have {rank} spatial sizes (optionally after N and C), got {output_size!r}")
    paddings = []
    for axis, (n, k, s, d, (lo, hi), size) in enumerate(
            zip(input_size, kernel_size, strides, dilations, pairs_given, wanted)):
        smallest = (n - 1) * s - lo - hi + d * (k - 1) + 1
        largest = smallest + max(s, d) - 1
        if not smallest <= size <= largest:
            raise ValueError(
                f"output_size {tuple(wanted)}: axis {axis} can be {smallest} to {largest} for an input of "
                f"size {n} (stride {s}, padding {(lo, hi) if lo != hi else lo}), got {size}"
            )
        paddings.append(size - smallest)
    return pairs_given, tuple(paddings)


def transpose_spec(rank: int, stride: IntOrTuple = 1, padding: Padding = 0,
                   output_padding: IntOrTuple = 0, groups: object = 1,
                   dilation: IntOrTuple = 1, *, kernel_size: Optional[tuple[int, ...]] = None,
                   input_size: Optional[Sequence[int]] = None, kernel: Optional[Sequence[int]] = None,
                   output_size: object = None, precision: object = None, activation: object = None,
                   negative_slope: object = 0.01) -> ConvSpec:
    """The spec of a ``conv_transpose{rank}d`` call (see :func:`transpose_padding`;
    ``input_size`` and ``kernel`` are the input's spatial size and the weight's
    kernel size, needed by ``"same"`` and ``output_size``; ``kernel_size`` is a
    layer's, which the spec checks)."""
    pairs, extra = transpose_padding(padding, output_padding, output_size, rank, input_size,
                                     kernel if kernel is not None else kernel_size, stride, dilation)
    precision_name, activation_name, slope = _options(precision, activation, negative_slope)
    return ConvSpec(
        rank=rank,
        stride=int_tuple(stride, rank, "stride"),
        padding=pairs,
        dilation=int_tuple(dilation, rank, "dilation"),
        groups=as_int(groups, "groups"),
        padding_mode="zeros",
        output_padding=extra,
        kernel_size=kernel_size,
        precision=precision_name,
        activation=activation_name,
        negative_slope=slope,
    )


def _stride(stride: Optional[IntOrTuple], rank: int) -> Optional[tuple[int, ...]]:
    """``stride``, or None (the kernel size, PyTorch's default) when it is None or
    an empty tuple."""
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return None
    return int_tuple(stride, rank, "stride")


def pool_spec(rank: int, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
              padding: Padding = 0, dilation: IntOrTuple = 1, ceil_mode: object = False,
              count_include_pad: object = True, divisor_override: object = None) -> PoolSpec:
    """The spec of a max, average or Lp pooling call (window and averaging options)."""
    return PoolSpec(
        rank=rank,
        kernel_size=int_tuple(kernel_size, rank, "kernel_size"),
        stride=_stride(stride, rank),
        padding=pool_padding(padding, rank),
        dilation=int_tuple(dilation, rank, "dilation"),
        ceil_mode=flag(ceil_mode, "ceil_mode"),
        count_include_pad=flag(count_include_pad, "count_include_pad"),
        divisor_override=None if divisor_override is None else as_int(divisor_override, "divisor_override"),
    )


def norm_type(value: object) -> float:
    """Lp pooling's ``norm_type``: a real number other than 0 (the infinities
    included), as PyTorch."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"norm_type must be a number, got {type(value).__name__} {value!r}")
    p = float(value)
    if p == 0 or np.isnan(p):
        raise ValueError(f"norm_type must be a nonzero number, got {value!r}")
    return p


def adaptive_size(value: object, rank: int, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """Adaptive output size: an int, one entry or ``rank`` entries, each an int or
    None (None keeps the input size of that axis)."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"output_size must be an int or a tuple of {rank} ints or None, got {value!r}")
    items = items_of(value) if is_sequence(value) else [value] * rank
    if len(items) == 1:  # the same size on every axis, as other per-axis arguments
        items = items * rank
    if len(items) != rank:
        raise ValueError(f"output_size must be an int or a tuple of {rank} ints or None, got {tuple(items)!r}")
    return tuple(spatial[i] if v is None else as_int(v, "output_size") for i, v in enumerate(items))


def adaptive_spec(rank: int, output_size: tuple[int, ...]) -> PoolSpec:
    """The spec of an adaptive pooling call to ``output_size`` (``rank`` ints)."""
    return PoolSpec(rank=rank, output_size=output_size)


def unpool_size(value: object, rank: int, x_ndim: int) -> Optional[tuple[int, ...]]:
    """Requested unpool output size: None, an int, the spatial size or a full shape."""
    if value is None:
        return None
    if is_sequence(value):
        items = int_list(value, "output_size")
        if len(items) in (rank + 2, x_ndim):
            items = items[len(items) - rank:]
        if len(items) != rank:
            raise ValueError(
                f"output_size must have {rank} spatial sizes or be a full shape of {rank + 2} entries, "
                f"got {tuple(items_of(value))!r}"
            )
        return tuple(items)
    return (as_int(value, "output_size"),) * rank


def unpool_spec(rank: int, kernel_size: IntOrTuple, stride: Optional[IntOrTuple], padding: IntOrTuple,
                output_size: object, x_ndim: int) -> PoolSpec:
    """The spec of a ``max_unpool{rank}d`` call."""
    return PoolSpec(
        rank=rank,
        kernel_size=int_tuple(kernel_size, rank, "kernel_size"),
        stride=_stride(stride, rank),
        padding=int_tuple(padding, rank, "padding"),
        output_size=unpool_size(output_size, rank, x_ndim),
    )


def dtype_name(dtype: object) -> str:
    """NumPy's name of a dtype-like (the native module accepts float32, float64,
    float16 and bfloat16)."""
    if dtype == "bfloat16":  # a name NumPy knows only once ml_dtypes is imported
        return "bfloat16"
    try:
        return str(np.dtype(dtype).name)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"dtype must be float32, float64, float16 or bfloat16, got {dtype!r}") from None
