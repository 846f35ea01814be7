"""Pooling layers: ``MaxPool*``, ``MaxUnpool*``, ``AvgPool*``, ``LPPool*``, ``AdaptiveAvgPool*``,
``AdaptiveMaxPool*`` over the functional pooling ops, and ``GlobalAvgPool`` /
``GlobalMaxPool`` (the mean / maximum over every spatial axis)."""

from __future__ import annotations

from typing import Any, ClassVar, Optional, Union

import numpy as np

from .. import _fractional, _pool
from .._args import IntOrTuple, int_tuple, is_int_dtype
from .._errors import named
from .._spec import Padding, PoolSpec, pool_padding, pool_spec, unpool_spec
from .._spec import norm_type as _norm_type
from .conv import check_channels_first
from .module import FLOAT_NAMES, Module
from ._docs import parameters_from


class _PoolNd(Module):
    """Shared input checks and cache of the pooling layers."""

    rank: ClassVar[int]
    # Why integer input is refused; _pool.MAX: taken (the max-pooling layers, for
    # inference: their backward refuses an integer forward pass).
    integers: ClassVar[str] = _pool.AVERAGE

    def __init__(self) -> None:
        super().__init__()
        self._cache: Optional[tuple[Any, ...]] = None

    def _float_input(self, x: Any) -> np.ndarray:
        array = np.asarray(x)
        if not is_int_dtype(array.dtype):
            return super()._float_input(array)
        if self.integers:
            raise TypeError(f"{self!r}: input must be {FLOAT_NAMES} ({self.integers}), got dtype {array.dtype}")
        return array

    def _no_integer_backward(self, dtype: np.dtype) -> None:
        """TypeError if the forward pass ran on integers (no gradient there)."""
        if is_int_dtype(dtype):
            raise TypeError(
                f"{self!r}: backward after a forward pass on {dtype} input: a gradient is a float array, "
                "so integer max pooling is for inference only (pass float input to train)"
            )

    def _tuple(self, value: IntOrTuple, name: str) -> tuple[int, ...]:
        with named(type(self).__name__):
            return int_tuple(value, self.rank, name)

    def _padding(self, value: Padding) -> Union[str, tuple[int, ...], tuple[tuple[int, int], ...]]:
        """PyTorch's ints, or ONNX's per-side pairs and "same" / "same_lower" / "valid"."""
        with named(type(self).__name__):
            return pool_padding(value, self.rank)

    def _window(self, kernel_size: tuple[int, ...], stride: tuple[int, ...], padding: Padding,
                **options: Any) -> PoolSpec:
        """The layer's spec, checked now (as PyTorch checks at construction)."""
        with named(type(self).__name__):
            return pool_spec(self.rank, kernel_size, stride, padding, **options)

    def _input(self, x: Any) -> np.ndarray:
        return check_channels_first(self, x, self.rank, None)


class _IndexedPoolNd(_PoolNd):
    """A pooling layer whose backward scatters ``grad_out`` to the positions of the
    maxima found by the forward pass (its ``indices``). Its forward pass takes
    integer input too."""

    integers = _pool.MAX

    def _remember(self, x: np.ndarray, out: np.ndarray, indices: np.ndarray, rank: int) -> None:
        self._cache = (indices, x.shape, out.shape, x.dtype, rank)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        indices, in_shape, out_shape, dtype, rank = self._cached(self._cache)
        self._no_integer_backward(dtype)
        grad = self._grad_out(grad_out, out_shape, dtype)
        with named(repr(self)):
            return _pool.max_pool_backward(rank, grad, indices, in_shape)


