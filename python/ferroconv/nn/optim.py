"""Optimisers: ``SGD`` and ``Adam``, with PyTorch's update rules.

Both update ``Parameter.data`` in place from ``Parameter.grad``; call
``zero_grad()`` before each backward pass, since backward accumulates.

Mixed precision: for 16-bit parameters (float16, bfloat16) the optimiser keeps a
float32 *master* copy and its state in float32, applies the update there and
writes the master rounded once into ``Parameter.data``. An update smaller than
half a 16-bit ulp is kept in the master instead of being lost. If something else
writes ``Parameter.data`` (``load_state_dict``), the master is re-read from it
at the next step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Optional, Union

import numpy as np

from .module import Module, Parameter, compute_dtype, is_half


class Optimizer:
    """Holds the parameters and per-parameter state of an optimiser."""

    def __init__(self, params: Union[Module, Iterable[Parameter]], lr: float) -> None:
        owner = type(self).__name__
        self.params = params.parameters() if isinstance(params, Module) else list(params)
        if not self.params:
            raise ValueError(f"{owner}: got an empty parameter list")
        for param in self.params:
            if not isinstance(param, Parameter):
                raise TypeError(f"{owner}: params must be Parameters, got {type(param).__name__}")
        if not lr >= 0:
            raise ValueError(f"{owner}: lr must be >= 0, got {lr!r}")
        self.lr = float(lr)
        self.steps = 0
        # float32 masters of the 16-bit parameters, and the 16-bit values last
        # written from them (to notice outside writes); None for other dtypes.
        self.masters: list[Optional[np.ndarray]] = [
            p.data.astype(np.float32) if is_half(p.dtype) else None for p in self.params]
        self._written: list[Optional[np.ndarray]] = [
            p.data.copy() if is_half(p.dtype) else None for p in self.params]

    def _state_like(self, param: Parameter) -> np.ndarray:
        """Zeros for per-parameter state, in the dtype the update is computed in."""
        return np.zeros(param.shape, compute_dtype(param.dtype))

    def _values(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(weights, gradient)`` of parameter ``i`` in the dtype the update is
        computed in: the parameter itself, or its float32 master and gradient."""
        param, master = self.params[i], self.masters[i]
        if master is None:
            return param.data, param.grad
        written = self._written[i]
        if written is None or not np.array_equal(written.view(np.uint16), param.data.view(np.uint16)):
            master[...] = param.data.astype(np.float32)
        return master, param.grad.astype(np.float32)

    def _write_back(self, i: int) -> None:
        """Round the master of a 16-bit parameter once into its data."""
        master = self.masters[i]
        if master is not None:
            param = self.params[i]
            param.data[...] = master.astype(param.dtype)
            self._written[i] = param.data.copy()

    def zero_grad(self) -> None:
        """Reset every parameter gradient to zero."""
        for param in self.params:
            param.zero_grad()

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    For each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p
        buf = g (first step), else momentum * buf + (1 - dampening) * g
        g = g + momentum * buf if nesterov else buf      (when momentum != 0)
        p = p - lr * g

    Parameters
    ----------
    params : iterable of Parameter, or a Module
    lr : float
    momentum : float
    dampening : float
    weight_decay : float
        L2 penalty added to the gradient.
    nesterov : bool
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    """

    def __init__(self, params: Union[Module, Iterable[Parameter]], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: momentum and weight_decay must be >= 0, got {momentum!r}, {weight_decay!r}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum requires momentum > 0 and dampening == 0")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.weight_decay, self.nesterov = float(weight_decay), bool(nesterov)
        self.momentum_buffers: list[Optional[np.ndarray]] = [None] * len(self.params)

    def step(self) -> None:
        """Update every parameter once."""
        for i in range(len(self.params)):
            data, grad = self._values(i)
            if self.weight_decay:
                grad = grad + self.weight_decay * data
            if self.momentum:
                buffer = self.momentum_buffers[i]
                if buffer is None:
                    buffer = self.momentum_buffers[i] = grad.copy()
                else:
                    buffer *= self.momentum
                    buffer += (1 - self.dampening) * grad
                grad = grad + self.momentum * buffer if self.nesterov else buffer
            data -= self.lr * grad
            self._write_back(i)
        self.steps += 1


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (bias-corrected; ``weight_decay`` is an L2
    penalty added to the gradient, not AdamW's decoupled decay).

    For each parameter at step ``t``::

        g = g + weight_decay * p
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Parameters
    ----------
    params : iterable of Parameter, or a Module
    lr : float
    betas : (float, float)
    eps : float
    weight_decay : float
    amsgrad : bool
        Use the running maximum of ``v`` (AMSGrad).
    """

    def __init__(self, params: Union[Module, Iterable[Parameter]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Adam: betas must be in [0, 1), got {betas!r}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"Adam: eps and weight_decay must be >= 0, got {eps!r}, {weight_decay!r}")
        self.betas = (float(beta1), float(beta2))
        self.eps, self.weight_decay, self.amsgrad = float(eps), float(weight_decay), bool(amsgrad)
        self.exp_avg = [self._state_like(p) for p in self.params]
        self.exp_avg_sq = [self._state_like(p) for p in self.params]
        self.max_exp_avg_sq = [self._state_like(p) for p in self.params] if amsgrad else []

    def step(self) -> None:
        """Update every parameter once."""
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.steps)
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.steps)
        for i in range(len(self.params)):
            data, grad = self._values(i)
            if self.weight_decay:
                grad = grad + self.weight_decay * data
            exp_avg, exp_avg_sq = self.exp_avg[i], self.exp_avg_sq[i]
            exp_avg += (1 - beta1) * (grad - exp_avg)  # PyTorch's lerp_
            exp_avg_sq *= beta2
            exp_avg_sq += (1 - beta2) * grad * grad
            second = exp_avg_sq
            if self.amsgrad:
                np.maximum(self.max_exp_avg_sq[i], exp_avg_sq, out=self.max_exp_avg_sq[i])
                second = self.max_exp_avg_sq[i]
            denom = np.sqrt(second) / bias_correction2_sqrt + self.eps
            data -= step_size * exp_avg / denom
            self._write_back(i)
