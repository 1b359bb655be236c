"""PEFT for Gram convolutions: identity at init, exact fusion, what trains, whole models, the reference's API."""

from __future__ import annotations

import copy
import inspect
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kanconvs import KAGNConv2d, KAGNConvNd, KALNConv2d
from kanconvs.compat import KAGNConv2DLayer
from kanconvs.compat.kan_peft import PEFTVGGKAGN, PEFTKAGNConvNDLayer
from kanconvs.layers.peft import PEFTKAGNConv, count_trainable_parameters, merge_kagn, wrap_kagn
from kanconvs.layers.regularization import regularization_loss
from naive import gram_values, instance_norm

C_IN, C_OUT, K = 4, 6, 3
SPATIAL = {1: (9,), 2: (6, 5), 3: (4, 3, 4)}
PEFT_PARAMS = ("weight_delta", "weight_extra", "beta_delta", "beta_extra")
# The compat layer's trainable tensors: the reference's names and layouts.
REFERENCE_PEFT_PARAMS = ("poly_weights_delta", "beta_weights_delta", "poly_weights_extra", "beta_weights_extra")
D64 = torch.float64


def make_layer(ndim: int = 2, groups: int = 2, degree: int = 3, **kwargs) -> KAGNConvNd:
    return KAGNConvNd(C_IN, C_OUT, K, padding=1, groups=groups, ndim=ndim, degree=degree, **kwargs).to(D64).eval()


def make_input(ndim: int = 2) -> torch.Tensor:
    return torch.randn(2, C_IN, *SPATIAL[ndim], dtype=D64)


