"""Losses: ``CrossEntropyLoss`` and ``MSELoss``.

A loss is called as ``loss(prediction, target) -> float``; ``backward()`` then
returns the gradient of that value with respect to ``prediction``, which is what
the network's ``backward`` takes.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .module import FLOAT_NAMES, compute_dtype, is_half


class _Loss:
    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean' or 'sum', got {reduction!r}")
        self.reduction = reduction
        self._grad: Optional[np.ndarray] = None
        self._dtype = np.dtype(np.float64)

    def __call__(self, prediction: np.ndarray, target: np.ndarray) -> float:
        return self.forward(prediction, target)

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        raise NotImplementedError

    def backward(self) -> np.ndarray:
        """Gradient of the last forward's loss with respect to its prediction."""
        if self._grad is None:
            raise ValueError(f"{self!r}: backward called before forward")
        return self._grad.astype(self._dtype, copy=True)

    def _float(self, value: Any, name: str) -> np.ndarray:
        """``value`` as a float array in the dtype the loss computes in (float32 for
        16-bit predictions, whose gradient :meth:`backward` returns in 16 bits)."""
        array = np.asarray(value)
        if array.dtype not in (np.dtype(np.float32), np.dtype(np.float64)) and not is_half(array.dtype):
            raise TypeError(f"{self!r}: {name} must be {FLOAT_NAMES}, got dtype {array.dtype}")
        self._dtype = array.dtype
        return array.astype(compute_dtype(array.dtype), copy=False)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of ``(N, C)`` logits against ``(N,)`` integer class
    labels, as ``torch.nn.CrossEntropyLoss``.

    The log-softmax subtracts each row's maximum before exponentiating, so large
    logits neither overflow nor lose the loss to rounding.

    Parameters
    ----------
    reduction : {"mean", "sum"}
        Average (default) or sum the per-sample losses.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> loss = nn.CrossEntropyLoss()
    >>> round(loss(np.array([[0.0, 0.0]]), np.array([1])), 6)   # log 2
    0.693147
    >>> loss.backward()
    array([[ 0.5, -0.5]])
    """

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        logits = self._float(prediction, "logits")
        labels = np.asarray(target)
        if logits.ndim != 2:
            raise ValueError(f"{self!r}: logits must be 2-D (N, C), got shape {logits.shape}")
        count, classes = logits.shape
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: target must hold integer class labels, got dtype {labels.dtype}")
        if labels.shape != (count,):
            raise ValueError(
                f"{self!r}: target must have shape ({count},) for logits of shape {logits.shape}, "
                f"got shape {labels.shape}"
            )
        if count == 0:
            raise ValueError(f"{self!r}: logits of shape {logits.shape} hold no samples")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= classes:
            raise ValueError(
                f"{self!r}: target labels must be in [0, {classes}) for logits of shape {logits.shape}, "
                f"got values in [{low}, {high}]"
            )
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        rows = np.arange(count)
        losses = -log_probs[rows, labels]
        scale = 1.0 / count if self.reduction == "mean" else 1.0
        grad = np.exp(log_probs)
        grad[rows, labels] -= 1
        self._grad = grad * logits.dtype.type(scale)
        return float(np.sum(losses, dtype=np.float64) * scale)


class MSELoss(_Loss):
    """Mean squared error ``mean((prediction - target) ** 2)``, as ``torch.nn.MSELoss``.

    Parameters
    ----------
    reduction : {"mean", "sum"}
    """

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        pred = self._float(prediction, "prediction")
        goal = np.asarray(target, dtype=pred.dtype)
        if goal.shape != pred.shape:
            raise ValueError(
                f"{self!r}: target has shape {goal.shape} but prediction has shape {pred.shape}"
            )
        diff = pred - goal
        scale = 1.0 / max(diff.size, 1) if self.reduction == "mean" else 1.0
        self._grad = diff * pred.dtype.type(2 * scale)
        return float(np.sum(diff * diff, dtype=np.float64) * scale)
