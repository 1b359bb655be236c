"""The one table of per-rank PyTorch classes: what a 1-, 2- or 3-dimensional layer or model builds from.

Everything in the library that depends on the spatial rank looks it up here (``rank(ndim).conv`` …) instead of
keeping its own ``{1: nn.Conv1d, 2: …}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn.functional as F
from torch import nn
from torch.ao.nn import quantized as nnq

__all__ = ["RANKS", "Rank", "rank"]


@dataclass(frozen=True)
class Rank:
    """The classes and functions of one spatial rank."""

    ndim: int
    conv: type[nn.Module]
    conv_fn: Callable[..., Any]
    quantized_conv: Any  # torch.ao.nn.quantized.ConvNd (its set_weight_bias is not typed on nn.Module)
    batch_norm: type[nn.Module]
    instance_norm: type[nn.Module]
    dropout: type[nn.Module]
    max_pool: type[nn.Module]
    avg_pool: type[nn.Module]
    adaptive_avg_pool: type[nn.Module]


RANKS: dict[int, Rank] = {
    1: Rank(1, nn.Conv1d, F.conv1d, nnq.Conv1d, nn.BatchNorm1d, nn.InstanceNorm1d, nn.Dropout1d, nn.MaxPool1d,
            nn.AvgPool1d, nn.AdaptiveAvgPool1d),
    2: Rank(2, nn.Conv2d, F.conv2d, nnq.Conv2d, nn.BatchNorm2d, nn.InstanceNorm2d, nn.Dropout2d, nn.MaxPool2d,
            nn.AvgPool2d, nn.AdaptiveAvgPool2d),
    3: Rank(3, nn.Conv3d, F.conv3d, nnq.Conv3d, nn.BatchNorm3d, nn.InstanceNorm3d, nn.Dropout3d, nn.MaxPool3d,
            nn.AvgPool3d, nn.AdaptiveAvgPool3d),
}  # fmt: skip


def rank(ndim: int) -> Rank:
    """The classes of spatial rank ``ndim`` (1, 2 or 3); a ``ValueError`` naming the value otherwise."""
    if isinstance(ndim, bool) or not isinstance(ndim, int) or ndim not in RANKS:
        raise ValueError(f"ndim must be 1, 2 or 3, got {ndim!r}")
    return RANKS[ndim]
