"""`kanconvs bench` end to end on a tiny setting: table, CSV, plots and report hold the run's numbers; resume."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("accelerate")

from kanconvs.bench.table import plan_cells, train_seconds
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
    # Without norms, each family's default: KACN cannot learn with instance norms, so it gets BatchNorm.
    assert [c.name for c in plan_cells(["kagn", "kacn", "wavkan"], [4])] == ["kagn-4-instance", "kacn-4-batch",
                                                                          "wavkan-4-batch"]  # fmt: skip


def test_train_seconds_sums_epochs_and_estimates_those_logged_without_it() -> None:
    # epochs logged before the trainer recorded train_s: samples per epoch / throughput (1,000 / 250 = 4 s)
    history = [{"images_per_s": 250.0}, {"images_per_s": 100.0, "train_s": 9.5}, {"train_s": 0.5}]
    assert train_seconds(history, samples_per_epoch=1000) == pytest.approx(4 + 9.5 + 0.5)


@pytest.mark.filterwarnings("ignore:.*quantized tensor creation functions.*:UserWarning")
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
    # train time: the epochs' training-loop seconds, so that a cell resumed across sessions counts all of them
    assert result["train_time_s"] > 0
    assert result["train_time_s"] == pytest.approx(sum(h["train_s"] for h in result["history"]))
    assert result["fingerprint"]["epochs"] == 1 and result["fingerprint"]["model.name"] == "simple_kagn_4"
    assert "int8 val acc" in (out / "table.md").read_text() and "Int8 (" not in (out / "report.md").read_text()
    capsys.readouterr()
    # a second run with one more cell trains only that cell, here with its static int8 version evaluated on CPU
    assert main(["bench", "--output", str(out), "--int8", *TINY[:5], "instance,batch-l1,batch", *TINY[6:]]) == 0
    printed = capsys.readouterr().err  # progress is logged (stderr); stdout holds the table
    assert printed.count("done earlier, skipped") == 3 and "kagn-4-batch (simple_kagn_4)" in printed
    new = json.loads((out / "cells" / "kagn-4-batch.json").read_text())
    assert 0 <= new["val_top1_int8"] <= 1 and new["eval_ms_per_image_int8_cpu"] > 0
    assert new["eval_ms_per_image_fp32_cpu"] > 0 and new["model_bytes_int8"] < new["model_bytes_fp32"] / 2
    # the fp32 model scored by the int8 pass on CPU is the trained one: same accuracy as the trainer's last eval
    assert new["val_top1_fp32_cpu"] == pytest.approx(new["val_top1_final"])
    rows = {(r["model"], r["setting"]): r for r in csv.DictReader((out / "table.csv").open())}
    row = rows[("simple_kagn_4", "batch")]
    assert float(row["val_top1_int8"]) == pytest.approx(new["val_top1_int8"])
    assert float(row["eval_ms_per_image_int8_cpu"]) == pytest.approx(new["eval_ms_per_image_int8_cpu"])
    assert float(row["eval_ms_per_image_fp32_cpu"]) == pytest.approx(new["eval_ms_per_image_fp32_cpu"])
    assert rows[("simple_kagn_4", "instance")]["val_top1_int8"] == ""  # done earlier, without --int8
    table = (out / "table.md").read_text()
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    cells_of = {line.split("|")[1].strip() + " " + line.split("|")[2].strip(): line for line in table.splitlines()[2:]}
    int8_cells = [c.strip() for c in cells_of["simple_kagn_4 batch"].strip("|").split("|")]
    assert int8_cells[header.index("int8 val acc")] == f"{100 * new['val_top1_int8']:.2f} %"
    assert int8_cells[header.index("int8 eval ms/img (CPU)")] == f"{new['eval_ms_per_image_int8_cpu']:.3g}"
    assert int8_cells[header.index("fp32 eval ms/img (CPU)")] == f"{new['eval_ms_per_image_fp32_cpu']:.3g}"
    old_cells = [c.strip() for c in cells_of["simple_kagn_4 instance"].strip("|").split("|")]
    assert old_cells[header.index("int8 val acc")] == "—"
    assert "Int8 (1 of 4 cells)" in (out / "report.md").read_text()
    # a command naming one done cell trains nothing, and the table still reports every cell of the folder
    assert main(["bench", "--output", str(out), "--models", "conv", "--norms", "batch", *TINY[6:]]) == 0
    assert len((out / "table.md").read_text().splitlines()) == 2 + 4
    assert "Int8 (1 of 4 cells)" in (out / "report.md").read_text()


def test_bench_names_its_benchmarks_and_keeps_the_old_spellings() -> None:
    from kanconvs.cli import build_parser
    from kanconvs.cli.bench_cmd import default_kind

    parser = build_parser()
    args = parser.parse_args(default_kind(["bench", "--quick", "epochs=1"]))  # no benchmark named: the table
    assert args.bench_kind == "table" and args.quick and args.overrides == ["epochs=1"]
    assert parser.parse_args(default_kind(["bench"])).bench_kind == "table"
    models = ["--models", "simple_kagn_4"]
    for argv, kind in [(["bench", "layers"], "layers"), (["bench-layers"], "layers"),
                       (["bench", "models", *models], "models"), (["bench-models", *models], "models")]:  # fmt: skip
        assert parser.parse_args(default_kind(argv)).func.args == (kind,)


def test_bench_epochs_must_be_positive(capsys: pytest.CaptureFixture) -> None:
    # --epochs 0 used to be ignored (falsy), silently training the recipe's 150 epochs
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--epochs", "0", "--models", "conv"])
    assert exc.value.code == 2 and "--epochs: expected a positive integer, got '0'" in capsys.readouterr().err


def _done_cell(out: Path, fingerprint: dict | None) -> Path:
    row = {"model": "simple_conv_4", "family": "conv", "depth": 4, "setting": "batch", "val_top1_best": 0.5,
           "val_top1_final": 0.5, "params": 10, "eval_ms_per_image_model": 0.1, "diverged": "",
           "history": [{"epoch": 1, "val_top1": 0.5, "train_top1": 0.4, "train_loss": 1.0}]}  # fmt: skip
    if fingerprint is not None:
        row["fingerprint"] = fingerprint
    path = out / "cells" / "conv-4-batch.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(row))
    return path


def test_bench_refuses_a_done_cell_of_other_settings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from kanconvs.bench.table import cell_config, fingerprint

    out = tmp_path / "bench"
    argv = ["bench", "--output", str(out), "--models", "conv", "--norms", "batch", *TINY[6:]]
    cell = plan_cells(["conv"], [4], ["batch"])[0]
    settings = fingerprint(cell_config(cell, out, ["epochs=1", *TINY[8:]], "bench-seed"))
    assert settings["epochs"] == 1 and settings["data.train_limit"] == 64 and "output_dir" not in settings
    _done_cell(out, {**settings, "data.name": "fashion-mnist"})  # done earlier on another dataset
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cell conv-4-batch" in err and "trained with other settings" in err
    assert "data.name 'fashion-mnist' -> 'mnist-10k'" in err and "--output" in err
    assert not (out / "runs").exists() and not (out / "table.md").exists()  # refused before training anything


def test_bench_keeps_done_cells_without_fingerprint(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "bench"
    _done_cell(out, None)  # written by an older version: counts as done, as before
    assert main(["bench", "--output", str(out), "--models", "conv", "--norms", "batch", *TINY[6:]]) == 0
    assert "done earlier, skipped" in capsys.readouterr().err and not (out / "runs").exists()
    assert "| simple_conv_4 | batch | 50.00 % |" in (out / "table.md").read_text()
    assert not list(out.glob(".*.tmp"))  # the outputs are written through temporary files, renamed


def test_bench_output_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["bench", "--output", str(afile), "--models", "conv", *TINY[6:]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--output '{afile}' is a file: expected a directory" in err
