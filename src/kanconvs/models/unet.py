"""U-Nets of KA convolutions: :class:`UKANet` (ResKANet stages) and :class:`UKAGNet` (plain conv levels + mixers).

Both return segmentation **logits** ``(B, num_classes, H, W)`` at the input resolution (no sigmoid / softmax).
Decoder features are upsampled (bilinear, ``align_corners=True``) to the size of the skip they are concatenated
with, so any input size works (the reference upsampled by exactly ×2 and needed sizes divisible by 2^levels).

Differences from torch-conv-kan (``models/ukanet.py``): every block of a stage gets the configured options (the
reference's ``_make_layer`` dropped them — degree, norm, dropout — after the first block); bottleneck blocks get
consistent widths; ``UKAGNet`` takes a ``family`` (the reference's ``use_bottleneck`` chose KAGN or bottleneck KAGN)
and its attention mixers are the fixed :class:`~kanconvs.layers.attention.KASelfAttentionNd` /
:class:`~kanconvs.layers.attention.KAFocalModulationNd`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers.attention import KAFocalModulation2d, KASelfAttention2d
from ._factory import conv_factory, family_options
from ._registry import register_model
from .reskanet import ResConvs, _positive_int, check_block, check_layers, make_stage, res_convs

__all__ = ["UKAGNet", "UKANet"]

MixerFactory = Callable[[int], nn.Module]
_MIXERS = ("conv", "self-att", "focal")


def _upsample_to(x: Tensor, skip: Tensor) -> Tensor:
    return F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=True)


class UKANet(nn.Module):
    """U-Net whose encoder and decoder stages are ResKANet stages.

    Stem (k×k, stride 1) → encoder stages of ``8w, 16w, 32w, 64w`` planes (strides 1, 2, 2, 2) → a second stage at
    the deepest level → three times: upsample, concatenate the skip, a 3×3 "merge" convolution to the level's width
    and a decoder stage → 1×1 ``nn.Conv2d`` (with bias) to ``num_classes``.

    Returns logits ``(B, num_classes, H, W)`` at the input resolution.

    Args:
        layers: blocks per level (encoder and decoder alike).
        block: ``"basic"`` or ``"bottleneck"``.
        family, family_kwargs: the convolutions (see :func:`~kanconvs.models.conv_factory`).
        in_channels, num_classes: input channels and output classes.
        width_scale, groups, width_per_group: as in :class:`~kanconvs.models.ResKANet`.
        stem_kernel_size: the stem's kernel (stride 1, size-preserving padding).
        convs: per-role factories replacing those built from ``family``.

    Examples:
        >>> model = UKANet([1, 1, 1, 1], family="kagn", num_classes=2, degree=2)
        >>> model(torch.randn(1, 3, 16, 16)).shape
        torch.Size([1, 2, 16, 16])
    """

    layer1e: nn.Sequential
    layer2e: nn.Sequential
    layer3e: nn.Sequential
    layer4e: nn.Sequential
    layer3d: nn.Sequential
    layer2d: nn.Sequential
    layer1d: nn.Sequential
    merge3: nn.Module
    merge2: nn.Module
    merge1: nn.Module

    def __init__(
        self,
        layers: Sequence[int] = (2, 2, 2, 2),
        block: str = "basic",
        *,
        family: str = "kagn",
        in_channels: int = 3,
        num_classes: int = 1,
        width_scale: int = 1,
        groups: int = 1,
        width_per_group: int = 64,
        stem_kernel_size: int = 3,
        convs: ResConvs | None = None,
        **family_kwargs: Any,
    ) -> None:
        super().__init__()
        layers = check_layers(layers)
        block_cls = check_block(block)
        w = _positive_int("width_scale", width_scale)
        _positive_int("num_classes", num_classes)
        if convs is not None and family_kwargs:
            raise TypeError(f"convs= replaces the family's options; got both convs and {sorted(family_kwargs)}")
        self.family = family
        convs = convs if convs is not None else res_convs(family, **family_kwargs)
        e = block_cls.expansion
        widths = [8 * w, 16 * w, 32 * w, 64 * w]
        self.conv1 = convs.stem(in_channels, widths[0], stem_kernel_size)
        geometry = {"groups": groups, "base_width": width_per_group}
        inplanes = widths[0]
        for i, (blocks, planes) in enumerate(zip(layers, widths, strict=True)):
            stride = 1 if i == 0 else 2
            self.add_module(f"layer{i + 1}e", make_stage(block_cls, convs, inplanes, planes, blocks, stride=stride,
                                                         **geometry))  # fmt: skip
            inplanes = planes * e
        self.layer4d = make_stage(block_cls, convs, inplanes, widths[3], layers[3], **geometry)
        for i in (2, 1, 0):  # merge{i+1}: upsampled deeper level + skip → this level's width
            c_in = (widths[i + 1] + widths[i]) * e
            self.add_module(f"merge{i + 1}", convs.merge(c_in, widths[i] * e, 3, groups=groups))
            self.add_module(f"layer{i + 1}d", make_stage(block_cls, convs, widths[i] * e, widths[i], layers[i],
                                                         **geometry))  # fmt: skip
        self.output = nn.Conv2d(widths[0] * e, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, num_classes, H, W)``."""
        enc1 = self.layer1e(self.conv1(x))
        enc2 = self.layer2e(enc1)
        enc3 = self.layer3e(enc2)
        x = self.layer4d(self.layer4e(enc3))
        for skip, merge, stage in (
            (enc3, self.merge3, self.layer3d),
            (enc2, self.merge2, self.layer2d),
            (enc1, self.merge1, self.layer1d),
        ):
            x = stage(merge(torch.cat([_upsample_to(x, skip), skip], dim=1)))
        return self.output(x)


