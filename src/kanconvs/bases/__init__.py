"""Univariate basis families. Adding one = a module here with a ``@register_basis`` class."""

from ._base import Basis, create_basis, get_basis_class, list_bases, register_basis
from .bernstein import BernsteinBasis
from .bspline import BSplineBasis
from .chebyshev import ChebyshevBasis
from .gram import GramBasis
from .hermite import HermiteBasis
from .jacobi import JacobiBasis
from .legendre import LegendreBasis
from .rbf import RBFBasis
from .relu import ReLUBasis
from .wavelet import WAVELETS, WaveletBasis, get_wavelet

__all__ = [
    "WAVELETS",
    "BSplineBasis",
    "Basis",
    "BernsteinBasis",
    "ChebyshevBasis",
    "GramBasis",
    "HermiteBasis",
    "JacobiBasis",
    "LegendreBasis",
    "RBFBasis",
    "ReLUBasis",
    "WaveletBasis",
    "create_basis",
    "get_basis_class",
    "get_wavelet",
    "list_bases",
    "register_basis",
]
