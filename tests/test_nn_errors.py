"""Bad input raises a clear error naming the layer and the shapes involved."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ferroconv import nn


def raises(exc, *fragments):
    """pytest.raises matching every fragment (literally, in order)."""
    return pytest.raises(exc, match=".*".join(re.escape(f) for f in fragments))


@pytest.mark.parametrize("layer, shape, fragments", [
    (nn.Conv2d(3, 8, 3, rng=0), (2, 4, 8, 8), ["Conv2d(3, 8", "(N, 3, H, W)", "(2, 4, 8, 8)"]),
    (nn.Conv2d(3, 8, 3, rng=0), (8, 8), ["Conv2d(3, 8", "(8, 8)"]),
    (nn.Conv1d(2, 4, 3, rng=0), (1, 2, 3, 9), ["Conv1d(2, 4", "(N, 2, L)", "(1, 2, 3, 9)"]),
    (nn.Conv3d(1, 2, 3, rng=0), (1, 2, 4, 4, 4), ["Conv3d(1, 2", "(N, 1, D, H, W)", "(1, 2, 4, 4, 4)"]),
    (nn.ConvTranspose2d(4, 2, 2, rng=0), (1, 2, 3, 3), ["ConvTranspose2d(4, 2", "(1, 2, 3, 3)"]),
    (nn.BatchNorm2d(3), (2, 4, 5, 5), ["BatchNorm2d(3", "(N, 3, H, W)", "(2, 4, 5, 5)"]),
    (nn.BatchNorm1d(3), (2, 3, 4, 4), ["BatchNorm1d(3", "(N, 3) or (N, 3, L)", "(2, 3, 4, 4)"]),
    (nn.BatchNorm3d(2), (2, 2, 4, 4), ["BatchNorm3d(2", "(2, 2, 4, 4)"]),
    (nn.Linear(10, 2, rng=0), (4, 9), ["Linear(in_features=10", "(..., 10)", "(4, 9)"]),
    (nn.MaxPool2d(2), (4, 4), ["MaxPool2d(", "(N, C, H, W)", "(4, 4)"]),
    (nn.AvgPool3d(2), (1, 4, 4), ["AvgPool3d(", "(1, 4, 4)"]),
    (nn.AdaptiveAvgPool1d(2), (1, 2, 3, 4), ["AdaptiveAvgPool1d(", "(1, 2, 3, 4)"]),
    (nn.GlobalAvgPool(), (3, 4), ["GlobalAvgPool(", "(3, 4)"]),
    (nn.Flatten(2), (3, 4), ["Flatten(", "(3, 4)"]),
])
def test_wrong_input_shape_names_layer_and_shapes(layer, shape, fragments):
    with raises(ValueError, *fragments):
        layer(np.zeros(shape, np.float32))


def test_wrong_dtype_is_a_type_error():
    with raises(TypeError, "Conv2d(1, 2", "float64", "float32"):
        nn.Conv2d(1, 2, 3, rng=0)(np.zeros((1, 1, 5, 5)))
    with raises(TypeError, "ReLU", "int64"):
        nn.ReLU()(np.zeros(3, np.int64))


def test_functional_errors_are_prefixed_with_the_layer():
    layer = nn.Conv1d(1, 1, 3, padding=4, padding_mode="reflect", rng=0)
    with raises(ValueError, "Conv1d(1, 1", "padding"):
        layer(np.zeros((1, 1, 4), np.float32))


def test_batchnorm_needs_more_than_one_value_per_channel_in_training():
    with raises(ValueError, "BatchNorm1d(3", "more than 1 value per channel", "(1, 3)"):
        nn.BatchNorm1d(3)(np.zeros((1, 3), np.float32))
    nn.BatchNorm1d(3).eval()(np.zeros((1, 3), np.float32))  # fine with running stats


@pytest.mark.parametrize("layer", [
    nn.Conv2d(1, 1, 3, rng=0), nn.ConvTranspose1d(1, 1, 2, rng=0), nn.MaxPool2d(2), nn.AvgPool1d(2),
    nn.AdaptiveAvgPool3d(1), nn.GlobalAvgPool(), nn.BatchNorm2d(2), nn.ReLU(), nn.LeakyReLU(), nn.Sigmoid(),
    nn.Tanh(), nn.Dropout(), nn.Flatten(), nn.Linear(2, 2, rng=0), nn.Sequential(nn.ReLU()),
], ids=lambda layer: type(layer).__name__)
def test_backward_before_forward(layer):
    # a Sequential reports its last layer, the first one whose backward runs
    name = type(layer[-1] if isinstance(layer, nn.Sequential) else layer).__name__
    with raises(ValueError, name, "backward called before forward"):
        layer.backward(np.zeros((1, 2, 3, 3), np.float32))


@pytest.mark.parametrize("loss", [nn.CrossEntropyLoss(), nn.MSELoss()], ids=lambda loss: type(loss).__name__)
def test_loss_backward_before_forward(loss):
    with raises(ValueError, type(loss).__name__, "backward called before forward"):
        loss.backward()


def test_grad_out_of_the_wrong_shape():
    layer = nn.Conv2d(1, 2, 3, rng=0)
    layer(np.zeros((1, 1, 5, 5), np.float32))
    with raises(ValueError, "Conv2d(1, 2", "(1, 2, 4, 4)", "(1, 2, 3, 3)"):
        layer.backward(np.zeros((1, 2, 4, 4), np.float32))
    relu = nn.ReLU()
    relu(np.zeros(3, np.float32))
    with raises(ValueError, "ReLU", "(4,)", "(3,)"):
        relu.backward(np.zeros(4, np.float32))


def test_cross_entropy_rejects_bad_labels():
    loss = nn.CrossEntropyLoss()
    logits = np.zeros((3, 4), np.float32)
    with raises(ValueError, "CrossEntropyLoss", "[0, 4)", "(3, 4)", "[0, 4]"):
        loss(logits, np.array([0, 4, 1]))
    with raises(ValueError, "CrossEntropyLoss", "[0, 4)", "[-1, 2]"):
        loss(logits, np.array([-1, 2, 1]))
    with raises(ValueError, "CrossEntropyLoss", "(3,)", "(3, 4)", "(2,)"):
        loss(logits, np.array([0, 1]))
    with raises(ValueError, "CrossEntropyLoss", "(N, C)", "(4,)"):
        loss(np.zeros(4, np.float32), np.array([1]))
    with raises(TypeError, "CrossEntropyLoss", "integer", "float64"):
        loss(logits, np.array([0.0, 1.0, 2.0]))


def test_mse_rejects_mismatched_shapes():
    with raises(ValueError, "MSELoss", "(3, 1)", "(3,)"):
        nn.MSELoss()(np.zeros(3), np.zeros((3, 1)))


def test_load_state_dict_rejects_missing_unexpected_and_misshapen_entries():
    net = nn.Sequential(nn.Linear(3, 2, rng=0), nn.BatchNorm1d(2))
    state = net.state_dict()
    before = net[0].weight.data.copy()
    incomplete = {key: value for key, value in state.items() if key != "1.running_var"}
    with raises(ValueError, "Sequential.load_state_dict", "missing keys ['1.running_var']",
                "unexpected keys ['extra']"):
        net.load_state_dict({**incomplete, "extra": np.zeros(1)})
    bad = dict(state, **{"0.weight": np.ones((2, 3)), "0.bias": np.zeros(5)})
    with raises(ValueError, "0.bias", "Linear", "(2,)", "(5,)"):
        net.load_state_dict(bad)
    np.testing.assert_array_equal(net[0].weight.data, before)  # nothing written on failure
    net.load_state_dict({"0.bias": np.ones(2)}, strict=False)
    np.testing.assert_array_equal(net[0].bias.data, np.ones(2))


@pytest.mark.parametrize("make, fragments", [
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ["Conv2d", "divisible by groups (4)"]),
    (lambda: nn.Conv2d(1, 1, 3, stride=2, padding="same"), ["Conv2d", "same", "stride"]),
    (lambda: nn.Conv1d(1, 1, 3, padding_mode="mirror"), ["Conv1d", "padding_mode", "mirror"]),
    (lambda: nn.Conv1d(0, 1, 3), ["Conv1d", "in_channels", ">= 1"]),
    (lambda: nn.ConvTranspose2d(1, 1, 3, stride=2, output_padding=2), ["ConvTranspose2d", "output_padding"]),
    (lambda: nn.ConvTranspose1d(1, 1, 3, padding_mode="reflect"), ["ConvTranspose1d", "zeros"]),
    (lambda: nn.MaxPool2d((2, 2, 2)), ["MaxPool2d", "kernel_size"]),
    (lambda: nn.BatchNorm2d(0), ["BatchNorm2d", "num_features"]),
    (lambda: nn.Dropout(1.5), ["Dropout", "p"]),
    (lambda: nn.Linear(3, 0), ["Linear", "out_features"]),
])
def test_bad_constructor_arguments(make, fragments):
    with raises(ValueError, *fragments):
        make()


def test_bad_dtype_in_constructor():
    with raises(TypeError, "Linear", "int16"):
        nn.Linear(2, 2, dtype=np.int16)
