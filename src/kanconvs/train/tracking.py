"""Metric logging: always a JSONL (and optionally CSV) file in the run directory, plus Accelerate's trackers
(TensorBoard, Weights & Biases — set ``WANDB_MODE=offline`` to log without an account or network)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

__all__ = ["RunLogger", "format_table"]


class RunLogger:
    """Writes epoch records to ``metrics.jsonl`` / ``metrics.csv`` (main process only) and forwards every record to
    ``accelerator.log``."""

    def __init__(self, accelerator: Any, directory: Path, trackers: list[str]) -> None:
        self.accelerator, self.directory = accelerator, directory
        self.jsonl = directory / "metrics.jsonl" if "jsonl" in trackers else None
        self.csv = directory / "metrics.csv" if "csv" in trackers else None
        self.rows: list[dict[str, Any]] = []

    def log(self, record: dict[str, Any], step: int, kind: str = "epoch") -> None:
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float))}
        self.accelerator.log({f"{kind}/{k}": v for k, v in scalars.items()}, step=step)
        if not self.accelerator.is_main_process:
            return
        if self.jsonl is not None:
            with self.jsonl.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"kind": kind, "step": step, **record}) + "\n")
        if self.csv is not None and kind == "epoch":
            self.rows.append(record)
            columns = list(dict.fromkeys(k for row in self.rows for k in row))  # evaluation epochs add columns
            with self.csv.open("w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=columns)
                writer.writeheader()
                writer.writerows(self.rows)


def format_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    """A plain-text table of ``rows`` (numbers with 4 significant digits), for the end-of-run summary."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.4g}"
        return "" if value is None else str(value)

    table = [columns] + [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)) for r in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
