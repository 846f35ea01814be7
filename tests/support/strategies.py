"""Hypothesis strategies for ferroconv's convolution tests.

Every strategy draws a small, *valid* configuration (output size >= 1, padding
within the padding mode's limits, "same" only with stride 1, groups dividing the
channels) plus a random seed for the values and a memory layout for every input
array.  Values come from ``numpy.random.default_rng(seed)`` so a failing example
prints compactly and can be rebuilt from its repr.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

import reference as ref

DTYPES = (np.float32, np.float64)
PADDING_MODES = ref.PADDING_MODES
LAYOUTS = ("C", "F", "strided", "negative", "readonly")
# rarer layouts, exercised by dedicated tests: a field of a packed structured
# array (byte strides not a multiple of the itemsize, unaligned) and an
# unaligned buffer (offset by one byte, strides multiples of the itemsize)
ODD_LAYOUTS = ("packed_field", "unaligned")

# per rank: max spatial size, max kernel, max dilation, max stride, max padding
LIMITS = {
    1: dict(size=20, kernel=5, dilation=3, stride=3, pad=3),
    2: dict(size=9, kernel=3, dilation=2, stride=3, pad=2),
    3: dict(size=6, kernel=3, dilation=2, stride=2, pad=2),
}


def scaled(factor, **kwargs):
    """Settings with max_examples scaled from the active profile (for slow tests)."""
    n = max(5, int(settings.default.max_examples * factor))
    return settings(max_examples=n, **kwargs)


# ---------------------------------------------------------------------------
# values and memory layouts
# ---------------------------------------------------------------------------


def make_values(seed, shape, dtype):
    """Standard-normal values rounded to dtype (float64 draw, then cast)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(dtype)


def with_layout(a, layout):
    """Same values as ``a``, different memory layout."""
    a = np.asarray(a)
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":
        # every other element of a NaN-filled array twice as big on every axis:
        # reading a cell outside the view poisons the result
        big = np.full(tuple(2 * n + 1 for n in a.shape), np.nan, dtype=a.dtype)
        view = big[tuple(slice(1, 1 + 2 * n, 2) for n in a.shape)]
        view[...] = a
        return view
    if layout == "negative":
        rev = a[(slice(None, None, -1),) * a.ndim].copy()
        view = rev[(slice(None, None, -1),) * a.ndim]
        assert all(s <= 0 for s, n in zip(view.strides, view.shape) if n > 1) or a.size <= 1
        return view
    if layout == "readonly":
        c = a.copy()
        c.flags.writeable = False
        return c
    if layout == "packed_field":
        rec = np.zeros(a.shape, dtype=np.dtype([("v", a.dtype), ("tag", np.int8)], align=False))
        rec["tag"] = 0x7F
        rec["v"] = a
        view = rec["v"]
        assert a.ndim == 0 or view.strides[-1] == a.dtype.itemsize + 1
        return view
    if layout == "unaligned":
        buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
        view = np.ndarray(a.shape, a.dtype, buffer=buf.data, offset=1)
        view[...] = a
        assert not view.flags.aligned or a.size == 0
        return view
    raise ValueError(layout)


def layout_desc(a):
    flags = a.flags
    return (
        f"shape={a.shape} strides={a.strides} C={flags.c_contiguous} "
        f"F={flags.f_contiguous} writeable={flags.writeable}"
    )


def int_or_tuple(draw, values):
    """Pass an int when all entries are equal (sometimes), else a tuple."""
    values = tuple(int(v) for v in values)
    if len(set(values)) == 1 and draw(st.booleans()):
        return values[0]
    return values


# ---------------------------------------------------------------------------
# conv1d/2d/3d
# ---------------------------------------------------------------------------


