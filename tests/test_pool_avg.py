"""Average pooling and its backward pass against the NumPy reference, the
adjoint property, and PyTorch's divisor rules."""

from __future__ import annotations

from typing import Optional

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc
import pool_reference as ref
from pool_strategies import Case, op, pool_cases, tolerance, values_for, with_layout

divisors = st.none() | st.integers(-3, 6).filter(lambda d: d != 0)


def avg_args(case: Case, count_include_pad: bool, divisor_override: Optional[int]) -> tuple:
    return (case.kernel, case.stride, case.padding, case.ceil_mode, count_include_pad, divisor_override)


@settings(deadline=None)
@given(pool_cases(dilated=False), st.booleans(), divisors)
def test_avg_pool_matches_reference(case: Case, count_include_pad: bool, divisor_override) -> None:
    args = avg_args(case, count_include_pad, divisor_override)
    out = op("avg_pool{}d", case.rank)(case.arg(), *args)
    assert out.dtype == case.x.dtype and out.flags.c_contiguous
    expected = ref.avg_pool(case.x, case.kernel, case.strides, case.padding, case.ceil_mode, count_include_pad,
                            divisor_override)
    np.testing.assert_allclose(case.batch(out), expected, **tolerance(case.x.dtype))


@settings(deadline=None)
@given(pool_cases(dilated=False, wide=True), st.booleans(), divisors)
def test_avg_pool_on_long_rows_matches_reference(case: Case, count_include_pad: bool, divisor_override) -> None:
    # Long rows hold runs of full windows, which the kernel averages 8 or 16 at a time.
    args = avg_args(case, count_include_pad, divisor_override)
    out = op("avg_pool{}d", case.rank)(case.arg(), *args)
    expected = ref.avg_pool(case.x, case.kernel, case.strides, case.padding, case.ceil_mode, count_include_pad,
                            divisor_override)
    np.testing.assert_allclose(case.batch(out), expected, **tolerance(case.x.dtype))


@settings(deadline=None)
@given(pool_cases(dilated=False), st.booleans(), divisors, st.integers(0, 2**32 - 1))
def test_avg_pool_backward_matches_reference(case: Case, count_include_pad: bool, divisor_override,
                                             seed: int) -> None:
    args = avg_args(case, count_include_pad, divisor_override)
    out_shape = op("avg_pool{}d", case.rank)(case.x, *args).shape
    grad_out = np.random.default_rng(seed).standard_normal(out_shape).astype(case.x.dtype)
    input_shape = case.x.shape if case.batched else case.x.shape[1:]
    grad_arg = with_layout(grad_out if case.batched else grad_out[0], case.layout)
    grad = op("avg_pool{}d_backward", case.rank)(grad_arg, input_shape, *args)
    assert grad.shape == input_shape and grad.dtype == case.x.dtype
    expected = ref.avg_pool_backward(grad_out, case.x.shape, case.kernel, case.strides, case.padding,
                                     case.ceil_mode, count_include_pad, divisor_override)
    np.testing.assert_allclose(case.batch(grad), expected, **tolerance(case.x.dtype))


@settings(deadline=None)
@given(pool_cases(dilated=False), st.booleans(), divisors, st.integers(0, 2**32 - 1))
def test_avg_pool_backward_is_the_adjoint_of_avg_pool(case: Case, count_include_pad: bool, divisor_override,
                                                      seed: int) -> None:
    x = case.x.astype(np.float64)
    args = avg_args(case, count_include_pad, divisor_override)
    pooled = op("avg_pool{}d", case.rank)(x, *args)
    g = np.random.default_rng(seed).standard_normal(pooled.shape)
    back = op("avg_pool{}d_backward", case.rank)(g, x.shape, *args)
    np.testing.assert_allclose(np.vdot(pooled, g), np.vdot(x, back), rtol=1e-12, atol=1e-12)


def test_ceil_mode_window_past_the_padding_counts_only_up_to_the_padded_end() -> None:
    # len 4, k 3, s 2, no padding, ceil: windows [0, 3) and [2, 5), clipped to
    # [2, 4) -> divisor 2 even though padding is "counted".
    x = np.array([[[1.0, 2.0, 3.0, 5.0]]])
    np.testing.assert_allclose(fc.avg_pool1d(x, 3, 2, ceil_mode=True), [[[2.0, 4.0]]])
    # With padding 1: windows [-1, 2) [1, 4) [3, 6) clipped to [-1, 5): 3, 3, 2.
    np.testing.assert_allclose(fc.avg_pool1d(x, 3, 2, 1, ceil_mode=True), [[[1.0, 10 / 3, 2.5]]])
    np.testing.assert_allclose(fc.avg_pool1d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
                               [[[1.5, 10 / 3, 5.0]]])


def test_divisor_override_replaces_every_divisor() -> None:
    x = np.ones((1, 1, 3, 3), np.float32)
    np.testing.assert_array_equal(fc.avg_pool2d(x, 2, 1, divisor_override=2), np.full((1, 1, 2, 2), 2.0))
    np.testing.assert_array_equal(fc.avg_pool1d(x[0], 3, divisor_override=-1), np.full((1, 3, 1), -3.0))


def test_nan_propagates_through_an_average() -> None:
    x = np.array([[[1.0, np.nan, 3.0, 4.0]]])
    out = fc.avg_pool1d(x, 2)
    assert np.isnan(out[0, 0, 0]) and out[0, 0, 1] == 3.5


@settings(deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(2, 4), st.integers(0, 2**32 - 1))
def test_shifting_the_input_by_the_stride_shifts_the_output(rank: int, kernel: int, stride: int,
                                                            windows: int, seed: int) -> None:
    length = stride * windows + kernel
    x = values_for(np.random.default_rng(seed), (2, 1) + (length,) * rank, "continuous", np.float64)
    axis = 2 + seed % rank
    pooled = op("avg_pool{}d", rank)(x, kernel, stride)
    shifted = op("avg_pool{}d", rank)(np.roll(x, stride, axis=axis), kernel, stride)
    head = [slice(None)] * x.ndim
    tail = [slice(None)] * x.ndim
    head[axis], tail[axis] = slice(1, None), slice(None, -1)
    np.testing.assert_allclose(shifted[tuple(head)], pooled[tuple(tail)], rtol=1e-12, atol=1e-14)
