"""The published KA convolution families: thin public names over :class:`KAConvNd`, each driven by its
:class:`~kanconvs.layers.spec.FamilySpec` (basis, declared options, placements; see :mod:`kanconvs.layers.spec`).

Every keyword that :class:`KAConvNd` accepts can still be overridden per layer (``squash=``, ``activation=``,
``dropout_placement=``, ``bias=``, ``basis_init=`` …) next to the family's own options (``degree=`` …).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from .._registry import Registry
from ._conv_base import ConvBase
from .kan_conv import KAConvNd
from .spec import FamilySpec, attach_spec, init_from_spec

__all__ = [
    "FamilyConvNd",
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


_EMPTY = inspect.Parameter.empty
_CONV_POSITIONAL = {"in_channels": _EMPTY, "out_channels": _EMPTY, "kernel_size": _EMPTY, "stride": 1, "padding": 0,
                    "dilation": 1, "groups": 1}  # fmt: skip


class FamilyConvNd(KAConvNd):
    """A KA convolution configured by a :class:`~kanconvs.layers.spec.FamilySpec`.

    A subclass names its family (``class KAGNConvNd(FamilyConvNd, family="kagn")``) and is registered under it; its
    constructor takes the torch-style positional conv arguments, the family's declared options and any
    :class:`KAConvNd` keyword, which override the family's configuration.
    """

    spec: ClassVar[FamilySpec]
    family: str
    formula: str

    def __init_subclass__(cls, family: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        attach_spec(cls, family, FamilyConvNd.__init__, lambda s: register_family(s.name, s.formula), _CONV_POSITIONAL)

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Size,
        stride: Size = 1,
        padding: Size | str = 0,
        dilation: Size = 1,
        groups: int = 1,
        **kwargs: Any,
    ) -> None:
        args = (in_channels, out_channels, kernel_size, stride, padding, dilation, groups)
        init_from_spec(self, KAConvNd, self.spec.conv, args, kwargs)


class KANConvNd(FamilyConvNd, family="kan"):
    """B-spline KA convolution (KANConv): Cox–de Boor splines of order ``spline_order`` on ``grid_size`` cells.

    Options: ``grid_size=5``, ``spline_order=3``, ``grid_range=(-1, 1)``.
    """


class FastKANConvNd(FamilyConvNd, family="fastkan"):
    """Gaussian-RBF KA convolution (FastKANConv): the norm acts on the input of the basis; no output norm or act.

    Options: ``grid_size=8``, ``grid_range=(-2, 2)``, ``denominator=None`` (the grid spacing).
    """


class KALNConvNd(FamilyConvNd, family="kaln"):
    """Legendre KA convolution (KALNConv): per-sample min–max to [-1, 1], identity base branch.

    Options: ``degree=3``.
    """


class KACNConvNd(FamilyConvNd, family="kacn"):
    """Chebyshev KA convolution (KACNConv): three-term recurrence on tanh(x); no base branch, no activation.

    Options: ``degree=3``.
    """


class KAGNConvNd(FamilyConvNd, family="kagn"):
    """Gram KA convolution (KAGNConv): Gram polynomials of tanh(x) with learnable recurrence, SiLU on the basis.

    Options: ``degree=3``, ``basis_activation="silu"`` (applied to every polynomial).
    """


class KABNConvNd(FamilyConvNd, family="kabn"):
    """Bernstein KA convolution (KABNConv): the Bernstein basis of sigmoid(x), identity base branch.

    Options: ``degree=3``.
    """


class KAHNConvNd(FamilyConvNd, family="kahn"):
    """Hermite KA convolution (KAHNConv): physicists' Hermite polynomials of tanh(x), as RKAN uses them.

    Options: ``degree=3``.
    """


class KAJNConvNd(FamilyConvNd, family="kajn"):
    """Jacobi KA convolution (KAJNConv): Jacobi polynomials ``P^(α, β)`` of tanh(x), dropout on the basis.

    Options: ``degree=3``, ``alpha=1.0``, ``beta=1.0``.
    """


class ReLUKANConvNd(FamilyConvNd, family="relukan"):
    """ReLU-KAN convolution: squared ReLU bumps with trainable phases; dropout on the input of both branches.

    Options: ``grid_size=5``, ``order=3``, ``train_phases=True``.
    """


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
