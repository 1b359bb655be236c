"""``benchmarks/parity.py`` tabulates saved runs per (family, widths) without training or a dataset.

The runs here are synthetic JSON records; the training loop itself is exercised by the script's real use (its report
under ``reports/parity-fashion-mnist``), which needs Fashion-MNIST and the reference.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch


def _parity() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "parity_script", Path(__file__).parents[1] / "benchmarks" / "parity.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def reference(tmp_path: Path) -> Path:
    """A stand-in checkout: the reference's module path of the KAGN baseline, serving kanconvs.compat's class."""
    files = {
        "kan_convs/__init__.py": "",
        "models/__init__.py": "",
        "models/baselines/__init__.py": "",
        "models/baselines/conv_kagn_baseline.py": "from kanconvs.compat import SimpleConvKAGN  # noqa: F401\n",
    }
    for name, text in files.items():
        (tmp_path / "ref" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "ref" / name).write_text(text, encoding="utf-8")
    return tmp_path / "ref"


def _save(folder: Path, family: str, impl: str, seed: int, final: float, widths: list[int] | None) -> None:
    row: dict[str, Any] = {"family": family, "impl": impl, "seed": seed, "final": final, "params": 100, "seconds": 2.0}
    tag = ""
    if widths is not None:  # a run saved before --widths existed has no "widths" and the seed's file name
        row["widths"] = widths
        tag = "-w" + "-".join(map(str, widths))
    (folder / f"{family}{tag}-{impl}-seed{seed}.json").write_text(json.dumps(row), encoding="utf-8")


def test_runs_of_other_widths_get_their_own_row(tmp_path: Path, reference: Path) -> None:
    parity, runs = _parity(), tmp_path / "runs"
    runs.mkdir()
    for seed, (ours, ref) in enumerate([(0.70, 0.60), (0.80, 0.75)]):
        _save(runs, "kan", "ours", seed, ours, None)
        _save(runs, "kan", "reference", seed, ref, None)
        _save(runs, "kan", "ours", seed, ours - 0.1, [8, 16, 32, 64])
        _save(runs, "kan", "reference", seed, ref - 0.2, [8, 16, 32, 64])
    _save(runs, "kan", "ours", 2, 0.5, [8, 16, 32, 64])  # unpaired: left out
    table = tmp_path / "table.md"
    argv = ["--reference-dir", str(reference), "--families", "kan", "--report-only", "--output", str(runs)]
    assert parity.main([*argv, "--markdown", str(table)]) == 0
    rows = [line for line in table.read_text(encoding="utf-8").splitlines() if line.startswith("| kan ")]
    assert len(rows) == 2
    seed_widths, narrow = ([c.strip() for c in row.strip("|").split("|")] for row in rows)
    assert seed_widths[1] == "SimpleConvKAN" and narrow[1] == "SimpleConvKAN (8/16/32/64)"
    assert seed_widths[3] == narrow[3] == "2"  # the unpaired seed 2 is not counted
    diffs = [100 * (0.70 - 0.60), 100 * (0.80 - 0.75)]
    assert seed_widths[6] == f"{statistics.mean(diffs):+.2f} ± {statistics.stdev(diffs):.2f}"
    narrow_diffs = [100 * ((0.70 - 0.1) - (0.60 - 0.2)), 100 * ((0.80 - 0.1) - (0.75 - 0.2))]
    assert narrow[6] == f"{statistics.mean(narrow_diffs):+.2f} ± {statistics.stdev(narrow_diffs):.2f}"


def test_same_init_runs_get_the_control_table(tmp_path: Path, reference: Path) -> None:
    parity, runs = _parity(), tmp_path / "runs"
    runs.mkdir()
    _save(runs, "kan", "ours", 0, 0.60, [8, 16, 32, 64])
    _save(runs, "kan", "reference", 0, 0.70, [8, 16, 32, 64])
    _save(runs, "kan", parity.SAME_INIT, 0, 0.695, [8, 16, 32, 64])
    table = tmp_path / "table.md"
    argv = ["--reference-dir", str(reference), "--families", "kan", "--report-only", "--output", str(runs)]
    assert parity.main([*argv, "--markdown", str(table)]) == 0
    text = table.read_text(encoding="utf-8")
    assert "| kan | SimpleConvKAN (8/16/32/64) | 0 | 69.50 % | 70.00 % | -0.50 |" in text
    assert "+0.00" not in text and "-10.00" in text  # the main row still pairs ours with the reference


def test_same_init_starts_from_the_reference_weights_of_the_seed(reference: Path) -> None:
    parity = _parity()
    with parity.Reference(reference) as ref:
        torch.manual_seed(3)
        expected = parity._build("reference", "kagn", ref, (4, 4, 8, 8)).state_dict()
        torch.manual_seed(3)
        same = parity._build(parity.SAME_INIT, "kagn", ref, (4, 4, 8, 8)).state_dict()
        torch.manual_seed(3)
        parity._build("ours", "kagn", ref, (4, 4, 8, 8))  # another draw: ours after the reference
        other = parity._build("reference", "kagn", ref, (4, 4, 8, 8)).state_dict()
    assert same.keys() == expected.keys()
    assert all(torch.equal(same[k], expected[k]) for k in expected)
    assert not all(torch.equal(other[k], expected[k]) for k in expected if expected[k].is_floating_point())


def test_run_files_keep_the_seed_widths_name(tmp_path: Path) -> None:
    parity = _parity()
    assert parity._run_path(tmp_path, "kagn", "ours", 1, (32, 64, 128, 256)).name == "kagn-ours-seed1.json"
    assert parity._run_path(tmp_path, "kagn", "ours", 1, (8, 16, 32, 64)).name == "kagn-w8-16-32-64-ours-seed1.json"


@pytest.mark.parametrize("text", ["8,16", "8,16,32,x", "0,16,32,64", "8,16,32,64,128"])
def test_bad_widths_are_refused(text: str, reference: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parity().main(["--reference-dir", str(reference), "--widths", text, "--report-only"])
    err = capsys.readouterr().err
    assert "--widths" in err and repr(text) in err and "four positive channel counts" in err
