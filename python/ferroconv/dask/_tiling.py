"""Tiling a sliding-window operator over a chunked dask array.

An operator with, per spatial axis, an extent ``e = dilation * (kernel - 1) + 1``,
a stride ``s`` and ``p`` cells of padding before the input reads input cells
``[o s - p, o s - p + e)`` for output ``o``. Chunk boundaries of the input are
placed at multiples of ``s``, so the windows of output block ``j`` are those
starting in input chunk ``j``: ``chunk // s`` outputs, and output chunks follow
input chunks (a "same" convolution keeps them). Each chunk is extended by the
``p`` cells its first windows read from the previous chunk and the ``e - s - p``
its last windows read from the next (``dask.array.map_overlap`` with an
asymmetric depth), and the operator runs on it without padding. Only the blocks
at the true boundary of the array are padded, by the block function itself
(zeros, -inf, reflect and replicate read nothing beyond the block); circular
padding, which reads the far end of the array, is added once with
``dask.array.pad``.

The same chunk arithmetic serves a stack of size-preserving layers
(:mod:`ferroconv.dask._network`), with a stride of 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, Optional

import numpy as np

import dask.array as da

from .._args import SPATIAL_NAMES, batched, float_array, type_name

# numpy.pad / dask.array.pad mode of each padding_mode of the convolutions
PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@dataclass(frozen=True)
class AxisWindows:
    """The windows of an operator along one spatial axis: ``pad_lo`` cells of
    padding come before the input, and output ``o`` reads cells ``[o stride, o stride
    + extent)`` of the padded axis."""

    extent: int
    stride: int
    pad_lo: int
    out_size: int

    @property
    def used(self) -> int:
        """Cells of the padded axis that the windows read."""
        return (self.out_size - 1) * self.stride + self.extent

    @property
    def before(self) -> int:
        """Cells a chunk's first windows read from the previous chunk."""
        return self.pad_lo

    @property
    def after(self) -> int:
        """Cells a chunk's last windows read from the next chunk."""
        return max(self.extent - self.stride - self.pad_lo, 0)


