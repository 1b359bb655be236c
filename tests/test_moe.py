"""Mixture-of-experts KA convolutions: values against a naive loop over experts, the gating math against a scalar
re-derivation, gradients, half precision, parameter counts, DDP, the compat names and the error paths."""

from __future__ import annotations

import copy
import inspect
import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import kanconvs
from kanconvs.compat import moe as compat_moe
from kanconvs.layers.bottleneck import BottleneckKAConvNd, bottleneck_width
from kanconvs.layers.moe import (
    MoEBottleneckKAConv2d,
    MoEBottleneckKAConvNd,
    MoEKAConv2d,
    MoEKAConvNd,
    NoisyTopKGate,
    StackedExperts,
    cv_squared,
)
from kanconvs.layers.regularization import regularization_loss

FAMILIES = kanconvs.list_families()
SPATIAL = {1: (7,), 2: (5, 6), 3: (4, 3, 5)}


def expert_options(family: str) -> dict:
    # WavKAN experts default to BatchNorm, which MoE layers reject: give them an instance norm.
    return {"norm_layer": "instance"} if family == "wavkan" else {}


def naive_expert(layer: MoEKAConvNd, family: str, index: int, **kwargs) -> nn.Module:
    """Expert ``index`` rebuilt as an ordinary family layer from the stacked tensors (no vmap involved)."""
    conv = kanconvs.create_conv(
        family, layer.in_channels, layer.out_channels, layer.kernel_size, ndim=layer.ndim, stride=layer.stride,
        padding=layer.padding, dilation=layer.dilation, groups=layer.groups, **kwargs,
    )  # fmt: skip
    names = [n for n, _ in conv.named_parameters()] + [n for n, _ in conv.named_buffers()]
    state = {n: layer.experts.stacked_tensor(n)[index].detach().clone() for n in names}
    conv.load_state_dict(state, strict=False)
    for name, buffer in conv.named_buffers():  # non-persistent buffers are not in the state dict
        buffer.copy_(state[name])
    return conv.train(layer.training)


def naive_moe(layer: MoEKAConvNd, family: str, x: torch.Tensor, weights, experts, **kwargs) -> torch.Tensor:
    """Σ_j g_{b,j} · expert_{e_{b,j}}(x_b), one sample and one expert at a time."""
    modules = {e: naive_expert(layer, family, e, **kwargs) for e in experts.unique().tolist()}
    rows = []
    for b in range(x.shape[0]):
        row = 0
        for j in range(experts.shape[1]):
            row = row + weights[b, j] * modules[int(experts[b, j])](x[b : b + 1])[0]
        rows.append(row)
    return torch.stack(rows)


def perturb(layer: nn.Module) -> None:
    """Make the experts clearly different (trainable recurrence / phase / scale parameters included)."""
    with torch.no_grad():
        for name, p in layer.named_parameters():
            if name.startswith("gate."):
                p.normal_(0, 1.0)
            elif "scale" in name:
                p.uniform_(0.5, 1.5)
            elif "phase" in name:
                p.add_(0.1 * torch.randn_like(p))
            else:
                p.add_(0.3 * torch.randn_like(p))


# ------------------------------------------------------------------------------------------------------- values
@pytest.mark.parametrize("ndim", [1, 2, 3])
@pytest.mark.parametrize("family", FAMILIES)
def test_matches_loop_over_experts(family: str, ndim: int) -> None:
    opts = expert_options(family)
    groups = 2 if ndim == 2 else 1
    layer = MoEKAConvNd(
        4, 6, 3, stride=2 if ndim == 2 else 1, padding=1, groups=groups, ndim=ndim, family=family, num_experts=3, k=2,
        dtype=torch.float64, **opts,
    ).eval()  # fmt: skip
    perturb(layer)
    x = torch.randn(3, 4, *SPATIAL[ndim], dtype=torch.float64)
    weights, experts, _ = layer.route(x)
    with torch.no_grad():
        got = layer(x)
        expected = naive_moe(layer, family, x, weights, experts, dtype=torch.float64, **opts)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-10)


