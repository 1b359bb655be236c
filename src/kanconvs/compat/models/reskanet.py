"""torch-conv-kan's ``models/reskanet.py`` names: ``ResKANet``, ``MoEResKANet``, the block classes and every factory.

Each builds :class:`kanconvs.models.ResKANet` with the reference's configuration and module paths, so reference
checkpoints load with ``load_state_dict``. What is kept for them and what differs: docs/migrating.md, "Differences,
module by module".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ...layers.moe import MoEKAConvNd
from ...models._factory import ConvFactory, conv_factory
from ...models.reskanet import BasicBlock, Bottleneck, ResConvs
from ...models.reskanet import ResKANet as _ResKANet
from .._generate import ReferenceCheckpoints, Values, exports, reference_class, reference_function, reference_init

_BLOCK_NAMES = [
    f"{prefix}{kind}"
    for kind in ("BasicBlock", "Bottleneck")
    for prefix in ("KAN", "FastKAN", "KALN", "KAGN", "BottleneckKAGN", "KACN")
] + ["MoEKALNBasicBlock", "MoEKALNBottleneck", "MoEBottleneckKAGNBasicBlock"]

# ------------------------------------------------------------------------------------ reference conv options
# The reference's keyword names per family; anything else a reference layer received went to its norm.
_FAMILY_KEYS: dict[str, tuple[str, ...]] = {
    "kan": ("spline_order", "grid_size", "base_activation", "grid_range"),
    "fastkan": ("grid_size", "base_activation", "grid_range"),
    "kaln": ("degree",),
    "kagn": ("degree",),
    "kacn": ("degree",),
    "bottleneck_kagn": ("degree", "dim_reduction"),
    "moe_kaln": ("degree", "num_experts", "noisy_gating", "k"),
    "moe_bottleneck_kagn": ("degree", "dim_reduction", "num_experts", "noisy_gating", "k"),
}
_KNOWN = {key for keys in _FAMILY_KEYS.values() for key in keys} | {"dropout", "l1_decay", "norm_layer", "groups"}


def reference_conv(family: str, options: Mapping[str, Any], l1: bool = True) -> ConvFactory:
    """A conv factory taking the reference's keyword arguments (``degree``, ``norm_layer``, ``affine``,
    ``l1_decay`` …) for ``family``; options of other families are ignored, as the reference's model code did.
    ``l1=False`` drops ``l1_decay`` (the reference never wrapped stems and merge convolutions in ``L1``)."""
    opts = {k: options[k] for k in _FAMILY_KEYS[family] if k in options}
    if "grid_range" in opts:
        opts["grid_range"] = (opts["grid_range"][0], opts["grid_range"][1])
    opts["dropout"] = options.get("dropout", 0.0)
    opts["norm_layer"] = options.get("norm_layer", nn.InstanceNorm2d)
    opts["norm_kwargs"] = {k: v for k, v in options.items() if k not in _KNOWN}
    if l1 and options.get("l1_decay", 0.0):
        opts["weight_l1"] = options["l1_decay"]
    return conv_factory(family, **opts)


# ------------------------------------------------------------------------------------------------- blocks
class _ReferenceBlock:
    """A reference block class: its convolutions' families and defaults (``reference_convs``)."""

    spatial_family: ClassVar[str]
    pointwise_family: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def reference_convs(cls, kan_kwargs: Mapping[str, Any], downsample: ConvFactory | None = None) -> ResConvs:
        """The block's 3×3 and 1×1 factories (the reference's ``*_conv3x3`` / ``*_conv1x1`` helpers)."""
        options = {**cls.defaults, **kan_kwargs}
        spatial_defaults: dict[str, Any] = {}
        if "bottleneck" in cls.spatial_family:  # the 3×3 helpers reduce by 8 and use BatchNorm by default
            spatial_defaults = {"dim_reduction": 8, "norm_layer": nn.BatchNorm2d}
        pointwise_defaults = {"norm_layer": nn.BatchNorm2d} if "bottleneck" in cls.pointwise_family else {}
        spatial = reference_conv(cls.spatial_family, {**spatial_defaults, **options})
        pointwise = reference_conv(cls.pointwise_family, {**pointwise_defaults, **options})
        return ResConvs(pointwise, spatial, pointwise, downsample or pointwise, pointwise)

    @classmethod
    def reference_downsample(cls, kan_kwargs: Mapping[str, Any]) -> ConvFactory:
        """The network's 1×1 shortcut: the family's 1×1 helper with the network's options (no block defaults)."""
        defaults = {"norm_layer": nn.BatchNorm2d} if "bottleneck" in cls.pointwise_family else {}
        return reference_conv(cls.pointwise_family, {**defaults, **kan_kwargs})


