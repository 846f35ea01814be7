"""conv1d/2d/3d and their backward agree with the NumPy reference.

Every configuration hypothesis draws (ranks, groups incl. depthwise, stride,
dilation, every padding form and padding mode, bias or not, f32/f64, every
memory layout, unbatched input) is checked for values, result dtype, shape,
C-contiguity, and that no input is modified.  A second set of fixed, larger
cases exercises the fast paths (3x3 stride 1, 1x1, depthwise, grouped, long 1D,
3D) that small hypothesis examples may stay below the work threshold of.
"""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc
import reference as ref
from checks import assert_unchanged, check_result, maxabs, snapshot
from strategies import LAYOUTS, ODD_LAYOUTS, conv_cases, make_values, scaled, with_layout

NEEDS = list(itertools.product([True, False], repeat=3))


def conv_fn(rank):
    return getattr(fc, f"conv{rank}d")


def conv_backward_fn(rank):
    return getattr(fc, f"conv{rank}d_backward")


def expected_forward(case):
    y = ref.conv_nd(case.x_batched, case.weight, case.bias, **case.ref_kwargs())
    return y if case.batched else y[0]


def forward_tolerance_terms(case):
    cig = case.weight.shape[1]
    k = math.prod(case.weight.shape[2:])
    term_max = maxabs(case.x) * maxabs(case.weight) + maxabs(case.bias)
    return cig * k + 1, term_max


def check_forward(case):
    before = snapshot(case.x, case.weight, case.bias)
    out = conv_fn(case.rank)(case.x, case.weight, case.bias, **case.kwargs())
    check_result(out, case.dtype, case.out_shape, (case.x, case.weight, case.bias))
    n_terms, term_max = forward_tolerance_terms(case)
    ref.assert_matches(out, expected_forward(case), case.dtype, n_terms, term_max, repr(case))
    assert_unchanged(before, (case.x, case.weight, case.bias))


def check_backward(case, grad_out, needs=(True, True, True), pass_needs=True):
    before = snapshot(grad_out, case.x, case.weight)
    kwargs = case.kwargs()
    if pass_needs:
        kwargs["needs"] = needs
    grads = conv_backward_fn(case.rank)(grad_out, case.x, case.weight, **kwargs)
    assert len(grads) == 3
    gx, gw, gb = grads
    g = np.asarray(grad_out, np.float64)
    g_b = g if case.batched else g[None]
    rgx, rgw, rgb = ref.conv_nd_backward(g_b, case.x_batched, case.weight, **case.ref_kwargs())
    if not case.batched:
        rgx = rgx[0]
    n = case.x_batched.shape[0]
    out_cells = n * math.prod(case.out_spatial)
    cog = case.weight.shape[0] // case.groups
    fold = 1
    if case.padding_mode != "zeros":  # a cell also collects the padded cells copied from it
        fold = math.prod(1 + lo + hi for lo, hi in zip(case.pad_lo, case.pad_hi))
    x_terms = cog * math.prod(case.weight.shape[2:]) * fold
    inputs = (grad_out, case.x, case.weight)
    if needs[0]:
        check_result(gx, case.dtype, case.x.shape, inputs)
        ref.assert_matches(gx, rgx, case.dtype, x_terms, maxabs(g) * maxabs(case.weight),
                           f"grad_x {case!r}")
    else:
        assert gx is None
    if needs[1]:
        check_result(gw, case.dtype, case.weight.shape, inputs)
        ref.assert_matches(gw, rgw, case.dtype, out_cells, maxabs(g) * maxabs(case.x),
                           f"grad_weight {case!r}")
    else:
        assert gw is None
    if needs[2]:
        check_result(gb, case.dtype, (case.weight.shape[0],), inputs)
        ref.assert_matches(gb, rgb, case.dtype, out_cells, maxabs(g), f"grad_bias {case!r}")
    else:
        assert gb is None
    assert_unchanged(before, (grad_out, case.x, case.weight))


