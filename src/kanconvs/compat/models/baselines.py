"""torch-conv-kan's ``models.baselines`` (the seed's 4- and 8-layer networks), reference names, signatures and
``state_dict`` keys; the clean equivalents are ``kanconvs.create_model("simple_kagn_4")`` and friends. What differs:
docs/migrating.md, "Differences, module by module".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ..._checks import is_real
from .._generate import Values, exports, reference_class, reference_init
from ..kan_convs import (
    FastKANConv2DLayer,
    KACNConv2DLayer,
    KAGNConv2DLayer,
    KALNConv2DLayer,
    KANConv2DLayer,
    WavKANConv2DLayer,
)
from ..kans import KACN, KAGN, KALN, KAN, FastKAN, WavKAN
from ..moe import MoEBottleNeckKAGNConv2DLayer

_STRIDES = {4: (1, 2, 2, 1), 8: (1, 2, 2, 1, 1, 2, 1, 1)}
# conv(in_channels, out_channels, stride=…, groups=…, dropout=…) -> layer; kernel 3, padding 1 are bound already.
ConvBuilder = Callable[..., nn.Module]
MLPBuilder = Callable[[list[int]], nn.Module]  # layers_hidden -> the family's KAN MLP head


class L1(nn.Module):
    """The reference's ``utils.L1(module, weight_decay)`` wrapper: runs ``module`` and penalises its parameters.

    ``regularization_loss()`` returns ``weight_decay · Σ|θ|`` over the trainable parameters of ``module`` (``None``
    when ``weight_decay`` is 0); the wrapper exists for the ``.module.`` segment it adds to checkpoint keys.

    Examples:
        >>> layer = L1(nn.Linear(2, 1), 0.5)
        >>> with torch.no_grad():
        ...     _ = layer.module.weight.fill_(-2.0), layer.module.bias.fill_(1.0)
        >>> layer.regularization_loss().item()  # 0.5 · (2 + 2 + 1)
        2.5
    """

    def __init__(self, module: nn.Module, weight_decay: float) -> None:
        super().__init__()
        if not is_real(weight_decay) or not weight_decay >= 0:
            raise ValueError(f"weight_decay (l1_penalty) must be a number >= 0, got {weight_decay!r}")
        self.module = module
        self.weight_decay = float(weight_decay)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def regularization_loss(self) -> Tensor | None:
        params = [p for p in self.module.parameters() if p.requires_grad]
        if not self.weight_decay or not params:
            return None
        return self.weight_decay * torch.stack([p.abs().sum() for p in params]).sum()

    def extra_repr(self) -> str:
        return f"weight_decay={self.weight_decay}"


def _widths(layer_sizes: Sequence[int], depth: int) -> list[int]:
    if (
        isinstance(layer_sizes, (str, bytes))
        or not isinstance(layer_sizes, Sequence)
        or len(layer_sizes) < depth
        or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in layer_sizes[:depth])
    ):
        raise ValueError(f"layer_sizes must hold at least {depth} positive integers, got {layer_sizes!r}")
    return list(layer_sizes[:depth])


def _stack(
    conv: ConvBuilder,
    layer_sizes: Sequence[int],
    depth: int,
    input_channels: int,
    groups: int,
    dropout: float,
    l1_penalty: float,
    first_dropout: bool,
) -> list[nn.Module]:
    """The reference's layer stack: layer 0 ungrouped (and without dropout unless ``first_dropout``), the others
    grouped, with dropout, wrapped in :class:`L1`."""
    layers: list[nn.Module] = []
    c_in = input_channels
    for i, (width, stride) in enumerate(zip(_widths(layer_sizes, depth), _STRIDES[depth], strict=True)):
        if i == 0:
            layers.append(conv(c_in, width, stride=stride, groups=1, dropout=dropout if first_dropout else 0.0))
        else:
            layers.append(L1(conv(c_in, width, stride=stride, groups=groups, dropout=dropout), l1_penalty))
        c_in = width
    return layers


def _head(in_features: int, num_classes: int, degree_out: int, dropout_linear: float, mlp: MLPBuilder) -> nn.Module:
    """Dropout + Linear for ``degree_out < 2``, else the family's one-layer KAN MLP."""
    if degree_out < 2:
        return nn.Sequential(nn.Dropout(p=dropout_linear), nn.Linear(in_features, num_classes))
    return mlp([in_features, num_classes])


