"""torch-conv-kan's attention layers (``kan_convs/attention_conv.py``), reference names and signatures, over
:class:`~kanconvs.layers.attention.KASelfAttentionNd` and :class:`~kanconvs.layers.attention.KAFocalModulationNd`.
What is fixed and what is kept: docs/migrating.md, "Differences, module by module".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from ..layers.attention import AxialRoPE, ConvFactory, KAFocalModulationNd, KASelfAttentionNd, same_padding
from ..layers.factories import create_norm
from ..layers.ranks import RANKS
from . import kan_convs
from ._generate import Values, exports, reference_class, reference_init

_BATCH_NORMS: dict[int, type[nn.Module]] = {n: r.batch_norm for n, r in RANKS.items()}


def _is_unit(value: Any) -> bool:
    return value == 1 or (isinstance(value, (tuple, list)) and all(v == 1 for v in value))


def _check_padding(padding: Any, same: int | tuple[int, ...]) -> None:
    """The reference default 0 and the size-preserving padding are accepted (both give the latter)."""
    values = tuple(padding) if isinstance(padding, (tuple, list)) else (padding,)
    wanted = same if isinstance(same, tuple) else (same,)
    if all(v == 0 for v in values) or values == wanted or (len(set(wanted)) == 1 and set(values) == set(wanted)):
        return
    raise ValueError(
        f"padding must be 0 (the reference default) or the size-preserving {same!r} for self-attention, got "
        f"{padding!r}: q, k and v must keep the input's spatial size"
    )


class SelfKANtentionND(KASelfAttentionNd):
    """torch-conv-kan's ``SelfKANtentionND(input_dim, conv_kan_layer, inner_projection=None, **kankwargs)``.

    ``kankwargs`` must contain ``kernel_size``; ``stride``, ``padding``, ``dilation`` and ``groups`` set the q, k, v
    convolutions' geometry (see the module notes), every other keyword goes to ``conv_kan_layer``. ``norm_layer`` (and
    ``affine``, default ``True``) also build the outer norm.

    Examples:
        >>> import torch
        >>> from kanconvs.compat import KAGNConv2DLayer
        >>> attn = SelfKANtentionND(8, KAGNConv2DLayer, kernel_size=3, padding=1, norm_layer=nn.BatchNorm2d)
        >>> attn(torch.randn(2, 8, 5, 7)).shape
        torch.Size([2, 8, 5, 7])
    """

    @reference_init("SelfKANtentionND")
    def __init__(self, v: Values) -> None:
        input_dim, conv_kan_layer, inner_projection, kankwargs = (
            v["input_dim"], v["conv_kan_layer"], v["inner_projection"], dict(v["kankwargs"])
        )  # fmt: skip
        if "kernel_size" not in kankwargs:
            raise TypeError(f"{type(self).__name__} requires the keyword argument kernel_size")
        kernel_size = kankwargs.pop("kernel_size")
        stride = kankwargs.pop("stride", 1)
        if not _is_unit(stride):
            raise ValueError(
                f"stride must be 1 for self-attention (the residual needs the input's shape), got {stride!r}"
            )
        dilation = kankwargs.pop("dilation", 1)
        _check_padding(kankwargs.pop("padding", 0), same_padding(kernel_size, dilation))
        groups = kankwargs.pop("groups", 1)
        norm_layer = kankwargs.get("norm_layer")
        affine = kankwargs.get("affine", True)
        super().__init__(
            input_dim, kernel_size, family=conv_kan_layer, inner_projection=inner_projection, dilation=dilation,
            groups=groups, **kankwargs,
        )  # fmt: skip
        if norm_layer is None:  # the reference's defaults per rank (timm's LayerNorm2d in 2-D)
            self.norm = create_norm("layer", input_dim, 2) if self.ndim == 2 else _BATCH_NORMS[self.ndim](input_dim)
        else:
            self.norm = create_norm(norm_layer, input_dim, self.ndim, affine=affine)
        self.input_dim = input_dim


class RoPESelfKANtentionND(SelfKANtentionND):
    """torch-conv-kan's ``RoPESelfKANtentionND(*args, rope_theta=10.0, rope_mixed=True, **kwargs)``.

    Rotary position embedding over the actual grid of any 1-, 2- or 3-D input (:class:`AxialRoPE`, one head); the
    attention width (``inner_projection`` or ``input_dim``) must be divisible by ``2·ndim``.

    Examples:
        >>> import torch
        >>> from kanconvs.compat import KAGNConv2DLayer
        >>> attn = RoPESelfKANtentionND(8, KAGNConv2DLayer, kernel_size=3, padding=1)
        >>> attn(torch.randn(2, 8, 5, 7)).shape
        torch.Size([2, 8, 5, 7])
    """

    def __init__(self, *args: Any, rope_theta: float = 10.0, rope_mixed: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rope_mixed = rope_mixed
        self.rope = AxialRoPE(self.head_dim, self.ndim, self.num_heads, rope_theta, rope_mixed)


class KANFocalModulationND(KAFocalModulationNd):
    """torch-conv-kan's ``KANFocalModulationND(dim, conv_kan_layer, focal_norm_layer, focal_window, focal_level, …)``.

    ``focal_norm_layer`` is ``{"layer": norm class, "params": kwargs}`` for the post-modulation norm (used when
    ``use_postln_in_modulation``); ``kan_params`` go to every KA convolution.

    Examples:
        >>> import torch
        >>> from kanconvs.compat import KAGNConv2DLayer
        >>> fm = KANFocalModulationND(8, KAGNConv2DLayer, {"layer": nn.BatchNorm2d, "params": {}}, 3, 2)
        >>> fm(torch.randn(2, 8, 6, 5)).shape
        torch.Size([2, 8, 6, 5])
    """

    @reference_init("KANFocalModulationND")
    def __init__(self, v: Values) -> None:
        dim, conv_kan_layer, focal_norm_layer, post_ln = (
            v["dim"], v["conv_kan_layer"], v["focal_norm_layer"], v["use_postln_in_modulation"]
        )  # fmt: skip
        if not isinstance(focal_norm_layer, Mapping) or "layer" not in focal_norm_layer:
            raise ValueError(
                f"focal_norm_layer must be a dict {{'layer': norm class, 'params': {{}}}}, got {focal_norm_layer!r}"
            )
        super().__init__(
            dim, family=conv_kan_layer, focal_family=_FOCAL_SUBSTITUTES.get(conv_kan_layer),
            focal_level=v["focal_level"], focal_window=v["focal_window"], focal_factor=v["focal_factor"],
            normalize_modulator=v["normalize_modulator"], post_norm=focal_norm_layer["layer"] if post_ln else None,
            post_norm_kwargs=focal_norm_layer.get("params") if post_ln else None, full_kan=v["full_kan"],
            global_context="reference", **v["kan_params"],
        )  # fmt: skip
        self.dim = dim
        self.use_postln_in_modulation = post_ln


# ------------------------------------------------------------------------------- focal layers of bottleneck blocks
def _without(fn: ConvFactory, *keys: str) -> ConvFactory:
    """``fn`` ignoring bottleneck-only keywords: the reference's focal layers of a bottleneck block are plain KAGN."""

    def build(*args: Any, **kwargs: Any) -> nn.Module:
        return fn(*args, **{k: v for k, v in kwargs.items() if k not in keys})

    return build


