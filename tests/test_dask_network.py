"""ferroconv.dask.apply_network runs a trained fully-convolutional ferroconv.nn
network block by block, with the halo of its receptive field, and gives what the
network gives on the whole array in memory."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
pytest.importorskip("distributed")

import ferroconv as fc  # noqa: E402
import ferroconv.dask as fcd  # noqa: E402
from dask_support import assert_same_result, chunkings, compute  # noqa: E402
from ferroconv import nn  # noqa: E402
from ferroconv.dask._network import network_halo  # noqa: E402

MAX_SIZE = {1: 40, 2: 16, 3: 9}


def layer_class(name: str, rank: int):
    return getattr(nn, f"{name}{rank}d")


@st.composite
def tileable_layer(draw, rank: int, channels: int, dtype, rng: np.random.Generator):
    """One stride-1 size-preserving or element-wise layer (trained-looking
    BatchNorm statistics) and its output channels."""
    kind = draw(st.sampled_from(["conv", "conv", "relu", "leaky", "tanh", "sigmoid", "batchnorm", "dropout",
                                 "max", "avg"]))
    if kind == "conv":
        out = draw(st.integers(1, 4))
        kernel, dilation = draw(st.integers(1, 4)), draw(st.integers(1, 2))
        padding = draw(st.sampled_from(["same", "explicit"]))
        if padding == "explicit" and (dilation * (kernel - 1)) % 2 == 0:
            padding = dilation * (kernel - 1) // 2
        else:
            padding = "same"
        mode = draw(st.sampled_from(["zeros", "reflect", "replicate"]))
        return layer_class("Conv", rank)(channels, out, kernel, padding=padding, dilation=dilation,
                                         padding_mode=mode, dtype=dtype, rng=rng), out
    if kind == "batchnorm":
        norm = layer_class("BatchNorm", rank)(channels, dtype=dtype)
        norm.running_mean[...] = rng.standard_normal(channels)
        norm.running_var[...] = rng.uniform(0.5, 2.0, channels)
        norm.weight.data[...] = rng.standard_normal(channels)
        norm.bias.data[...] = rng.standard_normal(channels)
        return norm, channels
    if kind in ("max", "avg"):
        kernel = draw(st.sampled_from([1, 3, 5]))
        if kind == "max":
            return layer_class("MaxPool", rank)(kernel, stride=1, padding=kernel // 2), channels
        return layer_class("AvgPool", rank)(kernel, stride=1, padding=kernel // 2,
                                            count_include_pad=draw(st.booleans())), channels
    simple = {"relu": nn.ReLU, "leaky": lambda: nn.LeakyReLU(0.1), "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
              "dropout": lambda: nn.Dropout(0.5, rng=rng)}
    return simple[kind](), channels


@st.composite
def networks(draw, max_layers: int = 5):
    """A random fully-convolutional network in eval mode, and an input for it."""
    rank = draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    channels = draw(st.integers(1, 3))
    layers, width = [], channels
    for _ in range(draw(st.integers(1, max_layers))):
        layer, width = draw(tileable_layer(rank, width, dtype, rng))
        layers.append(layer)
    net = nn.Sequential(*layers).eval()
    # each spatial axis at least the receptive field, so reflect padding fits
    before, after, _ = network_halo(layers, rank)
    shape = [draw(st.integers(1, 2)), channels]
    shape += [draw(st.integers(b + a + 1, max(b + a + 1, MAX_SIZE[rank]))) for b, a in zip(before, after)]
    return net, rng.standard_normal(shape).astype(dtype)


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_network_on_the_cluster_equals_its_forward_on_the_whole_array(dask_client, data):
    net, volume = data.draw(networks(), label="network")
    chunks = data.draw(chunkings(volume.shape), label="chunks")
    expected = net(volume)
    lazy = fcd.apply_network(net, da.from_array(volume, chunks=chunks))
    assert lazy.shape == expected.shape and lazy.dtype == expected.dtype
    assert lazy.chunks[0] == tuple(c for c in chunks[0])  # batch chunks kept
    assert_same_result(compute(dask_client, lazy), expected)


def test_segmentation_network_on_a_volume_equals_the_whole_forward(dask_client):
    rng = np.random.default_rng(0)
    net = nn.Sequential(
        nn.Conv3d(1, 6, 3, padding="same", rng=rng), nn.BatchNorm3d(6), nn.ReLU(),
        nn.Conv3d(6, 6, 3, padding=2, dilation=2, padding_mode="replicate", rng=rng), nn.BatchNorm3d(6),
        nn.ReLU(),
        nn.MaxPool3d(3, stride=1, padding=1),
        nn.Conv3d(6, 2, 1, rng=rng),  # per-voxel class scores
    )
    for layer in net:
        if isinstance(layer, nn.BatchNorm3d):
            layer.running_mean[...] = rng.standard_normal(6).astype(np.float32)
            layer.running_var[...] = rng.uniform(0.5, 2, 6).astype(np.float32)
    net.eval()
    volume = rng.standard_normal((1, 1, 30, 28, 26)).astype(np.float32)
    lazy = fcd.apply_network(net, da.from_array(volume, chunks=(1, 1, 12, 10, 13)))
    assert lazy.chunks == ((1,), (2,), (12, 18), (10, 18), (13, 13))  # chunks of 8 cells were too short
    assert_same_result(compute(dask_client, lazy), net(volume))


def test_halo_is_the_receptive_field_split_by_the_paddings():
    layers = [nn.Conv2d(1, 1, 3, padding="same"), nn.ReLU(), nn.Conv2d(1, 1, (4, 5), padding="same"),
              nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(1, 1, 3, padding=2, dilation=2)]
    before, after, wrapping = network_halo(layers, 2)
    field = [fc.receptive_field([(3, 1, 1), (k, 1, 1), (3, 1, 1), (3, 1, 2)]) for k in (4, 5)]
    assert tuple(b + a for b, a in zip(before, after)) == tuple(f - 1 for f in field)
    assert before == (1 + 1 + 1 + 2, 1 + 2 + 1 + 2)  # "same" with an even kernel pads one less before
    assert after == (1 + 2 + 1 + 2, 1 + 2 + 1 + 2)
    assert wrapping == {}


def test_nested_sequentials_and_unbatched_input(dask_client):
    rng = np.random.default_rng(1)
    inner = nn.Sequential(nn.Conv1d(2, 3, 5, padding=2, padding_mode="reflect", rng=rng), nn.Tanh())
    net = nn.Sequential(inner, nn.Conv1d(3, 1, 3, padding="same", rng=rng)).eval()
    signal = rng.standard_normal((2, 100)).astype(np.float32)
    lazy = fcd.apply_network(net, da.from_array(signal, chunks=(2, 17)))
    assert lazy.shape == (1, 100)
    assert_same_result(compute(dask_client, lazy), net(signal))


def test_circular_padding_works_along_axes_in_one_chunk(dask_client):
    rng = np.random.default_rng(2)
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=(0, 1), padding_mode="circular", dtype=np.float64, rng=rng),
                        nn.Conv2d(2, 1, (3, 1), padding=(1, 0), dtype=np.float64, rng=rng)).eval()
    image = rng.standard_normal((1, 1, 20, 12))
    with pytest.raises(ValueError):  # the first conv shrinks H: not size-preserving
        fcd.apply_network(net, da.from_array(image, chunks=(1, 1, 7, 12)))
    net = nn.Sequential(nn.Conv2d(1, 2, (1, 3), padding=(0, 1), padding_mode="circular", dtype=np.float64,
                                  rng=rng)).eval()
    lazy = fcd.apply_network(net, da.from_array(image, chunks=(1, 1, 7, 12)))  # W (circular) unsplit
    assert_same_result(compute(dask_client, lazy), net(image))
    with pytest.raises(ValueError, match=r"layer 0 .*circular padding reads the far end of the array, so it "
                                         r"cannot be tiled along the chunked axis W"):
        fcd.apply_network(net, da.from_array(image, chunks=(1, 1, 20, 6)))


@pytest.mark.parametrize("layer, message", [
    (nn.Conv2d(3, 2, 3, stride=2, padding=1, dtype=np.float64), r"stride \(2, 2\) changes the size"),
    (nn.Conv2d(3, 2, 3, dtype=np.float64), r"padding \(0, 0\) does not keep the size"),
    (nn.MaxPool2d(2), r"stride \(2, 2\) changes the size"),
    (nn.MaxPool2d(3, stride=1, padding=1, return_indices=True), r"return_indices=True"),
    (nn.AvgPool2d(3, stride=1), r"padding \(0, 0\) does not keep the size"),
    (nn.ConvTranspose2d(3, 2, 3, dtype=np.float64), r"only stride-1 'same' convolutions"),
    (nn.Flatten(), r"only stride-1 'same' convolutions and poolings and element-wise layers"),
    (nn.GlobalAvgPool(), r"only stride-1 'same' convolutions"),
    (nn.Linear(3, 2, dtype=np.float64), r"only stride-1 'same' convolutions"),
    (nn.BatchNorm2d(3, dtype=np.float64), r"it is in training mode .* call net\.eval\(\) first"),
    (nn.Dropout(0.5), r"it is in training mode"),
])
def test_layers_that_cannot_be_tiled_are_refused_by_name(layer, message):
    x = da.zeros((1, 3, 12, 12), chunks=(1, 3, 6, 6))
    net = nn.Sequential(nn.ReLU(), layer)
    with pytest.raises(ValueError, match=r"apply_network: layer 1 \(.*\) cannot be applied block by block: "
                                         + message):
        fcd.apply_network(net, x)


def test_batchnorm_without_running_statistics_is_refused():
    net = nn.Sequential(nn.BatchNorm2d(3, track_running_stats=False, dtype=np.float64)).eval()
    with pytest.raises(ValueError, match=r"track_running_stats=False"):
        fcd.apply_network(net, da.zeros((1, 3, 12, 12), chunks=6))


@pytest.mark.parametrize("net, x, error, message", [
    (nn.Sequential(nn.Conv2d(3, 2, 3, padding=1)), da.zeros((1, 3, 8, 8)), TypeError,
     r"apply_network: x of shape \(1, 3, 8, 8\) and dtype float64 does not fit the network .*"
     r"input has dtype float64 but the layer's parameters are float32"),
    (nn.Sequential(nn.Conv2d(4, 2, 3, padding=1)), da.zeros((1, 3, 8, 8), dtype=np.float32), ValueError,
     r"does not fit the network .*expected input of shape \(N, 4, H, W\)"),
    (nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.Conv3d(2, 2, 3, padding=1)),
     da.zeros((1, 3, 8, 8), dtype=np.float32), ValueError, r"mixes layers of \[2, 3\] spatial dimensions"),
    (nn.Sequential(nn.ReLU()), np.zeros((1, 3, 8, 8)), TypeError,
     r"apply_network: x must be a dask\.array\.Array, got ndarray.* call net\(x\)"),
    (nn.Sequential(nn.Conv2d(3, 2, 3, padding=1)), da.zeros((1, 3, 8, 8), dtype=np.float32, chunks=(1, 1, 8, 8)),
     None, None),
])
def test_inputs_that_do_not_fit_the_network_are_refused(net, x, error, message):
    if error is None:  # a split channel axis is merged
        assert fcd.apply_network(net, x).chunks[1] == (2,)
        with pytest.raises(ValueError, match=r"channel axis C is split"):
            fcd.apply_network(net, x, rechunk=False)
        return
    with pytest.raises(error, match=message):
        fcd.apply_network(net, x)


def test_chunks_shorter_than_the_halo_are_merged_or_refused():
    net = nn.Sequential(nn.Conv1d(1, 1, 5, padding=2, dtype=np.float64)).eval()
    x = da.zeros((1, 1, 30), chunks=(1, 1, (3, 10, 10, 7)))
    assert fcd.apply_network(net, x).chunks[2] == (13, 10, 7)
    with pytest.raises(ValueError, match=r"x's chunks \(3, 10, 10, 7\) along L do not line up: the chunk "
                                         r"\[0, 3\) is shorter than 5 cells \(the network's halo \+ 1\)"):
        fcd.apply_network(net, x, rechunk=False)
