"""nn.LPPool1d/2d/3d: forward and backward equal the functional Lp pooling, the
backward is checked by finite differences (float64), and the layers match
torch.nn.LPPool* when PyTorch is installed."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import ferroconv as fc
from ferroconv import nn


@given(rank=st.integers(1, 3), p=st.sampled_from([1.0, 2.0, 3.0, math.inf]), ceil_mode=st.booleans(),
       seed=st.integers(0, 1000), batched=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]))
def test_layer_equals_the_functional_op(rank, p, ceil_mode, seed, batched, dtype):
    rng = np.random.default_rng(seed)
    x = (np.abs(rng.standard_normal((2, 3) + (5,) * rank)) + 0.1).astype(dtype)
    if not batched:
        x = x[0]
    layer = getattr(nn, f"LPPool{rank}d")(p, 2, 2, ceil_mode, padding="same", dilation=1)
    out = layer(x)
    np.testing.assert_array_equal(out, getattr(fc, f"lp_pool{rank}d")(x, p, 2, 2, ceil_mode, "same"))
    g = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_array_equal(layer.backward(g),
                                  getattr(fc, f"lp_pool{rank}d_backward")(g, x, p, 2, 2, ceil_mode, "same"))


def test_backward_matches_finite_differences():
    rng = np.random.default_rng(4)
    x = np.abs(rng.standard_normal((2, 2, 6, 7))) + 0.2
    layer = nn.LPPool2d(3, (2, 3), (1, 2), padding=((1, 0), (0, 2)), dilation=(2, 1))
    y = layer(x)
    g, v = rng.standard_normal(y.shape), rng.standard_normal(x.shape)
    gx = layer.backward(g)
    eps = 1e-6
    directional = np.vdot(g, (layer(x + eps * v) - layer(x - eps * v)) / (2 * eps))
    np.testing.assert_allclose(np.vdot(gx, v), directional, rtol=1e-6)


def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match="LPPool2d: norm_type must be a nonzero number"):
        nn.LPPool2d(0, 2)
    with pytest.raises(ValueError, match="LPPool2d.*padding"):
        nn.LPPool2d(2, 3, padding=((0, 5), (0, 0)))
    with pytest.raises(ValueError, match="LPPool1d"):
        nn.LPPool1d(2, 2)(np.ones((1, 1, 1)))
    assert "norm_type=2.0, kernel_size=(2, 2)" in repr(nn.LPPool2d(2, 2))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_layers_match_torch(rank):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(rank)
    x = rng.standard_normal((2, 3) + (6,) * rank)
    theirs = getattr(torch.nn, f"LPPool{rank}d")(2, 3, 2, ceil_mode=True)
    t = torch.tensor(x, requires_grad=True)
    ref = theirs(t)
    g = rng.standard_normal(tuple(ref.shape))
    ref.backward(torch.tensor(g))
    ours = getattr(nn, f"LPPool{rank}d")(2, 3, 2, ceil_mode=True)
    np.testing.assert_allclose(ours(x), ref.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(ours.backward(g), t.grad.numpy(), rtol=1e-9, atol=1e-12)
