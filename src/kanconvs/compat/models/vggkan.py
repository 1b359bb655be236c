"""torch-conv-kan's ``models/vggkan.py`` names: the VGG classes and factories with the reference's signatures.

Each builds a :class:`~kanconvs.models.VGGKANet` with the reference's configuration and module layout, so its
checkpoints (including the published ``brivangl/vgg_kagn*`` weights) load with ``load_state_dict``. The MoE models
return ``(logits, moe_loss)``, the MoE layers' balance losses summed (the reference's sum was always 0 in some).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from ...layers.moe import MoEKAConvNd
from ...models.vggkan import VGG_LAYERS, VGGKANet
from .._generate import ReferenceCheckpoints, Values, exports, reference_class, reference_function
from ..kan_convs import check_wav_version
from ..kans import mlp_fastkan, mlp_kacn, mlp_kagn, mlp_kaln, mlp_kan, mlp_wav_kan

#: The reference's configuration table (``cfgs``).
cfgs = VGG_LAYERS
_HEADS = {
    "Linear": "linear",
    "KAN": "kan",
    "HiddenKAN": "hidden_kan",
    "VGG": "vgg",
    "Matryoshka": "matryoshka",
    "KANtryoshka": "kan_matryoshka",
}
Norm = Callable[..., nn.Module]


class _ReferenceVGG(ReferenceCheckpoints, VGGKANet):
    """Maps the reference's constructor arguments onto :class:`VGGKANet`."""

    def __init__(
        self,
        family: str,
        conv_kwargs: dict[str, Any],
        kan_mlp: Callable[..., nn.Module],
        *,
        input_channels: int,
        num_classes: int,
        groups: int,
        dropout: float,
        l1_decay: float,
        dropout_linear: float,
        vgg_type: str,
        head_type: str,
        expected_feature_shape: Sequence[int],
        width_scale: float,
        last_attention: bool = False,
        sa_inner_projection: int | None = None,
    ) -> None:
        if head_type not in _HEADS:
            raise ValueError(f"head_type must be one of {sorted(_HEADS)}, got {head_type!r}")
        if l1_decay:
            conv_kwargs["weight_l1"] = l1_decay
        super().__init__(
            vgg_type, family, in_channels=input_channels, num_classes=num_classes, width_scale=width_scale,
            groups=groups, dropout=dropout, head=_HEADS[head_type], head_dropout=dropout_linear,
            head_family=partial(kan_mlp, dropout=dropout_linear, l1_decay=l1_decay), pool_size=expected_feature_shape,
            last_attention=last_attention, attention_projection=sa_inner_projection, **conv_kwargs,
        )  # fmt: skip

    @property
    def classifier(self) -> nn.Module:
        """The reference's name of the head (read by its fine-tuning and CAM scripts)."""
        return self.head

    @property
    def expected_feature_shape(self) -> tuple[int, ...]:
        """The reference's name of the pooled feature size."""
        return tuple(self.pool_size)


class _ReferenceMoEVGG(_ReferenceVGG):
    def forward(self, x: Tensor) -> Any:
        """``(logits, moe_loss)``: the MoE layers' balance losses of this forward pass, times their ``loss_coef``."""
        logits = super().forward(x)
        losses = []
        for m in self.modules():
            if isinstance(m, MoEKAConvNd) and (balance := m.balance_loss) is not None:
                losses.append(m.loss_coef * balance.float())
        return logits, torch.stack(losses).sum()


# One row per reference class: its family, the names of its own options (between ``groups`` and ``dropout``) and the
# head MLP. The polynomial heads take only the degree; the others every family option.
_NOT_CONV = ("wav_version",)  # reference options that only chose how the reference computed
_EXPERTS = ("num_experts", "noisy_gating", "k")


def _vgg(
    name: str, family: str, options: tuple[str, ...], mlp: Callable[..., nn.Module], doc: str, *,
    extra: Values | None = None,
) -> Any:  # fmt: skip
    def build(v: Values) -> Values:
        if "wav_version" in v:
            check_wav_version(v["wav_version"])
        opts = {n: v.pop(n) for n in options if n not in _NOT_CONV}
        if "grid_range" in opts:
            opts["grid_range"] = (opts["grid_range"][0], opts["grid_range"][1])
        norm = {"norm_layer": v.pop("norm_layer", nn.InstanceNorm2d), "norm_kwargs": {"affine": v.pop("affine")}}
        experts = {n: v.pop(n) for n in _EXPERTS if n in v}
        head = {"degree": opts["degree"]} if "degree" in opts else opts
        conv = {**opts, **(extra or {}), **norm, **experts}
        return {"family": family, "conv_kwargs": conv, "kan_mlp": partial(mlp, **head),
                **{k: x for k, x in v.items() if k not in _NOT_CONV}}  # fmt: skip

    base = _ReferenceMoEVGG if family.startswith("moe_") else _ReferenceVGG
    attrs = {n: n for n in _NOT_CONV if n in options}
    return reference_class(name, base, build, module=__name__, doc=doc, attrs=attrs)


