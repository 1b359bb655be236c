"""DenseKANet: registered models, reference parameter counts, reference checkpoints, checkpointing, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import kanconvs.compat as compat
from kanconvs.layers.regularization import regularization_loss
from kanconvs.models import DenseKANet, create_model, list_models, save_pretrained

FIXTURES = Path(__file__).parent / "fixtures" / "reference"
NAMES = ["densekanet121", "densekanet161", "densekanet169", "densekanet201", "densekanet_tiny"]
TINY = {"growth_rate": 2, "num_init_features": 4, "block_config": (1, 2), "num_classes": 5}
FAMILIES = ["kagn", "kaln", "kan", "fastkan", "kacn", "bottleneck_kagn", "moe_bottleneck_kagn", "conv"]


def _n(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_registered_names() -> None:
    assert set(NAMES) <= set(list_models("densekanet*"))


def _check_train_step(model: torch.nn.Module, x: torch.Tensor, classes: int, routed_only: bool = False) -> None:
    model.train()
    y = model(x)
    assert y.shape == (x.shape[0], classes) and torch.isfinite(y).all()
    (y.square().mean() + regularization_loss(model)).backward()
    for name, p in model.named_parameters():
        # Top-k routing: an expert that no sample was routed to gets no gradient in this step.
        if routed_only and ".experts." in name:
            continue
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("family", FAMILIES)
def test_families_build_and_train(family: str) -> None:
    model = create_model("densekanet_tiny", family=family, **TINY)
    _check_train_step(model, torch.randn(2, 3, 16, 16), 5, routed_only=family.startswith("moe"))


def test_classifier_contract_and_ndim() -> None:
    model = DenseKANet("kagn", (1, 1), growth_rate=2, num_init_features=4, num_classes=3, ndim=1, degree=2)
    x = torch.randn(2, 3, 32)
    feats = model.forward_features(x)
    assert feats.shape[1] == model.num_features == (4 + 2) // 2 + 2
    assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features) and model.num_classes == 0


def test_memory_efficient_gives_the_same_gradients() -> None:
    x = torch.randn(2, 3, 16, 16)
    grads = []
    for memory_efficient in (False, True):
        torch.manual_seed(1)
        model = create_model("densekanet_tiny", memory_efficient=memory_efficient, **TINY)
        model(x).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("family", ["bottleneck_kagn", "conv"])
def test_memory_efficient_updates_running_stats_once(family: str) -> None:
    # the backward's recomputation of conv1 must not update its BatchNorm a second time
    x = torch.randn(4, 3, 16, 16)
    models, buffers = [], []
    for memory_efficient in (False, True):
        torch.manual_seed(1)
        model = create_model("densekanet_tiny", family=family, memory_efficient=memory_efficient, **TINY).train()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        for _ in range(2):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        models.append(model.eval())
        buffers.append(dict(model.named_buffers()))
    assert any(k.endswith("conv1.norm.num_batches_tracked") for k in buffers[1])
    for key, value in buffers[0].items():
        torch.testing.assert_close(buffers[1][key], value, msg=key)
    with torch.no_grad():
        torch.testing.assert_close(models[1](x), models[0](x))


def test_roundtrips(tmp_path: Path) -> None:
    model = create_model("densekanet_tiny", family="bottleneck_kagn", **TINY).eval()
    x = torch.randn(2, 3, 16, 16)
    copy = create_model("densekanet_tiny", family="bottleneck_kagn", **TINY).eval()
    copy.load_state_dict(model.state_dict())
    torch.testing.assert_close(copy(x), model(x), rtol=0, atol=0)
    save_pretrained(model, tmp_path)
    loaded = create_model("densekanet_tiny", pretrained=tmp_path, family="bottleneck_kagn", **TINY).eval()
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


@pytest.mark.slow
def test_torch_compile() -> None:
    model = create_model("densekanet121", growth_rate=2, num_init_features=4, block_config=(1, 1), num_classes=3)
    x = torch.randn(2, 3, 32, 32)
    model.eval()
    torch.testing.assert_close(torch.compile(model, backend="aot_eager")(x), model(x))


# Parameter counts of torch-conv-kan's factories at their full configurations, computed by running the reference
# (models/densekanet.py at HEAD) under torch.device("meta"): factory(3, 1000) for the 121…201 models, (3, 10) tiny.
REFERENCE_COUNTS = {
    ("densekagnet121", 1000): 32_646_268,
    ("densekagnet161", 1000): 122_312_684,
    ("densekagnet169", 1000): 59_394_364,
    ("densekagnet201", 1000): 84_199_868,
    ("densekalnet121", 1000): 32_645_800,
    ("densekacnet121", 1000): 26_463_720,
    ("densekanet121", 1000): 57_374_237,
    ("densekagnet121bn", 1000): 20_328_876,
    ("tiny_densekagnet", 10): 4_521_548,
    ("tiny_densekalnet", 10): 4_521_420,
    ("tiny_densekacnet", 10): 3_639_600,
    ("tiny_densekanet", 10): 8_048_652,
    ("tiny_densekagnet_bn", 10): 1_527_876,
}


@pytest.mark.parametrize(("factory", "classes"), sorted(REFERENCE_COUNTS))
def test_compat_reference_parameter_counts(factory: str, classes: int) -> None:
    with torch.device("meta"):
        model = getattr(compat, factory)(3, classes)
    assert _n(model) == REFERENCE_COUNTS[(factory, classes)]


@pytest.mark.parametrize("size", ["121", "201"])
def test_clean_counts_equal_the_reference(size: str) -> None:
    with torch.device("meta"):
        model = create_model(f"densekanet{size}")
    assert _n(model) == REFERENCE_COUNTS[(f"densekagnet{size}", 1000)]


def test_clean_tiny_has_a_plain_kan_head() -> None:
    # The reference's KAGN MLP ends with LayerNorm(10) + SiLU on the logits (2·10 parameters); ours is plain.
    with torch.device("meta"):
        model = create_model("densekanet_tiny", num_classes=10)
    assert _n(model) == REFERENCE_COUNTS[("tiny_densekagnet", 10)] - 20


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("densekanet_*.safetensors")), ids=lambda p: p.stem)
def test_reference_checkpoint(path: Path) -> None:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    model = getattr(compat, meta["factory"])(
        int(meta["input_channels"]), int(meta["num_classes"]), **json.loads(meta["kwargs"])
    )
    model.load_state_dict({k[len("state.") :]: v for k, v in tensors.items() if k.startswith("state.")}, strict=True)
    model.eval()
    torch.testing.assert_close(model(tensors["input"]), tensors["output"], rtol=1e-4, atol=1e-5)


def test_compat_moe_returns_the_balance_loss() -> None:
    model = compat.tiny_densekagnet_moebn(3, 4, growth_rate=2, num_init_features=4)
    out, loss = model(torch.randn(2, 3, 16, 16))
    assert out.shape == (2, 4) and loss.ndim == 0 and float(loss.detach()) > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"family": "nope"}, ValueError, "family must be one of"),
        ({"block_config": ()}, ValueError, "block_config must be a non-empty"),
        ({"block_config": (2, 0)}, ValueError, "block_config entries must be a positive integer, got 0"),
        ({"growth_rate": 0}, ValueError, "growth_rate must be a positive integer, got 0"),
        ({"compression": 0.0}, ValueError, r"compression must be a float in \(0, 1\], got 0.0"),
        ({"head": "mlp"}, ValueError, "head must be 'linear', 'kan' or a callable"),
        ({"ndim": 4}, ValueError, "ndim must be 1, 2 or 3, got 4"),
        ({"family": "conv", "weight_l1": 0.1}, ValueError, "weight_l1 needs a KA family, got family='conv'"),
        ({"num_classes": -1}, ValueError, "num_classes must be an integer >= 0, got -1"),
    ],
)
def test_bad_arguments(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        DenseKANet(**{"block_config": (1,), "growth_rate": 2, "num_init_features": 4, **kwargs})
