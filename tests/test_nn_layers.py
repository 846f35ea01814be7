"""Each layer's forward/backward against the functional API and against central
finite differences."""

from __future__ import annotations

import numpy as np
import pytest

import ferroconv
from ferroconv import nn
from nn_gradcheck import HAS_POOLING, check_gradients, needs_pooling, projection

F = ferroconv.functional
F64 = dict(dtype=np.float64)


def distinct_values(shape, seed=0):
    """A random permutation of evenly spaced values in [-2, 2): no ties, no zeros,
    gaps far larger than the finite-difference step (no ReLU / max kinks)."""
    size = int(np.prod(shape))
    values = (np.arange(size) + 0.25) / size * 4 - 2  # + 0.25: never exactly 0
    return np.random.default_rng(seed).permutation(values).reshape(shape)


# ------------------------------------------------------------- convolutions

CONV_CASES = [
    ("conv1d", lambda rng: nn.Conv1d(3, 4, 3, stride=2, padding=1, **F64, rng=rng), (2, 3, 11)),
    ("conv1d-reflect-dilated", lambda rng: nn.Conv1d(2, 4, 3, padding="same", dilation=2, padding_mode="reflect",
                                                     **F64, rng=rng), (2, 2, 9)),
    ("conv2d-groups", lambda rng: nn.Conv2d(4, 6, (3, 2), padding=(1, 0), groups=2, **F64, rng=rng), (2, 4, 5, 6)),
    ("conv2d-nobias-circular", lambda rng: nn.Conv2d(2, 3, 3, padding=1, bias=False, padding_mode="circular",
                                                     **F64, rng=rng), (1, 2, 5, 5)),
    ("conv3d", lambda rng: nn.Conv3d(2, 3, 2, stride=(1, 2, 1), padding=((1, 0), (0, 1), (1, 1)), **F64, rng=rng),
     (2, 2, 4, 4, 3)),
    ("conv_transpose1d", lambda rng: nn.ConvTranspose1d(3, 2, 4, stride=2, padding=1, **F64, rng=rng), (2, 3, 6)),
    ("conv_transpose2d", lambda rng: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2,
                                                        **F64, rng=rng), (2, 4, 3, 4)),
    ("conv_transpose3d", lambda rng: nn.ConvTranspose3d(2, 2, 2, dilation=2, bias=False, **F64, rng=rng),
     (1, 2, 3, 3, 2)),
]


