"""torch-conv-kan's convolution classes (``kan_convs``) with the reference's names, signatures and defaults.

They are thin subclasses of the kanconvs families, so code written for torch-conv-kan runs unchanged and gets the
fixed, vectorised layers. Reference checkpoints load directly (``layer.load_state_dict(reference_state_dict)``).
The attributes the reference's models read (``inputdim``, ``outdim``, ``degree``, ``norm_kwargs``, …) are kept.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

from torch import nn

from ..convert import reference_pre_hook
from ..layers.bottleneck import BottleneckKAConvNd
from ..layers.families import (
    FastKANConvNd,
    KABNConvNd,
    KACNConvNd,
    KAGNConvNd,
    KAJNConvNd,
    KALNConvNd,
    KANConvNd,
    ReLUKANConvNd,
)
from ..layers.ranks import RANKS
from ..layers.wavkan import WavKANConvNd
from ._generate import check_rank

_DIM_CLASSES = {n: (r.conv, r.conv_fn, r.instance_norm, r.batch_norm) for n, r in RANKS.items()}


class _ReferenceAttributes:
    """Attribute names that torch-conv-kan's models and PEFT code read from a layer."""

    torch_style: ClassVar[bool] = False  # the constructor is the reference's (see ConvBase.torch_style)

    def _set_reference_attributes(self, input_dim: int, output_dim: int, dropout: float, norm_kwargs: dict) -> None:
        cast(nn.Module, self).register_load_state_dict_pre_hook(reference_pre_hook)  # reference checkpoints load
        self.inputdim = input_dim
        self.outdim = output_dim
        self.p_dropout = dropout
        self.norm_kwargs = norm_kwargs


class KANConvNDLayer(_ReferenceAttributes, KANConvNd):
    def __init__(
        self,
        conv_class: type[nn.Module],
        norm_class: Callable[..., nn.Module],
        input_dim: int,
        output_dim: int,
        spline_order: int,
        kernel_size: int,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        ndim: int = 2,
        grid_size: int = 5,
        base_activation: Any = nn.GELU,
        grid_range: Sequence[float] = (-1, 1),
        dropout: float = 0.0,
        **norm_kwargs: Any,
    ) -> None:
        rank = check_rank(ndim, conv_class)
        super().__init__(
            input_dim, output_dim, kernel_size, stride, padding, dilation, groups, ndim=rank,
            grid_size=grid_size, spline_order=spline_order, grid_range=(grid_range[0], grid_range[1]),
            base_activation=base_activation, dropout=dropout, norm_layer=norm_class, norm_kwargs=norm_kwargs,
        )  # fmt: skip
        self._set_reference_attributes(input_dim, output_dim, dropout, norm_kwargs)


class FastKANConvNDLayer(_ReferenceAttributes, FastKANConvNd):
    def __init__(
        self,
        conv_class: type[nn.Module],
        norm_class: Callable[..., nn.Module],
        input_dim: int,
        output_dim: int,
        kernel_size: int,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        ndim: int = 2,
        grid_size: int = 8,
        base_activation: Any = nn.SiLU,
        grid_range: Sequence[float] = (-2, 2),
        dropout: float = 0.0,
        **norm_kwargs: Any,
    ) -> None:
        rank = check_rank(ndim, conv_class)
        super().__init__(
            input_dim, output_dim, kernel_size, stride, padding, dilation, groups, ndim=rank,
            grid_size=grid_size, grid_range=(grid_range[0], grid_range[1]), base_activation=base_activation,
            dropout=dropout, norm_layer=norm_class, norm_kwargs=norm_kwargs,
        )  # fmt: skip
        self._set_reference_attributes(input_dim, output_dim, dropout, norm_kwargs)


class _DegreeNDLayer(_ReferenceAttributes):
    """KALN / KAGN / KABN: ``(conv_class, norm_class, conv_w_fun, input_dim, output_dim, degree, kernel_size, …)``."""

    def __init__(
        self,
        conv_class: type[nn.Module],
        norm_class: Callable[..., nn.Module],
        conv_w_fun: Callable[..., Any],
        input_dim: int,
        output_dim: int,
        degree: int,
        kernel_size: int,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        dropout: float = 0.0,
        ndim: int = 2,
        **norm_kwargs: Any,
    ) -> None:
        rank = check_rank(ndim, conv_class, conv_w_fun)
        super().__init__(  # type: ignore[call-arg]
            input_dim, output_dim, kernel_size, stride, padding, dilation, groups, ndim=rank,
            degree=degree, dropout=dropout, norm_layer=norm_class, norm_kwargs=norm_kwargs,
        )  # fmt: skip
        self.degree = degree
        self.conv_w_fun = conv_w_fun
        self._set_reference_attributes(input_dim, output_dim, dropout, norm_kwargs)


