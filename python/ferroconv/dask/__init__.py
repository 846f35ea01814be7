"""ferroconv on dask arrays: convolution, pooling and whole networks on arrays larger
than memory, block by block, on any dask scheduler (threads, processes or a
``dask.distributed`` cluster).

Every function takes a ``dask.array.Array`` chunked along the batch and/or spatial
axes and returns a lazy dask array equal to what the functional API returns for the
whole array in memory. Each block is computed by one call of the functional API on
the block plus a halo (the cells its windows need from neighbouring blocks); padding
is applied only at the true boundary of the array. Channel axes must be one chunk
and, with a stride, chunk boundaries must fall on window starts: both are arranged
by rechunking (``rechunk=True``, the default), or refused with a ValueError
(``rechunk=False``). Output chunks follow the input's, divided by the stride.

Needs dask: ``pip install "dask[array,distributed]"`` (or the ``dask`` extra,
``pip install ".[dask]"`` in a clone).

Examples
--------
>>> import numpy as np, dask.array as da, ferroconv as fc
>>> import ferroconv.dask as fcd
>>> volume = np.random.default_rng(0).standard_normal((1, 1, 40, 40, 40))
>>> x = da.from_array(volume, chunks=(1, 1, 16, 16, 16))
>>> w = np.ones((4, 1, 3, 3, 3)) / 27
>>> y = fcd.max_pool3d(fcd.conv3d(x, w, padding="same", padding_mode="reflect"), 2)
>>> y.shape, y.chunks[2]
((1, 4, 20, 20, 20), (8, 8, 4))
>>> expected = fc.max_pool3d(fc.conv3d(volume, w, padding="same", padding_mode="reflect"), 2)
>>> bool(np.array_equal(y.compute(), expected))
True
"""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

try:
    import dask.array as _da
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        'ferroconv.dask needs dask: pip install "dask[array,distributed]"'
    ) from exc

from .._args import IntOrTuple
from .._errors import public
from .._spec import Padding
from . import _ops
from ._network import apply_network

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "apply_network",
]

F = TypeVar("F", bound=Callable[..., Any])

_DOC = """{summary}

Arguments and results as :func:`ferroconv.{op}` (see there), with ``x`` a dask
array ``(N, C, *spatial)`` or ``(C, *spatial)`` instead of a NumPy array.

Parameters
----------
rechunk : bool, keyword only
    Rechunk ``x`` where needed: the channel axis into one chunk, spatial chunk
    boundaries moved down to multiples of the stride, chunks shorter than the
    halo (the cells neighbouring windows reach into) merged. With False such
    chunks raise ValueError instead.

Returns
-------
dask.array.Array
    Lazily, ``ferroconv.{op}`` of the whole array: same shape, dtype and values.
    Batch chunks are kept, the channel axis is one chunk, spatial chunks are the
    input's divided by the stride (a "same" convolution keeps them).

Raises
------
TypeError
    ``x`` is not a dask array; dtypes and argument types as the functional API.
ValueError
    As the functional API{extra}; with ``rechunk=False``, chunks that do not line up.
"""


def _doc(op: str, summary: str, extra: str = "") -> Callable[[F], F]:
    def attach(func: F) -> F:
        func.__doc__ = _DOC.format(op=op, summary=summary, extra=extra)
        return func

    return attach


_CONV = "{rank}-D convolution of a dask array, block by block."
_MAX = ("{rank}-D max pooling of a dask array, block by block (values only; float or int8, uint8, int16, uint16, "
        "int32, int64 input, as the in-memory op).")
_AVG = ("{rank}-D average pooling of a dask array, block by block; each window is divided by the divisor "
        "of its position in the whole array.")
_LP = ("{rank}-D power-average (Lp) pooling of a dask array: ``x^p`` block by block, window sums with the "
       "halos of average pooling, scaled and rooted as the in-memory op.")
_NO_INDICES = "; ``return_indices=True`` (indices are not supported on dask arrays)"


@public
@_doc("conv1d", _CONV.format(rank=1))
def conv1d(x: _da.Array, weight: object, bias: object = None, stride: IntOrTuple = 1, padding: Padding = 0,
           dilation: IntOrTuple = 1, groups: int = 1, padding_mode: str = "zeros", *,
           rechunk: bool = True) -> _da.Array:
    return _ops.conv(1, "conv1d", x, weight, bias, stride, padding, dilation, groups, padding_mode, rechunk)


