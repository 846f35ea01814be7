"""Argument normalisation and native calls of pooling (the public, documented
functions are in :mod:`ferroconv._pooling`).

Types and arities are checked here; values (positivity, padding limits, output
sizes, index ranges) are checked by the Rust core, whose messages get the
function name prepended like every other error.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Optional, Union

import numpy as np

from . import _ferroconv as _native
from ._args import (
    MAX_SIZE,
    IntOrTuple,
    as_int,
    batched,
    dims3,
    float_array,
    from_5d,
    int_tuple,
    native_aligned,
    to_5d,
    type_name,
    with_op,
)

OutputSize = Union[int, None, Sequence[Optional[int]]]
Pooled = Union[np.ndarray, tuple[np.ndarray, np.ndarray]]



@contextmanager
def prefixed(op: str) -> Iterator[None]:
    """Prefix the message of a ValueError/TypeError raised inside with ``op``."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{op}: {exc}") from None


def flag(value: object, name: str) -> bool:
    """A bool argument (numpy bools accepted; ints and other truthy values refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type_name(value)} {value!r}")
    return bool(value)


def stride_or_kernel(stride: Optional[IntOrTuple], kernel: tuple[int, ...], rank: int) -> tuple[int, ...]:
    """``stride``, or ``kernel`` when it is None or empty (PyTorch's default)."""
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        return kernel
    return int_tuple(stride, rank, "stride", 1)


def int64_array(value: object, name: str) -> np.ndarray:
    """``value`` as an aligned int64 ndarray in native byte order (any strides kept)."""
    array = value if isinstance(value, np.ndarray) else np.asarray(value)
    if array.dtype.kind != "i" or array.dtype.itemsize != 8:
        raise TypeError(f"{name} must have dtype int64, got {array.dtype}")
    return native_aligned(array)


def int_list(value: object, name: str) -> list[int]:
    """A sequence of ints (a shape), each in 0..MAX_SIZE."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a tuple of ints, got {type_name(value)} {value!r}")
    items = [as_int(v, name) for v in value]
    if any(v < 0 or v > MAX_SIZE for v in items):
        raise ValueError(f"{name} must hold sizes >= 0, got {tuple(items)!r}")
    return items


def input_shape_5d(value: object, grad: np.ndarray, was_batched: bool, rank: int) -> tuple[int, int, int, int, int]:
    """The 5-D input shape of a backward call. ``input_shape`` is the forward input's
    shape (batched or not, like ``grad_out``) or just its spatial size; ``grad`` is
    ``grad_out`` with its batch axis."""
    items = int_list(value, "input_shape")
    user_ndim = rank + 2 if was_batched else rank + 1
    batch, channels = int(grad.shape[0]), int(grad.shape[1])
    if len(items) == user_ndim:
        if not was_batched:
            items = [1] + items
        batch, channels, spatial = items[0], items[1], items[2:]
    elif len(items) == rank:
        spatial = items
    else:
        raise ValueError(
            f"input_shape must be the shape of the forward input ({user_ndim} entries, like grad_out) "
            f"or its spatial size ({rank} entries), got {tuple(items)!r}"
        )
    d, h, w = dims3(tuple(spatial), 1)
    return (batch, channels, d, h, w)


def adaptive_size(value: object, rank: int, spatial: tuple[int, ...]) -> tuple[int, ...]:
    """Adaptive output size: an int or ``rank`` entries, each an int >= 0 or None
    (None keeps the input size of that axis)."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"output_size must be an int or a tuple of {rank} ints or None, got {value!r}")
    items = list(value) if isinstance(value, (Sequence, np.ndarray)) else [value] * rank
    if len(items) != rank:
        raise ValueError(f"output_size must be an int or a tuple of {rank} ints or None, got {tuple(items)!r}")
    sizes = tuple(spatial[i] if v is None else as_int(v, "output_size") for i, v in enumerate(items))
    if any(v < 0 or v > MAX_SIZE for v in sizes):
        raise ValueError(f"output_size must be >= 0 in every dimension, got {sizes!r}")
    return sizes


def unpool_size(value: object, rank: int, x_ndim: int) -> Optional[tuple[int, ...]]:
    """Requested unpool output size: None, an int, the spatial size or a full shape."""
    if value is None:
        return None
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes)):
        items = int_list(value, "output_size")
        if len(items) in (rank + 2, x_ndim):
            items = items[len(items) - rank:]
        if len(items) != rank:
            raise ValueError(
                f"output_size must have {rank} spatial sizes or be a full shape of {rank + 2} entries, "
                f"got {tuple(value)!r}"
            )
        return tuple(items)
    size = as_int(value, "output_size")
    if not 0 <= size <= MAX_SIZE:
        raise ValueError(f"output_size must be >= 0, got {size}")
    return (size,) * rank


