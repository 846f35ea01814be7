"""Weight files and checkpoints: ``.npz`` and safetensors, written atomically, read
without executing anything from the file.

Every write goes to a temporary file in the destination's folder, is flushed and
synced to disk, and then renamed over the destination: a crash or a kill during
the write leaves the previous file intact (at worst a stray ``.tmp`` file).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from .module import PathLike

if TYPE_CHECKING:
    from .module import Module
    from .optim import Optimizer

CHECKPOINT_FORMAT = "ferroconv-checkpoint"
CHECKPOINT_VERSION = 1
_ZIP_MAGIC = b"PK"


# safetensors: an 8-byte little-endian header length, a JSON header naming each
# tensor's dtype, shape and byte range, then the little-endian data. Written and
# read here (no dependency; NumPy's safetensors loader lacks bfloat16), checked
# against the safetensors package in the tests.
_SAFETENSORS_CODES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
                      "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?"}
_MAX_HEADER = 100 << 20
# safetensors has no checksum of its own: ferroconv's files carry a SHA-256 of
# their tensor entries, other metadata and data in the metadata, so a flipped bit
# is an error rather than a weight.
_DIGEST_KEY = "ferroconv.sha256"


def _bfloat16() -> np.dtype:
    try:
        import ml_dtypes
    except ImportError:
        raise ValueError("the file holds bfloat16 tensors, which need the ml_dtypes package "
                         "(pip install ml_dtypes)") from None
    dtype: np.dtype = np.dtype(ml_dtypes.bfloat16)
    return dtype


def _safetensors_code(dtype: np.dtype, key: str) -> str:
    if dtype.name == "bfloat16":
        return "BF16"
    for code, name in _SAFETENSORS_CODES.items():
        if np.dtype(name) == dtype.newbyteorder("<") or np.dtype(name) == dtype:
            return code
    raise TypeError(f"{key} has dtype {dtype}, which safetensors files cannot hold")


def _encode_safetensors(arrays: Mapping[str, np.ndarray], metadata: Optional[Mapping[str, str]]) -> list[bytes]:
    blobs, offset, entries = [], 0, {}
    for key, array in arrays.items():
        code = _safetensors_code(array.dtype, key)
        if array.dtype.byteorder == ">":
            array = array.astype(array.dtype.newbyteorder("<"))
        blob = array.tobytes(order="C")
        entries[key] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    described = {**(metadata or {})}
    described[_DIGEST_KEY] = _digest(described, entries, blobs)
    header: dict[str, Any] = {"__metadata__": described, **entries}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data starts 8-byte aligned
    return [len(text).to_bytes(8, "little"), text, *blobs]


def _digest(metadata: Mapping[str, str], entries: Mapping[str, Any], blobs: Iterable[Any]) -> str:
    digest = hashlib.sha256(json.dumps([metadata, entries], sort_keys=True).encode())
    for blob in blobs:
        digest.update(blob)
    return digest.hexdigest()


def _decode_safetensors(payload: bytes) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    if len(payload) < 8:
        raise ValueError(f"{len(payload)} bytes, shorter than the header length")
    size = int.from_bytes(payload[:8], "little")
    if size > min(len(payload) - 8, _MAX_HEADER):
        raise ValueError(f"header of {size} bytes in a file of {len(payload)}")
    header = json.loads(payload[8:8 + size].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ValueError("__metadata__ is not a map of strings")
    data = memoryview(payload)[8 + size:]
    expected = metadata.pop(_DIGEST_KEY, None)
    if expected is not None and _digest(metadata, header, [data]) != expected:
        raise ValueError("the header and data do not match their SHA-256 (the file is corrupted)")
    arrays, spans = {}, []
    for key, info in header.items():
        try:
            code, shape, (start, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise ValueError(f"tensor {key!r}: malformed entry {info!r}") from None
        if not (isinstance(shape, list) and all(isinstance(n, int) and n >= 0 for n in shape)
                and isinstance(start, int) and isinstance(end, int) and 0 <= start <= end <= len(data)):
            raise ValueError(f"tensor {key!r}: shape {shape!r} / byte range {[start, end]!r} do not fit "
                             f"the {len(data)} data bytes")
        dtype = _bfloat16() if code == "BF16" else np.dtype(_SAFETENSORS_CODES.get(code, "O"))
        if dtype.kind == "O":
            raise ValueError(f"tensor {key!r}: unsupported dtype {code!r}")
        if int(np.prod(shape)) * dtype.itemsize != end - start:
            raise ValueError(f"tensor {key!r}: {end - start} bytes for shape {shape} of {code}")
        arrays[key] = np.frombuffer(data[start:end], dtype).reshape(shape).astype(dtype.newbyteorder("="))
        spans.append((start, end))
    covered = 0
    for start, end in sorted(spans):
        if start != covered:
            raise ValueError("the tensors' byte ranges overlap or leave gaps")
        covered = end
    if covered != len(data):
        raise ValueError(f"{len(data) - covered} bytes after the last tensor")
    return arrays, {str(k): v for k, v in metadata.items()}


def file_format(path: PathLike, given: Optional[str] = None) -> str:
    """``"npz"`` or ``"safetensors"``: ``given``, else from the file name's suffix."""
    if given is not None:
        if given not in ("npz", "safetensors"):
            raise ValueError(f"format must be 'npz' or 'safetensors', got {given!r}")
        return given
    return "safetensors" if os.fspath(path).endswith(".safetensors") else "npz"


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, sync it and rename it over
    ``path`` (atomic on POSIX and Windows); on any error the temporary file is
    removed and ``path`` is untouched."""
    target = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(target)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    # The rename itself reaches the disk once the folder's entry is synced.
    with contextlib.suppress(OSError):
        folder_descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(folder_descriptor)
        finally:
            os.close(folder_descriptor)


def _plain(arrays: Mapping[str, Any]) -> dict[str, np.ndarray]:
    # np.ascontiguousarray would turn 0-d arrays (step counts) into shape (1,)
    return {key: np.asarray(value, order="C") for key, value in arrays.items()}


def write_arrays(path: PathLike, arrays: Mapping[str, Any], *, format: Optional[str] = None,
                 metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write named arrays atomically as ``.npz`` (uncompressed) or safetensors.

    ``metadata`` (strings) goes into the safetensors header, or into a
    ``__metadata__`` entry of the ``.npz`` (a JSON string, no pickle).
    """
    kind = file_format(path, format)
    plain = _plain(arrays)
    if kind == "safetensors":
        parts = _encode_safetensors(plain, metadata)
        atomic_write(path, lambda handle: handle.writelines(parts))
    else:
        if metadata:
            plain["__metadata__"] = np.array(json.dumps(dict(metadata)))
        # np.savez adds ".npz" to names without it; write to the exact path instead
        atomic_write(path, lambda handle: np.savez(handle, **plain))  # type: ignore[arg-type]


