"""torch-conv-kan's ``models/vggkan.py`` names: the VGG classes and factories with the reference's signatures.

Each builds a :class:`~kanconvs.models.VGGKANet` with the reference's configuration; the module layout is the
reference's, so its checkpoints (including the published ``brivangl/vgg_kagn*`` weights) load with
``load_state_dict``. The MoE models return ``(logits, moe_loss)`` as in the reference (the loss is the sum of the
MoE layers' balance losses, :meth:`~kanconvs.layers.moe.MoEKAConvNd.regularization_loss`; the reference's sum was
always 0 in some of its models). See :mod:`kanconvs.models.vggkan` for the fixed reference bugs. ``wav_version``
only chose how the reference looped (same math). MoE checkpoints are not converted (see :mod:`kanconvs.compat.moe`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from ...convert import reference_pre_hook
from ...layers.moe import MoEKAConvNd
from ...models.vggkan import VGG_LAYERS, VGGKANet
from .._generate import reference_function
from ..kans import mlp_fastkan, mlp_kacn, mlp_kagn, mlp_kaln, mlp_kan, mlp_wav_kan

__all__ = [
    "VGGKACN",
    "VGGKAGN",
    "VGGKAGN_BN",
    "VGGKALN",
    "VGGKAN",
    "FastVGGKAN",
    "MoEVGGKAGN",
    "MoE_VGGKAGN_BN",
    "WavVVGKAN",
    "cfgs",
    "fast_vggkan",
    "moe_vggkagn",
    "moe_vggkagn_bn",
    "vgg_wav_kan",
    "vggkacn",
    "vggkagn",
    "vggkagn_bn",
    "vggkaln",
    "vggkan",
]


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


class _ReferenceVGG(VGGKANet):
    """Maps the reference's constructor arguments onto :class:`VGGKANet`."""

    def _init_reference(
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
        VGGKANet.__init__(
            self, vgg_type, family, in_channels=input_channels, num_classes=num_classes, width_scale=width_scale,
            groups=groups, dropout=dropout, head=_HEADS[head_type], head_dropout=dropout_linear,
            head_family=partial(kan_mlp, dropout=dropout_linear, l1_decay=l1_decay), pool_size=expected_feature_shape,
            last_attention=last_attention, attention_projection=sa_inner_projection, **conv_kwargs,
        )  # fmt: skip
        self.register_load_state_dict_pre_hook(reference_pre_hook)  # reference checkpoints load as they are


class _ReferenceMoEVGG(_ReferenceVGG):
    def forward(self, x: Tensor) -> Any:
        """``(logits, moe_loss)``: the MoE layers' balance losses of this forward pass, times their ``loss_coef``."""
        logits = super().forward(x)
        losses = []
        for m in self.modules():
            if isinstance(m, MoEKAConvNd) and (balance := m.balance_loss) is not None:
                losses.append(m.loss_coef * balance.float())
        return logits, torch.stack(losses).sum()


def _norm(norm_layer: Norm, affine: bool) -> dict[str, Any]:
    return {"norm_layer": norm_layer, "norm_kwargs": {"affine": affine}}


class VGGKAN(_ReferenceVGG):
    """VGG with B-spline KAN convolutions (``models.vggkan.VGGKAN``)."""

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        groups: int = 1,
        spline_order: int = 3,
        grid_size: int = 5,
        base_activation: Any = nn.GELU,
        grid_range: Sequence[float] = [-1, 1],  # the reference's default, never mutated
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        dropout_linear: float = 0.25,
        vgg_type: str = "VGG11",
        head_type: str = "Linear",
        expected_feature_shape: Sequence[int] = (7, 7),
        width_scale: int = 1,
        affine: bool = False,
        norm_layer: Norm = nn.InstanceNorm2d,
    ) -> None:
        spline = {"spline_order": spline_order, "grid_size": grid_size, "base_activation": base_activation}
        spline["grid_range"] = (grid_range[0], grid_range[1])
        self._init_reference(
            "kan", {**spline, **_norm(norm_layer, affine)}, partial(mlp_kan, **spline), input_channels=input_channels,
            num_classes=num_classes, groups=groups, dropout=dropout, l1_decay=l1_decay, dropout_linear=dropout_linear,
            vgg_type=vgg_type, head_type=head_type, expected_feature_shape=expected_feature_shape,
            width_scale=width_scale,
        )  # fmt: skip


class FastVGGKAN(_ReferenceVGG):
    """VGG with Gaussian-RBF (FastKAN) convolutions (``models.vggkan.FastVGGKAN``)."""

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        groups: int = 1,
        grid_size: int = 5,
        base_activation: Any = nn.GELU,
        grid_range: Sequence[float] = [-1, 1],  # the reference's default, never mutated
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        dropout_linear: float = 0.25,
        vgg_type: str = "VGG11",
        head_type: str = "Linear",
        expected_feature_shape: Sequence[int] = (7, 7),
        width_scale: int = 1,
        affine: bool = False,
        norm_layer: Norm = nn.InstanceNorm2d,
    ) -> None:
        rbf = {"grid_size": grid_size, "base_activation": base_activation, "grid_range": (grid_range[0], grid_range[1])}
        self._init_reference(
            "fastkan", {**rbf, **_norm(norm_layer, affine)}, partial(mlp_fastkan, **rbf),
            input_channels=input_channels, num_classes=num_classes, groups=groups, dropout=dropout, l1_decay=l1_decay,
            dropout_linear=dropout_linear, vgg_type=vgg_type, head_type=head_type,
            expected_feature_shape=expected_feature_shape, width_scale=width_scale,
        )  # fmt: skip


