"""The boundary: one spec per op family, built with keyword arguments only; the
spec checks values (types and arities are the normaliser's job); specs survive
pickling (nn layers hold one and the dask layer ships layers to workers); every
error of a public function names it once."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

import ferroconv as fc
from ferroconv import nn
from ferroconv._ferroconv import ConvSpec, PoolSpec
from ferroconv._spec import conv_spec, pool_spec, transpose_spec


def test_specs_take_keyword_arguments_only():
    with pytest.raises(TypeError):
        ConvSpec(2, (1, 1), "same", (1, 1), 1, "zeros")  # type: ignore[misc]
    with pytest.raises(TypeError):
        PoolSpec(2)  # type: ignore[misc]


def test_a_misspelt_option_is_refused_not_ignored():
    with pytest.raises(TypeError, match="unexpected option 'strides'"):
        PoolSpec(rank=2, kernel_size=(2, 2), strides=(1, 1))
    with pytest.raises(TypeError, match="unexpected option 'output_pading'"):
        ConvSpec(rank=1, stride=(1,), padding="valid", dilation=(1,), groups=1, padding_mode="zeros",
                 output_pading=(0,))


@pytest.mark.parametrize("make, message", [
    (lambda: conv_spec(2, stride=(1, 0)), "stride must be >= 1 in every dimension, got (1, 0)"),
    (lambda: conv_spec(1, padding=-1), "padding must be >= 0 in every dimension, got (-1,)"),
    (lambda: conv_spec(2, padding=((0, 1), (-2, 0))), "padding must be >= 0 in every dimension, got (0, -2)"),
    (lambda: conv_spec(2, dilation=-3), "dilation must be >= 1 in every dimension, got (-3, -3)"),
    (lambda: conv_spec(2, groups=0), "groups must be >= 1, got 0"),
    (lambda: conv_spec(2, padding="full"), "padding must be an int, a tuple of ints, 'same', 'valid'"),
    (lambda: conv_spec(2, padding_mode="mirror"), "padding_mode must be one of"),
    (lambda: conv_spec(3, stride=2, padding="same"), "padding='same' is only supported with stride 1"),
    (lambda: transpose_spec(2, stride=2, output_padding=2), "output_padding (2, 2) must be smaller"),
    (lambda: pool_spec(2, kernel_size=(0, 2)), "kernel_size must be >= 1 in every dimension, got (0, 2)"),
    (lambda: pool_spec(1, kernel_size=2, padding=-1), "padding must be >= 0 in every dimension, got (-1,)"),
])
def test_values_are_checked_by_the_spec(make, message):
    with pytest.raises(ValueError) as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize("make, message", [
    (lambda: conv_spec(2, stride=(1, 1, 1)), "stride must be an int or a tuple of 2 ints"),
    (lambda: conv_spec(2, stride=1.5), "stride must be an int, got float 1.5"),
    (lambda: conv_spec(2, padding_mode=3), "padding_mode must be a str, got int"),
    (lambda: pool_spec(2, kernel_size=2, ceil_mode=1), "ceil_mode must be a bool, got int 1"),
])
def test_types_and_arities_are_checked_by_the_normaliser(make, message):
    with pytest.raises((TypeError, ValueError)) as info:
        make()
    assert message in str(info.value)


@pytest.mark.parametrize("spec", [
    conv_spec(2, 1, "same", 2, 1, "reflect"),
    conv_spec(1, 2, ((1, 2),), 1, 3, "circular"),
    transpose_spec(3, 2, 1, 1, 1, 1),
    pool_spec(2, 3, None, 1, 2, True),
    pool_spec(1, 2, 1, 0, 1, False, False, 3),
    PoolSpec(rank=3, output_size=(1, 2, 3)),
], ids=repr)
def test_specs_survive_pickle_and_copy(spec):
    for twin in (pickle.loads(pickle.dumps(spec)), copy.deepcopy(spec), copy.copy(spec)):
        assert repr(twin) == repr(spec)


def test_layers_pickle_with_their_spec_and_compute_the_same():
    rng = np.random.default_rng(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding="same", padding_mode="reflect", rng=1), nn.ReLU(),
                        nn.MaxPool2d(2), nn.ConvTranspose2d(4, 2, 2, stride=2, rng=2), nn.AvgPool2d(2))
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    twin = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(twin(x), net(x))


def test_same_padding_is_resolved_once_from_the_kernel():
    spec = conv_spec(2, padding="same", dilation=(1, 2))
    assert spec.padding_for((4, 3)) == ([1, 2], [2, 2])
    x = np.ones((1, 1, 6, 7), np.float32)
    assert fc.conv2d(x, np.ones((1, 1, 4, 3), np.float32), padding="same", dilation=(1, 2)).shape == x.shape


@pytest.mark.parametrize("call, name", [
    (lambda: fc.conv2d(np.ones((1, 2, 5, 5), np.float32), np.ones((1, 3, 3, 3), np.float32)), "conv2d"),
    (lambda: fc.max_pool1d(np.ones((1, 1, 4)), 0), "max_pool1d"),
    (lambda: fc.conv_output_shape((4, 4), 5), "conv_output_shape"),
    (lambda: fc.set_num_threads(0), "set_num_threads"),
    (lambda: fc.same_padding(-1), "same_padding"),
    (lambda: fc.receptive_field([(3, -1)]), "receptive_field"),
])
def test_every_error_is_named_once_by_the_function_called(call, name):
    with pytest.raises((TypeError, ValueError)) as info:
        call()
    message = str(info.value)
    assert message.startswith(f"{name}: ") and not message.startswith(f"{name}: {name}: ")


def test_layer_errors_are_named_by_the_layer():
    layer = nn.MaxPool1d(3, padding=1)
    with pytest.raises(ValueError) as info:
        layer(np.ones((1, 1, 0), np.float32))
    assert str(info.value).startswith("MaxPool1d(kernel_size=(3,)")
