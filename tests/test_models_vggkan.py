"""VGG-KAN: registered models, heads, reference parameter counts, reference checkpoints (tiny fixtures and the
published configurations' layouts), round trips, errors."""

from __future__ import annotations

import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from kanconvs.convert import convert_reference_state_dict
from kanconvs.layers.attention import KASelfAttentionNd
from kanconvs.layers.regularization import regularization_loss
from kanconvs.models import create_model, list_models, save_pretrained
from kanconvs.models.heads import HEAD_TYPES, MatryoshkaHead
from kanconvs.models.vggkan import VGG_LAYERS, VGGKANet

# The compat package re-exports ``vggkan`` (a factory) under the module's own name: import the module itself.
compat_vgg = importlib.import_module("kanconvs.compat.models.vggkan")

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
MANIFEST = json.loads((FIXTURES / "vggkan_manifest.json").read_text(encoding="utf-8"))
PUBLISHED = ["vggkagn11_v2", "vggkagn11_v4", "vggkagn_bn11_v4"]
NAMES = sorted(
    [f"vggkan{d}{v}" for d in (11, 13, 16, 19) for v in ("", "_sa", "_v2", "_v3", "_v4", "_v4sa")]
    + ["vggkan_bn11_v4", *PUBLISHED]
)
TINY = {"width_scale": 0.25, "num_classes": 3, "pool_size": 1}


def _n(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _train_step(model: nn.Module, x: torch.Tensor, routed_only: bool = False) -> torch.Tensor:
    """One training forward/backward; every parameter must get a finite gradient."""
    for m in model.modules():
        if isinstance(m, KASelfAttentionNd):  # γ = 0 at init would leave q, k, v without gradient
            nn.init.constant_(m.gamma, 0.5)
    model.train()
    y = model(x)
    out = y if isinstance(y, torch.Tensor) else torch.stack(y)
    assert torch.isfinite(out).all()
    (out.square().mean() + regularization_loss(model)).backward()
    for name, p in model.named_parameters():
        if routed_only and ".experts." in name:  # experts no sample was routed to get no gradient
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    return y


def test_registered_names() -> None:
    assert sorted(list_models("vggkan*") + list_models("vggkagn*")) == NAMES


@pytest.mark.parametrize(
    "family", ["kan", "fastkan", "kacn", "kaln", "wavkan", "moe_kagn", "moe_bottleneck_kagn", "conv"]
)
def test_families_build_and_train(family: str) -> None:
    model = create_model("vggkan11", family=family, **TINY)
    assert _train_step(model, torch.randn(2, 3, 32, 32), routed_only=family.startswith("moe")).shape == (2, 3)
    if family.startswith("moe"):
        assert float(regularization_loss(model).detach()) > 0  # the balance losses reach the training loss


@pytest.mark.parametrize("head", HEAD_TYPES)
def test_heads_and_classifier_contract(head: str) -> None:
    model = VGGKANet("VGG11", "kagn", num_classes=5, width_scale=0.25, head=head, pool_size=(2, 1), degree=2)
    x = torch.randn(2, 3, 32, 32)
    y = _train_step(model, x)
    model.eval()
    feats = model.forward_features(x)
    assert feats.shape == (2, model.num_features, 2, 2) and model.num_features == 32
    pre = model.forward_head(feats, pre_logits=True)
    assert pre.shape == (2, model.head_hidden_size)
    assert model.head_hidden_size == {"hidden_kan": 512, "kan_matryoshka": 512, "vgg": 1024, "matryoshka": 1024}.get(
        head, 32 * 2
    )
    if "matryoshka" in head:  # one set of logits per nesting, smallest first
        assert isinstance(y, tuple) and len(y) == 5 and all(t.shape == (2, 5) for t in y)
    else:
        assert y.shape == (2, 5)
    model.reset_classifier(7)
    out = model(x)
    assert (out[-1] if isinstance(out, tuple) else out).shape == (2, 7)
    model.reset_classifier(0)
    assert model(x).shape == (2, 64) and model.num_classes == 0


def test_matryoshka_head_uses_prefixes_of_one_linear() -> None:
    head = MatryoshkaHead((2, 4), num_classes=3)
    x = torch.randn(5, 4)
    small, full = head(x)
    w, b = head.nesting_classifier_0.weight, head.nesting_classifier_0.bias
    torch.testing.assert_close(small, x[:, :2] @ w[:, :2].T + b)
    torch.testing.assert_close(full, x @ w.T + b)


def test_last_attention_keeps_the_attention_width() -> None:
    # Reference bug: VGG11v3 ends in 128 → 256, the attention replacing the last conv keeps 128 channels.
    model = VGGKANet("VGG11v3", "kagn", num_classes=2, width_scale=0.125, last_attention=True, pool_size=1)
    assert isinstance(model.features[-1], KASelfAttentionNd) and model.num_features == 16
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 2)


