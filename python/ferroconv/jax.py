"""ferroconv inside JAX: convolution and pooling as JAX functions with gradients.

Each operator is a ``jax.custom_vjp`` whose forward and backward run ferroconv
through ``jax.pure_callback``: the results are correct under ``jax.jit``,
``jax.grad``, ``jax.value_and_grad`` and ``jax.vmap`` (mapped calls run one
after another). Arrays are channels-first, as in ``ferroconv.functional`` and
PyTorch (``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; weights
``(C_out, C_in / groups, *kernel)``). float32, and float64 with
``jax.config.update("jax_enable_x64", True)``; bfloat16 and float16 too.

This module imports ``jax``; ``import ferroconv`` never does. Install with the
``jax`` extra.

>>> import jax, jax.numpy as jnp, ferroconv.jax as fcj
>>> x, w = jnp.ones((1, 3, 8, 8)), jnp.ones((4, 3, 3, 3))
>>> jax.jit(lambda x, w: fcj.conv2d(x, w, padding=1))(x, w).shape
(1, 4, 8, 8)
>>> float(jax.grad(lambda w: fcj.conv2d(x, w).sum())(w)[0, 0, 0, 0])
36.0
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Callable, Optional, Union, cast

import jax
import jax.numpy as jnp
import numpy as np

from . import _conv as _conv_calls
from . import _pool
from ._args import int_tuple
from ._spec import adaptive_size, conv_spec, pool_spec, transpose_spec

__all__ = [
    "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
]

IntArg = Union[int, Sequence[int]]
Ints = tuple[int, ...]


def _ints(value: Any, rank: int, name: str) -> Ints:
    """An int or a sequence (one item means every axis) as ``rank`` ints."""
    return int_tuple(value, rank, name)


def _struct(shape: Any, dtype: Any) -> Any:
    """``jax.ShapeDtypeStruct`` (untyped in JAX's stubs): a callback's result type."""
    return cast(Callable[..., Any], jax.ShapeDtypeStruct)(tuple(shape), dtype)


def _shape(a: Any) -> Any:
    return _struct(tuple(a.shape), a.dtype)


def _callback(fn: Callable[..., Any], result: Any, *args: Any) -> Any:
    return jax.pure_callback(fn, result, *args, vmap_method="sequential")


def _check(a: Any, name: str) -> Any:
    array = jnp.asarray(a) if not isinstance(a, jax.Array) else a
    if not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(f"{name} must have a floating dtype (float32, float64, float16, bfloat16), "
                        f"got {array.dtype}")
    return array


def _with_batch(rank: int, a: Any, name: str = "x") -> tuple[Any, bool]:
    if a.ndim == rank + 2:
        return a, True
    if a.ndim == rank + 1:
        return a[None], False
    raise ValueError(f"{name} must be {rank + 2}-D (N, C, *spatial) or {rank + 1}-D (C, *spatial), "
                     f"got shape {tuple(a.shape)}")


# ------------------------------------------------------------- convolution


@functools.lru_cache(maxsize=None)
def _conv_op(rank: int, stride: Ints, padding: tuple[tuple[int, int], ...], dilation: Ints, groups: int,
             padding_mode: str, transposed: bool, output_padding: Ints, has_bias: bool) -> Callable[..., Any]:
    """One custom_vjp function ``(x, w[, b]) -> y`` per static configuration."""
    sym = [p[0] for p in padding]
    # The spec is checked once, here (at trace time); the callbacks only run it.
    spec = (transpose_spec(rank, stride, sym, output_padding, groups, dilation) if transposed
            else conv_spec(rank, stride, padding, dilation, groups, padding_mode))

    def arrays(x: Any, w: Any, b: Any = None, g: Any = None) -> _conv_calls.ConvArrays:
        # The callbacks receive CPU jax.Arrays: np.asarray is their zero-copy view.
        return _conv_calls.conv_arrays(rank, np.asarray(x), np.asarray(w), None if b is None else np.asarray(b),
                                 None if g is None else np.asarray(g), backward=g is not None,
                                 transposed=transposed)

    def forward_np(x: Any, w: Any, *b: Any) -> np.ndarray:
        return _conv_calls.forward(arrays(x, w, b[0] if b else None), spec)

    def backward_np(g: Any, x: Any, w: Any) -> tuple[np.ndarray, ...]:
        grads = _conv_calls.backward(arrays(x, w, g=g), spec, (True, True, has_bias))
        return tuple(a for a in grads if a is not None)

    def out_shape(x: Any, w: Any) -> Any:
        channels = w.shape[1] * groups if transposed else w.shape[0]
        sizes = _conv_calls.output_shape(tuple(x.shape[x.ndim - rank:]), tuple(w.shape[2:]), spec)
        return _struct((*x.shape[:x.ndim - rank - 1], channels, *sizes), x.dtype)

    def call(x: Any, w: Any, *b: Any) -> Any:
        _check_conv(rank, x, w, b[0] if b else None, groups, transposed)
        return _callback(forward_np, out_shape(x, w), x, w, *b)  # out_shape checks the fit

    def fwd(x: Any, w: Any, *b: Any) -> tuple[Any, tuple[Any, Any]]:
        return call(x, w, *b), (x, w)

    def bwd(res: tuple[Any, Any], g: Any) -> tuple[Any, ...]:
        x, w = res
        results = [_shape(x), _shape(w)]
        if has_bias:
            results.append(_struct((out_shape(x, w).shape[x.ndim - rank - 1],), x.dtype))
        return tuple(_callback(backward_np, tuple(results), g, x, w))

    if has_bias:
        def op(x: Any, w: Any, b: Any) -> Any:
            return call(x, w, b)
    else:
        def op(x: Any, w: Any) -> Any:  # type: ignore[misc]
            return call(x, w)
    custom = jax.custom_vjp(op)
    custom.defvjp(fwd, bwd)
    return custom


def _check_conv(rank: int, x: Any, w: Any, b: Any, groups: int, transposed: bool) -> None:
    """The shape errors ferroconv would raise, raised before the callback (where
    JAX would wrap them)."""
    _with_batch(rank, x)
    if w.ndim != rank + 2:
        raise ValueError(f"weight must be {rank + 2}-D, got shape {tuple(w.shape)}")
    channels = x.shape[x.ndim - rank - 1]
    expected = w.shape[0] if transposed else w.shape[1] * groups
    if groups < 1 or channels != expected or (not transposed and w.shape[0] % groups):
        raise ValueError(f"x has {channels} channels but weight of shape {tuple(w.shape)} with groups={groups} "
                         f"takes {expected}")
    out_channels = w.shape[1] * groups if transposed else w.shape[0]
    if b is not None and tuple(b.shape) != (out_channels,):
        raise ValueError(f"bias must have shape ({out_channels},), got {tuple(b.shape)}")
    if x.dtype != w.dtype or (b is not None and b.dtype != x.dtype):
        raise TypeError(f"x, weight and bias must share a dtype, got {x.dtype}, {w.dtype}"
                        + ("" if b is None else f", {b.dtype}"))


def _conv_padding(padding: Any, rank: int, kernel: Sequence[int], stride: Ints,
                  dilation: Ints) -> tuple[tuple[int, int], ...]:
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * rank
        if padding != "same":
            raise ValueError(f"padding must be 'valid', 'same', an int or a tuple, got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        totals = [d * (int(k) - 1) for k, d in zip(kernel, dilation)]
        return tuple((t // 2, t - t // 2) for t in totals)
    if isinstance(padding, (list, tuple)) and padding and all(isinstance(p, (list, tuple)) for p in padding):
        if len(padding) != rank:
            raise ValueError(f"padding must have one (lo, hi) pair per spatial axis ({rank}), got {padding!r}")
        return tuple((int(lo), int(hi)) for lo, hi in padding)
    return tuple((p, p) for p in _ints(padding, rank, "padding"))


def _conv(rank: int, x: Any, weight: Any, bias: Any, stride: IntArg, padding: Any, dilation: IntArg,
          groups: int, padding_mode: str) -> Any:
    x, weight = _check(x, "x"), _check(weight, "weight")
    strides, dilations = _ints(stride, rank, "stride"), _ints(dilation, rank, "dilation")
    pads = _conv_padding(padding, rank, weight.shape[2:], strides, dilations)
    op = _conv_op(rank, strides, pads, dilations, int(groups), str(padding_mode), False, (0,) * rank,
                  bias is not None)
    return op(x, weight) if bias is None else op(x, weight, _check(bias, "bias"))


def _transpose(rank: int, x: Any, weight: Any, bias: Any, stride: IntArg, padding: IntArg,
               output_padding: IntArg, groups: int, dilation: IntArg) -> Any:
    x, weight = _check(x, "x"), _check(weight, "weight")
    pads = tuple((p, p) for p in _ints(padding, rank, "padding"))
    op = _conv_op(rank, _ints(stride, rank, "stride"), pads, _ints(dilation, rank, "dilation"), int(groups),
                  "zeros", True, _ints(output_padding, rank, "output_padding"), bias is not None)
    return op(x, weight) if bias is None else op(x, weight, _check(bias, "bias"))


def conv1d(x: Any, weight: Any, bias: Any = None, stride: IntArg = 1, padding: Any = 0, dilation: IntArg = 1,
           groups: int = 1, padding_mode: str = "zeros") -> Any:
    """:func:`ferroconv.conv1d` as a differentiable JAX function."""
    return _conv(1, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv2d(x: Any, weight: Any, bias: Any = None, stride: IntArg = 1, padding: Any = 0, dilation: IntArg = 1,
           groups: int = 1, padding_mode: str = "zeros") -> Any:
    """:func:`ferroconv.conv2d` as a differentiable JAX function."""
    return _conv(2, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv3d(x: Any, weight: Any, bias: Any = None, stride: IntArg = 1, padding: Any = 0, dilation: IntArg = 1,
           groups: int = 1, padding_mode: str = "zeros") -> Any:
    """:func:`ferroconv.conv3d` as a differentiable JAX function."""
    return _conv(3, x, weight, bias, stride, padding, dilation, groups, padding_mode)


def conv_transpose1d(x: Any, weight: Any, bias: Any = None, stride: IntArg = 1, padding: IntArg = 0,
                     output_padding: IntArg = 0, groups: int = 1, dilation: IntArg = 1) -> Any:
    """:func:`ferroconv.conv_transpose1d` as a differentiable JAX function."""
    return _transpose(1, x, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: IntArg = 1, padding: IntArg = 0,
                     output_padding: IntArg = 0, groups: int = 1, dilation: IntArg = 1) -> Any:
    """:func:`ferroconv.conv_transpose2d` as a differentiable JAX function."""
    return _transpose(2, x, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose3d(x: Any, weight: Any, bias: Any = None, stride: IntArg = 1, padding: IntArg = 0,
                     output_padding: IntArg = 0, groups: int = 1, dilation: IntArg = 1) -> Any:
    """:func:`ferroconv.conv_transpose3d` as a differentiable JAX function."""
    return _transpose(3, x, weight, bias, stride, padding, output_padding, groups, dilation)


# ----------------------------------------------------------------- pooling


def _index_dtype() -> Any:
    """JAX's default integer: int64 with ``jax_enable_x64``, else int32."""
    return jnp.int64 if cast(Callable[[str], bool], jax.config.read)("jax_enable_x64") else jnp.int32


@functools.lru_cache(maxsize=None)
def _pool_op(rank: int, kind: str, params: tuple[Any, ...], in_shape: Ints) -> Callable[..., Any]:
    """One custom_vjp pooling function ``x -> y`` per configuration and input shape.
    ``kind``: ``"max"`` and ``"avg"`` (params: PyTorch's arguments, per axis),
    ``"adaptive_max"`` and ``"adaptive_avg"`` (params: the output size). Max
    pooling keeps its indices as the residual; its gradient is a scatter-add there."""
    # The spec of windowed pooling is checked once, here (at trace time).
    spec = (pool_spec(rank, *params) if kind == "max"
            else pool_spec(rank, params[0], params[1], params[2], 1, *params[3:]) if kind == "avg" else None)
    lead = in_shape[:len(in_shape) - rank]
    result = (*lead, *(params if spec is None else _pool.output_shape(in_shape[len(lead):], spec)))
    index_dtype = _index_dtype()

    def max_np(x: Any) -> tuple[np.ndarray, np.ndarray]:
        if spec is not None:
            values, indices = _pool.max_pool(rank, np.asarray(x), spec, True)
        else:
            values, indices = _pool.adaptive_max_pool(rank, np.asarray(x), params, True)
        return values, indices.astype(index_dtype, copy=False)

    def avg_np(x: Any) -> np.ndarray:
        if spec is not None:
            return _pool.avg_pool(rank, np.asarray(x), spec)
        return _pool.adaptive_avg_pool(rank, np.asarray(x), params)

    def max_backward_np(g: Any, indices: Any) -> np.ndarray:
        return _pool.max_pool_backward(rank, np.asarray(g), np.asarray(indices).astype(np.int64, copy=False),
                                       in_shape)

    def avg_backward_np(g: Any) -> np.ndarray:
        if spec is not None:
            return _pool.avg_pool_backward(rank, np.asarray(g), in_shape, spec)
        return _pool.adaptive_avg_pool_backward(rank, np.asarray(g), in_shape)

    def forward(x: Any) -> tuple[Any, Any]:
        values = _struct(result, x.dtype)
        if kind.endswith("max"):
            out, indices = _callback(max_np, (values, _struct(result, index_dtype)), x)
            return out, indices
        return _callback(avg_np, values, x), None

    def backward(indices: Any, g: Any) -> tuple[Any]:
        grad = _struct(in_shape, g.dtype)
        if indices is not None:
            return (_callback(max_backward_np, grad, g, indices),)
        return (_callback(avg_backward_np, grad, g),)

    @jax.custom_vjp
    def op(x: Any) -> Any:
        return forward(x)[0]

    op.defvjp(lambda x: forward(x), backward)
    return op


def _window(rank: int, x: Any, kernel_size: IntArg, stride: Optional[IntArg], padding: IntArg) -> tuple[Ints, ...]:
    _with_batch(rank, x)
    kernel = _ints(kernel_size, rank, "kernel_size")
    strides = kernel if stride is None else _ints(stride, rank, "stride")
    return kernel, strides, _ints(padding, rank, "padding")


def _max_pool(rank: int, x: Any, kernel_size: IntArg, stride: Optional[IntArg], padding: IntArg,
              dilation: IntArg, ceil_mode: bool) -> Any:
    x = _check(x, "x")
    kernel, strides, pads = _window(rank, x, kernel_size, stride, padding)
    params = (kernel, strides, pads, _ints(dilation, rank, "dilation"), bool(ceil_mode))
    return _pool_op(rank, "max", params, tuple(x.shape))(x)


def _avg_pool(rank: int, x: Any, kernel_size: IntArg, stride: Optional[IntArg], padding: IntArg,
              ceil_mode: bool, count_include_pad: bool, divisor_override: Optional[int]) -> Any:
    x = _check(x, "x")
    kernel, strides, pads = _window(rank, x, kernel_size, stride, padding)
    params = (kernel, strides, pads, bool(ceil_mode), bool(count_include_pad),
              None if divisor_override is None else int(divisor_override))
    return _pool_op(rank, "avg", params, tuple(x.shape))(x)


def _adaptive(rank: int, kind: str, x: Any, output_size: Any) -> Any:
    x = _check(x, "x")
    _with_batch(rank, x)
    size = adaptive_size(output_size, rank, tuple(int(v) for v in x.shape[x.ndim - rank:]))
    return _pool_op(rank, kind, size, tuple(x.shape))(x)


def max_pool1d(x: Any, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               dilation: IntArg = 1, ceil_mode: bool = False) -> Any:
    """:func:`ferroconv.max_pool1d` as a differentiable JAX function (values only)."""
    return _max_pool(1, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool2d(x: Any, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               dilation: IntArg = 1, ceil_mode: bool = False) -> Any:
    """:func:`ferroconv.max_pool2d` as a differentiable JAX function (values only)."""
    return _max_pool(2, x, kernel_size, stride, padding, dilation, ceil_mode)


def max_pool3d(x: Any, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               dilation: IntArg = 1, ceil_mode: bool = False) -> Any:
    """:func:`ferroconv.max_pool3d` as a differentiable JAX function (values only)."""
    return _max_pool(3, x, kernel_size, stride, padding, dilation, ceil_mode)


def avg_pool1d(x: Any, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Any:
    """:func:`ferroconv.avg_pool1d` as a differentiable JAX function."""
    return _avg_pool(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(x: Any, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Any:
    """:func:`ferroconv.avg_pool2d` as a differentiable JAX function."""
    return _avg_pool(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool3d(x: Any, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Any:
    """:func:`ferroconv.avg_pool3d` as a differentiable JAX function."""
    return _avg_pool(3, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def adaptive_avg_pool1d(x: Any, output_size: Any) -> Any:
    """:func:`ferroconv.adaptive_avg_pool1d` as a differentiable JAX function."""
    return _adaptive(1, "adaptive_avg", x, output_size)


def adaptive_avg_pool2d(x: Any, output_size: Any) -> Any:
    """:func:`ferroconv.adaptive_avg_pool2d` as a differentiable JAX function."""
    return _adaptive(2, "adaptive_avg", x, output_size)


def adaptive_avg_pool3d(x: Any, output_size: Any) -> Any:
    """:func:`ferroconv.adaptive_avg_pool3d` as a differentiable JAX function."""
    return _adaptive(3, "adaptive_avg", x, output_size)


def adaptive_max_pool1d(x: Any, output_size: Any) -> Any:
    """:func:`ferroconv.adaptive_max_pool1d` as a differentiable JAX function (values only)."""
    return _adaptive(1, "adaptive_max", x, output_size)


def adaptive_max_pool2d(x: Any, output_size: Any) -> Any:
    """:func:`ferroconv.adaptive_max_pool2d` as a differentiable JAX function (values only)."""
    return _adaptive(2, "adaptive_max", x, output_size)


def adaptive_max_pool3d(x: Any, output_size: Any) -> Any:
    """:func:`ferroconv.adaptive_max_pool3d` as a differentiable JAX function (values only)."""
    return _adaptive(3, "adaptive_max", x, output_size)
