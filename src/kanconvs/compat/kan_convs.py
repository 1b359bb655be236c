"""torch-conv-kan's convolution classes (``kan_convs``) with the reference's names, signatures and defaults.

They are thin subclasses of the kanconvs families, so code written for torch-conv-kan runs unchanged and gets the
fixed, vectorised layers. Reference checkpoints load directly (``layer.load_state_dict(reference_state_dict)``).
The attributes the reference's models read (``inputdim``, ``outdim``, ``degree``, ``norm_kwargs``, …) are kept.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import nn

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
from ._generate import Values, check_rank, exports, reference_class, reference_signature


class _ReferenceAttributes:
    """The reference's N-D classes: their constructors are torch-conv-kan's (see ``ConvBase.torch_style``)."""

    torch_style: ClassVar[bool] = False


# ------------------------------------------------------------------------------------------------ N-D classes
# One row per reference N-D class: the kanconvs layer it becomes, how its own options map to that layer's, and the
# attributes the reference's code reads.
_RELU_OPTIONS = {"g": "grid_size", "k": "order", "train_ab": "train_phases"}
_SPLINE = {"grid_size": "grid_size", "base_activation": "base_activation", "grid_range": "grid_range"}
_BOTTLENECK = {"dim_reduction": "dim_reduction", "min_internal": "min_internal"}


def check_wav_version(value: object) -> None:
    """The reference's WavKAN ``wav_version`` only chose how it looped (the same math): one of its three names."""
    if value not in ("base", "fast", "fast_plus_one"):
        raise ValueError(f"wav_version must be 'base', 'fast' or 'fast_plus_one', got {value!r}")


def _nd_class(
    name: str, base: type, options: dict[str, str], *, fixed: Values | None = None, attrs: tuple[str, ...] = (),
    doc: str = "",
) -> Any:  # fmt: skip
    """``options`` maps reference arguments to the layer's keywords (``grid_range`` is made a pair)."""

    def build(v: Values) -> Values:
        if "wav_version" in v:
            check_wav_version(v["wav_version"])
        rank = check_rank(v["ndim"], v["conv_class"], v.get("conv_w_fun"))
        kw = {ours: tuple(v[ref][:2]) if ref == "grid_range" else v[ref] for ref, ours in options.items()}
        return {
            "in_channels": v["input_dim"], "out_channels": v["output_dim"], "kernel_size": v["kernel_size"],
            "stride": v["stride"], "padding": v["padding"], "dilation": v["dilation"], "groups": v["groups"],
            "ndim": rank, "dropout": v["dropout"], "norm_layer": v["norm_class"], "norm_kwargs": v["norm_kwargs"],
            **(fixed or {}), **kw,
        }  # fmt: skip

    def after(self: Any, v: Values) -> None:
        self.inputdim, self.outdim, self.p_dropout, self.norm_kwargs = (
            v["input_dim"], v["output_dim"], v["dropout"], v["norm_kwargs"]
        )  # fmt: skip
        for attr in attrs:
            setattr(self, attr, v[attr])
        if hasattr(self, "inner_channels"):  # the bottlenecks
            self.inner_dim = self.inner_channels

    return reference_class(name, (_ReferenceAttributes, base), build, module=__name__,
                           doc=doc or f"torch-conv-kan's ``{name}``.", after=after)  # fmt: skip