def divisor(value: object) -> Optional[int]:
    """``divisor_override``: None or an int that fits int64 (zero is refused by the core)."""
    if value is None:
        return None
    result = as_int(value, "divisor_override")
    if not -(2**63) <= result < 2**63:
        raise ValueError(f"divisor_override must fit in int64, got {result}")
    return result


def pool_input(op: str, rank: int, x: object, name: str = "x") -> tuple[np.ndarray, bool]:
    """``x`` as a 5-D float array and whether it had a batch axis."""
    with prefixed(op):
        array = float_array(x, name)
    array, was_batched = batched(array, rank, op, name)
    return to_5d(array, rank), was_batched


def window_args(op: str, rank: int, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
                padding: IntOrTuple) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Kernel, stride and padding as ``rank``-tuples."""
    with prefixed(op):
        kernel = int_tuple(kernel_size, rank, "kernel_size", 1)
        strides = stride_or_kernel(stride, kernel, rank)
        pads = int_tuple(padding, rank, "padding", 0)
    return kernel, strides, pads


def grad_and_indices(op: str, rank: int, grad_out: object, indices: object,
                     name: str = "grad_out") -> tuple[np.ndarray, np.ndarray, bool]:
    """``grad_out`` (or ``x``) and ``indices`` of the same shape, with a batch axis."""
    with prefixed(op):
        grad = float_array(grad_out, name)
        index = int64_array(indices, "indices")
        if index.shape != grad.shape:
            raise ValueError(f"indices has shape {index.shape} but {name} has shape {grad.shape}")
    grad, was_batched = batched(grad, rank, op, name)
    if not was_batched:
        index = index[np.newaxis]
    return grad, index, was_batched


def unbatch(array: np.ndarray, rank: int, was_batched: bool) -> np.ndarray:
    return from_5d(array, rank, was_batched)


# ----------------------------------------------------------------- calls


def max_pool(rank: int, op: str, x: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
             padding: IntOrTuple, dilation: IntOrTuple, ceil_mode: object, return_indices: object) -> Pooled:
    x5, was_batched = pool_input(op, rank, x)
    kernel, strides, pads = window_args(op, rank, kernel_size, stride, padding)
    with prefixed(op):
        dilations = int_tuple(dilation, rank, "dilation", 1)
        ceil, with_indices = flag(ceil_mode, "ceil_mode"), flag(return_indices, "return_indices")
    values, indices = with_op(op, _native.max_pool_forward, x5, dims3(kernel, 1), dims3(strides, 1),
                              dims3(pads, 0), dims3(dilations, 1), ceil, rank, with_indices)
    values = unbatch(values, rank, was_batched)
    return (values, unbatch(indices, rank, was_batched)) if with_indices else values


def max_pool_backward(rank: int, op: str, grad_out: object, indices: object, input_shape: object) -> np.ndarray:
    grad, index, was_batched = grad_and_indices(op, rank, grad_out, indices)
    with prefixed(op):
        shape = input_shape_5d(input_shape, grad, was_batched, rank)
    out = with_op(op, _native.max_pool_backward, to_5d(grad, rank), to_5d(index, rank), shape, rank)
    return unbatch(out, rank, was_batched)


def max_unpool(rank: int, op: str, x: object, indices: object, kernel_size: IntOrTuple,
               stride: Optional[IntOrTuple], padding: IntOrTuple, output_size: object) -> np.ndarray:
    x_b, index, was_batched = grad_and_indices(op, rank, x, indices, name="x")
    x5, index5 = to_5d(x_b, rank), to_5d(index, rank)
    kernel, strides, pads = window_args(op, rank, kernel_size, stride, padding)
    with prefixed(op):
        size = unpool_size(output_size, rank, rank + 2 if was_batched else rank + 1)
    out = with_op(op, _native.max_unpool, x5, index5, dims3(kernel, 1), dims3(strides, 1), dims3(pads, 0),
                  None if size is None else dims3(size, 1), rank)
    return unbatch(out, rank, was_batched)


def avg_pool(rank: int, op: str, x: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
             padding: IntOrTuple, ceil_mode: object, count_include_pad: object,
             divisor_override: object) -> np.ndarray:
    x5, was_batched = pool_input(op, rank, x)
    kernel, strides, pads = window_args(op, rank, kernel_size, stride, padding)
    with prefixed(op):
        options = (flag(ceil_mode, "ceil_mode"), flag(count_include_pad, "count_include_pad"),
                   divisor(divisor_override))
    out = with_op(op, _native.avg_pool_forward, x5, dims3(kernel, 1), dims3(strides, 1), dims3(pads, 0),
                  *options, rank)
    return unbatch(out, rank, was_batched)


def avg_pool_backward(rank: int, op: str, grad_out: object, input_shape: object, kernel_size: IntOrTuple,
                      stride: Optional[IntOrTuple], padding: IntOrTuple, ceil_mode: object,
                      count_include_pad: object, divisor_override: object) -> np.ndarray:
    with prefixed(op):
        grad = float_array(grad_out, "grad_out")
    grad, was_batched = batched(grad, rank, op, "grad_out")
    kernel, strides, pads = window_args(op, rank, kernel_size, stride, padding)
    with prefixed(op):
        shape = input_shape_5d(input_shape, grad, was_batched, rank)
        options = (flag(ceil_mode, "ceil_mode"), flag(count_include_pad, "count_include_pad"),
                   divisor(divisor_override))
    out = with_op(op, _native.avg_pool_backward, to_5d(grad, rank), shape, dims3(kernel, 1),
                  dims3(strides, 1), dims3(pads, 0), *options, rank)
    return unbatch(out, rank, was_batched)


def adaptive_avg_pool(rank: int, op: str, x: object, output_size: object) -> np.ndarray:
    x5, was_batched = pool_input(op, rank, x)
    with prefixed(op):
        size = adaptive_size(output_size, rank, tuple(int(s) for s in x5.shape[5 - rank:]))
    out = with_op(op, _native.adaptive_avg_pool_forward, x5, dims3(size, 1), rank)
    return unbatch(out, rank, was_batched)


def adaptive_avg_pool_backward(rank: int, op: str, grad_out: object, input_shape: object) -> np.ndarray:
    with prefixed(op):
        grad = float_array(grad_out, "grad_out")
    grad, was_batched = batched(grad, rank, op, "grad_out")
    with prefixed(op):
        shape = input_shape_5d(input_shape, grad, was_batched, rank)
    out = with_op(op, _native.adaptive_avg_pool_backward, to_5d(grad, rank), shape, rank)
    return unbatch(out, rank, was_batched)


def adaptive_max_pool(rank: int, op: str, x: object, output_size: object, return_indices: object) -> Pooled:
    x5, was_batched = pool_input(op, rank, x)
    with prefixed(op):
        size = adaptive_size(output_size, rank, tuple(int(s) for s in x5.shape[5 - rank:]))
        with_indices = flag(return_indices, "return_indices")
    values, indices = with_op(op, _native.adaptive_max_pool_forward, x5, dims3(size, 1), rank, with_indices)
    values = unbatch(values, rank, was_batched)
    return (values, unbatch(indices, rank, was_batched)) if with_indices else values


def global_rank(op: str, x: object) -> tuple[np.ndarray, int]:
    """``x (N, C, *S)`` with 1 to 3 spatial axes, and that number of axes."""
    with prefixed(op):
        array = float_array(x, "x")
        if not 3 <= array.ndim <= 5:
            raise ValueError(
                "x must be batched with 1 to 3 spatial axes, (N, C, L), (N, C, H, W) or (N, C, D, H, W), "
                f"got shape {array.shape}"
            )
    return array, array.ndim - 2


def pool_output_shape(input_shape: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
                      padding: IntOrTuple, dilation: IntOrTuple, ceil_mode: object) -> tuple[int, ...]:
    op = "pool_output_shape"
    with prefixed(op):
        if isinstance(input_shape, (str, bytes)):
            raise TypeError(f"input_shape must be an int or a tuple of ints, got {input_shape!r}")
        if isinstance(input_shape, (Sequence, np.ndarray)):
            spatial = tuple(int_list(input_shape, "input_shape"))
        else:
            spatial = tuple(int_list([input_shape], "input_shape"))
        rank = len(spatial)
        if not 1 <= rank <= 3:
            raise ValueError(f"input_shape must have 1 to 3 spatial sizes, got {spatial!r}")
    kernel, strides, pads = window_args(op, rank, kernel_size, stride, padding)
    with prefixed(op):
        dilations = int_tuple(dilation, rank, "dilation", 1)
        ceil = flag(ceil_mode, "ceil_mode")
    out = with_op(op, _native.pool_output_shape, dims3(spatial, 1), dims3(kernel, 1), dims3(strides, 1),
                  dims3(pads, 0), dims3(dilations, 1), ceil, rank)
    return tuple(int(v) for v in out[3 - rank:])
