"""Physicists' Hermite polynomials H_0 … H_D (used by RKAN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Basis, check_degree, register_basis

__all__ = ["HermiteBasis"]


@register_basis("hermite")
class HermiteBasis(Basis):
    """Physicists' Hermite polynomials: ``H_0 = 1``, ``H_1 = 2x``, ``H_{n+1} = 2x H_n - 2n H_{n-1}``."""

    def __init__(
        self, degree: int = 3, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> None:
        super().__init__()
        self.degree = check_degree(degree)
        self.num_functions = degree + 1

    def evaluate(self, x: Tensor) -> list[Tensor]:
        h = [torch.ones_like(x), 2 * x]
        for n in range(1, self.degree):
            h.append(2 * x * h[n] - 2 * n * h[n - 1])
        return h[: self.num_functions]

    def extra_repr(self) -> str:
        return f"degree={self.degree}"