def test_training_mode_matches_loop_with_the_same_gates() -> None:
    # Without gating noise the routing is deterministic; training mode changes the experts' squash (KALN min-max)
    # and norm behaviour not at all, but exercises the training code path (no checkpointing inside vmap).
    layer = MoEKAConv2d(4, 6, 3, padding=1, family="kagn", num_experts=4, k=2, noisy_gating=False, dtype=torch.float64)
    perturb(layer)
    x = torch.randn(3, 4, 5, 5, dtype=torch.float64)
    weights, experts, _ = layer.route(x)
    y = layer(x)
    torch.testing.assert_close(y, naive_moe(layer, "kagn", x, weights, experts, dtype=torch.float64))
    y.sum().backward()  # the graph of the vmapped experts is differentiable end to end


def test_expert_copies_match_stacked_slices_and_start_independent() -> None:
    layer = MoEKAConv2d(4, 6, 3, family="kagn", num_experts=3, k=1)
    weights = layer.experts.stacked_tensor("weight")
    assert not torch.equal(weights[0], weights[1])  # the reference cloned expert 0 into every expert
    assert not torch.equal(layer.experts.stacked_tensor("basis.beta_weights")[1], weights.new_zeros(4))
    single = layer.expert(2)
    assert isinstance(single, kanconvs.KAGNConvNd)
    torch.testing.assert_close(single.weight, weights[2])
    assert single.fused_basis  # the fused pass is only off inside the vmapped template
    layer.reset_parameters()
    assert not torch.equal(layer.experts.stacked_tensor("weight")[2], single.weight)


def test_routing_uses_several_experts_from_the_start() -> None:
    layer = MoEKAConv2d(16, 8, 3, num_experts=8, k=1).eval()
    _, experts, _ = layer.route(torch.randn(64, 16, 5, 5))
    assert experts.unique().numel() > 1  # zero-initialised gates would route every sample alike


def test_mixture_weights_are_a_softmax_over_the_top_k_logits() -> None:
    gate = NoisyTopKGate(6, num_experts=5, k=3, dtype=torch.float64).eval()
    features = torch.randn(7, 6, dtype=torch.float64)
    weights, experts, _ = gate(features)
    logits = (features @ gate.w_gate).detach().numpy()
    for b in range(7):
        order = np.argsort(-logits[b])[:3]
        assert experts[b].tolist() == order.tolist()
        expected = np.exp(logits[b, order] - logits[b, order].max())
        np.testing.assert_allclose(weights[b].detach().numpy(), expected / expected.sum(), rtol=1e-12)


def naive_balance_loss(clean: np.ndarray, noise_std: np.ndarray | None, noisy: np.ndarray, k: int) -> float:
    """Shazeer et al.: cv²(Σ_b gates) + cv²(Σ_b P(e in top k)), with P from the k-th largest *other* noisy logit."""
    batch, num = clean.shape
    gates = np.zeros_like(clean)
    load = np.zeros(num)
    for b in range(batch):
        top = np.argsort(-noisy[b])[:k]
        kept = np.exp(noisy[b, top] - noisy[b, top].max())
        gates[b, top] = kept / kept.sum()
        for e in range(num):
            if noise_std is None:
                load[e] += float(e in top)
                continue
            others = np.sort(np.delete(noisy[b], e))[::-1]
            z = (clean[b, e] - others[k - 1]) / noise_std[b, e]
            load[e] += 0.5 * (1 + math.erf(z / math.sqrt(2)))

    def cv2(v: np.ndarray) -> float:
        return float(v.var(ddof=1) / (v.mean() ** 2 + 1e-10))

    return cv2(gates.sum(0)) + cv2(load)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_balance_loss_matches_the_published_formula(k: int) -> None:
    gate = NoisyTopKGate(6, num_experts=5, k=k, dtype=torch.float64)
    with torch.no_grad():
        gate.w_noise.normal_(0, 0.5)  # type: ignore[union-attr]
    features = torch.randn(9, 6, dtype=torch.float64)
    torch.manual_seed(3)
    _, _, loss = gate(features)
    torch.manual_seed(3)
    eps = torch.randn(9, 5, dtype=torch.float64)  # the gate draws exactly this noise
    clean = (features @ gate.w_gate).detach().numpy()
    std = (F.softplus(features @ gate.w_noise) + 1e-2).detach().numpy()
    noisy = clean + eps.numpy() * std
    assert loss.item() == pytest.approx(naive_balance_loss(clean, std, noisy, k), rel=1e-10)
    gate.eval()  # no noise: the load is the selection count
    with torch.no_grad():
        _, _, loss = gate(features)
    assert float(loss) == pytest.approx(naive_balance_loss(clean, None, clean, k), rel=1e-10)


