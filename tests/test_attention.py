"""Self-attention and focal modulation with KA convolutions: values against naive formulas written here (explicit
softmax(QKᵀ/√d)V, explicit rotations, explicit focal aggregation), every family × rank, gradients, autocast, the
reference's parameter counts and signatures, error paths."""

from __future__ import annotations

import inspect
import itertools
import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kanconvs
from kanconvs import compat
from kanconvs.compat import attention as ref
from kanconvs.layers.attention import (
    AxialRoPE,
    KAFocalModulation2d,
    KAFocalModulationNd,
    KASelfAttention2d,
    KASelfAttention3d,
    KASelfAttentionNd,
)
from kanconvs.layers.bottleneck import BottleneckKAConvNd, bottleneck_width

FAMILIES = kanconvs.list_families()
NDIMS = [1, 2, 3]
# Odd, non-square sizes: nothing may assume a square grid.
SPATIAL = {1: (7,), 2: (3, 5), 3: (3, 2, 3)}
BATCH_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


# ------------------------------------------------------------------------------------------------ naive helpers
def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int) -> torch.Tensor:
    """softmax(q_i · k_j / √d) over j, then Σ_j p_ij v_j, position by position, with Python scalars."""
    b, c = q.shape[:2]
    d = c // heads
    qf, kf, vf = (t.reshape(b, c, -1).tolist() for t in (q, k, v))
    n = len(qf[0][0])
    out = torch.zeros(b, c, n, dtype=torch.float64)
    for bi, h, i in itertools.product(range(b), range(heads), range(n)):
        chans = range(h * d, (h + 1) * d)
        scores = [sum(qf[bi][ch][i] * kf[bi][ch][j] for ch in chans) / math.sqrt(d) for j in range(n)]
        top = max(scores)
        weights = [math.exp(s - top) for s in scores]
        total = sum(weights)
        for ch in chans:
            out[bi, ch, i] = sum(w / total * vf[bi][ch][j] for j, w in enumerate(weights))
    return out.reshape(q.shape)


