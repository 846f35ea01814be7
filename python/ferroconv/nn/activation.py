"""Element-wise layers: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``Dropout``
(and its channel-wise ``Dropout1d/2d/3d``), and ``Softmax`` / ``LogSoftmax``
along an axis."""

from __future__ import annotations

from typing import ClassVar, Optional

import numpy as np

from .. import _norm
from .module import Module, RngLike, compute_dtype, generator
from ._docs import parameters_from


class _Elementwise(Module):
    """A layer whose backward multiplies ``grad_out`` by a cached local derivative.

    16-bit inputs are computed in float32 (:func:`compute_dtype`) and the output
    and input gradient rounded once to the input's dtype."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: Optional[np.ndarray] = None  # d out / d x, element-wise
        self._stored = np.dtype(np.float32)

    def _work(self, x: np.ndarray) -> np.ndarray:
        """``x`` in the dtype the layer computes in; remembers ``x``'s dtype."""
        self._stored = x.dtype
        return x.astype(compute_dtype(x.dtype), copy=False)

    def _out(self, out: np.ndarray) -> np.ndarray:
        return out.astype(self._stored, copy=False)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        local = self._cached(self._cache)
        grad = self._grad_out(grad_out, local.shape, self._stored).astype(local.dtype, copy=False)
        grad_x: np.ndarray = (grad * local).astype(self._stored, copy=False)
        return grad_x


class ReLU(Module):
    """``max(x, 0)``; the gradient at exactly 0 is 0, as in PyTorch (both computed
    by :func:`ferroconv.relu` and :func:`ferroconv.relu_backward`)."""

    def __init__(self) -> None:
        super().__init__()
        self._cache: Optional[np.ndarray] = None  # the output, whose zeros mask the gradient

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._float_input(x)
        out = _norm.relu(x)
        self._cache = out
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        out = self._cached(self._cache)
        grad = self._grad_out(grad_out, out.shape, out.dtype)
        return _norm.relu_backward(grad, out)


class LeakyReLU(_Elementwise):
    """``x`` where ``x > 0``, else ``negative_slope * x``, as ``torch.nn.LeakyReLU``.

    Parameters
    ----------
    negative_slope : float
        Slope for negative inputs (default 0.01).
    """

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._work(self._float_input(x))
        slope = np.where(x > 0, x.dtype.type(1), x.dtype.type(self.negative_slope))
        self._cache = slope
        return self._out(x * slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``, computed without overflow for large ``|x|``."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._work(self._float_input(x))
        exp_neg_abs = np.exp(-np.abs(x))  # <= 1, never overflows
        out: np.ndarray = np.where(x >= 0, 1 / (1 + exp_neg_abs), exp_neg_abs / (1 + exp_neg_abs))
        self._cache = out * (1 - out)
        return self._out(out)


class Tanh(_Elementwise):
    """Hyperbolic tangent."""

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._work(self._float_input(x))
        out: np.ndarray = np.tanh(x)
        self._cache = 1 - out * out
        return self._out(out)


class Dropout(_Elementwise):
    """Zero each element with probability ``p`` in training mode and scale the rest
    by ``1 / (1 - p)`` so the expected value is unchanged; the identity in eval mode.

    Parameters
    ----------
    p : float
        Drop probability in ``[0, 1]``.
    rng : numpy.random.Generator, int or None
        Source of the masks.
    """

    def __init__(self, p: float = 0.5, *, rng: RngLike = None) -> None:
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = generator(rng)

    def _mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        """The shape of the random keep/drop draws (broadcast over ``x``)."""
        return tuple(x.shape)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._float_input(x)
        mask_shape = self._mask_shape(x)
        x = self._work(x)
        if not self.training or self.p == 0:
            self._cache = np.ones_like(x)
            return self._out(x.copy())
        if self.p == 1:
            self._cache = np.zeros_like(x)
            return self._out(np.zeros_like(x))
        keep = self.rng.random(mask_shape) >= self.p
        self._cache = np.broadcast_to(keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p)), x.shape)
        out: np.ndarray = x * self._cache
        return self._out(out)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _ChannelDropout(Dropout):
    """Dropout of whole channels: one draw per ``(sample, channel)``."""

    layouts: ClassVar[dict[int, str]]  # accepted ndim -> layout; batched when it starts with "(N"

    def _mask_shape(self, x: np.ndarray) -> tuple[int, ...]:
        if x.ndim not in self.layouts:
            raise ValueError(
                f"{self!r}: expected input of shape {' or '.join(self.layouts.values())}, got shape {x.shape}"
            )
        channel_axes = 2 if self.layouts[x.ndim].startswith("(N") else 1
        return tuple(x.shape[:channel_axes]) + (1,) * (x.ndim - channel_axes)


