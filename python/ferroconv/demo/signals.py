"""``demo --task signals``: noisy 1-D waveforms (sine, square, sawtooth, chirp)
with random frequency, phase and amplitude, classified by an all-convolutional 1-D CNN
(strided convolutions and batch normalisation instead of pooling).

The data set is synthetic and generated deterministically from ``--seed``.
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .. import nn
from .training import Task

LENGTH = 128
SAMPLES = 4000
CLASSES = ["sine", "square", "sawtooth", "chirp"]
NOISE = 0.35


def waveform(kind: int, t: np.ndarray, cycles: float, phase: float, rng: np.random.Generator) -> np.ndarray:
    """One clean waveform over ``t`` in [0, 1): ``cycles`` periods (the chirp
    sweeps its frequency up or down by a factor of 2.5 to 4)."""
    angle = 2 * np.pi * cycles * t + phase
    if kind == 0:
        return np.sin(angle)
    if kind == 1:
        return np.sign(np.sin(angle))
    if kind == 2:
        return 2 * ((angle / (2 * np.pi)) % 1.0) - 1
    ratio = rng.uniform(2.5, 4.0)
    if rng.random() < 0.5:  # sweeping down instead of up
        ratio = 1 / ratio
    start = cycles / np.sqrt(ratio)  # same average frequency as the other classes
    # instantaneous frequency start * ratio**t, integrated over t
    chirp: np.ndarray = np.sin(2 * np.pi * start * (ratio**t - 1) / np.log(ratio) + phase)
    return chirp


def load(rng: np.random.Generator, limit: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 1, 128)`` signals and labels, balanced over the four classes."""
    count = SAMPLES if limit is None else limit
    labels = np.arange(count) % len(CLASSES)
    rng.shuffle(labels)
    t = np.arange(LENGTH) / LENGTH
    signals = np.empty((count, 1, LENGTH))
    for i, kind in enumerate(labels):
        cycles = rng.uniform(2.0, 10.0)
        phase = rng.uniform(0, 2 * np.pi)
        amplitude = rng.uniform(0.5, 1.5)
        signals[i, 0] = amplitude * waveform(int(kind), t, cycles, phase, rng)
    signals += NOISE * rng.standard_normal(signals.shape)
    return signals, labels.astype(np.int64)


def build(dtype: np.dtype, rng: np.random.Generator) -> nn.Sequential:
    """``(N, 1, 128) -> (N, 4)`` logits.

    Four stride-2 convolutions (no pooling layers) halve the length each time,
    so the last one sees 1 + 6 + 2*4 + 4*4 + 8*2 = 47 samples; flattening keeps
    *where* each feature fired, which is what tells a chirp (frequency changes
    along the signal) from a sine (it does not); a global average would lose it.
    """
    options: dict[str, Any] = dict(dtype=dtype, rng=rng)
    return nn.Sequential(
        nn.Conv1d(1, 16, 7, stride=2, padding=3, **options),   # 16 x 64
        nn.BatchNorm1d(16, dtype=dtype),
        nn.ReLU(),
        nn.Conv1d(16, 32, 5, stride=2, padding=2, **options),  # 32 x 32
        nn.BatchNorm1d(32, dtype=dtype),
        nn.ReLU(),
        nn.Conv1d(32, 32, 5, stride=2, padding=2, **options),  # 32 x 16
        nn.BatchNorm1d(32, dtype=dtype),
        nn.ReLU(),
        nn.Conv1d(32, 32, 3, stride=2, padding=1, **options),  # 32 x 8
        nn.ReLU(),
        nn.Flatten(),                                          # 256
        nn.Linear(32 * 8, 64, **options),
        nn.ReLU(),
        nn.Linear(64, len(CLASSES), **options),
    )


TASK = Task(
    name="signals",
    description="noisy 1-D waveforms (sine / square / sawtooth / chirp), 1-D CNN",
    class_names=CLASSES,
    load=load,
    build=build,
    epochs=15,
    batch_size=32,
    lr=5e-3,
    sample_noun="signal",
)