class _MaxPoolNd(_IndexedPoolNd):
    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: Padding = 0,
                 dilation: IntOrTuple = 1, return_indices: bool = False, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else self._tuple(stride, "stride")
        self.padding = self._padding(padding)
        self.dilation = self._tuple(dilation, "dilation")
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)
        self._spec = self._window(self.kernel_size, self.stride, self.padding, dilation=self.dilation,
                                  ceil_mode=self.ceil_mode)

    def forward(self, x: np.ndarray) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:  # type: ignore[override]
        x = self._input(x)
        with named(repr(self)):
            out, indices = _pool.max_pool(self.rank, x, self._spec, True)
        self._remember(x, out, indices, self.rank)
        return (out, indices) if self.return_indices else out

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
    padding : int, tuple of ints, (lo, hi) pairs, "same", "same_lower" or "valid"
        Implicit ``-inf`` cells: on both sides, at most ``kernel_size // 2``
        (PyTorch), or as :func:`ferroconv.max_pool1d` takes them (ONNX's pads
        and auto_pad).
    dilation : int or tuple of ints
    return_indices : bool
        ``forward`` returns ``(out, indices)`` instead of ``out``.
    ceil_mode : bool
        Round the output size up (PyTorch's rule).

    Notes
    -----
    Besides the float dtypes, ``forward`` takes int8, uint8, int16, uint16, int32 and
    int64 input (images, masks) and returns its dtype; that is for inference:
    ``backward`` after an integer forward pass raises TypeError. The same holds
    for every max-pooling and unpooling layer.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> nn.MaxPool1d(2)(np.array([[[3, 250, 7, 0]]], np.uint8))
    array([[[250,   7]]], dtype=uint8)
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


class _MaxUnpoolNd(_PoolNd):
    integers = _pool.MAX

    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0) -> None:
        super().__init__()
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else self._tuple(stride, "stride")
        self.padding = self._tuple(padding, "padding")
        with named(type(self).__name__):
            unpool_spec(self.rank, self.kernel_size, self.stride, self.padding, None, self.rank + 2)

    def forward(self, x: np.ndarray, indices: np.ndarray,  # type: ignore[override]
                output_size: Optional[IntOrTuple] = None) -> np.ndarray:
        x = self._input(x)
        with named(repr(self)):
            out = _pool.max_unpool(self.rank, x, indices, self.kernel_size, self.stride, self.padding,
                                   output_size)
        self._cache = (np.array(indices, dtype=np.int64, copy=True), out.shape, x.dtype)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """The gradient with respect to ``x`` (the indices are not differentiable):
        ``grad_out`` read at the positions the values were scattered to."""
        indices, out_shape, dtype = self._cached(self._cache)
        self._no_integer_backward(dtype)
        grad = self._grad_out(grad_out, out_shape, dtype)
        with named(repr(self)):
            return _pool.max_unpool_backward(self.rank, grad, indices)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxUnpool1d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool1d`, as ``torch.nn.MaxUnpool1d``: called
    as ``unpool(x, indices, output_size=None)`` with the ``(out, indices)`` of a
    max pool with ``return_indices=True``, it writes each value of ``x`` at its index
    of a zero output (the positions that were not maxima stay 0).

    Parameters
    ----------
    kernel_size : int or tuple of ints
        The pool's window.
    stride : int or tuple of ints, optional
        Defaults to ``kernel_size``.
    padding : int or tuple of ints
        The pool's padding.

    Notes
    -----
    ``forward(x, indices, output_size=None)``: ``output_size`` (the spatial size or
    the full shape) picks the output size when the pool's rounding made it
    ambiguous. ``backward(grad_out)`` returns the gradient with respect to ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> out, indices = nn.MaxPool1d(2, return_indices=True)(np.array([[[1.0, 3.0, 4.0, 2.0]]]))
    >>> nn.MaxUnpool1d(2)(out, indices)
    array([[[0., 3., 4., 0.]]])
    """

    rank = 1


@parameters_from(MaxUnpool1d)
class MaxUnpool2d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool2d`, as ``torch.nn.MaxUnpool2d``
    (parameters as :class:`MaxUnpool1d`)."""

    rank = 2


@parameters_from(MaxUnpool1d)
class MaxUnpool3d(_MaxUnpoolNd):
    """The partial inverse of :class:`MaxPool3d`, as ``torch.nn.MaxUnpool3d``
    (parameters as :class:`MaxUnpool1d`)."""

    rank = 3


class _AvgPoolNd(_PoolNd):
    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None, padding: Padding = 0,
                 ceil_mode: bool = False, count_include_pad: bool = True,
                 divisor_override: Optional[int] = None, *, dilation: IntOrTuple = 1) -> None:
        super().__init__()
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else self._tuple(stride, "stride")
        self.padding = self._padding(padding)
        self.dilation = self._tuple(dilation, "dilation")
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)
        if divisor_override is not None and (isinstance(divisor_override, bool) or int(divisor_override) < 1):
            raise ValueError(f"{type(self).__name__}: divisor_override must be >= 1, got {divisor_override!r}")
        self.divisor_override = divisor_override
        self._spec = self._window(self.kernel_size, self.stride, self.padding, ceil_mode=self.ceil_mode,
                                  count_include_pad=self.count_include_pad, divisor_override=divisor_override,
                                  dilation=self.dilation)

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
        dilation = "" if self.dilation == (1,) * self.rank else f", dilation={self.dilation}"
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}{dilation}"


class AvgPool1d(_AvgPoolNd):
    """1-D average pooling, as ``torch.nn.AvgPool1d``.

    Parameters
    ----------
    kernel_size : int or tuple of ints
    stride : int or tuple of ints, optional
        Defaults to ``kernel_size``.
    padding : int, tuple of ints, (lo, hi) pairs, "same", "same_lower" or "valid"
        Zero cells: on both sides, at most ``kernel_size // 2`` (PyTorch), or as
        :func:`ferroconv.avg_pool1d` takes them (ONNX's pads and auto_pad).
    ceil_mode : bool
    count_include_pad : bool
        Whether padded zeros count in the divisor.
    divisor_override : int, optional
        Divide every window sum by this instead.
    dilation : int or tuple of ints
        Distance between a window's cells (ONNX's AveragePool ``dilations``;
        PyTorch has none).
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


