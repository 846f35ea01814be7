"""Adaptive and global pooling, forward and backward, against the NumPy reference."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc
import pool_reference as ref
from pool_strategies import LAYOUTS, MAX_LEN, op, tolerance, values_for, with_layout


@st.composite
def adaptive_cases(draw, values=("ties", "continuous")):
    rank = draw(st.integers(1, 3))
    spatial = tuple(draw(st.integers(1, MAX_LEN[rank])) for _ in range(rank))
    # Output sizes below, equal to and above the input size; None keeps the size.
    requested = tuple(draw(st.none() | st.integers(1, MAX_LEN[rank] + 2)) for _ in range(rank))
    out = tuple(s if r is None else r for s, r in zip(spatial, requested))
    batched = draw(st.booleans())
    shape = (draw(st.integers(1, 2)) if batched else 1, draw(st.integers(1, 3))) + spatial
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = values_for(rng, shape, draw(st.sampled_from(values)), dtype)
    return rank, x, requested, out, draw(st.sampled_from(LAYOUTS)), batched


def prepare(x: np.ndarray, layout: str, batched: bool) -> np.ndarray:
    return with_layout(x if batched else x[0], layout)


def batch(out: np.ndarray, batched: bool) -> np.ndarray:
    return out if batched else out[np.newaxis]


@settings(deadline=None)
@given(adaptive_cases())
def test_adaptive_avg_pool_matches_reference(case) -> None:
    rank, x, requested, out_size, layout, batched = case
    out = op("adaptive_avg_pool{}d", rank)(prepare(x, layout, batched), requested)
    assert out.dtype == x.dtype and out.shape[-rank:] == out_size
    np.testing.assert_allclose(batch(out, batched), ref.adaptive_avg_pool(x, out_size), **tolerance(x.dtype))


@settings(deadline=None)
@given(adaptive_cases(values=("ties", "continuous", "special")))
def test_adaptive_max_pool_matches_reference_values_and_indices(case) -> None:
    rank, x, requested, out_size, layout, batched = case
    values, indices = op("adaptive_max_pool{}d", rank)(prepare(x, layout, batched), requested, True)
    expected_values, expected_indices = ref.adaptive_max_pool(x, out_size)
    np.testing.assert_array_equal(batch(values, batched), expected_values)
    np.testing.assert_array_equal(batch(indices, batched), expected_indices)
    np.testing.assert_array_equal(op("adaptive_max_pool{}d", rank)(prepare(x, layout, batched), requested),
                                  values)


@settings(deadline=None)
@given(adaptive_cases(), st.integers(0, 2**32 - 1))
def test_adaptive_backward_passes_match_reference(case, seed: int) -> None:
    rank, x, requested, out_size, layout, batched = case
    g = np.random.default_rng(seed).standard_normal(x.shape[:2] + out_size).astype(x.dtype)
    input_shape = x.shape if batched else x.shape[1:]
    grad = op("adaptive_avg_pool{}d_backward", rank)(prepare(g, layout, batched), input_shape)
    np.testing.assert_allclose(batch(grad, batched), ref.adaptive_avg_pool_backward(g, x.shape),
                               **tolerance(x.dtype))
    _, indices = op("adaptive_max_pool{}d", rank)(x, out_size, return_indices=True)
    grad = op("adaptive_max_pool{}d_backward", rank)(g, indices, x.shape)
    np.testing.assert_array_equal(grad, ref.scatter(g, indices, x.shape, accumulate=True))


@settings(deadline=None)
@given(adaptive_cases(values=("ties", "continuous", "special")))
def test_global_pooling_is_adaptive_pooling_to_size_one(case) -> None:
    rank, x, _, _, layout, _ = case
    arg = with_layout(x, layout)
    np.testing.assert_array_equal(fc.global_avg_pool(arg), op("adaptive_avg_pool{}d", rank)(x, 1))
    values, indices = fc.global_max_pool(arg, return_indices=True)
    expected_values, expected_indices = op("adaptive_max_pool{}d", rank)(x, 1, return_indices=True)
    assert values.shape == x.shape[:2] + (1,) * rank
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_array_equal(fc.global_max_pool(arg), values)


def test_global_avg_pool_is_the_mean_over_space() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 5, 6))
    np.testing.assert_allclose(fc.global_avg_pool(x), x.mean(axis=(2, 3), keepdims=True), rtol=1e-12)


def test_adaptive_windows_overlap_when_the_size_does_not_divide() -> None:
    x = np.arange(5.0).reshape(1, 1, 5)
    # windows [0, 2) [1, 4) [3, 5)
    np.testing.assert_allclose(fc.adaptive_avg_pool1d(x, 3), [[[0.5, 2.0, 3.5]]])
    values, indices = fc.adaptive_max_pool1d(x, 3, return_indices=True)
    np.testing.assert_array_equal(indices, [[[1, 3, 4]]])


def test_an_output_size_of_zero_gives_an_empty_result_like_pytorch() -> None:
    x = np.ones((2, 3, 4, 4), np.float32)
    assert fc.adaptive_avg_pool2d(x, (0, 2)).shape == (2, 3, 0, 2)
    assert fc.adaptive_max_pool2d(x, 0, return_indices=True)[1].shape == (2, 3, 0, 0)
    grad = fc.adaptive_avg_pool2d_backward(np.ones((2, 3, 0, 2), np.float32), x.shape)
    np.testing.assert_array_equal(grad, np.zeros_like(x))
