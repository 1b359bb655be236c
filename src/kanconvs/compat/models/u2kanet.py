"""torch-conv-kan's ``models/u2kanet.py`` names: the U²-Net classes and factories, reference signatures.

The factories build a :class:`kanconvs.models.U2KANet` with the reference's configuration and module layout; the
classes take the reference's convolution functions (``conv_func(in_channels, out_channels, dilation=…)``).
``forward`` returns the seven maps ``(d0, …, d6)``, as the reference does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from torch import nn

from ...models.u2kanet import ResidualUBlock
from ...models.u2kanet import U2KANet as _U2KANet
from .._generate import ReferenceCheckpoints, Values, exports, reference_function, reference_init

ConvFunc = Callable[..., nn.Module]
Norm = Callable[..., nn.Module]


class _ReferenceConvs:
    """The reference's ``conv_func(in, out, dilation=…)`` (and ``conf_fun_first`` for the stem, marked by
    ``stem=True``) behind the factory signature of :func:`kanconvs.models.conv_factory`."""

    def __init__(self, conv_func: ConvFunc, conv_first: ConvFunc | None = None) -> None:
        self.conv_func, self.conv_first = conv_func, conv_first

    def __call__(
        self, in_channels: int, out_channels: int, kernel_size: Any = 3, stride: Any = 1, padding: Any = None,
        dilation: int = 1, groups: int = 1, stem: bool = False,
    ) -> nn.Module:  # fmt: skip
        # kernel size, padding and groups are fixed by the reference's functions themselves.
        fn = self.conv_first if stem and self.conv_first is not None else self.conv_func
        return fn(in_channels, out_channels, dilation=dilation)


class ResidualUNetBase(ReferenceCheckpoints, ResidualUBlock):
    """The reference's pooling RSU block (``ResidualUNetBase``)."""

    @reference_init("ResidualUNetBase")
    def __init__(self, v: Values) -> None:
        make = _ReferenceConvs(v["conv_func"], v["conf_fun_first"])
        super().__init__(make, v["depth"], v["in_ch"], v["mid_ch"], v["out_ch"], input_kwargs={"stem": True})


class ResidualUNetBaseF(ReferenceCheckpoints, ResidualUBlock):
    """The reference's dilated RSU block (``ResidualUNetBaseF``)."""

    @reference_init("ResidualUNetBaseF")
    def __init__(self, v: Values) -> None:
        super().__init__(
            _ReferenceConvs(v["conv_func"]), v["depth"], v["in_ch"], v["mid_ch"], v["out_ch"], dilated=True
        )


class _ReferenceU2KANet(ReferenceCheckpoints, _U2KANet):
    """A :class:`~kanconvs.models.U2KANet` that loads reference checkpoints."""


class U2KANet(_ReferenceU2KANet):
    """The reference's ``U2KANet(conv_func, conf_fun_first, in_ch, out_ch, width_factor)``."""

    _stages = "full"

    @reference_init("U2KANet")  # U2KANetSmall's is the same
    def __init__(self, v: Values) -> None:
        super().__init__(
            _ReferenceConvs(v["conv_func"], v["conf_fun_first"]), self._stages, in_channels=v["in_ch"],
            num_classes=v["out_ch"], width_scale=v["width_factor"], stem_kwargs={"stem": True},
        )  # fmt: skip


class U2KANetSmall(U2KANet):
    """The reference's ``U2KANetSmall`` (every stage 16·w channels, 4·w inside)."""

    _stages = "small"


def _build(
    family: str,
    stages: str,
    input_channels: int,
    num_classes: int,
    groups: int,
    width_scale: int,
    dropout: float,
    l1_decay: float,
    stem_kwargs: dict[str, Any] | None = None,
    affine: bool | None = None,
    norm_layer: Norm | str | None = None,
    grid_range: Sequence[float] | None = None,
    **options: Any,
) -> _U2KANet:
    conv: dict[str, Any] = {**options, "dropout": dropout}
    if norm_layer is not None:
        conv.update(norm_layer=norm_layer, norm_kwargs={"affine": affine})
    if grid_range is not None:
        conv["grid_range"] = (grid_range[0], grid_range[1])
    if l1_decay:
        conv["weight_l1"] = l1_decay
    return _ReferenceU2KANet(
        family, stages, in_channels=input_channels, num_classes=num_classes, width_scale=width_scale, groups=groups,
        stem_kwargs=stem_kwargs, **conv,
    )  # fmt: skip


# The reference's factories, one row each: name, family, stages.
def _u2(name: str, family: str, stages: str, **fixed: Any) -> Any:
    doc = f"torch-conv-kan's ``{name}``: a U²-KANet ({stages}) of {family} convolutions."
    return reference_function(name, partial(_build, family, stages, **fixed), module=__name__, doc=doc)


def _plain(stages: str, **args: Any) -> _U2KANet:
    if args.pop("l1_decay"):
        raise ValueError(
            "l1_decay is not supported by the plain convolutions of u2net; use the optimiser's weight decay"
        )
    return _build("conv", stages, l1_decay=0.0, norm_layer="batch", affine=True, activation="gelu", **args)


u2kagnet = _u2("u2kagnet", "kagn", "full")
u2kagnet_bn = _u2("u2kagnet_bn", "bottleneck_kagn", "full")
u2kalnet = _u2("u2kalnet", "kaln", "full")
u2kacnet = _u2("u2kacnet", "kacn", "full")
u2kanet = _u2("u2kanet", "kan", "full")
fast_u2kanet = _u2("fast_u2kanet", "fastkan", "full")
u2kagnet_small = _u2("u2kagnet_small", "kagn", "small")
# As in the reference: a 1×1 stem with the bottleneck's default 4× reduction, 8× elsewhere.
u2kagnet_bn_small = _u2(
    "u2kagnet_bn_small", "bottleneck_kagn", "small", dim_reduction=8, stem_kwargs={"kernel_size": 1, "dim_reduction": 4}
)
u2kalnet_small = _u2("u2kalnet_small", "kaln", "small")
u2kacnet_small = _u2("u2kacnet_small", "kacn", "small")
u2kanet_small = _u2("u2kanet_small", "kan", "small")
fast_u2kanet_small = _u2("fast_u2kanet_small", "fastkan", "small")
u2net = reference_function("u2net", partial(_plain, "full"), module=__name__, doc="torch-conv-kan's plain ``u2net``.")
u2net_small = reference_function(
    "u2net_small", partial(_plain, "small"), module=__name__, doc="torch-conv-kan's plain ``u2net_small``."
)

__all__ = exports(globals())
