"""Convolution layers: ``Conv1d/2d/3d`` and ``ConvTranspose1d/2d/3d``."""

from __future__ import annotations

from typing import Any, ClassVar, Optional

import numpy as np

from .. import _conv
from .._args import SPATIAL_NAMES, IntOrTuple, as_int, int_tuple, text
from .._errors import named
from .._spec import ConvSpec, Padding, conv_spec, transpose_spec
from .module import DTypeLike, Module, Parameter, RngLike, float_dtype, generator, kaiming_uniform
from ._docs import parameters_from



def _is_pairs(padding: Any) -> bool:
    """Per-side padding: a sequence of ``(lo, hi)`` pairs."""
    return not isinstance(padding, (str, int, np.integer)) and any(
        isinstance(p, (tuple, list, np.ndarray)) for p in padding)


def check_channels_first(layer: Module, x: Any, rank: int, channels: Optional[int]) -> np.ndarray:
    """``x`` as a float array of shape ``(N, C, *S)`` or ``(C, *S)`` with ``rank``
    spatial axes (and ``C == channels`` unless None); ValueError naming ``layer``."""
    array = layer._float_input(x)
    if array.ndim in (rank + 1, rank + 2) and (channels is None or array.shape[-rank - 1] == channels):
        return array
    c = "C" if channels is None else str(channels)
    spatial = ", ".join(SPATIAL_NAMES[rank])
    raise ValueError(
        f"{layer!r}: expected input of shape (N, {c}, {spatial}) or ({c}, {spatial}), "
        f"got shape {array.shape}"
    )


def _positive(value: object, name: str) -> int:
    number = as_int(value, name)
    if number < 1:
        raise ValueError(f"{name} must be >= 1, got {number}")
    return number


class _ConvBase(Module):
    """What convolutions and transposed convolutions share: channels, groups, the
    weight/bias parameters with PyTorch's default init, the spec of the call
    (built and checked once, here), and the cached input."""

    rank: ClassVar[int]
    transposed: ClassVar[bool] = False

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple,
                 dilation: IntOrTuple, groups: int, bias: bool, padding_mode: str, dtype: DTypeLike,
                 rng: RngLike) -> None:
        super().__init__()
        owner = type(self).__name__
        with named(owner):
            self.in_channels = _positive(in_channels, "in_channels")
            self.out_channels = _positive(out_channels, "out_channels")
            self.groups = _positive(groups, "groups")
            if self.in_channels % self.groups or self.out_channels % self.groups:
                raise ValueError(
                    f"in_channels ({self.in_channels}) and out_channels ({self.out_channels}) "
                    f"must be divisible by groups ({self.groups})"
                )
            self.kernel_size = int_tuple(kernel_size, self.rank, "kernel_size")
            self.stride = int_tuple(stride, self.rank, "stride")
            self.dilation = int_tuple(dilation, self.rank, "dilation")
            self.padding_mode = text(padding_mode, "padding_mode")
        dtype = float_dtype(dtype, owner)
        rng = generator(rng)
        if self.transposed:  # PyTorch's fan_in is weight.shape[1] * prod(kernel) either way
            shape = (self.in_channels, self.out_channels // self.groups, *self.kernel_size)
        else:
            shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        fan_in = int(np.prod(shape[1:]))
        self.weight = Parameter(kaiming_uniform(shape, fan_in, rng, dtype))
        self.bias: Optional[Parameter] = (
            Parameter(kaiming_uniform((self.out_channels,), fan_in, rng, dtype)) if bias else None
        )
        self._spec: Optional[ConvSpec] = None
        self._cache: Optional[tuple[np.ndarray, tuple[int, ...], ConvSpec]] = None

    @property
    def spec(self) -> ConvSpec:
        """The layer's arguments as the native module takes them (checked when
        the layer was made)."""
        assert self._spec is not None
        return self._spec

    def _input(self, x: Any) -> np.ndarray:
        array = check_channels_first(self, x, self.rank, self.in_channels)
        if array.dtype != self.weight.dtype:
            raise TypeError(
                f"{self!r}: input has dtype {array.dtype} but the layer's parameters are "
                f"{self.weight.dtype}; convert with x.astype(np.{self.weight.dtype})"
            )
        return array

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self._run(self._input(x), self.spec)

    def _run(self, x: np.ndarray, spec: ConvSpec) -> np.ndarray:
        bias = None if self.bias is None else self.bias.data
        with named(repr(self)):
            arrays = _conv.conv_arrays(self.rank, x, self.weight.data, bias, transposed=self.transposed)
            out = _conv.forward(arrays, spec)
        self._cache = (x, out.shape, spec)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x, out_shape, spec = self._cached(self._cache)
        grad = self._grad_out(grad_out, out_shape, x.dtype)
        with named(repr(self)):
            arrays = _conv.conv_arrays(self.rank, x, self.weight.data, grad_out=grad, backward=True,
                                       transposed=self.transposed)
            grad_x, grad_weight, grad_bias = _conv.backward(arrays, spec, (True, True, self.bias is not None))
        self.weight.grad += grad_weight
        if self.bias is not None:
            self.bias.grad += grad_bias
        assert grad_x is not None
        return grad_x

    def _common_repr(self) -> list[str]:
        parts = [f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}",
                 f"stride={self.stride}"]
        if self.dilation != (1,) * self.rank:
            parts.append(f"dilation={self.dilation}")
        if self.groups != 1:
            parts.append(f"groups={self.groups}")
        if self.bias is None:
            parts.append("bias=False")
        if self.padding_mode != "zeros":
            parts.append(f"padding_mode={self.padding_mode!r}")
        return parts


