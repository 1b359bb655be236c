"""RDNet-style dense network (Kim et al., "DenseNets Reloaded", naver-ai/rdnet) with KA convolutions.

A patchify stem (kernel = stride = ``patch_size``), then stages; every stage but the first starts with a transition
convolution that compresses the channels to ``⌊ratio·C/8⌋·8`` (kernel = stride = 2 where it downsamples, else
1×1), followed by dense blocks. A block maps its input ``C`` to ``growth_rate`` new channels with
a depthwise 7×7 convolution, a 1×1 to ``⌊C·bottleneck_width_ratio/8⌋·8`` and a 1×1 to ``growth_rate`` (plus an
Effective-SE gate in ``"ese"`` blocks), scaled by a layer-scale γ and dropped by stochastic depth; the new channels
are concatenated to the input. The head is global average pooling, LayerNorm, dropout and a linear layer.

Differences from torch-conv-kan's ``kan_rdnet.py``: DropPath is applied (the reference built it and never used it);
the stem is a convolution of the model's family with its options (the reference always used a bottleneck KAGN of
degree 3 without dropout); the depthwise convolutions see their own channel's basis (the reference's KAGN v2
mixed channels, §12.2 of the reference notes); ``zero_head`` zeroes the classifier (the reference crashed).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchvision.ops import stochastic_depth

from .._checks import is_real
from ..layers.attention import KASelfAttentionNd
from ._factory import ClassifierMixin, ConvFactory, check_num_classes, conv_factory, family_options, parse_family
from ._registry import register_model

__all__ = ["RDNet", "RDNetBlock", "RDNetDenseBlock", "RDNetDenseStage", "RDNetHead"]

BlockType = Literal["block", "ese"]


class EffectiveSE(nn.Module):
    """Effective squeeze-excitation (CenterMask): ``x · hardsigmoid(fc(mean(x)))`` with ``fc`` a 1×1 convolution."""

    def __init__(self, fc: nn.Module) -> None:
        super().__init__()
        self.fc = fc
        self.gate = nn.Hardsigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.fc(x.mean(tuple(range(2, x.dim())), keepdim=True)))


class _Stem(nn.Module):
    """The patchify convolution, as ``stem.0`` (the reference's ``stem.stem.0`` path)."""

    def __init__(self, conv: nn.Module) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv)

    def forward(self, x: Tensor) -> Tensor:
        return self.stem(x)