def test_balance_loss_is_nonzero_differentiable_and_collected() -> None:
    layer = MoEKAConv2d(8, 8, 3, padding=1, num_experts=6, k=2, loss_coef=0.5)
    model = nn.Sequential(layer, nn.ReLU())
    assert float(regularization_loss(model)) == 0.0  # nothing recorded before the first forward
    model(torch.randn(6, 8, 5, 5))
    aux = layer.regularization_loss()
    assert aux.dim() == 0 and aux.item() > 0
    assert aux.item() == pytest.approx(0.5 * layer.balance_loss.item())
    torch.testing.assert_close(regularization_loss(model), aux)
    aux.backward()
    for p in layer.gate.parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_cv_squared() -> None:
    assert float(cv_squared(torch.tensor([3.0]))) == 0.0
    assert float(cv_squared(torch.tensor([1.0, 3.0]))) == pytest.approx(2.0 / 4.0)


# ---------------------------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("family", FAMILIES)
def test_every_parameter_gets_a_gradient(family: str) -> None:
    layer = MoEKAConv2d(4, 6, 3, padding=1, family=family, num_experts=4, k=1, **expert_options(family))
    x = torch.randn(1, 4, 5, 5, requires_grad=True)
    y = layer(x)
    (y * torch.randn_like(y)).sum().add(layer.regularization_loss()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    weight = next(n for n, p in layer.experts.template.named_parameters() if p.dim() > 1)
    grad = layer.experts.stacked_tensor(weight).grad
    assert grad is not None
    # One sample, k = 1: exactly one expert learns; the others get exact zeros (a gradient all the same, for DDP).
    assert torch.count_nonzero(grad.flatten(1).abs().sum(1)) == 1


def test_float64_gradcheck() -> None:
    layer = MoEKAConvNd(2, 3, 3, padding=1, ndim=1, family="kagn", num_experts=3, k=2, degree=2, dtype=torch.float64)
    layer.eval()
    x = torch.randn(2, 2, 5, dtype=torch.float64, requires_grad=True)
    weight = layer.experts.stacked_tensor("weight")
    torch.autograd.gradcheck(lambda inp, w: layer(inp), (x, weight), fast_mode=True)


def test_ddp_without_find_unused_parameters(tmp_path) -> None:
    dist = pytest.importorskip("torch.distributed")
    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = nn.Sequential(
            MoEKAConv2d(4, 8, 3, padding=1, num_experts=6, k=1),
            MoEBottleneckKAConv2d(8, 8, 3, padding=1, num_experts=4, k=1, min_internal=4),
        )
        ddp = DistributedDataParallel(model, find_unused_parameters=False)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
        for _ in range(3):  # an unused parameter makes the second iteration raise
            loss = ddp(torch.randn(2, 4, 5, 5)).square().mean() + regularization_loss(model)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        dist.destroy_process_group()


# ----------------------------------------------------------------------------------------------- half precision
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("family", FAMILIES)
def test_finite_under_autocast(family: str, dtype: torch.dtype) -> None:
    layer = MoEKAConv2d(4, 6, 3, padding=1, family=family, num_experts=4, k=2, **expert_options(family))
    x = 3 * torch.randn(2, 4, 5, 5)
    with torch.autocast("cpu", dtype=dtype):
        y = layer(x)
        aux = layer.regularization_loss()
    assert torch.isfinite(y).all() and torch.isfinite(aux)
    assert aux.dtype == torch.float32  # gating runs in fp32
    (y.float().square().mean() + aux).backward()
    for name, p in layer.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


# ---------------------------------------------------------------------------------------------- parameter counts
def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("family", FAMILIES)
def test_parameter_count(family: str) -> None:
    opts = expert_options(family)
    expert = kanconvs.create_conv(family, 8, 12, 3, ndim=2, padding=1, groups=2, **opts)
    for noisy in (True, False):
        layer = MoEKAConv2d(
            8, 12, 3, padding=1, groups=2, family=family, num_experts=5, k=2, noisy_gating=noisy, **opts
        )
        assert count(layer) == 5 * count(expert) + 8 * 5 * (2 if noisy else 1)


def test_parameter_counts_of_the_reference_formulas() -> None:
    # MoEKAGNConv2DLayer(16, 32): E·[(C_i·C_o/g)·K^d·(D+2) + (D+1)] + 2·C_i·E, defaults E = 16, D = 3.
    assert count(compat_moe.MoEKAGNConv2DLayer(16, 32)) == 16 * (16 * 32 * 9 * 5 + 4) + 2 * 16 * 16
    # MoEBottleNeckKAGNConv2DLayer: the reference's formula without its 2·(mg)·E unused outer gate parameters.
    for groups, pregate in ((1, False), (2, False), (1, True)):
        layer = compat_moe.MoEBottleNeckKAGNConv2DLayer(64, 96, 3, padding=1, groups=groups, pregate=pregate)
        c_in, c_out, e, d = 64 // groups, 96 // groups, 8, 3
        m = bottleneck_width(c_in, c_out, 4, 16)
        mg = m * groups
        expected = groups * (c_in * c_out * 9 + c_in * m + m * c_out) + e * (groups * m * m * (d + 1) * 9 + d + 1)
        expected += 2 * mg * e + (mg * mg * (d + 2) + (d + 1) + 2 * mg if pregate else 0)
        assert count(layer) == expected


def test_bottleneck_with_one_expert_is_the_plain_bottleneck() -> None:
    moe = MoEBottleneckKAConv2d(16, 24, 3, padding=1, groups=2, num_experts=1, k=1, min_internal=4, degree=2)
    plain = BottleneckKAConvNd(16, 24, 3, padding=1, groups=2, ndim=2, min_internal=4, degree=2)
    state = {}
    for name, value in moe.state_dict().items():
        if name.startswith("inner.gate."):
            continue
        state[name.replace("inner.experts.", "inner.")] = value[0] if name.startswith("inner.experts.") else value
    plain.load_state_dict(state)
    x = torch.randn(3, 16, 5, 5)
    torch.testing.assert_close(moe.eval()(x), plain.eval()(x))
    assert moe.inner.regularization_loss().dim() == 0


# ----------------------------------------------------------------------------------------- module conveniences
def test_state_dict_round_trip_and_deepcopy() -> None:
    layer = MoEKAConv2d(4, 6, 3, padding=1, family="kajn", num_experts=3, k=2).eval()
    twin = MoEKAConv2d(4, 6, 3, padding=1, family="kajn", num_experts=3, k=2).eval()
    assert set(layer.state_dict()) == {"experts.weight", "gate.w_gate", "gate.w_noise"}
    twin.load_state_dict(layer.state_dict())
    x = torch.randn(2, 4, 5, 5)
    torch.testing.assert_close(twin(x), layer(x))
    layer.train()(x).sum().backward()  # a recorded, graph-connected loss must not stop copies and pickles
    clone = copy.deepcopy(layer).eval()
    assert clone.balance_loss is None
    torch.testing.assert_close(clone(x), layer.eval()(x))
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    torch.testing.assert_close(torch.load(buffer, weights_only=False)(x), layer(x))


def test_penalties_apply_to_the_output_and_every_expert() -> None:
    layer = MoEKAConv2d(4, 6, 3, num_experts=3, k=1, weight_l2=1e-3, activation_l1=1e-2)
    expected = sum(1e-3 * layer.expert(e).weight.square().sum() for e in range(3))
    torch.testing.assert_close(layer.regularization_loss(), expected.float())
    y = layer(torch.randn(2, 4, 5, 5))
    balance = 1e-2 * layer.balance_loss
    torch.testing.assert_close(layer.regularization_loss(), balance + expected + 1e-2 * y.abs().sum(0).mean())


def test_empty_batch_and_repr() -> None:
    layer = MoEKAConv2d(4, 6, 3, padding=1, num_experts=3, k=2)
    assert layer(torch.randn(0, 4, 5, 5)).shape == (0, 6, 5, 5)
    text = repr(layer)
    assert "num_experts=3, k=2, noisy_gating=True, loss_coef=0.01" in text
    assert "StackedExperts(num_experts=3, expert=KAGNConvNd(" in text


def test_dropout_inside_experts_draws_per_sample_masks() -> None:
    layer = MoEKAConv2d(4, 6, 3, padding=1, num_experts=2, k=2, noisy_gating=False, dropout=0.5)
    x = torch.randn(1, 4, 5, 5).expand(4, -1, -1, -1)  # four copies of one sample
    y = layer(x)
    assert torch.isfinite(y).all()
    assert not torch.allclose(y[0], y[1])  # vmap randomness="different": each (sample, slot) gets its own mask
    torch.testing.assert_close(layer.eval()(x)[0], layer(x)[1])


def test_torch_export() -> None:
    layer = MoEKAConv2d(4, 6, 3, padding=1, family="kacn", num_experts=3, k=2).eval()
    x = torch.randn(2, 4, 5, 5)
    exported = torch.export.export(layer, (x,))
    torch.testing.assert_close(exported.module()(x), layer(x))


@pytest.mark.slow
def test_torch_compile_trains() -> None:
    layer = MoEKAConv2d(4, 6, 3, padding=1, num_experts=3, k=2)
    compiled = torch.compile(layer)
    x = torch.randn(2, 4, 5, 5)
    y = compiled(x)
    (y.sum() + layer.regularization_loss()).backward()
    assert all(p.grad is not None for p in layer.parameters())
    layer.eval()
    torch.testing.assert_close(compiled(x), layer(x), rtol=1e-5, atol=1e-5)


def test_expert_factory_builds_bottleneck_experts() -> None:
    layer = MoEKAConv2d(
        16, 16, 3, padding=1, num_experts=3, k=2, expert_factory=BottleneckKAConvNd, family="kacn", min_internal=4
    )
    assert isinstance(layer.experts.template, BottleneckKAConvNd) and layer.experts.template.family == "kacn"
    assert layer(torch.randn(2, 16, 5, 5)).shape == (2, 16, 5, 5)
    assert count(layer) == 3 * count(BottleneckKAConvNd(16, 16, 3, ndim=2, family="kacn", min_internal=4)) + 2 * 16 * 3


def test_stacked_experts_alone() -> None:
    experts = StackedExperts(lambda: nn.Conv1d(2, 3, 3), num_experts=4)
    x = torch.randn(5, 2, 8)
    index = torch.tensor([[0], [3], [1], [3], [2]])
    got = experts(x, index)
    for b in range(5):
        single = experts.expert(int(index[b, 0]))
        torch.testing.assert_close(got[b, 0], single(x[b : b + 1])[0])


# ------------------------------------------------------------------------------------------------------- compat
MOE_SIGNATURE = [
    ("input_size", inspect.Parameter.empty),
    ("output_size", inspect.Parameter.empty),
    ("num_experts", 16),
    ("noisy_gating", True),
    ("k", 4),
    ("kernel_size", 3),
    ("stride", 1),
    ("padding", 1),
    ("kan_kwargs", inspect.Parameter.empty),
]
BOTTLENECK_TAIL = {
    1: ["norm_layer", "num_experts", "noisy_gating", "k", "dim_reduction", "pregate", "norm_kwargs"],
    2: ["norm_layer", "num_experts", "noisy_gating", "k", "dim_reduction", "pregate", "norm_kwargs"],
    3: ["norm_layer", "dim_reduction", "num_experts", "noisy_gating", "k", "pregate", "norm_kwargs"],
}


@pytest.mark.parametrize("ndim", [1, 2, 3])
def test_compat_signatures(ndim: int) -> None:
    for prefix in ("MoEKALN", "MoEKAN", "MoEKAGN", "MoEFastKAN", "MoEKACN", "MoEWavKAN", "MoEFullBottleneckKAGN"):
        cls = getattr(compat_moe, f"{prefix}Conv{ndim}DLayer")
        assert f"{prefix}Conv{ndim}DLayer" in compat_moe.__all__
        params = inspect.signature(cls).parameters.values()
        assert [(p.name, p.default) for p in params] == MOE_SIGNATURE
    cls = getattr(compat_moe, f"MoEBottleNeckKAGNConv{ndim}DLayer")
    params = inspect.signature(cls).parameters
    head = ["input_dim", "output_dim", "kernel_size", "degree", "groups", "padding", "stride", "dilation", "dropout"]
    assert list(params) == head + BOTTLENECK_TAIL[ndim]
    defaults = {"num_experts": 8, "k": 2} if ndim == 2 else {"num_experts": 16, "k": 4}
    assert {n: params[n].default for n in defaults} == defaults
    assert params["norm_layer"].default is getattr(nn, f"InstanceNorm{ndim}d")


@pytest.mark.parametrize(
    "name",
    ["MoEKAGNConv2DLayer", "MoEKACNConv1DLayer", "MoEWavKANConv2DLayer", "MoEFullBottleneckKAGNConv2DLayer"],
)
def test_compat_layers_return_the_reference_tuple(name: str) -> None:
    layer = getattr(compat_moe, name)(16, 16, num_experts=4, k=2)
    x = torch.randn(3, 16, *((6,) if "1D" in name else (6, 6)))
    y, loss = layer(x)
    assert y.shape == (3, 16, *x.shape[2:])
    torch.testing.assert_close(loss, 1e-2 * layer.balance_loss)
    torch.testing.assert_close(loss, layer.regularization_loss())
    _, loss2 = layer(x, train=False, loss_coef=1.0)
    torch.testing.assert_close(loss2, layer.balance_loss)


def test_compat_kan_experts_follow_the_reference_arguments() -> None:
    layer = compat_moe.MoEKAGNConv2DLayer(8, 8, num_experts=3, k=1, degree=2, groups=2, dropout=0.1)
    expert = layer.experts.template
    assert expert.degree == 2 and expert.groups == 2 and expert.p_dropout == 0.1
    assert (layer.input_size, layer.output_size, layer.conv_dims) == (8, 8, 2)


def test_compat_bottleneck_forward_and_pregate() -> None:
    layer = compat_moe.MoEBottleNeckKAGNConv2DLayer(32, 32, 3, padding=1, num_experts=4, k=2, pregate=True)
    y, loss = layer(torch.randn(2, 32, 5, 5))
    assert y.shape == (2, 32, 5, 5) and loss.item() >= 0
    assert isinstance(layer.moe.gate.pregate, kanconvs.KAGNLinear)
    assert layer.inner_dim == 16


# -------------------------------------------------------------------------------------------------- error paths
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 5, "num_experts": 4}, r"k must be <= num_experts \(4\), got k=5"),
        ({"k": 0}, "k must be a positive integer, got 0"),
        ({"num_experts": 0}, "num_experts must be a positive integer, got 0"),
        ({"loss_coef": -1.0}, "loss_coef must be a finite number >= 0, got -1.0"),
        ({"noisy_gating": 1}, "noisy_gating must be a bool, got 1"),
        ({"family": "nope"}, "unknown family 'nope'"),
        ({"norm_layer": "batch"}, "norm_layer: .*BatchNorm2d with running statistics"),
        ({"family": "wavkan"}, "norm_layer: .*BatchNorm2d with running statistics"),
        ({"pregate": nn.Linear(4, 3)}, r"pregate must keep the width in_features=4, but it outputs 3"),
    ],
)
def test_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MoEKAConv2d(4, 6, 3, **kwargs)


