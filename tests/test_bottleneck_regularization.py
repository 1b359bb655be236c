"""Bottleneck KA convolutions and the regularisers (noise injection, penalties, the auxiliary-loss hook)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kanconvs
from kanconvs import compat
from kanconvs.layers.bottleneck import BottleneckKAConvNd, bottleneck_width
from kanconvs.layers.regularization import MultiplicativeNoiseInjection, NoiseInjection, regularization_loss

FAMILIES = kanconvs.list_families()
CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
SPATIAL = {1: (9,), 2: (6, 7), 3: (4, 5, 4)}


def instance_norm(y: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(2, y.dim()))
    return (y - y.mean(dims, keepdim=True)) / torch.sqrt(y.var(dims, unbiased=False, keepdim=True) + 1e-5)


# ------------------------------------------------------------------------------------------------------ bottleneck
@pytest.mark.parametrize(
    ("c_in", "c_out", "r", "minimum", "expected"),
    [(4, 6, 4, 16, 4), (64, 40, 8, 16, 16), (256, 40, 8, 16, 32), (128, 128, 4, 16, 32), (20, 8, 4, 16, 8)],
)
def test_inner_width_rule(c_in: int, c_out: int, r: float, minimum: int, expected: int) -> None:
    assert bottleneck_width(c_in, c_out, r, minimum) == expected


@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_bottleneck_every_family_trains(family: str, ndim: int) -> None:
    layer = BottleneckKAConvNd(8, 12, 3, padding=1, groups=2, ndim=ndim, family=family, min_internal=4)
    x = torch.randn(2, 8, *SPATIAL[ndim], requires_grad=True)
    y = layer(x)
    assert y.shape == (2, 12, *SPATIAL[ndim])
    (y * torch.randn_like(y)).sum().backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(layer(x)).all()


def test_bottleneck_parameter_count_formula() -> None:
    for groups, degree in ((1, 3), (2, 5), (4, 2)):
        layer = kanconvs.BottleneckKAConv2d(64, 96, 3, padding=1, groups=groups, degree=degree, norm_layer="batch")
        c_in, c_out = 64 // groups, 96 // groups
        m = bottleneck_width(c_in, c_out, 4, 16)
        expected = 64 * 96 // groups * 9 + 64 * m + m * 96 + groups * m * m * (degree + 1) * 9 + degree + 1 + 2 * 96
        assert sum(p.numel() for p in layer.parameters()) == expected


def test_bottleneck_errors() -> None:
    with pytest.raises(ValueError, match="dim_reduction must be a number > 0, got 0"):
        kanconvs.BottleneckKAConv2d(8, 8, 3, dim_reduction=0)
    with pytest.raises(ValueError, match="min_internal must be an integer >= 1, got 0"):
        kanconvs.BottleneckKAConv2d(8, 8, 3, min_internal=0)
    with pytest.raises(ValueError, match="unknown family 'gram'"):
        kanconvs.BottleneckKAConv2d(8, 8, 3, family="gram")
    with pytest.raises(ValueError, match="expects 8 input channels, got 4"):
        kanconvs.BottleneckKAConv2d(8, 8, 3)(torch.randn(1, 4, 5, 5))


def _gram(t: torch.Tensor, degree: int, w: torch.Tensor) -> list[torch.Tensor]:
    p = [torch.ones_like(t), t]
    for m in range(2, degree + 1):
        n = m - 1
        p.append(t * p[m - 1] - (m + n) * (m - n) * n**2 / (m**2 / (4.0 * n**2 - 1.0)) * w[n] * p[m - 2])
    return p[: degree + 1]


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_reference_gram_bottleneck_checkpoint(ndim: int) -> None:
    """A reference-layout BottleNeckKAGN checkpoint, run by the reference's per-group math written here."""
    g, c_in, c_out, degree, k = 2, 8, 12, 3, 3
    ci, co = c_in // g, c_out // g
    m = bottleneck_width(ci, co, 4, 16)
    d = torch.float64
    ks = (k,) * ndim
    sd: dict[str, torch.Tensor] = {"beta_weights": 0.3 * torch.randn(degree + 1, dtype=d)}
    sd["poly_weights"] = 0.2 * torch.randn(g, m, m * (degree + 1), *ks, dtype=d)
    for i in range(g):
        sd[f"base_conv.{i}.weight"] = 0.3 * torch.randn(co, ci, *ks, dtype=d)
        sd[f"inner_proj.{i}.weight"] = 0.5 * torch.randn(m, ci, *(1,) * ndim, dtype=d)
        sd[f"out_proj.{i}.weight"] = 0.5 * torch.randn(co, m, *(1,) * ndim, dtype=d)
        sd[f"layer_norm.{i}.weight"] = 1 + 0.1 * torch.randn(co, dtype=d)
        sd[f"layer_norm.{i}.bias"] = 0.1 * torch.randn(co, dtype=d)
    x = torch.randn(2, c_in, *SPATIAL[ndim], dtype=d)
    conv = CONV[ndim]
    outs = []
    for i, xi in enumerate(torch.split(x, ci, 1)):
        base = conv(F.silu(xi), sd[f"base_conv.{i}.weight"], padding=1)
        z = torch.tanh(conv(xi, sd[f"inner_proj.{i}.weight"]))
        basis = F.silu(torch.cat(_gram(z, degree, sd["beta_weights"]), 1))  # degree-major, as the reference
        y = conv(conv(basis, sd["poly_weights"][i], padding=1), sd[f"out_proj.{i}.weight"])
        shape = (1, -1) + (1,) * ndim
        y = instance_norm(y + base) * sd[f"layer_norm.{i}.weight"].view(shape) + sd[f"layer_norm.{i}.bias"].view(shape)
        outs.append(F.silu(y))
    expected = torch.cat(outs, 1)

    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        layer = getattr(compat, f"BottleNeckKAGNConv{ndim}DLayer")(c_in, c_out, k, groups=g, padding=1, affine=True)
    finally:
        torch.set_default_dtype(default)
    layer.eval().load_state_dict(sd)
    torch.testing.assert_close(layer(x), expected, rtol=1e-9, atol=1e-9)


