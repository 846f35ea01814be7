"""Whole-network gradient check: one float64 network holding every layer type
(three branches, one per rank, joined by a fully connected head) must have a
backward pass that matches central finite differences of its loss, for the
input of every branch and every parameter, in training and in eval mode."""

from __future__ import annotations

import numpy as np
import pytest

from ferroconv import nn
from nn_gradcheck import check_gradients, cross_entropy, max_pool_margin, relu_margin

STEP = 1e-6


def branch(rank: int, channels: int, pooling: bool, rng: np.random.Generator) -> nn.Sequential:
    """conv -> batchnorm -> [max pool] -> concat(ReLU, identity) -> transposed conv ->
    [avg pool] -> [group norm] -> activation with a skip -> [upsample, softmax, channel
    dropout] -> [adaptive avg pool] -> global avg pool -> flatten, in ``rank`` D."""
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[rank]
    transpose = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[rank]
    norm = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[rank]
    activation = {1: nn.Tanh(), 2: nn.Sigmoid(), 3: nn.LeakyReLU(0.2)}[rank]
    f64 = dict(dtype=np.float64, rng=rng)
    layers: list[nn.Module] = [conv(channels, 4, 3, padding=1, **f64), norm(4, dtype=np.float64)]
    if pooling:  # max pool before the ReLU: pooled ReLU zeros would tie
        layers.append({1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}[rank](2))
    # the joins of branches: the ReLU's output beside its input, and a skip
    # connection around the activation below
    layers += [nn.Concat(nn.ReLU(), nn.Identity()), transpose(8, 3, 2, stride=2, **f64)]
    if pooling:
        layers.append({1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}[rank](3, stride=1, padding=1))
    if pooling and rank == 2:
        layers.append(nn.GroupNorm(3, 3, dtype=np.float64))
    layers.append(nn.Add(nn.Identity(), activation) if rank == 1 else nn.Residual(activation))
    if pooling:  # smooth layers after the branch's last ReLU (channel dropout's zeros would sit on its kink)
        layers += {1: [nn.Upsample(scale_factor=1.5), nn.Dropout1d(0.3, rng=0)], 2: [nn.Dropout2d(0.3, rng=0)],
                   3: [nn.Softmax(dim=1), nn.Dropout3d(0.3, rng=0)]}[rank]
        layers.append({1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}[rank](3))
    layers += [nn.GlobalAvgPool(), nn.Flatten()] if rank == 3 or not pooling else [nn.Flatten()]
    return nn.Sequential(*layers)


class ThreeBranchNet(nn.Module):
    """A 1-D, a 2-D and a 3-D branch whose flattened features are concatenated and
    classified by ``Linear -> Dropout -> ReLU -> Linear -> LogSoftmax``."""

    def __init__(self, pooling: bool, inputs: list[np.ndarray], classes: int, seed: int) -> None:
        super().__init__()
        rng = np.random.default_rng(seed)
        self.branch1 = branch(1, inputs[0].shape[1], pooling, rng)
        self.branch2 = branch(2, inputs[1].shape[1], pooling, rng)
        self.branch3 = branch(3, inputs[2].shape[1], pooling, rng)
        features = sum(b(x).shape[1] for b, x in zip(self.branches(), inputs))
        self.head = nn.Sequential(
            nn.Linear(features, 8, dtype=np.float64, rng=rng), nn.Dropout(0.25, rng=0), nn.ReLU(),
            nn.Linear(8, classes, dtype=np.float64, rng=rng), nn.LogSoftmax(dim=1))
        self.dropout_seed = seed

    def branches(self) -> list[nn.Sequential]:
        return [self.branch1, self.branch2, self.branch3]

    def reseed_dropout(self) -> None:
        """Every dropout layer draws the same masks at every forward pass."""
        for k, module in enumerate(self.modules()):
            if isinstance(module, nn.Dropout):
                module.rng = np.random.default_rng(self.dropout_seed + k)

    def forward(self, inputs: list[np.ndarray]) -> np.ndarray:  # type: ignore[override]
        features = [b(x) for b, x in zip(self.branches(), inputs)]
        self._widths = [f.shape[1] for f in features]
        return self.head(np.concatenate(features, axis=1))

    def backward(self, grad_out: np.ndarray) -> list[np.ndarray]:  # type: ignore[override]
        grad_features = self.head.backward(grad_out)
        splits = np.split(grad_features, np.cumsum(self._widths)[:-1], axis=1)
        return [b.backward(g) for b, g in zip(self.branches(), splits)]