def test_more_errors() -> None:
    with pytest.raises(TypeError, match="expert_factory must be callable"):
        MoEKAConv2d(4, 6, 3, expert_factory=3)  # type: ignore[arg-type]
    penalised = lambda *args, **kwargs: kanconvs.KAGNConvNd(*args, weight_l2=1.0, **kwargs)  # noqa: E731
    with pytest.raises(ValueError, match=r"the expert has penalties \['weight_l2'\]"):
        MoEKAConv2d(4, 6, 3, expert_factory=penalised)
    layer = MoEKAConv2d(4, 6, 3, num_experts=3)
    with pytest.raises(ValueError, match="expects 4 input channels, got 5"):
        layer(torch.randn(1, 5, 5, 5))
    with pytest.raises(ValueError, match="expects a 4-D input"):
        layer(torch.randn(1, 4, 5))
    with pytest.raises(ValueError, match=r"index must be an integer in \[0, 3\), got 3"):
        layer.expert(3)
    with pytest.raises(ValueError, match=r"NoisyTopKGate expects features of shape \(batch, 4\)"):
        layer.gate(torch.randn(2, 5))
    with pytest.raises(ValueError, match="MoEKAConv2d is 2-dimensional, got ndim=3"):
        MoEKAConv2d(4, 6, 3, ndim=3)
    with pytest.raises(ValueError, match="conv_class must be a reference convolution class"):
        compat_moe.MoEKANConvBase(nn.Conv2d, 4, 4)
    with pytest.raises(ValueError, match=r"conv_w_fun .* does not match ndim=2"):
        compat_moe.MoEBottleNeckKAGNConvND(nn.Conv2d, F.conv1d, nn.InstanceNorm2d, 16, 16)
    with pytest.raises(ValueError, match="k must be <= num_experts"):
        MoEBottleneckKAConvNd(16, 16, 3, ndim=1, num_experts=2, k=3)


