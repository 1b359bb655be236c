"""The published KA convolution families as thin, named configurations of :class:`KAConvNd`.

Each family fixes a basis and where the squash, base branch, norm, activation and dropout sit, following the
reference implementation (torch-conv-kan) with its bugs fixed. Every keyword that :class:`KAConvNd` accepts can
still be overridden (``squash=``, ``activation=``, ``dropout_placement=``, ``bias=``, ``basis_init=`` …).

One deliberate departure: where the reference drops out the *squashed* input of a polynomial basis (KALN, KAGN,
KABN, KAHN), dropout here acts before the squash (``"basis_input"``). Inverted dropout scales the kept values by
``1/(1-p)``, which pushes them out of the basis' domain ([-1, 1], or [0, 1] for Bernstein) in training only; the
polynomials then see different distributions in training and evaluation and the BatchNorm statistics no longer fit
(the seed's KALN + BatchNorm collapse). Before the squash the values stay in the domain either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

import torch.nn as nn

from .._registry import Registry
from ._conv_base import ConvBase
from .factories import ActLayer, NormLayer
from .kan_conv import KAConvNd

__all__ = [
    "FastKANConv1d",
    "FastKANConv2d",
    "FastKANConv3d",
    "FastKANConvNd",
    "KABNConv1d",
    "KABNConv2d",
    "KABNConv3d",
    "KABNConvNd",
    "KACNConv1d",
    "KACNConv2d",
    "KACNConv3d",
    "KACNConvNd",
    "KAGNConv1d",
    "KAGNConv2d",
    "KAGNConv3d",
    "KAGNConvNd",
    "KAHNConv1d",
    "KAHNConv2d",
    "KAHNConv3d",
    "KAHNConvNd",
    "KAJNConv1d",
    "KAJNConv2d",
    "KAJNConv3d",
    "KAJNConvNd",
    "KALNConv1d",
    "KALNConv2d",
    "KALNConv3d",
    "KALNConvNd",
    "KANConv1d",
    "KANConv2d",
    "KANConv3d",
    "KANConvNd",
    "ReLUKANConv1d",
    "ReLUKANConv2d",
    "ReLUKANConv3d",
    "ReLUKANConvNd",
    "create_conv",
    "get_family",
    "list_families",
    "register_family",
]

Size = int | tuple[int, ...]
_FAMILIES: Registry[type[ConvBase]] = Registry("family")
C = TypeVar("C", bound=type[ConvBase])


def register_family(name: str, formula: str) -> Callable[[C], C]:
    """Register an N-D family class under ``name``; ``formula`` is its one-line summary (README, ``kanconvs list``)."""
    return _FAMILIES.register_class(name, formula)  # type: ignore[return-value]


def list_families() -> list[str]:
    """Names of the registered convolution families, in registration order."""
    return _FAMILIES.names()


def get_family(name: str) -> type[ConvBase]:
    return _FAMILIES.get(name)


def create_conv(
    family: str, in_channels: int, out_channels: int, kernel_size: Size, *, ndim: int = 2, **kwargs: Any
) -> nn.Module:
    """Build a KA convolution of a registered family, e.g. ``create_conv("kagn", 16, 32, 3, padding=1)``."""
    return get_family(family)(in_channels, out_channels, kernel_size, ndim=ndim, **kwargs)


class _FamilyConv(KAConvNd):
    """Merges a family's fixed configuration with the user's overrides."""

    family: str
    formula: str

    def _init_family(
        self,
        conv_args: tuple[Any, ...],
        basis: str,
        basis_kwargs: Mapping[str, Any],
        defaults: Mapping[str, Any],
        overrides: Mapping[str, Any],
    ) -> None:
        KAConvNd.__init__(self, *conv_args, basis=basis, basis_kwargs=basis_kwargs, **{**defaults, **overrides})


# The signature every family shares (torch-style positional conv arguments, family options keyword-only).
def _conv_args(
    in_channels: int,
    out_channels: int,
    kernel_size: Size,
    stride: Size,
    padding: Size | str,
    dilation: Size,
    groups: int,
) -> tuple[Any, ...]:
    return in_channels, out_channels, kernel_size, stride, padding, dilation, groups


@register_family("kan", "y = PReLU(norm(conv[GELU(x), B-splines_{G,k}(x)]))")
class KANConvNd(_FamilyConv):
    """B-spline KA convolution (KANConv): Cox–de Boor splines of order ``spline_order`` on ``grid_size`` cells."""

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
        grid_size: int = 5,
        spline_order: int = 3,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        base_activation: ActLayer = "gelu",
        dropout: float = 0.0,
        norm_layer: NormLayer = "instance",
        **kwargs: Any,
    ) -> None:
        self._init_family(
            _conv_args(in_channels, out_channels, kernel_size, stride, padding, dilation, groups),
            "bspline",
            {"grid_size": grid_size, "spline_order": spline_order, "grid_range": grid_range},
            {"squash": "none", "activation": "prelu", "dropout_placement": "output", "basis_init": "kaiming"},
            {"base_activation": base_activation, "dropout": dropout, "norm_layer": norm_layer, **kwargs},
        )


@register_family("fastkan", "y = conv[SiLU(x), exp(-((norm(x) - c_j)/h)^2)]  (Gaussian RBF, input norm)")
class FastKANConvNd(_FamilyConv):
    """Gaussian-RBF KA convolution (FastKANConv): the norm acts on the input of the basis; no output norm or act."""

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
        grid_size: int = 8,
        grid_range: tuple[float, float] = (-2.0, 2.0),
        base_activation: ActLayer = "silu",
        dropout: float = 0.0,
        norm_layer: NormLayer = "instance",
        **kwargs: Any,
    ) -> None:
        self._init_family(
            _conv_args(in_channels, out_channels, kernel_size, stride, padding, dilation, groups),
            "rbf",
            {"grid_size": grid_size, "grid_range": grid_range},
            {
                "squash": "none",
                "norm_position": "input",
                "activation": None,
                "dropout_placement": "basis_input",
                "basis_init": "kaiming",
            },
            {"base_activation": base_activation, "dropout": dropout, "norm_layer": norm_layer, **kwargs},
        )


class _DegreeFamily(_FamilyConv):
    """Families parameterised by a polynomial degree; subclasses set the basis and the fixed configuration."""

    _basis: ClassVar[str]
    _defaults: ClassVar[Mapping[str, Any]]

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
        degree: int = 3,
        dropout: float = 0.0,
        norm_layer: NormLayer = "instance",
        **kwargs: Any,
    ) -> None:
        self._init_family(
            _conv_args(in_channels, out_channels, kernel_size, stride, padding, dilation, groups),
            self._basis,
            {"degree": degree},
            self._defaults,
            {"dropout": dropout, "norm_layer": norm_layer, **kwargs},
        )


@register_family("kaln", "y = SiLU(norm(conv[x, P_0…P_D(minmax(x))]))  (Legendre)")
class KALNConvNd(_DegreeFamily):
    """Legendre KA convolution (KALNConv): per-sample min–max to [-1, 1], identity base branch."""

    _basis = "legendre"
    _defaults: ClassVar[Mapping[str, Any]] = {
        "squash": "minmax",
        "base_activation": None,
        "activation": "silu",
        "dropout_placement": "basis_input",
        "basis_init": "kaiming_stacked",
    }


@register_family("kacn", "y = norm(conv[T_0…T_D(tanh x)])  (Chebyshev, no base branch)")
class KACNConvNd(_DegreeFamily):
    """Chebyshev KA convolution (KACNConv): three-term recurrence on tanh(x); no base branch, no activation."""

    _basis = "chebyshev"
    _defaults: ClassVar[Mapping[str, Any]] = {
        "squash": "tanh",
        "use_base": False,
        "activation": None,
        "dropout_placement": "output",
        "basis_init": "normal",
    }


@register_family("kagn", "y = SiLU(norm(conv[SiLU(x), SiLU(p_0…p_D(tanh x))]))  (Gram, learnable β)")
class KAGNConvNd(_DegreeFamily):
    """Gram KA convolution (KAGNConv): Gram polynomials of tanh(x) with learnable recurrence, SiLU on the basis."""

    _basis = "gram"
    _defaults: ClassVar[Mapping[str, Any]] = {
        "squash": "tanh",
        "base_activation": "silu",
        "activation": "silu",
        "dropout_placement": "basis_input",
        "basis_init": "kaiming_stacked",
    }


@register_family("kabn", "y = SiLU(norm(conv[x, b_{0,D}…b_{D,D}(sigmoid x)]))  (Bernstein)")
class KABNConvNd(_DegreeFamily):
    """Bernstein KA convolution (KABNConv): the Bernstein basis of sigmoid(x), identity base branch."""

    _basis = "bernstein"
    _defaults: ClassVar[Mapping[str, Any]] = {
        "squash": "sigmoid",
        "base_activation": None,
        "activation": "silu",
        "dropout_placement": "basis_input",
        "basis_init": "kaiming_stacked",
    }


@register_family("kahn", "y = SiLU(norm(conv[SiLU(x), H_0…H_D(tanh x)]))  (Hermite)")
class KAHNConvNd(_DegreeFamily):
    """Hermite KA convolution (KAHNConv): physicists' Hermite polynomials of tanh(x), as RKAN uses them."""

    _basis = "hermite"
    _defaults: ClassVar[Mapping[str, Any]] = {
        "squash": "tanh",
        "base_activation": "silu",
        "activation": "silu",
        "dropout_placement": "basis_input",
        "basis_init": "normal",
    }


