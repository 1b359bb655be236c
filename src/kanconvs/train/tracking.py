"""Metric logging: always a JSONL (and optionally CSV) file in the run directory, plus Accelerate's trackers
(TensorBoard, Weights & Biases — set ``WANDB_MODE=offline`` to log without an account or network)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from .._io import atomic_write_text

__all__ = ["RunLogger", "format_table"]


class RunLogger:
    """Writes the epoch records to ``metrics.jsonl`` / ``metrics.csv`` (main process only) and forwards each new
    record to ``accelerator.log``.

    The files are rewritten whole (into a temporary file, then renamed) from the run's history, which travels with
    the checkpoints: after a kill and resume they hold exactly one row per epoch, never rows the killed process
    logged after its last checkpoint, nor only the rows of the resumed process.
    """

    def __init__(self, accelerator: Any, directory: Path, trackers: list[str]) -> None:
        self.accelerator, self.directory = accelerator, directory
        self.jsonl = directory / "metrics.jsonl" if "jsonl" in trackers else None
        self.csv = directory / "metrics.csv" if "csv" in trackers else None
        self.rows: list[dict[str, Any]] = []

    def restore(self, history: list[dict[str, Any]]) -> None:
        """Start from ``history`` (a resumed run's epochs so far) and rewrite the files to hold exactly it."""
        self.rows = list(history)
        self._write()

    def log(self, record: dict[str, Any], step: int) -> None:
        scalars = {k: v for k, v in record.items() if isinstance(v, (int, float))}
        self.accelerator.log({f"epoch/{k}": v for k, v in scalars.items()}, step=step)
        self.rows.append(record)
        self._write()

    def _write(self) -> None:
        if not self.accelerator.is_main_process:
            return
        if self.jsonl is not None:
            lines = [json.dumps({"kind": "epoch", "step": r["step"], **r}) + "\n" for r in self.rows]
            atomic_write_text(self.jsonl, "".join(lines))
        if self.csv is not None:
            columns = list(dict.fromkeys(k for row in self.rows for k in row))  # evaluation epochs add columns
            buffer = io.StringIO()
            writer = csv.DictWriter(buffer, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
            atomic_write_text(self.csv, buffer.getvalue(), newline="")


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
