"""The building blocks every layer shares: :class:`Parameter`, :class:`Module`
(parameter registry, train/eval, state dicts, ``.npz`` files) and
:class:`Sequential`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any, Optional, Union

import numpy as np

from .._errors import resolved_signature

DTypeLike = Union[str, type, np.dtype]
RngLike = Union[None, int, np.random.Generator]
PathLike = Union[str, "os.PathLike[str]"]


FLOAT_NAMES = "float32, float64, float16 or bfloat16"


def is_half(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is a 16-bit float (float16, or ml_dtypes' bfloat16)."""
    return dtype.itemsize == 2 and (dtype.kind == "f" or dtype.name == "bfloat16")


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a layer computes in for inputs of ``dtype``: float32 for the
    16-bit types (mixed precision: 16-bit storage, float32 arithmetic), else
    ``dtype`` itself."""
    return np.dtype(np.float32) if is_half(dtype) else dtype


def _resolve(dtype: DTypeLike) -> np.dtype:
    try:
        return np.dtype(dtype)
    except TypeError:
        if dtype != "bfloat16":
            raise
    # NumPy knows the name "bfloat16" only once ml_dtypes has registered it.
    try:
        import ml_dtypes
    except ImportError:
        raise TypeError("dtype bfloat16 needs the ml_dtypes package (pip install ml_dtypes)") from None
    resolved: np.dtype = np.dtype(ml_dtypes.bfloat16)
    return resolved


def float_dtype(dtype: DTypeLike, owner: str) -> np.dtype:
    """``dtype`` as a float32, float64, float16 or bfloat16 ``np.dtype`` (TypeError
    otherwise)."""
    try:
        resolved = _resolve(dtype)
    except TypeError as exc:
        if "ml_dtypes" in str(exc):
            raise TypeError(f"{owner}: {exc}") from None
        raise TypeError(f"{owner}: dtype must be {FLOAT_NAMES}, got {dtype!r}") from None
    if resolved not in (np.dtype(np.float32), np.dtype(np.float64)) and not is_half(resolved):
        raise TypeError(f"{owner}: dtype must be {FLOAT_NAMES}, got {resolved}")
    return resolved


def generator(rng: RngLike) -> np.random.Generator:
    """A NumPy Generator from ``None`` (fresh entropy), a seed, or a Generator."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def kaiming_uniform(shape: tuple[int, ...], fan_in: int, rng: np.random.Generator,
                    dtype: np.dtype) -> np.ndarray:
    """PyTorch's default init: ``kaiming_uniform_(a=sqrt(5))`` is ``U(-b, b)`` with
    ``b = 1 / sqrt(fan_in)``; PyTorch draws biases from the same bound."""
    bound = 1.0 / np.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


