"""Pooling: max (with indices), max unpooling, average, adaptive and global
pooling, forward and backward, with ``torch.nn.functional`` semantics (re-exported
by :mod:`ferroconv.functional`).

Every function accepts float32 or float64 arrays of any memory layout (strided,
negative strides, Fortran order, read-only, either byte order), batched
``(N, C, *S)`` or unbatched ``(C, *S)``, and returns new C-contiguous arrays of the
input's dtype (indices are int64). Bad arguments raise ``ValueError`` or
``TypeError`` with a message naming the function and the argument.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from . import _ferroconv as _native
from . import _pool
from ._args import IntOrTuple, dims3, from_5d, to_5d, with_op
from ._docs import F, fill_doc
from ._pool import OutputSize, Pooled

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool1d_backward",
    "max_pool2d_backward",
    "max_pool3d_backward",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "avg_pool1d_backward",
    "avg_pool2d_backward",
    "avg_pool3d_backward",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_avg_pool1d_backward",
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool3d_backward",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "adaptive_max_pool1d_backward",
    "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d_backward",
    "global_avg_pool",
    "global_max_pool",
    "pool_output_shape",
]



_MAX_POOL_DOC = """{rank}-D max pooling, as ``torch.nn.functional.max_pool{rank}d``.

Parameters
----------
x : ndarray
    float32 or float64 input of shape ``{layout}``, or unbatched without ``N``.
kernel_size : {tuple}
    Window size (>= 1).
stride : {tuple}, optional
    Step between windows (>= 1); None (the default) means ``kernel_size``.
padding : {tuple}
    Implicit padding on both sides, at most ``kernel_size // 2``; padded cells
    act as -inf, so they are never selected.
dilation : {tuple}
    Spacing between the cells of a window (>= 1).
