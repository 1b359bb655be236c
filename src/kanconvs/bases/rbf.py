"""Gaussian radial basis functions on a uniform grid (FastKAN)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import is_real
from ..kernels.triton_lang import jit, tl
from ._base import Basis, broadcast_to_input, check_positive_int, check_range, register_basis

__all__ = ["RBFBasis"]


@jit
def rbf_forward(t, out, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, K: tl.constexpr, ORDER: tl.constexpr):
    # p_ptr: the centres c_j; s0 = 1 / δ.
    for j in tl.static_range(K):
        u = (t - tl.load(p_ptr + j)) * s0
        tl.store(out + j * S, tl.exp(-u * u).to(out.dtype.element_ty), mask=mask)


@jit
def rbf_backward(t, g, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, pg, K: tl.constexpr, ORDER: tl.constexpr):
    dt = tl.zeros(t.shape, tl.float32)
    for j in tl.static_range(K):
        u = (t - tl.load(p_ptr + j)) * s0
        gj = tl.load(g + j * S, mask=mask, other=0.0).to(tl.float32)
        dt += gj * (-2.0 * s0) * u * tl.exp(-u * u)
    return dt


@register_basis("rbf")
class RBFBasis(Basis):
    """``φ_j(x) = exp(-((x - c_j) / δ)^2)`` with centres ``c_j`` evenly spaced over ``grid_range``.

    ``δ`` defaults to the centre spacing ``(r1 - r0) / (G - 1)`` (the full range when ``G = 1``).
    """

    grid: Tensor
    precise_buffers = ("grid",)
    triton_forward = rbf_forward
    triton_backward = rbf_backward

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
        self.grid_range = lo, hi = check_range("grid_range", grid_range)
        if denominator is None:
            denominator = (hi - lo) / max(grid_size - 1, 1)
        if not is_real(denominator) or not 0 < denominator < math.inf:
            raise ValueError(f"denominator must be a finite number > 0, got {denominator!r}")
        self.denominator = float(denominator)
        self.register_buffer("grid", torch.empty(grid_size, device=device, dtype=dtype))
        self.num_functions = grid_size
        self.reset_parameters()

    def reset_parameters(self, fan_in: int = 1) -> None:
        """Rebuild the centres (derived, but a meta-device module's ``to_empty()`` leaves them undefined)."""
        with torch.no_grad():
            self.grid.copy_(torch.linspace(*self.grid_range, self.grid_size, dtype=self.grid.dtype))

    def evaluate(self, x: Tensor) -> Tensor:
        centres = broadcast_to_input(self.grid.to(x.dtype), x)
        return torch.exp(-(((x.unsqueeze(2) - centres) / self.denominator) ** 2))

    def extra_repr(self) -> str:
        return f"grid_size={self.grid_size}, denominator={self.denominator:g}"

    # ---------------------------------------------------------------------------------------- fused pass
    def fused_tensors(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        return self.grid, None

    def fused_scalars(self) -> tuple[float, float, float, int]:
        return 1.0 / self.denominator, 0.0, 0.0, 0

    def fused_key(self) -> tuple[object, ...] | None:
        return (self.grid_size, self.denominator)

    def _scaled_offsets(self, t: Tensor, grid: Tensor) -> Tensor:
        """``u = (t - c_j) / δ`` as ``(B, C, K, *S)``."""
        return (t.unsqueeze(2) - broadcast_to_input(grid.to(t.dtype), t)) * (1.0 / self.denominator)

    def fused_values(self, t: Tensor, p: Tensor | None, q: Tensor | None) -> Tensor | list[Tensor]:
        assert p is not None
        u = self._scaled_offsets(t, p)
        return torch.exp(-u * u)

    def fused_backward(
        self, t: Tensor, grad: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        assert p is not None
        u = self._scaled_offsets(t, p)
        slope = torch.exp(-u * u) * u * grad  # g · u · φ
        return slope.sum(2) * (-2.0 / self.denominator), None, None
