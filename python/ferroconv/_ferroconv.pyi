"""Stubs of the native module. Arrays are 5-D ``(N, C, D, H, W)``; the public
wrappers in :mod:`ferroconv.functional` add and remove unit axes and normalise
arguments to per-axis 3-tuples."""

from typing import Any, Optional

import numpy as np
import numpy.typing as npt

__version__: str
__all__ = [
    "__version__",
    "adaptive_avg_pool_backward",
    "adaptive_avg_pool_forward",
    "adaptive_max_pool_forward",
    "avg_pool_backward",
    "avg_pool_forward",
    "build_info",
    "conv_backward",
    "conv_forward",
    "conv_output_shape",
    "conv_transpose_backward",
    "conv_transpose_forward",
    "conv_transpose_output_shape",
    "get_num_threads",
    "max_pool_backward",
    "max_pool_forward",
    "max_unpool",
    "pool_output_shape",
    "receptive_field",
    "same_padding",
    "set_num_threads",
]

_Dims = tuple[int, int, int]
_Array = npt.NDArray[np.floating]
_Grads = tuple[Optional[_Array], Optional[_Array], Optional[_Array]]
_Shape = tuple[int, int, int, int, int]
_Indices = npt.NDArray[np.int64]
_Pooled = tuple[_Array, Optional[_Indices]]

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
def max_pool_forward(
    x: _Array,
    kernel: _Dims,
    stride: _Dims,
    padding: _Dims,
    dilation: _Dims,
    ceil_mode: bool,
    rank: int,
    return_indices: bool,
) -> _Pooled: ...
def max_pool_backward(grad_out: _Array, indices: _Indices, input_shape: _Shape, rank: int) -> _Array: ...
def max_unpool(
    x: _Array,
    indices: _Indices,
    kernel: _Dims,
    stride: _Dims,
    padding: _Dims,
    output_size: Optional[_Dims],
    rank: int,
) -> _Array: ...
def avg_pool_forward(
    x: _Array,
    kernel: _Dims,
    stride: _Dims,
    padding: _Dims,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
    rank: int,
) -> _Array: ...
def avg_pool_backward(
    grad_out: _Array,
    input_shape: _Shape,
    kernel: _Dims,
    stride: _Dims,
    padding: _Dims,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Optional[int],
    rank: int,
) -> _Array: ...
def adaptive_avg_pool_forward(x: _Array, output_size: _Dims, rank: int) -> _Array: ...
def adaptive_avg_pool_backward(grad_out: _Array, input_shape: _Shape, rank: int) -> _Array: ...
def adaptive_max_pool_forward(x: _Array, output_size: _Dims, rank: int, return_indices: bool) -> _Pooled: ...
def pool_output_shape(
    input: _Dims,
    kernel: _Dims,
    stride: _Dims,
    padding: _Dims,
    dilation: _Dims,
    ceil_mode: bool,
    rank: int,
) -> _Dims: ...
