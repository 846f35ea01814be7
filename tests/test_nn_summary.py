"""Model summary: receptive fields against the published values for AlexNet's
layers, parameters and multiply-adds against the textbook formulas, and the
summary leaves the model as it was."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ferroconv import nn


def alexnet() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, 11, stride=4, padding=2, rng=0), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(64, 192, 5, padding=2, rng=0), nn.ReLU(), nn.MaxPool2d(3, stride=2),
        nn.Conv2d(192, 384, 3, padding=1, rng=0), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, rng=0), nn.ReLU(),
        nn.Conv2d(256, 256, 3, padding=1, rng=0), nn.ReLU(), nn.MaxPool2d(3, stride=2))


def test_alexnet_receptive_fields_parameters_and_macs() -> None:
    info = alexnet().summary((2, 3, 224, 224), show=False)
    rows = {row.name: row for row in info.layers}
    # receptive field and jump after conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5
    # (the standard receptive-field arithmetic of AlexNet)
    published = {"0": (11, 4), "2": (19, 8), "3": (51, 8), "5": (67, 16), "6": (99, 16), "8": (131, 16),
                 "10": (163, 16), "12": (195, 32)}
    for name, (field, jump) in published.items():
        assert rows[name].receptive_field == (field, field), name
        assert rows[name].jump == (jump, jump), name
    sizes = {"0": 55, "3": 27, "6": 13, "8": 13, "10": 13}
    channels = {"0": (3, 64, 11), "3": (64, 192, 5), "6": (192, 384, 3), "8": (384, 256, 3), "10": (256, 256, 3)}
    for name, (cin, cout, k) in channels.items():
        assert rows[name].output_shape == (2, cout, sizes[name], sizes[name])
        assert rows[name].params == cout * cin * k * k + cout
        assert rows[name].macs == 2 * cout * sizes[name] ** 2 * cin * k * k
        assert rows[name].activation_bytes == 2 * cout * sizes[name] ** 2 * 4
    assert rows["12"].output_shape == (2, 256, 6, 6)
    assert info.total_params == sum(cout * cin * k * k + cout for cin, cout, k in channels.values())
    assert info.total_macs == sum(row.macs for row in info.layers)
    assert info.param_bytes == 4 * info.total_params


def test_branches_transposed_and_global_layers() -> None:
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, rng=0),  # rf 3
        nn.MaxPool2d(2),  # rf 4, jump 2
        nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, rng=0), nn.ReLU())),  # rf 4 + 2*2 = 8
        nn.ConvTranspose2d(4, 2, 2, stride=2, rng=0),  # one input cell per output cell: rf 8, jump 1
        nn.Concat(nn.Identity(), nn.Conv2d(2, 2, (3, 1), padding=(1, 0), rng=0)),  # widest branch: 10 x 8
        nn.BatchNorm2d(4), nn.GlobalAvgPool(), nn.Flatten(), nn.Linear(4, 3, rng=0))
    net.train()
    running = net[5].running_mean.copy()
    out = io.StringIO()
    info = net.summary((1, 1, 8, 8), file=out)
    rows = {row.name: row for row in info.layers}
    assert rows["2"].container and rows["2.body.0"].receptive_field == (8, 8) and rows["2"].jump == (2, 2)
    assert rows["3"].receptive_field == (8, 8) and rows["3"].jump == (1, 1)
    assert rows["3"].macs == 4 * 4 * 4 * 2 * 2 * 2  # input cells x out channels x taps
    assert rows["4.1"].receptive_field == (10, 8) and rows["4"].receptive_field == (10, 8)
    assert rows["4"].params == 2 * 2 * 3 + 2 and rows["4"].macs == rows["4.1"].macs == 8 * 8 * 2 * 2 * 3
    # global pooling sees the whole (padded) input: 10 + 7 * 1 rows, 8 + 7 * 1 columns
    assert rows["6"].receptive_field == (17, 15) and rows["8"].receptive_field == (17, 15)
    assert rows["8"].macs == 3 * 4 and rows["5"].macs == 4 * 8 * 8
    assert [row.depth for row in info.layers][:4] == [1, 1, 1, 2]
    text = out.getvalue()
    assert "2.body.0 (Conv2d)" in text and "Receptive field" in text and "Parameters: " in text
    assert str(info) in text
    assert info.rows()[0]["output_shape"] == (1, 4, 8, 8)
    # the model is as it was: training mode, running statistics
    assert all(module.training for module in net.modules())
    np.testing.assert_array_equal(net[5].running_mean, running)


def test_joins_made_in_a_composed_forward_are_rows() -> None:
    class Skip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(2, 2, 5, padding=2, rng=0)

        def forward(self, x: np.ndarray) -> np.ndarray:
            return nn.add(self.conv(x), x)

    info = Skip().summary((1, 2, 20), show=False)
    assert [(row.name, row.kind) for row in info.layers] == [("conv", "Conv1d"), ("add#1", "Add")]
    assert info.layers[-1].receptive_field == (5,)


def test_errors() -> None:
    with pytest.raises(ValueError, match="input_shape must hold positive sizes"):
        alexnet().summary((0, 3, 224, 224))
    with pytest.raises(TypeError, match="input_shape must be a sequence of ints"):
        alexnet().summary(3)
    with pytest.raises(ValueError, match="expected input of shape"):
        alexnet().summary((1, 4, 64, 64), show=False)