def test_configuration_table() -> None:
    # The reference's table, as printed in models/vggkan.py: spot checks of each variant.
    assert VGG_LAYERS["VGG11"] == [16, "M", 32, "M", 64, 64, "M", 128, 128, "M", 128, 128]
    assert VGG_LAYERS["VGG13v3"][-3:] == ["M", 128, 256]
    assert VGG_LAYERS["VGG16sa"] == [16, 16, "M", 32, 32, "M", 64, 64, 64, "SAM", 128, 128, 128, "SAM", 128, 128, 128]
    assert VGG_LAYERS["VGG19v4sa"][-8:] == [128, "SAM", 128, 128, 128, 128, "SAM", 256, 256][-8:]
    assert len(VGG_LAYERS) == 24


@pytest.mark.parametrize(("name", "kwargs"), [("vggkan11_sa", {"head": "kan"}), ("vggkan11", {"family": "moe_kagn"})])
def test_roundtrips(tmp_path: Path, name: str, kwargs: dict) -> None:
    kwargs = {**TINY, **kwargs}
    model = create_model(name, **kwargs).eval()
    x = torch.randn(2, 3, 32, 32)
    copy = create_model(name, **kwargs).eval()
    copy.load_state_dict(model.state_dict())
    torch.testing.assert_close(copy(x), model(x), rtol=0, atol=0)
    save_pretrained(model, tmp_path)
    loaded = create_model(name, pretrained=tmp_path, **kwargs).eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_torch_compile() -> None:
    model = VGGKANet([4, "M", 8, "SAM", 8], "kagn", num_classes=3, head="kan", pool_size=1, degree=2).eval()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(torch.compile(model, backend="aot_eager")(x), model(x))


# Parameter counts of torch-conv-kan's VGGs at full size, computed by running the reference (models/vggkan.py at
# HEAD) under torch.device("meta") with factory(3, 1000, **kwargs). The published configurations are in the manifest
# (VGG11v4-BN, width 2, degree 5: 7,252,115, as the reference README states: "7.25M parameters").
REFERENCE_COUNTS = {
    ("vggkagn", ()): 9_155_192,
    ("vggkagn", (("vgg_type", "VGG19v4"),)): 23_226_272,
    ("vggkagn", (("vgg_type", "VGG16sa"), ("sa_inner_projection", 2))): 11_583_686,
    ("vggkagn_bn", (("vgg_type", "VGG13v4sa"),)): 15_189_343,
    ("vggkan", ()): 11_460_896,
    ("vggkacn", ()): 8_578_728,
    ("vggkaln", ()): 9_155_160,
    ("fast_vggkan", ()): 9_731_632,
    ("vgg_wav_kan", ()): 7_628_968,
    ("moe_vggkagn", ()): 29_324_348,
    ("moe_vggkagn_bn", ()): 7_389_433,
    ("vggkagn", (("head_type", "KAN"), ("expected_feature_shape", (1, 1)))): 3_524_196,
    ("vggkagn", (("head_type", "HiddenKAN"), ("expected_feature_shape", (1, 1)))): 3_723_900,
    ("vggkagn", (("head_type", "VGG"),)): 11_380_344,
    ("vggkagn", (("head_type", "Matryoshka"),)): 10_330_744,
    ("vggkagn", (("head_type", "KANtryoshka"),)): 19_452_540,
}
# Where kanconvs differs, and why: the reference's FastKAN keeps its RBF grid (5 values per layer, 8 layers) as a
# (frozen) parameter, kanconvs as a buffer; the reference's MoE bottleneck has an unused outer gate (2·C_in·E per
# layer) that kanconvs does not allocate.
COMPAT_DIFFERENCE = {("fast_vggkan", ()): -40, ("moe_vggkagn_bn", ()): -1792}


