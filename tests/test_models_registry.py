"""Every registered model, as timm's ``tests/test_models.py`` does it: a name added to the registry is tested here
without a line of test code, in a small configuration given by the first matching pattern of ``SMALL``.

For each: a training step on the CPU (finite outputs of the requested shape, every parameter gets a finite
gradient), the classifier contract, and a ``state_dict`` round trip into a differently initialised twin. Models
that stay large whatever their options (torchvision backbones) are marked ``slow``. Published parameter counts
of the registered names at their defaults close the module. Per-architecture files test what is specific to them.
"""

from __future__ import annotations

import fnmatch
from typing import Any

import pytest
import torch
from torch import nn

from kanconvs import regularization_loss
from kanconvs.layers.attention import KASelfAttentionNd
from kanconvs.models import create_model, list_models

ALL = list_models()
CLASSES = 3

# (name pattern, keyword arguments, input channels, input size); the first match wins. Sizes leave more than one
# value per map before every instance norm.
SMALL: list[tuple[str, dict[str, Any], int, int]] = [
    ("simple_*_4", {"widths": (4, 8, 8, 16)}, 1, 16),
    ("simple_*_8", {"widths": (4, 4, 8, 8, 8, 8, 16, 16)}, 1, 16),
    ("moe_reskanet*", {"layers": (1, 1, 1, 1), "num_experts": 3}, 3, 32),
    ("reskanet*_x32p", {"layers": (1, 1, 1, 1)}, 3, 16),
    ("reskanet*_x64p", {"layers": (1, 1, 1, 1)}, 3, 32),
    ("reskanet*", {"layers": (1, 1, 1, 1)}, 3, 64),
    ("densekanet*", {"growth_rate": 2, "num_init_features": 4, "block_config": (1, 2)}, 3, 32),
    (
        "rdnet_*",
        {
            "num_init_features": 8,
            "growth_rates": (8, 8),
            "num_blocks": (1, 2),
            "downsample": (False, True),
            "block_types": ("block", "ese"),
            "degree": 2,
        },
        3,
        16,
    ),
    ("u2net*", {}, 3, 32),
    ("u2kanet*", {"degree": 2, "norm_layer": "batch", "groups": 4}, 3, 32),
    ("ukanet18", {"layers": (1, 1, 1, 1)}, 3, 32),
    ("ukagnet", {"unet_depth": 3}, 3, 32),
    ("vgg*", {"width_scale": 0.125, "pool_size": 1}, 3, 64),
    ("rkan_resnet18", {"small_stem": True}, 3, 32),
    ("rkanet_e_18", {"small_stem": True}, 3, 32),
    ("tv_resnet18", {"small_stem": True}, 3, 32),
    ("rkan_*", {}, 3, 64),
    ("rkanet_*", {}, 3, 64),
    ("tv_*", {}, 3, 64),
]
# Torchvision backbones at their real sizes (tens to hundreds of millions of parameters).
LARGE = ("rkan_*", "rkanet_*", "tv_*")
SMALL_ENOUGH = ("rkan_resnet18", "rkanet_e_18", "tv_resnet18")
SEGMENTATION = ("u2net*", "u2kanet*", "ukanet18", "ukagnet")
# Classifiers with timm's head interface (forward_features / forward_head / reset_classifier / num_features). The
# RKAN wrappers and plain torchvision models keep the backbone's own head instead.
TIMM_HEAD_EXEMPT = ("rkan_*", "rkanet_*", "tv_*")


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _small(name: str) -> tuple[dict[str, Any], int, int]:
    for pattern, kwargs, channels, size in SMALL:
        if fnmatch.fnmatchcase(name, pattern):
            return kwargs, channels, size
    raise AssertionError(f"no SMALL entry matches {name!r}: add one")


def _param(name: str) -> Any:
    large = _matches(name, LARGE) and name not in SMALL_ENOUGH
    return pytest.param(name, marks=pytest.mark.slow) if large else name


PARAMS = [_param(name) for name in ALL]


