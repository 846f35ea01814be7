"""Bad input to ferroconv.dask raises TypeError/ValueError naming the argument,
when the graph is built (never later, in a worker)."""

from __future__ import annotations

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import ferroconv.dask as fcd  # noqa: E402


@pytest.fixture
def x():
    return da.zeros((2, 3, 12, 10), chunks=(1, 3, 6, 5))


WEIGHT = np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize("call", [
    lambda a: fcd.conv2d(a, WEIGHT),
    lambda a: fcd.max_pool2d(a, 2),
    lambda a: fcd.avg_pool2d(a, 2),
])
@pytest.mark.parametrize("value", [np.zeros((1, 3, 8, 8)), [[1.0]], None])
def test_non_dask_input_is_a_type_error_naming_x(call, value):
    with pytest.raises(TypeError, match=r"x must be a dask\.array\.Array, got .*from_array"):
        call(value)


def test_integer_input_is_a_type_error_naming_the_dtype():
    with pytest.raises(TypeError, match=r"conv2d: x must have dtype float32, float64, float16 or bfloat16, got int64"):
        fcd.conv2d(da.zeros((1, 3, 8, 8), dtype=np.int64), WEIGHT)


def test_mixed_dtypes_are_a_type_error(x):
    with pytest.raises(TypeError, match=r"conv2d: weight has dtype float32 but x has dtype float64"):
        fcd.conv2d(x, WEIGHT.astype(np.float32))


def test_wrong_number_of_axes_is_a_value_error(x):
    with pytest.raises(ValueError, match=r"max_pool3d: x must be 5-D .* or 4-D .*got shape \(12, 10\)"):
        fcd.max_pool3d(x[0, 0], 2)


def test_unknown_chunk_sizes_are_a_value_error():
    values = da.arange(60, chunks=7).astype(float)
    unknown = values[values > 10][None, None]
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        fcd.max_pool1d(unknown, 2)


def test_return_indices_is_refused_by_name(x):
    with pytest.raises(ValueError, match=r"max_pool2d: return_indices=True is not supported on dask arrays"):
        fcd.max_pool2d(x, 2, return_indices=True)
    with pytest.raises(TypeError, match=r"return_indices must be a bool"):
        fcd.max_pool2d(x, 2, return_indices="yes")


def test_a_chunked_channel_axis_is_rechunked_or_refused():
    split = da.zeros((1, 3, 8, 8), chunks=(1, 1, 8, 8))
    assert fcd.conv2d(split, WEIGHT).chunks[1] == (4,)
    with pytest.raises(ValueError, match=r"conv2d: x's channel axis C is split into chunks \(1, 1, 1\); "
                                         r"it must be one chunk"):
        fcd.conv2d(split, WEIGHT, rechunk=False)


@pytest.mark.parametrize("chunks, kwargs, message", [
    ((5, 7), dict(stride=2), r"the chunk boundary at 5 is not a multiple of the stride 2"),
    ((5, 7), dict(stride=2, padding=1), r"the chunk boundary at 5 is not a multiple of the stride 2"),
    ((1, 11), dict(dilation=2), r"the first chunk has 1 cell, fewer than the 4 it needs"),
    ((6, 1, 5), dict(dilation=2), r"the chunk before the chunk boundary at 7 has 1 cell, fewer than the 4 "
                                  r"that neighbouring windows reach into \(the halo\)"),
    ((10, 2), dict(), r"the chunk after the chunk boundary at 10 would be the last and needs at least "
                      r"2 cells and a whole window of 3 cells"),
])
def test_chunks_that_do_not_line_up_are_refused_without_rechunk(chunks, kwargs, message):
    x = da.zeros((1, 3, 12, 10), chunks=((1,), (3,), chunks, (10,)))
    with pytest.raises(ValueError, match=r"conv2d: x's chunks .* along H do not line up: " + message):
        fcd.conv2d(x, WEIGHT, rechunk=False, **kwargs)
    assert fcd.conv2d(x, WEIGHT, **kwargs).shape[1] == 4  # the default rechunks


def test_the_error_suggests_chunks_that_line_up():
    x = da.zeros((1, 3, 12, 10), chunks=((1,), (3,), (5, 7), (10,)))
    with pytest.raises(ValueError) as info:
        fcd.conv2d(x, WEIGHT, stride=2, rechunk=False)
    assert "Chunks (4, 8) would" in str(info.value)
    fcd.conv2d(x.rechunk({2: (4, 8)}), WEIGHT, stride=2, rechunk=False)


@pytest.mark.parametrize("call, error, message", [
    (lambda a: fcd.conv2d(a, np.zeros((4, 2, 3, 3))), ValueError,
     r"conv2d: weight has 2 input channels per group but x has 3 channels"),
    (lambda a: fcd.conv2d(a, WEIGHT, padding=10, padding_mode="reflect"), ValueError,
     r"conv2d: padding .* must be smaller than the input size"),
    (lambda a: fcd.conv2d(a, WEIGHT, stride=2, padding="same"), ValueError,
     r"conv2d: padding='same' is only supported with stride 1"),
    (lambda a: fcd.conv2d(a, WEIGHT, padding_mode="mirror"), ValueError, r"conv2d: padding_mode must be one of"),
    (lambda a: fcd.conv2d(a, WEIGHT, groups=2), ValueError, r"conv2d: .*groups"),
    (lambda a: fcd.max_pool2d(a, 2, padding=2), ValueError, r"max_pool2d: padding \(2, 2\) must be at most half"),
    (lambda a: fcd.avg_pool2d(a, 2, divisor_override=0), ValueError,
     r"avg_pool2d: divisor_override must be nonzero"),
    (lambda a: fcd.avg_pool2d(a, 20), ValueError, r"avg_pool2d: .*output size would be"),
    (lambda a: fcd.avg_pool2d(a, 2, ceil_mode=1), TypeError, r"avg_pool2d: ceil_mode must be a bool"),
    (lambda a: fcd.max_pool2d(a, 2, rechunk="no"), TypeError, r"max_pool2d: rechunk must be a bool"),
    (lambda a: fcd.conv2d(a, WEIGHT, stride=0), ValueError, r"conv2d: stride must be >= 1"),
])
def test_arguments_are_checked_like_the_functional_api(x, call, error, message):
    with pytest.raises(error, match=message):
        call(x)
