"""SGD and Adam against plain NumPy transcriptions of the algorithms in PyTorch's
documentation (``torch.optim.SGD`` / ``torch.optim.Adam``)."""

from __future__ import annotations

import numpy as np
import pytest

from ferroconv import nn

SHAPES = [(3, 4), (5,)]
STEPS = 5


def gradient_sequence(seed=0):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]


def start_values(seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def run(optimizer_type, dtype=np.float64, **options):
    params = [nn.Parameter(v.astype(dtype)) for v in start_values()]
    optimizer = optimizer_type(params, **options)
    history = []
    for grads in gradient_sequence():
        optimizer.zero_grad()
        for param, grad in zip(params, grads):
            param.grad += grad.astype(dtype)
        optimizer.step()
        history.append([p.data.copy() for p in params])
    return history


def sgd_reference(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    theta = start_values()
    buffers = [None] * len(theta)
    history = []
    for t, grads in enumerate(gradient_sequence(), start=1):
        for i, g in enumerate(grads):
            if weight_decay:
                g = g + weight_decay * theta[i]
            if momentum:
                buffers[i] = g if t == 1 else momentum * buffers[i] + (1 - dampening) * g
                g = g + momentum * buffers[i] if nesterov else buffers[i]
            theta[i] = theta[i] - lr * g
        history.append([v.copy() for v in theta])
    return history


def adam_reference(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    """Adam as documented by PyTorch; ``decoupled``: AdamW (the weights decay by
    ``lr * weight_decay`` instead of the decay entering the gradient)."""
    beta1, beta2 = betas
    theta = start_values()
    m = [np.zeros_like(v) for v in theta]
    v = [np.zeros_like(x) for x in theta]
    v_max = [np.zeros_like(x) for x in theta]
    history = []
    for t, grads in enumerate(gradient_sequence(), start=1):
        for i, g in enumerate(grads):
            if decoupled:
                theta[i] = theta[i] - lr * weight_decay * theta[i]
            elif weight_decay:
                g = g + weight_decay * theta[i]
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            m_hat = m[i] / (1 - beta1**t)
            if amsgrad:
                v_max[i] = np.maximum(v_max[i], v[i])
                v_hat = v_max[i] / (1 - beta2**t)
            else:
                v_hat = v[i] / (1 - beta2**t)
            theta[i] = theta[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
        history.append([x.copy() for x in theta])
    return history


SGD_OPTIONS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=1e-2),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=5e-3),
]
ADAM_OPTIONS = [
    dict(),
    dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.02, amsgrad=True),
]


def assert_histories_close(got, expected, rtol):
    for step, (got_step, expected_step) in enumerate(zip(got, expected)):
        for got_param, expected_param in zip(got_step, expected_step):
            np.testing.assert_allclose(got_param, expected_param, rtol=rtol, atol=rtol,
                                       err_msg=f"after step {step + 1}")


@pytest.mark.parametrize("options", SGD_OPTIONS, ids=str)
def test_sgd_matches_pytorch_formulas(options):
    assert_histories_close(run(nn.SGD, **options), sgd_reference(**options), rtol=1e-13)


@pytest.mark.parametrize("options", ADAM_OPTIONS, ids=str)
def test_adam_matches_pytorch_formulas(options):
    assert_histories_close(run(nn.Adam, **options), adam_reference(**options), rtol=1e-12)


@pytest.mark.parametrize("optimizer_type, options", [(nn.SGD, SGD_OPTIONS[3]), (nn.Adam, ADAM_OPTIONS[2])])
def test_float32_parameters_stay_float32(optimizer_type, options):
    history = run(optimizer_type, np.float32, **options)
    assert all(p.dtype == np.float32 for p in history[-1])
    reference = sgd_reference(**options) if optimizer_type is nn.SGD else adam_reference(**options)
    assert_histories_close(history, reference, rtol=1e-5)


def test_optimisers_reject_bad_arguments():
    params = [nn.Parameter(np.zeros(2))]
    with pytest.raises(ValueError, match="nesterov"):
        nn.SGD(params, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty"):
        nn.Adam([])
    with pytest.raises(ValueError, match="betas"):
        nn.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="Parameter"):
        nn.SGD([np.zeros(2)], lr=0.1)


def test_training_a_linear_model_reduces_the_loss():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    y = x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3
    model = nn.Linear(3, 1, dtype=np.float64, rng=rng)
    loss_fn = nn.MSELoss()
    optimizer = nn.SGD(model, lr=0.1, momentum=0.9)
    first = loss_fn(model(x), y)
    for _ in range(200):
        loss_fn(model(x), y)
        optimizer.zero_grad()
        model.backward(loss_fn.backward())
        optimizer.step()
    assert loss_fn(model(x), y) < 1e-8 * first
    np.testing.assert_allclose(model.bias.data, [0.3], atol=1e-3)