class RDNetBlock(nn.Module):
    """Depthwise 7×7 → 1×1 (``→ inter``) → 1×1 (``→ out``) [→ Effective SE], as ``self.layers``."""

    def __init__(
        self, make: ConvFactory, make_dw: ConvFactory, in_chs: int, inter_chs: int, out_chs: int, ese: bool
    ) -> None:
        super().__init__()
        layers = [make_dw(in_chs, in_chs, 7, groups=in_chs), make(in_chs, inter_chs, 1), make(inter_chs, out_chs, 1)]
        if ese:
            layers.append(EffectiveSE(make(out_chs, out_chs, 1)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(x)


class RDNetDenseBlock(nn.Module):
    """One dense block: ``drop_path(γ · block(cat(features)))`` (the new ``growth_rate`` channels)."""

    def __init__(self, layers: nn.Module, growth_rate: int, ls_init_value: float, drop_path: float) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((growth_rate,), float(ls_init_value))) if ls_init_value > 0 else None
        self.layers = layers
        self.drop_path = float(drop_path)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = self.layers(torch.cat(list(features), 1))
        if self.gamma is not None:
            x = x * self.gamma.view(1, -1, *([1] * (x.dim() - 2)))
        return stochastic_depth(x, self.drop_path, "row", self.training)

    def extra_repr(self) -> str:
        return f"drop_path={self.drop_path}" if self.drop_path else ""


class RDNetDenseStage(nn.Sequential):
    """Dense blocks ``dense_block0`` …; returns the input concatenated with every block's output."""

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for block in self:
            features.append(block(features))
        return torch.cat(features, 1)


class RDNetHead(nn.Module):
    """Global average pooling → LayerNorm → dropout → ``fc``."""

    def __init__(self, num_features: int, num_classes: int, drop_rate: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(num_features)
        self.drop = nn.Dropout(drop_rate)
        self.fc: nn.Module = nn.Linear(num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.drop(self.norm(x.mean(tuple(range(2, x.dim())))))
        return x if pre_logits else self.fc(x)


def _round8(value: float) -> int:
    return int(value / 8) * 8


class RDNet(ClassifierMixin, nn.Module):
    """RDNet with convolutions of one family (``"kagn"``, ``"bottleneck_kagn"``, ``"conv"`` …).

    Args:
        family: conv family of the stem, transitions, 1×1 and SE convolutions (see
            :func:`~kanconvs.models.conv_factory`); the depthwise 7×7 convolutions use its base family (a bottleneck
            or MoE family's inner family).
        growth_rates, num_blocks, downsample, block_types: per stage: channels added by each block, number of
            blocks, whether the stage's transition halves the resolution (ignored for stage 0), and ``"block"``
            or ``"ese"``.
        num_init_features: stem output channels.
        bottleneck_width_ratio: the first 1×1 widens to ``⌊C·ratio/8⌋·8``.
        transition_compression_ratio: transitions keep ``⌊ratio·C/8⌋·8`` channels.
        ls_init_value: initial layer scale γ (0: none).
        drop_path_rate: stochastic-depth probability, rising linearly from 0 over all blocks.
        dropout_linear: dropout before the classifier.
        patch_size: stem kernel and stride.
        post_stage_attention: a self-attention block (:class:`~kanconvs.layers.attention.KASelfAttentionNd`, 3×3
            q/k/v of the family) after every stage; ``attention_scale`` divides its inner projection width.
        in_channels, num_classes: input channels; classes (0: ``forward`` returns pooled features).
        zero_head: zero the classifier's weight and bias; ``head_init_scale`` scales them.
        stem_family, stem_kwargs: the stem's family (default ``family``) and option overrides.
        dropout: the convolutions' own dropout.
        ndim: spatial dimensions.
        family_kwargs: options of every convolution (``degree=``, ``norm_layer=`` …).

    Examples:
        >>> model = RDNet(
        ...     "kagn",
        ...     (8, 8),
        ...     (1, 1),
        ...     (False, True),
        ...     ("block", "ese"),
        ...     num_init_features=8,
        ...     num_classes=3,
        ...     degree=2,
        ...     norm_layer="layer",
        ... )
        >>> model(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 3])
    """

    classifier_name = "head.fc"

    def __init__(
        self,
        family: str = "kagn",
        growth_rates: Sequence[int] = (64, 104, 128, 128, 128, 128, 224),
        num_blocks: Sequence[int] = (3, 3, 3, 3, 3, 3, 3),
        downsample: Sequence[bool] = (False, True, True, False, False, False, True),
        block_types: Sequence[BlockType] = ("block", "block", "ese", "ese", "ese", "ese", "ese"),
        *,
        num_init_features: int = 64,
        bottleneck_width_ratio: float = 4,
        transition_compression_ratio: float = 0.5,
        ls_init_value: float = 1e-6,
        drop_path_rate: float = 0.0,
        dropout_linear: float = 0.0,
        patch_size: int = 4,
        post_stage_attention: bool = False,
        attention_scale: float = 1.0,
        in_channels: int = 3,
        num_classes: int = 1000,
        zero_head: bool = False,
        head_init_scale: float = 1.0,
        stem_family: str | None = None,
        stem_kwargs: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
        ndim: int = 2,
        **family_kwargs: Any,
    ) -> None:
        super().__init__()
        _, base = parse_family(family)
        lengths = {len(growth_rates), len(num_blocks), len(downsample), len(block_types)}
        if len(lengths) != 1 or not growth_rates:
            raise ValueError(
                "growth_rates, num_blocks, downsample and block_types must be non-empty and of equal length, got "
                f"{len(growth_rates)}, {len(num_blocks)}, {len(downsample)}, {len(block_types)}"
            )
        for kind in block_types:
            if kind not in ("block", "ese"):
                raise ValueError(f"block_types entries must be 'block' or 'ese', got {kind!r}")
        if not is_real(drop_path_rate) or not 0.0 <= drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must be a number in [0, 1), got {drop_path_rate!r}")
        if not is_real(ls_init_value) or not 0.0 <= ls_init_value < math.inf:
            raise ValueError(f"ls_init_value must be a finite number >= 0 (0: no layer scale), got {ls_init_value!r}")
        self.family = family
        options = {**family_kwargs, "dropout": dropout}
        make = conv_factory(family, ndim=ndim, **options)
        make_dw = make if base == family else conv_factory(base, ndim=ndim, **options)
        make_stem = conv_factory(stem_family or family, ndim=ndim, **options)
        self.stem = _Stem(
            make_stem(in_channels, num_init_features, patch_size, stride=patch_size, padding=0, **(stem_kwargs or {}))
        )

        total = sum(num_blocks)
        rates = [drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # linear from 0 (timm's linspace)
        stages: list[nn.Module] = []
        channels = num_init_features
        for i, (growth, n_blocks, down, kind) in enumerate(
            zip(growth_rates, num_blocks, downsample, block_types, strict=True)
        ):
            stage: list[nn.Module] = []
            if i > 0:
                compressed = _round8(channels * transition_compression_ratio)
                k = 2 if down else 1
                stage.append(make(channels, compressed, k, stride=k, padding=0))
                channels = compressed
            blocks = RDNetDenseStage()
            for j in range(n_blocks):
                c_in = channels + j * growth
                layers = RDNetBlock(make, make_dw, c_in, _round8(c_in * bottleneck_width_ratio), growth, kind == "ese")
                blocks.add_module(f"dense_block{j}", RDNetDenseBlock(layers, growth, ls_init_value, rates.pop(0)))
            stage.append(blocks)
            channels += n_blocks * growth
            stages.append(nn.Sequential(*stage))
            if post_stage_attention:
                stages.append(
                    KASelfAttentionNd(
                        channels,
                        3,
                        ndim=ndim,
                        family=family,
                        inner_projection=int(channels / attention_scale),
                        **options,
                    )
                )
        self.dense_stages = nn.Sequential(*stages)
        self.num_features = channels
        self.num_classes = check_num_classes(num_classes)
        self.head = RDNetHead(channels, num_classes, dropout_linear)
        self._init_head(zero_head, head_init_scale)

    def _init_head(self, zero_head: bool, scale: float) -> None:
        fc = self.head.fc
        if isinstance(fc, nn.Linear):
            with torch.no_grad():
                nn.init.zeros_(fc.bias)
                fc.weight.mul_(0.0 if zero_head else scale)

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature maps of the last stage: ``(B, num_features, H / 32, W / 32)`` for the standard layouts."""
        return self.dense_stages(self.stem(x))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool, LayerNorm, dropout and classify; ``pre_logits=True`` stops before the linear layer."""
        return self.head(x, pre_logits=pre_logits)


# --------------------------------------------------------------------------------------------- configurations
def _sizes(init: int, first: int, second: int, middle: int, last: int, n: int, late_down: int) -> dict[str, Any]:
    """The small/base/large layouts: n stages of 3 blocks, downsampling at stages 1, 2 and ``late_down``."""
    return {
        "num_init_features": init,
        "growth_rates": (first, second, *[middle] * (n - 4), last, last),
        "num_blocks": (3,) * n,
        "downsample": tuple(i in (1, 2, late_down) for i in range(n)),
        "block_types": ("block", "block", *["ese"] * (n - 2)),
    }


RDNET_CONFIGS: Mapping[str, dict[str, Any]] = {
    "tiny": {
        "num_init_features": 32,
        "growth_rates": (32, 52, 64, 64, 64, 64, 112),
        "num_blocks": (3,) * 7,
        "downsample": (False, True, True, False, False, False, True),
        "block_types": ("block", "block", "ese", "ese", "ese", "ese", "ese"),
    },
    "small": _sizes(72, 64, 128, 128, 240, 11, 9),
    "base": _sizes(120, 96, 128, 168, 336, 11, 9),
    "large": _sizes(144, 128, 192, 256, 360, 12, 10),
}


def _rdnet(size: str, family: str, **kwargs: Any) -> RDNet:
    defaults = family_options(family, {"degree": 3, "norm_layer": "layer"})
    return RDNet(family, **{**RDNET_CONFIGS[size], **defaults, **kwargs})


@register_model
def rdnet_kan_tiny(family: str = "kagn", **kwargs: Any) -> RDNet:
    """RDNet-tiny layout (32 stem channels, 7 stages) with KA convolutions, channel LayerNorm."""
    return _rdnet("tiny", family, **kwargs)


@register_model
def rdnet_kan_small(family: str = "kagn", **kwargs: Any) -> RDNet:
    """RDNet-small layout (72 stem channels, 11 stages)."""
    return _rdnet("small", family, **kwargs)


@register_model
def rdnet_kan_base(family: str = "kagn", **kwargs: Any) -> RDNet:
    """RDNet-base layout (120 stem channels, 11 stages)."""
    return _rdnet("base", family, **kwargs)


@register_model
def rdnet_kan_large(family: str = "kagn", **kwargs: Any) -> RDNet:
    """RDNet-large layout (144 stem channels, 12 stages)."""
    return _rdnet("large", family, **kwargs)
