"""How an RKAN branch's residual ``r`` joins the stage output ``o``: one small module per mechanism, built only when
used (so every parameter takes part in every forward pass: DDP needs no ``find_unused_parameters``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, TypeVar

import torch
from torch import Tensor, nn

from .._registry import Registry

__all__ = ["Aggregation", "create_mechanism", "get_mechanism", "list_mechanisms", "register_mechanism"]

_MECHANISMS: Registry[type[Aggregation]] = Registry("mechanism")
A = TypeVar("A", bound="type[Aggregation]")


def register_mechanism(name: str) -> Callable[[A], A]:
    """Class decorator adding an :class:`Aggregation` subclass under ``name``."""

    def decorator(cls: A) -> A:
        _MECHANISMS.add(name, cls)
        cls.name = name
        return cls

    return decorator


def list_mechanisms() -> list[str]:
    """Names of the aggregation mechanisms, in registration order."""
    return _MECHANISMS.names()


def get_mechanism(name: str) -> type[Aggregation]:
    """The :class:`Aggregation` class registered as ``name`` (``ValueError`` listing the names if unknown)."""
    return _MECHANISMS.get(name)


def create_mechanism(name: str, channels: int, stage: int) -> Aggregation:
    """Build mechanism ``name`` for a stage output of ``channels`` channels (``stage``: 1-based stage number).

    Examples:
        >>> agg = create_mechanism("gating", 8, stage=4)
        >>> agg(torch.ones(1, 8, 2, 2), torch.zeros(1, 8, 2, 2)).shape
        torch.Size([1, 8, 2, 2])
    """
    return _MECHANISMS.get(name)(channels, stage)


def _hidden(channels: int, reduction: int = 16) -> int:
    return max(1, channels // reduction)


class Aggregation(nn.Module):
    """``forward(o, r)`` combines the stage output ``o`` with the RKAN residual ``r`` (same shape)."""

    name: ClassVar[str]
    #: ``forward(o, 0) == o`` exactly (after :meth:`zero_init_`), so a zero-initialised branch is a no-op.
    identity_at_zero: ClassVar[bool] = True

    def __init__(self, channels: int, stage: int) -> None:
        super().__init__()
        self.channels, self.stage = channels, stage

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        raise NotImplementedError

    def zero_init_(self) -> None:
        """Initialise so that ``forward(o, 0) == o`` where the mechanism allows it (see ``identity_at_zero``)."""

    def extra_repr(self) -> str:
        return f"channels={self.channels}"


@register_mechanism("addition")
class Addition(Aggregation):
    """``o + r``."""

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        return o + r


@register_mechanism("gating")
class Gating(Aggregation):
    """``o·g + r·(1 − g)`` with ``g = σ(conv1×1(r))``."""

    identity_at_zero = False

    def __init__(self, channels: int, stage: int) -> None:
        super().__init__(channels, stage)
        self.gate = nn.Conv2d(channels, channels, 1)

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        g = torch.sigmoid(self.gate(r))
        return o * g + r * (1 - g)


class _SqueezeExcite(nn.Module):
    """GAP → 1×1 (C → C/16, no bias) → ReLU → 1×1 (C/16 → C, no bias) → sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, _hidden(channels), 1, bias=False)
        self.fc2 = nn.Conv2d(_hidden(channels), channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


@register_mechanism("se")
class SqueezeExcite(Aggregation):
    """``o + r·SE(r)`` (the newest reference form)."""

    def __init__(self, channels: int, stage: int) -> None:
        super().__init__(channels, stage)
        self.se = _SqueezeExcite(channels)

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        return o + r * self.se(r)


@register_mechanism("film")
class FiLM(Aggregation):
    """``o·(1 + γ(r)) + β(r)``, ``γ``/``β`` 1×1 convolutions (stored as one conv with ``2C`` outputs)."""

    def __init__(self, channels: int, stage: int) -> None:
        super().__init__(channels, stage)
        self.film = nn.Conv2d(channels, 2 * channels, 1)

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        gamma, beta = self.film(r).chunk(2, dim=1)
        return o * (1 + gamma) + beta

    def zero_init_(self) -> None:
        if self.film.bias is not None:
            nn.init.zeros_(self.film.bias)


@register_mechanism("attention")
class Attention(Aggregation):
    """``o·a₀ + r·a₁`` with ``[a₀, a₁] = softmax(conv1×1([o, r]))`` over two maps."""

    identity_at_zero = False

    def __init__(self, channels: int, stage: int) -> None:
        super().__init__(channels, stage)
        self.attn = nn.Conv2d(2 * channels, 2, 1)

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        a = torch.softmax(self.attn(torch.cat([o, r], dim=1)), dim=1)
        return o * a[:, :1] + r * a[:, 1:]


@register_mechanism("glu")
class GLU(Aggregation):
    """``o + conv1×1(b·σ(a))`` with ``(a, b)`` the channel halves of ``r`` (no bias, so ``r = 0`` adds nothing)."""

    def __init__(self, channels: int, stage: int) -> None:
        super().__init__(channels, stage)
        if channels % 2:
            raise ValueError(f"mechanism 'glu' needs an even channel count, got {channels}")
        self.proj = nn.Conv2d(channels // 2, channels, 1, bias=False)

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        a, b = r.chunk(2, dim=1)
        return o + self.proj(b * torch.sigmoid(a))


@register_mechanism("cbam")
class CBAM(Aggregation):
    """``o + SA(CA(r))``: channel attention σ(MLP(avg r) + MLP(max r)), then spatial attention σ(conv_k([mean_c,
    max_c])) with k = 7, 7, 5, 3 on stages 1–4."""

    _KERNELS: ClassVar[dict[int, int]] = {1: 7, 2: 7, 3: 5, 4: 3}

    def __init__(self, channels: int, stage: int) -> None:
        super().__init__(channels, stage)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, _hidden(channels), 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(_hidden(channels), channels, 1, bias=False),
        )
        k = self._KERNELS.get(stage, 3)
        self.spatial = nn.Conv2d(2, 1, k, padding=k // 2, bias=False)

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        ca = torch.sigmoid(self.mlp(r.mean((2, 3), keepdim=True)) + self.mlp(r.amax((2, 3), keepdim=True)))
        r = r * ca
        sa = torch.sigmoid(self.spatial(torch.cat([r.mean(1, keepdim=True), r.amax(1, keepdim=True)], dim=1)))
        return o + r * sa


@register_mechanism("mult_sigmoid")
class MultSigmoid(Aggregation):
    """``o·(1 + σ(r))``."""

    identity_at_zero = False

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        return o * (1 + torch.sigmoid(r))


@register_mechanism("tanh")
class Tanh(Aggregation):
    """``o + tanh(r)·o``."""

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        return o + torch.tanh(r) * o


@register_mechanism("sigmoid")
class Sigmoid(Aggregation):
    """``o + σ(r)·o``."""

    identity_at_zero = False

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        return o + torch.sigmoid(r) * o


@register_mechanism("relu")
class ReLU(Aggregation):
    """``o + ReLU(r)``."""

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        return o + torch.relu(r)


@register_mechanism("exp")
class Exp(Aggregation):
    """``o·exp(tanh(r))``."""

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        return o * torch.exp(torch.tanh(r))


@register_mechanism("sig_tanh")
class SigTanh(Aggregation):
    """``o + σ(r)·tanh(r)·o``."""

    def forward(self, o: Tensor, r: Tensor) -> Tensor:
        return o + torch.sigmoid(r) * torch.tanh(r) * o