# ---------------------------------------------------------------------------
# hypothesis: every configuration
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 2, 3])
@given(data=st.data())
def test_conv_forward_matches_reference(rank, data):
    check_forward(data.draw(conv_cases(ranks=(rank,)), label="case"))


@pytest.mark.parametrize("rank", [1, 2, 3])
@given(data=st.data())
def test_conv_backward_matches_reference(rank, data):
    case = data.draw(conv_cases(ranks=(rank,), bias=False), label="case")
    needs = data.draw(st.sampled_from(NEEDS), label="needs")
    seed = data.draw(st.integers(0, 2**32 - 1), label="grad_seed")
    layout = data.draw(st.sampled_from(LAYOUTS), label="grad_out layout")
    grad_out = with_layout(make_values(seed, case.out_shape, case.dtype), layout)
    check_backward(case, grad_out, needs)


@scaled(0.3)
@given(conv_cases(bias=False), st.integers(0, 2**32 - 1))
def test_conv_backward_default_needs_returns_all_three(case, seed):
    grad_out = make_values(seed, case.out_shape, case.dtype)
    check_backward(case, grad_out, pass_needs=False)


@scaled(0.3)
@given(conv_cases(padding_modes=("reflect", "replicate", "circular"), padding_forms=("pairs",)))
def test_conv_forward_nonzero_padding_modes_asymmetric_pads(case):
    check_forward(case)


def test_functional_module_exports_the_same_ops():
    for name in ["conv1d", "conv2d", "conv3d", "conv1d_backward", "conv2d_backward",
                 "conv3d_backward", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                 "conv_transpose1d_backward", "conv_transpose2d_backward",
                 "conv_transpose3d_backward", "convolve", "conv_output_shape",
                 "conv_transpose_output_shape", "same_padding", "receptive_field",
                 "set_num_threads", "get_num_threads"]:
        assert getattr(fc, name) is getattr(fc.functional, name), name
    assert isinstance(fc.__version__, str) and fc.__version__


# ---------------------------------------------------------------------------
# fixed, larger cases: fast paths and thresholds
# ---------------------------------------------------------------------------

