"""VGG-KAN: VGG-style stacks of 3×3 convolutions of any family, max pooling, optional self-attention, a head.

One body (:class:`VGGKANet`) for every configuration and family; the configurations are data (:data:`VGG_LAYERS`).
The module layout is torch-conv-kan's (``features.<i>``, the head's indices) but its key names are not: reference
checkpoints, including the published Hugging Face VGG-KAGN weights, load with ``create_model(name, pretrained=file)``
or :func:`~kanconvs.models.load_weights`, which rename their keys (``classifier.`` → ``head.``, the ``L1`` wrapper's
``.module.``) through :func:`kanconvs.convert.convert_reference_state_dict`; ``load_state_dict`` takes only this
module's own keys.

Differences from the reference (``models/vggkan.py``):

- with ``last_attention`` the head's width is the attention block's (the reference recorded the replaced conv's
  width, which crashed whenever the two differ, e.g. ``VGG11v3``);
- the self-attention blocks are :class:`~kanconvs.layers.attention.KASelfAttentionNd` (γ scales the attention and
  scores are scaled by 1/√d), so they start as the identity;
- MoE balance losses are not returned from ``forward``: add ``kanconvs.regularization_loss(model)`` to the loss;
- ``l1_decay`` is ``weight_l1=`` on the convolutions (an explicit loss term in ``regularization_loss``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import is_real
from ..layers.attention import KASelfAttentionNd
from ._factory import ClassifierMixin, check_num_classes, conv_factory, family_options, parse_family
from ._registry import register_model
from .heads import HEAD_TYPES, MatryoshkaHead, create_head, pre_logits_size, run_head
from .kan_mlp import KANMLP

__all__ = ["VGG_LAYERS", "MatryoshkaHead", "VGGKANet"]

Layer = int | str
_BASE: dict[str, list[Layer]] = {
    "VGG11": [16, "M", 32, "M", 64, 64, "M", 128, 128, "M", 128, 128],
    "VGG13": [16, 16, "M", 32, 32, "M", 64, 64, "M", 128, 128, "M", 128, 128],
    "VGG16": [16, 16, "M", 32, 32, "M", 64, 64, 64, "M", 128, 128, 128, "M", 128, 128, 128],
    "VGG19": [16, 16, "M", 32, 32, "M", 64, 64, 64, 64, "M", 128, 128, 128, 128, "M", 128, 128, 128, 128],
}


def _with_attention(layers: list[Layer], count: int) -> list[Layer]:
    """Replace the last ``count`` pools by self-attention + pool ("SAM")."""
    pools = [i for i, v in enumerate(layers) if v == "M"][-count:]
    return ["SAM" if i in pools else v for i, v in enumerate(layers)]


def _build_configs() -> dict[str, list[Layer]]:
    configs: dict[str, list[Layer]] = {}
    for name, layers in _BASE.items():
        configs[name] = layers
        configs[name + "sa"] = _with_attention(layers, 2)
        # v2 appends a pool and a pair of convolutions; v3 and v4 widen that pair.
        for version, pair in (("v2", [128, 128]), ("v3", [128, 256]), ("v4", [256, 256])):
            configs[name + version] = [*layers, "M", *pair]
        configs[name + "v4sa"] = _with_attention(configs[name + "v4"], 2)
    return configs


#: Layer lists of the VGG configurations: channels (before ``width_scale``), ``"M"`` max pooling 2×2 and
#: ``"SAM"`` self-attention followed by max pooling.
VGG_LAYERS: dict[str, list[Layer]] = _build_configs()
_MOE_OPTIONS = ("num_experts", "k", "noisy_gating", "loss_coef", "pregate")


def _pair(name: str, value: int | Sequence[int]) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}")
    return (pair[0], pair[1])


class VGGKANet(ClassifierMixin, nn.Module):
    """VGG-style network: 3×3 convolutions of a family (:func:`~kanconvs.models.conv_factory`), 2×2 max pooling,
    optional self-attention blocks, adaptive average pooling to ``pool_size`` and a head.

    The first convolution has ``groups=1`` and no dropout; for MoE families it is the family without experts (as are
    the attention blocks' convolutions). ``forward`` returns logits ``(B, num_classes)``, or, for the Matryoshka
    heads, a tuple of logits, one per nesting (smallest first). ``forward_head(x, pre_logits=True)`` returns the
    features before the head's final classifier (``head_hidden_size`` wide).

    Args:
        layers: the configuration: a name of :data:`VGG_LAYERS` (``"VGG11v4"``) or a list of channels, ``"M"`` and
            ``"SAM"``.
        family: the convolutions' family string (``"kagn"``, ``"bottleneck_kagn"``, ``"moe_kagn"``, ``"conv"`` …).
        in_channels, num_classes: input channels and classes (``num_classes=0``: no head, pooled features out).
        width_scale: multiplies every width (may be fractional, for tiny models).
        groups: groups of every convolution but the first.
        dropout: the convolutions' own dropout (every convolution but the first).
        head: one of :data:`~kanconvs.models.heads.HEAD_TYPES`.
        head_dropout: the head's dropout (the reference's ``dropout_linear``).
        head_family: linear family of the KAN heads (default: the convolutions' base family), or a callable
            ``f(widths) -> nn.Module`` building the KAN MLP. With a family name the ``kan`` head's layer has no
            output norm and activation (plain logits; the reference normalised and activated its logits).
        head_kwargs: options of the KAN heads' linear layers (``degree=`` …; the head dropout is added).
        pool_size: output size of the adaptive average pooling (the reference's ``expected_feature_shape``).
        last_attention: replace the last convolution by a self-attention block.
        attention_projection: the attention blocks work on ``C // attention_projection`` channels (1×1 projections
            in and out); ``None`` for none.
        conv_kwargs: options of every convolution (``degree=``, ``norm_layer=``, ``norm_kwargs=``, ``weight_l1=`` …).
            The attention blocks' outer norm is ``norm_layer`` (instance norm by default) with ``norm_kwargs``.

    Examples:
        >>> model = VGGKANet("VGG11", "kagn", num_classes=10, width_scale=0.25, pool_size=1, degree=3)
        >>> model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        layers: str | Sequence[Layer],
        family: str = "kagn",
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        width_scale: float = 1,
        groups: int = 1,
        dropout: float = 0.0,
        head: str = "linear",
        head_dropout: float = 0.25,
        head_family: str | Callable[[list[int]], nn.Module] | None = None,
        head_kwargs: Mapping[str, Any] | None = None,
        pool_size: int | Sequence[int] = (7, 7),
        last_attention: bool = False,
        attention_projection: int | None = None,
        **conv_kwargs: Any,
    ) -> None:
        super().__init__()
        cfg = self._check_layers(layers)
        if not is_real(width_scale) or not width_scale > 0:
            raise ValueError(f"width_scale must be a number > 0, got {width_scale!r}")
        if head not in HEAD_TYPES:
            raise ValueError(f"head must be one of {HEAD_TYPES}, got {head!r}")
        if attention_projection is not None and (
            isinstance(attention_projection, bool)
            or not isinstance(attention_projection, int)
            or attention_projection < 1
        ):
            raise ValueError(f"attention_projection must be a positive int or None, got {attention_projection!r}")
        wrapper, base = parse_family(family)
        self.family = family
        make = conv_factory(family, **conv_kwargs)
        if wrapper is not None and wrapper.startswith("moe"):  # no experts for the stem and the attention blocks
            plain = "bottleneck_" + base if wrapper == "moe_bottleneck" else base
            make_plain = conv_factory(plain, **{k: v for k, v in conv_kwargs.items() if k not in _MOE_OPTIONS})
        else:
            make_plain = make

        def attention(channels: int) -> nn.Module:
            inner = channels // attention_projection if attention_projection else None
            return KASelfAttentionNd(
                channels, 3, ndim=2, family=make_plain, inner_projection=inner, groups=groups, dropout=dropout,
                out_norm=conv_kwargs.get("norm_layer", "instance"), out_norm_kwargs=conv_kwargs.get("norm_kwargs"),
            )  # fmt: skip

        features: list[nn.Module] = []
        channels = in_channels
        last_conv = max(i for i, v in enumerate(cfg) if isinstance(v, int))
        for i, v in enumerate(cfg):
            if v == "M":
                features.append(nn.MaxPool2d(2, 2))
            elif v == "SAM":
                features += [attention(channels), nn.MaxPool2d(2, 2)]
            elif i == last_conv and last_attention:
                features.append(attention(channels))
            else:
                width = max(1, round(int(v) * width_scale))
                if not features:
                    features.append(make_plain(channels, width, 3, dropout=0.0))
                else:
                    features.append(make(channels, width, 3, groups=groups, dropout=dropout))
                channels = width
        self.features = nn.Sequential(*features)
        self.pool_size = _pair("pool_size", pool_size)
        self.avgpool = nn.AdaptiveAvgPool2d(self.pool_size)
        self.num_features = channels
        self.head_type = head
        self.head_dropout = head_dropout
        kan_family = head_family if head_family is not None else base
        self._kan = self._kan_factory(kan_family, head_kwargs, head_dropout, plain=False)
        self._kan_classifier = self._kan_factory(kan_family, head_kwargs, head_dropout, plain=True)
        self.num_classes = 0
        self.head: nn.Module = nn.Identity()
        self.reset_classifier(num_classes)

    @staticmethod
    def _check_layers(layers: str | Sequence[Layer]) -> list[Layer]:
        if isinstance(layers, str):
            if layers not in VGG_LAYERS:
                raise ValueError(f"layers must be one of {sorted(VGG_LAYERS)} or a list, got {layers!r}")
            return list(VGG_LAYERS[layers])
        cfg = list(layers)
        valid = all(v in ("M", "SAM") or (isinstance(v, int) and not isinstance(v, bool) and v >= 1) for v in cfg)
        if not valid or not cfg or not isinstance(cfg[0], int):
            raise ValueError(
                f"layers must start with a channel count and hold positive ints, 'M' and 'SAM', got {layers!r}"
            )
        return cfg

    @staticmethod
    def _kan_factory(
        family: str | Callable[[list[int]], nn.Module], kwargs: Mapping[str, Any] | None, dropout: float, plain: bool
    ) -> Callable[[list[int]], nn.Module]:
        if callable(family):
            return family
        return partial(KANMLP, family=family, dropout=dropout, plain_head=plain, **dict(kwargs or {}))

    def _build_head(self, num_classes: int) -> nn.Module:
        if not num_classes:
            return nn.Identity()
        in_features = self.num_features * math.prod(self.pool_size)
        self.head_hidden_size = pre_logits_size(self.head_type, in_features)
        return create_head(
            self.head_type, in_features, num_classes, dropout=self.head_dropout, kan=self._kan,
            kan_classifier=self._kan_classifier,
        )  # fmt: skip

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the whole head with a fresh one of the same type for ``num_classes`` (0: no head)."""
        self.head_hidden_size = self.num_features * math.prod(self.pool_size)
        super().reset_classifier(check_num_classes(num_classes))

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature maps of the last layer: ``(B, num_features, H / 2^pools, W / 2^pools)``."""
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Any:
        """Pool to ``pool_size``, flatten and apply the head (up to its classifier with ``pre_logits=True``)."""
        x = torch.flatten(self.avgpool(x), 1)
        if isinstance(self.head, nn.Identity):
            return x
        return run_head(self.head, x, pre_logits)

    def forward(self, x: Tensor) -> Any:
        return self.forward_head(self.forward_features(x))


