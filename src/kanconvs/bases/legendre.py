"""Legendre polynomials P_0 … P_D (KALN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import register_basis
from ._recurrence import RecurrenceBasis

__all__ = ["LegendreBasis"]


@register_basis("legendre")
class LegendreBasis(RecurrenceBasis):
    """Legendre polynomials on [-1, 1] by Bonnet's recurrence.

    ``P_0 = 1``, ``P_1 = x``, ``P_{n+1} = ((2n + 1) x P_n - n P_{n-1}) / (n + 1)``.
    """

    def coefficients(self, n: int) -> tuple[float, float, float]:
        return (2 * n - 1) / n, 0.0, (n - 1) / n

    def evaluate(self, x: Tensor) -> list[Tensor]:
        p = [torch.ones_like(x), x]
        for n in range(1, self.degree):
            p.append(((2 * n + 1) * x * p[n] - n * p[n - 1]) / (n + 1))
        return p[: self.num_functions]
