"""Zero-size batches and channels behave like PyTorch: conv{1,2,3}d, their backward
and the transposed convolutions with N=0 return ``(0, C_out, *out)`` (and
correctly shaped empty / zero gradients); C_out=0 gives ``(N, 0, *out)``; C_in=0
gives an empty sum (the bias). Results are new C-contiguous arrays of the input
dtype."""

import numpy as np
import pytest

import ferroconv as fc

RANKS = (1, 2, 3)
DTYPES = (np.float32, np.float64)

# (stride, padding, dilation, groups) for convolutions, per rank
CONV_CONFIGS = [
    dict(),
    dict(stride=2, padding=1, dilation=2),
    dict(padding="same", groups=2),
    dict(stride=(3, 1, 2), padding=((1, 0), (2, 1), (0, 2)), groups=2, padding_mode="reflect"),
]
# (stride, padding, output_padding, dilation, groups) for transposed convolutions
TRANSPOSE_CONFIGS = [
    dict(),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=3, padding=2, output_padding=2, dilation=2, groups=2),
]


def per_rank(value, rank):
    """Cut a per-axis option written for rank 3 down to ``rank`` axes."""
    if isinstance(value, tuple):
        return value[3 - rank:]
    return value


def config(cfg, rank):
    return {k: per_rank(v, rank) for k, v in cfg.items()}


