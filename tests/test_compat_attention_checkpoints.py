"""torch-conv-kan attention checkpoints (self-attention, RoPE self-attention, focal modulation, ``UKAGNet``'s mixers)
load strictly into the compat classes, through their load hook and through ``convert_reference_state_dict``.

The reference-based tests import torch-conv-kan from a checkout (``KANCONVS_REFERENCE_DIR``, default ``.reference``
at the repository root) with the bench's :class:`~kanconvs.bench.vs_reference.Reference`, which restores
``sys.modules`` afterwards; its attention module needs ``einops`` and ``timm`` (directories listed in
``KANCONVS_REFERENCE_PATH``, ``os.pathsep``-separated, are added to ``sys.path`` for them). Without the checkout or
those packages they skip; the reference-free tests below them convert hand-built reference-layout state_dicts.

What is compared (docs/migrating.md, ``attention``): self-attention outputs legitimately differ (γ scales the
attention, scores are scaled by 1/√C, RoPE rotates by the real grid), so there the test is the strict load, the
converted values and the outputs of the converted sub-modules; focal modulation keeps the reference's math except
the depthwise v2 layer's channel order, so its outputs match exactly where that order does not matter (one channel)
and, for any width, against the reference with its basis fed channel-major.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import kanconvs.compat as compat
from kanconvs.convert import convert_kagn_v2_layer, convert_reference_state_dict

REFERENCE_DIR = Path(os.environ.get("KANCONVS_REFERENCE_DIR") or Path(__file__).resolve().parents[1] / ".reference")
REFERENCE_PATH = [p for p in os.environ.get("KANCONVS_REFERENCE_PATH", "").split(os.pathsep) if p]
NDIMS = (1, 2, 3)


@contextlib.contextmanager
def _extra_path(paths: list[str]) -> Iterator[None]:
    added = [p for p in paths if p not in sys.path]
    sys.path[:0] = added
    try:
        yield
    finally:
        for p in added:
            with contextlib.suppress(ValueError):
                sys.path.remove(p)


@pytest.fixture(scope="module")
def ref() -> Iterator[dict[str, ModuleType]]:
    """The reference's ``kan_convs.attention_conv``, ``kan_convs.kagn_conv_v2`` and ``models.ukanet``."""
    if not (REFERENCE_DIR / "kan_convs" / "attention_conv.py").is_file():
        pytest.skip(f"no torch-conv-kan checkout at {REFERENCE_DIR} (set KANCONVS_REFERENCE_DIR)")
    from kanconvs.bench.vs_reference import Reference

    with _extra_path(REFERENCE_PATH):
        pytest.importorskip("einops")
        pytest.importorskip("timm")
        with Reference(REFERENCE_DIR):
            modules = {
                "attention": importlib.import_module("kan_convs.attention_conv"),
                "v2": importlib.import_module("kan_convs.kagn_conv_v2"),
                "ukanet": importlib.import_module("models.ukanet"),
            }
            yield modules


def _randomise(module: nn.Module, seed: int = 1) -> nn.Module:
    """Move every float parameter and running statistic off its initial value (γ = 0, beta weights …), float64."""
    module.double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.add_(0.1 * torch.randn(b.shape, generator=g, dtype=b.dtype))
            elif name.endswith("running_var"):
                b.mul_(1 + 0.2 * torch.rand(b.shape, generator=g, dtype=b.dtype))
    return module


