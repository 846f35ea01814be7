"""Integer max pooling (issue 20): ``max_pool{1,2,3}d`` with every padding form,
dilation, ceil mode and indices, adaptive, global and fractional max pooling and
max unpooling (and its backward, a gather) on int8, uint8, int16, uint16, int32 and
int64, against a plain NumPy loop written here from the definition: a window's
maximum over its *input* cells only (padding never wins, as PyTorch's -inf
padding), the first cell in scan order on ties. Average and Lp pooling, and every
backward that makes a float gradient, refuse integers with a TypeError that says
why.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc
from ferroconv import nn

INTS = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.int64)
MAX_POOL = {1: fc.max_pool1d, 2: fc.max_pool2d, 3: fc.max_pool3d}
SIZE = {1: 9, 2: 6, 3: 4}


# ------------------------------------------------------------------ reference


def sides(padding, size: int, kernel: int, stride: int, dilation: int, axis: int) -> tuple[int, int]:
    """(lo, hi) padding of one axis from any padding form."""
    if padding == "valid":
        return 0, 0
    if padding in ("same", "same_lower"):
        out = -(-size // stride)
        total = max((out - 1) * stride + dilation * (kernel - 1) + 1 - size, 0)
        small, large = total // 2, total - total // 2
        return (small, large) if padding == "same" else (large, small)
    if isinstance(padding, int):
        return padding, padding
    item = padding[axis]
    return (item, item) if isinstance(item, int) else tuple(item)


def reference_max_pool(x: np.ndarray, kernel, stride, padding, dilation, ceil_mode):
    """Values and flat per-plane indices of max pooling ``x (N, C, *S)``, by loops;
    None when a window reads no input cell (the op must refuse that)."""
    rank = x.ndim - 2
    spatial = x.shape[2:]
    pads = [sides(padding, spatial[a], kernel[a], stride[a], dilation[a], a) for a in range(rank)]
    out = []
    for a in range(rank):
        span = spatial[a] + sum(pads[a]) - dilation[a] * (kernel[a] - 1) - 1
        n = (-(-span // stride[a]) if ceil_mode else span // stride[a]) + 1
        if ceil_mode and (n - 1) * stride[a] >= spatial[a] + pads[a][0]:
            n -= 1  # a last window starting in the right padding is dropped
        out.append(n)
    values = np.zeros(x.shape[:2] + tuple(out), x.dtype)
    indices = np.zeros(values.shape, np.int64)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*(range(k) for k in out)):
            best, at = None, -1
            for tap in itertools.product(*(range(k) for k in kernel)):
                cell = [o[a] * stride[a] - pads[a][0] + tap[a] * dilation[a] for a in range(rank)]
                if all(0 <= cell[a] < spatial[a] for a in range(rank)):
                    value = x[(n, c, *cell)]
                    if best is None or value > best:
                        best, at = value, int(np.ravel_multi_index(cell, spatial))
            if best is None:
                return None
            values[(n, c, *o)], indices[(n, c, *o)] = best, at
    return values, indices


def adaptive_cells(o: int, length: int, out: int) -> range:
    return range(o * length // out, -(-(o + 1) * length // out))


def reference_adaptive(x: np.ndarray, out):
    rank = x.ndim - 2
    spatial = x.shape[2:]
    values = np.zeros(x.shape[:2] + tuple(out), x.dtype)
    indices = np.zeros(values.shape, np.int64)
    for n, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*(range(k) for k in out)):
            cells = itertools.product(*(adaptive_cells(o[a], spatial[a], out[a]) for a in range(rank)))
            best, at = None, -1
            for cell in cells:
                if best is None or x[(n, c, *cell)] > best:
                    best, at = x[(n, c, *cell)], int(np.ravel_multi_index(cell, spatial))
            values[(n, c, *o)], indices[(n, c, *o)] = best, at
    return values, indices


# ------------------------------------------------------------------ strategies


@st.composite
def integers(draw, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Values of ``dtype`` that stress the comparison: the type's extremes, a few
    distinct values (ties), all equal, or anything in the range."""
    info = np.iinfo(dtype)
    kind = draw(st.sampled_from(("extremes", "ties", "equal", "any")))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "equal":
        return np.full(shape, draw(st.sampled_from((info.min, info.max, 0))), dtype)
    if kind == "any":
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    pool = [info.min, info.min + 1, info.max, info.max - 1] if kind == "extremes" else [info.min, 0, 1, 2]
    if info.min < 0:
        pool += [-1, -2]
    return np.asarray(rng.choice(np.array(pool, dtype), size=shape), dtype)


