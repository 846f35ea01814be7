"""conv_transpose1d/2d/3d and their backward: agreement with the scatter-definition
reference, and the identities that tie the transposed conv to the conv
(forward == conv input-gradient, input-gradient == conv forward)."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc
import reference as ref
from checks import assert_unchanged, check_result, maxabs, snapshot
from strategies import (LAYOUTS, ODD_LAYOUTS, TransposeCase, make_values, scaled,
                        transpose_cases, with_layout)

NEEDS = list(itertools.product([True, False], repeat=3))


def tconv(case, x=None, w=None, b=None, **override):
    kwargs = case.kwargs()
    kwargs.update(override)
    return getattr(fc, f"conv_transpose{case.rank}d")(case.x if x is None else x,
                                                     case.weight if w is None else w, b, **kwargs)


def tconv_backward(case, grad_out, **override):
    kwargs = case.kwargs()
    kwargs.update(override)
    return getattr(fc, f"conv_transpose{case.rank}d_backward")(grad_out, case.x, case.weight,
                                                              **kwargs)


def check_transpose_forward(case):
    before = snapshot(case.x, case.weight, case.bias)
    out = tconv(case, b=case.bias)
    check_result(out, case.dtype, case.out_shape, (case.x, case.weight, case.bias))
    expected = ref.conv_transpose_nd(case.x_batched, case.weight, case.bias, **case.ref_kwargs())
    if not case.batched:
        expected = expected[0]
    # each output cell sums at most C_in/groups * prod(k) products
    n_terms = (case.x_batched.shape[1] // case.groups) * math.prod(case.weight.shape[2:]) + 1
    term_max = maxabs(case.x) * maxabs(case.weight) + maxabs(case.bias)
    ref.assert_matches(out, expected, case.dtype, n_terms, term_max, repr(case))
    assert_unchanged(before, (case.x, case.weight, case.bias))


def check_transpose_backward(case, grad_out, needs):
    before = snapshot(grad_out, case.x, case.weight)
    gx, gw, gb = tconv_backward(case, grad_out, needs=needs)
    g = np.asarray(grad_out, np.float64)
    rgx, rgw, rgb = ref.conv_transpose_nd_backward(g if case.batched else g[None], case.x_batched,
                                                   case.weight, **case.ref_kwargs())
    if not case.batched:
        rgx = rgx[0]
    n = case.x_batched.shape[0]
    inputs = (grad_out, case.x, case.weight)
    if needs[0]:
        check_result(gx, case.dtype, case.x.shape, inputs)
        ref.assert_matches(gx, rgx, case.dtype, case.weight.shape[1] * math.prod(case.weight.shape[2:]),
                           maxabs(g) * maxabs(case.weight), f"grad_x {case!r}")
    else:
        assert gx is None
    if needs[1]:
        check_result(gw, case.dtype, case.weight.shape, inputs)
        ref.assert_matches(gw, rgw, case.dtype, n * math.prod(case.x.shape[-case.rank:]),
                           maxabs(g) * maxabs(case.x), f"grad_weight {case!r}")
    else:
        assert gw is None
    if needs[2]:
        check_result(gb, case.dtype, (case.weight.shape[1] * case.groups,), inputs)
        ref.assert_matches(gb, rgb, case.dtype, g.size, maxabs(g), f"grad_bias {case!r}")
    else:
        assert gb is None
    assert_unchanged(before, (grad_out, case.x, case.weight))


@pytest.mark.parametrize("rank", [1, 2, 3])
@given(data=st.data())
def test_conv_transpose_forward_matches_reference(rank, data):
    check_transpose_forward(data.draw(transpose_cases(ranks=(rank,)), label="case"))


@pytest.mark.parametrize("rank", [1, 2, 3])
@given(data=st.data())
def test_conv_transpose_backward_matches_reference(rank, data):
    case = data.draw(transpose_cases(ranks=(rank,), bias=False), label="case")
    needs = data.draw(st.sampled_from(NEEDS), label="needs")
    seed = data.draw(st.integers(0, 2**32 - 1), label="grad_seed")
    layout = data.draw(st.sampled_from(LAYOUTS), label="grad_out layout")
    check_transpose_backward(case, with_layout(make_values(seed, case.out_shape, case.dtype), layout),
                             needs)


@scaled(0.3)
@given(transpose_cases(layouts=ODD_LAYOUTS), st.integers(0, 2**32 - 1))
def test_conv_transpose_unaligned_or_packed_field_arrays(case, seed):
    check_transpose_forward(case)
    check_transpose_backward(case, with_layout(make_values(seed, case.out_shape, case.dtype),
                                               "packed_field"), (True, True, True))


@given(transpose_cases(dtypes=(np.float64,), bias=False, output_padding_below_stride=True))
def test_conv_transpose_forward_is_conv_backward_input(case):
    """conv_transpose(x, w) == conv_backward(grad_out=x) w.r.t. the input, for the
    conv with the same weight, stride, padding, dilation and groups whose input has
    the transposed conv's output size (output_padding < stride picks that size)."""
    y = tconv(case)
    x_like = np.zeros(case.out_shape)
    gx, _, _ = getattr(fc, f"conv{case.rank}d_backward")(
        case.x, x_like, case.weight, stride=case.stride, padding=case.padding,
        dilation=case.dilation, groups=case.groups, needs=(True, False, False))
    np.testing.assert_allclose(y, gx, rtol=1e-10, atol=1e-10 * (1 + np.max(np.abs(y))))