class _ReferenceBlockInit(_ReferenceBlock):
    """The constructor behind the generated blocks: the convolutions from ``kan_kwargs``, then the block."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 groups: int = 1, base_width: int = 64, dilation: int = 1, **kan_kwargs: Any) -> None:  # fmt: skip
        base: Any = BasicBlock if isinstance(self, BasicBlock) else Bottleneck
        convs = type(self).reference_convs(kan_kwargs)
        base.__init__(self, convs, inplanes, planes, stride, downsample, groups, base_width, dilation)


_GEOMETRY = ("stride", "downsample", "groups", "base_width", "dilation")


def _make_block(name: str, base: type, spatial: str, pointwise: str, defaults: dict[str, Any]) -> Any:
    """A reference block: ``(inplanes, planes, <options>, stride, downsample, groups, base_width, dilation, <tail>,
    **norm_kwargs)``; everything but the geometry goes to its convolutions."""

    def build(v: Values) -> Values:
        norm_kwargs = v.pop("norm_kwargs")
        return {**norm_kwargs, **v}

    doc = (
        f"torch-conv-kan's ``{name}``: a :class:`~kanconvs.models.reskanet.{base.__name__}` of {spatial} "
        f"{'(3×3) and ' + pointwise + ' (1×1) ' if spatial != pointwise else ''}convolutions."
    )
    space = {"spatial_family": spatial, "pointwise_family": pointwise, "defaults": defaults}
    return reference_class(name, (base, _ReferenceBlockInit), build, module=__name__, doc=doc, namespace=space)


_SPLINE = {"spline_order": 3, "grid_size": 5, "base_activation": nn.GELU, "grid_range": [-1, 1]}
_RBF = {"grid_size": 5, "base_activation": nn.SiLU, "grid_range": [-1, 1]}
_MOE = {"num_experts": 8, "noisy_gating": True, "k": 2}
# prefix: (3×3 family, 1×1 family, the network-level defaults of the block's convolutions)
_BLOCK_SPECS: dict[str, tuple[str, str, dict[str, Any]]] = {
    "KAN": ("kan", "kan", _SPLINE),
    "FastKAN": ("fastkan", "fastkan", _RBF),
    "KALN": ("kaln", "kaln", {}),
    "KAGN": ("kagn", "kagn", {}),
    "BottleneckKAGN": ("bottleneck_kagn", "bottleneck_kagn", {}),
    "KACN": ("kacn", "kacn", {}),
    "MoEKALN": ("moe_kaln", "kaln", _MOE),
    "MoEBottleneckKAGN": ("moe_bottleneck_kagn", "kaln", _MOE),
}
for _name in _BLOCK_NAMES:
    _kind = "BasicBlock" if _name.endswith("BasicBlock") else "Bottleneck"
    _spatial, _pointwise, _defaults = _BLOCK_SPECS[_name[: -len(_kind)]]
    if _name == "BottleneckKAGNBottleneck":  # its defaults were InstanceNorm, unlike the 3×3 helper's
        _defaults = {"norm_layer": nn.InstanceNorm2d}
    globals()[_name] = _make_block(
        _name, BasicBlock if _kind == "BasicBlock" else Bottleneck, _spatial, _pointwise, _defaults
    )


def _check_block(block: object, moe: bool) -> Any:
    valid = [n for n in _BLOCK_NAMES if n.startswith("MoE") == moe]
    if not (isinstance(block, type) and issubclass(block, _ReferenceBlock) and block.__name__ in valid):
        raise TypeError(f"block must be one of {valid}, got {block!r}")
    return block


# ----------------------------------------------------------------------------------------------- networks
def _network_geometry(v: Values, block: type) -> Values:
    """The :class:`~kanconvs.models.ResKANet` arguments both reference networks take alike."""
    return {
        "layers": v["layers"], "block": "basic" if issubclass(block, BasicBlock) else "bottleneck",
        "family": block.spatial_family, "in_channels": v["input_channels"],  # type: ignore[attr-defined]
        "num_classes": v["num_classes"], "stem_kernel_size": v["fcnv_kernel_size"], "stem_stride": v["fcnv_stride"],
        "stem_padding": v["fcnv_padding"], "width_scale": v["width_scale"], "groups": v["groups"],
        "width_per_group": v["width_per_group"], "replace_stride_with_dilation": v["replace_stride_with_dilation"],
    }  # fmt: skip


def _reference_maxpool(model: _ResKANet, v: Values) -> None:
    mp = (v["mp_kernel_size"], v["mp_stride"], v["mp_padding"])
    model.maxpool = nn.MaxPool2d(*mp) if v["use_first_maxpool"] else nn.Identity()


class ResKANet(ReferenceCheckpoints, _ResKANet):
    """torch-conv-kan's ``ResKANet(block, layers, input_channels=3, …, norm_layer=BatchNorm2d, **kan_kwargs)``.

    ``hidden_layer_dim`` is accepted and ignored, as in the reference (see the module notes).

    Examples:
        >>> stem = dict(fcnv_kernel_size=3, fcnv_stride=1, fcnv_padding=1, use_first_maxpool=False)
        >>> model = ResKANet(KAGNBasicBlock, [1, 1, 1, 1], num_classes=10, degree=2, **stem)
        >>> model(torch.randn(2, 3, 16, 16)).shape
        torch.Size([2, 10])
    """

    l1_wrappers = True

    @reference_init("ResKANet")
    def __init__(self, v: Values) -> None:
        ref_block = _check_block(v["block"], moe=False)
        kan_kwargs, norm_layer = v["kan_kwargs"], v["norm_layer"]
        options = {**kan_kwargs, "norm_layer": norm_layer}
        convs = ref_block.reference_convs(options, downsample=ref_block.reference_downsample(options))
        stem_options = {k: x for k, x in kan_kwargs.items() if k != "groups"}
        if ref_block.spatial_family in ("kagn", "bottleneck_kagn"):  # only these stems got the requested norm
            stem_options["norm_layer"] = norm_layer
        stem = reference_conv(ref_block.spatial_family, stem_options, l1=False)
        super().__init__(
            **_network_geometry(v, ref_block), dropout_linear=v["dropout_linear"],
            convs=ResConvs(stem, convs.spatial, convs.pointwise, convs.downsample, convs.merge),
        )  # fmt: skip
        _reference_maxpool(self, v)
        self.hidden_layer_dim = v["hidden_layer_dim"]  # recorded, unused (as in the reference)


class MoEResKANet(ReferenceCheckpoints, _ResKANet):
    """torch-conv-kan's ``MoEResKANet(block, layers, …, num_experts=8, noisy_gating=True, k=2, hidden_layer_dim=None,
    dropout_linear=0.0, **kan_kwargs)``; ``forward(x, train=True)`` returns ``(logits, moe_loss)``.

    Examples:
        >>> stem = dict(fcnv_kernel_size=3, fcnv_stride=1, fcnv_padding=1, use_first_maxpool=False)
        >>> model = MoEResKANet(MoEKALNBasicBlock, [1, 1, 1, 1], num_classes=10, num_experts=4, degree=2, **stem)
        >>> logits, moe_loss = model(torch.randn(2, 3, 16, 16))
        >>> logits.shape, moe_loss.shape
        (torch.Size([2, 10]), torch.Size([]))
    """

    l1_wrappers = True

    @reference_init("MoEResKANet")
    def __init__(self, v: Values) -> None:
        ref_block, kan_kwargs = _check_block(v["block"], moe=True), v["kan_kwargs"]
        moe = {"num_experts": v["num_experts"], "noisy_gating": v["noisy_gating"], "k": v["k"]}
        convs = ref_block.reference_convs({**kan_kwargs, **moe}, downsample=reference_conv("kaln", kan_kwargs))
        stem_family = "kaln" if ref_block.spatial_family == "moe_kaln" else "bottleneck_kagn"
        stem = reference_conv(stem_family, kan_kwargs, l1=False)
        super().__init__(
            **_network_geometry(v, ref_block), stem_width=16 * v["width_scale"], dropout_linear=v["dropout_linear"],
            convs=ResConvs(stem, convs.spatial, convs.pointwise, convs.downsample, convs.merge),
        )  # fmt: skip
        _reference_maxpool(self, v)
        self.hidden_layer: nn.Module | None = None
        if v["hidden_layer_dim"] is not None:  # the reference's 1×1 KA layer on the pooled (B, C, 1, 1) features
            hidden_defaults = {"norm_layer": nn.BatchNorm2d} if stem_family == "bottleneck_kagn" else {}
            hidden = reference_conv(stem_family, {**hidden_defaults, **kan_kwargs})
            self.hidden_layer = hidden(self.num_features, v["hidden_layer_dim"], 1)
            self.head_features = v["hidden_layer_dim"]
            self.reset_classifier(v["num_classes"])

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        x = self.avgpool(x)
        if self.hidden_layer is not None:
            x = self.hidden_layer(x)
        x = self.drop(torch.flatten(x, 1))
        return x if pre_logits else self.fc(x)

    def moe_loss(self) -> Tensor:
        """The reference's auxiliary loss of the last forward pass: Σ of the MoE layers' scaled balance losses / 4."""
        terms = [m.loss_coef * m.balance_loss for m in self.modules() if isinstance(m, MoEKAConvNd)
                 if m.balance_loss is not None]  # fmt: skip
        return torch.stack(terms).sum() / 4 if terms else torch.zeros(())

    def forward(self, x: Tensor, train: bool = True) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        return self.forward_head(self.forward_features(x)), self.moe_loss()


# ---------------------------------------------------------------------------------------------- factories
# name → (block, layers, use_first_maxpool, stem (kernel, stride, padding))
_X32 = (3, 1, 1)
_IMAGENET = (7, 2, 3)
_SPECS: dict[str, tuple[str, list[int], bool, tuple[int, int, int]]] = {
    "reskanet_18x32p": ("KANBasicBlock", [2, 2, 2, 2], False, _X32),
    "fast_reskanet_18x32p": ("FastKANBasicBlock", [2, 2, 2, 2], False, _X32),
    "reskalnet_18x32p": ("KALNBasicBlock", [2, 2, 2, 2], False, _X32),
    "reskalnet_18x64p": ("KALNBasicBlock", [2, 2, 2, 2], True, _X32),
    "reskacnet_18x32p": ("KACNBasicBlock", [2, 2, 2, 2], False, _X32),
    "reskagnet_18x32p": ("KAGNBasicBlock", [2, 2, 2, 2], False, _X32),
    "reskagnet18": ("KAGNBasicBlock", [2, 2, 2, 2], True, _IMAGENET),
    "reskagnet_34x32p": ("KAGNBasicBlock", [3, 4, 6, 3], False, _X32),
    "reskagnetbn_18x32p": ("BottleneckKAGNBasicBlock", [2, 2, 2, 2], False, _X32),
    "reskagnetbn_34x32p": ("BottleneckKAGNBasicBlock", [3, 4, 6, 3], False, _X32),
    "reskalnet_50x64p": ("KALNBottleneck", [3, 4, 6, 3], True, _X32),
    "reskagnet50": ("KAGNBottleneck", [3, 4, 6, 3], True, _IMAGENET),
    "reskagnet_bn50": ("BottleneckKAGNBottleneck", [3, 4, 6, 3], True, _IMAGENET),
    "reskagnet101": ("KAGNBottleneck", [3, 4, 23, 3], True, _IMAGENET),
    "reskalnet_101x64p": ("KALNBottleneck", [3, 4, 23, 3], True, _X32),
    "reskalnet_101x32p": ("KALNBottleneck", [3, 4, 23, 3], False, _X32),
    "reskagnet_101x64p": ("KAGNBottleneck", [3, 4, 23, 3], True, _X32),
    "reskagnet152": ("KAGNBottleneck", [3, 8, 36, 3], True, _IMAGENET),
    "reskalnet_152x64p": ("KALNBottleneck", [3, 8, 36, 3], True, _X32),
    "reskalnet_152x32p": ("KALNBottleneck", [3, 8, 36, 3], False, _X32),
    "moe_reskalnet_18x64p": ("MoEKALNBasicBlock", [2, 2, 2, 2], True, _X32),
    "moe_reskalnet_50x64p": ("MoEKALNBottleneck", [3, 4, 6, 3], True, _X32),
    "moe_reskalnet_101x64p": ("MoEKALNBottleneck", [3, 4, 23, 3], True, _X32),
    "moe_reskalnet_152x64p": ("MoEKALNBottleneck", [3, 8, 36, 3], True, _X32),
    "reskagnetbn_moe_18x32p": ("MoEBottleneckKAGNBasicBlock", [2, 2, 2, 2], False, _X32),
    "reskagnetbn_moe_34x32p": ("MoEBottleneckKAGNBasicBlock", [3, 4, 6, 3], False, _X32),
}


def reference_factory(name: str, build: Callable[..., nn.Module], doc: str, module: str = __name__) -> Any:
    """The reference's factory ``name(input_channels, num_classes, …)`` that calls ``build(**arguments)``."""
    return reference_function(name, build, module=module, doc=doc)


def _build(name: str, **options: Any) -> nn.Module:
    block_name, layers, maxpool, (k, s, p) = _SPECS[name]
    cls: Any = MoEResKANet if block_name.startswith("MoE") else ResKANet
    return cls(
        globals()[block_name], list(layers), use_first_maxpool=maxpool, fcnv_kernel_size=k, fcnv_stride=s,
        fcnv_padding=p, width_per_group=64, **options,
    )  # fmt: skip


for _factory_name in _SPECS:
    _block_name, _layers = _SPECS[_factory_name][:2]
    globals()[_factory_name] = reference_factory(
        _factory_name,
        functools.partial(_build, _factory_name),
        f"torch-conv-kan's ``{_factory_name}``: a ResKANet of ``{_block_name}`` blocks, {_layers} per stage.",
    )

__all__ = exports(globals())
