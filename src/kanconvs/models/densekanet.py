"""DenseKANet: DenseNet-BC with Kolmogorov–Arnold convolutions, one body for every conv family.

Each dense layer is a 1×1 convolution to ``bn_size·growth_rate`` channels and a 3×3 convolution to
``growth_rate`` channels, both of the family; its output is concatenated to its input. Between blocks sits the
reference's *plain* transition, ``BatchNorm → SELU → 1×1 Conv (no bias) → AvgPool 2``, which compresses the
channels by ``compression``. The stem is a strided convolution of the family, optionally followed by a max-pool; the
head is global average pooling, dropout and a linear layer (or a KAN MLP of the family, as in the tiny variant).

With a mixture-of-experts family (``"moe_bottleneck_kagn"`` …) only the 3×3 dense convolutions are mixtures; the
stem and the 1×1 convolutions use the same family without ``moe_``, as in the reference. MoE balance losses and
weight penalties are collected with :func:`kanconvs.regularization_loss`, not returned by ``forward``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .._checks import is_real
from ..layers.factories import create_norm
from ..layers.kan_linear import list_linear_families
from ..layers.ranks import rank
from ._factory import ClassifierMixin, conv_factory, family_options, parse_family
from ._registry import register_model
from .kan_mlp import KANMLP

__all__ = ["DenseBlock", "DenseKANet", "DenseLayer", "Transition"]

HeadFactory = Callable[[int, int], nn.Module]


class DenseLayer(nn.Module):
    """``conv1`` (1×1, ``c_in → bn_size·growth``) then ``conv2`` (3×3, ``→ growth``, with ``groups`` and dropout).

    ``memory_efficient`` recomputes the concatenation and ``conv1`` in the backward pass (training only), so the
    concatenated input of every layer is not kept alive.
    """

    def __init__(
        self,
        conv1: nn.Module,
        conv2: nn.Module,
        memory_efficient: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = conv1
        self.conv2 = conv2
        self.memory_efficient = memory_efficient

    def _bottleneck(self, *features: Tensor) -> Tensor:
        return self.conv1(torch.cat(features, 1))

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        if self.memory_efficient and self.training and any(f.requires_grad for f in features):
            calls = 0

            def bottleneck(*inputs: Tensor) -> Tensor:
                nonlocal calls
                calls += 1
                if calls == 1:  # the forward pass
                    return self._bottleneck(*inputs)
                with _buffers_kept(self.conv1):  # the backward's recomputation: no second running-stat update
                    return self._bottleneck(*inputs)

            out = checkpoint(bottleneck, *features, use_reentrant=False)
        else:
            out = self._bottleneck(*features)
        return self.conv2(out)


@contextlib.contextmanager
def _buffers_kept(module: nn.Module) -> Iterator[None]:
    """Restore ``module``'s buffers (BatchNorm running statistics …) on exit, however the block ends."""
    saved = [(b, b.clone()) for b in module.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


class DenseBlock(nn.ModuleDict):
    """``num_layers`` dense layers (``denselayer1`` …); the output concatenates the input and every layer's output."""

    def __init__(self, layers: Sequence[DenseLayer]) -> None:
        super().__init__({f"denselayer{i + 1}": layer for i, layer in enumerate(layers)})

    def forward(self, x: Tensor) -> Tensor:
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


class Transition(nn.Sequential):
    """The reference's plain transition: ``BatchNorm → SELU → 1×1 Conv (no bias) → AvgPool(2)``."""

    def __init__(self, in_channels: int, out_channels: int, ndim: int = 2) -> None:
        conv_cls: Any = rank(ndim).conv
        super().__init__()
        self.norm = create_norm("batch", in_channels, ndim)
        self.act = nn.SELU()
        self.conv = conv_cls(in_channels, out_channels, kernel_size=1, bias=False)
        self.pool = rank(ndim).avg_pool(kernel_size=2, stride=2)


def _check_positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class DenseKANet(ClassifierMixin, nn.Module):
    """DenseNet-BC whose convolutions come from one conv family (``"kagn"``, ``"bottleneck_kagn"``, ``"conv"`` …).

    Args:
        family: conv family string (see :func:`~kanconvs.models.conv_factory`).
        block_config: dense layers per block, e.g. ``(6, 12, 24, 16)`` for the 121 layout.
        growth_rate: channels added by each dense layer.
        num_init_features: stem output channels.
        bn_size: the 1×1 convolution's width is ``bn_size·growth_rate``.
        compression: transitions keep ``⌊compression·C⌋`` channels.
        in_channels, num_classes: input channels; classes (0: ``forward`` returns pooled features).
        stem_kernel, stem_stride: the stem convolution (padding ``kernel // 2``).
        stem_pool: a 3/2/1 max-pool after the stem.
        transition_after_last: a transition also follows the last block (the tiny variant).
        groups, dropout: groups and dropout of the 3×3 dense convolutions.
        dropout_linear: dropout before the classifier.
        weight_l1: L1 weight penalty of the dense convolutions (the reference's ``l1_decay``), reported by
            :func:`kanconvs.regularization_loss`.
        memory_efficient: gradient checkpointing of the concatenation and 1×1 convolution (training only).
        head: ``"linear"``, ``"kan"`` (a one-layer KAN MLP of the family, plain output; ``head_kwargs`` go to it) or
            a callable ``f(num_features, num_classes) -> nn.Module``.
        dense_conv_kwargs: extra options of the 3×3 dense convolutions only (``num_experts=``, ``dim_reduction=`` …).
        ndim: spatial dimensions (1, 2 or 3).
        family_kwargs: options of every convolution (``degree=``, ``norm_layer=``, ``norm_kwargs=`` …).

    Examples:
        >>> model = DenseKANet("kagn", (2, 2), growth_rate=4, num_init_features=8, num_classes=3, degree=2)
        >>> model(torch.randn(2, 3, 32, 32)).shape
        torch.Size([2, 3])
    """

    classifier_name = "classifier"

    def __init__(
        self,
        family: str = "kagn",
        block_config: Sequence[int] = (6, 12, 24, 16),
        *,
        growth_rate: int = 32,
        num_init_features: int = 64,
        bn_size: int = 4,
        compression: float = 0.5,
        in_channels: int = 3,
        num_classes: int = 1000,
        stem_kernel: int = 7,
        stem_stride: int = 2,
        stem_pool: bool = True,
        transition_after_last: bool = False,
        groups: int = 1,
        dropout: float = 0.0,
        dropout_linear: float = 0.0,
        weight_l1: float = 0.0,
        memory_efficient: bool = False,
        head: str | HeadFactory = "linear",
        head_kwargs: Mapping[str, Any] | None = None,
        dense_conv_kwargs: Mapping[str, Any] | None = None,
        ndim: int = 2,
        **family_kwargs: Any,
    ) -> None:
        super().__init__()
        wrapper, base = parse_family(family)
        if isinstance(block_config, (str, bytes)) or not isinstance(block_config, Sequence) or not block_config:
            raise ValueError(f"block_config must be a non-empty sequence of positive integers, got {block_config!r}")
        for n in block_config:
            _check_positive("block_config entries", n)
        for name, value in (("growth_rate", growth_rate), ("num_init_features", num_init_features)):
            _check_positive(name, value)
        _check_positive("bn_size", bn_size)
        if not is_real(compression) or not 0 < compression <= 1:
            raise ValueError(f"compression must be a float in (0, 1], got {compression!r}")
        rank(ndim)  # raises for a bad ndim
        if not (head in ("linear", "kan") or callable(head)):
            raise ValueError(f"head must be 'linear', 'kan' or a callable (num_features, num_classes), got {head!r}")
        self.family = family
        # Mixtures only in the 3×3 dense convolutions; the stem and 1×1 convolutions use the family without 'moe'.
        plain_family = family[len("moe_") :] if wrapper in ("moe", "moe_bottleneck") else family
        if weight_l1 and base == "conv":
            raise ValueError(f"weight_l1 needs a KA family, got family={family!r}")
        l1 = {"weight_l1": weight_l1} if weight_l1 else {}
        make = conv_factory(plain_family, ndim=ndim, **family_kwargs)
        make_dense = conv_factory(family, ndim=ndim, **family_kwargs) if plain_family != family else make

        self.features = nn.Sequential()
        self.features.add_module("conv0", make(in_channels, num_init_features, stem_kernel, stride=stem_stride))
        if stem_pool:
            self.features.add_module("pool0", rank(ndim).max_pool(kernel_size=3, stride=2, padding=1))
        channels = num_init_features
        for i, num_layers in enumerate(block_config):
            layers = [
                DenseLayer(
                    make(channels + j * growth_rate, bn_size * growth_rate, 1, **l1),
                    make_dense(
                        bn_size * growth_rate,
                        growth_rate,
                        3,
                        groups=groups,
                        dropout=dropout,
                        **l1,
                        **dict(dense_conv_kwargs or {}),
                    ),
                    memory_efficient=memory_efficient,
                )
                for j in range(num_layers)
            ]
            self.features.add_module(f"denseblock{i + 1}", DenseBlock(layers))
            channels += num_layers * growth_rate
            if transition_after_last or i != len(block_config) - 1:
                out = int(channels * compression)
                self.features.add_module(f"transition{i + 1}", Transition(channels, out, ndim))
                channels = out
        self.num_features = channels
        self.pool = rank(ndim).adaptive_avg_pool(1)
        self.head_drop = nn.Dropout(dropout_linear)
        self._head = head
        self._head_kwargs = dict(head_kwargs or {})
        if head == "kan" and base != "conv":
            head_family = base if wrapper in (None, "moe") else f"bottleneck_{base}"
            if head_family not in list_linear_families():
                raise ValueError(f"head='kan' needs a linear family {head_family!r}; valid: {list_linear_families()}")
            self._head_family: str | None = head_family
        else:
            self._head_family = None
        self.num_classes = 0
        self.classifier: nn.Module = nn.Identity()
        self.reset_classifier(num_classes)

    def _build_head(self, num_classes: int) -> nn.Module:
        if not num_classes:
            return nn.Identity()
        if callable(self._head):
            return self._head(self.num_features, num_classes)
        if self._head_family is not None:  # "kan" ("conv" falls back to a linear layer)
            return KANMLP([self.num_features, num_classes], self._head_family, plain_head=True, **self._head_kwargs)
        return nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature maps after the last block (or transition): ``(B, num_features, *S')``."""
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool, dropout and classify; ``pre_logits=True`` stops before the classifier."""
        x = self.head_drop(torch.flatten(self.pool(x), 1))
        return x if pre_logits else self.classifier(x)


# --------------------------------------------------------------------------------------------- configurations
_LAYOUTS: Mapping[str, dict[str, Any]] = {
    "121": {"block_config": (6, 12, 24, 16), "growth_rate": 32},
    "161": {"block_config": (6, 12, 36, 24), "growth_rate": 48},
    "169": {"block_config": (6, 12, 32, 32), "growth_rate": 32},
    "201": {"block_config": (6, 12, 48, 32), "growth_rate": 32},
    "tiny": {
        "block_config": (5, 5, 5), "growth_rate": 32, "stem_kernel": 5, "stem_pool": False,
        "transition_after_last": True, "head": "kan", "memory_efficient": True,
    },
}  # fmt: skip


def _family_defaults(family: str) -> dict[str, Any]:
    """The reference's layer defaults: InstanceNorm (affine) for KA families, BatchNorm for (MoE) bottlenecks."""
    wrapper, base = parse_family(family)
    if base == "conv":
        return {}
    norm = "batch" if wrapper is not None else "instance"
    return family_options(family, {"degree": 3, "norm_layer": norm, "norm_kwargs": {"affine": True}})


def _densekanet(layout: str, family: str, **kwargs: Any) -> DenseKANet:
    config: dict[str, Any] = {**_LAYOUTS[layout], **_family_defaults(family)}
    if layout == "tiny" and "degree" in config:
        config["head_kwargs"] = {"degree": config["degree"]}
    if parse_family(family)[0] in ("moe", "moe_bottleneck"):
        config["memory_efficient"] = False  # as the reference: no recomputation of the routed mixtures
    config.update(kwargs)
    return DenseKANet(family, **config)


@register_model
def densekanet121(family: str = "kagn", **kwargs: Any) -> DenseKANet:
    """DenseKANet-121: blocks (6, 12, 24, 16), growth 32, 7×7/2 stem and max-pool."""
    return _densekanet("121", family, **kwargs)


@register_model
def densekanet161(family: str = "kagn", **kwargs: Any) -> DenseKANet:
    """DenseKANet-161: blocks (6, 12, 36, 24), growth 48."""
    return _densekanet("161", family, **kwargs)


@register_model
def densekanet169(family: str = "kagn", **kwargs: Any) -> DenseKANet:
    """DenseKANet-169: blocks (6, 12, 32, 32), growth 32."""
    return _densekanet("169", family, **kwargs)


@register_model
def densekanet201(family: str = "kagn", **kwargs: Any) -> DenseKANet:
    """DenseKANet-201: blocks (6, 12, 48, 32), growth 32."""
    return _densekanet("201", family, **kwargs)


@register_model
def densekanet_tiny(family: str = "kagn", **kwargs: Any) -> DenseKANet:
    """Tiny DenseKANet: 5×5/2 stem without max-pool, blocks (5, 5, 5) each followed by a transition, a KAN-MLP
    classifier of the family and gradient checkpointing."""
    return _densekanet("tiny", family, **kwargs)
