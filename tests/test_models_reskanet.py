"""ResKANet: registered models, the reference's parameter counts and checkpoints (fixtures written by
``tools/reference_fixtures/reskanet.py`` from torch-conv-kan's own models), and the reference bugs fixed."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from kanconvs import compat, regularization_loss
from kanconvs.compat.models import reskanet as compat_reskanet
from kanconvs.layers.bottleneck import BottleneckKAConvNd
from kanconvs.layers.moe import MoEKAConvNd
from kanconvs.models import ResKANet, create_model, list_models

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
NAMES = list_models("*reskanet*")


def _tiny(name: str, **kwargs: Any) -> nn.Module:
    if name.startswith("moe_"):
        kwargs.setdefault("num_experts", 3)
    return create_model(name, num_classes=3, layers=(1, 1, 1, 1), **kwargs)


def _input(name: str) -> torch.Tensor:
    # the ImageNet stem divides by 4 and the x64p max-pool by 2: keep ≥ 2×2 maps at the last stage
    size = 16 if name.endswith("x32p") else 32 if name.endswith("x64p") else 64
    return torch.randn(2, 3, size, size)


def test_registered_names() -> None:
    assert NAMES == [
        "moe_reskanet18_x64p", "moe_reskanet50_x64p", "reskanet101", "reskanet152", "reskanet18", "reskanet18_x32p",
        "reskanet18_x64p", "reskanet34", "reskanet34_x32p", "reskanet50", "reskanet50_x64p",
    ]  # fmt: skip


@pytest.mark.parametrize("family", ["kagn", "kaln", "kan", "fastkan", "kacn", "bottleneck_kagn", "conv",
                                    "moe_bottleneck_kagn"])  # fmt: skip
def test_every_family_builds(family: str) -> None:
    model = _tiny("reskanet18_x32p", family=family).eval()
    assert model(torch.randn(1, 3, 16, 16)).shape == (1, 3)
    assert model.family == family


def test_classifier_contract_and_hidden_layer() -> None:
    model = _tiny("reskanet18_x32p", hidden_layer_dim=12).eval()
    x = torch.randn(2, 3, 16, 16)
    feats = model.forward_features(x)
    assert feats.shape == (2, model.num_features, 16 // 8, 16 // 8) and model.num_features == 64
    # the reference accepted hidden_layer_dim and built nothing; here it is GAP → dropout → Linear → GELU → dropout
    assert model.forward_head(feats, pre_logits=True).shape == (2, 12) and model.fc.in_features == 12
    model.reset_classifier(5)
    assert model(x).shape == (2, 5) and model.num_classes == 5
    model.reset_classifier(0)
    assert model(x).shape == (2, 12)


def test_fixed_reference_bugs() -> None:
    clean = _tiny("reskanet18_x32p", family="kaln")
    assert isinstance(clean.conv1.norm, nn.BatchNorm2d)  # the requested norm, also in the stem
    reference = compat.reskalnet_18x32p(3, 10)
    assert isinstance(reference.conv1.norm, nn.InstanceNorm2d)  # kept in compat for its checkpoints
    assert isinstance(reference.layer1[0].conv1.norm, nn.BatchNorm2d)
    moe = _tiny("reskanet18_x32p", family="moe_bottleneck_kagn")
    assert isinstance(moe.layer2[0].downsample, BottleneckKAConvNd)  # the reference always used KALN
    assert isinstance(moe.layer2[0].conv1, MoEKAConvNd.__base__) and type(moe.layer2[0].conv2) is BottleneckKAConvNd


def test_dilation_replaces_strides() -> None:
    model = _tiny("reskanet18_x32p", replace_stride_with_dilation=[False, True, True]).eval()
    assert model.forward_features(torch.randn(1, 3, 16, 16)).shape == (1, 64, 8, 8)
    assert model.layer4[0].conv1.dilation == (2, 2) and model.layer4[0].conv1.stride == (1, 1)


def test_moe_balance_loss_is_reported_not_returned() -> None:
    model = create_model("moe_reskanet18_x64p", num_classes=3, layers=(1, 1, 1, 1), num_experts=4).train()
    logits = model(torch.randn(2, 3, 32, 32))
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 3)
    assert float(regularization_loss(model).detach()) > 0


def test_compat_moe_returns_the_reference_loss() -> None:
    model = compat.MoEResKANet(compat.MoEKALNBasicBlock, [1, 1, 1, 1], num_classes=3, num_experts=4,
                               fcnv_kernel_size=3, fcnv_stride=1, fcnv_padding=1, use_first_maxpool=False)  # fmt: skip
    logits, loss = model(torch.randn(2, 3, 16, 16))
    assert logits.shape == (2, 3)
    # the reference: per-stage sums of the blocks' scaled balance losses, averaged over the 4 stages
    torch.testing.assert_close(loss, regularization_loss(model) / 4)
    assert isinstance(model.layer2[0].downsample.basis, type(compat.KALNConv2DLayer(2, 2, 1).basis))


def test_state_dict_and_save_pretrained_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    from kanconvs.models import save_pretrained

    name = "reskanet18_x32p"
    model = _tiny(name, hidden_layer_dim=8).eval()
    x = _input(name)
    copy = _tiny(name, hidden_layer_dim=8).eval()
    copy.load_state_dict(model.state_dict())
    torch.testing.assert_close(copy(x), model(x), rtol=0, atol=0)
    save_pretrained(model, tmp_path / name)
    loaded = create_model(name, num_classes=3, layers=(1, 1, 1, 1), hidden_layer_dim=8, pretrained=tmp_path / name)
    torch.testing.assert_close(loaded.eval()(x), model(x), rtol=0, atol=0)


@pytest.mark.slow  # ~15 s of tracing on 2 CPU cores
def test_torch_compile() -> None:
    model = _tiny("reskanet18_x32p").eval()
    x = torch.randn(2, 3, 16, 16)
    compiled = torch.compile(model, backend="aot_eager")
    torch.testing.assert_close(compiled(x), model(x))


# ------------------------------------------------------------------------------------- reference facts
# Parameter counts of torch-conv-kan's factories (input_channels=3), counted from the reference models
# (models/reskanet.py at HEAD). FastKAN's RBF grids are buffers here but parameters (requires_grad=False) there:
# 5 values per layer, 20 layers. The reference's MoE bottleneck keeps unused gate parameters (kanconvs does not).
REFERENCE_COUNTS = {
    ("reskanet_18x32p", 10): 788_278,
    ("fast_reskanet_18x32p", 10): 525_822 - 5 * 20,
    ("reskalnet_18x32p", 10): 438_210,
    ("reskalnet_18x64p", 10): 438_210,
    ("reskacnet_18x32p", 10): 350_698,
    ("reskagnet_18x32p", 10): 438_290,
    ("reskagnet18", 1000): 507_440,
    ("reskagnet_34x32p", 10): 876_754,
    ("reskagnetbn_18x32p", 10): 166_807,
    ("reskagnetbn_34x32p", 10): 343_383,
    ("reskalnet_50x64p", 10): 1_835_330,
    ("reskagnet50", 1000): 2_101_412,
    ("reskagnet_bn50", 1000): 1_148_617,
    ("reskagnet101", 1000): 3_587_824,
    ("reskalnet_101x64p", 10): 3_315_010,
    ("reskalnet_101x32p", 10): 3_315_010,
    ("reskagnet_101x64p", 10): 3_315_426,
    ("reskagnet152", 1000): 4_812_348,
    ("reskalnet_152x64p", 10): 4_533_570,
    ("reskalnet_152x32p", 10): 4_533_570,
    ("moe_reskalnet_18x64p", 10): 3_046_522,
    ("moe_reskalnet_50x64p", 10): 8_034_682,
    ("moe_reskalnet_101x64p", 10): 15_006_586,
    ("moe_reskalnet_152x64p", 10): 20_748_666,
    ("reskagnetbn_moe_18x32p", 10): 578_171 - 1_664,
    ("reskagnetbn_moe_34x32p", 10): 1_246_843 - 3_584,
}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "num_classes"), sorted(REFERENCE_COUNTS))
def test_reference_parameter_counts(name: str, num_classes: int) -> None:
    with torch.device("meta"):
        model = getattr(compat, name)(3, num_classes)
    assert _count(model) == REFERENCE_COUNTS[(name, num_classes)]


@pytest.mark.parametrize(
    ("name", "overrides", "reference"),
    [
        ("reskanet18_x32p", {"num_classes": 10, "norm_kwargs": {"affine": False}, "dropout": 0.0}, "reskagnet_18x32p"),
        ("reskanet50", {"num_classes": 1000}, "reskagnet50"),
        ("reskanet101", {"num_classes": 1000}, "reskagnet101"),
    ],
)
def test_clean_models_at_reference_settings_have_reference_counts(name: str, overrides: dict, reference: str) -> None:
    with torch.device("meta"):
        model = create_model(name, **overrides)
    assert _count(model) == REFERENCE_COUNTS[(reference, overrides["num_classes"])]


def test_reference_signatures() -> None:
    sig = inspect.signature(compat.reskagnet50)
    assert [(p.name, p.default) for p in sig.parameters.values()][2:] == [
        ("groups", 1), ("degree", 3), ("width_scale", 1), ("dropout", 0.15), ("dropout_linear", 0.25),
        ("l1_decay", 0.0), ("hidden_layer_dim", None), ("affine", True), ("norm_layer", nn.InstanceNorm2d),
    ]  # fmt: skip
    assert list(inspect.signature(compat.moe_reskalnet_18x64p).parameters)[2:] == [
        "groups", "degree", "width_scale", "num_experts", "noisy_gating", "k", "hidden_layer_dim", "dropout",
        "l1_decay", "dropout_linear", "affine",
    ]  # fmt: skip
    assert set(compat_reskanet.__all__) <= set(compat.__all__)


def _decode(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {
        k: getattr(compat, v) if k == "block" else getattr(nn, v[3:]) if isinstance(v, str) and v[:3] == "nn." else v
        for k, v in kwargs.items()
    }


def load_fixture(path: Path) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    widened = {k: v.float() if v.dtype == torch.bfloat16 else v for k, v in tensors.items()}  # bf16 values, exact
    return meta["builder"], _decode(json.loads(meta["kwargs"])), widened


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("reskanet_*.safetensors")), ids=lambda p: p.stem)
def test_reference_checkpoint_gives_reference_outputs(path: Path) -> None:
    pytest.importorskip("safetensors")
    builder, kwargs, tensors = load_fixture(path)
    model = getattr(compat, builder)(**kwargs).eval()
    state = {k[len("state.") :]: v for k, v in tensors.items() if k.startswith("state.")}
    model.load_state_dict(state, strict=True)
    with torch.no_grad():
        torch.testing.assert_close(model(tensors["input"]), tensors["output"], rtol=1e-4, atol=1e-5)


def test_fixtures_cover_the_configurations() -> None:
    names = {p.stem for p in FIXTURES.glob("reskanet_*.safetensors")}
    assert names == {"reskanet_kagn", "reskanet_kaln_l1", "reskanet_kagn_bn"}


@pytest.mark.parametrize("name", ["reskagnet50", "reskagnet_bn50", "reskalnet_101x64p"])
def test_full_size_reference_layouts_load(name: str) -> None:
    """Keys and shapes of the reference's full-size state_dicts (too big to store) load strictly."""
    layout = json.loads((FIXTURES / "reskanet_layouts.json").read_text())[name]
    model = getattr(compat, name)(3, layout["num_classes"])
    state = {k: torch.zeros(shape) for k, shape in layout["state"].items()}
    for k in state:
        if k.endswith("num_batches_tracked"):
            state[k] = torch.zeros((), dtype=torch.long)
    model.load_state_dict(state, strict=True)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: ResKANet([2, 2, 2]), ValueError, r"layers must be a sequence of 4 positive integers.*\[2, 2, 2\]"),
        (lambda: ResKANet([2, 2, 2, 2], "wide"), ValueError,
         r"block must be one of \['basic', 'bottleneck'\], got 'wide'"),
        (lambda: ResKANet([1, 1, 1, 1], width_scale=0), ValueError, "width_scale must be a positive integer, got 0"),
        (lambda: ResKANet([1, 1, 1, 1], replace_stride_with_dilation=[True]), ValueError,
         r"replace_stride_with_dilation must be None or 3 flags"),
        (lambda: ResKANet([1, 1, 1, 1], replace_stride_with_dilation=True), ValueError,
         r"replace_stride_with_dilation must be None or 3 flags \(stages 2-4\), got True"),
        (lambda: ResKANet([1, 1, 1, 1], replace_stride_with_dilation="yes"), ValueError,
         r"replace_stride_with_dilation must be None or 3 flags \(stages 2-4\), got 'yes'"),
        (lambda: ResKANet([1, 1, 1, 1], hidden_layer_dim=0), ValueError, "hidden_layer_dim must be a positive integer"),
        (lambda: ResKANet([1, 1, 1, 1], family="kgan"), ValueError, r"family must be one of .*got 'kgan'"),
        (lambda: ResKANet([1, 1, 1, 1], num_classes=-1), ValueError, "num_classes must be an integer >= 0, got -1"),
        (lambda: create_model("reskanet18", degre=3), TypeError, "degre"),
        (lambda: compat.ResKANet(nn.Conv2d, [1, 1, 1, 1]), TypeError, r"block must be one of \['KANBasicBlock'"),
        (lambda: compat.MoEResKANet(compat.KAGNBasicBlock, [1, 1, 1, 1]), TypeError,
         r"block must be one of \['MoEKALNBasicBlock'"),
    ],
)  # fmt: skip
def test_bad_arguments(call: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        call()
