"""Docstring templates of the per-rank public functions (``conv1d``, ``conv2d``,
``conv3d``, ...), filled in for each rank by :func:`fill_doc`."""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

LAYOUT = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
KERNEL = {1: "(kL,)", 2: "(kH, kW)", 3: "(kD, kH, kW)"}
TUPLE = {1: "int or tuple of 1 int", 2: "int or tuple of 2 ints", 3: "int or tuple of 3 ints"}


def fill_doc(template: str, rank: int) -> Callable[[F], F]:
    """Decorator: the function's docstring is ``template`` filled in for ``rank``
    (fields ``rank``, ``layout``, ``kernel``, ``tuple`` and ``example``: the
    example of the function's name, if any)."""

    def attach(func: F) -> F:
        example = EXAMPLES.get(func.__name__, "")
        func.__doc__ = template.format(
            rank=rank, layout=LAYOUT[rank], kernel=KERNEL[rank], tuple=TUPLE[rank], example=example
        )
        return func

    return attach


# ------------------------------------------------------------ convolution

def _epilogue_params(when: str) -> str:
    """The fused-epilogue and precision parameters of a forward convolution's
    docstring (a template: braces doubled), applied ``when``."""
    return f"""activation : {{{{"relu", "relu6", "leaky_relu", "sigmoid", "silu"}}}}, optional
    Fused epilogue: applied to ``conv + bias + residual`` {when} (None: no activation).
negative_slope : float
    Slope of ``leaky_relu`` for negative values (default 0.01).
residual : ndarray, optional
    Array of the output's shape and dtype (any layout) added before the
    activation, e.g. a ResNet block's shortcut.
out : ndarray, optional
    C-contiguous array of the output's shape and dtype to write the result into
    (and return) instead of a new array. It may be ``residual`` itself (the
    result then overwrites it) but must not share memory with any other argument.
    A call stopped by Ctrl-C (KeyboardInterrupt) fills ``out`` with NaN rather
    than leave it half-written. The epilogue is for inference: for training, call without ``activation`` and
    apply the activation and its gradient yourself (as ``ferroconv.nn`` does).
precision : {{{{"default", "highest"}}}}, optional
    ``"highest"`` never uses Winograd or other transforms that add rounding
    beyond direct summation; None uses the process default
    (:func:`set_precision`).
"""


CONV_DOC = """{rank}-D cross-correlation, as ``torch.nn.functional.conv{rank}d``.

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
padding : int, tuple, "same", "same_lower", "valid" or tuple of (lo, hi) pairs
    Implicit padding per axis; per-side pairs allow asymmetric padding.
    ``"same"`` gives ``ceil(L / stride)`` outputs with an odd extra cell at the
    end (at stride 1 it keeps the size, as PyTorch's; above stride 1 it is ONNX's
    SAME_UPPER, which PyTorch refuses), ``"same_lower"`` puts that cell at the
    start (ONNX's SAME_LOWER).
groups : int
    Split channels into groups convolved independently (``groups == C_in`` is a
    depthwise convolution).
padding_mode : {{"zeros", "reflect", "replicate", "circular"}}
    How padded cells are filled.
""" + _epilogue_params("while each output run\n    is still in cache") + """
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

CONV_BACKWARD_DOC = """Gradients of :func:`conv{rank}d` with respect to its input, weight and bias.

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
precision : {{"default", "highest"}}, optional
    As :func:`conv{rank}d` (the input gradient of a stride-1 3x3 layer may run
    Winograd under ``"default"``).

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