@pytest.mark.parametrize("make, shape", [c[1:] for c in CONV_CASES], ids=[c[0] for c in CONV_CASES])
def test_conv_layer_matches_functional_and_finite_differences(make, shape):
    layer = make(np.random.default_rng(0))
    x = np.random.default_rng(1).standard_normal(shape)
    out = layer(x)
    grad_out = np.random.default_rng(2).standard_normal(out.shape)
    layer.zero_grad()
    grad_x = layer.backward(grad_out)
    bias = None if layer.bias is None else layer.bias.data
    if isinstance(layer, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        name = f"conv_transpose{layer.rank}d"
        geometry = dict(stride=layer.stride, padding=layer.padding, output_padding=layer.output_padding,
                        groups=layer.groups, dilation=layer.dilation)
    else:
        name = f"conv{layer.rank}d"
        geometry = dict(stride=layer.stride, padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
                        padding_mode=layer.padding_mode)
    np.testing.assert_array_equal(out, getattr(F, name)(x, layer.weight.data, bias, **geometry))
    expected = getattr(F, f"{name}_backward")(grad_out, x, layer.weight.data, **geometry)
    np.testing.assert_array_equal(grad_x, expected[0])
    np.testing.assert_array_equal(layer.weight.grad, expected[1])
    if layer.bias is not None:
        np.testing.assert_allclose(layer.bias.grad, grad_out.sum(axis=(0, *range(2, grad_out.ndim))), rtol=1e-12)
    check_gradients(layer, x, projection(out.shape))


def test_conv_layer_accepts_unbatched_input():
    layer = nn.Conv2d(2, 3, 3, padding=1, **F64, rng=0)
    x = np.random.default_rng(0).standard_normal((2, 5, 5))
    out = layer(x)
    assert out.shape == (3, 5, 5)
    np.testing.assert_array_equal(out, layer(x[None])[0])
    check_gradients(layer, x, projection(out.shape))


# ------------------------------------------------------------------ pooling

POOL_CASES = [
    ("maxpool1d", lambda: nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 9), "max_pool1d"),
    ("maxpool2d-dilated-ceil", lambda: nn.MaxPool2d(2, stride=2, dilation=(1, 2), ceil_mode=True), (2, 2, 7, 8),
     "max_pool2d"),
    ("maxpool3d", lambda: nn.MaxPool3d(2), (1, 2, 4, 4, 5), "max_pool3d"),
    ("avgpool1d-ceil", lambda: nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True), (2, 3, 8), "avg_pool1d"),
    ("avgpool2d-exclude-pad", lambda: nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 2, 6, 5),
     "avg_pool2d"),
    ("avgpool3d-divisor", lambda: nn.AvgPool3d((2, 2, 1), divisor_override=3), (1, 2, 4, 4, 3), "avg_pool3d"),
    ("adaptive1d", lambda: nn.AdaptiveAvgPool1d(4), (2, 3, 10), "adaptive_avg_pool1d"),
    ("adaptive2d", lambda: nn.AdaptiveAvgPool2d((3, 2)), (2, 2, 7, 5), "adaptive_avg_pool2d"),
    ("adaptive3d", lambda: nn.AdaptiveAvgPool3d(2), (1, 2, 5, 3, 4), "adaptive_avg_pool3d"),
]


@needs_pooling
@pytest.mark.parametrize("make, shape, op", [c[1:] for c in POOL_CASES], ids=[c[0] for c in POOL_CASES])
def test_pool_layer_matches_functional_and_finite_differences(make, shape, op):
    layer = make()
    x = distinct_values(shape)
    out = layer(x)
    grad_out = np.random.default_rng(2).standard_normal(out.shape)
    grad_x = layer.backward(grad_out)
    if op.startswith("max"):
        expected_out, indices = getattr(F, op)(x, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                                               dilation=layer.dilation, ceil_mode=layer.ceil_mode,
                                               return_indices=True)
        expected_grad = getattr(F, f"{op}_backward")(grad_out, indices, x.shape)
    elif op.startswith("avg"):
        geometry = dict(stride=layer.stride, padding=layer.padding, ceil_mode=layer.ceil_mode,
                        count_include_pad=layer.count_include_pad, divisor_override=layer.divisor_override)
        expected_out = getattr(F, op)(x, layer.kernel_size, **geometry)
        expected_grad = getattr(F, f"{op}_backward")(grad_out, x.shape, layer.kernel_size, **geometry)
    else:
        expected_out = getattr(F, op)(x, layer.output_size)
        expected_grad = getattr(F, f"{op}_backward")(grad_out, x.shape)
    np.testing.assert_array_equal(out, expected_out)
    np.testing.assert_array_equal(grad_x, expected_grad)
    check_gradients(layer, x, projection(out.shape), per_array=20)


@needs_pooling
def test_max_pool_layer_returns_indices_when_asked():
    x = distinct_values((1, 1, 4, 4))
    out, indices = nn.MaxPool2d(2, return_indices=True)(x)
    np.testing.assert_array_equal(out.ravel(), x.ravel()[indices.ravel()])


def test_global_avg_pool_is_the_mean_over_spatial_axes():
    for shape in [(2, 3, 5), (2, 3, 4, 5), (1, 2, 3, 4, 2)]:
        x = np.random.default_rng(0).standard_normal(shape)
        layer = nn.GlobalAvgPool()
        out = layer(x)
        np.testing.assert_allclose(out, x.mean(axis=tuple(range(2, x.ndim)), keepdims=True))
        if hasattr(F, "global_avg_pool"):
            np.testing.assert_allclose(out, F.global_avg_pool(x), rtol=1e-12)
        check_gradients(layer, x, projection(out.shape))


