"""Write reference fixtures for ``kanconvs.compat``'s baselines (``tests/test_compat_baselines.py`` reads them).

For each tiny configuration below this builds torch-conv-kan's model with a fixed seed, perturbs its parameters
(so that zero- and one-initialised norms and coefficients are checked too), fills BatchNorm running statistics with
a few training-mode passes, and writes ``tests/fixtures/reference/baselines_<config>.safetensors`` holding

- ``state.<key>``: the reference's ``state_dict``,
- ``input``: an input batch and ``output``: the reference's eval-mode output on it,
- metadata ``class`` (the reference class name) and ``kwargs`` (its constructor arguments, JSON).

The reference is not part of kanconvs: point ``--reference`` at a checkout of torch-conv-kan (its own dependencies,
e.g. timm, must be importable)::

    PYTHONPATH=/tmp/refdeps python tools/reference_fixtures/baselines.py --reference /tmp/refcode
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

# name -> (reference class, constructor kwargs, input shape). Widths are tiny to keep each file small; groups > 1
# exercises the per-group layout conversion. KALN uses a batch of one: the reference min–max scales over the whole
# batch, kanconvs per sample, which agree only then.
CONFIGS: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]] = {
    "conv4": ("SimpleConv", {"layer_sizes": [4, 8, 8, 12], "num_classes": 3, "groups": 2}, (2, 1, 12, 12)),
    "kagn4": (
        "SimpleConvKAGN",
        {"layer_sizes": [4, 8, 8, 12], "num_classes": 3, "degree": 3, "degree_out": 3, "groups": 2},
        (2, 1, 12, 12),
    ),
    "kagn8_linear_head": (
        "EightSimpleConvKAGN",
        {
            "layer_sizes": [4, 4, 8, 8, 8, 8, 8, 8],
            "input_channels": 2,
            "num_classes": 3,
            "degree": 2,
            "degree_out": 1,
            "groups": 2,
        },
        (2, 2, 12, 12),
    ),
    "kacn4": (
        "SimpleConvKACN",
        {"layer_sizes": [4, 8, 8, 12], "num_classes": 3, "degree": 4, "degree_out": 2, "groups": 2},
        (2, 1, 12, 12),
    ),
    "kan4": (
        "SimpleConvKAN",
        {"layer_sizes": [4, 4, 8, 8], "num_classes": 3, "spline_order": 3, "degree_out": 2, "groups": 2},
        (2, 1, 10, 10),
    ),
    "fastkan4": (
        "SimpleFastConvKAN",
        {"layer_sizes": [4, 4, 8, 8], "num_classes": 3, "grid_size": 4, "degree_out": 2, "groups": 2},
        (2, 1, 10, 10),
    ),
    "kaln4": (
        "SimpleConvKALN",
        {"layer_sizes": [4, 8, 8, 12], "num_classes": 3, "degree": 3, "degree_out": 3, "groups": 2},
        (1, 1, 12, 12),
    ),
    "wavkan4": (
        "SimpleConvWavKAN",
        {"layer_sizes": [4, 4, 8, 8], "num_classes": 3, "degree_out": 1, "groups": 2},
        (2, 1, 10, 10),
    ),
}


def build_fixture(models: Any, cls_name: str, kwargs: dict[str, Any], shape: tuple[int, ...]) -> dict[str, Any]:
    """The tensors of one fixture: reference state (``state.*``), ``input`` and eval-mode ``output``."""
    torch.manual_seed(0)
    model = getattr(models, cls_name)(**kwargs)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:  # leaves fixed grids (FastKAN's RBF centres) alone
                p.add_(0.1 * torch.randn_like(p))
        model.train()
        for _ in range(3):  # non-trivial BatchNorm running statistics
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
    models = importlib.import_module("models")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.configs.split(","):
        cls_name, kwargs, shape = CONFIGS[name]
        tensors = build_fixture(models, cls_name, kwargs, shape)
        path = args.out / f"baselines_{name}.safetensors"
        save_file(tensors, str(path), metadata={"class": cls_name, "kwargs": json.dumps(kwargs)})
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