# (rank, x shape, weight shape, kwargs)
BIG_CASES = {
    "3x3_s1_p1": (2, (2, 8, 23, 19), (16, 8, 3, 3), dict(padding=1)),
    "3x3_s1_same_reflect": (2, (2, 5, 17, 20), (7, 5, 3, 3), dict(padding="same", padding_mode="reflect")),
    "3x3_s1_valid_32ch": (2, (4, 32, 14, 14), (32, 32, 3, 3), dict()),
    "1x1": (2, (2, 16, 17, 15), (24, 16, 1, 1), dict()),
    "1x1_stride2": (2, (2, 16, 17, 15), (24, 16, 1, 1), dict(stride=2)),
    "depthwise_3x3": (2, (2, 12, 21, 18), (12, 1, 3, 3), dict(padding=1, groups=12)),
    "depthwise_mult2_s2": (2, (2, 6, 21, 18), (12, 1, 3, 3), dict(padding=1, groups=6, stride=2)),
    # depthwise row kernels: long rows (blocks of 16, moved-back last block), dilation,
    # a stride along H only, a channel multiplier of 2 in 3D
    "depthwise_dilated_wide": (2, (2, 5, 13, 45), (5, 1, 5, 5), dict(padding=3, dilation=2, groups=5)),
    "depthwise_stride_h2": (2, (2, 4, 17, 33), (4, 1, 3, 3), dict(stride=(2, 1), padding=1, groups=4)),
    "depthwise_mult2_3d": (3, (1, 3, 5, 7, 20), (6, 1, 3, 3, 3), dict(padding=1, groups=3)),
    # row kernels over several input channels: one or two output channels, and the
    # input gradient of a LeNet first layer (its adjoint has six input channels)
    "single_output_wide": (2, (2, 5, 9, 40), (1, 5, 3, 3), dict(padding=1)),
    "two_outputs_dilated": (2, (1, 3, 8, 37), (2, 3, 3, 5), dict(padding=2, dilation=(1, 2))),
    "lenet_first_layer": (2, (3, 1, 28, 28), (6, 1, 5, 5), dict()),
    "grouped_3x3": (2, (2, 12, 16, 16), (12, 4, 3, 3), dict(padding=1, groups=3)),
    "5x5_s2_pairs": (2, (2, 6, 31, 29), (10, 6, 5, 5), dict(stride=2, padding=((1, 2), (2, 0)))),
    "dilated_circular": (2, (2, 4, 25, 25), (8, 4, 3, 3), dict(padding=2, dilation=2, padding_mode="circular")),
    "7x7_s2_p3": (2, (1, 3, 40, 36), (16, 3, 7, 7), dict(stride=2, padding=3)),
    # long stride-2 rows: the vector gather's blocks of 16/8/4 and its tails
    "3x3_s2_wide_rows": (2, (1, 4, 9, 131), (8, 4, 3, 3), dict(stride=2, padding=1)),
    "1d_long": (1, (4, 16, 300), (32, 16, 5), dict(stride=2, padding=2)),
    # strided layers with >= 16 input channels per group: the sub-pixel input gradient
    # (asymmetric padding, a dilated kernel whose taps share a phase, groups)
    "3x3_s2_16ch_groups": (2, (2, 32, 15, 18), (12, 16, 3, 3), dict(stride=2, padding=((1, 0), (2, 1)), groups=2)),
    "4x3_s3_dilated_16ch": (2, (1, 16, 20, 17), (8, 16, 4, 3), dict(stride=(3, 2), dilation=(2, 1), padding=1)),
    "1d_depthwise_replicate": (1, (3, 10, 257), (20, 1, 7), dict(groups=10, padding="same", padding_mode="replicate")),
    "3d_3x3x3": (3, (1, 4, 10, 11, 12), (8, 4, 3, 3, 3), dict(padding=1)),
    # enough work (>= 2^24 multiply-adds) for the weight gradient on phase planes
    "3d_3x3x3_phase_planes": (3, (1, 8, 12, 24, 21), (16, 8, 3, 3, 3), dict(padding=(1, 2, 1))),
    "3d_1x1x1": (3, (2, 8, 6, 7, 8), (12, 8, 1, 1, 1), dict()),
    # batch 1, small planes, many output channels: the forward passes cut along
    # output channels (Winograd with narrow tile blocks, implicit GEMM, im2col), and
    # GEMM panels narrower than the micro-kernel's
    "3x3_n1_7x7_many_outputs": (2, (1, 24, 7, 7), (200, 24, 3, 3), dict(padding=1)),
    "3x3_n1_13x9_many_outputs": (2, (1, 16, 13, 9), (136, 16, 3, 3), dict(padding=1)),
    "3x3_n1_winograd_narrow_blocks": (2, (1, 16, 27, 29), (72, 16, 3, 3), dict(padding=1)),
    "5x5_n1_small_plane": (2, (1, 16, 9, 20), (80, 16, 5, 5), dict(padding=2)),
    "1x1_s2_n1_small_plane": (2, (1, 32, 13, 13), (120, 32, 1, 1), dict(stride=2)),
    "3d_strided_dilated": (3, (2, 3, 12, 11, 10), (5, 3, 3, 2, 3), dict(stride=(2, 1, 2), dilation=(1, 2, 2), padding=(1, 0, 2))),
}