# ------------------------------------------------------- everything else

OTHER_CASES = [
    ("batchnorm1d-2d-input", lambda: nn.BatchNorm1d(4, **F64), (6, 4)),
    ("batchnorm1d", lambda: nn.BatchNorm1d(3, **F64), (4, 3, 5)),
    ("batchnorm2d", lambda: nn.BatchNorm2d(3, **F64), (2, 3, 3, 4)),
    ("batchnorm3d-no-affine", lambda: nn.BatchNorm3d(2, affine=False, **F64), (2, 2, 2, 3, 2)),
    ("relu", lambda: nn.ReLU(), (3, 7)),
    ("leaky_relu", lambda: nn.LeakyReLU(0.3), (3, 2, 4)),
    ("sigmoid", lambda: nn.Sigmoid(), (4, 5)),
    ("tanh", lambda: nn.Tanh(), (4, 5)),
    ("linear", lambda: nn.Linear(5, 3, **F64, rng=0), (4, 5)),
    ("linear-3d-input", lambda: nn.Linear(5, 2, bias=False, **F64, rng=1), (2, 3, 5)),
    ("flatten", lambda: nn.Flatten(), (2, 3, 4)),
    ("flatten-middle", lambda: nn.Flatten(1, 2), (2, 3, 4, 2)),
]


@pytest.mark.parametrize("make, shape", [c[1:] for c in OTHER_CASES], ids=[c[0] for c in OTHER_CASES])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_layer_backward_matches_finite_differences(make, shape, mode):
    layer = make()
    if isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
        # non-trivial running statistics for eval mode
        layer.running_mean[...] = np.linspace(-0.5, 0.5, layer.num_features)
        layer.running_var[...] = np.linspace(0.5, 2.0, layer.num_features)
    layer.train(mode == "train")
    x = distinct_values(shape)
    check_gradients(layer, x, projection(layer(x).shape), per_array=10)


def test_activations_compute_their_definitions():
    x = np.array([-800.0, -3.0, -0.5, 0.0, 0.5, 3.0, 800.0])
    np.testing.assert_array_equal(nn.ReLU()(x), np.maximum(x, 0))
    np.testing.assert_allclose(nn.LeakyReLU(0.1)(x), np.where(x > 0, x, 0.1 * x))
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(nn.Sigmoid()(x), 1 / (1 + np.exp(-x)), rtol=1e-15)
    np.testing.assert_allclose(nn.Tanh()(x), np.tanh(x))
    assert nn.Sigmoid()(x.astype(np.float32)).dtype == np.float32


def test_relu_gradient_at_zero_is_zero():
    relu = nn.ReLU()
    relu(np.array([0.0, 1.0]))
    np.testing.assert_array_equal(relu.backward(np.ones(2)), [0.0, 1.0])


def test_linear_computes_affine_map():
    layer = nn.Linear(3, 2, **F64, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 3))
    np.testing.assert_allclose(layer(x), x @ layer.weight.data.T + layer.bias.data)


def test_sequential_backward_chains_layers_in_reverse():
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Conv1d(2, 3, 3, **F64, rng=rng), nn.Tanh(), nn.Flatten(), nn.Linear(12, 2, **F64, rng=rng))
    x = rng.standard_normal((3, 2, 6))
    check_gradients(net, x, projection((3, 2)))
    assert len(net) == 4 and isinstance(net[2], nn.Flatten)


def test_pooling_is_reported_missing_when_not_built():
    if HAS_POOLING:
        pytest.skip("pooling is merged")
    with pytest.raises(NotImplementedError, match="max_pool2d"):
        nn.MaxPool2d(2)(np.zeros((1, 1, 4, 4)))
