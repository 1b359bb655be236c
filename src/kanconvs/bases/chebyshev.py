"""Chebyshev polynomials of the first kind T_0 … T_D (KACN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import register_basis
from ._recurrence import RecurrenceBasis

__all__ = ["ChebyshevBasis"]


@register_basis("chebyshev")
class ChebyshevBasis(RecurrenceBasis):
    """Chebyshev polynomials ``T_n`` by the three-term recurrence ``T_{n+1} = 2x T_n - T_{n-1}``.

    Equal to ``cos(n arccos x)`` on [-1, 1] but with no arccos, whose infinite slope at ±1 gives NaN gradients once
    the input saturates (the reference's half-precision failure).
    """

    def coefficients(self, n: int) -> tuple[float, float, float]:
        return (1.0 if n == 1 else 2.0), 0.0, 1.0

    def evaluate(self, x: Tensor) -> list[Tensor]:
        t = [torch.ones_like(x), x]
        for n in range(1, self.degree):
            t.append(2 * x * t[n] - t[n - 1])
        return t[: self.num_functions]
