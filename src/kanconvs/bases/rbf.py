"""Gaussian radial basis functions on a uniform grid (FastKAN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Basis, broadcast_to_input, check_positive_int, check_range, register_basis

__all__ = ["RBFBasis"]


@register_basis("rbf")
class RBFBasis(Basis):
    """``φ_j(x) = exp(-((x - c_j) / δ)^2)`` with centres ``c_j`` evenly spaced over ``grid_range``.

    ``δ`` defaults to the centre spacing ``(r1 - r0) / (G - 1)`` (the full range when ``G = 1``).
    """

    grid: Tensor

    def __init__(
        self,
        grid_size: int = 8,
        grid_range: tuple[float, float] = (-2.0, 2.0),
        denominator: float | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.grid_size = check_positive_int("grid_size", grid_size)
        lo, hi = check_range("grid_range", grid_range)
        if denominator is None:
            denominator = (hi - lo) / max(grid_size - 1, 1)
        if not denominator > 0:
            raise ValueError(f"denominator must be > 0, got {denominator!r}")
        self.denominator = float(denominator)
        self.register_buffer("grid", torch.linspace(lo, hi, grid_size, device=device, dtype=dtype))
        self.num_functions = grid_size

    def evaluate(self, x: Tensor) -> Tensor:
        centres = broadcast_to_input(self.grid.to(x.dtype), x)
        return torch.exp(-(((x.unsqueeze(2) - centres) / self.denominator) ** 2))

    def extra_repr(self) -> str:
        return f"grid_size={self.grid_size}, denominator={self.denominator:g}"
