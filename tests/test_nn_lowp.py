"""Mixed precision in ``ferroconv.nn``: 16-bit layers (float16, bfloat16) store
16-bit parameters and activations, compute in float32, and the optimisers keep
float32 master weights that they round once into the 16-bit parameters."""

from __future__ import annotations

import numpy as np
import pytest

from ferroconv import nn

ml_dtypes = pytest.importorskip("ml_dtypes")
BF16 = np.dtype(ml_dtypes.bfloat16)
HALVES = (np.dtype(np.float16), BF16)


def small_net(dtype, seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, dtype=dtype, rng=rng), nn.BatchNorm2d(4, dtype=dtype), nn.ReLU(),
        nn.MaxPool2d(2), nn.Conv2d(4, 6, 3, dtype=dtype, rng=rng), nn.Tanh(), nn.Flatten(),
        nn.Linear(6, 3, dtype=dtype, rng=rng), nn.Sigmoid(), nn.Dropout(0.0), nn.LeakyReLU(0.1),
    )


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_every_layer_keeps_the_16_bit_dtype(dtype):
    net = small_net(dtype)
    x = np.random.default_rng(1).standard_normal((2, 1, 6, 6)).astype(dtype)
    y = net(x)
    assert y.dtype == dtype and y.shape == (2, 3)
    loss = nn.CrossEntropyLoss()
    loss(y, np.array([0, 2]))
    grad_x = net.backward(loss.backward())
    assert grad_x.dtype == dtype and grad_x.shape == x.shape
    for name, param in net.named_parameters():
        assert param.dtype == dtype and param.grad.dtype == dtype, name
        assert np.all(np.isfinite(param.grad.astype(np.float32))), name


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_16_bit_forward_and_gradients_track_float32(dtype):
    # The same network in float32 with the 16-bit weights upcast: outputs and
    # gradients agree to the 16-bit rounding of the activations between layers.
    net16 = small_net(dtype)
    net32 = small_net(np.float32)
    net32.load_state_dict({k: v.astype(np.float32) for k, v in net16.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((4, 1, 6, 6)).astype(dtype)
    y16, y32 = net16(x), net32(x.astype(np.float32))
    tol = 0.05 if dtype == BF16 else 0.01
    np.testing.assert_allclose(y16.astype(np.float32), y32, atol=tol, rtol=tol)
    g = np.random.default_rng(3).standard_normal(y32.shape)
    net16.backward(g.astype(dtype))
    net32.backward(g.astype(np.float32))
    # one scale for all: the first conv's bias feeds batch norm, so its exact
    # gradient is zero and only rounding noise of the other gradients' size remains
    scale = max(float(np.max(np.abs(p.grad))) for p in net32.parameters())
    for (name, p16), p32 in zip(net16.named_parameters(), net32.parameters()):
        np.testing.assert_allclose(p16.grad.astype(np.float32), p32.grad, atol=4 * tol * scale, err_msg=name)


@pytest.mark.parametrize("dtype", HALVES, ids=str)
@pytest.mark.parametrize("optimizer, options", [(nn.SGD, dict(lr=0.1, momentum=0.9)), (nn.Adam, dict(lr=1e-3))])
def test_optimisers_keep_float32_master_weights(dtype, optimizer, options):
    # Updates far below half a 16-bit ulp: applied to the 16-bit values they would
    # be lost; the float32 master keeps them, and the parameter is always the
    # master rounded once. The master follows the float32 optimiser exactly.
    rng = np.random.default_rng(4)
    start = rng.uniform(1, 2, 64)
    p16 = nn.Parameter(start.astype(dtype))
    p32 = nn.Parameter(start.astype(dtype).astype(np.float32))
    opt16, opt32 = optimizer([p16], **options), optimizer([p32], **options)
    tiny = 1e-3 if optimizer is nn.SGD else 1.0
    for step in range(30):
        grad = (tiny * rng.uniform(0.5, 1, 64)).astype(dtype)
        for p, opt, g in ((p16, opt16, grad), (p32, opt32, grad.astype(np.float32))):
            opt.zero_grad()
            p.grad += g
            opt.step()
        master = opt16.masters[0]
        assert master is not None and master.dtype == np.float32
        np.testing.assert_array_equal(master, p32.data, err_msg=f"step {step}")
        np.testing.assert_array_equal(p16.data.view(np.uint16), master.astype(dtype).view(np.uint16))
    moved = np.abs(p32.data - start.astype(dtype).astype(np.float32))
    assert np.all(moved > 0)


def test_optimiser_rereads_weights_written_from_outside():
    p = nn.Parameter(np.ones(4, BF16))
    opt = nn.SGD([p], lr=0.5)
    p.data[...] = np.full(4, 3.0, BF16)  # e.g. load_state_dict
    p.grad[...] = np.ones(4, BF16)
    opt.step()
    np.testing.assert_array_equal(p.data.astype(np.float32), np.full(4, 2.5, np.float32))


def test_float32_and_float64_optimisers_keep_no_masters():
    p = nn.Parameter(np.ones(3, np.float32))
    assert nn.Adam([p]).masters == [None]


@pytest.mark.parametrize("dtype", HALVES, ids=str)
def test_16_bit_weights_save_and_load(dtype, tmp_path):
    net = small_net(dtype)
    net.save(tmp_path / "w.npz")
    other = small_net(dtype, seed=5)
    other.load(tmp_path / "w.npz")
    for (name, a), b in zip(net.state_dict().items(), other.state_dict().values()):
        assert b.dtype == a.dtype, name
        np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8), err_msg=name)


def test_bfloat16_by_name_and_a_clear_error_for_other_dtypes():
    assert nn.Conv2d(1, 1, 3, dtype="bfloat16").weight.dtype == BF16
    with pytest.raises(TypeError, match="Conv2d: dtype must be float32, float64, float16 or bfloat16"):
        nn.Conv2d(1, 1, 3, dtype=np.int16)