@register_family("kajn", "y = SiLU(norm(conv[x, P_0^(a,b)…P_D^(a,b)(tanh x)]))  (Jacobi)")
class KAJNConvNd(_FamilyConv):
    """Jacobi KA convolution (KAJNConv): Jacobi polynomials ``P^(α, β)`` of tanh(x), dropout on the basis."""

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
        degree: int = 3,
        alpha: float = 1.0,
        beta: float = 1.0,
        dropout: float = 0.0,
        norm_layer: NormLayer = "instance",
        **kwargs: Any,
    ) -> None:
        self._init_family(
            _conv_args(in_channels, out_channels, kernel_size, stride, padding, dilation, groups),
            "jacobi",
            {"degree": degree, "alpha": alpha, "beta": beta},
            {
                "squash": "tanh",
                "base_activation": None,
                "activation": "silu",
                "dropout_placement": "basis",
                "basis_init": "normal",
            },
            {"dropout": dropout, "norm_layer": norm_layer, **kwargs},
        )


@register_family("relukan", "y = SiLU(norm(conv[SiLU(x), (r·relu(x-a_j)·relu(b_j-x))^2]))  (ReLU-KAN)")
class ReLUKANConvNd(_FamilyConv):
    """ReLU-KAN convolution: squared ReLU bumps with trainable phases; dropout on the input of both branches."""

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
        grid_size: int = 5,
        order: int = 3,
        train_phases: bool = True,
        dropout: float = 0.0,
        norm_layer: NormLayer = "instance",
        **kwargs: Any,
    ) -> None:
        self._init_family(
            _conv_args(in_channels, out_channels, kernel_size, stride, padding, dilation, groups),
            "relu",
            {"grid_size": grid_size, "order": order, "train_phases": train_phases},
            {
                "squash": "none",
                "base_activation": "silu",
                "activation": "silu",
                "dropout_placement": "full",
                "basis_init": "kaiming",
            },
            {"dropout": dropout, "norm_layer": norm_layer, **kwargs},
        )