class _ConvNd(_ConvBase):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: Padding = 0, dilation: IntOrTuple = 1, groups: int = 1, bias: bool = True,
                 padding_mode: str = "zeros", *, dtype: DTypeLike = np.float32, rng: RngLike = None) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, dilation, groups, bias,
                         padding_mode, dtype, rng)
        with named(type(self).__name__):  # checked now (e.g. "same" with stride > 1), as PyTorch does
            self._spec = conv_spec(self.rank, self.stride, padding, self.dilation, self.groups,
                                   self.padding_mode, kernel_size=self.kernel_size)
        self.padding: Padding = (
            padding if isinstance(padding, str)
            else tuple(tuple(int(v) for v in pair) for pair in padding)  # type: ignore[union-attr]
            if _is_pairs(padding) else int_tuple(padding, self.rank, "padding")
        )

    def extra_repr(self) -> str:
        parts = self._common_repr()
        if self.padding not in (0, (0,) * self.rank, "valid"):
            parts.insert(2, f"padding={self.padding!r}")
        return ", ".join(parts)


class Conv1d(_ConvNd):
    """1-D convolution layer over ``(N, C_in, L)`` (or ``(C_in, L)``), as ``torch.nn.Conv1d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, dilation : int or tuple of ints
    padding : int, tuple, "same", "valid" or per-side pairs
    groups : int
        Both channel counts must be divisible by it.
    bias : bool
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
    dtype : float32, float64, float16 or bfloat16
        16-bit layers store 16-bit parameters; the convolutions accumulate in
        float32 and round each output once.
    rng : numpy.random.Generator, int or None
        Source of PyTorch's default init: weight and bias ``U(-1/sqrt(fan_in),
        1/sqrt(fan_in))`` with ``fan_in = in_channels / groups * prod(kernel_size)``.

    Attributes
    ----------
    weight : Parameter
        ``(out_channels, in_channels / groups, *kernel_size)``.
    bias : Parameter or None
        ``(out_channels,)``.
    """

    rank = 1


@parameters_from(Conv1d)
class Conv2d(_ConvNd):
    """2-D convolution layer over ``(N, C_in, H, W)``, as ``torch.nn.Conv2d``
    (parameters as :class:`Conv1d`).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> conv = nn.Conv2d(1, 6, 5, padding=2, rng=np.random.default_rng(0))
    >>> conv(np.zeros((2, 1, 28, 28), np.float32)).shape
    (2, 6, 28, 28)
    """

    rank = 2


@parameters_from(Conv1d)
class Conv3d(_ConvNd):
    """3-D convolution layer over ``(N, C_in, D, H, W)``, as ``torch.nn.Conv3d``
    (parameters as :class:`Conv1d`)."""

    rank = 3


class _ConvTransposeNd(_ConvBase):
    transposed = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrTuple, stride: IntOrTuple = 1,
                 padding: IntOrTuple = 0, output_padding: IntOrTuple = 0, groups: int = 1, bias: bool = True,
                 dilation: IntOrTuple = 1, padding_mode: str = "zeros", *, dtype: DTypeLike = np.float32,
                 rng: RngLike = None) -> None:
        owner = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError(f'{owner}: only padding_mode="zeros" is supported, got {padding_mode!r}')
        super().__init__(in_channels, out_channels, kernel_size, stride, dilation, groups, bias,
                         padding_mode, dtype, rng)
        with named(owner):
            self.padding = int_tuple(padding, self.rank, "padding")
            self.output_padding = int_tuple(output_padding, self.rank, "output_padding")
            self._spec = transpose_spec(self.rank, self.stride, self.padding, self.output_padding, self.groups,
                                        self.dilation, kernel_size=self.kernel_size)

    def forward(self, x: np.ndarray, output_size: Optional[IntOrTuple] = None) -> np.ndarray:
        """The transposed convolution of ``x``; ``output_size`` (the spatial size,
        optionally after N and C) picks among the sizes a strided layer can give,
        as PyTorch's ``forward(input, output_size)``: it replaces
        ``output_padding`` for this call."""
        x = self._input(x)
        if output_size is None:
            return self._run(x, self.spec)
        with named(repr(self)):
            spec = transpose_spec(self.rank, self.stride, self.padding, 0, self.groups, self.dilation,
                                  kernel_size=self.kernel_size, input_size=x.shape[-self.rank:],
                                  output_size=output_size)
        return self._run(x, spec)

    def extra_repr(self) -> str:
        parts = self._common_repr()
        if self.padding != (0,) * self.rank:
            parts.insert(2, f"padding={self.padding}")
        if self.output_padding != (0,) * self.rank:
            parts.insert(3, f"output_padding={self.output_padding}")
        return ", ".join(parts)


class ConvTranspose1d(_ConvTransposeNd):
    """1-D transposed convolution layer, as ``torch.nn.ConvTranspose1d``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride, padding, output_padding, dilation : int or tuple of ints
    groups : int
    bias : bool
    padding_mode : "zeros"
        The only mode PyTorch supports for transposed convolutions.
    dtype, rng
        As :class:`Conv1d`; ``fan_in = out_channels / groups * prod(kernel_size)``.

    Attributes
    ----------
    weight : Parameter
        ``(in_channels, out_channels / groups, *kernel_size)``.
    bias : Parameter or None
        ``(out_channels,)``.
    """

    rank = 1


@parameters_from(ConvTranspose1d)
class ConvTranspose2d(_ConvTransposeNd):
    """2-D transposed convolution layer, as ``torch.nn.ConvTranspose2d``
    (parameters as :class:`ConvTranspose1d`)."""

    rank = 2


@parameters_from(ConvTranspose1d)
class ConvTranspose3d(_ConvTransposeNd):
    """3-D transposed convolution layer, as ``torch.nn.ConvTranspose3d``
    (parameters as :class:`ConvTranspose1d`)."""

    rank = 3