def test_reference_relu_bottleneck_checkpoint() -> None:
    g, c_in, c_out, k = 2, 8, 8, 3
    ci, co = c_in // g, c_out // g
    m = bottleneck_width(ci, co, 4, 16)
    d = torch.float64
    low = ((torch.arange(8, dtype=d) - 3) / 5 + 0.05 * torch.randn(m, 8, dtype=d)).view(1, m, 8, 1, 1)
    sd = {"phase_low": low, "phase_high": low + 0.8}
    for i in range(g):
        sd[f"base_conv.{i}.weight"] = 0.3 * torch.randn(co, ci, k, k, dtype=d)
        sd[f"inner_proj.{i}.weight"] = 0.5 * torch.randn(m, ci, 1, 1, dtype=d)
        sd[f"out_proj.{i}.weight"] = 0.5 * torch.randn(co, m, 1, 1, dtype=d)
        sd[f"relukan_conv.{i}.weight"] = 0.2 * torch.randn(m, m * 8, k, k, dtype=d)
    x = torch.randn(2, c_in, 6, 5, dtype=d)
    outs = []
    for i, xi in enumerate(torch.split(x, ci, 1)):
        base = F.conv2d(F.silu(xi), sd[f"base_conv.{i}.weight"], padding=1)
        z = F.conv2d(xi, sd[f"inner_proj.{i}.weight"]).unsqueeze(2)
        bumps = (6.25 * torch.relu(z - sd["phase_low"]) * torch.relu(sd["phase_high"] - z)) ** 2
        y = F.conv2d(bumps.flatten(1, 2), sd[f"relukan_conv.{i}.weight"], padding=1)
        outs.append(F.silu(instance_norm(F.conv2d(y, sd[f"out_proj.{i}.weight"]) + base)))
    layer = compat.BottleNeckReLUKANConv2DLayer(c_in, c_out, k, groups=g, padding=1).double().eval()
    layer.load_state_dict(sd)
    torch.testing.assert_close(layer(x), torch.cat(outs, 1), rtol=1e-9, atol=1e-9)


def test_vgg11v4_bn_bottleneck_layer_parameter_law() -> None:
    """One layer of the published VGG11v4-BN configuration (degree 5, r = 8, BatchNorm): the reference's law."""
    layer = compat.BottleNeckKAGNConv2DLayer(
        128, 256, 3, degree=5, padding=1, dim_reduction=8, norm_layer=nn.BatchNorm2d
    )
    m = 32
    assert layer.inner_dim == m
    assert sum(p.numel() for p in layer.parameters()) == 128 * 256 * 9 + 128 * m + m * 256 + m * m * 6 * 9 + 6 + 512


# ------------------------------------------------------------------------------------------------- regularisers
def test_activation_penalties_match_reference_definitions_with_own_coefficients() -> None:
    layer = kanconvs.KAGNConv2d(3, 4, 3, padding=1, activation_l1=2e-3, activation_l2=5e-4).train()
    y = layer(torch.randn(5, 3, 6, 6))
    l1 = y.abs().sum(0).mean()
    l2 = y.square().sum(0).sqrt().mean()
    torch.testing.assert_close(regularization_loss(layer), 2e-3 * l1 + 5e-4 * l2, rtol=1e-5, atol=1e-8)
    layer.eval()(torch.randn(5, 3, 6, 6))  # eval passes do not overwrite the recorded training term
    torch.testing.assert_close(regularization_loss(layer), 2e-3 * l1 + 5e-4 * l2, rtol=1e-5, atol=1e-8)


def test_weight_penalties_and_model_level_sum() -> None:
    a = kanconvs.KAGNConv2d(3, 4, 3, weight_l1=1e-3)
    b = kanconvs.KACNConv2d(4, 4, 3, weight_l2=1e-2)
    c = kanconvs.KALNConv2d(4, 4, 3)  # no penalty
    model = nn.Sequential(a, b, c)
    expected = 1e-3 * a.weight.abs().sum() + 1e-2 * b.weight.square().sum()
    total = regularization_loss(model)
    torch.testing.assert_close(total, expected)
    total.backward()
    torch.testing.assert_close(a.weight.grad, 1e-3 * a.weight.sign())
    assert c.weight.grad is None
    assert float(regularization_loss(c)) == 0.0


