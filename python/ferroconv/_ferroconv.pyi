"""Stubs of the native module. Arrays are 5-D ``(N, C, D, H, W)``; the public
wrappers in :mod:`ferroconv.functional` add and remove unit axes and normalise
arguments to per-axis 3-tuples."""

from typing import Any, Optional

import numpy as np
import numpy.typing as npt

__version__: str
__all__ = [
    "__version__",
    "build_info",
    "conv_backward",
    "conv_forward",
    "conv_output_shape",
    "conv_transpose_backward",
    "conv_transpose_forward",
    "conv_transpose_output_shape",
    "get_num_threads",
    "receptive_field",
    "same_padding",
    "set_num_threads",
]

_Dims = tuple[int, int, int]
_Array = npt.NDArray[np.floating]
_Grads = tuple[Optional[_Array], Optional[_Array], Optional[_Array]]

def conv_forward(
    x: _Array,
    weight: _Array,
    bias: Optional[_Array],
    stride: _Dims,
    dilation: _Dims,
    pad_lo: _Dims,
    pad_hi: _Dims,
    groups: int,
    padding_mode: str,
    rank: int,
) -> _Array: ...
def conv_backward(
    grad_out: _Array,
    x: _Array,
    weight: _Array,
    stride: _Dims,
    dilation: _Dims,
    pad_lo: _Dims,
    pad_hi: _Dims,
    groups: int,
    padding_mode: str,
    rank: int,
    needed: tuple[bool, bool, bool],
) -> _Grads: ...
def conv_transpose_forward(
    x: _Array,
    weight: _Array,
    bias: Optional[_Array],
    stride: _Dims,
    dilation: _Dims,
    padding: _Dims,
    output_padding: _Dims,
    groups: int,
    rank: int,
) -> _Array: ...
def conv_transpose_backward(
    grad_out: _Array,
    x: _Array,
    weight: _Array,
    stride: _Dims,
    dilation: _Dims,
    padding: _Dims,
    output_padding: _Dims,
    groups: int,
    rank: int,
    needed: tuple[bool, bool, bool],
) -> _Grads: ...
def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def conv_output_shape(
    input: _Dims,
    kernel: _Dims,
    stride: _Dims,
    dilation: _Dims,
    pad_lo: _Dims,
    pad_hi: _Dims,
    padding_mode: str,
    rank: int,
) -> _Dims: ...
def conv_transpose_output_shape(
    input: _Dims,
    kernel: _Dims,
    stride: _Dims,
    dilation: _Dims,
    padding: _Dims,
    output_padding: _Dims,
    rank: int,
) -> _Dims: ...
def receptive_field(layers: list[tuple[int, int, int]]) -> int: ...
def same_padding(kernel: int, dilation: int) -> tuple[int, int]: ...
def build_info() -> dict[str, Any]: ...