class KALNConvNDLayer(_DegreeNDLayer, KALNConvNd):
    pass


class KAGNConvNDLayer(_DegreeNDLayer, KAGNConvNd):
    pass


class KABNConvNDLayer(_DegreeNDLayer, KABNConvNd):
    pass


class KACNConvNDLayer(_ReferenceAttributes, KACNConvNd):
    def __init__(
        self,
        conv_class: type[nn.Module],
        norm_class: Callable[..., nn.Module],
        input_dim: int,
        output_dim: int,
        degree: int,
        kernel_size: int,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        ndim: int = 2,
        dropout: float = 0.0,
        **norm_kwargs: Any,
    ) -> None:
        rank = check_rank(ndim, conv_class)
        super().__init__(
            input_dim, output_dim, kernel_size, stride, padding, dilation, groups, ndim=rank,
            degree=degree, dropout=dropout, norm_layer=norm_class, norm_kwargs=norm_kwargs,
        )  # fmt: skip
        self.degree = degree
        self._set_reference_attributes(input_dim, output_dim, dropout, norm_kwargs)


class KAJNConvNDLayer(_ReferenceAttributes, KAJNConvNd):
    def __init__(
        self,
        conv_class: type[nn.Module],
        norm_class: Callable[..., nn.Module],
        conv_w_fun: Callable[..., Any],
        input_dim: int,
        output_dim: int,
        degree: int,
        kernel_size: int,
        a: float = 1.0,
        b: float = 1.0,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        dropout: float = 0.0,
        ndim: int = 2,
        **norm_kwargs: Any,
    ) -> None:
        rank = check_rank(ndim, conv_class, conv_w_fun)
        super().__init__(
            input_dim, output_dim, kernel_size, stride, padding, dilation, groups, ndim=rank,
            degree=degree, alpha=a, beta=b, dropout=dropout, norm_layer=norm_class, norm_kwargs=norm_kwargs,
        )  # fmt: skip
        self.degree, self.a, self.b = degree, a, b
        self.conv_w_fun = conv_w_fun
        self._set_reference_attributes(input_dim, output_dim, dropout, norm_kwargs)


class ReLUConvNDLayer(_ReferenceAttributes, ReLUKANConvNd):
    def __init__(
        self,
        conv_class: type[nn.Module],
        norm_class: Callable[..., nn.Module],
        conv_w_fun: Callable[..., Any],
        input_dim: int,
        output_dim: int,
        kernel_size: int,
        g: int = 5,
        k: int = 3,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        dropout: float = 0.0,
        ndim: int = 2,
        train_ab: bool = True,
        **norm_kwargs: Any,
    ) -> None:
        rank = check_rank(ndim, conv_class, conv_w_fun)
        super().__init__(
            input_dim, output_dim, kernel_size, stride, padding, dilation, groups, ndim=rank,
            grid_size=g, order=k, train_phases=train_ab, dropout=dropout, norm_layer=norm_class,
            norm_kwargs=norm_kwargs,
        )  # fmt: skip
        self.g, self.k, self.train_ab = g, k, train_ab
        self.conv_w_fun = conv_w_fun
        self._set_reference_attributes(input_dim, output_dim, dropout, norm_kwargs)


_WAV_VERSIONS = ("base", "fast", "fast_plus_one")


class WavKANConvNDLayer(_ReferenceAttributes, WavKANConvNd):
    """``wav_version`` only chose how the reference looped; all three are the same math (and load alike)."""

    def __init__(
        self,
        conv_class: type[nn.Module],
        conv_class_plus1: type[nn.Module] | None,
        norm_class: Callable[..., nn.Module],
        input_dim: int,
        output_dim: int,
        kernel_size: int,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        wav_version: str = "base",
        ndim: int = 2,
        dropout: float = 0.0,
        wavelet_type: str = "mexican_hat",
        **norm_kwargs: Any,
    ) -> None:
        rank = check_rank(ndim, conv_class)
        if wav_version not in _WAV_VERSIONS:
            raise ValueError(f"wav_version must be one of {_WAV_VERSIONS}, got {wav_version!r}")
        super().__init__(
            input_dim, output_dim, kernel_size, stride, padding, dilation, groups, ndim=rank,
            wavelet_type=wavelet_type, dropout=dropout, norm_layer=norm_class, norm_kwargs=norm_kwargs,
        )  # fmt: skip
        self.wav_version = wav_version
        self._set_reference_attributes(input_dim, output_dim, dropout, norm_kwargs)