def test_moe_layer_runs_on_the_meta_device() -> None:
    """Shape inference on ``meta`` (``kanconvs.models.min_input_size``, deferred initialisation) goes through the
    router, which used to open an autocast context that the meta device rejects."""
    layer = kanconvs.create_conv("moe_kagn", 4, 8, 3, padding=1, ndim=2, num_experts=4, k=2, device="meta")
    assert layer(torch.empty(2, 4, 6, 6, device="meta")).shape == (2, 8, 6, 6)
    model = kanconvs.create_model("moe_reskanet18_x64p", num_classes=3).eval()
    size = kanconvs.models.min_input_size(model, 3)
    assert size is not None and size < 64  # it used to give up (None) at every size
    assert model(torch.randn(1, 3, size, size)).shape == (1, 3)


def test_moe_layers_initialise_from_the_meta_device() -> None:
    """FSDP / accelerate deferred initialisation: build on meta, to_empty, reset_parameters(); the experts are then
    initialised where the stack lives, independently of each other."""
    for name in ("moe_kagn", "moe_bottleneck_kagn"):
        layer = kanconvs.create_conv(name, 16, 16, 3, padding=1, ndim=2, num_experts=3, k=2, device="meta")
        layer = layer.to_empty(device="cpu")
        layer.reset_parameters()
        experts = next(m for m in layer.modules() if isinstance(m, StackedExperts))
        weight = experts.stacked_tensor("weight")
        assert torch.isfinite(weight).all() and not torch.equal(weight[0], weight[1])
        assert torch.isfinite(layer.eval()(torch.randn(2, 16, 5, 5))).all()


