"""Convolution and pooling of dask arrays: argument checks, window geometry, and
the NumPy block functions that :func:`ferroconv.dask._tiling.map_windows` runs.

Arguments are checked before any graph is built, by the functional API's own
helpers: the family's spec normaliser (types, arities, values), the arrays of
one call on a tiny block (channels, groups, dtypes) and the spec's output size
for the full array (padding limits, empty outputs), so messages are the
functional API's; the public dask function names them.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Optional

import numpy as np

import dask.array as da

from .. import _conv, _pool, functional
from .._args import IntOrTuple, flag
from .._spec import Padding, PoolSpec, conv_spec, pool_spec
from .._spec import norm_type as _norm_type
from ._tiling import PAD_MODES, AxisWindows, dask_input, map_windows, restore_batch


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
               groups: int, precision: str) -> np.ndarray:
    return conv(block, weight, bias, stride=stride, padding=0, dilation=dilation, groups=groups,
                precision=precision)


def max_pool_block(block: np.ndarray, *, pool: Callable[..., np.ndarray], kernel: tuple[int, ...],
                   stride: tuple[int, ...], dilation: tuple[int, ...]) -> np.ndarray:
    return pool(block, kernel, stride=stride, padding=0, dilation=dilation)


def window_sum_block(block: np.ndarray, *, pool: Callable[..., np.ndarray], kernel: tuple[int, ...],
                     stride: tuple[int, ...], dilation: tuple[int, ...]) -> np.ndarray:
    # divisor_override=1: the sum of each window, divided later by the divisor of
    # its position in the whole array (which a block cannot know)
    return pool(block, kernel, stride=stride, padding=0, divisor_override=1, dilation=dilation)


def power_block(block: np.ndarray, *, exponent: float) -> np.ndarray:
    # a negative base to a fractional power is NaN, as in the in-memory op: no warning
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = np.power(block, block.dtype.type(exponent))
    return out


# ------------------------------------------------------------------ operators


def conv(rank: int, op: str, x: object, weight: object, bias: object, stride: IntOrTuple, padding: Padding,
         dilation: IntOrTuple, groups: int, padding_mode: str, rechunk: object) -> da.Array:
    x5, was_batched = dask_input(op, rank, x)
    tile = flag(rechunk, "rechunk")
    spec = conv_spec(rank, stride, padding, dilation, groups, padding_mode)
    tiny = np.zeros((1, x5.shape[1]) + (1,) * rank, x5.dtype)
    arrays = _conv.conv_arrays(rank, tiny, weight_array(weight), weight_array(bias))
    kernel = tuple(int(k) for k in arrays.weight.shape[2:])
    strides, dilations = tuple(spec.stride), tuple(spec.dilation)
    span = extents(kernel, dilations)
    # channels, groups and bias length, on one window's worth of input
    window = np.zeros((1, x5.shape[1]) + span, x5.dtype)
    _conv.forward(arrays._replace(x=window), conv_spec(rank, strides, 0, dilations, spec.groups))
    pad_lo, _ = spec.padding_for(kernel)
    out_size = _conv.output_shape(tuple(int(s) for s in x5.shape[2:]), kernel, spec)
    windows = [AxisWindows(e, s, lo, o) for e, s, lo, o in zip(span, strides, pad_lo, out_size)]
    block = partial(conv_block, conv=getattr(functional, f"conv{rank}d"),
                    weight=np.ascontiguousarray(arrays.weight),
                    bias=None if arrays.bias is None else np.ascontiguousarray(arrays.bias),
                    stride=strides, dilation=dilations, groups=spec.groups,
                    # the client's precision, not whatever default a worker process has
                    precision=functional.get_precision())
    out = map_windows(op, x5, windows, block, int(arrays.weight.shape[0]), tile,
                      pad_mode=PAD_MODES[padding_mode], pad_value=0.0)
    return restore_batch(out, was_batched)


def window(spec: PoolSpec, spatial: tuple[int, ...]) -> tuple[tuple[int, ...], ...]:
    """A pooling spec's kernel size, stride, dilation, and padding before and
    after each axis of an input of spatial size ``spatial`` ("same" resolved)."""
    sizes = spec.window_sizes
    assert sizes is not None
    kernel, strides, dilations = (tuple(v) for v in sizes)
    lo, hi = spec.pads_for(spatial)
    return kernel, strides, dilations, tuple(lo), tuple(hi)


def max_pool(rank: int, op: str, x: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
             padding: Padding, dilation: IntOrTuple, ceil_mode: object, return_indices: object,
             rechunk: object) -> da.Array:
    x5, was_batched = dask_input(op, rank, x, dtypes=partial(_pool.pool_array, integers=_pool.MAX))
    spec = pool_spec(rank, kernel_size, stride, padding, dilation, ceil_mode)
    tile = flag(rechunk, "rechunk")
    if flag(return_indices, "return_indices"):
        raise ValueError(
            "return_indices=True is not supported on dask arrays (indices are flat positions in whole "
            f"planes, which blocks do not see); call ferroconv.{op} on in-memory arrays for indices"
        )
    spatial = tuple(int(s) for s in x5.shape[2:])
    kernel, strides, dilations, pads, _ = window(spec, spatial)
    span = extents(kernel, dilations)
    # every option value, on the real size (windows entirely in the padding included)
    out_size = _pool.output_shape(spatial, spec)
    windows = [AxisWindows(e, s, p, o) for e, s, p, o in zip(span, strides, pads, out_size)]
    block = partial(max_pool_block, pool=getattr(functional, f"max_pool{rank}d"), kernel=kernel, stride=strides,
                    dilation=dilations)
    # -inf padding (an integer type's minimum) never changes a window's maximum:
    # every window holds at least one input cell
    lowest = int(np.iinfo(x5.dtype).min) if x5.dtype.kind in "iu" else -np.inf
    out = map_windows(op, x5, windows, block, int(x5.shape[1]), tile, pad_value=lowest)
    return restore_batch(out, was_batched)


def window_counts(length: int, kernel: int, stride: int, dilation: int, pads: tuple[int, int], ceil_mode: bool,
                  include_pad: bool, out_size: int) -> np.ndarray:
    """Per-axis divisor of average pooling: the cells each window reads within the
    padded input (``include_pad``) or within the input, computed by the functional
    API itself on a row of ones (no window arithmetic repeated here)."""
    pool = functional.avg_pool1d
    lo, hi = pads
    if include_pad:
        # the padded row itself, unpadded: the ceil-mode rule needs the left padding,
        # which it reads as input here, so the last window is kept or dropped by the
        # output size taken below
        ones = np.ones((1, 1, length + lo + hi))
        counts = pool(ones, kernel, stride, 0, ceil_mode, divisor_override=1, dilation=dilation)
    else:
        counts = pool(np.ones((1, 1, length)), kernel, stride, ((lo, hi),), ceil_mode, divisor_override=1,
                      dilation=dilation)
    return np.asarray(counts[0, 0, :out_size])


def avg_pool(rank: int, op: str, x: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
             padding: Padding, ceil_mode: object, count_include_pad: object, divisor_override: object,
             rechunk: object, dilation: IntOrTuple = 1) -> da.Array:
    x5, was_batched = dask_input(op, rank, x, dtypes=partial(_pool.pool_array, integers=_pool.AVERAGE))
    spec = pool_spec(rank, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override)
    return _window_means(rank, op, x5, was_batched, spec, flag(rechunk, "rechunk"), bool(ceil_mode),
                         bool(count_include_pad),
                         None if divisor_override is None else int(divisor_override))  # type: ignore[call-overload]


def _window_means(rank: int, op: str, x5: da.Array, was_batched: bool, spec: PoolSpec, tile: bool, ceil: bool,
                  include_pad: bool, fixed: Optional[int]) -> da.Array:
    """Average pooling of ``x5`` as ``spec`` says: window sums block by block,
    divided by the divisor of each window's position in the whole array."""
    spatial = tuple(int(s) for s in x5.shape[2:])
    kernel, strides, dilations, pads_lo, pads_hi = window(spec, spatial)
    # option values the output size does not see (divisor_override), on one window
    _pool.avg_pool(rank, np.zeros((1, 1) + extents(kernel, dilations), x5.dtype), spec)
    out_size = _pool.output_shape(spatial, spec)
    span = extents(kernel, dilations)
    windows = [AxisWindows(e, s, p, o) for e, s, p, o in zip(span, strides, pads_lo, out_size)]
    block = partial(window_sum_block, pool=getattr(functional, f"avg_pool{rank}d"), kernel=kernel,
                    stride=strides, dilation=dilations)
    sums = map_windows(op, x5, windows, block, int(x5.shape[1]), tile, pad_value=0.0)
    dtype = sums.dtype
    if fixed is not None:
        out = sums / dtype.type(fixed)
    else:
        # The divisor of a window is the product of its per-axis counts (as in the
        # core), an exact integer; one division per output, like the core.
        cells: Any = None
        for axis in range(rank):
            counts = window_counts(spatial[axis], kernel[axis], strides[axis], dilations[axis],
                                   (pads_lo[axis], pads_hi[axis]), ceil, include_pad, out_size[axis])
            shape = [1] * (rank + 2)
            shape[axis + 2] = len(counts)
            chunks = tuple(sums.chunks[i] if i == axis + 2 else (1,) for i in range(rank + 2))
            along = da.from_array(counts.reshape(shape), chunks=chunks)  # type: ignore[no-untyped-call]
            cells = along if cells is None else cells * along
        out = sums / cells.astype(dtype)
    return restore_batch(out, was_batched)


