"""ferroconv inside PyTorch: autograd-aware operators, drop-in modules and
``convert(model)``.

Every convolution, transposed convolution and pooling operator of ferroconv is
registered as a PyTorch custom operator (``torch.ops.ferroconv.*``, through
``torch.library.custom_op``) with its backward (``register_autograd``) and a
fake implementation, so it runs in eager mode, under ``torch.compile`` without a
graph break, under ``torch.autograd.gradcheck`` and where ``torch.func`` allows.
The functions here take ``torch.nn.functional``'s arguments; the modules are
subclasses of ``torch.nn``'s with the same constructors and ``state_dict`` keys.

Tensors are handed to the Rust core as zero-copy NumPy views (CPU tensors of any
strides) and the results come back without a copy. Supported dtypes: float32,
float64, float16 and bfloat16 (bfloat16 needs ``ml_dtypes``).

This module imports ``torch``; ``import ferroconv`` never does. Install with the
``torch`` extra.

>>> import torch, ferroconv.torch as fct
>>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2))
>>> report = fct.convert(model)
>>> report.replaced
['0', '2']
>>> model(torch.ones(1, 3, 8, 8)).shape
torch.Size([1, 8, 3, 3])
>>> _ = fct.revert(model)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Optional, Union

import os
import sys
import warnings

# PyTorch's OpenMP workers spin-wait after each of its parallel operators (libgomp:
# up to 300000 spins), holding cores that ferroconv's threads need for the next
# layer: a converted model ran 2.6x slower than with short spins on 2 cores. The
# spin count is read once, when torch loads libgomp, so it can be shortened only
# here, and only if torch is not loaded yet (an explicit setting is kept).
# Shorter spins did not slow native PyTorch in the same measurement (docs/torch.md).
_SPIN_ENV = {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "1"}
_SPIN_SET_HERE = "torch" not in sys.modules
if _SPIN_SET_HERE:
    for _key, _value in _SPIN_ENV.items():
        os.environ.setdefault(_key, _value)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import Tensor  # noqa: E402

from . import _pool
from . import functional as _fc
from ._args import torch_bfloat16, int_tuple
from ._spec import adaptive_size

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    "convert", "revert", "ConversionReport",
]

IntArg = Union[int, Sequence[int]]
_DTYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)


# ------------------------------------------------------- tensors <-> arrays


def _array(t: Tensor) -> np.ndarray:
    """A zero-copy NumPy view of a CPU tensor (bfloat16 through a bit view)."""
    t = t.detach()
    return torch_bfloat16(t) if t.dtype == torch.bfloat16 else t.numpy()


def _tensor(a: np.ndarray) -> Tensor:
    """A NumPy result as a tensor without a copy."""
    if a.dtype.name == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _opt_array(t: Optional[Tensor]) -> Optional[np.ndarray]:
    return None if t is None else _array(t)


def _check(t: Any, name: str) -> None:
    """What ferroconv cannot compute on, named before the call reaches the operator."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if t.device.type not in ("cpu", "meta"):
        raise ValueError(f"{name} is on {t.device}: ferroconv computes on the CPU; move it with .cpu() "
                         "(or ferroconv.torch.revert(model) to run the layers natively there)")
    if t.dtype not in _DTYPES:
        raise TypeError(f"{name} has dtype {t.dtype}; ferroconv takes float32, float64, float16 or bfloat16")


def _ints(value: Any, rank: int, name: str) -> list[int]:
    """An int or a sequence (one item means every axis, as PyTorch) as ``rank`` ints."""
    return list(int_tuple(value, rank, name))


