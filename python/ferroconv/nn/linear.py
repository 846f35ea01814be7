"""Fully connected layers: ``Linear`` and ``Flatten``."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .module import DTypeLike, Module, Parameter, RngLike, compute_dtype, float_dtype, generator, kaiming_uniform


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last axis, as ``torch.nn.Linear``.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
    dtype : float32, float64, float16 or bfloat16
        16-bit layers store 16-bit parameters and compute in float32 (see
        :func:`ferroconv.nn.compute_dtype`).
    rng : numpy.random.Generator, int or None
        Source of PyTorch's default init: ``U(-1/sqrt(in_features), 1/sqrt(in_features))``
        for weight and bias.

    Attributes
    ----------
    weight : Parameter
        ``(out_features, in_features)``.
    bias : Parameter or None
        ``(out_features,)``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 dtype: DTypeLike = np.float32, rng: RngLike = None) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Linear: {name} must be a positive int, got {value!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        dtype = float_dtype(dtype, "Linear")
        rng = generator(rng)
        self.weight = Parameter(kaiming_uniform((self.out_features, self.in_features), self.in_features, rng, dtype))
        self.bias: Optional[Parameter] = (
            Parameter(kaiming_uniform((self.out_features,), self.in_features, rng, dtype)) if bias else None
        )
        self._cache: Optional[np.ndarray] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._float_input(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected input of shape (..., {self.in_features}), got shape {x.shape}"
            )
        if x.dtype != self.weight.dtype:
            raise TypeError(
                f"{self!r}: input has dtype {x.dtype} but the layer's parameters are "
                f"{self.weight.dtype}; convert with x.astype(np.{self.weight.dtype})"
            )
        # 16-bit layers multiply in float32 and round the result once (NumPy has no
        # fast 16-bit matmul, and a float32 sum is the package's contract).
        work = compute_dtype(x.dtype)
        out: np.ndarray = x.astype(work, copy=False) @ self.weight.data.T.astype(work, copy=False)
        if self.bias is not None:
            out += self.bias.data.astype(work, copy=False)
        self._cache = x
        return out.astype(x.dtype, copy=False)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x = self._cached(self._cache)
        work = compute_dtype(x.dtype)
        grad = self._grad_out(grad_out, x.shape[:-1] + (self.out_features,), x.dtype).astype(work, copy=False)
        grad_2d = grad.reshape(-1, self.out_features)
        x_2d = x.reshape(-1, self.in_features).astype(work, copy=False)
        self.weight.grad += (grad_2d.T @ x_2d).astype(x.dtype, copy=False)
        if self.bias is not None:
            self.bias.grad += grad_2d.sum(axis=0).astype(x.dtype, copy=False)
        grad_x: np.ndarray = grad @ self.weight.data.astype(work, copy=False)
        return grad_x.astype(x.dtype, copy=False)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` into one, as ``torch.nn.Flatten``
    (default: everything but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)
        self._cache: Optional[tuple[tuple[int, ...], tuple[int, ...], np.dtype]] = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        start = self.start_dim + x.ndim if self.start_dim < 0 else self.start_dim
        end = self.end_dim + x.ndim if self.end_dim < 0 else self.end_dim
        if not 0 <= start <= end < x.ndim:
            raise ValueError(
                f"{self!r}: cannot flatten axes {self.start_dim}..{self.end_dim} of an input of shape {x.shape}"
            )
        out = x.reshape(x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:])
        self._cache = (x.shape, out.shape, x.dtype)
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        in_shape, out_shape, dtype = self._cached(self._cache)
        return self._grad_out(grad_out, out_shape, dtype).reshape(in_shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
