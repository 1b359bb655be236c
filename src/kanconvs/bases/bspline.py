"""B-splines on a uniform grid by the Cox–de Boor recursion (KAN)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._base import Basis, broadcast_to_input, check_positive_int, check_range, register_basis

__all__ = ["BSplineBasis"]


def _safe(den: Tensor) -> Tensor:
    # Coincident knots make a denominator 0; the matching lower-order spline is then 0 too, so 0/0 -> 0.
    return torch.where(den == 0, 1, den)


def _cox_de_boor(x: Tensor, t: Tensor, order: int) -> Tensor:
    """Splines of ``order`` at ``x`` (B, C, 1, *S) for knots ``t`` (1, 1, n, 1…): (B, C, n - 1 - order, *S)."""
    basis = ((x >= t[:, :, :-1]) & (x < t[:, :, 1:])).to(x.dtype)  # order 0
    for p in range(1, order + 1):
        left = (x - t[:, :, : -(p + 1)]) / _safe(t[:, :, p:-1] - t[:, :, : -(p + 1)])
        right = (t[:, :, p + 1 :] - x) / _safe(t[:, :, p + 1 :] - t[:, :, 1:-p])
        basis = left * basis[:, :, :-1] + right * basis[:, :, 1:]
    return basis


class _BSpline(torch.autograd.Function):
    """Cox–de Boor with an analytic backward: only ``x`` is saved, not the recursion's intermediates.

    ``d/dx B_{j,k} = k B_{j,k-1} / (t_{j+k} - t_j) - k B_{j+1,k-1} / (t_{j+k+1} - t_{j+1})``.
    """

    generate_vmap_rule = True  # MoE experts evaluate bases under torch.vmap

    @staticmethod
    def forward(x: Tensor, knots: Tensor, order: int) -> Tensor:
        return _cox_de_boor(x.unsqueeze(2), knots, order)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Tensor, Tensor, int], output: Tensor) -> None:
        x, knots, order = inputs
        ctx.save_for_backward(x, knots)
        ctx.order = order

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        x, t = ctx.saved_tensors
        k = ctx.order
        if not ctx.needs_input_grad[0]:
            return None, None, None
        if k == 0:  # piecewise constant
            return torch.zeros_like(x), None, None
        lower = _cox_de_boor(x.unsqueeze(2), t, k - 1)  # (B, C, G + k + 1, *S)
        left = k / _safe(t[:, :, k:-1] - t[:, :, : -(k + 1)])
        right = k / _safe(t[:, :, k + 1 :] - t[:, :, 1:-k])
        slope = lower[:, :, :-1] * left - lower[:, :, 1:] * right
        return (grad * slope).sum(2), None, None


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
        knots = broadcast_to_input(self.knots.to(x.dtype), x)  # (1, 1, G + 2k + 1, 1…)
        return _BSpline.apply(x, knots, self.spline_order)

    def extra_repr(self) -> str:
        lo, hi = self.knots[self.spline_order].item(), self.knots[-1 - self.spline_order].item()
        return f"grid_size={self.grid_size}, spline_order={self.spline_order}, grid_range=({lo:g}, {hi:g})"