class Joined(nn.Module):
    """Adapter presenting the list-input network as a single-array module to the
    gradient checker: the three inputs are views of one flat vector."""

    def __init__(self, net: ThreeBranchNet, shapes: list[tuple[int, ...]]) -> None:
        super().__init__()
        self.net = net
        self.shapes = shapes
        self.sizes = [int(np.prod(s)) for s in shapes]

    def split(self, flat: np.ndarray) -> list[np.ndarray]:
        parts = np.split(flat, np.cumsum(self.sizes)[:-1])
        return [p.reshape(s) for p, s in zip(parts, self.shapes)]

    def forward(self, flat: np.ndarray) -> np.ndarray:
        return self.net(self.split(flat))

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return np.concatenate([g.ravel() for g in self.net.backward(grad_out)])


def kink_margin(net: ThreeBranchNet, inputs: list[np.ndarray]) -> float:
    """How far every ReLU input is from 0 and every max-pool window's maximum is
    from its runner-up: finite differences are exact only away from those kinks."""
    margin = np.inf
    features = []
    net.reseed_dropout()  # the masks of the checked forward passes
    for sequence, x in zip(net.branches(), inputs):
        for layer in sequence:
            if any(isinstance(module, nn.ReLU) for module in layer.modules()):
                margin = min(margin, relu_margin(x))
            if isinstance(layer, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
                margin = min(margin, max_pool_margin(x, layer))
            x = layer(x)
        features.append(x)
    hidden = net.head[0](np.concatenate(features, axis=1))
    return min(margin, relu_margin(net.head[1](hidden)[net.head[1]._cache > 0]))


def make_case(pooling: bool, mode: str, min_margin: float = 100 * STEP):
    """The first seed whose network and inputs keep every kink at least
    ``min_margin`` away (deterministic: the same seed is found every run)."""
    for seed in range(50):
        rng = np.random.default_rng(seed)
        inputs = [rng.standard_normal(shape) for shape in [(4, 2, 12), (4, 2, 6, 6), (4, 1, 4, 4, 4)]]
        labels = np.array([0, 2, 1, 2])
        net = ThreeBranchNet(pooling, inputs, classes=3, seed=seed)
        net.train(mode == "train")
        if kink_margin(net, inputs) > min_margin:
            return net, inputs, labels
    raise AssertionError("no seed keeps the network away from ReLU / max-pool kinks")


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("pooling", [
    pytest.param(True, id="every-layer"),
    pytest.param(False, id="without-pooling-layers"),
])
def test_network_backward_matches_finite_differences(pooling, mode):
    net, inputs, labels = make_case(pooling, mode)
    joined = Joined(net, [x.shape for x in inputs])
    flat = np.concatenate([x.ravel() for x in inputs])
    check_gradients(joined, flat, cross_entropy(labels), per_array=5, step=STEP, rtol=1e-5, atol=1e-9,
                    before_forward=net.reseed_dropout)


def test_network_holds_every_layer_type():
    net, _, _ = make_case(True, "train")
    used = {type(m).__name__ for m in net.modules()}
    layers = {name for name in nn.__all__
              if isinstance(getattr(nn, name), type) and issubclass(getattr(nn, name), nn.Module)}
    expected = layers - {"Module"} - CHECKED_ALONE
    assert expected <= used, expected - used


# Layers gradient-checked on their own (tests/test_nn_layers_more.py), not in the
# network: max unpooling takes a second input (the indices), and the kinks of the
# adaptive and global max pools are not covered by kink_margin (which knows
# non-overlapping MaxPool only); fractional max pooling draws new windows on every
# forward pass, which finite differences cannot follow. LPPool* are checked by
# finite differences in tests/test_nn_lppool.py.
CHECKED_ALONE = {
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d",
    # random windows every forward pass (tests/test_pool_fractional.py)
    "FractionalMaxPool2d", "FractionalMaxPool3d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "GlobalMaxPool",
    "LPPool1d", "LPPool2d", "LPPool3d",
}
