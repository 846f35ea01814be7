"""Pooling layers: ``MaxPool*``, ``AvgPool*``, ``AdaptiveAvgPool*`` over the
functional pooling ops, and ``GlobalAvgPool`` (a mean over every spatial axis)."""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Union

import numpy as np

from .. import _pool
from .._args import IntOrTuple, int_tuple
from .._errors import named
from .._spec import PoolSpec, pool_spec
from .conv import check_channels_first
from .module import Module
from ._docs import parameters_from


class _PoolNd(Module):
    """Shared input checks and cache of the pooling layers."""

    rank: ClassVar[int]

    def __init__(self) -> None:
        super().__init__()
        self._cache: Optional[tuple[Any, ...]] = None

    def _tuple(self, value: IntOrTuple, name: str) -> tuple[int, ...]:
        with named(type(self).__name__):
            return int_tuple(value, self.rank, name)

    def _window(self, kernel_size: tuple[int, ...], stride: tuple[int, ...], padding: tuple[int, ...],
                **options: Any) -> PoolSpec:
        """The layer's spec, checked now (as PyTorch checks at construction)."""
        with named(type(self).__name__):
            return pool_spec(self.rank, kernel_size, stride, padding, **options)

    def _input(self, x: Any) -> np.ndarray:
        return check_channels_first(self, x, self.rank, None)


class _MaxPoolNd(_PoolNd):
    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 dilation: IntOrTuple = 1, return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else self._tuple(stride, "stride")
        self.padding = self._tuple(padding, "padding")
        self.dilation = self._tuple(dilation, "dilation")
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)
        self._spec = self._window(self.kernel_size, self.stride, self.padding, dilation=self.dilation,
                                  ceil_mode=self.ceil_mode)

    def forward(self, x: np.ndarray) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:  # type: ignore[override]
        x = self._input(x)
        with named(repr(self)):
            out, indices = _pool.max_pool(self.rank, x, self._spec, True)
        self._cache = (indices, x.shape, out.shape, x.dtype)
        return (out, indices) if self.return_indices else out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        indices, in_shape, out_shape, dtype = self._cached(self._cache)
        grad = self._grad_out(grad_out, out_shape, dtype)
        with named(repr(self)):
            return _pool.max_pool_backward(self.rank, grad, indices, in_shape)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class MaxPool1d(_MaxPoolNd):
    """1-D max pooling, as ``torch.nn.MaxPool1d``; backward scatters the gradient
    to the position of each window's maximum (the indices of the forward pass).

    Parameters
    ----------
    kernel_size : int or tuple of ints
    stride : int or tuple of ints, optional
        Defaults to ``kernel_size``.
    padding : int or tuple of ints
        Implicit ``-inf`` cells on both sides, at most ``kernel_size // 2``.
    dilation : int or tuple of ints
    return_indices : bool
        ``forward`` returns ``(out, indices)`` instead of ``out``.
    ceil_mode : bool
        Round the output size up (PyTorch's rule).
    """

    rank = 1


@parameters_from(MaxPool1d)
class MaxPool2d(_MaxPoolNd):
    """2-D max pooling, as ``torch.nn.MaxPool2d`` (parameters as :class:`MaxPool1d`)."""

    rank = 2


@parameters_from(MaxPool1d)
class MaxPool3d(_MaxPoolNd):
    """3-D max pooling, as ``torch.nn.MaxPool3d`` (parameters as :class:`MaxPool1d`)."""

    rank = 3


