"""Convolution, transposed convolution and true convolution (the public functions
are re-exported by :mod:`ferroconv.functional`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from . import _ferroconv as _native
from ._args import (
    MAX_SIZE,
    IntOrTuple,
    as_int,
    batched,
    check_ndim,
    dims3,
    float_array,
    from_5d,
    int_tuple,
    same_dtype,
    to_5d,
    with_op,
)

Padding = Union[int, str, Sequence[int], Sequence[Sequence[int]]]
Grads = tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]
Needs = tuple[bool, bool, bool]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def resolve_padding(
    padding: Padding,
    rank: int,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-side padding ``(lo, hi)`` from every form a convolution accepts: an int,
    a tuple per axis, ``"valid"``, ``"same"`` or a tuple of ``(lo, hi)`` pairs."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0,) * rank, (0,) * rank
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(
                    f"padding='same' is only supported with stride 1 (as in PyTorch), got stride={stride}"
                )
            sides = [_native.same_padding(k, d) for k, d in zip(kernel, dilation)]
            return tuple(lo for lo, _ in sides), tuple(hi for _, hi in sides)
        raise ValueError(
            f"padding must be an int, a tuple of ints, 'same', 'valid' or a tuple of (lo, hi) pairs, got {padding!r}"
        )
    if isinstance(padding, (Sequence, np.ndarray)) and any(
        isinstance(p, (Sequence, np.ndarray)) for p in padding
    ):
        pairs: list[Any] = list(padding)
        if len(pairs) != rank or not all(
            isinstance(p, (Sequence, np.ndarray)) and not isinstance(p, str) and len(p) == 2 for p in pairs
        ):
            raise ValueError(
                f"padding given as per-side pairs must be {rank} (lo, hi) pairs, got {padding!r}"
            )
        lo = int_tuple([p[0] for p in pairs], rank, "padding", 0)
        hi = int_tuple([p[1] for p in pairs], rank, "padding", 0)
        return lo, hi
    both = int_tuple(padding, rank, "padding", 0)
    return both, both


def _padding_mode(padding_mode: object) -> str:
    if not isinstance(padding_mode, str):
        raise TypeError(f"padding_mode must be a str, got {type(padding_mode).__name__}")
    if padding_mode not in _PADDING_MODES:
        raise ValueError(
            f"padding_mode must be one of {', '.join(map(repr, _PADDING_MODES))}, got {padding_mode!r}"
        )
    return padding_mode


def _groups(groups: object) -> int:
    value = as_int(groups, "groups")
    if not 1 <= value <= MAX_SIZE:
        raise ValueError(f"groups must be between 1 and {MAX_SIZE}, got {value}")
    return value


def _needs(needs: object) -> Needs:
    if not isinstance(needs, (tuple, list)) or len(needs) != 3:
        raise TypeError(f"needs must be a tuple of three bools (input, weight, bias), got {needs!r}")
    return (bool(needs[0]), bool(needs[1]), bool(needs[2]))


class _ConvCall:
    """Validated, normalised arguments of one convolution call."""

    _needs_grad_out = False

    def __init__(
        self,
        op: str,
        rank: int,
        x: object,
        weight: object,
        bias: object,
        stride: IntOrTuple,
        padding: Padding,
        dilation: IntOrTuple,
        groups: object,
        padding_mode: object,
        grad_out: object = None,
    ) -> None:
        self.op, self.rank = op, rank
        if grad_out is None and self._needs_grad_out:
            raise TypeError(f"{op}: grad_out must be an array, got None")
        try:
            x_arr = float_array(x, "x")
            self.weight = float_array(weight, "weight")
            self.bias = None if bias is None else float_array(bias, "bias")
            self.grad_out = None if grad_out is None else float_array(grad_out, "grad_out")
            same_dtype(x_arr, "x", weight=self.weight, bias=self.bias, grad_out=self.grad_out)
        except TypeError as exc:
            raise TypeError(f"{op}: {exc}") from None
        self.x, self.batched = batched(x_arr, rank, op)
        if self.grad_out is not None:
            if self.grad_out.ndim != x_arr.ndim:
                raise ValueError(
                    f"{op}: grad_out must have as many axes as x ({x_arr.ndim}), got shape {self.grad_out.shape}"
                )
            if not self.batched:
                self.grad_out = self.grad_out[np.newaxis]
        check_ndim(self.weight, rank + 2, op, "weight", "(C_out, C_in / groups, *kernel)")
        if self.bias is not None:
            check_ndim(self.bias, 1, op, "bias", "(C_out,)")
        try:
            self.stride = int_tuple(stride, rank, "stride", 1)
            self.dilation = int_tuple(dilation, rank, "dilation", 1)
            self.groups = _groups(groups)
            self.padding_mode = _padding_mode(padding_mode)
            kernel = tuple(int(k) for k in self.weight.shape[2:])
            self.pad_lo, self.pad_hi = resolve_padding(padding, rank, kernel, self.stride, self.dilation)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{op}: {exc}") from None

    def geometry(self) -> tuple[object, ...]:
        return (
            dims3(self.stride, 1),
            dims3(self.dilation, 1),
            dims3(self.pad_lo, 0),
            dims3(self.pad_hi, 0),
            self.groups,
            self.padding_mode,
            self.rank,
        )

    def unbatch(self, array: Optional[np.ndarray]) -> Optional[np.ndarray]:
        return None if array is None else from_5d(array, self.rank, self.batched)


class _BackwardCall(_ConvCall):
    """Arguments of a convolution's backward call (grad_out is required)."""

    _needs_grad_out = True


