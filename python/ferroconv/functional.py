"""The functional API: PyTorch's ``torch.nn.functional`` convolution semantics on
NumPy arrays, computed by the multithreaded Rust core.

Every function accepts float32 or float64 arrays of any memory layout (strided,
negative strides, Fortran order, read-only, either byte order) and returns a new
C-contiguous array of the input's dtype. Bad arguments raise ``ValueError`` or
``TypeError`` with a message naming the argument.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _ferroconv as _native
from ._args import (
    IntOrTuple,
    as_int,
    dims3,
    float_array,
    int_tuple,
    same_dtype,
    spatial_shape,
    with_op,
)
from ._docs import F, fill_doc
from ._conv import (
    Grads,
    Padding,
    _conv,
    _conv_backward,
    _conv_transpose,
    _conv_transpose_backward,
    resolve_padding,
)

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
]



_CONV_DOC = """{rank}-D cross-correlation, as ``torch.nn.functional.conv{rank}d``.

Parameters
----------
x : ndarray
    Input of shape ``{layout}``, or unbatched without the ``N`` axis.
weight : ndarray
    Filters of shape ``(C_out, C_in / groups, *{kernel})``, same dtype as ``x``.
bias : ndarray, optional
    ``(C_out,)`` values added to each output channel.
stride, dilation : int or tuple of {rank} ints
    Step between windows, and spacing between kernel taps (>= 1).
padding : int, tuple, "same", "valid" or tuple of (lo, hi) pairs
    Implicit padding per axis; ``"same"`` (stride 1 only) keeps the size and puts
    an odd extra cell at the end; per-side pairs allow asymmetric padding.
groups : int
    Split channels into groups convolved independently (``groups == C_in`` is a
    depthwise convolution).
padding_mode : {{"zeros", "reflect", "replicate", "circular"}}
    How padded cells are filled.

Returns
-------
ndarray
    ``(N, C_out, *out)`` (unbatched if ``x`` was), with ``out = (S + lo + hi -
    dilation * (k - 1) - 1) // stride + 1`` per axis.

Raises
------
ValueError
    Shapes, sizes or values that do not fit together (the message names them).
TypeError
    Non-float or mismatched dtypes, arguments of the wrong type.
{example}"""

_CONV_BACKWARD_DOC = """Gradients of :func:`conv{rank}d` with respect to its input, weight and bias.

Parameters
----------
grad_out : ndarray
    Gradient of the loss with respect to the output of ``conv{rank}d(x, weight, ...)``.
x, weight : ndarray
    The forward call's input and weight.
stride, padding, dilation, groups, padding_mode
    The forward call's arguments (see :func:`conv{rank}d`).
needs : tuple of three bools
    Which of ``(grad_x, grad_weight, grad_bias)`` to compute.

Returns
-------
tuple
    ``(grad_x, grad_weight, grad_bias)``, each ``None`` where ``needs`` says False.
    Padding modes other than zeros fold the gradient of padded cells back onto the
    input cells they copied.

Raises
------
ValueError, TypeError
    As :func:`conv{rank}d`, and when ``grad_out`` does not have the output's shape.
"""

_TRANSPOSE_DOC = """{rank}-D transposed convolution, as ``torch.nn.functional.conv_transpose{rank}d``:
the adjoint (backward-input pass) of :func:`conv{rank}d`.

Parameters
----------
x : ndarray
    Input of shape ``{layout}``, or unbatched.
weight : ndarray
    ``(C_in, C_out / groups, *{kernel})``.
bias : ndarray, optional
    ``(C_out,)``.
stride, padding, dilation : int or tuple of {rank} ints
output_padding : int or tuple of {rank} ints
    Cells added at the end of each axis; must be smaller than stride or dilation.
groups : int

Returns
-------
ndarray
    ``(N, C_out, *out)`` with ``out = (L - 1) * stride - 2 * padding + dilation *
    (k - 1) + output_padding + 1``.

Raises
------
ValueError, TypeError
    Bad shapes, values or dtypes (the message names the argument).
"""

_TRANSPOSE_BACKWARD_DOC = """Gradients of :func:`conv_transpose{rank}d` with respect to its input, weight and bias.

Returns
-------
tuple
    ``(grad_x, grad_weight, grad_bias)``, each ``None`` where ``needs`` says False.

Raises
------
ValueError, TypeError
    As :func:`conv_transpose{rank}d`, and when ``grad_out`` has the wrong shape.
"""

_EXAMPLES = {
    1: "",
    2: """