TRANSPOSE_DOC = """{rank}-D transposed convolution, as ``torch.nn.functional.conv_transpose{rank}d``:
the adjoint (backward-input pass) of :func:`conv{rank}d`.

Parameters
----------
x : ndarray
    Input of shape ``{layout}``, or unbatched.
weight : ndarray
    ``(C_in, C_out / groups, *{kernel})``.
bias : ndarray, optional
    ``(C_out,)``.
stride, dilation : int or tuple of {rank} ints
padding : int, tuple of {rank} ints, {rank} (lo, hi) pairs, "valid", "same" or "same_lower"
    Cells removed from the ends of the full output: the same number at both ends
    of an axis (PyTorch), ``(lo, hi)`` per axis (ONNX's ``pads``), none
    (``"valid"``), or as many as make the output ``L * stride`` (ONNX's
    ``auto_pad``: ``"same"`` removes an odd cell at the end, ``"same_lower"`` at
    the start; needs a dilated kernel plus output_padding of at least the stride).
output_padding : int or tuple of {rank} ints
    Cells added at the end of each axis; must be smaller than stride or dilation.
groups : int
output_size : int or tuple of {rank} ints, optional
    The wanted spatial output size (optionally after the batch and channel sizes),
    as PyTorch's ``ConvTranspose{rank}d`` modules take it: sets ``output_padding``
    (then 0) to reach it, or raises ValueError naming the sizes the arguments allow.
""" + _epilogue_params("in one pass after the\n    transposed convolution's scatter") + """
Returns
-------
ndarray
    ``(N, C_out, *out)`` with ``out = (L - 1) * stride - lo - hi + dilation *
    (k - 1) + output_padding + 1`` (``lo = hi = padding`` for an int).

Raises
------
ValueError, TypeError
    Bad shapes, values or dtypes (the message names the argument).
"""

TRANSPOSE_BACKWARD_DOC = """Gradients of :func:`conv_transpose{rank}d` with respect to its input, weight and bias.

Parameters
----------
grad_out : ndarray
    Gradient of the loss with respect to the output of ``conv_transpose{rank}d``.
x, weight : ndarray
    The forward call's input and weight.
stride, padding, output_padding, groups, dilation, output_size
    The forward call's arguments.
needs : tuple of three bools
    Which of ``(grad_x, grad_weight, grad_bias)`` to compute.
precision : {{"default", "highest"}}, optional
    As :func:`conv_transpose{rank}d`.

Returns
-------
tuple
    ``(grad_x, grad_weight, grad_bias)``, each ``None`` where ``needs`` says False.

Raises
------
ValueError, TypeError
    As :func:`conv_transpose{rank}d`, and when ``grad_out`` has the wrong shape.
"""

_CONV2D_EXAMPLE = """
Examples
--------
>>> import numpy as np, ferroconv as fc
>>> x = np.ones((1, 3, 32, 32), np.float32)
>>> w = np.ones((6, 3, 5, 5), np.float32)
>>> fc.conv2d(x, w).shape
(1, 6, 28, 28)
>>> fc.conv2d(x, w, padding="same").shape
(1, 6, 32, 32)
"""


# ---------------------------------------------------------------- pooling

MAX_POOL_DOC = """{rank}-D max pooling, as ``torch.nn.functional.max_pool{rank}d``.

Parameters
----------
x : ndarray
    float32, float64, float16, bfloat16, int8, uint8, int16, uint16, int32 or int64
    input of shape ``{layout}``, or unbatched without ``N``. The result has
    ``x``'s dtype (a maximum is one of the inputs: exact for every dtype).
kernel_size : {tuple}
    Window size (>= 1).
stride : {tuple}, optional
    Step between windows (>= 1); None (the default) means ``kernel_size``.
padding : {tuple}, pairs or str
    Implicit padding; padded cells act as -inf, so they are never selected.
    An int or one per axis pads both sides (PyTorch's rule: at most
    ``kernel_size // 2``); ``((lo, hi), ...)`` pairs pad each side on its own
    (ONNX's ``pads``: each side smaller than the dilated kernel
    ``dilation (kernel_size - 1) + 1``); ``"same"`` gives ``ceil(S / stride)``
    outputs, as ONNX's ``SAME_UPPER`` (the total ``(out - 1) stride + dilated
    kernel - S`` split in halves, the odd cell at the end), ``"same_lower"`` puts
    the odd cell first, ``"valid"`` is no padding. Every window must read at
    least one input cell (only possible to miss with a dilation larger than the
    input): a ``ValueError`` says which one does not.
dilation : {tuple}
    Spacing between the cells of a window (>= 1).
ceil_mode : bool
    Round the output size up instead of down; a window that would start in the
    right padding is dropped (PyTorch's rule).
return_indices : bool
    Also return, for every output, the flat index of its maximum within its
    ``(n, c)`` plane of the unpadded input (row-major over the spatial axes).

Returns
-------
ndarray or (ndarray, ndarray)
    The pooled values of shape ``(N, C, *out)`` with ``out = floor_or_ceil((S +
    lo + hi - dilation (kernel_size - 1) - 1) / stride) + 1`` (``lo``, ``hi`` the
    padding before and after), and the int64
    indices of the same shape when ``return_indices``. Ties select the first
    maximum in scan order (for integers too: a window of the type's minimum
    gives its first input cell, never a padded one); a window holding NaN gives
    NaN (with the index of its last NaN, as PyTorch's CPU kernel).

Raises
------
ValueError
    Wrong number of axes, a zero kernel/stride/dilation, padding above its limit
    (or of the wrong length, negative, a misspelt string), a window entirely in
    the padding, or an empty output (the message names the argument).
TypeError
    Boolean, unsigned 16/32/64-bit or other input of an unlisted dtype, or
    arguments of the wrong type.
{example}"""

