"""Convert torch-conv-kan checkpoints to kanconvs layouts: the one place that knows the reference's keys.

The reference keeps one sub-convolution (and one norm) per group in ``ModuleList``s and stacks some polynomial
weights degree-major (feature ``j·c_in + c``). kanconvs stores one grouped weight ``(C_out, c_in, F, *k)``,
channel-major. Per group the math is identical, so converted weights give the reference's outputs (for the
families whose reference math is not broken; see the README's migration notes).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from .layers.attention import KAFocalModulationNd, KASelfAttentionNd

__all__ = [
    "convert_kagn_v2_layer",
    "convert_layer_state_dict",
    "convert_reference_state_dict",
    "is_reference_layout",
    "rename_prefix",
    "strip_l1_wrappers",
]

# Reference key of each family's basis weights and its layout.
_BASIS_KEYS = {
    "kan": ("spline_conv", "channel"),
    "fastkan": ("spline_conv", "channel"),
    "kacn": ("poly_conv", "channel"),
    "relukan": ("relukan_conv", "channel"),
    "kaln": ("poly_weights", "degree"),
    "kagn": ("poly_weights", "degree"),
    "kajn": ("poly_weights", "degree"),
    "kabn": ("poly_weights", "channel"),
}
_MARKERS = ("base_conv.0.weight", "poly_conv.0.weight", "poly_weights", "spline_conv.0.weight", "inner_proj.0.weight")


def is_reference_layout(state_dict: Mapping[str, Any], prefix: str = "") -> bool:
    """Whether ``state_dict`` holds a reference (torch-conv-kan) layer under ``prefix``."""
    return any(prefix + marker in state_dict for marker in _MARKERS)


def _pop_groups(sd: MutableMapping[str, Tensor], stem: str, suffix: str, groups: int) -> list[Tensor] | None:
    """Pop ``stem.{0..g-1}.suffix``; None if absent."""
    keys = [f"{stem}.{i}.{suffix}" for i in range(groups)]
    if keys[0] not in sd:
        return None
    missing = [k for k in keys if k not in sd]
    if missing:
        raise KeyError(f"reference checkpoint is missing {missing} (expected {groups} groups)")
    return [sd.pop(k) for k in keys]


def _pop_norm(sd: MutableMapping[str, Tensor], prefix: str, groups: int, target: str) -> dict[str, Tensor]:
    """Per-group norms ``layer_norm.{i}.*`` → one norm over all channels (exact for batch/instance norms)."""
    out: dict[str, Tensor] = {}
    pattern = re.compile(re.escape(prefix) + r"layer_norm\.0\.(.+)$")
    for name in [m.group(1) for k in list(sd) if (m := pattern.match(k))]:
        parts = _pop_groups(sd, prefix + "layer_norm", name, groups)
        assert parts is not None
        out[prefix + target + "." + name] = parts[0] if parts[0].dim() == 0 else torch.cat(parts)
    return out


def convert_layer_state_dict(
    state_dict: MutableMapping[str, Tensor], layer: nn.Module, prefix: str = ""
) -> MutableMapping[str, Tensor]:
    """Rewrite, in place, the reference keys of one layer (under ``prefix``) into ``layer``'s keys.

    ``layer`` is a kanconvs family convolution (``KAGNConv2d``, ``WavKANConv2d``, …, or a compat alias); its
    family, groups and sizes decide the layout. Returns ``state_dict``.
    """
    family = getattr(layer, "family", None)
    groups = int(getattr(layer, "groups", 1))
    sd = state_dict
    new: dict[str, Tensor] = {}
    if hasattr(layer, "experts") or hasattr(getattr(layer, "inner", None), "experts"):
        raise ValueError(
            f"{type(layer).__name__}: reference mixture-of-experts checkpoints cannot be converted (the gating and "
            "expert layout differ); train the MoE layer from scratch or load only the non-MoE layers (strict=False)"
        )
    if prefix + "inner_proj.0.weight" in sd and hasattr(layer, "inner"):
        new.update(_convert_bottleneck(sd, layer, prefix, groups))
    elif family == "wavkan":
        new.update(_convert_wavkan(sd, prefix, groups))
    elif family in _BASIS_KEYS:
        new.update(_convert_kan(sd, layer, family, prefix, groups))
    else:
        raise ValueError(f"no reference layout is known for {type(layer).__name__} (family {family!r})")
    norm_target = "input_norm" if family == "fastkan" else "norm"
    new.update(_pop_norm(sd, prefix, groups, norm_target))
    sd.update(new)
    return sd


def _convert_kan(
    sd: MutableMapping[str, Tensor], layer: nn.Module, family: str, prefix: str, groups: int
) -> dict[str, Tensor]:
    key, layout = _BASIS_KEYS[family]
    c_out = int(layer.out_channels)  # type: ignore[arg-type]
    c_in = int(layer.in_channels) // groups  # type: ignore[arg-type]
    n = int(layer.basis.num_functions)  # type: ignore[union-attr, arg-type]
    kernel = tuple(layer.kernel_size)  # type: ignore[arg-type]
    out: dict[str, Tensor] = {}
    if layout == "degree" or family == "kabn":
        w = sd.pop(prefix + key)  # (g, c_out/g, c_in·n, *k)
        if layout == "degree":  # feature j·c_in + c → c·n + j
            w = w.reshape(groups, c_out // groups, n, c_in, *kernel).transpose(2, 3)
        basis = w.reshape(c_out, c_in, n, *kernel)
    else:
        parts = _pop_groups(sd, prefix + key, "weight", groups)
        if parts is None:
            raise KeyError(f"reference checkpoint has no '{prefix}{key}.0.weight'")
        basis = torch.cat(parts).reshape(c_out, c_in, n, *kernel)
    base = _pop_groups(sd, prefix + "base_conv", "weight", groups)
    weight = basis if base is None else torch.cat([torch.cat(base).unsqueeze(2), basis], dim=2)
    out[prefix + "weight"] = weight
    prelus = _pop_groups(sd, prefix + "prelus", "weight", groups)
    if prelus is not None:
        out[prefix + "act.weight"] = torch.cat(prelus)
    if prefix + "beta_weights" in sd:
        out[prefix + "basis.beta_weights"] = sd.pop(prefix + "beta_weights")
    if prefix + "rbf.grid" in sd:
        out[prefix + "basis.grid"] = sd.pop(prefix + "rbf.grid")
    for phase in ("phase_low", "phase_high"):
        if prefix + phase in sd:  # (1, c_in, n, 1…) shared by the groups → (c_in, n)
            out[prefix + "basis." + phase] = sd.pop(prefix + phase).reshape(c_in, n)
    sd.pop(prefix + "arange", None)  # KACN's constant 0…D
    knots = getattr(layer.basis, "knots", None)
    if isinstance(knots, Tensor):  # the reference keeps its knots outside the state_dict; ours follow its formula
        out[prefix + "basis.knots"] = knots.detach().clone()
    return out


def _convert_bottleneck(
    sd: MutableMapping[str, Tensor], layer: nn.Module, prefix: str, groups: int
) -> dict[str, Tensor]:
    """Bottleneck: per-group base / 1×1 in / 1×1 out convs, and the inner KA weights of the narrow space."""
    out: dict[str, Tensor] = {}
    for ref, ours in (("base_conv", "base_weight"), ("inner_proj", "squeeze_weight"), ("out_proj", "expand_weight")):
        parts = _pop_groups(sd, prefix + ref, "weight", groups)
        if parts is None:
            raise KeyError(f"reference checkpoint has no '{prefix}{ref}.0.weight'")
        out[prefix + ours] = torch.cat(parts)
    inner = prefix + "inner."
    for key in [k for k in list(sd) if k.startswith(prefix)]:
        rest = key[len(prefix) :]
        if rest.startswith(("poly_weights", "beta_weights", "phase_", "relukan_conv.", "poly_conv.", "spline_conv.")):
            sd[inner + rest] = sd.pop(key)
    inner_layer = layer.get_submodule("inner")
    out.update(_convert_kan(sd, inner_layer, str(inner_layer.family), inner, groups))
    return out


def _convert_wavkan(sd: MutableMapping[str, Tensor], prefix: str, groups: int) -> dict[str, Tensor]:
    out: dict[str, Tensor] = {}
    base = _pop_groups(sd, prefix + "base_conv", "weight", groups)
    if base is None:
        raise KeyError(f"reference checkpoint has no '{prefix}base_conv.0.weight'")
    out[prefix + "base_weight"] = torch.cat(base)
    stem = prefix + "wavelet_conv"
    for name in ("scale", "translation"):  # (1, c_out, c_in, 1…) per group
        parts = _pop_groups(sd, stem, name, groups)
        assert parts is not None, name
        out[prefix + name] = torch.cat([p.reshape(p.shape[1], p.shape[2]) for p in parts])
    weights = []
    for i in range(groups):
        fast = f"{stem}.{i}.wavelet_weights.weight"
        if fast in sd:  # 'fast' (c_out, c_in, *k) or 'fast_plus_one' (c_out, 1, c_in, *k)
            w = sd.pop(fast)
            weights.append(w.squeeze(1) if w.dim() == base[0].dim() + 1 else w)
        else:  # 'base': one (1, c_in, *k) conv per output channel
            per_out = re.compile(re.escape(f"{stem}.{i}.wavelet_weights.") + r"(\d+)\.weight$")
            found = sorted((int(m.group(1)), k) for k in list(sd) if (m := per_out.match(k)))
            if not found:
                raise KeyError(f"reference checkpoint has no wavelet weights for group {i} under '{stem}.{i}'")
            weights.append(torch.cat([sd.pop(k) for _, k in found]))
    out[prefix + "wavelet_weight"] = torch.cat(weights)
    outs = _pop_groups(sd, stem, "wavelet_out.weight", groups)
    assert outs is not None
    out[prefix + "out_weight"] = torch.cat(outs)
    return out


_L1_SEGMENT = re.compile(r"(^|\.)module\.")


def strip_l1_wrappers(state_dict: MutableMapping[str, Tensor], prefix: str) -> None:
    """Drop the ``module.`` segment that torch-conv-kan's ``L1(layer)`` wrapper adds to keys under ``prefix``."""
    for key in [k for k in state_dict if k.startswith(prefix) and "module." in k]:
        state_dict[prefix + _L1_SEGMENT.sub(r"\1", key[len(prefix) :])] = state_dict.pop(key)