_SPLINE = ("grid_size", "base_activation", "grid_range")
VGGKAN = _vgg(
    "VGGKAN", "kan", ("spline_order", *_SPLINE), mlp_kan,
    "VGG with B-spline KAN convolutions (``models.vggkan.VGGKAN``).",
)  # fmt: skip
FastVGGKAN = _vgg(
    "FastVGGKAN", "fastkan", _SPLINE, mlp_fastkan,
    "VGG with Gaussian-RBF (FastKAN) convolutions (``models.vggkan.FastVGGKAN``).",
)  # fmt: skip
VGGKALN = _vgg("VGGKALN", "kaln", ("degree",), mlp_kaln, "VGG with Legendre (KALN) convolutions.")
VGGKACN = _vgg("VGGKACN", "kacn", ("degree",), mlp_kacn, "VGG with Chebyshev (KACN) convolutions.")
VGGKAGN = _vgg(
    "VGGKAGN",
    "kagn",
    ("degree",),
    mlp_kagn,
    """VGG with Gram (KAGN) convolutions (``models.vggkan.VGGKAGN``); the published ``brivangl/vgg_kagn11_v2`` and
    ``vgg_kagn11_v4`` weights load into ``VGGKAGN(3, 1000, degree=5, width_scale=2, vgg_type="VGG11v2" or "VGG11v4",
    expected_feature_shape=(1, 1), affine=True)``.

    Examples:
        >>> model = VGGKAGN(3, 10, vgg_type="VGG11", width_scale=1, expected_feature_shape=(1, 1)).eval()
        >>> model(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """,
)
VGGKAGN_BN = _vgg(
    "VGGKAGN_BN",
    "bottleneck_kagn",
    ("degree",),
    mlp_kagn,
    """VGG with bottleneck Gram convolutions, 8× reduction (``models.vggkan.VGGKAGN_BN``); the published
    ``brivangl/vgg_kagn_bn11_v4`` weights load into ``VGGKAGN_BN(3, 1000, degree=5, dropout=0.15, width_scale=2,
    vgg_type="VGG11v4", expected_feature_shape=(1, 1), affine=True)``.""",
    extra={"dim_reduction": 8},
)
MoE_VGGKAGN_BN = _vgg(
    "MoE_VGGKAGN_BN", "moe_bottleneck_kagn", ("degree",), mlp_kagn,
    "VGG with mixture-of-experts bottleneck Gram convolutions; returns ``(logits, moe_loss)``.",
    extra={"dim_reduction": 8},
)  # fmt: skip
MoEVGGKAGN = _vgg(
    "MoEVGGKAGN", "moe_kagn", ("degree",), mlp_kagn,
    "VGG with mixture-of-experts Gram convolutions; returns ``(logits, moe_loss)``. As in the reference, its norms "
    "are the experts' default (instance norm).",
)  # fmt: skip
WavVVGKAN = _vgg(
    "WavVVGKAN", "wavkan", ("wavelet_type", "wav_version"), mlp_wav_kan,
    "VGG with wavelet (WavKAN) convolutions (``models.vggkan.WavVVGKAN``).",
)  # fmt: skip


# ------------------------------------------------------------------------------------------------- factories
def _factory(name: str, cls: type) -> Any:
    """The reference's factory ``name``: the class's signature and defaults, returning an instance."""
    return reference_function(name, cls, module=__name__, doc=f"torch-conv-kan's ``{name}``: ``{cls.__name__}(…)``.")


vggkan = _factory("vggkan", VGGKAN)
fast_vggkan = _factory("fast_vggkan", FastVGGKAN)
vggkaln = _factory("vggkaln", VGGKALN)
vggkacn = _factory("vggkacn", VGGKACN)
vggkagn = _factory("vggkagn", VGGKAGN)
vggkagn_bn = _factory("vggkagn_bn", VGGKAGN_BN)
moe_vggkagn_bn = _factory("moe_vggkagn_bn", MoE_VGGKAGN_BN)
moe_vggkagn = _factory("moe_vggkagn", MoEVGGKAGN)
vgg_wav_kan = _factory("vgg_wav_kan", WavVVGKAN)

__all__ = exports(globals(), "cfgs")
