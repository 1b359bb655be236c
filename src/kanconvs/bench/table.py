"""The seed documents' comparison table: every (family, depth, norm) cell trained with one recipe, then tabulated.

Each cell is a ``simple_<family>_<depth>`` network trained by :class:`kanconvs.train.Trainer` with the seed's recipe
(AdamW lr 1e-4, weight decay 1e-5, ExponentialLR 0.975 per epoch, batch 128, the dataset's seed augmentations,
bf16 on a GPU) unless overridden. Results go to ``<output>/cells/<cell>.json`` as each cell finishes, so an
interrupted bench resumes where it stopped; each records the :func:`fingerprint` of its settings (dataset, recipe,
overrides), and a re-run with other settings refuses a cell done with the old ones rather than report it. The table
(Markdown and CSV), plots (PNG, with matplotlib) and a Markdown report are rebuilt from those files, atomically.

Eval time is measured after training, on the validation split, with 2 warm-up batches and CUDA synchronisation:
once over the loader (data loading included) and once over batches already on the device (model only).

With ``int8=True`` each trained cell is also quantised to static int8 (:func:`kanconvs.quant.quantize_int8`,
calibrated on a few training batches) and evaluated on the CPU: its validation top-1 and its model-only eval time,
next to the fp32 model's eval time on the same CPU in the same run.
"""

from __future__ import annotations

import copy
import csv
import itertools
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .._io import atomic_savefig, atomic_write, atomic_write_text
from ._common import command_line, machine, synchronize, version

_LOGGER = logging.getLogger(__name__)

__all__ = ["NORMS", "Cell", "cell_config", "fingerprint", "finished_rows", "plan_cells", "run_bench", "write_outputs"]

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


def plan_cells(families: Sequence[str], depths: Sequence[int], norms: Sequence[str] | None = None) -> list[Cell]:
    """Every requested cell, without duplicates (conv and WavKAN have a fixed BatchNorm: ``batch`` only, plus
    ``batch-l1`` for WavKAN when asked). Without ``norms`` each family gets its model's default
    (:func:`kanconvs.models.baselines.default_norm`: BatchNorm for KACN, instance norm for the others)."""
    from ..models import list_models
    from ..models.baselines import default_norm

    unknown = sorted(set(norms or ()) - set(NORMS))
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
                chosen = [n for n in norms or () if n in ("batch", "batch-l1")] or ["batch"]
            else:
                chosen = list(norms) if norms else [default_norm(family)]
            cells += [Cell(family, depth, n) for n in dict.fromkeys(chosen)]
    return cells


def _families() -> set[str]:
    from ..models import list_models

    return {n.split("_")[1] for n in list_models("simple_*")}


def _eval_time(trainer: Any, batches: int = 20) -> tuple[float, float]:
    """Milliseconds per validation image: (with data loading, model only)."""
    model, loader, device = trainer.model, trainer.val_loader, trainer.accelerator.device
    model.eval()
    cached: list[torch.Tensor] = []
    with torch.no_grad():
        for i, (x, _) in enumerate(loader):  # warm-up, and the batches for the model-only timing
            if i < 2:
                model(x)
            if len(cached) < batches:
                cached.append(x)
        synchronize(device)
        start, seen = time.perf_counter(), 0
        for x, _ in loader:
            model(x)
            seen += x.shape[0]
        synchronize(device)
        with_data = (time.perf_counter() - start) / max(seen, 1) * 1000
    return with_data, _model_time(model, cached, device)


def _model_time(model: torch.nn.Module, cached: Sequence[torch.Tensor], device: torch.device) -> float:
    """Milliseconds per image of forward passes over ``cached`` batches (already on ``device``), after 2 warm-ups."""
    model.eval()
    with torch.no_grad():
        for x in cached[:2]:
            model(x)
        synchronize(device)
        start = time.perf_counter()
        for x in cached:
            model(x)
        synchronize(device)
    return (time.perf_counter() - start) / max(sum(x.shape[0] for x in cached), 1) * 1000


