"""The functional API: PyTorch's ``torch.nn.functional`` convolution and pooling
semantics on NumPy arrays, computed by the multithreaded Rust core.

Every function accepts float32, float64, float16 or bfloat16 (``ml_dtypes``) arrays
(max pooling, max unpooling and fractional max pooling also int8, uint8, int16, uint16,
int32 and int64) of any memory layout (strided, negative strides, Fortran order,
read-only, either byte order), batched
``(N, C, *S)`` or unbatched ``(C, *S)``, and returns new C-contiguous arrays of
the input's dtype (indices are int64). Bad arguments raise ``ValueError`` or
``TypeError`` with a message that starts with the function's name and names the
argument.

Each public function here is one line over a rank-generic helper: arguments go
through the normaliser of their family (:mod:`ferroconv._spec`) into one spec
value, arrays through :mod:`ferroconv._conv` or :mod:`ferroconv._pool`, and
:func:`ferroconv._errors.public` names the errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union

import numpy as np

from . import _conv, _fractional, _norm, _pool
from . import _ferroconv as _native
from ._args import (
    IntOrTuple,
    as_int,
    flag,
    float_array,
    from_python,
    int_list,
    int_tuple,
    is_sequence,
    same_dtype,
    spatial_shape,
    text,
)
from ._conv import Grads, conv_arrays, needs_triple
from ._docs import (
    ADAPTIVE_AVG_BACKWARD_DOC,
    ADAPTIVE_AVG_DOC,
    ADAPTIVE_MAX_BACKWARD_DOC,
    ADAPTIVE_MAX_DOC,
    AVG_POOL_BACKWARD_DOC,
    AVG_POOL_DOC,
    LP_POOL_BACKWARD_DOC,
    LP_POOL_DOC,
    CONV_BACKWARD_DOC,
    CONV_DOC,
    MAX_POOL_BACKWARD_DOC,
    MAX_POOL_DOC,
    MAX_UNPOOL_BACKWARD_DOC,
    MAX_UNPOOL_DOC,
    TRANSPOSE_BACKWARD_DOC,
    TRANSPOSE_DOC,
    fill_doc,
)
from ._errors import public
from ._explain import AlgorithmCost, PassPlan, Plan
from ._explain import explain_conv as _explain_conv
from ._explain import explain_pool as _explain_pool
from ._pool import Pooled
from ._spec import OutputSize, Padding, conv_spec, pool_spec, transpose_spec
from ._spec import norm_type as _norm_type

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv1d_backward",
    "conv2d_backward",
    "conv3d_backward",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "conv_transpose1d_backward",
    "conv_transpose2d_backward",
    "conv_transpose3d_backward",
    "convolve",
    "conv_output_shape",
    "conv_transpose_output_shape",
    "same_padding",
    "receptive_field",
    "set_num_threads",
    "get_num_threads",
    "set_precision",
    "get_precision",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_pool1d_backward",
    "max_pool2d_backward",
    "max_pool3d_backward",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "max_unpool1d_backward",
    "max_unpool2d_backward",
    "max_unpool3d_backward",
    "fractional_max_pool2d",
    "fractional_max_pool3d",
    "fractional_max_pool2d_backward",
    "fractional_max_pool3d_backward",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "avg_pool1d_backward",
    "avg_pool2d_backward",
    "avg_pool3d_backward",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "lp_pool1d_backward",
    "lp_pool2d_backward",
    "lp_pool3d_backward",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "adaptive_avg_pool1d_backward",
    "adaptive_avg_pool2d_backward",
    "adaptive_avg_pool3d_backward",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "adaptive_max_pool1d_backward",
    "adaptive_max_pool2d_backward",
    "adaptive_max_pool3d_backward",
    "global_avg_pool",
    "global_max_pool",
    "global_lp_pool",
    "batch_norm",
    "batch_norm_backward",
    "relu",
    "relu_backward",
    "pool_output_shape",
    "explain_conv",
    "explain_pool",
]

NeedsArg = tuple[bool, bool, bool]
ALL = (True, True, True)


# ------------------------------------------------------ rank-generic bodies


def _convolution(rank: int, x: object, weight: object, bias: object, stride: IntOrTuple, padding: Padding,
                 dilation: IntOrTuple, groups: object, padding_mode: object, activation: object = None,
                 negative_slope: object = 0.01, residual: object = None, out: object = None,
                 precision: object = None) -> np.ndarray:
    arrays = conv_arrays(rank, x, weight, bias)
    spec = conv_spec(rank, stride, padding, dilation, groups, padding_mode, precision=precision,
                     activation=activation, negative_slope=negative_slope, input_size=arrays.x.shape[2:],
                     kernel=arrays.weight.shape[2:])
    return _conv.forward(arrays, spec, residual, out)


def _convolution_backward(rank: int, grad_out: object, x: object, weight: object, stride: IntOrTuple,
                          padding: Padding, dilation: IntOrTuple, groups: object, padding_mode: object,
                          needs: object, precision: object) -> Grads:
    arrays = conv_arrays(rank, x, weight, grad_out=grad_out, backward=True)
    spec = conv_spec(rank, stride, padding, dilation, groups, padding_mode, precision=precision,
                     input_size=arrays.x.shape[2:], kernel=arrays.weight.shape[2:])
    return _conv.backward(arrays, spec, needs_triple(needs))


def _transpose(rank: int, x: object, weight: object, bias: object, stride: IntOrTuple, padding: Padding,
               output_padding: IntOrTuple, groups: object, dilation: IntOrTuple, activation: object,
               negative_slope: object, residual: object, out: object, precision: object,
               output_size: object = None) -> np.ndarray:
    arrays = conv_arrays(rank, x, weight, bias, transposed=True)
    spec = transpose_spec(rank, stride, padding, output_padding, groups, dilation, precision=precision,
                          activation=activation, negative_slope=negative_slope, output_size=output_size,
                          input_size=arrays.x.shape[2:], kernel=arrays.weight.shape[2:])
    return _conv.forward(arrays, spec, residual, out)


def _transpose_backward(rank: int, grad_out: object, x: object, weight: object, stride: IntOrTuple,
                        padding: Padding, output_padding: IntOrTuple, groups: object,
                        dilation: IntOrTuple, needs: object, precision: object,
                        output_size: object = None) -> Grads:
    arrays = conv_arrays(rank, x, weight, grad_out=grad_out, backward=True, transposed=True)
    spec = transpose_spec(rank, stride, padding, output_padding, groups, dilation, precision=precision,
                          output_size=output_size, input_size=arrays.x.shape[2:], kernel=arrays.weight.shape[2:])
    return _conv.backward(arrays, spec, needs_triple(needs))


def _max_pool(rank: int, x: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
              padding: Padding, dilation: IntOrTuple, ceil_mode: object, return_indices: object) -> Pooled:
    spec = pool_spec(rank, kernel_size, stride, padding, dilation, ceil_mode)
    return _pool.max_pool(rank, x, spec, flag(return_indices, "return_indices"))


def _avg_pool(rank: int, x: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
              padding: Padding, ceil_mode: object, count_include_pad: object,
              divisor_override: object, dilation: IntOrTuple = 1) -> np.ndarray:
    spec = pool_spec(rank, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override)
    return _pool.avg_pool(rank, x, spec)


def _avg_pool_backward(rank: int, grad_out: object, input_shape: object, kernel_size: IntOrTuple,
                       stride: Optional[IntOrTuple], padding: Padding, ceil_mode: object,
                       count_include_pad: object, divisor_override: object,
                       dilation: IntOrTuple = 1) -> np.ndarray:
    spec = pool_spec(rank, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad, divisor_override)
    return _pool.avg_pool_backward(rank, grad_out, input_shape, spec)


def _lp_pool(rank: int, x: object, p: object, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
             ceil_mode: object, padding: Padding, dilation: IntOrTuple) -> np.ndarray:
    spec = pool_spec(rank, kernel_size, stride, padding, dilation, ceil_mode)
    return _pool.lp_pool(rank, x, spec, _norm_type(p))


def _lp_pool_backward(rank: int, grad_out: object, x: object, p: object, kernel_size: IntOrTuple,
                      stride: Optional[IntOrTuple], ceil_mode: object, padding: Padding,
                      dilation: IntOrTuple) -> np.ndarray:
    spec = pool_spec(rank, kernel_size, stride, padding, dilation, ceil_mode)
    return _pool.lp_pool_backward(rank, grad_out, x, spec, _norm_type(p))


def _adaptive_max_pool(rank: int, x: object, output_size: object, return_indices: object) -> Pooled:
    return _pool.adaptive_max_pool(rank, x, output_size, flag(return_indices, "return_indices"))


# ---------------------------------------------------------------- convolution


@public
@fill_doc(CONV_DOC, 1)
def conv1d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
           padding_mode: str = "zeros", *, activation: Optional[str] = None, negative_slope: float = 0.01,
           residual: Optional[np.ndarray] = None, out: Optional[np.ndarray] = None,
           precision: Optional[str] = None) -> np.ndarray:
    return _convolution(1, x, weight, bias, stride, padding, dilation, groups, padding_mode, activation,
                        negative_slope, residual, out, precision)


@public
@fill_doc(CONV_DOC, 2)
def conv2d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
           padding_mode: str = "zeros", *, activation: Optional[str] = None, negative_slope: float = 0.01,
           residual: Optional[np.ndarray] = None, out: Optional[np.ndarray] = None,
           precision: Optional[str] = None) -> np.ndarray:
    return _convolution(2, x, weight, bias, stride, padding, dilation, groups, padding_mode, activation,
                        negative_slope, residual, out, precision)


@public
@fill_doc(CONV_DOC, 3)
def conv3d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
           padding_mode: str = "zeros", *, activation: Optional[str] = None, negative_slope: float = 0.01,
           residual: Optional[np.ndarray] = None, out: Optional[np.ndarray] = None,
           precision: Optional[str] = None) -> np.ndarray:
    return _convolution(3, x, weight, bias, stride, padding, dilation, groups, padding_mode, activation,
                        negative_slope, residual, out, precision)


@public
@fill_doc(CONV_BACKWARD_DOC, 1)
def conv1d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                    padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
                    padding_mode: str = "zeros", needs: NeedsArg = ALL, *,
                    precision: Optional[str] = None) -> Grads:
    return _convolution_backward(1, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, needs,
                                 precision)


@public
@fill_doc(CONV_BACKWARD_DOC, 2)
def conv2d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                    padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
                    padding_mode: str = "zeros", needs: NeedsArg = ALL, *,
                    precision: Optional[str] = None) -> Grads:
    return _convolution_backward(2, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, needs,
                                 precision)


@public
@fill_doc(CONV_BACKWARD_DOC, 3)
def conv3d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                    padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
                    padding_mode: str = "zeros", needs: NeedsArg = ALL, *,
                    precision: Optional[str] = None) -> Grads:
    return _convolution_backward(3, grad_out, x, weight, stride, padding, dilation, groups, padding_mode, needs,
                                 precision)


# ------------------------------------------------------ transposed convolution


@public
@fill_doc(TRANSPOSE_DOC, 1)
def conv_transpose1d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                     stride: IntOrTuple = 1, padding: Padding = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1, *, output_size: Optional[IntOrTuple] = None,
                     activation: Optional[str] = None,
                     negative_slope: float = 0.01, residual: Optional[np.ndarray] = None,
                     out: Optional[np.ndarray] = None, precision: Optional[str] = None) -> np.ndarray:
    return _transpose(1, x, weight, bias, stride, padding, output_padding, groups, dilation, activation,
                      negative_slope, residual, out, precision, output_size)


@public
@fill_doc(TRANSPOSE_DOC, 2)
def conv_transpose2d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                     stride: IntOrTuple = 1, padding: Padding = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1, *, output_size: Optional[IntOrTuple] = None,
                     activation: Optional[str] = None,
                     negative_slope: float = 0.01, residual: Optional[np.ndarray] = None,
                     out: Optional[np.ndarray] = None, precision: Optional[str] = None) -> np.ndarray:
    return _transpose(2, x, weight, bias, stride, padding, output_padding, groups, dilation, activation,
                      negative_slope, residual, out, precision, output_size)


@public
@fill_doc(TRANSPOSE_DOC, 3)
def conv_transpose3d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                     stride: IntOrTuple = 1, padding: Padding = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1, *, output_size: Optional[IntOrTuple] = None,
                     activation: Optional[str] = None,
                     negative_slope: float = 0.01, residual: Optional[np.ndarray] = None,
                     out: Optional[np.ndarray] = None, precision: Optional[str] = None) -> np.ndarray:
    return _transpose(3, x, weight, bias, stride, padding, output_padding, groups, dilation, activation,
                      negative_slope, residual, out, precision, output_size)


@public
@fill_doc(TRANSPOSE_BACKWARD_DOC, 1)
def conv_transpose1d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                              padding: Padding = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                              dilation: IntOrTuple = 1, needs: NeedsArg = ALL, *,
                              output_size: Optional[IntOrTuple] = None,
                              precision: Optional[str] = None) -> Grads:
    return _transpose_backward(1, grad_out, x, weight, stride, padding, output_padding, groups, dilation,
                               needs, precision, output_size)


@public
@fill_doc(TRANSPOSE_BACKWARD_DOC, 2)
def conv_transpose2d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                              padding: Padding = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                              dilation: IntOrTuple = 1, needs: NeedsArg = ALL, *,
                              output_size: Optional[IntOrTuple] = None,
                              precision: Optional[str] = None) -> Grads:
    return _transpose_backward(2, grad_out, x, weight, stride, padding, output_padding, groups, dilation,
                               needs, precision, output_size)


@public
@fill_doc(TRANSPOSE_BACKWARD_DOC, 3)
def conv_transpose3d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                              padding: Padding = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                              dilation: IntOrTuple = 1, needs: NeedsArg = ALL, *,
                              output_size: Optional[IntOrTuple] = None,
                              precision: Optional[str] = None) -> Grads:
    return _transpose_backward(3, grad_out, x, weight, stride, padding, output_padding, groups, dilation,
                               needs, precision, output_size)


# ------------------------------------------------------------ true convolution


@public
def convolve(x: np.ndarray, kernel: np.ndarray, mode: str = "full", *, multichannel: bool = False) -> np.ndarray:
    """True (flipped-kernel) convolution of signal processing, in 1, 2 or 3 dimensions.

    ``full[i] = sum_k x[i - k] * kernel[k]``: the kernel is flipped, unlike the
    cross-correlation of :func:`conv2d` and every deep-learning framework. The
    result equals ``scipy.signal.convolve(x, kernel, mode)``.

    Parameters
    ----------
    x : ndarray
        A signal of 1 to 3 axes; with ``multichannel=True``, ``(C, *S)``.
    kernel : ndarray
        Same number of axes as the signal; with ``multichannel=True`` either
        ``(*K)`` (shared by every channel) or ``(C, *K)`` (one per channel).
    mode : {"full", "same", "valid"}
        ``full``: every overlap, size ``S + K - 1``; ``same``: size ``S``, centred
        on the full result as scipy does; ``valid``: only full overlaps, ``S - K + 1``.
    multichannel : bool
        Treat the first axis of ``x`` as channels.

    Returns
    -------
    ndarray
        The convolution, same dtype as ``x``.

    Raises
    ------
    ValueError
        Unknown mode, mismatched axes or channels, an empty kernel, or a kernel
        larger than the signal in ``valid`` mode.
    TypeError
        Non-float or mismatched dtypes.

    Examples
    --------
    >>> import numpy as np, ferroconv as fc
    >>> fc.convolve(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
    array([0. , 1. , 2.5, 4. , 1.5])
    """
    signal = float_array(x, "x")
    kern = float_array(kernel, "kernel")
    converted = frozenset(name for name, value in (("x", x), ("kernel", kernel)) if from_python(value))
    same_dtype(signal, "x", converted, kernel=kern)
    if not isinstance(mode, str) or mode not in ("full", "same", "valid"):
        raise ValueError(f"mode must be 'full', 'same' or 'valid', got {mode!r}")
    if multichannel:
        rank = signal.ndim - 1
        if not 1 <= rank <= 3:
            raise ValueError(
                f"with multichannel=True x must be (C, *S) with 1 to 3 spatial axes, got shape {signal.shape}"
            )
        channels = signal.shape[0]
        if kern.ndim == rank:
            kern = np.broadcast_to(kern, (channels,) + kern.shape)
        elif kern.ndim != rank + 1 or kern.shape[0] != channels:
            raise ValueError(
                f"kernel must be {rank}-D or ({channels}, ...) {rank + 1}-D for x of shape {signal.shape}, "
                f"got shape {kern.shape}"
            )
    else:
        rank = signal.ndim
        if not 1 <= rank <= 3 or kern.ndim != rank:
            raise ValueError(
                f"x and kernel must have the same number of axes (1 to 3), got shapes {signal.shape} and {kern.shape}"
            )
        signal, kern = signal[np.newaxis], kern[np.newaxis]
    ksize = kern.shape[1:]
    if 0 in ksize:
        raise ValueError(f"kernel must not be empty, got shape {kern.shape}")
    if mode == "valid" and any(k > s for k, s in zip(ksize, signal.shape[1:])):
        raise ValueError(
            f"in 'valid' mode the kernel {ksize} must not be larger than the signal {signal.shape[1:]}"
        )
    if mode == "full":
        pads: Any = tuple((k - 1, k - 1) for k in ksize)
    elif mode == "same":
        pads = tuple((k - 1 - (k - 1) // 2, (k - 1) // 2) for k in ksize)
    else:
        pads = 0
    flipped = kern[(slice(None),) + (slice(None, None, -1),) * rank][:, np.newaxis]
    out = _convolution(rank, signal, flipped, None, 1, pads, 1, signal.shape[0], "zeros")
    return out if multichannel else out[0]


# ---------------------------------------------------------------- geometry


@public
def conv_output_shape(input_shape: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                      padding: Padding = 0, dilation: IntOrTuple = 1,
                      padding_mode: str = "zeros") -> tuple[int, ...]:
    """Spatial output size of a convolution: ``(S + lo + hi - d (k - 1) - 1) // s + 1``.

    Parameters
    ----------
    input_shape : int or tuple of ints
        Spatial input size (1 to 3 axes; no batch or channel axes).
    kernel_size, stride, dilation : int or tuple of ints
    padding : int, tuple, "same", "valid" or tuple of (lo, hi) pairs
    padding_mode : str
        Checked against the padding limits of reflect/replicate/circular.

    Returns
    -------
    tuple of ints

    Raises
    ------
    ValueError
        When the output would be empty or an argument is out of range.

    Examples
    --------
    >>> import ferroconv as fc
    >>> fc.conv_output_shape((32, 32), 5)
    (28, 28)
    >>> fc.conv_output_shape((224, 224), 7, stride=2, padding=3)
    (112, 112)
    """
    spatial = spatial_shape(input_shape, "input_shape")
    rank = len(spatial)
    kernel = int_tuple(kernel_size, rank, "kernel_size")
    return _conv.output_shape(spatial, kernel, conv_spec(rank, stride, padding, dilation, 1, padding_mode,
                                                         input_size=spatial, kernel=kernel))


@public
def conv_transpose_output_shape(input_shape: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                                padding: Padding = 0, output_padding: IntOrTuple = 0,
                                dilation: IntOrTuple = 1) -> tuple[int, ...]:
    """Spatial output size of a transposed convolution:
    ``(L - 1) * s - lo - hi + d (k - 1) + output_padding + 1`` (``lo = hi = p`` for
    an int ``padding``; ``padding`` as :func:`conv_transpose2d` takes it).

    Examples
    --------
    >>> import ferroconv as fc
    >>> fc.conv_transpose_output_shape((28, 28), 4, stride=2, padding=1)
    (56, 56)
    """
    spatial = spatial_shape(input_shape, "input_shape")
    rank = len(spatial)
    kernel = int_tuple(kernel_size, rank, "kernel_size")
    spec = transpose_spec(rank, stride, padding, output_padding, 1, dilation, input_size=spatial, kernel=kernel)
    return _conv.output_shape(spatial, kernel, spec)


@public
def same_padding(kernel_size: int, dilation: int = 1) -> tuple[int, int]:
    """Padding ``(lo, hi)`` that keeps the size of a stride-1 convolution: the total
    ``dilation * (kernel_size - 1)`` with an odd extra cell at the end (PyTorch's rule).

    Examples
    --------
    >>> import ferroconv as fc
    >>> fc.same_padding(5)
    (2, 2)
    >>> fc.same_padding(4)
    (1, 2)
    """
    lo, hi = _native.same_padding(as_int(kernel_size, "kernel_size"), as_int(dilation, "dilation"))
    return int(lo), int(hi)


@public
def receptive_field(layers: Iterable[Union[int, Sequence[int]]]) -> int:
    """Receptive field (along one axis) of a stack of convolution/pooling layers.

    Each layer is ``kernel``, ``(kernel, stride)`` or ``(kernel, stride, dilation)``;
    the field is ``1 + sum_i (k_i - 1) d_i prod_{j<i} s_j``.

    Examples
    --------
    >>> import ferroconv as fc
    >>> fc.receptive_field([(3, 1, 1)] * 4)   # four 3x3 convs: 1 + 4 * 2
    9
    >>> fc.receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)])   # dilated stack
    15
    """
    parsed = []
    for i, layer in enumerate(layers):
        name = f"layers[{i}]"
        values = int_list(layer, name) if is_sequence(layer) else [as_int(layer, name)]
        if not 1 <= len(values) <= 3:
            raise ValueError(f"{name} must be (kernel, stride, dilation), got {tuple(values)}")
        values += [1] * (3 - len(values))
        parsed.append((values[0], values[1], values[2]))
    return int(_native.receptive_field(parsed))


# ------------------------------------------------------------------ threads


@public
def set_num_threads(threads: int) -> None:
    """Set the number of threads every later call uses (default: the number of
    cores, or the ``FERROCONV_NUM_THREADS`` environment variable). Results are
    bit-identical for any thread count. When there is one worker per CPU the
    process may run on, each worker is pinned to its CPU (steadier timing on
    shared machines); ``FERROCONV_PIN_THREADS=0`` turns that off.

    Raises
    ------
    ValueError
        If ``threads < 1``.
    """
    _native.set_num_threads(as_int(threads, "threads"))


def get_num_threads() -> int:
    """The number of threads the next call will use."""
    return int(_native.get_num_threads())


# ------------------------------------------------------------------ precision


@public
def set_precision(precision: str) -> None:
    """Set the precision of every later convolution that does not pass its own
    ``precision=`` (the default is ``"default"``, or the ``FERROCONV_PRECISION``
    environment variable, read when ferroconv is imported).

    Parameters
    ----------
    precision : {"default", "highest"}
        ``"default"`` lets the plan pick the fastest algorithm, including
        Winograd F(4x4, 3x3) for 3x3 layers, whose transforms add rounding (an
        RMS relative error of a few 1e-6 in float32); ``"highest"`` allows only
        algorithms that sum each output's products directly (the accuracy of
        PyTorch's direct convolution). The README lists each algorithm's error
        budget.

    Raises
    ------
    ValueError
        If ``precision`` is not one of the two names.
    """
    _native.set_precision(text(precision, "precision"))


def get_precision() -> str:
    """The precision of convolutions that do not pass their own: ``"default"``
    or ``"highest"`` (see :func:`set_precision`)."""
    return str(_native.get_precision())


# ------------------------------------------------------------- max pooling


@public
@fill_doc(MAX_POOL_DOC, 1)
def max_pool1d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Pooled:
    return _max_pool(1, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@public
@fill_doc(MAX_POOL_DOC, 2)
def max_pool2d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Pooled:
    return _max_pool(2, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@public
@fill_doc(MAX_POOL_DOC, 3)
def max_pool3d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, dilation: IntOrTuple = 1, ceil_mode: bool = False,
               return_indices: bool = False) -> Pooled:
    return _max_pool(3, x, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


@public
@fill_doc(MAX_POOL_BACKWARD_DOC, 1)
def max_pool1d_backward(grad_out: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(1, grad_out, indices, input_shape)


@public
@fill_doc(MAX_POOL_BACKWARD_DOC, 2)
def max_pool2d_backward(grad_out: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(2, grad_out, indices, input_shape)


@public
@fill_doc(MAX_POOL_BACKWARD_DOC, 3)
def max_pool3d_backward(grad_out: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(3, grad_out, indices, input_shape)


@public
@fill_doc(MAX_UNPOOL_DOC, 1)
def max_unpool1d(x: np.ndarray, indices: np.ndarray, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 output_size: Optional[IntOrTuple] = None) -> np.ndarray:
    return _pool.max_unpool(1, x, indices, kernel_size, stride, padding, output_size)


@public
@fill_doc(MAX_UNPOOL_DOC, 2)
def max_unpool2d(x: np.ndarray, indices: np.ndarray, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 output_size: Optional[IntOrTuple] = None) -> np.ndarray:
    return _pool.max_unpool(2, x, indices, kernel_size, stride, padding, output_size)


@public
@fill_doc(MAX_UNPOOL_DOC, 3)
def max_unpool3d(x: np.ndarray, indices: np.ndarray, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 output_size: Optional[IntOrTuple] = None) -> np.ndarray:
    return _pool.max_unpool(3, x, indices, kernel_size, stride, padding, output_size)


@public
@fill_doc(MAX_UNPOOL_BACKWARD_DOC, 1)
def max_unpool1d_backward(grad_out: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return _pool.max_unpool_backward(1, grad_out, indices)


@public
@fill_doc(MAX_UNPOOL_BACKWARD_DOC, 2)
def max_unpool2d_backward(grad_out: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return _pool.max_unpool_backward(2, grad_out, indices)


@public
@fill_doc(MAX_UNPOOL_BACKWARD_DOC, 3)
def max_unpool3d_backward(grad_out: np.ndarray, indices: np.ndarray) -> np.ndarray:
    return _pool.max_unpool_backward(3, grad_out, indices)


# ------------------------------------------------- fractional max pooling

FRACTIONAL_DOC = """{rank}-D fractional max pooling, as ``torch.nn.functional.fractional_max_pool{rank}d``
(Graham, 2014): windows of ``kernel_size`` cells whose starts follow a
pseudo-random sequence per (sample, channel) plane, so the output size need not
divide the input.