ceil_mode : bool
    Round the output size up instead of down; a window that would start in the
    right padding is dropped (PyTorch's rule).
return_indices : bool
    Also return, for every output, the flat index of its maximum within its
    ``(n, c)`` plane of the unpadded input (row-major over the spatial axes).

Returns
-------
ndarray or (ndarray, ndarray)
    The pooled values of shape ``(N, C, *out)`` with ``out = floor_or_ceil((S +
    2 padding - dilation (kernel_size - 1) - 1) / stride) + 1``, and the int64
    indices of the same shape when ``return_indices``. Ties select the first
    maximum in scan order; a window holding NaN gives NaN (with the index of
    its last NaN, as PyTorch's CPU kernel).

Raises
------
ValueError
    Wrong number of axes, a zero kernel/stride/dilation, padding above
    ``kernel_size // 2``, or an empty output (the message names the argument).
TypeError
    Integer or boolean input, or arguments of the wrong type.
{example}"""

_MAX_POOL_BACKWARD_DOC = """Gradient of :func:`max_pool{rank}d` (and :func:`adaptive_max_pool{rank}d`)
with respect to its input.

Parameters
----------
grad_out : ndarray
    Gradient with respect to the pooled values, ``(N, C, *out)`` or unbatched.
indices : ndarray of int64
    The indices the forward call returned (same shape as ``grad_out``).
input_shape : tuple of ints
    Shape of the forward input (batched like ``grad_out``), or its spatial size.

Returns
-------
ndarray
    Zeros of ``input_shape`` with every gradient added at its index; gradients
    of overlapping windows that chose the same cell accumulate. The result is
    the same for any thread count.

Raises
------
ValueError
    ``indices`` not of ``grad_out``'s shape, an index outside the input plane,
    or an ``input_shape`` whose batch/channels differ from ``grad_out``'s.
TypeError
    ``indices`` not int64, ``grad_out`` not float32/float64.
"""

_MAX_UNPOOL_DOC = """{rank}-D max unpooling, as ``torch.nn.functional.max_unpool{rank}d``: the
partial inverse of :func:`max_pool{rank}d`.

Parameters
----------
x : ndarray
    Pooled values, ``{layout}`` or unbatched.
indices : ndarray of int64
    The indices :func:`max_pool{rank}d` returned with ``x`` (same shape).
kernel_size, stride, padding : {tuple}
    The pooling's arguments (``stride`` defaults to ``kernel_size``).
output_size : tuple of ints, optional
    Spatial size of the result (or the full shape of the pooling's input). By
    default ``(L - 1) * stride - 2 padding + kernel_size``; a given size must lie
    strictly between that default minus and plus the stride (PyTorch's range).

Returns
-------
ndarray
    Zeros of shape ``(N, C, *output_size)`` with each value of ``x`` at its index
    (where indices repeat, the last value wins).

Raises
------
ValueError
    ``indices`` not of ``x``'s shape, an index outside the output plane, or an
    ``output_size`` out of range.
TypeError
    ``indices`` not int64, ``x`` not float32/float64.
{example}"""

_AVG_POOL_DOC = """{rank}-D average pooling, as ``torch.nn.functional.avg_pool{rank}d``.

Parameters
----------
x : ndarray
    float32 or float64 input of shape ``{layout}``, or unbatched without ``N``.
kernel_size : {tuple}
    Window size (>= 1).
stride : {tuple}, optional
    Step between windows; None (the default) means ``kernel_size``.
padding : {tuple}
    Implicit zero padding on both sides, at most ``kernel_size // 2``.
ceil_mode : bool
    Round the output size up instead of down (PyTorch's rule).
count_include_pad : bool
    Divide by the window clipped to the padded input ``[-padding, S + padding)``
    (True, the default), or by the number of input cells in the window (False).
divisor_override : int, optional
    A nonzero divisor used for every window instead. (PyTorch's ``avg_pool1d``
    has no such argument; it is accepted here for uniformity.)

Returns
-------
ndarray
    ``(N, C, *out)`` with the same output size as :func:`max_pool{rank}d`
    (dilation 1).

Raises
------
ValueError
    Wrong number of axes, a zero kernel or stride, padding above
    ``kernel_size // 2``, ``divisor_override=0`` or an empty output.
TypeError
    Integer or boolean input, or arguments of the wrong type.
{example}"""

_AVG_POOL_BACKWARD_DOC = """Gradient of :func:`avg_pool{rank}d` with respect to its input (the adjoint
of the forward map).

Parameters
----------
grad_out : ndarray
    Gradient with respect to the output, ``(N, C, *out)`` or unbatched.
input_shape : tuple of ints
    Shape of the forward input (batched like ``grad_out``), or its spatial size.
kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
    The forward call's arguments (see :func:`avg_pool{rank}d`).

Returns
-------
ndarray
    Gradient of shape ``input_shape``: each output gradient divided by its
    window's divisor, added to every input cell of the window.

Raises
------
ValueError
    ``grad_out`` not of the forward output's shape, or the forward's errors.
TypeError
    Non-float ``grad_out`` or arguments of the wrong type.
"""

_ADAPTIVE_AVG_DOC = """{rank}-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool{rank}d``.

Output cell ``i`` of an axis of input size ``L`` averages the input cells
``floor(i L / out) <= j < ceil((i + 1) L / out)``.

Parameters
----------
x : ndarray
    ``{layout}`` or unbatched, with a non-empty spatial size.
output_size : {tuple}
    Target size per axis (>= 0); an entry None keeps that axis' size.

Returns
-------
ndarray
    ``(N, C, *output_size)``.

Raises
------
ValueError
    Wrong number of axes, an empty input or a negative size.
TypeError
    Integer or boolean input, or an ``output_size`` of the wrong type.
"""

_ADAPTIVE_AVG_BACKWARD_DOC = """Gradient of :func:`adaptive_avg_pool{rank}d` with respect to its input.

Parameters
----------
grad_out : ndarray
    Gradient with respect to the output (its spatial size is the output size).
input_shape : tuple of ints
    Shape of the forward input (batched like ``grad_out``), or its spatial size.

Returns
-------
ndarray
    Gradient of shape ``input_shape``.

Raises
------
ValueError, TypeError
    As :func:`adaptive_avg_pool{rank}d`, or an ``input_shape`` whose batch or
    channels differ from ``grad_out``'s.
"""

_ADAPTIVE_MAX_DOC = """{rank}-D adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool{rank}d``
(windows as :func:`adaptive_avg_pool{rank}d`, maxima as :func:`max_pool{rank}d`).

Parameters
----------
x : ndarray
    ``{layout}`` or unbatched, with a non-empty spatial size.
output_size : {tuple}
    Target size per axis (>= 0); an entry None keeps that axis' size.
return_indices : bool
    Also return the flat per-plane index of every maximum (int64).

Returns
-------
ndarray or (ndarray, ndarray)
    ``(N, C, *output_size)`` values, and indices when ``return_indices``.

Raises
------
ValueError, TypeError
    As :func:`adaptive_avg_pool{rank}d`.
"""

_ADAPTIVE_MAX_BACKWARD_DOC = """Gradient of :func:`adaptive_max_pool{rank}d` with respect to its input: the
same scatter as :func:`max_pool{rank}d_backward`.

Parameters
----------
grad_out : ndarray
    Gradient with respect to the pooled values.
indices : ndarray of int64
    The indices the forward call returned (same shape as ``grad_out``).
input_shape : tuple of ints
    Shape of the forward input (batched like ``grad_out``), or its spatial size.

Returns
-------
ndarray
    Gradient of shape ``input_shape``.

Raises
------
ValueError, TypeError
    As :func:`max_pool{rank}d_backward`.
"""

_EXAMPLES = {
    "max_pool2d": """
Examples
--------
>>> import numpy as np, ferroconv as fc
>>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
>>> fc.max_pool2d(x, 2)
array([[[[ 5.,  7.],
         [13., 15.]]]], dtype=float32)
>>> values, indices = fc.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
>>> indices
array([[[[ 5,  7],
         [13, 15]]]])
>>> fc.max_pool2d(np.ones((8, 3, 32, 32)), 2).shape   # 2x2, stride 2: halves H and W
(8, 3, 16, 16)
""",
    "avg_pool2d": """
Examples
--------
>>> import numpy as np, ferroconv as fc
>>> x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
>>> fc.avg_pool2d(x, 2)
array([[[[ 2.5,  4.5],
         [10.5, 12.5]]]])
>>> ones = np.ones((1, 3, 3))                       # unbatched (C, H, W)
>>> fc.avg_pool2d(ones, 3, stride=1, padding=1)     # padded zeros count
array([[[0.44444444, 0.66666667, 0.44444444],
        [0.66666667, 1.        , 0.66666667],
        [0.44444444, 0.66666667, 0.44444444]]])
>>> fc.avg_pool2d(ones, 3, stride=1, padding=1, count_include_pad=False)
array([[[1., 1., 1.],
        [1., 1., 1.],
        [1., 1., 1.]]])
""",
    "max_unpool2d": """
Examples
--------
>>> import numpy as np, ferroconv as fc
>>> x = np.array([[[[1., 2.], [3., 4.]]]])
>>> values, indices = fc.max_pool2d(x, 2, return_indices=True)
>>> fc.max_unpool2d(values, indices, 2)
array([[[[0., 0.],
         [0., 4.]]]])
""",
}


def _doc(template: str, rank: int, name: str = "") -> Callable[[F], F]:
    return fill_doc(template, rank, _EXAMPLES.get(name, ""))


# ------------------------------------------------------------- max pooling


@_doc(_MAX_POOL_DOC, 1)
def max_pool1d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Pooled:
    return _pool.max_pool(1, "max_pool1d", x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@_doc(_MAX_POOL_DOC, 2, "max_pool2d")
def max_pool2d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Pooled:
    return _pool.max_pool(2, "max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@_doc(_MAX_POOL_DOC, 3)
def max_pool3d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Pooled:
    return _pool.max_pool(3, "max_pool3d", x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@_doc(_MAX_POOL_BACKWARD_DOC, 1)
def max_pool1d_backward(grad_out: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(1, "max_pool1d_backward", grad_out, indices, input_shape)


@_doc(_MAX_POOL_BACKWARD_DOC, 2)
def max_pool2d_backward(grad_out: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(2, "max_pool2d_backward", grad_out, indices, input_shape)


@_doc(_MAX_POOL_BACKWARD_DOC, 3)
def max_pool3d_backward(grad_out: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(3, "max_pool3d_backward", grad_out, indices, input_shape)


@_doc(_MAX_UNPOOL_DOC, 1)
def max_unpool1d(x: np.ndarray, indices: np.ndarray, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 output_size: Optional[IntOrTuple] = None) -> np.ndarray:
    return _pool.max_unpool(1, "max_unpool1d", x, indices, kernel_size, stride, padding, output_size)


@_doc(_MAX_UNPOOL_DOC, 2, "max_unpool2d")
def max_unpool2d(x: np.ndarray, indices: np.ndarray, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 output_size: Optional[IntOrTuple] = None) -> np.ndarray:
    return _pool.max_unpool(2, "max_unpool2d", x, indices, kernel_size, stride, padding, output_size)


@_doc(_MAX_UNPOOL_DOC, 3)
def max_unpool3d(x: np.ndarray, indices: np.ndarray, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 output_size: Optional[IntOrTuple] = None) -> np.ndarray:
    return _pool.max_unpool(3, "max_unpool3d", x, indices, kernel_size, stride, padding, output_size)


# --------------------------------------------------------- average pooling


@_doc(_AVG_POOL_DOC, 1)
def avg_pool1d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> np.ndarray:
    return _pool.avg_pool(1, "avg_pool1d", x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)


@_doc(_AVG_POOL_DOC, 2, "avg_pool2d")
def avg_pool2d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> np.ndarray:
    return _pool.avg_pool(2, "avg_pool2d", x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)


@_doc(_AVG_POOL_DOC, 3)
def avg_pool3d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: IntOrTuple = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> np.ndarray:
    return _pool.avg_pool(3, "avg_pool3d", x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                          divisor_override)


@_doc(_AVG_POOL_BACKWARD_DOC, 1)
def avg_pool1d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntOrTuple,
                        stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True, divisor_override: Optional[int] = None) -> np.ndarray:
    return _pool.avg_pool_backward(1, "avg_pool1d_backward", grad_out, input_shape, kernel_size, stride,
                                   padding, ceil_mode, count_include_pad, divisor_override)


@_doc(_AVG_POOL_BACKWARD_DOC, 2)
def avg_pool2d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntOrTuple,
                        stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True, divisor_override: Optional[int] = None) -> np.ndarray:
    return _pool.avg_pool_backward(2, "avg_pool2d_backward", grad_out, input_shape, kernel_size, stride,
                                   padding, ceil_mode, count_include_pad, divisor_override)


@_doc(_AVG_POOL_BACKWARD_DOC, 3)
def avg_pool3d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntOrTuple,
                        stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True, divisor_override: Optional[int] = None) -> np.ndarray:
    return _pool.avg_pool_backward(3, "avg_pool3d_backward", grad_out, input_shape, kernel_size, stride,
                                   padding, ceil_mode, count_include_pad, divisor_override)


# -------------------------------------------------------- adaptive pooling


@_doc(_ADAPTIVE_AVG_DOC, 1)
def adaptive_avg_pool1d(x: np.ndarray, output_size: OutputSize) -> np.ndarray:
    return _pool.adaptive_avg_pool(1, "adaptive_avg_pool1d", x, output_size)


@_doc(_ADAPTIVE_AVG_DOC, 2)
def adaptive_avg_pool2d(x: np.ndarray, output_size: OutputSize) -> np.ndarray:
    return _pool.adaptive_avg_pool(2, "adaptive_avg_pool2d", x, output_size)


@_doc(_ADAPTIVE_AVG_DOC, 3)
def adaptive_avg_pool3d(x: np.ndarray, output_size: OutputSize) -> np.ndarray:
    return _pool.adaptive_avg_pool(3, "adaptive_avg_pool3d", x, output_size)


@_doc(_ADAPTIVE_AVG_BACKWARD_DOC, 1)
def adaptive_avg_pool1d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.adaptive_avg_pool_backward(1, "adaptive_avg_pool1d_backward", grad_out, input_shape)


@_doc(_ADAPTIVE_AVG_BACKWARD_DOC, 2)
def adaptive_avg_pool2d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.adaptive_avg_pool_backward(2, "adaptive_avg_pool2d_backward", grad_out, input_shape)


@_doc(_ADAPTIVE_AVG_BACKWARD_DOC, 3)
def adaptive_avg_pool3d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.adaptive_avg_pool_backward(3, "adaptive_avg_pool3d_backward", grad_out, input_shape)


@_doc(_ADAPTIVE_MAX_DOC, 1)
def adaptive_max_pool1d(x: np.ndarray, output_size: OutputSize, return_indices: bool = False) -> Pooled:
    return _pool.adaptive_max_pool(1, "adaptive_max_pool1d", x, output_size, return_indices)


@_doc(_ADAPTIVE_MAX_DOC, 2)
def adaptive_max_pool2d(x: np.ndarray, output_size: OutputSize, return_indices: bool = False) -> Pooled:
    return _pool.adaptive_max_pool(2, "adaptive_max_pool2d", x, output_size, return_indices)


@_doc(_ADAPTIVE_MAX_DOC, 3)
def adaptive_max_pool3d(x: np.ndarray, output_size: OutputSize, return_indices: bool = False) -> Pooled:
    return _pool.adaptive_max_pool(3, "adaptive_max_pool3d", x, output_size, return_indices)


@_doc(_ADAPTIVE_MAX_BACKWARD_DOC, 1)
def adaptive_max_pool1d_backward(grad_out: np.ndarray, indices: np.ndarray,
                                 input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(1, "adaptive_max_pool1d_backward", grad_out, indices, input_shape)


@_doc(_ADAPTIVE_MAX_BACKWARD_DOC, 2)
def adaptive_max_pool2d_backward(grad_out: np.ndarray, indices: np.ndarray,
                                 input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(2, "adaptive_max_pool2d_backward", grad_out, indices, input_shape)


@_doc(_ADAPTIVE_MAX_BACKWARD_DOC, 3)
def adaptive_max_pool3d_backward(grad_out: np.ndarray, indices: np.ndarray,
                                 input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(3, "adaptive_max_pool3d_backward", grad_out, indices, input_shape)


# ---------------------------------------------------------- global pooling


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    """Mean over all spatial axes of a batched input, keeping them as size-1 axes
    (adaptive average pooling to size 1).

    Parameters
    ----------
    x : ndarray
        ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``, float32 or float64.
        Only batched input: the number of spatial axes is read from ``x.ndim``.

    Returns
    -------
    ndarray
        ``(N, C, 1, ...)`` with one unit axis per spatial axis.

    Raises
    ------
    ValueError
        ``x`` with fewer than 3 or more than 5 axes, or an empty spatial size.
    TypeError
        Integer or boolean input.

    Examples
    --------
    >>> import numpy as np, ferroconv as fc
    >>> fc.global_avg_pool(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[[[1.5]],
    <BLANKLINE>
            [[5.5]]]])
    """
    op = "global_avg_pool"
    array, rank = _pool.global_rank(op, x)
    out = with_op(op, _native.adaptive_avg_pool_forward, to_5d(array, rank), dims3((1,) * rank, 1), rank)
    return from_5d(out, rank)


def global_max_pool(x: np.ndarray, return_indices: bool = False) -> Pooled:
    """Max over all spatial axes of a batched input, keeping them as size-1 axes
    (adaptive max pooling to size 1).

    Parameters
    ----------
    x : ndarray
        ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``, float32 or float64.
    return_indices : bool
        Also return the flat index of each maximum within its ``(n, c)`` plane
        (int64; usable with ``adaptive_max_pool{1,2,3}d_backward``).

    Returns
    -------
    ndarray or (ndarray, ndarray)
        ``(N, C, 1, ...)`` values, and indices when ``return_indices``.

    Raises
    ------
    ValueError, TypeError
        As :func:`global_avg_pool`.
    """
    op = "global_max_pool"
    array, rank = _pool.global_rank(op, x)
    with _pool.prefixed(op):
        with_indices = _pool.flag(return_indices, "return_indices")
    values, indices = with_op(op, _native.adaptive_max_pool_forward, to_5d(array, rank),
                              dims3((1,) * rank, 1), rank, with_indices)
    return (from_5d(values, rank), from_5d(indices, rank)) if with_indices else from_5d(values, rank)


# ---------------------------------------------------------------- geometry


def pool_output_shape(input_shape: IntOrTuple, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                      padding: IntOrTuple = 0, dilation: IntOrTuple = 1,
                      ceil_mode: bool = False) -> tuple[int, ...]:
    """Spatial output size of max or average pooling:
    ``floor_or_ceil((S + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1``,
    and in ceil mode one less where the last window would start in the right
    padding (PyTorch's rule).

    Parameters
    ----------
    input_shape : int or tuple of ints
        Spatial input size (1 to 3 axes; no batch or channel axes).
    kernel_size, stride, padding, dilation : int or tuple of ints
        As :func:`max_pool2d` (``stride`` defaults to ``kernel_size``).
    ceil_mode : bool

    Returns
    -------
    tuple of ints

    Raises
    ------
    ValueError
        An argument out of range (e.g. padding above ``kernel_size // 2``) or an
        empty output.

    Examples
    --------
    >>> import ferroconv as fc
    >>> fc.pool_output_shape((32, 32), 2)        # 2x2 max pooling, stride 2
    (16, 16)
    >>> fc.pool_output_shape((112, 112), 3, stride=2, padding=1)
    (56, 56)
    >>> fc.pool_output_shape(5, 2, ceil_mode=True)
    (3,)
    """
    return _pool.pool_output_shape(input_shape, kernel_size, stride, padding, dilation, ceil_mode)