def values(shape, dtype, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


def check_array(a, shape, dtype):
    assert isinstance(a, np.ndarray), type(a)
    assert a.shape == tuple(shape), (a.shape, tuple(shape))
    assert a.dtype == dtype, (a.dtype, dtype)
    assert a.flags.c_contiguous


def spatial_in(rank):
    return (7, 6, 5)[3 - rank:]


def conv_out(rank, kernel, cfg):
    return fc.conv_output_shape(spatial_in(rank), kernel, cfg.get("stride", 1), cfg.get("padding", 0),
                                cfg.get("dilation", 1), cfg.get("padding_mode", "zeros"))


def transpose_out(rank, kernel, cfg):
    out = fc.conv_transpose_output_shape(spatial_in(rank), kernel, cfg.get("stride", 1), cfg.get("padding", 0),
                                         cfg.get("output_padding", 0), cfg.get("dilation", 1))
    # the formula, independently: (L - 1) s - 2 p + d (k - 1) + op + 1
    s, p, op, d = (np.broadcast_to(cfg.get(k, dflt), (rank,)) for k, dflt in
                   (("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1)))
    expected = tuple(int((n - 1) * s_ - 2 * p_ + d_ * (kk - 1) + o + 1)
                     for n, kk, s_, p_, o, d_ in zip(spatial_in(rank), kernel, s, p, op, d))
    assert out == expected
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONV_CONFIGS)
@pytest.mark.parametrize("rank", RANKS)
def test_conv_with_empty_batch(rank, cfg, dtype):
    cfg = config(cfg, rank)
    groups = cfg.get("groups", 1)
    kernel = (3, 2, 3)[3 - rank:]
    x = values((0, 4) + spatial_in(rank), dtype)
    w = values((6, 4 // groups) + kernel, dtype, 1)
    b = values((6,), dtype, 2)
    out = conv_out(rank, kernel, cfg)
    y = getattr(fc, f"conv{rank}d")(x, w, b, **cfg)
    check_array(y, (0, 6) + out, dtype)
    grad_out = values((0, 6) + out, dtype, 3)
    gx, gw, gb = getattr(fc, f"conv{rank}d_backward")(grad_out, x, w, **cfg)
    check_array(gx, x.shape, dtype)
    check_array(gw, w.shape, dtype)
    check_array(gb, (6,), dtype)
    assert not gw.any() and not gb.any(), "gradients over an empty batch must be zero"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONV_CONFIGS)
@pytest.mark.parametrize("rank", RANKS)
def test_conv_with_no_output_channels(rank, cfg, dtype):
    cfg = config(cfg, rank)
    groups = cfg.get("groups", 1)
    kernel = (2, 3, 1)[3 - rank:]
    x = values((3, 4) + spatial_in(rank), dtype)
    w = values((0, 4 // groups) + kernel, dtype, 1)
    out = conv_out(rank, kernel, cfg)
    y = getattr(fc, f"conv{rank}d")(x, w, np.zeros((0,), dtype), **cfg)
    check_array(y, (3, 0) + out, dtype)
    gx, gw, gb = getattr(fc, f"conv{rank}d_backward")(np.zeros((3, 0) + out, dtype), x, w, **cfg)
    check_array(gx, x.shape, dtype)
    assert not gx.any(), "no output channel: the input gradient is zero"
    check_array(gw, w.shape, dtype)
    check_array(gb, (0,), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rank", RANKS)
def test_conv_with_no_input_channels_is_the_bias(rank, dtype):
    kernel = (3,) * rank
    x = values((2, 0) + spatial_in(rank), dtype)
    w = values((3, 0) + kernel, dtype, 1)
    b = np.array([1.5, -2.0, 0.25], dtype)
    y = getattr(fc, f"conv{rank}d")(x, w, b, padding=1)
    out = conv_out(rank, kernel, dict(padding=1))
    check_array(y, (2, 3) + out, dtype)
    np.testing.assert_array_equal(y, np.broadcast_to(b.reshape((1, 3) + (1,) * rank), y.shape))
    g = values(y.shape, dtype, 2)
    gx, gw, gb = getattr(fc, f"conv{rank}d_backward")(g, x, w, padding=1)
    check_array(gx, x.shape, dtype)
    check_array(gw, w.shape, dtype)
    np.testing.assert_allclose(gb, g.astype(np.float64).sum(axis=(0,) + tuple(range(2, 2 + rank))),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("rank", RANKS)
def test_unbatched_input_with_no_channels(rank):
    x = np.zeros((0,) + spatial_in(rank), np.float32)
    w = np.ones((2, 0) + (1,) * rank, np.float32)
    y = getattr(fc, f"conv{rank}d")(x, w)
    check_array(y, (2,) + spatial_in(rank), np.float32)
    assert not y.any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", TRANSPOSE_CONFIGS)
@pytest.mark.parametrize("rank", RANKS)
def test_conv_transpose_with_empty_batch(rank, cfg, dtype):
    cfg = config(cfg, rank)
    groups = cfg.get("groups", 1)
    kernel = (3, 2, 4)[3 - rank:]
    x = values((0, 4) + spatial_in(rank), dtype)
    w = values((4, 6 // groups) + kernel, dtype, 1)
    b = values((6,), dtype, 2)
    out = transpose_out(rank, kernel, cfg)
    y = getattr(fc, f"conv_transpose{rank}d")(x, w, b, **cfg)
    check_array(y, (0, 6) + out, dtype)
    gx, gw, gb = getattr(fc, f"conv_transpose{rank}d_backward")(values((0, 6) + out, dtype), x, w, **cfg)
    check_array(gx, x.shape, dtype)
    check_array(gw, w.shape, dtype)
    check_array(gb, (6,), dtype)
    assert not gw.any() and not gb.any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", TRANSPOSE_CONFIGS)
@pytest.mark.parametrize("rank", RANKS)
def test_conv_transpose_with_no_output_channels(rank, cfg, dtype):
    cfg = config(cfg, rank)
    kernel = (2, 3, 2)[3 - rank:]
    groups = cfg.get("groups", 1)
    x = values((2, 4) + spatial_in(rank), dtype)
    w = values((4, 0) + kernel, dtype, 1)
    out = transpose_out(rank, kernel, cfg)
    y = getattr(fc, f"conv_transpose{rank}d")(x, w, **cfg)
    check_array(y, (2, 0) + out, dtype)
    gx, gw, gb = getattr(fc, f"conv_transpose{rank}d_backward")(np.zeros((2, 0) + out, dtype), x, w, **cfg)
    check_array(gx, x.shape, dtype)
    assert not gx.any()
    check_array(gw, w.shape, dtype)
    check_array(gb, (0 * groups,), dtype)


@pytest.mark.parametrize("rank", RANKS)
def test_empty_batch_with_needs_subsets(rank):
    x = np.zeros((0, 2) + spatial_in(rank), np.float64)
    w = np.ones((3, 2) + (2,) * rank, np.float64)
    out = conv_out(rank, (2,) * rank, {})
    g = np.zeros((0, 3) + out)
    for needs in [(True, False, False), (False, True, False), (False, False, True), (False, False, False)]:
        grads = getattr(fc, f"conv{rank}d_backward")(g, x, w, needs=needs)
        for got, need, shape in zip(grads, needs, (x.shape, w.shape, (3,))):
            if need:
                check_array(got, shape, np.float64)
            else:
                assert got is None
