"""Fractional max pooling (Graham, 2014), as PyTorch's ``fractional_max_pool2d/3d``:
windows of ``kernel_size`` cells whose starts follow a pseudo-random sequence per
(sample, channel) plane, drawn from ``random_samples`` in ``[0, 1)``.

The window starts are computed here, in the input's own dtype with PyTorch's
formula (``int((i + u) * alpha) - int(u * alpha)``, ``alpha = (in - k) / (out -
1)``, the last window flush with the end), so the same samples give PyTorch's
windows; the maxima are taken natively. Integer input (max pooling only
compares) places its windows with float64 samples, or the given samples' dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import numpy as np

from . import _ferroconv as _native
from . import _pool
from ._args import IntOrTuple, int_tuple, is_float_dtype, is_sequence, items_of
from ._pool import Pooled
from .nn.module import generator

RngLike = Union[None, int, np.random.Generator]

# Which sample of a plane drives which spatial axis (PyTorch's order: W then H in
# 2-D, T, H, W in 3-D).
SAMPLE_AXIS = {2: (1, 0), 3: (0, 1, 2)}


def _generator(rng: RngLike) -> np.random.Generator:
    """``nn``'s generator rule, with a bool refused as a seed (``rng=True`` is a mistake)."""
    if isinstance(rng, bool):
        raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")
    return generator(rng)


def output_size(rank: int, spatial: Sequence[int], kernel: tuple[int, ...], size: object,
                ratio: object) -> tuple[int, ...]:
    """The output size from ``output_size`` or ``output_ratio`` (exactly one)."""
    if (size is None) == (ratio is None):
        raise ValueError("give exactly one of output_size and output_ratio")
    if size is not None:
        out = int_tuple(size, rank, "output_size")
    else:
        items = items_of(ratio) if is_sequence(ratio) else [ratio] * rank
        if len(items) == 1:
            items = items * rank
        if len(items) != rank or not all(isinstance(r, (float, int, np.floating, np.integer))
                                         and not isinstance(r, bool) for r in items):
            raise TypeError(f"output_ratio must be a number or {rank} numbers, got {ratio!r}")
        ratios = [float(r) for r in items]  # type: ignore[arg-type]  # numbers, checked above
        if not all(0 < r < 1 for r in ratios):
            raise ValueError(f"output_ratio must lie in (0, 1), got {ratio!r}")
        out = tuple(int(n * r) for n, r in zip(spatial, ratios))  # PyTorch truncates
    for axis, (n, o, k) in enumerate(zip(spatial, out, kernel)):
        if o < 1:
            raise ValueError(f"output_size {out} is empty along axis {axis} (input size {tuple(spatial)})")
        if o + k - 1 > n:
            raise ValueError(
                f"kernel_size {kernel} is too large for output_size {out} from input size {tuple(spatial)}: "
                "output + kernel - 1 must not exceed the input on every axis"
            )
    return out


def _samples(value: object, rng: RngLike, shape: tuple[int, int, int], x_dtype: np.dtype) -> np.ndarray:
    """The samples in the dtype the window starts are computed in: a float
    input's own, else (integer input) the given samples' (float64 when drawn or
    of another float type)."""
    given = None if value is None else np.asarray(value)
    if is_float_dtype(x_dtype):
        dtype = x_dtype
    else:
        dtype = given.dtype if given is not None and is_float_dtype(given.dtype) else np.dtype(np.float64)
    if given is None:
        drawn = _generator(rng).random(shape)
        # rounding to a 16-bit type could reach 1.0: keep the samples below it
        below_one = np.nextafter(np.array(1, dtype), np.array(0, dtype))
        kept: np.ndarray = np.minimum(drawn.astype(dtype), below_one)
        return kept
    if rng is not None:
        raise ValueError("give random_samples or rng, not both")
    samples = given
    if samples.dtype.kind != "f" and samples.dtype.name != "bfloat16":
        raise TypeError(f"random_samples must be a float array, got dtype {samples.dtype}")
    if samples.shape != shape:
        raise ValueError(f"random_samples must have shape {shape} (N, C, {shape[2]}), got {samples.shape}")
    samples = samples.astype(dtype)
    as_float = samples.astype(np.float64)
    if not np.all((as_float >= 0) & (as_float < 1)):
        raise ValueError("random_samples must lie in [0, 1)")
    return samples


def _starts(u: np.ndarray, n_in: int, n_out: int, kernel: int, out: np.ndarray) -> None:
    """Window starts of every plane along one axis into ``out`` (planes, n_out), in
    ``u``'s dtype as PyTorch."""
    dtype = u.dtype.type
    if n_out > 1:
        alpha = dtype(n_in - kernel) / dtype(n_out - 1)
        grid = np.add.outer(u, np.arange(n_out - 1, dtype=u.dtype))  # u + i, in u's dtype
        np.multiply(grid, alpha, out=grid)
        np.subtract(grid.astype(np.int64), (u * alpha).astype(np.int64)[:, np.newaxis], out=out[:, :-1])
    out[:, -1] = n_in - kernel


def fractional_max_pool(rank: int, x: object, kernel_size: IntOrTuple, size: object, ratio: object,
                        return_indices: bool, random_samples: object, rng: RngLike) -> Pooled:
    xb, was_batched = _pool.pool_input(rank, x, _pool.MAX)
    kernel = int_tuple(kernel_size, rank, "kernel_size")
    if any(k < 1 for k in kernel):
        raise ValueError(f"kernel_size must be positive, got {kernel}")
    spatial = xb.shape[2:]
    out = output_size(rank, spatial, kernel, size, ratio)
    planes = xb.shape[0] * xb.shape[1]
    samples = _samples(random_samples, rng, (xb.shape[0], xb.shape[1], rank), xb.dtype).reshape(planes, rank)
    # The core's 5-D view has 3 - rank unit leading axes (their windows start at 0).
    leading = 3 - rank
    order = [SAMPLE_AXIS[rank].index(axis) for axis in range(rank)]
    if samples.dtype in (np.float32, np.float64):
        # the core computes the starts in the samples' type (one column per axis)
        starts = np.zeros((planes, 3), samples.dtype)
        starts[:, leading:] = samples[:, order]
    else:
        # 16-bit samples: NumPy's half arithmetic places the windows; one row per
        # plane: the starts of axis 0, then 1, then 2, written in place
        starts = np.zeros((planes, leading + sum(out)), np.int64)
        offset = leading
        for axis in range(rank):
            _starts(np.ascontiguousarray(samples[:, order[axis]]), spatial[axis], out[axis], kernel[axis],
                    starts[:, offset:offset + out[axis]])
            offset += out[axis]
    values, indices = _native.fractional_max_pool(xb, starts, out, kernel, bool(return_indices))
    return _pool.pooled(values, indices, was_batched, bool(return_indices))


def fractional_backward(rank: int, grad_out: object, indices: object, input_shape: object) -> np.ndarray:
    return _pool.max_pool_backward(rank, grad_out, indices, input_shape)
