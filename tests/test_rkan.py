"""RKAN: published parameter counts, backbone state_dict compatibility, zero-init identity, every mechanism and
backbone forward/backward with every parameter used (DDP without find_unused_parameters), error paths."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from kanconvs import create_model, list_models
from kanconvs.rkan import (
    RKANStages,
    SharedKAConv2d,
    create_rkan_backbone,
    get_mechanism,
    list_backbones,
    list_mechanisms,
    load_backbone_state_dict,
    rkan_parameters,
    wrap,
)

X = torch.randn(2, 3, 32, 32)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta(name: str, **kwargs: object) -> nn.Module:
    with torch.device("meta"):
        return create_model(name, **kwargs)


# ------------------------------------------------------------------------------------------- parameter counts
def test_rkanet50_exact_arithmetic() -> None:
    # stage 4 of ResNet-50, r = 2: 1×1 1024→512, BN(512), 1×1 512→2048, BN(2048), shared filters 9·(3+3) + 9·(2+3)
    branch = 1024 * 512 + 2 * 512 + 512 * 2048 + 2 * 2048 + 54 + 45
    with torch.device("meta"):
        plain = torchvision.models.resnet50()
    assert _count(_meta("rkan_resnet50")) == _count(plain) + branch == 27_135_115
    assert round(_count(_meta("rkan_resnet101")) / 1e6, 2) == 46.13  # 1000 classes


def test_registered_models() -> None:
    names = set(list_models("rkan*"))
    resnets = [f"resnet{d}" for d in (18, 34, 50, 101, 152)]
    expected = {f"rkan_{a}" for a in resnets} | {f"rkanet_e_{d}" for d in (18, 34, 50, 101, 152)}
    expected |= {f"rkan_resnet{d}_{m}xl" for d in (50, 101, 152) for m in (2, 4, 6)}
    expected |= {f"rkan_densenet{d}" for d in (121, 161, 169, 201)} | {f"rkan_vgg{d}_bn" for d in (11, 13, 16, 19)}
    expected |= {f"rkan_convnext_{s}" for s in ("tiny", "small", "base", "large")}
    expected |= {"rkan_resnext50_32x4d", "rkan_wide_resnet101_2", "rkan_regnet_y_400mf", "rkan_regnet_x_32gf"}
    assert expected <= names
    for name in ["rkan_resnet34", "rkanet_e_50", "rkan_resnet152_6xl", "rkan_densenet201", "rkan_vgg19_bn"]:
        model = _meta(name, num_classes=10)
        assert any(isinstance(m, RKANStages) for m in model.modules()), name


# ------------------------------------------------------------------------------------------- the KA filter
def _naive_shared(conv: SharedKAConv2d, x: torch.Tensor) -> torch.Tensor:
    """The reference's path: unfold x, then a 9 → 1 Chebyshev KAN layer on every patch, channel by channel."""
    b, c, h, w = x.shape
    k, s, p = conv.kernel_size, conv.stride, conv.padding
    out = []
    for ch in range(c):
        patches = F.unfold(x[:, ch : ch + 1], k, padding=p, stride=s).transpose(1, 2)  # (B, L, k²)
        t = torch.tanh(patches)
        cheb = [torch.ones_like(t), t]
        for _ in range(2, conv.degree + 1):
            cheb.append(2 * t * cheb[-1] - cheb[-2])
        coef = conv.coefficients.flatten(1).T * conv.scale.flatten()[:, None]  # (k², D+1)
        y = patches @ conv.base_weight.flatten() + sum(cheb[d] @ coef[:, d] for d in range(conv.degree + 1))
        out.append(y)
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    return torch.stack(out, 1).view(b, c, ho, wo)


