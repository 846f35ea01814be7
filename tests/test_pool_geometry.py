"""pool_output_shape, the docstring examples, and results that must not depend
on the thread count or on the input's layout."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc
import ferroconv.functional
import pool_reference as ref


def test_lecture_2x2_max_pooling_with_stride_2_halves_each_spatial_size() -> None:
    assert fc.pool_output_shape((32, 32), 2) == (16, 16)
    assert fc.pool_output_shape((28, 28), kernel_size=2, stride=2) == (14, 14)
    x = np.ones((4, 6, 28, 28), np.float32)
    assert fc.max_pool2d(x, 2).shape == (4, 6, 14, 14)


@settings(deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=3), st.data())
def test_pool_output_shape_follows_pytorchs_formula(spatial, data) -> None:
    rank = len(spatial)
    kernel = tuple(data.draw(st.integers(1, 6)) for _ in range(rank))
    stride = tuple(data.draw(st.integers(1, 4)) for _ in range(rank))
    padding = tuple(data.draw(st.integers(0, k // 2 + 1)) for k in kernel)
    dilation = tuple(data.draw(st.integers(1, 3)) for _ in range(rank))
    ceil_mode = data.draw(st.booleans())
    try:
        expected = ref.output_shape(spatial, kernel, stride, padding, dilation, ceil_mode)
    except ValueError:
        with pytest.raises(ValueError, match="pool_output_shape: "):
            fc.pool_output_shape(spatial, kernel, stride, padding, dilation, ceil_mode)
        return
    try:
        got = fc.pool_output_shape(spatial, kernel, stride, padding, dilation, ceil_mode)
    except ValueError as exc:  # only a dilated window inside the padding may be refused
        assert "padding" in str(exc)
        return
    assert got == expected


def test_ceil_mode_drops_a_window_that_would_start_in_the_padding() -> None:
    assert fc.pool_output_shape(5, 2, ceil_mode=True) == (3,)
    assert fc.pool_output_shape(5, 2) == (2,)
    # ceil((1 + 2 - 2) / 2) + 1 = 2, but window 1 would start at 2 >= 1 + 1: dropped.
    assert fc.pool_output_shape(1, 2, stride=2, padding=1, ceil_mode=True) == (1,)
    # A kernel larger than the padded input still fits once in ceil mode (PyTorch).
    assert fc.pool_output_shape(1, 4, stride=3, padding=1, ceil_mode=True) == (1,)
    with pytest.raises(ValueError, match="kernel_size"):
        fc.pool_output_shape(1, 4, stride=3, padding=1)


def test_docstring_examples_run() -> None:
    finder = doctest.DocTestFinder()
    tests = [t for t in finder.find(ferroconv.functional) if "pool" in t.name]
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    failures, tried = runner.summarize(verbose=False)
    assert tried >= 5 and failures == 0


def test_results_are_identical_for_one_and_two_threads() -> None:
    rng = np.random.default_rng(1)
    # Large enough that every pass, including the scatters, crosses the serial threshold.
    x = rng.integers(-4, 5, size=(8, 32, 48, 48)).astype(np.float32)  # ties on purpose
    before = fc.get_num_threads()

    def run() -> list[np.ndarray]:
        values, indices = fc.max_pool2d(x, 3, 2, 1, return_indices=True)
        avg = fc.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
        adaptive, adaptive_indices = fc.adaptive_max_pool2d(x, (7, 5), return_indices=True)
        return [
            values, indices, avg,
            fc.max_pool2d_backward(values, indices, x.shape),
            fc.avg_pool2d_backward(avg, x.shape, 3, 2, 1, ceil_mode=True, count_include_pad=False),
            fc.max_unpool2d(values, indices, 3, 2, 1, output_size=x.shape),
            fc.adaptive_avg_pool2d(x, (7, 5)), adaptive, adaptive_indices,
            fc.adaptive_avg_pool2d_backward(adaptive, x.shape),
            fc.adaptive_max_pool2d_backward(adaptive, adaptive_indices, x.shape),
        ]

    try:
        fc.set_num_threads(1)
        serial = run()
        fc.set_num_threads(2)
        parallel = run()
    finally:
        fc.set_num_threads(before)
    for one, two in zip(serial, parallel):
        assert one.dtype == two.dtype and one.shape == two.shape
        assert one.tobytes() == two.tobytes()