def _int8_eval(trainer: Any, calibration: int = 4, batches: int = 20) -> dict[str, Any]:
    """Static int8 on CPU: quantise a CPU copy of the trained model (calibrated on ``calibration`` training
    batches), then its validation top-1 and the model-only eval time of the int8 and the fp32 model on CPU."""
    from ..quant import model_size_bytes, quantize_int8

    trained = trainer.ema.module if trainer.ema is not None else trainer.unwrapped  # what evaluate() scores
    fp32 = copy.deepcopy(trained).float().cpu().eval()
    cpu = torch.device("cpu")
    row: dict[str, Any] = {"int8_engine": torch.backends.quantized.engine, "cpu_threads": torch.get_num_threads()}
    try:
        calib = [x.cpu().float() for x, _ in itertools.islice(trainer.train_loader, calibration)]
        int8 = quantize_int8(fp32, calib)
    except (ValueError, TypeError, RuntimeError) as err:  # one unquantisable model must not lose the trained cell
        _LOGGER.warning(f"  int8: not quantised: {err}")
        return {**row, "int8_error": str(err)}
    hits = {"fp32": 0, "int8": 0}
    seen = 0
    cached: list[torch.Tensor] = []
    with torch.no_grad():
        for x, y in trainer.val_loader:
            x, y = x.cpu().float(), y.cpu()
            for name, model in (("fp32", fp32), ("int8", int8)):
                hits[name] += int((model(x).argmax(1) == y).sum())
            seen += y.shape[0]
            if len(cached) < batches:
                cached.append(x)
    return {
        **row, "val_top1_int8": hits["int8"] / max(seen, 1), "val_top1_fp32_cpu": hits["fp32"] / max(seen, 1),
        "eval_ms_per_image_int8_cpu": _model_time(int8, cached, cpu),
        "eval_ms_per_image_fp32_cpu": _model_time(fp32, cached, cpu),
        "model_bytes_fp32": model_size_bytes(fp32), "model_bytes_int8": model_size_bytes(int8),
        "int8_calibration_batches": len(calib),
    }  # fmt: skip


def _diverged(history: list[dict[str, Any]], num_classes: int) -> str:
    losses = [r.get("train_loss") for r in history]
    if any(v is None or not math.isfinite(v) for v in losses):
        return "NaN loss"
    final = history[-1].get("val_top1")
    if final is not None and final < 1.5 / num_classes:
        return "near chance"
    return ""


def train_seconds(history: Sequence[dict[str, Any]], samples_per_epoch: int) -> float:
    """Seconds in the training loop over the whole run, resumes included: each epoch's ``train_s``; epochs logged
    before the trainer recorded it are estimated from their throughput (``samples_per_epoch / images_per_s``)."""
    total = 0.0
    for record in history:
        if record.get("train_s") is not None:
            total += record["train_s"]
        elif record.get("images_per_s"):
            total += samples_per_epoch / record["images_per_s"]
    return total


def cell_config(cell: Cell, output: Path, overrides: Sequence[str], recipe: str | Path | None = None) -> Any:
    """The training config of ``cell``: ``recipe``, then the cell's model, then ``overrides``."""
    from ..train import load_config

    cfg = load_config(recipe, [
        f"model.name={cell.model}", "trackers=[jsonl,csv]", "checkpoint.keep_last=1",
        *(f"model.kwargs.{k}={v}" for k, v in cell.model_kwargs().items()), *overrides,
    ])  # fmt: skip
    cfg.output_dir = str(output / "runs" / cell.name)
    return cfg


def fingerprint(cfg: Any) -> dict[str, Any]:
    """The settings a cell's result depends on (:func:`kanconvs.train.config.config_fingerprint`, with how long it
    trains and what it is evaluated on); stored in the cell's JSON, so that a re-run with other settings does not
    take an old result for its own."""
    from ..train.config import config_fingerprint

    return config_fingerprint(cfg, include=("epochs", "max_steps", "eval_every", "data.val_limit"))


