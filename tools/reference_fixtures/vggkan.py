"""Write reference fixtures for the VGG-KAN models (``tests/test_models_vggkan.py`` reads them).

For each tiny configuration below this builds torch-conv-kan's VGG factory model with a fixed seed, perturbs its
parameters (so that one-initialised affine norms and zero-initialised coefficients are checked too), and writes
``tests/fixtures/reference/vggkan_<config>.safetensors`` holding ``state.<key>`` (the reference ``state_dict``),
``input``, ``output`` (the reference's eval-mode output; the first logits for Matryoshka heads) and metadata
``factory`` and ``kwargs`` (JSON). The layer list ``VGGtiny`` is added to the reference's table for this.

It also writes ``vggkan_manifest.json``: for the published Hugging Face checkpoints' configurations at full size,
the reference's parameter count and its ``state_dict`` key → shape.

The reference is not part of kanconvs; point ``--reference`` at a torch-conv-kan checkout (timm etc. importable)::

    PYTHONPATH=/tmp/refdeps python tools/reference_fixtures/vggkan.py --reference /tmp/refcode
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

TINY = [8, "M", 8, "M", 16, 16, "M", 16, 16]
# name -> (factory, kwargs after (input_channels, num_classes), input shape). groups > 1 exercises the per-group
# layout conversion, l1_decay the L1 wrapper's keys. KALN uses a batch of one: the reference min-max scales over
# the whole batch, kanconvs per sample; they agree only then.
CONFIGS: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]] = {
    "kagn_l1": (
        "vggkagn",
        {"degree": 3, "groups": 2, "dropout": 0.1, "l1_decay": 0.01, "affine": True, "expected_feature_shape": [2, 2]},
        (2, 3, 32, 32),
    ),
    "kagn_bn_kan_head": (
        "vggkagn_bn",
        {"degree": 2, "groups": 2, "head_type": "KAN", "affine": True, "expected_feature_shape": [1, 1]},
        (2, 3, 32, 32),
    ),
    "kacn_matryoshka": (
        "vggkacn",
        {"degree": 1, "groups": 4, "head_type": "Matryoshka", "affine": True, "expected_feature_shape": [1, 1]},
        (2, 3, 32, 32),
    ),
    "kaln": ("vggkaln", {"degree": 2, "groups": 2, "affine": True, "expected_feature_shape": [1, 1]}, (1, 3, 32, 32)),
    "wavkan": ("vgg_wav_kan", {"groups": 2, "affine": True, "expected_feature_shape": [1, 1]}, (2, 3, 32, 32)),
    "kan": ("vggkan", {"groups": 4, "grid_size": 3, "expected_feature_shape": [1, 1]}, (2, 3, 32, 32)),
}
# The published checkpoints (brivangl/vgg_kagn11_v2, vgg_kagn11_v4, vgg_kagn_bn11_v4), as torch-conv-kan builds them.
_PUBLISHED = {"groups": 1, "degree": 5, "dropout": 0.15, "l1_decay": 0, "dropout_linear": 0.25, "width_scale": 2}
_PUBLISHED.update(expected_feature_shape=[1, 1], affine=True)
MANIFEST: dict[str, tuple[str, dict[str, Any]]] = {
    "vggkagn11_v2": ("vggkagn", {**_PUBLISHED, "vgg_type": "VGG11v2"}),
    "vggkagn11_v4": ("vggkagn", {**_PUBLISHED, "vgg_type": "VGG11v4"}),
    "vggkagn_bn11_v4": ("vggkagn_bn", {**_PUBLISHED, "vgg_type": "VGG11v4"}),
}


def build_fixture(module: Any, factory: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> dict[str, Any]:
    """The tensors of one fixture: reference state (``state.*``), ``input`` and eval-mode ``output``."""
    torch.manual_seed(0)
    ref_kwargs = {**kwargs, "vgg_type": "VGGtiny", "expected_feature_shape": tuple(kwargs["expected_feature_shape"])}
    model = getattr(module, factory)(shape[1], 5, **ref_kwargs)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
        model.eval()
        x = torch.randn(shape)
        y = model(x)
    y = y[0] if isinstance(y, tuple) else y
    tensors = {f"state.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tensors.update(input=x.contiguous(), output=y.detach().contiguous())
    return tensors


def manifest(module: Any) -> dict[str, Any]:
    out = {}
    for name, (factory, kwargs) in MANIFEST.items():
        with torch.device("meta"):
            model = getattr(module, factory)(3, 1000, **{**kwargs, "expected_feature_shape": (1, 1)})
        out[name] = {
            "factory": factory,
            "kwargs": kwargs,
            "num_params": sum(p.numel() for p in model.parameters()),
            "state": {k: list(v.shape) for k, v in model.state_dict().items()},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="a torch-conv-kan checkout")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference"
    )
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of the configurations")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.reference.resolve()))
    module = importlib.import_module("models.vggkan")
    module.cfgs["VGGtiny"] = TINY
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.configs.split(","):
        factory, kwargs, shape = CONFIGS[name]
        tensors = build_fixture(module, factory, kwargs, shape)
        path = args.out / f"vggkan_{name}.safetensors"
        meta = {"factory": factory, "kwargs": json.dumps({**kwargs, "vgg_type": TINY}), "num_classes": "5"}
        save_file(tensors, str(path), metadata=meta)
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")
    path = args.out / "vggkan_manifest.json"
    path.write_text(json.dumps(manifest(module), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
