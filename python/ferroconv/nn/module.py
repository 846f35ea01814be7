"""The building blocks every layer shares: :class:`Parameter`, :class:`Module`
(parameter registry, train/eval, state dicts, ``.npz`` files) and
:class:`Sequential`."""

from __future__ import annotations

import os
import threading
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

# ------------------------------------------------------------------ the tape
#
# A module that writes ``forward`` from other layers and does not override
# ``backward`` is *composed*: while its forward runs, every layer call is recorded
# on a tape (the layer, the arrays it got, the arrays it returned), and
# ``backward`` replays the tape in reverse, summing the gradients of arrays used
# more than once. Arrays are told apart by identity; the tape keeps a reference
# to each so identities stay unique while it lives. Layers that implement their
# own backward (every built-in layer, Sequential) run their forward with
# recording suspended, so their internal calls are theirs alone.

_state = threading.local()


def _current_tape() -> Optional[_Tape]:
    stack: Optional[list[Optional[_Tape]]] = getattr(_state, "stack", None)
    return stack[-1] if stack else None


class _Recording:
    """Make ``tape`` (or None: recording suspended) current for a ``with`` block."""

    def __init__(self, tape: Optional[_Tape]) -> None:
        self.tape = tape

    def __enter__(self) -> None:
        if not hasattr(_state, "stack"):
            _state.stack = []
        _state.stack.append(self.tape)

    def __exit__(self, *exc: Any) -> None:
        _state.stack.pop()


def _is_float_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and (value.dtype.kind == "f" or is_half(value.dtype))


def _describe(value: Any) -> str:
    return f"array of shape {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__


class _Node:
    __slots__ = ("module", "inputs", "outputs")

    def __init__(self, module: Module, inputs: tuple[Any, ...], outputs: tuple[Any, ...]) -> None:
        self.module = module
        self.inputs = inputs
        self.outputs = outputs


class _Tape:
    """The layer calls of one forward of a composed module."""

    def __init__(self, owner: Module, inputs: tuple[Any, ...]) -> None:
        self.owner = owner
        self.inputs = inputs
        self.nodes: list[_Node] = []
        self.known: dict[int, Any] = {id(value): value for value in inputs}
        self.called: set[int] = set()
        self.output: Any = None

    def check_inputs(self, module: Module, inputs: tuple[Any, ...]) -> None:
        owner = type(self.owner).__name__
        if id(module) in self.called:
            raise ValueError(
                f"{owner}.forward calls {module!r} twice; a layer keeps what its backward needs "
                "from one call only, so use a separate layer for each call"
            )
        for position, value in enumerate(inputs):
            if _is_float_array(value) and id(value) not in self.known:
                raise ValueError(
                    f"{owner}.forward: input {position} of {module!r} ({_describe(value)}) was computed "
                    "outside the recorded layers, so its gradient would be lost. NumPy and "
                    "ferroconv.functional operations between layers are not recorded: use a layer "
                    "(nn.ReLU(), nn.Flatten(), ...), nn.add or nn.cat instead"
                )

    def record(self, module: Module, inputs: tuple[Any, ...], output: Any) -> Any:
        self.called.add(id(module))
        outputs = output if isinstance(output, tuple) else (output,)
        # A layer that returns an input object (Identity, Dropout in eval mode)
        # gets a view, so the tape can tell the two arrays apart.
        fresh = tuple(
            value.view() if isinstance(value, np.ndarray) and id(value) in self.known else value
            for value in outputs
        )
        for value in fresh:
            self.known[id(value)] = value
        self.nodes.append(_Node(module, inputs, fresh))
        return fresh if isinstance(output, tuple) else fresh[0]

    def finish(self, output: Any) -> None:
        if not isinstance(output, np.ndarray) or id(output) not in self.known:
            raise ValueError(
                f"{type(self.owner).__name__}.forward returned {_describe(output)} that no recorded "
                "layer produced (composed modules return the output of a layer, nn.add or nn.cat; "
                "a module with another kind of output must implement backward itself)"
            )
        self.output = output

    def backward(self, grad_out: Any) -> Any:
        owner = self.owner
        output = self.output
        grads: dict[int, np.ndarray] = {id(output): owner._grad_out(grad_out, output.shape, output.dtype)}
        for node in reversed(self.nodes):
            outs = [grads.pop(id(value), None) for value in node.outputs]
            if all(grad is None for grad in outs):
                continue  # the output did not reach the loss
            floats = [(value, grad) for value, grad in zip(node.outputs, outs) if _is_float_array(value)]
            result = node.module.backward(*[
                np.zeros_like(value) if grad is None else grad for value, grad in floats])
            in_grads = result if isinstance(result, tuple) else (result,)
            for value, grad in zip(node.inputs, in_grads):
                if grad is None or not _is_float_array(value):
                    continue
                key = id(value)
                # out of place: a layer may return (or keep) the array it was given
                grads[key] = grad if key not in grads else grads[key] + grad
        in_grads = tuple(
            grads.get(id(value), np.zeros_like(value)) if _is_float_array(value) else None
            for value in self.inputs
        )
        return in_grads[0] if len(in_grads) == 1 else in_grads


