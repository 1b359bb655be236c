"""U²-KANet: registered models, outputs, reference parameter counts, reference checkpoints, round trips, errors."""

from __future__ import annotations

import importlib
import inspect
import json
from functools import partial
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from kanconvs.compat import KAGNConv2DLayer
from kanconvs.layers.regularization import regularization_loss
from kanconvs.models import conv_factory, create_model, list_models, save_pretrained
from kanconvs.models.u2kanet import ResidualUBlock, U2KANet

# The compat package re-exports ``u2kanet`` (a factory) under the module's own name: import the module itself.
compat_u2 = importlib.import_module("kanconvs.compat.models.u2kanet")

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
NAMES = ["u2kanet", "u2kanet_small", "u2net", "u2net_small"]


def _n(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _train_step(model: nn.Module, x: torch.Tensor, classes: int, routed_only: bool = False) -> None:
    model.train()
    maps = model(x)
    assert isinstance(maps, tuple) and len(maps) == 7
    for m in maps:
        assert m.shape == (x.shape[0], classes, *x.shape[2:]) and torch.isfinite(m).all()
    (sum(m.square().mean() for m in maps) + regularization_loss(model)).backward()
    for name, p in model.named_parameters():
        if routed_only and ".experts." in name:  # experts no sample was routed to get no gradient
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_registered_names() -> None:
    assert set(list_models("u2*")) == set(NAMES)


@pytest.mark.parametrize(
    ("family", "kwargs"),
    [
        ("bottleneck_kagn", {"norm_layer": "batch", "groups": 4}),
        ("kacn", {"norm_layer": "batch", "groups": 4}),
        ("moe_kagn", {"num_experts": 2, "k": 1}),  # experts take no running statistics: instance norms, 64×64
    ],
)
def test_families_build_and_train(family: str, kwargs: dict) -> None:
    model = create_model("u2kanet_small", family=family, degree=2, **kwargs)
    _train_step(model, torch.randn(2, 3, 64, 64), 1, routed_only=family.startswith("moe"))
    if family.startswith("moe"):
        assert float(regularization_loss(model).detach()) > 0  # the balance losses reach the training loss


def test_any_input_size_and_eval_outputs() -> None:
    # The reference crashed unless every pooled size was even; the blocks here upsample to the skip's size.
    model = create_model("u2net_small").eval()
    maps = model(torch.randn(1, 3, 45, 38))
    assert len(maps) == 7 and all(m.shape == (1, 1, 45, 38) for m in maps)
    # d0 is the 1×1 fusion of the six side outputs.
    fused = model.outconv(torch.cat(maps[1:], 1))
    torch.testing.assert_close(maps[0], fused)


def test_residual_block_structure() -> None:
    block = ResidualUBlock(conv_factory("conv"), 5, 3, 4, 6)
    assert [m.conv.dilation for m in block.encoder_list] == [(1, 1)] * 4 + [(2, 2)]
    assert len(block.decoder_list) == 4 and block.decoder_list[-1].conv.out_channels == 6
    dilated = ResidualUBlock(conv_factory("conv"), 4, 3, 4, 6, dilated=True)
    assert [m.conv.dilation[0] for m in dilated.encoder_list] == [1, 2, 4, 8]
    assert [m.conv.dilation[0] for m in dilated.decoder_list] == [4, 2, 1]
    x = torch.randn(2, 3, 9, 7)
    assert dilated(x).shape == block(x).shape == (2, 6, 9, 7)


@pytest.mark.parametrize(
    ("name", "kwargs"), [("u2net_small", {"dropout": 0.1}), ("u2kanet_small", {"degree": 2, "norm_layer": "batch"})]
)
def test_roundtrips(tmp_path: Path, name: str, kwargs: dict) -> None:
    model = create_model(name, num_classes=2, **kwargs).eval()
    x = torch.randn(1, 3, 32, 32)
    copy = create_model(name, num_classes=2, **kwargs).eval()
    copy.load_state_dict(model.state_dict())
    for a, b in zip(copy(x), model(x), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    save_pretrained(model, tmp_path)
    loaded = create_model(name, pretrained=tmp_path, num_classes=2, **kwargs).eval()
    for a, b in zip(loaded(x), model(x), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# Parameter counts of torch-conv-kan's U²-Nets at their default configurations, computed by running the reference
# (models/u2kanet.py at HEAD) under torch.device("meta") with factory(3, 1).
REFERENCE_COUNTS = {
    "u2kagnet": 13_747_997,
    "u2kagnet_small": 354_109,
    "u2net": 2_761_645,
    "u2net_small": 73_285,
    "u2kagnet_bn": 3_647_002,
    "u2kagnet_bn_small": 254_538,
    "u2kanet": 24_737_165,
    "u2kacnet": 11_000_173,
    "u2kalnet": 13_747_549,
    "fast_u2kanet": 16_498_291,
}
# The reference's FastKAN keeps its RBF grid (5 values per layer, 112 layers) as a frozen parameter; here a buffer.
COMPAT_DIFFERENCE = {"fast_u2kanet": -560}


@pytest.mark.parametrize("factory", sorted(REFERENCE_COUNTS))
def test_compat_reference_parameter_counts(factory: str) -> None:
    with torch.device("meta"):
        model = getattr(compat_u2, factory)(3, 1)
    assert _n(model) == REFERENCE_COUNTS[factory] + COMPAT_DIFFERENCE.get(factory, 0)


@pytest.mark.parametrize(
    ("name", "kwargs", "reference"),
    [
        ("u2kanet", {}, "u2kagnet"),
        ("u2kanet_small", {}, "u2kagnet_small"),
        ("u2net", {}, "u2net"),
        ("u2net_small", {}, "u2net_small"),
        ("u2kanet", {"family": "conv"}, "u2net"),
        ("u2kanet", {"family": "bottleneck_kagn"}, "u2kagnet_bn"),
        ("u2kanet", {"family": "kacn"}, "u2kacnet"),
        ("u2kanet", {"family": "kan"}, "u2kanet"),
    ],
)
def test_clean_counts_equal_the_reference(name: str, kwargs: dict, reference: str) -> None:
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    assert _n(model) == REFERENCE_COUNTS[reference]


def _kagn3x3(conv: dict, in_channels: int, out_channels: int, dilation: int = 1) -> nn.Module:
    """The reference's ``kagn_conv3x3`` (its ``l1_decay`` is the checkpoint's L1 wrapper, stripped on load)."""
    return KAGNConv2DLayer(
        in_channels, out_channels, 3, degree=conv["degree"], groups=conv["groups"], padding=dilation,
        dilation=dilation, norm_layer=getattr(nn, conv["norm_layer"]), affine=conv["affine"],
    )  # fmt: skip


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("u2kanet_*.safetensors")), ids=lambda p: p.stem)
def test_reference_checkpoint(path: Path) -> None:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    kwargs = json.loads(meta["kwargs"])
    if "conv" in meta:  # a single residual U-block built from the reference's conv function
        cls = getattr(compat_u2, meta["factory"])
        model = cls(partial(_kagn3x3, json.loads(meta["conv"])), **kwargs)
    else:
        model = getattr(compat_u2, meta["factory"])(tensors["input"].shape[1], 1, **kwargs)
    model.load_state_dict({k[len("state.") :]: v for k, v in tensors.items() if k.startswith("state.")}, strict=True)
    model.eval()
    with torch.no_grad():
        out = model(tensors["input"])
    out = torch.stack(out) if isinstance(out, tuple) else out
    torch.testing.assert_close(out, tensors["output"], rtol=1e-4, atol=1e-5)


def test_compat_classes_take_reference_conv_functions() -> None:
    conv = {"degree": 1, "groups": 1, "norm_layer": "BatchNorm2d", "affine": True}
    model = compat_u2.U2KANetSmall(partial(_kagn3x3, conv), partial(_kagn3x3, conv), 3, 2)
    assert isinstance(model.stage1.input_conv, KAGNConv2DLayer)
    assert len(model.eval()(torch.randn(1, 3, 32, 32))) == 7
    with torch.device("meta"):
        assert _n(compat_u2.U2KANetSmall(partial(_kagn3x3, {**conv, "degree": 3}), partial(_kagn3x3, conv), 3, 1)) > 0


def test_compat_signatures() -> None:
    # The reference's signatures (models/u2kanet.py): parameter names in order.
    common = ["input_channels", "num_classes", "groups", "degree", "width_scale", "dropout", "l1_decay", "affine"]
    assert list(inspect.signature(compat_u2.u2kagnet).parameters) == [*common, "norm_layer"]
    assert list(inspect.signature(compat_u2.u2kagnet_bn).parameters) == [*common, "dim_reduction", "norm_layer"]
    assert list(inspect.signature(compat_u2.u2net_small).parameters) == [
        "input_channels", "num_classes", "groups", "width_scale", "dropout", "l1_decay",
    ]  # fmt: skip
    assert inspect.signature(compat_u2.fast_u2kanet).parameters["grid_range"].default == [-2, 2]
    assert list(inspect.signature(compat_u2.ResidualUNetBase).parameters) == [
        "conv_func", "conf_fun_first", "depth", "in_ch", "mid_ch", "out_ch",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stages": "tiny"}, ValueError, "stages must be one of .* got 'tiny'"),
        ({"stages": {"encoder": (), "decoder": ()}}, ValueError, "stages must hold 6 encoder and 5 decoder stages"),
        ({"family": "nope"}, ValueError, "family must be one of"),
        ({"width_scale": 0}, ValueError, "width_scale must be a positive integer, got 0"),
        ({"num_classes": 0}, ValueError, "num_classes must be a positive integer, got 0"),
        ({"family": conv_factory("conv"), "degree": 3}, TypeError, r"conv_kwargs \['degree'\] need a family name"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        U2KANet(**{"stages": "small", **kwargs})


def test_bad_block_and_compat_arguments() -> None:
    with pytest.raises(ValueError, match="depth must be an integer >= 4, got 3"):
        ResidualUBlock(conv_factory("conv"), 3, 3, 4, 4)
    with pytest.raises(ValueError, match="l1_decay is not supported by the plain convolutions of u2net"):
        compat_u2.u2net(3, 1, l1_decay=0.1)
