"""Optimisers (``SGD``, ``Adam``, ``AdamW``) with PyTorch's update rules, and
learning-rate schedules (``StepLR``, ``CosineAnnealingLR``, ``LinearLR``) with the
closed forms of ``torch.optim.lr_scheduler``.

The optimisers update ``Parameter.data`` in place from ``Parameter.grad``; call
``zero_grad()`` before each backward pass, since backward accumulates.

State dicts: ``state_dict()`` of an optimiser or a schedule is a flat
``dict[str, numpy.ndarray]`` of copies (0-d arrays for scalars; per-parameter
state as ``"state.<i>.<name>"``), ready for ``numpy.savez``; ``load_state_dict``
checks every entry before it changes anything, and training continued after it
is bit-identical to training that never stopped.

Mixed precision: for 16-bit parameters (float16, bfloat16) the optimiser keeps a
float32 *master* copy and its state in float32, applies the update there and
writes the master rounded once into ``Parameter.data``. An update smaller than
half a 16-bit ulp is kept in the master instead of being lost. If something else
writes ``Parameter.data`` (``load_state_dict``), the master is re-read from it
at the next step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Optional, Union

import numpy as np

from .module import Module, Parameter, compute_dtype, is_half
from ._docs import parameters_from

Hyper = dict[str, Union[float, bool]]


def _scalar(state: Mapping[str, np.ndarray], key: str, owner: str, kind: str) -> Union[float, bool, int]:
    """The 0-d entry ``key`` of a state dict as a Python float (``kind="f"``), int
    (``"i"``) or bool (``"b"``); ValueError naming the key otherwise."""
    value = np.asarray(state[key])
    accepted = {"f": "fiu", "i": "iu", "b": "biu"}[kind]
    if value.shape != () or value.dtype.kind not in accepted:
        raise ValueError(f"{owner}: {key} must be a 0-d {dict(f='number', i='integer', b='bool')[kind]} array, "
                         f"got {value.dtype} array of shape {value.shape}")
    item = value.item()
    if kind == "f":
        return float(item)
    if kind == "b":
        if item not in (0, 1):
            raise ValueError(f"{owner}: {key} must be a bool, got {item!r}")
        return bool(item)
    return int(item)


def _check_keys(state: Mapping[str, Any], required: Iterable[str], optional: Iterable[str], owner: str) -> None:
    """ValueError listing the missing and unexpected keys of a state dict."""
    required = list(required)
    allowed = set(required) | set(optional)
    missing = [key for key in required if key not in state]
    unexpected = sorted(key for key in state if key not in allowed)
    if missing or unexpected:
        raise ValueError(f"{owner}: missing keys {missing}, unexpected keys {unexpected}")


def _scalars(values: Mapping[str, Union[float, bool, int]]) -> dict[str, np.ndarray]:
    """0-d arrays of Python scalars: bool, int64 or float64."""
    return {key: np.array(v, dtype=np.bool_ if isinstance(v, bool) else np.int64 if isinstance(v, int)
                          else np.float64) for key, v in values.items()}


class Optimizer:
    """Holds the parameters and per-parameter state of an optimiser.

    Subclasses name their scalar hyperparameters (:meth:`hyperparameters`) and their
    per-parameter state arrays (:meth:`_per_parameter`); :meth:`state_dict` and
    :meth:`load_state_dict` are built from those.
    """

    # name -> "f" (float) or "b" (bool) of the scalar hyperparameters in the state dict
    _hyper_kinds: ClassVar[dict[str, str]] = {}

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

    def _sync_master(self, i: int) -> None:
        """Re-read the master of 16-bit parameter ``i`` if something else wrote its data."""
        param, master, written = self.params[i], self.masters[i], self._written[i]
        if master is not None and (
                written is None or not np.array_equal(written.view(np.uint16), param.data.view(np.uint16))):
            master[...] = param.data.astype(np.float32)

    def _values(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(weights, gradient)`` of parameter ``i`` in the dtype the update is
        computed in: the parameter itself, or its float32 master and gradient."""
        param, master = self.params[i], self.masters[i]
        if master is None:
            return param.data, param.grad
        self._sync_master(i)
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

    # ----------------------------------------------------------- state dicts

    def hyperparameters(self) -> Hyper:
        """The scalar hyperparameters other than ``lr`` (saved in the state dict)."""
        return {}

    def _validated(self, hyper: Hyper, owner: str) -> Hyper:
        """``hyper`` checked as the constructor checks it (ValueError), converted."""
        return dict(hyper)

    def _set_hyperparameters(self, hyper: Hyper) -> None:
        for name, value in hyper.items():
            setattr(self, name, value)

    def _per_parameter(self) -> dict[str, list[Optional[np.ndarray]]]:
        """Per-parameter state arrays by name (None: not created yet)."""
        return {}

    def _layout(self, hyper: Hyper) -> dict[str, bool]:
        """The per-parameter state the hyperparameters ``hyper`` need: name -> True
        (every parameter has it) or False (all parameters or none: made by the first
        step)."""
        return {}

    def _set_per_parameter(self, name: str, arrays: list[Optional[np.ndarray]]) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat dict of copies: ``lr``, ``steps``, ``num_params`` and the
        hyperparameters as 0-d arrays, and ``"state.<i>.<name>"`` arrays per
        parameter (e.g. ``state.0.momentum_buffer``, ``state.3.exp_avg``, and
        ``state.<i>.master`` for the float32 master of a 16-bit parameter)."""
        state = _scalars({"lr": self.lr, "steps": int(self.steps), "num_params": len(self.params),
                          **self.hyperparameters()})
        per_parameter = dict(self._per_parameter(), master=self.masters)
        for i in range(len(self.params)):
            self._sync_master(i)
            for name, arrays in per_parameter.items():
                array = arrays[i]
                if array is not None:
                    state[f"state.{i}.{name}"] = array.copy()
        return state

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore a :meth:`state_dict` (e.g. read back from an ``.npz`` file):
        hyperparameters, step count and per-parameter state, as copies.

        Raises
        ------
        ValueError
            For missing or unexpected keys, a different number of parameters, a
            per-parameter array of another shape (or a dtype that does not convert
            losslessly), or an invalid hyperparameter; the key is named and nothing
            is changed.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        scalar_keys = ["lr", "steps", "num_params", *self._hyper_kinds]
        missing = [key for key in scalar_keys if key not in state]
        if missing:
            raise ValueError(f"{owner}: missing keys {missing}")
        count = _scalar(state, "num_params", owner, "i")
        if count != len(self.params):
            raise ValueError(f"{owner}: num_params is {count} but the optimiser has {len(self.params)} parameters")
        lr = _scalar(state, "lr", owner, "f")
        steps = _scalar(state, "steps", owner, "i")
        if not lr >= 0 or steps < 0:
            raise ValueError(f"{owner}: lr and steps must be >= 0, got {lr!r}, {steps!r}")
        hyper = self._validated({k: _scalar(state, k, owner, kind) for k, kind in self._hyper_kinds.items()}, owner)
        layout = self._layout(hyper)
        required: list[str] = []
        optional: list[str] = []
        for i, param in enumerate(self.params):
            for name, always in layout.items():
                (required if always else optional).append(f"state.{i}.{name}")
            if self.masters[i] is not None:
                required.append(f"state.{i}.master")
        _check_keys(state, scalar_keys + required, optional, owner)
        arrays: dict[str, list[Optional[np.ndarray]]] = {name: [] for name in [*layout, "master"]}
        for name, always in [*layout.items(), ("master", True)]:
            present = [f"state.{i}.{name}" in state for i in range(len(self.params))]
            if not always and any(present) and not all(present):
                absent = [f"state.{i}.{name}" for i, here in enumerate(present) if not here]
                raise ValueError(f"{owner}: missing keys {absent} (every parameter has {name} or none)")
            for i, param in enumerate(self.params):
                key = f"state.{i}.{name}"
                expected = np.dtype(np.float32) if name == "master" else compute_dtype(param.dtype)
                arrays[name].append(None if key not in state else self._state_array(state[key], key, param,
                                                                                  expected, owner))
        # everything checked: apply
        self.lr, self.steps = float(lr), int(steps)
        self._set_hyperparameters(hyper)
        for name in layout:
            self._set_per_parameter(name, arrays[name])
        for name in self._per_parameter():
            if name not in layout:
                self._set_per_parameter(name, [None] * len(self.params))
        for i, master in enumerate(arrays["master"]):
            if master is not None:
                self.masters[i] = master
                self._written[i] = master.astype(self.params[i].dtype)

    @staticmethod
    def _state_array(value: Any, key: str, param: Parameter, expected: np.dtype, owner: str) -> np.ndarray:
        array = np.asarray(value)
        if array.shape != param.shape:
            raise ValueError(f"{owner}: {key} has shape {array.shape} but parameter {key.split('.')[1]} has "
                             f"shape {param.shape}")
        if array.dtype.kind != "f" or not np.can_cast(array.dtype, expected, "safe"):
            raise ValueError(f"{owner}: {key} has dtype {array.dtype}, which does not convert losslessly to "
                             f"the optimiser's {expected}")
        return np.array(array, dtype=expected, copy=True)


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

    _hyper_kinds = {"momentum": "f", "dampening": "f", "weight_decay": "f", "nesterov": "b"}

    def __init__(self, params: Union[Module, Iterable[Parameter]], lr: float, momentum: float = 0.0,
                 dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(params, lr)
        self._set_hyperparameters(self._validated(
            dict(momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov), "SGD"))
        self.momentum_buffers: list[Optional[np.ndarray]] = [None] * len(self.params)

    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool

    def _validated(self, hyper: Hyper, owner: str) -> Hyper:
        momentum, weight_decay = hyper["momentum"], hyper["weight_decay"]
        if momentum < 0 or weight_decay < 0:
            raise ValueError(f"{owner}: momentum and weight_decay must be >= 0, got {momentum!r}, {weight_decay!r}")
        if hyper["nesterov"] and (momentum <= 0 or hyper["dampening"] != 0):
            raise ValueError(f"{owner}: nesterov momentum requires momentum > 0 and dampening == 0")
        return {"momentum": float(momentum), "dampening": float(hyper["dampening"]),
                "weight_decay": float(weight_decay), "nesterov": bool(hyper["nesterov"])}

    def hyperparameters(self) -> Hyper:
        return {"momentum": self.momentum, "dampening": self.dampening, "weight_decay": self.weight_decay,
                "nesterov": self.nesterov}

    def _per_parameter(self) -> dict[str, list[Optional[np.ndarray]]]:
        return {"momentum_buffer": self.momentum_buffers}

    def _layout(self, hyper: Hyper) -> dict[str, bool]:
        return {"momentum_buffer": False} if hyper["momentum"] else {}

    def _set_per_parameter(self, name: str, arrays: list[Optional[np.ndarray]]) -> None:
        self.momentum_buffers = arrays

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

    _hyper_kinds = {"beta1": "f", "beta2": "f", "eps": "f", "weight_decay": "f", "amsgrad": "b"}
    decoupled_weight_decay: ClassVar[bool] = False

    def __init__(self, params: Union[Module, Iterable[Parameter]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False) -> None:
        super().__init__(params, lr)
        beta1, beta2 = betas
        self._set_hyperparameters(self._validated(
            dict(beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad),
            type(self).__name__))
        self.exp_avg = [self._state_like(p) for p in self.params]
        self.exp_avg_sq = [self._state_like(p) for p in self.params]
        self.max_exp_avg_sq = [self._state_like(p) for p in self.params] if amsgrad else []

    betas: tuple[float, float]
    eps: float
    weight_decay: float
    amsgrad: bool

    def _validated(self, hyper: Hyper, owner: str) -> Hyper:
        beta1, beta2, eps, weight_decay = hyper["beta1"], hyper["beta2"], hyper["eps"], hyper["weight_decay"]
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"{owner}: betas must be in [0, 1), got {(beta1, beta2)!r}")
        if eps < 0 or weight_decay < 0:
            raise ValueError(f"{owner}: eps and weight_decay must be >= 0, got {eps!r}, {weight_decay!r}")
        return {"beta1": float(beta1), "beta2": float(beta2), "eps": float(eps),
                "weight_decay": float(weight_decay), "amsgrad": bool(hyper["amsgrad"])}

    def _set_hyperparameters(self, hyper: Hyper) -> None:
        self.betas = (float(hyper["beta1"]), float(hyper["beta2"]))
        self.eps, self.weight_decay, self.amsgrad = float(hyper["eps"]), float(hyper["weight_decay"]), \
            bool(hyper["amsgrad"])

    def hyperparameters(self) -> Hyper:
        return {"beta1": self.betas[0], "beta2": self.betas[1], "eps": self.eps, "weight_decay": self.weight_decay,
                "amsgrad": self.amsgrad}

    def _per_parameter(self) -> dict[str, list[Optional[np.ndarray]]]:
        return {"exp_avg": list(self.exp_avg), "exp_avg_sq": list(self.exp_avg_sq),
                "max_exp_avg_sq": list(self.max_exp_avg_sq) or [None] * len(self.params)}

    def _layout(self, hyper: Hyper) -> dict[str, bool]:
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if hyper["amsgrad"] else [])
        return {name: True for name in names}

    def _set_per_parameter(self, name: str, arrays: list[Optional[np.ndarray]]) -> None:
        present = [a for a in arrays if a is not None]
        setattr(self, name, present)

    def step(self) -> None:
        """Update every parameter once."""
        self.steps += 1
        beta1, beta2 = self.betas
        step_size = self.lr / (1 - beta1**self.steps)
        bias_correction2_sqrt = math.sqrt(1 - beta2**self.steps)
        for i in range(len(self.params)):
            data, grad = self._values(i)
            if self.weight_decay and self.decoupled_weight_decay:
                data *= 1 - self.lr * self.weight_decay
            elif self.weight_decay:
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


@parameters_from(Adam)
class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW``: the weights shrink
    by ``lr * weight_decay`` before the Adam update instead of the decay entering the
    gradient (and so the moment estimates); ``weight_decay`` defaults to PyTorch's
    0.01 (parameters as :class:`Adam`).

    For each parameter at step ``t``::

        p = p * (1 - lr * weight_decay)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> p = nn.Parameter(np.array([1.0]))
    >>> optimizer = nn.AdamW([p], lr=0.1, weight_decay=0.5)
    >>> optimizer.step()   # zero gradient: only the decay acts
    >>> p.data
    array([0.95])
    """

    decoupled_weight_decay = True

    def __init__(self, params: Union[Module, Iterable[Parameter]], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# ------------------------------------------------------------------ schedules


class LRScheduler:
    """Base of the learning-rate schedules: each sets ``optimizer.lr`` to a closed
    form of the epoch count ``last_epoch`` and the optimiser's learning rate at
    construction (``base_lr``), as ``torch.optim.lr_scheduler``.

    Construction counts as epoch 0 (the optimiser's lr becomes the schedule's
    value at 0); call :meth:`step` after each epoch's ``optimizer.step()``.
    """

    # name -> "f" (float) or "i" (int) of the schedule's arguments in the state dict
    _hyper_kinds: ClassVar[dict[str, str]] = {}

    def __init__(self, optimizer: Optimizer, hyper: dict[str, Union[float, int]]) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be a ferroconv.nn Optimizer, "
                            f"got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self._set_hyperparameters(self._validated(hyper, type(self).__name__))
        self.base_lr = optimizer.lr
        self.last_epoch = -1
        self._last_lr = optimizer.lr
        self.step()

    def _validated(self, hyper: dict[str, Union[float, int]], owner: str) -> dict[str, Union[float, int]]:
        return dict(hyper)

    def _set_hyperparameters(self, hyper: dict[str, Union[float, int]]) -> None:
        for name, value in hyper.items():
            setattr(self, name, value)

    def hyperparameters(self) -> dict[str, Union[float, int]]:
        """The schedule's arguments (saved in the state dict)."""
        return {name: getattr(self, name) for name in self._hyper_kinds}

    def lr_at(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (the closed form)."""
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and set the optimiser's learning rate."""
        self.last_epoch += 1
        self._last_lr = self.lr_at(self.last_epoch)
        self.optimizer.lr = self._last_lr

    def get_last_lr(self) -> list[float]:
        """The learning rate set by the last :meth:`step` (one entry: the optimiser
        has one parameter group)."""
        return [self._last_lr]

    def state_dict(self) -> dict[str, np.ndarray]:
        """A flat dict of 0-d arrays: ``last_epoch``, ``base_lr``, ``last_lr`` and the
        schedule's arguments."""
        return _scalars({"last_epoch": int(self.last_epoch), "base_lr": float(self.base_lr),
                         "last_lr": float(self._last_lr), **self.hyperparameters()})

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore a :meth:`state_dict` (the optimiser's lr comes with the
        optimiser's own state dict, as in PyTorch).

        Raises
        ------
        ValueError
            For missing or unexpected keys or invalid values, naming the key; nothing
            is changed.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        _check_keys(state, ["last_epoch", "base_lr", "last_lr", *self._hyper_kinds], [], owner)
        last_epoch = _scalar(state, "last_epoch", owner, "i")
        base_lr, last_lr = _scalar(state, "base_lr", owner, "f"), _scalar(state, "last_lr", owner, "f")
        if last_epoch < 0 or not base_lr >= 0 or not last_lr >= 0:
            raise ValueError(f"{owner}: last_epoch, base_lr and last_lr must be >= 0, "
                             f"got {last_epoch!r}, {base_lr!r}, {last_lr!r}")
        hyper = self._validated({k: _scalar(state, k, owner, kind) for k, kind in self._hyper_kinds.items()},
                                owner)
        self._set_hyperparameters(hyper)
        self.last_epoch, self.base_lr, self._last_lr = int(last_epoch), float(base_lr), float(last_lr)

    def __repr__(self) -> str:
        arguments = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}({arguments}, last_epoch={self.last_epoch})"


def _positive_int(value: object, name: str, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
    return int(value)


class StepLR(LRScheduler):
    """Decay the learning rate by ``gamma`` every ``step_size`` epochs, as
    ``torch.optim.lr_scheduler.StepLR``: ``lr = base_lr * gamma ** (epoch // step_size)``.

    Parameters
    ----------
    optimizer : Optimizer
    step_size : int
    gamma : float

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> optimizer = nn.SGD([nn.Parameter(np.zeros(1))], lr=1.0)
    >>> schedule = nn.StepLR(optimizer, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for epoch in range(5):
    ...     lrs.append(schedule.get_last_lr()[0])
    ...     optimizer.step()
    ...     schedule.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    _hyper_kinds = {"step_size": "i", "gamma": "f"}
    step_size: int
    gamma: float

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer, {"step_size": step_size, "gamma": gamma})

    def _validated(self, hyper: dict[str, Union[float, int]], owner: str) -> dict[str, Union[float, int]]:
        gamma = hyper["gamma"]
        if not (isinstance(gamma, (int, float, np.floating, np.integer)) and math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"{owner}: gamma must be a finite number >= 0, got {gamma!r}")
        return {"step_size": _positive_int(hyper["step_size"], "step_size", owner), "gamma": float(gamma)}

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """Cosine annealing from the base learning rate to ``eta_min`` over ``T_max``
    epochs, as ``torch.optim.lr_scheduler.CosineAnnealingLR`` (its closed form):
    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``
    (after ``T_max`` the cosine continues: the rate climbs back up, as in PyTorch).

    Parameters
    ----------
    optimizer : Optimizer
    T_max : int
        Epochs of the half period.
    eta_min : float
        The smallest learning rate.
    """

    _hyper_kinds = {"T_max": "i", "eta_min": "f"}
    T_max: int
    eta_min: float

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer, {"T_max": T_max, "eta_min": eta_min})

    def _validated(self, hyper: dict[str, Union[float, int]], owner: str) -> dict[str, Union[float, int]]:
        eta_min = hyper["eta_min"]
        if not (isinstance(eta_min, (int, float, np.floating, np.integer)) and eta_min >= 0):
            raise ValueError(f"{owner}: eta_min must be >= 0, got {eta_min!r}")
        return {"T_max": _positive_int(hyper["T_max"], "T_max", owner), "eta_min": float(eta_min)}

    def lr_at(self, epoch: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LinearLR(LRScheduler):
    """Scale the base learning rate by a factor that moves linearly from
    ``start_factor`` to ``end_factor`` over ``total_iters`` epochs (a warm-up with
    the defaults), as ``torch.optim.lr_scheduler.LinearLR``:
    ``lr = base_lr * (start + (end - start) * min(epoch, total_iters) / total_iters)``.

    Parameters
    ----------
    optimizer : Optimizer
    start_factor : float in (0, 1]
    end_factor : float in [0, 1]
    total_iters : int
    """

    _hyper_kinds = {"start_factor": "f", "end_factor": "f", "total_iters": "i"}
    start_factor: float
    end_factor: float
    total_iters: int

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5) -> None:
        super().__init__(optimizer, {"start_factor": start_factor, "end_factor": end_factor,
                                     "total_iters": total_iters})

    def _validated(self, hyper: dict[str, Union[float, int]], owner: str) -> dict[str, Union[float, int]]:
        start, end = hyper["start_factor"], hyper["end_factor"]
        if not 0 < start <= 1:
            raise ValueError(f"{owner}: start_factor must be in (0, 1], got {start!r}")
        if not 0 <= end <= 1:
            raise ValueError(f"{owner}: end_factor must be in [0, 1], got {end!r}")
        return {"start_factor": float(start), "end_factor": float(end),
                "total_iters": _positive_int(hyper["total_iters"], "total_iters", owner)}

    def lr_at(self, epoch: int) -> float:
        progress = min(epoch, self.total_iters) / self.total_iters
        return self.base_lr * (self.start_factor + (self.end_factor - self.start_factor) * progress)
