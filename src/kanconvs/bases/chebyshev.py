"""Chebyshev polynomials of the first kind T_0 … T_D (KACN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import DegreeBasis, register_basis

__all__ = ["ChebyshevBasis"]


@register_basis("chebyshev")
class ChebyshevBasis(DegreeBasis):
    """Chebyshev polynomials ``T_n`` by the three-term recurrence ``T_{n+1} = 2x T_n - T_{n-1}``.

    Equal to ``cos(n arccos x)`` on [-1, 1] but with no arccos, whose infinite slope at ±1 gives NaN gradients once
    the input saturates (the reference's half-precision failure).
    """

    def evaluate(self, x: Tensor) -> list[Tensor]:
        t = [torch.ones_like(x), x]
        for n in range(1, self.degree):
            t.append(2 * x * t[n] - t[n - 1])
        return t[: self.num_functions]
