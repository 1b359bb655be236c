"""The layer benchmark script runs end to end on a tiny configuration (its figures are not asserted: timing is
measured by the script, never by tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kanconvs.bench import layers as bench
from kanconvs.cli import main


@pytest.mark.parametrize("variant", sorted(bench.VARIANTS))
def test_benchmark_runs_and_reports(variant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "table.md"
    argv = ["--device", "cpu", "--families", "kagn,kacn", "--batch", "1", "--size", "6", "--in-channels", "4"]
    argv += ["--out-channels", "8", "--warmup", "0", "--iters", "1", "--repeats", "1", "--variant", variant]
    assert main(["bench", "layers", *argv, "--markdown", str(out)]) == 0
    table = capsys.readouterr().out
    assert "kagn" in table and "kacn" in table and "× (b)" in table
    text = out.read_text()
    assert "command:" in text and "| kagn |" in text


def test_unknown_family_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "layers", "--device", "cpu", "--families", "gram"]) == 2
    assert "--families: unknown gram; expected some of kan" in capsys.readouterr().err