_BOTTLENECK_ONLY = ("dim_reduction", "min_internal")
# The reference runs the depthwise focal levels of a (bottleneck) KAGN block with a plain KAGN convolution.
_FOCAL_SUBSTITUTES: dict[Any, ConvFactory] = {
    getattr(kan_convs, f"BottleNeckKAGNConv{d}DLayer"): _without(
        getattr(kan_convs, f"KAGNConv{d}DLayer"), *_BOTTLENECK_ONLY
    )
    for d in (1, 2, 3)
}


# ------------------------------------------------------------------------------------------ fixed-rank wrappers
_CONVS = {
    "kagn": "KAGNConv{d}DLayer",
    "relukan": "ReLUKANConv{d}DLayer",
    "bottleneck_kagn": "BottleNeckKAGNConv{d}DLayer",
    "bottleneck_relukan": "BottleNeckReLUKANConv{d}DLayer",
}


def _attention_args(conv: ConvFactory, values: Values, extra: Values) -> Values:
    return {"conv_kan_layer": conv, **values, **extra}


def _focal_args(conv: ConvFactory, values: Values, extra: Values) -> Values:
    # Bottleneck widths are for the convolutions only (the reference passed them to the post norm too, and crashed).
    params = {k: v for k, v in extra.items() if k not in _BOTTLENECK_ONLY}
    return {
        "dim": values.pop("input_dim"), "conv_kan_layer": conv,
        "focal_norm_layer": {"layer": values["norm_layer"], "params": params}, **values, **extra,
    }  # fmt: skip


def _make_wrapper(
    name: str, base: type, kind: str, ndim: int, args: Callable[[ConvFactory, Values, Values], Values]
) -> Any:  # fmt: skip
    conv = getattr(kan_convs, _CONVS[kind].format(d=ndim))

    def build(v: Values) -> Values:
        extra = v.pop("norm_kwargs")
        return args(conv, v, extra)

    doc = f"torch-conv-kan's ``{name}``: :class:`{base.__name__}` with {kind} convolutions, {ndim}-D."
    return reference_class(name, base, build, module=__name__, doc=doc)


_WRAPPERS: dict[str, tuple[type, str, Callable[..., Values]]] = {
    "SelfKAGNtention{d}D": (SelfKANtentionND, "kagn", _attention_args),
    "BottleNeckSelfKAGNtention{d}D": (SelfKANtentionND, "bottleneck_kagn", _attention_args),
    "RoPEBottleNeckSelfKAGNtention{d}D": (RoPESelfKANtentionND, "bottleneck_kagn", _attention_args),
    "SelfReLUKANtention{d}D": (SelfKANtentionND, "relukan", _attention_args),
    "BottleNeckSelfReLUKANtention{d}D": (SelfKANtentionND, "bottleneck_relukan", _attention_args),
    "KAGNFocalModulation{d}D": (KANFocalModulationND, "kagn", _focal_args),
    "BottleNeckKAGNFocalModulation{d}D": (KANFocalModulationND, "bottleneck_kagn", _focal_args),
}

for _template, (_base, _kind, _init) in _WRAPPERS.items():
    for _d in (1, 2, 3):
        _name = _template.format(d=_d)
        globals()[_name] = _make_wrapper(_name, _base, _kind, _d, _init)

__all__ = exports(globals())
