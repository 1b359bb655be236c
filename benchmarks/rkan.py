"""RKANet-50 beside ResNet-50: training and inference throughput measured in one run, interleaved.

Each round times every model in turn (training steps: forward, cross-entropy, backward, SGD step; inference:
forward under ``no_grad`` in eval mode), after warm-up, with CUDA synchronisation; the median over rounds is
reported, with each model's time relative to the first (the baseline).

Examples:
    python benchmarks/rkan.py                                   # CUDA, batch 128, 224×224, AMP bf16
    python benchmarks/rkan.py --device cpu --batch-size 2 --size 64 --rounds 2 --steps 1 --warmup 1  # smoke test
    python benchmarks/rkan.py --models resnet50,rkan_resnet50,rkan_resnet50_2xl,rkan_resnet50_4xl
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision
from torch import nn

import kanconvs.rkan  # noqa: F401  (registers the rkan_* models)
from kanconvs import create_model


def build(name: str, num_classes: int) -> nn.Module:
    if name.startswith("rkan"):
        return create_model(name, num_classes=num_classes)
    return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)


def timer(device: torch.device) -> Callable[[], float]:
    def now() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    return now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="resnet50,rkan_resnet50", help="comma-separated; the first is the baseline")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved measurement rounds")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps per model before the rounds")
    parser.add_argument("--amp", choices=["none", "bf16", "fp16"], default=None, help="autocast (bf16 on CUDA)")
    parser.add_argument("--channels-last", action="store_true", help="use the channels_last memory format")
    parser.add_argument("--compile", action="store_true", help="torch.compile every model")
    parser.add_argument("--threads", type=int, default=None, help="CPU intra-op threads")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    amp = args.amp or ("bf16" if device.type == "cuda" else "none")
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.backends.cudnn.benchmark = True
    names = args.models.split(",")
    x = torch.randn(args.batch_size, 3, args.size, args.size, device=device).to(memory_format=fmt)
    y = torch.randint(0, 1000, (args.batch_size,), device=device)
    now = timer(device)

    models, optims, params = {}, {}, {}
    for name in names:
        model = build(name, 1000).to(device, memory_format=fmt)
        params[name] = sum(p.numel() for p in model.parameters())
        models[name] = torch.compile(model) if args.compile else model
        optims[name] = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train(name: str, steps: int) -> None:
        model, opt = models[name], optims[name]
        model.train()
        for _ in range(steps):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    @torch.no_grad()
    def infer(name: str, steps: int) -> None:
        model = models[name]
        model.eval()
        for _ in range(steps):
            with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                model(x)

    results: dict[str, dict[str, float]] = {}
    for mode, fn in (("train", train), ("infer", infer)):
        for name in names:
            fn(name, args.warmup)
        times: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(args.rounds):
            for name in names:
                start = now()
                fn(name, args.steps)
                times[name].append((now() - start) / args.steps)
        for name in names:
            results.setdefault(name, {})[mode] = statistics.median(times[name])

    base = names[0]
    print(
        f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
        f"batch={args.batch_size}, size={args.size}, amp={amp}, channels_last={args.channels_last}, "
        f"compile={args.compile}, rounds={args.rounds}×{args.steps} steps (median)"
    )
    print(f"| model | params (M) | train img/s | train time vs {base} | infer img/s | infer time vs {base} |")
    print("|---|---|---|---|---|---|")
    for name in names:
        r, b = results[name], results[base]
        print(
            f"| {name} | {params[name] / 1e6:.2f} | {args.batch_size / r['train']:.0f} | "
            f"{r['train'] / b['train'] - 1:+.1%} | {args.batch_size / r['infer']:.0f} | "
            f"{r['infer'] / b['infer'] - 1:+.1%} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