@pytest.mark.parametrize(("stride", "degree"), [(1, 3), (2, 2), (2, 4)])
def test_shared_filter_matches_unfold_reference(stride: int, degree: int) -> None:
    conv = SharedKAConv2d(stride=stride, degree=degree).double()
    with torch.no_grad():
        conv.scale.uniform_(0.5, 1.5)
    x = 2 * torch.randn(2, 3, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(conv(x), _naive_shared(conv, x))
    assert _count(conv) == 9 * (degree + 3)
    assert torch.autograd.gradcheck(conv, (x[:1, :1, :4, :4].requires_grad_(),))


# ------------------------------------------------------------------------------------------- backbone compatibility
def test_backbone_state_dict_keys_and_loading() -> None:
    pretrained = torchvision.models.resnet18(num_classes=10).state_dict()
    model = wrap(torchvision.models.resnet18(num_classes=10), stages="all", shortcut=True)
    keys = set(model.state_dict())
    assert set(pretrained) <= keys
    assert all(".rkan." in k for k in keys - set(pretrained))
    assert {n for n, _ in rkan_parameters(model)} == {n for n, _ in model.named_parameters() if ".rkan." in n}
    load_backbone_state_dict(model, pretrained)
    for k, v in pretrained.items():
        assert torch.equal(model.state_dict()[k], v), k
    with pytest.raises(ValueError, match="does not fit"):
        load_backbone_state_dict(model, {**pretrained, "extra.weight": torch.zeros(1)})
    # wrapping a model that already holds weights keeps them, and the stage still indexes like a Sequential
    backbone = torchvision.models.resnet18(num_classes=10)
    backbone.load_state_dict(pretrained)
    first_block = backbone.layer4[0]
    wrap(backbone)
    assert backbone.layer4[0] is first_block and len(backbone.layer4) == 2
    assert all(torch.equal(backbone.state_dict()[k], v) for k, v in pretrained.items())


ZERO_OK = [m for m in list_mechanisms() if get_mechanism(m).identity_at_zero]


@pytest.mark.parametrize("mechanism", ZERO_OK)
def test_zero_init_reproduces_backbone(mechanism: str) -> None:
    plain = torchvision.models.resnet18(num_classes=10).eval()
    model = wrap(copy.deepcopy(plain), stages="all", mechanism=mechanism, shortcut=True, zero_init=True).eval()
    with torch.no_grad():
        assert torch.equal(model(X), plain(X))


def test_zero_init_rejects_non_identity_mechanisms() -> None:
    assert set(ZERO_OK) == {"addition", "se", "film", "glu", "cbam", "tanh", "relu", "exp", "sig_tanh"}
    with pytest.raises(ValueError, match="zero_init"):
        wrap(torchvision.models.resnet18(), mechanism="gating", zero_init=True)


# ------------------------------------------------------------------------------------------- forward / backward
def _check_all_grads(model: nn.Module, x: torch.Tensor = X) -> torch.Tensor:
    y = model(x)
    y.square().mean().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"parameters without a gradient (DDP would need find_unused_parameters): {unused}"
    return y


@pytest.mark.parametrize("mechanism", list_mechanisms())
def test_every_mechanism_uses_every_parameter(mechanism: str) -> None:
    model = wrap(torchvision.models.resnet18(num_classes=10), stages="all", mechanism=mechanism, learnable_scale=True)
    y = _check_all_grads(model)
    assert y.shape == (2, 10) and torch.isfinite(y).all()


def test_structure_second_conv_only_on_last_stage() -> None:
    model = wrap(torchvision.models.resnet50(), stages="E")
    assert sorted(model.layer3.rkan) == ["3"] and model.layer3.rkan["3"].kan2 is None
    assert isinstance(model.layer4.rkan["4"].kan2, SharedKAConv2d)
    assert model.layer3.rkan["3"].kan1.stride == 2 and model.layer4.rkan["4"].reduce.out_channels == 512
    assert (
        wrap(torchvision.models.resnet50(), inverse_bottleneck=True, expansion=2).layer4.rkan["4"].expand.in_channels
        == 2048
    )
    assert not hasattr(model, "rkan") and not hasattr(model.layer1, "rkan")


BACKBONES = [
    ("resnext50_32x4d", "addition"),
    ("resnet34", "film"),
    ("densenet121", "se"),
    ("regnet_x_400mf", "gating"),
    ("regnet_y_400mf", "cbam"),
    ("vgg11_bn", "attention"),
    ("convnext_tiny", "glu"),
]


@pytest.mark.parametrize(("arch", "mechanism"), BACKBONES)
def test_backbones_forward_backward_round_trip(arch: str, mechanism: str) -> None:
    torch.manual_seed(0)
    model = create_rkan_backbone(arch, num_classes=5, stages="all", mechanism=mechanism, shortcut=True)
    _check_all_grads(model)
    with torch.device("meta") if "regnet" not in arch else torch.device("cpu"):
        other = create_rkan_backbone(arch, num_classes=5, stages="all", mechanism=mechanism, shortcut=True)
    other.load_state_dict({k: v.clone() for k, v in model.state_dict().items()}, assign="regnet" not in arch)
    with torch.no_grad():
        torch.testing.assert_close(other.eval()(X), model.eval()(X), rtol=0, atol=0)


def test_family_convolution_and_small_stem() -> None:
    model = wrap(torchvision.models.resnet18(num_classes=3), stages=(2, 4), family="kagn", reduce_factor=[1, 4, 1, 8])
    assert model.layer2.rkan["2"].reduce.out_channels == 16 and model.layer4.rkan["4"].reduce.out_channels == 32
    _check_all_grads(model)
    small = create_model("rkan_resnet18", num_classes=3, in_channels=1, small_stem=True, family="kacn", depthwise=False)
    assert small(torch.randn(2, 1, 16, 16)).shape == (2, 3)
    legendre = create_model("rkanet_e_18", num_classes=3, kan_type="legendre", degree=4)
    assert legendre.layer3.rkan["3"].kan1.degree == 4
    _check_all_grads(legendre)


# ------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mechanism": "sum"}, "unknown mechanism"),
        ({"mechanism": {3: "se"}}, "no entry for stages"),
        ({"stages": 5}, "stages must be"),
        ({"stages": "X"}, "stages must be"),
        ({"stages": []}, "stages must be"),
        ({"reduce_factor": 0}, "reduce_factor"),
        ({"reduce_factor": [2, 2]}, "one entry per backbone stage"),
        ({"kan_type": "gram"}, "kan_type must be one of"),
        ({"kan_type": "chebyshev", "family": "kagn"}, "not both"),
        ({"family": "nope"}, "unknown family"),
        ({"family_kwargs": {"degree": 2}}, "needs a family"),
        ({"degree": (3,)}, "degree"),
        ({"mechanism": {4: "se", 7: "film"}}, r"mechanism has entries for \[7\].*wrapped stages \[4\].*1\.\.4"),
        ({"reduce_factor": {4: 2, 9: 8}}, r"reduce_factor has entries for \[9\]"),
        ({"stages": 4, "mechanism": {3: "se", 4: "film"}}, r"mechanism has entries for \[3\], which are not wrapped"),
        ({"stages": "E", "mechanism": {3: "se", "3": "film", 4: "se"}}, "mechanism has two entries for stage 3"),
        ({"family": "kagn", "family_kwargs": {"groups": 2}}, r"family_kwargs cannot set \['groups'\]"),
    ],
)
def test_wrap_errors(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        wrap(torchvision.models.resnet18(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"degree": 3.0}, "degree must be an int or a pair of ints .* got 3.0"),
        ({"degree": None}, "degree must be an int or a pair of ints .* got None"),
        ({"degree": (3, 2.0)}, r"degree must be .* got \(3, 2.0\)"),
        (
            {"family": "kagn", "family_kwargs": [("degree", 2)]},
            r"family_kwargs must be a mapping .* \[\('degree', 2\)\]",
        ),
    ],
)
def test_wrap_type_errors_name_the_argument(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(TypeError, match=match):
        wrap(torchvision.models.resnet18(), **kwargs)  # type: ignore[arg-type]


def test_per_stage_mappings_survive_save_pretrained(tmp_path) -> None:
    from kanconvs.models import from_pretrained, save_pretrained

    kwargs = {"num_classes": 5, "small_stem": True, "stages": "E"}
    model = create_model("rkan_resnet18", mechanism={3: "se", 4: "film"}, reduce_factor={3: 4, 4: 2}, **kwargs)
    save_pretrained(model, tmp_path)  # JSON turns the int keys into strings
    loaded = from_pretrained(tmp_path)
    assert loaded.layer3.rkan["3"].mechanism.name == "se" and loaded.layer4.rkan["4"].mechanism.name == "film"
    assert loaded.layer3.rkan["3"].reduce.out_channels == 128 // 4  # stage 3 input: 128 channels
    with torch.no_grad():
        assert torch.equal(loaded.eval()(X), model.eval()(X))


def test_plain_twin_refuses_rkan_options() -> None:
    with pytest.raises(TypeError, match=r"rkan=False .* ignored: \['colour', 'mechanism', 'stagse'\]"):
        create_model("tv_resnet18", num_classes=10, small_stem=True, stagse=3, mechanism="se", colour="red")


def test_backbone_errors() -> None:
    with pytest.raises(ValueError, match="not supported"):
        wrap(torchvision.models.mobilenet_v2())
    assert list_backbones() == ["resnet", "densenet", "regnet", "vgg", "convnext"]
    model = wrap(torchvision.models.resnet18())
    with pytest.raises(ValueError, match="already wrapped"):
        wrap(model, stages=3)
    block = wrap(torchvision.models.resnet18(), stages=3).layer3.rkan["3"]  # a stride-2 branch fed a stride-1 stage
    with pytest.raises(ValueError, match=r"spatial size \(4, 4\) does not match the stage output \(8, 8\)"):
        block(torch.randn(2, 128, 8, 8), torch.randn(2, 256, 8, 8))
    with pytest.raises(ValueError, match="unknown torchvision"):
        create_rkan_backbone("resnet7")
    with pytest.raises(ValueError, match="in_channels"):
        create_model("rkan_resnet18", in_channels=0)
    assert math.isfinite(_count(_meta("rkan_resnet18", in_channels=4)))


def test_plain_twin_for_rkan_comparisons_has_the_same_stem() -> None:
    from kanconvs import create_model

    plain = create_model("tv_resnet18", in_channels=1, num_classes=10, small_stem=True)
    wrapped = create_model("rkan_resnet18", in_channels=1, num_classes=10, small_stem=True)
    x = torch.randn(2, 1, 28, 28)
    assert plain(x).shape == wrapped(x).shape == (2, 10)
    # the RKAN model is the plain one plus its branch: every plain key is there with the same shape
    plain_sd, wrapped_sd = plain.state_dict(), wrapped.state_dict()
    assert all(wrapped_sd[k].shape == v.shape for k, v in plain_sd.items())
    assert set(wrapped_sd) - set(plain_sd) and all(".rkan." in k for k in set(wrapped_sd) - set(plain_sd))


# ------------------------------------------------------------------------------------------- odd sizes, FX, slicing
@pytest.mark.parametrize(
    ("arch", "kwargs"),
    [("densenet121", {}), ("vgg11_bn", {"family": "kagn"}), ("convnext_tiny", {}), ("resnet18", {})],
)
def test_odd_input_sizes_fit_pooling_stages_and_zero_init_is_exact(arch: str, kwargs: dict[str, object]) -> None:
    # pooling stages round odd sizes down where a padded stride-2 KA conv rounds up: the branch must follow
    x = torch.randn(2, 3, 45, 45)
    plain = getattr(torchvision.models, arch)(num_classes=4).eval()
    model = wrap(copy.deepcopy(plain), stages="all", shortcut=True, zero_init=True, **kwargs).eval()  # type: ignore[arg-type]
    with torch.no_grad():
        assert torch.equal(model(x), plain(x))
    model.train()
    for block in model.modules():
        if isinstance(block, RKANStages):
            for b in block.rkan.values():
                nn.init.ones_(b.bn2.weight)  # a live branch, so every path is used
    _check_all_grads(model, x)


def test_crop_is_padding_one_zero() -> None:
    # cropping the padded stride-2 output to floor(H/2) is the same filter with padding (1, 0): exact floor
    # rounding, and for even sizes (where the right padding is never read) the unchanged output
    conv = SharedKAConv2d(stride=2, degree=3)
    one_zero = SharedKAConv2d(stride=2, padding=0, degree=3)
    one_zero.load_state_dict(conv.state_dict())
    for size in (9, 10):
        x = torch.randn(2, 4, size, size)
        expected = one_zero(F.pad(x, (1, 0, 1, 0)))
        assert expected.shape[-1] == size // 2
        torch.testing.assert_close(conv(x)[..., : size // 2, : size // 2], expected)
        if size % 2 == 0:
            torch.testing.assert_close(conv(x), expected)


def test_feature_extraction_traces_a_wrapped_model() -> None:
    from torchvision.models.feature_extraction import create_feature_extractor

    model = wrap(torchvision.models.resnet18(num_classes=4), stages="all", mechanism="cbam", shortcut=True).eval()
    extractor = create_feature_extractor(model, {"layer3": "mid", "fc": "out"})
    x = torch.randn(2, 3, 33, 33)
    with torch.no_grad():
        feats = extractor(x)
        assert torch.equal(feats["out"], model(x)) and feats["mid"].shape == (2, 256, 3, 3)


def test_slicing_a_wrapped_stage_gives_a_sequential() -> None:
    model = wrap(torchvision.models.vgg11_bn(), stages=(2, 3))
    plain_children = list(torchvision.models.vgg11_bn().features.named_children())
    head = model.features[:5]
    assert isinstance(head, nn.Sequential) and [n for n, _ in head.named_children()] == [
        n for n, _ in plain_children[:5]
    ]
    assert head[0] is model.features[0] and not hasattr(head, "rkan")
    tail = model.features[2::3]
    assert [n for n, _ in tail.named_children()] == [n for n, _ in plain_children[2::3]]
    assert head(torch.randn(1, 3, 16, 16)).shape == (1, 128, 8, 8)
