"""One entry point from a family string to a KA convolution, variants included.

======================================  ==========================================================================
``"kagn"``, ``"kaln"``, ``"kan"`` …     the registered family's layer (:func:`kanconvs.list_families`)
``"bottleneck_kagn"``                   :class:`~kanconvs.layers.bottleneck.BottleneckKAConvNd` around that family
``"moe_kaln"``                          :class:`~kanconvs.layers.moe.MoEKAConvNd` with experts of that family
``"moe_bottleneck_kagn"``               :class:`~kanconvs.layers.moe.MoEBottleneckKAConvNd`
======================================  ==========================================================================

A variant declares its own options (``dim_reduction``, ``num_experts`` …) next to the family's declared ones (its
:class:`~kanconvs.layers.spec.FamilySpec`), so a configuration written once for every family can be narrowed to what
one family takes (:func:`family_options`) without reading constructor signatures.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from ._conv_base import ConvBase
from .bottleneck import BottleneckKAConvNd
from .families import get_family, list_families
from .moe import MoEBottleneckKAConvNd, MoEKAConvNd
from .spec import FamilySpec

__all__ = ["VARIANTS", "Variant", "create_conv", "declared_options", "family_options", "parse_family"]

Size = int | tuple[int, ...]


@dataclass(frozen=True)
class Variant:
    """A layer built around a family's convolution, and the options it adds to the family's."""

    layer: type[ConvBase]
    options: tuple[str, ...]


_BOTTLENECK = ("dim_reduction", "min_internal")
_MOE = ("num_experts", "k", "noisy_gating", "loss_coef", "pregate")
#: The variants, longest prefix first (``"moe_bottleneck_"`` before ``"moe_"``).
VARIANTS: dict[str, Variant] = {
    "moe_bottleneck": Variant(MoEBottleneckKAConvNd, _MOE + _BOTTLENECK),
    "bottleneck": Variant(BottleneckKAConvNd, _BOTTLENECK),
    "moe": Variant(MoEKAConvNd, (*_MOE, "expert_factory")),
}


def parse_family(family: str) -> tuple[str | None, str]:
    """Split ``"moe_bottleneck_kagn"`` into ``("moe_bottleneck", "kagn")``; plain names give ``(None, name)``.

    ``"conv"`` (the plain convolution the models can be built with) passes without a variant. Raises a
    ``ValueError`` naming the valid families for an unknown base family.

    Examples:
        >>> parse_family("moe_bottleneck_kagn")
        ('moe_bottleneck', 'kagn')
    """
    if not isinstance(family, str):
        raise TypeError(f"family must be a string such as 'kagn' or 'bottleneck_kagn', got {type(family).__name__}")
    variant, base = None, family
    for prefix in VARIANTS:
        if family.startswith(prefix + "_"):
            variant, base = prefix, family[len(prefix) + 1 :]
            break
    if (base != "conv" or variant is not None) and base not in list_families():
        valid = ["conv", *list_families(), *(f"{v}_<family>" for v in VARIANTS)]
        close = difflib.get_close_matches(base, list_families(), n=5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"family must be one of {valid}, got {family!r} (unknown family {base!r}{hint})")
    return variant, base


def create_conv(
    family: str, in_channels: int, out_channels: int, kernel_size: Size, *, ndim: int = 2, **kwargs: Any
) -> nn.Module:
    """Build a KA convolution from a family string, e.g. ``create_conv("kagn", 16, 32, 3, padding=1)`` or
    ``create_conv("moe_bottleneck_kagn", 64, 64, 3, padding=1, num_experts=4)``.

    Examples:
        >>> type(create_conv("bottleneck_kaln", 32, 32, 3, padding=1, degree=2)).__name__
        'BottleneckKAConvNd'
    """
    variant, base = parse_family(family)
    if variant is None:
        return get_family(base)(in_channels, out_channels, kernel_size, ndim=ndim, **kwargs)
    layer = VARIANTS[variant].layer
    return layer(in_channels, out_channels, kernel_size, ndim=ndim, family=base, **kwargs)  # type: ignore[call-arg]


def declared_options(family: str) -> set[str]:
    """The options a registered family declares (its spec's); a family class registered without a spec has none."""
    spec: FamilySpec | None = getattr(get_family(family), "spec", None)
    return set(spec.defaults()) if spec is not None else set()


def family_options(family: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``options`` that ``family`` (a family string, or ``"conv"``) takes.

    Model configurations are written once for every family (``degree=3``, ``dim_reduction=8`` …); this drops the
    options that other families or variants declare and this one does not (``degree`` for B-splines or the plain
    convolution, ``num_experts`` without a MoE). Generic layer keywords (``norm_layer``, ``dropout`` …) pass, so a
    misspelt one still raises in the layer.

    Examples:
        >>> family_options("kan", {"degree": 3, "grid_size": 6, "norm_layer": "batch"})
        {'grid_size': 6, 'norm_layer': 'batch'}
    """
    variant, base = parse_family(family)
    declared = {name for f in list_families() for name in declared_options(f)}
    declared |= {name for v in VARIANTS.values() for name in v.options}
    own = declared_options(base) if base != "conv" else set()
    own |= set(VARIANTS[variant].options) if variant is not None else set()
    return {k: v for k, v in options.items() if k in own or k not in declared}