@dataclass(repr=False)
class ConvCase:
    rank: int
    x: np.ndarray
    weight: np.ndarray
    bias: object  # np.ndarray or None
    stride: object
    padding: object
    dilation: object
    groups: int
    padding_mode: str
    dtype: type
    batched: bool
    # normalised geometry for the reference
    stride_t: tuple
    dilation_t: tuple
    pad_lo: tuple
    pad_hi: tuple
    seed: int = 0
    layouts: dict = field(default_factory=dict)

    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, padding_mode=self.padding_mode)

    def ref_kwargs(self):
        return dict(stride=self.stride_t, pad_lo=self.pad_lo, pad_hi=self.pad_hi,
                    dilation=self.dilation_t, groups=self.groups, padding_mode=self.padding_mode)

    @property
    def x_batched(self):
        """x as (N, C, *S) float64 for the reference."""
        x = np.asarray(self.x, dtype=np.float64)
        return x if self.batched else x[None]

    @property
    def out_spatial(self):
        return tuple(
            ref.conv_out_size(s, k, st_, lo, hi, d)
            for s, k, st_, lo, hi, d in zip(self.x.shape[-self.rank:], self.weight.shape[2:],
                                            self.stride_t, self.pad_lo, self.pad_hi,
                                            self.dilation_t)
        )

    @property
    def out_shape(self):
        lead = (self.x.shape[0],) if self.batched else ()
        return lead + (self.weight.shape[0],) + self.out_spatial

    def _repr_pretty_(self, p, cycle):  # hypothesis' printer
        p.text(repr(self))

    def __repr__(self):
        b = None if self.bias is None else self.bias.shape
        return (
            f"ConvCase(conv{self.rank}d x{self.x.shape} w{self.weight.shape} b={b} "
            f"{np.dtype(self.dtype).name} stride={self.stride!r} padding={self.padding!r} "
            f"dilation={self.dilation!r} groups={self.groups} padding_mode={self.padding_mode!r} "
            f"batched={self.batched} seed={self.seed} layouts={self.layouts} "
            f"[pad_lo={self.pad_lo} pad_hi={self.pad_hi}])"
        )


