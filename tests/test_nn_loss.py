"""CrossEntropyLoss and MSELoss: values, stability and gradients."""

from __future__ import annotations

import numpy as np
import pytest

from ferroconv import nn


def naive_cross_entropy(logits, labels):
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.mean(np.log(probs[np.arange(len(labels)), labels]))


def finite_difference(loss, logits, labels, step=1e-6):
    grad = np.zeros_like(logits)
    for index in np.ndindex(*logits.shape):
        plus, minus = logits.copy(), logits.copy()
        plus[index] += step
        minus[index] -= step
        grad[index] = (loss(plus, labels) - loss(minus, labels)) / (2 * step)
    return grad


def test_cross_entropy_matches_the_definition_and_finite_differences():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    loss = nn.CrossEntropyLoss()
    assert loss(logits, labels) == pytest.approx(naive_cross_entropy(logits, labels), rel=1e-13)
    np.testing.assert_allclose(loss.backward(), finite_difference(loss, logits, labels), rtol=1e-6, atol=1e-9)


def test_cross_entropy_is_stable_for_huge_logits():
    logits = np.array([[1e4, 0.0, -1e4], [0.0, 3e4, 3e4]], np.float32)
    loss = nn.CrossEntropyLoss()
    value = loss(logits, np.array([1, 2]))
    assert value == pytest.approx((1e4 + np.log(2)) / 2, rel=1e-6)
    grad = loss.backward()
    assert grad.dtype == np.float32 and np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0], [0.0, 0.25, -0.25]], atol=1e-7)


def test_cross_entropy_sum_reduction_scales_by_batch():
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((5, 3)), rng.integers(0, 3, 5)
    mean, total = nn.CrossEntropyLoss(), nn.CrossEntropyLoss(reduction="sum")
    assert total(logits, labels) == pytest.approx(5 * mean(logits, labels))
    np.testing.assert_allclose(total.backward(), 5 * mean.backward())


def test_mse_matches_the_definition_and_its_gradient():
    rng = np.random.default_rng(2)
    prediction, target = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    loss = nn.MSELoss()
    assert loss(prediction, target) == pytest.approx(np.mean((prediction - target) ** 2))
    np.testing.assert_allclose(loss.backward(), 2 * (prediction - target) / prediction.size)
    assert nn.MSELoss(reduction="sum")(prediction, target) == pytest.approx(np.sum((prediction - target) ** 2))
