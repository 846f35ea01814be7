"""Optional cross-check against PyTorch (skipped when torch is not installed):
the demo networks with the same weights give the same loss, gradients, running
statistics and optimiser steps as their ``torch.nn`` twins."""

from __future__ import annotations

import numpy as np
import pytest

from ferroconv import nn
from nn_gradcheck import needs_pooling

torch = pytest.importorskip("torch")


def torch_twin(model: nn.Sequential) -> "torch.nn.Sequential":
    """The same architecture in torch.nn (float64), with the same weights."""
    tnn = torch.nn
    layers = []
    for layer in model:
        if isinstance(layer, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            conv = {1: tnn.Conv1d, 2: tnn.Conv2d, 3: tnn.Conv3d}[layer.rank]
            layers.append(conv(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride,
                               padding=layer.padding, dilation=layer.dilation, groups=layer.groups,
                               bias=layer.bias is not None, padding_mode=layer.padding_mode))
        elif isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            norm = {nn.BatchNorm1d: tnn.BatchNorm1d, nn.BatchNorm2d: tnn.BatchNorm2d,
                    nn.BatchNorm3d: tnn.BatchNorm3d}[type(layer)]
            layers.append(norm(layer.num_features, eps=layer.eps, momentum=layer.momentum))
        elif isinstance(layer, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
            pool = {1: tnn.MaxPool1d, 2: tnn.MaxPool2d, 3: tnn.MaxPool3d}[layer.rank]
            layers.append(pool(layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                               ceil_mode=layer.ceil_mode))
        elif isinstance(layer, nn.Linear):
            layers.append(tnn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None))
        elif isinstance(layer, nn.ReLU):
            layers.append(tnn.ReLU())
        elif isinstance(layer, nn.Flatten):
            layers.append(tnn.Flatten(layer.start_dim, layer.end_dim))
        else:
            raise NotImplementedError(type(layer).__name__)
    twin = tnn.Sequential(*layers).double()
    twin.load_state_dict({key: torch.from_numpy(value) for key, value in model.state_dict().items()})
    return twin


def compare_step(model, twin, x, labels):
    loss_fn = nn.CrossEntropyLoss()
    model.zero_grad()
    loss = loss_fn(model(x), labels)
    grad_x = model.backward(loss_fn.backward())
    x_torch = torch.tensor(x, requires_grad=True)
    twin.zero_grad()
    loss_torch = torch.nn.functional.cross_entropy(twin(x_torch), torch.from_numpy(labels))
    loss_torch.backward()
    assert loss == pytest.approx(loss_torch.item(), rel=1e-10)
    np.testing.assert_allclose(grad_x, x_torch.grad.numpy(), rtol=1e-8, atol=1e-12)
    torch_params = dict(twin.named_parameters())
    for name, param in model.named_parameters():
        np.testing.assert_allclose(param.grad, torch_params[name].grad.numpy(), rtol=1e-8, atol=1e-12,
                                   err_msg=name)


@needs_pooling
def test_lenet_matches_torch():
    from ferroconv.demo import digits

    rng = np.random.default_rng(0)
    model = digits.build(np.dtype(np.float64), rng)
    twin = torch_twin(model)
    x = rng.random((16, 1, 8, 8))
    compare_step(model, twin, x, rng.integers(0, 10, 16))


def test_batchnorm_network_and_optimisers_match_torch():
    from ferroconv.demo import signals

    rng = np.random.default_rng(1)
    model = signals.build(np.dtype(np.float64), rng)
    twin = torch_twin(model)
    optimizer = nn.Adam(model.parameters(), lr=1e-2, weight_decay=1e-3)
    # same parameter order on both sides (named_parameters follows registration)
    twin_optimizer = torch.optim.Adam(list(twin.parameters()), lr=1e-2, weight_decay=1e-3)
    for _ in range(3):
        x = rng.standard_normal((8, 1, 128))
        labels = rng.integers(0, 4, 8)
        compare_step(model, twin, x, labels)
        optimizer.step()
        twin_optimizer.step()
    torch_state = twin.state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(value, torch_state[key].numpy(), rtol=1e-7, atol=1e-10, err_msg=key)
    model.eval(), twin.eval()
    x = rng.standard_normal((4, 1, 128))
    with torch.no_grad():
        np.testing.assert_allclose(model(x), twin(torch.from_numpy(x)).numpy(), rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("options", [dict(momentum=0.9, nesterov=True, weight_decay=1e-2),
                                     dict(momentum=0.5, dampening=0.1)])
def test_sgd_matches_torch(options):
    rng = np.random.default_rng(2)
    start = rng.standard_normal((3, 4))
    param = nn.Parameter(start.copy())
    param_torch = torch.tensor(start.copy(), requires_grad=True)
    optimizer = nn.SGD([param], lr=0.1, **options)
    optimizer_torch = torch.optim.SGD([param_torch], lr=0.1, **options)
    for _ in range(4):
        grad = rng.standard_normal((3, 4))
        param.grad[...] = grad
        param_torch.grad = torch.from_numpy(grad.copy())
        optimizer.step()
        optimizer_torch.step()
    np.testing.assert_allclose(param.data, param_torch.detach().numpy(), rtol=1e-12)
