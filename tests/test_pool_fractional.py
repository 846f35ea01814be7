"""Fractional max pooling: windows against a plain loop over PyTorch's published
interval formula, PyTorch parity (values, indices, gradients) with the same
samples, reproducibility, thread independence, layouts and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ferroconv as fc
from ferroconv import nn


def interval_starts(u, n_in, n_out, k):
    """PyTorch's sequence: int((i + u) * alpha) - int(u * alpha), alpha = (in - k) /
    (out - 1) in u's dtype, and the last window flush with the end."""
    t = type(u)
    starts = []
    for i in range(n_out - 1):
        alpha = t(n_in - k) / t(n_out - 1)
        starts.append(int((t(i) + u) * alpha) - int(u * alpha))
    return starts + [n_in - k]


def reference(x, kernel, out, samples):
    """Loops: plane by plane, window by window, the first maximum (the last NaN)."""
    rank = len(kernel)
    order = (1, 0) if rank == 2 else (0, 1, 2)  # which sample drives which axis
    values = np.empty(x.shape[:2] + tuple(out), x.dtype)
    indices = np.empty(values.shape, np.int64)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            seq = [interval_starts(samples[n, c, order.index(a)], x.shape[2 + a], out[a], kernel[a])
                   for a in range(rank)]
            plane = x[n, c]
            for o in np.ndindex(*out):
                best, where = None, None
                for t in np.ndindex(*kernel):
                    cell = tuple(seq[a][o[a]] + t[a] for a in range(rank))
                    value = plane[cell]
                    # PyTorch's scan: a larger cell or any NaN replaces the
                    # maximum (so the last NaN of a window wins)
                    if best is None or value > best or np.isnan(value):
                        best, where = value, np.ravel_multi_index(cell, plane.shape)
                values[(n, c) + o] = best
                indices[(n, c) + o] = where
    return values, indices


@st.composite
def cases(draw):
    rank = draw(st.sampled_from([2, 3]))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    # rows of 4, 8 or 16 outputs or more run in vector chunks (the last one
    # overlapping)
    out = tuple(draw(st.integers(1, 4)) for _ in range(rank - 1)) + (
        draw(st.one_of(st.integers(1, 12), st.integers(15, 40))),)
    spatial = tuple(o + k - 1 + draw(st.integers(0, 4 if o < 8 else 30)) for o, k in zip(out, kernel))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int32, np.uint8]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + spatial
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    x = rng.standard_normal(shape)
    if draw(st.booleans()) or not np.issubdtype(dtype, np.floating):
        x = np.round(x * 2)  # ties
    if np.issubdtype(dtype, np.floating):
        special = draw(st.sampled_from([None, np.nan, -np.inf]))
        if special is not None:
            x.ravel()[rng.integers(0, x.size, size=max(1, x.size // 20))] = special
    x = (x + (3 if dtype == np.uint8 else 0)).astype(dtype)
    samples = rng.random(shape[:2] + (rank,))
    if np.issubdtype(dtype, np.floating):
        samples = samples.astype(dtype)
    layout = draw(st.sampled_from(["C", "F", "reversed"]))
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "reversed":
        x = np.ascontiguousarray(x[..., ::-1])[..., ::-1]
    return rank, x, kernel, out, samples


@settings(deadline=None)
@given(cases())
def test_windows_and_maxima_match_the_loops(case) -> None:
    rank, x, kernel, out, samples = case
    pool = getattr(fc, f"fractional_max_pool{rank}d")
    values, indices = pool(x, kernel, out, return_indices=True, random_samples=samples)
    expected_values, expected_indices = reference(x, kernel, out, samples)
    np.testing.assert_array_equal(values, expected_values)
    np.testing.assert_array_equal(indices, expected_indices)
    if not np.issubdtype(x.dtype, np.floating):
        return
    # the gradient lands on the argmax
    g = np.random.default_rng(0).standard_normal(values.shape).astype(x.dtype)
    grad = getattr(fc, f"fractional_max_pool{rank}d_backward")(g, indices, x.shape)
    expected = np.zeros(x.shape, np.float64).reshape(x.shape[0], x.shape[1], -1)
    magnitude = np.zeros_like(expected)  # sum of |terms| per cell: bounds the rounding
    for n, c in np.ndindex(*x.shape[:2]):
        np.add.at(expected[n, c], indices[n, c].ravel(), g[n, c].ravel().astype(np.float64))
        np.add.at(magnitude[n, c], indices[n, c].ravel(), np.abs(g[n, c].ravel().astype(np.float64)))
    error = np.abs(grad.astype(np.float64) - expected.reshape(x.shape))
    assert np.all(error <= 4 * np.finfo(x.dtype).eps * magnitude.reshape(x.shape))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_16_bit_inputs_place_windows_in_their_own_arithmetic(dtype: str) -> None:
    if dtype == "bfloat16":
        dtype = pytest.importorskip("ml_dtypes").bfloat16
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 13, 11)).astype(dtype)
    samples = rng.random((2, 3, 2)).astype(dtype)
    values, indices = fc.fractional_max_pool2d(x, (3, 2), (5, 6), return_indices=True, random_samples=samples)
    expected_values, expected_indices = reference(x, (3, 2), (5, 6), samples)
    assert values.dtype == x.dtype
    np.testing.assert_array_equal(values.astype(np.float32), expected_values.astype(np.float32))
    np.testing.assert_array_equal(indices, expected_indices)


def test_nan_propagates_and_unbatched_input() -> None:
    x = np.arange(36, dtype=np.float64).reshape(1, 6, 6)
    x[0, 4, 4] = np.nan
    samples = np.full((1, 1, 2), 0.3)
    values, indices = fc.fractional_max_pool2d(x, 2, 3, return_indices=True, random_samples=samples)
    assert values.shape == (1, 3, 3) and np.isnan(values[0, 2, 2]) and indices[0, 2, 2] == 28


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matches_pytorch(rank: int, dtype: type) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(rank)
    shape = (2, 3) + ((11, 9) if rank == 2 else (7, 6, 8))
    x = rng.standard_normal(shape).astype(dtype)
    samples = rng.random((2, 3, rank)).astype(dtype)
    pool = getattr(torch.nn.functional, f"fractional_max_pool{rank}d")
    for kwargs in ({"output_size": 4}, {"output_ratio": (0.6,) * rank}):
        tx = torch.from_numpy(x).requires_grad_()
        t_values, t_indices = pool(tx, 2, return_indices=True, _random_samples=torch.from_numpy(samples), **kwargs)
        values, indices = getattr(fc, f"fractional_max_pool{rank}d")(x, 2, return_indices=True,
                                                                       random_samples=samples, **kwargs)
        np.testing.assert_array_equal(values, t_values.detach().numpy())
        np.testing.assert_array_equal(indices, t_indices.numpy())
        g = rng.standard_normal(values.shape).astype(dtype)
        t_values.backward(torch.from_numpy(g))
        grad = getattr(fc, f"fractional_max_pool{rank}d_backward")(g, indices, x.shape)
        np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-6, atol=1e-7)