def _pairs(flat: Sequence[int]) -> tuple[tuple[int, int], ...]:
    return tuple((int(flat[2 * i]), int(flat[2 * i + 1])) for i in range(len(flat) // 2))


# ------------------------------------------------------------- convolution


def _conv_size(size: Any, k: int, s: int, lo: int, hi: int, d: int) -> Any:
    return (size + lo + hi - d * (k - 1) - 1) // s + 1


def _transpose_size(size: Any, k: int, s: int, p: int, op: int, d: int) -> Any:
    return (size - 1) * s - 2 * p + d * (k - 1) + op + 1


def _conv_shape(x: Tensor, weight: Tensor, stride: list[int], padding: list[int], dilation: list[int],
                transposed: bool, output_padding: list[int], groups: int) -> list[Any]:
    rank = weight.dim() - 2
    kernel = weight.shape[2:]
    spatial = x.shape[x.dim() - rank:]
    if transposed:
        out_c = weight.shape[1] * groups
        sizes = [_transpose_size(spatial[i], kernel[i], stride[i], padding[2 * i], output_padding[i], dilation[i])
                 for i in range(rank)]
    else:
        out_c = weight.shape[0]
        sizes = [_conv_size(spatial[i], kernel[i], stride[i], padding[2 * i], padding[2 * i + 1], dilation[i])
                 for i in range(rank)]
    return [*x.shape[:x.dim() - rank - 1], out_c, *sizes]


@torch.library.custom_op("ferroconv::convolution", mutates_args=())
def _convolution(x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: list[int], padding: list[int],
                 dilation: list[int], transposed: bool, output_padding: list[int], groups: int,
                 padding_mode: str) -> Tensor:
    """(Transposed) convolution of any rank; ``padding`` is ``(lo, hi)`` per axis, flattened."""
    rank = weight.dim() - 2
    if transposed:
        out = _fc._transpose(rank, _array(x), _array(weight), _opt_array(bias), stride, padding[::2],
                             output_padding, groups, dilation, None, 0.01, None, None, None)
    else:
        out = _fc._convolution(rank, _array(x), _array(weight), _opt_array(bias), stride, _pairs(padding),
                               dilation, groups, padding_mode)
    return _tensor(out)


@_convolution.register_fake
def _convolution_fake(x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: list[int], padding: list[int],
                      dilation: list[int], transposed: bool, output_padding: list[int], groups: int,
                      padding_mode: str) -> Tensor:
    return x.new_empty(_conv_shape(x, weight, stride, padding, dilation, transposed, output_padding, groups))


@torch.library.custom_op("ferroconv::convolution_backward", mutates_args=())
def _convolution_backward(grad_out: Tensor, x: Tensor, weight: Tensor, stride: list[int], padding: list[int],
                          dilation: list[int], transposed: bool, output_padding: list[int], groups: int,
                          padding_mode: str, needs: list[bool]) -> tuple[Tensor, Tensor, Tensor]:
    """``(grad_x, grad_weight, grad_bias)``; a gradient not asked for is an empty tensor."""
    rank = weight.dim() - 2
    wanted = (needs[0], needs[1], needs[2])
    if transposed:
        grads = _fc._transpose_backward(rank, _array(grad_out), _array(x), _array(weight), stride, padding[::2],
                                        output_padding, groups, dilation, wanted, None)
    else:
        grads = _fc._convolution_backward(rank, _array(grad_out), _array(x), _array(weight), stride,
                                          _pairs(padding), dilation, groups, padding_mode, wanted, None)
    empty = x.new_empty(0)
    gx, gw, gb = (empty if g is None else _tensor(g) for g in grads)
    return gx, gw, gb


@_convolution_backward.register_fake
def _convolution_backward_fake(grad_out: Tensor, x: Tensor, weight: Tensor, stride: list[int],
                               padding: list[int], dilation: list[int], transposed: bool,
                               output_padding: list[int], groups: int, padding_mode: str,
                               needs: list[bool]) -> tuple[Tensor, Tensor, Tensor]:
    bias_size = weight.shape[1] * groups if transposed else weight.shape[0]
    return (x.new_empty(x.shape if needs[0] else (0,)), x.new_empty(weight.shape if needs[1] else (0,)),
            x.new_empty((bias_size,) if needs[2] else (0,)))


def _convolution_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    x, weight, bias, *params = inputs
    ctx.save_for_backward(x, weight)
    ctx.params = params
    ctx.has_bias = bias is not None


def _convolution_grad(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
    x, weight = ctx.saved_tensors
    needs = [bool(ctx.needs_input_grad[0]), bool(ctx.needs_input_grad[1]),
             bool(ctx.has_bias and ctx.needs_input_grad[2])]
    grads = _convolution_backward(grad, x, weight, *ctx.params, needs)
    return (*(g if need else None for g, need in zip(grads, needs)), None, None, None, None, None, None, None)


_convolution.register_autograd(_convolution_grad, setup_context=_convolution_setup)


def _conv_padding(padding: Any, rank: int, weight: Tensor, stride: list[int], dilation: list[int]) -> list[int]:
    """PyTorch's padding forms (int, tuple, ``"valid"``, ``"same"``) as ``(lo, hi)`` per axis."""
    if isinstance(padding, str):
        if padding == "valid":
            return [0] * (2 * rank)
        if padding != "same":
            raise ValueError(f"padding must be 'valid', 'same', an int or a tuple of ints, got {padding!r}")
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        flat = []
        for k, d in zip(weight.shape[2:], dilation):
            total = d * (int(k) - 1)
            flat += [total // 2, total - total // 2]  # the odd cell at the end, as PyTorch
        return flat
    return [p for p in _ints(padding, rank, "padding") for _ in (0, 1)]


def _conv(rank: int, x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: IntArg, padding: Any,
          dilation: IntArg, groups: int, padding_mode: str = "zeros") -> Tensor:
    _check(x, "x")
    _check(weight, "weight")
    if bias is not None:
        _check(bias, "bias")
    strides = _ints(stride, rank, "stride")
    dilations = _ints(dilation, rank, "dilation")
    pads = _conv_padding(padding, rank, weight, strides, dilations)
    out: Tensor = _convolution(x, weight, bias, strides, pads, dilations, False, [0] * rank, groups, padding_mode)
    return out


def _conv_transpose(rank: int, x: Tensor, weight: Tensor, bias: Optional[Tensor], stride: IntArg,
                    padding: IntArg, output_padding: IntArg, groups: int, dilation: IntArg) -> Tensor:
    _check(x, "x")
    _check(weight, "weight")
    if bias is not None:
        _check(bias, "bias")
    pads = [p for p in _ints(padding, rank, "padding") for _ in (0, 1)]
    out: Tensor = _convolution(x, weight, bias, _ints(stride, rank, "stride"), pads,
                               _ints(dilation, rank, "dilation"), True,
                               _ints(output_padding, rank, "output_padding"), groups, "zeros")
    return out


def conv1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntArg = 1,
           padding: Union[str, IntArg] = 0, dilation: IntArg = 1, groups: int = 1) -> Tensor:
    """``torch.nn.functional.conv1d`` computed by ferroconv (autograd-aware)."""
    return _conv(1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntArg = 1,
           padding: Union[str, IntArg] = 0, dilation: IntArg = 1, groups: int = 1) -> Tensor:
    """``torch.nn.functional.conv2d`` computed by ferroconv (autograd-aware).

    >>> import torch, ferroconv.torch as fct
    >>> x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    >>> w = torch.randn(4, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    >>> torch.autograd.gradcheck(lambda x, w: fct.conv2d(x, w, padding=1), (x, w))
    True
    """
    return _conv(2, input, weight, bias, stride, padding, dilation, groups)


def conv3d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntArg = 1,
           padding: Union[str, IntArg] = 0, dilation: IntArg = 1, groups: int = 1) -> Tensor:
    """``torch.nn.functional.conv3d`` computed by ferroconv (autograd-aware)."""
    return _conv(3, input, weight, bias, stride, padding, dilation, groups)


def conv_transpose1d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntArg = 1,
                     padding: IntArg = 0, output_padding: IntArg = 0, groups: int = 1,
                     dilation: IntArg = 1) -> Tensor:
    """``torch.nn.functional.conv_transpose1d`` computed by ferroconv (autograd-aware)."""
    return _conv_transpose(1, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose2d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntArg = 1,
                     padding: IntArg = 0, output_padding: IntArg = 0, groups: int = 1,
                     dilation: IntArg = 1) -> Tensor:
    """``torch.nn.functional.conv_transpose2d`` computed by ferroconv (autograd-aware)."""
    return _conv_transpose(2, input, weight, bias, stride, padding, output_padding, groups, dilation)


def conv_transpose3d(input: Tensor, weight: Tensor, bias: Optional[Tensor] = None, stride: IntArg = 1,
                     padding: IntArg = 0, output_padding: IntArg = 0, groups: int = 1,
                     dilation: IntArg = 1) -> Tensor:
    """``torch.nn.functional.conv_transpose3d`` computed by ferroconv (autograd-aware)."""
    return _conv_transpose(3, input, weight, bias, stride, padding, output_padding, groups, dilation)


# ----------------------------------------------------------------- pooling


def _pool_size(size: Any, k: int, s: int, p: int, d: int, ceil_mode: bool) -> Any:
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:  # the last window must start inside the input
        out = out - 1
    return out


def _pooled_shape(x: Tensor, kernel: list[int], stride: list[int], padding: list[int], dilation: list[int],
                  ceil_mode: bool) -> list[Any]:
    rank = len(kernel)
    spatial = x.shape[x.dim() - rank:]
    return [*x.shape[:x.dim() - rank],
            *(_pool_size(spatial[i], kernel[i], stride[i], padding[i], dilation[i], ceil_mode) for i in range(rank))]


@torch.library.custom_op("ferroconv::max_pool", mutates_args=())
def _max_pool(x: Tensor, kernel_size: list[int], stride: list[int], padding: list[int], dilation: list[int],
              ceil_mode: bool) -> tuple[Tensor, Tensor]:
    """Max pooling of any rank: values and PyTorch's flat per-plane indices."""
    values, indices = _fc._max_pool(len(kernel_size), _array(x), kernel_size, stride, padding, dilation,
                                    ceil_mode, True)
    return _tensor(values), _tensor(indices)


@_max_pool.register_fake
def _max_pool_fake(x: Tensor, kernel_size: list[int], stride: list[int], padding: list[int],
                   dilation: list[int], ceil_mode: bool) -> tuple[Tensor, Tensor]:
    shape = _pooled_shape(x, kernel_size, stride, padding, dilation, ceil_mode)
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)


