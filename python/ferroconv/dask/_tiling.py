"""Tiling a sliding-window operator over a chunked dask array.

An operator with, per spatial axis, an extent ``e = dilation * (kernel - 1) + 1``
and a stride ``s`` reads cells ``[o s, o s + e)`` of the padded axis for output
``o``. The padded array is cut into chunks whose boundaries are multiples of ``s``
(except the end of the last), so the windows *starting* in a chunk produce exactly
``chunk // s`` outputs; each chunk is extended on the right by the ``e - s`` cells
its last windows reach into the next chunk (``dask.array.map_overlap`` with an
asymmetric depth), and the operator runs on it without padding. Padding is applied
once, at the true boundary of the whole array, with ``dask.array.pad``.

The same chunk arithmetic serves a stack of size-preserving layers
(:mod:`ferroconv.dask._network`), with a stride of 1 and a halo on both sides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional

import numpy as np

import dask.array as da

from .._args import batched, float_array, type_name

# numpy.pad / dask.array.pad mode of each padding_mode of the convolutions
PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
SPATIAL_NAMES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass(frozen=True)
class AxisWindows:
    """The windows of an operator along one spatial axis.

    ``pad_lo`` cells are added before the input; after it, cells are added (or the
    unused tail is dropped) so that the padded axis is exactly ``used`` cells long.
    """

    extent: int
    stride: int
    pad_lo: int
    out_size: int

    @property
    def used(self) -> int:
        """Cells of the padded axis that the windows read."""
        return (self.out_size - 1) * self.stride + self.extent

    @property
    def halo(self) -> int:
        """Cells a chunk's last windows read from the next chunk."""
        return max(self.extent - self.stride, 0)