def _channels(draw, max_channels=6):
    kind = draw(st.sampled_from(["dense", "grouped", "depthwise"]))
    if kind == "dense":
        groups = 1
        c_in = draw(st.integers(1, 4))
        c_out = draw(st.integers(1, 5))
    elif kind == "grouped":
        groups = draw(st.integers(2, 3))
        c_in = groups * draw(st.integers(1, max_channels // groups))
        c_out = groups * draw(st.integers(1, max_channels // groups))
    else:  # depthwise: groups == C_in, channel multiplier 1 or 2
        c_in = draw(st.integers(1, max_channels))
        groups = c_in
        mult = draw(st.integers(1, max(1, max_channels // c_in)))
        c_out = c_in * mult
    return c_in, c_out, groups


@st.composite
def conv_cases(draw, ranks=(1, 2, 3), dtypes=DTYPES, padding_modes=PADDING_MODES,
               padding_forms=("int", "tuple", "valid", "same", "pairs"), layouts=LAYOUTS,
               bias=None, allow_unbatched=True, max_stride=None, max_dilation=None,
               groups_one=False, stride_one=False, kernel_sizes=None, min_batch=1,
               limits=None):
    rank = draw(st.sampled_from(ranks))
    lim = (limits or LIMITS)[rank]
    dtype = draw(st.sampled_from(dtypes))
    if groups_one:
        c_in, c_out, groups = draw(st.integers(1, 4)), draw(st.integers(1, 5)), 1
    else:
        c_in, c_out, groups = _channels(draw)
    if kernel_sizes is None:
        ksize = tuple(draw(st.integers(1, lim["kernel"])) for _ in range(rank))
    else:
        ksize = tuple(draw(st.sampled_from(kernel_sizes)) for _ in range(rank))
    dmax = lim["dilation"] if max_dilation is None else max_dilation
    dil = tuple(draw(st.integers(1, dmax)) for _ in range(rank))

    form = draw(st.sampled_from(padding_forms))
    smax = lim["stride"] if max_stride is None else max_stride
    if form == "same" or stride_one:
        stride = (1,) * rank
    else:
        stride = tuple(draw(st.integers(1, smax)) for _ in range(rank))
    padding_mode = draw(st.sampled_from(padding_modes))

    pmax = lim["pad"]
    if form == "int":
        p = draw(st.integers(0, pmax))
        padding, lo, hi = p, (p,) * rank, (p,) * rank
    elif form == "tuple":
        lo = tuple(draw(st.integers(0, pmax)) for _ in range(rank))
        padding, hi = lo, lo
    elif form == "valid":
        padding, lo, hi = "valid", (0,) * rank, (0,) * rank
    elif form == "same":
        padding = "same"
        lo, hi = ref.resolve_padding("same", ksize, dil)
    elif form == "pairs":
        lo = tuple(draw(st.integers(0, pmax)) for _ in range(rank))
        hi = tuple(draw(st.integers(0, pmax)) for _ in range(rank))
        padding = tuple((a, b) for a, b in zip(lo, hi))
    else:
        raise ValueError(form)

    spatial = []
    for k, d, a, b in zip(ksize, dil, lo, hi):
        smin = max(1, d * (k - 1) + 1 - a - b)
        if padding_mode == "reflect":
            smin = max(smin, a + 1, b + 1)
        elif padding_mode in ("replicate", "circular"):
            smin = max(smin, a, b)
        top = max(lim["size"], smin)
        spatial.append(draw(st.integers(smin, top)))
    spatial = tuple(spatial)

    batched = True if not allow_unbatched else draw(st.booleans())
    n = draw(st.integers(min_batch, 3)) if batched else 1
    has_bias = draw(st.booleans()) if bias is None else bias
    seed = draw(st.integers(0, 2**32 - 1))

    x = make_values(seed, (n, c_in) + spatial, dtype)
    if not batched:
        x = x[0]
    w = make_values(seed + 1, (c_out, c_in // groups) + ksize, dtype)
    b = make_values(seed + 2, (c_out,), dtype) if has_bias else None

    lay = {"x": draw(st.sampled_from(layouts)), "w": draw(st.sampled_from(layouts))}
    x = with_layout(x, lay["x"])
    w = with_layout(w, lay["w"])
    if b is not None:
        lay["b"] = draw(st.sampled_from(layouts))
        b = with_layout(b, lay["b"])

    return ConvCase(
        rank=rank, x=x, weight=w, bias=b,
        stride=int_or_tuple(draw, stride), padding=padding,
        dilation=int_or_tuple(draw, dil), groups=groups, padding_mode=padding_mode,
        dtype=dtype, batched=batched, stride_t=stride, dilation_t=dil, pad_lo=lo, pad_hi=hi,
        seed=seed, layouts=lay,
    )


# ---------------------------------------------------------------------------
# conv_transpose1d/2d/3d
# ---------------------------------------------------------------------------

# tiny sizes for the scalar-loop reference self-checks
TINY_LIMITS = {
    1: dict(size=8, kernel=3, dilation=2, stride=3, pad=2),
    2: dict(size=5, kernel=3, dilation=2, stride=2, pad=2),
    3: dict(size=4, kernel=2, dilation=2, stride=2, pad=1),
}
TINY_T_LIMITS = {
    1: dict(size=5, kernel=3, dilation=2, stride=3),
    2: dict(size=3, kernel=3, dilation=2, stride=2),
    3: dict(size=2, kernel=2, dilation=2, stride=2),
}

T_LIMITS = {
    1: dict(size=10, kernel=5, dilation=3, stride=3),
    2: dict(size=6, kernel=3, dilation=2, stride=3),
    3: dict(size=4, kernel=3, dilation=2, stride=2),
}


@dataclass(repr=False)
class TransposeCase:
    rank: int
    x: np.ndarray
    weight: np.ndarray
    bias: object
    stride: object
    padding: object
    output_padding: object
    groups: int
    dilation: object
    dtype: type
    batched: bool
    stride_t: tuple
    padding_t: tuple
    output_padding_t: tuple
    dilation_t: tuple
    seed: int = 0
    layouts: dict = field(default_factory=dict)

    def kwargs(self):
        return dict(stride=self.stride, padding=self.padding, output_padding=self.output_padding,
                    groups=self.groups, dilation=self.dilation)

    def ref_kwargs(self):
        return dict(stride=self.stride_t, padding=self.padding_t,
                    output_padding=self.output_padding_t, groups=self.groups,
                    dilation=self.dilation_t)

    @property
    def x_batched(self):
        x = np.asarray(self.x, dtype=np.float64)
        return x if self.batched else x[None]

    @property
    def out_spatial(self):
        return tuple(
            ref.conv_transpose_out_size(L, k, s, p, op, d)
            for L, k, s, p, op, d in zip(self.x.shape[-self.rank:], self.weight.shape[2:],
                                         self.stride_t, self.padding_t, self.output_padding_t,
                                         self.dilation_t)
        )

    @property
    def out_shape(self):
        lead = (self.x.shape[0],) if self.batched else ()
        return lead + (self.weight.shape[1] * self.groups,) + self.out_spatial

    def _repr_pretty_(self, p, cycle):  # hypothesis' printer
        p.text(repr(self))

    def __repr__(self):
        b = None if self.bias is None else self.bias.shape
        return (
            f"TransposeCase(conv_transpose{self.rank}d x{self.x.shape} w{self.weight.shape} "
            f"b={b} {np.dtype(self.dtype).name} stride={self.stride!r} padding={self.padding!r} "
            f"output_padding={self.output_padding!r} groups={self.groups} "
            f"dilation={self.dilation!r} batched={self.batched} seed={self.seed} "
            f"layouts={self.layouts})"
        )


@st.composite
def transpose_cases(draw, ranks=(1, 2, 3), dtypes=DTYPES, layouts=LAYOUTS, bias=None,
                    allow_unbatched=True, output_padding_below_stride=False, limits=None):
    """With output_padding_below_stride, output_padding < stride (so that the
    transposed conv is exactly the input-gradient of the matching conv)."""
    rank = draw(st.sampled_from(ranks))
    lim = (limits or T_LIMITS)[rank]
    dtype = draw(st.sampled_from(dtypes))
    c_in, c_out, groups = _channels(draw)
    ksize = tuple(draw(st.integers(1, lim["kernel"])) for _ in range(rank))
    dil = tuple(draw(st.integers(1, lim["dilation"])) for _ in range(rank))
    stride = tuple(draw(st.integers(1, lim["stride"])) for _ in range(rank))
    spatial = tuple(draw(st.integers(1, lim["size"])) for _ in range(rank))
    op = []
    pad = []
    for L, k, s, d in zip(spatial, ksize, stride, dil):
        op_max = (s if output_padding_below_stride else max(s, d)) - 1
        o = draw(st.integers(0, op_max))
        # output size (L-1)s - 2p + d(k-1) + op + 1 >= 1
        p_max = ((L - 1) * s + d * (k - 1) + o) // 2
        pad.append(draw(st.integers(0, min(p_max, 3))))
        op.append(o)
    op, pad = tuple(op), tuple(pad)

    batched = True if not allow_unbatched else draw(st.booleans())
    n = draw(st.integers(1, 3)) if batched else 1
    has_bias = draw(st.booleans()) if bias is None else bias
    seed = draw(st.integers(0, 2**32 - 1))
    x = make_values(seed, (n, c_in) + spatial, dtype)
    if not batched:
        x = x[0]
    w = make_values(seed + 1, (c_in, c_out // groups) + ksize, dtype)
    b = make_values(seed + 2, (c_out,), dtype) if has_bias else None
    lay = {"x": draw(st.sampled_from(layouts)), "w": draw(st.sampled_from(layouts))}
    x = with_layout(x, lay["x"])
    w = with_layout(w, lay["w"])
    if b is not None:
        lay["b"] = draw(st.sampled_from(layouts))
        b = with_layout(b, lay["b"])
    return TransposeCase(
        rank=rank, x=x, weight=w, bias=b, stride=int_or_tuple(draw, stride),
        padding=int_or_tuple(draw, pad), output_padding=int_or_tuple(draw, op), groups=groups,
        dilation=int_or_tuple(draw, dil), dtype=dtype, batched=batched, stride_t=stride,
        padding_t=pad, output_padding_t=op, dilation_t=dil, seed=seed, layouts=lay,
    )


# ---------------------------------------------------------------------------
# convolve (true convolution)
# ---------------------------------------------------------------------------

CONVOLVE_LIMITS = {1: (20, 8), 2: (8, 5), 3: (5, 4)}  # (max signal size, max kernel size)


@dataclass(repr=False)
class ConvolveCase:
    x: np.ndarray
    kernel: np.ndarray
    mode: str
    multichannel: bool
    dtype: type
    seed: int = 0
    layouts: dict = field(default_factory=dict)

    def _repr_pretty_(self, p, cycle):  # hypothesis' printer
        p.text(repr(self))

    def __repr__(self):
        return (
            f"ConvolveCase(x{self.x.shape} kernel{self.kernel.shape} mode={self.mode!r} "
            f"multichannel={self.multichannel} {np.dtype(self.dtype).name} seed={self.seed} "
            f"layouts={self.layouts})"
        )


@st.composite
def convolve_cases(draw, ndims=(1, 2, 3), modes=("full", "same", "valid"), dtypes=DTYPES,
                   layouts=LAYOUTS, multichannel=None):
    ndim = draw(st.sampled_from(ndims))
    smax, kmax = CONVOLVE_LIMITS[ndim]
    mode = draw(st.sampled_from(modes))
    dtype = draw(st.sampled_from(dtypes))
    multi = draw(st.booleans()) if multichannel is None else multichannel
    S = tuple(draw(st.integers(1, smax)) for _ in range(ndim))
    if mode == "valid":
        K = tuple(draw(st.integers(1, min(kmax, s))) for s in S)
    else:  # the kernel may be larger than the signal
        K = tuple(draw(st.integers(1, kmax)) for _ in range(ndim))
    seed = draw(st.integers(0, 2**32 - 1))
    if multi:
        C = draw(st.integers(1, 3))
        x = make_values(seed, (C,) + S, dtype)
        per_channel = draw(st.booleans())
        kernel = make_values(seed + 1, ((C,) if per_channel else ()) + K, dtype)
    else:
        x = make_values(seed, S, dtype)
        kernel = make_values(seed + 1, K, dtype)
    lay = {"x": draw(st.sampled_from(layouts)), "kernel": draw(st.sampled_from(layouts))}
    return ConvolveCase(with_layout(x, lay["x"]), with_layout(kernel, lay["kernel"]), mode,
                        multi, dtype, seed, lay)