def _check_done(cell: Cell, path: Path, expected: dict[str, Any]) -> bool:
    """Whether ``cell`` is done (``path`` exists); ``ValueError`` if it was trained with other settings than
    ``expected`` (results without a fingerprint, from older versions, count as done)."""
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError, AttributeError) as err:
        raise ValueError(f"cannot read the result of cell {cell.name} in {path}: {err}") from None
    if stored is None or stored == expected:
        return True
    keys = sorted(k for k in {*stored, *expected} if stored.get(k) != expected.get(k))
    diffs = ", ".join(f"{k} {stored.get(k)!r} -> {expected.get(k)!r}" for k in keys[:4])
    more = f" and {len(keys) - 4} more" if len(keys) > 4 else ""
    raise ValueError(
        f"cell {cell.name} in {path.parent.parent} was trained with other settings ({diffs}{more}): use another "
        f"output folder (--output), or delete {path} to train it again"
    )


def run_cell(
    cell: Cell, output: Path, overrides: Sequence[str], int8: bool = False, recipe: str | Path | None = None
) -> dict[str, Any]:
    """Train and measure one cell (``int8``: also its static int8 version on CPU, see :func:`_int8_eval`); returns
    its result row (also written to ``cells/<cell>.json``, with the :func:`fingerprint` of its config). ``recipe``:
    the training config the cell starts from (a YAML file or shipped name, e.g. ``"bench-seed"``; ``None``: the
    defaults), then the cell's model, then ``overrides``."""
    from ..train import Trainer
    from ..train.checkpoint import latest_checkpoint

    cfg = cell_config(cell, output, overrides, recipe)
    settings = fingerprint(cfg)
    # a cell interrupted mid-training continues from its last checkpoint
    cfg.resume = latest_checkpoint(Path(cfg.output_dir) / "checkpoints") is not None
    trainer = Trainer(cfg)
    summary = trainer.fit()
    eval_data, eval_model = _eval_time(trainer)
    history = list(summary["history"])
    if summary["final"] and (not history or summary["final"] is not history[-1]):  # an epoch max_steps cut short
        history.append(summary["final"])
    vals = [r["val_top1"] for r in history if r.get("val_top1") is not None]
    params = sum(p.numel() for p in trainer.unwrapped.parameters())
    row = {
        "model": cell.model, "family": cell.family, "depth": cell.depth, "norm": cell.norm.split("-")[0],
        "affine": cell.norm != "instance",
        "l1": cell.model_kwargs().get("weight_l1", 0.0), "setting": cell.norm,
        "val_top1_best": max(vals) if vals else None, "val_top1_final": vals[-1] if vals else None,
        "params": params, "eval_ms_per_image_with_data": eval_data, "eval_ms_per_image_model": eval_model,
        "train_time_s": train_seconds(history, len(trainer.train_loader.dataset)),
        "images_per_s": history[-1].get("images_per_s") if history else None,
        "epochs": len(history), "diverged": _diverged(history, trainer.num_classes), "history": history,
        # where and how the cell ran (a resumed bench may mix machines)
        "machine": machine(trainer.accelerator.device), "torch": torch.__version__, "kanconvs": version(),
        "command": command_line(), "fingerprint": settings,
    }  # fmt: skip
    if int8:
        row.update(_int8_eval(trainer))
    # atomic: a half-written result never counts as done
    atomic_write_text(output / "cells" / f"{cell.name}.json", json.dumps(row, indent=1))
    return row