# --------------------------------------------------------------------------------------------- configurations
# The reference factories' defaults: degree 3, instance norm without affine parameters, head dropout 0.25, 7×7
# pooling; bottleneck convolutions reduce 8×. ``family_options`` keeps the options each family accepts.
_CONV_DEFAULTS: dict[str, Any] = {"degree": 3, "dim_reduction": 8}
# The published ImageNet-1k checkpoints (Hugging Face brivangl/vgg_kagn11_v2, vgg_kagn11_v4, vgg_kagn_bn11_v4).
_PUBLISHED_CONV: dict[str, Any] = {
    **_CONV_DEFAULTS,
    "degree": 5,
    "norm_layer": "instance",
    "norm_kwargs": {"affine": True},
}
_PUBLISHED_MODEL: dict[str, Any] = {"dropout": 0.15, "width_scale": 2, "pool_size": (1, 1)}


def _register(name: str, layers: str, family: str, conv: Mapping[str, Any], model: Mapping[str, Any], doc: str) -> None:
    def entry(family: str = family, **kwargs: Any) -> nn.Module:
        return VGGKANet(layers, family, **{**model, **family_options(family, conv), **kwargs})

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = doc + " Keyword arguments override the configuration (see :class:`VGGKANet`)."
    register_model(entry)