class _DegreeVGG(_ReferenceVGG):
    """The polynomial families: ``(…, degree, dropout, l1_decay, …, affine, norm_layer)``."""

    _family: str
    _kan_mlp: Callable[..., nn.Module]

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        groups: int = 1,
        degree: int = 3,
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        dropout_linear: float = 0.25,
        vgg_type: str = "VGG11",
        head_type: str = "Linear",
        expected_feature_shape: Sequence[int] = (7, 7),
        width_scale: int = 1,
        affine: bool = False,
        norm_layer: Norm = nn.InstanceNorm2d,
    ) -> None:
        self._init_reference(
            self._family, {"degree": degree, **_norm(norm_layer, affine)}, partial(type(self)._kan_mlp, degree=degree),
            input_channels=input_channels, num_classes=num_classes, groups=groups, dropout=dropout, l1_decay=l1_decay,
            dropout_linear=dropout_linear, vgg_type=vgg_type, head_type=head_type,
            expected_feature_shape=expected_feature_shape, width_scale=width_scale,
        )  # fmt: skip


class VGGKALN(_DegreeVGG):
    """VGG with Legendre (KALN) convolutions (``models.vggkan.VGGKALN``)."""

    _family, _kan_mlp = "kaln", mlp_kaln


class VGGKACN(_DegreeVGG):
    """VGG with Chebyshev (KACN) convolutions (``models.vggkan.VGGKACN``)."""

    _family, _kan_mlp = "kacn", mlp_kacn


class _GramVGG(_ReferenceVGG):
    """The Gram families with self-attention: ``(…, norm_layer, last_attention, sa_inner_projection)``."""

    _family: str
    _extra: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        groups: int = 1,
        degree: int = 3,
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        dropout_linear: float = 0.25,
        vgg_type: str = "VGG11",
        head_type: str = "Linear",
        expected_feature_shape: Sequence[int] = (7, 7),
        width_scale: int = 1,
        affine: bool = False,
        norm_layer: Norm = nn.InstanceNorm2d,
        last_attention: bool = False,
        sa_inner_projection: int | None = None,
    ) -> None:
        self._init_gram(dict(locals()), {})

    def _init_gram(self, args: dict[str, Any], moe: dict[str, Any]) -> None:
        args.pop("self")
        args.pop("__class__", None)
        degree, norm_layer, affine = args.pop("degree"), args.pop("norm_layer"), args.pop("affine")
        conv = {"degree": degree, **self._extra, **_norm(norm_layer, affine), **moe}
        self._init_reference(self._family, conv, partial(mlp_kagn, degree=degree), **args)


class VGGKAGN(_GramVGG):
    """VGG with Gram (KAGN) convolutions (``models.vggkan.VGGKAGN``); the published ``brivangl/vgg_kagn11_v2`` and
    ``vgg_kagn11_v4`` weights load into ``VGGKAGN(3, 1000, degree=5, width_scale=2, vgg_type="VGG11v2" or "VGG11v4",
    expected_feature_shape=(1, 1), affine=True)``.

    Examples:
        >>> model = VGGKAGN(3, 10, vgg_type="VGG11", width_scale=1, expected_feature_shape=(1, 1)).eval()
        >>> model(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 10])
    """

    _family = "kagn"


class VGGKAGN_BN(_GramVGG):
    """VGG with bottleneck Gram convolutions, 8× reduction (``models.vggkan.VGGKAGN_BN``); the published
    ``brivangl/vgg_kagn_bn11_v4`` weights load into ``VGGKAGN_BN(3, 1000, degree=5, dropout=0.15, width_scale=2,
    vgg_type="VGG11v4", expected_feature_shape=(1, 1), affine=True)``."""

    _family, _extra = "bottleneck_kagn", {"dim_reduction": 8}


class MoE_VGGKAGN_BN(_ReferenceMoEVGG, _GramVGG):
    """VGG with mixture-of-experts bottleneck Gram convolutions (``models.vggkan.MoE_VGGKAGN_BN``);
    returns ``(logits, moe_loss)``."""

    _family, _extra = "moe_bottleneck_kagn", {"dim_reduction": 8}

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        groups: int = 1,
        degree: int = 3,
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        dropout_linear: float = 0.25,
        vgg_type: str = "VGG11",
        head_type: str = "Linear",
        expected_feature_shape: Sequence[int] = (7, 7),
        width_scale: int = 1,
        affine: bool = False,
        norm_layer: Norm = nn.InstanceNorm2d,
        num_experts: int = 8,
        noisy_gating: bool = True,
        k: int = 2,
        last_attention: bool = False,
        sa_inner_projection: int | None = None,
    ) -> None:
        moe = {"num_experts": num_experts, "noisy_gating": noisy_gating, "k": k}
        args = {n: v for n, v in locals().items() if n not in (*moe, "moe")}
        self._init_gram(args, moe)