_DEGREE_ATTRS = ("degree", "conv_w_fun")
_RELU_ATTRS = ("g", "k", "train_ab", "conv_w_fun")
KANConvNDLayer = _nd_class("KANConvNDLayer", KANConvNd, {"spline_order": "spline_order", **_SPLINE})
FastKANConvNDLayer = _nd_class("FastKANConvNDLayer", FastKANConvNd, _SPLINE)
KALNConvNDLayer = _nd_class("KALNConvNDLayer", KALNConvNd, {"degree": "degree"}, attrs=_DEGREE_ATTRS)
KAGNConvNDLayer = _nd_class("KAGNConvNDLayer", KAGNConvNd, {"degree": "degree"}, attrs=_DEGREE_ATTRS)
KABNConvNDLayer = _nd_class("KABNConvNDLayer", KABNConvNd, {"degree": "degree"}, attrs=_DEGREE_ATTRS)
KACNConvNDLayer = _nd_class("KACNConvNDLayer", KACNConvNd, {"degree": "degree"}, attrs=("degree",))
KAJNConvNDLayer = _nd_class(
    "KAJNConvNDLayer",
    KAJNConvNd,
    {"degree": "degree", "a": "alpha", "b": "beta"},
    attrs=("degree", "a", "b", "conv_w_fun"),
)
ReLUConvNDLayer = _nd_class("ReLUConvNDLayer", ReLUKANConvNd, _RELU_OPTIONS, attrs=_RELU_ATTRS)
WavKANConvNDLayer = _nd_class(
    "WavKANConvNDLayer", WavKANConvNd, {"wavelet_type": "wavelet_type"}, attrs=("wav_version",),
    doc="torch-conv-kan's ``WavKANConvNDLayer``; ``wav_version`` only chose how the reference looped: all three are "
    "the same math (and load alike).",
)  # fmt: skip
BottleNeckKAGNConvNDLayer = _nd_class(
    "BottleNeckKAGNConvNDLayer", BottleneckKAConvNd, {"degree": "degree", **_BOTTLENECK},
    fixed={"family": "kagn", "dropout_type": "noise"}, attrs=_DEGREE_ATTRS,
    doc="torch-conv-kan's Gram bottleneck: noise injection on the input when ``dropout > 0``.",
)  # fmt: skip
BottleNeckReLUConvNDLayer = _nd_class(
    "BottleNeckReLUConvNDLayer", BottleneckKAConvNd, {**_RELU_OPTIONS, **_BOTTLENECK},
    fixed={"family": "relukan", "dropout_type": "dropout"}, attrs=_RELU_ATTRS,
    doc="torch-conv-kan's ReLU-KAN bottleneck: channel dropout on the input when ``dropout > 0``.",
)  # fmt: skip


# ------------------------------------------------------------------------------------------ fixed-rank wrappers
# Each reference family has three wrappers that differ only in rank: they fix the rank's classes and rename
# ``norm_layer`` to the N-D class's ``norm_class``.
_WRAPPERS: dict[str, type] = {
    "KANConv{d}DLayer": KANConvNDLayer,
    "FastKANConv{d}DLayer": FastKANConvNDLayer,
    "KALNConv{d}DLayer": KALNConvNDLayer,
    "KAGNConv{d}DLayer": KAGNConvNDLayer,
    "KABNConv{d}DLayer": KABNConvNDLayer,
    "KACNConv{d}DLayer": KACNConvNDLayer,
    "KAJNConv{d}DLayer": KAJNConvNDLayer,
    "WavKANConv{d}DLayer": WavKANConvNDLayer,
    "ReLUKANConv{d}DLayer": ReLUConvNDLayer,
    "BottleNeckKAGNConv{d}DLayer": BottleNeckKAGNConvNDLayer,
    "BottleNeckReLUKANConv{d}DLayer": BottleNeckReLUConvNDLayer,
}


def _make_wrapper(name: str, base: type, ndim: int) -> Any:
    rank = RANKS[ndim]
    # The reference's N-D classes take the rank's classes as arguments; the wrappers fix them.
    fixed: dict[str, Any] = {"conv_class": rank.conv, "ndim": ndim}
    if "conv_w_fun" in reference_signature(base.__name__).parameters:
        fixed["conv_w_fun"] = rank.conv_fn
    if base is WavKANConvNDLayer:
        fixed["conv_class_plus1"] = {1: nn.Conv2d, 2: nn.Conv3d}.get(ndim)

    def build(v: Values) -> Values:
        rest = {k: x for k, x in v.items() if k not in ("norm_layer", "norm_kwargs")}
        return {**fixed, "norm_class": v["norm_layer"], **rest, **v["norm_kwargs"]}

    doc = f"torch-conv-kan's ``{name}``: :class:`{base.__name__}` fixed to {ndim} spatial dimensions."
    return reference_class(name, base, build, module=__name__, doc=doc)


for _template, _base in _WRAPPERS.items():
    for _d in (1, 2, 3):
        _name = _template.format(d=_d)
        globals()[_name] = _make_wrapper(_name, _base, _d)

__all__ = exports(globals())
