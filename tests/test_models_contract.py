"""What every model promises its users beyond its forward pass: ``save_pretrained`` / ``from_pretrained`` save the
model as it is and never leave a mismatched pair, ``create_model``'s ``pretrained`` argument, and timm's
``get_classifier`` / ``reset_classifier``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from kanconvs.models import create_model, from_pretrained, save_pretrained
from test_models_registry import _build

SIMPLE: dict[str, Any] = {"widths": (4, 8, 8, 16), "num_classes": 3}
X1 = torch.randn(2, 1, 16, 16)


def _simple(seed: int, **kwargs: Any) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("simple_kagn_4", **{**SIMPLE, **kwargs}).eval()


def _same_function(a: nn.Module, b: nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.equal(a.eval()(x), b.eval()(x))


# ------------------------------------------------------------------------------------------- save_pretrained
def test_save_pretrained_checks_the_config_before_writing(tmp_path: Path) -> None:
    first = _simple(0)
    save_pretrained(first, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    second = _simple(1, activation=nn.GELU)  # a class: JSON cannot store it
    with pytest.raises(ValueError, match=r"keyword argument activation=.*GELU.*config\.json"):
        save_pretrained(second, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written, no temporary left
    assert _same_function(from_pretrained(tmp_path), first, X1)


def test_from_pretrained_refuses_weights_saved_with_another_config(tmp_path: Path) -> None:
    save_pretrained(_simple(0), tmp_path / "a")
    save_pretrained(_simple(1, activation="gelu"), tmp_path / "b")  # same shapes, another function
    shutil.copy(tmp_path / "a" / "config.json", tmp_path / "b" / "config.json")  # as an interrupted save leaves it
    with pytest.raises(ValueError, match=r"not the config model\.safetensors was saved with"):
        from_pretrained(tmp_path / "b")


def test_save_pretrained_records_the_current_num_classes(tmp_path: Path) -> None:
    model = create_model("reskanet18_x32p", layers=(1, 1, 1, 1), num_classes=100)
    model.reset_classifier(10)
    save_pretrained(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["kwargs"]["num_classes"] == 10
    loaded = from_pretrained(tmp_path)
    assert loaded.num_classes == 10
    assert _same_function(loaded, model, torch.randn(2, 3, 16, 16))
    assert model.pretrained_cfg["kwargs"]["num_classes"] == 100  # the model's own record is left alone


@pytest.mark.parametrize("wrapper", ["compile", "data_parallel", "compiled_submodule"])
def test_save_pretrained_looks_through_wrappers(tmp_path: Path, wrapper: str) -> None:
    from safetensors import safe_open

    model = _simple(0)
    if wrapper == "compile":
        saved: nn.Module = torch.compile(model)  # type: ignore[assignment]  # wrapped, never run
    elif wrapper == "data_parallel":
        saved = nn.DataParallel(model)
    else:
        model.features[1] = torch.compile(model.features[1])  # type: ignore[assignment]
        saved = model
    save_pretrained(saved, tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert keys and not any("_orig_mod" in k or k.startswith("module.") for k in keys)
    assert _same_function(from_pretrained(tmp_path), _simple(0), X1)


# ------------------------------------------------------------------------------------------- create_model
def test_create_model_pretrained_false_is_none_and_true_is_refused() -> None:
    torch.manual_seed(0)
    a = create_model("simple_kagn_4", pretrained=False, **SIMPLE)
    torch.manual_seed(0)
    b = create_model("simple_kagn_4", pretrained=None, **SIMPLE)
    assert _same_function(a, b, X1)
    with pytest.raises(ValueError, match="pretrained=True: kanconvs has no downloadable weights"):
        create_model("simple_kagn_4", pretrained=True)
    with pytest.raises(ValueError, match="pretrained must be a path or None, got an empty path"):
        create_model("simple_kagn_4", pretrained="")
    with pytest.raises(TypeError, match=r"pretrained must be a path .* got 1"):
        create_model("simple_kagn_4", pretrained=1)  # type: ignore[arg-type]


def test_create_model_checks_the_weights_path_before_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kanconvs.models._registry as registry

    built: list[str] = []
    factory = registry._MODELS.get("simple_kagn_4")
    monkeypatch.setitem(registry._MODELS._items, "simple_kagn_4", lambda **kw: built.append("x") or factory(**kw))
    with pytest.raises(FileNotFoundError, match="no weights at"):
        create_model("simple_kagn_4", pretrained=tmp_path / "missing")
    assert not built


# ------------------------------------------------------------------------------------------- classifier
# (model, its classifier's path); built small by the registry tests' table (test_models_registry.SMALL)
CLASSIFIERS = [
    ("simple_kagn_4", "head"),
    ("reskanet18_x32p", "fc"),
    ("densekanet_tiny", "classifier"),
    ("rdnet_kan_tiny", "head.fc"),
    ("vggkan11", "head"),
]


@pytest.mark.parametrize(("name", "where"), CLASSIFIERS, ids=[c[0] for c in CLASSIFIERS])
def test_get_classifier_and_reset_classifier_keep_the_mode(name: str, where: str) -> None:
    model, x = _build(name)
    assert model.get_classifier() is model.get_submodule(where)
    model.eval()
    model.reset_classifier(7)
    classifier = model.get_classifier()
    assert classifier is model.get_submodule(where) and not isinstance(classifier, nn.Identity)
    assert not any(m.training for m in model.modules()), "reset_classifier built a head in training mode"
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 7) and torch.equal(y, model(x))  # no dropout in eval mode
    model.train()
    model.reset_classifier(5)
    assert model.get_classifier().training
    model.reset_classifier(0)
    assert isinstance(model.get_classifier(), nn.Identity) and model.num_classes == 0
