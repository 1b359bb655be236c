"""ReLU-KAN bumps with trainable phases (ReLUKAN)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ._base import Basis, broadcast_to_input, check_positive_int, register_basis

__all__ = ["ReLUBasis"]


@register_basis("relu")
class ReLUBasis(Basis):
    """``R_j(x) = (r · relu(x - a_j) · relu(b_j - x))^2`` with ``r = 4 g^2 / (k + 1)^2``.

    Phases start at ``a_j = (j - k) / g`` and ``b_j = a_j + (k + 1) / g`` for ``j = 0 … g + k - 1`` (each bump peaks
    at 1), one row per channel of a group; a layer with several groups shares them across groups, as the reference
    does. They are real tensors (the reference's stride-0 views break optimisers and ``load_state_dict`` on CPU).
    """

    per_channel = True

    def __init__(
        self,
        channels: int,
        grid_size: int = 5,
        order: int = 3,
        train_phases: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        factory: dict[str, Any] = {"device": device, "dtype": dtype}
        self.channels = check_positive_int("channels", channels)
        self.grid_size = check_positive_int("grid_size", grid_size)
        self.order = check_positive_int("order", order)
        self.num_functions = grid_size + order
        self.scale = 4.0 * grid_size**2 / (order + 1) ** 2
        self.phase_low = nn.Parameter(torch.empty(channels, self.num_functions, **factory), requires_grad=train_phases)
        self.phase_high = nn.Parameter(torch.empty(channels, self.num_functions, **factory), requires_grad=train_phases)
        self.reset_parameters()

    def reset_parameters(self, fan_in: int = 1) -> None:
        low = (torch.arange(self.num_functions, dtype=torch.float64) - self.order) / self.grid_size
        with torch.no_grad():
            self.phase_low.copy_(low.expand_as(self.phase_low))
            self.phase_high.copy_((low + (self.order + 1) / self.grid_size).expand_as(self.phase_high))

    def evaluate(self, x: Tensor) -> Tensor:
        repeats = x.shape[1] // self.channels  # groups share the phases
        low = broadcast_to_input(self.phase_low.to(x.dtype).repeat(repeats, 1), x)
        high = broadcast_to_input(self.phase_high.to(x.dtype).repeat(repeats, 1), x)
        x = x.unsqueeze(2)
        return (self.scale * torch.relu(x - low) * torch.relu(high - x)) ** 2

    def extra_repr(self) -> str:
        return f"channels={self.channels}, grid_size={self.grid_size}, order={self.order}"