Examples
--------
>>> import numpy as np, ferroconv as fc
>>> x = np.ones((1, 3, 32, 32), np.float32)
>>> w = np.ones((6, 3, 5, 5), np.float32)
>>> fc.conv2d(x, w).shape
(1, 6, 28, 28)
>>> fc.conv2d(x, w, padding="same").shape
(1, 6, 32, 32)
""",
    3: "",
}


def _doc(template: str, rank: int) -> Callable[[F], F]:
    return fill_doc(template, rank, _EXAMPLES[rank])


# ---------------------------------------------------------------- convolution


@_doc(_CONV_DOC, 1)
def conv1d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
           padding_mode: str = "zeros") -> np.ndarray:
    return _conv(1, "conv1d", x, weight, bias, stride, padding, dilation, groups, padding_mode)


@_doc(_CONV_DOC, 2)
def conv2d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
           padding_mode: str = "zeros") -> np.ndarray:
    return _conv(2, "conv2d", x, weight, bias, stride, padding, dilation, groups, padding_mode)


@_doc(_CONV_DOC, 3)
def conv3d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None, stride: IntOrTuple = 1,
           padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
           padding_mode: str = "zeros") -> np.ndarray:
    return _conv(3, "conv3d", x, weight, bias, stride, padding, dilation, groups, padding_mode)


@_doc(_CONV_BACKWARD_DOC, 1)
def conv1d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                    padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
                    padding_mode: str = "zeros", needs: tuple[bool, bool, bool] = (True, True, True)) -> Grads:
    return _conv_backward(1, "conv1d_backward", grad_out, x, weight, stride, padding, dilation, groups,
                          padding_mode, needs)


@_doc(_CONV_BACKWARD_DOC, 2)
def conv2d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                    padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
                    padding_mode: str = "zeros", needs: tuple[bool, bool, bool] = (True, True, True)) -> Grads:
    return _conv_backward(2, "conv2d_backward", grad_out, x, weight, stride, padding, dilation, groups,
                          padding_mode, needs)


@_doc(_CONV_BACKWARD_DOC, 3)
def conv3d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                    padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1,
                    padding_mode: str = "zeros", needs: tuple[bool, bool, bool] = (True, True, True)) -> Grads:
    return _conv_backward(3, "conv3d_backward", grad_out, x, weight, stride, padding, dilation, groups,
                          padding_mode, needs)


# ----------------------------------------------------- transposed convolution


@_doc(_TRANSPOSE_DOC, 1)
def conv_transpose1d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1) -> np.ndarray:
    return _conv_transpose(1, "conv_transpose1d", x, weight, bias, stride, padding, output_padding, groups,
                           dilation)


@_doc(_TRANSPOSE_DOC, 2)
def conv_transpose2d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1) -> np.ndarray:
    return _conv_transpose(2, "conv_transpose2d", x, weight, bias, stride, padding, output_padding, groups,
                           dilation)


@_doc(_TRANSPOSE_DOC, 3)
def conv_transpose3d(x: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                     stride: IntOrTuple = 1, padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                     groups: int = 1, dilation: IntOrTuple = 1) -> np.ndarray:
    return _conv_transpose(3, "conv_transpose3d", x, weight, bias, stride, padding, output_padding, groups,
                           dilation)


@_doc(_TRANSPOSE_BACKWARD_DOC, 1)
def conv_transpose1d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                              padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                              dilation: IntOrTuple = 1,
                              needs: tuple[bool, bool, bool] = (True, True, True)) -> Grads:
    return _conv_transpose_backward(1, "conv_transpose1d_backward", grad_out, x, weight, stride, padding,
                                    output_padding, groups, dilation, needs)


@_doc(_TRANSPOSE_BACKWARD_DOC, 2)
def conv_transpose2d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                              padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                              dilation: IntOrTuple = 1,
                              needs: tuple[bool, bool, bool] = (True, True, True)) -> Grads:
    return _conv_transpose_backward(2, "conv_transpose2d_backward", grad_out, x, weight, stride, padding,
                                    output_padding, groups, dilation, needs)


@_doc(_TRANSPOSE_BACKWARD_DOC, 3)
def conv_transpose3d_backward(grad_out: np.ndarray, x: np.ndarray, weight: np.ndarray, stride: IntOrTuple = 1,
                              padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1,
                              dilation: IntOrTuple = 1,
                              needs: tuple[bool, bool, bool] = (True, True, True)) -> Grads:
    return _conv_transpose_backward(3, "conv_transpose3d_backward", grad_out, x, weight, stride, padding,
                                    output_padding, groups, dilation, needs)


# ------------------------------------------------------------ true convolution

_CONV_BY_RANK = {1: conv1d, 2: conv2d, 3: conv3d}


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
    same_dtype(signal, "x", kernel=kern)
    if not isinstance(mode, str) or mode not in ("full", "same", "valid"):
        raise ValueError(f"convolve: mode must be 'full', 'same' or 'valid', got {mode!r}")
    if multichannel:
        rank = signal.ndim - 1
        if not 1 <= rank <= 3:
            raise ValueError(
                f"convolve: with multichannel=True x must be (C, *S) with 1 to 3 spatial axes, got shape {signal.shape}"
            )
        channels = signal.shape[0]
        if kern.ndim == rank:
            kern = np.broadcast_to(kern, (channels,) + kern.shape)
        elif kern.ndim != rank + 1 or kern.shape[0] != channels:
            raise ValueError(
                f"convolve: kernel must be {rank}-D or ({channels}, ...) {rank + 1}-D for x of shape {signal.shape}, got shape {kern.shape}"
            )
    else:
        rank = signal.ndim
        if not 1 <= rank <= 3 or kern.ndim != rank:
            raise ValueError(
                f"convolve: x and kernel must have the same number of axes (1 to 3), got shapes {signal.shape} and {kern.shape}"
            )
        signal, kern = signal[np.newaxis], kern[np.newaxis]
    ksize = kern.shape[1:]
    if 0 in ksize:
        raise ValueError(f"convolve: kernel must not be empty, got shape {kern.shape}")
    if mode == "valid" and any(k > s for k, s in zip(ksize, signal.shape[1:])):
        raise ValueError(
            f"convolve: in 'valid' mode the kernel {ksize} must not be larger than the signal {signal.shape[1:]}"
        )
    if mode == "full":
        pads: Any = tuple((k - 1, k - 1) for k in ksize)
    elif mode == "same":
        pads = tuple((k - 1 - (k - 1) // 2, (k - 1) // 2) for k in ksize)
    else:
        pads = 0
    flipped = kern[(slice(None),) + (slice(None, None, -1),) * rank][:, np.newaxis]
    out = _CONV_BY_RANK[rank](signal, flipped, padding=pads, groups=signal.shape[0])
    return out if multichannel else out[0]


# ---------------------------------------------------------------- geometry


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
    op = "conv_output_shape"
    try:
        spatial = spatial_shape(input_shape, "input_shape")
        rank = len(spatial)
        kernel = int_tuple(kernel_size, rank, "kernel_size", 1)
        strides = int_tuple(stride, rank, "stride", 1)
        dilations = int_tuple(dilation, rank, "dilation", 1)
        lo, hi = resolve_padding(padding, rank, kernel, strides, dilations)
        if not isinstance(padding_mode, str):
            raise TypeError(f"padding_mode must be a str, got {type(padding_mode).__name__}")
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{op}: {exc}") from None
    out = with_op(op, _native.conv_output_shape, dims3(spatial, 1), dims3(kernel, 1), dims3(strides, 1),
                  dims3(dilations, 1), dims3(lo, 0), dims3(hi, 0), padding_mode, rank)
    return tuple(int(v) for v in out[3 - rank:])


def conv_transpose_output_shape(input_shape: IntOrTuple, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                                padding: IntOrTuple = 0, output_padding: IntOrTuple = 0,
                                dilation: IntOrTuple = 1) -> tuple[int, ...]:
    """Spatial output size of a transposed convolution:
    ``(L - 1) * s - 2 p + d (k - 1) + output_padding + 1``.

    Examples
    --------
    >>> import ferroconv as fc
    >>> fc.conv_transpose_output_shape((28, 28), 4, stride=2, padding=1)
    (56, 56)
    """
    op = "conv_transpose_output_shape"
    try:
        spatial = spatial_shape(input_shape, "input_shape")
        rank = len(spatial)
        kernel = int_tuple(kernel_size, rank, "kernel_size", 1)
        strides = int_tuple(stride, rank, "stride", 1)
        dilations = int_tuple(dilation, rank, "dilation", 1)
        pads = int_tuple(padding, rank, "padding", 0)
        extra = int_tuple(output_padding, rank, "output_padding", 0)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{op}: {exc}") from None
    out = with_op(op, _native.conv_transpose_output_shape, dims3(spatial, 1), dims3(kernel, 1),
                  dims3(strides, 1), dims3(dilations, 1), dims3(pads, 0), dims3(extra, 0), rank)
    return tuple(int(v) for v in out[3 - rank:])


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
    try:
        kernel = int_tuple(kernel_size, 1, "kernel_size", 1)[0]
        dil = int_tuple(dilation, 1, "dilation", 1)[0]
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"same_padding: {exc}") from None
    lo, hi = with_op("same_padding", _native.same_padding, kernel, dil)
    return int(lo), int(hi)


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
        try:
            if isinstance(layer, (Sequence, np.ndarray)) and not isinstance(layer, str):
                values = [as_int(v, name) for v in layer]
                if not 1 <= len(values) <= 3:
                    raise ValueError(f"{name} must be (kernel, stride, dilation), got {tuple(values)}")
            else:
                values = [as_int(layer, name)]
            values += [1] * (3 - len(values))
            if any(v < 1 for v in values):
                raise ValueError(f"{name} = {tuple(values)}: kernel, stride and dilation must be >= 1")
            if any(v > 2**62 for v in values):
                raise ValueError(f"{name} = {tuple(values)} is too large")
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"receptive_field: {exc}") from None
        parsed.append((values[0], values[1], values[2]))
    return int(with_op("receptive_field", _native.receptive_field, parsed))


# ------------------------------------------------------------------ threads


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
    count = as_int(threads, "threads")
    if not 1 <= count <= 4096:
        raise ValueError(f"set_num_threads: threads must be between 1 and 4096, got {count}")
    with_op("set_num_threads", _native.set_num_threads, count)


def get_num_threads() -> int:
    """The number of threads the next call will use."""
    return int(_native.get_num_threads())

from . import _pooling  # noqa: E402
from ._pooling import *  # noqa: E402,F401,F403
__all__ += _pooling.__all__
