"""KA convolution layers: the generic N-D layer, the named families and the factories they use."""

from .factories import (
    ActLayer,
    GroupPReLU,
    MinMaxSquash,
    NormLayer,
    create_activation,
    create_norm,
    create_squash,
    list_activations,
    list_norms,
    list_squashes,
)
from .families import *  # noqa: F403
from .families import __all__ as _families_all
from .kan_conv import BasisInit, DropoutPlacement, KAConv1d, KAConv2d, KAConv3d, KAConvNd
from .kan_linear import *  # noqa: F403
from .kan_linear import __all__ as _kan_linear_all
from .wavkan import WavKANConv1d, WavKANConv2d, WavKANConv3d, WavKANConvNd

__all__ = [
    *_families_all,
    *_kan_linear_all,
    "ActLayer",
    "BasisInit",
    "DropoutPlacement",
    "GroupPReLU",
    "KAConv1d",
    "KAConv2d",
    "KAConv3d",
    "KAConvNd",
    "MinMaxSquash",
    "NormLayer",
    "WavKANConv1d",
    "WavKANConv2d",
    "WavKANConv3d",
    "WavKANConvNd",
    "create_activation",
    "create_norm",
    "create_squash",
    "list_activations",
    "list_norms",
    "list_squashes",
]
