"""``Upsample``: nearest-neighbour resizing of 1 to 3 spatial axes, with
PyTorch's index rule."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from .._args import as_int, is_sequence, items_of
from .module import Module, compute_dtype

FloatOrTuple = Union[float, Sequence[float]]
MODES = ("nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area")


def nearest_indices(in_size: int, out_size: int, scale_factor: Optional[float]) -> np.ndarray:
    """The source index of every output index along one axis, as PyTorch's CPU
    kernel computes it: ``min(floor(out_idx * scale), in_size - 1)`` in float32,
    ``scale = 1 / scale_factor`` when a scale factor is used, else
    ``in_size / out_size`` (an integer factor repeats every input cell)."""
    if out_size == in_size:
        return np.arange(out_size, dtype=np.int64)
    if out_size == 2 * in_size:
        return np.arange(out_size, dtype=np.int64) >> 1
    if scale_factor is not None and scale_factor > 0:
        scale = np.float32(1.0 / scale_factor)
    else:
        scale = np.float32(in_size) / np.float32(out_size)
    source = np.floor(np.arange(out_size, dtype=np.float32) * scale).astype(np.int64)
    clipped: np.ndarray = np.minimum(source, in_size - 1)
    return clipped


class Upsample(Module):
    """Nearest-neighbour upsampling (or downsampling) of ``(N, C, L)``,
    ``(N, C, H, W)`` or ``(N, C, D, H, W)`` inputs, as ``torch.nn.Upsample`` with
    ``mode="nearest"``.

    Output cell ``o`` of an axis copies input cell ``floor(o * in / out)`` (for an
    integer ``scale_factor`` each input cell is repeated that many times); backward
    sums the gradients of the copies of each cell.

    Parameters
    ----------
    size : int or tuple of ints, optional
        The output's spatial size (one int for every axis).
    scale_factor : float or tuple of floats, optional
        Multiplier of each spatial size (the output size is ``floor(in * scale)``).
        Give exactly one of ``size`` and ``scale_factor``.
    mode : str
        Only ``"nearest"``; other PyTorch modes raise ValueError.
    align_corners : None
        Must be None (PyTorch refuses it for ``"nearest"`` as well).
    recompute_scale_factor : bool, optional
        With True the index rule uses ``in / out`` from the computed output size
        instead of ``1 / scale_factor`` (they differ for some non-integer factors).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> nn.Upsample(scale_factor=2)(np.array([[[1.0, 2.0, 3.0]]]))
    array([[[1., 1., 2., 2., 3., 3.]]])
    >>> nn.Upsample(size=4)(np.array([[[1.0, 2.0, 3.0]]]))
    array([[[1., 1., 2., 3.]]])
    """

    def __init__(self, size: Optional[Union[int, Sequence[int]]] = None,
                 scale_factor: Optional[FloatOrTuple] = None, mode: str = "nearest",
                 align_corners: Optional[bool] = None, recompute_scale_factor: Optional[bool] = None) -> None:
        super().__init__()
        owner = type(self).__name__
        if mode not in MODES:
            raise ValueError(f"{owner}: mode must be one of {MODES}, got {mode!r}")
        if mode != "nearest":
            raise ValueError(f"{owner}: only mode='nearest' is implemented, got mode={mode!r}")
        if align_corners is not None:
            raise ValueError(f"{owner}: align_corners can only be set with the interpolating modes, not 'nearest'")
        if (size is None) == (scale_factor is None):
            raise ValueError(f"{owner}: give exactly one of size and scale_factor, got size={size!r}, "
                             f"scale_factor={scale_factor!r}")
        self.size: Optional[tuple[int, ...]] = None
        self.scale_factor: Optional[tuple[float, ...]] = None
        if size is not None:
            sizes = tuple(as_int(v, f"{owner}: size") for v in (items_of(size) if is_sequence(size) else [size]))
            if not sizes or min(sizes) < 1:
                raise ValueError(f"{owner}: size must be >= 1, got {size!r}")
            self.size = sizes
        else:
            factors: list[Any] = items_of(scale_factor) if is_sequence(scale_factor) else [scale_factor]
            try:
                scales = tuple(float(v) for v in factors)
            except (TypeError, ValueError):
                raise TypeError(f"{owner}: scale_factor must be a float or a tuple of floats, "
                                f"got {scale_factor!r}") from None
            if not scales or not all(math.isfinite(v) and v > 0 for v in scales):
                raise ValueError(f"{owner}: scale_factor must be finite and > 0, got {scale_factor!r}")
            self.scale_factor = scales
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor
        self._cache: Optional[tuple[list[np.ndarray], tuple[int, ...], tuple[int, ...], np.dtype]] = None

    def _per_axis(self, value: tuple[float, ...], rank: int, name: str, shape: tuple[int, ...]) -> tuple[float, ...]:
        if len(value) == 1:
            return value * rank
        if len(value) != rank:
            raise ValueError(f"{self!r}: {name} has {len(value)} entries but the input of shape {shape} "
                             f"has {rank} spatial axes")
        return value

    def _geometry(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], list[Optional[float]]]:
        """The output's spatial size and the scale factor the index rule uses per axis."""
        rank = len(shape) - 2
        spatial = shape[2:]
        if self.size is not None:
            out = tuple(int(v) for v in self._per_axis(self.size, rank, "size", shape))
            return out, [None] * rank
        scales = self._per_axis(self.scale_factor or (), rank, "scale_factor", shape)
        out = tuple(math.floor(float(s) * f) for s, f in zip(spatial, scales))
        if min(out, default=1) < 1:
            raise ValueError(f"{self!r}: input of shape {shape} gives an empty output of spatial size {out}")
        return out, [None if self.recompute_scale_factor else f for f in scales]

    def forward(self, x: np.ndarray) -> np.ndarray:
        array = self._float_input(x)
        if not 3 <= array.ndim <= 5:
            raise ValueError(
                f"{self!r}: expected input of shape (N, C, L), (N, C, H, W) or (N, C, D, H, W), "
                f"got shape {array.shape}"
            )
        out_spatial, scales = self._geometry(array.shape)
        if min(array.shape[2:]) < 1:
            raise ValueError(f"{self!r}: input of shape {array.shape} has an empty spatial axis")
        indices = [nearest_indices(n, m, f) for n, m, f in zip(array.shape[2:], out_spatial, scales)]
        out = array
        for axis, index in enumerate(indices, start=2):
            out = np.take(out, index, axis=axis)
        self._cache = (indices, array.shape, out.shape, array.dtype)
        return np.ascontiguousarray(out)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        indices, in_shape, out_shape, stored = self._cached(self._cache)
        grad = self._grad_out(grad_out, out_shape, stored).astype(compute_dtype(stored), copy=False)
        for axis, index in enumerate(indices, start=2):
            shape = grad.shape[:axis] + (in_shape[axis],) + grad.shape[axis + 1:]
            summed = np.zeros(shape, grad.dtype)
            np.add.at(summed, (slice(None),) * axis + (index,), grad)
            grad = summed
        grad_x: np.ndarray = grad.astype(stored, copy=False)
        return grad_x

    def extra_repr(self) -> str:
        what = f"size={self.size}" if self.size is not None else f"scale_factor={self.scale_factor}"
        return f"{what}, mode={self.mode!r}"