def rename_prefix(state_dict: MutableMapping[str, Tensor], old: str, new: str) -> None:
    """Rename the keys starting with ``old`` to start with ``new`` instead."""
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[new + key[len(old) :]] = state_dict.pop(key)


# ------------------------------------------------------------------------- kans: the linear layers and MLPs
def _rename_all(sd: MutableMapping[str, Tensor], prefix: str, mapping: dict[str, str]) -> None:
    """Rename every key starting with ``prefix + old`` to ``prefix + new + rest``."""
    for old, new in mapping.items():
        for key in [k for k in sd if k.startswith(prefix + old)]:
            sd[prefix + new + key[len(prefix + old) :]] = sd.pop(key)


def _fill_buffers(module: nn.Module, sd: MutableMapping[str, Tensor], prefix: str) -> None:
    """Add our persistent buffers that the reference keeps outside its state_dict (e.g. the B-spline knots)."""
    buffers = {name for name, _ in module.named_buffers()}
    for name, value in module.state_dict().items():
        if name in buffers and prefix + name not in sd:
            sd[prefix + name] = value.detach().clone()


def _fuse(base: Tensor | None, basis: Tensor) -> Tensor:
    """Base ``(out, in)`` and basis ``(out, in, K)`` weights → our fused ``(out, in, F)``."""
    return basis if base is None else torch.cat([base.unsqueeze(2), basis], dim=2)