def _conv(rank: int, op: str, x: object, weight: object, bias: object, stride: IntOrTuple,
          padding: Padding, dilation: IntOrTuple, groups: object, padding_mode: object) -> np.ndarray:
    call = _ConvCall(op, rank, x, weight, bias, stride, padding, dilation, groups, padding_mode)
    out = with_op(op, _native.conv_forward, to_5d(call.x, rank), to_5d(call.weight, rank),
                  call.bias, *call.geometry())
    return from_5d(out, rank, call.batched)


def _conv_backward(rank: int, op: str, grad_out: object, x: object, weight: object, stride: IntOrTuple,
                   padding: Padding, dilation: IntOrTuple, groups: object, padding_mode: object,
                   needs: object) -> Grads:
    call = _BackwardCall(op, rank, x, weight, None, stride, padding, dilation, groups, padding_mode,
                         grad_out=grad_out)
    assert call.grad_out is not None
    grad_x, grad_w, grad_b = with_op(
        op, _native.conv_backward, to_5d(call.grad_out, rank), to_5d(call.x, rank),
        to_5d(call.weight, rank), *call.geometry(), _needs(needs))
    return call.unbatch(grad_x), None if grad_w is None else from_5d(grad_w, rank), grad_b


class _TransposeCall(_ConvCall):
    """Validated arguments of a transposed convolution."""

    def __init__(self, op: str, rank: int, x: object, weight: object, bias: object, stride: IntOrTuple,
                 padding: IntOrTuple, output_padding: IntOrTuple, groups: object, dilation: IntOrTuple,
                 grad_out: object = None) -> None:
        if isinstance(padding, str):
            raise ValueError(f"{op}: padding must be an int or a tuple of ints, got {padding!r}")
        try:
            int_tuple(padding, rank, "padding", 0)  # no per-side pairs: PyTorch's rule
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{op}: {exc}") from None
        super().__init__(op, rank, x, weight, bias, stride, padding, dilation, groups, "zeros",
                         grad_out=grad_out)
        try:
            self.output_padding = int_tuple(output_padding, rank, "output_padding", 0)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{op}: {exc}") from None

    def geometry(self) -> tuple[object, ...]:
        return (
            dims3(self.stride, 1),
            dims3(self.dilation, 1),
            dims3(self.pad_lo, 0),
            dims3(self.output_padding, 0),
            self.groups,
            self.rank,
        )


class _TransposeBackwardCall(_TransposeCall):
    """Arguments of a transposed convolution's backward call (grad_out is required)."""

    _needs_grad_out = True


def _conv_transpose(rank: int, op: str, x: object, weight: object, bias: object, stride: IntOrTuple,
                    padding: IntOrTuple, output_padding: IntOrTuple, groups: object,
                    dilation: IntOrTuple) -> np.ndarray:
    call = _TransposeCall(op, rank, x, weight, bias, stride, padding, output_padding, groups, dilation)
    out = with_op(op, _native.conv_transpose_forward, to_5d(call.x, rank), to_5d(call.weight, rank),
                  call.bias, *call.geometry())
    return from_5d(out, rank, call.batched)


def _conv_transpose_backward(rank: int, op: str, grad_out: object, x: object, weight: object,
                             stride: IntOrTuple, padding: IntOrTuple, output_padding: IntOrTuple,
                             groups: object, dilation: IntOrTuple, needs: object) -> Grads:
    call = _TransposeBackwardCall(op, rank, x, weight, None, stride, padding, output_padding, groups,
                                  dilation, grad_out=grad_out)
    assert call.grad_out is not None
    grad_x, grad_w, grad_b = with_op(
        op, _native.conv_transpose_backward, to_5d(call.grad_out, rank), to_5d(call.x, rank),
        to_5d(call.weight, rank), *call.geometry(), _needs(needs))
    return call.unbatch(grad_x), None if grad_w is None else from_5d(grad_w, rank), grad_b
