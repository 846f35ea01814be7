"""Module behaviour: parameter registry and naming, gradient accumulation,
initialisation, dtypes, train/eval, BatchNorm's running statistics, Dropout,
and state dicts through ``.npz`` files."""

from __future__ import annotations

import numpy as np
import pytest

from ferroconv import nn


def small_net(dtype=np.float32, seed=0) -> nn.Sequential:
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, dtype=dtype, rng=rng), nn.BatchNorm2d(4, dtype=dtype), nn.ReLU(),
        nn.GlobalAvgPool(), nn.Flatten(), nn.Dropout(0.2, rng=rng), nn.Linear(4, 3, dtype=dtype, rng=rng))


def test_parameters_are_named_and_ordered_like_pytorch():
    net = small_net()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "6.weight", "6.bias"]
    assert list(net.state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
        "1.num_batches_tracked", "6.weight", "6.bias"]
    assert [p.shape for p in net.parameters()] == [(4, 1, 3, 3), (4,), (4,), (4,), (3, 4), (3,)]
    assert [g.shape for g in net.grads()] == [p.shape for p in net.parameters()]
    assert all(g is p.grad for g, p in zip(net.grads(), net.parameters()))


def test_backward_accumulates_until_zero_grad():
    net = small_net(np.float64)
    x = np.random.default_rng(1).standard_normal((5, 1, 6, 6))
    net.eval()  # deterministic: no dropout mask, fixed statistics
    grad_out = np.ones((5, 3))
    net(x)
    net.backward(grad_out)
    once = [g.copy() for g in net.grads()]
    net(x)
    net.backward(grad_out)
    for first, total in zip(once, net.grads()):
        np.testing.assert_allclose(total, 2 * first)
    net.zero_grad()
    assert all(not g.any() for g in net.grads())


