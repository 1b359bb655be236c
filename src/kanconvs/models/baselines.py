"""The seed experiments' 4- and 8-layer baselines: one body for every family, configurations as data.

``widths`` convolutions of kernel 3 and padding 1 with the given strides, global average pooling, then dropout and
a linear head. The first layer has ``groups=1`` and (except where configured) no dropout; the others use
``groups`` and the layer's own dropout. With ``family="conv"`` each layer is the classic Conv–BatchNorm–ReLU.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ._factory import ClassifierMixin, conv_factory
from ._registry import register_model

__all__ = ["SimpleKANet"]

FOUR_LAYERS = {"widths": (32, 64, 128, 256), "strides": (1, 2, 2, 1)}
EIGHT_LAYERS = {"widths": (16, 32, 64, 128, 256, 256, 512, 512), "strides": (1, 2, 2, 1, 1, 2, 1, 1)}


def _plain_block(c_in: int, c_out: int, stride: int, groups: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, groups=groups),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class SimpleKANet(ClassifierMixin, nn.Module):
    """A plain stack of KA convolutions (or classic conv blocks) with a linear head.

    Args:
        family: a registered KA conv family, or ``"conv"`` for Conv–BatchNorm–ReLU blocks.
        widths, strides: per-layer output channels and strides.
        in_channels, num_classes: input channels and classes (``num_classes=0`` gives a feature extractor).
        groups: groups of every layer but the first.
        dropout: the layers' own dropout (every layer but the first unless ``first_dropout``).
        dropout_linear: dropout before the head.
        weight_l1: L1 weight penalty of every layer but the first (the reference's ``l1_penalty``), reported by
            ``regularization_loss()``.
        family_kwargs: options of the KA family (``degree=``, ``norm_layer=``, ``norm_kwargs=`` …).

    Examples:
        >>> model = SimpleKANet("kagn", (8, 16), (1, 2), in_channels=1, num_classes=10, degree=3)
        >>> model(torch.randn(2, 1, 12, 12)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        family: str,
        widths: Sequence[int],
        strides: Sequence[int],
        *,
        in_channels: int = 1,
        num_classes: int = 10,
        groups: int = 1,
        dropout: float = 0.0,
        first_dropout: bool = False,
        dropout_linear: float = 0.0,
        weight_l1: float = 0.0,
        **family_kwargs: Any,
    ) -> None:
        super().__init__()
        if len(widths) != len(strides) or not widths:
            raise ValueError(f"widths and strides must be non-empty and of equal length, got {widths!r}, {strides!r}")
        self.family = family
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, (width, stride) in enumerate(zip(widths, strides, strict=True)):
            g = 1 if i == 0 else groups
            if family == "conv":
                if family_kwargs:
                    raise TypeError(f"family 'conv' takes no layer options, got {sorted(family_kwargs)}")
                layers.append(_plain_block(c_in, width, stride, g))
            else:
                options: dict[str, Any] = dict(family_kwargs)
                if i > 0 or first_dropout:
                    options["dropout"] = dropout
                if i > 0 and weight_l1:
                    options["weight_l1"] = weight_l1
                layers.append(conv_factory(family, **options)(c_in, width, 3, stride=stride, padding=1, groups=g))
            c_in = width
        self.features = nn.Sequential(*layers)
        self.num_features = c_in
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head_drop = nn.Dropout(dropout_linear)
        self.num_classes = 0
        self.head: nn.Module = nn.Identity()
        self.reset_classifier(num_classes)

    def forward_features(self, x: Tensor) -> Tensor:
        """Feature maps of the last layer: ``(B, num_features, H', W')``."""
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Pool, dropout and classify feature maps; ``pre_logits=True`` stops before the linear layer."""
        x = self.head_drop(torch.flatten(self.pool(x), 1))
        return x if pre_logits else self.head(x)


# --------------------------------------------------------------------------------------------- configurations
# The seed's MNIST runs: conv dropout 0.25, head dropout 0.5, linear head; the 4-layer KAGN and KACN and the
# classic networks use groups 4. ``norm`` selects the seed table's norm settings.
_NORMS: Mapping[str, dict[str, Any]] = {
    "instance": {"norm_layer": "instance"},
    "instance-affine": {"norm_layer": "instance", "norm_kwargs": {"affine": True}},
    "batch": {"norm_layer": "batch"},
}
_GROUPS_4 = {"kagn": 4, "kacn": 4}
_FIXED_NORM = ("conv", "wavkan")
_FAMILIES = ("conv", "kan", "fastkan", "kaln", "kacn", "kagn", "kajn", "kabn", "kahn", "relukan", "wavkan")


def default_norm(family: str) -> str:
    """The norm setting a ``simple_<family>_*`` baseline gets when none is asked for: ``"instance"`` (the seed's
    first setting), but ``"batch"`` for KACN, which cannot learn with instance norms (see :func:`_simple`)."""
    return "batch" if family == "kacn" else "instance"


def _simple(family: str, depth: int, norm: str | None, **kwargs: Any) -> SimpleKANet:
    if family == "kacn" and norm in ("instance", "instance-affine"):
        # A KACN layer ends in its norm: after an instance norm the global average pool is 0 (or β) for every input.
        warnings.warn(
            f"simple_kacn_{depth} with norm={norm!r} cannot learn: its last layer's instance-normalised output "
            "averages to the same features for every input (the seed's InstanceNorm KACN rows sit at chance); "
            "use norm='batch', the default",
            UserWarning,
            stacklevel=3,
        )
    config: dict[str, Any] = dict(FOUR_LAYERS if depth == 4 else EIGHT_LAYERS)
    config.update(dropout_linear=0.5)
    if family != "conv":
        config.update(dropout=0.25, first_dropout=family == "kacn" and depth == 8)
        if norm is not None:
            if norm not in _NORMS:
                raise ValueError(f"norm must be one of {sorted(_NORMS)} or None, got {norm!r}")
            config.update(_NORMS[norm])
    config["groups"] = 4 if family == "conv" else _GROUPS_4.get(family, 1) if depth == 4 else 1
    config.update(kwargs)
    return SimpleKANet(family, **config)


def _register_baselines() -> None:
    for family in _FAMILIES:
        for depth in (4, 8):

            def entry(family: str = family, depth: int = depth, norm: str | None = None, **kwargs: Any) -> nn.Module:
                if family in _FIXED_NORM:  # their (batch) norm is part of the architecture
                    if norm not in (None, "batch"):
                        raise ValueError(
                            f"simple_{family}_{depth} always uses batch norm (part of the seed's architecture), so "
                            f"norm must be None or 'batch', got {norm!r}"
                        )
                    return _simple(family, depth, None, **kwargs)
                return _simple(family, depth, default_norm(family) if norm is None else norm, **kwargs)

            entry.__name__ = entry.__qualname__ = f"simple_{family}_{depth}"
            norms = "'batch' only" if family in _FIXED_NORM else "'instance', 'instance-affine' or 'batch'"
            entry.__doc__ = (
                f"The seed's {depth}-layer {family} baseline (MNIST configuration). ``norm``: {norms} (default: "
                f"{'batch' if family in _FIXED_NORM else default_norm(family)!r}); other keyword arguments override "
                "the configuration."
            )
            register_model(entry)


_register_baselines()
