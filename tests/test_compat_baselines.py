"""kanconvs.compat's baselines: reference signatures, parameter counts and checkpoints (fixtures written by
``tools/reference_fixtures/baselines.py`` from torch-conv-kan's own models)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from kanconvs import compat
from kanconvs.compat.models import baselines
from kanconvs.layers.regularization import regularization_loss

FIXTURES = sorted((Path(__file__).parent / "fixtures" / "reference").glob("baselines_*.safetensors"))
W4 = [32, 64, 128, 256]
W8 = [16, 32, 64, 128, 256, 256, 512, 512]

_COMMON = [("layer_sizes", None), ("num_classes", 10), ("input_channels", 1)]
_TAIL = [("groups", 1), ("dropout", 0.0), ("dropout_linear", 0.0), ("l1_penalty", 0.0)]
_NORM = [("affine", True), ("norm_layer", "BatchNorm2d")]


def _degree(degree_out: int = 3) -> list[tuple[str, Any]]:
    return [*_COMMON, ("degree", 3), ("degree_out", degree_out), *_TAIL, *_NORM]


# inspect.signature of torch-conv-kan's classes as (name, default) pairs; None marks a required parameter and a
# class default is given by its name.
REFERENCE_SIGNATURES: dict[str, list[tuple[str, Any]]] = {
    "SimpleConv": [*_COMMON, ("groups", 1)],
    "EightSimpleConv": [*_COMMON, ("groups", 1)],
    "SimpleConvKAN": [*_COMMON, ("spline_order", 3), ("degree_out", 2), *_TAIL, *_NORM],
    "EightSimpleConvKAN": [*_COMMON, ("spline_order", 3), ("degree_out", 3), *_TAIL, *_NORM],
    "SimpleFastConvKAN": [*_COMMON, ("grid_size", 8), ("degree_out", 2), *_TAIL, *_NORM],
    "EightSimpleFastConvKAN": [*_COMMON, ("grid_size", 8), ("degree_out", 2), *_TAIL, *_NORM],
    "SimpleConvKALN": _degree(),
    "EightSimpleConvKALN": _degree(),
    "SimpleConvKACN": _degree(),
    "EightSimpleConvKACN": _degree(),
    "SimpleConvKAGN": _degree(),
    "EightSimpleConvKAGN": _degree(),
    "SimpleConvWavKAN": [*_COMMON, ("wavelet_type", "mexican_hat"), ("degree_out", 3), *_TAIL],
    "EightSimpleConvWavKAN": [*_COMMON, ("wavelet_type", "mexican_hat"), ("degree_out", 3), *_TAIL],
    "SimpleMoEConvKAGNBN": [*_degree(), ("num_experts", 16), ("noisy_gating", True), ("k", 4)],
    "EightSimpleMoEConvKAGNBN": [*_degree(), ("num_experts", 16), ("noisy_gating", True), ("k", 4)],
}

# sum(p.numel() for p in model.parameters()) of torch-conv-kan's models built with only ``layer_sizes`` (W4 / W8),
# measured by running the reference.
REFERENCE_PARAMS = {
    "SimpleConv": 391_370,
    "EightSimpleConv": 4_531_050,
    "SimpleConvKAN": 3_510_265,
    "EightSimpleConvKAN": 40_734_989,
    "SimpleFastConvKAN": 3_510_292,
    "EightSimpleFastConvKAN": 40_735_044,
    "SimpleConvKALN": 1_950_580,
    "EightSimpleConvKALN": 22_632_132,
    "SimpleConvKACN": 1_560_640,
    "EightSimpleConvKACN": 18_106_400,
    "SimpleConvKAGN": 1_950_600,
    "EightSimpleConvKAGN": 22_632_168,
    "SimpleConvWavKAN": 959_060,
    "EightSimpleConvWavKAN": 10_746_932,
    "SimpleMoEConvKAGNBN": 3_538_073,
    "EightSimpleMoEConvKAGNBN": 29_352_473,
}
# Reference parameters kanconvs does not have, by design:
# - FastKAN: the RBF centres (grid_size = 8 values per layer and in the FastKAN head, degree_out = 2) are a frozen
#   nn.Parameter in the reference and a buffer here;
# - MoE: each layer's outer w_gate and w_noise, (inner width · groups) × 16 each, which the reference never uses
#   (widths 1, 16, 32, 64 for W4; 1, 16, 16, 32, 64, 64, 128, 128 for W8).
NOT_PARAMETERS = {
    "SimpleFastConvKAN": 8 * 5,
    "EightSimpleFastConvKAN": 8 * 9,
    "SimpleMoEConvKAGNBN": 2 * 16 * (1 + 16 + 32 + 64),
    "EightSimpleMoEConvKAGNBN": 2 * 16 * (1 + 16 + 16 + 32 + 64 + 64 + 128 + 128),
}


def _default_name(default: Any) -> Any:
    if default is inspect.Parameter.empty:
        return None
    return default.__name__ if isinstance(default, type) else default


@pytest.mark.parametrize("name", sorted(REFERENCE_SIGNATURES))
def test_reference_signature(name: str) -> None:
    params = inspect.signature(getattr(compat, name)).parameters.values()
    assert [(p.name, _default_name(p.default)) for p in params] == REFERENCE_SIGNATURES[name]


def test_every_reference_name_is_exported() -> None:
    assert set(REFERENCE_SIGNATURES) == set(baselines.__all__)


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_parameter_counts_at_reference_defaults(name: str) -> None:
    with torch.device("meta"):
        model = getattr(compat, name)(W8 if name.startswith("Eight") else W4)
    count = sum(p.numel() for p in model.parameters())
    assert count == REFERENCE_PARAMS[name] - NOT_PARAMETERS.get(name, 0)


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_reference_checkpoint_gives_reference_outputs(path: Path) -> None:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    model = getattr(compat, meta["class"])(**json.loads(meta["kwargs"]))
    model.load_state_dict({k.removeprefix("state."): v for k, v in tensors.items() if k.startswith("state.")})
    with torch.no_grad():
        out = model.eval()(tensors["input"])
    torch.testing.assert_close(out, tensors["output"], atol=1e-5, rtol=1e-5)


def test_fixtures_cover_the_exact_families() -> None:
    assert {p.stem for p in FIXTURES} >= {
        f"baselines_{c}" for c in ("conv4", "kagn4", "kagn8_linear_head", "kacn4", "kaln4", "kan4", "fastkan4")
    }


def test_plain_network_has_the_reference_keys() -> None:
    # torch-conv-kan's SimpleConv: [Conv2d, BatchNorm2d, ReLU] × 4 and a pool in ``layers``, then ``output``.
    keys = set(compat.SimpleConv([4, 4, 8, 8]).state_dict())
    convs = {f"layers.{i}.{p}" for i in (0, 3, 6, 9) for p in ("weight", "bias")}
    norms = {f"layers.{i}.{p}" for i in (1, 4, 7, 10) for p in ("weight", "bias", "running_mean", "running_var")}
    tracked = {f"layers.{i}.num_batches_tracked" for i in (1, 4, 7, 10)}
    assert keys == convs | norms | tracked | {"output.weight", "output.bias"}


TINY: dict[str, dict[str, Any]] = {
    "SimpleConv": {},
    "SimpleConvKAN": {"degree_out": 2},
    "SimpleFastConvKAN": {"degree_out": 1},
    "SimpleConvKALN": {},
    "SimpleConvKACN": {"degree_out": 1},
    "SimpleConvKAGN": {},
    "SimpleConvWavKAN": {},
    "SimpleMoEConvKAGNBN": {"num_experts": 4, "k": 2},
}


@pytest.mark.parametrize("depth", [4, 8])
@pytest.mark.parametrize("name", sorted(TINY))
def test_forward_backward_every_parameter(name: str, depth: int) -> None:
    cls = getattr(compat, name if depth == 4 else "Eight" + name)
    model = cls([4] * depth, num_classes=3, input_channels=2, groups=2, **TINY[name])
    out = model(torch.randn(2, 2, 8, 8))
    logits = out[0] if isinstance(out, tuple) else out
    assert logits.shape == (2, 3) and torch.isfinite(logits).all()
    logits.sum().backward()
    # Mixture-of-experts parameters are stacked, so unrouted experts still get a (zero) gradient.
    assert [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None] == []


def test_l1_penalty_is_an_explicit_loss_on_every_layer_but_the_first() -> None:
    model = compat.SimpleConvKAGN([4, 4, 8, 8], l1_penalty=1e-3)
    wrapped = [model.layers[i] for i in (1, 2, 3)]
    expected = sum(1e-3 * sum(p.abs().sum() for p in layer.parameters()) for layer in wrapped)
    torch.testing.assert_close(regularization_loss(model), torch.as_tensor(expected, dtype=torch.float32))
    assert float(regularization_loss(compat.SimpleConvKAGN([4, 4, 8, 8]))) == 0.0


def test_moe_baseline_returns_the_real_balance_loss() -> None:
    model = compat.SimpleMoEConvKAGNBN([4, 8, 8, 8], num_experts=4, k=1).eval()  # eval: no gating noise
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        _, loss_1 = model(x, loss_coef=1)
        _, loss_2 = model(x, loss_coef=2)
        layer_losses = regularization_loss(model)  # the layers' own loss_coef, 1e-2
    assert float(loss_1) > 0  # the reference's is 0 whatever the routing (moe_loss += moe_loss)
    torch.testing.assert_close(loss_2, 2 * loss_1)
    torch.testing.assert_close(layer_losses, 1e-2 * loss_1)


def test_state_dict_round_trip() -> None:
    model = compat.EightSimpleConvKACN([4] * 8, num_classes=3, dropout=0.2).eval()
    copy = compat.EightSimpleConvKACN([4] * 8, num_classes=3, dropout=0.2).eval()
    copy.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 8, 8)
    torch.testing.assert_close(copy(x), model(x))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: compat.SimpleConvKAGN([4, 8, 8]),
            r"layer_sizes must hold at least 4 positive integers, got \[4, 8, 8\]",
        ),
        (lambda: compat.EightSimpleConv([4] * 7), r"layer_sizes must hold at least 8 positive integers"),
        (lambda: compat.SimpleConvKAN("4488"), r"layer_sizes must hold at least 4 positive integers, got '4488'"),
        (lambda: compat.SimpleConvKACN([4, 0, 8, 8]), r"layer_sizes .* got \[4, 0, 8, 8\]"),
        (lambda: compat.SimpleConvKALN([4] * 4, l1_penalty=-1.0), r"l1_penalty\) must be a number >= 0, got -1.0"),
    ],
)
def test_bad_arguments(call: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def test_l1_wrapper_keeps_the_reference_key_segment() -> None:
    model = compat.SimpleConvWavKAN([4, 4, 8, 8], degree_out=1)
    assert isinstance(model.layers[1], baselines.L1) and isinstance(model.layers[0], nn.Module)
    assert any(k.startswith("layers.1.module.") for k in model.state_dict())
    assert not any(k.startswith("layers.0.module.") for k in model.state_dict())
