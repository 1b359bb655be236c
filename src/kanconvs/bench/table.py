"""The seed documents' comparison table: every (family, depth, norm) cell trained with one recipe, then tabulated.

Each cell is a ``simple_<family>_<depth>`` network trained by :class:`kanconvs.train.Trainer` with the seed's recipe
(AdamW lr 1e-4, weight decay 1e-5, ExponentialLR 0.975 per epoch, batch 128, the dataset's seed augmentations,
bf16 on a GPU) unless overridden. Results go to ``<output>/cells/<cell>.json`` as each cell finishes, so an
interrupted bench resumes where it stopped; the table (Markdown and CSV), plots (PNG, with matplotlib) and a
Markdown report are rebuilt from those files.

Eval time is measured after training, on the validation split, with 2 warm-up batches and CUDA synchronisation:
once over the loader (data loading included) and once over batches already on the device (model only).
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ._common import synchronize

__all__ = ["NORMS", "Cell", "plan_cells", "run_bench", "write_outputs"]

#: The seed table's norm settings: model overrides of ``simple_<family>_<depth>``.
NORMS: dict[str, dict[str, Any]] = {
    "instance": {"norm": "instance"},
    "instance-affine": {"norm": "instance-affine"},
    "batch": {"norm": "batch"},
    "batch-l1": {"norm": "batch", "weight_l1": 1e-5},
}
_FIXED_NORM = ("conv", "wavkan")  # their baselines always use BatchNorm: one cell per depth


@dataclass(frozen=True)
class Cell:
    family: str
    depth: int
    norm: str

    @property
    def name(self) -> str:
        return f"{self.family}-{self.depth}-{self.norm}"

    @property
    def model(self) -> str:
        return f"simple_{self.family}_{self.depth}"

    def model_kwargs(self) -> dict[str, Any]:
        if self.family in _FIXED_NORM:
            return {"weight_l1": 1e-5} if self.norm == "batch-l1" and self.family != "conv" else {}
        return dict(NORMS[self.norm])


def plan_cells(families: Sequence[str], depths: Sequence[int], norms: Sequence[str]) -> list[Cell]:
    """Every requested cell, without duplicates (conv and WavKAN have a fixed BatchNorm: ``batch`` only, plus
    ``batch-l1`` for WavKAN when asked)."""
    from ..models import list_models

    unknown = sorted(set(norms) - set(NORMS))
    if unknown:
        raise ValueError(f"norms must be among {sorted(NORMS)}, got {unknown}")
    cells: list[Cell] = []
    for family in families:
        for depth in depths:
            if f"simple_{family}_{depth}" not in list_models():
                raise ValueError(
                    f"no baseline 'simple_{family}_{depth}': families {sorted(_families())}, depths 4 or 8"
                )
            if family == "conv":
                chosen = ["batch"]
            elif family in _FIXED_NORM:  # WavKAN: always BatchNorm, with its L1 variant when asked
                chosen = [n for n in norms if n in ("batch", "batch-l1")] or ["batch"]
            else:
                chosen = list(norms)
            cells += [Cell(family, depth, n) for n in dict.fromkeys(chosen)]
    return cells


def _families() -> set[str]:
    from ..models import list_models

    return {n.split("_")[1] for n in list_models("simple_*")}


def _eval_time(trainer: Any, batches: int = 20) -> tuple[float, float]:
    """Milliseconds per validation image: (with data loading, model only)."""
    model, loader, device = trainer.model, trainer.val_loader, trainer.accelerator.device
    model.eval()

    def sync() -> None:
        synchronize(device)

    cached: list[torch.Tensor] = []
    with torch.no_grad():
        for i, (x, _) in enumerate(loader):  # warm-up, and the batches for the model-only timing
            if i < 2:
                model(x)
            if len(cached) < batches:
                cached.append(x)
        sync()
        start, seen = time.perf_counter(), 0
        for x, _ in loader:
            model(x)
            seen += x.shape[0]
        sync()
        with_data = (time.perf_counter() - start) / max(seen, 1) * 1000
        sync()
        start = time.perf_counter()
        for x in cached:
            model(x)
        sync()
        model_only = (time.perf_counter() - start) / max(sum(x.shape[0] for x in cached), 1) * 1000
    return with_data, model_only


def _diverged(history: list[dict[str, Any]], num_classes: int) -> str:
    losses = [r.get("train_loss") for r in history]
    if any(v is None or not math.isfinite(v) for v in losses):
        return "NaN loss"
    final = history[-1].get("val_top1")
    if final is not None and final < 1.5 / num_classes:
        return "near chance"
    return ""


def run_cell(cell: Cell, output: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """Train and measure one cell; returns its result row (also written to ``cells/<cell>.json``)."""
    from ..train import Trainer, load_config

    cfg = load_config(None, [
        f"model.name={cell.model}", "trackers=[jsonl,csv]", "checkpoint.keep_last=1",
        *(f"model.kwargs.{k}={v}" for k, v in cell.model_kwargs().items()), *overrides,
    ])  # fmt: skip
    cfg.output_dir = str(output / "runs" / cell.name)
    cfg.resume = True  # a cell interrupted mid-training continues from its last checkpoint
    started = time.perf_counter()
    trainer = Trainer(cfg)
    summary = trainer.fit()
    train_time = time.perf_counter() - started
    eval_data, eval_model = _eval_time(trainer)
    history = summary["history"]
    vals = [r["val_top1"] for r in history if r.get("val_top1") is not None]
    params = sum(p.numel() for p in trainer.unwrapped.parameters())
    row = {
        "model": cell.model, "family": cell.family, "depth": cell.depth, "norm": cell.norm.split("-")[0],
        "affine": cell.norm != "instance",
        "l1": cell.model_kwargs().get("weight_l1", 0.0), "setting": cell.norm,
        "val_top1_best": max(vals) if vals else None, "val_top1_final": vals[-1] if vals else None,
        "params": params, "eval_ms_per_image_with_data": eval_data, "eval_ms_per_image_model": eval_model,
        "train_time_s": train_time, "images_per_s": history[-1].get("images_per_s") if history else None,
        "epochs": len(history), "diverged": _diverged(history, trainer.num_classes), "history": history,
    }  # fmt: skip
    cells = output / "cells"
    cells.mkdir(parents=True, exist_ok=True)
    tmp = cells / f".{cell.name}.json.tmp"
    tmp.write_text(json.dumps(row, indent=1), encoding="utf-8")
    tmp.replace(cells / f"{cell.name}.json")  # atomic: a half-written result never counts as done
    return row


def run_bench(cells: Sequence[Cell], output: Path, overrides: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Run every cell not already done (``cells/<cell>.json`` exists) and rebuild the outputs."""
    output.mkdir(parents=True, exist_ok=True)
    for i, cell in enumerate(cells, 1):
        done = output / "cells" / f"{cell.name}.json"
        if done.is_file():
            print(f"[{i}/{len(cells)}] {cell.name}: done earlier, skipped", flush=True)
            continue
        print(f"[{i}/{len(cells)}] {cell.name} ({cell.model})", flush=True)
        run_cell(cell, output, overrides)
    rows = [json.loads((output / "cells" / f"{c.name}.json").read_text()) for c in cells]
    write_outputs(rows, output)
    return rows


