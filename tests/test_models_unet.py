"""U-KANet and U-KAGNet: registered models, the reference's parameter counts and checkpoints (fixtures written by
``tools/reference_fixtures/unet.py`` from torch-conv-kan's own models), and the reference's ``_make_layer`` bug."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from kanconvs import compat
from kanconvs.layers.attention import KAFocalModulationNd, KASelfAttentionNd
from kanconvs.models import UKAGNet, UKANet, create_model, list_models
from test_models_reskanet import load_fixture

FIXTURES = Path(__file__).parent / "fixtures" / "reference"


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("ukanet18", {"layers": (1, 1, 1, 1)}),
        ("ukanet18", {"layers": (1, 1, 1, 1), "block": "bottleneck", "family": "conv"}),
        ("ukagnet", {"unet_depth": 3}),
        ("ukagnet", {"unet_depth": 2, "mixer_type": "self-att", "mixer_kwargs": {"inner_projection": 8}}),
        ("ukagnet", {"unet_depth": 2, "mixer_type": "focal", "family": "kagn", "degree": 2}),
        ("ukagnet", {"unet_depth": 2, "family": "conv", "mixer_type": "self-att"}),
    ],
)
def test_forward_backward_every_parameter(name: str, kwargs: dict[str, Any]) -> None:
    model = create_model(name, num_classes=3, **kwargs).train()
    x = torch.randn(2, 3, 18, 10)  # not a multiple of 8: the decoder resizes to each skip
    out = model(x)
    assert out.shape == (2, 3, 18, 10) and torch.isfinite(out).all()
    out.square().mean().backward()
    # self-attention's γ starts at 0, so q and k get a zero (but present) gradient; nothing is disconnected
    assert [n for n, p in model.named_parameters() if p.grad is None] == []


def test_registered_names_and_families() -> None:
    assert {"ukagnet", "ukanet18"} <= set(list_models("uka*"))
    for family in ("kagn", "kaln", "kan", "fastkan", "kacn", "bottleneck_kagn", "conv"):
        model = create_model("ukanet18", family=family, layers=(1, 1, 1, 1)).eval()
        assert model(torch.randn(1, 3, 16, 16)).shape == (1, 1, 16, 16)


def test_mixers_are_the_library_layers() -> None:
    att = create_model("ukagnet", unet_depth=2, mixer_type="self-att")
    assert isinstance(att.decoder[0][0], KASelfAttentionNd) and att.decoder[0][0].channels == 48
    focal = create_model("ukagnet", unet_depth=2, mixer_type="focal")
    assert isinstance(focal.decoder[0][0], KAFocalModulationNd)


def test_every_block_gets_the_options() -> None:
    """The reference's ``_make_layer`` built the 2nd+ blocks with no options (degree, norm, dropout)."""
    clean = create_model("ukanet18", degree=5, norm_layer="batch")
    assert clean.layer1e[1].conv1.basis.degree == 5 and isinstance(clean.layer1e[1].conv1.norm, nn.BatchNorm2d)
    reference = compat.ukagnet_18(3, 1, degree=5, norm_layer=nn.BatchNorm2d)  # kept for the checkpoints
    assert reference.layer1e[0].conv1.basis.degree == 5 and isinstance(reference.layer1e[0].conv1.norm, nn.BatchNorm2d)
    assert reference.layer1e[1].conv1.basis.degree == 3 and isinstance(
        reference.layer1e[1].conv1.norm, nn.InstanceNorm2d
    )


def test_save_pretrained_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    from kanconvs.models import save_pretrained

    model = create_model("ukagnet", unet_depth=2, num_classes=2).eval()
    x = torch.randn(1, 3, 8, 8)
    save_pretrained(model, tmp_path / "run")
    loaded = create_model("ukagnet", unet_depth=2, num_classes=2, pretrained=tmp_path / "run").eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


# ------------------------------------------------------------------------------------- reference facts
# Parameter counts of torch-conv-kan's models/ukanet.py at HEAD (input_channels=3), counted from the reference.
# FastKAN's RBF grids are parameters there and buffers here (5 values × 39 layers).
REFERENCE_COUNTS = {
    ("ukanet_18", 2): 2_094_769,
    ("fast_ukanet_18", 2): 1_397_115 - 5 * 39,
    ("ukalnet_18", 2): 1_164_330,
    ("ukagnet_18", 2): 1_164_486,
    ("ukacnet_18", 2): 931_730,
    ("ukagnetnb_18", 2): 431_627,
}
UKAGNET_COUNTS = {  # UKAGNet(**kwargs)
    (): 788_982,
    (("unet_depth", 3), ("mixer_type", "self-att")): 645_504,
    (("unet_depth", 3), ("mixer_type", "self-att"), ("use_bottleneck", False)): 2_146_755,
    (("unet_depth", 3), ("mixer_type", "focal")): 346_018,
    (("unet_depth", 3), ("mixer_type", "focal"), ("use_bottleneck", False)): 849_485,
}


