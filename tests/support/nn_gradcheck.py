"""Finite-difference gradient checking for ferroconv.nn modules (test helper).

The objective is a scalar function of a module's output (a fixed random
projection ``sum(out * weights)`` or a loss); its gradient with respect to the
input and to a few random coordinates of every parameter is compared with
central differences ``(f(v + h) - f(v - h)) / 2h`` in float64.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np

import ferroconv
from ferroconv import nn


# (value, grad_out) of the objective for one module output
Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def projection(shape: tuple[int, ...], seed: int = 1234) -> Objective:
    """The objective ``sum(out * w)`` for a fixed random ``w``: its gradient is ``w``."""
    weights = np.random.default_rng(seed).standard_normal(shape)

    def objective(out: np.ndarray) -> tuple[float, np.ndarray]:
        assert out.shape == weights.shape, (out.shape, weights.shape)
        return float(np.sum(out * weights)), weights.copy()

    return objective


def cross_entropy(labels: np.ndarray) -> Objective:
    loss = nn.CrossEntropyLoss()

    def objective(out: np.ndarray) -> tuple[float, np.ndarray]:
        return loss(out, labels), loss.backward()

    return objective


def coordinates(shape: tuple[int, ...], count: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Up to ``count`` distinct random coordinates of an array of ``shape``."""
    size = int(np.prod(shape))
    flat = rng.choice(size, size=min(count, size), replace=False)
    return [tuple(int(i) for i in np.unravel_index(f, shape)) for f in flat]


def check_gradients(module: nn.Module, x: np.ndarray, objective: Objective, *, per_array: int = 6,
                    step: float = 1e-6, rtol: float = 1e-5, atol: float = 1e-8, seed: int = 0,
                    before_forward: Optional[Callable[[], None]] = None) -> None:
    """Assert that ``module.backward`` matches central differences of
    ``objective(module(x))`` for the input and every parameter.

    ``before_forward`` runs before every forward pass (e.g. to reseed Dropout so
    every evaluation draws the same mask).
    """
    reset = before_forward or (lambda: None)

    def value() -> float:
        reset()
        return objective(module(x))[0]

    reset()
    module.zero_grad()
    _, grad_out = objective(module(x))
    grad_x = module.backward(grad_out)
    assert grad_x.shape == x.shape
    rng = np.random.default_rng(seed)
    arrays = [("input", x, grad_x)] + [
        (name, p.data, p.grad.copy()) for name, p in module.named_parameters()]
    for name, array, analytic in arrays:
        for coord in coordinates(array.shape, per_array, rng):
            saved = array[coord]
            array[coord] = saved + step
            plus = value()
            array[coord] = saved - step
            minus = value()
            array[coord] = saved
            numeric = (plus - minus) / (2 * step)
            assert np.isclose(analytic[coord], numeric, rtol=rtol, atol=atol), (
                f"d/d {name}{list(coord)}: backward {analytic[coord]!r} vs finite difference {numeric!r}")


def relu_margin(x: np.ndarray) -> float:
    """Distance of the closest ReLU input to the kink at 0."""
    return float(np.min(np.abs(x)))


def max_pool_margin(x: np.ndarray, layer: nn.Module) -> float:
    """Smallest gap between the largest and second-largest value of any window of a
    non-overlapping max pool (stride == kernel): the room a perturbation has
    before the argmax changes."""
    assert layer.stride == layer.kernel_size and layer.padding == (0,) * len(layer.stride)
    rank = len(layer.kernel_size)
    pool = getattr(ferroconv.functional, f"max_pool{rank}d")
    top, indices = pool(x, layer.kernel_size, return_indices=True)
    masked = x.reshape(x.shape[0], x.shape[1], -1).copy()
    np.put_along_axis(masked, indices.reshape(x.shape[0], x.shape[1], -1), -np.inf, axis=2)
    second = pool(masked.reshape(x.shape), layer.kernel_size)
    usable = np.isfinite(second)
    return float(np.min((top - second)[usable])) if usable.any() else np.inf