Parameters
----------
x : ndarray
    ``{layout}``, or unbatched; float32, float64, float16 or bfloat16, or int8,
    uint8, int16, uint16, int32 or int64 (the windows are then placed with float64
    samples, or the given samples' float dtype).
kernel_size : int or tuple of {rank} ints
output_size : int or tuple of {rank} ints, optional
    The spatial output size; or
output_ratio : float or tuple of {rank} floats in (0, 1), optional
    the output size as a fraction of the input's (truncated, as PyTorch).
    Exactly one of the two is given; ``output + kernel - 1`` may not exceed the
    input on any axis.
return_indices : bool
    Also return the flat per-plane index of every maximum (int64), for
    :func:`fractional_max_pool{rank}d_backward` and ``max_unpool{rank}d``.
random_samples : ndarray, optional
    ``(N, C, {rank})`` numbers in ``[0, 1)`` (``N = 1`` for unbatched input) that
    place the windows, PyTorch's ``_random_samples`` (the same samples give
    PyTorch's windows; sample 0 drives {sample_axes}); drawn from ``rng`` when
    omitted.
rng : numpy.random.Generator or int, optional
    Where new samples come from (a seed makes a call reproducible).

Returns
-------
ndarray, or (ndarray, ndarray)
    The maxima ``(N, C, *output_size)``, and the indices when asked.

Examples
--------
>>> import numpy as np
>>> import ferroconv as fc
>>> x = np.arange(2 * 3 * {numel}, dtype=np.float32).reshape({example_shape})
>>> fc.fractional_max_pool{rank}d(x, 2, output_ratio=0.5, rng=0).shape
{example_out}
"""

FRACTIONAL_BACKWARD_DOC = """Gradient of :func:`fractional_max_pool{rank}d`: ``grad_out`` added into zeros
of ``input_shape`` at the forward call's ``indices`` (as
:func:`max_pool{rank}d_backward`).

