"""Residual and branching blocks, and composed modules whose backward is recorded
from their forward: gradients against central finite differences (float64), the
outputs against plain NumPy, PyTorch parity when installed, and the errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ferroconv import nn
from nn_gradcheck import check_gradients, projection

F64: dict[str, Any] = {"dtype": np.float64}


def conv(cin: int, cout: int, k: int, rng: np.random.Generator, **kw: Any) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, rng=rng, **F64, **kw)


class BasicBlock(nn.Module):
    """ResNet's basic block written as a composed forward (no backward)."""

    def __init__(self, cin: int, cout: int, stride: int, rng: np.random.Generator) -> None:
        super().__init__()
        self.conv1 = conv(cin, cout, 3, rng, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, **F64)
        self.act1 = nn.Tanh()
        self.conv2 = conv(cout, cout, 3, rng, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, **F64)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(conv(cin, cout, 1, rng, stride=stride, bias=False),
                                          nn.BatchNorm2d(cout, **F64))
        self.act2 = nn.Tanh()

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        return self.act2(nn.add(y, self.shortcut(x)))


def bottleneck(cin: int, mid: int, cout: int, stride: int, rng: np.random.Generator) -> nn.Residual:
    body = nn.Sequential(conv(cin, mid, 1, rng), nn.BatchNorm2d(mid, **F64), nn.Tanh(),
                         conv(mid, mid, 3, rng, stride=stride), nn.BatchNorm2d(mid, **F64), nn.Tanh(),
                         conv(mid, cout, 1, rng), nn.BatchNorm2d(cout, **F64))
    shortcut = nn.Sequential(conv(cin, cout, 1, rng, stride=stride), nn.BatchNorm2d(cout, **F64))
    return nn.Residual(body, shortcut)


class TinyUNet(nn.Module):
    """Encoder, pooled middle, transposed-conv decoder and a skip concatenation."""

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__()
        self.enc = nn.Sequential(conv(2, 3, 3, rng), nn.Tanh())
        self.down = nn.AvgPool2d(2)
        self.mid = nn.Sequential(conv(3, 4, 3, rng), nn.Sigmoid())
        self.up = nn.ConvTranspose2d(4, 3, 2, stride=2, rng=rng, **F64)
        self.dec = conv(6, 2, 3, rng)

    def forward(self, x: np.ndarray) -> np.ndarray:
        skip = self.enc(x)
        return self.dec(nn.cat([self.up(self.mid(self.down(skip))), skip], axis=1))


def inception(rng: np.random.Generator) -> nn.Concat:
    return nn.Concat(
        conv(3, 2, 1, rng),
        nn.Sequential(conv(3, 2, 1, rng), nn.Tanh(), conv(2, 3, 3, rng)),
        nn.Sequential(conv(3, 1, 1, rng), nn.Tanh(), conv(1, 2, 5, rng)),
        nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), conv(3, 2, 1, rng)),
    )


class Dense(nn.Module):
    """DenseNet-style growth: every layer sees the concatenation of all before it
    (the input reaches the output through three paths)."""

    def __init__(self, rng: np.random.Generator) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(conv(2, 2, 3, rng), nn.Tanh())
        self.layer2 = nn.Sequential(conv(4, 2, 3, rng), nn.Tanh())

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = nn.cat([x, self.layer1(x)])
        return nn.cat([x, self.layer2(x)])


def models() -> list[tuple[str, nn.Module, tuple[int, ...]]]:
    rng = np.random.default_rng(7)
    return [
        ("basic", BasicBlock(3, 3, 1, rng), (2, 3, 6, 6)),
        ("basic-projection", BasicBlock(3, 4, 2, rng), (2, 3, 7, 7)),
        ("bottleneck", bottleneck(4, 2, 6, 2, rng), (2, 4, 6, 6)),
        ("unet", TinyUNet(rng), (2, 2, 8, 8)),
        ("inception", inception(rng), (2, 3, 6, 6)),
        ("dense", Dense(rng), (2, 2, 5, 5)),
        ("nested", nn.Sequential(BasicBlock(2, 2, 1, rng), nn.Residual(BasicBlock(2, 2, 1, rng)),
                                 nn.Add(nn.Identity(), conv(2, 2, 3, rng))), (2, 2, 5, 5)),
    ]


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name,model,shape", models(), ids=[m[0] for m in models()])
def test_composite_gradients_match_finite_differences(name: str, model: nn.Module, shape: tuple[int, ...],
                                                      train: bool) -> None:
    model.train(train)
    x = np.random.default_rng(1).standard_normal(shape)
    out_shape = model(x).shape
    check_gradients(model, x, projection(out_shape), per_array=4)


