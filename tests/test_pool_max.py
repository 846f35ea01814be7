"""Max pooling, its backward pass and max unpooling against the NumPy reference,
plus the properties that tie them together."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc
import pool_reference as ref
from pool_strategies import Case, op, pool_cases, values_for, with_layout


def run_max_pool(case: Case, return_indices: bool = True):
    return op("max_pool{}d", case.rank)(case.arg(), case.kernel, case.stride, case.padding, case.dilation,
                                        case.ceil_mode, return_indices)


def reference(case: Case):
    return ref.max_pool(case.x, case.kernel, case.strides, case.padding, case.dilation, case.ceil_mode)


def check_against_reference(case: Case) -> None:
    try:
        expected_values, expected_indices = reference(case)
    except ValueError:  # a dilated window entirely in the padding
        with pytest.raises(ValueError, match="padding"):
            run_max_pool(case)
        return
    values, indices = run_max_pool(case)
    assert values.dtype == case.x.dtype and indices.dtype == np.int64
    assert values.flags.c_contiguous and indices.flags.c_contiguous
    np.testing.assert_array_equal(case.batch(values), expected_values)
    np.testing.assert_array_equal(case.batch(indices), expected_indices)
    # Without indices: the same values.
    np.testing.assert_array_equal(run_max_pool(case, return_indices=False), values)


@settings(deadline=None)
@given(pool_cases(values=("ties", "continuous", "special")))
def test_max_pool_matches_reference_values_and_indices(case: Case) -> None:
    check_against_reference(case)


@settings(deadline=None)
@given(pool_cases(wide=True, values=("ties", "continuous", "special")))
def test_max_pool_on_long_rows_matches_reference(case: Case) -> None:
    # Long rows hold many windows of one shape, which the kernel pools in groups.
    check_against_reference(case)


@settings(deadline=None)
@given(pool_cases(values=("ties", "continuous", "special")))
def test_taking_the_indices_from_each_plane_gives_the_pooled_values(case: Case) -> None:
    try:
        values, indices = run_max_pool(case)
    except ValueError:
        return
    values, indices = case.batch(values), case.batch(indices)
    n, c = case.x.shape[:2]
    taken = np.take_along_axis(case.x.reshape(n, c, -1), indices.reshape(n, c, -1), axis=2)
    np.testing.assert_array_equal(taken.reshape(values.shape), values)


@settings(deadline=None)
@given(pool_cases(), st.integers(0, 2**32 - 1))
def test_max_pool_backward_puts_each_gradient_at_its_argmax(case: Case, seed: int) -> None:
    try:
        _, indices = run_max_pool(case)
    except ValueError:
        return
    grad_out = np.random.default_rng(seed).standard_normal(indices.shape).astype(case.x.dtype)
    input_shape = case.x.shape if case.batched else case.x.shape[1:]
    backward = op("max_pool{}d_backward", case.rank)
    grad = backward(with_layout(grad_out, case.layout), with_layout(indices, case.layout), input_shape)
    assert grad.shape == input_shape and grad.dtype == case.x.dtype
    expected = ref.scatter(case.batch(grad_out), case.batch(indices), case.x.shape, accumulate=True)
    np.testing.assert_array_equal(case.batch(grad), expected)
    np.testing.assert_allclose(grad.sum(), grad_out.sum(), rtol=1e-4, atol=1e-4)
    # input_shape may also be just the spatial size.
    spatial = backward(grad_out, indices, case.x.shape[2:])
    np.testing.assert_array_equal(spatial, grad)


@settings(deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**32 - 1),
       st.sampled_from([np.float32, np.float64]), st.booleans())
def test_unpool_then_pool_gives_back_the_pooled_values(rank: int, kernel: int, windows: int, seed: int,
                                                       dtype, batched: bool) -> None:
    rng = np.random.default_rng(seed)
    shape = (2, 3) + (kernel * windows,) * rank
    # Distinct positive values: the unpooled zeros never win a window.
    x = (rng.permutation(int(np.prod(shape))) + 1).reshape(shape).astype(dtype)
    if not batched:
        x = x[0]
    values, indices = op("max_pool{}d", rank)(x, kernel, return_indices=True)
    restored = op("max_unpool{}d", rank)(values, indices, kernel)
    assert restored.shape == x.shape
    np.testing.assert_array_equal(op("max_pool{}d", rank)(restored, kernel), values)
    # The maxima sit where they came from, everything else is zero.
    np.testing.assert_array_equal(restored[restored != 0], x[restored != 0])
    assert np.count_nonzero(restored) == values.size


@settings(deadline=None)
@given(pool_cases(dilated=False, padded=False, ceil=False))
def test_unpool_matches_reference_for_any_window_geometry(case: Case) -> None:
    values, indices = op("max_pool{}d", case.rank)(case.arg(), case.kernel, case.stride, return_indices=True)
    # Unpadded floor-mode pooling leaves the input size within one stride above the
    # default (L - 1) * s + k, so it is always an allowed output_size.
    spatial = case.x.shape[2:]
    default = ref.unpool_default_size(case.batch(values).shape[2:], case.kernel, case.strides, case.padding)
    assert all(d <= s < d + st for d, s, st in zip(default, spatial, case.strides))
    unpool = op("max_unpool{}d", case.rank)
    out = unpool(with_layout(values, case.layout), indices, case.kernel, case.stride, output_size=spatial)
    # Overlapping windows repeat indices: the last value written wins, as in order.
    expected = ref.scatter(case.batch(values), case.batch(indices), case.x.shape, accumulate=False)
    np.testing.assert_array_equal(case.batch(out), expected)
    if spatial == default:
        np.testing.assert_array_equal(unpool(values, indices, case.kernel, case.stride), out)


def test_unpool_output_size_may_be_spatial_or_full_and_within_one_stride() -> None:
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    values, indices = fc.max_pool2d(x, 2, return_indices=True)
    assert fc.max_unpool2d(values, indices, 2).shape == (1, 1, 4, 4)
    assert fc.max_unpool2d(values, indices, 2, output_size=(5, 5)).shape == (1, 1, 5, 5)
    assert fc.max_unpool2d(values, indices, 2, output_size=(1, 1, 5, 4)).shape == (1, 1, 5, 4)
    # Unbatched input with an unbatched full shape.
    assert fc.max_unpool2d(values[0], indices[0], 2, output_size=(1, 5, 5)).shape == (1, 5, 5)
    for bad in [(6, 6), (2, 4)]:
        with pytest.raises(ValueError, match=r"max_unpool2d: output_size \(\d, \d\) must be"):
            fc.max_unpool2d(values, indices, 2, output_size=bad)


def test_ties_pick_the_first_element_in_scan_order() -> None:
    x = np.zeros((1, 1, 4, 4), np.float32)
    values, indices = fc.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(indices, [[[[0, 2], [8, 10]]]])
    x = np.array([[[1.0, 7.0, 7.0, 7.0]]])
    _, indices = fc.max_pool1d(x, 3, stride=1, return_indices=True)
    np.testing.assert_array_equal(indices, [[[1, 1]]])


def test_nan_propagates_with_the_index_of_the_last_nan_like_pytorch() -> None:
    x = np.array([[[np.nan, 5.0, np.nan, 1.0, 2.0, np.inf]]])
    values, indices = fc.max_pool1d(x, 3, return_indices=True)
    assert np.isnan(values[0, 0, 0]) and values[0, 0, 1] == np.inf
    np.testing.assert_array_equal(indices, [[[2, 5]]])
    values, indices = fc.adaptive_max_pool1d(x, 1, return_indices=True)
    assert np.isnan(values[0, 0, 0]) and indices[0, 0, 0] == 2


def test_padding_acts_as_minus_infinity() -> None:
    x = -np.arange(1.0, 6.0).reshape(1, 1, 5)  # all negative: zero padding would win
    values, indices = fc.max_pool1d(x, 3, stride=2, padding=1, return_indices=True)
    np.testing.assert_array_equal(values, [[[-1.0, -2.0, -4.0]]])
    np.testing.assert_array_equal(indices, [[[0, 1, 3]]])
    x = np.full((1, 1, 3), -np.inf)
    values, indices = fc.max_pool1d(x, 2, stride=2, padding=1, return_indices=True)
    np.testing.assert_array_equal(indices, [[[0, 1]]])


@settings(deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(2, 4), st.integers(0, 2**32 - 1))
def test_shifting_the_input_by_the_stride_shifts_the_output(rank: int, kernel: int, stride: int,
                                                            windows: int, seed: int) -> None:
    length = stride * windows + stride * ((kernel - 1) // stride + 1)
    x = values_for(np.random.default_rng(seed), (1, 2) + (length,) * rank, "continuous", np.float64)
    axis = 2 + seed % rank
    pooled, indices = op("max_pool{}d", rank)(x, kernel, stride, return_indices=True)
    shifted, shifted_indices = op("max_pool{}d", rank)(np.roll(x, stride, axis=axis), kernel, stride,
                                                       return_indices=True)
    head = [slice(None)] * x.ndim
    tail = [slice(None)] * x.ndim
    head[axis], tail[axis] = slice(1, None), slice(None, -1)
    np.testing.assert_array_equal(shifted[tuple(head)], pooled[tuple(tail)])
    step = stride * int(np.prod(x.shape[axis + 1:]))
    np.testing.assert_array_equal(shifted_indices[tuple(head)], indices[tuple(tail)] + step)
