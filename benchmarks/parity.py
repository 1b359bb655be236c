"""Accuracy parity with the reference: its 4-layer MNIST baselines against ``kanconvs.compat``'s, same recipe.

    python benchmarks/parity.py --reference-dir .reference --families conv,kagn,kacn --seeds 0,1,2 \
        --output reports/parity-fashion-mnist/results --markdown reports/parity-fashion-mnist/README.md

Both implementations are trained by the same plain loop on a fixed Fashion-MNIST subset (the first ``--train``
images of a seed-0 shuffle, 20,000 by default), for ``--epochs`` epochs (4) of batch 128 with AdamW (lr 1e-4,
weight decay 1e-5), fp32, no augmentation, and scored on the 10,000 test images after every epoch; the table
reports the **final** epoch, mean and spread over seeds. Per seed, both networks are built after
``torch.manual_seed(seed)`` and see the same batch order. Each finished run is saved as
``<output>/<family>-<impl>-seed<k>.json`` and skipped when the command is re-run (resumable). The reference is
imported from ``--reference-dir`` (a torch-conv-kan checkout you fetched; never part of this repository).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from kanconvs import compat
from kanconvs.bench.vs_reference import MODEL_FAMILIES, Reference, reference_dir
from kanconvs.data import build_transforms, create_dataset

WIDTHS = (32, 64, 128, 256)  # the seed's; --widths narrows them where a CPU cannot afford them


def _tensors(split: str, limit: int | None) -> tuple[Tensor, Tensor]:
    ds = create_dataset("fashion-mnist", split, limit=limit, seed=0, transform=build_transforms("fashion-mnist", False))
    xs, ys = zip(*(ds[i] for i in range(len(ds))), strict=True)  # type: ignore[arg-type]
    return torch.stack(xs), torch.tensor(ys)


SAME_INIT = "ours-same-init"  # the control: ours, started from the reference's initial weights of the same seed


def _build(impl: str, family: str, reference: Reference, widths: tuple[int, ...] = WIDTHS) -> nn.Module:
    spec = MODEL_FAMILIES[family]
    kwargs = {"num_classes": 10, "input_channels": 1, **spec.kwargs[4]}
    if impl == "reference":
        return reference.attribute(f"models.baselines.{spec.module}", spec.names[4])(list(widths), **kwargs)
    # SAME_INIT: the reference's network first, right after the seed as in its own run: its initial weights
    initial = _build("reference", family, reference, widths).state_dict() if impl == SAME_INIT else None
    ours: nn.Module = getattr(compat, spec.names[4])(list(widths), **kwargs)
    if initial is not None:
        ours.load_state_dict(initial)
    return ours


def _widths(r: dict[str, Any]) -> tuple[int, ...]:
    return tuple(r.get("widths", WIDTHS))  # runs saved before --widths existed used the seed's


def _groups(results: list[dict[str, Any]], impl: str) -> dict[tuple[str, tuple[int, ...]], list[dict[str, Any]]]:
    """The runs of each (family, widths) that has a run of ``impl``, in order of appearance."""
    keys = dict.fromkeys((r["family"], _widths(r)) for r in results if r["impl"] == impl)
    return {(f, w): [r for r in results if r["family"] == f and _widths(r) == w] for f, w in keys}


def _model_name(family: str, widths: tuple[int, ...]) -> str:
    return MODEL_FAMILIES[family].names[4] + ("" if widths == WIDTHS else f" ({'/'.join(map(str, widths))})")


def _run_path(output: Path, family: str, impl: str, seed: int, widths: tuple[int, ...]) -> Path:
    tag = "" if widths == WIDTHS else "-w" + "-".join(map(str, widths))
    return output / f"{family}{tag}-{impl}-seed{seed}.json"


def _width_list(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) != 4 or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected four positive channel counts like 32,64,128,256, got {text!r}")
    return widths


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    model.eval()
    hits = sum(int((model(x[i : i + 500]).argmax(1) == y[i : i + 500]).sum()) for i in range(0, len(x), 500))
    return hits / len(x)


def train_one(model: nn.Module, data: tuple[Tensor, Tensor, Tensor, Tensor], seed: int, epochs: int) -> dict[str, Any]:
    x, y, xt, yt = data  # on the training device
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-5)
    order = torch.Generator().manual_seed(seed)
    curve, started = [], time.perf_counter()
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(x), generator=order).split(128):  # the order is drawn on the CPU
            batch = batch.to(x.device)
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        curve.append(_accuracy(model, xt, yt))
    params = sum(p.numel() for p in model.parameters())
    return {"test_top1": curve, "final": curve[-1], "params": params, "seconds": time.perf_counter() - started}


def _summary(results: list[dict[str, Any]], command: str, train: int, epochs: int) -> str:
    lines = [
        "# Accuracy parity: the reference's 4-layer baselines vs kanconvs.compat, same recipe",
        "",
        f"Command: `{command}`  ",
        f"Machine of this summary: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}; each "
        "run's own device is in its JSON (`device`), and both runs of a (family, seed) pair use the same one",
        "",
        f"Fashion-MNIST, a fixed {train:,}-image training subset, {epochs} epochs, batch 128, AdamW lr 1e-4 "
        "(weight decay 1e-5), "
        "fp32, no augmentation; test accuracy on the 10,000 test images at the **final** epoch, mean ± standard "
        "deviation over seeds (both implementations see the same batch order per seed). Seconds per run include "
        "the four test evaluations; runs were interleaved with other work on the machine, so they are indicative.",
        "",
        "| family | model | params (ours / ref) | seeds | ours final | reference final | ours − ref (paired ± sd) "
        "| per seed (ours / ref) | s per run (ours / ref) |",
        "|:---|:---|---:|---:|---:|---:|---:|:---|---:|",
    ]
    for (family, widths), mine in _groups(results, "ours").items():
        ours = {r["seed"]: r for r in mine if r["impl"] == "ours"}
        ref = {r["seed"]: r for r in mine if r["impl"] == "reference"}
        seeds = sorted(set(ours) & set(ref))
        if not seeds:
            continue
        a, b = [100 * ours[s]["final"] for s in seeds], [100 * ref[s]["final"] for s in seeds]

        def stat(v: list[float]) -> str:
            return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f} %" if len(v) > 1 else f"{v[0]:.2f} %"

        per_seed = ", ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(a, b, strict=True))
        name = _model_name(family, widths)
        params = f"{ours[seeds[0]]['params']:,} / {ref[seeds[0]]['params']:,}"
        d = [x - y for x, y in zip(a, b, strict=True)]  # paired: same seed, same batch order
        diff = f"{statistics.mean(d):+.2f} ± {statistics.stdev(d):.2f}" if len(d) > 1 else f"{d[0]:+.2f}"
        seconds = "{:.0f} / {:.0f}".format(*(statistics.mean(r[s]["seconds"] for s in seeds) for r in (ours, ref)))
        cells = [family, name, params, str(len(seeds)), stat(a), stat(b), diff, per_seed, seconds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, *_control(results)]) + "\n"


def _control(results: list[dict[str, Any]]) -> list[str]:
    """The ``--same-init`` runs beside the reference's runs of the same seed: whatever differs between them is the
    implementation (and floating-point rounding), not the random draw of the initial weights."""
    rows = []
    for (family, widths), mine in _groups(results, SAME_INIT).items():
        same = {r["seed"]: 100 * r["final"] for r in mine if r["impl"] == SAME_INIT}
        ref = {r["seed"]: 100 * r["final"] for r in mine if r["impl"] == "reference"}
        name = _model_name(family, widths)
        for seed in sorted(set(same) & set(ref)):
            rows.append(f"| {family} | {name} | {seed} | {same[seed]:.2f} % | {ref[seed]:.2f} % | "
                        f"{same[seed] - ref[seed]:+.2f} |")  # fmt: skip
    if not rows:
        return []
    return [
        "",
        "Control (`--same-init`): ours started from the reference's initial weights of the same seed (loaded into the "
        "compat network), then the same recipe and batch order; final epoch.",
        "",
        "| family | model | seed | ours, reference's init | reference | difference |",
        "|:---|:---|---:|---:|---:|---:|",
        *rows,
    ]


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-dir", type=reference_dir, required=True)
    parser.add_argument("--families", default="conv,kan,fastkan,kaln,kacn,kagn,wavkan")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--train", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument(
        "--widths", type=_width_list, default=WIDTHS,
        help="the four layers' channels, on both sides (default: the seed's 32,64,128,256)",
    )  # fmt: skip
    parser.add_argument("--output", type=Path, default=Path("runs/parity"))
    parser.add_argument("--markdown", type=Path, default=None)
    default_device = "cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--device", default=default_device, help="where to train (default: cuda when available)")
    parser.add_argument(
        "--same-init", action="store_true",
        help="the control: train ours from the reference's initial weights of each seed (beside the reference's run)",
    )  # fmt: skip
    parser.add_argument("--notes", type=Path, default=None, help="Markdown appended under the table (the reading)")
    parser.add_argument(
        "--report-only", action="store_true",
        help="train nothing: tabulate the runs already in --output (every seed found) for --families",
    )  # fmt: skip
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    families = args.families.split(",")
    unknown = sorted(set(families) - set(MODEL_FAMILIES))
    if unknown:
        parser.error(f"--families: unknown {unknown}; expected among {sorted(MODEL_FAMILIES)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.report_only:
        found = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(args.output.glob("*-seed*.json"))]
        paired = {(r["family"], _widths(r), r["seed"]) for r in found if r["impl"] == "ours"} & {
            (r["family"], _widths(r), r["seed"]) for r in found if r["impl"] == "reference"
        }
        results = [r for r in found if r["family"] in families and (r["family"], _widths(r), r["seed"]) in paired]
        results.sort(key=lambda r: (families.index(r["family"]), [-w for w in _widths(r)], r["seed"], r["impl"]))
        return _write(results, args, argv)
    args.output.mkdir(parents=True, exist_ok=True)
    x, y = (t.to(device) for t in _tensors("train", args.train))
    xt, yt = (t.to(device) for t in _tensors("test", None))
    results = []
    with Reference(args.reference_dir) as reference:
        for family in families:
            for seed in seeds:
                for impl in (SAME_INIT if args.same_init else "ours", "reference"):
                    path = _run_path(args.output, family, impl, seed, args.widths)
                    if not path.is_file():
                        torch.manual_seed(seed)
                        model = _build(impl, family, reference, args.widths).to(device)
                        torch.manual_seed(seed)
                        row = {"family": family, "impl": impl, "seed": seed, "widths": list(args.widths),
                               "device": _device_name(device),
                               **train_one(model, (x, y, xt, yt), seed, args.epochs)}  # fmt: skip
                        path.write_text(json.dumps(row), encoding="utf-8")
                        print(f"{family} {impl} seed {seed}: final {100 * row['final']:.2f} % "
                              f"({row['seconds']:.0f} s)", flush=True)  # fmt: skip
                    results.append(json.loads(path.read_text(encoding="utf-8")))
    return _write(results, args, argv)


def _write(results: list[dict[str, Any]], args: argparse.Namespace, argv: list[str] | None) -> int:
    command = "python benchmarks/parity.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = _summary(results, command, args.train, args.epochs)
    if args.notes is not None:
        text += "\n" + args.notes.read_text(encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
