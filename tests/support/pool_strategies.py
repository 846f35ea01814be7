"""Hypothesis strategies and array-layout helpers shared by the pooling tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

import ferroconv as fc
from sided_pool_reference import out_len, sides

LAYOUTS = ("C", "F", "strided", "negative", "readonly", "transposed", "byteswapped")
MAX_LEN = {1: 12, 2: 7, 3: 5}


def with_layout(base: np.ndarray, layout: str) -> np.ndarray:
    """An array equal to ``base`` whose memory layout is ``layout``."""
    if layout == "C":
        return np.ascontiguousarray(base)
    if layout == "F":
        return np.asfortranarray(base)
    if layout == "strided":
        buffer = np.zeros(base.shape[:-1] + (2 * base.shape[-1],), base.dtype)
        view = buffer[..., ::2]
    elif layout == "negative":
        view = np.empty_like(base)[::-1, ..., ::-1]
    elif layout == "transposed":
        view = np.moveaxis(np.empty(base.shape[1:] + base.shape[:1], base.dtype), -1, 0)
    elif layout == "readonly":
        view = base.copy()
        view.setflags(write=False)
        return view
    elif layout == "byteswapped":
        return base.astype(base.dtype.newbyteorder("S"))
    else:
        raise AssertionError(layout)
    view[...] = base
    return view


def values_for(rng: np.random.Generator, shape: tuple[int, ...], kind: str, dtype) -> np.ndarray:
    """Test data: ``ties`` (few distinct values), ``continuous`` or ``special``
    (continuous with NaN and infinities sprinkled in)."""
    if kind == "ties":
        data = rng.integers(-3, 4, size=shape).astype(dtype)
    else:
        data = rng.standard_normal(shape).astype(dtype)
    if kind == "special" and data.size:
        flat = data.reshape(-1)
        for value in (np.nan, -np.inf, np.inf):
            spots = rng.random(flat.size) < 0.06
            flat[spots] = value
    return data


@dataclass
class Case:
    rank: int
    x: np.ndarray  # batched reference data, C order (N == 1 when not ``batched``)
    kernel: tuple[int, ...]
    stride: Optional[tuple[int, ...]]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    ceil_mode: bool
    layout: str
    batched: bool

    @property
    def strides(self) -> tuple[int, ...]:
        return self.kernel if self.stride is None else self.stride

    def arg(self) -> np.ndarray:
        """The input as the op sees it: laid out as ``layout``, maybe unbatched."""
        data = self.x if self.batched else self.x[0]
        return with_layout(data, self.layout)

    def batch(self, out: np.ndarray) -> np.ndarray:
        """An op's result with a batch axis, whatever ``batched`` was."""
        return out if self.batched else out[np.newaxis]


@st.composite
def pool_cases(draw, dilated: bool = True, padded: bool = True, ceil: bool = True, wide: bool = False,
               values: tuple[str, ...] = ("ties", "continuous")) -> Case:
    """Max/avg pooling problems over rank, sizes, kernel, stride, padding, dilation,
    ceil_mode, dtype, layout and batching (only problems with a valid output).
    ``wide`` makes the last axis long (up to 40) and the others short, so rows
    hold many windows of the same shape."""
    rank = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    stride = draw(st.none() | st.tuples(*[st.integers(1, 3)] * rank))
    padding = tuple(draw(st.integers(0, k // 2 if padded else 0)) for k in kernel)
    dilation = tuple(draw(st.integers(1, 3)) if dilated else 1 for _ in range(rank))
    spatial = []
    for axis, (k, p, d) in enumerate(zip(kernel, padding, dilation)):
        shortest = max(1, d * (k - 1) + 1 - 2 * p)
        longest = (40 if axis == rank - 1 else 3) if wide else MAX_LEN[rank]
        spatial.append(draw(st.integers(shortest, max(shortest, longest))))
    batched = draw(st.booleans())
    n, c = draw(st.integers(1, 2)) if batched else 1, draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kind = draw(st.sampled_from(values))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = values_for(rng, (n, c) + tuple(spatial), kind, dtype)
    return Case(rank, x, kernel, stride, padding, dilation, draw(st.booleans()) if ceil else False,
                draw(st.sampled_from(LAYOUTS)), batched)


def tolerance(dtype) -> dict:
    """rtol/atol for averages (data of order 1)."""
    return {"rtol": 1e-5, "atol": 1e-6} if np.dtype(dtype) == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def op(name: str, rank: int):
    """``ferroconv.<name>`` with the rank filled in, e.g. ``op("max_pool{}d", 2)``."""
    return getattr(fc, name.format(rank))


SIDED_LAYOUTS = ("C", "F", "negative", "readonly", "strided")


@st.composite
def sided_cases(draw, ceil=True):
    """A pooling problem with per-side, symmetric or "same" padding and dilation
    (issue 20's tests, against tests/support/sided_pool_reference.py)."""
    rank = draw(st.integers(1, 3))
    max_len = {1: 10, 2: 6, 3: 4}[rank]
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    spatial = tuple(draw(st.integers(1, max_len)) for _ in range(rank))
    kind = draw(st.sampled_from(["pairs", "ints", "same", "same_lower", "valid"]))
    if kind == "pairs":
        padding = tuple((draw(st.integers(0, d * (k - 1))), draw(st.integers(0, d * (k - 1))))
                        for k, d in zip(kernel, dilation))
    elif kind == "ints":
        padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    else:
        padding = kind
    ceil_mode = ceil and draw(st.booleans())
    pads = sides(padding, spatial, kernel, stride, dilation)
    outs = [out_len(s, k, t, d, lo, hi, ceil_mode)
            for s, k, t, d, (lo, hi) in zip(spatial, kernel, stride, dilation, pads)]
    assume(all(n >= 1 for n in outs))
    # every window must read an input cell (ferroconv refuses the others)
    for s, k, t, d, (lo, hi), n in zip(spatial, kernel, stride, dilation, pads, outs):
        assume(all(any(0 <= o * t - lo + j * d < s for j in range(k)) for o in range(n)))
    batch = draw(st.integers(1, 2))
    channels = draw(st.integers(1, 2))
    return dict(rank=rank, shape=(batch, channels) + spatial, kernel=kernel, stride=stride, padding=padding,
                dilation=dilation, ceil_mode=ceil_mode, batched=draw(st.booleans()),
                dtype=draw(st.sampled_from([np.float32, np.float64])),
                layout=draw(st.sampled_from(SIDED_LAYOUTS)), seed=draw(st.integers(0, 2**16)))
