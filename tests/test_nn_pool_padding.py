"""The nn pooling layers take the functional ops' padding forms (PyTorch's ints,
ONNX's per-side pairs and auto_pad strings) and average pooling's dilation: the
layers equal the functional calls, forward and backward."""

from __future__ import annotations

import numpy as np
import pytest

import ferroconv as fc
from ferroconv import nn


@pytest.mark.parametrize("padding", [1, ((0, 1), (1, 0)), "same", "same_lower", "valid"])
def test_layers_equal_the_functional_ops(padding: object) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 8))
    layer = nn.MaxPool2d(3, stride=2, padding=padding)
    out = layer(x)
    values, indices = fc.max_pool2d(x, 3, 2, padding, return_indices=True)
    np.testing.assert_array_equal(out, values)
    g = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(layer.backward(g), fc.max_pool2d_backward(g, indices, x.shape))
    dilation = 1 if padding == 1 else (1, 2)  # PyTorch's symmetric ints: at most half the plain kernel
    average = nn.AvgPool2d(3, stride=2, padding=padding, count_include_pad=False, dilation=dilation)
    out = average(x)
    options = dict(count_include_pad=False, dilation=dilation)
    np.testing.assert_array_equal(out, fc.avg_pool2d(x, 3, 2, padding, **options))
    g = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(average.backward(g), fc.avg_pool2d_backward(g, x.shape, 3, 2, padding, **options))


def test_bad_padding_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="MaxPool2d"):
        nn.MaxPool2d(3, padding="full")
    with pytest.raises(ValueError, match="AvgPool1d"):
        nn.AvgPool1d(2, padding=((0, 1, 2),))
