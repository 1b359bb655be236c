"""Bernstein polynomials b_{j,D} (KABN)."""

from __future__ import annotations

from math import comb

import torch
from torch import Tensor

from ..kernels.triton_lang import jit, tl
from ._base import DegreeBasis, register_basis

__all__ = ["BernsteinBasis"]


@jit
def _power(v, N):
    r = tl.full(v.shape, 1.0, tl.float32)
    for _ in tl.static_range(N):
        r = r * v
    return r


@jit
def bernstein_forward(t, out, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, K: tl.constexpr, ORDER: tl.constexpr):
    # p_ptr: the binomials C(D, j).
    u = 1.0 - t
    for j in tl.static_range(K):
        v = tl.load(p_ptr + j) * _power(t, j) * _power(u, K - 1 - j)
        tl.store(out + j * S, v.to(out.dtype.element_ty), mask=mask)


@jit
def bernstein_backward(t, g, S, mask, p_ptr, q_ptr, pc, s0, s1, s2, pg, K: tl.constexpr, ORDER: tl.constexpr):
    # b'_j = C(D, j) (j t^(j-1) (1-t)^(D-j) - (D-j) t^j (1-t)^(D-j-1)).
    u = 1.0 - t
    dt = tl.zeros(t.shape, tl.float32)
    for j in tl.static_range(K):
        slope = tl.zeros(t.shape, tl.float32)
        if j > 0:
            slope += j * _power(t, j - 1) * _power(u, K - 1 - j)
        if K - 1 - j > 0:
            slope -= (K - 1 - j) * _power(t, j) * _power(u, K - 2 - j)
        gj = tl.load(g + j * S, mask=mask, other=0.0).to(tl.float32)
        dt += gj * (tl.load(p_ptr + j) * slope)  # C(D, j)·slope first: bounded by D
    return dt


@register_basis("bernstein")
class BernsteinBasis(DegreeBasis):
    """Bernstein basis ``b_{j,D}(t) = C(D, j) t^j (1 - t)^(D - j)`` on [0, 1], ``j = 0 … D``.

    Powers are built by repeated multiplication rather than ``pow`` so that the gradient stays finite at
    ``t = 0`` and ``t = 1`` (``d/dt t^0`` through ``pow`` is ``0 * t^-1``).
    """

    # Above it C(D, D/2) ≳ 1e29 and t^j (1 - t)^(D - j) ≲ 1e-30 push products and gradients out of float32's range.
    max_degree = (100, "binomials and powers leave float32's normal range above it")
    triton_forward = bernstein_forward
    triton_backward = bernstein_backward

    def evaluate(self, x: Tensor) -> list[Tensor]:
        d = self.degree
        up, down = self._powers(x)
        return [float(comb(d, j)) * up[j] * down[d - j] for j in range(d + 1)]

    def _powers(self, t: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """``t^j`` and ``(1 - t)^j`` for ``j = 0 … D``."""
        ones = torch.ones_like(t)
        up, down = [ones], [ones]
        s = 1 - t
        for _ in range(self.degree):
            up.append(up[-1] * t)
            down.append(down[-1] * s)
        return up, down

    # ---------------------------------------------------------------------------------------- fused pass
    def fused_tensors(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        binomials = [float(comb(self.degree, j)) for j in range(self.degree + 1)]
        return self.constant_table("binomials", binomials, x.device, torch.float32), None

    def fused_key(self) -> tuple[object, ...] | None:
        return (self.degree,)

    def fused_values(self, t: Tensor, p: Tensor | None, q: Tensor | None) -> Tensor | list[Tensor]:
        return self.evaluate(t)

    def fused_backward(
        self, t: Tensor, grad: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        d = self.degree
        up, down = self._powers(t)
        dt = torch.zeros_like(t)
        for j in range(d + 1):
            slope = torch.zeros_like(t)
            if j > 0:
                slope = slope + j * up[j - 1] * down[d - j]
            if d - j > 0:
                slope = slope - (d - j) * up[j] * down[d - j - 1]
            dt = dt + grad[:, :, j] * (float(comb(d, j)) * slope)  # C(D, j)·slope first: bounded by D
        return dt, None, None