@st.composite
def max_pool_cases(draw):
    rank = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(INTS))
    spatial = tuple(draw(st.integers(1, SIZE[rank])) for _ in range(rank))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    extents = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    form = draw(st.sampled_from(("ints", "pairs", "same", "same_lower", "valid")))
    if form == "ints":
        padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    elif form == "pairs":
        padding = tuple((draw(st.integers(0, e - 1)), draw(st.integers(0, e - 1))) for e in extents)
    else:
        padding = form
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) + spatial
    x = draw(integers(shape, dtype))
    return x, kernel, stride, padding, dilation, draw(st.booleans())


# ------------------------------------------------------------- max pooling


@given(max_pool_cases())
def test_integer_max_pool_matches_the_loop_reference(case) -> None:
    x, kernel, stride, padding, dilation, ceil_mode = case
    rank = x.ndim - 2
    pool = MAX_POOL[rank]
    try:
        expected = reference_max_pool(x, kernel, stride, padding, dilation, ceil_mode)
    except ValueError:
        expected = None
    if expected is None or any(s < 1 for s in expected[0].shape[2:]):
        with pytest.raises(ValueError, match=f"^max_pool{rank}d: "):
            pool(x, kernel, stride, padding, dilation, ceil_mode)
        return
    values, indices = pool(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    assert values.dtype == x.dtype and indices.dtype == np.int64
    np.testing.assert_array_equal(values, expected[0])
    np.testing.assert_array_equal(indices, expected[1])
    np.testing.assert_array_equal(pool(x, kernel, stride, padding, dilation, ceil_mode), expected[0])
    # unbatched input gives the first image's result
    np.testing.assert_array_equal(pool(x[0], kernel, stride, padding, dilation, ceil_mode), expected[0][0])


def as_float64_exact(x: np.ndarray) -> np.ndarray:
    """``x`` as float64; every value must be exactly representable."""
    wide = x.astype(np.float64)
    assert np.array_equal(wide.astype(x.dtype), x)
    return wide


@given(max_pool_cases())
def test_integer_max_pool_equals_the_float64_result(case) -> None:
    x, kernel, stride, padding, dilation, ceil_mode = case
    if x.dtype == np.int64:  # keep the values float64 holds exactly
        x = (x // 2**11).astype(np.int64)
    pool = MAX_POOL[x.ndim - 2]
    try:
        expected = pool(as_float64_exact(x), kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    except ValueError:
        return
    values, indices = pool(x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
    np.testing.assert_array_equal(values.astype(np.float64), expected[0])
    np.testing.assert_array_equal(indices, expected[1])


@pytest.mark.parametrize("dtype", INTS)
def test_a_window_of_minima_keeps_its_first_input_cell_never_a_padded_one(dtype) -> None:
    low = np.iinfo(dtype).min
    x = np.full((1, 1, 3, 3), low, dtype)
    values, indices = fc.max_pool2d(x, 3, stride=1, padding=1, return_indices=True)
    assert (values == low).all()
    # window (i, j) reads rows max(i-1, 0).. and columns max(j-1, 0)..: its first input cell
    first = np.array([[0, 0, 1], [0, 0, 1], [3, 3, 4]])
    np.testing.assert_array_equal(indices[0, 0], first)


@pytest.mark.parametrize("dtype", INTS)
def test_adaptive_and_global_integer_max_pool_match_the_loop_reference(dtype) -> None:
    rng = np.random.default_rng(3)
    info = np.iinfo(dtype)
    for rank, out in ((1, (4,)), (2, (3, 2)), (3, (2, 3, 2))):
        x = rng.integers(info.min, info.max, size=(2, 3) + (5,) * rank, dtype=dtype, endpoint=True)
        x.reshape(-1)[::7] = info.max  # ties of the maximum
        adaptive = getattr(fc, f"adaptive_max_pool{rank}d")
        values, indices = adaptive(x, out, return_indices=True)
        expected = reference_adaptive(x, out)
        assert values.dtype == x.dtype
        np.testing.assert_array_equal(values, expected[0])
        np.testing.assert_array_equal(indices, expected[1])
        whole_values, whole_indices = fc.global_max_pool(x, return_indices=True, keepdims=False)
        planes = x.reshape(2, 3, -1)
        np.testing.assert_array_equal(whole_values, planes.max(axis=2))
        np.testing.assert_array_equal(whole_indices, planes.argmax(axis=2))  # first maximum


@pytest.mark.parametrize("dtype", INTS)
@pytest.mark.parametrize("rank", [2, 3])
def test_fractional_integer_max_pool_equals_float64_with_the_same_samples(dtype, rank) -> None:
    rng = np.random.default_rng(rank)
    info = np.iinfo(dtype)
    high = min(int(info.max), 2**40)  # values float64 holds exactly
    x = rng.integers(max(int(info.min), -high), high, size=(2, 3) + (7,) * rank, dtype=dtype)
    samples = rng.random((2, 3, rank))
    pool = getattr(fc, f"fractional_max_pool{rank}d")
    values, indices = pool(x, 2, output_size=3, return_indices=True, random_samples=samples)
    expected = pool(as_float64_exact(x), 2, output_size=3, return_indices=True, random_samples=samples)
    assert values.dtype == x.dtype
    np.testing.assert_array_equal(values.astype(np.float64), expected[0])
    np.testing.assert_array_equal(indices, expected[1])
    taken = np.take_along_axis(x.reshape(6, -1), indices.reshape(6, -1), axis=1)
    np.testing.assert_array_equal(taken.reshape(values.shape), values)
    # drawn samples (float64 for integer input) are reproducible from a seed
    np.testing.assert_array_equal(pool(x, 2, output_ratio=0.5, rng=7), pool(x, 2, output_ratio=0.5, rng=7))


@pytest.mark.parametrize("dtype", INTS)
def test_unpooling_moves_integers_and_its_backward_gathers_them(dtype) -> None:
    info = np.iinfo(dtype)
    x = np.array([[[[info.min, 5, info.max, 0], [1, 2, 3, info.min]]]], dtype)
    values, indices = fc.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(values, np.array([[[[5, info.max]]]], dtype))
    out = fc.max_unpool2d(values, indices, 2)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1], expected[0, 0, 0, 2] = 5, info.max
    assert out.dtype == x.dtype
    np.testing.assert_array_equal(out, expected)
    grad = np.arange(8).reshape(x.shape).astype(dtype)
    gathered = fc.max_unpool2d_backward(grad, indices)
    assert gathered.dtype == x.dtype
    np.testing.assert_array_equal(gathered, np.array([[[[1, 2]]]], dtype))
    for rank in (1, 3):
        xr = np.arange(2 * 2 * 4**rank).reshape((2, 2) + (4,) * rank).astype(dtype)
        pooled, where = getattr(fc, f"max_pool{rank}d")(xr, 2, return_indices=True)
        restored = getattr(fc, f"max_unpool{rank}d")(pooled, where, 2)
        flat = np.zeros((4, 4**rank), dtype)
        np.put_along_axis(flat, where.reshape(4, -1), pooled.reshape(4, -1), axis=1)
        np.testing.assert_array_equal(restored, flat.reshape(xr.shape))


# --------------------------------------------------------- layouts, threads


def layouts(x: np.ndarray) -> dict[str, np.ndarray]:
    read_only = x.copy()
    read_only.setflags(write=False)
    strided = np.zeros(x.shape[:-1] + (2 * x.shape[-1],), x.dtype)[..., ::2]
    strided[...] = x
    negative = np.empty_like(x)[::-1, ..., ::-1]
    negative[...] = x
    return {"F": np.asfortranarray(x), "negative": negative, "read-only": read_only, "strided": strided,
            "big-endian": x.astype(x.dtype.newbyteorder(">"))}


@pytest.mark.parametrize("dtype", INTS)
def test_every_layout_gives_the_result_of_the_c_ordered_array(dtype) -> None:
    info = np.iinfo(dtype)
    x = np.random.default_rng(5).integers(info.min, info.max, size=(2, 3, 7, 6), dtype=dtype, endpoint=True)
    calls = [lambda a: fc.max_pool2d(a, 3, 2, padding="same", return_indices=True),
             lambda a: fc.adaptive_max_pool2d(a, (3, 4), return_indices=True),
             lambda a: fc.global_max_pool(a, return_indices=True),
             lambda a: fc.fractional_max_pool2d(a, 2, 3, return_indices=True, rng=1)]
    for call in calls:
        expected = call(x)
        for name, variant in layouts(x).items():
            got = call(variant)
            for g, e in zip(got, expected):
                assert g.dtype == e.dtype and g.dtype.isnative, name
                np.testing.assert_array_equal(g, e, err_msg=name)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32])
def test_results_are_bit_identical_for_one_and_two_threads(dtype, restore_threads) -> None:
    info = np.iinfo(dtype)
    x = np.random.default_rng(9).integers(info.min, info.max, size=(4, 16, 40, 40), dtype=dtype, endpoint=True)

    def run():
        return (fc.max_pool2d(x, 3, 2, padding=1, return_indices=True)
                + fc.max_pool2d(x, 2, return_indices=True)
                + fc.adaptive_max_pool2d(x, 7, return_indices=True))

    fc.set_num_threads(1)
    one = run()
    fc.set_num_threads(2)
    two = run()
    for a, b in zip(one, two):
        assert a.tobytes() == b.tobytes()


# --------------------------------------------------------------- ONNX, torch


def test_onnx_maxpool_2d_uint8() -> None:
    # ONNX backend node test "test_maxpool_2d_uint8": a 5x5 uint8 input holding 1..25
    # row by row, kernel 5x5, pads 2 on every side, stride 1. Window (i, j) reads rows
    # max(i - 2, 0)..min(i + 2, 4) and the same columns; the input grows along both
    # axes, so its maximum is the cell (min(i + 2, 4), min(j + 2, 4)): 5 r + c + 1.
    x = np.arange(1, 26, dtype=np.uint8).reshape(1, 1, 5, 5)
    expected = np.array([[13, 14, 15, 15, 15],
                         [18, 19, 20, 20, 20],
                         [23, 24, 25, 25, 25],
                         [23, 24, 25, 25, 25],
                         [23, 24, 25, 25, 25]], np.uint8).reshape(1, 1, 5, 5)
    got = fc.max_pool2d(x, 5, stride=1, padding=2)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, expected)
    # the same with ONNX's per-side pads and auto_pad="SAME_UPPER"
    np.testing.assert_array_equal(fc.max_pool2d(x, 5, stride=1, padding=((2, 2), (2, 2))), expected)
    np.testing.assert_array_equal(fc.max_pool2d(x, 5, stride=1, padding="same"), expected)


