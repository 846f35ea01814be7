"""Convolution and pooling of dask arrays: argument checks, window geometry, and
the NumPy block functions that :func:`ferroconv.dask._tiling.map_windows` runs.

Arguments are checked before any graph is built, by the functional API itself:
its argument normalisation (``_ConvCall``, ``window_args``), one call on a tiny
block (channels, groups, dtypes, option values) and its geometry helpers (padding
limits and output sizes of the full array), so messages are the functional API's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, Optional

import numpy as np

import dask.array as da

from .. import functional
from .._args import IntOrTuple, int_tuple
from .._conv import Padding, _ConvCall
from .._pool import divisor, flag, prefixed, window_args
from ._tiling import PAD_MODES, AxisWindows, dask_input, map_windows, restore_batch


@contextmanager
def renamed(op: str, helper: str = "") -> Iterator[None]:
    """Report an error raised inside (e.g. by the geometry helper ``helper``) as an
    error of ``op``: the message starts with ``op``, once."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        message = str(exc)
        for prefix in (f"{helper}: ", f"{op}: "):
            if message.startswith(prefix):
                message = message[len(prefix):]
        raise type(exc)(f"{op}: {message}") from None


def extents(kernel: tuple[int, ...], dilation: tuple[int, ...]) -> tuple[int, ...]:
    """Cells a dilated window spans, per axis."""
    return tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))


def weight_array(weight: object) -> object:
    """A dask weight (or bias) is small: compute it; anything else passes through."""
    return weight.compute() if isinstance(weight, da.Array) else weight  # type: ignore[no-untyped-call]


# -------------------------------------------------------------- block functions
# Module-level functions (not closures), so that workers unpickle them by name.


def conv_block(block: np.ndarray, *, conv: Callable[..., np.ndarray], weight: np.ndarray,
               bias: Optional[np.ndarray], stride: tuple[int, ...], dilation: tuple[int, ...],
               groups: int) -> np.ndarray:
    return conv(block, weight, bias, stride=stride, padding=0, dilation=dilation, groups=groups)


def max_pool_block(block: np.ndarray, *, pool: Callable[..., np.ndarray], kernel: tuple[int, ...],
                   stride: tuple[int, ...], dilation: tuple[int, ...]) -> np.ndarray:
    return pool(block, kernel, stride=stride, padding=0, dilation=dilation)


def window_sum_block(block: np.ndarray, *, pool: Callable[..., np.ndarray], kernel: tuple[int, ...],
                     stride: tuple[int, ...]) -> np.ndarray:
    # divisor_override=1: the sum of each window, divided later by the divisor of
    # its position in the whole array (which a block cannot know)
    return pool(block, kernel, stride=stride, padding=0, divisor_override=1)


# ------------------------------------------------------------------ operators


def conv(rank: int, op: str, x: object, weight: object, bias: object, stride: IntOrTuple, padding: Padding,
         dilation: IntOrTuple, groups: int, padding_mode: str, rechunk: object) -> da.Array:
    x5, was_batched = dask_input(op, rank, x)
    with prefixed(op):
        tile = flag(rechunk, "rechunk")
    tiny = np.zeros((1, x5.shape[1]) + (1,) * rank, x5.dtype)
    with renamed(op):
        call = _ConvCall(op, rank, tiny, weight_array(weight), weight_array(bias), stride, padding, dilation,
                         groups, padding_mode)
    kernel = tuple(int(k) for k in call.weight.shape[2:])
    span = extents(kernel, call.dilation)
    conv_fn = getattr(functional, f"conv{rank}d")
    # channels, groups and bias length, on one window's worth of input
    conv_fn(np.zeros((1, x5.shape[1]) + span, x5.dtype), call.weight, call.bias, call.stride, 0,
            call.dilation, call.groups)
    pairs = tuple(zip(call.pad_lo, call.pad_hi))
    with renamed(op, "conv_output_shape"):
        out_size = functional.conv_output_shape(tuple(x5.shape[2:]), kernel, call.stride, pairs, call.dilation,
                                                call.padding_mode)
    windows = [AxisWindows(e, s, lo, o) for e, s, lo, o in zip(span, call.stride, call.pad_lo, out_size)]
    block = partial(conv_block, conv=conv_fn, weight=np.ascontiguousarray(call.weight),
                    bias=None if call.bias is None else np.ascontiguousarray(call.bias),
                    stride=call.stride, dilation=call.dilation, groups=call.groups)
    out = map_windows(op, x5, windows, block, int(call.weight.shape[0]), tile,
                      pad_mode=PAD_MODES[call.padding_mode], pad_value=0.0)
    return restore_batch(out, was_batched)