def _reference_state(module: nn.Module) -> dict[str, Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _load_both_ways(reference: nn.Module, make_ours: Any) -> nn.Module:
    """Strict load through the compat load hook, and through ``convert_reference_state_dict``: same tensors."""
    sd = _reference_state(reference)
    ours = make_ours().double().eval()
    ours.load_state_dict(copy.deepcopy(sd))  # strict
    other = make_ours().double().eval()
    converted = convert_reference_state_dict(sd, other)
    assert set(converted) == set(other.state_dict())
    other.load_state_dict(converted)
    for key, value in ours.state_dict().items():
        assert torch.equal(value, converted[key]), key
    return ours


def _x(channels: int, ndim: int, size: int = 5) -> Tensor:
    return torch.randn(2, channels, *([size] * ndim), dtype=torch.float64)


# --------------------------------------------------------------------------------------- self-attention (reference)
SELF_ATTENTION = [
    (template.format(d=d), d, inner)
    for template in ("SelfKAGNtention{d}D", "BottleNeckSelfKAGNtention{d}D", "SelfReLUKANtention{d}D",
                     "BottleNeckSelfReLUKANtention{d}D")
    for d in NDIMS
    for inner in (None, 4)
    # the reference's BottleNeckSelfReLUKANtention3D builds the 2-D layer (fixed here), so its weights do not fit
    if template.format(d=d) != "BottleNeckSelfReLUKANtention3D" and (inner is None or d == 2)
]  # fmt: skip


@pytest.mark.parametrize(("name", "ndim", "inner"), SELF_ATTENTION, ids=[f"{n}-{i}" for n, _, i in SELF_ATTENTION])
def test_self_attention_checkpoint_loads_strictly(
    ref: dict[str, ModuleType], name: str, ndim: int, inner: int | None
) -> None:
    kwargs: dict[str, Any] = {"inner_projection": inner, "kernel_size": 3, "padding": 1}
    reference = _randomise(getattr(ref["attention"], name)(8, **kwargs))
    ours = _load_both_ways(reference, lambda: getattr(compat, name)(8, **kwargs))
    theirs = reference.state_dict()
    for key in [k for k in theirs if k.startswith("norm_layer.")]:  # the outer norm, renamed
        assert torch.equal(ours.state_dict()["norm." + key[len("norm_layer.") :]], theirs[key]), key
    assert torch.equal(ours.gamma, reference.gamma)
    x = _x(8, ndim)
    with torch.no_grad():
        torch.testing.assert_close(ours.norm(x), reference.norm_layer(x), rtol=1e-12, atol=1e-12)
        a = x if inner is None else reference.inner_proj(x)
        if inner is not None:
            torch.testing.assert_close(ours.inner_proj(x), a, rtol=0, atol=0)
            torch.testing.assert_close(ours.outer_proj(a), reference.outer_proj(a), rtol=0, atol=0)
        for proj in ("proj_q", "proj_k", "proj_v"):
            expected = getattr(reference, proj)(a)
            torch.testing.assert_close(getattr(ours, proj)(a), expected, rtol=1e-10, atol=1e-12)


def test_rope_frequencies_give_the_references_rotation(ref: dict[str, ModuleType]) -> None:
    """2-D RoPE: the learned frequencies load as ``rope.freqs`` and rotate q exactly as the reference's on an
    integral grid (the reference's layer output differs: CLS offset, its fixed or √(N−1) grid, γ, 1/√C)."""
    attention = ref["attention"]
    reference = _randomise(attention.RoPEBottleNeckSelfKAGNtention2D(24, kernel_size=3, padding=1))
    ours = _load_both_ways(reference, lambda: compat.RoPEBottleNeckSelfKAGNtention2D(24, kernel_size=3, padding=1))
    assert torch.equal(ours.rope.freqs[:, 0], reference.freqs.flip(0))  # (x, y) → (row, column)
    h, w = 4, 6  # not square: the axes must not be swapped
    q = torch.randn(2, 1, h * w, 24, dtype=torch.float64)
    t_x, t_y = attention.init_t_xy(end_x=w, end_y=h)  # row-major positions: x the column, y the row
    cis = attention.compute_mixed_cis(reference.freqs.detach(), t_x.double(), t_y.double(), num_heads=1)
    expected, _ = attention.apply_rotary_emb(q, q, cis)  # computes in float32
    with torch.no_grad():
        torch.testing.assert_close(ours.rope(q, (h, w)), expected, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------ focal modulation (reference)
FOCAL = [(template.format(d=d), d) for template in ("KAGNFocalModulation{d}D", "BottleNeckKAGNFocalModulation{d}D")
         for d in NDIMS]  # fmt: skip


@pytest.mark.parametrize(("name", "ndim"), FOCAL, ids=[n for n, _ in FOCAL])
def test_focal_modulation_checkpoint_gives_the_reference_outputs(
    ref: dict[str, ModuleType], name: str, ndim: int
) -> None:
    """One channel: the v2 layer's channel order cannot matter, so the outputs are the reference's."""
    reference = _randomise(getattr(ref["attention"], name)(1))
    ours = _load_both_ways(reference, lambda: getattr(compat, name)(1))
    x = _x(1, ndim, 6)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-10, atol=1e-12)


@contextlib.contextmanager
def _channel_major_v2(v2: ModuleType) -> Iterator[None]:
    """The reference's v2 layer with its Gram basis fed channel-major (``c·(D+1) + j``) to the grouped poly conv:
    its ``gram_poly`` returns the degree-major concatenation (``j·C + c``), which mixes channels under groups."""
    cls = v2.KAGNConvNDLayerV2
    original = cls.gram_poly

    def gram_poly(self: Any, x: Tensor, degree: int) -> Tensor:
        basis = original(self, x, degree)  # (B, (D+1)·C, *S)
        return basis.unflatten(1, (degree + 1, x.shape[1])).transpose(1, 2).flatten(1, 2)

    cls.gram_poly = gram_poly
    try:
        yield
    finally:
        cls.gram_poly = original


@pytest.mark.parametrize("name", ["KAGNFocalModulation2D", "BottleNeckKAGNFocalModulation1D", "KAGNFocalModulation3D"])
def test_focal_modulation_matches_the_channel_major_reference(ref: dict[str, ModuleType], name: str) -> None:
    """Six channels: the converted depthwise weights act on their own channel's basis (docs/migrating.md), i.e. the
    outputs are the reference's once its v2 layer uses that order; with its own order they differ."""
    reference = _randomise(getattr(ref["attention"], name)(6))
    ours = _load_both_ways(reference, lambda: getattr(compat, name)(6))
    x = _x(6, int(name[-2]), 6)
    with torch.no_grad():
        mixed = reference(x)
        with _channel_major_v2(ref["v2"]):
            expected = reference(x)
        got = ours(x)
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(got, mixed, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("mixer_type", ["self-att", "focal"])
def test_ukagnet_mixer_checkpoints_load_strictly(ref: dict[str, ModuleType], mixer_type: str) -> None:
    reference = _randomise(ref["ukanet"].UKAGNet(3, 2, mixer_type=mixer_type))
    ours = _load_both_ways(reference, lambda: compat.UKAGNet(3, 2, mixer_type=mixer_type))
    theirs = reference.state_dict()
    renamed = "norm." if mixer_type == "self-att" else "post_norm."
    keys = [k for k in theirs if ".norm_layer." in k]
    assert keys
    for key in keys:
        assert torch.equal(ours.state_dict()[key.replace(".norm_layer.", "." + renamed)], theirs[key]), key
    if mixer_type == "focal":  # the whole network gives the reference's outputs once its v2 layers are fixed
        x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
        with torch.no_grad(), _channel_major_v2(ref["v2"]):
            torch.testing.assert_close(ours(x), reference(x), rtol=1e-9, atol=1e-10)


# ------------------------------------------------------------------------------- reference-free: hand-built layouts
def test_kagn_v2_layer_known_values() -> None:
    c_out, c_in, degree = 4, 2, 2  # two groups of two input channels
    base = torch.arange(c_out * c_in * 3.0).reshape(c_out, c_in, 3)
    poly = 100 + torch.arange(c_out * c_in * (degree + 1) * 3.0).reshape(c_out, c_in * (degree + 1), 3)
    sd: dict[str, Tensor] = {
        "m.base_conv.weight": base, "m.poly_conv.weight": poly, "m.beta_weights": torch.tensor([1.0, 2.0, 3.0]),
        "m.layer_norm.weight": torch.ones(4), "m.layer_norm.running_mean": torch.full((4,), 0.5),
        "m.layer_norm.num_batches_tracked": torch.tensor(7), "other.weight": torch.zeros(1),
    }  # fmt: skip
    out = convert_kagn_v2_layer(sd, "m.")
    assert out is sd
    assert set(sd) == {"m.weight", "m.basis.beta_weights", "m.norm.weight", "m.norm.running_mean",
                       "m.norm.num_batches_tracked", "other.weight"}  # fmt: skip
    weight = sd["m.weight"]
    assert weight.shape == (c_out, c_in, degree + 2, 3)
    for o in range(c_out):
        for c in range(c_in):
            assert torch.equal(weight[o, c, 0], base[o, c])
            for j in range(degree + 1):  # the v2 features are channel-major within a group: c·(D+1) + j
                assert torch.equal(weight[o, c, 1 + j], poly[o, c * (degree + 1) + j])
    assert torch.equal(sd["m.basis.beta_weights"], torch.tensor([1.0, 2.0, 3.0]))
    assert int(sd["m.norm.num_batches_tracked"]) == 7
    before = dict(sd)
    convert_kagn_v2_layer(sd, "m.")  # nothing left in v2 layout: unchanged
    assert sd == before


def _v1_reference_keys(ours: dict[str, Tensor], prefix: str, values: dict[str, Tensor]) -> dict[str, Tensor]:
    """A KAGN (v1, one group) conv's reference keys from our tensors' shapes; records our expected tensors."""
    weight = ours[prefix + "weight"]  # (C_out, c_in, D+2, *k)
    c_out, c_in, features = weight.shape[:3]
    w = torch.randn(weight.shape, dtype=torch.float64)
    values[prefix + "weight"] = w
    sd = {
        prefix + "base_conv.0.weight": w[:, :, 0].clone(),  # degree-major: feature j·c_in + c
        prefix + "poly_weights": w[:, :, 1:].transpose(1, 2).reshape(1, c_out, (features - 1) * c_in, *w.shape[3:]),
        prefix + "beta_weights": ours[prefix + "basis.beta_weights"] + 0.25,
    }
    values[prefix + "basis.beta_weights"] = sd[prefix + "beta_weights"]
    for key in [k for k in ours if k.startswith(prefix + "norm.")]:
        value = ours[key] + 1.5 if ours[key].is_floating_point() else ours[key] + 3
        sd[prefix + "layer_norm.0." + key[len(prefix + "norm.") :]] = values[key] = value
    return sd


def test_focal_modulation_reference_layout_known_values() -> None:
    ours = compat.KAGNFocalModulation1D(3, focal_level=2, degree=2).double()
    state = ours.state_dict()
    values: dict[str, Tensor] = {}
    sd: dict[str, Tensor] = {}
    for conv in ("f.", "h.", "proj."):
        sd.update(_v1_reference_keys(state, conv, values))
    for level, kernel in enumerate((3, 5)):
        p = f"focal_layers.{level}."
        base = torch.full((3, 1, kernel), 10.0 + level, dtype=torch.float64)
        poly = torch.arange(3 * 3 * kernel, dtype=torch.float64).reshape(3, 3, kernel)  # depthwise: (C, D+1, k)
        sd |= {p + "base_conv.weight": base, p + "poly_conv.weight": poly, p + "beta_weights": torch.rand(3).double()}
        values[p + "weight"] = torch.cat([base.unsqueeze(2), poly.unsqueeze(1)], dim=2)
        values[p + "basis.beta_weights"] = sd[p + "beta_weights"]
        for key in [k for k in state if k.startswith(p + "norm.")]:
            sd[p + "layer_norm." + key[len(p + "norm.") :]] = values[key] = state[key] + 2
    for key in [k for k in state if k.startswith("post_norm.")]:
        sd["norm_layer." + key[len("post_norm.") :]] = values[key] = state[key] + 4
    ours.load_state_dict(dict(sd))  # strict
    loaded = ours.state_dict()
    assert set(values) == set(loaded)
    for key, value in values.items():
        assert torch.equal(loaded[key], value), key
    clean = compat.KAGNFocalModulation1D(3, focal_level=2, degree=2).double()
    converted = convert_reference_state_dict(sd, clean)
    assert set(converted) == set(values)
    clean.load_state_dict(converted)


@pytest.mark.parametrize("ndim", NDIMS)
def test_self_attention_reference_outer_norm_is_renamed(ndim: int) -> None:
    name = f"SelfKAGNtention{ndim}D"
    ours = getattr(compat, name)(4, kernel_size=3, padding=1)
    sd = {("norm_layer." + k[len("norm.") :] if k.startswith("norm.") else k): v for k, v in ours.state_dict().items()}
    norm_keys = [k for k in sd if k.startswith("norm_layer.")]
    assert norm_keys
    for key in norm_keys:
        sd[key] = sd[key] + 1
    fresh = getattr(compat, name)(4, kernel_size=3, padding=1)
    fresh.load_state_dict(dict(sd))  # strict
    for key in norm_keys:
        assert torch.equal(fresh.state_dict()["norm." + key[len("norm_layer.") :]], sd[key])
    # the clean layer too: kanconvs.layers.KASelfAttention2d with an outer norm
    from kanconvs.layers.attention import KASelfAttentionNd

    clean = KASelfAttentionNd(4, 3, ndim=ndim, out_norm="batch")
    ref_sd = {("norm_layer." + k[5:] if k.startswith("norm.") else k): v for k, v in clean.state_dict().items()}
    clean.load_state_dict(convert_reference_state_dict(ref_sd, clean))


def test_rope_reference_frequencies_known_values() -> None:
    """The reference's ``freqs[0]`` turns with x = ``t % W`` (the column), ``freqs[1]`` with y = ``t // W`` (the
    row): after conversion our angle at position t is ``(t % W)·freqs[0] + (t // W)·freqs[1]``."""
    layer = compat.RoPEBottleNeckSelfKAGNtention2D(24, kernel_size=3, padding=1)
    sd = dict(layer.state_dict())
    del sd["rope.freqs"]
    fx, fy = torch.linspace(0.1, 1.2, 12), -torch.linspace(0.05, 0.6, 12)
    sd |= {
        "freqs": torch.stack([fx, fy]),
        "freqs_t_x": torch.arange(196.0) % 14,
        "freqs_t_y": torch.arange(196.0) // 14,
    }
    fresh = compat.RoPEBottleNeckSelfKAGNtention2D(24, kernel_size=3, padding=1)
    fresh.load_state_dict(sd)  # strict
    assert torch.equal(fresh.rope.freqs[:, 0], torch.stack([fy, fx]))
    h, w = 3, 5
    t = torch.arange(h * w, dtype=torch.float64)
    expected = (t % w)[:, None] * fx.double() + (t // w)[:, None] * fy.double()
    with torch.no_grad():
        torch.testing.assert_close(fresh.rope.angles((h, w), dtype=torch.float64)[0], expected)


def test_rope_reference_frequencies_of_other_ranks_are_left() -> None:
    """1-D: the reference learns 2-D frequencies of a square grid it assumes; nothing here is that quantity."""
    layer = compat.RoPEBottleNeckSelfKAGNtention1D(16, kernel_size=3, padding=1)
    sd = dict(layer.state_dict())
    del sd["rope.freqs"]
    sd |= {"freqs": torch.zeros(2, 8), "freqs_t_x": torch.zeros(196), "freqs_t_y": torch.zeros(196)}
    with pytest.raises(RuntimeError, match="freqs"):
        compat.RoPEBottleNeckSelfKAGNtention1D(16, kernel_size=3, padding=1).load_state_dict(sd)