@pytest.mark.parametrize("dtype", [d for d in INTS if d != np.uint16])
def test_pytorch_parity_of_integer_max_pooling(dtype) -> None:
    torch = pytest.importorskip("torch")
    # PyTorch's CPU max_pool1d/2d/3d take these integer types but uint16 (its
    # adaptive and fractional max pooling and max_unpool take none: those are
    # checked above only)
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype)
    for rank, kernel, stride, padding, dilation, ceil_mode in [
        (1, 3, 2, 1, 1, False), (1, 2, 1, 1, 3, True),
        (2, 3, 2, 1, 1, True), (2, (2, 3), (1, 2), (1, 0), (2, 1), False),
        (3, 2, 2, 1, 1, False), (3, 3, (1, 2, 2), 1, 1, True),
    ]:
        x = rng.integers(info.min, info.max, size=(2, 3) + (7,) * rank, dtype=dtype, endpoint=True)
        x.reshape(-1)[::5] = info.min  # windows holding minima and padding
        values, indices = MAX_POOL[rank](x, kernel, stride, padding, dilation, ceil_mode, return_indices=True)
        torch_pool = getattr(torch.nn.functional, f"max_pool{rank}d")
        t_values, t_indices = torch_pool(torch.from_numpy(x), kernel, stride, padding, dilation, ceil_mode,
                                         return_indices=True)
        np.testing.assert_array_equal(values, t_values.numpy())
        np.testing.assert_array_equal(indices, t_indices.numpy())


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize("dtype", INTS)
def test_average_and_lp_pooling_of_integers_say_they_are_not_defined(dtype) -> None:
    x = np.ones((1, 2, 4, 4), dtype)
    average = "average pooling of integers is not defined here"
    lp = "Lp pooling of integers is not defined here"
    for call, name, why in [
        (lambda: fc.avg_pool2d(x, 2), "avg_pool2d", average),
        (lambda: fc.adaptive_avg_pool2d(x, 2), "adaptive_avg_pool2d", average),
        (lambda: fc.global_avg_pool(x), "global_avg_pool", average),
        (lambda: fc.avg_pool2d_backward(x, (4, 4), 1), "avg_pool2d_backward", average),
        (lambda: fc.lp_pool2d(x, 2, 2), "lp_pool2d", lp),
        (lambda: fc.lp_pool2d(x, math.inf, 2), "lp_pool2d", lp),
        (lambda: fc.global_lp_pool(x, 2), "global_lp_pool", lp),
    ]:
        message = f"{name}: x must have dtype float32, float64, float16 or bfloat16 ({why}), got {np.dtype(dtype)}"
        message = message.replace("x must", "grad_out must") if name.endswith("_backward") else message
        with pytest.raises(TypeError) as info:
            call()
        assert str(info.value) == message