def test_seeded_draws_are_reproducible_and_bit_identical_across_threads() -> None:
    x = np.random.default_rng(0).standard_normal((4, 8, 20, 20)).astype(np.float32)
    first = fc.fractional_max_pool2d(x, 3, output_ratio=(0.5, 0.7), rng=5, return_indices=True)
    saved = fc.get_num_threads()
    try:
        fc.set_num_threads(1)
        again = fc.fractional_max_pool2d(x, 3, output_ratio=(0.5, 0.7), rng=5, return_indices=True)
    finally:
        fc.set_num_threads(saved)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    other = fc.fractional_max_pool2d(x, 3, output_ratio=(0.5, 0.7), rng=6)
    assert first[0].shape == (4, 8, 10, 14) and not np.array_equal(first[0], other)


def test_layer_draws_new_windows_each_forward_and_routes_the_gradient() -> None:
    layer = nn.FractionalMaxPool2d(2, output_size=(3, 4), return_indices=False, rng=0)
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 9))
    first, second = layer(x), layer(x)
    assert first.shape == (2, 3, 3, 4) and not np.array_equal(first, second)
    g = np.ones_like(second)
    grad = layer.backward(g)
    assert grad.shape == x.shape and grad.sum() == g.sum()
    volume = nn.FractionalMaxPool3d((2, 2, 1), output_ratio=0.5, rng=0)
    assert volume(np.zeros((1, 1, 6, 6, 6))).shape == (1, 1, 3, 3, 3)


def test_errors() -> None:
    x = np.zeros((1, 2, 6, 6), np.float32)
    with pytest.raises(ValueError, match="exactly one of output_size and output_ratio"):
        fc.fractional_max_pool2d(x, 2)
    with pytest.raises(ValueError, match="exactly one of output_size and output_ratio"):
        fc.fractional_max_pool2d(x, 2, 3, 0.5)
    with pytest.raises(ValueError, match="too large for output_size"):
        fc.fractional_max_pool2d(x, 4, 4)
    with pytest.raises(ValueError, match="output_ratio must lie in \\(0, 1\\)"):
        fc.fractional_max_pool2d(x, 2, output_ratio=1.5)
    with pytest.raises(ValueError, match="random_samples must have shape \\(1, 2, 2\\)"):
        fc.fractional_max_pool2d(x, 2, 3, random_samples=np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="random_samples must lie in \\[0, 1\\)"):
        fc.fractional_max_pool2d(x, 2, 3, random_samples=np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match="random_samples or rng, not both"):
        fc.fractional_max_pool2d(x, 2, 3, random_samples=np.zeros((1, 2, 2)), rng=0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        fc.fractional_max_pool2d(x, 2, 3, rng="seed")
    with pytest.raises(TypeError, match="x must have dtype float32, float64, float16, bfloat16, int8, uint8, "
                                        "int16, uint16, int32 or int64, got bool"):
        fc.fractional_max_pool2d(x.astype(np.bool_), 2, 3)


def test_the_bench_row_times_the_same_computation_in_both_libraries() -> None:
    torch = pytest.importorskip("torch")
    from ferroconv import bench

    wl = bench.PoolWorkload("fractional small", "fractional", (2, 3, 12, 10), 2, 2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(wl.shape).astype(np.float32)
    samples = rng.random((2, 3, 2)).astype(np.float32)
    values, indices = bench._torch_pool(torch, torch.from_numpy(x), wl, samples)()
    ours, our_indices = fc.fractional_max_pool2d(x, 2, (6, 5), return_indices=True, random_samples=samples)
    np.testing.assert_array_equal(ours, values.numpy())
    np.testing.assert_array_equal(our_indices, indices.numpy())
    row = bench._run_pool(wl, rng, 1, 1, torch, True)
    assert row["ferroconv_fwd_ms"] > 0 and row["torch_fwd_ms"] > 0 and "numpy_fwd_ms" not in row