def lp_pool(rank: int, op: str, x: object, norm_type: object, kernel_size: IntOrTuple,
            stride: Optional[IntOrTuple], ceil_mode: object, padding: Padding, dilation: IntOrTuple,
            rechunk: object) -> da.Array:
    """Lp pooling as PyTorch defines it: the average of ``x^p`` (the divisor
    counting padding) times the kernel volume, to the power ``1/p``; the
    infinite norms as max pooling of ``|x|``."""
    x5, was_batched = dask_input(op, rank, x, dtypes=partial(_pool.pool_array, integers=_pool.LP))
    p = _norm_type(norm_type)
    spec = pool_spec(rank, kernel_size, stride, padding, dilation, ceil_mode)
    if np.isinf(p):
        sign = 1 if p > 0 else -1
        magnitude = sign * da.absolute(x5)
        peak = max_pool(rank, op, restore_batch(magnitude, was_batched), kernel_size, stride, padding, dilation,
                        ceil_mode, False, rechunk)
        return sign * peak  # type: ignore[no-any-return]
    powers = da.map_blocks(power_block, x5, exponent=p, dtype=x5.dtype)  # type: ignore[no-untyped-call]
    means = _window_means(rank, op, powers, True, spec, flag(rechunk, "rechunk"), bool(ceil_mode), True, None)
    volume = int(np.prod(window(spec, (1,) * rank)[0]))  # the kernel's
    out = da.map_blocks(power_block, means * x5.dtype.type(volume), exponent=1.0 / p,  # type: ignore[no-untyped-call]
                        dtype=x5.dtype)
    return restore_batch(out, was_batched)
