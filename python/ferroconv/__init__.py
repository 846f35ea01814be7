"""ferroconv: multithreaded CPU convolution and pooling, forward and backward, in
1D, 2D and 3D, for NumPy arrays, with PyTorch's ``torch.nn.functional`` semantics.

>>> import numpy as np, ferroconv as fc
>>> fc.conv2d(np.ones((1, 3, 8, 8)), np.ones((4, 3, 3, 3))).shape
(1, 4, 6, 6)
"""

from . import functional
from ._ferroconv import __version__
from .functional import *  # noqa: F401,F403
from .functional import __all__ as _functional_all
from . import nn  # noqa: E402  (nn builds on functional)

__all__ = ["__version__", "functional", "nn", *_functional_all]