class Parameter:
    """A trainable array and the gradient accumulated into it.

    Attributes
    ----------
    data : ndarray
        The values, updated in place by optimisers.
    grad : ndarray
        Same shape and dtype as ``data``; every ``backward`` adds to it and
        ``zero_grad`` resets it.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data: np.ndarray) -> None:
        self.data = np.ascontiguousarray(data)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def zero_grad(self) -> None:
        self.grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class of every layer.

    A subclass assigns its :class:`Parameter` objects, child modules and buffers
    (:meth:`register_buffer`) as attributes in ``__init__``; they are registered in
    assignment order, which fixes the order of :meth:`parameters` and the keys of
    :meth:`state_dict` (PyTorch's names: ``"0.weight"``, ``"1.running_mean"``).
    ``forward(x)`` caches what ``backward(grad_out)`` needs; ``backward`` adds the
    parameter gradients into ``Parameter.grad`` and returns the gradient with
    respect to the input.
    """

    training: bool
    _parameters: dict[str, Parameter]
    _buffers: dict[str, np.ndarray]
    _modules: dict[str, Module]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is not None:
            # help() and inspect show the argument types, not alias names kept as strings
            init.__signature__ = resolved_signature(init)

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        elif name in self._buffers:
            self._buffers[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """Register a non-trainable array saved in :meth:`state_dict` (e.g. running stats)."""
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------- computing

    def forward(self, x: np.ndarray) -> np.ndarray:
        """The layer's output for ``x``; caches what :meth:`backward` needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Given the loss gradient with respect to the last forward's output, add the
        parameter gradients into ``Parameter.grad`` and return the gradient with
        respect to that forward's input.

        Raises
        ------
        ValueError
            Before any forward, or when ``grad_out`` does not have the output's shape.
        """
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *inputs: Any, **options: Any) -> Any:
        """Same as :meth:`forward` (layers with several inputs, e.g. ``MaxUnpool2d``'s
        ``(x, indices)``, take them positionally; options such as its
        ``output_size=`` by name)."""
        return self.forward(*inputs, **options)

    # ------------------------------------------------------------ parameters

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs, this module's first, then its children's."""
        for name, param in self._parameters.items():
            yield prefix + name, param
        for child_name, child in self._modules.items():
            yield from child.named_parameters(f"{prefix}{child_name}.")

    def parameters(self) -> list[Parameter]:
        """Every trainable :class:`Parameter`, in a fixed order."""
        return [param for _, param in self.named_parameters()]

    def grads(self) -> list[np.ndarray]:
        """The ``.grad`` arrays of :meth:`parameters`, in the same order."""
        return [param.grad for param in self.parameters()]

    def zero_grad(self) -> None:
        """Reset every parameter gradient to zero."""
        for param in self.parameters():
            param.zero_grad()

    def modules(self) -> Iterator[Module]:
        """This module and all its descendants, depth first."""
        yield self
        for child in self._modules.values():
            yield from child.modules()

    def train(self, mode: bool = True) -> Module:
        """Switch this module and its children to training mode (or eval with False)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        """Evaluation mode: BatchNorm uses running statistics, Dropout is the identity."""
        return self.train(False)

    # ----------------------------------------------------------- state dicts

    def _named_state(self, prefix: str = "") -> Iterator[tuple[str, Module, str, bool]]:
        """``(key, owner, attribute, is_parameter)`` for every saved array."""
        for name in self._parameters:
            yield prefix + name, self, name, True
        for name in self._buffers:
            yield prefix + name, self, name, False
        for child_name, child in self._modules.items():
            yield from child._named_state(f"{prefix}{child_name}.")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer, keyed like PyTorch's state dicts."""
        state = {}
        for key, owner, name, is_param in self._named_state():
            value = owner._parameters[name].data if is_param else owner._buffers[name]
            state[key] = np.array(value, copy=True)
        return state

    def load_state_dict(self, state: Any, strict: bool = True) -> None:
        """Copy arrays from ``state`` (a mapping, e.g. :meth:`state_dict` or an open
        ``.npz``) into this module's parameters and buffers, in place.

        Raises
        ------
        ValueError
            With ``strict``, when keys are missing or unexpected; always when a
            shape differs. Nothing is modified unless every entry fits.
        """
        targets = {key: (owner, name, is_param) for key, owner, name, is_param in self._named_state()}
        given = set(state.keys())
        missing = [key for key in targets if key not in given]
        unexpected = sorted(given - set(targets))
        if strict and (missing or unexpected):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: missing keys {missing}, unexpected keys {unexpected}"
            )
        updates = []
        for key, (owner, name, is_param) in targets.items():
            if key not in given:
                continue
            current = owner._parameters[name].data if is_param else owner._buffers[name]
            value = np.asarray(state[key])
            if value.dtype.kind == "V" and value.dtype.fields is None and value.dtype.itemsize == current.itemsize:
                # .npz files keep bfloat16 as raw 2-byte records (NumPy has no
                # bfloat16 of its own): the bits are the parameter's.
                value = value.view(current.dtype)
            if value.shape != current.shape:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: {key} ({type(owner).__name__}) has shape "
                    f"{current.shape} but the state has shape {value.shape}"
                )
            updates.append((current, value))
        for current, value in updates:
            current[...] = value

    def save(self, path: PathLike) -> None:
        """Write :meth:`state_dict` to an uncompressed ``.npz`` file."""
        state: dict[str, Any] = self.state_dict()
        np.savez(path, **state)

    def load(self, path: PathLike, strict: bool = True) -> None:
        """Read a file written by :meth:`save` (see :meth:`load_state_dict`)."""
        with np.load(path, allow_pickle=False) as archive:
            self.load_state_dict({key: archive[key] for key in archive.files}, strict=strict)

    # ---------------------------------------------------------------- helpers

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def _cached(self, cache: Optional[Any]) -> Any:
        if cache is None:
            raise ValueError(f"{self!r}: backward called before forward")
        return cache

    def _grad_out(self, grad_out: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """``grad_out`` as an array of the forward output's dtype, checked against its shape."""
        grad = np.asarray(grad_out, dtype=dtype)
        if grad.shape != tuple(shape):
            raise ValueError(
                f"{self!r}: grad_out has shape {grad.shape} but forward returned shape {tuple(shape)}"
            )
        return grad

    def _float_input(self, x: Any) -> np.ndarray:
        array = np.asarray(x)
        if array.dtype not in (np.dtype(np.float32), np.dtype(np.float64)) and not is_half(array.dtype):
            raise TypeError(f"{self!r}: input must be {FLOAT_NAMES}, got dtype {array.dtype}")
        return array


class Sequential(Module):
    """Layers applied in order; ``backward`` runs them in reverse.

    Children are named ``"0"``, ``"1"``, ... as in PyTorch.

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> net = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 2, rng=1))
    >>> net(np.ones((3, 4), np.float32)).shape
    (3, 2)
    """

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        for layer in layers:
            self.append(layer)

    def append(self, layer: Module) -> Sequential:
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential: layers must be Modules, got {type(layer).__name__}")
        setattr(self, str(len(self._modules)), layer)
        return self

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        for layer in reversed(list(self._modules.values())):
            grad_out = layer.backward(grad_out)
        return grad_out

    def __repr__(self) -> str:
        lines = [f"  ({name}): {layer!r}".replace("\n", "\n  ") for name, layer in self._modules.items()]
        return "Sequential(\n" + "\n".join(lines) + "\n)" if lines else "Sequential()"