Parameters
----------
grad_out : ndarray
    Gradient of the loss with respect to the pooled output.
indices : ndarray
    The int64 indices the forward call returned.
input_shape : tuple of int
    The forward input's shape (or its spatial size).

Returns
-------
ndarray
    The gradient with respect to the forward input.
"""


def _fractional_doc(rank: int, template: str) -> str:
    if rank == 2:
        return template.format(rank=2, layout="(N, C, H, W)", sample_axes="W and sample 1 drives H",
                               numel=36, example_shape="(2, 3, 6, 6)", example_out="(2, 3, 3, 3)")
    return template.format(rank=3, layout="(N, C, D, H, W)", sample_axes="D, then H, then W",
                           numel=64, example_shape="(2, 3, 4, 4, 4)", example_out="(2, 3, 2, 2, 2)")


@public
def fractional_max_pool2d(x: np.ndarray, kernel_size: IntOrTuple, output_size: Optional[IntOrTuple] = None,
                          output_ratio: Optional[Union[float, Sequence[float]]] = None,
                          return_indices: bool = False, random_samples: Optional[np.ndarray] = None, *,
                          rng: Union[None, int, np.random.Generator] = None) -> Pooled:
    return _fractional.fractional_max_pool(2, x, kernel_size, output_size, output_ratio,
                                           flag(return_indices, "return_indices"), random_samples, rng)


@public
def fractional_max_pool3d(x: np.ndarray, kernel_size: IntOrTuple, output_size: Optional[IntOrTuple] = None,
                          output_ratio: Optional[Union[float, Sequence[float]]] = None,
                          return_indices: bool = False, random_samples: Optional[np.ndarray] = None, *,
                          rng: Union[None, int, np.random.Generator] = None) -> Pooled:
    return _fractional.fractional_max_pool(3, x, kernel_size, output_size, output_ratio,
                                           flag(return_indices, "return_indices"), random_samples, rng)


@public
def fractional_max_pool2d_backward(grad_out: np.ndarray, indices: np.ndarray,
                                   input_shape: tuple[int, ...]) -> np.ndarray:
    return _fractional.fractional_backward(2, grad_out, indices, input_shape)


@public
def fractional_max_pool3d_backward(grad_out: np.ndarray, indices: np.ndarray,
                                   input_shape: tuple[int, ...]) -> np.ndarray:
    return _fractional.fractional_backward(3, grad_out, indices, input_shape)


for _rank, _forward, _backward in ((2, fractional_max_pool2d, fractional_max_pool2d_backward),
                                   (3, fractional_max_pool3d, fractional_max_pool3d_backward)):
    _forward.__doc__ = _fractional_doc(_rank, FRACTIONAL_DOC)
    _backward.__doc__ = _fractional_doc(_rank, FRACTIONAL_BACKWARD_DOC)


# --------------------------------------------------------- average pooling


@public
@fill_doc(AVG_POOL_DOC, 1)
def avg_pool1d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None, dilation: IntOrTuple = 1) -> np.ndarray:
    return _avg_pool(1, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, dilation)


@public
@fill_doc(AVG_POOL_DOC, 2)
def avg_pool2d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None, dilation: IntOrTuple = 1) -> np.ndarray:
    return _avg_pool(2, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, dilation)


@public
@fill_doc(AVG_POOL_DOC, 3)
def avg_pool3d(x: np.ndarray, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
               padding: Padding = 0, ceil_mode: bool = False, count_include_pad: bool = True,
               divisor_override: Optional[int] = None, dilation: IntOrTuple = 1) -> np.ndarray:
    return _avg_pool(3, x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, dilation)


@public
@fill_doc(AVG_POOL_BACKWARD_DOC, 1)
def avg_pool1d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntOrTuple,
                        stride: Optional[IntOrTuple] = None, padding: Padding = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True, divisor_override: Optional[int] = None,
                        dilation: IntOrTuple = 1) -> np.ndarray:
    return _avg_pool_backward(1, grad_out, input_shape, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override, dilation)


@public
@fill_doc(AVG_POOL_BACKWARD_DOC, 2)
def avg_pool2d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntOrTuple,
                        stride: Optional[IntOrTuple] = None, padding: Padding = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True, divisor_override: Optional[int] = None,
                        dilation: IntOrTuple = 1) -> np.ndarray:
    return _avg_pool_backward(2, grad_out, input_shape, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override, dilation)


@public
@fill_doc(AVG_POOL_BACKWARD_DOC, 3)
def avg_pool3d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...], kernel_size: IntOrTuple,
                        stride: Optional[IntOrTuple] = None, padding: Padding = 0, ceil_mode: bool = False,
                        count_include_pad: bool = True, divisor_override: Optional[int] = None,
                        dilation: IntOrTuple = 1) -> np.ndarray:
    return _avg_pool_backward(3, grad_out, input_shape, kernel_size, stride, padding, ceil_mode,
                              count_include_pad, divisor_override, dilation)


# ------------------------------------------------------------- Lp pooling

@public
@fill_doc(LP_POOL_DOC, 1)
def lp_pool1d(x: np.ndarray, norm_type: float, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
              ceil_mode: bool = False, padding: Padding = 0, dilation: IntOrTuple = 1) -> np.ndarray:
    return _lp_pool(1, x, norm_type, kernel_size, stride, ceil_mode, padding, dilation)


@public
@fill_doc(LP_POOL_DOC, 2)
def lp_pool2d(x: np.ndarray, norm_type: float, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
              ceil_mode: bool = False, padding: Padding = 0, dilation: IntOrTuple = 1) -> np.ndarray:
    return _lp_pool(2, x, norm_type, kernel_size, stride, ceil_mode, padding, dilation)


@public
@fill_doc(LP_POOL_DOC, 3)
def lp_pool3d(x: np.ndarray, norm_type: float, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
              ceil_mode: bool = False, padding: Padding = 0, dilation: IntOrTuple = 1) -> np.ndarray:
    return _lp_pool(3, x, norm_type, kernel_size, stride, ceil_mode, padding, dilation)


@public
@fill_doc(LP_POOL_BACKWARD_DOC, 1)
def lp_pool1d_backward(grad_out: np.ndarray, x: np.ndarray, norm_type: float, kernel_size: IntOrTuple,
                       stride: Optional[IntOrTuple] = None, ceil_mode: bool = False, padding: Padding = 0,
                       dilation: IntOrTuple = 1) -> np.ndarray:
    return _lp_pool_backward(1, grad_out, x, norm_type, kernel_size, stride, ceil_mode, padding, dilation)


@public
@fill_doc(LP_POOL_BACKWARD_DOC, 2)
def lp_pool2d_backward(grad_out: np.ndarray, x: np.ndarray, norm_type: float, kernel_size: IntOrTuple,
                       stride: Optional[IntOrTuple] = None, ceil_mode: bool = False, padding: Padding = 0,
                       dilation: IntOrTuple = 1) -> np.ndarray:
    return _lp_pool_backward(2, grad_out, x, norm_type, kernel_size, stride, ceil_mode, padding, dilation)


@public
@fill_doc(LP_POOL_BACKWARD_DOC, 3)
def lp_pool3d_backward(grad_out: np.ndarray, x: np.ndarray, norm_type: float, kernel_size: IntOrTuple,
                       stride: Optional[IntOrTuple] = None, ceil_mode: bool = False, padding: Padding = 0,
                       dilation: IntOrTuple = 1) -> np.ndarray:
    return _lp_pool_backward(3, grad_out, x, norm_type, kernel_size, stride, ceil_mode, padding, dilation)


# -------------------------------------------------------- adaptive pooling


@public
@fill_doc(ADAPTIVE_AVG_DOC, 1)
def adaptive_avg_pool1d(x: np.ndarray, output_size: OutputSize) -> np.ndarray:
    return _pool.adaptive_avg_pool(1, x, output_size)


@public
@fill_doc(ADAPTIVE_AVG_DOC, 2)
def adaptive_avg_pool2d(x: np.ndarray, output_size: OutputSize) -> np.ndarray:
    return _pool.adaptive_avg_pool(2, x, output_size)


@public
@fill_doc(ADAPTIVE_AVG_DOC, 3)
def adaptive_avg_pool3d(x: np.ndarray, output_size: OutputSize) -> np.ndarray:
    return _pool.adaptive_avg_pool(3, x, output_size)


@public
@fill_doc(ADAPTIVE_AVG_BACKWARD_DOC, 1)
def adaptive_avg_pool1d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.adaptive_avg_pool_backward(1, grad_out, input_shape)


@public
@fill_doc(ADAPTIVE_AVG_BACKWARD_DOC, 2)
def adaptive_avg_pool2d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.adaptive_avg_pool_backward(2, grad_out, input_shape)


@public
@fill_doc(ADAPTIVE_AVG_BACKWARD_DOC, 3)
def adaptive_avg_pool3d_backward(grad_out: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.adaptive_avg_pool_backward(3, grad_out, input_shape)


@public
@fill_doc(ADAPTIVE_MAX_DOC, 1)
def adaptive_max_pool1d(x: np.ndarray, output_size: OutputSize, return_indices: bool = False) -> Pooled:
    return _adaptive_max_pool(1, x, output_size, return_indices)


@public
@fill_doc(ADAPTIVE_MAX_DOC, 2)
def adaptive_max_pool2d(x: np.ndarray, output_size: OutputSize, return_indices: bool = False) -> Pooled:
    return _adaptive_max_pool(2, x, output_size, return_indices)


@public
@fill_doc(ADAPTIVE_MAX_DOC, 3)
def adaptive_max_pool3d(x: np.ndarray, output_size: OutputSize, return_indices: bool = False) -> Pooled:
    return _adaptive_max_pool(3, x, output_size, return_indices)


@public
@fill_doc(ADAPTIVE_MAX_BACKWARD_DOC, 1)
def adaptive_max_pool1d_backward(grad_out: np.ndarray, indices: np.ndarray,
                                 input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(1, grad_out, indices, input_shape)


@public
@fill_doc(ADAPTIVE_MAX_BACKWARD_DOC, 2)
def adaptive_max_pool2d_backward(grad_out: np.ndarray, indices: np.ndarray,
                                 input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(2, grad_out, indices, input_shape)


@public
@fill_doc(ADAPTIVE_MAX_BACKWARD_DOC, 3)
def adaptive_max_pool3d_backward(grad_out: np.ndarray, indices: np.ndarray,
                                 input_shape: tuple[int, ...]) -> np.ndarray:
    return _pool.max_pool_backward(3, grad_out, indices, input_shape)


# ---------------------------------------------------------- global pooling


@public
def global_avg_pool(x: np.ndarray, keepdims: bool = True) -> np.ndarray:
    """Mean over all spatial axes of a batched input, keeping them as size-1 axes
    (adaptive average pooling to size 1) unless ``keepdims=False``.

    Parameters
    ----------
    x : ndarray
        ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``, of a float dtype.
        Only batched input: the number of spatial axes is read from ``x.ndim``.
    keepdims : bool
        Keep the spatial axes as unit axes (default), or return ``(N, C)``.

    Returns
    -------
    ndarray
        ``(N, C, 1, ...)`` with one unit axis per spatial axis, or ``(N, C)``.

    Raises
    ------
    ValueError
        ``x`` with fewer than 3 or more than 5 axes, or an empty spatial size.
    TypeError
        Integer input (average pooling of integers is not defined here) or
        boolean input.

    Examples
    --------
    >>> import numpy as np, ferroconv as fc
    >>> fc.global_avg_pool(np.arange(8.0).reshape(1, 2, 2, 2))
    array([[[[1.5]],
    <BLANKLINE>
            [[5.5]]]])
    """
    return _pool.global_avg_pool(x, flag(keepdims, "keepdims"))


@public
def global_max_pool(x: np.ndarray, return_indices: bool = False, keepdims: bool = True) -> Pooled:
    """Max over all spatial axes of a batched input, keeping them as size-1 axes
    (adaptive max pooling to size 1) unless ``keepdims=False``.

    Parameters
    ----------
    x : ndarray
        ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``, of a float dtype
        or int8, uint8, int16, uint16, int32 or int64 (kept by the result).
    return_indices : bool
        Also return the flat index of each maximum within its ``(n, c)`` plane
        (int64; usable with ``adaptive_max_pool{1,2,3}d_backward`` when kept
        with their unit axes).
    keepdims : bool
        Keep the spatial axes as unit axes (default), or return ``(N, C)``.

    Returns
    -------
    ndarray or (ndarray, ndarray)
        ``(N, C, 1, ...)`` (or ``(N, C)``) values, and indices when ``return_indices``.

    Raises
    ------
    ValueError, TypeError
        As :func:`global_avg_pool`, but integer input is taken.

    Examples
    --------
    >>> import numpy as np, ferroconv as fc
    >>> fc.global_max_pool(np.array([[[3, -7, 12], [-128, -128, -128]]], np.int8), keepdims=False)
    array([[  12, -128]], dtype=int8)
    """
    return _pool.global_max_pool(x, flag(return_indices, "return_indices"), flag(keepdims, "keepdims"))


# -------------------------------------------------- normalisation and ReLU


@public
def batch_norm(x: np.ndarray, running_mean: Optional[np.ndarray], running_var: Optional[np.ndarray],
               weight: Optional[np.ndarray] = None, bias: Optional[np.ndarray] = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, relu: bool = False,
               return_stats: bool = False) -> Union[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Batch normalisation per channel, as ``torch.nn.functional.batch_norm``:
    ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    With ``training=True`` the mean and biased variance are the batch's (over
    every axis but the channel axis 1) and ``running_mean`` / ``running_var``, if
    given, are updated in place: ``running = (1 - momentum) * running + momentum *
    batch``, with the unbiased batch variance. With ``training=False`` the running
    statistics are the mean and variance. The statistics are accumulated in
    float64 (also for float32 input); results are bit-identical for any thread
    count.

    Parameters
    ----------
    x : ndarray
        ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``, any layout.
    running_mean, running_var : ndarray or None
        ``(C,)``, of ``x``'s dtype (float32 also for 16-bit ``x``). Required when
        ``training`` is False; updated in place when it is True (then they must be
        writeable arrays; both or neither).
    weight, bias : ndarray, optional
        ``(C,)`` scale and shift (None: 1 and 0).
    training : bool
        Normalise by the batch's statistics (and update the running ones).
    momentum : float
        Weight of the batch in the running statistics, in ``[0, 1]``.
    eps : float
        Added to the variance before the square root, ``> 0``.
    relu : bool
        Fused ReLU: return ``max(y, 0)`` (its backward:
        ``batch_norm_backward(..., relu_output=y)``).
    return_stats : bool
        Also return the per-channel ``mean`` and ``invstd = 1 / sqrt(var + eps)``
        that ``x`` was normalised by: the arguments of :func:`batch_norm_backward`.

    Returns
    -------
    ndarray or (ndarray, ndarray, ndarray)
        ``y`` of ``x``'s shape and dtype (C-contiguous); with ``return_stats``,
        ``(y, mean, invstd)``, the statistics of shape ``(C,)`` in ``x``'s dtype
        (float32 for 16-bit ``x``, which is computed in float32 and rounded once).

    Raises
    ------
    ValueError
        Per-channel arrays not of shape ``(C,)``, only 1 value per channel in
        training, missing running statistics in eval mode, ``momentum`` or
        ``eps`` out of range, read-only running statistics in training.
    TypeError
        Mismatched dtypes, non-float arrays.

    Examples
    --------
    >>> import numpy as np, ferroconv as fc
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> running_mean, running_var = np.zeros(2), np.ones(2)
    >>> fc.batch_norm(x, running_mean, running_var, training=True, eps=0.0001).round(3)
    array([[-1., -1.],
           [ 1.,  1.]])
    >>> running_mean, running_var
    (array([0.2, 2. ]), array([ 1.1, 20.9]))
    """
    y, mean, invstd = _norm.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps, relu)
    return (y, mean, invstd) if flag(return_stats, "return_stats") else y


