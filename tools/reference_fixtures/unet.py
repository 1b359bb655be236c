"""Write reference fixtures for ``kanconvs.compat``'s U-Nets (``tests/test_models_unet.py`` reads them).

As ``reskanet.py`` (same file format), for torch-conv-kan's ``models/ukanet.py``: writes
``tests/fixtures/reference/unet_<config>.safetensors``::

    PYTHONPATH=/tmp/refdeps python tools/reference_fixtures/unet.py --reference /tmp/refcode
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reskanet import OUT, import_reference, write

# UKANet with BatchNorm: in eval mode it uses running statistics, so the 2×2 deepest level does not amplify
# rounding differences the way InstanceNorm over 4 pixels does. Two blocks in the first level keep the reference's
# bug (the second block built with the block defaults, InstanceNorm) in the layout.
CONFIGS: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]] = {
    "ukanet_kagn": (
        "UKANet",
        {
            "block": "KAGNBasicBlock",
            "layers": [2, 1, 1, 1],
            "num_classes": 2,
            "groups": 8,
            "fcnv_kernel_size": 3,
            "fcnv_padding": 1,
            "degree": 1,
            "norm_layer": "nn.BatchNorm2d",
            "affine": True,
        },
        (2, 3, 16, 16),
    ),
    "ukagnet_bottleneck": (
        "UKAGNet",
        {"num_classes": 2, "unet_depth": 2, "unet_layers": 2, "degree": 2},
        (2, 3, 12, 12),
    ),
    "ukagnet_kagn": (
        "UKAGNet",
        {"num_classes": 2, "unet_depth": 2, "unet_layers": 1, "degree": 1, "use_bottleneck": False},
        (2, 3, 12, 12),
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="a torch-conv-kan checkout")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    write(import_reference(args.reference, "models.ukanet"), "unet", CONFIGS, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
