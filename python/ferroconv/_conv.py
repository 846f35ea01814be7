"""Convolution and transposed convolution of any rank: the arrays of a call
checked and batched, then one native call with the call's :class:`ConvSpec`.
The public ``conv{1,2,3}d`` functions, the ``nn`` layers and the dask layer all
call these; their errors are plain messages, named by the caller.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from . import _ferroconv as _native
from ._args import as_array, batched, check_ndim, float_array, from_python, same_dtype, unbatched
from ._spec import ConvSpec

Grads = tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]
Needs = tuple[bool, bool, bool]


class ConvArrays(NamedTuple):
    """The arrays of one call: ``x`` (and ``grad_out``) with a batch axis,
    ``weight``, ``bias``, and whether ``x`` came batched."""

    x: np.ndarray
    weight: np.ndarray
    bias: Optional[np.ndarray]
    grad_out: Optional[np.ndarray]
    was_batched: bool


def conv_arrays(rank: int, x: object, weight: object, bias: object = None, grad_out: object = None, *,
                backward: bool = False, transposed: bool = False) -> ConvArrays:
    """The arrays of a (transposed) convolution call: one float dtype,
    ``x`` (and ``grad_out``) batched or not, a ``rank + 2``-D weight, a 1-D bias."""
    if backward and grad_out is None:
        raise TypeError("grad_out must be an array, got None")
    x_arr = float_array(x, "x")
    w = float_array(weight, "weight")
    b = None if bias is None else float_array(bias, "bias")
    g = None if grad_out is None else float_array(grad_out, "grad_out")
    converted = frozenset(name for name, value in (("x", x), ("weight", weight), ("bias", bias),
                                                   ("grad_out", grad_out)) if from_python(value))
    same_dtype(x_arr, "x", converted, weight=w, bias=b, grad_out=g)
    xb, was_batched = batched(x_arr, rank)
    if g is not None:
        if g.ndim != x_arr.ndim:
            raise ValueError(f"grad_out must have as many axes as x ({x_arr.ndim}), got shape {g.shape}")
        if not was_batched:
            g = g[np.newaxis]
    layout = "(C_in, C_out / groups, *kernel)" if transposed else "(C_out, C_in / groups, *kernel)"
    check_ndim(w, rank + 2, "weight", layout)
    if b is not None:
        check_ndim(b, 1, "bias", "(C_out,)")
    return ConvArrays(xb, w, b, g, was_batched)


def needs_triple(needs: object) -> Needs:
    """``needs``: which of ``(grad_x, grad_weight, grad_bias)`` a backward computes."""
    if not isinstance(needs, (tuple, list)) or len(needs) != 3:
        raise TypeError(f"needs must be a tuple of three bools (input, weight, bias), got {needs!r}")
    return (bool(needs[0]), bool(needs[1]), bool(needs[2]))


def forward(arrays: ConvArrays, spec: ConvSpec, residual: object = None, out: object = None) -> np.ndarray:
    """The output of the convolution (or transposed convolution) ``spec``, with
    ``residual`` added before the spec's activation, written into ``out`` when
    given (and then returned)."""
    if residual is None and out is None:
        result = _native.conv_forward(arrays.x, arrays.weight, arrays.bias, spec)
        assert result is not None
        return unbatched(result, arrays.was_batched)
    dtype = arrays.x.dtype
    out_arr = None if out is None else _out_array(out, dtype, arrays)
    res = None if residual is None else as_array(residual, "residual")
    residual_is_out = out_arr is not None and res is not None and _same_view(res, out_arr)
    if res is not None and not residual_is_out:
        if res.dtype != dtype:
            raise TypeError(f"residual has dtype {res.dtype} but x has dtype {dtype}")
        if out_arr is not None and np.may_share_memory(res, out_arr):
            raise ValueError("residual overlaps out without being the same array: pass out=residual "
                             "to accumulate in place, or separate arrays")
        res = res if arrays.was_batched else res[np.newaxis]
    native_out = None if out_arr is None else (out_arr if arrays.was_batched else out_arr[np.newaxis])
    try:
        result = _native.conv_forward(arrays.x, arrays.weight, arrays.bias, spec,
                                      None if residual_is_out else res, native_out, residual_is_out)
    except KeyboardInterrupt:
        # Ctrl-C stopped the call between tiles: no half-written result in `out`.
        if out_arr is not None:
            out_arr.fill(np.nan)
        raise
    if out_arr is not None:
        return out_arr
    assert result is not None
    return unbatched(result, arrays.was_batched)


def _out_array(out: object, dtype: np.dtype, arrays: ConvArrays) -> np.ndarray:
    """``out`` checked: a writeable C-contiguous ndarray of the call's dtype that
    shares no memory with the call's inputs (its shape is checked natively)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype} but x has dtype {dtype}")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
    if not out.flags.writeable:
        raise ValueError("out must be writeable")
    for name, arr in (("x", arrays.x), ("weight", arrays.weight), ("bias", arrays.bias)):
        if arr is not None and np.may_share_memory(out, arr):
            raise ValueError(f"out must not share memory with {name}")
    return out


def _same_view(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two arrays are views of exactly the same elements in the same layout."""
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.shape == b.shape and a.strides == b.strides and a.dtype == b.dtype)


def backward(arrays: ConvArrays, spec: ConvSpec, needs: Needs) -> Grads:
    """``(grad_x, grad_weight, grad_bias)`` of :func:`forward` (None where not needed)."""
    assert arrays.grad_out is not None
    grad_x, grad_w, grad_b = _native.conv_backward(arrays.grad_out, arrays.x, arrays.weight, spec, needs)
    return None if grad_x is None else unbatched(grad_x, arrays.was_batched), grad_w, grad_b


def output_shape(spatial: tuple[int, ...], kernel: tuple[int, ...], spec: ConvSpec) -> tuple[int, ...]:
    """The spatial output size of ``spec`` for a spatial input size and kernel size."""
    return tuple(int(v) for v in _native.conv_output_shape(spatial, kernel, spec))

