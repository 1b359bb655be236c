"""RKAN (Residual Kolmogorov–Arnold Network, arXiv 2410.05500) as a plug-in for torchvision CNNs.

:func:`wrap` adds RKAN branches around chosen stages of a ResNet / ResNeXt / Wide ResNet, DenseNet, RegNet, VGG-bn
or ConvNeXt in place, keeping the backbone's modules and state_dict keys; importing this package registers the
``rkan_*`` / ``rkanet_e_*`` models with :func:`kanconvs.create_model`.
"""

from .backbones import BackboneAdapter, StageSpec, list_backbones, register_backbone
from .conv import SHARED_BASES, SharedKAConv2d
from .mechanisms import Aggregation, create_mechanism, get_mechanism, list_mechanisms, register_mechanism
from .models import create_rkan_backbone
from .wrap import RKANBlock, RKANStages, load_backbone_state_dict, rkan_parameters, wrap

__all__ = [
    "SHARED_BASES",
    "Aggregation",
    "BackboneAdapter",
    "RKANBlock",
    "RKANStages",
    "SharedKAConv2d",
    "StageSpec",
    "create_mechanism",
    "create_rkan_backbone",
    "get_mechanism",
    "list_backbones",
    "list_mechanisms",
    "load_backbone_state_dict",
    "register_backbone",
    "register_mechanism",
    "rkan_parameters",
    "wrap",
]