def _register_vgg() -> None:
    for layers in VGG_LAYERS:
        variant = layers[5:]
        name = f"vggkan{layers[3:5]}" + (f"_{variant}" if variant else "")
        _register(name, layers, "kagn", _CONV_DEFAULTS, {}, f"VGG-KAN {layers} (family 'kagn' by default).")
    doc = "VGG-KAN VGG11v4 with bottleneck Gram convolutions (family 'bottleneck_kagn' by default)."
    _register("vggkan_bn11_v4", "VGG11v4", "bottleneck_kagn", _CONV_DEFAULTS, {}, doc)
    for name, layers, family in (
        ("vggkagn11_v2", "VGG11v2", "kagn"),
        ("vggkagn11_v4", "VGG11v4", "kagn"),
        ("vggkagn_bn11_v4", "VGG11v4", "bottleneck_kagn"),
    ):
        hub = "brivangl/" + name.replace("vggkagn", "vgg_kagn")
        doc = (
            f"The configuration of the published ImageNet-1k checkpoint {hub}: {layers}, {family}, width 2, degree 5, "
            "affine instance norm, dropout 0.15, 1×1 pooling, linear head; ``pretrained=`` also takes its weights."
        )
        _register(name, layers, family, _PUBLISHED_CONV, _PUBLISHED_MODEL, doc)


_register_vgg()
