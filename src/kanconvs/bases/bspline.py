"""B-splines on a uniform grid by the Cox–de Boor recursion (KAN)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..kernels.triton_lang import jit, tl
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


def _slope(x: Tensor, t: Tensor, k: int) -> Tensor:
    """``d/dx B_{j,k}`` at ``x`` (B, C, 1, *S).

    ``k B_{j,k-1} / (t_{j+k} - t_j) - k B_{j+1,k-1} / (t_{j+k+1} - t_{j+1})``.
    """
    lower = _cox_de_boor(x, t, k - 1)  # (B, C, G + k + 1, *S)
    left = k / _safe(t[:, :, k:-1] - t[:, :, : -(k + 1)])
    right = k / _safe(t[:, :, k + 1 :] - t[:, :, 1:-k])
    return lower[:, :, :-1] * left - lower[:, :, 1:] * right


# Uniform knots t_j = t_0 + j h make every spline a shifted cardinal B-spline: B_{j,k}(x) = N_k(u - j) with
# u = (x - t_0) / h and N_k(v) = Σ_i c_i (v - i)_+^k on [0, k + 1), c_i = (-1)^i C(k + 1, i) / k! (the table q).
@jit
def _truncated_power_sum(v, q_ptr, N: tl.constexpr, ORDER: tl.constexpr):
    # Σ_i q_i · (v - i)_+^N for i = 0 … ORDER + 1 (N = ORDER for the values, ORDER - 1 for the slopes).
    acc = tl.zeros(v.shape, tl.float32)
    for i in tl.static_range(ORDER + 2):
        d = v - i
        if N == 0:
            term = tl.where(d > 0.0, 1.0, 0.0)
        else:
            d = tl.maximum(d, 0.0)
            term = d
            for _ in tl.static_range(N - 1):
                term = term * d
        acc += tl.load(q_ptr + i) * term
    return acc


@jit
def _grid_position(t, p_ptr):
    """``u = (t - t_0) / h`` on the uniform knots at ``p_ptr``, and ``1 / h``."""
    t0 = tl.load(p_ptr)
    inv_h = 1.0 / (tl.load(p_ptr + 1) - t0)
    return (t - t0) * inv_h, inv_h


@jit
def bspline_forward(t, out, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, K: tl.constexpr, ORDER: tl.constexpr):
    # p_ptr: the knots (uniform); ORDER = k.
    u, _ = _grid_position(t, p_ptr)
    for j in tl.static_range(K):
        v = u - j
        inside = (v >= 0.0) & (v < ORDER + 1)
        if ORDER == 0:
            value = tl.where(inside, 1.0, 0.0)
        else:
            value = tl.where(inside, _truncated_power_sum(v, q_ptr, ORDER, ORDER), 0.0)
        tl.store(out + j * S, value.to(out.dtype.element_ty), mask=mask)


@jit
def bspline_backward(t, g, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, pg, K: tl.constexpr, ORDER: tl.constexpr):
    dt = tl.zeros(t.shape, tl.float32)
    if ORDER > 0:
        u, inv_h = _grid_position(t, p_ptr)
        for j in tl.static_range(K):
            v = u - j
            inside = (v >= 0.0) & (v < ORDER + 1)
            slope = tl.where(inside, _truncated_power_sum(v, q_ptr, ORDER - 1, ORDER), 0.0) * (ORDER * inv_h)
            dt += tl.load(g + j * S, mask=mask, other=0.0).to(tl.float32) * slope
    return dt


class _BSpline(torch.autograd.Function):
    """Cox–de Boor with an analytic backward: only ``x`` is saved, not the recursion's intermediates. The backward is
    made of differentiable ops, so gradient penalties (``create_graph=True``) differentiate it again.

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
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        x, t = ctx.saved_tensors
        k = ctx.order
        if not ctx.needs_input_grad[0]:
            return None, None, None
        if k == 0:  # piecewise constant
            return torch.zeros_like(x), None, None
        return (grad * _slope(x.unsqueeze(2), t, k)).sum(2), None, None


@register_basis("bspline")
class BSplineBasis(Basis):
    """``grid_size + spline_order`` B-splines of order ``spline_order`` on a uniform grid over ``grid_range``.

    Knots ``t_j = r0 + (j - k) h`` for ``j = 0 … G + 2k`` with ``h = (r1 - r0) / G`` extend the grid by ``k`` cells
    on each side, so the splines form a partition of unity on ``grid_range``; outside the knots every spline is 0.
    The knots are a buffer (they follow ``.to()`` and live in the ``state_dict``).
    """

    knots: Tensor
    precise_buffers = ("knots",)
    triton_forward = bspline_forward
    triton_backward = bspline_backward

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
        self.grid_range = check_range("grid_range", grid_range)
        n_knots = grid_size + 2 * spline_order + 1
        self.register_buffer("knots", torch.empty(n_knots, device=device, dtype=dtype or torch.get_default_dtype()))
        self.num_functions = grid_size + spline_order
        self.reset_parameters()

    def reset_parameters(self, fan_in: int = 1) -> None:
        """Rebuild the knots (they are derived, but a meta-device module's ``to_empty()`` leaves them undefined)."""
        (lo, hi), k = self.grid_range, self.spline_order
        j = torch.arange(-k, self.grid_size + k + 1, dtype=torch.float64)
        with torch.no_grad():
            self.knots.copy_(lo + j * ((hi - lo) / self.grid_size))

    def evaluate(self, x: Tensor) -> Tensor:
        knots = broadcast_to_input(self.knots.to(x.dtype), x)  # (1, 1, G + 2k + 1, 1…)
        return _BSpline.apply(x, knots, self.spline_order)

    # ---------------------------------------------------------------------------------------- fused pass
    def fused_tensors(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        k = self.spline_order
        coefficients = [(-1) ** i * math.comb(k + 1, i) / math.factorial(k) for i in range(k + 2)]
        return self.knots, self.constant_table("truncated_powers", coefficients, x.device, torch.float32)

    def fused_scalars(self) -> tuple[float, float, float, int]:
        return 0.0, 0.0, 0.0, self.spline_order

    def fused_key(self) -> tuple[object, ...] | None:
        return (self.grid_size, self.spline_order)

    def fused_values(self, t: Tensor, p: Tensor | None, q: Tensor | None) -> Tensor | list[Tensor]:
        assert p is not None
        return _cox_de_boor(t.unsqueeze(2), broadcast_to_input(p.to(t.dtype), t), self.spline_order)

    def fused_backward(
        self, t: Tensor, grad: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        if self.spline_order == 0:
            return torch.zeros_like(t), None, None
        assert p is not None
        knots = broadcast_to_input(p.to(t.dtype), t)
        return (grad * _slope(t.unsqueeze(2), knots, self.spline_order)).sum(2), None, None

    def extra_repr(self) -> str:
        lo, hi = self.grid_range
        return f"grid_size={self.grid_size}, spline_order={self.spline_order}, grid_range=({lo:g}, {hi:g})"
