"""torch-conv-kan's ``models/densekanet.py`` factories: :class:`kanconvs.models.DenseKANet` configured as the
reference's, with its attribute paths (``features.denseblock1.denselayer1.conv1`` …, ``classifier``), so reference
checkpoints load. What differs: docs/migrating.md, "Differences, module by module".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn

from ...layers.regularization import regularization_loss
from ...models import densekanet as _dense
from .. import kans
from .._generate import ReferenceCheckpoints, exports, reference_function


class _ReferenceDenseKANet(ReferenceCheckpoints, _dense.DenseKANet):
    """A :class:`~kanconvs.models.DenseKANet` that loads reference checkpoints (``L1`` wrappers included)."""

    l1_wrappers = True


class _ReferenceMoEDenseKANet(_ReferenceDenseKANet):
    """The MoE variants: ``forward`` returns ``(logits, aux_loss)`` as in the reference."""

    def forward(self, x: Tensor, **kwargs: Any) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        return super().forward(x), regularization_loss(self)


_LAYOUTS = {"121": (6, 12, 24, 16), "161": (6, 12, 36, 24), "169": (6, 12, 32, 32), "201": (6, 12, 48, 32)}


def _head(kind: str, options: dict[str, Any]) -> Callable[[int, int], nn.Module]:
    """The tiny models' classifier: the reference's KAN MLP class of the family (normed, activated output)."""
    cls: Any = {"kan": kans.KAN, "fastkan": kans.FastKAN, "kaln": kans.KALN, "kagn": kans.KAGN, "kacn": kans.KACN}
    cls.update(bottleneck_kagn=kans.BottleNeckKAGN, moe_bottleneck_kagn=kans.BottleNeckKAGN)

    def build(num_features: int, num_classes: int) -> nn.Module:
        return cls[kind]([num_features, num_classes], **options)

    return build


def _build(kind: str, tiny: bool, layout: Sequence[int], values: dict[str, Any]) -> nn.Module:
    """Translate a reference factory's arguments into a DenseKANet."""
    norm = values.pop("norm_layer")
    options: dict[str, Any] = {"norm_layer": norm, "norm_kwargs": {"affine": values.pop("affine")}}
    head_options: dict[str, Any] = {}
    dense: dict[str, Any] = {}
    if kind in ("kan", "fastkan"):
        grid_range = tuple(values.pop("grid_range"))
        options.update(grid_size=values.pop("grid_size"), grid_range=grid_range)
        options["base_activation"] = head_options["base_activation"] = values.pop("base_activation")
        head_options.update(grid_size=options["grid_size"], grid_range=list(grid_range))
        if kind == "kan":
            options["spline_order"] = head_options["spline_order"] = values.pop("spline_order")
    else:
        options["degree"] = head_options["degree"] = values.pop("degree")
    if kind.endswith("bottleneck_kagn"):
        options["dropout_type"] = "noise"  # the reference's bottleneck regularises with noise injection
        dense["dim_reduction"] = 8  # models/model_utils' 3×3 bottleneck default (the 1×1 keeps the layer's 4)
    if kind == "moe_bottleneck_kagn":
        dense.update(num_experts=values.pop("num_experts"), k=values.pop("k"), noisy_gating=values.pop("noisy_gating"))
    cls = _ReferenceMoEDenseKANet if kind.startswith("moe_") else _ReferenceDenseKANet
    return cls(
        kind, tuple(layout), in_channels=values.pop("input_channels"), num_classes=values.pop("num_classes"),
        growth_rate=values.pop("growth_rate"), num_init_features=values.pop("num_init_features"),
        groups=values.pop("groups"), dropout=values.pop("dropout"), dropout_linear=values.pop("dropout_linear", 0.0),
        weight_l1=values.pop("l1_decay"), dense_conv_kwargs=dense,
        stem_kernel=5 if tiny else 7, stem_pool=False if tiny else values.pop("use_first_maxpool"),
        transition_after_last=tiny, head=_head(kind, head_options) if tiny else "linear",
        memory_efficient=tiny and not kind.startswith("moe_"), **options,
    )  # fmt: skip


def _factory(name: str, kind: str, tiny: bool, layout: Sequence[int]) -> Any:
    doc = f"torch-conv-kan's ``{name}`` ({kind} convolutions), reference signature and layout."
    return reference_function(name, functools.partial(_build, kind, tiny, layout), lambda v: {"values": v},
                              module=__name__, doc=doc)  # fmt: skip


_FULL = {
    "densekanet{n}": ("kan", ("121",)),
    "fast_densekanet{n}": ("fastkan", ("121",)),
    "densekalnet{n}": ("kaln", ("121", "161", "169", "201")),
    "densekacnet{n}": ("kacn", ("121",)),
    "densekagnet{n}": ("kagn", ("121", "161", "169", "201")),
    "densekagnet{n}bn": ("bottleneck_kagn", ("121", "161", "169", "201")),
    "densekagnet{n}moebn": ("moe_bottleneck_kagn", ("121", "161", "169", "201")),
}
_TINY = {
    "tiny_densekanet": "kan",
    "tiny_fast_densekanet": "fastkan",
    "tiny_densekalnet": "kaln",
    "tiny_densekagnet": "kagn",
    "tiny_densekagnet_bn": "bottleneck_kagn",
    "tiny_densekagnet_moebn": "moe_bottleneck_kagn",
    "tiny_densekacnet": "kacn",
}
for _template, (_kind, _layouts) in _FULL.items():
    for _n in _layouts:
        _name = _template.format(n=_n)
        globals()[_name] = _factory(_name, _kind, False, _LAYOUTS[_n])
for _name, _kind in _TINY.items():
    globals()[_name] = _factory(_name, _kind, True, (5, 5, 5))

__all__ = exports(globals())
