"""Stubs of the native module.

What crosses the boundary, and who checks what:

- Arrays are batched ``(N, C, *spatial)`` in the caller's rank (1 to 3 spatial
  axes; ``ferroconv._args.batched`` adds the batch axis of unbatched input) and
  come back in the same rank; dtypes are float32/float64/float16/bfloat16 (indices int64), and
  for max pooling and unpooling also int8/uint8/int16/uint16/int32/int64 (``_MaxArray``), checked
  in Python with messages that suggest a fix.
- One spec per op family, :class:`ConvSpec` or :class:`PoolSpec`, built with
  keyword arguments by the family's normaliser in ``ferroconv._spec``. Python
  checks *types and arities*: per-axis values are tuples of ``rank`` ints, options
  are str/bool/int, ints fit a machine word. The spec's constructor and the Rust
  core check *values*: ranges (``stride >= 1``, ``padding >= 0``), the padding
  mode and ``"same"``/``"valid"``, ``"same"`` with a stride, ``output_padding``,
  then at call time channels, sizes, padding limits and output sizes.
- Errors are ``ValueError``/``TypeError``/``MemoryError`` naming the argument;
  the public function adds its own name (``ferroconv._errors``).
"""

from collections.abc import Sequence
from typing import Any, Optional, Union, final

import numpy as np
import numpy.typing as npt

__version__: str
__all__ = [
    "__version__",
    "ConvSpec",
    "PoolSpec",
    "adaptive_avg_pool",
    "adaptive_avg_pool_backward",
    "adaptive_max_pool",
    "avg_pool",
    "avg_pool_backward",
    "batch_norm",
    "batch_norm_backward",
    "lp_pool",
    "lp_pool_backward",
    "build_info",
    "conv_backward",
    "conv_forward",
    "conv_output_shape",
    "explain_conv",
    "explain_pool",
    "fractional_max_pool",
    "get_num_threads",
    "get_precision",
    "get_simd",
    "_set_plan_override",
    "max_pool",
    "max_pool_backward",
    "max_unpool",
    "max_unpool_backward",
    "pool_output_shape",
    "receptive_field",
    "relu",
    "relu_backward",
    "relu_inplace",
    "same_padding",
    "set_num_threads",
    "set_precision",
    "set_simd",
]

_Ints = tuple[int, ...]
_Array = npt.NDArray[np.floating]
_Grads = tuple[Optional[_Array], Optional[_Array], Optional[_Array]]
_Indices = npt.NDArray[np.int64]
_Pooled = tuple[_Array, Optional[_Indices]]
# max pooling and unpooling: floats or the integer types, kept by the result
_MaxArray = npt.NDArray[Union[np.floating, np.integer]]
_MaxPooled = tuple[_MaxArray, Optional[_Indices]]

@final
class ConvSpec:
    """A convolution (``output_padding`` None) or transposed convolution, validated.

    ``padding`` is ``"same"``, ``"valid"`` or ``rank`` ``(lo, hi)`` pairs (for a
    transposed convolution: the cells removed from each end of its full output;
    ``"same"`` is resolved to pairs before)."""

    def __new__(
        cls,
        *,
        rank: int,
        stride: _Ints,
        padding: Union[str, tuple[tuple[int, int], ...]],
        dilation: _Ints,
        groups: int,
        padding_mode: str,
        output_padding: Optional[_Ints] = None,
        kernel_size: Optional[_Ints] = None,
        precision: Optional[str] = None,
        activation: Optional[str] = None,
        negative_slope: float = 0.01,
    ) -> ConvSpec: ...
    @property
    def rank(self) -> int: ...
    @property
    def transposed(self) -> bool: ...
    @property
    def stride(self) -> list[int]: ...
    @property
    def dilation(self) -> list[int]: ...
    @property
    def groups(self) -> int: ...
    @property
    def precision(self) -> Optional[str]: ...
    @property
    def activation(self) -> Optional[str]: ...
    def padding_for(self, kernel: _Ints) -> tuple[list[int], list[int]]: ...
    def __getnewargs_ex__(self) -> tuple[tuple[()], dict[str, Any]]: ...