@pytest.mark.parametrize(("factory", "kwargs"), sorted(REFERENCE_COUNTS), ids=str)
def test_compat_reference_parameter_counts(factory: str, kwargs: tuple) -> None:
    with torch.device("meta"):
        model = getattr(compat_vgg, factory)(3, 1000, **dict(kwargs))
    expected = REFERENCE_COUNTS[(factory, kwargs)] + COMPAT_DIFFERENCE.get((factory, kwargs), 0)
    assert _n(model) == expected


@pytest.mark.parametrize(
    ("name", "kwargs", "reference"),
    [
        ("vggkan11", {}, ("vggkagn", ())),
        ("vggkan19_v4", {}, ("vggkagn", (("vgg_type", "VGG19v4"),))),
        (
            "vggkan16_sa",
            {"attention_projection": 2},
            ("vggkagn", (("vgg_type", "VGG16sa"), ("sa_inner_projection", 2))),
        ),
        ("vggkan13_v4sa", {"family": "bottleneck_kagn"}, ("vggkagn_bn", (("vgg_type", "VGG13v4sa"),))),
        ("vggkan11", {"family": "kan"}, ("vggkan", ())),
        ("vggkan11", {"family": "kacn"}, ("vggkacn", ())),
        ("vggkan11", {"head": "vgg"}, ("vggkagn", (("head_type", "VGG"),))),
        ("vggkan11", {"head": "matryoshka"}, ("vggkagn", (("head_type", "Matryoshka"),))),
    ],
)
def test_clean_counts_equal_the_reference(name: str, kwargs: dict, reference: tuple) -> None:
    with torch.device("meta"):
        model = create_model(name, **kwargs)
    assert _n(model) == REFERENCE_COUNTS[reference]


def test_clean_kan_head_gives_plain_logits() -> None:
    # The reference's KAN head ends with LayerNorm(1000) + SiLU on the logits (2·1000 parameters); ours is plain.
    with torch.device("meta"):
        model = create_model("vggkan11", head="kan", pool_size=1)
    assert _n(model) == REFERENCE_COUNTS[("vggkagn", (("head_type", "KAN"), ("expected_feature_shape", (1, 1))))] - 2000


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_layouts_load(name: str) -> None:
    """The published checkpoints' reference layouts (key → shape, at full size) load strictly into the registered
    model and into the compat factory; the parameter counts are the reference's."""
    entry = MANIFEST[name]
    kwargs = {**entry["kwargs"], "expected_feature_shape": tuple(entry["kwargs"]["expected_feature_shape"])}
    with torch.device("meta"):
        state = {k: torch.empty(shape) for k, shape in entry["state"].items()}
        for model in (create_model(name), getattr(compat_vgg, entry["factory"])(3, 1000, **kwargs)):
            assert _n(model) == entry["num_params"]
            # compat classes take the reference layout as it is; ours through the explicit converter
            compat_class = type(model).__module__.startswith("kanconvs.compat")
            model.load_state_dict(dict(state) if compat_class else convert_reference_state_dict(state, model))
    if name == "vggkagn_bn11_v4":
        assert entry["num_params"] == 7_252_115


def test_the_reference_converter_is_registered_by_the_package_alone() -> None:
    """``create_model(..., pretrained=reference_file)`` needs no compat import: importing kanconvs registers the
    converter with load_weights (the models themselves do not know the reference's layout)."""
    code = "import kanconvs.models._hub as h, kanconvs.convert as c\n"
    code += "print(h.CHECKPOINT_FILTERS == [c.convert_reference_state_dict])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "True"


