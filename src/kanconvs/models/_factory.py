"""How every architecture builds its convolutions: one conv factory per model, chosen by a family string.

An architecture body is written once and asks ``make(c_in, c_out, k, stride=…, groups=…)`` for each
convolution; the family string decides what that is: any family string of :func:`kanconvs.create_conv`
(``"kagn"``, ``"bottleneck_kagn"``, ``"moe_kaln"``, ``"moe_bottleneck_kagn"`` …: see :mod:`kanconvs.layers.create`),
or ``"conv"``, the classic ``ConvNd → norm → activation`` (:class:`ConvNormAct`): the plain baseline of the same
architecture.

MoE balance losses and L1/L2 penalties are not returned from ``forward``; they are collected with
:func:`kanconvs.regularization_loss` (``loss = task_loss + regularization_loss(model)``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, cast

import torch
from torch import Tensor, nn

from ..layers.create import create_conv, family_options, parse_family
from ..layers.factories import ActLayer, NormLayer, create_activation, create_dropout, create_norm, to_ntuple
from ..layers.ranks import rank

__all__ = [
    "ClassifierMixin",
    "ConvFactory",
    "ConvNormAct",
    "check_num_classes",
    "conv_factory",
    "family_options",
    "parse_family",
]

Size = int | tuple[int, ...]
ConvFactory = Callable[..., nn.Module]


class ConvNormAct(nn.Module):
    """``[dropout →] ConvNd → norm → activation``: the plain convolution every architecture can be built with.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: as in ``nn.ConvNd``.
        ndim: spatial dimensions (1, 2 or 3).
        norm_layer, norm_kwargs: output norm (``"batch"`` by default; ``None`` for none).
        activation: output activation (``"relu"`` by default; ``None`` for none).
        dropout: probability of a dropout on the input (the KA layers' ``dropout`` counterpart).
        bias: convolution bias.

    Examples:
        >>> block = ConvNormAct(3, 8, 3, padding=1)
        >>> block(torch.randn(2, 3, 5, 5)).shape
        torch.Size([2, 8, 5, 5])
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size,
        stride: Size = 1,
        padding: Size | str = 0,
        dilation: Size = 1,
        groups: int = 1,
        *,
        ndim: int = 2,
        norm_layer: NormLayer = "batch",
        norm_kwargs: Mapping[str, Any] | None = None,
        activation: ActLayer = "relu",
        dropout: float = 0.0,
        bias: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        conv_cls: Any = rank(ndim).conv  # raises for a bad ndim
        self.ndim = ndim
        self.in_channels, self.out_channels = in_channels, out_channels
        self.dropout = create_dropout(dropout, ndim, "dropout")
        self.conv = conv_cls(
            in_channels, out_channels, to_ntuple("kernel_size", kernel_size, ndim), stride, padding, dilation, groups,
            bias=bias, device=device, dtype=dtype,
        )  # fmt: skip
        norm = create_norm(norm_layer, out_channels, ndim, **dict(norm_kwargs or {}))
        self.norm = norm.to(device=device, dtype=dtype) if device is not None or dtype is not None else norm
        self.act = create_activation(activation, out_channels, groups)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.norm(self.conv(self.dropout(x))))


def conv_factory(family: str, *, ndim: int = 2, **options: Any) -> ConvFactory:
    """A function ``make(in_channels, out_channels, kernel_size, stride=1, padding=None, dilation=1, groups=1,
    **overrides)`` that builds the convolutions of one model.

    ``padding=None`` keeps the size at stride 1 (``dilation·(k−1)//2``); ``options`` go to every convolution and
    ``overrides`` to one (e.g. ``dropout=0.0`` for a stem).

    Examples:
        >>> make = conv_factory("kagn", degree=3, norm_layer="batch")
        >>> make(8, 16, 3, stride=2)(torch.randn(2, 8, 10, 10)).shape
        torch.Size([2, 16, 5, 5])
        >>> type(conv_factory("conv")(8, 16, 1)).__name__
        'ConvNormAct'
    """
    parse_family(family)  # an unknown family fails here, naming the valid ones
    build: Callable[..., nn.Module] = ConvNormAct if family == "conv" else functools.partial(create_conv, family)

    def make(
        in_channels: int,
        out_channels: int,
        kernel_size: Size,
        stride: Size = 1,
        padding: Size | str | None = None,
        dilation: Size = 1,
        groups: int = 1,
        **overrides: Any,
    ) -> nn.Module:
        if padding is None:
            ks, dil = to_ntuple("kernel_size", kernel_size, ndim), to_ntuple("dilation", dilation, ndim)
            padding = tuple(d * (k - 1) // 2 for k, d in zip(ks, dil, strict=True))
        geometry = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        kwargs = {**options, **overrides}
        if clash := sorted(geometry.keys() & kwargs.keys()):
            raise TypeError(f"{clash} are arguments of the conv factory's make(), not options")
        return build(in_channels, out_channels, kernel_size, **geometry, **{**kwargs, "ndim": ndim})

    make.family = family  # type: ignore[attr-defined]
    return make


def check_num_classes(num_classes: object) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be an integer >= 0, got {num_classes!r}")
    return num_classes


class ClassifierMixin:
    """timm's classifier contract: ``forward_features``, ``forward_head(x, pre_logits)``, ``num_features``,
    ``num_classes``, ``get_classifier()``, ``reset_classifier(num_classes)`` and
    ``forward = forward_head ∘ forward_features``.

    Subclasses implement ``forward_features`` and ``_build_head(num_classes) -> nn.Module`` and keep the pooling
    and pre-logit layers in ``forward_head``; ``reset_classifier`` swaps the module at ``classifier_name`` (a
    dotted attribute path, ``"head"`` by default) for a fresh one, in the model's current train/eval mode.
    """

    #: where the classifier lives (``get_classifier`` returns it, ``reset_classifier`` replaces it)
    classifier_name: ClassVar[str] = "head"
    num_features: int
    num_classes: int
    training: bool

    def _build_head(self, num_classes: int) -> nn.Module:
        return nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def get_classifier(self) -> nn.Module:
        """The classifier module (``nn.Identity`` after ``reset_classifier(0)``)."""
        return cast(nn.Module, self).get_submodule(self.classifier_name)

    def reset_classifier(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` (0: no classifier), in the
        model's current train/eval mode."""
        self.num_classes = check_num_classes(num_classes)
        head = self._build_head(num_classes).train(self.training)
        owner, _, attr = self.classifier_name.rpartition(".")
        setattr(cast(nn.Module, self).get_submodule(owner) if owner else self, attr, head)

    def forward_features(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
