"""What the README promises about models: every architecture takes the bottleneck and mixture-of-experts families,
and ``min_input_size`` is the true smallest input (a real forward passes there and fails one pixel below)."""

from __future__ import annotations

import pytest
import torch

from kanconvs.models import create_model, min_input_size

ARCHITECTURES = {  # one model per architecture, with what MoE needs where the default norm keeps running stats
    "simple_kagn_4": {},
    "reskanet18": {},
    "reskanet18_x32p": {"norm_layer": "instance"},
    "vggkan11": {},
    "densekanet_tiny": {"norm_layer": "instance"},
    "ukagnet": {"norm_layer": "instance"},
    "u2kanet_small": {},
    "rdnet_kan_tiny": {},
}


@pytest.mark.parametrize("family", ["bottleneck_kagn", "moe_kaln", "moe_bottleneck_kagn"])
@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_takes_bottleneck_and_moe_families(name: str, family: str) -> None:
    with torch.device("meta"):  # structure only: no memory for the larger MoE models
        model = create_model(name, family=family, **ARCHITECTURES[name])
    kinds = {type(m).__name__ for m in model.modules()}
    expected = "MoE" if family.startswith("moe") else "Bottleneck"
    assert any(k.startswith(expected) for k in kinds), sorted(kinds)


@pytest.mark.parametrize("family", ["bottleneck_kagn", "moe_kaln"])
def test_simple_baselines_train_with_bottleneck_and_moe_layers(family: str) -> None:
    model = create_model("simple_kagn_4", family=family, widths=[4, 8, 8, 8], in_channels=1, num_classes=10)
    out = model(torch.randn(2, 1, 12, 12))
    out.sum().backward()
    assert out.shape == (2, 10) and all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_moe_refuses_batchnorm_with_a_message_naming_the_norm() -> None:
    with torch.device("meta"), pytest.raises(ValueError, match=r"norm_layer: .*BatchNorm2d with running statistics"):
        create_model("densekanet_tiny", family="moe_kaln")


def test_min_input_size_is_the_real_smallest_input() -> None:
    model = create_model("simple_kagn_4", widths=[4, 8, 8, 8], in_channels=1, num_classes=10)
    need = min_input_size(model, 1)
    assert need == 5  # three stride-2 stages leave 1×1 maps below 5×5, and InstanceNorm needs more than one element
    model(torch.randn(2, 1, need, need))
    with pytest.raises(ValueError, match="spatial element"):
        model(torch.randn(2, 1, need - 1, need - 1))
    assert next(model.parameters()).device.type == "cpu"  # probing left the model where it was
