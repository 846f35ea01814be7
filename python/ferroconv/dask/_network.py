"""Inference of a fully-convolutional ``ferroconv.nn`` network on a dask array.

Only layers that keep the spatial size and whose output cell depends on a fixed
window of input cells can be tiled: stride-1 convolutions and poolings with
"same" padding, and element-wise layers (activations, BatchNorm in eval mode,
Dropout in eval mode). The halo of the stack is its receptive field minus one,
split into the cells each side needs (the sum of the layers' left and right
paddings).

Each block (plus the halo from its neighbours) runs through the layers' own
``forward`` with their own padding: at the true boundary of the array that
padding is exactly what the whole-array forward applies, and next to a neighbour
the cells it contaminates lie inside the halo, which is cropped.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Optional

import numpy as np

import dask.array as da

from .. import functional, nn
from .._args import SPATIAL_NAMES, flag
from .._errors import public
from ._tiling import (
    check_kept,
    cut_axis,
    dask_input,
    interior_boundaries,
    restore_batch,
    single_channel_chunk,
    sizes,
)

OP = "apply_network"

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_MAX_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)
_AVG_POOL = (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)
_POINTWISE = (nn.ReLU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh)
_EVAL_ONLY = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.Dropout)


@dataclass(frozen=True)
class LayerHalo:
    """Per-axis cells a size-preserving layer reads before and after each output
    cell (its padding), and its window as ``receptive_field`` takes it."""

    rank: int
    before: tuple[int, ...]
    after: tuple[int, ...]
    windows: tuple[tuple[int, int, int], ...]  # (kernel, stride, dilation) per axis
    wraps: bool  # circular padding: reads the far end of the array


def flatten(layers: Any) -> Iterator[Any]:
    """The leaf layers of a (possibly nested) Sequential."""
    if isinstance(layers, nn.Sequential):
        for layer in layers:
            yield from flatten(layer)
    else:
        yield layers


def cannot_tile(index: int, layer: Any, why: str) -> ValueError:
    return ValueError(f"layer {index} ({layer!r}) cannot be applied block by block: {why}")


def layer_halo(index: int, layer: Any) -> Optional[LayerHalo]:
    """The halo of one layer (None for an element-wise layer); ValueError for a
    layer that cannot be tiled."""
    if isinstance(layer, _POINTWISE):
        return None
    if isinstance(layer, _EVAL_ONLY):
        if layer.training:
            raise cannot_tile(index, layer, "it is in training mode (batch statistics or random masks "
                                            "depend on the whole array); call net.eval() first")
        if isinstance(layer, nn.Dropout) or layer.track_running_stats:
            return None
        raise cannot_tile(index, layer, "with track_running_stats=False it normalises by the statistics of "
                                        "the whole batch")
    if isinstance(layer, _CONV + _MAX_POOL + _AVG_POOL):
        rank = layer.rank
        kernel, stride = tuple(layer.kernel_size), tuple(layer.stride)
        dilation = tuple(getattr(layer, "dilation", (1,) * rank))
        if any(s != 1 for s in stride):
            raise cannot_tile(index, layer, f"stride {stride} changes the size (only stride 1 is supported)")
        if isinstance(layer, _MAX_POOL) and layer.return_indices:
            raise cannot_tile(index, layer, "return_indices=True")
        spans = tuple(d * (k - 1) for k, d in zip(kernel, dilation))
        if isinstance(layer, _CONV):  # "same" padding resolved as the layer's spec resolves it
            before, after = (tuple(side) for side in layer.spec.padding_for(kernel))
        else:  # ints, pairs or "same": at stride 1 the sides do not depend on the input's size
            before, after = (tuple(side) for side in layer._spec.pads_for(tuple(n + 1 for n in spans)))
        if tuple(lo + hi for lo, hi in zip(before, after)) != spans:
            raise cannot_tile(index, layer, f"padding {layer.padding!r} does not keep the size "
                                            f"(use padding='same' or {tuple(s // 2 for s in spans)})")
        wraps = getattr(layer, "padding_mode", "zeros") == "circular"
        return LayerHalo(rank, before, after, tuple(zip(kernel, stride, dilation)), wraps)
    raise cannot_tile(index, layer, "only stride-1 'same' convolutions and poolings and element-wise layers "
                                    f"({', '.join(t.__name__ for t in _POINTWISE + _EVAL_ONLY)}) can be tiled")


def network_halo(layers: Sequence[Any], rank: int) -> tuple[tuple[int, ...], tuple[int, ...], dict[int, int]]:
    """Cells every output block needs before and after it, per spatial axis, and for
    each spatial axis that some layer pads circularly, the first such layer."""
    halos: list[LayerHalo] = []
    wrapping: dict[int, int] = {}
    for index, layer in enumerate(layers):
        halo = layer_halo(index, layer)
        if halo is not None:
            if halo.rank != rank:
                raise ValueError(f"layer {index} ({layer!r}) is {halo.rank}-D but x has {rank} spatial axes")
            halos.append(halo)
            for axis in range(rank):
                if halo.wraps and halo.before[axis] + halo.after[axis]:
                    wrapping.setdefault(axis, index)
    before = tuple(sum(h.before[axis] for h in halos) for axis in range(rank))
    total = tuple(functional.receptive_field([h.windows[axis] for h in halos]) - 1 if halos else 0
                  for axis in range(rank))
    return before, tuple(t - b for t, b in zip(total, before)), wrapping


def forward(layers: Sequence[Any], x: np.ndarray) -> np.ndarray:
    """The layers' own forward passes, on shallow copies: parameters are shared, and
    the activations each layer caches for backward die with the copy."""
    for layer in layers:
        x = copy.copy(layer).forward(x)
    return x


def network_block(block: np.ndarray, *, layers: Sequence[Any], chunks: Sequence[Sequence[int]],
                  before: Sequence[int], block_id: tuple[int, ...]) -> np.ndarray:
    out = forward(layers, block)
    crop: list[slice] = [slice(None), slice(None)]
    for axis in range(2, out.ndim):
        index = block_id[axis]
        start = before[axis - 2] if index > 0 else 0  # the first block has no halo before it
        crop.append(slice(start, start + chunks[axis][index]))
    return out[tuple(crop)]


def too_short(minimum: int, previous: int, boundary: int, following: int) -> str:
    """Why a chunk boundary cannot be kept (for ``check_kept``)."""
    start, end = (previous, boundary) if boundary - previous < minimum else (boundary, following)
    return f"the chunk [{start}, {end}) is shorter than {minimum} cells (the network's halo + 1)"


@public
def apply_network(net: Any, x: Any, *, rechunk: bool = True) -> da.Array:
    """Run a trained fully-convolutional network on a dask array, block by block.

    Parameters
    ----------
    net : ferroconv.nn.Sequential or layer
        Stride-1 convolutions and poolings whose padding keeps the size (``"same"``),
        and element-wise layers (ReLU, LeakyReLU, Sigmoid, Tanh; BatchNorm and
        Dropout in eval mode). Nested Sequentials are flattened.
    x : dask.array.Array
        ``(N, C, *spatial)`` or ``(C, *spatial)`` with the dtype of the network's
        parameters, chunked along the batch and/or spatial axes.
    rechunk : bool, keyword only
        Merge the channel axis into one chunk, and spatial chunks not longer than
        the network's halo into their neighbours; with False such chunks raise
        ValueError.

    Returns
    -------
    dask.array.Array
        Lazily ``net(x)`` computed on the whole array: same shape, dtype and values
        (each block runs the layers' own forward), with ``x``'s chunks and the
        channel axis in one chunk.

    Raises
    ------
    TypeError
        ``x`` is not a dask array of floats, or does not fit the network's dtype.
    ValueError
        A layer that cannot be tiled (strided, size-changing, training mode,
        flattening...), or channels that do not fit the network.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from ferroconv import nn
    >>> import ferroconv.dask as fcd
    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding="same", rng=0), nn.ReLU(),
    ...                     nn.Conv2d(4, 2, 5, padding=2, padding_mode="reflect", rng=1)).eval()
    >>> image = np.random.default_rng(2).standard_normal((1, 1, 50, 60)).astype(np.float32)
    >>> y = fcd.apply_network(net, da.from_array(image, chunks=(1, 1, 20, 20)))
    >>> y.shape, y.chunks[2:]
    ((1, 2, 50, 60), ((20, 20, 10), (20, 20, 20)))
    >>> bool(np.array_equal(y.compute(), net(image)))
    True
    """
    layers = list(flatten(net))
    tile = flag(rechunk, "rechunk")
    spatial_ranks = {layer.rank for layer in layers if isinstance(layer, _CONV + _MAX_POOL + _AVG_POOL)}
    if len(spatial_ranks) > 1:
        raise ValueError(f"the network mixes layers of {sorted(spatial_ranks)} spatial dimensions")
    # without spatial layers the rank only decides how many axes are spatial
    rank = spatial_ranks.pop() if spatial_ranks else max(getattr(x, "ndim", 3) - 2, 1)
    x5, was_batched = dask_input(OP, rank, x, in_memory="net(x)")
    before, after, wrapping = network_halo(layers, rank)
    x5 = single_channel_chunk(x5, tile)

    # one small forward checks channels and dtypes now (not in a worker later) and
    # gives the output channels and dtype
    probe_size = tuple(b + a + 1 for b, a in zip(before, after))
    probe_shape = (1, int(x5.shape[1])) + probe_size
    try:
        probe = forward(layers, np.zeros(probe_shape, x5.dtype))
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"x of shape {x.shape} and dtype {x5.dtype} does not fit the network "
                        f"(tried on a probe of shape {probe_shape}): {exc}") from None
    if probe.shape[2:] != probe_size:
        raise ValueError(f"the network changes the spatial size {probe_size} -> {probe.shape[2:]}")

    chunks: list[tuple[int, ...]] = [x5.chunks[0], x5.chunks[1]]
    depth: dict[int, Any] = {0: 0, 1: 0}
    for axis in range(2, rank + 2):
        halo = before[axis - 2] + after[axis - 2]
        # A chunk longer than the whole halo keeps the cells that a layer's reflect
        # padding reads at the true boundary clear of the cells that the padding
        # next to a neighbour spoils.
        minimum = halo + 1
        length = int(x5.shape[axis])
        cuts = cut_axis(interior_boundaries(x5.chunks[axis]), length, first=minimum, minimum=minimum,
                        last=minimum)
        if not tile:
            check_kept(axis, rank, x5.chunks[axis], cuts, length, partial(too_short, minimum))
        if cuts and axis - 2 in wrapping:
            index = wrapping[axis - 2]
            raise cannot_tile(index, layers[index], "circular padding reads the far end of the array, so it "
                                                    f"cannot be tiled along the chunked axis "
                                                    f"{SPATIAL_NAMES[rank][axis - 2]}; make that axis one chunk "
                                                    "or use another padding_mode")
        chunks.append(sizes(cuts, length))
        depth[axis] = (before[axis - 2], after[axis - 2]) if cuts and halo else 0
    x5 = x5.rechunk(tuple(chunks))  # type: ignore[no-untyped-call]
    out_chunks = (chunks[0], (int(probe.shape[1]),), *chunks[2:])
    block = partial(network_block, layers=layers, chunks=tuple(chunks), before=before)
    out: da.Array = da.map_overlap(  # type: ignore[no-untyped-call]
        block, x5, depth=depth, boundary="none", trim=False, allow_rechunk=False, chunks=out_chunks,
        dtype=probe.dtype, meta=np.empty((0,) * (rank + 2), probe.dtype), token=OP,
    )
    return restore_batch(out, was_batched)