@torch.library.custom_op("ferroconv::max_pool_backward", mutates_args=())
def _max_pool_backward(grad_out: Tensor, indices: Tensor, input_shape: list[int], rank: int) -> Tensor:
    """The gradient of any indexed max pooling (windowed or adaptive): a scatter-add at the indices."""
    return _tensor(_pool.max_pool_backward(rank, _array(grad_out), _array(indices), input_shape))


@_max_pool_backward.register_fake
def _max_pool_backward_fake(grad_out: Tensor, indices: Tensor, input_shape: list[int], rank: int) -> Tensor:
    return grad_out.new_empty(input_shape)


def _indexed_setup(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, Tensor]) -> None:
    ctx.mark_non_differentiable(output[1])
    ctx.save_for_backward(output[1])
    ctx.input_shape = list(inputs[0].shape)
    ctx.rank = len(inputs[1])  # kernel_size or output_size: one entry per spatial axis


def _max_pool_grad(ctx: Any, grad: Tensor, grad_indices: Optional[Tensor]) -> tuple[Optional[Tensor], ...]:
    (indices,) = ctx.saved_tensors
    return _max_pool_backward(grad, indices, ctx.input_shape, ctx.rank), None, None, None, None, None


_max_pool.register_autograd(_max_pool_grad, setup_context=_indexed_setup)


