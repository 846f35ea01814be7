"""The one way an error gets the name of what the user called.

Everything below the public functions (argument normalisation, the native
module, the core) raises plain messages that name the argument; the public
function, layer or dask operation the user called adds its own name in front,
once: ``conv2d: weight has 3 input channels per group but x has 4 channels``.
:func:`public` does it for a function (its ``__name__``), :class:`named` for a
block of code (``with named(repr(layer)): ...``).
"""

from __future__ import annotations

import functools
import inspect
import typing
from types import TracebackType
from typing import Any, Callable, Optional, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

# The exception types whose messages the user reads to fix a call.
NAMED_ERRORS = (ValueError, TypeError, MemoryError)


def _named(exc: BaseException, name: str) -> bool:
    """Whether the message of ``exc`` already starts with ``name: `` (an inner
    call of the same name)."""
    return str(exc).startswith(f"{name}: ")


def _with_name(exc: BaseException, name: str) -> BaseException:
    """A new exception of ``exc``'s type whose message starts with ``name: ``."""
    message = f"{name}: {exc}"
    try:
        return type(exc)(message)
    except Exception:  # an exception type with another constructor
        base = next(kind for kind in NAMED_ERRORS if isinstance(exc, kind))
        return base(message)


# The new exception is raised straight from the ``except`` clause and never kept
# in a local variable: a local would tie the exception, its traceback and this
# frame into a cycle that keeps the caller's arrays alive until the garbage
# collector runs.


class named:
    """Context manager: a ValueError, TypeError or MemoryError raised inside gets
    ``name: `` in front of its message (once)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> named:
        return self

    def __exit__(self, kind: Optional[type[BaseException]], exc: Optional[BaseException],
                 traceback: Optional[TracebackType]) -> None:
        if exc is None or not isinstance(exc, NAMED_ERRORS) or _named(exc, self.name):
            return  # nothing raised, or raised as it is
        raise _with_name(exc, self.name) from None


def public(func: F) -> F:
    """Decorator of a public function: its errors are named after it."""
    name = func.__name__

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except NAMED_ERRORS as exc:
            if _named(exc, name):
                raise
            raise _with_name(exc, name) from None

    call.__signature__ = resolved_signature(func)  # type: ignore[attr-defined]
    return cast(F, call)


def resolved_signature(func: Callable[..., Any]) -> inspect.Signature:
    """``func``'s signature with its annotations evaluated, so ``help()`` and
    ``inspect.signature`` show the types (``Union[int, Sequence[int]]``), not the
    names of aliases kept as strings by ``from __future__ import annotations``.
    Annotations that cannot be evaluated stay as they are."""
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # e.g. a name only imported for type checking
        return signature
    parameters = [p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()]
    return signature.replace(parameters=parameters,
                             return_annotation=hints.get("return", signature.return_annotation))