MAX_POOL_BACKWARD_DOC = """Gradient of :func:`max_pool{rank}d` (and :func:`adaptive_max_pool{rank}d`)
with respect to its input.

Parameters
----------
grad_out : ndarray
    Gradient with respect to the pooled values, ``(N, C, *out)`` or unbatched.
indices : ndarray of int64
    The indices the forward call returned (same shape as ``grad_out``).
input_shape : tuple of ints
    Shape of the forward input (batched like ``grad_out``), or its spatial size.

Returns
-------
ndarray
    Zeros of ``input_shape`` with every gradient added at its index; gradients
    of overlapping windows that chose the same cell accumulate. The result is
    the same for any thread count.

Raises
------
ValueError
    ``indices`` not of ``grad_out``'s shape, an index outside the input plane,
    or an ``input_shape`` whose batch/channels differ from ``grad_out``'s.
TypeError
    ``indices`` not int64, ``grad_out`` not a float dtype (a gradient is a float
    array, also after integer max pooling).
"""

MAX_UNPOOL_DOC = """{rank}-D max unpooling, as ``torch.nn.functional.max_unpool{rank}d``: the
partial inverse of :func:`max_pool{rank}d`.

Parameters
----------
x : ndarray
    Pooled values, ``{layout}`` or unbatched; a float or int8, uint8, int16, uint16,
    int32 or int64 dtype (values are moved, not computed: kept exactly).
indices : ndarray of int64
    The indices :func:`max_pool{rank}d` returned with ``x`` (same shape).
kernel_size, stride, padding : {tuple}
    The pooling's arguments (``stride`` defaults to ``kernel_size``).
output_size : tuple of ints, optional
    Spatial size of the result (or the full shape of the pooling's input). By
    default ``(L - 1) * stride - 2 padding + kernel_size``; a given size must lie
    strictly between that default minus and plus the stride (PyTorch's range).

Returns
-------
ndarray
    Zeros of shape ``(N, C, *output_size)`` with each value of ``x`` at its index
    (where indices repeat, the last value wins).

Raises
------
ValueError
    ``indices`` not of ``x``'s shape, an index outside the output plane, or an
    ``output_size`` out of range.
TypeError
    ``indices`` not int64, ``x`` of a dtype :func:`max_pool{rank}d` does not take.
{example}"""

MAX_UNPOOL_BACKWARD_DOC = """Gradient of :func:`max_unpool{rank}d` with respect to its input ``x``:
``grad_out`` read at ``indices``, plane by plane (the adjoint of the unpooling's
scatter). PyTorch computes it through autograd; ONNX has no backward.

Parameters
----------
grad_out : ndarray
    Gradient of the loss with respect to the unpooled output, ``{layout}`` or
    unbatched; a gather, so any dtype :func:`max_unpool{rank}d` takes (integers
    too: each value is read as it is).
indices : ndarray of int64
    The indices the unpooling used (the shape of its ``x``).

Returns
-------
ndarray
    ``grad_x``, of the shape of ``indices`` and the dtype of ``grad_out``.

Raises
------
ValueError
    An index outside the output plane, or batch and channel counts that differ.
TypeError
    ``indices`` not int64, ``grad_out`` of a dtype :func:`max_unpool{rank}d`
    does not take.
{example}"""