def big_case(name, dtype, layout="C", seed=0):
    from strategies import ConvCase

    rank, xs, ws, kw = BIG_CASES[name]
    x = with_layout(make_values(seed, xs, dtype), layout)
    w = with_layout(make_values(seed + 1, ws, dtype), layout)
    b = make_values(seed + 2, (ws[0],), dtype)
    stride = ref.as_tuple(kw.get("stride", 1), rank)
    dilation = ref.as_tuple(kw.get("dilation", 1), rank)
    lo, hi = ref.resolve_padding(kw.get("padding", 0), ws[2:], dilation)
    return ConvCase(rank=rank, x=x, weight=w, bias=b, stride=kw.get("stride", 1),
                    padding=kw.get("padding", 0), dilation=kw.get("dilation", 1),
                    groups=kw.get("groups", 1), padding_mode=kw.get("padding_mode", "zeros"),
                    dtype=dtype, batched=True, stride_t=stride, dilation_t=dilation,
                    pad_lo=lo, pad_hi=hi, seed=seed, layouts={"x": layout, "w": layout})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BIG_CASES))
def test_conv_forward_larger_cases_match_reference(name, dtype):
    check_forward(big_case(name, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BIG_CASES))
def test_conv_backward_larger_cases_match_reference(name, dtype):
    case = big_case(name, dtype)
    check_backward(case, make_values(7, case.out_shape, dtype))


@pytest.mark.parametrize("layout", ["F", "strided", "negative", "readonly"])
@pytest.mark.parametrize("name", ["3x3_s1_p1", "1x1", "depthwise_3x3", "3d_3x3x3"])
def test_conv_larger_cases_any_layout(name, layout):
    case = big_case(name, np.float32, layout=layout, seed=3)
    check_forward(case)
    check_backward(case, with_layout(make_values(9, case.out_shape, np.float32), layout))


@pytest.mark.parametrize("layout", ODD_LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["3x3_s1_p1", "1d_long", "3d_3x3x3"])
def test_conv_larger_cases_unaligned_or_packed_field_arrays(name, dtype, layout):
    """Byte strides that are not a multiple of the itemsize (a field of a packed
    structured array) or an unaligned buffer: still "any strides"."""
    case = big_case(name, dtype, layout=layout, seed=4)
    check_forward(case)
    check_backward(case, with_layout(make_values(9, case.out_shape, dtype), layout))


@scaled(0.3)
@given(conv_cases(layouts=ODD_LAYOUTS), st.integers(0, 2**32 - 1), st.sampled_from(ODD_LAYOUTS))
def test_conv_forward_backward_unaligned_or_packed_field_arrays(case, seed, g_layout):
    check_forward(case)
    check_backward(case, with_layout(make_values(seed, case.out_shape, case.dtype), g_layout))


def test_conv_accepts_zero_stride_broadcast_views():
    """np.broadcast_to gives read-only arrays with zero strides."""
    row = make_values(0, (1, 1, 1, 11), np.float64)
    x = np.broadcast_to(row, (2, 3, 9, 11))
    w = np.broadcast_to(make_values(1, (4, 1, 3, 3), np.float64), (4, 3, 3, 3))
    b = np.broadcast_to(np.float64(0.5), (4,))
    out = fc.conv2d(x, w, b, padding=1)
    expected = ref.conv_nd(x, w, b, pad_lo=1, pad_hi=1)
    check_result(out, np.float64, expected.shape)
    np.testing.assert_allclose(out, expected, rtol=1e-10, atol=1e-10)
    gx, gw, gb = fc.conv2d_backward(np.broadcast_to(np.float64(1.0), out.shape), x, w, padding=1)
    rgx, rgw, rgb = ref.conv_nd_backward(np.ones(out.shape), x, w, pad_lo=1, pad_hi=1)
    np.testing.assert_allclose(gx, rgx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, rgw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, rgb, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv_accepts_non_native_byte_order(dtype):
    x = make_values(0, (2, 3, 8, 7), dtype)
    w = make_values(1, (4, 3, 3, 2), dtype)
    b = make_values(2, (4,), dtype)
    swapped = [a.astype(a.dtype.newbyteorder(">" if a.dtype.byteorder != ">" else "<"))
               for a in (x, w, b)]
    out = fc.conv2d(*swapped, padding=1)
    assert out.dtype.kind == "f" and out.dtype.itemsize == np.dtype(dtype).itemsize
    np.testing.assert_array_equal(out, fc.conv2d(x, w, b, padding=1))
