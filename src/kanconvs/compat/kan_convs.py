"""torch-conv-kan's convolution classes (``kan_convs``) with the reference's names, signatures and defaults.

They are thin subclasses of the kanconvs families, so code written for torch-conv-kan runs unchanged and gets the
fixed, vectorised layers. Reference checkpoints load directly (``layer.load_state_dict(reference_state_dict)``).
The attributes the reference's models read (``inputdim``, ``outdim``, ``degree``, ``norm_kwargs``, …) are kept.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

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
from ._generate import REQUIRED, Values, check_rank, reference_class, signature

_DIM_CLASSES = {n: (r.conv, r.conv_fn, r.instance_norm, r.batch_norm) for n, r in RANKS.items()}


class _ReferenceAttributes:
    """The reference's N-D classes: their constructors are torch-conv-kan's (see ``ConvBase.torch_style``)."""

    torch_style: ClassVar[bool] = False


# ------------------------------------------------------------------------------------------------ N-D classes
# One row per reference N-D class: its signature (the rank's classes first, as the reference takes them), the kanconvs
# layer it becomes, how its own options map to that layer's, and the attributes the reference's code reads.
_CLS, _NORM, _FUN = ("conv_class", REQUIRED), ("norm_class", REQUIRED), ("conv_w_fun", REQUIRED)
_IO = (("input_dim", REQUIRED), ("output_dim", REQUIRED))
_KS, _DROP, _ND = ("kernel_size", REQUIRED), ("dropout", 0.0), ("ndim", 2)
_GEO = (("groups", 1), ("padding", 0), ("stride", 1), ("dilation", 1))
_RELU_OPTIONS = {"g": "grid_size", "k": "order", "train_ab": "train_phases"}


def _grid_range(r: Sequence[float]) -> tuple[float, float]:
    return (r[0], r[1])


def _nd_class(
    name: str, base: type, params: tuple[tuple[str, Any], ...], options: dict[str, str], *,
    fixed: Values | None = None, attrs: tuple[str, ...] = (), check: Callable[[Values], None] | None = None,
    doc: str = "",
) -> Any:  # fmt: skip
    """``options`` maps reference arguments to the layer's keywords (``grid_range`` is made a pair)."""

    def build(v: Values) -> Values:
        if check is not None:
            check(v)
        rank = check_rank(v["ndim"], v["conv_class"], v.get("conv_w_fun"))
        kw = {ours: _grid_range(v[ref]) if ref == "grid_range" else v[ref] for ref, ours in options.items()}
        return {
            "in_channels": v["input_dim"], "out_channels": v["output_dim"], "kernel_size": v["kernel_size"],
            "stride": v["stride"], "padding": v["padding"], "dilation": v["dilation"], "groups": v["groups"],
            "ndim": rank, "dropout": v["dropout"], "norm_layer": v["norm_class"], "norm_kwargs": v["norm_kwargs"],
            **(fixed or {}), **kw,
        }  # fmt: skip

    def after(self: Any, v: Values) -> None:
        self.register_load_state_dict_pre_hook(reference_pre_hook)  # reference checkpoints load
        self.inputdim, self.outdim, self.p_dropout, self.norm_kwargs = (
            v["input_dim"], v["output_dim"], v["dropout"], v["norm_kwargs"]
        )  # fmt: skip
        for attr in attrs:
            setattr(self, attr, v[attr])
        if hasattr(self, "inner_channels"):  # the bottlenecks
            self.inner_dim = self.inner_channels

    bases = (_ReferenceAttributes, base)
    sig = signature(*params, var_keyword="norm_kwargs")
    return reference_class(name, bases, sig, build, module=__name__, doc=doc or f"torch-conv-kan's ``{name}``.",
                           after=after)  # fmt: skip


def _check_wav_version(v: Values) -> None:
    if v["wav_version"] not in _WAV_VERSIONS:
        raise ValueError(f"wav_version must be one of {_WAV_VERSIONS}, got {v['wav_version']!r}")


