"""Model registry and the seed baselines: names, errors, norms and the save/load round trips (forward, backward, the
classifier contract and the published counts of every registered model: test_models_registry.py)."""

from __future__ import annotations

import os
import stat

import pytest
import torch

import kanconvs
from kanconvs.models import SimpleKANet, create_model, list_models


def test_registry_lists_and_suggests() -> None:
    assert "simple_kagn_8" in list_models("simple_*_8") and "simple_kagn_4" not in list_models("simple_*_8")
    with pytest.raises(ValueError, match=r"unknown model 'simple_kgan_4'.*did you mean .*'simple_kagn_4'"):
        create_model("simple_kgan_4")
    assert kanconvs.create_model is create_model


def test_norm_settings_and_l1() -> None:
    batch = create_model("simple_kagn_4", norm="batch")
    assert isinstance(batch.features[1].norm, torch.nn.BatchNorm2d)
    with pytest.raises(ValueError, match="norm must be one of"):
        create_model("simple_kagn_4", norm="group")
    with pytest.raises(ValueError, match=r"norm must be one of .* got ''"):
        create_model("simple_kagn_4", norm="")


@pytest.mark.parametrize("name", ["simple_conv_4", "simple_conv_8", "simple_wavkan_4", "simple_wavkan_8"])
def test_fixed_norm_baselines_validate_norm(name: str) -> None:
    with torch.device("meta"):
        for norm in (None, "batch"):  # the batch norm they always have
            model = create_model(name, **({} if norm is None else {"norm": norm}))
            assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        for bad in ("bogus", "instance"):
            with pytest.raises(ValueError, match=rf"{name} always uses batch norm .* got '{bad}'"):
                create_model(name, norm=bad)
    model = create_model("simple_kagn_4", weight_l1=1e-5, widths=(4, 8, 8, 8))
    expected = sum(1e-5 * layer.weight.abs().sum() for layer in list(model.features)[1:])
    torch.testing.assert_close(kanconvs.regularization_loss(model), expected)


@pytest.mark.parametrize("norm", ["instance", "instance-affine"])
def test_kacn_with_instance_norm_cannot_learn_and_says_so(norm: str) -> None:
    """A KACN layer ends in its norm, so after an instance norm the pooled features are the same for every input."""
    x = torch.randn(4, 1, 16, 16)
    with pytest.warns(UserWarning, match=f"simple_kacn_4 with norm='{norm}' cannot learn"):
        dead = create_model("simple_kacn_4", norm=norm, widths=(8, 8, 16, 16))
    pooled = dead.forward_features(x).detach().mean((2, 3))
    assert float(pooled.std(0).max()) < 1e-5  # the same features for every input: logits cannot depend on x
    default = create_model("simple_kacn_4", widths=(8, 8, 16, 16))  # BatchNorm
    assert isinstance(default.features[1].norm, torch.nn.BatchNorm2d)
    assert float(default.forward_features(x).detach().mean((2, 3)).std(0).max()) > 0.1


def test_simple_kanet_errors() -> None:
    with pytest.raises(ValueError, match="widths and strides must be non-empty and of equal length"):
        SimpleKANet("kagn", (8, 16), (1,))
    with pytest.raises(TypeError, match="family 'conv' takes no layer options"):
        SimpleKANet("conv", (8,), (1,), degree=3)
    with pytest.raises(ValueError, match="num_classes must be an integer >= 0"):
        SimpleKANet("kagn", (8,), (1,), num_classes=-1)


def test_save_pretrained_round_trip(tmp_path) -> None:
    pytest.importorskip("safetensors")
    from kanconvs.models import from_pretrained, save_pretrained

    model = create_model("simple_kagn_4", widths=(4, 8, 8, 8), norm="batch", num_classes=5).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    previous = os.umask(0o022)
    try:
        save_pretrained(model, tmp_path / "run")
    finally:
        os.umask(previous)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "model.safetensors"]
    for p in (tmp_path / "run").iterdir():  # the user's umask, not mkstemp's private 0600
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p.name
    loaded = from_pretrained(tmp_path / "run").eval()
    x = torch.randn(2, 1, 12, 12)
    torch.testing.assert_close(loaded(x), model(x))
    again = create_model("simple_kagn_4", widths=(4, 8, 8, 8), norm="batch", num_classes=5,
                         pretrained=tmp_path / "run" / "model.safetensors").eval()  # fmt: skip
    torch.testing.assert_close(again(x), model(x))
    with pytest.raises(RuntimeError, match="size mismatch"):
        create_model("simple_kagn_4", widths=(4, 8, 8, 8), norm="batch", num_classes=6, pretrained=tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no weights at"):
        create_model("simple_kagn_4", pretrained=tmp_path / "missing")
    with pytest.raises(ValueError, match="model has no pretrained_cfg"):
        save_pretrained(torch.nn.Linear(2, 2), tmp_path / "x")


def test_load_weights_reads_torch_files_and_rejects_bad_ones(tmp_path) -> None:
    pytest.importorskip("safetensors")
    from kanconvs.models import load_weights, read_state_dict

    model = create_model("simple_kagn_4", widths=(4, 8, 8, 8), norm="batch", num_classes=5).eval()
    torch.save({"state_dict": model.state_dict(), "epoch": 3}, tmp_path / "pytorch_model.bin")
    fresh = create_model("simple_kagn_4", widths=(4, 8, 8, 8), norm="batch", num_classes=5).eval()
    load_weights(fresh, tmp_path)  # the directory's pytorch_model.bin, unwrapped from "state_dict"
    x = torch.randn(2, 1, 12, 12)
    torch.testing.assert_close(fresh(x), model(x))
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match=r"cannot read weights from .*broken\.safetensors"):
        read_state_dict(tmp_path / "broken.safetensors")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="does not hold a state dict of tensors"):
        read_state_dict(tmp_path / "list.pt")
    torch.save({"w": torch.nn.Linear(2, 2)}, tmp_path / "pickled_module.pt")  # weights_only refuses arbitrary objects
    with pytest.raises(ValueError, match="cannot read weights"):
        read_state_dict(tmp_path / "pickled_module.pt")


def test_from_pretrained_explains_a_foreign_config(tmp_path) -> None:
    from kanconvs.models import from_pretrained

    (tmp_path / "config.json").write_text('{"input_channels": 3, "num_classes": 1000}')
    with pytest.raises(ValueError, match="has no 'architecture' entry"):
        from_pretrained(tmp_path)
