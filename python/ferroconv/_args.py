"""Argument normalisation shared by every public function: the *types and
arities* of arguments.

One place turns user input (ints, tuples, array-likes of any layout and byte
order) into what the native module takes: native-endian arrays, batched
``(N, C, *spatial)``, and per-axis tuples of ``rank`` ints. The *values*
(positivity, padding limits, shapes that fit together, output sizes) are
checked once, by the native module and the Rust core, whose messages name the
argument; this module only checks what Rust cannot see (Python types, tuple
lengths, the unbatched form).
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any, Optional, Union, cast

import numpy as np

IntOrTuple = Union[int, Sequence[int]]

# Ints beyond this cannot describe a real array; refusing them here keeps Python
# ints that do not fit a machine word away from the native module.
MAX_SIZE = 2**62

SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


def type_name(value: object) -> str:
    """The type name of ``value`` as shown in messages."""
    return type(value).__name__


def as_int(value: object, name: str) -> int:
    """``value`` as a Python int that fits a machine word (bools and floats are
    refused with a TypeError)."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type_name(value)} {value!r}") from None
    if abs(number) > MAX_SIZE:
        raise ValueError(f"{name} is too large: {number!r}")
    return number


def is_sequence(value: object) -> bool:
    """Whether ``value`` is a tuple-like of items (a str is not)."""
    return isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, (str, bytes))


def items_of(value: object) -> list[Any]:
    """The items of a tuple-like (:func:`is_sequence`)."""
    return list(cast(Iterable[Any], value))


def int_tuple(value: object, rank: int, name: str) -> tuple[int, ...]:
    """An int, a one-element sequence (the same value on every axis, as PyTorch
    reads it) or a length-``rank`` sequence of ints as a ``rank``-tuple."""
    if not is_sequence(value):
        return (as_int(value, name),) * rank
    items = items_of(value)
    if len(items) == 1:
        return (as_int(items[0], name),) * rank
    if len(items) != rank:
        raise ValueError(f"{name} must be an int or a tuple of {rank} ints, got {tuple(items)!r}")
    return tuple(as_int(v, name) for v in items)


def int_list(value: object, name: str) -> list[int]:
    """A sequence of ints (a shape)."""
    if not is_sequence(value):
        raise TypeError(f"{name} must be a tuple of ints, got {type_name(value)} {value!r}")
    return [as_int(v, name) for v in items_of(value)]


def flag(value: object, name: str) -> bool:
    """A bool argument (numpy bools accepted; ints and other truthy values refused)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type_name(value)} {value!r}")
    return bool(value)


def text(value: object, name: str) -> str:
    """A str argument (its value is checked by the native module)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {type_name(value)}")
    return value


FLOAT_DTYPES = "float32, float64, float16 or bfloat16"


# The integer dtypes max pooling and unpooling take (as PyTorch's CPU max pooling;
# images and masks are integers).
INT_DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "int64")
MAX_DTYPES = "float32, float64, float16, bfloat16, int8, uint8, int16, uint16, int32 or int64"