def _num_functions(layer: nn.Module) -> int:
    return int(getattr(layer.basis, "num_functions"))  # noqa: B009 (typed access to a Basis attribute)


def _linear_kan(layer: nn.Module, sd: MutableMapping[str, Tensor], p: str) -> None:
    if p + "spline_weight" not in sd:
        return
    sd[p + "weight"] = _fuse(sd.pop(p + "base_weight"), sd.pop(p + "spline_weight"))
    _rename_all(sd, p, {"layer_norm.": "norm.", "prelu.weight": "act.weight"})
    _fill_buffers(layer, sd, p)


def _linear_kaln(layer: nn.Module, sd: MutableMapping[str, Tensor], p: str) -> None:
    if p + "poly_weight" not in sd:
        return
    poly = sd.pop(p + "poly_weight")  # (out, in·(D + 1)), input-major
    sd[p + "weight"] = _fuse(sd.pop(p + "base_weight"), poly.reshape(poly.shape[0], -1, _num_functions(layer)))
    _rename_all(sd, p, {"layer_norm.": "norm."})


def _linear_einsum(coeffs: str, base: str | None) -> Callable[[nn.Module, MutableMapping[str, Tensor], str], None]:
    """Layers whose basis weights are ``(in, out, K)`` einsum operands (ChebyKAN, GRAM, Jacobi, Bernstein)."""

    def convert(layer: nn.Module, sd: MutableMapping[str, Tensor], p: str) -> None:
        if p + coeffs not in sd:
            return
        basis = sd.pop(p + coeffs).permute(1, 0, 2)  # (in, out, K) → (out, in, K)
        sd[p + "weight"] = _fuse(sd.pop(p + base) if base else None, basis).contiguous()
        if p + "beta_weights" in sd:
            sd[p + "basis.beta_weights"] = sd.pop(p + "beta_weights")
        sd.pop(p + "arange", None)  # ChebyKAN's constant 0…D

    return convert