class _LPPoolNd(_PoolNd):
    integers = _pool.LP

    def __init__(self, norm_type: float, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 ceil_mode: bool = False, *, padding: Padding = 0, dilation: IntOrTuple = 1) -> None:
        super().__init__()
        with named(type(self).__name__):
            self.norm_type = _norm_type(norm_type)
            self.padding = pool_padding(padding, self.rank)
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else self._tuple(stride, "stride")
        self.dilation = self._tuple(dilation, "dilation")
        self.ceil_mode = bool(ceil_mode)
        self._spec = self._window(self.kernel_size, self.stride, self.padding, dilation=self.dilation,
                                  ceil_mode=self.ceil_mode)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        with named(repr(self)):
            out = _pool.lp_pool(self.rank, x, self._spec, self.norm_type)
        self._cache = (x, out.shape)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x, out_shape = self._cached(self._cache)
        grad = self._grad_out(grad_out, out_shape, x.dtype)
        with named(repr(self)):
            return _pool.lp_pool_backward(self.rank, grad, x, self._spec, self.norm_type)

    def extra_repr(self) -> str:
        extra = "" if self.padding == (0,) * self.rank else f", padding={self.padding}"
        if self.dilation != (1,) * self.rank:
            extra += f", dilation={self.dilation}"
        return (f"norm_type={self.norm_type}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"ceil_mode={self.ceil_mode}{extra}")



class LPPool1d(_LPPoolNd):
    """1-D power-average pooling, as ``torch.nn.LPPool1d``: ``(sum over the window
    of x^p)^(1/p)`` (see :func:`ferroconv.lp_pool1d`); backward recomputes the
    window sums from the input kept by ``forward``.

    Parameters
    ----------
    norm_type : float
        The power ``p`` (nonzero; ``inf`` is the max of ``|x|``).
    kernel_size : int or tuple of ints
    stride : int or tuple of ints, optional
        Defaults to ``kernel_size``.
    ceil_mode : bool
    padding : int, tuple, (lo, hi) pairs or str, keyword-only
        ONNX ``LpPool``'s padding (PyTorch has none), as :func:`ferroconv.lp_pool1d`.
    dilation : int or tuple of ints, keyword-only
        ONNX ``LpPool``'s dilation (PyTorch has none).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> layer = nn.LPPool1d(2, 2)
    >>> layer(np.array([[[3., 4., 0., 1.]]]))
    array([[[5., 1.]]])
    >>> layer.backward(np.ones((1, 1, 2)))
    array([[[0.6, 0.8, 0. , 1. ]]])
    """

    rank = 1


@parameters_from(LPPool1d)
class LPPool2d(_LPPoolNd):
    """2-D power-average pooling, as ``torch.nn.LPPool2d`` (parameters as :class:`LPPool1d`)."""

    rank = 2


@parameters_from(LPPool1d)
class LPPool3d(_LPPoolNd):
    """3-D power-average pooling, as ``torch.nn.LPPool3d`` (parameters as :class:`LPPool1d`)."""

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


class _AdaptiveMaxPoolNd(_IndexedPoolNd):
    def __init__(self, output_size: IntOrTuple, return_indices: bool = False) -> None:
        super().__init__()
        self.output_size = self._tuple(output_size, "output_size")
        if min(self.output_size) < 1:
            raise ValueError(f"{type(self).__name__}: output_size must be >= 1, got {self.output_size}")
        self.return_indices = bool(return_indices)

    def forward(self, x: np.ndarray) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:  # type: ignore[override]
        x = self._input(x)
        with named(repr(self)):
            out, indices = _pool.adaptive_max_pool(self.rank, x, self.output_size, True)
        self._remember(x, out, indices, self.rank)
        return (out, indices) if self.return_indices else out

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveMaxPool1d(_AdaptiveMaxPoolNd):
    """1-D adaptive max pooling to a fixed ``output_size``, as
    ``torch.nn.AdaptiveMaxPool1d`` (the windows of :class:`AdaptiveAvgPool1d`);
    backward scatters the gradient to each window's maximum.

    Parameters
    ----------
    output_size : int or tuple of ints
    return_indices : bool
        ``forward`` returns ``(out, indices)`` instead of ``out``.
    """

    rank = 1


@parameters_from(AdaptiveMaxPool1d)
class AdaptiveMaxPool2d(_AdaptiveMaxPoolNd):
    """2-D adaptive max pooling, as ``torch.nn.AdaptiveMaxPool2d``
    (parameters as :class:`AdaptiveMaxPool1d`)."""

    rank = 2


@parameters_from(AdaptiveMaxPool1d)
class AdaptiveMaxPool3d(_AdaptiveMaxPoolNd):
    """3-D adaptive max pooling, as ``torch.nn.AdaptiveMaxPool3d``
    (parameters as :class:`AdaptiveMaxPool1d`)."""

    rank = 3


def _global_input(layer: Module, x: Any) -> np.ndarray:
    """``x`` as a float array ``(N, C, *S)`` with 1 to 3 spatial axes."""
    array = layer._float_input(x)
    if not 3 <= array.ndim <= 5:
        raise ValueError(
            f"{layer!r}: expected input of shape (N, C, L), (N, C, H, W) or (N, C, D, H, W), "
            f"got shape {array.shape}"
        )
    return array


class GlobalAvgPool(Module):
    """Mean over every spatial axis, keeping them with size 1: ``(N, C, *S) ->
    (N, C, 1, ..., 1)`` for 1 to 3 spatial axes (adaptive average pooling to size 1).

    Follow it with :class:`Flatten` to feed a :class:`Linear` layer.
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: Optional[tuple[tuple[int, ...], tuple[int, ...], np.dtype]] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _global_input(self, x)
        out: np.ndarray = x.mean(axis=tuple(range(2, x.ndim)), keepdims=True)
        self._cache = (x.shape, out.shape, x.dtype)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        in_shape, out_shape, dtype = self._cached(self._cache)
        grad = self._grad_out(grad_out, out_shape, dtype)
        count = int(np.prod(in_shape[2:]))
        return np.ascontiguousarray(np.broadcast_to(grad / count, in_shape))


class GlobalMaxPool(_IndexedPoolNd):
    """Maximum over every spatial axis, keeping them with size 1: ``(N, C, *S) ->
    (N, C, 1, ..., 1)`` for 1 to 3 spatial axes (adaptive max pooling to size 1).
    Backward sends each gradient to the position of its maximum.

    Follow it with :class:`Flatten` to feed a :class:`Linear` layer.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> nn.GlobalMaxPool()(np.arange(12.0).reshape(1, 2, 2, 3)).ravel()
    array([ 5., 11.])
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = _global_input(self, x)
        with named(repr(self)):
            out, indices = _pool.global_max_pool(x, True, keepdims=True)
        self._remember(x, out, indices, x.ndim - 2)
        return out


class _FractionalMaxPoolNd(_IndexedPoolNd):
    def __init__(self, kernel_size: IntOrTuple, output_size: Optional[IntOrTuple] = None,
                 output_ratio: Optional[Union[float, tuple[float, ...]]] = None, return_indices: bool = False,
                 _random_samples: Optional[np.ndarray] = None, *, rng: Any = None) -> None:
        super().__init__()
        owner = type(self).__name__
        self.kernel_size = self._tuple(kernel_size, "kernel_size")
        if (output_size is None) == (output_ratio is None):
            raise ValueError(f"{owner}: give exactly one of output_size and output_ratio")
        self.output_size = None if output_size is None else self._tuple(output_size, "output_size")
        self.output_ratio = output_ratio
        self.return_indices = bool(return_indices)
        self._random_samples = _random_samples
        with named(owner):
            self.rng = _fractional._generator(rng)

    def forward(self, x: np.ndarray) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray]]:  # type: ignore[override]
        x = self._input(x)
        with named(repr(self)):
            # fixed samples when given (PyTorch's _random_samples), else new windows every call
            out, indices = _fractional.fractional_max_pool(
                self.rank, x, self.kernel_size, self.output_size, self.output_ratio, True,
                self._random_samples, None if self._random_samples is not None else self.rng)
        self._remember(x, out, indices, self.rank)
        return (out, indices) if self.return_indices else out

    def extra_repr(self) -> str:
        size = f"output_size={self.output_size}" if self.output_size else f"output_ratio={self.output_ratio}"
        return f"kernel_size={self.kernel_size}, {size}"