def _build(name: str, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    kwargs, channels, size = _small(name)
    torch.manual_seed(seed)
    model = create_model(name, num_classes=CLASSES, in_channels=channels, **kwargs)
    for m in model.modules():
        if isinstance(m, KASelfAttentionNd):  # γ = 0 at init leaves q and k a zero gradient: test them too
            nn.init.constant_(m.gamma, 0.5)
    torch.manual_seed(1234)
    return model, torch.randn(2, channels, size, size)


def _outputs(y: Any) -> list[torch.Tensor]:
    return [y] if isinstance(y, torch.Tensor) else list(y)


def test_every_registered_name_has_a_small_configuration() -> None:
    assert len(ALL) > 100
    for name in ALL:
        _small(name)


@pytest.mark.parametrize("name", PARAMS)
def test_train_step_reaches_every_parameter(name: str) -> None:
    model, x = _build(name)
    outputs = _outputs(model.train()(x))
    for out in outputs:
        expected = (2, CLASSES, *x.shape[2:]) if _matches(name, SEGMENTATION) else (2, CLASSES)
        assert out.shape == expected and torch.isfinite(out).all(), name
    loss = sum(out.float().square().mean() for out in outputs) + regularization_loss(model)
    loss.backward()
    moe = "moe" in name
    for pname, p in model.named_parameters():
        if moe and ".experts." in pname and p.grad is None:  # experts no sample was routed to
            continue
        assert p.grad is not None, f"{name}: {pname} gets no gradient"
        assert torch.isfinite(p.grad).all(), f"{name}: {pname}"


@pytest.mark.parametrize("name", [_param(name) for name in ALL if not _matches(name, SEGMENTATION)])
def test_classifier_contract(name: str) -> None:
    model, x = _build(name)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, CLASSES)
    if _matches(name, TIMM_HEAD_EXEMPT):
        return
    assert model.num_classes == CLASSES
    with torch.no_grad():
        feats = model.forward_features(x)
        pre = model.forward_head(feats, pre_logits=True)
        assert pre.shape == (2, model.num_features)
        torch.testing.assert_close(model.forward_head(feats), logits)
        assert not isinstance(model.get_classifier(), nn.Identity)
        model.reset_classifier(5)
        assert model(x).shape == (2, 5) and model.num_classes == 5
        assert not model.get_classifier().training  # built in the model's eval mode
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features) and model.num_classes == 0
        assert isinstance(model.get_classifier(), nn.Identity)


@pytest.mark.parametrize("name", PARAMS)
def test_state_dict_round_trip(name: str) -> None:
    model, x = _build(name, seed=0)
    twin, _ = _build(name, seed=1)
    state = model.state_dict()
    differs = [k for k, v in twin.state_dict().items() if v.is_floating_point() and not torch.equal(v, state[k])]
    assert differs, f"{name}: two seeds gave the same initialisation"
    twin.load_state_dict(state, strict=True)
    model.eval()
    twin.eval()
    with torch.no_grad():
        for a, b in zip(_outputs(model(x)), _outputs(twin(x)), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------- published counts
# The seed's MNIST baselines (1 input channel, 10 classes; the reference's InstanceNorm without / with affine).
SEED_MNIST = {
    ("simple_conv_4", None): 101_066,
    ("simple_conv_8", None): 1_140_714,
    ("simple_kan_4", "instance"): 3_488_814,
    ("simple_kan_8", "instance"): 40_690_466,
    ("simple_kan_4", "instance-affine"): 3_489_774,
    ("simple_kan_8", "instance-affine"): 40_694_018,
    ("simple_fastkan_4", "instance"): 3_488_810,
    ("simple_fastkan_8", "instance"): 40_690_458,
    ("simple_fastkan_4", "instance-affine"): 3_489_260,
    ("simple_fastkan_8", "instance-affine"): 40_692_988,
    ("simple_kaln_4", "instance"): 1_939_370,
    ("simple_kaln_8", "instance"): 22_608_090,
    ("simple_kaln_4", "instance-affine"): 1_940_330,
    ("simple_kaln_8", "instance-affine"): 22_611_642,
    ("simple_kagn_4", "instance"): 487_866,
    ("simple_kagn_8", "instance"): 22_608_122,
    ("simple_kagn_4", "instance-affine"): 488_826,
    ("simple_kagn_8", "instance-affine"): 22_611_674,
    ("simple_kacn_4", "instance-affine"): 391_754,
    ("simple_kacn_8", "instance-affine"): 18_091_050,
    ("simple_wavkan_4", None): 951_370,
    ("simple_wavkan_8", None): 10_731_562,
}
# RKAN's README (withray/residualKAN), millions: the ImageNet table (1000 classes) and the CIFAR-100 one (100).
RKAN = [
    ("rkan_resnet50", 1000, 27.14),
    ("rkan_resnet50_2xl", 1000, 31.86),
    ("rkan_resnet50_4xl", 1000, 38.15),
    ("rkan_resnet50_6xl", 1000, 44.45),
    ("rkan_densenet169", 1000, 14.89),
    ("rkan_resnet101", 100, 44.28),
    ("rkanet_e_101", 100, 44.68),
    ("rkan_resnet101_2xl", 100, 49.00),
    ("rkan_resnet101_4xl", 100, 55.30),
    ("rkan_resnet101_6xl", 100, 61.60),
    ("rkan_resnext101_32x8d", 100, 88.53),
]


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.filterwarnings("ignore:simple_kacn_. with norm='instance:UserWarning")  # counted, not trained
@pytest.mark.parametrize(("name", "norm"), sorted(SEED_MNIST, key=str))
def test_seed_published_parameter_counts(name: str, norm: str | None) -> None:
    with torch.device("meta"):
        model = create_model(name, **({"norm": norm} if norm else {}))
    assert _count(model) == SEED_MNIST[(name, norm)]


@pytest.mark.parametrize(("name", "num_classes", "millions"), RKAN)
def test_rkan_published_parameter_counts(name: str, num_classes: int, millions: float) -> None:
    with torch.device("meta"):
        model = create_model(name, num_classes=num_classes)
    assert round(_count(model) / 1e6, 2) == millions
