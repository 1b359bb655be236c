"""Write reference fixtures for ``kanconvs.compat.KAGNRDNet`` (``tests/test_models_rdnet.py`` reads them).

For each tiny configuration below this builds torch-conv-kan's ``KAGNRDNet`` with a fixed seed, perturbs its
parameters (so the 1e-6 layer scales and zero-initialised coefficients matter), and writes
``tests/fixtures/reference/rdnet_<config>.safetensors`` holding ``state.<key>`` (the reference ``state_dict``),
``input``, ``output`` (the reference's eval-mode output) and metadata ``kwargs`` (JSON constructor arguments).

The reference's depthwise KAGN v2 layer builds an identity "reorder" index, so each depthwise group sees other
channels' basis functions (reference notes §12.2); kanconvs implements the intended channel-major layout. To compare
everything else exactly, this script evaluates the reference with that intended layout: it swaps the v2 layer's
``gram_poly`` for one that returns the same basis functions channel-major.

    PYTHONPATH=/tmp/refdeps python tools/reference_fixtures/rdnet.py --reference /tmp/refcode
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

_SMALL = {
    "num_init_features": 8,
    "growth_rates": [8, 8, 16],
    "num_blocks_list": [1, 2, 1],
    "is_downsample_block": [None, True, False],
    "block_type": ["Block", "BlockESE", "BlockESE"],
    "num_classes": 3,
    "degree": 2,
}
CONFIGS: dict[str, tuple[dict[str, Any], tuple[int, ...]]] = {
    "bottleneck": ({**_SMALL}, (2, 3, 32, 32)),
    "kagn": ({**_SMALL, "is_bottleneck": False, "patch_size": 2}, (2, 3, 16, 16)),
}


def _channel_major(degree_major: Any) -> Any:
    """Wrap the v2 ``gram_poly`` (degree-major ``(B, (D+1)·C, …)``) to return channel-major ``(B, C·(D+1), …)``."""

    def gram_poly(self: Any, x: torch.Tensor, degree: int) -> torch.Tensor:
        basis = degree_major(self, x, degree)
        b, c, *spatial = x.shape
        return basis.view(b, degree + 1, c, *spatial).transpose(1, 2).reshape(b, c * (degree + 1), *spatial)

    return gram_poly


def build_fixture(module: Any, kwargs: dict[str, Any], shape: tuple[int, ...]) -> dict[str, Any]:
    torch.manual_seed(0)
    model = module.KAGNRDNet(in_chans=shape[1], **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
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
    v2 = importlib.import_module("kan_convs.kagn_conv_v2").KAGNConvNDLayerV2
    v2.gram_poly = _channel_major(v2.gram_poly.__wrapped__)  # also bypasses its lru_cache
    module = importlib.import_module("models.kan_rdnet")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.configs.split(","):
        kwargs, shape = CONFIGS[name]
        tensors = build_fixture(module, kwargs, shape)
        path = args.out / f"rdnet_{name}.safetensors"
        save_file(tensors, str(path), metadata={"kwargs": json.dumps({**kwargs, "in_chans": shape[1]})})
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