def randomize(module: nn.Module, weight_std: float = 0.3, beta_std: float = 0.02) -> None:
    """Non-zero PEFT deltas and extras (β kept small: its recurrence constants grow like degree³)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.rsplit(".", 1)[-1] in PEFT_PARAMS:
                p.normal_(0.0, beta_std if "beta" in name else weight_std)


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-10) -> None:
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


# ------------------------------------------------------------------------------------------------- identity at init
@pytest.mark.parametrize("ndim, groups", list(itertools.product([1, 2, 3], [1, 2])))
@pytest.mark.parametrize(
    "trainable, extra, base", [((), 1, False), ((0, 2, 3), 2, True), ((1,), 0, False)], ids=["extra", "all", "deg1"]
)
def test_init_equals_wrapped_layer(ndim: int, groups: int, trainable: tuple, extra: int, base: bool) -> None:
    layer, x = make_layer(ndim, groups), make_input(ndim)
    expected = layer(x)
    feats = layer.features(x)
    peft = PEFTKAGNConv(layer, trainable_degrees=trainable, extra_degrees=extra, finetune_base=base)

    # The construction is exact: the extended features and weights start with the original ones, the rest is zero.
    n = layer.features_per_channel
    ext = peft.features(x).unflatten(1, (C_IN, n + extra))
    assert torch.equal(ext[:, :, :n].flatten(1, 2), feats)
    w = peft.effective_weight()
    assert torch.equal(w[:, :, :n], layer.weight) and not w[:, :, n:].any()
    assert torch.equal(peft.effective_beta()[:3], layer.basis.beta_weights[:3])
    # One convolution over more (zero-weighted) channels may only change the summation order.
    if extra == 0:
        assert torch.equal(peft(x), expected)
    close(peft(x), expected, 1e-12)


@pytest.mark.parametrize("placement", ["full", "basis_input", "squashed", "output"])
def test_init_equals_wrapped_layer_with_dropout_in_training(placement: str) -> None:
    layer = make_layer(dropout=0.3, dropout_placement=placement).train()
    x = make_input()
    torch.manual_seed(1)
    expected = layer(x)
    peft = PEFTKAGNConv(layer, trainable_degrees=(2,), extra_degrees=2).train()
    torch.manual_seed(1)
    close(peft(x), expected, 1e-12)


def test_basis_dropout_placement_runs() -> None:
    layer = make_layer(dropout=0.3, dropout_placement="basis")
    x = make_input()
    peft = PEFTKAGNConv(layer, extra_degrees=2)
    close(peft(x), layer(x), 1e-12)  # eval: no dropout
    assert peft.train()(x).shape == (2, C_OUT, *SPATIAL[2])


# ------------------------------------------------------------------------------------------------------ fuse
@pytest.mark.parametrize("ndim, groups", list(itertools.product([1, 2, 3], [1, 2])))
def test_fuse_equals_peft_with_nonzero_deltas(ndim: int, groups: int) -> None:
    layer, x = make_layer(ndim, groups), make_input(ndim)
    peft = PEFTKAGNConv(layer, trainable_degrees=(0, 1, 3), extra_degrees=2, finetune_base=True)
    randomize(peft)
    fused = peft.fuse()
    assert type(fused) is type(layer) and fused.basis.degree == 5
    assert all(p.requires_grad for p in fused.parameters())
    fresh = KAGNConvNd(C_IN, C_OUT, K, groups=groups, ndim=ndim, degree=5)
    assert [p.shape for p in fused.parameters()] == [p.shape for p in fresh.parameters()]
    close(fused(x), peft(x))
    # The documented β placement: degree i uses entry i-1; new degree 3+j uses beta_extra[j-1]; w_3 moves to the end.
    w, delta, extra = layer.basis.beta_weights, peft.beta_delta, peft.beta_extra
    assert peft.beta_delta_degrees == (3,) and peft.beta_extra_degrees == (4, 5)
    expected_beta = torch.cat([w[:2], w[2:3] + delta, extra, w[3:]])
    assert torch.equal(fused.basis.beta_weights.detach(), expected_beta.detach())


@pytest.mark.parametrize(
    "degree, trainable, extra", [(0, (0,), 2), (1, (0, 1), 1), (2, (2,), 0), (3, (), 3), (3, (2, 3), 1)]
)
def test_fuse_and_every_parameter_used_at_small_degrees(degree: int, trainable: tuple, extra: int) -> None:
    layer, x = make_layer(degree=degree), make_input()
    peft = PEFTKAGNConv(layer, trainable_degrees=trainable, extra_degrees=extra)
    randomize(peft)
    close(peft.fuse()(x), peft(x))
    # No parameter without influence (DDP needs no find_unused_parameters): every trainable one gets a gradient.
    peft(x).square().sum().backward()
    trainable_params = [(n, p) for n, p in peft.named_parameters() if p.requires_grad]
    assert trainable_params
    for name, p in trainable_params:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_forward_against_naive_formula() -> None:
    """The documented semantics, written out here: Gram basis to D+E with the effective β, W ⊕ W_extra + ΔW."""
    groups, degree, trainable, extra = 2, 3, (1, 2), 2
    layer, x = make_layer(groups=groups, degree=degree), make_input()
    peft = PEFTKAGNConv(layer, trainable_degrees=trainable, extra_degrees=extra, finetune_base=True)
    randomize(peft)
    n = degree + extra
    w = layer.basis.beta_weights.detach().clone()
    w[1] += peft.beta_delta.detach()[0]  # degree 2 uses w_1
    w = torch.cat([w[:degree], peft.beta_extra.detach(), w[degree:]])  # degrees 4, 5 use entries 3, 4
    basis = gram_values(np.tanh(x.numpy()), n, w.numpy())
    silu = F.silu(x)
    feats = torch.stack([silu, *[torch.from_numpy(b) for b in basis]], 2)  # (B, C, 1 + n + 1, H, W)
    weight = torch.cat([layer.weight, peft.weight_extra], 2).detach().clone()
    for slot, feature in enumerate([0, 2, 3]):  # base, degree 1, degree 2
        weight[:, :, feature] += peft.weight_delta.detach()[:, :, slot]
    y = F.conv2d(feats.flatten(1, 2), weight.flatten(1, 2), padding=1, groups=groups)
    close(peft(x), F.silu(instance_norm(y)))


# ---------------------------------------------------------------------------------------------- what trains
@pytest.mark.parametrize("freeze_norm", [True, False])
def test_only_intended_parameters_train(freeze_norm: bool) -> None:
    layer = make_layer(norm_kwargs={"affine": True})
    peft = PEFTKAGNConv(layer, trainable_degrees=(0, 3), extra_degrees=2, finetune_base=True, freeze_norm=freeze_norm)
    names = {n for n, p in peft.named_parameters() if p.requires_grad}
    norm = set() if freeze_norm else {"layer.norm.weight", "layer.norm.bias"}
    assert names == {*PEFT_PARAMS, *norm}
    c_in = C_IN // 2
    assert peft.weight_delta.shape == (C_OUT, c_in, 3, K, K)  # base, degree 0, degree 3
    assert peft.weight_extra.shape == (C_OUT, c_in, 2, K, K)
    assert peft.beta_delta.shape == (1,) and peft.beta_extra.shape == (2,)  # degree 0 has no coefficient
    assert count_trainable_parameters(peft)[0] == C_OUT * c_in * K * K * 5 + 3 + (0 if freeze_norm else 2 * C_OUT)

    x = make_input()
    peft(x).square().sum().backward()
    for name, p in peft.named_parameters():
        if name in names and name != "beta_extra":  # β_extra's gradient is 0 while W_extra is 0
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        elif name not in names:
            assert p.grad is None, name
    assert peft.beta_extra.grad is not None


def test_optimizer_step_changes_only_trainable_parameters() -> None:
    layer = make_layer(norm_kwargs={"affine": True})
    peft = PEFTKAGNConv(layer, trainable_degrees=(2,), extra_degrees=1)
    before = {n: p.detach().clone() for n, p in peft.named_parameters()}
    opt = torch.optim.AdamW(peft.parameters(), lr=1e-2, weight_decay=0.1)
    x = make_input()
    for _ in range(2):  # β_extra moves from the second step on (once W_extra is non-zero)
        opt.zero_grad()
        peft(x).square().mean().backward()
        opt.step()
    for name, p in peft.named_parameters():
        assert torch.equal(p, before[name]) != p.requires_grad, name
    assert {n for n, p in peft.named_parameters() if not torch.equal(p, before[n])} == set(PEFT_PARAMS)


def test_fused_basis_pass_gives_same_gradients() -> None:
    grads = []
    for fused in (True, False):
        torch.manual_seed(0)
        layer = make_layer(fused_basis=fused).train()
        peft = PEFTKAGNConv(layer, trainable_degrees=(3,), extra_degrees=1)
        randomize(peft)
        peft(make_input()).square().sum().backward()
        grads.append([p.grad for p in peft.parameters() if p.requires_grad])
    for a, b in zip(*grads, strict=True):
        close(a, b, 1e-12)


def test_penalties_see_the_peft_output_and_the_new_weights() -> None:
    layer = make_layer(activation_l1=0.1, weight_l2=0.01).train()
    peft = PEFTKAGNConv(layer, trainable_degrees=(2,), extra_degrees=1)
    randomize(peft)
    y = peft(make_input())
    new = peft.weight_delta.square().sum() + peft.weight_extra.square().sum()
    expected = 0.1 * y.abs().sum(0).mean() + 0.01 * (layer.weight.square().sum() + new)
    loss = regularization_loss(peft)
    close(loss, expected.float(), 1e-5)
    loss.backward()
    assert peft.weight_delta.grad.abs().sum() > 0 and peft.weight_extra.grad.abs().sum() > 0
    assert peft.fuse()._activation_penalty is None  # fusing works after a training step


def test_bfloat16_is_finite() -> None:
    layer = KAGNConv2d(C_IN, C_OUT, K, padding=1, degree=3)
    peft = PEFTKAGNConv(layer, trainable_degrees=(3,), extra_degrees=2)
    randomize(peft)
    y = peft.to(torch.bfloat16)(torch.randn(2, C_IN, 6, 5, dtype=torch.bfloat16) * 4)
    assert y.dtype == torch.bfloat16 and torch.isfinite(y).all()


def test_torch_export() -> None:
    layer = KAGNConv2d(C_IN, C_OUT, K, padding=1, groups=2)
    peft = PEFTKAGNConv(layer, trainable_degrees=(1, 3), extra_degrees=2, finetune_base=True).eval()
    randomize(peft)
    x = torch.randn(2, C_IN, 8, 8)
    torch.testing.assert_close(torch.export.export(peft, (x,)).module()(x), peft(x))


# ---------------------------------------------------------------------------------------------- whole models
def small_model() -> nn.Sequential:
    shared = KAGNConv2d(6, 6, 3, padding=1, groups=2)
    return nn.Sequential(
        KAGNConv2d(C_IN, 6, 3, padding=1),
        nn.Sequential(shared, nn.MaxPool2d(2), shared),
        nn.Identity(),
        KAGNConv2d(6, 6, 1, degree=4),
    ).to(D64)


def test_wrap_and_merge_a_sequential() -> None:
    model, x = small_model(), make_input()
    expected = model(x)
    peft = wrap_kagn(copy.deepcopy(model).requires_grad_(False), trainable_degrees=(3,), extra_degrees=2)
    wrapped = [m for m in peft.modules() if isinstance(m, PEFTKAGNConv)]
    assert len(wrapped) == 3 and peft[1][0] is peft[1][2]  # the shared layer is wrapped once, and stays shared
    assert not any(isinstance(m, KAGNConvNd) for m in peft.modules() if m not in {w.layer for w in wrapped})
    close(peft(x), expected, 1e-12)

    per_layer = [C_OUT * C_IN * 9 * 3 + 3, 6 * 3 * 9 * 3 + 3, 6 * 6 * 1 * 3 + 3]
    total = sum(p.numel() for p in model.parameters()) + sum(per_layer)
    assert count_trainable_parameters(peft) == (sum(per_layer), total)

    randomize(peft)
    y = peft(x)
    merged = merge_kagn(peft)
    assert merged is peft and not any(isinstance(m, PEFTKAGNConv) for m in merged.modules())
    assert [m.basis.degree for m in merged.modules() if isinstance(m, KAGNConvNd)] == [5, 5, 6]
    close(merged(x), y)


def test_wrap_and_merge_a_single_layer_return_the_new_module() -> None:
    layer = make_layer()
    peft = wrap_kagn(layer, extra_degrees=1)
    assert isinstance(peft, PEFTKAGNConv) and peft.layer is layer
    assert isinstance(merge_kagn(peft), KAGNConvNd)


def test_state_dict_round_trip() -> None:
    base, x = small_model(), make_input()
    a = wrap_kagn(copy.deepcopy(base), trainable_degrees=(1, 2), extra_degrees=1, finetune_base=True)
    randomize(a)
    sd = a.state_dict()
    assert "0.weight_delta" in sd and "0.layer.weight" in sd and "0.weight_index" not in sd
    b = wrap_kagn(copy.deepcopy(base), trainable_degrees=(1, 2), extra_degrees=1, finetune_base=True)
    b.load_state_dict(sd)
    assert torch.equal(b(x), a(x))
    c = wrap_kagn(copy.deepcopy(base), trainable_degrees=(1,), extra_degrees=1, finetune_base=True)
    with pytest.raises(RuntimeError, match="size mismatch"):
        c.load_state_dict(sd)


def test_wrap_is_atomic() -> None:
    model = nn.Sequential(KAGNConv2d(4, 4, 3, degree=3), KAGNConv2d(4, 4, 3, degree=1))
    with pytest.raises(ValueError, match=r"trainable_degrees .* \[0, 1\]"):
        wrap_kagn(model, trainable_degrees=(3,))
    assert all(isinstance(m, KAGNConvNd) for m in model) and all(p.requires_grad for p in model.parameters())


# ---------------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("degrees", [(-1,), (4,), (2, 2), (True,), (1.0,), 3, "12"])
def test_bad_trainable_degrees(degrees) -> None:
    with pytest.raises(ValueError, match="trainable_degrees"):
        PEFTKAGNConv(make_layer(), trainable_degrees=degrees)


@pytest.mark.parametrize("extra", [-1, 1.5, True])
def test_bad_extra_degrees(extra) -> None:
    with pytest.raises(ValueError, match="extra_degrees"):
        PEFTKAGNConv(make_layer(), extra_degrees=extra)


@pytest.mark.parametrize("layer", [nn.Conv2d(4, 4, 3), KALNConv2d(4, 4, 3)], ids=["conv2d", "kaln"])
def test_wrapping_a_non_gram_layer_raises(layer: nn.Module) -> None:
    with pytest.raises(TypeError, match="KAGNConvNd"):
        PEFTKAGNConv(layer)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Gram convolution"):
        PEFTKAGNConvNDLayer.wrap_layer(layer)  # type: ignore[arg-type]


def test_finetune_base_needs_a_base_branch() -> None:
    with pytest.raises(ValueError, match="finetune_base"):
        PEFTKAGNConv(make_layer(use_base=False), finetune_base=True)


# ---------------------------------------------------------------------------------------------------- compat
REFERENCE_SIGNATURES = {
    PEFTKAGNConvNDLayer: "(pretrained_weights, conv_class, norm_class, conv_w_fun, input_dim, output_dim, degree, "
    "kernel_size, trainable_degrees=None, extra_degrees=1, finetune_base=False, groups=1, padding=0, stride=1, "
    "dilation=1, dropout=0.0, ndim=2, **norm_kwargs)",
    PEFTKAGNConvNDLayer.wrap_layer: "(layer, trainable_degrees=None, extra_degrees=1, finetune_base=False)",
    PEFTKAGNConvNDLayer.fuse_layer: "(self)",
    PEFTVGGKAGN: "(pretrained_vgg, trainable_degrees=None, extra_degrees=1, finetune_base=False)",
    PEFTVGGKAGN.merge: "(self)",
}


@pytest.mark.parametrize("obj", list(REFERENCE_SIGNATURES), ids=lambda o: o.__qualname__)
def test_reference_signatures(obj) -> None:
    sig = inspect.signature(obj)
    bare = sig.replace(parameters=[p.replace(annotation=p.empty) for p in sig.parameters.values()])
    assert str(bare.replace(return_annotation=sig.empty)) == REFERENCE_SIGNATURES[obj]


G, CI, CO = 2, C_IN // 2, C_OUT // 2


def reference_kagn_state_dict(degree: int) -> dict[str, torch.Tensor]:
    """A reference (torch-conv-kan) KAGNConv2DLayer checkpoint, groups=2, affine InstanceNorm."""
    sd = {f"base_conv.{i}.weight": 0.3 * torch.randn(CO, CI, K, K, dtype=D64) for i in range(G)}
    sd["poly_weights"] = 0.3 * torch.randn(G, CO, CI * (degree + 1), K, K, dtype=D64)
    sd["beta_weights"] = 0.02 * torch.randn(degree + 1, dtype=D64)
    for i in range(G):
        sd[f"layer_norm.{i}.weight"] = 1 + 0.1 * torch.randn(CO, dtype=D64)
        sd[f"layer_norm.{i}.bias"] = 0.1 * torch.randn(CO, dtype=D64)
    return sd


def reference_peft_forward(sd: dict, x: torch.Tensor, degree: int, trainable: list, extra: int) -> torch.Tensor:
    """The reference PEFT forward, per group, degree-major, with its β rule (degree D+1 uses extra[-1])."""
    n_max, w = degree + extra, sd["beta_weights"]

    def beta(n: int, m: int) -> torch.Tensor:
        scale = (m + n) * (m - n) * n**2 / (m**2 / (4.0 * n**2 - 1.0))
        if n + 1 in trainable:
            return scale * (w[n] + sd["beta_weights_delta"][trainable.index(n + 1)])
        if n >= degree:
            return scale * sd["beta_weights_extra"][n - degree - 1]
        return scale * w[n]

    outs = []
    for i, xi in enumerate(torch.split(x, CI, 1)):
        t = torch.tanh(xi)
        p = [torch.ones_like(t), t]
        for m in range(2, n_max + 1):
            p.append(t * p[m - 1] - beta(m - 1, m) * p[m - 2])
        basis = F.silu(torch.cat(p[: n_max + 1], 1))
        conv = lambda z, k: F.conv2d(z, k, padding=1)  # noqa: E731
        y = conv(basis[:, : CI * (degree + 1)], sd["poly_weights"][i])
        if trainable:
            y = y + conv(torch.index_select(basis, 1, sd["delta_indices"]), sd["poly_weights_delta"][i])
        if extra:
            y = y + conv(basis[:, CI * (degree + 1) :], sd["poly_weights_extra"][i])
        y = instance_norm(y + conv(F.silu(xi), sd[f"base_conv.{i}.weight"]))
        y = y * sd[f"layer_norm.{i}.weight"].view(1, -1, 1, 1) + sd[f"layer_norm.{i}.bias"].view(1, -1, 1, 1)
        outs.append(F.silu(y))
    return torch.cat(outs, 1)


def make_compat(sd: dict, degree: int, trainable, extra: int, base: bool = False) -> PEFTKAGNConvNDLayer:
    return PEFTKAGNConvNDLayer(
        sd, nn.Conv2d, nn.InstanceNorm2d, F.conv2d, C_IN, C_OUT, degree, K, trainable, extra, base,
        groups=G, padding=1, affine=True,
    ).to(D64)  # fmt: skip


def test_compat_from_reference_pretrained_weights() -> None:
    sd, x = reference_kagn_state_dict(3), make_input()
    peft = make_compat(sd, 3, [3], 2)
    plain = KAGNConv2DLayer(C_IN, C_OUT, K, groups=G, padding=1, affine=True)
    plain.load_state_dict(sd)  # in float32, as the PEFT layer's constructor did
    plain.to(D64)
    close(peft(x), plain(x), 1e-12)
    assert isinstance(peft.layer, KAGNConv2DLayer)
    assert (peft.inputdim, peft.outdim, peft.degree, peft.new_degree) == (C_IN, C_OUT, 3, 5)
    assert (peft.conv_class, peft.norm_class, peft.conv_w_fun, peft.norm_kwargs) == (
        nn.Conv2d, nn.InstanceNorm2d, F.conv2d, {"affine": True},
    )  # fmt: skip
    # As in the reference, the norm stays trainable.
    assert {n for n, p in peft.named_parameters() if p.requires_grad} == {
        *REFERENCE_PEFT_PARAMS, "layer.norm.weight", "layer.norm.bias",
    }  # fmt: skip


@pytest.mark.parametrize("degree, trainable, extra", [(3, [0, 2, 3], 2), (1, [1], 3), (0, [0], 2), (2, [], 1)])
def test_compat_loads_reference_peft_checkpoints(degree: int, trainable: list, extra: int) -> None:
    sd, x = reference_kagn_state_dict(degree), make_input()
    peft = make_compat(sd, degree, trainable, extra, base=True)
    ref = dict(sd)
    if trainable:
        ref["poly_weights_delta"] = 0.3 * torch.randn(G, CO, CI * len(trainable), K, K, dtype=D64)
        ref["beta_weights_delta"] = 0.02 * torch.randn(len(trainable), dtype=D64)
        ref["delta_indices"] = torch.tensor([CI * d + c for d in trainable for c in range(CI)], dtype=torch.int32)
    ref["poly_weights_extra"] = 0.3 * torch.randn(G, CO, CI * extra, K, K, dtype=D64)
    ref["beta_weights_extra"] = 0.02 * torch.randn(extra, dtype=D64)
    peft.load_state_dict(ref)
    expected = reference_peft_forward(ref, x, degree, trainable, extra)
    close(peft(x), expected)
    close(peft.fuse_layer()(x), expected)


def test_compat_rejects_mismatched_reference_peft_checkpoint() -> None:
    sd = reference_kagn_state_dict(3)
    ref = {**sd, "poly_weights_extra": torch.zeros(G, CO, CI * 3, K, K), "beta_weights_extra": torch.zeros(3)}
    with pytest.raises(RuntimeError, match="poly_weights_extra"):
        make_compat(sd, 3, None, 2).load_state_dict(ref)


def test_compat_wrap_layer_copies_and_fuse_layer_gives_reference_class() -> None:
    layer, x = KAGNConv2DLayer(C_IN, C_OUT, K, groups=G, padding=1).to(D64), make_input()
    peft = PEFTKAGNConvNDLayer.wrap_layer(layer, trainable_degrees=[2], extra_degrees=1, finetune_base=True)
    assert peft.layer is not layer and all(p.requires_grad for p in layer.parameters())
    close(peft(x), layer(x), 1e-12)
    randomize(peft)
    fused = peft.fuse_layer()
    assert type(fused) is KAGNConv2DLayer and fused.degree == 4 and fused.basis.degree == 4
    close(fused(x), peft(x))


class TinyVGG(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            KAGNConv2DLayer(C_IN, 6, 3, padding=1), nn.MaxPool2d(2), KAGNConv2DLayer(6, 6, 3, padding=1, groups=2)
        )
        self.classifier = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


def test_peft_vgg_wraps_features_and_merges() -> None:
    vgg, x = TinyVGG().to(D64), make_input()
    expected = vgg(x)
    peft = PEFTVGGKAGN(vgg, trainable_degrees=[3], extra_degrees=2)
    assert isinstance(peft.features[0], PEFTKAGNConvNDLayer) and peft.classifier is peft.model.classifier
    assert all(p.requires_grad for p in vgg.parameters())  # the pretrained model is untouched
    close(peft(x), expected, 1e-12)
    trainable = {n for n, p in peft.named_parameters() if p.requires_grad}
    assert trainable == {f"model.features.{i}.{p}" for i in (0, 2) for p in REFERENCE_PEFT_PARAMS} | {
        "model.classifier.weight", "model.classifier.bias",  # the reference leaves the rest of the model trainable
    }  # fmt: skip

    randomize(peft)
    merged = peft.merge()
    assert isinstance(merged, TinyVGG) and isinstance(peft.features[0], PEFTKAGNConvNDLayer)
    assert [type(m).__name__ for m in merged.features] == ["KAGNConv2DLayer", "MaxPool2d", "KAGNConv2DLayer"]
    assert merged.features[2].degree == 5
    close(merged(x), peft(x))

    # A reference checkpoint of a PEFT VGG is the VGG's own keys, without the "model." level.
    again = PEFTVGGKAGN(vgg, trainable_degrees=[3], extra_degrees=2)
    again.load_state_dict({k.removeprefix("model."): v for k, v in peft.state_dict().items()})
    assert torch.equal(again(x), peft(x))


@pytest.mark.parametrize(("degree", "trainable", "extra", "base"), [(3, [0, 2, 3], 2, False), (2, [1, 2], 3, True),
                                                                   (0, [0], 2, False), (3, [], 1, True)])  # fmt: skip
def test_compat_peft_has_the_reference_parameters_and_fuses_exactly(
    degree: int, trainable: list, extra: int, base: bool
) -> None:
    """Code written for the reference reads and writes poly_weights_delta, beta_weights_delta, poly_weights_extra and
    beta_weights_extra (its shapes and layout), then calls fuse_layer(): wrapping keeps the output, and after random
    values are written through those names the fused layer's output equals the PEFT layer's."""
    layer, x = KAGNConv2DLayer(C_IN, C_OUT, K, degree=degree, groups=G, padding=1).to(D64), make_input()
    peft = PEFTKAGNConvNDLayer.wrap_layer(layer, trainable_degrees=trainable, extra_degrees=extra, finetune_base=base)
    close(peft(x), layer(x), 1e-12)
    shapes = {
        "poly_weights_delta": (G, C_OUT // G, C_IN // G * len(trainable), K, K),
        "beta_weights_delta": (len(trainable),),
        "poly_weights_extra": (G, C_OUT // G, C_IN // G * extra, K, K),
        "beta_weights_extra": (extra,),
    }
    for name, shape in shapes.items():
        p = getattr(peft, name)
        if shape[-1 if len(shape) == 1 else 2] == 0:
            assert p is None, name
            continue
        assert isinstance(p, nn.Parameter) and p.requires_grad and tuple(p.shape) == shape, name
        with torch.no_grad():
            p.normal_(0.0, 0.3)
    assert set(peft.state_dict()) >= {n for n, s in shapes.items() if s[-1 if len(s) == 1 else 2]}
    out = peft(x)
    assert not torch.allclose(out, layer(x))  # the written values are used
    fused = peft.fuse_layer()
    close(fused(x), out, 1e-10)
    out.square().sum().backward()  # and trained, except coefficients of degrees 0 and 1 (they have none)
    used = {
        "poly_weights_delta": bool(trainable),
        "poly_weights_extra": True,
        "beta_weights_delta": any(d >= 2 for d in trainable),
        "beta_weights_extra": degree + extra >= 2,
    }
    assert {n for n in shapes if getattr(peft, n) is not None and getattr(peft, n).grad is not None} == {
        n for n, u in used.items() if u
    }


def test_extra_degrees_beyond_the_gram_limit_are_refused_up_front() -> None:
    """fuse() could not build a Gram layer above degree 26: the PEFT layer refuses it when built, not after training."""
    layer = KAGNConv2d(4, 4, 3, padding=1, degree=24)
    PEFTKAGNConv(layer, extra_degrees=2)  # degree 26: allowed
    with pytest.raises(ValueError, match="extra_degrees=3 would raise the degree to 27, above the Gram basis limit 26"):
        PEFTKAGNConv(layer, extra_degrees=3)


def test_peft_model_converts_to_channels_last() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(KAGNConv2d(4, 6, 3, padding=1, degree=2), KAGNConv2d(6, 6, 3, padding=1, degree=2))
    peft = wrap_kagn(model, trainable_degrees=(2,), extra_degrees=1)
    with torch.no_grad():
        for p in peft.parameters():
            if p.requires_grad:
                p.normal_(0, 0.1)
    x = torch.randn(2, 4, 5, 5)
    y = peft.eval()(x)
    y_cl = peft.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl, y, rtol=1e-5, atol=1e-5)