@final
class PoolSpec:
    """A pooling call's window (``kernel_size`` given: max, average, Lp, unpooling),
    averaging options, and ``output_size`` (adaptive pooling, unpooling); ``stride``
    None means ``kernel_size``; ``padding`` is ``rank`` ints (symmetric), ``rank``
    ``(lo, hi)`` pairs, or ``"same"``, ``"same_lower"``, ``"valid"``."""

    def __new__(
        cls,
        *,
        rank: int,
        kernel_size: Optional[_Ints] = None,
        stride: Optional[_Ints] = None,
        padding: Union[None, str, _Ints, Sequence[tuple[int, int]]] = None,
        dilation: Optional[_Ints] = None,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: Optional[int] = None,
        output_size: Optional[_Ints] = None,
    ) -> PoolSpec: ...
    @property
    def rank(self) -> int: ...
    @property
    def window_sizes(self) -> Optional[tuple[list[int], list[int], list[int]]]: ...
    def pads_for(self, input: _Ints) -> tuple[list[int], list[int]]: ...
    def __getnewargs_ex__(self) -> tuple[tuple[()], dict[str, Any]]: ...

def conv_forward(
    x: _Array,
    weight: _Array,
    bias: Optional[_Array],
    spec: ConvSpec,
    residual: Optional[_Array] = None,
    out: Optional[_Array] = None,
    residual_is_out: bool = False,
) -> Optional[_Array]: ...
def conv_backward(
    grad_out: _Array, x: _Array, weight: _Array, spec: ConvSpec, needs: tuple[bool, bool, bool]
) -> _Grads: ...
def conv_output_shape(input: _Ints, kernel: _Ints, spec: ConvSpec) -> list[int]: ...
def max_pool(x: _MaxArray, spec: PoolSpec, return_indices: bool) -> _MaxPooled: ...
def max_pool_backward(grad_out: _Array, indices: _Indices, input_shape: _Ints) -> _Array: ...
def max_unpool(x: _MaxArray, indices: _Indices, spec: PoolSpec) -> _MaxArray: ...
def max_unpool_backward(grad_out: _MaxArray, indices: _Indices, rank: int) -> _MaxArray: ...
def avg_pool(x: _Array, spec: PoolSpec) -> _Array: ...
def avg_pool_backward(grad_out: _Array, input_shape: _Ints, spec: PoolSpec) -> _Array: ...
def lp_pool(x: _Array, spec: PoolSpec, norm_type: float) -> _Array: ...
def lp_pool_backward(grad_out: _Array, x: _Array, spec: PoolSpec, norm_type: float) -> _Array: ...
def adaptive_avg_pool(x: _Array, spec: PoolSpec) -> _Array: ...
def adaptive_avg_pool_backward(grad_out: _Array, input_shape: _Ints) -> _Array: ...
def adaptive_max_pool(x: _MaxArray, spec: PoolSpec, return_indices: bool) -> _MaxPooled: ...
def fractional_max_pool(x: _MaxArray, starts: Union[_Indices, _Array], output: _Ints, kernel: _Ints,
                        return_indices: bool) -> _MaxPooled: ...
def pool_output_shape(input: _Ints, spec: PoolSpec) -> list[int]: ...
def batch_norm(
    x: _Array,
    running_mean: Optional[_Array],
    running_var: Optional[_Array],
    weight: Optional[_Array],
    bias: Optional[_Array],
    training: bool,
    momentum: float,
    eps: float,
    relu: bool,
) -> tuple[_Array, _Array, _Array]: ...
def batch_norm_backward(
    grad_out: _Array,
    x: _Array,
    weight: Optional[_Array],
    mean: _Array,
    invstd: _Array,
    training: bool,
    relu_output: Optional[_Array],
) -> tuple[_Array, _Array, _Array]: ...
def relu(x: _Array) -> _Array: ...
def relu_inplace(out: _Array) -> None: ...
def relu_backward(grad_out: _Array, output: _Array) -> _Array: ...
def explain_conv(x_shape: _Ints, weight_shape: _Ints, spec: ConvSpec, dtype: str) -> dict[str, Any]: ...
def explain_pool(kind: str, x_shape: _Ints, spec: PoolSpec, dtype: str) -> dict[str, Any]: ...
def set_num_threads(threads: int) -> None: ...
def get_num_threads() -> int: ...
def set_precision(precision: str) -> None: ...
def get_precision() -> str: ...
def set_simd(name: str) -> None: ...
def get_simd() -> str: ...
def _set_plan_override(pass_name: str, algorithm: Optional[str] = None) -> None: ...
def receptive_field(layers: list[tuple[int, int, int]]) -> int: ...
def same_padding(kernel: int, dilation: int) -> tuple[int, int]: ...
def build_info() -> dict[str, Any]: ...
