"""``demo --model resnet``: a small residual network for any task, built from
:class:`ferroconv.nn.Residual` blocks in the task's dimensionality (1-D signals,
2-D images, 3-D volumes): a stem convolution, two basic blocks (the second halves
the resolution, with a strided 1x1 projection on its shortcut), global average
pooling and a linear classifier."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


def basic_block(rank: int, cin: int, cout: int, stride: int, options: dict[str, Any]) -> nn.Sequential:
    """ResNet's basic block: ``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``."""
    conv, norm = CONV[rank], NORM[rank]
    dtype = options["dtype"]
    body = nn.Sequential(
        conv(cin, cout, 3, stride=stride, padding=1, bias=False, **options), norm(cout, dtype=dtype), nn.ReLU(),
        conv(cout, cout, 3, padding=1, bias=False, **options), norm(cout, dtype=dtype))
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = nn.Sequential(conv(cin, cout, 1, stride=stride, bias=False, **options), norm(cout, dtype=dtype))
    return nn.Sequential(nn.Residual(body, shortcut), nn.ReLU())


def build(rank: int, channels: int, classes: int, dtype: np.dtype, rng: np.random.Generator,
          width: int = 16) -> nn.Sequential:
    """``(N, channels, *S) -> (N, classes)`` logits, ``S`` of ``rank`` axes."""
    options: dict[str, Any] = dict(dtype=dtype, rng=rng)
    return nn.Sequential(
        CONV[rank](channels, width, 3, padding=1, bias=False, **options), NORM[rank](width, dtype=dtype), nn.ReLU(),
        basic_block(rank, width, width, 1, options),
        basic_block(rank, width, 2 * width, 2, options),
        nn.GlobalAvgPool(), nn.Flatten(),
        nn.Linear(2 * width, classes, **options),
    )
