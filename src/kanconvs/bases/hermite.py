"""Physicists' Hermite polynomials H_0 … H_D (used by RKAN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import DegreeBasis, register_basis

__all__ = ["HermiteBasis"]


@register_basis("hermite")
class HermiteBasis(DegreeBasis):
    """Physicists' Hermite polynomials: ``H_0 = 1``, ``H_1 = 2x``, ``H_{n+1} = 2x H_n - 2n H_{n-1}``."""

    def evaluate(self, x: Tensor) -> list[Tensor]:
        h = [torch.ones_like(x), 2 * x]
        for n in range(1, self.degree):
            h.append(2 * x * h[n] - 2 * n * h[n - 1])
        return h[: self.num_functions]
