"""Many small planes pooled side by side (the ``interleaved_planes`` kernel: one
plane per vector lane). Each lane must give its plane exactly what a lone
plane gets, whatever lane it lands in and however full the last set of lanes
is, and agree with the NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

import ferroconv as fc
import pool_reference as ref
from pool_strategies import tolerance
from sided_pool_reference import pool as sided_pool

# (spatial, kernel, stride, padding): rows of fewer than 8 windows, so the
# windows have a tap table, and enough taps for the plan to interleave.
GEOMETRIES = [
    ((7, 7), (2, 2), (2, 2), (0, 0)),
    ((7, 7), (3, 3), (2, 2), (1, 1)),
    ((7, 7), (3, 3), (1, 1), (1, 1)),
    ((5, 9), (4, 2), (1, 3), (2, 1)),
    ((4, 7, 7), (4, 4, 4), (2, 4, 3), (0, 0, 0)),
    ((9, 9, 9), (3, 3, 3), (2, 2, 2), (0, 0, 0)),
    ((6,), (3,), (1,), (1,)),
]
FLOATS = [np.float32, np.float64]
INTEGERS = [np.int8, np.uint8, np.int16, np.int32, np.int64]
# 3 x 13 = 39 planes: two full sets of 16 lanes (or four of 8) and a partial one.
PLANES = (3, 13)


def rank_op(name: str, spatial) -> object:
    return getattr(fc, name.format(len(spatial)))


def values(dtype, shape, rng: np.random.Generator) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        # Few distinct values: ties, which must keep the first cell.
        return rng.integers(-3, 4, size=shape).astype(dtype) * np.asarray(0.5, dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def kind_plan(kind: str, shape, kernel, stride, padding, dtype, pass_name: str = "forward") -> str:
    return fc.explain_pool(kind, shape, kernel, stride=stride, padding=padding,
                           dtype=np.dtype(dtype).name).pass_named(pass_name).algorithm


@pytest.mark.parametrize("spatial, kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_the_plan_interleaves_these_geometries(spatial, kernel, stride, padding, dtype) -> None:
    shape = PLANES + spatial
    assert kind_plan("max", shape, kernel, stride, padding, dtype) == "interleaved_planes"
    # A lone plane has no lanes to fill: the tap table or the scan.
    assert kind_plan("max", (1, 1) + spatial, kernel, stride, padding, dtype) != "interleaved_planes"
    # The average's adjoint interleaves where its windows are many for the
    # plane's cells (two windows of 64 cells on 196 do not repay the copy).
    adjoint = kind_plan("avg", shape, kernel, stride, padding, dtype, "input_grad")
    assert adjoint == ("window_adjoint" if spatial == (4, 7, 7) else "interleaved_planes")
    assert kind_plan("avg", (1, 1) + spatial, kernel, stride, padding, dtype, "input_grad") == "window_adjoint"


@pytest.mark.parametrize("spatial, kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("dtype", FLOATS + INTEGERS)
def test_max_pool_of_many_small_planes_matches_the_reference(spatial, kernel, stride, padding, dtype) -> None:
    rng = np.random.default_rng(len(spatial) * 100 + kernel[0])
    x = values(dtype, PLANES + spatial, rng)
    pool = rank_op("max_pool{}d", spatial)
    out, indices = pool(x, kernel, stride=stride, padding=padding, return_indices=True)
    expected, expected_indices = ref.max_pool(x, kernel, stride, padding, (1,) * len(spatial), False)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(indices, expected_indices)


@pytest.mark.parametrize("spatial, kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("dtype", FLOATS)
def test_every_lane_gives_its_plane_what_a_lone_plane_gets(spatial, kernel, stride, padding, dtype) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal(PLANES + spatial).astype(dtype)
    x[0, 5].flat[3] = np.nan  # a NaN wins in its own plane only
    for name, kwargs in (("max_pool{}d", dict(return_indices=True)), ("avg_pool{}d", {})):
        pool = rank_op(name, spatial)
        together = pool(x, kernel, stride=stride, padding=padding, **kwargs)
        for n, c in np.ndindex(*PLANES):
            alone = pool(x[n:n + 1, c:c + 1], kernel, stride=stride, padding=padding, **kwargs)
            if isinstance(together, tuple):
                for t, a in zip(together, alone):
                    np.testing.assert_array_equal(t[n, c], a[0, 0])
            else:
                np.testing.assert_array_equal(together[n, c], alone[0, 0])


@pytest.mark.parametrize("spatial, kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_of_many_small_planes_matches_the_reference(spatial, kernel, stride, padding, dtype,
                                                             count_include_pad) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(PLANES + spatial).astype(dtype)
    # Any layout: a reversed, strided view of a larger array.
    big = np.zeros(PLANES + tuple(2 * n for n in spatial), dtype)
    view = big[(slice(None), slice(None)) + tuple(slice(None, None, -2) for _ in spatial)]
    view[...] = x
    out = rank_op("avg_pool{}d", spatial)(view, kernel, stride=stride, padding=padding,
                                           count_include_pad=count_include_pad)
    expected = ref.avg_pool(x, kernel, stride, padding, count_include_pad=count_include_pad)
    np.testing.assert_allclose(out, expected, **tolerance(dtype))


@pytest.mark.parametrize("spatial, kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_lp_pool_of_many_small_planes_matches_the_reference(spatial, kernel, stride, padding, p) -> None:
    rng = np.random.default_rng(5)
    x = np.abs(rng.standard_normal(PLANES + spatial))
    out = rank_op("lp_pool{}d", spatial)(x, p, kernel, stride=stride)
    expected = sided_pool(x, "lp", kernel, stride, p=p)
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=0)


def test_adaptive_pooling_of_many_small_planes_matches_the_reference() -> None:
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 7, 9, 9)).astype(np.float32)
    out, indices = fc.adaptive_max_pool2d(x, (4, 3), return_indices=True)
    expected, expected_indices = ref.adaptive_max_pool(x, (4, 3))
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(fc.adaptive_avg_pool2d(x, (4, 3)), ref.adaptive_avg_pool(x, (4, 3)),
                               **tolerance(np.float32))


@pytest.mark.parametrize("spatial, kernel, stride, padding", GEOMETRIES[:2] + GEOMETRIES[4:5])
def test_16_bit_planes_pool_as_their_float32_values(spatial, kernel, stride, padding) -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(13)
    for dtype in (np.dtype(ml_dtypes.bfloat16), np.dtype(np.float16)):
        x = rng.standard_normal(PLANES + spatial).astype(dtype)
        pool = rank_op("max_pool{}d", spatial)
        out, indices = pool(x, kernel, stride=stride, padding=padding, return_indices=True)
        wide, wide_indices = pool(x.astype(np.float32), kernel, stride=stride, padding=padding,
                                  return_indices=True)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out.astype(np.float32), wide)
        np.testing.assert_array_equal(indices, wide_indices)


@pytest.mark.parametrize("spatial, kernel, stride, padding", GEOMETRIES)
@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_backward_of_many_small_planes_matches_the_reference(spatial, kernel, stride, padding, dtype,
                                                                      count_include_pad) -> None:
    rng = np.random.default_rng(17)
    shape = PLANES + spatial
    out_shape = rank_op("avg_pool{}d", spatial)(np.zeros(shape, dtype), kernel, stride=stride,
                                                 padding=padding).shape
    g = rng.standard_normal(out_shape).astype(dtype)
    backward = rank_op("avg_pool{}d_backward", spatial)
    gx = backward(g, shape, kernel, stride=stride, padding=padding, count_include_pad=count_include_pad)
    expected = ref.avg_pool_backward(g, shape, kernel, stride, padding, count_include_pad=count_include_pad)
    np.testing.assert_allclose(gx, expected, **tolerance(dtype))
    # Each plane's gradient is the one a lone plane gets, to the bit.
    for n, c in np.ndindex(*PLANES):
        alone = backward(g[n:n + 1, c:c + 1], (1, 1) + spatial, kernel, stride=stride, padding=padding,
                         count_include_pad=count_include_pad)
        np.testing.assert_array_equal(gx[n, c], alone[0, 0])


def test_adaptive_avg_pool_backward_of_many_small_planes_matches_the_reference() -> None:
    rng = np.random.default_rng(19)
    g = rng.standard_normal((5, 7, 4, 3))
    gx = fc.adaptive_avg_pool2d_backward(g, (5, 7, 9, 9))
    np.testing.assert_allclose(gx, ref.adaptive_avg_pool_backward(g, (5, 7, 9, 9)), **tolerance(np.float64))


def test_global_pooling_of_tiny_planes_keeps_its_plane_reduction() -> None:
    # One window over five cells: the whole-plane kernels serve it both ways,
    # whatever the interleaving rule would say of its tap table.
    plan = fc.explain_pool("adaptive_avg", (4, 64, 5), 1)
    assert plan.pass_named("forward").algorithm == "plane_sum"
    assert plan.pass_named("input_grad").algorithm == "window_adjoint"
    g = np.arange(4 * 64, dtype=np.float64).reshape(4, 64, 1)
    np.testing.assert_array_equal(fc.adaptive_avg_pool1d_backward(g, (4, 64, 5)), np.repeat(g / 5, 5, axis=2))
