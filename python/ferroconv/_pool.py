"""Pooling of any rank: the arrays of a call checked and batched, then one
native call with the call's :class:`PoolSpec`. The public pooling functions,
the ``nn`` layers and the dask layer all call these; their errors are plain
messages, named by the caller.
"""

from __future__ import annotations

from typing import Optional, Union

import numpy as np

from . import _ferroconv as _native
from ._args import (
    IntOrTuple,
    batched,
    float_array,
    int64_array,
    int_list,
    max_array,
    same_dtype,
    unbatched,
)
from ._spec import PoolSpec, adaptive_size, adaptive_spec, unpool_spec

Pooled = Union[np.ndarray, tuple[np.ndarray, np.ndarray]]


# Why a function refuses integer arrays; ``MAX``: it takes them (max pooling).
MAX = ""
AVERAGE = "average pooling of integers is not defined here"
LP = "Lp pooling of integers is not defined here"
GRADIENT = "a gradient is a float array; integer max pooling has no backward here"


def pool_array(value: object, name: str, integers: str) -> np.ndarray:
    """``value`` as a float array, or an integer one too where ``integers`` is
    :data:`MAX` (else it says why integers are refused)."""
    return float_array(value, name, integers) if integers else max_array(value, name)


def pool_input(rank: int, x: object, integers: str, name: str = "x") -> tuple[np.ndarray, bool]:
    """``x`` as a batched array (see :func:`pool_array`) and whether it had a
    batch axis; an input without channels is refused, as PyTorch refuses it."""
    array, was_batched = batched(pool_array(x, name, integers), rank, name)
    _channels(array, name)
    return array, was_batched


def _channels(array: np.ndarray, name: str) -> None:
    if array.shape[1] == 0:
        raise ValueError(f"{name} has no channels (shape {array.shape}): pooling needs at least one")


def values_and_indices(rank: int, values: object, indices: object,
                       name: str = "grad_out") -> tuple[np.ndarray, np.ndarray, bool]:
    """``grad_out`` (a float gradient) or ``x`` (unpooled values: floats or
    integers) and ``indices`` of the same shape, with a batch axis."""
    array = pool_array(values, name, GRADIENT if name == "grad_out" else MAX)
    index = int64_array(indices, "indices")
    if index.shape != array.shape:
        raise ValueError(f"indices has shape {index.shape} but {name} has shape {array.shape}")
    array, was_batched = batched(array, rank, name)
    return array, index if was_batched else index[np.newaxis], was_batched


def input_shape(value: object, grad: np.ndarray, was_batched: bool, rank: int) -> tuple[int, ...]:
    """The batched input shape of a backward call. ``input_shape`` is the forward
    input's shape (batched or not, like ``grad_out``) or just its spatial size;
    ``grad`` is ``grad_out`` with its batch axis."""
    items = int_list(value, "input_shape")
    user_ndim = rank + 2 if was_batched else rank + 1
    if len(items) == user_ndim:
        return tuple(items if was_batched else [1] + items)
    if len(items) == rank:
        return (int(grad.shape[0]), int(grad.shape[1]), *items)
    raise ValueError(
        f"input_shape must be the shape of the forward input ({user_ndim} entries, like grad_out) "
        f"or its spatial size ({rank} entries), got {tuple(items)!r}"
    )


def pooled(values: np.ndarray, indices: object, was_batched: bool, return_indices: bool) -> Pooled:
    """The values, and the indices when asked, without the batch axis of unbatched input."""
    out = unbatched(values, was_batched)
    if not return_indices:
        return out
    assert isinstance(indices, np.ndarray)
    return out, unbatched(indices, was_batched)


def max_pool(rank: int, x: object, spec: PoolSpec, return_indices: bool) -> Pooled:
    xb, was_batched = pool_input(rank, x, MAX)
    values, indices = _native.max_pool(xb, spec, return_indices)
    return pooled(values, indices, was_batched, return_indices)


def max_pool_backward(rank: int, grad_out: object, indices: object, shape: object) -> np.ndarray:
    grad, index, was_batched = values_and_indices(rank, grad_out, indices)
    full = input_shape(shape, grad, was_batched, rank)
    return unbatched(_native.max_pool_backward(grad, index, full), was_batched)


def max_unpool(rank: int, x: object, indices: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
               padding: IntOrTuple, output_size: object) -> np.ndarray:
    values, index, was_batched = values_and_indices(rank, x, indices, name="x")
    spec = unpool_spec(rank, kernel_size, stride, padding, output_size, rank + 2 if was_batched else rank + 1)
    return unbatched(_native.max_unpool(values, index, spec), was_batched)


def max_unpool_backward(rank: int, grad_out: object, indices: object) -> np.ndarray:
    """A gather of ``grad_out`` at the indices: integer arrays too, as unpooling."""
    grad = pool_array(grad_out, "grad_out", MAX)
    index = int64_array(indices, "indices")
    if grad.ndim != index.ndim:
        raise ValueError(f"indices must have as many axes as grad_out ({grad.ndim}), got shape {index.shape}")
    grad, was_batched = batched(grad, rank, "grad_out")
    index = index if was_batched else index[np.newaxis]
    return unbatched(_native.max_unpool_backward(grad, index, rank), was_batched)


def avg_pool(rank: int, x: object, spec: PoolSpec) -> np.ndarray:
    xb, was_batched = pool_input(rank, x, AVERAGE)
    return unbatched(_native.avg_pool(xb, spec), was_batched)


