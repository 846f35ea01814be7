"""Argument normalisation shared by every public function.

One place turns user input (ints, tuples, array-likes of any layout and byte
order) into what the native module takes: native-endian float arrays with five
axes ``(N, C, D, H, W)`` and per-axis tuples of three ints. Value checks
(positivity, shapes, sizes) live in the Rust core; this module only checks
types and arities, which Rust cannot see.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

IntOrTuple = Union[int, Sequence[int]]

# Sizes beyond this cannot describe a real array; refusing them here keeps Python
# ints that do not fit a machine word away from the native module.
MAX_SIZE = 2**62


def type_name(value: object) -> str:
    """The type name of ``value`` as shown in messages."""
    return type(value).__name__


def as_int(value: object, name: str) -> int:
    """``value`` as a Python int (bools and floats are refused with a TypeError)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool {value!r}")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type_name(value)} {value!r}") from None


def int_tuple(value: object, rank: int, name: str, minimum: int) -> tuple[int, ...]:
    """An int or a length-``rank`` sequence of ints as a ``rank``-tuple, each >= minimum."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) and not isinstance(
        value, np.ndarray
    ):
        items = (as_int(value, name),) * rank
    else:
        seq = list(value)
        if len(seq) != rank:
            raise ValueError(
                f"{name} must be an int or a tuple of {rank} ints, got {tuple(seq)!r}"
            )
        items = tuple(as_int(v, name) for v in seq)
    if any(v < minimum for v in items):
        raise ValueError(f"{name} must be >= {minimum} in every dimension, got {items!r}")
    if any(v > MAX_SIZE for v in items):
        raise ValueError(f"{name} is too large: {items!r}")
    return items


def float_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float32/float64 ndarray in native byte order (no copy when it
    already is one; any strides are kept)."""
    if isinstance(value, np.ndarray):
        array = value
    else:
        try:
            array = np.asarray(value)
        except Exception as exc:  # e.g. ragged nested lists
            raise TypeError(f"{name} must be an array of float32 or float64, got {type_name(value)}") from exc
    if array.dtype.kind != "f" or array.dtype.itemsize not in (4, 8):
        raise TypeError(
            f"{name} must have dtype float32 or float64, got {array.dtype} "
            f"(convert with {name}.astype(np.float32))"
        )
    return native_aligned(array)


def native_aligned(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order with aligned elements (copied only if needed):
    what the native module can read in place."""
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if not array.flags.aligned:
        # e.g. a field of a packed structured array: strides that are not a multiple
        # of the item size cannot be expressed as element strides.
        array = np.array(array, copy=True, order="C")
    return array


def same_dtype(reference: np.ndarray, reference_name: str, **arrays: Optional[np.ndarray]) -> None:
    """TypeError unless every given array has the dtype of ``reference``."""
    for name, array in arrays.items():
        if array is not None and array.dtype != reference.dtype:
            raise TypeError(
                f"{name} has dtype {array.dtype} but {reference_name} has dtype "
                f"{reference.dtype}; convert one so both match"
            )


def batched(x: np.ndarray, rank: int, op: str, name: str = "x") -> tuple[np.ndarray, bool]:
    """``x`` with a batch axis, and whether it had one: ``(N, C, *S)`` or ``(C, *S)``."""
    if x.ndim == rank + 2:
        return x, True
    if x.ndim == rank + 1:
        return x[np.newaxis], False
    spatial = ("L",) if rank == 1 else ("H", "W") if rank == 2 else ("D", "H", "W")
    raise ValueError(
        f"{op}: {name} must be {rank + 2}-D (N, C, {', '.join(spatial)}) or "
        f"{rank + 1}-D (C, {', '.join(spatial)}), got shape {x.shape}"
    )


def check_ndim(array: np.ndarray, ndim: int, op: str, name: str, layout: str) -> None:
    """ValueError unless ``array`` has ``ndim`` axes."""
    if array.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {layout}, got shape {array.shape}")


def to_5d(array: np.ndarray, rank: int) -> np.ndarray:
    """Insert unit spatial axes after the first two so that ``rank`` spatial axes
    become three (a view, never a copy)."""
    return array[(slice(None), slice(None)) + (np.newaxis,) * (3 - rank)]


def from_5d(array: np.ndarray, rank: int, keep_batch: bool = True) -> np.ndarray:
    """Drop the unit spatial axes added by :func:`to_5d` (and the batch axis when
    ``keep_batch`` is false)."""
    out = array.reshape(array.shape[:2] + array.shape[5 - rank :])
    return out if keep_batch else out[0]


def dims3(values: tuple[int, ...], fill: int) -> tuple[int, int, int]:
    """Per-axis values of a rank-1/2/3 problem, padded in front to three axes."""
    padded = (fill,) * (3 - len(values)) + tuple(values)
    return (padded[0], padded[1], padded[2])


def spatial_shape(value: object, name: str) -> tuple[int, ...]:
    """A spatial shape given as an int (1-D) or a sequence of 1 to 3 ints >= 0."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {value!r}")
    if isinstance(value, (Sequence, np.ndarray)):
        items = tuple(as_int(v, name) for v in value)
    else:
        items = (as_int(value, name),)
    if not 1 <= len(items) <= 3:
        raise ValueError(f"{name} must have 1 to 3 spatial sizes, got {items!r}")
    if any(v < 0 for v in items):
        raise ValueError(f"{name} must be >= 0 in every dimension, got {items!r}")
    if any(v > MAX_SIZE for v in items):
        raise ValueError(f"{name} is too large: {items!r}")
    return items


def with_op(op: str, call: Any, *args: Any) -> Any:
    """Call the native ``call(*args)``, prefixing its error messages with ``op``."""
    try:
        return call(*args)
    except (ValueError, TypeError, MemoryError) as exc:
        raise type(exc)(f"{op}: {exc}") from None
