"""U²-KANet: U²-Net (Qin et al., 2020) with the convolutions of any family, and its small version.

Nested U-Nets: every stage is a residual U-block (:class:`ResidualUBlock`, "RSU"), the stages themselves form a
U-Net, and six side outputs plus their fusion give seven logit maps. One body (:class:`U2KANet`); the full and
small configurations are data (:data:`U2_STAGES`). With ``family="conv"`` the convolutions are Conv–BN–GELU: the
classic U²-Net. The module layout is torch-conv-kan's (``stage1 … stage1d``, ``side1 … side6``, ``outconv``) but
not all its key names: its checkpoints load with ``create_model(name, pretrained=file)`` or
:func:`~kanconvs.models.load_weights`, which rename their keys (the ``L1`` wrapper's ``.module.``, its plain
``Sequential(Conv, BN, GELU)`` blocks) through :func:`kanconvs.convert.convert_reference_state_dict`;
``load_state_dict`` takes only this module's own keys.

Differences from the reference (``models/u2kanet.py``): the blocks upsample to the skip connection's size instead
of by 2, so any input size works (the reference needed sizes divisible by 32, and 64 in the first stage; the results
agree where it worked); MoE families get the balance losses through ``kanconvs.regularization_loss(model)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._factory import ConvFactory, conv_factory, family_options
from ._registry import register_model

__all__ = ["U2_STAGES", "ResidualUBlock", "U2KANet"]

#: A stage: ``(depth, mid channels, out channels, dilated)`` before ``width_scale``; a dilated block
#: ("RSU-4F") keeps the resolution and dilates instead of pooling.
Stage = tuple[int, int, int, bool]
#: Encoder stages 1–6 and decoder stages 5d–1d of the two configurations. Decoder stage ``i`` takes the upsampled
#: output of the stage below concatenated with encoder stage ``i``'s output.
U2_STAGES: dict[str, dict[str, tuple[Stage, ...]]] = {
    "full": {
        "encoder": ((7, 8, 16, False), (6, 8, 32, False), (5, 16, 64, False), (4, 32, 128, False),
                    (4, 64, 128, True), (4, 64, 128, True)),
        "decoder": ((4, 64, 128, True), (4, 32, 64, False), (5, 16, 32, False), (6, 8, 16, False), (7, 4, 16, False)),
    },
    "small": {
        "encoder": ((7, 4, 16, False), (6, 4, 16, False), (5, 4, 16, False), (4, 4, 16, False),
                    (4, 4, 16, True), (4, 4, 16, True)),
        "decoder": ((4, 4, 16, True), (4, 4, 16, False), (5, 4, 16, False), (6, 4, 16, False), (7, 4, 16, False)),
    },
}  # fmt: skip


def _resize(x: Tensor, like: Tensor, align_corners: bool) -> Tensor:
    if x.shape[2:] == like.shape[2:]:
        return x
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=align_corners)


class ResidualUBlock(nn.Module):
    """Residual U-block (RSU-L): ``y = U(c(x)) + c(x)`` with ``c`` an input convolution ``in → out`` and ``U`` a
    small U-Net of ``depth`` convolutions down and ``depth − 1`` up.

    Encoder: ``out → mid``, then ``mid → mid``; 2×2 max pooling (ceil mode) after each of the first ``depth − 2``,
    the last one dilated 2. Decoder: ``2·mid → mid`` on the concatenation with the skip (the last one ``→ out``),
    upsampled (bilinear) to the next skip's size. ``dilated=True`` (RSU-F) never pools: encoder dilations
    ``1, 2, 4 …``, decoder dilations mirrored. ``groups`` applies to every convolution; ``input_kwargs`` override
    the input convolution's options (``kernel_size=``, ``groups=`` …).

    Examples:
        >>> block = ResidualUBlock(conv_factory("kagn"), 4, 3, 4, 8)
        >>> block(torch.randn(2, 3, 16, 12)).shape
        torch.Size([2, 8, 16, 12])
    """

    def __init__(
        self,
        make: ConvFactory,
        depth: int,
        in_channels: int,
        mid_channels: int,
        out_channels: int,
        *,
        groups: int = 1,
        dilated: bool = False,
        input_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 4:
            raise ValueError(f"depth must be an integer >= 4, got {depth!r}")
        self.depth, self.dilated = depth, dilated
        first = {"kernel_size": 3, "groups": groups, **dict(input_kwargs or {})}
        self.input_conv = make(in_channels, out_channels, **first)
        enc = [2**i if dilated else (2 if i == depth - 1 else 1) for i in range(depth)]
        dec = [2 ** (depth - 2 - i) if dilated else 1 for i in range(depth - 1)]
        self.encoder_list = nn.ModuleList(
            make(out_channels if i == 0 else mid_channels, mid_channels, 3, dilation=d, groups=groups)
            for i, d in enumerate(enc)
        )
        self.decoder_list = nn.ModuleList(
            make(2 * mid_channels, out_channels if i == depth - 2 else mid_channels, 3, dilation=d, groups=groups)
            for i, d in enumerate(dec)
        )
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)

    def forward(self, x: Tensor) -> Tensor:
        x_in = self.input_conv(x)
        h, skips = x_in, []
        for i, conv in enumerate(self.encoder_list):
            h = conv(h)
            if i < self.depth - 1:
                skips.append(h)
            if i < self.depth - 2 and not self.dilated:
                h = self.pool(h)
        for conv in self.decoder_list:
            skip = skips.pop()
            h = conv(torch.cat((_resize(h, skip, align_corners=True), skip), 1))
        return h + x_in


class U2KANet(nn.Module):
    """U²-Net with convolutions of a family (:func:`~kanconvs.models.conv_factory`).

    ``forward`` returns, in training and in eval alike, the tuple ``(d0, d1, …, d6)`` of seven logit maps
    ``(B, num_classes, H, W)`` at the input's resolution, without sigmoid: ``d0`` is the fused output (a 1×1
    convolution over the six side outputs), ``d1 … d6`` the side outputs of decoder stages 1d–5d and encoder stage 6
    (deep supervision sums a loss over all seven; predict with ``d0``).

    Args:
        family: the convolutions' family string (``"kagn"``, ``"bottleneck_kagn"``, ``"conv"`` …), or a factory
            with the signature of :func:`~kanconvs.models.conv_factory`'s result (then ``conv_kwargs`` must be empty).
        stages: a name of :data:`U2_STAGES` (``"full"``, ``"small"``) or a mapping with ``encoder`` (6 stages) and
            ``decoder`` (5 stages) in that format.
        in_channels, num_classes: input channels and output maps.
        width_scale: multiplies every width.
        groups: groups of every convolution but the first (the first block's input convolution).
        stem_kwargs: option overrides of that first convolution (``kernel_size=1``, ``dim_reduction=`` …).
        conv_kwargs: options of every convolution (``degree=``, ``norm_layer=``, ``dropout=``, ``weight_l1=`` …).

    Examples:
        >>> model = U2KANet("kagn", "small", num_classes=2, degree=2)
        >>> [tuple(d.shape) for d in model(torch.randn(1, 3, 64, 64))][:2]
        [(1, 2, 64, 64), (1, 2, 64, 64)]
    """

    def __init__(
        self,
        family: str | ConvFactory = "kagn",
        stages: str | Mapping[str, Sequence[Stage]] = "full",
        *,
        in_channels: int = 3,
        num_classes: int = 1,
        width_scale: int = 1,
        groups: int = 1,
        stem_kwargs: Mapping[str, Any] | None = None,
        **conv_kwargs: Any,
    ) -> None:
        super().__init__()
        encoder, decoder = self._check_stages(stages)
        if isinstance(width_scale, bool) or not isinstance(width_scale, int) or width_scale < 1:
            raise ValueError(f"width_scale must be a positive integer, got {width_scale!r}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        self.family, self.num_classes = family, num_classes
        if callable(family):
            if conv_kwargs:
                raise TypeError(f"conv_kwargs {sorted(conv_kwargs)} need a family name, not a factory")
            make = family
        else:
            make = conv_factory(family, **conv_kwargs)
        stem = {"groups": 1, **dict(stem_kwargs or {})}
        w = width_scale
        channels = in_channels
        enc_out = []
        for i, (depth, mid, out, dilated) in enumerate(encoder):
            block = ResidualUBlock(
                make, depth, channels, mid * w, out * w, groups=groups, dilated=dilated,
                input_kwargs=stem if i == 0 else None,
            )  # fmt: skip
            self.add_module(f"stage{i + 1}", block)
            channels = out * w
            enc_out.append(channels)
        side_in = [channels]  # side 6 reads encoder stage 6
        for i, (depth, mid, out, dilated) in enumerate(decoder):
            level = len(decoder) - i  # 5d … 1d
            c_in = channels + enc_out[level - 1]
            block = ResidualUBlock(make, depth, c_in, mid * w, out * w, groups=groups, dilated=dilated)
            self.add_module(f"stage{level}d", block)
            channels = out * w
            side_in.insert(0, channels)
        for i, c in enumerate(side_in):
            self.add_module(f"side{i + 1}", nn.Conv2d(c, num_classes, 3, padding=1))
        self.outconv = nn.Conv2d(len(side_in) * num_classes, num_classes, 1)
        self.pool = nn.MaxPool2d(2, stride=2, ceil_mode=True)

    @staticmethod
    def _check_stages(stages: str | Mapping[str, Sequence[Stage]]) -> tuple[Sequence[Stage], Sequence[Stage]]:
        if isinstance(stages, str):
            if stages not in U2_STAGES:
                raise ValueError(f"stages must be one of {sorted(U2_STAGES)} or a mapping, got {stages!r}")
            stages = U2_STAGES[stages]
        encoder, decoder = stages.get("encoder", ()), stages.get("decoder", ())
        if len(encoder) != 6 or len(decoder) != 5:
            raise ValueError(f"stages must hold 6 encoder and 5 decoder stages, got {len(encoder)} and {len(decoder)}")
        return encoder, decoder

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        skips = []
        h = x
        for i in range(1, 7):
            h = self.get_submodule(f"stage{i}")(h if i == 1 else self.pool(h))
            skips.append(h)
        decoded = [skips.pop()]  # stage 6
        for level in range(5, 0, -1):
            skip = skips.pop()
            h = self.get_submodule(f"stage{level}d")(torch.cat((_resize(h, skip, False), skip), 1))
            decoded.insert(0, h)
        sides = [self.get_submodule(f"side{i + 1}")(d) for i, d in enumerate(decoded)]
        sides = [sides[0]] + [_resize(s, sides[0], align_corners=False) for s in sides[1:]]
        return (self.outconv(torch.cat(sides, 1)), *sides)


# --------------------------------------------------------------------------------------------- configurations
# The reference factories' defaults: degree 3 and affine instance norms for the KA families; Conv–BN–GELU for
# the plain network. ``family_options`` keeps the options each family accepts.
_KA_DEFAULTS: dict[str, Any] = {"degree": 3, "dim_reduction": 8, "norm_kwargs": {"affine": True}}
_PLAIN_DEFAULTS: dict[str, Any] = {"norm_layer": "batch", "activation": "gelu"}


def _u2(stages: str, family: str, kwargs: dict[str, Any]) -> U2KANet:
    defaults = _PLAIN_DEFAULTS if family == "conv" else _KA_DEFAULTS
    return U2KANet(family, stages, **{**family_options(family, defaults), **kwargs})


@register_model
def u2kanet(family: str = "kagn", **kwargs: Any) -> U2KANet:
    """U²-KANet (full), family 'kagn' by default; ``family="conv"`` gives :func:`u2net`."""
    return _u2("full", family, kwargs)


@register_model
def u2kanet_small(family: str = "kagn", **kwargs: Any) -> U2KANet:
    """U²-KANet small (every stage 16·w channels, 4·w inside), family 'kagn' by default."""
    return _u2("small", family, kwargs)


@register_model
def u2net(family: str = "conv", **kwargs: Any) -> U2KANet:
    """The classic U²-Net (Conv–BN–GELU), the plain baseline of :func:`u2kanet`."""
    return _u2("full", family, kwargs)


@register_model
def u2net_small(family: str = "conv", **kwargs: Any) -> U2KANet:
    """The classic small U²-Net (Conv–BN–GELU), the plain baseline of :func:`u2kanet_small`."""
    return _u2("small", family, kwargs)
