"""Jacobi polynomials P_n^(α, β) (KAJN)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._checks import is_real
from ._base import register_basis
from ._recurrence import RecurrenceBasis

__all__ = ["JacobiBasis"]


@register_basis("jacobi")
class JacobiBasis(RecurrenceBasis):
    """Jacobi polynomials ``P_n^(α, β)`` on [-1, 1] by their three-term recurrence.

    ``P_0 = 1``, ``P_1 = ((α - β) + (α + β + 2) x) / 2`` and for ``n >= 2``
    ``P_n = (A_n x + B_n) P_{n-1} - C_n P_{n-2}`` with the standard coefficients. α = β = 0 gives Legendre,
    α = β = -1/2 Chebyshev (up to scale); the reference conv layers use α = β = 1.
    """

    def __init__(
        self,
        degree: int = 3,
        alpha: float = 1.0,
        beta: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        for name, value in (("alpha", alpha), ("beta", beta)):
            if not is_real(value) or not -1 < value < math.inf:
                raise ValueError(f"{name} must be a finite number > -1, got {value!r}")
        self.alpha = float(alpha)  # set first: the recurrence table is built from them
        self.beta = float(beta)
        super().__init__(degree, device=device)
        # max |P_D| on [-1, 1] is C(D + q, D) with q = max(alpha, beta, -1/2) (at an end point): it must fit float32.
        q = max(self.alpha, self.beta, -0.5)
        log10_peak = (math.lgamma(self.degree + q + 1) - math.lgamma(q + 1) - math.lgamma(self.degree + 1)) / math.log(
            10
        )
        if log10_peak > 30:
            raise ValueError(
                f"degree={self.degree} with alpha={alpha!r}, beta={beta!r}: the Jacobi polynomials reach "
                f"1e{log10_peak:.0f} on [-1, 1], beyond float32; lower the degree or alpha/beta"
            )

    def coefficients(self, n: int) -> tuple[float, float, float]:
        a, b = self.alpha, self.beta
        if n == 1:
            return (a + b + 2) / 2, (a - b) / 2, 0.0
        s = 2 * n + a + b
        return (
            s * (s - 1) / (2 * n * (n + a + b)),
            (s - 1) * (a * a - b * b) / (2 * n * (n + a + b) * (s - 2)),
            (n + a - 1) * (n + b - 1) * s / (n * (n + a + b) * (s - 2)),
        )

    def evaluate(self, x: Tensor) -> list[Tensor]:
        a, b = self.alpha, self.beta
        p = [torch.ones_like(x), ((a - b) + (a + b + 2) * x) / 2]
        for n in range(2, self.degree + 1):
            s = 2 * n + a + b
            coef_a = s * (s - 1) / (2 * n * (n + a + b))
            coef_b = (s - 1) * (a * a - b * b) / (2 * n * (n + a + b) * (s - 2))
            coef_c = (n + a - 1) * (n + b - 1) * s / (n * (n + a + b) * (s - 2))
            p.append((coef_a * x + coef_b) * p[n - 1] - coef_c * p[n - 2])
        return p[: self.num_functions]

    def extra_repr(self) -> str:
        return f"degree={self.degree}, alpha={self.alpha}, beta={self.beta}"