@given(transpose_cases(dtypes=(np.float64,), bias=False, output_padding_below_stride=True),
       st.integers(0, 2**32 - 1))
def test_conv_transpose_backward_input_is_conv_forward(case, seed):
    g = make_values(seed, case.out_shape, np.float64)
    gx, _, _ = tconv_backward(case, g, needs=(True, False, False))
    y = getattr(fc, f"conv{case.rank}d")(g, case.weight, None, stride=case.stride,
                                         padding=case.padding, dilation=case.dilation,
                                         groups=case.groups)
    assert y.shape == case.x.shape
    np.testing.assert_allclose(gx, y, rtol=1e-10, atol=1e-10 * (1 + np.max(np.abs(y))))


@given(transpose_cases(dtypes=(np.float64,), bias=False), st.integers(0, 2**32 - 1))
def test_conv_transpose_backward_is_adjoint_of_forward(case, seed):
    y = tconv(case)
    g = make_values(seed, y.shape, np.float64)
    gx, gw, gb = tconv_backward(case, g)
    lhs = float(np.sum(y * g))
    scale = float(np.sum(np.abs(tconv(case, x=np.abs(case.x), w=np.abs(case.weight)) * g)))
    tol = 1e-10 * (1 + scale)
    assert abs(lhs - float(np.sum(np.asarray(case.x) * gx))) <= tol
    assert abs(lhs - float(np.sum(np.asarray(case.weight) * gw))) <= tol


@given(transpose_cases(dtypes=(np.float64,)))
def test_conv_transpose_output_shape_matches_actual_output(case):
    spatial = case.x.shape[-case.rank:]
    shape = fc.conv_transpose_output_shape(spatial, case.weight.shape[2:], case.stride,
                                           case.padding, case.output_padding, case.dilation)
    assert tuple(shape) == case.out_spatial
    assert tconv(case, b=case.bias).shape[-case.rank:] == case.out_spatial


def test_conv_transpose_known_values_1d():
    x = np.array([[[1.0, 2.0]]])
    w = np.array([[[1.0, 10.0, 100.0]]])
    np.testing.assert_array_equal(fc.conv_transpose1d(x, w, stride=2), [[[1, 10, 102, 20, 200]]])
    np.testing.assert_array_equal(fc.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1),
                                  [[[10, 102, 20, 200]]])
    np.testing.assert_array_equal(fc.conv_transpose1d(x, w, np.array([0.5]), stride=1, dilation=2),
                                  [[[1.5, 2.5, 10.5, 20.5, 100.5, 200.5]]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rank,xs,ws,kw", [
    (2, (2, 16, 12, 11), (16, 8, 4, 4), dict(stride=2, padding=1)),  # DCGAN-style upsampling
    (2, (1, 8, 15, 15), (8, 12, 3, 3), dict(stride=1, padding=1)),
    (2, (2, 12, 9, 10), (12, 3, 3, 3), dict(stride=2, padding=1, output_padding=1, groups=3)),
    (1, (3, 8, 60), (8, 6, 5), dict(stride=3, padding=2, output_padding=2, dilation=2)),
    (3, (1, 6, 6, 5, 7), (6, 4, 3, 3, 3), dict(stride=2, padding=1, output_padding=1)),
])
def test_conv_transpose_larger_cases_match_reference(rank, xs, ws, kw, dtype):
    stride = ref.as_tuple(kw.get("stride", 1), rank)
    padding = ref.as_tuple(kw.get("padding", 0), rank)
    op = ref.as_tuple(kw.get("output_padding", 0), rank)
    dil = ref.as_tuple(kw.get("dilation", 1), rank)
    case = TransposeCase(
        rank=rank, x=make_values(0, xs, dtype), weight=make_values(1, ws, dtype),
        bias=make_values(2, (ws[1] * kw.get("groups", 1),), dtype), stride=kw.get("stride", 1),
        padding=kw.get("padding", 0), output_padding=kw.get("output_padding", 0),
        groups=kw.get("groups", 1), dilation=kw.get("dilation", 1), dtype=dtype, batched=True,
        stride_t=stride, padding_t=padding, output_padding_t=op, dilation_t=dil)
    check_transpose_forward(case)
    check_transpose_backward(case, make_values(5, case.out_shape, dtype), (True, True, True))
