"""Bottleneck KA convolution: 1×1 squeeze, a KA convolution in the narrow space, 1×1 expand, plus a base branch."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import is_real
from ._conv_base import ConvBase
from .factories import (
    ActLayer,
    NormLayer,
    create_activation,
    create_dropout,
    create_norm,
    place,
    reset_parameters_of,
)
from .families import get_family

__all__ = [
    "BottleneckKAConv1d",
    "BottleneckKAConv2d",
    "BottleneckKAConv3d",
    "BottleneckKAConvNd",
    "bottleneck_width",
]

Size = int | tuple[int, ...]


def bottleneck_width(in_channels: int, out_channels: int, dim_reduction: float, min_internal: int) -> int:
    """The reference's inner width rule, per group: ``⌊max(c_in, c_out) / r⌋``, replaced by
    ``min(min_internal, c_in, c_out)`` when it falls below ``min_internal``. Kept so that reference checkpoints load;
    note that the replacement can be smaller (``c_in=2, c_out=56, r=4``: 2, not 14)."""
    if not is_real(dim_reduction) or not dim_reduction > 0:
        raise ValueError(f"dim_reduction must be a number > 0, got {dim_reduction!r}")
    if isinstance(min_internal, bool) or not isinstance(min_internal, int) or min_internal < 1:
        raise ValueError(f"min_internal must be an integer >= 1, got {min_internal!r}")
    width = int(max(in_channels / dim_reduction, out_channels / dim_reduction))
    return min(min_internal, in_channels, out_channels) if width < min_internal else width


class BottleneckKAConvNd(ConvBase):
    r"""Bottleneck Kolmogorov–Arnold convolution, for any family and rank.

    Per group: ``y = act(norm(expand(KA(squeeze(x))) + conv(base_act(x))))`` where ``squeeze`` is a 1×1 conv
    ``c_in → m``, ``KA`` is the family's KA convolution ``m → m`` (kernel, stride, padding and dilation of this layer;
    no base branch, norm or activation of its own) and ``expand`` a 1×1 conv ``m → c_out``. The inner width ``m``
    follows :func:`bottleneck_width`. The KA arithmetic shrinks from ``c_in·c_out·F`` to ``m²·F`` per position.

    Args:
        family: the inner KA convolution's family (:func:`kanconvs.list_families`); ``family_kwargs`` go to it
            (``degree=``, ``grid_size=`` …).
        dim_reduction, min_internal: the inner width rule.
        dropout, dropout_type: regulariser on the input of both branches (the reference uses noise injection).
        norm_layer, norm_kwargs, base_activation, activation: as in :class:`~kanconvs.KAConvNd`.

    Examples:
        >>> layer = BottleneckKAConv2d(64, 64, 3, padding=1, family="kagn", degree=3)
        >>> layer(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 64, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size,
        stride: Size = 1,
        padding: Size | str = 0,
        dilation: Size = 1,
        groups: int = 1,
        *,
        ndim: int | None = None,
        family: str = "kagn",
        dim_reduction: float = 4.0,
        min_internal: int = 16,
        dropout: float = 0.0,
        dropout_type: str = "noise",
        norm_layer: NormLayer = "instance",
        norm_kwargs: Mapping[str, Any] | None = None,
        base_activation: ActLayer = "silu",
        activation: ActLayer = "silu",
        activation_l1: float = 0.0,
        activation_l2: float = 0.0,
        weight_l1: float = 0.0,
        weight_l2: float = 0.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **family_kwargs: Any,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, ndim)
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.family_kwargs = dict(family_kwargs)  # what the inner convolution gets (a MoE bottleneck's experts too)
        g = self.groups
        c_in, c_out = in_channels // g, out_channels // g
        self.family = family
        self.inner_channels = bottleneck_width(c_in, c_out, dim_reduction, min_internal)
        m = self.inner_channels
        self.dropout = create_dropout(dropout, self.ndim, dropout_type)
        self.base_activation = create_activation(base_activation, name="base_activation")
        ones = (1,) * self.ndim
        self.base_weight = nn.Parameter(torch.empty(out_channels, c_in, *self.kernel_size, **factory))
        self.squeeze_weight = nn.Parameter(torch.empty(g * m, c_in, *ones, **factory))
        inner: Callable[..., nn.Module] = get_family(family)
        self.inner = inner(
            g * m, g * m, kernel_size, ndim=self.ndim, stride=stride, padding=padding, dilation=dilation,
            groups=g, use_base=False, norm_layer=None, activation=None, device=device, dtype=dtype, **family_kwargs,
        )  # fmt: skip
        self.expand_weight = nn.Parameter(torch.empty(out_channels, m, *ones, **factory))
        self.norm = place(create_norm(norm_layer, out_channels, self.ndim, **dict(norm_kwargs or {})), device, dtype)
        self.act = place(create_activation(activation, out_channels, g), device, dtype)
        self.features_per_channel = int(getattr(self.inner, "features_per_channel", 1))
        self._init_penalties(activation_l1, activation_l2, weight_l1, weight_l2)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for weight in (self.base_weight, self.squeeze_weight, self.expand_weight):
            fan_in = math.prod(weight.shape[1:])
            with torch.no_grad():
                weight.uniform_(-math.sqrt(3.0 / fan_in), math.sqrt(3.0 / fan_in))  # Kaiming-uniform, gain 1
        reset_parameters_of(self.inner, self.norm)

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        x = self.dropout(x)
        base = self.conv(self.base_activation(x), self.base_weight)
        z = self._conv(x, self.squeeze_weight, None, 1, 0, 1, self.groups)
        z = self._conv(self.inner(z), self.expand_weight, None, 1, 0, 1, self.groups)
        return self._record_activation(self.act(self.norm(z + base)))

    def extra_repr(self) -> str:
        return f"{self.conv_repr()}, family={self.family!r}, inner_channels={self.inner_channels}"


class BottleneckKAConv1d(BottleneckKAConvNd):
    _ndim = 1


class BottleneckKAConv2d(BottleneckKAConvNd):
    _ndim = 2


class BottleneckKAConv3d(BottleneckKAConvNd):
    _ndim = 3