def axial_freqs(head_dim: int, ndim: int, theta: float) -> list[list[float]]:
    """freqs[a][j]: plane j turns with axis a iff j // m == a, at θ^(−2·ndim·(j mod m)/d), m = d / (2·ndim)."""
    m = head_dim // (2 * ndim)
    return [[theta ** (-2 * ndim * (j % m) / head_dim) if j // m == a else 0.0 for j in range(head_dim // 2)]
            for a in range(ndim)]  # fmt: skip


def naive_rope(x: torch.Tensor, shape: tuple[int, ...], freqs: list) -> torch.Tensor:
    """Rotate pairs (2j, 2j+1) of x (B, h, N, d) by ⟨position, f_hj⟩; freqs[a][h][j] (or freqs[a][j] for all h)."""
    out = x.clone()
    positions = list(itertools.product(*(range(s) for s in shape)))  # row-major, as flatten(2)
    for h, (n, p), j in itertools.product(range(x.shape[1]), enumerate(positions), range(x.shape[-1] // 2)):
        angle = sum(p[a] * (freqs[a][h][j] if isinstance(freqs[a][0], list) else freqs[a][j]) for a in range(len(p)))
        c, s = math.cos(angle), math.sin(angle)
        x0, x1 = x[:, h, n, 2 * j], x[:, h, n, 2 * j + 1]
        out[:, h, n, 2 * j], out[:, h, n, 2 * j + 1] = x0 * c - x1 * s, x0 * s + x1 * c
    return out


def heads_view(t: torch.Tensor, heads: int) -> torch.Tensor:
    b, c = t.shape[:2]
    return t.reshape(b, heads, c // heads, -1).transpose(-1, -2)  # (B, h, N, d)


def from_heads(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return t.transpose(-1, -2).reshape(shape)


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------------------------------- values
@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize(("heads", "inner"), [(1, None), (2, None), (2, 4)])
def test_attention_matches_naive_softmax(ndim: int, heads: int, inner: int | None) -> None:
    layer = KASelfAttentionNd(8, 3, ndim=ndim, num_heads=heads, inner_projection=inner, degree=2).double().eval()
    with torch.no_grad():
        layer.gamma.fill_(0.7)
    x = torch.randn(2, 8, *SPATIAL[ndim], dtype=torch.float64)
    with torch.no_grad():
        a = layer.inner_proj(x) if inner else x
        q, k, v = layer.proj_q(a), layer.proj_k(a), layer.proj_v(a)
        att = naive_attention(q, k, v, heads)
        expected = x + 0.7 * (layer.outer_proj(att) if inner else att)
        torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("mixed", [False, True])
def test_rope_attention_matches_naive(ndim: int, mixed: bool) -> None:
    heads = 2
    channels = 16 if ndim == 2 else 12  # head_dim divisible by 2·ndim
    layer = KASelfAttentionNd(channels, 1, ndim=ndim, family="kacn", num_heads=heads, rope=True, rope_mixed=mixed)
    layer = layer.double().eval()
    with torch.no_grad():
        layer.gamma.fill_(1.0)
    shape = SPATIAL[ndim]
    x = torch.randn(2, channels, *shape, dtype=torch.float64)
    d = channels // heads
    freqs = layer.rope.freqs.tolist() if mixed else axial_freqs(d, ndim, 10.0)
    with torch.no_grad():
        q, k, v = layer.proj_q(x), layer.proj_k(x), layer.proj_v(x)
        q_rot = from_heads(naive_rope(heads_view(q, heads), shape, freqs), q.shape)
        k_rot = from_heads(naive_rope(heads_view(k, heads), shape, freqs), k.shape)
        torch.testing.assert_close(layer.rope(heads_view(q, heads), shape), heads_view(q_rot, heads))
        torch.testing.assert_close(layer(x), x + naive_attention(q_rot, k_rot, v, heads))


@pytest.mark.parametrize("ndim", NDIMS)
def test_rope_scores_depend_on_relative_position_only(ndim: int) -> None:
    rope = AxialRoPE(12, ndim, num_heads=1, mixed=True).double()
    shape = {1: (9,), 2: (4, 5), 3: (3, 2, 4)}[ndim]
    n = math.prod(shape)
    q = torch.randn(12, dtype=torch.float64).expand(1, 1, n, 12)  # the same vector at every position
    k = torch.randn(12, dtype=torch.float64).expand(1, 1, n, 12)
    with torch.no_grad():
        scores = rope(q, shape)[0, 0] @ rope(k, shape)[0, 0].T
    positions = list(itertools.product(*(range(s) for s in shape)))
    by_offset: dict[tuple[int, ...], float] = {}
    for (i, p), (j, r) in itertools.product(enumerate(positions), repeat=2):
        offset = tuple(a - b for a, b in zip(p, r, strict=True))
        ref_score = by_offset.setdefault(offset, scores[i, j].item())
        assert math.isclose(scores[i, j].item(), ref_score, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("ndim", NDIMS)
def test_mixed_rope_init_is_rotated_axial(ndim: int) -> None:
    """Per head and magnitude, the ndim frequency vectors are the axial ones under one orthogonal map."""
    d, heads = 4 * ndim, 3
    rope = AxialRoPE(d, ndim, num_heads=heads, theta=7.0, mixed=True)
    m = d // (2 * ndim)
    freqs = rope.freqs.detach().double()  # (ndim, heads, d/2)
    for h, i in itertools.product(range(heads), range(m)):
        vectors = torch.stack([freqs[:, h, a * m + i] for a in range(ndim)])  # rows: axis a's plane i
        mag = 7.0 ** (-2 * ndim * i / d)
        expected = mag**2 * torch.eye(ndim, dtype=torch.float64)
        torch.testing.assert_close(vectors @ vectors.T, expected, rtol=1e-5, atol=1e-6)  # float32 parameters


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("global_context", ["focalnet", "reference"])
@pytest.mark.parametrize("normalize", [True, False])
def test_focal_modulation_matches_naive(ndim: int, global_context: str, normalize: bool) -> None:
    c, levels = 4, 3
    layer = KAFocalModulationNd(
        c, ndim=ndim, focal_level=levels, global_context=global_context, normalize_modulator=normalize, degree=2
    ).double()
    x = torch.randn(2, c, *SPATIAL[ndim], dtype=torch.float64)
    space = tuple(range(2, ndim + 2))
    with torch.no_grad():
        y = layer.f(x)
        q, ctx, gates = y[:, :c], y[:, c : 2 * c], y[:, 2 * c :]
        ctx_all = torch.zeros_like(ctx)
        for level in range(levels):
            ctx = layer.focal_layers[level](ctx)
            ctx_all = ctx_all + ctx * gates[:, level : level + 1]
        if global_context == "focalnet":  # FocalNet: GELU of the mean of the last level
            ctx_global = F.gelu(ctx.mean(space, keepdim=True))
        else:  # torch-conv-kan: mean of the gated sum
            ctx_global = ctx_all.mean(space, keepdim=True)
        ctx_all = ctx_all + ctx_global * gates[:, levels:]
        if normalize:
            ctx_all = ctx_all / (levels + 1)
        z = q * layer.h(ctx_all)
        # post-LN over channels, written out
        mu, var = z.mean(1, keepdim=True), z.var(1, unbiased=False, keepdim=True)
        shape = (1, c) + (1,) * ndim
        w, b = layer.post_norm.weight.view(shape), layer.post_norm.bias.view(shape)
        z = (z - mu) / torch.sqrt(var + layer.post_norm.eps) * w + b
        torch.testing.assert_close(layer(x), layer.proj(z))
    assert [conv.kernel_size for conv in layer.focal_layers] == [(2 * i + 3,) * ndim for i in range(levels)]
    assert all(conv.groups == c for conv in layer.focal_layers)


@pytest.mark.parametrize("family", FAMILIES)
def test_depthwise_focal_channel_c_sees_only_channel_c(family: str) -> None:
    c = 4
    layer = KAFocalModulation2d(c, family=family, focal_level=1).double()
    focal = layer.focal_layers[0]
    x = torch.randn(2, c, 5, 5, dtype=torch.float64, requires_grad=True)
    out = focal(x)
    for ch in range(c):
        (grad,) = torch.autograd.grad(out[:, ch].sum(), x, retain_graph=True)
        others = [o for o in range(c) if o != ch]
        assert grad[:, others].abs().max() == 0, f"{family}: output channel {ch} depends on other channels"
        assert grad[:, ch].abs().max() > 0


def test_depthwise_focal_equals_per_channel_layers() -> None:
    """Gram focal layer (groups = C) vs C independent single-channel KAGN convs cut out of its weights."""
    c = 4
    focal = KAFocalModulation2d(c, focal_level=2, degree=3).focal_layers[1].double()
    x = torch.randn(2, c, 6, 5, dtype=torch.float64)
    single = kanconvs.create_conv("kagn", 1, 1, 5, ndim=2, padding=2, degree=3).double()
    state = focal.state_dict()
    with torch.no_grad():
        out = focal(x)
        for ch in range(c):
            single.load_state_dict({**state, "weight": state["weight"][ch : ch + 1]})
            torch.testing.assert_close(out[:, ch : ch + 1], single(x[:, ch : ch + 1]))


# -------------------------------------------------------------------- every family × rank: identity, gradients
@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_identity_at_init_and_gradients(family: str, ndim: int) -> None:
    x = torch.randn(2, 4, *SPATIAL[ndim])
    attn = KASelfAttentionNd(4, 3, ndim=ndim, family=family, num_heads=2)
    assert torch.equal(attn(x), x), "γ = 0 must make a fresh block the identity"
    with torch.no_grad():
        attn.gamma.fill_(0.5)
    focal = KAFocalModulationNd(4, ndim=ndim, family=family)
    y = attn(x)
    assert y.shape == x.shape and focal(x).shape == x.shape
    (y.square().sum() + focal(x).square().sum()).backward()
    for name, p in [*attn.named_parameters(), *focal.named_parameters()]:
        assert p.grad is not None, f"{family}: no gradient for {name}"
        assert torch.isfinite(p.grad).all(), name
    for module in (attn.proj_q, attn.proj_k, attn.proj_v, focal.f, focal.h, focal.proj, *focal.focal_layers):
        assert any(p.grad.abs().sum() > 0 for p in module.parameters())
    assert attn.gamma.grad.abs().item() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_finite(dtype: torch.dtype) -> None:
    attn = KASelfAttention2d(8, 3, num_heads=2, rope=True, out_norm="layer")
    with torch.no_grad():
        attn.gamma.fill_(1.0)
    focal = KAFocalModulation2d(8)
    x = (5 * torch.randn(2, 8, 7, 9)).requires_grad_()
    with torch.autocast("cpu", dtype=dtype):
        y, z = attn(x), focal(x)
    assert torch.isfinite(y).all() and torch.isfinite(z).all()
    (y.float().sum() + z.float().sum()).backward()
    for p in [*attn.parameters(), *focal.parameters(), x]:
        assert p.grad is None or torch.isfinite(p.grad).all()


def test_uses_scaled_dot_product_attention(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    sdpa = F.scaled_dot_product_attention

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(args[0].shape)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    KASelfAttention2d(8, 3, num_heads=4)(torch.randn(2, 8, 5, 3))
    assert calls == [torch.Size([2, 4, 15, 2])]  # (B, heads, N, d)


def test_attention_dropout_only_in_training() -> None:
    layer = KASelfAttention2d(8, 3, attn_dropout=0.5)
    with torch.no_grad():
        layer.gamma.fill_(1.0)
    x = torch.randn(2, 8, 5, 5)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    assert not torch.equal(layer(x), layer(x))


def test_any_spatial_size_and_one_position() -> None:
    # (no norm in the convolutions: an instance norm cannot normalise a single position)
    layer = KASelfAttention3d(12, (3, 1, 5), rope=True, dilation=(2, 1, 1), norm_layer=None)
    with torch.no_grad():
        layer.gamma.fill_(1.0)
    for shape in [(1, 1, 1), (5, 2, 7), (2, 9, 1)]:
        x = torch.randn(1, 12, *shape)
        assert layer(x).shape == x.shape


def test_conv_factories_and_ndim_inference() -> None:
    x = torch.randn(2, 8, 5, 7)
    # A callable family: the rank comes from the convolutions it builds.
    for family in (kanconvs.KAGNConv2d, partial(kanconvs.create_conv, "kacn", ndim=2), compat.KAGNConv2DLayer):
        layer = KASelfAttentionNd(8, 3, family=family)
        assert layer.ndim == 2 and layer(x).shape == x.shape
    # Torch-style N-D classes get ndim=, reference-style ones do not.
    assert KASelfAttentionNd(8, 3, ndim=2, family=kanconvs.KAGNConvNd).ndim == 2
    layer = KASelfAttentionNd(32, 3, ndim=2, family=BottleneckKAConvNd, dim_reduction=2, min_internal=4)
    assert isinstance(layer.proj_q, BottleneckKAConvNd) and layer.proj_q.inner_channels == 16
    assert layer(torch.randn(1, 32, 5, 3)).shape == (1, 32, 5, 3)


def test_state_dict_round_trip() -> None:
    a = KASelfAttention2d(8, 3, rope=True, inner_projection=4)
    b = KASelfAttention2d(8, 3, rope=True, inner_projection=4)
    with torch.no_grad():
        a.gamma.fill_(0.3)
    b.load_state_dict(a.state_dict())
    x = torch.randn(2, 8, 5, 3)
    torch.testing.assert_close(a(x), b(x))


# ------------------------------------------------------------------------------------------------- error paths
@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: KASelfAttentionNd(8, 3), ValueError, "needs ndim"),
        (lambda: KASelfAttention2d(8, 4), ValueError, "kernel_size must be odd"),
        (lambda: KASelfAttention2d(8, (3, 2)), ValueError, "kernel_size must be odd"),
        (lambda: KASelfAttention2d(8, 3, num_heads=3), ValueError, "num_heads"),
        (lambda: KASelfAttention2d(8, 3, num_heads=0), ValueError, "num_heads"),
        (lambda: KASelfAttention3d(8, 3, rope=True), ValueError, r"divisible by 2·ndim = 6"),
        (lambda: KASelfAttention2d(8, 3, family="nope"), ValueError, "unknown family"),
        (lambda: KASelfAttention2d(8, 3, family=42), TypeError, "family"),
        (lambda: KASelfAttention2d(8, 3, padding=1), ValueError, "family_kwargs must not contain"),
        (lambda: KASelfAttention2d(8, 3, ndim=3), ValueError, "2-dimensional"),
        (lambda: KASelfAttention2d(8, 3, attn_dropout=1.0), ValueError, "attn_dropout"),
        (lambda: KASelfAttention2d(8, 3, inner_projection=0), ValueError, "inner_projection"),
        (lambda: KASelfAttentionNd(8, 3, family=lambda i, o, k, **kw: nn.Identity()), ValueError, "infer ndim"),
        (lambda: KASelfAttentionNd(8, 3, ndim=2, family=kanconvs.KAGNConv3d), ValueError, "3-D convolution"),
        (lambda: KAFocalModulation2d(8, focal_window=4), ValueError, "odd"),
        (lambda: KAFocalModulation2d(8, focal_factor=1), ValueError, "odd"),
        (lambda: KAFocalModulation2d(8, focal_level=0), ValueError, "focal_level"),
        (lambda: KAFocalModulation2d(8, global_context="mean"), ValueError, "global_context"),
        (lambda: KAFocalModulationNd(8, family="kagn"), ValueError, "needs ndim"),
        (lambda: AxialRoPE(8, 4), ValueError, "ndim"),
        (lambda: AxialRoPE(6, 2), ValueError, "divisible"),
        (lambda: AxialRoPE(8, 2, theta=0.0), ValueError, "theta"),
        (lambda: ref.SelfKAGNtention2D(8, stride=2), ValueError, "stride"),
        (lambda: ref.SelfKAGNtention2D(8, padding=2), ValueError, "padding"),
        (lambda: ref.SelfKANtentionND(8, compat.KAGNConv2DLayer), TypeError, "kernel_size"),
        (lambda: ref.RoPEBottleNeckSelfKAGNtention3D(8), ValueError, "divisible"),
        (lambda: ref.KANFocalModulationND(8, compat.KAGNConv2DLayer, nn.BatchNorm2d, 3, 2), ValueError, "dict"),
    ],
)
def test_errors(build, error: type[Exception], match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        build()


def test_forward_errors() -> None:
    layer = KASelfAttention2d(8, 3)
    with pytest.raises(ValueError, match="4-D input"):
        layer(torch.randn(2, 8, 5))
    with pytest.raises(ValueError, match="8 input channels"):
        layer(torch.randn(2, 6, 5, 5))
    with pytest.raises(ValueError, match="8 input channels"):
        KAFocalModulation2d(8)(torch.randn(2, 6, 5, 5))
    # A factory that ignores the padding it is given cannot keep the residual's shape.
    shrinking = KASelfAttention2d(8, 3, family=lambda i, o, k, **kw: nn.Conv2d(i, o, k))
    with pytest.raises(ValueError, match="keep the shape"):
        shrinking(torch.randn(1, 8, 5, 5))
    with pytest.raises(ValueError, match="grid"):
        AxialRoPE(8, 2)(torch.randn(1, 1, 6, 8), (2, 2))


# ------------------------------------------------------------------------------------ reference compatibility
def kagn_params(ci: int, co: int, k: int, ndim: int, degree: int = 3, groups: int = 1, norm: int = 0) -> int:
    return ci * co // groups * k**ndim * (degree + 2) + degree + 1 + norm


def relukan_params(ci: int, co: int, k: int, ndim: int, g: int = 5, order: int = 3, groups: int = 1) -> int:
    return ci * co // groups * k**ndim * (1 + g + order) + 2 * (ci // groups) * (g + order) + 2 * co


def bottleneck_kagn_params(ci: int, co: int, k: int, ndim: int, degree: int = 3, r: float = 4, norm: int = 0) -> int:
    m = int(max(ci / r, co / r))
    m = min(16, ci, co) if m < 16 else m
    return ci * co * k**ndim + ci * m + m * co + m * m * (degree + 1) * k**ndim + degree + 1 + norm


def bottleneck_relukan_params(ci: int, co: int, k: int, ndim: int, g: int = 5, order: int = 3) -> int:
    m = bottleneck_width(ci, co, 4, 16)
    return ci * co * k**ndim + ci * m + m * co + (g + order) * m * m * k**ndim + 2 * m * (g + order) + 2 * co


@pytest.mark.parametrize("ndim", NDIMS)
def test_reference_parameter_counts(ndim: int) -> None:
    c, k = 8, 3
    bn = 2 * c  # BatchNorm affine
    # Self-attention: three q/k/v convs + γ + outer norm (+ 1×1 inner/outer projections with bias).
    assert n_params(getattr(ref, f"SelfKAGNtention{ndim}D")(c)) == 3 * kagn_params(c, c, k, ndim, norm=bn) + 1 + bn
    assert n_params(getattr(ref, f"SelfKAGNtention{ndim}D")(c, groups=2, degree=2)) == (
        3 * kagn_params(c, c, k, ndim, degree=2, groups=2, norm=bn) + 1 + bn
    )
    m = 4
    assert n_params(getattr(ref, f"SelfKAGNtention{ndim}D")(c, inner_projection=m)) == (
        3 * kagn_params(m, m, k, ndim, norm=2 * m) + (c * m + m) + (m * c + c) + 1 + bn
    )
    assert n_params(getattr(ref, f"SelfReLUKANtention{ndim}D")(c)) == 3 * relukan_params(c, c, k, ndim) + 1 + bn
    assert n_params(getattr(ref, f"BottleNeckSelfKAGNtention{ndim}D")(c)) == (
        3 * bottleneck_kagn_params(c, c, k, ndim, norm=bn) + 1 + bn
    )
    assert n_params(getattr(ref, f"BottleNeckSelfReLUKANtention{ndim}D")(c)) == (
        3 * bottleneck_relukan_params(c, c, k, ndim) + 1 + bn
    )
    # Focal modulation: f (C → 2C+L+1), h, proj (1×1), L depthwise levels, post norm.
    levels, out_f = 2, 2 * c + 3
    depthwise = sum(c * (2 * i + 3) ** ndim * 5 + 4 + bn for i in range(levels))
    full = kagn_params(c, out_f, 1, ndim, norm=2 * out_f) + 2 * kagn_params(c, c, 1, ndim, norm=bn)
    assert n_params(getattr(ref, f"KAGNFocalModulation{ndim}D")(c)) == full + depthwise + bn
    plain = (c * out_f + out_f) + (c * c + c) + kagn_params(c, c, 1, ndim, norm=bn)
    assert n_params(getattr(ref, f"KAGNFocalModulation{ndim}D")(c, full_kan=False)) == plain + depthwise + bn
    assert n_params(getattr(ref, f"KAGNFocalModulation{ndim}D")(c, use_postln_in_modulation=False)) == (
        full + depthwise
    )
    bottleneck = bottleneck_kagn_params(c, out_f, 1, ndim, norm=2 * out_f) + 2 * bottleneck_kagn_params(
        c, c, 1, ndim, norm=bn
    )
    assert n_params(getattr(ref, f"BottleNeckKAGNFocalModulation{ndim}D")(c)) == bottleneck + depthwise + bn


SELF_KAGN = [("inner_projection", None), ("kernel_size", 3), ("degree", 3), ("groups", 1), ("padding", 0),
             ("stride", 1), ("dilation", 1), ("dropout", 0.0)]  # fmt: skip
SELF_RELU = [("inner_projection", None), ("kernel_size", 3), ("g", 5), ("k", 3), ("train_ab", True), ("groups", 1),
             ("padding", 0), ("stride", 1), ("dilation", 1), ("dropout", 0.0)]  # fmt: skip
ROPE = [*SELF_KAGN, ("rope_theta", 10.0), ("rope_mixed", True)]
FOCAL = [("focal_window", 3), ("focal_level", 2), ("focal_factor", 2), ("use_postln_in_modulation", True),
         ("normalize_modulator", True), ("full_kan", True), ("degree", 3), ("dropout", 0.0)]  # fmt: skip
# Read off torch-conv-kan's kan_convs/attention_conv.py at HEAD 7a0e83c.
REFERENCE_SIGNATURES = {
    "SelfKAGNtention{d}D": SELF_KAGN,
    "BottleNeckSelfKAGNtention{d}D": SELF_KAGN,
    "RoPEBottleNeckSelfKAGNtention{d}D": ROPE,
    "SelfReLUKANtention{d}D": SELF_RELU,
    "BottleNeckSelfReLUKANtention{d}D": SELF_RELU,
    "KAGNFocalModulation{d}D": FOCAL,
    "BottleNeckKAGNFocalModulation{d}D": FOCAL,
}


@pytest.mark.parametrize("ndim", NDIMS)
@pytest.mark.parametrize("template", list(REFERENCE_SIGNATURES))
def test_reference_signatures(template: str, ndim: int) -> None:
    cls = getattr(ref, template.format(d=ndim))
    params = list(inspect.signature(cls).parameters.values())
    expected = [
        ("input_dim", inspect.Parameter.empty),
        *REFERENCE_SIGNATURES[template],
        ("norm_layer", BATCH_NORM[ndim]),
    ]
    assert [(p.name, p.default) for p in params[:-1]] == expected
    assert params[-1].name == "norm_kwargs" and params[-1].kind is inspect.Parameter.VAR_KEYWORD
    channels = 12 if template.startswith("RoPE") else 8
    layer = cls(channels).eval()
    x = torch.randn(2, channels, *SPATIAL[ndim])
    y = layer(x)
    assert y.shape == x.shape and layer.ndim == ndim
    if "Focal" not in template:  # γ = 0: the reference block minus γ's misplacement is norm(x)
        torch.testing.assert_close(y, layer.norm(x))


def test_reference_nd_signatures() -> None:
    names = lambda cls: list(inspect.signature(cls).parameters)  # noqa: E731
    assert names(ref.SelfKANtentionND) == ["input_dim", "conv_kan_layer", "inner_projection", "kankwargs"]
    assert names(ref.RoPESelfKANtentionND) == ["args", "rope_theta", "rope_mixed", "kwargs"]
    assert names(ref.KANFocalModulationND) == [
        "dim", "conv_kan_layer", "focal_norm_layer", "focal_window", "focal_level", "focal_factor",
        "use_postln_in_modulation", "normalize_modulator", "full_kan", "kan_params",
    ]  # fmt: skip


def test_reference_nd_classes_with_any_conv_class() -> None:
    x2, x3 = torch.randn(2, 8, 5, 7), torch.randn(2, 12, 3, 4, 5)
    # The reference's call convention: padding 0 (its default) or the size-preserving one both keep the size.
    for padding in (0, 1, (1, 1)):
        layer = ref.SelfKANtentionND(8, compat.KAGNConv2DLayer, kernel_size=3, padding=padding, degree=2)
        assert layer(x2).shape == x2.shape
    assert isinstance(ref.SelfKANtentionND(8, kanconvs.KAGNConv2d, kernel_size=3).norm, nn.LayerNorm)
    layer = ref.RoPESelfKANtentionND(12, kanconvs.KACNConvNd, kernel_size=3, ndim=3, rope_mixed=False)
    assert layer.ndim == 3 and layer.rope is not None and layer(x3).shape == x3.shape
    norm = {"layer": nn.BatchNorm2d, "params": {"affine": False}}
    focal = ref.KANFocalModulationND(8, kanconvs.KAGNConv2d, norm, 3, 2, use_postln_in_modulation=True)
    assert focal.global_context == "reference" and not focal.post_norm.affine and focal(x2).shape == x2.shape
    # The bottleneck focal block runs its depthwise levels with plain KAGN convolutions, as the reference.
    block = ref.BottleNeckKAGNFocalModulation2D(8, dim_reduction=2)
    assert isinstance(block.f, compat.BottleNeckKAGNConv2DLayer)
    assert all(isinstance(layer, compat.KAGNConv2DLayer) for layer in block.focal_layers)


def test_reference_fixes() -> None:
    assert ref.BottleNeckSelfReLUKANtention3D(8).ndim == 3  # the reference built the 2-D layer
    layer = ref.SelfKAGNtention2D(8, norm_layer=nn.BatchNorm2d, affine=False)
    assert not layer.norm.affine and not layer.proj_q.norm.affine  # affine reaches both, as in the reference


def test_reference_dim_reduction_reaches_bottleneck() -> None:
    layer = ref.BottleNeckSelfKAGNtention2D(64, dim_reduction=8)
    assert layer.proj_q.inner_channels == 16  # max(64/8 = 8, …) < 16 → min(16, 64, 64)
    layer = ref.BottleNeckSelfKAGNtention2D(256, dim_reduction=8)
    assert layer.proj_q.inner_channels == 32


def test_all_reference_names() -> None:
    expected = {"SelfKANtentionND", "RoPESelfKANtentionND", "KANFocalModulationND"} | {
        t.format(d=d) for t in REFERENCE_SIGNATURES for d in NDIMS
    }
    assert set(ref.__all__) == expected and len(ref.__all__) == len(expected)
    assert all(isinstance(getattr(ref, name), type) for name in expected)


def test_reference_names_importable_from_compat() -> None:
    for name in ref.__all__:
        assert getattr(compat, name) is getattr(ref, name)


# ------------------------------------------------------------------------------------------ compile and export
def attention_and_focal() -> list[nn.Module]:
    attn = KASelfAttention2d(8, 3, num_heads=2, rope=True, inner_projection=16)
    with torch.no_grad():
        attn.gamma.fill_(0.5)
    return [attn.eval(), KAFocalModulation2d(8).eval()]


@pytest.mark.slow
def test_torch_compile_fullgraph() -> None:
    torch._dynamo.reset()
    x = torch.randn(2, 8, 5, 7)
    for layer in attention_and_focal():
        compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(compiled(x), layer(x))
    torch._dynamo.reset()


def test_torch_export() -> None:
    x = torch.randn(2, 8, 5, 7)
    for layer in attention_and_focal():
        program = torch.export.export(layer, (x,))
        torch.testing.assert_close(program.module()(x), layer(x))


@pytest.mark.slow
def test_onnx_export_matches_onnxruntime(tmp_path) -> None:  # type: ignore[no-untyped-def]
    x = torch.randn(2, 8, 5, 7)
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    for i, layer in enumerate(attention_and_focal()):
        path = tmp_path / f"block{i}.onnx"
        torch.onnx.export(layer, (x,), str(path), dynamo=True, verbose=False)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        torch.testing.assert_close(torch.from_numpy(got), layer(x), rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cuda_matches_cpu(dtype: torch.dtype) -> None:
    x = torch.randn(2, 8, 9, 11)
    for layer in attention_and_focal():
        expected = layer(x)
        with torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
            got = layer.cuda()(x.cuda()).float().cpu()
        # bf16 keeps 8 mantissa bits: through several KA layers and a softmax one element of 1,584 was 0.09 off (H100)
        tol = {torch.float32: 1e-4, torch.float16: 5e-2, torch.bfloat16: 1.5e-1}[dtype]
        torch.testing.assert_close(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("rope", [False, True])
def test_self_attention_takes_an_empty_batch(rope: bool) -> None:
    """A batch of 0, as every conv takes (the head reshape used to infer its length from no elements)."""
    attn = KASelfAttention2d(8, 3, family="kagn", rope=rope, num_heads=2)
    assert attn(torch.randn(0, 8, 4, 4)).shape == (0, 8, 4, 4)


def test_rope_attention_builds_under_a_float64_default_dtype() -> None:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        attn = KASelfAttention2d(8, 3, family="kagn", rope=True)
        assert attn.rope.freqs.dtype == torch.float64
        assert attn(torch.randn(1, 8, 4, 5)).dtype == torch.float64
    finally:
        torch.set_default_dtype(previous)
