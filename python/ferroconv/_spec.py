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


def conv_spec(rank: int, stride: IntOrTuple = 1, padding: Padding = 0, dilation: IntOrTuple = 1,
              groups: object = 1, padding_mode: object = "zeros", *,
              kernel_size: Optional[tuple[int, ...]] = None, precision: object = None,
              activation: object = None, negative_slope: object = 0.01) -> ConvSpec:
    """The spec of a ``conv{rank}d`` call (with the ``kernel_size`` of a layer,
    which the spec checks too; a functional call's comes with its weight), its
    ``precision`` and its forward epilogue's ``activation``."""
    precision_name, activation_name, slope = _options(precision, activation, negative_slope)
    return ConvSpec(
        rank=rank,
        stride=int_tuple(stride, rank, "stride"),
        padding=conv_padding(padding, rank),
        dilation=int_tuple(dilation, rank, "dilation"),
        groups=as_int(groups, "groups"),
        padding_mode=text(padding_mode, "padding_mode"),
        kernel_size=kernel_size,
        precision=precision_name,
        activation=activation_name,
        negative_slope=slope,
    )


def transpose_spec(rank: int, stride: IntOrTuple = 1, padding: IntOrTuple = 0,
                   output_padding: IntOrTuple = 0, groups: object = 1,
                   dilation: IntOrTuple = 1, *, kernel_size: Optional[tuple[int, ...]] = None,
                   precision: object = None, activation: object = None,
                   negative_slope: object = 0.01) -> ConvSpec:
    """The spec of a ``conv_transpose{rank}d`` call (symmetric integer padding,
    as PyTorch)."""
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int or a tuple of ints, got {padding!r}")
    pads = int_tuple(padding, rank, "padding")
    precision_name, activation_name, slope = _options(precision, activation, negative_slope)
    return ConvSpec(
        rank=rank,
        stride=int_tuple(stride, rank, "stride"),
        padding=tuple((p, p) for p in pads),
        dilation=int_tuple(dilation, rank, "dilation"),
        groups=as_int(groups, "groups"),
        padding_mode="zeros",
        output_padding=int_tuple(output_padding, rank, "output_padding"),
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
