"""kanconvs: Kolmogorov–Arnold convolutions for PyTorch.

Swap ``nn.Conv2d`` for a KA convolution::

    from kanconvs import KAGNConv2d
    layer = KAGNConv2d(16, 32, kernel_size=3, padding=1, degree=3)
"""

from . import bases, layers
from .bases import Basis, create_basis, list_bases, register_basis
from .layers import *  # noqa: F403
from .layers import __all__ as _layers_all

__version__ = "0.1.0"

__all__ = [
    *_layers_all,
    "Basis",
    "__version__",
    "bases",
    "create_basis",
    "layers",
    "list_bases",
    "register_basis",
]
