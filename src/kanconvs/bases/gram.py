"""Gram polynomials with learnable recurrence coefficients (KAGN)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._base import DegreeBasis, register_basis

__all__ = ["GramBasis", "gram_beta_scale", "gram_functions"]


def gram_beta_scale(degree: int) -> list[float]:
    """Constant multipliers of ``w_{i-1}`` in ``β_i`` for ``i = 2 … degree`` (Python floats: exact in any dtype)."""
    return [(2 * i - 1) * (i - 1) ** 2 * (4 * (i - 1) ** 2 - 1) / i**2 for i in range(2, degree + 1)]


def gram_functions(x: Tensor, degree: int, weights: Tensor, activation: nn.Module) -> list[Tensor]:
    """``activation(p_0 … p_degree)`` of ``x`` with recurrence coefficients ``weights`` (degree i uses w_{i-1})."""
    p = [torch.ones_like(x), x]
    w = weights.to(x.dtype)
    for i, scale in enumerate(gram_beta_scale(degree), start=2):
        p.append(x * p[i - 1] - (w[i - 1] * scale) * p[i - 2])
    return [activation(q) for q in p[: degree + 1]]


@register_basis("gram")
class GramBasis(DegreeBasis):
    """Gram-style polynomials with a learnable three-term recurrence, followed by an activation.

    ``p_0 = 1``, ``p_1 = t``, ``p_i = t p_{i-1} - β_i p_{i-2}`` with
    ``β_i = w_{i-1} (2i - 1)(i - 1)^2 (4(i - 1)^2 - 1) / i^2`` and learnable ``w`` (``degree + 1`` entries, as in the
    reference, whose first and last entries do not enter the recurrence). The activation (SiLU by default, the
    reference's choice) is applied to every function, ``p_0`` included.
    """

    def __init__(
        self,
        degree: int = 3,
        activation: nn.Module | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(degree)
        self.beta_weights = nn.Parameter(torch.zeros(degree + 1, device=device, dtype=dtype))
        self.activation = nn.SiLU() if activation is None else activation
        self.beta_scale = gram_beta_scale(degree)
        self.reset_parameters()

    def reset_parameters(self, fan_in: int = 1) -> None:
        # The reference's choice: N(0, σ) with σ = 1 / (fan_in (D + 1)).
        nn.init.normal_(self.beta_weights, mean=0.0, std=1.0 / (fan_in * (self.degree + 1)))

    def evaluate(self, x: Tensor) -> list[Tensor]:
        return gram_functions(x, self.degree, self.beta_weights, self.activation)

    def extra_repr(self) -> str:
        return f"degree={self.degree}"