def is_int_dtype(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is one of :data:`INT_DTYPES` (either byte order)."""
    return dtype.kind in "iu" and dtype.name in INT_DTYPES


def is_float_dtype(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is one the operators take: float32, float64, float16, or
    ``ml_dtypes.bfloat16`` (recognised by name, so ml_dtypes is never imported
    here: a bfloat16 array proves it is loaded)."""
    if dtype.kind == "f":
        return dtype.itemsize in (2, 4, 8)
    return dtype.name == "bfloat16" and dtype.itemsize == 2


# DLPack device types whose memory the CPU reads in place: kDLCPU, kDLCUDAHost
# (pinned host memory), kDLCUDAManaged.
_CPU_DLPACK_DEVICES = (1, 3, 13)


def _device_name(value: object) -> str:
    """The device a foreign array reports (``str(value.device)``), for messages."""
    device = getattr(value, "device", None)
    return "an unknown device" if device is None or callable(device) else str(device)


def _foreign_cpu_check(value: Any, name: str) -> None:
    """TypeError/ValueError for a tensor ferroconv cannot read as a NumPy array:
    one that requires grad (its gradient would be lost) or lives off the CPU."""
    if getattr(value, "requires_grad", False) is True:
        raise TypeError(
            f"{name} is a tensor that requires grad: ferroconv.functional returns NumPy arrays, "
            f"so autograd could not follow it; use the autograd-aware ops of ferroconv.torch, "
            f"or pass {name}.detach() if no gradient is wanted"
        )
    if getattr(value, "is_meta", False) is True:
        raise ValueError(f"{name} is a meta tensor (no data): ferroconv computes on real CPU arrays")
    try:
        device_type = int(value.__dlpack_device__()[0])
    except Exception:  # no device to ask: the array protocol decides below
        return
    if device_type not in _CPU_DLPACK_DEVICES:
        raise ValueError(
            f"{name} lives on {_device_name(value)}: ferroconv computes on the CPU; "
            f"move it there first (e.g. {name}.cpu() for a PyTorch tensor)"
        )


def torch_bfloat16(value: Any) -> np.ndarray:
    """A PyTorch bfloat16 tensor as an ``ml_dtypes.bfloat16`` array (a bit view:
    NumPy's DLPack import has no bfloat16)."""
    import sys

    torch = sys.modules["torch"]
    try:
        import ml_dtypes
    except ImportError:
        raise TypeError(
            "bfloat16 tensors need the ml_dtypes package for their NumPy view: pip install ml_dtypes"
        ) from None
    bits: np.ndarray = value.view(torch.int16).numpy()
    return bits.view(ml_dtypes.bfloat16)


def as_array(value: Any, name: str, kinds: str = FLOAT_DTYPES) -> np.ndarray:
    """``value`` as an ndarray: NumPy arrays as they are; CPU arrays of other
    libraries (PyTorch tensors, JAX arrays, anything with ``__dlpack__``) as
    zero-copy views where their memory allows; else through the array protocol.
    ``kinds`` names the dtypes expected, for the message of unconvertible input."""
    if isinstance(value, np.ma.MaskedArray):
        # Its mask would be silently dropped: every masked cell would count.
        raise TypeError(
            f"{name} is a masked array, whose mask ferroconv cannot honour; pass "
            f"{name}.filled(value) with the value masked cells should take (e.g. 0, or -np.inf "
            f"for max pooling), or {name}.data to use the values under the mask"
        )
    if isinstance(value, np.ndarray):
        return value
    if value is None:
        raise TypeError(f"{name} must be an array of {kinds}, got None")
    if hasattr(value, "__dlpack__"):
        _foreign_cpu_check(value, name)
        if str(getattr(value, "dtype", "")) == "torch.bfloat16" and type(value).__module__.startswith("torch"):
            return torch_bfloat16(value)
        try:
            return np.from_dlpack(value)
        except Exception:  # e.g. a dtype DLPack cannot carry to NumPy: the array protocol may
            pass
    try:
        return np.asarray(value)
    except Exception as exc:  # e.g. ragged nested lists
        raise TypeError(f"{name} must be an array of {kinds}, got {type_name(value)}") from exc


def float_array(value: Any, name: str, integers: str = "") -> np.ndarray:
    """``value`` (see :func:`as_array`) as a float32/float64/float16/bfloat16
    ndarray in native byte order (no copy when it already is one; any strides
    are kept). ``integers`` says why an integer array is refused, where another
    function of the family takes one (max pooling does, average pooling not)."""
    array = as_array(value, name)
    if not is_float_dtype(array.dtype):
        if integers and is_int_dtype(array.dtype):
            raise TypeError(f"{name} must have dtype {FLOAT_DTYPES} ({integers}), got {array.dtype}")
        raise TypeError(
            f"{name} must have dtype {FLOAT_DTYPES}, got {array.dtype} "
            f"(convert with {name}.astype(np.float32))"
        )
    return native_aligned(array)


def max_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float (as :func:`float_array`) or int8/uint8/int16/uint16/int32/int64
    ndarray in native byte order: what max pooling and unpooling take."""
    array = as_array(value, name, MAX_DTYPES)
    if not (is_float_dtype(array.dtype) or is_int_dtype(array.dtype)):
        raise TypeError(f"{name} must have dtype {MAX_DTYPES}, got {array.dtype}")
    return native_aligned(array)


def int64_array(value: object, name: str) -> np.ndarray:
    """``value`` as an aligned int64 ndarray in native byte order (any strides kept)."""
    array = as_array(value, name, "int64")
    if array.dtype.kind != "i" or array.dtype.itemsize != 8:
        raise TypeError(f"{name} must have dtype int64, got {array.dtype}")
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


def from_python(value: object) -> bool:
    """Whether ``value`` is a Python list, tuple or number (NumPy picks its dtype:
    float64 for floats, int64 for ints)."""
    return isinstance(value, (list, tuple, int, float))


def same_dtype(reference: np.ndarray, reference_name: str, converted: frozenset[str] = frozenset(),
               **arrays: Optional[np.ndarray]) -> None:
    """TypeError unless every given array has the dtype of ``reference``.
    ``converted`` names the arguments that came as Python lists or numbers, whose
    dtype the user never chose: the message says so and how to choose it."""
    for name, array in arrays.items():
        if array is None or array.dtype == reference.dtype:
            continue
        for culprit, made, other, wanted in ((name, array.dtype, reference_name, reference.dtype),
                                             (reference_name, reference.dtype, name, array.dtype)):
            if culprit in converted:
                raise TypeError(
                    f"{culprit} was given as a Python list or number, which NumPy converts to {made}, "
                    f"but {other} has dtype {wanted}: pass np.asarray({culprit}, dtype=np.{wanted}) "
                    f"(or convert {other})"
                )
        raise TypeError(
            f"{name} has dtype {array.dtype} but {reference_name} has dtype "
            f"{reference.dtype}; convert one so both match"
        )


def batched(x: np.ndarray, rank: int, name: str = "x") -> tuple[np.ndarray, bool]:
    """``x`` with a batch axis, and whether it had one: ``(N, C, *S)`` or ``(C, *S)``."""
    if x.ndim == rank + 2:
        return x, True
    if x.ndim == rank + 1:
        return x[np.newaxis], False
    spatial = ", ".join(SPATIAL_NAMES[rank])
    raise ValueError(
        f"{name} must be {rank + 2}-D (N, C, {spatial}) or {rank + 1}-D (C, {spatial}), got shape {x.shape}"
    )


def unbatched(array: np.ndarray, was_batched: bool) -> np.ndarray:
    """``array`` without the batch axis :func:`batched` added."""
    return array if was_batched else array[0]


def check_ndim(array: np.ndarray, ndim: int, name: str, layout: str) -> None:
    """ValueError unless ``array`` has ``ndim`` axes."""
    if array.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {array.shape}")


def spatial_shape(value: object, name: str) -> tuple[int, ...]:
    """A spatial shape given as an int (1-D) or a sequence of 1 to 3 ints."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a tuple of ints, got {value!r}")
    items = tuple(int_list(value, name)) if is_sequence(value) else (as_int(value, name),)
    if not 1 <= len(items) <= 3:
        raise ValueError(f"{name} must have 1 to 3 spatial sizes, got {items!r}")
    return items