def run_bench(
    cells: Sequence[Cell], output: Path, overrides: Sequence[str] = (), int8: bool = False,
    recipe: str | Path | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Run every cell not already done (``cells/<cell>.json`` exists), rebuild the outputs over every finished cell
    in ``output`` and return the rows of ``cells``; ``int8``: quantise each newly trained cell to static int8 and
    evaluate it on CPU too (cells done earlier keep what they have).

    ``ValueError``, before anything is trained, if a done cell was trained with other settings (dataset, recipe,
    overrides: its :func:`fingerprint`) than this call's: its result would not be this call's.
    """
    settings = {c: fingerprint(cell_config(c, output, overrides, recipe)) for c in cells}
    todo = [c for c in cells if not _check_done(c, output / "cells" / f"{c.name}.json", settings[c])]
    output.mkdir(parents=True, exist_ok=True)
    spent: list[float] = []  # seconds per cell run here, for the estimate of what is left
    for i, cell in enumerate(cells, 1):
        if cell not in todo:
            _LOGGER.info(f"[{i}/{len(cells)}] {cell.name}: done earlier, skipped")
            continue
        _LOGGER.info(f"[{i}/{len(cells)}] {cell.name} ({cell.model}) ...")
        started = time.perf_counter()
        row = run_cell(cell, output, overrides, int8=int8, recipe=recipe)
        spent.append(time.perf_counter() - started)
        left = len(todo) - len(spent)
        eta = f", about {_duration(left * sum(spent) / len(spent))} for the {left} left" if left else ""
        final, best = row.get("val_top1_final"), row.get("val_top1_best")
        accuracy = "no evaluation"
        if final is not None and best is not None:
            accuracy = f"final {100 * final:.2f} % (best {100 * best:.2f} %)"
        _LOGGER.info(f"[{i}/{len(cells)}] {cell.name}: {accuracy}, {_duration(spent[-1])}{eta}")
    rows = finished_rows(output, cells)
    write_outputs(rows, output)
    return rows[: len(cells)]  # every cell is finished now, and finished_rows puts them first, in order


def finished_rows(output: Path, cells: Sequence[Cell] = ()) -> list[dict[str, Any]]:
    """Every finished cell under ``output`` (a bench folder filled by several commands reports all of them):
    ``cells`` first, in their order, then the others by name."""
    order = {c.name: i for i, c in enumerate(cells)}
    paths = sorted((output / "cells").glob("*.json"), key=lambda p: (order.get(p.stem, len(order)), p.stem))
    return [json.loads(p.read_text()) for p in paths]


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


COLUMNS = [
    ("model", "model"), ("setting", "norm setting"), ("val_top1_best", "val acc best"),
    ("val_top1_final", "val acc final"), ("params", "params"), ("eval_ms_per_image_with_data", "eval ms/img (data)"),
    ("eval_ms_per_image_model", "eval ms/img (model)"), ("val_top1_int8", "int8 val acc"),
    ("eval_ms_per_image_int8_cpu", "int8 eval ms/img (CPU)"), ("eval_ms_per_image_fp32_cpu", "fp32 eval ms/img (CPU)"),
    ("train_time_s", "train s"), ("images_per_s", "train img/s"), ("norm", "norm"), ("affine", "affine"), ("l1", "L1"),
    ("diverged", "diverged"),
]  # fmt: skip


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "—"
    if key.startswith("val_top1"):
        return f"{100 * value:.2f} %"
    if key == "params":
        return f"{value:,}"
    if isinstance(value, float):  # eval times: 3 significant digits (per-image times are often well below 1 ms)
        return f"{value:.3g}" if key == "l1" or key.startswith("eval_ms") else f"{value:.1f}"
    return str(value)


def write_outputs(rows: list[dict[str, Any]], output: Path) -> None:
    """``table.md``, ``table.csv``, the PNG plots (if matplotlib is installed) and ``report.md``."""
    header = "| " + " | ".join(t for _, t in COLUMNS) + " |"
    lines = [header, "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(k, r.get(k)) for k, _ in COLUMNS) + " |" for r in rows]
    table = "\n".join(lines) + "\n"
    atomic_write_text(output / "table.md", table)

    def write_csv(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=[k for k, _ in COLUMNS])
            writer.writeheader()
            writer.writerows({k: r.get(k) for k, _ in COLUMNS} for r in rows)

    atomic_write(output / "table.csv", write_csv)
    plots = _plot(rows, output)
    report = ["# KA convolution benchmark", "", table]
    report += [
        "Eval time: milliseconds per validation image after 2 warm-up batches, with CUDA synchronisation; "
        "'data' times a pass over the loader (loading and transforms included), 'model' only forward passes over "
        "batches already loaded. 'train s': seconds in the training loop, summed over epochs and resumes (evaluation "
        "excluded). 'diverged' flags a NaN training loss or a final accuracy below 1.5× chance.",
        "",
    ]
    for key, label in (("command", "Command"), ("machine", "Machine"), ("torch", "PyTorch"), ("kanconvs", "kanconvs")):
        values = list(dict.fromkeys(str(r[key]) for r in rows if r.get(key)))
        if values:
            report.append(f"{label}: " + "; ".join(f"`{v}`" if key == "command" else v for v in values) + "  ")
    report.append("")
    int8 = [r for r in rows if r.get("val_top1_int8") is not None]
    if int8:
        first = int8[0]
        report += [
            f"Int8 ({len(int8)} of {len(rows)} cells): static post-training quantisation "
            "(`kanconvs.quant.quantize_int8`) calibrated on "
            f"{first.get('int8_calibration_batches', '?')} training batches, PyTorch's quantized CPU kernels (engine "
            f"{first.get('int8_engine', '?')}): convolutions and the linear head in int8, the KA basis features, "
            "norms and activations in fp32. 'int8 val acc' is its validation top-1; 'int8 eval ms/img (CPU)' and "
            "'fp32 eval ms/img (CPU)' time the int8 and the fp32 model on the CPU (torch threads: "
            f"{first.get('cpu_threads', '?')}) in the same run, model only, as 'eval ms/img (model)'. '—': not "
            "measured (cell run without --int8).",
            "",
        ]
    report += [f"![{p.stem}]({p.name})\n" for p in plots]
    atomic_write_text(output / "report.md", "\n".join(report))


def _plot(rows: list[dict[str, Any]], output: Path) -> list[Path]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        _LOGGER.warning("matplotlib is not installed: no plots (pip install 'kanconvs[plots]')")
        return []
    paths = []
    # one panel per family (its depths and norm settings as lines): the curves of 20+ cells in one axis are unreadable
    families = list(dict.fromkeys(r["family"] for r in rows))
    cols = min(len(families), 3)
    nrows = math.ceil(len(families) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.3 * nrows), sharex=True, sharey=True, squeeze=False)
    for ax, family in zip(axes.flat, families, strict=False):
        for r in (r for r in rows if r["family"] == family):
            epochs = [h["epoch"] for h in r["history"]]
            (line,) = ax.plot(
                epochs,
                [h.get("val_top1") for h in r["history"]],
                marker="o",
                label=f"{r['depth']} layers {r['setting']}",
            )
            ax.plot(epochs, [h.get("train_top1") for h in r["history"]], linestyle="--", color=line.get_color())
        ax.set_title(family)
        ax.legend(fontsize=7)
    for ax in axes.flat[len(families) :]:
        ax.set_visible(False)
    for col in range(cols):  # x labels under the lowest visible panel of each column
        bottom = axes[nrows - 1 if (nrows - 1) * cols + col < len(families) else nrows - 2, col]
        bottom.set_xlabel("epoch")
        bottom.xaxis.set_tick_params(labelbottom=True)
        bottom.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[:, 0]:
        ax.set_ylabel("top-1 accuracy")
    fig.suptitle("accuracy per epoch (solid: validation, dashed: training)")
    paths.append(output / "curves.png")
    fig.tight_layout()
    atomic_savefig(fig, paths[-1], dpi=120)
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
        atomic_savefig(fig, paths[-1], dpi=120)
        plt.close(fig)
    return paths
