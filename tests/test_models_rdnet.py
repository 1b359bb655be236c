"""RDNet with KA convolutions: registered models, reference parameter counts and checkpoints, drop path, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import kanconvs.compat as compat
from kanconvs.layers.regularization import regularization_loss
from kanconvs.models import RDNet, create_model, list_models, save_pretrained

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
NAMES = ["rdnet_kan_tiny", "rdnet_kan_small", "rdnet_kan_base", "rdnet_kan_large"]
TINY = {
    "num_init_features": 8,
    "growth_rates": (8, 8),
    "num_blocks": (1, 2),
    "downsample": (False, True),
    "block_types": ("block", "ese"),
    "num_classes": 5,
    "degree": 2,
}


def _n(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _check_train_step(model: torch.nn.Module, x: torch.Tensor, routed_only: bool = False) -> None:
    model.train()
    y = model(x)
    assert y.shape == (x.shape[0], 5) and torch.isfinite(y).all()
    (y.square().mean() + regularization_loss(model)).backward()
    for name, p in model.named_parameters():
        if routed_only and ".experts." in name:  # top-k routing: unrouted experts get no gradient this step
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_registered_names() -> None:
    assert set(NAMES) <= set(list_models("rdnet_*"))


@pytest.mark.parametrize("family", ["bottleneck_kagn", "kaln", "conv", "moe_bottleneck_kagn"])
def test_families(family: str) -> None:
    config = {k: v for k, v in TINY.items() if family != "conv" or k != "degree"}  # user options reach the layers
    model = create_model("rdnet_kan_tiny", family=family, **config, post_stage_attention=family == "kaln")
    _check_train_step(model, torch.randn(2, 3, 16, 16), routed_only=family.startswith("moe"))


def test_drop_path_is_applied_in_training_only() -> None:
    model = create_model("rdnet_kan_tiny", **TINY, drop_path_rate=0.9, ls_init_value=1.0)
    x = torch.randn(8, 3, 16, 16)
    block = model.dense_stages[1][1].dense_block1
    assert block.drop_path == pytest.approx(0.9)  # the last block gets the full rate
    out = block.layers(torch.randn(8, block.layers.layers[0].in_channels, 4, 4))
    assert out.shape[1] == 8
    model.train()
    torch.manual_seed(0)
    a, b = model.forward_features(x), model.forward_features(x)
    assert not torch.equal(a, b)  # random rows dropped
    model.eval()
    torch.testing.assert_close(model.forward_features(x), model.forward_features(x), rtol=0, atol=0)


def test_zero_head_and_classifier_contract() -> None:
    model = RDNet("kagn", (8,), (1,), (False,), ("block",), num_init_features=8, num_classes=3, zero_head=True)
    x = torch.randn(2, 3, 8, 8)
    assert torch.count_nonzero(model(x)) == 0
    feats = model.forward_features(x)
    assert feats.shape[1] == model.num_features == 16
    assert model.forward_head(feats, pre_logits=True).shape == (2, 16)
    model.reset_classifier(0)
    assert model(x).shape == (2, 16) and model.num_classes == 0


def test_stem_honours_the_family_options() -> None:
    model = create_model("rdnet_kan_tiny", **{**TINY, "degree": 5})
    assert model.stem.stem[0].basis.degree == 5


def test_roundtrips(tmp_path: Path) -> None:
    model = create_model("rdnet_kan_tiny", **TINY).eval()
    x = torch.randn(2, 3, 16, 16)
    copy = create_model("rdnet_kan_tiny", **TINY).eval()
    copy.load_state_dict(model.state_dict())
    torch.testing.assert_close(copy(x), model(x), rtol=0, atol=0)
    save_pretrained(model, tmp_path)
    loaded = create_model("rdnet_kan_tiny", pretrained=tmp_path, **TINY).eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


@pytest.mark.slow
def test_torch_compile() -> None:
    model = create_model("rdnet_kan_tiny", **TINY).eval()
    x = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(torch.compile(model, backend="aot_eager")(x), model(x))


# Parameter counts of torch-conv-kan's models/kan_rdnet.py factories (in_channels 3, 1000 classes), computed by
# running the reference at HEAD: (factory, is_bottleneck) -> count.
REFERENCE_COUNTS = {
    ("tiny", True): 23_688_689,
    ("tiny", False): 29_088_517,
    ("small", True): 204_826_794,
    ("base", True): 356_085_310,
    ("large", True): 770_310_356,
}


@pytest.mark.parametrize(("size", "bottleneck"), [k for k in sorted(REFERENCE_COUNTS) if k[0] != "large"])
def test_compat_reference_parameter_counts(size: str, bottleneck: bool) -> None:
    with torch.device("meta"):
        model = getattr(compat, f"kagrdnet_{size}")(3, 1000, is_bottleneck=bottleneck)
    assert _n(model) == REFERENCE_COUNTS[(size, bottleneck)]


@pytest.mark.parametrize("size", ["tiny", "large"])
def test_clean_bottleneck_counts_equal_the_reference(size: str) -> None:
    with torch.device("meta"):
        model = create_model(f"rdnet_kan_{size}", family="bottleneck_kagn")
    assert _n(model) == REFERENCE_COUNTS[(size, True)]


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("rdnet_*.safetensors")), ids=lambda p: p.stem)
def test_reference_checkpoint(path: Path) -> None:
    # The fixtures evaluate the reference with its depthwise KAGN v2 basis in the intended channel-major layout
    # (see tools/reference_fixtures/rdnet.py); everything else is the reference as published.
    with safe_open(str(path), "pt") as f:
        kwargs = json.loads(f.metadata()["kwargs"])
    tensors = load_file(str(path))
    model = compat.KAGNRDNet(**kwargs)
    model.load_state_dict({k[len("state.") :]: v for k, v in tensors.items() if k.startswith("state.")}, strict=True)
    model.eval()
    torch.testing.assert_close(model(tensors["input"]), tensors["output"], rtol=1e-4, atol=1e-5)


class _Planted:
    """A pickle that, if unpickled with full pickle, creates a file (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_checkpoint_path_is_loaded_without_running_code(tmp_path: Path) -> None:
    marker, checkpoint = tmp_path / "ran", tmp_path / "evil.pt"
    torch.save({"weights": _Planted(marker)}, checkpoint)
    with pytest.raises(Exception, match="Weights only load failed"):
        compat.KAGNRDNet(8, (8,), (1,), is_downsample_block=(False,), checkpoint_path=str(checkpoint))
    assert not marker.exists()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"family": "nope"}, ValueError, "family must be one of"),
        ({"num_blocks": (1, 1, 1)}, ValueError, "must be non-empty and of equal length, got 1, 3, 1, 1"),
        ({"block_types": ("dense",)}, ValueError, "block_types entries must be 'block' or 'ese', got 'dense'"),
        ({"drop_path_rate": 1.0}, ValueError, r"drop_path_rate must be a number in \[0, 1\), got 1.0"),
        ({"drop_path_rate": "0.1"}, ValueError, r"drop_path_rate must be a number in \[0, 1\), got '0.1'"),
        ({"ls_init_value": -1}, ValueError, r"ls_init_value must be a finite number >= 0 .*, got -1"),
        ({"ls_init_value": "1e-6"}, ValueError, r"ls_init_value must be a finite number >= 0 .*, got '1e-6'"),
        ({"num_classes": -1}, ValueError, "num_classes must be an integer >= 0, got -1"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    config = {"growth_rates": (8,), "num_blocks": (1,), "downsample": (False,), "block_types": ("block",)}
    with pytest.raises(error, match=match):
        RDNet(**{**config, "num_init_features": 8, **kwargs})


def test_compat_rejects_unknown_block_types() -> None:
    with pytest.raises(ValueError, match="block_type entries must be one of"):
        compat.KAGNRDNet(8, (8,), (1,), is_downsample_block=(None,), block_type="Bottleneck")