AVG_POOL_DOC = """{rank}-D average pooling, as ``torch.nn.functional.avg_pool{rank}d``.

Parameters
----------
x : ndarray
    float32, float64, float16 or bfloat16 input of shape ``{layout}``, or
    unbatched without ``N`` (16-bit: float32 sums, each output rounded once).
kernel_size : {tuple}
    Window size (>= 1).
stride : {tuple}, optional
    Step between windows; None (the default) means ``kernel_size``.
padding : {tuple}, pairs or str
    Implicit zero padding: an int or one per axis on both sides (at most
    ``kernel_size // 2``), ``((lo, hi), ...)`` per side (each side below the
    dilated kernel), ``"same"``, ``"same_lower"`` or ``"valid"``, as
    :func:`max_pool{rank}d`.
ceil_mode : bool
    Round the output size up instead of down (PyTorch's rule).
count_include_pad : bool
    Divide by the number of the window's cells inside the padded input ``[-lo,
    S + hi)`` (True, the default), or inside the input (False); a ceil-mode
    window hanging over the end counts only up to ``S + hi`` (PyTorch's and
    ONNX's rule).
divisor_override : int, optional
    A nonzero divisor used for every window instead. (PyTorch's ``avg_pool1d``
    has no such argument; it is accepted here for uniformity.)
dilation : {tuple}
    Spacing between the cells of a window (>= 1), as ONNX's ``AveragePool``
    ``dilations`` (PyTorch has none): the divisor counts the dilated cells, not
    the span. 1, the default, is PyTorch's average pooling.

Returns
-------
ndarray
    ``(N, C, *out)`` with the same output size as :func:`max_pool{rank}d`.

Raises
------
ValueError
    Wrong number of axes, a zero kernel, stride or dilation, padding above its
    limit, ``divisor_override=0`` or an empty output.
TypeError
    Integer input (average pooling of integers is not defined here: convert
    with ``x.astype(np.float32)``), boolean input, or arguments of the wrong
    type.
{example}"""

AVG_POOL_BACKWARD_DOC = """Gradient of :func:`avg_pool{rank}d` with respect to its input (the adjoint
of the forward map).

Parameters
----------
grad_out : ndarray
    Gradient with respect to the output, ``(N, C, *out)`` or unbatched.
input_shape : tuple of ints
    Shape of the forward input (batched like ``grad_out``), or its spatial size.
kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, dilation
    The forward call's arguments (see :func:`avg_pool{rank}d`).

Returns
-------
ndarray
    Gradient of shape ``input_shape``: each output gradient divided by its
    window's divisor, added to every input cell of the window.

Raises
------
ValueError
    ``grad_out`` not of the forward output's shape, or the forward's errors.
TypeError
    Non-float ``grad_out`` or arguments of the wrong type.
"""

LP_POOL_DOC = """{rank}-D power-average (Lp) pooling, as ``torch.nn.functional.lp_pool{rank}d``,
with ONNX ``LpPool``'s padding and dilation: ``(sum over the window of x^p)^(1/p)``,
computed in one pass over each window.

Parameters
----------
x : ndarray
    float32, float64, float16 or bfloat16 input of shape ``{layout}``, or
    unbatched without ``N``.
norm_type : float
    The power ``p``: any nonzero number. ``x^p`` keeps the sign of odd powers,
    as PyTorch's ``x.pow(p)``, so a window whose sum is negative has no real root
    and gives NaN (for ``p = 1`` the plain sum); ONNX's ``LpPool`` takes
    ``|x|^p``: pass ``abs(x)`` for it. ``inf`` and ``-inf`` give the max and min
    of ``|x|`` over the window (PyTorch's rule).
kernel_size : {tuple}
    Window size (>= 1).
stride : {tuple}, optional
    Step between windows; None (the default) means ``kernel_size``.
ceil_mode : bool
    Round the output size up instead of down. As in PyTorch (which computes an
    average of ``x^p`` times the kernel volume), a window hanging over the end
    of the input is scaled by ``kernel volume / its cells inside the (padded) input``.
padding : {tuple}, pairs or str
    Implicit padding (adds nothing to a sum), as :func:`max_pool{rank}d`:
    symmetric ints (at most ``kernel_size // 2``), ``((lo, hi), ...)`` pairs,
    ``"same"``, ``"same_lower"`` or ``"valid"``. PyTorch has none (0).
dilation : {tuple}
    Spacing between the cells of a window (>= 1); PyTorch has none (1).

Returns
-------
ndarray
    ``(N, C, *out)``, the output size of :func:`max_pool{rank}d`.

Raises
------
ValueError
    ``norm_type`` 0 or NaN, and the errors of :func:`max_pool{rank}d`.
TypeError
    Integer input (Lp pooling of integers is not defined here), boolean input,
    or arguments of the wrong type.
{example}"""

