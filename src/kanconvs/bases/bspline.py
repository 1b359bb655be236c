"""B-splines on a uniform grid by the Cox–de Boor recursion (KAN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Basis, broadcast_to_input, check_positive_int, check_range, register_basis

__all__ = ["BSplineBasis"]


@register_basis("bspline")
class BSplineBasis(Basis):
    """``grid_size + spline_order`` B-splines of order ``spline_order`` on a uniform grid over ``grid_range``.

    Knots ``t_j = r0 + (j - k) h`` for ``j = 0 … G + 2k`` with ``h = (r1 - r0) / G`` extend the grid by ``k`` cells
    on each side, so the splines form a partition of unity on ``grid_range``; outside the knots every spline is 0.
    The knots are a buffer (they follow ``.to()`` and live in the ``state_dict``).
    """

    knots: Tensor

    def __init__(
        self,
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        self.grid_size = check_positive_int("grid_size", grid_size)
        if isinstance(spline_order, bool) or not isinstance(spline_order, int) or spline_order < 0:
            raise ValueError(f"spline_order must be an integer >= 0, got {spline_order!r}")
        self.spline_order = spline_order
        lo, hi = check_range("grid_range", grid_range)
        h = (hi - lo) / grid_size
        j = torch.arange(-spline_order, grid_size + spline_order + 1, dtype=torch.float64)
        self.register_buffer("knots", (lo + j * h).to(device=device, dtype=dtype or torch.get_default_dtype()))
        self.num_functions = grid_size + spline_order

    def evaluate(self, x: Tensor) -> Tensor:
        t = broadcast_to_input(self.knots.to(x.dtype), x)  # (1, 1, G + 2k + 1, 1…)
        x = x.unsqueeze(2)  # (B, C, 1, *S)
        basis = ((x >= t[:, :, :-1]) & (x < t[:, :, 1:])).to(x.dtype)  # order 0: (B, C, G + 2k, *S)
        for p in range(1, self.spline_order + 1):
            left_den = t[:, :, p:-1] - t[:, :, : -(p + 1)]
            right_den = t[:, :, p + 1 :] - t[:, :, 1:-p]
            # Coincident knots make a denominator 0; the matching lower-order spline is then 0 too, so 0/0 -> 0.
            left = (x - t[:, :, : -(p + 1)]) / torch.where(left_den == 0, 1, left_den)
            right = (t[:, :, p + 1 :] - x) / torch.where(right_den == 0, 1, right_den)
            basis = left * basis[:, :, :-1] + right * basis[:, :, 1:]
        return basis

    def extra_repr(self) -> str:
        lo, hi = self.knots[self.spline_order].item(), self.knots[-1 - self.spline_order].item()
        return f"grid_size={self.grid_size}, spline_order={self.spline_order}, grid_range=({lo:g}, {hi:g})"