def test_default_init_is_pytorchs_kaiming_uniform_and_seeded():
    conv = nn.Conv2d(6, 8, (3, 5), groups=2, rng=np.random.default_rng(3))
    bound = 1 / np.sqrt(3 * 3 * 5)  # fan_in = in_channels / groups * kernel
    for param in (conv.weight, conv.bias):
        assert param.dtype == np.float32
        assert np.abs(param.data).max() <= bound
        assert np.abs(param.data).max() > 0.9 * bound  # spread over the whole interval
    again = nn.Conv2d(6, 8, (3, 5), groups=2, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(conv.weight.data, again.weight.data)
    transpose = nn.ConvTranspose1d(4, 6, 3, groups=2, rng=0)
    assert transpose.weight.shape == (4, 3, 3)
    assert np.abs(transpose.weight.data).max() <= 1 / np.sqrt(3 * 3)  # fan_in = out / groups * k
    linear = nn.Linear(50, 2, dtype=np.float64, rng=0)
    assert linear.weight.dtype == np.float64
    assert np.abs(linear.bias.data).max() <= 1 / np.sqrt(50)


def test_float64_layers_compute_in_float64():
    net = small_net(np.float64)
    out = net(np.zeros((2, 1, 5, 5)))
    assert out.dtype == np.float64
    assert all(p.dtype == np.float64 for p in net.parameters())


def test_train_and_eval_switch_every_descendant():
    net = nn.Sequential(nn.Sequential(nn.Dropout()), nn.BatchNorm1d(2))
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


@pytest.mark.parametrize("layer_type, shape", [
    (nn.BatchNorm1d, (8, 3)), (nn.BatchNorm1d, (4, 3, 5)), (nn.BatchNorm2d, (4, 3, 2, 3)),
    (nn.BatchNorm3d, (2, 3, 2, 2, 3)),
])
def test_batchnorm_running_stats_follow_pytorch(layer_type, shape):
    rng = np.random.default_rng(0)
    layer = layer_type(3, dtype=np.float64)
    layer.weight.data[...] = [0.5, 1.0, 2.0]
    layer.bias.data[...] = [0.1, -0.2, 0.3]
    axes = (0,) + tuple(range(2, len(shape)))
    per_channel = (1, 3) + (1,) * (len(shape) - 2)
    running_mean, running_var = np.zeros(3), np.ones(3)
    for _ in range(3):
        x = rng.standard_normal(shape) * 3 + 1
        out = layer(x)
        mean, var = x.mean(axis=axes), x.var(axis=axes)
        count = x.size // 3
        expected = (x - mean.reshape(per_channel)) / np.sqrt(var.reshape(per_channel) + 1e-5)
        np.testing.assert_allclose(out, expected * layer.weight.data.reshape(per_channel)
                                   + layer.bias.data.reshape(per_channel), rtol=1e-12, atol=1e-12)
        running_mean = 0.9 * running_mean + 0.1 * mean
        running_var = 0.9 * running_var + 0.1 * var * count / (count - 1)  # unbiased, as PyTorch
    np.testing.assert_allclose(layer.running_mean, running_mean, rtol=1e-12)
    np.testing.assert_allclose(layer.running_var, running_var, rtol=1e-12)
    assert int(layer.num_batches_tracked) == 3
    layer.eval()
    before = layer.running_mean.copy(), layer.running_var.copy()
    x = rng.standard_normal(shape)
    expected = (x - running_mean.reshape(per_channel)) / np.sqrt(running_var.reshape(per_channel) + 1e-5)
    np.testing.assert_allclose(layer(x), expected * layer.weight.data.reshape(per_channel)
                               + layer.bias.data.reshape(per_channel), rtol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, before[0])  # eval leaves them alone
    np.testing.assert_array_equal(layer.running_var, before[1])


def test_batchnorm_momentum_none_is_a_cumulative_average():
    layer = nn.BatchNorm1d(2, momentum=None, dtype=np.float64)
    batches = [np.random.default_rng(i).standard_normal((6, 2)) for i in range(4)]
    for x in batches:
        layer(x)
    np.testing.assert_allclose(layer.running_mean, np.mean([x.mean(axis=0) for x in batches], axis=0))


def test_batchnorm_without_running_stats_uses_batch_stats_in_eval():
    layer = nn.BatchNorm2d(2, track_running_stats=False, dtype=np.float64).eval()
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 4)) + 5
    out = layer(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    assert "1.running_mean" not in nn.Sequential(nn.ReLU(), layer).state_dict()


def test_dropout_is_identity_in_eval_and_keeps_the_expectation_in_train():
    x = np.full((200, 500), 3.0, np.float32)
    dropout = nn.Dropout(0.3, rng=np.random.default_rng(0))
    out = dropout(x)
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(out[kept], 3.0 / 0.7, rtol=1e-6)
    assert abs(out.mean() - 3.0) < 0.03
    np.testing.assert_array_equal(dropout.backward(np.ones_like(x)), kept / np.float32(0.7))
    dropout.eval()
    np.testing.assert_array_equal(dropout(x), x)
    np.testing.assert_array_equal(dropout.backward(x), x)
    assert not nn.Dropout(1.0)(x).any()


def test_state_dict_round_trips_through_npz_bit_exactly(tmp_path):
    net = small_net(np.float32, seed=1)
    net(np.random.default_rng(0).standard_normal((4, 1, 5, 5)).astype(np.float32))  # move running stats
    path = tmp_path / "weights.npz"
    net.save(path)
    other = small_net(np.float32, seed=2)
    other.load(path)
    saved, loaded = net.state_dict(), other.state_dict()
    assert list(saved) == list(loaded)
    for key in saved:
        assert loaded[key].dtype == saved[key].dtype, key
        np.testing.assert_array_equal(loaded[key], saved[key])
        assert loaded[key].tobytes() == saved[key].tobytes(), key
    with np.load(path) as archive:
        assert sorted(archive.files) == sorted(saved)
    net.eval(), other.eval()
    x = np.random.default_rng(5).standard_normal((2, 1, 5, 5)).astype(np.float32)
    np.testing.assert_array_equal(net(x), other(x))


def test_state_dict_is_a_copy_and_loading_is_in_place():
    net = small_net()
    state = net.state_dict()
    state["0.weight"][...] = 7
    assert not (net[0].weight.data == 7).any()
    weight = net[0].weight.data
    net.load_state_dict(state)
    assert net[0].weight.data is weight and (weight == 7).all()


def test_custom_module_registers_attributes():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(2, 2, 3, padding=1, rng=0)
            self.scale = nn.Parameter(np.ones(1, np.float32))

    assert [name for name, _ in Block().named_parameters()] == ["scale", "conv.weight", "conv.bias"]