LP_POOL_BACKWARD_DOC = """Gradient of :func:`lp_pool{rank}d` with respect to its input ``x``.

Parameters
----------
grad_out : ndarray
    Gradient with respect to the output, ``(N, C, *out)`` or unbatched (like ``x``).
x : ndarray
    The forward input (the window sums are recomputed from it, in the same pass).
norm_type, kernel_size, stride, ceil_mode, padding, dilation
    The forward call's arguments (see :func:`lp_pool{rank}d`).

Returns
-------
ndarray
    Gradient of ``x``'s shape: ``grad * s^(1/p - 1) * x^(p - 1)`` summed over the
    windows holding each cell (``s`` the window's sum of ``x^p``), and 0 from a
    window whose sum is 0 (PyTorch's rule). For ``norm_type = ±inf`` each
    gradient goes to the window's selected cell, times the sign of ``x`` there.

Raises
------
ValueError
    ``grad_out`` not of the forward output's shape, or the forward's errors.
TypeError
    Non-float arrays, dtypes that differ, or arguments of the wrong type.
"""

ADAPTIVE_AVG_DOC = """{rank}-D adaptive average pooling, as ``torch.nn.functional.adaptive_avg_pool{rank}d``.

Output cell ``i`` of an axis of input size ``L`` averages the input cells
``floor(i L / out) <= j < ceil((i + 1) L / out)``.

Parameters
----------
x : ndarray
    ``{layout}`` or unbatched, with a non-empty spatial size.
output_size : {tuple}
    Target size per axis (>= 0); an entry None keeps that axis' size.

Returns
-------
ndarray
    ``(N, C, *output_size)``.

Raises
------
ValueError
    Wrong number of axes, an empty input or a negative size.
TypeError
    Integer input (average pooling of integers is not defined here), boolean
    input, or an ``output_size`` of the wrong type.
"""

ADAPTIVE_AVG_BACKWARD_DOC = """Gradient of :func:`adaptive_avg_pool{rank}d` with respect to its input.

Parameters
----------
grad_out : ndarray
    Gradient with respect to the output (its spatial size is the output size).
input_shape : tuple of ints
    Shape of the forward input (batched like ``grad_out``), or its spatial size.

Returns
-------
ndarray
    Gradient of shape ``input_shape``.

Raises
------
ValueError, TypeError
    As :func:`adaptive_avg_pool{rank}d`, or an ``input_shape`` whose batch or
    channels differ from ``grad_out``'s.
"""

ADAPTIVE_MAX_DOC = """{rank}-D adaptive max pooling, as ``torch.nn.functional.adaptive_max_pool{rank}d``
(windows as :func:`adaptive_avg_pool{rank}d`, maxima as :func:`max_pool{rank}d`).

Parameters
----------
x : ndarray
    ``{layout}`` or unbatched, with a non-empty spatial size; a float or int8,
    uint8, int16, uint16, int32 or int64 dtype (kept by the result), as
    :func:`max_pool{rank}d`.
output_size : {tuple}
    Target size per axis (>= 0); an entry None keeps that axis' size.
return_indices : bool
    Also return the flat per-plane index of every maximum (int64).

Returns
-------
ndarray or (ndarray, ndarray)
    ``(N, C, *output_size)`` values, and indices when ``return_indices``.

Raises
------
ValueError
    As :func:`adaptive_avg_pool{rank}d`.
TypeError
    An input dtype :func:`max_pool{rank}d` does not take, or an
    ``output_size`` of the wrong type.
"""

