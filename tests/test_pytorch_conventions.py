"""PyTorch's argument conventions where ferroconv used to differ: a one-element
tuple means the same value on every axis; pooling refuses inputs without channels;
global pooling can drop its unit axes (keepdims=False)."""

import numpy as np
import pytest

import ferroconv as fc

RNG = np.random.default_rng(0)
X2 = RNG.standard_normal((2, 3, 7, 6))
W2 = RNG.standard_normal((4, 3, 3, 3))


def test_one_element_tuples_repeat_on_every_axis():
    np.testing.assert_array_equal(fc.conv2d(X2, W2, stride=(2,), padding=(1,), dilation=(1,)),
                                  fc.conv2d(X2, W2, stride=2, padding=1, dilation=1))
    np.testing.assert_array_equal(fc.max_pool2d(X2, (2,), stride=(1,)), fc.max_pool2d(X2, 2, stride=1))
    np.testing.assert_array_equal(fc.avg_pool3d(X2[:, :, None], (1,), padding=(0,)),
                                  fc.avg_pool3d(X2[:, :, None], 1))
    # two or more values still must match the rank
    with pytest.raises(ValueError, match="stride must be an int or a tuple of 2 ints"):
        fc.conv2d(X2, W2, stride=(1, 1, 1))


@pytest.mark.parametrize("call", [
    lambda x: fc.max_pool2d(x, 2), lambda x: fc.avg_pool2d(x, 2), lambda x: fc.adaptive_avg_pool2d(x, 2),
    lambda x: fc.adaptive_max_pool2d(x, 2), lambda x: fc.global_avg_pool(x), lambda x: fc.global_max_pool(x),
])
def test_pooling_an_input_without_channels_is_an_error(call):
    with pytest.raises(ValueError, match=r"x has no channels \(shape \(2, 0, 4, 4\)\)"):
        call(np.zeros((2, 0, 4, 4)))


def test_global_pooling_keepdims():
    mean = fc.global_avg_pool(X2, keepdims=False)
    assert mean.shape == (2, 3)
    np.testing.assert_allclose(mean, X2.mean(axis=(2, 3)), rtol=1e-13)
    values, indices = fc.global_max_pool(X2, return_indices=True, keepdims=False)
    assert values.shape == indices.shape == (2, 3)
    np.testing.assert_array_equal(values, X2.max(axis=(2, 3)))
    np.testing.assert_array_equal(indices, X2.reshape(2, 3, -1).argmax(axis=2))
    kept = fc.global_avg_pool(X2)
    assert kept.shape == (2, 3, 1, 1)  # the default is unchanged
    with pytest.raises(TypeError, match="keepdims must be a bool"):
        fc.global_avg_pool(X2, keepdims=1)


def test_one_element_adaptive_output_size_repeats_on_every_axis():
    np.testing.assert_array_equal(fc.adaptive_avg_pool2d(X2, (3,)), fc.adaptive_avg_pool2d(X2, 3))
    np.testing.assert_array_equal(fc.adaptive_max_pool2d(X2, [2]), fc.adaptive_max_pool2d(X2, (2, 2)))
    with pytest.raises(ValueError, match="output_size must be an int or a tuple of 2 ints or None"):
        fc.adaptive_avg_pool2d(X2, (1, 2, 3))
