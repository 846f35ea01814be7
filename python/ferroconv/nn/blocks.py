"""Blocks that route gradients through branches: :class:`Identity`, :class:`Add`,
:class:`Concat`, :class:`Residual`, and the joins :func:`add` / :func:`cat` for
the ``forward`` of composed modules (see :class:`~ferroconv.nn.Module`)."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .module import Module, _current_tape


def _axis(axis: Any, owner: str) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{owner}: axis must be an int, got {type(axis).__name__}")
    return int(axis)


def _branches(branches: tuple[Any, ...], owner: str, names: Optional[tuple[str, ...]] = None) -> None:
    for position, branch in enumerate(branches):
        if not isinstance(branch, Module):
            name = f"branch {position}" if names is None else names[position]
            raise TypeError(f"{owner}: {name} must be a Module, got {type(branch).__name__}")


class _Join(Module):
    """A join of several arrays: either its inputs (``join(a, b, ...)``) or the
    outputs of its branches applied to one input (``Join(f, g)(x)``)."""

    def __init__(self, *branches: Module) -> None:
        super().__init__()
        _branches(branches, type(self).__name__)
        for position, branch in enumerate(branches):
            setattr(self, str(position), branch)
        self._cache: Optional[tuple[Any, ...]] = None

    def _combine(self, arrays: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def _split(self, grad: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def _inputs(self, inputs: tuple[Any, ...]) -> list[np.ndarray]:
        owner = repr(self)
        if self._modules:
            if len(inputs) != 1:
                raise TypeError(f"{owner}: a join of branches takes one input, got {len(inputs)}")
            arrays = [branch(inputs[0]) for branch in self._modules.values()]
        else:
            if not inputs:
                raise TypeError(f"{owner}: needs at least one input array")
            arrays = list(inputs)
        checked = [self._float_input(value) for value in arrays]
        for position, array in enumerate(checked[1:], 1):
            if array.dtype != checked[0].dtype:
                raise TypeError(f"{owner}: input {position} has dtype {array.dtype} but input 0 has {checked[0].dtype}")
        return checked

    def forward(self, *inputs: Any) -> np.ndarray:
        arrays = self._inputs(inputs)
        out = self._combine(arrays)
        self._cache = (tuple(a.shape for a in arrays), len(inputs), out.shape, out.dtype)
        return out

    def backward(self, grad_out: Any) -> Any:
        shapes, count, out_shape, dtype = self._cached(self._cache)
        grads = self._split(self._grad_out(grad_out, out_shape, dtype))
        if not self._modules:
            return grads[0] if count == 1 else tuple(grads)
        total: Optional[np.ndarray] = None
        for branch, grad in zip(self._modules.values(), grads):
            part = branch.backward(grad)
            total = part if total is None else total + part
        return total

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)


class Add(_Join):
    """The sum of arrays of one shape: ``Add()(a, b, ...)`` adds its inputs and
    ``Add(f, g, ...)(x)`` adds ``f(x) + g(x) + ...``; the gradient reaches every
    summand unchanged.

    Parameters
    ----------
    *branches : Module
        Layers applied to the one input; none to add the inputs themselves.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> a, b = np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32)
    >>> nn.Add()(a, b)[0]
    array([3., 3., 3.], dtype=float32)
    >>> both = nn.Add(nn.Identity(), nn.ReLU())
    >>> both(np.array([[-1.0, 2.0]])).tolist()
    [[-1.0, 4.0]]
    """

    def _combine(self, arrays: list[np.ndarray]) -> np.ndarray:
        first = arrays[0]
        for position, array in enumerate(arrays[1:], 1):
            if array.shape != first.shape:
                raise ValueError(
                    f"{self!r}: input {position} has shape {array.shape} but input 0 has shape {first.shape}; "
                    "summands must have one shape"
                )
        out = np.array(first, copy=True)
        for array in arrays[1:]:
            out += array
        return out

    def _split(self, grad: np.ndarray) -> list[np.ndarray]:
        shapes = self._cached(self._cache)[0]
        return [grad] * len(shapes)


class Concat(_Join):
    """Concatenation along ``axis`` (channels by default): ``Concat()(a, b)`` joins
    its inputs and ``Concat(f, g)(x)`` joins ``f(x)`` and ``g(x)`` (Inception,
    DenseNet, U-Net skips); the gradient is split back along ``axis``.

    Parameters
    ----------
    *branches : Module
        Layers applied to the one input; none to join the inputs themselves.
    axis : int
        The axis to join along, counted like NumPy's (negative from the end).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> a, b = np.zeros((2, 3, 4, 4), np.float32), np.ones((2, 5, 4, 4), np.float32)
    >>> nn.Concat()(a, b).shape
    (2, 8, 4, 4)
    """

    def __init__(self, *branches: Module, axis: int = 1) -> None:
        super().__init__(*branches)
        self.axis = _axis(axis, type(self).__name__)

    def _combine(self, arrays: list[np.ndarray]) -> np.ndarray:
        ndim = arrays[0].ndim
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"{self!r}: axis {self.axis} is out of range for inputs of {ndim} axes")
        axis = self.axis % ndim
        for position, array in enumerate(arrays[1:], 1):
            first = arrays[0].shape
            if array.ndim != ndim or array.shape[:axis] + array.shape[axis + 1:] != first[:axis] + first[axis + 1:]:
                raise ValueError(
                    f"{self!r}: input {position} has shape {array.shape} but input 0 has shape {first}; "
                    f"they may differ on axis {self.axis} only"
                )
        return np.concatenate(arrays, axis=axis)

    def _split(self, grad: np.ndarray) -> list[np.ndarray]:
        shapes = self._cached(self._cache)[0]
        axis = self.axis % grad.ndim
        bounds = np.cumsum([shape[axis] for shape in shapes])[:-1]
        return [np.ascontiguousarray(part) for part in np.split(grad, bounds, axis=axis)]

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


class Identity(Module):
    """Returns its input; its gradient is the incoming gradient (a placeholder, and
    the shortcut of a residual block whose shapes already match).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> nn.Identity()(np.arange(3.0))
    array([0., 1., 2.])
    """

    def __init__(self) -> None:
        super().__init__()
        self._cache: Optional[tuple[Any, ...]] = None

    def forward(self, x: Any) -> Any:
        self._cache = (np.shape(x), getattr(x, "dtype", None))
        return x

    def backward(self, grad_out: Any) -> Any:
        shape, dtype = self._cached(self._cache)
        return self._grad_out(grad_out, shape, dtype)


class Residual(Module):
    """``y = body(x) + shortcut(x)``: a residual block (ResNet), with the identity
    as the default shortcut; the gradient flows through both paths and is summed.

    Parameters
    ----------
    body : Module
        The residual branch, e.g. conv-BN-ReLU-conv-BN in a ``Sequential``.
    shortcut : Module or None
        The projection of the skip path (e.g. a strided 1x1 ``Conv2d`` with
        ``BatchNorm2d`` when the body changes the shape); None for the identity.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> block = nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, rng=0), nn.ReLU()))
    >>> x = np.ones((1, 4, 6, 6), np.float32)
    >>> block(x).shape, block.backward(np.ones_like(x)).shape
    ((1, 4, 6, 6), (1, 4, 6, 6))
    """

    def __init__(self, body: Module, shortcut: Optional[Module] = None) -> None:
        super().__init__()
        _branches((body,) if shortcut is None else (body, shortcut), "Residual", ("body", "shortcut"))
        self.body = body
        self.shortcut = shortcut
        self._cache: Optional[tuple[Any, ...]] = None

    def forward(self, x: Any) -> np.ndarray:
        x = self._float_input(x)
        out = self.body(x)
        skip = x if self.shortcut is None else self.shortcut(x)
        if np.shape(out) != np.shape(skip):
            raise ValueError(
                f"Residual: the body returned shape {np.shape(out)} but the "
                f"{'input' if self.shortcut is None else 'shortcut'} has shape {np.shape(skip)}; "
                "give a shortcut that matches (e.g. a 1x1 convolution with the body's stride)"
            )
        result: np.ndarray = np.add(out, skip)
        self._cache = (result.shape, result.dtype)
        return result

    def backward(self, grad_out: Any) -> np.ndarray:
        shape, dtype = self._cached(self._cache)
        grad = self._grad_out(grad_out, shape, dtype)
        body = self.body.backward(grad)
        skip = grad if self.shortcut is None else self.shortcut.backward(grad)
        result: np.ndarray = body + skip
        return result


def _join(layer: _Join, arrays: tuple[Any, ...]) -> np.ndarray:
    # Under a composed module's forward the join is a fresh layer recorded on the
    # tape (so it may be used any number of times); elsewhere it only computes.
    return layer(*arrays) if _current_tape() is not None else layer.forward(*arrays)


def add(*arrays: Any) -> np.ndarray:
    """The sum of arrays of one shape, recorded (with its gradient) inside the
    ``forward`` of a composed module.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> nn.add(np.ones(2), np.ones(2))
    array([2., 2.])
    """
    return _join(Add(), arrays)


def cat(arrays: Any, axis: int = 1) -> np.ndarray:
    """Arrays concatenated along ``axis`` (channels by default), recorded (with its
    gradient) inside the ``forward`` of a composed module.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> nn.cat([np.zeros((1, 2, 3)), np.ones((1, 1, 3))]).shape
    (1, 3, 3)
    """
    if isinstance(arrays, np.ndarray) or not hasattr(arrays, "__iter__"):
        raise TypeError(f"cat: arrays must be a sequence of arrays, got {type(arrays).__name__}")
    return _join(Concat(axis=axis), tuple(arrays))