# Fixed-rank public names: logic-free subclasses, as torchvision's Conv2dNormActivation.
class KANConv1d(KANConvNd):
    _ndim = 1


class KANConv2d(KANConvNd):
    _ndim = 2


class KANConv3d(KANConvNd):
    _ndim = 3


class FastKANConv1d(FastKANConvNd):
    _ndim = 1


class FastKANConv2d(FastKANConvNd):
    _ndim = 2


class FastKANConv3d(FastKANConvNd):
    _ndim = 3


class KALNConv1d(KALNConvNd):
    _ndim = 1


class KALNConv2d(KALNConvNd):
    _ndim = 2


class KALNConv3d(KALNConvNd):
    _ndim = 3


class KACNConv1d(KACNConvNd):
    _ndim = 1


class KACNConv2d(KACNConvNd):
    _ndim = 2


class KACNConv3d(KACNConvNd):
    _ndim = 3


class KAGNConv1d(KAGNConvNd):
    _ndim = 1


class KAGNConv2d(KAGNConvNd):
    _ndim = 2


class KAGNConv3d(KAGNConvNd):
    _ndim = 3


class KAJNConv1d(KAJNConvNd):
    _ndim = 1


class KAJNConv2d(KAJNConvNd):
    _ndim = 2


class KAJNConv3d(KAJNConvNd):
    _ndim = 3


class KABNConv1d(KABNConvNd):
    _ndim = 1


class KABNConv2d(KABNConvNd):
    _ndim = 2


class KABNConv3d(KABNConvNd):
    _ndim = 3


class KAHNConv1d(KAHNConvNd):
    _ndim = 1


class KAHNConv2d(KAHNConvNd):
    _ndim = 2


class KAHNConv3d(KAHNConvNd):
    _ndim = 3


class ReLUKANConv1d(ReLUKANConvNd):
    _ndim = 1


class ReLUKANConv2d(ReLUKANConvNd):
    _ndim = 2


class ReLUKANConv3d(ReLUKANConvNd):
    _ndim = 3