def test_residual_and_joins_equal_plain_numpy() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 5, 5))
    a, b = conv(3, 3, 3, rng), conv(3, 2, 1, rng)
    expected_a, expected_b = a(x), b(x)
    np.testing.assert_array_equal(nn.Residual(a)(x), expected_a + x)
    np.testing.assert_array_equal(nn.Concat(a, b)(x), np.concatenate([expected_a, expected_b], axis=1))
    np.testing.assert_array_equal(nn.Concat(a, b, axis=-3)(x), np.concatenate([expected_a, expected_b], axis=1))
    np.testing.assert_array_equal(nn.Add(a, nn.Identity())(x), expected_a + x)
    np.testing.assert_array_equal(nn.add(x, x, x), 3 * x)
    np.testing.assert_array_equal(nn.cat([x, x], axis=2), np.concatenate([x, x], axis=2))
    # joins of inputs hand each input its part of the gradient
    join = nn.Concat(axis=3)
    join(x[..., :2], x[..., 2:])
    g = rng.standard_normal((2, 3, 5, 5))
    left, right = join.backward(g)
    np.testing.assert_array_equal(left, g[..., :2])
    np.testing.assert_array_equal(right, g[..., 2:])
    summed = nn.Add()
    summed(x, x)
    assert all(np.array_equal(part, g) for part in summed.backward(g))


