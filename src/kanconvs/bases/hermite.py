"""Physicists' Hermite polynomials H_0 … H_D (used by RKAN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import register_basis
from ._recurrence import RecurrenceBasis

__all__ = ["HermiteBasis"]


@register_basis("hermite")
class HermiteBasis(RecurrenceBasis):
    """Physicists' Hermite polynomials: ``H_0 = 1``, ``H_1 = 2x``, ``H_{n+1} = 2x H_n - 2n H_{n-1}``."""

    max_degree = (49, "max |H_50| on [-1, 1] exceeds float32")

    def coefficients(self, n: int) -> tuple[float, float, float]:
        return 2.0, 0.0, 2.0 * (n - 1)

    def evaluate(self, x: Tensor) -> list[Tensor]:
        h = [torch.ones_like(x), 2 * x]
        for n in range(1, self.degree):
            h.append(2 * x * h[n] - 2 * n * h[n - 1])
        return h[: self.num_functions]
