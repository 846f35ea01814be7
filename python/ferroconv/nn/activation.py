"""Element-wise layers: ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``, ``Dropout``."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .. import _norm
from .module import Module, RngLike, compute_dtype, generator


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
            raise ValueError(f"Dropout: p must be in [0, 1], got {p!r}")
        self.p = float(p)
        self.rng = generator(rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._work(self._float_input(x))
        if not self.training or self.p == 0:
            self._cache = np.ones_like(x)
            return self._out(x.copy())
        if self.p == 1:
            self._cache = np.zeros_like(x)
            return self._out(np.zeros_like(x))
        keep = self.rng.random(x.shape) >= self.p
        self._cache = keep.astype(x.dtype) * x.dtype.type(1 / (1 - self.p))
        out: np.ndarray = x * self._cache
        return self._out(out)

    def extra_repr(self) -> str:
        return f"p={self.p}"
