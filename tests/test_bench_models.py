"""The model benchmark runs end to end on a tiny configuration; its table holds the measured figures (timing
values themselves are never asserted)."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import kanconvs
from kanconvs.bench import models as bench
from kanconvs.cli import main

MODELS = ("simple_kagn_4", "simple_kacn_4")


@pytest.fixture
def restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _args(*extra: str) -> list[str]:
    argv = ["--device", "cpu", "--models", ",".join(MODELS), "--batch-size", "2", "--input-size", "1", "8", "8"]
    return [*argv, "--warmup", "0", "--iters", "1", "--repeats", "1", "--threads", "1", *extra]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(argv)


def test_tiny_run_reports_measured_numbers_and_ratios(restore_threads: None) -> None:
    config = bench.resolve_config(_parse(_args()))
    results = bench.run_benchmark(config)
    assert [r.name for r in results] == list(MODELS) and all(r.error is None for r in results)
    table = bench.format_table(results, config)
    for r in results:
        assert r.model is not None and r.baseline is not None
        # Parameter counts are those of the registered model and of its family="conv" twin.
        assert r.model.params == sum(p.numel() for p in kanconvs.create_model(r.name, in_channels=1).parameters())
        conv = kanconvs.create_model(r.name, in_channels=1, family="conv")
        assert r.baseline.params == sum(p.numel() for p in conv.parameters())
        # CPU memory holds at least the parameters and their gradients (fp32).
        assert r.model.mem_bytes >= 2 * 4 * r.model.params and r.baseline.mem_bytes >= 2 * 4 * r.baseline.params
        row = next(line for line in table.splitlines() if line.startswith(r.name))
        cells = re.split(r"\s{2,}", row.strip())
        assert cells[1:4] == [f"{r.model.params:,}", f"{r.baseline.params:,}", f"{r.model.train_ips:.1f}"]
        assert cells[5] == f"{r.baseline.train_ips / r.model.train_ips:.2f}×"
        assert cells[8] == f"{r.baseline.infer_ips / r.model.infer_ips:.2f}×"
        assert cells[11] == f"{r.model.mem_bytes / r.baseline.mem_bytes:.2f}×"


def test_cli_writes_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str], restore_threads: None) -> None:
    out = tmp_path / "models.md"
    assert main(["bench-models", *_args("--markdown", str(out))]) == 0
    assert "train slowdown" in capsys.readouterr().out
    text = out.read_text()
    assert "- command:" in text and "| simple_kagn_4 |" in text and "| simple_kacn_4 |" in text


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "models", "--device", "cpu", "--models", "simple_kagn_4,vgg_nope"]) == 2
    assert "--models: unknown vgg_nope; see `kanconvs list --models`" in capsys.readouterr().err
