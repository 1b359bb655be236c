"""Gram polynomials with learnable recurrence coefficients (KAGN)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import DegreeBasis, register_basis
from ._recurrence import (
    GRAD_GAMMA,
    POST_SILU,
    recurrence_backward,
    recurrence_backward_torch,
    recurrence_forward,
    recurrence_values,
)

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

    In the fused pass (:mod:`kanconvs.bases._recurrence`) this is the recurrence with ``α = 1``, ``β = 0`` and
    ``γ_i = β_i``, whose gradient flows back to ``w``.
    """

    # p_i grows like Π sqrt(β_i), β_i ≈ 8 w i³: with the reference's initialisation (σ = 1 / (fan_in (D + 1))) the
    # functions overflow float32 above degree 26 for a layer with a single input (above 42 with 36 inputs).
    max_degree = (26, "the unnormalised recurrence overflows float32 above it at initialisation for small fan-ins")
    triton_forward = recurrence_forward
    triton_backward = recurrence_backward
    num_partials = 0  # set per instance: degree + 1

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
        self.num_partials = degree + 1  # type: ignore[misc]
        self.reset_parameters()

    def reset_parameters(self, fan_in: int = 1) -> None:
        # The reference's choice: N(0, σ) with σ = 1 / (fan_in (D + 1)).
        nn.init.normal_(self.beta_weights, mean=0.0, std=1.0 / (fan_in * (self.degree + 1)))

    def evaluate(self, x: Tensor) -> list[Tensor]:
        return gram_functions(x, self.degree, self.beta_weights, self.activation)

    def extra_repr(self) -> str:
        return f"degree={self.degree}"

    # ---------------------------------------------------------------------------------------- fused pass
    def _post_silu(self) -> bool:
        return type(self.activation) is nn.SiLU

    def triton_supported(self) -> bool:
        return self._post_silu() or type(self.activation) is nn.Identity

    def fused_tensors(self, x: Tensor) -> tuple[Tensor | None, Tensor | None]:
        if not self.triton_supported():  # the generic path differentiates ``evaluate``, which reads ``w`` itself
            return self.beta_weights, None
        w = self.beta_weights
        dtype = torch.promote_types(w.dtype, torch.float32)
        k = self.degree + 1
        # Rows (α_i, β_i, γ_i) = (1, 0, scale_i · w_{i-1}) of the fused recurrence.
        base = self.constant_table("base", [[0.0, 0.0]] + [[1.0, 0.0]] * (k - 1), w.device, dtype)
        scale = self.constant_table("scale", [0.0, 0.0, *self.beta_scale][:k], w.device, dtype)
        gamma = F.pad(w[:-1].to(dtype), (1, 0)) * scale
        return torch.cat([base, gamma.unsqueeze(1)], dim=1), None  # (D + 1, 3)

    def fused_key(self) -> tuple[object, ...] | None:
        return (self.degree, self._post_silu()) if self.triton_supported() else None

    def fused_scalars(self) -> tuple[float, float, float, int]:
        flags = (POST_SILU if self._post_silu() else 0) + (GRAD_GAMMA if self.beta_weights.requires_grad else 0)
        return 0.0, 0.0, 0.0, flags

    def fused_values(self, t: Tensor, p: Tensor | None, q: Tensor | None) -> Tensor | list[Tensor]:
        if not self.triton_supported():
            return super().fused_values(t, p, q)
        assert p is not None
        return recurrence_values(t, self.num_functions, p.to(t.dtype), post_silu=self._post_silu())

    def fused_backward(
        self, t: Tensor, grad: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        if not self.triton_supported():
            return super().fused_backward(t, grad, p, q)
        assert p is not None
        dt, dtable = recurrence_backward_torch(
            t, grad, p.to(t.dtype), post_silu=self._post_silu(), grad_gamma=p.requires_grad
        )
        return dt, None if dtable is None else dtable.to(p.dtype), None

    def reduce_partials(
        self, partials: Tensor, p: Tensor | None, q: Tensor | None
    ) -> tuple[Tensor | None, Tensor | None]:
        if p is None or not p.requires_grad:
            return None, None
        gamma = partials.sum(dim=(0, 1, 2))  # (D + 1,)
        return torch.cat([torch.zeros_like(p[:, :2]), gamma.unsqueeze(1).to(p.dtype)], dim=1), None