class _Baseline(nn.Module):
    """``layers`` (the conv stack, then global average pooling) → flatten → ``output``."""

    depth: ClassVar[int] = 4
    first_dropout: ClassVar[bool] = False  # only EightSimpleConvKACN gives its first layer dropout

    def __init__(
        self,
        conv: ConvBuilder,
        mlp: MLPBuilder,
        layer_sizes: Sequence[int],
        num_classes: int,
        input_channels: int,
        degree_out: int,
        groups: int,
        dropout: float,
        dropout_linear: float,
        l1_penalty: float,
    ) -> None:
        super().__init__()
        layers = _stack(conv, layer_sizes, self.depth, input_channels, groups, dropout, l1_penalty, self.first_dropout)
        self.layers = nn.Sequential(*layers, nn.AdaptiveAvgPool2d((1, 1)))
        self.output = _head(layer_sizes[self.depth - 1], num_classes, degree_out, dropout_linear, mlp)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(torch.flatten(self.layers(x), 1))


# ------------------------------------------------------------------------------------------------ plain convs
class SimpleConv(nn.Module):
    """The reference's 4-layer ``Conv2d(bias) → BatchNorm2d → ReLU`` network with ``Dropout(0.25)`` and a linear head.

    Examples:
        >>> SimpleConv([8, 8, 16, 16])(torch.randn(2, 1, 12, 12)).shape
        torch.Size([2, 10])
    """

    depth: ClassVar[int] = 4

    @reference_init("SimpleConv")  # EightSimpleConv's is the same
    def __init__(self, v: Values) -> None:
        super().__init__()
        modules: list[nn.Module] = []
        c_in, groups = v["input_channels"], v["groups"]
        for i, (width, stride) in enumerate(
            zip(_widths(v["layer_sizes"], self.depth), _STRIDES[self.depth], strict=True)
        ):
            conv = nn.Conv2d(c_in, width, kernel_size=3, groups=1 if i == 0 else groups, padding=1, stride=stride)
            modules += [conv, nn.BatchNorm2d(width), nn.ReLU()]
            c_in = width
        self.layers = nn.Sequential(*modules, nn.AdaptiveAvgPool2d((1, 1)))
        self.output = nn.Linear(c_in, v["num_classes"])
        self.drop = nn.Dropout(p=0.25)

    def forward(self, x: Tensor) -> Tensor:
        return self.output(self.drop(torch.flatten(self.layers(x), 1)))


class EightSimpleConv(SimpleConv):
    """:class:`SimpleConv` with 8 layers (strides 1, 2, 2, 1, 1, 2, 1, 1)."""

    depth = 8


# --------------------------------------------------------------------------------------------------- KA convs
# One row per family: its conv layer and MLP head classes and its own option (the degree families feed ``degree_out``
# to the head as its degree; the others their option).
def _baseline(
    name: str, depth: int, conv_class: type, mlp_class: Callable[..., nn.Module], key: str, doc: str,
    first_dropout: bool = False,
) -> Any:  # fmt: skip
    def build(v: Values) -> Values:
        norm = {"affine": v.pop("affine"), "norm_layer": v.pop("norm_layer")} if "affine" in v else {}
        conv = functools.partial(conv_class, kernel_size=3, padding=1, dilation=1, **{key: v.pop(key)}, **norm)
        head = {"degree": v["degree_out"]} if key == "degree" else {key: conv.keywords[key]}
        drop = v["dropout_linear"]

        def mlp(widths: list[int]) -> nn.Module:
            return mlp_class(widths, dropout=drop, first_dropout=True, **head)

        return {"conv": conv, "mlp": mlp, **v}

    space = {"depth": depth, "first_dropout": first_dropout}
    return reference_class(name, _Baseline, build, module=__name__, doc=doc, namespace=space)


def _pair(family: str, conv_class: type, mlp_class: Callable[..., nn.Module], key: str, example: str = "",
          first_dropout_8: bool = False) -> tuple[Any, Any]:  # fmt: skip
    """The 4- and 8-layer networks of a family (``Simple…`` and ``EightSimple…``)."""
    name = {"KAN": "ConvKAN", "FastKAN": "FastConvKAN"}.get(family, f"Conv{family}")
    doc = (
        f"The reference's {{}}-layer {family} network (``{conv_class.__name__}``; a ``{mlp_class.__name__}`` MLP head "
        "when ``degree_out >= 2``)."
    )
    if example:
        example = f"\n\n    Examples:\n        >>> {example}.shape\n        torch.Size([2, 10])\n    "
    four = _baseline(f"Simple{name}", 4, conv_class, mlp_class, key, doc.format(4) + example)
    eight = _baseline(f"EightSimple{name}", 8, conv_class, mlp_class, key, doc.format(8), first_dropout_8)
    return four, eight