def avg_pool_backward(rank: int, grad_out: object, shape: object, spec: PoolSpec) -> np.ndarray:
    grad, was_batched = pool_input(rank, grad_out, AVERAGE, "grad_out")
    full = input_shape(shape, grad, was_batched, rank)
    return unbatched(_native.avg_pool_backward(grad, full, spec), was_batched)


def lp_pool(rank: int, x: object, spec: PoolSpec, p: float) -> np.ndarray:
    """Lp pooling; the infinite norms are PyTorch's max (``p = inf``) and min
    (``p = -inf``) of ``|x|`` over each window."""
    xb, was_batched = pool_input(rank, x, LP)
    if np.isinf(p):
        sign = 1 if p > 0 else -1
        values, _ = _native.max_pool(sign * np.abs(xb), spec, False)
        return unbatched(sign * values, was_batched)
    return unbatched(_native.lp_pool(xb, spec, p), was_batched)


def lp_pool_backward(rank: int, grad_out: object, x: object, spec: PoolSpec, p: float) -> np.ndarray:
    """Gradient of :func:`lp_pool` with respect to ``x``."""
    grad, was_batched = pool_input(rank, grad_out, LP, "grad_out")
    xb, x_batched = pool_input(rank, x, LP)
    same_dtype(grad, "grad_out", x=xb)
    if x_batched != was_batched or grad.shape[:2] != xb.shape[:2]:
        raise ValueError(
            f"grad_out has shape {unbatched(grad, was_batched).shape} but x has shape "
            f"{unbatched(xb, x_batched).shape}: they must agree in batch and channels"
        )
    if np.isinf(p):
        sign = 1 if p > 0 else -1
        _, indices = _native.max_pool(sign * np.abs(xb), spec, True)
        assert indices is not None
        if indices.shape != grad.shape:
            raise ValueError(f"grad_out has shape {grad.shape[2:]} spatially but the pooling gives "
                             f"{indices.shape[2:]}")
        spread = _native.max_pool_backward(grad, indices, xb.shape)
        return unbatched(spread * np.sign(xb), was_batched)
    return unbatched(_native.lp_pool_backward(grad, xb, spec, p), was_batched)


def global_lp_pool(x: object, p: float, keepdims: bool = True) -> np.ndarray:
    """Lp pooling with one window over every whole plane."""
    array, rank = global_input(x, LP)
    spec = PoolSpec(rank=rank, kernel_size=tuple(int(s) for s in array.shape[2:]))
    return _squeezed(lp_pool(rank, array, spec, p), keepdims)


def adaptive_avg_pool(rank: int, x: object, output_size: object) -> np.ndarray:
    xb, was_batched = pool_input(rank, x, AVERAGE)
    spec = adaptive_spec(rank, adaptive_size(output_size, rank, tuple(int(s) for s in xb.shape[2:])))
    return unbatched(_native.adaptive_avg_pool(xb, spec), was_batched)


def adaptive_avg_pool_backward(rank: int, grad_out: object, shape: object) -> np.ndarray:
    grad, was_batched = pool_input(rank, grad_out, AVERAGE, "grad_out")
    full = input_shape(shape, grad, was_batched, rank)
    return unbatched(_native.adaptive_avg_pool_backward(grad, full), was_batched)


def adaptive_max_pool(rank: int, x: object, output_size: object, return_indices: bool) -> Pooled:
    xb, was_batched = pool_input(rank, x, MAX)
    spec = adaptive_spec(rank, adaptive_size(output_size, rank, tuple(int(s) for s in xb.shape[2:])))
    values, indices = _native.adaptive_max_pool(xb, spec, return_indices)
    return pooled(values, indices, was_batched, return_indices)


def global_input(x: object, integers: str) -> tuple[np.ndarray, int]:
    """``x (N, C, *S)`` with 1 to 3 spatial axes (see :func:`pool_array`), and
    that number of axes."""
    array = pool_array(x, "x", integers)
    if not 3 <= array.ndim <= 5:
        raise ValueError(
            "x must be batched with 1 to 3 spatial axes, (N, C, L), (N, C, H, W) or (N, C, D, H, W), "
            f"got shape {array.shape}"
        )
    _channels(array, "x")
    return array, array.ndim - 2


def _squeezed(array: np.ndarray, keepdims: bool) -> np.ndarray:
    """``(N, C, 1, ...)`` as ``(N, C)`` unless ``keepdims``."""
    return array if keepdims else array.reshape(array.shape[:2])


def global_avg_pool(x: object, keepdims: bool = True) -> np.ndarray:
    """Adaptive average pooling of every spatial axis to 1."""
    array, rank = global_input(x, AVERAGE)
    out: np.ndarray = _native.adaptive_avg_pool(array, adaptive_spec(rank, (1,) * rank))
    return _squeezed(out, keepdims)


def global_max_pool(x: object, return_indices: bool, keepdims: bool = True) -> Pooled:
    """Adaptive max pooling of every spatial axis to 1."""
    array, rank = global_input(x, MAX)
    values, indices = _native.adaptive_max_pool(array, adaptive_spec(rank, (1,) * rank), return_indices)
    if not return_indices:
        return _squeezed(values, keepdims)
    assert isinstance(indices, np.ndarray)
    return _squeezed(values, keepdims), _squeezed(indices, keepdims)


def output_shape(spatial: tuple[int, ...], spec: PoolSpec) -> tuple[int, ...]:
    """The spatial output size of max or average pooling ``spec``."""
    return tuple(int(v) for v in _native.pool_output_shape(spatial, spec))