_WAV_VERSIONS = ("base", "fast", "fast_plus_one")
KANConvNDLayer = _nd_class(
    "KANConvNDLayer",
    KANConvNd,
    (
        _CLS,
        _NORM,
        *_IO,
        ("spline_order", REQUIRED),
        _KS,
        *_GEO,
        _ND,
        ("grid_size", 5),
        ("base_activation", nn.GELU),
        ("grid_range", (-1, 1)),
        _DROP,
    ),
    {
        "spline_order": "spline_order",
        "grid_size": "grid_size",
        "base_activation": "base_activation",
        "grid_range": "grid_range",
    },
)
FastKANConvNDLayer = _nd_class(
    "FastKANConvNDLayer",
    FastKANConvNd,
    (
        _CLS,
        _NORM,
        *_IO,
        _KS,
        *_GEO,
        _ND,
        ("grid_size", 8),
        ("base_activation", nn.SiLU),
        ("grid_range", (-2, 2)),
        _DROP,
    ),
    {"grid_size": "grid_size", "base_activation": "base_activation", "grid_range": "grid_range"},
)
_DEGREE = (_CLS, _NORM, _FUN, *_IO, ("degree", REQUIRED), _KS, *_GEO, _DROP, _ND)
_DEGREE_ATTRS = ("degree", "conv_w_fun")
KALNConvNDLayer = _nd_class(
    "KALNConvNDLayer", KALNConvNd, _DEGREE, {"degree": "degree"}, attrs=("degree", "conv_w_fun")
)
KAGNConvNDLayer = _nd_class(
    "KAGNConvNDLayer", KAGNConvNd, _DEGREE, {"degree": "degree"}, attrs=("degree", "conv_w_fun")
)
KABNConvNDLayer = _nd_class(
    "KABNConvNDLayer", KABNConvNd, _DEGREE, {"degree": "degree"}, attrs=("degree", "conv_w_fun")
)
KACNConvNDLayer = _nd_class(
    "KACNConvNDLayer",
    KACNConvNd,
    (_CLS, _NORM, *_IO, ("degree", REQUIRED), _KS, *_GEO, _ND, _DROP),
    {"degree": "degree"},
    attrs=("degree",),
)
KAJNConvNDLayer = _nd_class(
    "KAJNConvNDLayer",
    KAJNConvNd,
    (_CLS, _NORM, _FUN, *_IO, ("degree", REQUIRED), _KS, ("a", 1.0), ("b", 1.0), *_GEO, _DROP, _ND),
    {"degree": "degree", "a": "alpha", "b": "beta"},
    attrs=("degree", "a", "b", "conv_w_fun"),
)
_RELU = (_CLS, _NORM, _FUN, *_IO, _KS, ("g", 5), ("k", 3), *_GEO, _DROP, _ND, ("train_ab", True))
ReLUConvNDLayer = _nd_class(
    "ReLUConvNDLayer", ReLUKANConvNd, _RELU, _RELU_OPTIONS, attrs=("g", "k", "train_ab", "conv_w_fun")
)
WavKANConvNDLayer = _nd_class(
    "WavKANConvNDLayer",
    WavKANConvNd,
    (
        _CLS,
        ("conv_class_plus1", REQUIRED),
        _NORM,
        *_IO,
        _KS,
        *_GEO,
        ("wav_version", "base"),
        _ND,
        _DROP,
        ("wavelet_type", "mexican_hat"),
    ),
    {"wavelet_type": "wavelet_type"},
    attrs=("wav_version",),
    check=_check_wav_version,
    doc="torch-conv-kan's ``WavKANConvNDLayer``; ``wav_version`` only chose how the reference looped: all three are "
    "the same math (and load alike).",
)
_BOTTLENECK = {"dim_reduction": "dim_reduction", "min_internal": "min_internal"}
BottleNeckKAGNConvNDLayer = _nd_class(
    "BottleNeckKAGNConvNDLayer",
    BottleneckKAConvNd,
    (_CLS, _NORM, _FUN, *_IO, ("degree", REQUIRED), _KS, *_GEO, _DROP, _ND, ("dim_reduction", 4), ("min_internal", 16)),
    {"degree": "degree", **_BOTTLENECK},
    fixed={"family": "kagn", "dropout_type": "noise"},
    attrs=("degree", "conv_w_fun"),
    doc="torch-conv-kan's Gram bottleneck: noise injection on the input when ``dropout > 0``.",
)
BottleNeckReLUConvNDLayer = _nd_class(
    "BottleNeckReLUConvNDLayer", BottleneckKAConvNd, (*_RELU, ("dim_reduction", 4), ("min_internal", 16)),
    {**_RELU_OPTIONS, **_BOTTLENECK}, fixed={"family": "relukan", "dropout_type": "dropout"},
    attrs=("g", "k", "train_ab", "conv_w_fun"),
    doc="torch-conv-kan's ReLU-KAN bottleneck: channel dropout on the input when ``dropout > 0``.",
)  # fmt: skip


# ------------------------------------------------------------------------------------------ fixed-rank wrappers
# Each reference family has three wrappers that differ only in rank; they are generated from one parameter list so
# that ``inspect.signature`` shows exactly the reference's signature.
_P = inspect.Parameter


def _params(*spec: tuple[str, Any]) -> list[inspect.Parameter]:
    return [_P(n, _P.POSITIONAL_OR_KEYWORD, default=d) for n, d in spec]


_REQUIRED = [_P(n, _P.POSITIONAL_OR_KEYWORD) for n in ("input_dim", "output_dim", "kernel_size")]
_GEOMETRY = (("groups", 1), ("padding", 0), ("stride", 1), ("dilation", 1))
_NORM_DEFAULT = object()  # replaced by InstanceNorm{d}d / BatchNorm{d}d per rank


_TAKES_CONV_FUN = (
    KALNConvNDLayer, KAGNConvNDLayer, KABNConvNDLayer, KAJNConvNDLayer, ReLUConvNDLayer, BottleNeckKAGNConvNDLayer,
    BottleNeckReLUConvNDLayer,
)  # fmt: skip


def _make_wrapper(name: str, base: type, params: list[inspect.Parameter], ndim: int) -> Any:
    conv, conv_fun, instance_norm, batch_norm = _DIM_CLASSES[ndim]
    norm = batch_norm if base is WavKANConvNDLayer else instance_norm
    params = [p.replace(default=norm) if p.default is _NORM_DEFAULT else p for p in params]
    sig = inspect.Signature([*_REQUIRED, *params, _P("norm_kwargs", _P.VAR_KEYWORD)])
    # The reference's N-D classes take the rank's classes as arguments; the wrappers fix them.
    fixed: dict[str, Any] = {"conv_class": conv, "ndim": ndim}
    if base in _TAKES_CONV_FUN:
        fixed["conv_w_fun"] = conv_fun
    if base is WavKANConvNDLayer:
        fixed["conv_class_plus1"] = {1: nn.Conv2d, 2: nn.Conv3d}.get(ndim)

    def build(v: Values) -> Values:
        rest = {k: x for k, x in v.items() if k not in ("norm_layer", "norm_kwargs")}
        return {**fixed, "norm_class": v["norm_layer"], **rest, **v["norm_kwargs"]}

    doc = f"torch-conv-kan's ``{name}``: :class:`{base.__name__}` fixed to {ndim} spatial dimensions."
    return reference_class(name, base, sig, build, module=__name__, doc=doc)


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
