"""The layers added for issue 19 (unpooling, adaptive and global max pooling,
channel dropout, upsampling, softmax, group norm): forward against plain NumPy
references, backward against central finite differences in float64, PyTorch
parity when torch is installed, and errors for bad arguments."""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import pytest

import pool_reference as ref
from ferroconv import nn
from nn_gradcheck import check_gradients, projection


def raises(exc, *fragments):
    """pytest.raises matching every fragment (literally, in order)."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


def distinct_values(shape, seed=0):
    """A random permutation of evenly spaced values in [-2, 2): no ties, so the
    maxima are far from changing under a finite-difference step."""
    size = int(np.prod(shape))
    values = (np.arange(size) + 0.25) / size * 4 - 2
    return np.random.default_rng(seed).permutation(values).reshape(shape)


def torch_or_skip():
    return pytest.importorskip("torch")


# ------------------------------------------------------------------ pooling

UNPOOL_CASES = [
    (1, (2, 3, 9), dict(kernel_size=3, stride=2, padding=1), None),
    (2, (2, 2, 6, 7), dict(kernel_size=2), (6, 7)),
    (2, (1, 2, 5, 5), dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)), (5, 5)),
    (2, (1, 2, 6, 4), dict(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0)), None),
    (3, (1, 2, 4, 5, 4), dict(kernel_size=2), (1, 2, 4, 5, 4)),
]


@pytest.mark.parametrize("rank, shape, geometry, output_size", UNPOOL_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_unpool_scatters_the_pooled_values(rank, shape, geometry, output_size, dtype):
    x = distinct_values(shape).astype(dtype)
    pool = getattr(nn, f"MaxPool{rank}d")(**geometry, return_indices=True)
    pooled, indices = pool(x)
    unpool = getattr(nn, f"MaxUnpool{rank}d")(**geometry)
    out = unpool(pooled, indices) if output_size is None else unpool(pooled, indices, output_size=output_size)
    k, s, p = unpool.kernel_size, unpool.stride, unpool.padding
    spatial = ref.unpool_default_size(pooled.shape[2:], k, s, p) if output_size is None else x.shape[2:]
    expected = ref.scatter(pooled, indices, pooled.shape[:2] + tuple(spatial), accumulate=False)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    # backward: d out / d pooled reads grad_out at the indices
    grad_out = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    grad = unpool.backward(grad_out)
    planes = grad_out.reshape(grad_out.shape[0] * grad_out.shape[1], -1)
    gathered = np.array([row[i] for row, i in zip(planes, indices.reshape(planes.shape[0], -1))])
    np.testing.assert_array_equal(grad, gathered.reshape(pooled.shape))


def test_max_unpool_backward_matches_finite_differences():
    x = distinct_values((2, 2, 6, 4))
    pooled, indices = nn.MaxPool2d(2, return_indices=True)(x)

    class Unpool(nn.Module):  # the values as the only (differentiable) input
        def __init__(self):
            super().__init__()
            self.inner = nn.MaxUnpool2d(2)

        def forward(self, values):
            return self.inner(values, indices)

        def backward(self, grad_out):
            return self.inner.backward(grad_out)

    check_gradients(Unpool(), pooled, projection(x.shape), per_array=12)


def test_max_unpool_accepts_unbatched_input():
    x = distinct_values((3, 8))
    pooled, indices = nn.MaxPool1d(2, return_indices=True)(x)
    out = nn.MaxUnpool1d(2)(pooled, indices)
    np.testing.assert_array_equal(out, nn.MaxUnpool1d(2)(pooled[None], indices[None])[0])


@pytest.mark.parametrize("rank, shape, size", [
    (1, (2, 3, 10), 4), (2, (2, 2, 7, 5), (3, 2)), (3, (1, 2, 5, 3, 4), 2), (2, (1, 1, 3, 3), 5)])
def test_adaptive_max_pool_matches_reference_and_finite_differences(rank, shape, size):
    x = distinct_values(shape)
    layer = getattr(nn, f"AdaptiveMaxPool{rank}d")(size, return_indices=True)
    out, indices = layer(x)
    expected, expected_indices = ref.adaptive_max_pool(x, layer.output_size)
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(indices, expected_indices)
    grad_out = np.random.default_rng(2).standard_normal(out.shape)
    expected_grad = ref.scatter(grad_out, indices, x.shape, accumulate=True)
    np.testing.assert_allclose(layer.backward(grad_out), expected_grad, rtol=1e-15)
    layer.return_indices = False
    check_gradients(layer, x, projection(out.shape), per_array=15)


@pytest.mark.parametrize("shape", [(2, 3, 5), (2, 3, 4, 5), (1, 2, 3, 4, 2)])
def test_global_max_pool_is_the_max_over_spatial_axes(shape):
    x = distinct_values(shape)
    layer = nn.GlobalMaxPool()
    out = layer(x)
    axes = tuple(range(2, x.ndim))
    np.testing.assert_array_equal(out, x.max(axis=axes, keepdims=True))
    grad_out = np.random.default_rng(3).standard_normal(out.shape)
    expected = np.where(x == x.max(axis=axes, keepdims=True), grad_out, 0.0)
    np.testing.assert_array_equal(layer.backward(grad_out), expected)
    check_gradients(layer, x, projection(out.shape))


def test_pooling_layers_match_torch():
    torch = torch_or_skip()
    x = distinct_values((2, 3, 7, 6))
    xt = torch.tensor(x, requires_grad=True)
    for ours, theirs in [(nn.AdaptiveMaxPool2d((3, 4)), torch.nn.AdaptiveMaxPool2d((3, 4))),
                         (nn.GlobalMaxPool(), torch.nn.AdaptiveMaxPool2d(1))]:
        out = ours(x)
        out_t = theirs(xt)
        grad_out = np.random.default_rng(4).standard_normal(out.shape)
        xt.grad = None
        out_t.backward(torch.tensor(grad_out))
        np.testing.assert_array_equal(out, out_t.detach().numpy())
        np.testing.assert_array_equal(ours.backward(grad_out), xt.grad.numpy())
    pooled, indices = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    values = pooled.clone().requires_grad_(True)
    out_t = torch.nn.MaxUnpool2d(2)(values, indices, output_size=x.shape[2:])
    grad_out = np.random.default_rng(5).standard_normal(out_t.shape)
    out_t.backward(torch.tensor(grad_out))
    unpool = nn.MaxUnpool2d(2)
    out = unpool(pooled.numpy(), indices.numpy(), output_size=x.shape[2:])
    np.testing.assert_array_equal(out, out_t.detach().numpy())
    np.testing.assert_array_equal(unpool.backward(grad_out), values.grad.numpy())


def test_pooling_layer_errors():
    with raises(ValueError, "MaxUnpool2d", "kernel_size"):
        nn.MaxUnpool2d(0)
    with raises(ValueError, "MaxUnpool1d", "stride"):
        nn.MaxUnpool1d(2, stride=0)
    with raises(ValueError, "AdaptiveMaxPool2d", "output_size"):
        nn.AdaptiveMaxPool2d(0)
    unpool = nn.MaxUnpool2d(2)
    x = np.zeros((1, 2, 3, 3))
    with raises(ValueError, "MaxUnpool2d(", "indices", "(1, 1, 3, 3)", "(1, 2, 3, 3)"):
        unpool(x, np.zeros((1, 1, 3, 3), np.int64))
    with raises(ValueError, "MaxUnpool2d(", "(N, C, H, W)", "(3, 3)"):
        unpool(np.zeros((3, 3)), np.zeros((3, 3), np.int64))
    with raises(ValueError, "MaxUnpool2d(", "backward called before forward"):
        unpool.backward(np.zeros((1, 2, 6, 6)))
    unpool(x, np.zeros(x.shape, np.int64))
    with raises(ValueError, "MaxUnpool2d(", "(1, 2, 5, 5)", "(1, 2, 6, 6)"):
        unpool.backward(np.zeros((1, 2, 5, 5)))
    with raises(ValueError, "GlobalMaxPool(", "(3, 4)"):
        nn.GlobalMaxPool()(np.zeros((3, 4)))
    with raises(ValueError, "AdaptiveMaxPool3d(", "(1, 4, 4)"):
        nn.AdaptiveMaxPool3d(2)(np.zeros((1, 4, 4)))


# ----------------------------------------------------------- channel dropout

DROPOUT_CASES = [
    (nn.Dropout1d, (6, 5, 7), 2), (nn.Dropout1d, (5, 7), 1), (nn.Dropout2d, (4, 6, 3, 3), 2),
    (nn.Dropout3d, (3, 5, 2, 3, 2), 2), (nn.Dropout3d, (6, 2, 3, 2), 1),
]


@pytest.mark.parametrize("layer_type, shape, channel_axes", DROPOUT_CASES)
def test_channel_dropout_drops_whole_channels_and_scales_the_rest(layer_type, shape, channel_axes):
    p = 0.4
    x = distinct_values(shape) + 3.0  # no zeros: a zero output means dropped
    layer = layer_type(p, rng=0)
    out = layer(x)
    planes = out.reshape(int(np.prod(shape[:channel_axes])), -1)
    inputs = x.reshape(planes.shape)
    dropped = np.all(planes == 0, axis=1)
    np.testing.assert_allclose(planes[~dropped], inputs[~dropped] / (1 - p), rtol=1e-15)
    assert np.all(planes[dropped] == 0) and 0 < dropped.sum() < len(dropped)
    grad_out = np.random.default_rng(1).standard_normal(shape)
    grad = layer.backward(grad_out).reshape(planes.shape)
    np.testing.assert_allclose(grad[~dropped], grad_out.reshape(planes.shape)[~dropped] / (1 - p), rtol=1e-15)
    assert np.all(grad[dropped] == 0)
    check_gradients(layer, x, projection(shape), before_forward=lambda: setattr(layer, "rng",
                                                                               np.random.default_rng(0)))
    layer.eval()
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(grad_out), grad_out)


def test_channel_dropout_rate_and_extremes():
    x = np.ones((400, 50, 2, 2), np.float32)
    out = nn.Dropout2d(0.3, rng=1)(x)
    rate = np.mean(out[:, :, 0, 0] == 0)
    assert abs(rate - 0.3) < 0.01  # 20000 channels: 5 standard deviations is 0.016
    assert out.dtype == np.float32
    np.testing.assert_array_equal(nn.Dropout2d(1.0)(x), 0)
    np.testing.assert_array_equal(nn.Dropout2d(0.0)(x), x)


def test_channel_dropout_errors():
    with raises(ValueError, "Dropout2d", "p", "1.5"):
        nn.Dropout2d(1.5)
    with raises(ValueError, "Dropout2d(p=0.5)", "(N, C, H, W)", "(2, 3, 4)"):
        nn.Dropout2d()(np.zeros((2, 3, 4)))
    with raises(ValueError, "Dropout3d(p=0.5)", "(N, C, D, H, W) or (C, D, H, W)", "(2, 3, 4)"):
        nn.Dropout3d()(np.zeros((2, 3, 4)))
    with raises(ValueError, "Dropout1d(p=0.5)", "(N, C, L) or (C, L)", "(2,)"):
        nn.Dropout1d()(np.zeros(2))


# ------------------------------------------------------------------ upsample

def upsample_reference(x, out_spatial, inverse_scales):
    """Nearest neighbour with PyTorch's CPU index rule, one output cell at a time:
    source = min(floor(o * s), in - 1) in float32, s = 1 / scale_factor or in / out."""
    spatial = x.shape[2:]
    out = np.empty(x.shape[:2] + tuple(out_spatial), x.dtype)
    for position in np.ndindex(*out_spatial):
        source = []
        for o, n, m, s in zip(position, spatial, out_spatial, inverse_scales):
            if m == n:
                source.append(o)
            elif m == 2 * n:
                source.append(o // 2)
            else:
                scale = np.float32(s) if s is not None else np.float32(n) / np.float32(m)
                source.append(min(int(np.floor(np.float32(o) * scale)), n - 1))
        out[(slice(None), slice(None)) + position] = x[(slice(None), slice(None)) + tuple(source)]
    return out


UPSAMPLE_CASES = [
    ((2, 3, 4), dict(scale_factor=2), (8,), [None]),
    ((1, 2, 3, 4), dict(scale_factor=(3, 2)), (9, 8), [1 / 3, None]),
    ((1, 2, 3, 4), dict(size=(7, 5)), (7, 5), [None, None]),
    ((2, 1, 5, 3), dict(size=2), (2, 2), [None, None]),
    ((1, 2, 5, 7), dict(scale_factor=1.5), (7, 10), [1 / 1.5, 1 / 1.5]),
    ((1, 2, 5, 7), dict(scale_factor=1.5, recompute_scale_factor=True), (7, 10), [None, None]),
    ((1, 1, 2, 3, 2), dict(scale_factor=(2, 1, 3)), (4, 3, 6), [None, None, 1 / 3]),
    ((1, 2, 3, 2, 3), dict(size=(4, 5, 2)), (4, 5, 2), [None, None, None]),
]


@pytest.mark.parametrize("shape, options, out_spatial, inverse_scales", UPSAMPLE_CASES)
def test_upsample_matches_reference_and_finite_differences(shape, options, out_spatial, inverse_scales):
    x = distinct_values(shape)
    layer = nn.Upsample(**options)
    out = layer(x)
    np.testing.assert_array_equal(out, upsample_reference(x, out_spatial, inverse_scales))
    check_gradients(layer, x, projection(out.shape), per_array=12)


def test_upsample_by_an_integer_factor_repeats_every_cell():
    x = distinct_values((2, 3, 4, 5)).astype(np.float32)
    out = nn.Upsample(scale_factor=(2, 3))(x)
    np.testing.assert_array_equal(out, np.repeat(np.repeat(x, 2, axis=2), 3, axis=3))
    layer = nn.Upsample(scale_factor=(2, 3))
    layer(x)
    grad = layer.backward(np.ones(out.shape, np.float32))
    np.testing.assert_array_equal(grad, np.full(x.shape, 6.0, np.float32))


def test_upsample_matches_torch_for_many_sizes():
    torch = torch_or_skip()
    functional = torch.nn.functional
    x = distinct_values((1, 2, 6, 7))
    for options in [dict(scale_factor=f) for f in (0.5, 0.7, 1.3, 1.5, 1.75, 2.5, 3, (1.2, 2.6))] + \
                   [dict(size=s) for s in ((3, 3), (5, 9), (11, 13), (12, 14), (13, 20), (6, 15))] + \
                   [dict(scale_factor=1.7, recompute_scale_factor=True)]:
        layer = nn.Upsample(**options)
        out = layer(x)
        xt = torch.tensor(x, requires_grad=True)
        out_t = functional.interpolate(xt, mode="nearest", **options)
        np.testing.assert_array_equal(out, out_t.detach().numpy(), err_msg=str(options))
        grad_out = np.random.default_rng(0).standard_normal(out.shape)
        out_t.backward(torch.tensor(grad_out))
        np.testing.assert_allclose(layer.backward(grad_out), xt.grad.numpy(), rtol=1e-14, atol=1e-15,
                                   err_msg=str(options))


def test_upsample_errors():
    with raises(ValueError, "Upsample", "only mode='nearest'", "bilinear"):
        nn.Upsample(scale_factor=2, mode="bilinear")
    with raises(ValueError, "Upsample", "mode must be one of", "cubic"):
        nn.Upsample(scale_factor=2, mode="cubic")
    with raises(ValueError, "Upsample", "exactly one of size and scale_factor"):
        nn.Upsample()
    with raises(ValueError, "Upsample", "exactly one of size and scale_factor"):
        nn.Upsample(size=3, scale_factor=2)
    with raises(ValueError, "Upsample", "scale_factor", "> 0"):
        nn.Upsample(scale_factor=0)
    with raises(ValueError, "Upsample", "size", ">= 1"):
        nn.Upsample(size=(2, 0))
    with raises(ValueError, "Upsample", "align_corners"):
        nn.Upsample(scale_factor=2, align_corners=True)
    with raises(ValueError, "Upsample(size=(2, 3)", "size has 2 entries", "(1, 1, 4)", "1 spatial"):
        nn.Upsample(size=(2, 3))(np.zeros((1, 1, 4)))
    with raises(ValueError, "Upsample(", "(N, C, L)", "(4, 4)"):
        nn.Upsample(scale_factor=2)(np.zeros((4, 4)))
    with raises(ValueError, "Upsample(", "empty output", "(0,)"):
        nn.Upsample(scale_factor=0.1)(np.zeros((1, 1, 5)))
    with raises(TypeError, "Upsample", "int64"):
        nn.Upsample(scale_factor=2)(np.zeros((1, 1, 5), np.int64))


# ------------------------------------------------------------------ softmax

@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_softmax_and_log_softmax_match_reference_and_finite_differences(dim):
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    softmax, log_softmax = nn.Softmax(dim), nn.LogSoftmax(dim)
    exp = np.exp(x)
    expected = exp / exp.sum(axis=dim, keepdims=True)
    np.testing.assert_allclose(softmax(x), expected, rtol=1e-14)
    np.testing.assert_allclose(log_softmax(x), np.log(expected), rtol=1e-13, atol=1e-15)
    check_gradients(softmax, x, projection(x.shape), per_array=12)
    check_gradients(log_softmax, x, projection(x.shape), per_array=12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_is_stable_for_large_inputs(dtype):
    x = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1001.0, -1e4]], dtype)
    shifted = x - x.max(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow or division warning
        out, log_out = nn.Softmax(1)(x), nn.LogSoftmax(1)(x)
    expected = np.exp(shifted.astype(np.float64)) / np.exp(shifted.astype(np.float64)).sum(axis=1, keepdims=True)
    assert out.dtype == dtype and log_out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_allclose(log_out[0], np.log(expected[0]), rtol=1e-6)
    assert np.isfinite(log_out).all()


def test_softmax_matches_torch():
    torch = torch_or_skip()
    x = np.random.default_rng(1).standard_normal((2, 3, 4)) * 5
    grad_out = np.random.default_rng(2).standard_normal(x.shape)
    for ours, theirs in [(nn.Softmax(1), torch.nn.Softmax(1)), (nn.LogSoftmax(-1), torch.nn.LogSoftmax(-1))]:
        xt = torch.tensor(x, requires_grad=True)
        out_t = theirs(xt)
        out_t.backward(torch.tensor(grad_out))
        np.testing.assert_allclose(ours(x), out_t.detach().numpy(), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(ours.backward(grad_out), xt.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_softmax_errors():
    with raises(TypeError, "Softmax", "dim must be an int", "None"):
        nn.Softmax(None)
    with raises(ValueError, "LogSoftmax(dim=2)", "dim 2 is out of range", "(3, 4)"):
        nn.LogSoftmax(2)(np.zeros((3, 4)))
    with raises(ValueError, "Softmax(dim=1)", "backward called before forward"):
        nn.Softmax(1).backward(np.zeros(3))


# --------------------------------------------------------------- group norm

def group_norm_reference(x, groups, weight, bias, eps):
    out = np.empty_like(x)
    per_group = x.shape[1] // groups
    for n in range(x.shape[0]):
        for g in range(groups):
            block = x[n, g * per_group:(g + 1) * per_group]
            out[n, g * per_group:(g + 1) * per_group] = (block - block.mean()) / np.sqrt(block.var() + eps)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return out * weight.reshape(shape) + bias.reshape(shape)


@pytest.mark.parametrize("groups, channels, shape, affine", [
    (2, 4, (3, 4, 5), True), (3, 6, (2, 6, 3, 4), True), (1, 3, (2, 3, 2, 2, 3), True), (4, 4, (2, 4), False),
    (2, 4, (1, 4, 3, 3), True),
])
def test_group_norm_matches_reference_and_finite_differences(groups, channels, shape, affine):
    layer = nn.GroupNorm(groups, channels, affine=affine, dtype=np.float64)
    if affine:  # non-trivial affine parameters
        layer.weight.data[...] = np.linspace(0.5, 2.0, channels)
        layer.bias.data[...] = np.linspace(-1.0, 1.0, channels)
    x = np.random.default_rng(0).standard_normal(shape) * 3 + 1
    weight = layer.weight.data if affine else np.ones(channels)
    bias = layer.bias.data if affine else np.zeros(channels)
    np.testing.assert_allclose(layer(x), group_norm_reference(x, groups, weight, bias, layer.eps), rtol=1e-12,
                               atol=1e-13)
    for mode in (True, False):  # no running statistics: the same in both modes
        layer.train(mode)
        check_gradients(layer, x, projection(shape), per_array=10)
    if affine:
        assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]


def test_group_norm_matches_torch():
    torch = torch_or_skip()
    x = np.random.default_rng(3).standard_normal((2, 6, 4, 3))
    ours = nn.GroupNorm(3, 6, eps=1e-3, dtype=np.float64)
    ours.weight.data[...] = np.arange(1.0, 7.0)
    ours.bias.data[...] = np.arange(6.0) / 10
    theirs = torch.nn.GroupNorm(3, 6, eps=1e-3).double()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    xt = torch.tensor(x, requires_grad=True)
    out_t = theirs(xt)
    grad_out = np.random.default_rng(4).standard_normal(x.shape)
    out_t.backward(torch.tensor(grad_out))
    np.testing.assert_allclose(ours(x), out_t.detach().numpy(), rtol=1e-12, atol=1e-13)
    ours.zero_grad()
    np.testing.assert_allclose(ours.backward(grad_out), xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.weight.grad, theirs.weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.bias.grad, theirs.bias.grad.numpy(), rtol=1e-10)


def test_group_norm_errors():
    with raises(ValueError, "GroupNorm", "num_channels (6)", "divisible by num_groups (4)"):
        nn.GroupNorm(4, 6)
    with raises(ValueError, "GroupNorm", "num_groups", "positive"):
        nn.GroupNorm(0, 6)
    with raises(ValueError, "GroupNorm", "eps"):
        nn.GroupNorm(2, 6, eps=0)
    with raises(ValueError, "GroupNorm(2, 6", "(N, 6, *)", "(2, 4, 3)"):
        nn.GroupNorm(2, 6)(np.zeros((2, 4, 3), np.float32))
    with raises(TypeError, "GroupNorm(2, 6", "float64", "float32"):
        nn.GroupNorm(2, 6)(np.zeros((2, 6, 3)))


# -------------------------------------------------------- 16-bit activations

@pytest.mark.parametrize("make, shape", [
    (lambda dtype: nn.GroupNorm(2, 4, dtype=dtype), (2, 4, 3, 3)),
    (lambda dtype: nn.Softmax(1), (2, 4, 3)), (lambda dtype: nn.LogSoftmax(-1), (2, 4, 3)),
    (lambda dtype: nn.Upsample(scale_factor=(2, 1.5)), (2, 4, 3, 2)),
    (lambda dtype: nn.Dropout2d(0.5, rng=0), (2, 4, 3, 3)),
    (lambda dtype: nn.AdaptiveMaxPool2d(2), (2, 4, 3, 3)), (lambda dtype: nn.GlobalMaxPool(), (2, 4, 3, 3)),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_16_bit_inputs_keep_their_dtype_and_track_float32(make, shape):
    ml_dtypes = pytest.importorskip("ml_dtypes")
    x32 = distinct_values(shape).astype(np.float32)
    layer32 = make(np.float32)
    out32 = layer32(x32)
    grad_out32 = np.random.default_rng(6).standard_normal(out32.shape).astype(np.float32)
    back32 = layer32.backward(grad_out32)
    for dtype in (np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16)):
        layer = make(dtype)
        out = layer(x32.astype(dtype))
        back = layer.backward(grad_out32.astype(dtype))
        assert out.dtype == dtype and back.dtype == dtype and back.shape == x32.shape
        tol = 0.05 if dtype == np.float16 else 0.2
        np.testing.assert_allclose(out.astype(np.float32), out32, atol=tol, rtol=tol)
        np.testing.assert_allclose(back.astype(np.float32), back32, atol=tol, rtol=tol)