ADAPTIVE_MAX_BACKWARD_DOC = """Gradient of :func:`adaptive_max_pool{rank}d` with respect to its input: the
same scatter as :func:`max_pool{rank}d_backward`.

Parameters
----------
grad_out : ndarray
    Gradient with respect to the pooled values.
indices : ndarray of int64
    The indices the forward call returned (same shape as ``grad_out``).
input_shape : tuple of ints
    Shape of the forward input (batched like ``grad_out``), or its spatial size.

Returns
-------
ndarray
    Gradient of shape ``input_shape``.

Raises
------
ValueError, TypeError
    As :func:`max_pool{rank}d_backward`.
"""

_POOL_EXAMPLES = {
    "max_pool2d": """
Examples
--------
>>> import numpy as np, ferroconv as fc
>>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
>>> fc.max_pool2d(x, 2)
array([[[[ 5.,  7.],
         [13., 15.]]]], dtype=float32)
>>> values, indices = fc.max_pool2d(x, 3, stride=2, padding=1, return_indices=True)
>>> indices
array([[[[ 5,  7],
         [13, 15]]]])
>>> fc.max_pool2d(np.ones((8, 3, 32, 32)), 2).shape   # 2x2, stride 2: halves H and W
(8, 3, 16, 16)
>>> fc.max_pool2d(np.ones((1, 1, 5, 5)), 2, padding="same").shape   # ceil(5 / 2)
(1, 1, 3, 3)
>>> fc.max_pool2d(x, 2, stride=1, padding=((0, 1), (1, 0)))   # one cell below, one left
array([[[[ 4.,  5.,  6.,  7.],
         [ 8.,  9., 10., 11.],
         [12., 13., 14., 15.],
         [12., 13., 14., 15.]]]], dtype=float32)
>>> image = np.array([[[[0, 200, 7], [255, 3, 9], [1, 2, 254]]]], np.uint8)
>>> fc.max_pool2d(image, 2, stride=1, padding=1)   # integers keep their dtype
array([[[[  0, 200, 200,   7],
         [255, 255, 200,   9],
         [255, 255, 254, 254],
         [  1,   2, 254, 254]]]], dtype=uint8)
""",
    "avg_pool2d": """
Examples
--------
>>> import numpy as np, ferroconv as fc
>>> x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
>>> fc.avg_pool2d(x, 2)
array([[[[ 2.5,  4.5],
         [10.5, 12.5]]]])
>>> ones = np.ones((1, 3, 3))                       # unbatched (C, H, W)
>>> fc.avg_pool2d(ones, 3, stride=1, padding=1)     # padded zeros count
array([[[0.44444444, 0.66666667, 0.44444444],
        [0.66666667, 1.        , 0.66666667],
        [0.44444444, 0.66666667, 0.44444444]]])
>>> fc.avg_pool2d(ones, 3, stride=1, padding=1, count_include_pad=False)
array([[[1., 1., 1.],
        [1., 1., 1.],
        [1., 1., 1.]]])
>>> fc.avg_pool2d(x, 2, stride=1, dilation=2)      # cells two apart: (0 + 2 + 8 + 10) / 4
array([[[[ 5.,  6.],
         [ 9., 10.]]]])
""",
    "lp_pool2d": """
Examples
--------
>>> import numpy as np, ferroconv as fc
>>> x = np.array([[[[3., 4.], [0., 0.]]]])
>>> fc.lp_pool2d(x, 2, 2)                       # sqrt(3^2 + 4^2)
array([[[[5.]]]])
>>> fc.lp_pool2d(x, float("inf"), 2)            # the max of |x|
array([[[[4.]]]])
>>> fc.lp_pool2d(np.ones((1, 1, 5, 5)), 1, 2, stride=2, padding="same").shape
(1, 1, 3, 3)
""",
    "max_unpool2d": """
Examples
--------
>>> import numpy as np, ferroconv as fc
>>> x = np.array([[[[1., 2.], [3., 4.]]]])
>>> values, indices = fc.max_pool2d(x, 2, return_indices=True)
>>> fc.max_unpool2d(values, indices, 2)
array([[[[0., 0.],
         [0., 4.]]]])
""",
}


EXAMPLES = {
    "conv2d": _CONV2D_EXAMPLE,
    **_POOL_EXAMPLES,
}


def cli_text(doc: Optional[str]) -> str:
    """A module docstring as plain text for ``--help`` (no reST literal markup)."""
    return (doc or "").replace("``", "")