_COMPOSED: dict[type, bool] = {}


def _composed(cls: type) -> bool:
    """Whether ``cls`` leaves ``backward`` to the tape."""
    composed = _COMPOSED.get(cls)
    if composed is None:
        composed = _COMPOSED[cls] = getattr(cls, "backward") is Module.backward
    return composed



class Module:
    """Base class of every layer.

    A subclass assigns its :class:`Parameter` objects, child modules and buffers
    (:meth:`register_buffer`) as attributes in ``__init__``; they are registered in
    assignment order, which fixes the order of :meth:`parameters` and the keys of
    :meth:`state_dict` (PyTorch's names: ``"0.weight"``, ``"1.running_mean"``).
    ``forward(x)`` caches what ``backward(grad_out)`` needs; ``backward`` adds the
    parameter gradients into ``Parameter.grad`` and returns the gradient with
    respect to the input.

    A subclass whose ``forward`` calls other layers (and :func:`add` / :func:`cat`
    to join branches) need not write ``backward``: the calls are recorded while
    ``forward`` runs and ``backward`` replays them in reverse, adding up the
    gradients of arrays used twice. Each layer may be called once per forward;
    NumPy arithmetic between layers is refused (its gradient would be lost).

    Examples
    --------
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> class Block(nn.Module):
    ...     def __init__(self, channels):
    ...         super().__init__()
    ...         self.conv = nn.Conv2d(channels, channels, 3, padding=1, rng=0)
    ...         self.relu = nn.ReLU()
    ...     def forward(self, x):
    ...         return self.relu(nn.add(self.conv(x), x))
    >>> block = Block(4)
    >>> x = np.ones((2, 4, 5, 5), np.float32)
    >>> block(x).shape, block.backward(np.ones((2, 4, 5, 5), np.float32)).shape
    ((2, 4, 5, 5), (2, 4, 5, 5))
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

    def backward(self, grad_out: Any) -> Any:
        """Given the loss gradient with respect to the last forward's output, add the
        parameter gradients into ``Parameter.grad`` and return the gradient with
        respect to that forward's input (a tuple, one per input, for several).

        Modules that do not override it replay the layer calls their last
        ``forward`` recorded (see the class docstring).

        Raises
        ------
        ValueError
            Before any forward, or when ``grad_out`` does not have the output's shape.
        """
        tape: Optional[_Tape] = self.__dict__.get("_tape")
        if tape is None:
            raise ValueError(f"{self!r}: backward called before forward")
        return tape.backward(grad_out)

    def __call__(self, *inputs: Any, **options: Any) -> Any:
        """Run :meth:`forward` (layers with several inputs, e.g. ``MaxUnpool2d``'s
        ``(x, indices)``, take them positionally; options such as its ``output_size=``
        by name), recording the call when an
        enclosing composed module's forward is running."""
        outer = _current_tape()
        if outer is not None:
            outer.check_inputs(self, inputs)
        watcher = getattr(_state, "watcher", None)
        token = None if watcher is None else watcher.enter(self, inputs)
        if _composed(type(self)):
            tape = _Tape(self, inputs)
            with _Recording(tape):
                output = self.forward(*inputs, **options)
            tape.finish(output)
            object.__setattr__(self, "_tape", tape)
        else:
            with _Recording(None):
                output = self.forward(*inputs, **options)
        if outer is not None:
            output = outer.record(self, inputs, output)
        if watcher is not None:
            watcher.exit(token, output)
        return output

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
        """Copy arrays from ``state`` (a mapping, e.g. :meth:`state_dict`, an open
        ``.npz``, or a PyTorch ``state_dict`` read from a file: the keys are
        PyTorch's) into this module's parameters and buffers, in place, converting
        to each parameter's dtype.

        Raises
        ------
        ValueError
            Naming every problem at once: with ``strict``, missing and unexpected
            keys; always, entries whose shape differs. Nothing is modified unless
            every entry fits.
        """
        targets = {key: (owner, name, is_param) for key, owner, name, is_param in self._named_state()}
        given = set(state.keys())
        missing = [key for key in targets if key not in given]
        unexpected = sorted(given - set(targets))
        problems = []
        if strict and missing:
            problems.append(f"missing keys {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys {unexpected}")
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
                problems.append(f"{key} ({type(owner).__name__}) has shape {current.shape} "
                                f"but the state has shape {value.shape}")
            elif value.dtype.kind not in "fiub" and not is_half(value.dtype):
                problems.append(f"{key} has dtype {value.dtype}, not a number")
            updates.append((current, value))
        if problems:
            raise ValueError(f"{type(self).__name__}.load_state_dict: " + "; ".join(problems))
        for current, value in updates:
            current[...] = value

    def save(self, path: PathLike, *, format: Optional[str] = None) -> None:
        """Write :meth:`state_dict` atomically (a crash mid-write keeps the old file)
        as an uncompressed ``.npz``, or as safetensors when the name ends in
        ``.safetensors`` (or ``format="safetensors"``). The file holds arrays only: reading it runs no code."""
        from .serialization import write_arrays

        write_arrays(path, self.state_dict(), format=format)

    def load(self, path: PathLike, strict: bool = True) -> None:
        """Read a ``.npz`` or safetensors file (told by its first bytes) — e.g. one
        written by :meth:`save`, or a PyTorch model's weights written with
        ``safetensors.torch.save_file(model.state_dict(), path)`` into the
        equivalent ferroconv model — through :meth:`load_state_dict`.

        Raises
        ------
        ValueError
            When the file is truncated or corrupted, or its arrays do not fit;
            the module is unchanged.
        """
        from .serialization import read_arrays

        arrays, _ = read_arrays(path)
        self.load_state_dict(arrays, strict=strict)

    def summary(self, input_shape: Any, *, dtype: Optional[DTypeLike] = None, file: Any = None,
                show: bool = True) -> Any:
        """Print, per layer call of one forward pass, the output shape, parameters,
        multiply-adds, activation memory and receptive field (size and jump, in
        input cells) at that depth, and the totals; return them as a
        :class:`~ferroconv.nn.summary.Summary` (``.layers``, ``.rows()``).

        The pass runs on zeros in eval mode (running statistics are not touched,
        training flags are restored) and replaces the layers' cached forward.

        Parameters
        ----------
        input_shape : tuple of int
            The full input shape, batch first, e.g. ``(1, 3, 32, 32)``; memory and
            multiply-adds are for that batch.
        dtype : dtype, optional
            The input's dtype; by default the first parameter's (else float32).
        file : text stream, optional
            Where to print (standard output by default).
        show : bool
            Print the table (False: only return it).

        Examples
        --------
        >>> from ferroconv import nn
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(2),
        ...                     nn.Conv2d(8, 8, 3, rng=0))
        >>> info = net.summary((1, 3, 16, 16), show=False)
        >>> [(row.name, row.output_shape, row.receptive_field, row.jump) for row in info.layers]  # doctest: +NORMALIZE_WHITESPACE
        [('0', (1, 8, 16, 16), (3.0, 3.0), (1.0, 1.0)), ('1', (1, 8, 16, 16), (3.0, 3.0), (1.0, 1.0)),
         ('2', (1, 8, 8, 8), (4.0, 4.0), (2.0, 2.0)), ('3', (1, 8, 6, 6), (8.0, 8.0), (2.0, 2.0))]
        >>> info.total_params, info.layers[0].macs
        (808, 55296)
        """
        from .summary import summarize

        return summarize(self, input_shape, dtype=dtype, file=file, show=show)

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