def test_max_pooling_backward_refuses_an_integer_gradient() -> None:
    x = np.arange(16, dtype=np.uint8).reshape(1, 1, 4, 4)
    _, indices = fc.max_pool2d(x, 2, return_indices=True)
    for call, name in [(fc.max_pool2d_backward, "max_pool2d_backward"),
                       (fc.adaptive_max_pool2d_backward, "adaptive_max_pool2d_backward"),
                       (fc.fractional_max_pool2d_backward, "fractional_max_pool2d_backward")]:
        with pytest.raises(TypeError, match=f"^{name}: grad_out must have dtype .*a gradient is a float array"):
            call(np.ones(indices.shape, np.int32), indices, x.shape)
    # a float gradient of an integer pooling is fine
    grad = fc.max_pool2d_backward(np.ones(indices.shape, np.float32), indices, x.shape)
    assert grad.dtype == np.float32 and grad.sum() == 4


# ---------------------------------------------------------- nn and dask


@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_nn_max_pooling_layers_take_integers_for_inference(dtype) -> None:
    x = np.random.default_rng(2).integers(0, 100, size=(2, 3, 8, 8)).astype(dtype)
    layers = [(nn.MaxPool2d(3, 2, padding=1), lambda: fc.max_pool2d(x, 3, 2, 1)),
              (nn.AdaptiveMaxPool2d(3), lambda: fc.adaptive_max_pool2d(x, 3)),
              (nn.GlobalMaxPool(), lambda: fc.global_max_pool(x)),
              (nn.FractionalMaxPool2d(2, output_size=4, rng=3), lambda: fc.fractional_max_pool2d(x, 2, 4, rng=3))]
    for layer, functional in layers:
        out = layer(x)
        assert out.dtype == x.dtype
        np.testing.assert_array_equal(out, functional())
        with pytest.raises(TypeError, match=f"^{type(layer).__name__}.*integer max pooling is for inference"):
            layer.backward(np.ones(out.shape, np.float32))
    out, indices = nn.MaxPool2d(2, return_indices=True)(x)
    unpool = nn.MaxUnpool2d(2)
    np.testing.assert_array_equal(unpool(out, indices), fc.max_unpool2d(out, indices, 2))
    with pytest.raises(TypeError, match="^MaxUnpool2d.*for inference"):
        unpool.backward(np.ones(x.shape, np.float32))
    with pytest.raises(TypeError, match=r"^AvgPool2d.*\(average pooling of integers is not defined here\)"):
        nn.AvgPool2d(2)(x)
    with pytest.raises(TypeError, match=r"^LPPool2d.*\(Lp pooling of integers is not defined here\)"):
        nn.LPPool2d(2, 2)(x)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16])
def test_dask_max_pooling_of_integers_equals_the_in_memory_op(dtype) -> None:
    da = pytest.importorskip("dask.array")
    import ferroconv.dask as fcd

    info = np.iinfo(dtype)
    x = np.random.default_rng(4).integers(info.min, info.max, size=(2, 2, 13, 11), dtype=dtype, endpoint=True)
    x[:, :, :3, :3] = info.min  # minima next to the padding
    lazy = da.from_array(x, chunks=(1, 2, 5, 4))
    for kwargs in ({"kernel_size": 3, "stride": 2, "padding": 1}, {"kernel_size": 2, "padding": "same"}):
        got = fcd.max_pool2d(lazy, **kwargs).compute()
        assert got.dtype == x.dtype
        np.testing.assert_array_equal(got, fc.max_pool2d(x, **kwargs))
    with pytest.raises(TypeError, match=r"average pooling of integers is not defined here"):
        fcd.avg_pool2d(lazy, 2)