@torch.library.custom_op("ferroconv::avg_pool", mutates_args=())
def _avg_pool(x: Tensor, kernel_size: list[int], stride: list[int], padding: list[int], ceil_mode: bool,
              count_include_pad: bool, divisor_override: Optional[int]) -> Tensor:
    """Average pooling of any rank."""
    return _tensor(_fc._avg_pool(len(kernel_size), _array(x), kernel_size, stride, padding, ceil_mode,
                                 count_include_pad, divisor_override))


@_avg_pool.register_fake
def _avg_pool_fake(x: Tensor, kernel_size: list[int], stride: list[int], padding: list[int], ceil_mode: bool,
                   count_include_pad: bool, divisor_override: Optional[int]) -> Tensor:
    return x.new_empty(_pooled_shape(x, kernel_size, stride, padding, [1] * len(kernel_size), ceil_mode))


@torch.library.custom_op("ferroconv::avg_pool_backward", mutates_args=())
def _avg_pool_backward(grad_out: Tensor, input_shape: list[int], kernel_size: list[int], stride: list[int],
                       padding: list[int], ceil_mode: bool, count_include_pad: bool,
                       divisor_override: Optional[int]) -> Tensor:
    """The gradient of :func:`_avg_pool`."""
    return _tensor(_fc._avg_pool_backward(len(kernel_size), _array(grad_out), input_shape, kernel_size, stride,
                                          padding, ceil_mode, count_include_pad, divisor_override))


@_avg_pool_backward.register_fake
def _avg_pool_backward_fake(grad_out: Tensor, input_shape: list[int], kernel_size: list[int], stride: list[int],
                            padding: list[int], ceil_mode: bool, count_include_pad: bool,
                            divisor_override: Optional[int]) -> Tensor:
    return grad_out.new_empty(input_shape)


def _shape_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    ctx.input_shape = list(inputs[0].shape)
    ctx.params = inputs[1:]


