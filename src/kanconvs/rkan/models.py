"""Registered RKAN models: torchvision backbones (no pretrained weights) wrapped by :func:`~kanconvs.rkan.wrap`.

Names: ``rkan_<torchvision name>`` (RKAN on stage 4, reduce factor 2, addition), ``rkanet_e_<depth>`` (stages 3–4)
and ``rkan_resnet<depth>_<m>xl`` (RKAN-L, inverse bottleneck of width ``m·C_in``).
"""

from __future__ import annotations

from typing import Any

import torch  # noqa: F401  (used by the docstring example)
from torch import nn
from torchvision import models as tvm

from ..models._factory import check_num_classes
from ..models._registry import register_model
from .backbones import find_adapter
from .wrap import wrap

__all__ = ["create_rkan_backbone"]


def create_rkan_backbone(
    arch: str,
    num_classes: int = 1000,
    in_channels: int = 3,
    small_stem: bool = False,
    rkan: bool = True,
    **rkan_kwargs: Any,
) -> nn.Module:
    """Build torchvision's ``arch`` (``weights=None``), adapt its stem, and wrap it with ``rkan_kwargs``.

    Args:
        arch: a torchvision classification builder (``"resnet50"``, ``"densenet121"``, ``"regnet_y_400mf"`` …).
        num_classes: classifier outputs.
        in_channels: input channels (the first convolution is rebuilt when not 3).
        small_stem: 3×3 stride-1 stem without max-pool, for 32×32 inputs (ConvNeXt: 1×1 stride-1 patchify).
        rkan: ``False`` returns the plain backbone with the same stem: the baseline of an RKAN comparison.
        rkan_kwargs: arguments of :func:`~kanconvs.rkan.wrap` (``stages``, ``mechanism``, ``kan_type``, ``family`` …).

    Examples:
        >>> model = create_rkan_backbone("resnet18", num_classes=10, in_channels=1, small_stem=True)
        >>> model(torch.randn(2, 1, 16, 16)).shape
        torch.Size([2, 10])
    """
    if not rkan and rkan_kwargs:
        raise TypeError(
            f"rkan=False builds the plain {arch} without RKAN branches, so these options would be ignored: "
            f"{sorted(rkan_kwargs)} (the plain backbone takes num_classes, in_channels and small_stem only)"
        )
    check_num_classes(num_classes)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1 for a torchvision classifier, got {num_classes}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ValueError(f"in_channels must be an integer >= 1, got {in_channels!r}")
    builder = getattr(tvm, arch, None)
    if builder is None or arch not in tvm.list_models(module=tvm):
        raise ValueError(f"unknown torchvision classification model {arch!r}")
    backbone = builder(weights=None, num_classes=num_classes)
    if in_channels != 3 or small_stem:
        find_adapter(backbone).set_stem(backbone, in_channels, small_stem)
    return wrap(backbone, **rkan_kwargs) if rkan else backbone


def _register(name: str, arch: str, doc: str, **defaults: Any) -> None:
    def entry(**kwargs: Any) -> nn.Module:
        return create_rkan_backbone(arch, **{**defaults, **kwargs})

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (
        f"{doc} (torchvision ``{arch}``, no pretrained weights); keyword arguments go to :func:`create_rkan_backbone`."
    )
    register_model(entry)


_RESNETS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
_OTHERS = [
    "resnext50_32x4d",
    "resnext101_32x8d",
    "resnext101_64x4d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    *(f"densenet{d}" for d in (121, 161, 169, 201)),
    *(f"regnet_y_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")),
    *(f"regnet_x_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")),
    *(f"vgg{d}_bn" for d in (11, 13, 16, 19)),
    *(f"convnext_{s}" for s in ("tiny", "small", "base", "large")),
]
for _arch in _RESNETS + _OTHERS:
    _register(f"rkan_{_arch}", _arch, f"RKAN-{_arch}: RKAN on stage 4")
for _arch in _RESNETS:  # the plain backbones (same stem options), for RKAN-vs-baseline runs
    _register(f"tv_{_arch}", _arch, f"torchvision {_arch} without RKAN", rkan=False)
for _arch in _RESNETS:
    _depth = _arch.removeprefix("resnet")
    _register(f"rkanet_e_{_depth}", _arch, f"RKANet-E-{_depth}: RKAN on stages 3 and 4", stages="E")
    if int(_depth) >= 50:
        for _m in (2, 4, 6):
            _register(
                f"rkan_resnet{_depth}_{_m}xl",
                _arch,
                f"RKANet-{_depth}-{_m}×L: inverse-bottleneck RKAN on stage 4",
                inverse_bottleneck=True,
                expansion=_m,
            )
