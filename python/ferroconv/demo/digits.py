"""``demo --task digits``: scikit-learn's 8x8 handwritten digits (1,797 images that
ship with scikit-learn, so nothing is downloaded) classified by a small LeNet-style
CNN: conv, ReLU, max pool, conv, ReLU, adaptive average pool, linear."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import nn
from .training import Task, stratified_subset


def load(rng: np.random.Generator, limit: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 1, 8, 8)`` scaled to [0, 1] and labels 0-9."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float64)[:, np.newaxis] / 16.0
    labels = digits.target.astype(np.int64)
    keep = stratified_subset(labels, limit, rng)
    return images[keep], labels[keep]


def build(dtype: np.dtype, rng: np.random.Generator) -> nn.Sequential:
    """``(N, 1, 8, 8) -> (N, 10)`` logits."""
    options: dict[str, Any] = dict(dtype=dtype, rng=rng)
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1, **options),   # 16 x 8 x 8
        nn.ReLU(),
        nn.MaxPool2d(2),                             # 16 x 4 x 4
        nn.Conv2d(16, 32, 3, padding=1, **options),  # 32 x 4 x 4
        nn.ReLU(),
        nn.Flatten(),                                # 512
        nn.Linear(32 * 4 * 4, 10, **options),
    )


TASK = Task(
    name="digits",
    description="8x8 handwritten digits (scikit-learn), LeNet-style 2-D CNN",
    class_names=[str(d) for d in range(10)],
    load=load,
    build=build,
    epochs=15,
    batch_size=32,
    lr=5e-3,
    sample_noun="image",
)
