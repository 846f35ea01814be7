"""ONNX's backend node tests for Conv, ConvTranspose, MaxUnpool, GlobalAveragePool
and GlobalMaxPool (onnx/backend/test/case/node/{conv,convtranspose,maxunpool,
globalaveragepool,globalmaxpool}.py), re-expressed as ferroconv calls and checked
against NumPy loop references written here from ONNX's operator specification
(docs/Operators.md); ONNX's expected arrays and reference code are not used.
(MaxPool, AveragePool and LpPool: tests/test_pool_sided_lp.py. ONNX has no node
test for GlobalLpPool: a case with its semantics is here.)

Each case gives the inputs (as ONNX's case builds them: ``arange`` grids, ones,
or the few literal inputs it lists) and the ONNX attributes; ``*_call`` maps the
attributes onto ferroconv's arguments the way a user porting the model would, and
``onnx_*`` computes the operator from its definition. Cases marked "spec" are not
in ONNX's suite: they cover the attribute values the suite leaves out (auto_pad
SAME_UPPER/VALID, dilations and groups for Conv; SAME_LOWER, VALID and an
``output_shape`` that removes an odd number of cells for ConvTranspose).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional

import numpy as np
import pytest

import ferroconv as fc
from test_pool_sided_lp import onnx_padding

# ------------------------------------------------------------- references


def onnx_auto_pads(auto_pad, in_sizes, kernel, strides, dilations):
    """Conv's (begin, end) pads per axis for an auto_pad (ONNX: output =
    ceil(input / stride) for SAME_*, the odd cell at the end for SAME_UPPER)."""
    pads = []
    for n, k, s, d in zip(in_sizes, kernel, strides, dilations):
        if auto_pad == "VALID":
            pads.append((0, 0))
            continue
        out = -(-n // s)
        total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)
        small, large = total // 2, total - total // 2
        pads.append((small, large) if auto_pad == "SAME_UPPER" else (large, small))
    return pads


def onnx_conv(x, w, b, pads, strides, dilations, group):
    """ONNX Conv: y[n, m, o] = b[m] + sum_{c, k} x_padded[n, g Cg + c, o s + k d]
    w[m, c, k], with g the group of output channel m. ``pads`` are (begin, end)
    per axis."""
    n_batch, c_in = x.shape[:2]
    m_out, c_group = w.shape[:2]
    kernel = w.shape[2:]
    padded = np.pad(x.astype(np.float64), [(0, 0), (0, 0), *pads])
    out_sizes = [(p - (k - 1) * d - 1) // s + 1 for p, k, s, d in zip(padded.shape[2:], kernel, strides, dilations)]
    y = np.zeros((n_batch, m_out, *out_sizes))
    m_group = m_out // group
    for n, m in itertools.product(range(n_batch), range(m_out)):
        g = m // m_group
        for o in itertools.product(*map(range, out_sizes)):
            total = 0.0 if b is None else float(b[m])
            for c in range(c_group):
                for k in itertools.product(*map(range, kernel)):
                    at = tuple(oi * s + ki * d for oi, ki, s, d in zip(o, k, strides, dilations))
                    total += padded[(n, g * c_group + c, *at)] * w[(m, c, *k)]
            y[(n, m, *o)] = total
    return y


def onnx_transpose_pads(in_sizes, kernel, strides, dilations, output_padding, pads, auto_pad, output_shape):
    """ConvTranspose's (begin, end) pads per axis by the spec: explicit ``pads``;
    or from ``total_padding = stride (in - 1) + output_padding + (k - 1) d + 1 -
    output_shape``, split begin = total - total // 2 (the odd cell first) unless
    auto_pad is SAME_UPPER (then last), with output_shape = in * stride for
    SAME_*; VALID: none. A negative pad adds that many (zero) cells."""
    if output_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [n * s for n, s in zip(in_sizes, strides)]
    if output_shape is None:
        return [(0, 0)] * len(kernel) if auto_pad == "VALID" or pads is None else onnx_padding_pairs(pads)
    result = []
    for n, k, s, d, op, o in zip(in_sizes, kernel, strides, dilations, output_padding, output_shape):
        total = s * (n - 1) + op + (k - 1) * d + 1 - o
        if auto_pad == "SAME_UPPER":
            result.append((total // 2, total - total // 2))
        else:
            result.append((total - total // 2, total // 2))
    return result


def onnx_padding_pairs(pads):
    return list(onnx_padding(pads, len(pads) // 2))


def onnx_conv_transpose(x, w, b, strides, dilations, group, output_padding, pads):
    """ONNX ConvTranspose: every input cell i scatters x[n, c, i] w[c, m, k] to
    full[n, g Mg + m, i s + k d] over a full output of stride (in - 1) +
    output_padding + (k - 1) d + 1 cells per axis, which ``pads`` then crop
    (begin, end; negative: zeros added)."""
    n_batch, c_in = x.shape[:2]
    m_group = w.shape[1]
    kernel = w.shape[2:]
    c_group = c_in // group
    full_sizes = [s * (n - 1) + op + (k - 1) * d + 1
                  for n, k, s, d, op in zip(x.shape[2:], kernel, strides, dilations, output_padding)]
    lead = [max(-lo, 0) for lo, _ in pads]
    trail = [max(-hi, 0) for _, hi in pads]
    full = np.zeros((n_batch, m_group * group, *[f + a + z for f, a, z in zip(full_sizes, lead, trail)]))
    for n, c in itertools.product(range(n_batch), range(c_in)):
        g = c // c_group
        for i in itertools.product(*map(range, x.shape[2:])):
            for m in range(m_group):
                for k in itertools.product(*map(range, kernel)):
                    at = tuple(a + ii * s + ki * d for a, ii, ki, s, d in zip(lead, i, k, strides, dilations))
                    full[(n, g * m_group + m, *at)] += x[(n, c, *i)] * w[(c, m, *k)]
    crop = tuple(slice(max(lo, 0), f + a + z - max(hi, 0))
                 for (lo, hi), f, a, z in zip(pads, full_sizes, lead, trail))
    y = full[(slice(None), slice(None), *crop)]
    return y if b is None else y + np.asarray(b).reshape(-1, *[1] * len(kernel))


# ------------------------------------------------------------------- cases


@dataclass
class Case:
    """One node test: its name, inputs, ONNX attributes (None: ONNX's default)."""

    name: str
    x: np.ndarray
    w: np.ndarray
    b: Optional[np.ndarray] = None
    strides: Optional[tuple] = None
    pads: Optional[list] = None
    auto_pad: Optional[str] = None
    dilations: Optional[tuple] = None
    group: int = 1
    output_padding: Optional[tuple] = None
    output_shape: Optional[tuple] = None

    @property
    def rank(self):
        return self.w.ndim - 2

    def attr(self, value, default):
        return tuple(value) if value is not None else (default,) * self.rank

    def arrays(self, dtype):
        """x, w and b (or None) in ``dtype``."""
        return self.x.astype(dtype), self.w.astype(dtype), None if self.b is None else self.b.astype(dtype)


def grid(*shape):
    """ONNX's cases' inputs: 0, 1, 2, ... over the shape."""
    return np.arange(np.prod(shape), dtype=np.float32).reshape(shape)


def ones(*shape):
    return np.ones(shape, np.float32)


def rand(seed, *shape):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


CONV_CASES = [
    # onnx/backend/test/case/node/conv.py
    Case("basic_conv_with_padding", grid(1, 1, 5, 5), ones(1, 1, 3, 3), pads=[1, 1, 1, 1]),
    Case("basic_conv_without_padding", grid(1, 1, 5, 5), ones(1, 1, 3, 3), pads=[0, 0, 0, 0]),
    Case("conv_with_strides_padding", grid(1, 1, 7, 5), ones(1, 1, 3, 3), strides=(2, 2), pads=[1, 1, 1, 1]),
    Case("conv_with_strides_no_padding", grid(1, 1, 7, 5), ones(1, 1, 3, 3), strides=(2, 2), pads=[0, 0, 0, 0]),
    Case("conv_with_strides_and_asymmetric_padding", grid(1, 1, 7, 5), ones(1, 1, 3, 3), strides=(2, 2),
         pads=[1, 0, 1, 0]),
    Case("conv_with_autopad_same", grid(1, 1, 5, 5), ones(1, 1, 3, 3), strides=(2, 2), auto_pad="SAME_LOWER"),
    # spec: the attribute values the suite leaves out
    Case("spec_same_upper_odd_total", rand(1, 2, 3, 6, 7), rand(2, 4, 3, 3, 2), rand(3, 4), strides=(2, 3),
         auto_pad="SAME_UPPER"),
    Case("spec_same_lower_odd_total", rand(4, 2, 3, 6, 7), rand(5, 4, 3, 3, 2), strides=(2, 1),
         auto_pad="SAME_LOWER"),
    Case("spec_valid", rand(6, 1, 2, 7, 6), rand(7, 3, 2, 3, 3), strides=(2, 2), auto_pad="VALID"),
    Case("spec_dilations_group", rand(8, 2, 4, 8, 7), rand(9, 6, 2, 3, 2), rand(10, 6), strides=(1, 2),
         pads=[2, 0, 1, 3], dilations=(2, 3), group=2),
    Case("spec_1d_same_upper", rand(11, 1, 3, 11), rand(12, 2, 3, 4), strides=(3,), auto_pad="SAME_UPPER",
         dilations=(2,)),
    Case("spec_3d_pads_group", rand(13, 1, 4, 4, 5, 3), rand(14, 2, 2, 2, 3, 2), strides=(1, 2, 1),
         pads=[1, 0, 1, 0, 2, 1], group=2),
]


def conv_call(case, x, w, b):
    """ferroconv's conv for the case's ONNX attributes. ferroconv's conv*d takes
    per-side (lo, hi) pairs but no auto_pad string for a stride above 1 (and no
    'same_lower' at all; see test_conv_auto_pad_strings_with_a_stride below):
    the auto_pad becomes the pairs ONNX defines."""
    strides, dilations = case.attr(case.strides, 1), case.attr(case.dilations, 1)
    if case.auto_pad is not None:
        padding = tuple(onnx_auto_pads(case.auto_pad, x.shape[2:], w.shape[2:], strides, dilations))
    else:
        padding = onnx_padding(case.pads, case.rank)
    return getattr(fc, f"conv{case.rank}d")(x, w, b, strides, padding, dilations, case.group)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=[c.name for c in CONV_CASES])
