"""Layers, losses and optimisers for training CNNs on NumPy arrays, in pure Python
over :mod:`ferroconv.functional` (PyTorch's ``torch.nn`` names and semantics).

Every layer has ``forward(x)`` (also ``layer(x)``), which caches what
``backward(grad_out)`` needs; ``backward`` accumulates parameter gradients into
``Parameter.grad`` and returns the gradient with respect to the layer's input.

>>> import numpy as np
>>> from ferroconv import nn
>>> rng = np.random.default_rng(0)
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, rng=rng), nn.ReLU(),
...                     nn.GlobalAvgPool(), nn.Flatten(), nn.Linear(4, 3, rng=rng))
>>> x, y = rng.standard_normal((8, 1, 6, 6)).astype(np.float32), np.arange(8) % 3
>>> loss_fn, optimizer = nn.CrossEntropyLoss(), nn.SGD(net.parameters(), lr=0.1)
>>> loss = loss_fn(net(x), y)
>>> optimizer.zero_grad()
>>> _ = net.backward(loss_fn.backward())
>>> optimizer.step()
"""

from .blocks import Add, Concat, Identity, Residual, add, cat
from .activation import Dropout, Dropout1d, Dropout2d, Dropout3d, LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .linear import Flatten, Linear
from .loss import BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NLLLoss
from .module import Module, Parameter, Sequential
from .norm import BatchNorm1d, BatchNorm2d, BatchNorm3d, GroupNorm
from .optim import SGD, Adam, AdamW, CosineAnnealingLR, LinearLR, LRScheduler, Optimizer, StepLR
from .serialization import load_checkpoint, save_checkpoint
from .pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveAvgPool3d,
    AdaptiveMaxPool1d,
    AdaptiveMaxPool2d,
    AdaptiveMaxPool3d,
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    FractionalMaxPool2d,
    FractionalMaxPool3d,
    GlobalAvgPool,
    GlobalMaxPool,
    LPPool1d,
    LPPool2d,
    LPPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
    MaxUnpool1d,
    MaxUnpool2d,
    MaxUnpool3d,
)
from .upsample import Upsample
from .utils import clip_grad_norm_, clip_grad_value_

__all__ = [
    "Module", "Parameter", "Sequential", "Identity", "Add", "Concat", "Residual", "add", "cat",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "LPPool1d", "LPPool2d", "LPPool3d",
    "MaxUnpool1d", "MaxUnpool2d", "MaxUnpool3d", "FractionalMaxPool2d", "FractionalMaxPool3d",
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveAvgPool3d", "GlobalAvgPool",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d", "GlobalMaxPool",
    "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm",
    "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax",
    "Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "Upsample", "Flatten", "Linear",
    "CrossEntropyLoss", "NLLLoss", "BCEWithLogitsLoss", "MSELoss",
    "Optimizer", "SGD", "Adam", "AdamW",
    "LRScheduler", "StepLR", "CosineAnnealingLR", "LinearLR",
    "clip_grad_norm_", "clip_grad_value_",
    "save_checkpoint", "load_checkpoint",
]