class BottleNeckKAGNConvNDLayer(_ReferenceAttributes, BottleneckKAConvNd):
    """The reference's Gram bottleneck: noise injection on the input when ``dropout > 0``."""

    def __init__(
        self,
        conv_class: type[nn.Module],
        norm_class: Callable[..., nn.Module],
        conv_w_fun: Callable[..., Any],
        input_dim: int,
        output_dim: int,
        degree: int,
        kernel_size: int,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        dropout: float = 0.0,
        ndim: int = 2,
        dim_reduction: float = 4,
        min_internal: int = 16,
        **norm_kwargs: Any,
    ) -> None:
        rank = check_rank(ndim, conv_class, conv_w_fun)
        super().__init__(
            input_dim, output_dim, kernel_size, stride, padding, dilation, groups, ndim=rank, family="kagn",
            degree=degree, dim_reduction=dim_reduction, min_internal=min_internal, dropout=dropout,
            dropout_type="noise", norm_layer=norm_class, norm_kwargs=norm_kwargs,
        )  # fmt: skip
        self.degree = degree
        self.conv_w_fun = conv_w_fun
        self.inner_dim = self.inner_channels
        self._set_reference_attributes(input_dim, output_dim, dropout, norm_kwargs)


class BottleNeckReLUConvNDLayer(_ReferenceAttributes, BottleneckKAConvNd):
    """The reference's ReLU-KAN bottleneck: channel dropout on the input when ``dropout > 0``."""

    def __init__(
        self,
        conv_class: type[nn.Module],
        norm_class: Callable[..., nn.Module],
        conv_w_fun: Callable[..., Any],
        input_dim: int,
        output_dim: int,
        kernel_size: int,
        g: int = 5,
        k: int = 3,
        groups: int = 1,
        padding: int = 0,
        stride: int = 1,
        dilation: int = 1,
        dropout: float = 0.0,
        ndim: int = 2,
        train_ab: bool = True,
        dim_reduction: float = 4,
        min_internal: int = 16,
        **norm_kwargs: Any,
    ) -> None:
        rank = check_rank(ndim, conv_class, conv_w_fun)
        super().__init__(
            input_dim, output_dim, kernel_size, stride, padding, dilation, groups, ndim=rank, family="relukan",
            grid_size=g, order=k, train_phases=train_ab, dim_reduction=dim_reduction, min_internal=min_internal,
            dropout=dropout, dropout_type="dropout", norm_layer=norm_class, norm_kwargs=norm_kwargs,
        )  # fmt: skip
        self.g, self.k, self.train_ab = g, k, train_ab
        self.conv_w_fun = conv_w_fun
        self.inner_dim = self.inner_channels
        self._set_reference_attributes(input_dim, output_dim, dropout, norm_kwargs)


# ------------------------------------------------------------------------------------------ fixed-rank wrappers
# Each reference family has three wrappers that differ only in rank; they are generated from one parameter list so
# that ``inspect.signature`` shows exactly the reference's signature.
_P = inspect.Parameter


def _params(*spec: tuple[str, Any]) -> list[inspect.Parameter]:
    return [_P(n, _P.POSITIONAL_OR_KEYWORD, default=d) for n, d in spec]


_REQUIRED = [_P(n, _P.POSITIONAL_OR_KEYWORD) for n in ("input_dim", "output_dim", "kernel_size")]
_GEOMETRY = (("groups", 1), ("padding", 0), ("stride", 1), ("dilation", 1))
_NORM_DEFAULT = object()  # replaced by InstanceNorm{d}d / BatchNorm{d}d per rank


def _make_wrapper(name: str, base: type, params: list[inspect.Parameter], ndim: int) -> type:
    conv, conv_fun, instance_norm, batch_norm = _DIM_CLASSES[ndim]
    params = [
        p.replace(default=(batch_norm if base is WavKANConvNDLayer else instance_norm))
        if p.default is _NORM_DEFAULT
        else p
        for p in params
    ]
    signature = inspect.Signature([*_REQUIRED, *params, _P("norm_kwargs", _P.VAR_KEYWORD)])
    base_params = inspect.signature(base.__init__).parameters  # type: ignore[misc]

    def __init__(self: nn.Module, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        norm_kwargs = values.pop("norm_kwargs")
        norm_layer = values.pop("norm_layer")
        fixed: dict[str, Any] = {"conv_class": conv, "norm_class": norm_layer, "ndim": ndim}
        if "conv_w_fun" in base_params:
            fixed["conv_w_fun"] = conv_fun
        if "conv_class_plus1" in base_params:
            fixed["conv_class_plus1"] = {1: nn.Conv2d, 2: nn.Conv3d}.get(ndim)
        base.__init__(self, **fixed, **values, **norm_kwargs)  # type: ignore[misc]

    __init__.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [_P("self", _P.POSITIONAL_OR_KEYWORD), *signature.parameters.values()]
    )
    cls = type(name, (base,), {"__init__": __init__, "__module__": __name__, "__qualname__": name})
    cls.__doc__ = f"torch-conv-kan's ``{name}``: :class:`{base.__name__}` fixed to {ndim} spatial dimensions."
    return cls