def test_penalty_errors() -> None:
    with pytest.raises(ValueError, match="activation_l1 must be a finite number >= 0, got -1"):
        kanconvs.KAGNConv2d(3, 4, 3, activation_l1=-1)
    with pytest.raises(ValueError, match="dropout_type must be one of"):
        kanconvs.KAGNConv2d(3, 4, 3, dropout=0.1, dropout_type="gaussian")


def test_noise_injection_statistics() -> None:
    torch.manual_seed(0)
    x = torch.randn(64, 3, 32, 32) * torch.tensor([1.0, 2.0, 4.0]).view(1, 3, 1, 1)
    noise = NoiseInjection(p=1.0, alpha=0.5).train()
    diff = noise(x) - x
    torch.testing.assert_close(diff.std(dim=(0, 2, 3)), 0.5 * x.std(dim=(0, 2, 3)), rtol=0.02, atol=0)
    half = NoiseInjection(p=0.5, alpha=0.5).train()
    assert abs(float((half(x) != x).float().mean()) - 0.5) < 0.01
    assert torch.equal(half.eval()(x), x)
    mult = MultiplicativeNoiseInjection(p=1.0, alpha=0.0, beta=0.0).train()
    torch.testing.assert_close(mult(x), 2 * x)  # the reference's form: x + m·x·(1 + βε)


@pytest.mark.parametrize("placement", ["full", "squashed", "basis"])
@pytest.mark.parametrize("kind", ["dropout", "noise", "multiplicative_noise"])
def test_dropout_placements_and_types(placement: str, kind: str) -> None:
    layer = kanconvs.KAGNConv2d(4, 4, 3, padding=1, dropout=0.3, dropout_type=kind, dropout_placement=placement)
    x = torch.randn(2, 4, 6, 6)
    train_out = layer.train()(x)
    assert not torch.allclose(train_out, layer(x))  # stochastic in training
    torch.testing.assert_close(layer.eval()(x), layer(x))  # deterministic in eval
    assert torch.isfinite(train_out).all()


def test_mlp_l1_decay_reaches_the_hook() -> None:
    mlp = kanconvs.KANMLP([4, 8, 3], family="kagn", l1_decay=1e-3)
    assert regularization_loss(mlp).item() > 0


def test_layers_with_recorded_penalties_copy_and_pickle() -> None:
    import copy
    import pickle

    layer = kanconvs.KAGNConv2d(3, 4, 3, activation_l1=1e-3).train()
    layer(torch.randn(2, 3, 5, 5))
    assert regularization_loss(layer).item() > 0
    clone = copy.deepcopy(layer)
    assert clone._activation_penalty is None
    restored = pickle.loads(pickle.dumps(layer))
    torch.testing.assert_close(restored.weight, layer.weight)


def test_noise_on_single_value_channels_is_finite() -> None:
    """A channel with one value (batch 1 and a 1×1 map, or one sample inside an MoE expert) has no spread: no noise,
    not the NaN of an unbiased std that turned the whole output into NaN."""
    x = torch.randn(1, 4, 1, 1)
    torch.testing.assert_close(NoiseInjection(p=0.5).train()(x), x)
    layer = kanconvs.create_conv("bottleneck_kagn", 8, 8, 3, padding=1, ndim=2, norm_layer="layer", dropout=0.5)
    assert torch.isfinite(layer.train()(torch.randn(1, 8, 1, 1))).all()
    moe = kanconvs.create_conv(
        "moe_kagn", 8, 8, 1, ndim=2, num_experts=2, k=1, dropout=0.5, dropout_type="noise", norm_layer="layer"
    )
    assert torch.isfinite(moe.train()(torch.randn(8, 8, 1, 1))).all()


def test_bottleneck_width_rule_is_the_references() -> None:
    """Below min_internal the width is min(min_internal, c_in, c_out), which can be smaller than the quotient."""
    assert bottleneck_width(2, 56, 4, 16) == 2  # 14 < 16 → min(16, 2, 56)
    assert bottleneck_width(2, 64, 4, 16) == 16
    with pytest.raises(ValueError, match="dim_reduction must be a number > 0, got '4'"):
        bottleneck_width(8, 8, "4", 16)  # type: ignore[arg-type]


def test_wavkan_weight_penalty_leaves_the_wavelet_scales_alone() -> None:
    """Scales and translations are basis parameters (an L2 term would pull the scales, which divide, towards 0)."""
    layer = kanconvs.WavKANConv2d(3, 4, 3, weight_l2=1e-2)
    expected = sum(w.square().sum() for w in (layer.wavelet_weight, layer.base_weight, layer.out_weight)) * 1e-2
    torch.testing.assert_close(layer.regularization_loss(), expected)
