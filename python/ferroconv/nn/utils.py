"""Gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` and
``clip_grad_value_`` scale or clamp ``Parameter.grad`` in place (call them
between ``backward`` and ``optimizer.step()``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Union

import numpy as np

from .module import Module, Parameter, compute_dtype

Parameters = Union[Module, Parameter, Iterable[Parameter]]


def _parameters(parameters: Parameters, owner: str) -> list[Parameter]:
    if isinstance(parameters, Module):
        return parameters.parameters()
    listed = [parameters] if isinstance(parameters, Parameter) else list(parameters)
    for param in listed:
        if not isinstance(param, Parameter):
            raise TypeError(f"{owner}: parameters must be Parameters, got {type(param).__name__}")
    return listed


def _number(value: object, name: str, owner: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}")
    return float(value)


def clip_grad_norm_(parameters: Parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale the gradients so that their joint norm is at most ``max_norm``, as
    ``torch.nn.utils.clip_grad_norm_``.

    The joint norm is the ``norm_type``-norm of all gradients as one vector
    (``inf``: the largest magnitude). Every gradient is multiplied by
    ``min(1, max_norm / (total_norm + 1e-6))``.

    Parameters
    ----------
    parameters : Module, Parameter or iterable of Parameter
    max_norm : float
    norm_type : float
        ``p`` of the p-norm (> 0), or ``inf``.
    error_if_nonfinite : bool
        Raise instead of scaling when the norm is NaN or infinite.

    Returns
    -------
    float
        The joint norm before clipping.

    Raises
    ------
    RuntimeError
        With ``error_if_nonfinite`` when the norm is not finite (as PyTorch).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> p = nn.Parameter(np.zeros(2))
    >>> p.grad[...] = [3.0, 4.0]
    >>> nn.clip_grad_norm_([p], max_norm=1.0)
    5.0
    >>> np.round(p.grad, 6)
    array([0.6, 0.8])
    """
    owner = "clip_grad_norm_"
    params = _parameters(parameters, owner)
    max_norm = _number(max_norm, "max_norm", owner)
    norm_type = _number(norm_type, "norm_type", owner)
    if not norm_type > 0:
        raise ValueError(f"{owner}: norm_type must be > 0 or inf, got {norm_type!r}")
    if not params:
        return 0.0
    grads = [np.abs(p.grad.astype(np.float64)).ravel() for p in params]
    if math.isinf(norm_type):
        total = max((float(g.max()) if g.size else 0.0) for g in grads)
    else:
        total = float(np.sum([np.sum(g**norm_type) for g in grads]) ** (1.0 / norm_type))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"{owner}: the total norm of order {norm_type} of the gradients is {total}; "
                           "set error_if_nonfinite=False to scale by it anyway")
    coefficient = min(max_norm / (total + 1e-6), 1.0)
    for param in params:
        work = compute_dtype(param.grad.dtype)
        param.grad[...] = (param.grad.astype(work, copy=False) * work.type(coefficient)).astype(param.grad.dtype)
    return total


def clip_grad_value_(parameters: Parameters, clip_value: float) -> None:
    """Clamp every gradient element to ``[-clip_value, clip_value]`` in place, as
    ``torch.nn.utils.clip_grad_value_``.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> p = nn.Parameter(np.zeros(3))
    >>> p.grad[...] = [-5.0, 0.5, 2.0]
    >>> nn.clip_grad_value_(p, 1.0)
    >>> p.grad
    array([-1. ,  0.5,  1. ])
    """
    owner = "clip_grad_value_"
    params = _parameters(parameters, owner)
    limit = _number(clip_value, "clip_value", owner)
    if not limit >= 0:
        raise ValueError(f"{owner}: clip_value must be >= 0, got {clip_value!r}")
    for param in params:
        np.clip(param.grad, -limit, limit, out=param.grad)
