"""Chebyshev polynomials of the first kind T_0 … T_D (KACN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Basis, check_degree, register_basis

__all__ = ["ChebyshevBasis"]


@register_basis("chebyshev")
class ChebyshevBasis(Basis):
    """Chebyshev polynomials ``T_n`` by the three-term recurrence ``T_{n+1} = 2x T_n - T_{n-1}``.

    Equal to ``cos(n arccos x)`` on [-1, 1] but with no arccos, whose infinite slope at ±1 gives NaN gradients once
    the input saturates (the reference's half-precision failure).
    """

    def __init__(
        self, degree: int = 3, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.degree = check_degree(degree)
        self.num_functions = degree + 1

    def evaluate(self, x: Tensor) -> list[Tensor]:
        t = [torch.ones_like(x), x]
        for n in range(1, self.degree):
            t.append(2 * x * t[n] - t[n - 1])
        return t[: self.num_functions]

    def extra_repr(self) -> str:
        return f"degree={self.degree}"