class MoEVGGKAGN(_ReferenceMoEVGG, _GramVGG):
    """VGG with mixture-of-experts Gram convolutions (``models.vggkan.MoEVGGKAGN``); returns ``(logits, moe_loss)``.
    As in the reference, its norms are the experts' default (instance norm)."""

    _family = "moe_kagn"

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        groups: int = 1,
        degree: int = 3,
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        dropout_linear: float = 0.25,
        vgg_type: str = "VGG11",
        head_type: str = "Linear",
        expected_feature_shape: Sequence[int] = (7, 7),
        width_scale: int = 1,
        affine: bool = False,
        num_experts: int = 8,
        noisy_gating: bool = True,
        k: int = 2,
    ) -> None:
        moe = {"num_experts": num_experts, "noisy_gating": noisy_gating, "k": k}
        args = {n: v for n, v in locals().items() if n not in (*moe, "moe")}
        self._init_gram({**args, "norm_layer": nn.InstanceNorm2d}, moe)


class WavVVGKAN(_ReferenceVGG):
    """VGG with wavelet (WavKAN) convolutions (``models.vggkan.WavVVGKAN``)."""

    def __init__(
        self,
        input_channels: int,
        num_classes: int,
        groups: int = 1,
        wavelet_type: str = "mexican_hat",
        wav_version: str = "fast",
        dropout: float = 0.0,
        l1_decay: float = 0.0,
        dropout_linear: float = 0.25,
        vgg_type: str = "VGG11",
        head_type: str = "Linear",
        expected_feature_shape: Sequence[int] = (7, 7),
        width_scale: int = 1,
        norm_layer: Norm = nn.InstanceNorm2d,
        affine: bool = False,
    ) -> None:
        if wav_version not in ("base", "fast", "fast_plus_one"):
            raise ValueError(f"wav_version must be 'base', 'fast' or 'fast_plus_one', got {wav_version!r}")
        self.wav_version = wav_version
        self._init_reference(
            "wavkan", {"wavelet_type": wavelet_type, **_norm(norm_layer, affine)},
            partial(mlp_wav_kan, wavelet_type=wavelet_type), input_channels=input_channels, num_classes=num_classes,
            groups=groups, dropout=dropout, l1_decay=l1_decay, dropout_linear=dropout_linear, vgg_type=vgg_type,
            head_type=head_type, expected_feature_shape=expected_feature_shape, width_scale=width_scale,
        )  # fmt: skip


# ------------------------------------------------------------------------------------------------- factories
def _factory(name: str, cls: type) -> Any:
    """The reference's factory ``name``: the class's own signature and defaults, returning an instance."""
    doc = f"torch-conv-kan's ``{name}``: ``{cls.__name__}(…)``."
    return reference_function(name, inspect.signature(cls), cls, dict, module=__name__, doc=doc)


vggkan = _factory("vggkan", VGGKAN)


fast_vggkan = _factory("fast_vggkan", FastVGGKAN)


vggkaln = _factory("vggkaln", VGGKALN)


vggkacn = _factory("vggkacn", VGGKACN)


vggkagn = _factory("vggkagn", VGGKAGN)


vggkagn_bn = _factory("vggkagn_bn", VGGKAGN_BN)


def moe_vggkagn_bn(
    input_channels: int,
    num_classes: int,
    groups: int = 1,
    degree: int = 3,
    dropout: float = 0.0,
    l1_decay: float = 0.0,
    dropout_linear: float = 0.25,
    vgg_type: str = "VGG11",
    head_type: str = "Linear",
    expected_feature_shape: Sequence[int] = (7, 7),
    width_scale: int = 1,
    affine: bool = False,
    norm_layer: Norm = nn.InstanceNorm2d,
    last_attention: bool = False,
    sa_inner_projection: int | None = None,
    num_experts: int = 8,
    noisy_gating: bool = True,
    k: int = 2,
) -> MoE_VGGKAGN_BN:
    return MoE_VGGKAGN_BN(**locals())


def moe_vggkagn(
    input_channels: int,
    num_classes: int,
    groups: int = 1,
    degree: int = 3,
    dropout: float = 0.0,
    l1_decay: float = 0.0,
    dropout_linear: float = 0.25,
    vgg_type: str = "VGG11",
    head_type: str = "Linear",
    expected_feature_shape: Sequence[int] = (7, 7),
    width_scale: int = 1,
    num_experts: int = 8,
    noisy_gating: bool = True,
    k: int = 2,
    affine: bool = False,
) -> MoEVGGKAGN:
    return MoEVGGKAGN(**locals())


vgg_wav_kan = _factory("vgg_wav_kan", WavVVGKAN)
