"""Write reference fixtures for the U²-KANet models (``tests/test_models_u2kanet.py`` reads them).

For each tiny configuration below this builds torch-conv-kan's model (or residual U-block) with a fixed seed,
perturbs its parameters (so that one-initialised affine norms and zero-initialised coefficients are checked too),
gives the BatchNorm layers non-trivial running statistics with a few training-mode passes, and writes
``tests/fixtures/reference/u2kanet_<config>.safetensors`` holding ``state.<key>`` (the reference ``state_dict``),
``input``, ``output`` (the reference's eval-mode output; the seven maps of a model, stacked) and metadata
``factory``, ``kwargs`` and, for a block, ``conv`` (the options of its ``kagn_conv3x3``; all JSON, ``norm_layer``
by class name).

Batch norms keep the deep fixtures exact: instance norms over the 1×1 and 2×2 maps of the innermost levels
amplify rounding differences chaotically. The reference is not part of kanconvs; point ``--reference`` at a
torch-conv-kan checkout (timm etc. importable)::

    PYTHONPATH=/tmp/refdeps python tools/reference_fixtures/u2kanet.py --reference /tmp/refcode
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

# name -> (factory, kwargs after (input_channels, num_classes), input shape): the plain network (whole-model
# wiring; groups > 1, and dropout shifts the plain blocks' indices). Every KA-family U²-Net has thousands of keys,
# so the KA layers are checked in single residual U-blocks, below.
CONFIGS: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]] = {
    "net_small": ("u2net_small", {"groups": 4, "dropout": 0.1}, (1, 3, 32, 32)),
}
# name -> (block class, kwargs, conv_func options of ``model_utils.kagn_conv3x3``, input shape). l1_decay exercises
# the L1 wrapper's keys, groups the per-group layout.
BLOCKS: dict[str, tuple[str, dict[str, Any], dict[str, Any], tuple[int, ...]]] = {
    "rsu7_kagn": (
        "ResidualUNetBase",
        {"depth": 7, "in_ch": 3, "mid_ch": 4, "out_ch": 4},
        {"degree": 2, "groups": 1, "l1_decay": 0.01, "norm_layer": "BatchNorm2d", "affine": True},
        (1, 3, 32, 32),
    ),
    "rsu4f_kagn": (
        "ResidualUNetBaseF",
        {"depth": 4, "in_ch": 4, "mid_ch": 4, "out_ch": 4},
        {"degree": 3, "groups": 2, "norm_layer": "InstanceNorm2d", "affine": True},
        (2, 4, 12, 12),
    ),
}


def _reference_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: getattr(torch.nn, v) if k == "norm_layer" else v for k, v in kwargs.items()}


def _run(model: torch.nn.Module, shape: tuple[int, ...]) -> dict[str, Any]:
    """Perturb the parameters, fill BatchNorm statistics, and record the state, an input and the eval output."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
        model.train()
        for _ in range(3):
            model(torch.randn(4, *shape[1:]))
        model.eval()
        x = torch.randn(shape)
        y = model(x)
        y = torch.stack(y) if isinstance(y, tuple) else y
    tensors = {f"state.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tensors.update(input=x.contiguous(), output=y.detach().contiguous())
    return tensors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="a torch-conv-kan checkout")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.reference.resolve()))
    module = importlib.import_module("models.u2kanet")
    conv3x3 = importlib.import_module("models.model_utils").kagn_conv3x3
    args.out.mkdir(parents=True, exist_ok=True)
    fixtures: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    for name, (factory, kwargs, shape) in CONFIGS.items():
        torch.manual_seed(0)
        model = getattr(module, factory)(shape[1], 1, **kwargs)
        fixtures[name] = _run(model, shape), {"factory": factory, "kwargs": json.dumps(kwargs)}
    for name, (cls, kwargs, conv, shape) in BLOCKS.items():
        torch.manual_seed(0)
        model = getattr(module, cls)(partial(conv3x3, **_reference_kwargs(conv)), **kwargs)
        fixtures[name] = _run(model, shape), {"factory": cls, "kwargs": json.dumps(kwargs), "conv": json.dumps(conv)}
    for name, (tensors, meta) in fixtures.items():
        path = args.out / f"u2kanet_{name}.safetensors"
        save_file(tensors, str(path), metadata=meta)
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