def test_gradients_of_reused_and_unused_arrays() -> None:
    """An input used by three layers gets the sum of their gradients; a branch
    whose output never reaches the result gets no gradient."""

    class Fan(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            rng = np.random.default_rng(0)
            self.a, self.b, self.c, self.unused = (nn.Linear(3, 3, rng=rng, **F64) for _ in range(4))

        def forward(self, x: np.ndarray) -> np.ndarray:
            self.unused(x)
            return nn.add(self.a(x), self.b(x), self.c(x))

    fan = Fan()
    x = np.random.default_rng(1).standard_normal((4, 3))
    fan(x)
    g = np.random.default_rng(2).standard_normal((4, 3))
    expected = g @ (fan.a.weight.data + fan.b.weight.data + fan.c.weight.data)
    np.testing.assert_allclose(fan.backward(g), expected, rtol=1e-12)
    assert not fan.unused.weight.grad.any()
    np.testing.assert_allclose(fan.a.weight.grad, g.T @ x, rtol=1e-12)


def test_composed_module_with_several_inputs_and_identity_output() -> None:
    class Pair(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Linear(2, 2, bias=False, rng=0, **F64)

        def forward(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return nn.add(self.scale(a), b)

    class PassThrough(nn.Module):
        def forward(self, x: np.ndarray) -> np.ndarray:
            return x

    pair = Pair()
    a, b, g = (np.random.default_rng(i).standard_normal((3, 2)) for i in range(3))
    np.testing.assert_allclose(pair(a, b), a @ pair.scale.weight.data.T + b)
    grad_a, grad_b = pair.backward(g)
    np.testing.assert_allclose(grad_a, g @ pair.scale.weight.data)
    np.testing.assert_array_equal(grad_b, g)
    through = PassThrough()
    assert through(a) is a
    np.testing.assert_array_equal(through.backward(g), g)
    # inside another composed module the pass-through is still told apart from its input
    outer = nn.Sequential(nn.Residual(PassThrough()))
    np.testing.assert_array_equal(outer(a), 2 * a)
    np.testing.assert_array_equal(outer.backward(g), 2 * g)


def test_state_dict_keys_follow_the_attribute_names() -> None:
    block = BasicBlock(2, 3, 2, np.random.default_rng(0))
    keys = list(block.state_dict())
    assert keys[:2] == ["conv1.weight", "bn1.weight"]
    assert "shortcut.0.weight" in keys and "shortcut.1.running_var" in keys
    assert list(inception(np.random.default_rng(0)).state_dict())[:3] == ["0.weight", "0.bias", "1.0.weight"]


class Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Tanh()

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.act(self.act(x))


class Arithmetic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Tanh()

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.act(x * 2)


class ReturnsNumPy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.act = nn.Tanh()

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.act(x) + 1


def test_errors() -> None:
    x = np.ones((2, 3, 4, 4))
    with pytest.raises(ValueError, match="calls Tanh\\(\\) twice"):
        Twice()(x)
    with pytest.raises(ValueError, match="input 0 of Tanh\\(\\) .* computed outside the recorded layers"):
        Arithmetic()(x)
    with pytest.raises(ValueError, match="ReturnsNumPy.forward returned array of shape \\(2, 3, 4, 4\\)"):
        ReturnsNumPy()(x)
    with pytest.raises(ValueError, match="backward called before forward"):
        BasicBlock(3, 3, 1, np.random.default_rng(0)).backward(x)
    block = BasicBlock(3, 3, 1, np.random.default_rng(0))
    block(x)
    with pytest.raises(ValueError, match="grad_out has shape \\(2, 3, 4\\)"):
        block.backward(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="input 1 has shape \\(2, 3, 4, 5\\) but input 0 has shape \\(2, 3, 4, 4\\)"):
        nn.add(x, np.ones((2, 3, 4, 5)))
    with pytest.raises(ValueError, match="may differ on axis 1 only"):
        nn.cat([x, np.ones((2, 3, 5, 4))])
    with pytest.raises(ValueError, match="axis 4 is out of range"):
        nn.cat([x, x], axis=4)
    with pytest.raises(TypeError, match="input 1 has dtype float32 but input 0 has float64"):
        nn.add(x, x.astype(np.float32))
    with pytest.raises(ValueError, match="Residual: the body returned shape \\(2, 4, 4, 4\\) but the input"):
        nn.Residual(nn.Conv2d(3, 4, 1, **F64))(x)
    with pytest.raises(TypeError, match="Residual: body must be a Module, got ufunc"):
        nn.Residual(np.tanh)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="axis must be an int"):
        nn.Concat(axis=1.5)
    with pytest.raises(TypeError, match="Concat: branch 1 must be a Module, got int"):
        nn.Concat(nn.Identity(), 3)  # type: ignore[arg-type]  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cat: arrays must be a sequence of arrays"):
        nn.cat(x)
    with pytest.raises(TypeError, match="input must be float32"):
        nn.add(np.ones(3, np.int64), np.ones(3, np.int64))


def test_matches_pytorch_resnet_block() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    for dtype, tol in ((np.float64, 1e-10), (np.float32, 2e-4)):
        ours = nn.Sequential(
            nn.Residual(nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False, dtype=dtype, rng=rng),
                                      nn.BatchNorm2d(4, dtype=dtype), nn.ReLU(),
                                      nn.Conv2d(4, 4, 3, padding=1, bias=False, dtype=dtype, rng=rng),
                                      nn.BatchNorm2d(4, dtype=dtype)),
                        nn.Sequential(nn.Conv2d(3, 4, 1, stride=2, bias=False, dtype=dtype, rng=rng),
                                      nn.BatchNorm2d(4, dtype=dtype))),
            nn.ReLU(), nn.Concat(nn.Identity(), nn.MaxPool2d(3, stride=1, padding=1)))
        tdtype = torch.float64 if dtype == np.float64 else torch.float32

        class TorchBlock(torch.nn.Module):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                tnn = torch.nn
                self.body = tnn.Sequential(tnn.Conv2d(3, 4, 3, 2, 1, bias=False), tnn.BatchNorm2d(4), tnn.ReLU(),
                                           tnn.Conv2d(4, 4, 3, 1, 1, bias=False), tnn.BatchNorm2d(4))
                self.shortcut = tnn.Sequential(tnn.Conv2d(3, 4, 1, 2, bias=False), tnn.BatchNorm2d(4))
                self.pool = tnn.MaxPool2d(3, 1, 1)

            def forward(self, x: Any) -> Any:
                y = torch.relu(self.body(x) + self.shortcut(x))
                return torch.cat([y, self.pool(y)], dim=1)

        theirs = TorchBlock().to(tdtype)
        state = {key.replace("0.body", "body").replace("0.shortcut", "shortcut"): torch.from_numpy(value)
                 for key, value in ours.state_dict().items()}
        theirs.load_state_dict(state)
        x = rng.standard_normal((4, 3, 9, 9)).astype(dtype)
        g = rng.standard_normal((4, 8, 5, 5)).astype(dtype)
        tx = torch.from_numpy(x).requires_grad_()
        out = theirs(tx)
        out.backward(torch.from_numpy(g))
        np.testing.assert_allclose(ours(x), out.detach().numpy(), rtol=tol, atol=tol)
        np.testing.assert_allclose(ours.backward(g), tx.grad.numpy(), rtol=tol, atol=tol)
        named = dict(theirs.named_parameters())
        for key, param in ours.named_parameters():
            ref = named[key.replace("0.body", "body").replace("0.shortcut", "shortcut")].grad.numpy()
            np.testing.assert_allclose(param.grad, ref, rtol=tol, atol=tol * 10, err_msg=key)