def _avg_pool_grad(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
    return (_avg_pool_backward(grad, ctx.input_shape, *ctx.params), *(None,) * len(ctx.params))


_avg_pool.register_autograd(_avg_pool_grad, setup_context=_shape_setup)


@torch.library.custom_op("ferroconv::adaptive_avg_pool", mutates_args=())
def _adaptive_avg_pool(x: Tensor, output_size: list[int]) -> Tensor:
    """Adaptive average pooling of any rank."""
    return _tensor(_pool.adaptive_avg_pool(len(output_size), _array(x), output_size))


@_adaptive_avg_pool.register_fake
def _adaptive_avg_pool_fake(x: Tensor, output_size: list[int]) -> Tensor:
    return x.new_empty([*x.shape[:x.dim() - len(output_size)], *output_size])


@torch.library.custom_op("ferroconv::adaptive_avg_pool_backward", mutates_args=())
def _adaptive_avg_pool_backward(grad_out: Tensor, input_shape: list[int], rank: int) -> Tensor:
    """The gradient of :func:`_adaptive_avg_pool`."""
    return _tensor(_pool.adaptive_avg_pool_backward(rank, _array(grad_out), input_shape))


@_adaptive_avg_pool_backward.register_fake
def _adaptive_avg_pool_backward_fake(grad_out: Tensor, input_shape: list[int], rank: int) -> Tensor:
    return grad_out.new_empty(input_shape)


def _adaptive_avg_grad(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
    return _adaptive_avg_pool_backward(grad, ctx.input_shape, len(ctx.params[0])), None


_adaptive_avg_pool.register_autograd(_adaptive_avg_grad, setup_context=_shape_setup)


@torch.library.custom_op("ferroconv::adaptive_max_pool", mutates_args=())
def _adaptive_max_pool(x: Tensor, output_size: list[int]) -> tuple[Tensor, Tensor]:
    """Adaptive max pooling of any rank: values and flat per-plane indices."""
    values, indices = _pool.adaptive_max_pool(len(output_size), _array(x), output_size, True)
    return _tensor(values), _tensor(indices)


@_adaptive_max_pool.register_fake
def _adaptive_max_pool_fake(x: Tensor, output_size: list[int]) -> tuple[Tensor, Tensor]:
    shape = [*x.shape[:x.dim() - len(output_size)], *output_size]
    return x.new_empty(shape), x.new_empty(shape, dtype=torch.int64)


def _adaptive_max_grad(ctx: Any, grad: Tensor, grad_indices: Optional[Tensor]) -> tuple[Optional[Tensor], ...]:
    (indices,) = ctx.saved_tensors
    return _max_pool_backward(grad, indices, ctx.input_shape, ctx.rank), None


_adaptive_max_pool.register_autograd(_adaptive_max_grad, setup_context=_indexed_setup)


@torch.library.custom_op("ferroconv::max_unpool", mutates_args=())
def _max_unpool(x: Tensor, indices: Tensor, kernel_size: list[int], stride: list[int], padding: list[int],
                output_size: list[int]) -> Tensor:
    """Max unpooling of any rank into ``output_size`` (spatial)."""
    return _tensor(_pool.max_unpool(len(kernel_size), _array(x), _array(indices), kernel_size, stride, padding,
                                    output_size))


@_max_unpool.register_fake
def _max_unpool_fake(x: Tensor, indices: Tensor, kernel_size: list[int], stride: list[int], padding: list[int],
                     output_size: list[int]) -> Tensor:
    return x.new_empty([*x.shape[:x.dim() - len(kernel_size)], *output_size])


def _unpool_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    ctx.save_for_backward(inputs[1])
    ctx.rank = len(inputs[2])


def _max_unpool_grad(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
    # The adjoint of a scatter is a gather at the same indices.
    (indices,) = ctx.saved_tensors
    rank = ctx.rank
    planes = grad.reshape(*grad.shape[:grad.dim() - rank], -1)
    taken = planes.gather(-1, indices.reshape(*indices.shape[:indices.dim() - rank], -1))
    return taken.reshape(indices.shape), None, None, None, None, None


_max_unpool.register_autograd(_max_unpool_grad, setup_context=_unpool_setup)


def _pool_args(rank: int, x: Tensor, kernel_size: IntArg, stride: Optional[IntArg],
               padding: IntArg) -> tuple[list[int], list[int], list[int]]:
    _check(x, "x")
    kernel = _ints(kernel_size, rank, "kernel_size")
    strides = kernel if stride is None or (isinstance(stride, (list, tuple)) and len(stride) == 0) \
        else _ints(stride, rank, "stride")
    return kernel, strides, _ints(padding, rank, "padding")


def _max_pool_any(rank: int, x: Tensor, kernel_size: IntArg, stride: Optional[IntArg], padding: IntArg,
                  dilation: IntArg, ceil_mode: bool, return_indices: bool) -> Any:
    kernel, strides, pads = _pool_args(rank, x, kernel_size, stride, padding)
    values, indices = _max_pool(x, kernel, strides, pads, _ints(dilation, rank, "dilation"), bool(ceil_mode))
    return (values, indices) if return_indices else values


def _avg_pool_any(rank: int, x: Tensor, kernel_size: IntArg, stride: Optional[IntArg], padding: IntArg,
                  ceil_mode: bool, count_include_pad: bool, divisor_override: Optional[int]) -> Tensor:
    kernel, strides, pads = _pool_args(rank, x, kernel_size, stride, padding)
    out: Tensor = _avg_pool(x, kernel, strides, pads, bool(ceil_mode), bool(count_include_pad), divisor_override)
    return out


def _adaptive_size(rank: int, x: Tensor, output_size: Any) -> list[int]:
    """PyTorch's ``output_size``: an int, or a tuple whose ``None`` entries keep the input's size."""
    _check(x, "x")
    return list(adaptive_size(output_size, rank, tuple(int(v) for v in x.shape[x.dim() - rank:])))


def _max_unpool_any(rank: int, x: Tensor, indices: Tensor, kernel_size: IntArg, stride: Optional[IntArg],
                    padding: IntArg, output_size: Optional[Sequence[int]]) -> Tensor:
    kernel, strides, pads = _pool_args(rank, x, kernel_size, stride, padding)
    if not isinstance(indices, Tensor) or indices.dtype != torch.int64:
        raise TypeError("indices must be an int64 torch.Tensor (as max pooling returns)")
    spatial = x.shape[x.dim() - rank:]
    if output_size is None:
        size = [(int(spatial[i]) - 1) * strides[i] - 2 * pads[i] + kernel[i] for i in range(rank)]
    else:
        size = [int(v) for v in output_size][-rank:]
    out: Tensor = _max_unpool(x, indices, kernel, strides, pads, size)
    return out


def max_pool1d(input: Tensor, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               dilation: IntArg = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """``torch.nn.functional.max_pool1d`` computed by ferroconv (autograd-aware)."""
    return _max_pool_any(1, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool2d(input: Tensor, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               dilation: IntArg = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """``torch.nn.functional.max_pool2d`` computed by ferroconv (autograd-aware); the
    indices work with ``torch.nn.functional.max_unpool2d`` and :func:`max_unpool2d`."""
    return _max_pool_any(2, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def max_pool3d(input: Tensor, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               dilation: IntArg = 1, ceil_mode: bool = False, return_indices: bool = False) -> Any:
    """``torch.nn.functional.max_pool3d`` computed by ferroconv (autograd-aware)."""
    return _max_pool_any(3, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def avg_pool1d(input: Tensor, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               ceil_mode: bool = False, count_include_pad: bool = True) -> Tensor:
    """``torch.nn.functional.avg_pool1d`` computed by ferroconv (autograd-aware)."""
    return _avg_pool_any(1, input, kernel_size, stride, padding, ceil_mode, count_include_pad, None)


def avg_pool2d(input: Tensor, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """``torch.nn.functional.avg_pool2d`` computed by ferroconv (autograd-aware)."""
    return _avg_pool_any(2, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def avg_pool3d(input: Tensor, kernel_size: IntArg, stride: Optional[IntArg] = None, padding: IntArg = 0,
               ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None) -> Tensor:
    """``torch.nn.functional.avg_pool3d`` computed by ferroconv (autograd-aware)."""
    return _avg_pool_any(3, input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def adaptive_avg_pool1d(input: Tensor, output_size: Any) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool1d`` computed by ferroconv (autograd-aware)."""
    out: Tensor = _adaptive_avg_pool(input, _adaptive_size(1, input, output_size))
    return out


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool2d`` computed by ferroconv (autograd-aware)."""
    out: Tensor = _adaptive_avg_pool(input, _adaptive_size(2, input, output_size))
    return out


def adaptive_avg_pool3d(input: Tensor, output_size: Any) -> Tensor:
    """``torch.nn.functional.adaptive_avg_pool3d`` computed by ferroconv (autograd-aware)."""
    out: Tensor = _adaptive_avg_pool(input, _adaptive_size(3, input, output_size))
    return out


def _adaptive_max_any(rank: int, x: Tensor, output_size: Any, return_indices: bool) -> Any:
    values, indices = _adaptive_max_pool(x, _adaptive_size(rank, x, output_size))
    return (values, indices) if return_indices else values


def adaptive_max_pool1d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """``torch.nn.functional.adaptive_max_pool1d`` computed by ferroconv (autograd-aware)."""
    return _adaptive_max_any(1, input, output_size, return_indices)


def adaptive_max_pool2d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """``torch.nn.functional.adaptive_max_pool2d`` computed by ferroconv (autograd-aware)."""
    return _adaptive_max_any(2, input, output_size, return_indices)


def adaptive_max_pool3d(input: Tensor, output_size: Any, return_indices: bool = False) -> Any:
    """``torch.nn.functional.adaptive_max_pool3d`` computed by ferroconv (autograd-aware)."""
    return _adaptive_max_any(3, input, output_size, return_indices)


def max_unpool1d(input: Tensor, indices: Tensor, kernel_size: IntArg, stride: Optional[IntArg] = None,
                 padding: IntArg = 0, output_size: Optional[Sequence[int]] = None) -> Tensor:
    """``torch.nn.functional.max_unpool1d`` computed by ferroconv (autograd-aware)."""
    return _max_unpool_any(1, input, indices, kernel_size, stride, padding, output_size)


def max_unpool2d(input: Tensor, indices: Tensor, kernel_size: IntArg, stride: Optional[IntArg] = None,
                 padding: IntArg = 0, output_size: Optional[Sequence[int]] = None) -> Tensor:
    """``torch.nn.functional.max_unpool2d`` computed by ferroconv (autograd-aware)."""
    return _max_unpool_any(2, input, indices, kernel_size, stride, padding, output_size)


def max_unpool3d(input: Tensor, indices: Tensor, kernel_size: IntArg, stride: Optional[IntArg] = None,
                 padding: IntArg = 0, output_size: Optional[Sequence[int]] = None) -> Tensor:
    """``torch.nn.functional.max_unpool3d`` computed by ferroconv (autograd-aware)."""
    return _max_unpool_any(3, input, indices, kernel_size, stride, padding, output_size)


# ------------------------------------------------------------------ modules
#
# Subclasses of torch.nn's layers: the same constructors, attributes and
# state_dict keys, only the computation replaced. Off the CPU (a model moved to
# a GPU after conversion) they run PyTorch's own kernels.


def _on_cpu(x: Tensor) -> bool:
    return x.device.type in ("cpu", "meta")


def _conv_module_forward(module: Any, rank: int, native: Any, x: Tensor, weight: Tensor,
                         bias: Optional[Tensor]) -> Tensor:
    if not _on_cpu(x):
        result: Tensor = native(x, weight, bias)
        return result
    return _conv(rank, x, weight, bias, module.stride, module.padding, module.dilation, module.groups,
                 module.padding_mode)


class Conv1d(torch.nn.Conv1d):
    """``torch.nn.Conv1d`` computed by ferroconv (same arguments and ``state_dict``)."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return _conv_module_forward(self, 1, super()._conv_forward, input, weight, bias)


class Conv2d(torch.nn.Conv2d):
    """``torch.nn.Conv2d`` computed by ferroconv (same arguments and ``state_dict``)."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return _conv_module_forward(self, 2, super()._conv_forward, input, weight, bias)


class Conv3d(torch.nn.Conv3d):
    """``torch.nn.Conv3d`` computed by ferroconv (same arguments and ``state_dict``)."""

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        return _conv_module_forward(self, 3, super()._conv_forward, input, weight, bias)


def _transpose_module_forward(module: Any, rank: int, native: Any, x: Tensor,
                              output_size: Optional[list[int]]) -> Tensor:
    if not _on_cpu(x) or module.padding_mode != "zeros":  # PyTorch's own message for other modes
        result: Tensor = native(x, output_size)
        return result
    output_padding = module._output_padding(x, output_size, module.stride, module.padding, module.kernel_size,
                                            rank, module.dilation)
    return _conv_transpose(rank, x, module.weight, module.bias, module.stride, module.padding, output_padding,
                           module.groups, module.dilation)


class ConvTranspose1d(torch.nn.ConvTranspose1d):
    """``torch.nn.ConvTranspose1d`` computed by ferroconv (same arguments and ``state_dict``)."""

    def forward(self, input: Tensor, output_size: Optional[list[int]] = None) -> Tensor:
        return _transpose_module_forward(self, 1, super().forward, input, output_size)


class ConvTranspose2d(torch.nn.ConvTranspose2d):
    """``torch.nn.ConvTranspose2d`` computed by ferroconv (same arguments and ``state_dict``)."""

    def forward(self, input: Tensor, output_size: Optional[list[int]] = None) -> Tensor:
        return _transpose_module_forward(self, 2, super().forward, input, output_size)


class ConvTranspose3d(torch.nn.ConvTranspose3d):
    """``torch.nn.ConvTranspose3d`` computed by ferroconv (same arguments and ``state_dict``)."""

    def forward(self, input: Tensor, output_size: Optional[list[int]] = None) -> Tensor:
        return _transpose_module_forward(self, 3, super().forward, input, output_size)


def _max_pool_module(module: Any, rank: int, native: Any, x: Tensor) -> Any:
    if not _on_cpu(x):
        return native(x)
    return _max_pool_any(rank, x, module.kernel_size, module.stride, module.padding, module.dilation,
                         module.ceil_mode, module.return_indices)


class MaxPool1d(torch.nn.MaxPool1d):
    """``torch.nn.MaxPool1d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Any:
        return _max_pool_module(self, 1, super().forward, input)


class MaxPool2d(torch.nn.MaxPool2d):
    """``torch.nn.MaxPool2d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Any:
        return _max_pool_module(self, 2, super().forward, input)


class MaxPool3d(torch.nn.MaxPool3d):
    """``torch.nn.MaxPool3d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Any:
        return _max_pool_module(self, 3, super().forward, input)


def _avg_pool_module(module: Any, rank: int, native: Any, x: Tensor) -> Tensor:
    if not _on_cpu(x):
        result: Tensor = native(x)
        return result
    return _avg_pool_any(rank, x, module.kernel_size, module.stride, module.padding, module.ceil_mode,
                         module.count_include_pad, getattr(module, "divisor_override", None))


class AvgPool1d(torch.nn.AvgPool1d):
    """``torch.nn.AvgPool1d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Tensor:
        return _avg_pool_module(self, 1, super().forward, input)


class AvgPool2d(torch.nn.AvgPool2d):
    """``torch.nn.AvgPool2d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Tensor:
        return _avg_pool_module(self, 2, super().forward, input)


class AvgPool3d(torch.nn.AvgPool3d):
    """``torch.nn.AvgPool3d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Tensor:
        return _avg_pool_module(self, 3, super().forward, input)


def _adaptive_module(module: Any, rank: int, native: Any, x: Tensor) -> Any:
    if not _on_cpu(x):
        return native(x)
    if hasattr(module, "return_indices"):
        return _adaptive_max_any(rank, x, module.output_size, module.return_indices)
    return _adaptive_avg_pool(x, _adaptive_size(rank, x, module.output_size))


class AdaptiveAvgPool1d(torch.nn.AdaptiveAvgPool1d):
    """``torch.nn.AdaptiveAvgPool1d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Tensor:
        result: Tensor = _adaptive_module(self, 1, super().forward, input)
        return result


class AdaptiveAvgPool2d(torch.nn.AdaptiveAvgPool2d):
    """``torch.nn.AdaptiveAvgPool2d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Tensor:
        result: Tensor = _adaptive_module(self, 2, super().forward, input)
        return result


class AdaptiveAvgPool3d(torch.nn.AdaptiveAvgPool3d):
    """``torch.nn.AdaptiveAvgPool3d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Tensor:
        result: Tensor = _adaptive_module(self, 3, super().forward, input)
        return result


class AdaptiveMaxPool1d(torch.nn.AdaptiveMaxPool1d):
    """``torch.nn.AdaptiveMaxPool1d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Any:
        return _adaptive_module(self, 1, super().forward, input)


class AdaptiveMaxPool2d(torch.nn.AdaptiveMaxPool2d):
    """``torch.nn.AdaptiveMaxPool2d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Any:
        return _adaptive_module(self, 2, super().forward, input)


class AdaptiveMaxPool3d(torch.nn.AdaptiveMaxPool3d):
    """``torch.nn.AdaptiveMaxPool3d`` computed by ferroconv."""

    def forward(self, input: Tensor) -> Any:
        return _adaptive_module(self, 3, super().forward, input)


def _unpool_module(module: Any, rank: int, native: Any, x: Tensor, indices: Tensor,
                   output_size: Optional[list[int]]) -> Tensor:
    if not _on_cpu(x):
        result: Tensor = native(x, indices, output_size)
        return result
    return _max_unpool_any(rank, x, indices, module.kernel_size, module.stride, module.padding, output_size)


class MaxUnpool1d(torch.nn.MaxUnpool1d):
    """``torch.nn.MaxUnpool1d`` computed by ferroconv."""

    def forward(self, input: Tensor, indices: Tensor, output_size: Optional[list[int]] = None) -> Tensor:
        return _unpool_module(self, 1, super().forward, input, indices, output_size)


class MaxUnpool2d(torch.nn.MaxUnpool2d):
    """``torch.nn.MaxUnpool2d`` computed by ferroconv."""

    def forward(self, input: Tensor, indices: Tensor, output_size: Optional[list[int]] = None) -> Tensor:
        return _unpool_module(self, 2, super().forward, input, indices, output_size)


class MaxUnpool3d(torch.nn.MaxUnpool3d):
    """``torch.nn.MaxUnpool3d`` computed by ferroconv."""

    def forward(self, input: Tensor, indices: Tensor, output_size: Optional[list[int]] = None) -> Tensor:
        return _unpool_module(self, 3, super().forward, input, indices, output_size)


_REPLACEMENTS: dict[type, type] = {
    cls.__mro__[1]: cls for cls in (
        Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d,
        MaxPool1d, MaxPool2d, MaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
        AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d,
        AdaptiveMaxPool1d, AdaptiveMaxPool2d, AdaptiveMaxPool3d,
        MaxUnpool1d, MaxUnpool2d, MaxUnpool3d,
    )
}
_ORIGINALS: dict[type, type] = {ours: theirs for theirs, ours in _REPLACEMENTS.items()}


# --------------------------------------------------------- convert / revert


@dataclasses.dataclass
class ConversionReport:
    """What :func:`convert` (or :func:`revert`) changed.

    Attributes
    ----------
    replaced : list of str
        Qualified names (as in ``model.named_modules()``) of the layers switched.
    left : dict of str to str
        Layers of a supported kind left as they were, with the reason.
    """

    replaced: list[str] = dataclasses.field(default_factory=list)
    left: dict[str, str] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"replaced {len(self.replaced)} layer(s): {', '.join(self.replaced) or '-'}"]
        lines += [f"left {name or '<model>'}: {why}" for name, why in self.left.items()]
        return "\n".join(lines)


def _reason_left(module: torch.nn.Module) -> Optional[str]:
    """Why a layer of a supported kind is not switched (None: it is)."""
    if isinstance(module, torch.nn.modules.lazy.LazyModuleMixin):
        return "lazy layer not yet initialised (run one forward first)"
    if type(module) not in _REPLACEMENTS:
        base = next(b for b in _REPLACEMENTS if isinstance(module, b))
        return (f"{type(module).__name__} subclasses torch.nn.{base.__name__}; "
                "its own forward is kept")
    tensors = [*module.parameters(recurse=False), *module.buffers(recurse=False)]
    for t in tensors:
        if t.device.type != "cpu":
            return f"tensors on {t.device} (ferroconv computes on the CPU)"
        if t.dtype not in _DTYPES:
            return f"dtype {t.dtype} (ferroconv takes float32, float64, float16, bfloat16)"
    if getattr(module, "padding_mode", "zeros") != "zeros" and type(module).__name__.startswith("ConvTranspose"):
        return f"padding_mode={module.padding_mode!r} (PyTorch supports only 'zeros' here)"
    return None


def convert(model: torch.nn.Module) -> ConversionReport:
    """Switch every convolution, transposed convolution and pooling layer of
    ``model`` (itself included) to ferroconv's, in place: the layers keep their
    parameters, buffers, hooks and ``state_dict`` keys; only the computation
    changes.

    Parameters
    ----------
    model : torch.nn.Module
        Any module; its supported layers are switched.

    Returns
    -------
    ConversionReport
        The layers replaced, and those of a supported kind left with the reason
        (parameters off the CPU, an unsupported dtype, a user subclass, ...).
    """
    _warn_spin_wait()
    report = ConversionReport()
    for name, module in model.named_modules():
        if type(module) in _ORIGINALS or not isinstance(module, tuple(_REPLACEMENTS)):
            continue
        assert isinstance(module, torch.nn.Module)
        reason = _reason_left(module)
        if reason is None:
            module.__class__ = _REPLACEMENTS[type(module)]
            report.replaced.append(name)
        else:
            report.left[name] = reason
    return report


_spin_warned = False


def _warn_spin_wait() -> None:
    """Once per process: say how to stop PyTorch's OpenMP spin-wait from taking
    ferroconv's cores, when it could not be shortened at import."""
    global _spin_warned
    if _spin_warned or _SPIN_SET_HERE or torch.get_num_threads() < 2:
        return
    if any(key in os.environ for key in (*_SPIN_ENV, "OMP_WAIT_POLICY")):
        return
    _spin_warned = True
    warnings.warn(
        "torch was imported before ferroconv.torch, so PyTorch's OpenMP threads keep their long spin-wait, "
        "which takes cores from ferroconv's layers (up to 2-3x slower steps on small machines): set "
        "GOMP_SPINCOUNT=10000 (KMP_BLOCKTIME=1 on macOS) in the environment, or import ferroconv.torch "
        "before torch", RuntimeWarning, stacklevel=3)


def revert(model: torch.nn.Module) -> ConversionReport:
    """Undo :func:`convert`: every ferroconv layer of ``model`` becomes the
    ``torch.nn`` layer it was, in place. Returns the layers switched back."""
    report = ConversionReport()
    for name, module in model.named_modules():
        original = _ORIGINALS.get(type(module))
        if original is not None:
            module.__class__ = original
            report.replaced.append(name)
    return report
