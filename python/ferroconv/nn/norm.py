"""Batch normalisation (``BatchNorm1d/2d/3d``, with PyTorch's running statistics) and
group normalisation (``GroupNorm``)."""

from __future__ import annotations

from typing import Any, ClassVar, Optional

import numpy as np

from .. import _norm
from .._errors import named
from .module import DTypeLike, Module, Parameter, compute_dtype, float_dtype
from ._docs import parameters_from


def _layer_dtype(layer: Module, array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` if it has the normalisation layer's dtype, else a TypeError saying how to convert."""
    if array.dtype != dtype:
        raise TypeError(f"{layer!r}: input has dtype {array.dtype} but the layer is {dtype}; "
                        f"convert with x.astype(np.{dtype})")
    return array


class _BatchNorm(Module):
    """Normalise each channel over the batch and spatial axes.

    Training mode uses the batch's mean and biased variance and updates
    ``running_mean`` / ``running_var`` by ``running = (1 - momentum) * running +
    momentum * batch`` with the *unbiased* batch variance (as PyTorch); with
    ``momentum=None`` the update is a cumulative average. Eval mode normalises by
    the running statistics.
    """

    layouts: ClassVar[dict[int, str]]
    running_mean: np.ndarray
    running_var: np.ndarray
    num_batches_tracked: np.ndarray

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        owner = type(self).__name__
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"{owner}: num_features must be a positive int, got {num_features!r}")
        if eps <= 0:
            raise ValueError(f"{owner}: eps must be > 0, got {eps!r}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ValueError(f"{owner}: momentum must be in [0, 1] or None, got {momentum!r}")
        dtype = float_dtype(dtype, owner)
        self.num_features = int(num_features)
        self.eps = float(eps)
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.weight: Optional[Parameter] = Parameter(np.ones(self.num_features, dtype)) if affine else None
        self.bias: Optional[Parameter] = Parameter(np.zeros(self.num_features, dtype)) if affine else None
        # 16-bit layers normalise in float32 and keep their running statistics in
        # float32 (as PyTorch's autocast runs batch norm in float32).
        work = compute_dtype(dtype)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, work))
            self.register_buffer("running_var", np.ones(self.num_features, work))
            self.register_buffer("num_batches_tracked", np.zeros((), np.int64))
        self._dtype = dtype
        self._cache: Optional[tuple[Any, ...]] = None

    def _input(self, x: Any) -> np.ndarray:
        array = self._float_input(x)
        if array.ndim not in self.layouts or array.shape[1] != self.num_features:
            expected = " or ".join(layout.replace("C", str(self.num_features)) for layout in self.layouts.values())
            raise ValueError(f"{self!r}: expected input of shape {expected}, got shape {array.shape}")
        return _layer_dtype(self, array, self._dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        stored = x.dtype
        work = compute_dtype(stored)
        x = x.astype(work, copy=False)
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            count = x.shape[0] * int(np.prod(x.shape[2:]))
            if count <= 1:
                raise ValueError(
                    f"{self!r}: training needs more than 1 value per channel, got input shape {x.shape}"
                )
        update = self.training and self.track_running_stats
        batches = int(self.num_batches_tracked) + 1 if update else 0
        momentum = 0.0 if not update else 1.0 / batches if self.momentum is None else float(self.momentum)
        tracked = update or not use_batch_stats
        running_mean = self.running_mean if tracked else None
        running_var = self.running_var if tracked else None
        weight, bias = self._affine(work)
        # One native call: the statistics in float64, the running statistics
        # updated in place, the output (16-bit layers: rounded once).
        with named(repr(self)):
            out, mean, inv_std = _norm.batch_norm(x, running_mean, running_var, weight, bias, use_batch_stats,
                                                  momentum, self.eps, False)
        if update:
            self.num_batches_tracked += 1
        self._cache = (x, mean, inv_std, use_batch_stats, stored)
        result: np.ndarray = out.astype(stored, copy=False)
        return result

    def _affine(self, work: np.dtype) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """``weight`` and ``bias`` in the dtype the layer computes in (None without them)."""
        if self.weight is None or self.bias is None:
            return None, None
        return self.weight.data.astype(work, copy=False), self.bias.data.astype(work, copy=False)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x, mean, inv_std, use_batch_stats, stored = self._cached(self._cache)
        grad = self._grad_out(grad_out, x.shape, stored).astype(x.dtype, copy=False)
        weight, _ = self._affine(x.dtype)
        # In eval mode the statistics are constants: grad_x = grad * weight * inv_std.
        with named(repr(self)):
            grad_x, grad_weight, grad_bias = _norm.batch_norm_backward(grad, x, weight, mean, inv_std,
                                                                       use_batch_stats, None)
        if self.weight is not None and self.bias is not None:
            self.weight.grad += grad_weight.astype(stored, copy=False)
            self.bias.grad += grad_bias.astype(stored, copy=False)
        result: np.ndarray = grad_x.astype(stored, copy=False)
        return result

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``(N, C)`` or ``(N, C, L)``, as ``torch.nn.BatchNorm1d``.

    Parameters
    ----------
    num_features : int
        The channel count ``C``.
    eps : float
        Added to the variance before the square root.
    momentum : float or None
        Weight of the new batch in the running statistics; None for a cumulative
        average.
    affine : bool
        Learn a per-channel scale ``weight`` (init 1) and shift ``bias`` (init 0).
    track_running_stats : bool
        Keep ``running_mean``, ``running_var`` and ``num_batches_tracked`` buffers
        (saved in the state dict) and use them in eval mode; without them batch
        statistics are used in both modes.
    dtype : float32, float64, float16 or bfloat16
        16-bit layers store 16-bit ``weight`` and ``bias``, normalise in float32
        and keep float32 running statistics.
    """

    layouts = {2: "(N, C)", 3: "(N, C, L)"}


@parameters_from(BatchNorm1d)
class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``(N, C, H, W)``, as ``torch.nn.BatchNorm2d``
    (parameters as :class:`BatchNorm1d`)."""

    layouts = {4: "(N, C, H, W)"}


@parameters_from(BatchNorm1d)
class BatchNorm3d(_BatchNorm):
    """Batch normalisation over ``(N, C, D, H, W)``, as ``torch.nn.BatchNorm3d``
    (parameters as :class:`BatchNorm1d`)."""

    layouts = {5: "(N, C, D, H, W)"}


class GroupNorm(Module):
    """Group normalisation, as ``torch.nn.GroupNorm``: the channels of each sample
    are split into ``num_groups`` groups, and each group is normalised by its own
    mean and biased variance (over its channels and every spatial position), then
    scaled and shifted per channel. The same in training and eval mode (no running
    statistics), and independent of the batch size.

    Parameters
    ----------
    num_groups : int
        Must divide ``num_channels``.
    num_channels : int
        The channel count ``C`` of inputs ``(N, C, *)``.
    eps : float
        Added to the variance before the square root.
    affine : bool
        Learn a per-channel scale ``weight`` (init 1) and shift ``bias`` (init 0).
    dtype : float32, float64, float16 or bfloat16
        16-bit layers store 16-bit ``weight`` and ``bias`` and normalise in float32.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> norm = nn.GroupNorm(2, 4, dtype=np.float64)
    >>> out = norm(np.arange(16.0).reshape(1, 4, 4))   # groups: channels 0-1 and 2-3
    >>> print(np.round(out[0, :2], 3))
    [[-1.528 -1.091 -0.655 -0.218]
     [ 0.218  0.655  1.091  1.528]]
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 dtype: DTypeLike = np.float32) -> None:
        super().__init__()
        owner = type(self).__name__
        for name, value in (("num_groups", num_groups), ("num_channels", num_channels)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
        if num_channels % num_groups:
            raise ValueError(f"{owner}: num_channels ({num_channels}) must be divisible by num_groups ({num_groups})")
        if not eps > 0:
            raise ValueError(f"{owner}: eps must be > 0, got {eps!r}")
        dtype = float_dtype(dtype, owner)
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps, self.affine = float(eps), bool(affine)
        self.weight: Optional[Parameter] = Parameter(np.ones(self.num_channels, dtype)) if affine else None
        self.bias: Optional[Parameter] = Parameter(np.zeros(self.num_channels, dtype)) if affine else None
        self._dtype = dtype
        self._cache: Optional[tuple[np.ndarray, np.ndarray, tuple[int, ...], np.dtype]] = None

    def _input(self, x: Any) -> np.ndarray:
        array = self._float_input(x)
        if array.ndim < 2 or array.shape[1] != self.num_channels:
            raise ValueError(f"{self!r}: expected input of shape (N, {self.num_channels}, *), got shape {array.shape}")
        return _layer_dtype(self, array, self._dtype)

    def _per_channel(self, values: np.ndarray) -> np.ndarray:
        """A ``(C,)`` array as ``(1, G, C // G, 1)``, to broadcast over the grouped view."""
        return values.reshape(1, self.num_groups, -1, 1)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = self._input(x)
        stored = x.dtype
        work = x.astype(compute_dtype(stored), copy=False)
        # (N, G, C // G, M): statistics over axes 2 and 3 of each (sample, group)
        view = work.reshape(x.shape[0], self.num_groups, self.num_channels // self.num_groups, -1)
        if view.shape[2] * view.shape[3] == 0:
            raise ValueError(f"{self!r}: input of shape {x.shape} has no values to normalise")
        mean = view.mean(axis=(2, 3), keepdims=True)
        x_hat = view - mean
        var = np.square(x_hat).mean(axis=(2, 3), keepdims=True)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(work.dtype)
        x_hat *= inv_std
        out = x_hat
        if self.weight is not None and self.bias is not None:
            out = x_hat * self._per_channel(self.weight.data.astype(work.dtype))
            out += self._per_channel(self.bias.data.astype(work.dtype))
        self._cache = (x_hat, inv_std, x.shape, stored)
        result: np.ndarray = out.reshape(x.shape).astype(stored, copy=True)
        return result

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        x_hat, inv_std, shape, stored = self._cached(self._cache)
        grad = self._grad_out(grad_out, shape, stored).astype(x_hat.dtype, copy=False).reshape(x_hat.shape)
        if self.weight is not None and self.bias is not None:
            self.weight.grad += (grad * x_hat).sum(axis=(0, 3)).reshape(-1).astype(stored, copy=False)
            self.bias.grad += grad.sum(axis=(0, 3)).reshape(-1).astype(stored, copy=False)
            grad = grad * self._per_channel(self.weight.data.astype(x_hat.dtype))
        # x_hat = (x - mean) * inv_std with the statistics of the group:
        # grad_x = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))
        grad_x = grad - grad.mean(axis=(2, 3), keepdims=True)
        grad_x -= x_hat * (grad * x_hat).mean(axis=(2, 3), keepdims=True)
        grad_x *= inv_std
        result: np.ndarray = grad_x.reshape(shape).astype(stored, copy=False)
        return result

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
