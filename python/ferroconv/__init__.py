"""ferroconv: multithreaded CPU convolution and pooling, forward and backward, in
1D, 2D and 3D, for NumPy arrays, with PyTorch's ``torch.nn.functional`` semantics.

>>> import numpy as np, ferroconv as fc
>>> fc.conv2d(np.ones((1, 3, 8, 8)), np.ones((4, 3, 3, 3))).shape
(1, 4, 6, 6)
"""

from importlib import metadata as _metadata

from . import functional, nn
from ._explain import AlgorithmCost, PassPlan, Plan
from ._ferroconv import __version__ as _native_version
from ._simd import get_simd, set_simd
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all

try:
    __version__ = _metadata.version("ferroconv")
except _metadata.PackageNotFoundError:  # e.g. imported from a source tree, not installed
    __version__ = _native_version

__all__ = [
    "__version__", "functional", "nn", "Plan", "PassPlan", "AlgorithmCost", "set_simd", "get_simd",
    *_functional_all,
]