def dask_input(op: str, rank: int, x: object, in_memory: str = "",
               dtypes: Callable[[np.ndarray, str], np.ndarray] = float_array) -> tuple[da.Array, bool]:
    """``x`` as a batched ``(N, C, *S)`` dask array of float32/float64, and whether
    it had a batch axis. TypeError for anything but a dask array of floats (or of
    what ``dtypes``, the functional API's dtype check, takes); ``in_memory`` names
    what to call on a NumPy array instead."""
    if not isinstance(x, da.Array):
        raise TypeError(
            f"x must be a dask.array.Array, got {type_name(x)}; wrap an in-memory array with "
            f"dask.array.from_array(x, chunks=...) or call {in_memory or f'ferroconv.{op}(x, ...)'} on it directly"
        )
    try:
        dtypes(np.empty(0, x.dtype), "x")
    except TypeError as exc:
        raise TypeError(str(exc)) from None
    if any(math.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError(f"x has unknown chunk sizes {x.chunks}; call x.compute_chunk_sizes() first")
    # batched() only reads .ndim and indexes with np.newaxis, which dask arrays share
    array, was_batched = batched(x, rank)  # type: ignore[arg-type]
    return array, was_batched  # type: ignore[return-value]


def interior_boundaries(chunks: Sequence[int]) -> list[int]:
    """Positions between the chunks of an axis (``(4, 4, 2)`` -> ``[4, 8]``)."""
    return [int(b) for b in np.cumsum(chunks)[:-1]]


def cut_axis(boundaries: Sequence[int], end: int, *, stride: int = 1, first: int = 1, minimum: int = 1,
             last: int = 1, last_start: Optional[int] = None) -> list[int]:
    """Cut positions of an axis that ends at ``end``: the given ``boundaries`` moved
    down to a multiple of ``stride``, keeping only cuts at or after ``first``, at
    least ``minimum`` after the previous cut, and leaving a last chunk of at least
    ``last`` cells that starts at or before ``last_start``. Dropped cuts merge
    chunks; no cuts at all is one chunk."""
    cuts: list[int] = []
    for boundary in boundaries:
        cut = boundary // stride * stride
        if cut >= (cuts[-1] + minimum if cuts else first) and cut < end:
            cuts.append(cut)
    while cuts and (end - cuts[-1] < last or last_start is not None and cuts[-1] > last_start):
        cuts.pop()
    return cuts


def sizes(cuts: Sequence[int], length: int) -> tuple[int, ...]:
    """Chunk sizes of an axis of ``length`` cells cut at ``cuts``."""
    edges = [0, *cuts, length]
    return tuple(end - start for start, end in zip(edges, edges[1:]))


def check_kept(axis: int, rank: int, chunks: Sequence[int], kept: Sequence[int], used: int,
               why: Callable[[int, int, int], str]) -> None:
    """ValueError (for ``rechunk=False``) unless every boundary of ``chunks`` before
    ``used`` (the cells the blocks read) is one of the ``kept`` cuts.
    ``why(previous, boundary, following)`` says what is wrong with the first one
    that is not, given the kept cut before it and the next boundary; the message
    suggests chunks of ``x`` that would line up."""
    length = sum(chunks)
    boundaries = [b for b in interior_boundaries(chunks) if b < used] + [min(length, used)]
    previous = 0
    for boundary, following in zip(boundaries, boundaries[1:]):
        if boundary in kept:
            previous = boundary
            continue
        raise ValueError(
            f"x's chunks {tuple(chunks)} along {SPATIAL_NAMES[rank][axis - 2]} do not line up: "
            f"{why(previous, boundary, following)}. Chunks {sizes(kept, length)} would; pass "
            f"rechunk=True (the default) or rechunk x"
        )


def cells(count: int) -> str:
    return f"{count} cell" if count == 1 else f"{count} cells"


def single_channel_chunk(x: da.Array, rechunk: bool, axis: int = 1) -> da.Array:
    """``x`` with its channel axis in one chunk (every output needs every channel)."""
    if len(x.chunks[axis]) == 1:
        return x
    if not rechunk:
        raise ValueError(
            f"x's channel axis C is split into chunks {x.chunks[axis]}; it must be one chunk. "
            f"Pass rechunk=True (the default) or rechunk x"
        )
    merged: da.Array = x.rechunk({axis: -1})  # type: ignore[no-untyped-call]
    return merged


@dataclass(frozen=True)
class AxisPlan:
    """How one spatial axis is cut and padded: ``x`` keeps its first ``keep``
    cells (the rest is never read), cut at ``cuts``; the first block gets
    ``pad_lo`` cells of padding before it and the last ``pad_hi`` after it."""

    windows: AxisWindows
    keep: int
    pad_hi: int
    cuts: tuple[int, ...]
    first: int  # fewest cells in the first chunk
    minimum: int  # fewest cells in any chunk: the halo it lends its neighbours
    last: int  # fewest cells in the last chunk

    @property
    def out_chunks(self) -> tuple[int, ...]:
        w = self.windows
        starts = [0, *self.cuts]
        outputs = [(end - start) // w.stride for start, end in zip(starts, starts[1:])]
        return (*outputs, w.out_size - sum(outputs))

    @property
    def depth(self) -> Any:
        """``map_overlap`` depth: cells shared with the previous and next blocks."""
        w = self.windows
        return (w.before, w.after) if self.cuts and (w.before or w.after) else 0

    def why(self, previous: int, boundary: int, following: int) -> str:
        """Why a chunk boundary of ``x`` cannot be kept (for :func:`check_kept`)."""
        w = self.windows
        where = f"the chunk boundary at {boundary}"
        if boundary % w.stride:
            return f"{where} is not a multiple of the stride {w.stride}"
        if previous == 0 and boundary < self.first:
            return f"the first chunk has {cells(boundary)}, fewer than the {self.first} it needs"
        if boundary - previous < self.minimum:
            return (f"the chunk before {where} has {cells(boundary - previous)}, fewer than the "
                    f"{self.minimum} that neighbouring windows reach into (the halo)")
        return (f"the chunk after {where} would be the last and needs at least {cells(self.last)} and a "
                f"whole window of {cells(w.extent)} (the windows read {cells(w.used)} of the padded axis)")


def plan_axis(w: AxisWindows, length: int, chunks: Sequence[int], pad_mode: str) -> AxisPlan:
    """Cut an axis of ``length`` cells chunked as ``chunks`` so that every chunk
    boundary is a window start and every block can be padded on its own."""
    # reflect padding of p cells mirrors p cells beyond the first (or last) one
    first_need = w.pad_lo + 1 if pad_mode == "reflect" else 1
    keep = min(length, max(w.used - w.pad_lo, first_need))
    pad_hi = max(w.used - w.pad_lo - length, 0)
    last_need = pad_hi + 1 if pad_mode == "reflect" else 1
    minimum = max(w.before, w.after, 1)
    first, last = max(minimum, first_need), max(minimum, last_need)
    cuts = cut_axis(interior_boundaries(chunks), keep, stride=w.stride, first=first, minimum=minimum, last=last,
                    last_start=w.used - w.extent)
    return AxisPlan(w, keep, pad_hi, tuple(cuts), first, minimum, last)


def boundary_block(block: np.ndarray, block_id: tuple[int, ...], *, compute: Callable[[np.ndarray], np.ndarray],
                   pads: Sequence[tuple[int, int]], numblocks: Sequence[int], pad_mode: str, pad_value: float,
                   out_chunks: Sequence[Sequence[int]]) -> np.ndarray:
    """``compute`` on one block plus its halo, padded where it touches the true
    boundary of the array, cropped to the block's outputs."""
    widths = [(0, 0), (0, 0)]
    for axis, (lo, hi) in enumerate(pads, start=2):
        index = block_id[axis]
        widths.append((lo if index == 0 else 0, hi if index == numblocks[axis] - 1 else 0))
    if any(lo or hi for lo, hi in widths):
        kwargs: dict[str, Any] = {"constant_values": pad_value} if pad_mode == "constant" else {}
        block = np.pad(block, widths, mode=pad_mode, **kwargs)  # type: ignore[call-overload]
    out = compute(block)
    # a block may hold cells no window of its own reads (kept for reflect padding,
    # or beyond the last window when windows are shorter than the stride)
    return out[(slice(None), slice(None)) + tuple(slice(0, out_chunks[a][block_id[a]]) for a in range(2, out.ndim))]


def map_windows(op: str, x: da.Array, windows: Sequence[AxisWindows], compute: Callable[[np.ndarray], np.ndarray],
                out_channels: int, rechunk: bool, pad_mode: str = "constant", pad_value: float = 0.0) -> da.Array:
    """Apply ``compute`` (an unpadded strided window operator on NumPy blocks) to
    the batched ``x (N, C, *S)`` with the given per-axis windows and padding, as one
    lazy array of shape ``(N, out_channels, *out_size)``."""
    rank = len(windows)
    x = single_channel_chunk(x, rechunk)
    if pad_mode == "wrap":  # circular: the padding of one end is the other end of the array
        widths = [(0, 0), (0, 0)] + [(w.pad_lo, max(w.used - w.pad_lo - n, 0))
                                     for w, n in zip(windows, x.shape[2:])]
        x = da.pad(x, widths, mode="wrap")
        windows = [AxisWindows(w.extent, w.stride, 0, w.out_size) for w in windows]
    plans = [plan_axis(w, int(n), c, pad_mode) for w, n, c in zip(windows, x.shape[2:], x.chunks[2:])]
    if not rechunk:
        for axis, plan in enumerate(plans, start=2):
            check_kept(axis, rank, x.chunks[axis], plan.cuts, plan.keep, plan.why)
    x = x[(slice(None), slice(None)) + tuple(slice(0, plan.keep) for plan in plans)]
    spatial_chunks = [sizes(plan.cuts, plan.keep) for plan in plans]
    x = x.rechunk((x.chunks[0], x.chunks[1], *spatial_chunks))  # type: ignore[no-untyped-call]
    out_chunks = (x.chunks[0], (out_channels,), *(plan.out_chunks for plan in plans))
    depth = {0: 0, 1: 0, **{axis: plan.depth for axis, plan in enumerate(plans, start=2)}}
    block = partial(boundary_block, compute=compute, pads=[(p.windows.pad_lo, p.pad_hi) for p in plans],
                    numblocks=x.numblocks, pad_mode=pad_mode, pad_value=pad_value, out_chunks=out_chunks)
    dtype = x.dtype.newbyteorder("=")
    out: da.Array = da.map_overlap(  # type: ignore[no-untyped-call]
        block, x, depth=depth, boundary="none", trim=False, allow_rechunk=False, chunks=out_chunks,
        dtype=dtype, meta=np.empty((0,) * (rank + 2), dtype), token=op,
    )
    return out


def restore_batch(out: da.Array, was_batched: bool) -> da.Array:
    """Drop the batch axis that :func:`dask_input` added to an unbatched input."""
    return out if was_batched else out[0]
