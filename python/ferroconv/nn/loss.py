"""Losses: ``CrossEntropyLoss``, ``NLLLoss``, ``BCEWithLogitsLoss`` and ``MSELoss``.

A loss is called as ``loss(prediction, target) -> float``; ``backward()`` then
returns the gradient of that value with respect to ``prediction``, which is what
the network's ``backward`` takes.
"""

from __future__ import annotations

import math
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


class _ClassIndexLoss(_Loss):
    """Shared by the losses of ``(N, C)`` or ``(N, C, d1, ...)`` scores against integer
    class labels ``(N,)`` or ``(N, d1, ...)``: the ``weight`` of each class and
    the ``ignore_index`` label that contributes nothing (PyTorch's semantics: the
    mean divides by the summed weight of the targets that are not ignored)."""

    def __init__(self, weight: Optional[Any] = None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        owner = type(self).__name__
        self.weight: Optional[np.ndarray] = None
        if weight is not None:
            array = np.asarray(weight)
            if array.dtype.kind not in "fiu" or array.ndim != 1 or array.size == 0:
                raise ValueError(f"{owner}: weight must be a 1-D float array of one weight per class, "
                                 f"got {array.dtype} array of shape {array.shape}")
            self.weight = array.astype(np.float64)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
            raise TypeError(f"{owner}: ignore_index must be an int, got {ignore_index!r}")
        self.ignore_index = int(ignore_index)

    def _scores_and_labels(self, prediction: Any, target: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The scores as ``(M, C)`` rows (the class axis last) and the labels as
        ``(M,)``, checked."""
        scores = self._float(prediction, name)
        labels = np.asarray(target)
        if scores.ndim < 2:
            raise ValueError(f"{self!r}: {name} must have shape (N, C) or (N, C, d1, ...), got shape {scores.shape}")
        classes = scores.shape[1]
        expected = scores.shape[:1] + scores.shape[2:]
        if labels.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: target must hold integer class labels, got dtype {labels.dtype}")
        if labels.shape != expected:
            raise ValueError(
                f"{self!r}: target must have shape {expected} for {name} of shape {scores.shape}, "
                f"got shape {labels.shape}"
            )
        if labels.size == 0:
            raise ValueError(f"{self!r}: {name} of shape {scores.shape} hold no samples")
        if self.weight is not None and self.weight.shape != (classes,):
            raise ValueError(f"{self!r}: weight has shape {self.weight.shape} but {name} of shape "
                             f"{scores.shape} have {classes} classes")
        counted = labels[labels != self.ignore_index]
        if counted.size and (int(counted.min()) < 0 or int(counted.max()) >= classes):
            raise ValueError(
                f"{self!r}: target labels must be in [0, {classes}) for {name} of shape {scores.shape} "
                f"(or equal ignore_index={self.ignore_index}), got values in [{int(counted.min())}, "
                f"{int(counted.max())}]"
            )
        rows = np.moveaxis(scores, 1, -1).reshape(-1, classes)
        return rows, labels.reshape(-1).astype(np.int64)

    def _weighted_nll(self, log_probs: np.ndarray, labels: np.ndarray,
                      smoothing: float = 0.0) -> tuple[float, np.ndarray]:
        """The loss of ``(M, C)`` log-probabilities and its gradient with respect to
        them: ``(1 - smoothing) * nll + smoothing / C * sum_c(-weight_c * log_prob_c)``
        per counted row, summed, or for "mean" divided by the counted weight."""
        count, classes = log_probs.shape
        class_weight = np.ones(classes) if self.weight is None else self.weight
        counted = labels != self.ignore_index
        safe = np.where(counted, labels, 0)
        rows = np.arange(count)
        target_weight = np.where(counted, class_weight[safe], 0.0)
        grad = np.zeros((count, classes))
        grad[rows, safe] = -(1 - smoothing) * target_weight
        if smoothing:
            grad -= (smoothing / classes) * counted[:, np.newaxis] * class_weight
        total = float(np.sum(grad * log_probs, dtype=np.float64))
        if self.reduction == "mean":
            denominator = float(np.sum(target_weight))
            if denominator == 0:  # every target ignored: PyTorch's 0 / 0
                return math.nan, np.zeros_like(log_probs)
            grad /= denominator
            total /= denominator
        return total, grad.astype(log_probs.dtype)

    def _shaped_grad(self, rows: np.ndarray, prediction_shape: tuple[int, ...]) -> np.ndarray:
        """``(M, C)`` gradient rows back in the prediction's ``(N, C, d1, ...)`` layout."""
        moved = prediction_shape[:1] + prediction_shape[2:] + prediction_shape[1:2]
        return np.ascontiguousarray(np.moveaxis(rows.reshape(moved), -1, 1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class CrossEntropyLoss(_ClassIndexLoss):
    """Softmax cross-entropy of logits ``(N, C)`` or ``(N, C, d1, ...)`` against
    integer class labels ``(N,)`` or ``(N, d1, ...)``, as ``torch.nn.CrossEntropyLoss``.

    The log-softmax subtracts each row's maximum before exponentiating, so large
    logits neither overflow nor lose the loss to rounding.

    Parameters
    ----------
    weight : array of shape (C,), optional
        A weight per class: each target's loss is multiplied by its class's weight,
        and "mean" divides by the sum of the weights of the (not ignored) targets.
    ignore_index : int
        Targets with this label contribute nothing and are not counted by "mean"
        (if all are ignored, "mean" gives NaN as PyTorch, with a zero gradient).
    reduction : {"mean", "sum"}
        Average (default) or sum the per-sample losses.
    label_smoothing : float in [0, 1]
        Mix the one-hot target with the uniform distribution: the loss is
        ``(1 - s) * nll + s / C * sum_c(-weight_c * log_softmax_c)``, with
        PyTorch's normalisation for "mean" (the same weight sum).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> loss = nn.CrossEntropyLoss()
    >>> round(loss(np.array([[0.0, 0.0]]), np.array([1])), 6)   # log 2
    0.693147
    >>> loss.backward()
    array([[ 0.5, -0.5]])
    >>> weighted = nn.CrossEntropyLoss(weight=np.array([1.0, 3.0]), ignore_index=-1)
    >>> round(weighted(np.array([[0.0, 0.0], [0.0, 0.0], [5.0, 0.0]]), np.array([0, 1, -1])), 6)
    0.693147
    """

    def __init__(self, weight: Optional[Any] = None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(weight, ignore_index, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        logits, labels = self._scores_and_labels(prediction, target, "logits")
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        loss, grad_log_probs = self._weighted_nll(log_probs, labels, self.label_smoothing)
        # through the log-softmax: d/dz = g - softmax * sum(g)
        grad = grad_log_probs - np.exp(log_probs) * grad_log_probs.sum(axis=1, keepdims=True)
        self._grad = self._shaped_grad(grad, np.shape(prediction))
        return loss


class NLLLoss(_ClassIndexLoss):
    """Negative log-likelihood of log-probabilities ``(N, C)`` or
    ``(N, C, d1, ...)`` (e.g. from :class:`LogSoftmax`) against integer class labels,
    as ``torch.nn.NLLLoss``: ``-weight[y] * input[y]`` per target.

    Parameters
    ----------
    weight : array of shape (C,), optional
        A weight per class; "mean" divides by the summed weight of the targets.
    ignore_index : int
        Targets with this label contribute nothing and are not counted.
    reduction : {"mean", "sum"}

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> loss = nn.NLLLoss()
    >>> round(loss(np.log(np.array([[0.25, 0.75], [0.5, 0.5]])), np.array([1, 0])), 6)   # -log(0.75 * 0.5) / 2
    0.490415
    """

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        log_probs, labels = self._scores_and_labels(prediction, target, "input")
        loss, grad = self._weighted_nll(log_probs, labels)
        self._grad = self._shaped_grad(grad, np.shape(prediction))
        return loss


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits ``x`` against targets ``y`` in [0, 1] of the
    same shape, as ``torch.nn.BCEWithLogitsLoss``:
    ``-weight * (pos_weight * y * log(sigmoid(x)) + (1 - y) * log(1 - sigmoid(x)))``,
    with the log-sigmoids computed stably (``log(sigmoid(x)) = -softplus(-x)``), so
    logits of any size give finite losses.

    Parameters
    ----------
    weight : array, optional
        Broadcast to the prediction's shape: a weight per element.
    reduction : {"mean", "sum"}
        The mean is over all elements.
    pos_weight : array, optional
        Weight of the positive term, broadcast along the last axis (one per class for
        ``(N, C)`` multi-label logits).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> loss = nn.BCEWithLogitsLoss()
    >>> round(loss(np.array([0.0, 1000.0]), np.array([1.0, 1.0])), 6)   # (log 2 + 0) / 2
    0.346574
    """

    def __init__(self, weight: Optional[Any] = None, reduction: str = "mean",
                 pos_weight: Optional[Any] = None) -> None:
        super().__init__(reduction)
        self.weight = None if weight is None else self._weights(weight, "weight")
        self.pos_weight = None if pos_weight is None else self._weights(pos_weight, "pos_weight")

    def _weights(self, value: Any, name: str) -> np.ndarray:
        array = np.asarray(value)
        if array.dtype.kind not in "fiu":
            raise TypeError(f"{type(self).__name__}: {name} must hold numbers, got dtype {array.dtype}")
        return array.astype(np.float64)

    def _broadcast(self, array: Optional[np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
        if array is None:
            return np.ones(())
        try:
            fits = np.broadcast_shapes(array.shape, shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"{self!r}: {name} of shape {array.shape} does not broadcast to the logits' shape {shape}")
        return array

    def forward(self, prediction: np.ndarray, target: np.ndarray) -> float:
        logits = self._float(prediction, "logits")
        goal = np.asarray(target)
        if goal.dtype.kind not in "fiub":
            raise TypeError(f"{self!r}: target must hold numbers in [0, 1], got dtype {goal.dtype}")
        goal = goal.astype(logits.dtype)
        if goal.shape != logits.shape:
            raise ValueError(f"{self!r}: target has shape {goal.shape} but logits have shape {logits.shape}")
        weight = self._broadcast(self.weight, "weight", logits.shape).astype(logits.dtype)
        pos_weight = self._broadcast(self.pos_weight, "pos_weight", logits.shape).astype(logits.dtype)
        # softplus(-x) = -log(sigmoid(x)), without overflow for any x
        softplus_neg = np.logaddexp(0, -logits)
        positive = pos_weight * goal + (1 - goal)
        losses = weight * ((1 - goal) * logits + positive * softplus_neg)
        exp_neg_abs = np.exp(-np.abs(logits))
        sigmoid = np.where(logits >= 0, 1 / (1 + exp_neg_abs), exp_neg_abs / (1 + exp_neg_abs))
        scale = 1.0 / max(logits.size, 1) if self.reduction == "mean" else 1.0
        self._grad = np.ascontiguousarray(weight * (positive * sigmoid - pos_weight * goal) * logits.dtype.type(scale))
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