@public
def batch_norm_backward(grad_out: np.ndarray, x: np.ndarray, weight: Optional[np.ndarray], mean: np.ndarray,
                        invstd: np.ndarray, training: bool = True, *,
                        relu_output: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`batch_norm` with respect to ``x``, ``weight`` and ``bias``.

    Parameters
    ----------
    grad_out : ndarray
        Gradient of the loss with respect to the forward's output (``x``'s shape
        and dtype, any layout).
    x : ndarray
        The forward's input.
    weight : ndarray or None
        The forward's weight, ``(C,)`` (None: a unit weight).
    mean, invstd : ndarray
        ``(C,)``: the statistics ``batch_norm(..., return_stats=True)`` returned.
    training : bool
        Whether the forward normalised by the batch's statistics (which then
        depend on ``x``: PyTorch's training-mode gradient) or by constants (eval
        mode: ``grad_input = grad_out * weight * invstd``).
    relu_output : ndarray, optional
        The forward's output when it had ``relu=True``: ``grad_out`` is zero
        where it is not positive.

    Returns
    -------
    (ndarray, ndarray, ndarray)
        ``grad_input`` (``x``'s shape), ``grad_weight`` and ``grad_bias``
        (``(C,)``; also without a weight, as those of a unit weight and a zero
        bias), in ``x``'s dtype.

    Raises
    ------
    ValueError, TypeError
        Shapes or dtypes that do not fit together.

    Examples
    --------
    >>> import numpy as np, ferroconv as fc
    >>> x = np.array([[1.0], [3.0]])
    >>> y, mean, invstd = fc.batch_norm(x, None, None, training=True, eps=1e-8, return_stats=True)
    >>> grad_x, grad_w, grad_b = fc.batch_norm_backward(np.ones((2, 1)), x, None, mean, invstd)
    >>> grad_x.round(6), grad_w.round(6), grad_b
    (array([[0.],
           [0.]]), array([0.]), array([2.]))
    """
    return _norm.batch_norm_backward(grad_out, x, weight, mean, invstd, training, relu_output)


@public
def relu(x: np.ndarray, out: Optional[np.ndarray] = None) -> np.ndarray:
    """``max(x, 0)`` element-wise, as ``torch.relu`` (NaN stays NaN, ``-0.0``
    becomes ``0.0``), for arrays of any shape and layout.

    Parameters
    ----------
    x : ndarray
        Float array.
    out : ndarray, optional
        Writeable array of ``x``'s shape and dtype to write the result into (and
        return); ``out=x`` applies ReLU in place.

    Returns
    -------
    ndarray
        A new C-contiguous array, or ``out``.

    Examples
    --------
    >>> import numpy as np, ferroconv as fc
    >>> fc.relu(np.array([-1.0, 0.5, 2.0]))
    array([0. , 0.5, 2. ])
    """
    return _norm.relu(x, out)


@public
def relu_backward(grad_out: np.ndarray, output: np.ndarray) -> np.ndarray:
    """Gradient of :func:`relu`: ``grad_out`` where ``output`` is positive, else 0
    (PyTorch's ``threshold_backward``; ReLU's input gives the same mask).

    Parameters
    ----------
    grad_out : ndarray
        Gradient with respect to ReLU's output.
    output : ndarray
        ReLU's output (or input), of ``grad_out``'s shape and dtype.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> import numpy as np, ferroconv as fc
    >>> fc.relu_backward(np.array([1.0, 2.0, 3.0]), np.array([0.0, 0.5, 2.0]))
    array([0., 2., 3.])
    """
    return _norm.relu_backward(grad_out, output)


@public
def global_lp_pool(x: np.ndarray, norm_type: float, keepdims: bool = True) -> np.ndarray:
    """Lp norm over all spatial axes of a batched input, ``(sum of x^p)^(1/p)``
    per ``(n, c)`` plane (ONNX's ``GlobalLpPool`` for even ``p``; PyTorch's sign
    rule for odd ``p``, see :func:`lp_pool2d`), keeping the spatial axes as
    size-1 axes unless ``keepdims=False``.

    Parameters
    ----------
    x : ndarray
        ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``, of a float dtype.
    norm_type : float
        The power ``p`` (nonzero; ``inf`` is the max of ``|x|``).
    keepdims : bool
        Keep the spatial axes as unit axes (default), or return ``(N, C)``.

    Returns
    -------
    ndarray
        ``(N, C, 1, ...)`` or ``(N, C)``.

    Raises
    ------
    ValueError, TypeError
        As :func:`global_avg_pool`, and a ``norm_type`` of 0.

    Examples
    --------
    >>> import numpy as np, ferroconv as fc
    >>> fc.global_lp_pool(np.array([[[3., 0.], [0., 4.]]]).reshape(1, 1, 2, 2), 2, keepdims=False)
    array([[5.]])
    """
    return _pool.global_lp_pool(x, _norm_type(norm_type), flag(keepdims, "keepdims"))


# ---------------------------------------------------------------- geometry


@public
def pool_output_shape(input_shape: IntOrTuple, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                      padding: Padding = 0, dilation: IntOrTuple = 1,
                      ceil_mode: bool = False) -> tuple[int, ...]:
    """Spatial output size of max, average or Lp pooling:
    ``floor_or_ceil((S + lo + hi - dilation (kernel_size - 1) - 1) / stride) + 1``
    (``lo``, ``hi`` the padding before and after; ``ceil(S / stride)`` for
    ``padding="same"``), and in ceil mode one less where the last window would
    start in the right padding (PyTorch's rule).

    Parameters
    ----------
    input_shape : int or tuple of ints
        Spatial input size (1 to 3 axes; no batch or channel axes).
    kernel_size, stride, padding, dilation : int or tuple of ints
        As :func:`max_pool2d` (``stride`` defaults to ``kernel_size``).
    ceil_mode : bool

    Returns
    -------
    tuple of ints

    Raises
    ------
    ValueError
        An argument out of range (e.g. padding above ``kernel_size // 2``) or an
        empty output.

    Examples
    --------
    >>> import ferroconv as fc
    >>> fc.pool_output_shape((32, 32), 2)        # 2x2 max pooling, stride 2
    (16, 16)
    >>> fc.pool_output_shape((112, 112), 3, stride=2, padding=1)
    (56, 56)
    >>> fc.pool_output_shape(5, 2, ceil_mode=True)
    (3,)
    >>> fc.pool_output_shape((5, 7), 3, stride=2, padding="same")
    (3, 4)
    """
    spatial = spatial_shape(input_shape, "input_shape")
    return _pool.output_shape(spatial, pool_spec(len(spatial), kernel_size, stride, padding, dilation, ceil_mode))


# ------------------------------------------------------------------ plans

explain_conv = public(_explain_conv)
explain_pool = public(_explain_pool)