@pytest.mark.parametrize(("name", "num_classes"), sorted(REFERENCE_COUNTS))
def test_reference_parameter_counts(name: str, num_classes: int) -> None:
    with torch.device("meta"):
        model = getattr(compat, name)(3, num_classes)
    assert _count(model) == REFERENCE_COUNTS[(name, num_classes)]


@pytest.mark.parametrize("kwargs", sorted(UKAGNET_COUNTS))
def test_reference_ukagnet_parameter_counts(kwargs: tuple) -> None:
    with torch.device("meta"):
        model = compat.UKAGNet(**dict(kwargs))
    assert _count(model) == UKAGNET_COUNTS[kwargs]


def test_clean_models_at_reference_settings_have_reference_counts() -> None:
    with torch.device("meta"):
        assert _count(create_model("ukagnet")) == UKAGNET_COUNTS[()]
        # ukagnet_18 without the _make_layer bug: every block's InstanceNorm is affine (+2·C per 2nd+ block conv)
        fixed = _count(create_model("ukanet18", num_classes=2))
    buggy_blocks = 2 * 2 * (8 + 16 + 32 + 64 + 64 + 32 + 16 + 8)  # 2nd block per stage: 2 convs × (w, b) × C
    assert fixed == REFERENCE_COUNTS[("ukagnet_18", 2)] + buggy_blocks


def test_reference_signatures() -> None:
    assert [(p.name, p.default) for p in inspect.signature(compat.ukagnet_18).parameters.values()][2:] == [
        ("groups", 1), ("degree", 3), ("width_scale", 1), ("affine", True), ("dropout", 0.0), ("l1_decay", 0.0),
        ("norm_layer", nn.InstanceNorm2d),
    ]  # fmt: skip
    assert list(inspect.signature(compat.UKAGNet).parameters) == [
        "input_channels", "num_classes", "unet_depth", "unet_layers", "groups", "width_scale", "use_bottleneck",
        "mixer_type", "degree", "affine", "dropout", "norm_layer", "inner_projection_attention", "focal_window",
        "focal_level", "focal_factor", "use_postln_in_modulation", "normalize_modulator", "full_kan",
    ]  # fmt: skip


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("unet_*.safetensors")), ids=lambda p: p.stem)
def test_reference_checkpoint_gives_reference_outputs(path: Path) -> None:
    pytest.importorskip("safetensors")
    builder, kwargs, tensors = load_fixture(path)
    model = getattr(compat, builder)(**kwargs).eval()
    state = {k[len("state.") :]: v for k, v in tensors.items() if k.startswith("state.")}
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(tensors["input"]), tensors["output"], rtol=1e-4, atol=1e-5)


def test_fixtures_cover_the_configurations() -> None:
    names = {p.stem for p in FIXTURES.glob("unet_*.safetensors")}
    assert names == {"unet_ukanet_kagn", "unet_ukagnet_bottleneck", "unet_ukagnet_kagn"}


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: UKANet((1, 1)), ValueError, "layers must be a sequence of 4 positive integers"),
        (lambda: UKANet(num_classes=0), ValueError, "num_classes must be a positive integer, got 0"),
        (lambda: UKAGNet(unet_depth=1), ValueError, "unet_depth must be an integer >= 2, got 1"),
        (lambda: UKAGNet(unet_layers=0), ValueError, "unet_layers must be a positive integer, got 0"),
        (lambda: UKAGNet(mixer_type="mlp"), ValueError, r"mixer_type must be one of .*got 'mlp'"),
        (lambda: UKAGNet(mixer_kwargs={"num_heads": 2}), TypeError, "mixer_type 'conv' has no mixer"),
        (lambda: compat.UKANet(compat.KAGNBottleneck, [1, 1, 1, 1]), TypeError, "reference basic block class"),
        (lambda: compat.UKANet(compat.KAGNBasicBlock, [1, 1, 1, 1], fcnv_stride=2), ValueError,
         "the stem must keep the size"),
        (lambda: compat.UKANet(compat.KAGNBasicBlock, [1, 1, 1, 1], replace_stride_with_dilation=[True] * 3),
         ValueError, "replace_stride_with_dilation is not supported"),
        (lambda: compat.UKAGNet(mixer_type="mlp"), ValueError, r"mixer_type must be one of .*got 'mlp'"),
    ],
)  # fmt: skip
def test_bad_arguments(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