def _linear_fastkan(layer: nn.Module, sd: MutableMapping[str, Tensor], p: str) -> None:
    if p + "spline_linear.weight" not in sd:
        return
    spline = sd.pop(p + "spline_linear.weight")  # (out, in·G), input-major
    spline = spline.reshape(spline.shape[0], -1, _num_functions(layer))
    sd[p + "weight"] = _fuse(sd.pop(p + "base_linear.weight", None), spline)
    if p + "base_linear.bias" in sd:
        sd[p + "bias"] = sd.pop(p + "base_linear.bias")
    _rename_all(sd, p, {"layernorm.": "input_norm.", "rbf.grid": "basis.grid"})


def _linear_wavkan(layer: nn.Module, sd: MutableMapping[str, Tensor], p: str) -> None:
    if p + "weight1" not in sd:
        return
    _rename_all(sd, p, {"weight1": "base_weight", "wavelet_weights": "wavelet_weight", "bn.": "norm."})


def _linear_relukan(layer: nn.Module, sd: MutableMapping[str, Tensor], p: str) -> None:
    if p + "equal_size_conv.weight" not in sd:
        return
    w = sd.pop(p + "equal_size_conv.weight")  # (out, 1, K, in) fed with a *reshaped* (in, K) basis
    sd[p + "weight"] = w.reshape(w.shape[0], -1, _num_functions(layer))
    sd[p + "bias"] = sd.pop(p + "equal_size_conv.bias")
    for phase in ("phase_low", "phase_high"):  # the reference's are stride-0 views: materialise them
        sd[p + "basis." + phase] = sd.pop(p + phase).contiguous()


def _linear_bottleneck(layer: nn.Module, sd: MutableMapping[str, Tensor], p: str) -> None:
    if p + "grams_basis_weights" not in sd:
        return
    sd[p + "inner.weight"] = sd.pop(p + "grams_basis_weights").permute(1, 0, 2).contiguous()
    sd[p + "inner.basis.beta_weights"] = sd.pop(p + "beta_weights")
    sd[p + "base_weight"] = sd.pop(p + "base_weights")


_LINEAR_CONVERTERS: dict[str, Callable[[nn.Module, MutableMapping[str, Tensor], str], None]] = {
    "kan": _linear_kan,
    "kaln": _linear_kaln,
    "kacn": _linear_einsum("cheby_coeffs", None),
    "kagn": _linear_einsum("grams_basis_weights", "base_weights"),
    "kajn": _linear_einsum("jacobi_coeffs", "base_weights"),
    "kabn": _linear_einsum("bernstein_coeffs", "base_weights"),
    "fastkan": _linear_fastkan,
    "wavkan": _linear_wavkan,
    "relukan": _linear_relukan,
    "bottleneck_kagn": _linear_bottleneck,
}
_MLP_L1_SEGMENT = r"layers\.(\d+)\.module\."


def _kan_mlp_keys(module: nn.Module, state_dict: MutableMapping[str, Tensor], prefix: str) -> None:
    """The reference wraps L1-regularised MLP layers as ``L1(layer)``: drop the extra ``module.`` segment."""
    pattern = re.compile(re.escape(prefix) + _MLP_L1_SEGMENT)
    for key in list(state_dict):
        if m := pattern.match(key):
            state_dict[f"{prefix}layers.{m.group(1)}.{key[m.end() :]}"] = state_dict.pop(key)