class Dropout1d(_ChannelDropout):
    """Zero whole channels with probability ``p`` in training mode and scale the rest
    by ``1 / (1 - p)``, as ``torch.nn.Dropout1d``: input ``(N, C, L)`` or ``(C, L)``;
    the identity in eval mode.

    Parameters
    ----------
    p : float
        Drop probability of a channel, in ``[0, 1]``.
    rng : numpy.random.Generator, int or None
        Source of the masks.
    """

    layouts = {3: "(N, C, L)", 2: "(C, L)"}


@parameters_from(Dropout1d)
class Dropout2d(_ChannelDropout):
    """Zero whole channels with probability ``p`` in training mode and scale the rest
    by ``1 / (1 - p)``, as ``torch.nn.Dropout2d``; the identity in eval mode
    (parameters as :class:`Dropout1d`).

    Input ``(N, C, H, W)``. A 3-D input is refused: PyTorch treats it as
    ``(N, C, L)`` with a deprecation warning that it will become ``(C, H, W)``; use
    :class:`Dropout1d` for ``(N, C, L)`` or add the batch axis to ``(C, H, W)``.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> out = nn.Dropout2d(0.5, rng=0)(np.ones((2, 3, 2, 2)))
    >>> sorted(set(out.ravel().tolist()))   # channels kept (scaled by 2) or dropped
    [0.0, 2.0]
    """

    layouts = {4: "(N, C, H, W)"}


@parameters_from(Dropout1d)
class Dropout3d(_ChannelDropout):
    """Zero whole channels with probability ``p`` in training mode and scale the rest
    by ``1 / (1 - p)``, as ``torch.nn.Dropout3d``: input ``(N, C, D, H, W)`` or
    ``(C, D, H, W)``; the identity in eval mode (parameters as :class:`Dropout1d`)."""

    layouts = {5: "(N, C, D, H, W)", 4: "(C, D, H, W)"}


class _SoftmaxBase(Module):
    """Shared argument handling of :class:`Softmax` and :class:`LogSoftmax`."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}: dim must be an int, got {dim!r}")
        self.dim = int(dim)
        self._cache: Optional[tuple[np.ndarray, np.dtype]] = None

    def _shifted(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.dtype]:
        """``(x - max, log(sum(exp(x - max))), stored dtype)`` along ``dim``, in the
        dtype the layer computes in: no exp ever overflows."""
        array = self._float_input(x)
        if not -array.ndim <= self.dim < array.ndim:
            raise ValueError(f"{self!r}: dim {self.dim} is out of range for input of shape {array.shape}")
        work = array.astype(compute_dtype(array.dtype), copy=False)
        shifted = work - work.max(axis=self.dim, keepdims=True, initial=-np.inf)
        log_sum = np.log(np.exp(shifted).sum(axis=self.dim, keepdims=True))
        return shifted, log_sum, array.dtype

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along axis ``dim``, as ``torch.nn.Softmax``
    (computed from ``x - max`` so large inputs do not overflow).

    Parameters
    ----------
    dim : int
        The axis whose entries sum to 1 (negative counts from the end). Unlike
        PyTorch there is no implicit default axis.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> nn.Softmax(dim=1)(np.array([[0.0, np.log(3.0)], [1000.0, 1000.0]]))
    array([[0.25, 0.75],
           [0.5 , 0.5 ]])
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        shifted, log_sum, stored = self._shifted(x)
        out = np.exp(shifted - log_sum)
        self._cache = (out, stored)
        result: np.ndarray = out.astype(stored, copy=False)
        return result

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        out, stored = self._cached(self._cache)
        grad = self._grad_out(grad_out, out.shape, stored).astype(out.dtype, copy=False)
        grad_x: np.ndarray = out * (grad - (grad * out).sum(axis=self.dim, keepdims=True))
        return grad_x.astype(stored, copy=False)


class LogSoftmax(_SoftmaxBase):
    """``x - log(sum(exp(x)))`` along axis ``dim``, as ``torch.nn.LogSoftmax``
    (stable for large ``|x|``; pair it with :class:`NLLLoss`).

    Parameters
    ----------
    dim : int
        The axis to normalise over (negative counts from the end).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> nn.LogSoftmax(dim=-1)(np.array([1000.0, 1000.0]))
    array([-0.69314718, -0.69314718])
    """

    def forward(self, x: np.ndarray) -> np.ndarray:
        shifted, log_sum, stored = self._shifted(x)
        out = shifted - log_sum
        self._cache = (np.exp(out), stored)
        result: np.ndarray = out.astype(stored, copy=False)
        return result

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        probabilities, stored = self._cached(self._cache)
        grad = self._grad_out(grad_out, probabilities.shape, stored).astype(probabilities.dtype, copy=False)
        grad_x: np.ndarray = grad - probabilities * grad.sum(axis=self.dim, keepdims=True)
        return grad_x.astype(stored, copy=False)