@pytest.mark.parametrize("family", ["kagn", "wavkan"])
def test_moe_1d_converts_to_channels_last(family: str) -> None:
    """The stacked (E, *shape) tensors of 4-D expert tensors are 5-D: they convert as 4-D ones."""
    kw = {"norm_layer": "instance"} if family == "wavkan" else {}
    layer = kanconvs.create_conv(f"moe_{family}", 4, 4, 3, padding=1, ndim=1, num_experts=2, k=1, **kw).eval()
    x = torch.randn(2, 4, 9)
    y = layer(x)
    torch.testing.assert_close(layer.to(memory_format=torch.channels_last)(x), y)


def test_bottleneck_moe_penalises_the_expert_weights_not_their_biases() -> None:
    layer = kanconvs.create_conv("moe_bottleneck_kagn", 8, 8, 3, padding=1, ndim=2, num_experts=2, k=1, bias=True,
                                 weight_l2=1e-3)  # fmt: skip
    names = {id(p): n for n, p in layer.named_parameters()}
    penalised = sorted(names[id(p)] for p in layer._penalised_weights())
    assert penalised == ["base_weight", "expand_weight", "inner.experts.weight", "squeeze_weight"]
    with pytest.raises(ValueError, match="loss_coef must be a finite number >= 0, got inf"):
        kanconvs.create_conv("moe_kagn", 4, 4, 3, ndim=2, num_experts=2, k=1, loss_coef=float("inf"))
