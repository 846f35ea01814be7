"""Batch normalisation and ReLU: the arrays of a call checked, 16-bit arrays
computed in float32, then one native call. The public functions and the ``nn``
layers call these; their errors are plain messages, named by the caller.
"""

from __future__ import annotations

import math
from typing import Optional, overload

import numpy as np

from . import _ferroconv as _native
from ._args import as_array, flag, float_array, is_float_dtype, same_dtype, type_name

Stats = tuple[np.ndarray, np.ndarray, np.ndarray]
FLOAT32 = np.dtype(np.float32)


def is_half(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is float16 or bfloat16 (computed in float32)."""
    return dtype.itemsize == 2


def real(value: object, name: str, low: float, high: float = math.inf, open_low: bool = False) -> float:
    """A real number argument in ``[low, high]`` (``(low, high]`` if ``open_low``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type_name(value)} {value!r}")
    number = float(value)
    if not (low < number if open_low else low <= number) or not number <= high or math.isnan(number):
        bounds = f"{'(' if open_low else '['}{low}, {high}]" if high < math.inf else f"> {low}" if open_low \
            else f">= {low}"
        raise ValueError(f"{name} must be {'in ' if high < math.inf else ''}{bounds}, got {value!r}")
    return number


def batched_input(x: object, name: str = "x") -> np.ndarray:
    """``x`` as a float array of 2 to 5 dimensions ``(N, C, *spatial)``."""
    array = float_array(x, name)
    if not 2 <= array.ndim <= 5:
        raise ValueError(f"{name} must have 2 to 5 dimensions (N, C, *spatial), got shape {array.shape}")
    return array


def _vector(value: object, name: str, x: np.ndarray) -> Optional[np.ndarray]:
    """A per-channel array (None stays None): x's dtype, or float32 for 16-bit x,
    computed in float32."""
    if value is None:
        return None
    array = float_array(value, name)
    if not (is_half(x.dtype) and array.dtype == FLOAT32):
        same_dtype(x, "x", frozenset(), **{name: array})
    return array


@overload
def _work(array: np.ndarray) -> np.ndarray: ...


@overload
def _work(array: None) -> None: ...


def _work(array: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """``array`` in the dtype the kernels compute it in (16-bit: float32)."""
    if array is None or not is_half(array.dtype):
        return array
    return array.astype(np.float32)


def _running(value: object, name: str, x: np.ndarray, updated: bool) -> Optional[np.ndarray]:
    """A running statistic. When ``updated`` it is written in place, so it must be
    a writeable float array, returned as it is (not a native copy)."""
    if value is None or not updated:
        return _vector(value, name, x)
    array = as_array(value, name)
    if not is_float_dtype(array.dtype):
        raise TypeError(f"{name} must have dtype {x.dtype}, got {array.dtype}")
    _vector(array, name, x)  # the dtype check, on a native view
    if not array.flags.writeable:
        raise ValueError(f"{name} is read-only, but training updates it in place; pass a writeable copy")
    return array


def _updatable(array: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """``array`` if the kernel can update it in place, else a float copy in the
    dtype it computes in (written back by the caller)."""
    if array is None or (not is_half(array.dtype) and array.dtype.isnative and array.flags.aligned):
        return array
    return np.array(array, dtype=FLOAT32 if is_half(array.dtype) else array.dtype.newbyteorder("="))


def batch_norm(x: object, running_mean: object, running_var: object, weight: object, bias: object,
               training: object, momentum: object, eps: object, relu: object) -> Stats:
    """``(y, mean, invstd)`` of ``torch.nn.functional.batch_norm``; the running
    statistics updated in place when training. 16-bit ``x`` is computed in float32
    (``y`` rounded once; ``mean`` and ``invstd`` stay float32)."""
    xa = batched_input(x)
    training, relu = flag(training, "training"), flag(relu, "relu")
    momentum_value = real(momentum, "momentum", 0.0, 1.0)
    eps_value = real(eps, "eps", 0.0, open_low=True)
    w, b = _vector(weight, "weight", xa), _vector(bias, "bias", xa)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must both be arrays or both be None")
    if running_mean is None and not training:
        raise ValueError("running_mean and running_var are required when training is False "
                         "(pass training=True to normalise by the batch's statistics)")
    rm = _running(running_mean, "running_mean", xa, training)
    rv = _running(running_var, "running_var", xa, training)
    if training and rm is not None and rv is not None and np.shares_memory(rm, rv):
        raise ValueError("running_mean and running_var share memory, but training updates both in place")
    rm_work, rv_work = (_updatable(rm), _updatable(rv)) if training else (_work(rm), _work(rv))
    y, mean, invstd = _native.batch_norm(_work(xa), rm_work, rv_work, _work(w), _work(b), training,
                                         momentum_value, eps_value, relu)
    for original, updated in ((rm, rm_work), (rv, rv_work)):
        if training and original is not None and updated is not original:
            original[...] = updated
    return y.astype(xa.dtype, copy=False), mean, invstd


def batch_norm_backward(grad_out: object, x: object, weight: object, mean: object, invstd: object,
                        training: object, relu_output: object) -> Stats:
    """``(grad_input, grad_weight, grad_bias)`` of :func:`batch_norm`, each in
    ``x``'s dtype."""
    xa = batched_input(x)
    grad = float_array(grad_out, "grad_out")
    same_dtype(xa, "x", grad_out=grad)
    if grad.shape != xa.shape:
        raise ValueError(f"grad_out has shape {grad.shape} but x has shape {xa.shape}")
    y = None if relu_output is None else float_array(relu_output, "relu_output")
    same_dtype(xa, "x", relu_output=y)
    w = _vector(weight, "weight", xa)
    m, s = _vector(mean, "mean", xa), _vector(invstd, "invstd", xa)
    if m is None or s is None:
        raise TypeError("mean and invstd must be arrays (those batch_norm(..., return_stats=True) returns)")
    grads: Stats = _native.batch_norm_backward(_work(grad), _work(xa), _work(w), _work(m), _work(s),
                                               flag(training, "training"), _work(y))
    gi, gw, gb = grads
    return gi.astype(xa.dtype, copy=False), gw.astype(xa.dtype, copy=False), gb.astype(xa.dtype, copy=False)


def relu(x: object, out: object = None) -> np.ndarray:
    """``max(x, 0)`` (NaN kept), into ``out`` if given (which may be ``x``)."""
    xa = float_array(x, "x")
    if out is None:
        result: np.ndarray = _native.relu(xa)
        return result
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type_name(out)}")
    if out.shape != xa.shape:
        raise ValueError(f"out has shape {out.shape} but x has shape {xa.shape}")
    if out.dtype != xa.dtype:
        raise TypeError(f"out has dtype {out.dtype} but x has dtype {xa.dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    if is_half(out.dtype) or not (out.dtype.isnative and out.flags.aligned):
        out[...] = _native.relu(xa)
        return out
    if out is not xa:
        np.copyto(out, xa)  # correct for any overlap of the two
    _native.relu_inplace(out)
    return out


def relu_backward(grad_out: object, output: object) -> np.ndarray:
    """``grad_out`` where ``output`` (ReLU's output or input) is positive, else 0."""
    grad = float_array(grad_out, "grad_out")
    y = float_array(output, "output")
    same_dtype(y, "output", grad_out=grad)
    if grad.shape != y.shape:
        raise ValueError(f"grad_out has shape {grad.shape} but output has shape {y.shape}")
    result: np.ndarray = _native.relu_backward(grad, y)
    return result