class FractionalMaxPool2d(_FractionalMaxPoolNd):
    """2-D fractional max pooling, as ``torch.nn.FractionalMaxPool2d``: windows of
    ``kernel_size`` at pseudo-random starts drawn anew every forward pass (see
    :func:`ferroconv.fractional_max_pool2d`); backward sends each gradient to its
    maximum.

    Parameters
    ----------
    kernel_size : int or tuple of ints
    output_size : int or tuple of ints, optional
    output_ratio : float or tuple of floats in (0, 1), optional
        Exactly one of ``output_size`` and ``output_ratio``.
    return_indices : bool
        Return ``(values, indices)``.
    _random_samples : ndarray, optional
        Fixed ``(N, C, rank)`` samples in [0, 1) for every call (PyTorch's argument).
    rng : numpy.random.Generator or int, optional
        Where the samples of each call come from.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> nn.FractionalMaxPool2d(3, output_ratio=0.5, rng=0)(np.zeros((1, 2, 10, 10))).shape
    (1, 2, 5, 5)
    """

    rank = 2


@parameters_from(FractionalMaxPool2d)
class FractionalMaxPool3d(_FractionalMaxPoolNd):
    """3-D fractional max pooling, as ``torch.nn.FractionalMaxPool3d`` (parameters
    as :class:`FractionalMaxPool2d`)."""

    rank = 3
