"""An independent NumPy reference for every pooling op, written plainly: output
sizes from PyTorch's formulas, then a loop over output positions and, inside,
over the cells of each window in scan order. Batched input ``(N, C, *S)`` only;
all ``(n, c)`` planes are handled at once by NumPy.

Nothing here calls ferroconv; it is what the tests compare against.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def output_size(length: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's ``pooling_output_shape`` for one axis (may be <= 0)."""
    room = length + 2 * padding - dilation * (kernel - 1) - 1
    if ceil_mode:
        size = -(-room // stride) + 1  # ceil division, correct for negative room too
        if (size - 1) * stride >= length + padding:
            size -= 1
    else:
        size = room // stride + 1
    return size


def output_shape(spatial: Sequence[int], kernel: Sequence[int], stride: Sequence[int], padding: Sequence[int],
                 dilation: Sequence[int], ceil_mode: bool) -> tuple[int, ...]:
    """Output sizes, raising ValueError where PyTorch (or ferroconv) refuses."""
    for name, values in (("kernel_size", kernel), ("stride", stride), ("dilation", dilation)):
        if min(values) < 1:
            raise ValueError(f"{name} must be positive")
    if min(spatial) < 1:
        raise ValueError("empty input")
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError("padding above kernel_size // 2")
    sizes = tuple(output_size(*args, ceil_mode) for args in zip(spatial, kernel, stride, padding, dilation))
    if min(sizes) < 1:
        raise ValueError("empty output")
    return sizes


def window_cells(o: int, length: int, kernel: int, stride: int, padding: int, dilation: int) -> list[int]:
    """Input cells of window ``o`` along one axis (taps that fall in the padding dropped)."""
    start = o * stride - padding
    return [start + j * dilation for j in range(kernel) if 0 <= start + j * dilation < length]


def adaptive_cells(o: int, length: int, out: int) -> list[int]:
    start = (o * length) // out
    end = -(-((o + 1) * length) // out)
    return list(range(start, end))


def _max_over(x: np.ndarray, out_spatial: tuple[int, ...], cells_of) -> tuple[np.ndarray, np.ndarray]:
    """Max (and flat index) over windows; ``cells_of(axis, o)`` lists a window's cells."""
    n, c, spatial = x.shape[0], x.shape[1], x.shape[2:]
    values = np.empty((n, c) + out_spatial, x.dtype)
    indices = np.empty((n, c) + out_spatial, np.int64)
    for position in np.ndindex(*out_spatial):
        per_axis = [cells_of(axis, o) for axis, o in enumerate(position)]
        if any(len(cells) == 0 for cells in per_axis):
            raise ValueError("a window lies entirely in the padding")
        best = np.full((n, c), -np.inf, x.dtype)
        best_at = np.full((n, c), -1, np.int64)
        for cell in itertools.product(*per_axis):  # row-major: the scan order
            value = x[(slice(None), slice(None)) + cell]
            flat = np.ravel_multi_index(cell, spatial)
            # PyTorch: take the cell if it is larger or NaN (the first cell starts).
            take = (value > best) | np.isnan(value) | (best_at < 0)
            best = np.where(take, value, best)
            best_at = np.where(take, flat, best_at)
        values[(slice(None), slice(None)) + position] = best
        indices[(slice(None), slice(None)) + position] = best_at
    return values, indices


def max_pool(x: np.ndarray, kernel, stride, padding, dilation, ceil_mode) -> tuple[np.ndarray, np.ndarray]:
    spatial = x.shape[2:]
    out = output_shape(spatial, kernel, stride, padding, dilation, ceil_mode)
    return _max_over(x, out, lambda a, o: window_cells(o, spatial[a], kernel[a], stride[a], padding[a],
                                                      dilation[a]))


def adaptive_max_pool(x: np.ndarray, out: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    spatial = x.shape[2:]
    return _max_over(x, out, lambda a, o: adaptive_cells(o, spatial[a], out[a]))


def _avg_windows(spatial, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
    """Yield ``(position, index tuple of the window, divisor)`` in output order."""
    out = output_shape(spatial, kernel, stride, padding, (1,) * len(spatial), ceil_mode)
    for position in np.ndindex(*out):
        ranges, padded, valid = [], 1, 1
        for axis, o in enumerate(position):
            start = o * stride[axis] - padding[axis]
            end = min(start + kernel[axis], spatial[axis] + padding[axis])
            padded *= end - start
            lo, hi = max(start, 0), min(end, spatial[axis])
            valid *= hi - lo
            ranges.append(slice(lo, hi))
        if divisor_override is not None:
            divisor = divisor_override
        else:
            divisor = padded if count_include_pad else valid
        yield position, tuple(ranges), divisor


def avg_pool(x: np.ndarray, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
             divisor_override=None) -> np.ndarray:
    spatial = x.shape[2:]
    out = output_shape(spatial, kernel, stride, padding, (1,) * len(spatial), ceil_mode)
    y = np.empty(x.shape[:2] + out, np.float64)
    windows = _avg_windows(spatial, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    for position, ranges, divisor in windows:
        block = x[(slice(None), slice(None)) + ranges].astype(np.float64)
        y[(slice(None), slice(None)) + position] = block.sum(axis=tuple(range(2, x.ndim))) / divisor
    return y


def avg_pool_backward(grad_out: np.ndarray, input_shape, kernel, stride, padding, ceil_mode=False,
                      count_include_pad=True, divisor_override=None) -> np.ndarray:
    spatial = tuple(input_shape[2:])
    grad = np.zeros(tuple(input_shape), np.float64)
    windows = _avg_windows(spatial, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
    for position, ranges, divisor in windows:
        share = grad_out[(slice(None), slice(None)) + position].astype(np.float64) / divisor
        grad[(slice(None), slice(None)) + ranges] += share.reshape(share.shape + (1,) * len(spatial))
    return grad


def adaptive_avg_pool(x: np.ndarray, out: tuple[int, ...]) -> np.ndarray:
    spatial = x.shape[2:]
    y = np.empty(x.shape[:2] + tuple(out), np.float64)
    for position in np.ndindex(*out):
        ranges = tuple(slice(cells[0], cells[-1] + 1) for cells in
                       (adaptive_cells(o, spatial[a], out[a]) for a, o in enumerate(position)))
        block = x[(slice(None), slice(None)) + ranges].astype(np.float64)
        y[(slice(None), slice(None)) + position] = block.mean(axis=tuple(range(2, x.ndim)))
    return y


def adaptive_avg_pool_backward(grad_out: np.ndarray, input_shape) -> np.ndarray:
    spatial, out = tuple(input_shape[2:]), grad_out.shape[2:]
    grad = np.zeros(tuple(input_shape), np.float64)
    for position in np.ndindex(*out):
        ranges = tuple(slice(cells[0], cells[-1] + 1) for cells in
                       (adaptive_cells(o, spatial[a], out[a]) for a, o in enumerate(position)))
        count = np.prod([r.stop - r.start for r in ranges])
        share = grad_out[(slice(None), slice(None)) + position].astype(np.float64) / count
        grad[(slice(None), slice(None)) + ranges] += share.reshape(share.shape + (1,) * len(spatial))
    return grad


def scatter(values: np.ndarray, indices: np.ndarray, shape, accumulate: bool) -> np.ndarray:
    """Per (n, c) plane, in order: ``out[index] += value`` or ``out[index] = value``."""
    out = np.zeros(tuple(shape), values.dtype)
    planes = out.reshape(shape[0] * shape[1], -1)
    flat_values = values.reshape(planes.shape[0], -1)
    flat_indices = indices.reshape(planes.shape[0], -1)
    for plane, row_values, row_indices in zip(planes, flat_values, flat_indices):
        for value, index in zip(row_values, row_indices):
            if accumulate:
                plane[index] += value
            else:
                plane[index] = value
    return out


def unpool_default_size(spatial, kernel, stride, padding) -> tuple[int, ...]:
    return tuple((s - 1) * st - 2 * p + k for s, k, st, p in zip(spatial, kernel, stride, padding))