class _AvgPoolNd(_PoolNd):
    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None) -> None:
        super().__init__()
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else self._tuple(stride, "stride")
        self.padding = self._tuple(padding, "padding")
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        if divisor_override is not None and (isinstance(divisor_override, bool) or int(divisor_override) < 1):
            raise ValueError(f"{type(self).__name__}: divisor_override must be >= 1, got {divisor_override!r}")
        self.divisor_override = divisor_override
        self._spec = self._window(self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                                  count_include_pad=self.count_include_pad, divisor_override=divisor_override)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        with named(repr(self)):
            out = _pool.avg_pool(self.rank, x, self._spec)
        self._cache = (x.shape, out.shape, x.dtype)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        in_shape, out_shape, dtype = self._cached(self._cache)
        grad = self._grad_out(grad_out, out_shape, dtype)
        with named(repr(self)):
            return _pool.avg_pool_backward(self.rank, grad, in_shape, self._spec)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling, as ``torch.nn.AvgPool1d``.

    Parameters
    ----------
    kernel_size : int or tuple of ints
    stride : int or tuple of ints, optional
        Defaults to ``kernel_size``.
    padding : int or tuple of ints
        Zero cells on both sides, at most ``kernel_size // 2``.
    ceil_mode : bool
    count_include_pad : bool
        Whether padded zeros count in the divisor.
    divisor_override : int, optional
        Divide every window sum by this instead.
    """

    rank = 1


@parameters_from(AvgPool1d)
class AvgPool2d(_AvgPoolNd):
    """2-D average pooling, as ``torch.nn.AvgPool2d`` (parameters as :class:`AvgPool1d`)."""

    rank = 2


@parameters_from(AvgPool1d)
class AvgPool3d(_AvgPoolNd):
    """3-D average pooling, as ``torch.nn.AvgPool3d`` (parameters as :class:`AvgPool1d`)."""

    rank = 3


class _AdaptiveAvgPoolNd(_PoolNd):
    def __init__(self, output_size: IntOrTuple) -> None:
        super().__init__()
        self.output_size = self._tuple(output_size, "output_size")
        if min(self.output_size) < 1:
            raise ValueError(f"{type(self).__name__}: output_size must be >= 1, got {self.output_size}")

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        with named(repr(self)):
            out = _pool.adaptive_avg_pool(self.rank, x, self.output_size)
        self._cache = (x.shape, out.shape, x.dtype)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        in_shape, out_shape, dtype = self._cached(self._cache)
        grad = self._grad_out(grad_out, out_shape, dtype)
        with named(repr(self)):
            return _pool.adaptive_avg_pool_backward(self.rank, grad, in_shape)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptiveAvgPoolNd):
    """1-D adaptive average pooling to a fixed ``output_size``, as
    ``torch.nn.AdaptiveAvgPool1d``: window ``i`` spans ``[floor(i L / out),
    ceil((i + 1) L / out))``."""

    rank = 1


class AdaptiveAvgPool2d(_AdaptiveAvgPoolNd):
    """2-D adaptive average pooling, as ``torch.nn.AdaptiveAvgPool2d``."""

    rank = 2


class AdaptiveAvgPool3d(_AdaptiveAvgPoolNd):
    """3-D adaptive average pooling, as ``torch.nn.AdaptiveAvgPool3d``."""

    rank = 3


class GlobalAvgPool(Module):
    """Mean over every spatial axis, keeping them with size 1: ``(N, C, *S) ->
    (N, C, 1, ..., 1)`` for 1 to 3 spatial axes (adaptive average pooling to size 1).

    Follow it with :class:`Flatten` to feed a :class:`Linear` layer.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: Optional[tuple[tuple[int, ...], tuple[int, ...], np.dtype]] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._float_input(x)
        if not 3 <= x.ndim <= 5:
            raise ValueError(
                f"{self!r}: expected input of shape (N, C, L), (N, C, H, W) or (N, C, D, H, W), "
                f"got shape {x.shape}"
            )
        out: np.ndarray = x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)
        self._cache = (x.shape, out.shape, x.dtype)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        in_shape, out_shape, dtype = self._cached(self._cache)
        grad = self._grad_out(grad_out, out_shape, dtype)
        count = int(np.prod(in_shape[2:]))
        return np.ascontiguousarray(np.broadcast_to(grad / count, in_shape))