def test_create_model_loads_a_reference_file(tmp_path: Path) -> None:
    """``create_model(name, pretrained=file)`` takes a reference-layout safetensors file (as published)."""
    entry = MANIFEST["vggkagn_bn11_v4"]
    state = {k: torch.randn(shape) for k, shape in entry["state"].items()}
    save_file(state, str(tmp_path / "model.safetensors"))
    model = create_model("vggkagn_bn11_v4", pretrained=tmp_path)
    torch.testing.assert_close(model.head[1].weight, state["classifier.1.weight"], rtol=0, atol=0)
    torch.testing.assert_close(model.features[0].base_weight, state["features.0.base_conv.0.weight"], rtol=0, atol=0)


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("vggkan_*.safetensors")), ids=lambda p: p.stem)
def test_reference_checkpoint(path: Path) -> None:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    kwargs = json.loads(meta["kwargs"])
    kwargs["expected_feature_shape"] = tuple(kwargs["expected_feature_shape"])
    model = getattr(compat_vgg, meta["factory"])(3, int(meta["num_classes"]), **kwargs)
    model.load_state_dict({k[len("state.") :]: v for k, v in tensors.items() if k.startswith("state.")}, strict=True)
    model.eval()
    with torch.no_grad():
        out = model(tensors["input"])
    out = out[0] if isinstance(out, tuple) else out
    torch.testing.assert_close(out, tensors["output"], rtol=1e-4, atol=1e-5)


def test_compat_signatures() -> None:
    # The reference's signatures (models/vggkan.py): parameter names in order.
    gram = ["groups", "degree", "dropout", "l1_decay", "dropout_linear", "vgg_type", "head_type"]
    gram += ["expected_feature_shape", "width_scale", "affine", "norm_layer", "last_attention", "sa_inner_projection"]
    params = list(inspect.signature(compat_vgg.vggkagn).parameters)
    assert params == ["input_channels", "num_classes", *gram]
    assert list(inspect.signature(compat_vgg.VGGKAGN_BN).parameters) == params
    moe = list(inspect.signature(compat_vgg.moe_vggkagn).parameters)
    assert moe[-4:] == ["num_experts", "noisy_gating", "k", "affine"]
    assert inspect.signature(compat_vgg.vgg_wav_kan).parameters["wav_version"].default == "fast"


def test_compat_moe_returns_the_balance_loss() -> None:
    model = compat_vgg.moe_vggkagn_bn(3, 4, vgg_type="VGG11", expected_feature_shape=(1, 1), num_experts=4)
    out, loss = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 4) and loss.ndim == 0 and float(loss.detach()) > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"layers": "VGG12"}, ValueError, "layers must be one of .* got 'VGG12'"),
        ({"layers": ["M", 8]}, ValueError, "layers must start with a channel count"),
        ({"family": "nope"}, ValueError, "family must be one of"),
        ({"head": "mlp"}, ValueError, "head must be one of .* got 'mlp'"),
        ({"width_scale": 0}, ValueError, "width_scale must be a number > 0, got 0"),
        ({"pool_size": (1, 2, 3)}, ValueError, r"pool_size must be a positive int or a pair .* got \(1, 2, 3\)"),
        ({"attention_projection": 0}, ValueError, "attention_projection must be a positive int or None, got 0"),
        ({"num_classes": -1}, ValueError, "num_classes must be an integer >= 0, got -1"),
        ({"degree": 3, "family": "conv"}, TypeError, "degree"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        VGGKANet(**{"layers": "VGG11", "width_scale": 0.25, **kwargs})


def test_compat_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"head_type must be one of .* got 'MLP'"):
        compat_vgg.vggkagn(3, 10, head_type="MLP")
    with pytest.raises(ValueError, match="wav_version must be 'base', 'fast' or 'fast_plus_one', got 'slow'"):
        compat_vgg.vgg_wav_kan(3, 10, wav_version="slow")


def test_compat_vgg_has_the_reference_attribute_names() -> None:
    """The reference's fine-tuning and CAM scripts read ``model.classifier`` and ``model.expected_feature_shape``."""
    from kanconvs import compat

    model = compat.vggkagn(3, 10, vgg_type="VGG11", width_scale=1, expected_feature_shape=(1, 1))
    assert model.classifier is model.head and model.expected_feature_shape == (1, 1)
