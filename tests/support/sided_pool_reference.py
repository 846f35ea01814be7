"""A plain NumPy reference for pooling with per-side and "same" padding,
dilated average pooling and Lp pooling: one window at a time, its taps listed
explicitly (independent of ferroconv's window tables and of pool_reference.py,
which knows only symmetric padding).

Definitions (PyTorch's, with ONNX's padding and dilation):
- the taps of output ``o`` along an axis are ``o * stride - lo + j * dilation``,
  ``j < kernel``; those in ``[0, S)`` are read, those in ``[-lo, S + hi)`` are
  "padded" taps (the divisor of an average that counts padding);
- the output size is ``floor_or_ceil((S + lo + hi - extent) / stride) + 1``, and
  in ceil mode one less if the last window starts at or past ``S + lo``;
- "same": ``ceil(S / stride)`` outputs, total padding
  ``max(0, (out - 1) * stride + extent - S)``, the odd cell last (or first for
  "same_lower").
"""

from __future__ import annotations

import itertools
import math

import numpy as np


def sides(padding, spatial, kernel, stride, dilation):
    """``padding`` (int per axis, pairs, or a "same" string) as (lo, hi) per axis."""
    rank = len(spatial)
    if isinstance(padding, str):
        if padding == "valid":
            return [(0, 0)] * rank
        out = []
        for s, k, st, d in zip(spatial, kernel, stride, dilation):
            extent = d * (k - 1) + 1
            total = max(0, (math.ceil(s / st) - 1) * st + extent - s)
            small, large = total // 2, total - total // 2
            out.append((large, small) if padding == "same_lower" else (small, large))
        return out
    if isinstance(padding, int):
        return [(padding, padding)] * rank
    return [tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in padding]


def out_len(s, k, st, d, lo, hi, ceil_mode):
    extent = d * (k - 1) + 1
    room = s + lo + hi - extent
    n = (-(-room // st) if ceil_mode else room // st) + 1
    if ceil_mode and (n - 1) * st >= s + lo:
        n -= 1
    return n


def taps(o, s, k, st, d, lo, hi):
    """(read taps, number of padded taps) of window ``o`` along one axis."""
    positions = [o * st - lo + j * d for j in range(k)]
    return [q for q in positions if 0 <= q < s], sum(1 for q in positions if q < s + hi)


def pool(x, kind, kernel, stride=None, padding=0, dilation=1, ceil_mode=False, count_include_pad=True,
         divisor_override=None, p=2.0):
    """``kind`` in "max", "avg", "lp" over ``x (N, C, *S)`` in float64."""
    x = np.asarray(x, dtype=np.float64)
    spatial = x.shape[2:]
    rank = len(spatial)
    as_tuple = lambda v: (v,) * rank if isinstance(v, int) else tuple(v)  # noqa: E731
    kernel = as_tuple(kernel)
    stride = kernel if stride is None else as_tuple(stride)
    dilation = as_tuple(dilation)
    pads = sides(padding, spatial, kernel, stride, dilation)
    outs = [out_len(s, k, st, d, lo, hi, ceil_mode)
            for s, k, st, d, (lo, hi) in zip(spatial, kernel, stride, dilation, pads)]
    y = np.empty(x.shape[:2] + tuple(outs))
    volume = int(np.prod(kernel))
    for o in itertools.product(*(range(n) for n in outs)):
        per_axis = [taps(o[a], spatial[a], kernel[a], stride[a], dilation[a], *pads[a]) for a in range(rank)]
        cells = [t[0] for t in per_axis]
        window = x[(slice(None), slice(None)) + np.ix_(*cells)].reshape(x.shape[:2] + (-1,))
        padded = int(np.prod([t[1] for t in per_axis]))
        if kind == "max":
            y[(...,) + o] = window.max(axis=-1)
        elif kind == "avg":
            divisor = divisor_override or (padded if count_include_pad else window.shape[-1])
            y[(...,) + o] = window.sum(axis=-1) / divisor
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                total = np.power(window, p).sum(axis=-1) * (volume / padded)
                y[(...,) + o] = np.power(total, 1.0 / p)
    return y
