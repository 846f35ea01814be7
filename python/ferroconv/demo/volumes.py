"""``demo --task volumes``: small noisy 3-D volumes (16^3) holding a solid sphere,
a solid cube or a hollow spherical shell of random size and position, classified
by a 3-D CNN with batch normalisation and max pooling.

The data set is synthetic and generated deterministically from ``--seed``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import nn
from .training import Task

SIZE = 16
SAMPLES = 1200
CLASSES = ["sphere", "cube", "shell"]
NOISE = 0.3


def shape_mask(kind: int, grid: tuple[np.ndarray, ...], rng: np.random.Generator) -> np.ndarray:
    """Boolean occupancy of one random shape on the ``SIZE^3`` grid."""
    radius = rng.uniform(3.0, 5.5)
    center = rng.uniform(radius, SIZE - 1 - radius, size=3)  # fully inside the volume
    offsets = [axis - c for axis, c in zip(grid, center)]
    if kind == 1:  # cube with half side ~ radius (similar volume to the sphere)
        half = 0.85 * radius
        cube: np.ndarray = (np.abs(offsets[0]) <= half) & (np.abs(offsets[1]) <= half) & (np.abs(offsets[2]) <= half)
        return cube
    distance: np.ndarray = np.sqrt(offsets[0] ** 2 + offsets[1] ** 2 + offsets[2] ** 2)
    if kind == 0:
        ball: np.ndarray = distance <= radius
        return ball
    shell: np.ndarray = (distance <= radius) & (distance >= radius - 1.6)  # about 1.6 voxels thick
    return shell


def load(rng: np.random.Generator, limit: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 1, 16, 16, 16)`` volumes (1 inside the shape, 0 outside, plus Gaussian
    noise) and labels, balanced over the three classes."""
    count = SAMPLES if limit is None else limit
    labels = np.arange(count) % len(CLASSES)
    rng.shuffle(labels)
    grid = np.meshgrid(*(np.arange(SIZE, dtype=np.float64),) * 3, indexing="ij")
    volumes = np.empty((count, 1, SIZE, SIZE, SIZE))
    for i, kind in enumerate(labels):
        volumes[i, 0] = shape_mask(int(kind), grid, rng)
    volumes += NOISE * rng.standard_normal(volumes.shape)
    return volumes, labels.astype(np.int64)


def build(dtype: np.dtype, rng: np.random.Generator) -> nn.Sequential:
    """``(N, 1, 16, 16, 16) -> (N, 3)`` logits.

    The shape sits anywhere in the volume, so the last pooling is a global *max*:
    a feature counts if it fires somewhere (a global average dilutes it with the
    empty space around the shape and trains more slowly).
    """
    options: dict[str, Any] = dict(dtype=dtype, rng=rng)
    return nn.Sequential(
        nn.Conv3d(1, 8, 3, padding=1, **options),    # 8 x 16^3
        nn.BatchNorm3d(8, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool3d(2),                             # 8 x 8^3
        nn.Conv3d(8, 16, 3, padding=1, **options),   # 16 x 8^3
        nn.BatchNorm3d(16, dtype=dtype),
        nn.ReLU(),
        nn.MaxPool3d(2),                             # 16 x 4^3
        nn.Conv3d(16, 32, 3, padding=1, **options),  # 32 x 4^3
        nn.ReLU(),
        nn.MaxPool3d(4),                             # 32 x 1^3: global max, "is it anywhere?"
        nn.Flatten(),
        nn.Linear(32, len(CLASSES), **options),
    )


TASK = Task(
    name="volumes",
    description="noisy 16^3 volumes (sphere / cube / hollow shell), 3-D CNN with max pooling",
    class_names=CLASSES,
    load=load,
    build=build,
    epochs=10,
    batch_size=32,
    lr=3e-3,
    sample_noun="volume",
)
