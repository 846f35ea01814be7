"""Convolution and transposed convolution of any rank: the arrays of a call
checked and batched, then one native call with the call's :class:`ConvSpec`.
The public ``conv{1,2,3}d`` functions, the ``nn`` layers and the dask layer all
call these; their errors are plain messages, named by the caller.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np

from . import _ferroconv as _native
from ._args import batched, check_ndim, float_array, same_dtype, unbatched
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
    """The arrays of a (transposed) convolution call: float32/float64, one dtype,
    ``x`` (and ``grad_out``) batched or not, a ``rank + 2``-D weight, a 1-D bias."""
    if backward and grad_out is None:
        raise TypeError("grad_out must be an array, got None")
    x_arr = float_array(x, "x")
    w = float_array(weight, "weight")
    b = None if bias is None else float_array(bias, "bias")
    g = None if grad_out is None else float_array(grad_out, "grad_out")
    same_dtype(x_arr, "x", weight=w, bias=b, grad_out=g)
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


def forward(arrays: ConvArrays, spec: ConvSpec) -> np.ndarray:
    """The output of the convolution (or transposed convolution) ``spec``."""
    out = _native.conv_forward(arrays.x, arrays.weight, arrays.bias, spec)
    return unbatched(out, arrays.was_batched)


def backward(arrays: ConvArrays, spec: ConvSpec, needs: Needs) -> Grads:
    """``(grad_x, grad_weight, grad_bias)`` of :func:`forward` (None where not needed)."""
    assert arrays.grad_out is not None
    grad_x, grad_w, grad_b = _native.conv_backward(arrays.grad_out, arrays.x, arrays.weight, spec, needs)
    return None if grad_x is None else unbatched(grad_x, arrays.was_batched), grad_w, grad_b


def output_shape(spatial: tuple[int, ...], kernel: tuple[int, ...], spec: ConvSpec) -> tuple[int, ...]:
    """The spatial output size of ``spec`` for a spatial input size and kernel size."""
    return tuple(int(v) for v in _native.conv_output_shape(spatial, kernel, spec))

