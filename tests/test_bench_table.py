"""`kanconvs bench` end to end on a tiny setting: table, CSV, plots and report hold the run's numbers; resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("accelerate")

from kanconvs.bench.table import plan_cells
from kanconvs.cli import main

TINY = ["--models", "conv,kagn", "--depth", "4", "--norms", "instance,batch-l1", "--epochs", "1",
        "data.train_limit=64", "data.val_limit=32", "data.batch_size=16", "model.kwargs.widths=[4,8,8,8]",
        "progress=false"]  # fmt: skip


def test_cells_are_planned_without_duplicates() -> None:
    cells = plan_cells(["conv", "kagn", "wavkan"], [4, 8], ["instance", "batch", "batch-l1"])
    names = [c.name for c in cells]
    assert "conv-4-batch" in names and "conv-4-instance" not in names and "conv-4-batch-l1" not in names
    assert {"kagn-8-instance", "kagn-8-batch", "kagn-8-batch-l1", "wavkan-4-batch-l1"} <= set(names)
    assert len(names) == len(set(names))
    assert next(c for c in cells if c.name == "kagn-4-batch-l1").model_kwargs() == {"norm": "batch", "weight_l1": 1e-5}
    with pytest.raises(ValueError, match="norms must be among"):
        plan_cells(["kagn"], [4], ["group"])
    with pytest.raises(ValueError, match="no baseline 'simple_kagn_6'"):
        plan_cells(["kagn"], [6], ["instance"])


def test_bench_writes_the_table_plots_and_report_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench"
    assert main(["bench", "--output", str(out), *TINY]) == 0
    cells = sorted(p.name for p in (out / "cells").glob("*.json"))
    assert cells == ["conv-4-batch.json", "kagn-4-batch-l1.json", "kagn-4-instance.json"]
    rows = {(r["model"], r["setting"]): r for r in csv.DictReader((out / "table.csv").open())}
    result = json.loads((out / "cells" / "kagn-4-instance.json").read_text())
    row = rows[("simple_kagn_4", "instance")]
    # the table holds what the run measured: the cell's best validation accuracy and its parameter count
    assert float(row["val_top1_best"]) == pytest.approx(max(h["val_top1"] for h in result["history"]))
    assert int(row["params"]) == result["params"] and result["params"] > 0
    assert rows[("simple_kagn_4", "batch-l1")]["l1"] == "1e-05"
    assert f"{100 * result['val_top1_best']:.2f} %" in (out / "table.md").read_text()
    for png in ("curves.png", "accuracy_vs_params.png", "accuracy_vs_eval_time.png"):
        assert (out / png).stat().st_size > 1000 and f"({png})" in (out / "report.md").read_text()
    assert result["eval_ms_per_image_model"] > 0 and result["eval_ms_per_image_with_data"] > 0
    capsys.readouterr()
    # a second run with one more cell trains only that cell
    assert main(["bench", "--output", str(out), *TINY[:5], "instance,batch-l1,batch", *TINY[6:]]) == 0
    printed = capsys.readouterr().out
    assert printed.count("done earlier, skipped") == 3 and "kagn-4-batch (simple_kagn_4)" in printed