COLUMNS = [
    ("model", "model"), ("setting", "norm setting"), ("val_top1_best", "val acc best"),
    ("val_top1_final", "val acc final"), ("params", "params"), ("eval_ms_per_image_with_data", "eval ms/img (data)"),
    ("eval_ms_per_image_model", "eval ms/img (model)"), ("train_time_s", "train s"), ("images_per_s", "train img/s"),
    ("norm", "norm"), ("affine", "affine"), ("l1", "L1"), ("diverged", "diverged"),
]  # fmt: skip


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key.startswith("val_top1"):
        return f"{100 * value:.2f} %"
    if key == "params":
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3g}" if key == "l1" else f"{value:.1f}"
    return str(value)


def write_outputs(rows: list[dict[str, Any]], output: Path) -> None:
    """``table.md``, ``table.csv``, the PNG plots (if matplotlib is installed) and ``report.md``."""
    header = "| " + " | ".join(t for _, t in COLUMNS) + " |"
    lines = [header, "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(k, r.get(k)) for k, _ in COLUMNS) + " |" for r in rows]
    table = "\n".join(lines) + "\n"
    (output / "table.md").write_text(table, encoding="utf-8")
    with (output / "table.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[k for k, _ in COLUMNS])
        writer.writeheader()
        writer.writerows({k: r.get(k) for k, _ in COLUMNS} for r in rows)
    plots = _plot(rows, output)
    report = ["# KA convolution benchmark", "", table]
    report += [
        "Eval time: milliseconds per validation image after 2 warm-up batches, with CUDA synchronisation; "
        "'data' times a pass over the loader (loading and transforms included), 'model' only forward passes over "
        "batches already loaded. 'diverged' flags a NaN training loss or a final accuracy below 1.5× chance.",
        "",
    ]
    report += [f"![{p.stem}]({p.name})\n" for p in plots]
    (output / "report.md").write_text("\n".join(report), encoding="utf-8")


def _plot(rows: list[dict[str, Any]], output: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install 'kanconvs[plots]')")
        return []
    paths = []
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
        epochs = [h["epoch"] for h in r["history"]]
        (line,) = ax.plot(
            epochs, [h.get("val_top1") for h in r["history"]], marker="o", label=f"{r['model']} {r['setting']}"
        )
        ax.plot(epochs, [h.get("train_top1") for h in r["history"]], linestyle="--", color=line.get_color())
    ax.set(xlabel="epoch", ylabel="top-1 accuracy", title="accuracy per epoch (solid: val, dashed: train)")
    ax.legend(fontsize=7)
    paths.append(output / "curves.png")
    fig.tight_layout()
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    for key, label, name in (
        ("params", "parameters", "accuracy_vs_params.png"),
        ("eval_ms_per_image_model", "eval ms per image (model only)", "accuracy_vs_eval_time.png"),
    ):
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for r in rows:
            if r.get(key) and r.get("val_top1_best") is not None:
                ax.scatter(r[key], r["val_top1_best"])
                ax.annotate(f"{r['family']}-{r['depth']} {r['setting']}", (r[key], r["val_top1_best"]), fontsize=7)
        ax.set(xscale="log", xlabel=label, ylabel="best val top-1")
        paths.append(output / name)
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
