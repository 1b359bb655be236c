"""KA convolution layers: the generic N-D layer, the named families and the factories they use."""

from . import attention, bottleneck, families, kan_linear, moe, peft, regularization, spec
from .attention import *  # noqa: F403
from .bottleneck import *  # noqa: F403
from .create import create_conv, declared_options, family_options, parse_family
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
from .kan_conv import BasisInit, DropoutPlacement, KAConv1d, KAConv2d, KAConv3d, KAConvNd
from .kan_linear import *  # noqa: F403
from .moe import *  # noqa: F403
from .peft import *  # noqa: F403
from .regularization import *  # noqa: F403
from .spec import *  # noqa: F403
from .wavkan import WavKANConv1d, WavKANConv2d, WavKANConv3d, WavKANConvNd

__all__ = [
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
__all__ += families.__all__
__all__ += ["create_conv", "declared_options", "family_options", "parse_family"]
__all__ += kan_linear.__all__
__all__ += bottleneck.__all__
__all__ += regularization.__all__
__all__ += moe.__all__
__all__ += peft.__all__
__all__ += attention.__all__
__all__ += spec.__all__