def dask_input(op: str, rank: int, x: object, in_memory: str = "") -> tuple[da.Array, bool]:
    """``x`` as a batched ``(N, C, *S)`` dask array of float32/float64, and whether
    it had a batch axis. TypeError for anything but a dask array of floats;
    ``in_memory`` names what to call on a NumPy array instead."""
    if not isinstance(x, da.Array):
        raise TypeError(
            f"{op}: x must be a dask.array.Array, got {type_name(x)}; wrap an in-memory array with "
            f"dask.array.from_array(x, chunks=...) or call {in_memory or f'ferroconv.{op}(x, ...)'} on it directly"
        )
    try:
        float_array(np.empty(0, x.dtype), "x")
    except TypeError as exc:
        raise TypeError(f"{op}: {exc}") from None
    if any(math.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError(f"{op}: x has unknown chunk sizes {x.chunks}; call x.compute_chunk_sizes() first")
    # batched() only reads .ndim and indexes with np.newaxis, which dask arrays share
    array, was_batched = batched(x, rank, op)  # type: ignore[arg-type]
    return array, was_batched  # type: ignore[return-value]


def interior_boundaries(chunks: Sequence[int]) -> list[int]:
    """Positions between the chunks of an axis (``(4, 4, 2)`` -> ``[4, 8]``)."""
    return [int(b) for b in np.cumsum(chunks)[:-1]]


def cut_axis(total: int, boundaries: Sequence[int], stride: int, minimum: int, last_minimum: int) -> tuple[int, ...]:
    """Chunks of an axis of ``total`` cells, cut at ``boundaries`` moved down to a
    multiple of ``stride``; cuts that would leave a chunk shorter than ``minimum``
    (or the last one shorter than ``last_minimum``) are dropped, merging chunks."""
    cuts: list[int] = []
    previous = 0
    for boundary in boundaries:
        cut = boundary // stride * stride
        if cut - previous >= max(minimum, 1) and cut < total:
            cuts.append(cut)
            previous = cut
    while cuts and total - cuts[-1] < last_minimum:
        cuts.pop()
    edges = [0, *cuts, total]
    return tuple(end - start for start, end in zip(edges, edges[1:]))


def check_kept(op: str, axis: int, rank: int, chunks: Sequence[int], wanted: Sequence[int], shift: int,
               why: Callable[[int, int, int], str]) -> None:
    """ValueError (for ``rechunk=False``) unless every chunk boundary of ``chunks``,
    moved by ``shift`` cells of padding, is one of ``wanted`` (chunks of the padded
    axis). ``why(previous, boundary, following)`` says what is wrong with the first
    boundary that is not kept, given the kept boundary before it and the boundary
    after it; the message suggests chunks of ``x`` that would line up."""
    kept = set(interior_boundaries(wanted))
    total, length = sum(wanted), sum(chunks)
    moved = [b + shift for b in interior_boundaries(chunks)] + [length + shift]
    previous = 0
    for boundary, following in zip(moved, moved[1:]):
        if not 0 < boundary < total:
            continue
        if boundary in kept:
            previous = boundary
            continue
        name = SPATIAL_NAMES[rank][axis - 2]
        edges = [0, *(b - shift for b in sorted(kept) if 0 < b - shift < length), length]
        suggested = tuple(end - start for start, end in zip(edges, edges[1:]))
        raise ValueError(
            f"{op}: x's chunks {tuple(chunks)} along {name} do not line up: "
            f"{why(previous, boundary, min(following, total))}. Chunks {suggested} would; pass "
            f"rechunk=True (the default) or rechunk x"
        )


def cells(count: int) -> str:
    return f"{count} cell" if count == 1 else f"{count} cells"


def single_channel_chunk(op: str, x: da.Array, rechunk: bool, axis: int = 1) -> da.Array:
    """``x`` with its channel axis in one chunk (every output needs every channel)."""
    if len(x.chunks[axis]) == 1:
        return x
    if not rechunk:
        raise ValueError(
            f"{op}: x's channel axis C is split into chunks {x.chunks[axis]}; it must be one chunk. "
            f"Pass rechunk=True (the default) or rechunk x"
        )
    merged: da.Array = x.rechunk({axis: -1})  # type: ignore[no-untyped-call]
    return merged


def misaligned(w: AxisWindows, previous: int, boundary: int, following: int) -> str:
    """Why a chunk boundary of the padded axis cannot be kept (for :func:`check_kept`)."""
    where = f"the chunk boundary at {boundary - w.pad_lo}" + (
        f" ({boundary} after {cells(w.pad_lo)} of padding)" if w.pad_lo else "")
    if boundary % w.stride:
        return f"{where} is not a multiple of the stride {w.stride}"
    if boundary - previous < w.halo:
        return (f"the chunk before {where} has {cells(boundary - previous)}, fewer than the {w.halo} "
                f"that windows reach into the next chunk (the halo)")
    return (f"the chunk after {where} holds no whole window of {cells(w.extent)} (the windows read "
            f"{cells(w.used)} of the padded axis)")


def map_windows(op: str, x: da.Array, windows: Sequence[AxisWindows], block: Callable[..., np.ndarray],
                out_channels: int, rechunk: bool, pad_mode: str = "constant",
                pad_value: Optional[float] = 0.0) -> da.Array:
    """Apply ``block`` (an unpadded strided window operator on NumPy blocks) to the
    batched ``x (N, C, *S)`` with the given per-axis windows, as one lazy array of
    shape ``(N, out_channels, *out_size)``."""
    rank = len(windows)
    x = single_channel_chunk(op, x, rechunk)
    pad_width = [(0, 0), (0, 0)]
    for w, length in zip(windows, x.shape[2:]):
        pad_width.append((w.pad_lo, max(w.used - w.pad_lo - length, 0)))
    padded = x
    if any(lo or hi for lo, hi in pad_width):
        kwargs: dict[str, Any] = {"constant_values": pad_value} if pad_mode == "constant" else {}
        padded = da.pad(x, pad_width, mode=pad_mode, **kwargs)
    padded = padded[(slice(None), slice(None)) + tuple(slice(0, w.used) for w in windows)]

    in_chunks: list[tuple[int, ...]] = [padded.chunks[0], padded.chunks[1]]
    out_chunks: list[tuple[int, ...]] = [padded.chunks[0], (out_channels,)]
    depth: dict[int, Any] = {0: 0, 1: 0}
    for axis, w in enumerate(windows, start=2):
        boundaries = [b + w.pad_lo for b in interior_boundaries(x.chunks[axis])]
        chunks = cut_axis(w.used, boundaries, w.stride, w.halo, w.extent)
        if not rechunk:
            check_kept(op, axis, rank, x.chunks[axis], chunks, w.pad_lo, partial(misaligned, w))
        in_chunks.append(chunks)
        outputs = [size // w.stride for size in chunks[:-1]]
        out_chunks.append((*outputs, w.out_size - sum(outputs)))
        depth[axis] = (0, w.halo) if len(chunks) > 1 and w.halo else 0
    padded = padded.rechunk(tuple(in_chunks))
    dtype = padded.dtype.newbyteorder("=")
    out: da.Array = da.map_overlap(  # type: ignore[no-untyped-call]
        block, padded, depth=depth, boundary="none", trim=False, allow_rechunk=False,
        chunks=tuple(out_chunks), dtype=dtype, meta=np.empty((0,) * (rank + 2), dtype), token=op,
    )
    return out


def restore_batch(out: da.Array, was_batched: bool) -> da.Array:
    """Drop the batch axis that :func:`dask_input` added to an unbatched input."""
    return out if was_batched else out[0]
