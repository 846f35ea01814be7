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