def test_onnx_conv_cases_are_expressible_and_agree(case, dtype):
    x, w, b = case.arrays(dtype)
    strides, dilations = case.attr(case.strides, 1), case.attr(case.dilations, 1)
    pads = (onnx_auto_pads(case.auto_pad, x.shape[2:], w.shape[2:], strides, dilations) if case.auto_pad
            else onnx_padding_pairs(case.pads or [0] * 2 * case.rank))
    expected = onnx_conv(x, w, b, pads, strides, dilations, case.group)
    got = conv_call(case, x, w, b)
    assert got.dtype == dtype
    assert_agrees(got, expected, dtype)
    if case.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        assert got.shape[2:] == tuple(-(-n // s) for n, s in zip(x.shape[2:], strides))


def test_onnx_auto_pad_split_by_hand():
    # (the Conv cases' mapping and reference share onnx_auto_pads: its split is
    # pinned here) 6 cells, kernel 3, stride 2: 3 outputs need 1 padding cell,
    # at the end for SAME_UPPER, at the start for SAME_LOWER
    assert onnx_auto_pads("SAME_UPPER", (6,), (3,), (2,), (1,)) == [(0, 1)]
    assert onnx_auto_pads("SAME_LOWER", (6,), (3,), (2,), (1,)) == [(1, 0)]
    assert onnx_auto_pads("SAME_UPPER", (7, 5), (2, 3), (3, 1), (2, 2)) == [(1, 1), (2, 2)]
    assert onnx_auto_pads("VALID", (7,), (3,), (2,), (1,)) == [(0, 0)]
    # ferroconv's pooling has the strings: its "same" / "same_lower" agree
    x = rand(41, 1, 1, 6)
    for auto_pad, padding in (("SAME_UPPER", "same"), ("SAME_LOWER", "same_lower")):
        pairs = tuple(onnx_auto_pads(auto_pad, (6,), (3,), (2,), (1,)))
        np.testing.assert_array_equal(fc.max_pool1d(x, 3, 2, padding), fc.max_pool1d(x, 3, 2, pairs))


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_auto_pad_strings_with_a_stride(auto_pad):
    """conv*d's "same" is ONNX's SAME_UPPER at any stride (PyTorch refuses a
    stride there) and "same_lower" its SAME_LOWER; the backward takes them too."""
    x, w = rand(15, 1, 2, 6, 7), rand(16, 3, 2, 3, 2)
    pads = onnx_auto_pads(auto_pad, (6, 7), (3, 2), (2, 3), (1, 1))
    expected = onnx_conv(x, w, None, pads, (2, 3), (1, 1), 1)
    mode = {"SAME_UPPER": "same", "SAME_LOWER": "same_lower"}[auto_pad]
    got = fc.conv2d(x, w, None, (2, 3), mode)
    assert_agrees(got, expected, np.float32)
    pairs = tuple(pads)
    g = rand(17, *got.shape)
    for auto, explicit in zip(fc.conv2d_backward(g, x, w, (2, 3), mode),
                              fc.conv2d_backward(g, x, w, (2, 3), pairs)):
        np.testing.assert_array_equal(auto, explicit)


# ----------------------------------------------------------- ConvTranspose

DILATION_X = np.array([[[[3.0, 8.0, 1.0], [9.0, 5.0, 7.0], [3.0, 2.0, 6.0]]]], np.float32)  # ONNX's inputs
DILATION_W = np.array([[[[7.0, 2.0], [1.0, 9.0]]]], np.float32)
GROUP_IMAGES = np.concatenate([grid(1, 2, 3, 3), np.concatenate([grid(1, 1, 3, 3) + 18, grid(1, 1, 3, 3) + 9], 1),
                               grid(1, 2, 3, 3)])

TRANSPOSE_CASES = [
    # onnx/backend/test/case/node/convtranspose.py
    Case("convtranspose", grid(1, 1, 3, 3), ones(1, 2, 3, 3)),
    Case("convtranspose_1d", grid(1, 1, 3), ones(1, 2, 3)),
    Case("convtranspose_3d", grid(1, 1, 3, 4, 5), ones(1, 2, 3, 3, 3)),
    Case("convtranspose_output_shape", grid(1, 1, 3, 3), ones(1, 2, 3, 3), strides=(3, 2), output_shape=(10, 8)),
    Case("convtranspose_pad", grid(1, 1, 3, 3), ones(1, 2, 3, 3), strides=(3, 2), output_padding=(1, 1)),
    Case("convtranspose_kernel_shape", grid(1, 1, 3, 3), ones(1, 2, 3, 3), strides=(3, 2), output_shape=(10, 8),
         output_padding=(1, 1)),
    Case("convtranspose_pads", grid(1, 1, 3, 3), ones(1, 2, 3, 3), strides=(3, 2), pads=[1, 2, 1, 2]),
    Case("convtranspose_dilations", DILATION_X, DILATION_W, dilations=(2, 2)),
    Case("convtranspose_autopad_same", grid(1, 1, 3, 3), ones(1, 2, 3, 3), strides=(2, 2), auto_pad="SAME_UPPER"),
    Case("convtranspose_group_2", grid(1, 2, 3, 3), ones(2, 1, 3, 3), group=2),
    Case("convtranspose_group_2_image_3", GROUP_IMAGES, ones(2, 1, 3, 3), group=2),
    # spec: the attribute values the suite leaves out
    Case("spec_same_lower_odd_total", rand(17, 1, 2, 3, 4), rand(18, 2, 3, 4, 3), rand(19, 3), strides=(3, 2),
         auto_pad="SAME_LOWER"),
    Case("spec_same_upper_odd_total", rand(20, 2, 2, 4, 3), rand(21, 2, 1, 3, 2), strides=(2, 3),
         auto_pad="SAME_UPPER", dilations=(1, 2)),
    Case("spec_valid", rand(22, 1, 2, 3, 3), rand(23, 2, 2, 2, 3), strides=(2, 2), auto_pad="VALID"),
    # output_shape below the full size by an odd number: NOTSET removes the odd
    # cell at the start, SAME_UPPER at the end
    Case("spec_output_shape_odd_total", rand(24, 1, 2, 4, 3), rand(25, 2, 2, 3, 4), strides=(2, 2),
         output_shape=(8, 6)),
    Case("spec_output_shape_odd_total_same_upper", rand(26, 1, 2, 4, 3), rand(27, 2, 2, 3, 4), strides=(2, 2),
         output_shape=(8, 6), auto_pad="SAME_UPPER"),
    Case("spec_pads_per_side_group_dilation", rand(28, 1, 4, 3, 4), rand(29, 4, 3, 3, 2), rand(30, 6),
         strides=(2, 3), pads=[0, 2, 3, 1], dilations=(2, 1), group=2, output_padding=(1, 0)),
    Case("spec_3d_output_shape", rand(31, 1, 1, 2, 3, 2), rand(32, 1, 2, 2, 2, 3), strides=(2, 1, 2),
         output_shape=(5, 4, 5)),
]


def transpose_call(case, x, w, b):
    """ferroconv's conv_transpose for the case's ONNX attributes: auto_pad as
    'same' / 'same_lower' / 'valid', pads as (lo, hi) pairs, and output_shape as
    output_size when ONNX's pads for it are zero at the start and at most zero at
    the end (the extra cells are ferroconv's output_padding then); otherwise as
    the per-side pairs of ONNX's rule (a negative end pad becomes output_padding)."""
    strides, dilations = case.attr(case.strides, 1), case.attr(case.dilations, 1)
    output_padding = case.attr(case.output_padding, 0)
    kwargs = {}
    padding = onnx_padding(case.pads, case.rank)
    if case.output_shape is not None:
        pads = onnx_transpose_pads(x.shape[2:], w.shape[2:], strides, dilations, output_padding, None,
                                   case.auto_pad, case.output_shape)
        if case.output_padding is None and all(lo == 0 and hi <= 0 for lo, hi in pads):
            kwargs["output_size"] = case.output_shape
        else:
            assert all(lo >= 0 for lo, _ in pads), "ONNX's pads add cells at the start: no ferroconv argument does"
            padding = tuple((lo, max(hi, 0)) for lo, hi in pads)
            output_padding = tuple(op + max(-hi, 0) for op, (_, hi) in zip(output_padding, pads))
    elif case.auto_pad is not None:
        padding = onnx_padding(case.auto_pad, case.rank)
    return getattr(fc, f"conv_transpose{case.rank}d")(x, w, b, strides, padding, output_padding, case.group,
                                                      dilations, **kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=[c.name for c in TRANSPOSE_CASES])
def test_onnx_conv_transpose_cases_are_expressible_and_agree(case, dtype):
    x, w, b = case.arrays(dtype)
    strides, dilations = case.attr(case.strides, 1), case.attr(case.dilations, 1)
    output_padding = case.attr(case.output_padding, 0)
    pads = onnx_transpose_pads(x.shape[2:], w.shape[2:], strides, dilations, output_padding, case.pads,
                               case.auto_pad, case.output_shape)
    expected = onnx_conv_transpose(x, w, b, strides, dilations, case.group, output_padding, pads)
    got = transpose_call(case, x, w, b)
    assert got.dtype == dtype
    assert_agrees(got, expected, dtype)
    if case.output_shape is not None:
        assert got.shape[2:] == tuple(case.output_shape)
    if case.auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        assert got.shape[2:] == tuple(n * s for n, s in zip(x.shape[2:], strides))


def test_onnx_output_shape_case_is_its_output_padding_case():
    # ONNX's suite gives convtranspose_output_shape, _pad and _kernel_shape one
    # expected output: the same three calls here agree with each other
    by_name = {c.name: c for c in TRANSPOSE_CASES}
    results = [transpose_call(by_name[n], by_name[n].x, by_name[n].w, None)
               for n in ("convtranspose_output_shape", "convtranspose_pad", "convtranspose_kernel_shape")]
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    assert results[0].shape == (1, 2, 10, 8) and not results[0][:, :, -1].any() and not results[0][..., -1].any()


def test_onnx_output_shape_odd_total_drops_the_first_cell_unless_same_upper():
    # the spec's split, by hand on one axis: full output 9 cells, output_shape 8
    x, w = rand(33, 1, 1, 4), rand(34, 1, 1, 3)
    full = fc.conv_transpose1d(x, w, None, 2)
    assert full.shape[-1] == 9
    np.testing.assert_array_equal(fc.conv_transpose1d(x, w, None, 2, ((1, 0),)), full[..., 1:])
    np.testing.assert_array_equal(fc.conv_transpose1d(x, w, None, 2, ((0, 1),)), full[..., :-1])
    assert onnx_transpose_pads((4,), (3,), (2,), (1,), (0,), None, None, (8,)) == [(1, 0)]
    assert onnx_transpose_pads((4,), (3,), (2,), (1,), (0,), None, "SAME_UPPER", (8,)) == [(0, 1)]


# ----------------------------------------------------------------- MaxUnpool


def onnx_max_unpool(x, indices, output_shape):
    """ONNX MaxUnpool: zeros of ``output_shape`` (the full N, C, ... shape) with
    x's values at ``indices``, which index the flattened whole output tensor."""
    y = np.zeros(int(np.prod(output_shape)), np.float64)
    for value, index in zip(x.ravel(), indices.ravel()):
        y[index] = value
    return y.reshape(output_shape)


def per_plane(indices, output_shape):
    """ONNX's whole-tensor flat indices as ferroconv's (and PyTorch's) indices
    within each (n, c) plane."""
    plane = int(np.prod(output_shape[2:]))
    n, c = np.indices(indices.shape[:2])
    offset = (n * indices.shape[1] + c) * plane
    return indices - offset.reshape(offset.shape + (1,) * (indices.ndim - 2))


UNPOOL_INDICES = np.array([[[[5, 7], [13, 15]]]], np.int64)  # ONNX's inputs
UNPOOL_CASES = [
    # (name, values, indices, kernel, strides, output_shape or None)
    ("maxunpool_export_without_output_shape", np.array([[[[1, 2], [3, 4]]]], np.float32), UNPOOL_INDICES,
     (2, 2), (2, 2), None),
    ("maxunpool_export_with_output_shape", np.array([[[[5, 6], [7, 8]]]], np.float32), UNPOOL_INDICES,
     (2, 2), (2, 2), (1, 1, 5, 5)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", UNPOOL_CASES, ids=[c[0] for c in UNPOOL_CASES])
def test_onnx_max_unpool_cases_are_expressible_and_agree(case, dtype):
    name, values, indices, kernel, strides, output_shape = case
    values = values.astype(dtype)
    # ONNX's default output: (in - 1) stride + kernel per axis (no pads here)
    shape = output_shape or values.shape[:2] + tuple((n - 1) * s + k for n, s, k in
                                                     zip(values.shape[2:], strides, kernel))
    expected = onnx_max_unpool(values, indices, shape)
    got = fc.max_unpool2d(values, per_plane(indices, shape), kernel, strides, output_size=output_shape)
    assert got.dtype == dtype
    assert_agrees(got, expected, dtype)


def test_onnx_unpool_indices_of_several_planes_are_converted_per_plane():
    # ONNX indexes the whole tensor: with 2 samples x 3 channels the conversion matters
    x = rand(35, 2, 3, 4, 6)
    values, plane_indices = fc.max_pool2d(x, 2, return_indices=True)
    flat = plane_indices + (np.arange(6).reshape(2, 3, 1, 1) * 24)
    np.testing.assert_array_equal(per_plane(flat, x.shape), plane_indices)
    np.testing.assert_array_equal(fc.max_unpool2d(values, plane_indices, 2), onnx_max_unpool(values, flat, x.shape))


# ------------------------------------------------------------ global pools

GLOBAL_CASES = [
    # onnx/backend/test/case/node/global{average,max}pool.py
    ("globalaveragepool", "avg", rand(36, 1, 3, 5, 5)),
    ("globalaveragepool_precomputed", "avg", grid(1, 1, 3, 3) + 1),
    ("globalmaxpool", "max", rand(37, 1, 3, 5, 5)),
    ("globalmaxpool_precomputed", "max", grid(1, 1, 3, 3) + 1),
    # spec (ONNX has no GlobalLpPool node test): p = 2 (the default) and 3, on 1-D to 3-D
    ("spec_globallppool_p2", ("lp", 2), rand(38, 2, 3, 4, 5)),
    ("spec_globallppool_p3_1d", ("lp", 3), rand(39, 2, 2, 7)),
    ("spec_globallppool_p2_3d", ("lp", 2), rand(40, 1, 2, 3, 2, 4)),
]


def onnx_global(x, kind):
    """Mean, max or (sum |x|^p)^(1/p) of each (n, c) plane, keeping unit axes."""
    out = np.empty(x.shape[:2] + (1,) * (x.ndim - 2))
    for n, c in itertools.product(*map(range, x.shape[:2])):
        plane = [float(v) for v in x[n, c].ravel()]
        if kind == "avg":
            out[n, c] = sum(plane) / len(plane)
        elif kind == "max":
            out[n, c] = max(plane)
        else:
            p = kind[1]
            out[n, c] = sum(abs(v) ** p for v in plane) ** (1 / p)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", GLOBAL_CASES, ids=[c[0] for c in GLOBAL_CASES])
def test_onnx_global_pool_cases_are_expressible_and_agree(case, dtype):
    name, kind, x = case
    x = x.astype(dtype)
    if kind == "avg":
        got = fc.global_avg_pool(x)
    elif kind == "max":
        got = fc.global_max_pool(x)
    else:
        # ONNX's GlobalLpPool takes |x|^p (ferroconv keeps PyTorch's sign for odd p)
        got = fc.global_lp_pool(np.abs(x), kind[1])
    assert got.dtype == dtype
    assert_agrees(got, onnx_global(x, kind), dtype)


def assert_agrees(got, expected, dtype):
    assert got.shape == expected.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol * max(1.0, float(np.abs(expected).max())))