def read_arrays(path: PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``(arrays, metadata)`` of a file written by :func:`write_arrays` (or by
    ``np.savez`` / any safetensors writer, e.g. ``safetensors.torch.save_file``).
    The format is told by the file's first bytes; pickled objects are refused.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        When the file is truncated, corrupted or of another format.
    """
    name = os.fspath(path)
    with open(name, "rb") as handle:
        head = handle.read(8)
    try:
        if head.startswith(_ZIP_MAGIC):
            with np.load(name, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
            meta = arrays.pop("__metadata__", None)
            metadata = {} if meta is None else dict(json.loads(str(meta)))
            return arrays, {str(k): str(v) for k, v in metadata.items()}
        with open(name, "rb") as handle:
            payload = handle.read()
        return _decode_safetensors(payload)
    except (ValueError, OSError, EOFError, KeyError, TypeError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise ValueError(f"{name} is not a readable .npz or safetensors file ({type(exc).__name__}: {exc})") from None


def _prefixed(arrays: Mapping[str, np.ndarray], prefix: str) -> Iterator[tuple[str, np.ndarray]]:
    for key, value in arrays.items():
        if key.startswith(prefix):
            yield key[len(prefix):], value


def save_checkpoint(path: PathLike, model: Module, optimizer: Optional[Optimizer] = None, *,
                    scheduler: Any = None, step: int = 0, rng: Optional[np.random.Generator] = None,
                    format: Optional[str] = None) -> None:
    """Write everything needed to resume training exactly, atomically, in one file:
    the model's parameters and buffers, the optimiser's state (momentum, Adam
    moments, 16-bit masters), a learning-rate schedule's state, the step count and
    a NumPy Generator's state (JSON in the file's metadata).

    Parameters
    ----------
    path : str or PathLike
        The file; ``.safetensors`` selects safetensors, anything else ``.npz``.
    model : Module
    optimizer : Optimizer, optional
    scheduler : schedule with ``state_dict``, optional
    step : int
        The training step (or epoch) reached, returned by :func:`load_checkpoint`.
    rng : numpy.random.Generator, optional
        The generator that drives data order, dropout, ...; its state is saved.
    format : {"npz", "safetensors"}, optional
        Overrides the suffix.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from ferroconv import nn
    >>> model = nn.Linear(3, 2, rng=0)
    >>> optimizer = nn.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> nn.save_checkpoint(path, model, optimizer, step=5)
    >>> nn.load_checkpoint(path, model, optimizer)["step"]
    5
    """
    arrays: dict[str, np.ndarray] = {f"model.{key}": value for key, value in model.state_dict().items()}
    if optimizer is not None:
        arrays.update({f"optimizer.{key}": value for key, value in optimizer.state_dict().items()})
    if scheduler is not None:
        arrays.update({f"scheduler.{key}": value for key, value in scheduler.state_dict().items()})
    metadata = {"format": CHECKPOINT_FORMAT, "version": str(CHECKPOINT_VERSION), "step": str(int(step))}
    if rng is not None:
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"save_checkpoint: rng must be a numpy.random.Generator, got {type(rng).__name__}")
        metadata["rng"] = json.dumps(rng.bit_generator.state)
    write_arrays(path, arrays, format=format, metadata=metadata)


def load_checkpoint(path: PathLike, model: Module, optimizer: Optional[Optimizer] = None, *,
                    scheduler: Any = None, rng: Optional[np.random.Generator] = None) -> dict[str, Any]:
    """Restore a file written by :func:`save_checkpoint` into ``model`` (and the
    optimiser, schedule and generator given), all or nothing: if any part does
    not fit, nothing is changed.

    Returns
    -------
    dict
        ``{"step": int, "rng": numpy.random.Generator or None}``: the saved step
        and a generator in the saved state (``rng``, when given, is set to that
        state in place and returned).

    Raises
    ------
    ValueError
        When the file is not a ferroconv checkpoint, is truncated or corrupted, or
        its arrays do not fit the model / optimiser (every mismatch named).
    """
    arrays, metadata = read_arrays(path)
    if metadata.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{os.fspath(path)} is not a ferroconv checkpoint (no {CHECKPOINT_FORMAT!r} metadata)")
    try:
        step = int(metadata.get("step", "0"))
        rng_state = json.loads(metadata["rng"]) if "rng" in metadata else None
    except (ValueError, json.JSONDecodeError) as exc:
        raise ValueError(f"{os.fspath(path)}: corrupted checkpoint metadata ({exc})") from None
    restored: Optional[np.random.Generator] = None
    if rng_state is not None:
        try:
            bit_generator = getattr(np.random, rng_state["bit_generator"])()
            bit_generator.state = rng_state
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{os.fspath(path)}: corrupted generator state ({exc})") from None
        restored = np.random.Generator(bit_generator)
    if rng is not None and not isinstance(rng, np.random.Generator):
        raise TypeError(f"load_checkpoint: rng must be a numpy.random.Generator, got {type(rng).__name__}")

    backup = model.state_dict()
    optimizer_backup = optimizer.state_dict() if optimizer is not None else None
    try:
        model.load_state_dict(dict(_prefixed(arrays, "model.")))
        if optimizer is not None:
            optimizer.load_state_dict(dict(_prefixed(arrays, "optimizer.")))
        if scheduler is not None:
            scheduler.load_state_dict(dict(_prefixed(arrays, "scheduler.")))
    except BaseException:
        # all or nothing: a later part that does not fit undoes the earlier ones
        model.load_state_dict(backup)
        if optimizer is not None and optimizer_backup is not None:
            optimizer.load_state_dict(optimizer_backup)
        raise
    if rng is not None and restored is not None:
        rng.bit_generator.state = restored.bit_generator.state
        restored = rng
    return {"step": step, "rng": restored}
