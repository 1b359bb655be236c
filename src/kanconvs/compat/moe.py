"""torch-conv-kan's mixture-of-experts convolutions (``moe_kan``, ``kagn_bottleneck_conv``), reference names and
signatures, over :class:`~kanconvs.layers.moe.MoEKAConvNd`: ``forward(x, train=True, loss_coef=None)`` returns
``(y, aux_loss)``. The fixed gating and what it changes: docs/migrating.md, "Differences, module by module".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..layers.bottleneck import bottleneck_width
from ..layers.kan_linear import KAGNLinear
from ..layers.moe import MoEBottleneckKAConvNd, MoEKAConvNd
from ..layers.ranks import RANKS
from . import kan_convs
from ._generate import ReferenceCheckpoints, Values, check_rank, exports, reference_class, reference_init

_FAMILIES = ("KALN", "KAN", "KAGN", "FastKAN", "KACN", "WavKAN")
_INSTANCE_NORMS = {n: r.instance_norm for n, r in RANKS.items()}
# The reference finds the rank of an expert class by membership in a list; unknown classes crashed later.
_EXPERT_RANKS: dict[Any, int] = {
    getattr(kan_convs, f"{name}Conv{d}DLayer"): d for name in (*_FAMILIES, "BottleNeckKAGN") for d in (1, 2, 3)
}


class _ReferenceExpert:
    """Builds a reference-signature expert, ``conv_class(in, out, kernel_size=, stride=, padding=, **kan_kwargs)``,
    from :class:`MoEKAConvNd`'s factory call (a class, not a closure, so layers stay picklable)."""

    def __init__(self, conv_class: Callable[..., nn.Module]) -> None:
        self.conv_class = conv_class

    def __call__(
        self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
        groups: int, *, ndim: int, device: Any = None, dtype: torch.dtype | None = None, **kan_kwargs: Any,
    ) -> nn.Module:  # fmt: skip
        expert = self.conv_class(
            in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
            groups=groups, **kan_kwargs,
        )  # fmt: skip
        return expert.to(device=device, dtype=dtype) if device is not None or dtype is not None else expert


def _reference_loss(layer: MoEKAConvNd, balance: Tensor | None, loss_coef: float | None) -> Tensor:
    coef = layer.loss_coef if loss_coef is None else loss_coef
    if balance is None:
        raise RuntimeError("no balance loss was recorded by the forward pass")
    return coef * balance.float()


