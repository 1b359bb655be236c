"""Trainer overhead: images/s of ``kanconvs.train.Trainer`` beside a plain PyTorch loop doing the same work.

Both train the same registered model on the same dataset, transforms, batch size, optimiser (AdamW) and precision
for ``--epochs`` epochs, in one process, one after the other (plain loop first); each reports the images/s of its
last epoch (data loading included, evaluation and checkpoints excluded), so the first epoch's warm-up (cuDNN
autotuning, worker start-up) is not counted. The trainer's extra work per step: Accelerate's wrappers, per-item
seeded augmentation, the schedule step, the auxiliary-loss collection.

    python benchmarks/trainer_overhead.py --dataset fashion-mnist --model simple_kagn_4 --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F

from kanconvs.bench._common import synchronize
from kanconvs.data import build_transforms, create_dataset, dataset_info
from kanconvs.models import create_model
from kanconvs.train import Trainer, load_config


def plain_loop(args: argparse.Namespace, device: torch.device) -> float:
    """The loop a user would write: DataLoader, autocast, backward, AdamW step. Returns the last epoch's images/s."""
    info = dataset_info(args.dataset)
    torch.manual_seed(0)
    data = create_dataset(args.dataset, "train", data_dir=args.data_dir, limit=args.limit,
                          transform=build_transforms(info, train=True))  # fmt: skip
    loader = torch.utils.data.DataLoader(
        data, batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=args.workers,
        pin_memory=device.type == "cuda", persistent_workers=args.workers > 0,
    )  # fmt: skip
    model = create_model(args.model, in_channels=info.in_channels, num_classes=info.num_classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.mixed_precision)
    rate = 0.0
    for _ in range(args.epochs):
        model.train()
        synchronize(device)
        start, seen = time.perf_counter(), 0
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
                loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            seen += x.shape[0]
        synchronize(device)
        rate = seen / (time.perf_counter() - start)
    return rate


def trainer_loop(args: argparse.Namespace, device: torch.device) -> float:
    overrides = [
        f"data.name={args.dataset}", f"data.batch_size={args.batch_size}", f"data.num_workers={args.workers}",
        f"model.name={args.model}", f"epochs={args.epochs}", f"mixed_precision={args.mixed_precision}",
        "optim.name=adamw", "optim.lr=1e-3", "optim.weight_decay=0", "progress=false", "trackers=[]",
        "checkpoint.best_metric=null", f"cpu={device.type == 'cpu'}", f"output_dir={tempfile.mkdtemp()}",
        "data.val_limit=256",
    ]  # fmt: skip
    if args.data_dir:
        overrides.append(f"data.data_dir={args.data_dir}")
    if args.limit:
        overrides.append(f"data.train_limit={args.limit}")
    summary = Trainer(load_config(None, overrides)).fit()
    return float(summary["history"][-1]["images_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mnist-10k")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--model", default="simple_kagn_4")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="train on a subset of this many images")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default="no")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--markdown", default=None, help="also write the result table to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    plain = plain_loop(args, device)
    ours = trainer_loop(args, device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = [
        f"Trainer overhead — {args.model} on {args.dataset}, batch {args.batch_size}, {args.mixed_precision} "
        f"precision, {args.workers} workers, {name}; images/s of epoch {args.epochs} of {args.epochs}",
        "",
        "| loop | images/s | time vs plain |",
        "|---|---:|---:|",
        f"| plain PyTorch | {plain:.0f} | 1.000 |",
        f"| kanconvs Trainer | {ours:.0f} | {plain / ours:.3f} |",
    ]
    print("\n".join(lines))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