class UKAGNet(nn.Module):
    """U-Net of plain KA convolution levels with optional attention mixers in the decoder.

    Encoder level ``d`` (``0 … unet_depth−1``) has width ``16·w·2^d``: a 3×3 convolution (stride 1 at level 0,
    else 2) and ``unet_layers − 1`` stride-1 ones. Decoder, from level ``unet_depth−2`` up to 0: upsample,
    concatenate the skip (``48·w·2^d`` channels), an optional mixer on those channels, a convolution to
    ``16·w·2^d`` and ``unet_layers − 1`` more. Output: 1×1 ``nn.Conv2d`` (with bias).

    Returns logits ``(B, num_classes, H, W)`` at the input resolution.

    Args:
        in_channels, num_classes: input channels and output classes.
        unet_depth: levels (≥ 2); unet_layers: convolutions per level (≥ 1).
        width_scale, groups: width multiplier; groups of every convolution but the first.
        family, family_kwargs: the convolutions (default ``"bottleneck_kagn"``; the reference's
            ``use_bottleneck=False`` is ``"kagn"``).
        dropout: the convolutions' dropout (not the first convolution's).
        mixer_type: ``"conv"`` (no mixer), ``"self-att"`` (:class:`~kanconvs.layers.attention.KASelfAttention2d`)
            or ``"focal"`` (:class:`~kanconvs.layers.attention.KAFocalModulation2d`), both built on the same conv
            factory; or a callable ``channels -> module``.
        mixer_kwargs: options of the mixer (``inner_projection=``, ``num_heads=``, ``focal_level=`` …).
        conv: a conv factory replacing the one built from ``family`` (the compat models use it).

    Examples:
        >>> model = UKAGNet(3, 2, unet_depth=3, unet_layers=1, family="kagn", mixer_type="self-att", degree=2)
        >>> model(torch.randn(1, 3, 12, 12)).shape
        torch.Size([1, 2, 12, 12])
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 1,
        *,
        unet_depth: int = 4,
        unet_layers: int = 2,
        width_scale: int = 1,
        groups: int = 1,
        family: str = "bottleneck_kagn",
        dropout: float = 0.0,
        mixer_type: str | MixerFactory = "conv",
        mixer_kwargs: Mapping[str, Any] | None = None,
        conv: Callable[..., nn.Module] | None = None,
        **family_kwargs: Any,
    ) -> None:
        super().__init__()
        if isinstance(unet_depth, bool) or not isinstance(unet_depth, int) or unet_depth < 2:
            raise ValueError(f"unet_depth must be an integer >= 2, got {unet_depth!r}")
        _positive_int("unet_layers", unet_layers)
        _positive_int("num_classes", num_classes)
        w = _positive_int("width_scale", width_scale)
        if conv is not None and family_kwargs:
            raise TypeError(f"conv= replaces the family's options; got both conv and {sorted(family_kwargs)}")
        if not callable(mixer_type) and mixer_type not in _MIXERS:
            raise ValueError(f"mixer_type must be one of {_MIXERS} or a callable, got {mixer_type!r}")
        if mixer_kwargs and not isinstance(mixer_type, str):
            raise TypeError("mixer_kwargs are for the built-in mixer types, not a mixer callable")
        self.family, self.unet_depth = family, unet_depth
        make = conv if conv is not None else conv_factory(family, dropout=dropout, **family_kwargs)
        mixer = self._mixer_factory(mixer_type, make, dict(mixer_kwargs or {}))
        widths = [16 * w * 2**d for d in range(unet_depth)]

        def level(c_in: int, width: int, stride: int, **first: Any) -> list[nn.Module]:
            return [make(c_in, width, 3, stride=stride, **{"groups": groups, **first})] + [
                make(width, width, 3, groups=groups) for _ in range(unet_layers - 1)
            ]

        # The first convolution sees the raw input: no dropout, no groups.
        self.encoder = nn.ModuleList(
            nn.Sequential(*level(in_channels, widths[0], 1, dropout=0.0, groups=1))
            if d == 0
            else nn.Sequential(*level(widths[d - 1], widths[d], 2))
            for d in range(unet_depth)
        )
        self.decoder = nn.ModuleList()
        for d in reversed(range(unet_depth - 1)):
            mixed = widths[d] + widths[d + 1]
            mixers = [] if mixer is None else [mixer(mixed)]
            self.decoder.append(nn.Sequential(*mixers, *level(mixed, widths[d], 1)))
        self.output = nn.Conv2d(widths[0], num_classes, 1)

    @staticmethod
    def _mixer_factory(
        mixer_type: str | MixerFactory, make: Callable[..., nn.Module], kwargs: dict[str, Any]
    ) -> MixerFactory | None:
        if callable(mixer_type):
            return mixer_type
        if mixer_type == "self-att":
            return lambda channels: KASelfAttention2d(channels, 3, family=make, **kwargs)
        if mixer_type == "focal":
            return lambda channels: KAFocalModulation2d(channels, family=make, **kwargs)
        if kwargs:
            raise TypeError(f"mixer_type 'conv' has no mixer; got mixer_kwargs {sorted(kwargs)}")
        return None

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, num_classes, H, W)``."""
        skips = []
        for d, level in enumerate(self.encoder):
            x = level(x)
            if d < self.unet_depth - 1:
                skips.append(x)
        for level in self.decoder:
            skip = skips.pop()
            x = level(torch.cat([_upsample_to(x, skip), skip], dim=1))
        return self.output(x)


# --------------------------------------------------------------------------------------------- configurations
# The reference's segmentation settings: affine InstanceNorm for U-KANet; BatchNorm, degree 3 for U-KAGNet.
_UKANET = {"degree": 3, "norm_layer": "instance", "norm_kwargs": {"affine": True}}
_UKAGNET = {"degree": 3, "norm_layer": "batch"}


@register_model
def ukanet18(family: str = "kagn", **kwargs: Any) -> nn.Module:
    """U-KANet with ResKANet-18 stages (basic blocks, 2 per level); keyword arguments override the configuration."""
    config = {"layers": (2, 2, 2, 2), "block": "basic", **family_options(family, _UKANET)}
    return UKANet(family=family, **{**config, **kwargs})


@register_model
def ukagnet(family: str = "bottleneck_kagn", **kwargs: Any) -> nn.Module:
    """U-KAGNet (depth 4, 2 convolutions per level, no mixer); keyword arguments override the configuration."""
    return UKAGNet(family=family, **{**family_options(family, _UKAGNET), **kwargs})
