"""examples/network_inference.py builds ResNet-18 and MobileNetV2 from
ferroconv.functional with BatchNorm folded into the convolutions; its logits must
match the PyTorch module's (the reference is PyTorch itself; skipped without it)."""

import numpy as np
import pytest

from example_scripts import load_example

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def example():
    return load_example("network_inference")


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_folded_network_matches_pytorch(example, name):
    torch.manual_seed(0)
    builder = {"resnet18": example.torch_resnet18, "mobilenet_v2": example.torch_mobilenet_v2}[name]
    model = builder(torch)
    example.randomise_batchnorm(torch, model)
    model.eval()
    ours = example.ferroconv_model(torch, model, name)
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64), dtype=np.float32)
    with torch.inference_mode():
        want = model(torch.from_numpy(x)).numpy()
    got = ours(x)
    assert got.shape == want.shape == (2, 1000)
    assert np.max(np.abs(got - want)) <= 1e-4 * np.max(np.abs(want))
    assert np.array_equal(got.argmax(1), want.argmax(1))
