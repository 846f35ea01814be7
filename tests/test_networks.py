"""The layer catalogue of the network-shape suite (``ferroconv.networks``) and a
smoke run of ``bench --suite networks``.

The catalogue is checked against facts published independently of this code:
the multiply-adds of each network's convolutions (torchvision's model table and
the MobileNetV2 paper), the number of convolution layers, and output shapes
computed by ferroconv's own shape function (which the operator tests pin to
PyTorch's).
"""

import json

import numpy as np
import pytest

import ferroconv as fc
from ferroconv import bench_networks, networks

# Convolution multiply-adds per image at 224x224 (the classifier's are left
# out: VGG-16's three linear layers are 123.6M, the others' about 1M or less).
PUBLISHED_GMACS = {"resnet18": 1.81, "resnet50": 4.09, "vgg16": 15.35, "mobilenet_v2": 0.300}
# Convolution layers per network, counting repeats (downsampling 1x1s included).
CONV_LAYERS = {"resnet18": 20, "resnet50": 53, "vgg16": 13, "mobilenet_v2": 52}


@pytest.mark.parametrize("name", sorted(PUBLISHED_GMACS))
def test_network_multiply_adds_match_the_published_counts(name):
    layers = networks.layers([name])
    gmacs = sum(layer.count * layer.flops(1) for layer in layers) / 2e9
    assert gmacs == pytest.approx(PUBLISHED_GMACS[name], rel=0.01)
    convs = sum(layer.count for layer in layers if layer.op == "conv")
    assert convs == CONV_LAYERS[name]


def test_layers_are_distinct_and_shapes_agree_with_ferroconv():
    for name in networks.NETWORKS:
        layers = networks.layers([name])
        assert len(set(layers)) == len(layers), name
        for layer in layers:
            if layer.op != "conv":
                continue
            pads = layer.padding if isinstance(layer.padding, tuple) else layer.padding
            spatial = fc.conv_output_shape(layer.in_shape[1:], layer.kernel, layer.stride, pads, layer.dilation)
            assert layer.out_shape() == (layer.out_channels, *spatial), layer


def test_wavenet_layers_are_causal_with_dilations_1_to_512():
    dilated = [layer for layer in networks.wavenet() if layer.kernel == (2,) and layer.in_shape[0] == 64]
    assert sorted(layer.dilation for layer in dilated) == [2**i for i in range(10)]
    for layer in dilated:
        assert layer.padding == ((layer.dilation, 0),)
        assert layer.out_shape()[1:] == layer.in_shape[1:]


def test_unknown_network_is_a_value_error():
    with pytest.raises(ValueError, match="unknown network"):
        networks.layers(["alexnet"])


def test_json_records_carry_shapes_for_the_rust_benches():
    records = json.loads(networks.to_json(networks.layers(["mobilenet_v2"])))
    assert records and all(len(r["padding"]) == len(r["kernel"]) or r["op"] == "adaptive_avg_pool" for r in records)
    assert all(r["out_shape"] and r["name"] for r in records)


def test_suite_runs_one_layer_per_op_and_computes_correct_results(capsys):
    # The smallest layers of each kind; results are checked against PyTorch-free
    # NumPy sums so the timing code cannot be timing a wrong computation.
    rows = bench_networks.run(["mobilenet_v2"], repeat=1, threads=1, names=["global avg pool"])
    assert len(rows) == 1 and rows[0]["ferroconv fwd N=1 ms"] > 0
    layer = next(l for l in networks.layers(["mobilenet_v2"]) if l.op == "adaptive_avg_pool")
    arrays = bench_networks.make_arrays(layer, 2, np.random.default_rng(0))
    out = bench_networks.ferroconv_call(layer, arrays, backward=False)()
    np.testing.assert_allclose(np.asarray(out).reshape(2, -1), arrays.x.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    markdown = bench_networks.markdown(rows)
    assert "MobileNetV2" in markdown and "global avg pool" in markdown


def test_suite_conv_calls_compute_the_layer():
    layer = next(l for l in networks.wavenet() if l.dilation == 4)
    arrays = bench_networks.make_arrays(layer, 1, np.random.default_rng(1))
    out = bench_networks.ferroconv_call(layer, arrays, backward=False)()
    # Causal dilated conv by hand: y[t] = b + sum_k w[:, :, k] x[t - d * (1 - k)].
    x, w, b = arrays.x[0].astype(np.float64), arrays.weight.astype(np.float64), arrays.bias
    d = layer.dilation
    shifted = np.concatenate([np.zeros((x.shape[0], d)), x[:, :-d]], axis=1)
    want = np.einsum("oc,ct->ot", w[:, :, 0], shifted) + np.einsum("oc,ct->ot", w[:, :, 1], x) + b[:, None]
    np.testing.assert_allclose(out[0], want, rtol=1e-4, atol=1e-3)


def test_median_of_runs_takes_each_times_and_ratios_median_and_range():
    def row(layer: str, ours: float, theirs: float) -> dict:
        return {"network": "N", "layer": layer, "count": 1, "threads": 2, "ferroconv fwd N=1 ms": ours,
                "torch fwd N=1 ms": theirs, "x torch fwd N=1": theirs / ours}
    runs = [[row("a", 1.0, 2.0), row("b", 4.0, 1.0)], [row("a", 3.0, 3.0), row("b", 2.0, 1.0)],
            [row("a", 2.0, 8.0), row("b", 1.0, 1.0)]]
    a, b = bench_networks.median_rows(runs)
    assert (a["ferroconv fwd N=1 ms"], a["torch fwd N=1 ms"]) == (2.0, 3.0)
    # the ratio is the median of the per-run ratios (2, 1, 4), not a ratio of medians
    assert a["x torch fwd N=1"] == 2.0 and a["spread fwd N=1"] == (1.0, 4.0)
    assert b["x torch fwd N=1"] == 0.5 and b["spread fwd N=1"] == (0.25, 1.0)
    assert "(x2.00, 1.00-4.00)" in bench_networks.markdown([a, b])
    with pytest.raises(ValueError, match="same layers"):
        bench_networks.median_rows([runs[0], runs[1][::-1]])
