"""Multi-layer perceptrons of Kolmogorov–Arnold linear layers (the reference's ``kans`` MLPs, cleaned up)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import is_real
from ..layers.kan_linear import get_linear_family

__all__ = ["KANMLP", "create_kan_mlp"]

LayerFactory = Callable[[int, int], nn.Module]


def _check_widths(layers_hidden: Sequence[int]) -> list[int]:
    if isinstance(layers_hidden, (str, bytes)) or not isinstance(layers_hidden, Sequence):
        raise ValueError(f"layers_hidden must be a sequence of positive integers, got {layers_hidden!r}")
    widths = list(layers_hidden)
    if len(widths) < 2 or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ValueError(
            f"layers_hidden must hold at least two positive integers (input and output widths), got {layers_hidden!r}"
        )
    return widths


class KANMLP(nn.Module):
    """A stack of KA linear layers: ``[Dropout] → layer → Dropout → layer … → layer``.

    ``self.layers`` is an ``nn.ModuleList`` laid out exactly as the reference's MLPs: a leading ``nn.Dropout`` when
    ``dropout > 0`` and ``first_dropout``, and an ``nn.Dropout`` after every layer but the last. Layer ``i`` thus
    sits at index ``i``, ``2i`` or ``2i + 1``, and reference checkpoints keep their indices.

    Every layer of the reference families ends with its norm and activation, so the network's outputs are
    normalised and activated (SiLU logits are bounded below by -0.28). ``plain_head=True`` drops the output norm and
    activation of the last layer, which then gives unbounded logits.

    Args:
        layers_hidden: widths ``[in, hidden…, out]``.
        family: a registered linear family (see :func:`kanconvs.list_linear_families`) or a callable
            ``f(in_features, out_features) -> nn.Module``.
        dropout: probability of the ``nn.Dropout`` between layers.
        first_dropout: also apply dropout to the input.
        plain_head: build the last layer without its output norm and activation (registered families only).
        l1_decay: weight of the L1 penalty on the parameters of every layer but the last, returned by
            :meth:`regularization_loss` (add it to the loss).
        **layer_kwargs: keyword arguments of every layer (``degree=``, ``grid_size=`` …).

    Examples:
        >>> model = KANMLP([784, 64, 10], "kagn", degree=3, dropout=0.1, plain_head=True)
        >>> model(torch.randn(2, 784)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        layers_hidden: Sequence[int],
        family: str | LayerFactory = "kagn",
        *,
        dropout: float = 0.0,
        first_dropout: bool = True,
        plain_head: bool = False,
        l1_decay: float = 0.0,
        **layer_kwargs: Any,
    ) -> None:
        super().__init__()
        widths = _check_widths(layers_hidden)
        if not is_real(dropout) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a float in [0, 1), got {dropout!r}")
        if not is_real(l1_decay) or not l1_decay >= 0.0:
            raise ValueError(f"l1_decay must be a float >= 0, got {l1_decay!r}")
        if isinstance(family, str):
            cls = get_linear_family(family)
            plain: dict[str, Any] = dict(getattr(cls, "plain_head_kwargs", {}))

            def build(i: int, o: int, last: bool) -> nn.Module:
                return cls(i, o, **{**layer_kwargs, **(plain if last and plain_head else {})})

        elif callable(family):
            if layer_kwargs:
                raise TypeError(f"layer keyword arguments {sorted(layer_kwargs)} need a family name, not a callable")
            if plain_head:
                raise ValueError("plain_head needs a registered family name, not a callable")
            factory = family

            def build(i: int, o: int, last: bool) -> nn.Module:
                return factory(i, o)

        else:
            raise TypeError(f"family must be a registered name or a callable, got {type(family).__name__}")

        self.layers_hidden = widths
        self.num_layers = len(widths) - 1
        self.l1_decay = float(l1_decay)
        self.layers = nn.ModuleList()
        self._kan_indices: list[int] = []  # positions of the KA layers in self.layers
        if dropout > 0 and first_dropout:
            self.layers.append(nn.Dropout(dropout))
        for n, (i, o) in enumerate(itertools.pairwise(widths)):
            last = n == self.num_layers - 1
            self._kan_indices.append(len(self.layers))
            self.layers.append(build(i, o, last))
            if dropout > 0 and not last:
                self.layers.append(nn.Dropout(dropout))

    def kan_layers(self) -> list[nn.Module]:
        """The KA layers, in order (without the dropouts)."""
        return [self.layers[i] for i in self._kan_indices]

    def regularization_loss(self) -> Tensor:
        """``l1_decay · Σ|θ|`` over the trainable parameters of every layer but the last (0 when ``l1_decay == 0``).

        The reference applied this through backward hooks on the gradients; an explicit term composes with any
        optimiser, gradient scaling and accumulation.
        """
        params = [p for layer in self.kan_layers()[:-1] for p in layer.parameters() if p.requires_grad]
        if self.l1_decay == 0 or not params:
            ref = next(self.parameters(), None)
            return torch.zeros((), device=None if ref is None else ref.device)
        return self.l1_decay * torch.stack([p.abs().sum() for p in params]).sum()

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def extra_repr(self) -> str:
        return f"layers_hidden={self.layers_hidden}" + (f", l1_decay={self.l1_decay}" if self.l1_decay else "")


def create_kan_mlp(family: str, layers_hidden: Sequence[int], **kwargs: Any) -> KANMLP:
    """Build a :class:`KANMLP` of a registered linear family.

    Examples:
        >>> create_kan_mlp("kacn", [16, 32, 4], degree=4)(torch.randn(2, 16)).shape
        torch.Size([2, 4])
    """
    return KANMLP(layers_hidden, family, **kwargs)
