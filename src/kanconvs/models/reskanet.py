"""ResKANet: ResNet with KA convolutions, one body for every family (``family="conv"``: the plain ResNet-like baseline).

Blocks (no post-activation: every KA convolution ends in its own norm and activation):

* :class:`BasicBlock` — 3×3 (stride, groups, dilation) → **1×1**, plus the identity or a 1×1 downsample;
* :class:`Bottleneck` (×4, ResNet v1.5) — 1×1 → 3×3 (stride, groups, dilation) → 1×1, plus the shortcut.

Stages of ``8w, 16w, 32w, 64w`` planes (``w = width_scale``), stride 2 on stages 2–4 unless replaced by dilation.
With an ``moe_<family>`` family only the blocks' 3×3 convolutions are mixtures of experts; the stem, the 1×1 and
the downsampling convolutions use the plain family. Balance losses are collected with
:func:`kanconvs.regularization_loss`; ``forward`` returns logits only.

Differences from torch-conv-kan's ``models/reskanet.py``: ``hidden_layer_dim`` builds a hidden layer (the
reference accepted and ignored it); the stem uses the requested norm for every family (the reference gave non-KAGN
stems the layer default); the MoE networks downsample with their own family (the reference always used KALN);
basic blocks accept dilation (the reference raised).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ._factory import ClassifierMixin, ConvFactory, conv_factory, family_options, parse_family
from ._registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResConvs", "ResKANet", "make_stage", "res_convs"]

# Options that only a mixture of experts takes: the plain convolutions of an MoE network do without them.
_MOE_OPTIONS = ("num_experts", "k", "noisy_gating", "loss_coef", "pregate")


@dataclass(frozen=True)
class ResConvs:
    """The convolution factories of a residual network, by role (see :func:`~kanconvs.models.conv_factory`)."""

    stem: ConvFactory
    spatial: ConvFactory  # the blocks' 3×3
    pointwise: ConvFactory  # the blocks' 1×1
    downsample: ConvFactory  # the 1×1 shortcut projection
    merge: ConvFactory  # U-KANet's decoder merge convolutions


def res_convs(family: str, **options: Any) -> ResConvs:
    """Factories for ``family``; for ``moe_*`` families only ``spatial`` is a mixture of experts.

    Examples:
        >>> convs = res_convs("moe_kaln", num_experts=4, k=2, degree=3)
        >>> type(convs.spatial(8, 8, 3)).__name__, type(convs.pointwise(8, 8, 1)).__name__
        ('MoEKAConvNd', 'KALNConvNd')
    """
    wrapper, base = parse_family(family)
    if wrapper not in ("moe", "moe_bottleneck"):
        make = conv_factory(family, **options)
        return ResConvs(make, make, make, make, make)
    plain_family = base if wrapper == "moe" else f"bottleneck_{base}"
    plain = conv_factory(plain_family, **{k: v for k, v in options.items() if k not in _MOE_OPTIONS})
    return ResConvs(plain, conv_factory(family, **options), plain, plain, plain)


class BasicBlock(nn.Module):
    """``conv2(conv1(x)) + shortcut(x)``: a 3×3 KA convolution (stride, groups, dilation), then a 1×1 one."""

    expansion: ClassVar[int] = 1

    def __init__(
        self,
        convs: ResConvs,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = convs.spatial(inplanes, planes, 3, stride=stride, dilation=dilation, groups=groups)
        self.conv2 = convs.pointwise(planes, planes, 1)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.conv2(self.conv1(x)) + identity


class Bottleneck(nn.Module):
    """``conv3(conv2(conv1(x))) + shortcut(x)``: 1×1 to ``⌊planes·base_width/64⌋·groups``, 3×3 (stride, groups,
    dilation), 1×1 to ``4·planes``."""

    expansion: ClassVar[int] = 4

    def __init__(
        self,
        convs: ResConvs,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = convs.pointwise(inplanes, width, 1)
        self.conv2 = convs.spatial(width, width, 3, stride=stride, dilation=dilation, groups=groups)
        self.conv3 = convs.pointwise(width, planes * self.expansion, 1)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.conv3(self.conv2(self.conv1(x))) + identity


BLOCKS: dict[str, type[BasicBlock | Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


def make_stage(
    block: type[nn.Module],
    convs: ResConvs,
    inplanes: int,
    planes: int,
    blocks: int,
    *,
    stride: int = 1,
    first_dilation: int = 1,
    dilation: int = 1,
    groups: int = 1,
    base_width: int = 64,
) -> nn.Sequential:
    """``blocks`` residual blocks; the first takes ``stride`` (and a 1×1 downsample when the shape changes)."""
    out = planes * int(getattr(block, "expansion", 1))
    downsample = convs.downsample(inplanes, out, 1, stride=stride) if stride != 1 or inplanes != out else None
    layers = [block(convs, inplanes, planes, stride, downsample, groups, base_width, first_dilation)]
    layers += [block(convs, out, planes, 1, None, groups, base_width, dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_layers(layers: object, count: int = 4) -> list[int]:
    if not isinstance(layers, Sequence) or len(layers) != count:
        raise ValueError(f"layers must be a sequence of {count} positive integers (blocks per stage), got {layers!r}")
    return [_positive_int("layers[i]", n) for n in layers]


def check_block(block: object) -> type[BasicBlock | Bottleneck]:
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {sorted(BLOCKS)}, got {block!r}")
    return BLOCKS[block]


class ResKANet(ClassifierMixin, nn.Module):
    """A ResNet whose convolutions come from one KA family: stem → 4 stages → GAP → dropout → [hidden] → linear.

    Args:
        layers: blocks per stage (``[2, 2, 2, 2]`` is the 18-layer network).
        block: ``"basic"`` or ``"bottleneck"``.
        family: the convolutions' family (see :func:`~kanconvs.models.conv_factory`; ``"conv"`` for the plain
            baseline). ``family_kwargs`` go to every convolution (``degree=``, ``norm_layer=``, ``dropout=`` …).
        in_channels, num_classes: input channels; classes (0: no classifier).
        stem_kernel_size, stem_stride, stem_padding, stem_pool: the stem convolution (padding ``None``: k // 2) and
            whether a 3×3/2 max-pool follows it. ImageNet: 7, 2, pool; CIFAR-size ("x32p"): 3, 1, no pool.
        stem_width: stem output channels (default ``8·width_scale``).
        width_scale: multiplies the stage widths ``8, 16, 32, 64``.
        groups, width_per_group: grouped 3×3 convolutions and the bottleneck width rule (ResNeXt).
        replace_stride_with_dilation: three flags for stages 2–4.
        dropout_linear: dropout before the hidden layer and before the classifier.
        hidden_layer_dim: if given, ``Linear(num_features, hidden) → GELU → dropout`` before the classifier.
        convs: per-role factories replacing those built from ``family`` (the compat models use it).

    ``forward_features`` returns ``(B, num_features, H', W')``; ``forward_head(x, pre_logits=True)`` the vector fed
    to the classifier.

    Examples:
        >>> model = ResKANet(
        ...     [1, 1, 1, 1],
        ...     family="kagn",
        ...     num_classes=10,
        ...     stem_kernel_size=3,
        ...     stem_stride=1,
        ...     stem_pool=False,
        ...     degree=2,
        ... )
        >>> model(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 10])
    """

    layer1: nn.Sequential
    layer2: nn.Sequential
    layer3: nn.Sequential
    layer4: nn.Sequential

    classifier_name = "fc"

    def __init__(
        self,
        layers: Sequence[int],
        block: str = "basic",
        *,
        family: str = "kagn",
        in_channels: int = 3,
        num_classes: int = 1000,
        stem_kernel_size: int = 7,
        stem_stride: int = 2,
        stem_padding: int | None = None,
        stem_pool: bool = True,
        stem_width: int | None = None,
        width_scale: int = 1,
        groups: int = 1,
        width_per_group: int = 64,
        replace_stride_with_dilation: Sequence[bool] | None = None,
        dropout_linear: float = 0.0,
        hidden_layer_dim: int | None = None,
        convs: ResConvs | None = None,
        **family_kwargs: Any,
    ) -> None:
        super().__init__()
        layers = check_layers(layers)
        block_cls = check_block(block)
        w = _positive_int("width_scale", width_scale)
        flags = replace_stride_with_dilation
        dilate = [False] * 3 if flags is None else list(flags) if isinstance(flags, Sequence) else []
        if len(dilate) != 3 or not all(isinstance(d, int) and d in (0, 1) for d in dilate):
            raise ValueError(
                "replace_stride_with_dilation must be None or 3 flags (stages 2-4), got "
                f"{replace_stride_with_dilation!r}"
            )
        if hidden_layer_dim is not None:
            _positive_int("hidden_layer_dim", hidden_layer_dim)
        if convs is not None and family_kwargs:
            raise TypeError(f"convs= replaces the family's options; got both convs and {sorted(family_kwargs)}")
        self.family = family
        convs = convs if convs is not None else res_convs(family, **family_kwargs)
        inplanes = _positive_int("stem_width", stem_width) if stem_width is not None else 8 * w
        pad = stem_kernel_size // 2 if stem_padding is None else stem_padding
        self.conv1 = convs.stem(in_channels, inplanes, stem_kernel_size, stride=stem_stride, padding=pad)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem_pool else nn.Identity()
        dilation = 1
        for i, (blocks, planes) in enumerate(zip(layers, (8 * w, 16 * w, 32 * w, 64 * w), strict=True)):
            stride, previous = (1 if i == 0 else 2), dilation
            if i > 0 and dilate[i - 1]:
                dilation, stride = dilation * stride, 1
            stage = make_stage(
                block_cls, convs, inplanes, planes, blocks, stride=stride, first_dilation=previous, dilation=dilation,
                groups=groups, base_width=width_per_group,
            )  # fmt: skip
            self.add_module(f"layer{i + 1}", stage)
            inplanes = planes * block_cls.expansion
        self.num_features = inplanes
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout_linear)
        self.hidden: nn.Module | None = None
        if hidden_layer_dim is not None:
            self.hidden = nn.Sequential(nn.Linear(inplanes, hidden_layer_dim), nn.GELU(), nn.Dropout(dropout_linear))
        self.head_features = inplanes if hidden_layer_dim is None else hidden_layer_dim
        self.num_classes = 0
        self.fc: nn.Module = nn.Identity()
        self.reset_classifier(num_classes)

    def _build_head(self, num_classes: int) -> nn.Module:
        """The classifier ``fc``: a ``Linear`` for ``num_classes`` (0: identity)."""
        return nn.Linear(self.head_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.conv1(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def pool(self, x: Tensor) -> Tensor:
        """Global average pool and dropout: ``(B, num_features)``."""
        return self.drop(torch.flatten(self.avgpool(x), 1))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.pool(x)
        if self.hidden is not None:
            x = self.hidden(x)
        return x if pre_logits else self.fc(x)


# --------------------------------------------------------------------------------------------- configurations
_STEMS: dict[str, dict[str, Any]] = {
    "imagenet": {"stem_kernel_size": 7, "stem_stride": 2, "stem_pool": True},
    "x32p": {"stem_kernel_size": 3, "stem_stride": 1, "stem_pool": False},
    "x64p": {"stem_kernel_size": 3, "stem_stride": 1, "stem_pool": True},
}
_DEPTHS: dict[int, tuple[str, list[int]]] = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
}
# The reference's settings: ImageNet networks use affine InstanceNorm and conv dropout 0.15 for the bottleneck
# depths; the CIFAR-size ones BatchNorm. MoE experts cannot use running statistics, hence InstanceNorm there.
_LAYER_DEFAULTS: dict[str, dict[str, Any]] = {
    "imagenet": {"degree": 3, "norm_layer": "instance", "norm_kwargs": {"affine": True}},
    "small": {"degree": 3, "norm_layer": "batch"},
    "moe": {"degree": 3, "norm_layer": "instance", "num_experts": 8, "k": 2},
}


def _reskanet(depth: int, stem: str, family: str, kwargs: dict[str, Any], *, moe: bool = False) -> ResKANet:
    block, layers = _DEPTHS[depth]
    layer = _LAYER_DEFAULTS["moe" if moe else "imagenet" if stem == "imagenet" else "small"]
    config: dict[str, Any] = {"layers": layers, "block": block, **family_options(family, layer), **_STEMS[stem]}
    config["dropout_linear"] = 0.25
    if block == "bottleneck" and family != "conv":
        config["dropout"] = 0.15
    return ResKANet(family=family, **{**config, **kwargs})


def _register(depth: int, stem: str, family: str, moe: bool = False) -> None:
    suffix = "" if stem == "imagenet" else f"_{stem}"
    name = f"{'moe_' if moe else ''}reskanet{depth}{suffix}"

    def entry(family: str = family, **kwargs: Any) -> nn.Module:
        return _reskanet(depth, stem, family, kwargs, moe=moe)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (
        f"ResKANet-{depth} ({_DEPTHS[depth][0]} blocks, {stem} stem), family {family!r} by default; keyword "
        "arguments override the configuration (see :class:`ResKANet`)."
    )
    register_model(entry)


for _depth in (18, 34, 50, 101, 152):
    _register(_depth, "imagenet", "kagn")
for _depth, _stem in ((18, "x32p"), (34, "x32p"), (18, "x64p"), (50, "x64p")):
    _register(_depth, _stem, "kagn")
for _depth in (18, 50):
    _register(_depth, "x64p", "moe_kaln", moe=True)
