"""ferroconv.dask convolution and pooling, computed on a local dask.distributed
cluster, equal the single functional-API call on the whole array: for random
shapes, chunkings (chunks smaller than the halo and split channel axes
included), kernels, strides, dilations, paddings and padding modes."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import ferroconv as fc  # noqa: E402
import ferroconv.dask as fcd  # noqa: E402
from dask_support import assert_same_result, assert_same_sums, chunkings, compute  # noqa: E402
from pool_strategies import pool_cases  # noqa: E402
from strategies import conv_cases  # noqa: E402

IN_MEMORY_LAYOUTS = ("C", "F", "strided", "negative")


def check_metadata(lazy, x, expected: np.ndarray, batched: bool = True) -> None:
    """Shape, dtype, meta and chunks of the lazy result, before computing it."""
    assert lazy.shape == expected.shape
    assert lazy.dtype == expected.dtype
    assert type(lazy._meta) is np.ndarray and lazy._meta.dtype == expected.dtype
    assert tuple(sum(c) for c in lazy.chunks) == expected.shape
    if batched:
        assert lazy.chunks[0] == x.chunks[0]  # batch chunks are kept
    assert len(lazy.chunks[1 if batched else 0]) == 1  # the channel axis is one chunk


@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_conv_on_the_cluster_equals_the_single_call(dask_client, data):
    case = data.draw(conv_cases(layouts=IN_MEMORY_LAYOUTS), label="case")
    chunks = data.draw(chunkings(case.x.shape), label="chunks")
    kwargs = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, groups=case.groups,
                  padding_mode=case.padding_mode)
    expected = getattr(fc, f"conv{case.rank}d")(case.x, case.weight, case.bias, **kwargs)
    x = da.from_array(case.x, chunks=chunks)
    lazy = getattr(fcd, f"conv{case.rank}d")(x, case.weight, case.bias, **kwargs)
    check_metadata(lazy, x, expected, case.batched)
    assert_same_result(compute(dask_client, lazy), expected)


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_max_pool_on_the_cluster_equals_the_single_call(dask_client, data):
    case = data.draw(pool_cases(values=("ties", "continuous", "special")), label="case")
    arg = case.arg()
    chunks = data.draw(chunkings(arg.shape), label="chunks")
    kwargs = dict(stride=case.stride, padding=case.padding, dilation=case.dilation, ceil_mode=case.ceil_mode)
    x = da.from_array(arg, chunks=chunks)
    try:
        expected = getattr(fc, f"max_pool{case.rank}d")(arg, case.kernel, **kwargs)
    except ValueError as exc:  # a dilated window entirely in the padding: refused alike, before computing
        with pytest.raises(ValueError, match=re.escape(str(exc))):
            getattr(fcd, f"max_pool{case.rank}d")(x, case.kernel, **kwargs)
        return
    lazy = getattr(fcd, f"max_pool{case.rank}d")(x, case.kernel, **kwargs)
    check_metadata(lazy, x, expected, case.batched)
    assert_same_result(compute(dask_client, lazy), expected)


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_avg_pool_on_the_cluster_equals_the_single_call(dask_client, data):
    case = data.draw(pool_cases(dilated=False), label="case")
    arg = case.arg()
    chunks = data.draw(chunkings(arg.shape), label="chunks")
    kwargs = dict(stride=case.stride, padding=case.padding, ceil_mode=case.ceil_mode,
                  count_include_pad=data.draw(st.booleans(), label="count_include_pad"),
                  divisor_override=data.draw(st.none() | st.integers(1, 9), label="divisor_override"))
    expected = getattr(fc, f"avg_pool{case.rank}d")(arg, case.kernel, **kwargs)
    x = da.from_array(arg, chunks=chunks)
    lazy = getattr(fcd, f"avg_pool{case.rank}d")(x, case.kernel, **kwargs)
    check_metadata(lazy, x, expected, case.batched)
    assert_same_sums(compute(dask_client, lazy), expected, arg, int(np.prod(case.kernel)))


def test_a_stack_of_ops_stays_lazy_and_equals_the_single_calls(dask_client):
    rng = np.random.default_rng(0)
    volume = rng.standard_normal((2, 2, 21, 18, 17))
    w1, w2 = rng.standard_normal((4, 2, 3, 3, 3)), rng.standard_normal((3, 4, 2, 3, 1))
    x = da.from_array(volume, chunks=(1, 1, 7, 9, 9))
    lazy = fcd.conv3d(x, w1, padding="same", padding_mode="replicate")
    lazy = fcd.max_pool3d(lazy, 3, stride=2, padding=1, ceil_mode=True)
    lazy = fcd.avg_pool3d(fcd.conv3d(lazy, w2, stride=(2, 1, 1), dilation=(1, 2, 1)), 2, stride=1)
    expected = fc.conv3d(volume, w1, padding="same", padding_mode="replicate")
    expected = fc.max_pool3d(expected, 3, stride=2, padding=1, ceil_mode=True)
    expected = fc.avg_pool3d(fc.conv3d(expected, w2, stride=(2, 1, 1), dilation=(1, 2, 1)), 2, stride=1)
    check_metadata(lazy, x, expected)
    assert_same_result(compute(dask_client, lazy), expected)


def test_output_chunks_are_the_input_chunks_divided_by_the_stride():
    x = da.zeros((4, 3, 40, 36), chunks=(2, 3, 8, 12))
    out = fcd.conv2d(x, np.zeros((5, 3, 3, 3)), stride=2, padding=1, rechunk=False)
    assert out.shape == (4, 5, 20, 18)
    assert out.chunks == ((2, 2), (5,), (4, 4, 4, 4, 4), (6, 6, 6))
    same = fcd.conv2d(x, np.zeros((5, 3, 4, 3)), padding="same", padding_mode="reflect", rechunk=False)
    assert same.chunks == ((2, 2), (5,), (8,) * 5, (12,) * 3)
    pooled = fcd.max_pool2d(da.zeros((4, 3, 40, 36), chunks=(2, 3, 8, 12)), 2)
    assert pooled.chunks == ((2, 2), (3,), (4,) * 5, (6,) * 3)


def test_chunks_smaller_than_the_halo_are_merged(dask_client):
    signal = np.random.default_rng(1).standard_normal((2, 2, 50))
    x = da.from_array(signal, chunks=(1, 1, 3))
    weight = np.random.default_rng(2).standard_normal((2, 2, 5))
    # a dilation-4 kernel of 5 spans 17 cells: each block shares 8 with each neighbour
    lazy = fcd.conv1d(x, weight, dilation=4, padding=8, padding_mode="reflect")
    assert lazy.chunks[2] == (9, 9, 9, 9, 14)
    expected = fc.conv1d(signal, weight, dilation=4, padding=8, padding_mode="reflect")
    assert_same_result(compute(dask_client, lazy), expected)


def test_batch_only_chunking_needs_no_overlap(dask_client):
    images = np.random.default_rng(3).standard_normal((6, 3, 12, 12)).astype(np.float32)
    weight = np.random.default_rng(4).standard_normal((4, 3, 3, 3)).astype(np.float32)
    lazy = fcd.conv2d(da.from_array(images, chunks=(2, 3, 12, 12)), weight, padding=1)
    assert not any("overlap" in name for name in lazy.dask.layers)
    assert lazy.chunks[0] == (2, 2, 2)
    assert_same_result(compute(dask_client, lazy), fc.conv2d(images, weight, padding=1))


def test_unbatched_input_gives_unbatched_output(dask_client):
    image = np.random.default_rng(5).standard_normal((2, 15, 16))
    lazy = fcd.avg_pool2d(da.from_array(image, chunks=(1, 4, 5)), 3, stride=2, padding=1,
                          count_include_pad=False, ceil_mode=True)
    expected = fc.avg_pool2d(image, 3, stride=2, padding=1, count_include_pad=False, ceil_mode=True)
    assert lazy.shape == expected.shape
    assert_same_result(compute(dask_client, lazy), expected)


def test_weight_and_bias_may_be_dask_arrays(dask_client):
    rng = np.random.default_rng(6)
    x, weight, bias = rng.standard_normal((1, 2, 30)), rng.standard_normal((3, 2, 4)), rng.standard_normal(3)
    lazy = fcd.conv1d(da.from_array(x, chunks=(1, 2, 7)), da.from_array(weight), da.from_array(bias),
                      padding="same")
    assert_same_result(compute(dask_client, lazy), fc.conv1d(x, weight, bias, padding="same"))


def test_winograd_sized_convolutions_agree_within_float32_tolerance(dask_client):
    # 3x3 stride-1 with >= 16 channels may run Winograd, whose rounding depends on
    # where a block's output tiles start: equal within float32 tolerance (relative
    # to the size of the outputs, as sums of 144 terms cancel), not in bytes
    rng = np.random.default_rng(7)
    images = rng.standard_normal((1, 16, 30, 30)).astype(np.float32)
    weight = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    lazy = fcd.conv2d(da.from_array(images, chunks=(1, 16, 11, 13)), weight, padding=1)
    expected = fc.conv2d(images, weight, padding=1)
    np.testing.assert_allclose(compute(dask_client, lazy), expected, rtol=1e-5,
                               atol=1e-5 * float(np.abs(expected).max()))


def test_importing_ferroconv_does_not_import_dask():
    code = "import sys, ferroconv, ferroconv.nn; print(sorted(m for m in ('dask', 'distributed') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["ferroconv.dask", "ferroconv.dask._network"])
def test_docstring_examples_run(name):
    module = sys.modules[name]
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