SimpleConvKAN, EightSimpleConvKAN = _pair(
    "KAN", KANConv2DLayer, KAN, "spline_order", "SimpleConvKAN([4, 8, 8, 8], degree_out=1)(torch.randn(2, 1, 8, 8))"
)
SimpleFastConvKAN, EightSimpleFastConvKAN = _pair(
    "FastKAN", FastKANConv2DLayer, FastKAN, "grid_size", "SimpleFastConvKAN([4, 8, 8, 8])(torch.randn(2, 1, 8, 8))"
)
SimpleConvKALN, EightSimpleConvKALN = _pair("KALN", KALNConv2DLayer, KALN, "degree")
# The reference's 8-layer KACN (alone) also applies dropout in its first layer.
SimpleConvKACN, EightSimpleConvKACN = _pair("KACN", KACNConv2DLayer, KACN, "degree", first_dropout_8=True)
SimpleConvKAGN, EightSimpleConvKAGN = _pair("KAGN", KAGNConv2DLayer, KAGN, "degree")
SimpleConvWavKAN, EightSimpleConvWavKAN = _pair(
    "WavKAN", WavKANConv2DLayer, WavKAN, "wavelet_type",
    "SimpleConvWavKAN([4, 4, 8, 8], degree_out=1).eval()(torch.randn(2, 1, 8, 8))",
)  # fmt: skip


# -------------------------------------------------------------------------------------------------------- MoE
class SimpleMoEConvKAGNBN(nn.Module):
    """The reference's 4-layer network of ``MoEBottleNeckKAGNConv2DLayer`` s; ``forward`` returns
    ``(logits, moe_loss)``.

    ``moe_loss`` is the sum of the layers' ``loss_coef · balance loss`` (the reference's is always 0, a typo). The
    same balance losses, times the layers' own ``loss_coef`` (1e-2), are also reported by ``regularization_loss()``:
    add one or the other to the task loss, not both.

    Examples:
        >>> model = SimpleMoEConvKAGNBN([4, 8, 8, 8], num_experts=4, k=2)
        >>> logits, moe_loss = model(torch.randn(2, 1, 8, 8))
        >>> logits.shape, moe_loss.shape
        (torch.Size([2, 10]), torch.Size([]))
    """

    depth: ClassVar[int] = 4

    @reference_init("SimpleMoEConvKAGNBN")
    def __init__(self, v: Values) -> None:
        super().__init__()
        options = ("degree", "affine", "norm_layer", "num_experts", "noisy_gating", "k")
        conv = functools.partial(
            MoEBottleNeckKAGNConv2DLayer, kernel_size=3, padding=1, dilation=1, **{n: v[n] for n in options}
        )
        layer_sizes = v["layer_sizes"]
        self.layers = nn.ModuleList(_stack(
            conv, layer_sizes, self.depth, v["input_channels"], v["groups"], v["dropout"], v["l1_penalty"],
            first_dropout=False,
        ))  # fmt: skip
        self.pool = nn.AdaptiveAvgPool2d((1, 1))

        def mlp(widths: list[int]) -> nn.Module:
            return KAGN(widths, dropout=v["dropout_linear"], first_dropout=True, degree=v["degree_out"])

        self.output = _head(layer_sizes[self.depth - 1], v["num_classes"], v["degree_out"], v["dropout_linear"], mlp)

    def forward(self, x: Tensor, train: bool = True, loss_coef: float = 1) -> tuple[Tensor, Tensor]:
        """``(logits, Σ loss_coef · balance loss)``; ``train`` is ignored (``self.training`` decides)."""
        moe_loss = x.new_zeros((), dtype=torch.float32)
        for layer in self.layers:
            x, loss = layer(x, train=train, loss_coef=loss_coef)
            moe_loss = moe_loss + loss
        return self.output(torch.flatten(self.pool(x), 1)), moe_loss


class EightSimpleMoEConvKAGNBN(SimpleMoEConvKAGNBN):
    """:class:`SimpleMoEConvKAGNBN` with 8 layers."""

    depth = 8


__all__ = exports(globals())