class MoEKANConvBase(ReferenceCheckpoints, MoEKAConvNd):
    """The reference's ``MoEKANConvBase``: experts are ``conv_class(input_size, output_size, kernel_size=…,
    stride=…, padding=…, **kan_kwargs)``, a reference (compat) convolution class such as ``KAGNConv2DLayer``.

    Examples:
        >>> from kanconvs.compat import KACNConv2DLayer
        >>> layer = MoEKANConvBase(KACNConv2DLayer, 4, 8, num_experts=4, k=2, degree=3)
        >>> y, loss = layer(torch.randn(2, 4, 6, 6))
        >>> y.shape, loss.shape
        (torch.Size([2, 8, 6, 6]), torch.Size([]))
    """

    torch_style: ClassVar[bool] = False  # the reference's constructor

    @reference_init("MoEKANConvBase")
    def __init__(self, v: Values) -> None:
        conv_class, kan_kwargs = v["conv_class"], dict(v["kan_kwargs"])
        rank = _EXPERT_RANKS.get(conv_class, getattr(conv_class, "_ndim", None))
        if rank is None:
            valid = sorted(c.__name__ for c in _EXPERT_RANKS)
            raise ValueError(
                f"conv_class must be a reference convolution class ({', '.join(valid)}) or a kanconvs class with a "
                f"fixed rank, got {conv_class!r}"
            )
        groups, dilation = kan_kwargs.pop("groups", 1), kan_kwargs.pop("dilation", 1)
        super().__init__(
            v["input_size"], v["output_size"], v["kernel_size"], v["stride"], v["padding"], dilation, groups,
            ndim=rank, num_experts=v["num_experts"], k=v["k"], noisy_gating=v["noisy_gating"],
            expert_factory=_ReferenceExpert(conv_class), **kan_kwargs,
        )  # fmt: skip
        self.input_size, self.output_size, self.conv_dims = v["input_size"], v["output_size"], rank

    def forward(  # type: ignore[override]
        self, x: Tensor, train: bool = True, loss_coef: float | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(y, loss_coef · balance loss)``; ``train`` is ignored, as in the reference (``self.training`` decides)."""
        y, balance = self.forward_with_loss(x)
        return y, _reference_loss(self, balance, loss_coef)


def _make_moe(name: str, expert: str, ndim: int) -> Any:
    """A fixed-expert MoE of the reference: ``MoEKANConvBase`` of ``{expert}Conv{ndim}DLayer`` experts."""
    defaults = {"norm_layer": _INSTANCE_NORMS[ndim]} if expert == "WavKAN" else {}
    conv_class = getattr(kan_convs, f"{expert}Conv{ndim}DLayer")
    doc = f"torch-conv-kan's ``{name}``: a mixture of ``{conv_class.__name__}`` experts."
    if defaults:
        doc += " Experts default to ``InstanceNorm`` (running statistics are not supported)."

    def build(v: Values) -> Values:
        kan_kwargs = v.pop("kan_kwargs")
        return {"conv_class": conv_class, **v, **defaults, **kan_kwargs}

    return reference_class(name, MoEKANConvBase, build, module=__name__, doc=doc)


_MOE_NAMES = []
for _expert, _prefix in [*((f, f"MoE{f}") for f in _FAMILIES), ("BottleNeckKAGN", "MoEFullBottleneckKAGN")]:
    for _d in (1, 2, 3):
        _name = f"{_prefix}Conv{_d}DLayer"
        globals()[_name] = _make_moe(_name, _expert, _d)
        _MOE_NAMES.append(_name)


# ------------------------------------------------------------------------------------------ MoE bottleneck (KAGN)
class MoEBottleNeckKAGNConvND(ReferenceCheckpoints, MoEBottleneckKAConvNd):
    """The reference's ``MoEBottleNeckKAGNConvND``: a Gram bottleneck whose inner convolution is a mixture of
    experts. ``pregate=True`` puts a Gram KA linear layer (``GRAMLayer``) in front of the gate.

    Examples:
        >>> import torch.nn.functional as F
        >>> layer = MoEBottleNeckKAGNConvND(nn.Conv2d, F.conv2d, nn.InstanceNorm2d, 16, 16, num_experts=4, k=2)
        >>> layer(torch.randn(2, 16, 6, 6))[0].shape
        torch.Size([2, 16, 6, 6])
    """

    torch_style: ClassVar[bool] = False  # the reference's constructor

    @reference_init("MoEBottleNeckKAGNConvND")
    def __init__(self, v: Values) -> None:
        rank = check_rank(v["ndim"], v["conv_class"], v["conv_w_fun"])
        input_dim, output_dim, groups, degree = v["input_dim"], v["output_dim"], v["groups"], v["degree"]
        num_experts, k, noisy_gating = v["num_experts"], v["k"], v["noisy_gating"]
        gate_in: nn.Module | None = None
        if v["pregate"]:
            if groups < 1 or input_dim % groups or output_dim % groups:
                raise ValueError(f"groups ({groups}) must divide input_dim ({input_dim}) and output_dim ({output_dim})")
            inner = bottleneck_width(input_dim // groups, output_dim // groups, v["dim_reduction"], v["min_internal"])
            gate_in = KAGNLinear(groups * inner, groups * inner, degree=degree)
        super().__init__(
            input_dim, output_dim, v["kernel_size"], v["stride"], v["padding"], v["dilation"], groups, ndim=rank,
            family="kagn", num_experts=num_experts, k=k, noisy_gating=noisy_gating, pregate=gate_in, degree=degree,
            dim_reduction=v["dim_reduction"], min_internal=v["min_internal"], dropout=v["dropout"],
            dropout_type="noise", norm_layer=v["norm_class"], norm_kwargs=v["norm_kwargs"],
        )  # fmt: skip
        self.input_size, self.output_size, self.inner_dim = input_dim, output_dim, self.inner_channels
        self.num_experts, self.k, self.noisy_gating, self.degree = num_experts, k, noisy_gating, degree

    def forward(  # type: ignore[override]
        self, x: Tensor, train: bool = True, loss_coef: float | None = None
    ) -> tuple[Tensor, Tensor]:
        """``(y, loss_coef · balance loss)``; ``train`` is ignored, as in the reference (``self.training`` decides)."""
        y = super().forward(x)
        return y, _reference_loss(self.moe, self.moe.balance_loss, loss_coef)


# The fixed-rank MoE bottlenecks (the reference's 3-D one orders dim_reduction before the experts).
def _moe_bottleneck(ndim: int) -> Any:
    name = f"MoEBottleNeckKAGNConv{ndim}DLayer"

    def build(v: Values) -> Values:
        rank = {"conv_class": RANKS[ndim].conv, "conv_w_fun": RANKS[ndim].conv_fn, "ndim": ndim}
        norm_class, norm_kwargs = v.pop("norm_layer"), v.pop("norm_kwargs")
        return {**rank, "norm_class": norm_class, **v, **norm_kwargs}

    doc = f"torch-conv-kan's ``{name}``: :class:`MoEBottleNeckKAGNConvND` fixed to {ndim} spatial dimensions."
    return reference_class(name, MoEBottleNeckKAGNConvND, build, module=__name__, doc=doc)


MoEBottleNeckKAGNConv1DLayer = _moe_bottleneck(1)
MoEBottleNeckKAGNConv2DLayer = _moe_bottleneck(2)
MoEBottleNeckKAGNConv3DLayer = _moe_bottleneck(3)

__all__ = exports(globals())