def max_pool(rank: int, op: str, x: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
             padding: IntOrTuple, dilation: IntOrTuple, ceil_mode: object, return_indices: object,
             rechunk: object) -> da.Array:
    x5, was_batched = dask_input(op, rank, x)
    kernel, strides, pads = window_args(op, rank, kernel_size, stride, padding)
    with prefixed(op):
        dilations = int_tuple(dilation, rank, "dilation", 1)
        ceil, tile = flag(ceil_mode, "ceil_mode"), flag(rechunk, "rechunk")
        if flag(return_indices, "return_indices"):
            raise ValueError(
                "return_indices=True is not supported on dask arrays (indices are flat positions in whole "
                f"planes, which blocks do not see); call ferroconv.{op} on in-memory arrays for indices"
            )
    span = extents(kernel, dilations)
    pool_fn = getattr(functional, f"max_pool{rank}d")
    # every option value, on the real size (windows entirely in the padding included)
    with renamed(op, "pool_output_shape"):
        out_size = functional.pool_output_shape(tuple(x5.shape[2:]), kernel, strides, pads, dilations, ceil)
    windows = [AxisWindows(e, s, p, o) for e, s, p, o in zip(span, strides, pads, out_size)]
    block = partial(max_pool_block, pool=pool_fn, kernel=kernel, stride=strides, dilation=dilations)
    # -inf padding never wins a window: every window holds at least one input cell
    out = map_windows(op, x5, windows, block, int(x5.shape[1]), tile, pad_value=-np.inf)
    return restore_batch(out, was_batched)


def window_counts(length: int, kernel: int, stride: int, pad: int, ceil_mode: bool, include_pad: bool,
                  out_size: int) -> np.ndarray:
    """Per-axis divisor of average pooling: the cells each window covers within the
    padded input (``include_pad``) or within the input, computed by the functional
    API itself on a row of ones (no window arithmetic repeated here)."""
    pool = functional.avg_pool1d
    if include_pad:
        ones = np.ones((1, 1, length + 2 * pad))
        counts = pool(ones, kernel, stride, 0, ceil_mode, divisor_override=1)
    else:
        counts = pool(np.ones((1, 1, length)), kernel, stride, pad, ceil_mode, divisor_override=1)
    return np.asarray(counts[0, 0, :out_size])


def avg_pool(rank: int, op: str, x: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
             padding: IntOrTuple, ceil_mode: object, count_include_pad: object, divisor_override: object,
             rechunk: object) -> da.Array:
    x5, was_batched = dask_input(op, rank, x)
    kernel, strides, pads = window_args(op, rank, kernel_size, stride, padding)
    with prefixed(op):
        ceil, include_pad = flag(ceil_mode, "ceil_mode"), flag(count_include_pad, "count_include_pad")
        fixed, tile = divisor(divisor_override), flag(rechunk, "rechunk")
    pool_fn = getattr(functional, f"avg_pool{rank}d")
    # option values pool_output_shape does not see (divisor_override), on one window
    pool_fn(np.zeros((1, 1) + kernel, x5.dtype), kernel, strides, pads, ceil, include_pad, fixed)
    spatial = tuple(int(s) for s in x5.shape[2:])
    with renamed(op, "pool_output_shape"):
        out_size = functional.pool_output_shape(spatial, kernel, strides, pads, 1, ceil)
    windows = [AxisWindows(k, s, p, o) for k, s, p, o in zip(kernel, strides, pads, out_size)]
    block = partial(window_sum_block, pool=pool_fn, kernel=kernel, stride=strides)
    sums = map_windows(op, x5, windows, block, int(x5.shape[1]), tile, pad_value=0.0)
    dtype = sums.dtype
    if fixed is not None:
        out = sums / dtype.type(fixed)
    else:
        # The divisor of a window is the product of its per-axis counts (as in the
        # core), an exact integer; one division per output, like the core.
        cells: Any = None
        for axis in range(rank):
            counts = window_counts(spatial[axis], kernel[axis], strides[axis], pads[axis], ceil, include_pad,
                                   out_size[axis])
            shape = [1] * (rank + 2)
            shape[axis + 2] = len(counts)
            chunks = tuple(sums.chunks[i] if i == axis + 2 else (1,) for i in range(rank + 2))
            along = da.from_array(counts.reshape(shape), chunks=chunks)  # type: ignore[no-untyped-call]
            cells = along if cells is None else cells * along
        out = sums / cells.astype(dtype)
    return restore_batch(out, was_batched)
