"""The smallest input a model accepts, found by running it on the meta device (no memory, no arithmetic)."""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["min_input_size"]


def _accepts(model: nn.Module, in_channels: int, size: int) -> bool:
    try:
        model(torch.empty(2, in_channels, size, size, device="meta"))
    except (ValueError, RuntimeError):  # InstanceNorm over one element, a kernel larger than the map, …
        return False
    return True


@torch.no_grad()
def min_input_size(model: nn.Module, in_channels: int, limit: int = 4096) -> int | None:
    """The smallest square ``H = W`` for which ``model`` runs on a batch of 2 (``None`` if none up to ``limit``).

    Models that downsample several times before an instance norm need inputs large enough to keep more than one
    element per map (``simple_kagn_4``: 5×5; ``u2kanet_small``: 33×33).

    Examples:
        >>> from kanconvs.models import create_model
        >>> min_input_size(create_model("simple_kagn_4", in_channels=1, num_classes=10), 1)
        5
    """
    probe = copy.deepcopy(model).to("meta").eval()
    high = 1
    while not _accepts(probe, in_channels, high):
        if high >= limit:
            return None
        high = min(2 * high, limit)
    low = high // 2  # rejected (or 0); sizes in (low, high] are searched assuming larger inputs keep working
    while high - low > 1:
        mid = (low + high) // 2
        if _accepts(probe, in_channels, mid):
            high = mid
        else:
            low = mid
    return high