def _vggkan_keys(module: nn.Module, state_dict: MutableMapping[str, Tensor], prefix: str) -> None:
    """VGG-KAN: the L1 wrappers, ``classifier`` → ``head`` (its attention blocks: :func:`_self_attention_keys`)."""
    strip_l1_wrappers(state_dict, prefix)
    rename_prefix(state_dict, prefix + "classifier.", prefix + "head.")


# ------------------------------------------------------------------------- attention: self-attention, focal modulation
def convert_kagn_v2_layer(state_dict: MutableMapping[str, Tensor], prefix: str = "") -> MutableMapping[str, Tensor]:
    """Rewrite, in place, one torch-conv-kan ``KAGNConv*DLayerV2`` under ``prefix`` into a KAGN convolution's keys.

    The v2 layer keeps one grouped ``base_conv.weight (C_out, c_in, *k)`` and ``poly_conv.weight (C_out,
    c_in·(D+1), *k)`` whose features are channel-major within a group (``c·(D+1) + j``, the layout the layer
    intended); they become our ``weight (C_out, c_in, D+2, *k)`` (base first). ``beta_weights`` →
    ``basis.beta_weights`` and the single norm ``layer_norm.*`` (running statistics included) → ``norm.*``. Keys
    without a v2 layer under ``prefix`` are left alone. Returns ``state_dict``.

    Examples:
        >>> sd = {
        ...     "base_conv.weight": torch.zeros(4, 1, 3, 3),
        ...     "poly_conv.weight": torch.ones(4, 4, 3, 3),
        ...     "beta_weights": torch.zeros(4),
        ...     "layer_norm.weight": torch.ones(4),
        ... }
        >>> sorted((k, tuple(v.shape)) for k, v in convert_kagn_v2_layer(sd).items())
        [('basis.beta_weights', (4,)), ('norm.weight', (4,)), ('weight', (4, 1, 5, 3, 3))]
    """
    sd = state_dict
    if prefix + "poly_conv.weight" not in sd or prefix + "base_conv.weight" not in sd:
        return sd
    base = sd.pop(prefix + "base_conv.weight")
    poly = sd.pop(prefix + "poly_conv.weight")
    c_out, c_in = base.shape[:2]
    if poly.shape[0] != c_out or poly.shape[1] % c_in or poly.shape[2:] != base.shape[2:]:
        raise ValueError(
            f"'{prefix}poly_conv.weight' {tuple(poly.shape)} does not fit '{prefix}base_conv.weight' "
            f"{tuple(base.shape)}: expected (C_out, c_in·(degree + 1), *kernel)"
        )
    poly = poly.reshape(c_out, c_in, poly.shape[1] // c_in, *poly.shape[2:])
    sd[prefix + "weight"] = torch.cat([base.unsqueeze(2), poly], dim=2)
    if prefix + "beta_weights" in sd:
        sd[prefix + "basis.beta_weights"] = sd.pop(prefix + "beta_weights")
    rename_prefix(sd, prefix + "layer_norm.", prefix + "norm.")
    return sd


def _self_attention_keys(module: KASelfAttentionNd, state_dict: MutableMapping[str, Tensor], prefix: str) -> None:
    """Self-attention: the outer ``norm_layer`` → ``norm``; the RoPE variants' learned frequencies in 2-D.

    The reference's ``freqs (2, d/2)`` (rows: the x = column and y = row axes of its grid, one head) are the same
    quantity as our ``rope.freqs (ndim=2, heads=1, d/2)`` (rows: axis 0 = row, axis 1 = column), axes swapped; its
    ``freqs_t_x`` / ``freqs_t_y`` are the positions of its fixed 14×14 grid, which ours computes from the input.
    In 1-D and 3-D the reference still learns 2-D frequencies (of a square grid it assumes), which have no
    counterpart here: those keys are left, so a strict load names them.
    """
    sd = state_dict
    rename_prefix(sd, prefix + "norm_layer.", prefix + "norm.")
    rope, key = module.rope, prefix + "freqs"
    if rope is None or rope.freqs is None or key not in sd:
        return
    freqs = sd[key]
    if rope.ndim == 2 and rope.num_heads == 1 and tuple(freqs.shape) == (2, rope.head_dim // 2):
        sd[prefix + "rope.freqs"] = sd.pop(key).flip(0).unsqueeze(1)  # (x, y) → (row, column), one head
        sd.pop(prefix + "freqs_t_x", None)
        sd.pop(prefix + "freqs_t_y", None)


def _focal_modulation_keys(module: KAFocalModulationNd, state_dict: MutableMapping[str, Tensor], prefix: str) -> None:
    """Focal modulation: the depthwise KAGN v2 focal levels (:func:`convert_kagn_v2_layer`) and the
    post-modulation ``norm_layer`` → ``post_norm``; ``f``, ``h`` and ``proj`` are plain reference layers."""
    for index in range(len(module.focal_layers)):
        convert_kagn_v2_layer(state_dict, f"{prefix}focal_layers.{index}.")
    rename_prefix(state_dict, prefix + "norm_layer.", prefix + "post_norm.")


def _u2kanet_keys(module: nn.Module, state_dict: MutableMapping[str, Tensor], prefix: str) -> None:
    """U²-KANet's residual U-blocks: the L1 wrappers and the plain ``Sequential([Dropout,] Conv, BN, GELU)``."""
    from .models._factory import ConvNormAct

    strip_l1_wrappers(state_dict, prefix)
    for name, sub in module.named_modules(prefix=prefix.rstrip(".")):
        if isinstance(sub, ConvNormAct) and f"{name}.conv.weight" not in state_dict:
            first = 0 if isinstance(sub.dropout, nn.Identity) else 1
            rename_prefix(state_dict, f"{name}.{first}.", f"{name}.conv.")
            rename_prefix(state_dict, f"{name}.{first + 1}.", f"{name}.norm.")


def _architecture_keys() -> list[tuple[type[nn.Module], Any]]:
    """Per architecture, the key renames of its torch-conv-kan checkpoints (applied before the layers')."""
    from .layers.attention import KAFocalModulationNd, KASelfAttentionNd
    from .models.kan_mlp import KANMLP
    from .models.u2kanet import ResidualUBlock
    from .models.vggkan import VGGKANet

    return [
        (VGGKANet, _vggkan_keys),
        (ResidualUBlock, _u2kanet_keys),
        (KANMLP, _kan_mlp_keys),
        (KASelfAttentionNd, _self_attention_keys),
        (KAFocalModulationNd, _focal_modulation_keys),
    ]


def convert_in_place(state_dict: MutableMapping[str, Tensor], model: nn.Module, prefix: str = "") -> None:
    """Rewrite, in place, the reference keys under ``prefix`` for ``model``: architecture renames, then every KA
    convolution and linear layer in reference layout."""
    modules = list(model.named_modules(prefix=prefix.rstrip(".")))
    architectures = _architecture_keys()
    for name, module in modules:
        for cls, rename in architectures:
            if isinstance(module, cls):
                rename(module, state_dict, f"{name}." if name else "")
    from .layers.kan_linear import BottleNeckKAGNLinear, KALinear, WavKANLinear

    linear = (KALinear, WavKANLinear, BottleNeckKAGNLinear)
    for name, module in modules:
        sub = f"{name}." if name else ""
        family = getattr(module, "family", None)
        if family is None:
            continue
        if isinstance(module, linear):
            if family in _LINEAR_CONVERTERS:  # each converter acts only on its reference keys
                _LINEAR_CONVERTERS[family](module, state_dict, sub)
        elif is_reference_layout(state_dict, sub):
            convert_layer_state_dict(state_dict, module, sub)


def convert_reference_state_dict(state_dict: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Convert every reference KA conv layer in a checkpoint to the layout of the matching layers of ``model``.

    Keys of other modules pass through unchanged, so the result loads with ``model.load_state_dict``.
    """
    sd = dict(state_dict)
    convert_in_place(sd, model)
    return sd


# ``create_model(name, pretrained=file)`` and ``load_weights`` take published torch-conv-kan weights too.
from .models._hub import register_checkpoint_filter  # noqa: E402

register_checkpoint_filter(convert_reference_state_dict)
