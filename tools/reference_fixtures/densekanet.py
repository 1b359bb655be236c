"""Write reference fixtures for ``kanconvs.compat``'s DenseKANet factories (``tests/test_models_densekanet.py``).

For each tiny configuration below this builds torch-conv-kan's factory model with a fixed seed, perturbs its
parameters (so that one-initialised affine norms and zero-initialised coefficients are checked too), gives the
BatchNorm layers non-trivial running statistics with a few training-mode passes, and writes
``tests/fixtures/reference/densekanet_<config>.safetensors`` holding ``state.<key>`` (the reference ``state_dict``),
``input``, ``output`` (the reference's eval-mode output) and metadata ``factory`` and ``kwargs`` (JSON).

The reference is not part of kanconvs; point ``--reference`` at a torch-conv-kan checkout (timm etc. importable)::

    PYTHONPATH=/tmp/refdeps python tools/reference_fixtures/densekanet.py --reference /tmp/refcode
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

_SMALL = {"growth_rate": 2, "num_init_features": 4}
# name -> (factory, kwargs after (input_channels, num_classes), input shape). KALN uses a batch of one: the
# reference min-max scales over the whole batch, kanconvs per sample; they agree only then.
CONFIGS: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]] = {
    "tiny_kagn": ("tiny_densekagnet", {**_SMALL, "degree": 2, "groups": 2}, (2, 3, 32, 32)),
    "tiny_kagn_l1": ("tiny_densekagnet", {**_SMALL, "degree": 2, "l1_decay": 1e-4}, (2, 3, 32, 32)),
    "tiny_kan": ("tiny_densekanet", {**_SMALL, "grid_size": 3, "spline_order": 2}, (2, 3, 32, 32)),
    "tiny_kaln": ("tiny_densekalnet", {**_SMALL, "degree": 2}, (1, 3, 32, 32)),
    "tiny_kagn_bn": ("tiny_densekagnet_bn", {**_SMALL, "degree": 2, "dropout_linear": 0.1}, (2, 3, 32, 32)),
}


def build_fixture(module: Any, factory: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> dict[str, Any]:
    torch.manual_seed(0)
    model = getattr(module, factory)(shape[1], 3, **kwargs)
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
    tensors = {f"state.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tensors.update(input=x.contiguous(), output=y.detach().contiguous())
    return tensors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="a torch-conv-kan checkout")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference"
    )
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of the configurations")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.reference.resolve()))
    module = importlib.import_module("models.densekanet")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.configs.split(","):
        factory, kwargs, shape = CONFIGS[name]
        tensors = build_fixture(module, factory, kwargs, shape)
        path = args.out / f"densekanet_{name}.safetensors"
        meta = {"factory": factory, "kwargs": json.dumps(kwargs), "input_channels": str(shape[1]), "num_classes": "3"}
        save_file(tensors, str(path), metadata=meta)
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
