"""Write reference fixtures for ``kanconvs.compat``'s ResKANet (``tests/test_models_reskanet.py`` reads them).

For each tiny configuration below this builds torch-conv-kan's model with a fixed seed, perturbs its parameters
(so that one/zero-initialised norms are checked too), fills BatchNorm running statistics with a few training-mode
passes, rounds every state tensor and the input to bfloat16 values (stored as bfloat16: half the bytes, no loss;
the test widens them back to float32), and writes ``tests/fixtures/reference/reskanet_<config>.safetensors``
holding ``state.<key>`` (the reference's ``state_dict``), ``input`` and ``output`` (the reference's eval-mode
output), with metadata ``builder`` (the reference class or factory) and ``kwargs`` (JSON; ``"block"`` names a
block class, ``"nn.X"`` a torch class). It also writes ``reskanet_layouts.json``: the ``state_dict`` key → shape
of full-size networks that are too large to store.

The reference is not part of kanconvs; point ``--reference`` at a torch-conv-kan checkout::

    PYTHONPATH=/tmp/refdeps python tools/reference_fixtures/reskanet.py --reference /tmp/refcode
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

OUT = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "reference"
_TINY = {"layers": [1, 1, 1, 1], "num_classes": 3, "use_first_maxpool": False, "fcnv_kernel_size": 3,
         "fcnv_stride": 1, "fcnv_padding": 1, "groups": 8, "degree": 1}  # fmt: skip
# name -> (reference class or factory, kwargs, input shape). KALN uses a batch of one: the reference min-max scales
# over the whole batch, kanconvs per sample; they agree only then.
CONFIGS: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]] = {
    "kagn": ("ResKANet", {"block": "KAGNBasicBlock", **_TINY, "affine": True}, (2, 3, 12, 12)),
    # the stem's InstanceNorm (the reference ignored norm_layer there), max-pool, L1 wrappers (".module.")
    "kaln_l1": (
        "ResKANet",
        {"block": "KALNBasicBlock", **_TINY, "use_first_maxpool": True, "l1_decay": 1e-4, "affine": True},
        (1, 3, 32, 32),
    ),
    "kagn_bn": ("ResKANet", {"block": "BottleneckKAGNBasicBlock", **_TINY, "degree": 2}, (2, 3, 12, 12)),
}
LAYOUTS = [("reskagnet50", 1000), ("reskagnet_bn50", 1000), ("reskalnet_101x64p", 10)]


def decode(kwargs: dict[str, Any], blocks: Any) -> dict[str, Any]:
    """JSON kwargs → constructor kwargs: ``"block"`` is a class of ``blocks``, ``"nn.X"`` is ``torch.nn.X``."""
    out = dict(kwargs)
    for key, value in kwargs.items():
        if key == "block":
            out[key] = getattr(blocks, value)
        elif isinstance(value, str) and value.startswith("nn."):
            out[key] = getattr(torch.nn, value[3:])
    return out


def build_fixture(builder: Any, kwargs: dict[str, Any], shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = builder(**kwargs)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
        model.train()
        for _ in range(3):  # non-trivial BatchNorm running statistics
            model(torch.randn(max(2, shape[0]), *shape[1:]))
        model.eval()
        state = model.state_dict()
        for value in state.values():  # bfloat16 values: stored losslessly in half the bytes
            if value.is_floating_point():
                value.copy_(value.to(torch.bfloat16))
        x = torch.randn(shape).to(torch.bfloat16)
        y = model(x.float())
    tensors = {f"state.{k}": (v.to(torch.bfloat16) if v.is_floating_point() else v).contiguous()
               for k, v in state.items()}  # fmt: skip
    tensors.update(input=x.contiguous(), output=(y[0] if isinstance(y, tuple) else y).detach().contiguous())
    return tensors


def write(module: Any, prefix: str, configs: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, (builder, kwargs, shape) in configs.items():
        tensors = build_fixture(getattr(module, builder), decode(kwargs, module), shape)
        path = out / f"{prefix}_{name}.safetensors"
        save_file(tensors, str(path), metadata={"builder": builder, "kwargs": json.dumps(kwargs)})
        print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")


def import_reference(path: Path, module: str) -> Any:
    sys.path.insert(0, str(path.resolve()))
    return importlib.import_module(module)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True, help="a torch-conv-kan checkout")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    reskanet = import_reference(args.reference, "models.reskanet")
    write(reskanet, "reskanet", CONFIGS, args.out)
    layouts = {}
    for name, num_classes in LAYOUTS:
        with torch.device("meta"):
            model = getattr(reskanet, name)(3, num_classes)
        layouts[name] = {"num_classes": num_classes, "state": {k: list(v.shape) for k, v in model.state_dict().items()}}
    path = args.out / "reskanet_layouts.json"
    path.write_text(json.dumps(layouts, separators=(",", ":")))
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
