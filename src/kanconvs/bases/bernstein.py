"""Bernstein polynomials b_{j,D} (KABN)."""

from __future__ import annotations

from math import comb

import torch
from torch import Tensor

from ._base import DegreeBasis, register_basis

__all__ = ["BernsteinBasis"]


@register_basis("bernstein")
class BernsteinBasis(DegreeBasis):
    """Bernstein basis ``b_{j,D}(t) = C(D, j) t^j (1 - t)^(D - j)`` on [0, 1], ``j = 0 … D``.

    Powers are built by repeated multiplication rather than ``pow`` so that the gradient stays finite at
    ``t = 0`` and ``t = 1`` (``d/dt t^0`` through ``pow`` is ``0 * t^-1``).
    """

    def evaluate(self, x: Tensor) -> list[Tensor]:
        d = self.degree
        ones = torch.ones_like(x)
        up, down = [ones], [ones]  # t^j and (1 - t)^j
        s = 1 - x
        for _ in range(d):
            up.append(up[-1] * x)
            down.append(down[-1] * s)
        return [comb(d, j) * up[j] * down[d - j] for j in range(d + 1)]
