"""Regularisers: noise injection, activation and weight penalties, and the auxiliary-loss hook.

Every module that contributes a loss term (MoE load balancing, L1/L2 penalties) defines
``regularization_loss() -> Tensor``; :func:`regularization_loss` sums them over a model, so a training loop needs
one line: ``loss = task_loss + regularization_loss(model)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import is_real

__all__ = ["MultiplicativeNoiseInjection", "NoiseInjection", "PenaltyMixin", "regularization_loss"]


def regularization_loss(model: nn.Module) -> Tensor:
    """Sum of ``regularization_loss()`` over every sub-module (including ``model``) that defines one.

    Examples:
        >>> from kanconvs import KAGNConv2d
        >>> layer = KAGNConv2d(4, 8, 3, weight_l2=1e-4)
        >>> regularization_loss(layer).item() > 0
        True
    """
    hooks = [getattr(m, "regularization_loss", None) for m in model.modules()]
    terms: list[Tensor] = [t for hook in hooks if callable(hook) and (t := hook()) is not None]
    if not terms:
        param = next(model.parameters(), None)
        return torch.zeros((), device=param.device if param is not None else None)
    return torch.stack([torch.as_tensor(t, dtype=torch.float32, device=terms[0].device) for t in terms]).sum()


def _channel_std(x: Tensor) -> Tensor:
    """Per-channel standard deviation over every other axis (batch and positions), detached: a noise scale; 0 for a
    channel with a single value (the unbiased estimate would be NaN and turn the whole output into NaN)."""
    dims = tuple(d for d in range(x.dim()) if d != 1)
    if x.numel() <= x.shape[1]:  # one value per channel (batch 1 and a 1×1 map, or an MoE expert's sample)
        return x.new_zeros((1, x.shape[1], *([1] * (x.dim() - 2))))
    return x.detach().float().std(dim=dims, keepdim=True).to(x.dtype)


class NoiseInjection(nn.Module):
    """Additive noise (training only): ``x + α · m · ε · σ_c`` with ``m ~ Bernoulli(p)`` per element,
    ``ε ~ N(0, 1)`` and ``σ_c`` the channel's standard deviation over batch and positions.

    The reference's regulariser of choice for KAGN networks (its best CIFAR-100 runs use it at p = 0.05 on the
    layer input).

    Examples:
        >>> noise = NoiseInjection(p=0.5).train()
        >>> noise(torch.ones(2, 3, 4)).shape
        torch.Size([2, 3, 4])
    """

    def __init__(self, p: float = 0.0, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p!r}")
        self.p, self.alpha = p, alpha

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.rand_like(x) < self.p
        return x + self.alpha * mask * torch.randn_like(x) * _channel_std(x)

    def extra_repr(self) -> str:
        return f"p={self.p}, alpha={self.alpha}"


class MultiplicativeNoiseInjection(NoiseInjection):
    """Multiplicative and additive noise (training only), as the reference defines it:
    ``x + m₁ · x · (1 + β ε₁) + α · m₂ · ε₂ · σ_c`` with independent Bernoulli(p) masks ``m₁``, ``m₂``.
    """

    def __init__(self, p: float = 0.05, alpha: float = 0.05, beta: float = 0.01) -> None:
        super().__init__(p, alpha)
        self.beta = beta

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        scaled = (torch.rand_like(x) < self.p) * x * (1 + self.beta * torch.randn_like(x))
        return super().forward(x) + scaled

    def extra_repr(self) -> str:
        return f"p={self.p}, alpha={self.alpha}, beta={self.beta}"


class PenaltyMixin:
    """L1/L2 penalties on a layer's output activations and on its weights, reported by ``regularization_loss()``.

    Activation terms follow the reference's definitions, per layer: L1 = mean over channels and positions of
    ``Σ_batch |a|``, L2 = mean over channels and positions of ``sqrt(Σ_batch a²)``, each with its own coefficient
    (the reference multiplied both by the L2 one). Weight terms are ``Σ|w|`` and ``Σw²`` over the layer's
    multi-dimensional weights (not norms, biases or basis parameters). Activation terms are recorded in training
    forward passes only.
    """

    activation_l1: float
    activation_l2: float
    weight_l1: float
    weight_l2: float
    _activation_penalty: Tensor | None

    def _init_penalties(self, activation_l1: float, activation_l2: float, weight_l1: float, weight_l2: float) -> None:
        for name, value in (
            ("activation_l1", activation_l1),
            ("activation_l2", activation_l2),
            ("weight_l1", weight_l1),
            ("weight_l2", weight_l2),
        ):
            if not is_real(value) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
            setattr(self, name, float(value))
        self._activation_penalty = None

    def _record_activation(self, y: Tensor) -> Tensor:
        if (self.activation_l1 or self.activation_l2) and self.training:  # type: ignore[attr-defined]
            y32 = y.float()
            term = y32.new_zeros(())
            if self.activation_l1:
                term = term + self.activation_l1 * y32.abs().sum(0).mean()
            if self.activation_l2:  # eps keeps the gradient of sqrt finite where a position is all zeros
                term = term + self.activation_l2 * (y32.square().sum(0) + 1e-12).sqrt().mean()
            self._activation_penalty = term
        return y

    def __getstate__(self) -> dict[str, Any]:
        # The recorded term is a live autograd tensor: copies and pickles start without it.
        state = self.__dict__.copy()
        state["_activation_penalty"] = None
        return state

    def regularization_loss(self) -> Tensor | None:
        terms: list[Tensor] = []
        if self._activation_penalty is not None:
            terms.append(self._activation_penalty)
        if self.weight_l1 or self.weight_l2:
            for param in self._penalised_weights():
                if self.weight_l1:
                    terms.append(self.weight_l1 * param.abs().sum())
                if self.weight_l2:
                    terms.append(self.weight_l2 * param.square().sum())
        return torch.stack([t.float() for t in terms]).sum() if terms else None

    def _penalised_weights(self) -> list[Tensor]:
        module: Any = self
        return [
            p for name, p in module.named_parameters() if p.dim() > 1 and "norm" not in name and "basis." not in name
        ]