@public
@_doc("conv2d", _CONV.format(rank=2))
def conv2d(x: _da.Array, weight: object, bias: object = None, stride: IntOrTuple = 1, padding: Padding = 0,
           dilation: IntOrTuple = 1, groups: int = 1, padding_mode: str = "zeros", *,
           rechunk: bool = True) -> _da.Array:
    return _ops.conv(2, "conv2d", x, weight, bias, stride, padding, dilation, groups, padding_mode, rechunk)


@public
@_doc("conv3d", _CONV.format(rank=3))
def conv3d(x: _da.Array, weight: object, bias: object = None, stride: IntOrTuple = 1, padding: Padding = 0,
           dilation: IntOrTuple = 1, groups: int = 1, padding_mode: str = "zeros", *,
           rechunk: bool = True) -> _da.Array:
    return _ops.conv(3, "conv3d", x, weight, bias, stride, padding, dilation, groups, padding_mode, rechunk)


@public
@_doc("max_pool1d", _MAX.format(rank=1), _NO_INDICES)
def max_pool1d(x: _da.Array, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False, *, rechunk: bool = True) -> _da.Array:
    return _ops.max_pool(1, "max_pool1d", x, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                         rechunk)


@public
@_doc("max_pool2d", _MAX.format(rank=2), _NO_INDICES)
def max_pool2d(x: _da.Array, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False, *, rechunk: bool = True) -> _da.Array:
    return _ops.max_pool(2, "max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                         rechunk)


@public
@_doc("max_pool3d", _MAX.format(rank=3), _NO_INDICES)
def max_pool3d(x: _da.Array, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False, *, rechunk: bool = True) -> _da.Array:
    return _ops.max_pool(3, "max_pool3d", x, kernel_size, stride, padding, dilation, ceil_mode, return_indices,
                         rechunk)


@public
@_doc("avg_pool1d", _AVG.format(rank=1))
def avg_pool1d(x: _da.Array, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None, dilation: IntOrTuple = 1, *,
               rechunk: bool = True) -> _da.Array:
    return _ops.avg_pool(1, "avg_pool1d", x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override, rechunk, dilation)


@public
@_doc("avg_pool2d", _AVG.format(rank=2))
def avg_pool2d(x: _da.Array, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None, dilation: IntOrTuple = 1, *,
               rechunk: bool = True) -> _da.Array:
    return _ops.avg_pool(2, "avg_pool2d", x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override, rechunk, dilation)


@public
@_doc("avg_pool3d", _AVG.format(rank=3))
def avg_pool3d(x: _da.Array, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None, dilation: IntOrTuple = 1, *,
               rechunk: bool = True) -> _da.Array:
    return _ops.avg_pool(3, "avg_pool3d", x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                         divisor_override, rechunk, dilation)


@public
@_doc("lp_pool1d", _LP.format(rank=1))
def lp_pool1d(x: _da.Array, norm_type: float, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
              ceil_mode: bool = False, padding: Padding = 0, dilation: IntOrTuple = 1, *,
              rechunk: bool = True) -> _da.Array:
    return _ops.lp_pool(1, "lp_pool1d", x, norm_type, kernel_size, stride, ceil_mode, padding, dilation, rechunk)


@public
@_doc("lp_pool2d", _LP.format(rank=2))
def lp_pool2d(x: _da.Array, norm_type: float, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
              ceil_mode: bool = False, padding: Padding = 0, dilation: IntOrTuple = 1, *,
              rechunk: bool = True) -> _da.Array:
    return _ops.lp_pool(2, "lp_pool2d", x, norm_type, kernel_size, stride, ceil_mode, padding, dilation, rechunk)


@public
@_doc("lp_pool3d", _LP.format(rank=3))
def lp_pool3d(x: _da.Array, norm_type: float, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
              ceil_mode: bool = False, padding: Padding = 0, dilation: IntOrTuple = 1, *,
              rechunk: bool = True) -> _da.Array:
    return _ops.lp_pool(3, "lp_pool3d", x, norm_type, kernel_size, stride, ceil_mode, padding, dilation, rechunk)