_WRAPPER_PARAMS: dict[str, tuple[type, list[inspect.Parameter]]] = {
    "KANConv{d}DLayer": (
        KANConvNDLayer,
        _params(
            ("spline_order", 3), *_GEOMETRY, ("grid_size", 5), ("base_activation", nn.GELU),
            ("grid_range", (-1, 1)), ("dropout", 0.0), ("norm_layer", _NORM_DEFAULT),
        ),
    ),
    "FastKANConv{d}DLayer": (
        FastKANConvNDLayer,
        _params(
            *_GEOMETRY, ("grid_size", 8), ("base_activation", nn.SiLU), ("grid_range", (-2, 2)), ("dropout", 0.0),
            ("norm_layer", _NORM_DEFAULT),
        ),
    ),
    "KALNConv{d}DLayer": (
        KALNConvNDLayer, _params(("degree", 3), *_GEOMETRY, ("dropout", 0.0), ("norm_layer", _NORM_DEFAULT))
    ),
    "KAGNConv{d}DLayer": (
        KAGNConvNDLayer, _params(("degree", 3), *_GEOMETRY, ("dropout", 0.0), ("norm_layer", _NORM_DEFAULT))
    ),
    "KABNConv{d}DLayer": (
        KABNConvNDLayer, _params(("degree", 3), *_GEOMETRY, ("dropout", 0.0), ("norm_layer", _NORM_DEFAULT))
    ),
    "KACNConv{d}DLayer": (
        KACNConvNDLayer, _params(("degree", 3), *_GEOMETRY, ("dropout", 0.0), ("norm_layer", _NORM_DEFAULT))
    ),
    "KAJNConv{d}DLayer": (
        KAJNConvNDLayer, _params(("degree", 3), *_GEOMETRY, ("dropout", 0.0), ("norm_layer", _NORM_DEFAULT))
    ),
    "WavKANConv{d}DLayer": (
        WavKANConvNDLayer,
        _params(
            *_GEOMETRY, ("dropout", 0.0), ("wavelet_type", "mexican_hat"), ("norm_layer", _NORM_DEFAULT),
            ("wav_version", "fast"),
        ),
    ),
    "ReLUKANConv{d}DLayer": (
        ReLUConvNDLayer,
        _params(("g", 5), ("k", 3), ("train_ab", True), *_GEOMETRY, ("dropout", 0.0), ("norm_layer", _NORM_DEFAULT)),
    ),
    "BottleNeckKAGNConv{d}DLayer": (
        BottleNeckKAGNConvNDLayer,
        _params(
            ("degree", 3), *_GEOMETRY, ("dropout", 0.0), ("norm_layer", _NORM_DEFAULT), ("dim_reduction", 4),
        ),
    ),
    "BottleNeckReLUKANConv{d}DLayer": (
        BottleNeckReLUConvNDLayer,
        _params(("g", 5), ("k", 3), ("train_ab", True), *_GEOMETRY, ("dropout", 0.0), ("norm_layer", _NORM_DEFAULT)),
    ),
}  # fmt: skip

for _template, (_base, _wrapper_params) in _WRAPPER_PARAMS.items():
    for _d in (1, 2, 3):
        _name = _template.format(d=_d)
        globals()[_name] = _make_wrapper(_name, _base, _wrapper_params, _d)

__all__ = [
    "BottleNeckKAGNConvNDLayer",
    "BottleNeckReLUConvNDLayer",
    "FastKANConvNDLayer",
    "KABNConvNDLayer",
    "KACNConvNDLayer",
    "KAGNConvNDLayer",
    "KAJNConvNDLayer",
    "KALNConvNDLayer",
    "KANConvNDLayer",
    "ReLUConvNDLayer",
    "WavKANConvNDLayer",
    *[t.format(d=d) for t in _WRAPPER_PARAMS for d in (1, 2, 3)],
]
