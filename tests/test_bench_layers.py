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


def test_interleaved_medians_times_every_step_and_drops_a_failing_runner() -> None:
    """The one timing loop: per (runner, step) the median of the rounds, steps interleaved across runners, and a
    runner that raises dropped with its error when errors are collected (propagated otherwise)."""
    import torch
    from torch import nn

    from kanconvs.bench._common import Runner, interleaved_medians

    calls: list[str] = []

    class Fake(Runner):
        def __init__(self, name: str, fail_after: int | None = None) -> None:
            super().__init__(nn.Identity(), torch.zeros(1), torch.device("cpu"), torch.float32)
            self.name, self.fail_after, self.count = name, fail_after, 0
            self.steps = {"train": self.step, "infer": self.step}

        def step(self) -> None:
            self.count += 1
            calls.append(self.name)
            if self.fail_after is not None and self.count > self.fail_after:
                raise RuntimeError("out of memory\nsecond line")

    ok, bad = Fake("ok"), Fake("bad", fail_after=3)
    errors: dict[str, str] = {}
    ms = interleaved_medians({"ok": ok, "bad": bad}, warmup=1, rounds=3, iters=2, settle=True, errors=errors)
    assert set(ms) == {"ok"} and set(ms["ok"]) == {"train", "infer"} and all(v >= 0 for v in ms["ok"].values())
    assert errors == {"bad": "RuntimeError: out of memory"}
    # warm-up 1 per step, then per round and step one settle call and 2 timed calls: 2 + 3·2·3
    assert ok.count == 2 + 3 * 2 * 3
    with pytest.raises(RuntimeError, match="out of memory"):
        interleaved_medians({"bad": Fake("bad", fail_after=0)}, warmup=1, rounds=1, iters=1)


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        (["--device", "foo"], "--device: expected cpu, cuda or cuda:N, got 'foo'"),
        (["--device", "meta"], "--device: expected cpu, cuda or cuda:N, got 'meta'"),  # ran, timing nothing
        (["--device", "cuda:99"], "--device 'cuda:99'"),
    ],
)
@pytest.mark.parametrize("kind", ["layers", "models"])
def test_bad_device_is_a_one_line_error(
    kind: str, option: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    models = ["--models", "simple_conv_4"] if kind == "models" else []
    assert main(["bench", kind, *models, *option]) == 2
    out, err = capsys.readouterr()
    assert err == f"kanconvs bench {kind}: error: " + err.split(": error: ", 1)[1] and err.count("\n") == 1
    assert expected in err and out == ""


@pytest.mark.parametrize("kind", ["layers", "models"])
def test_markdown_path_is_checked_before_the_benchmark(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    models = ["--models", "simple_conv_4"] if kind == "models" else []
    for markdown, expected in [(tmp_path, "is a directory: expected a file path"), (afile / "t.md", "not a directory")]:
        assert main(["bench", kind, *models, "--device", "cpu", "--markdown", str(markdown)]) == 2
        out, err = capsys.readouterr()
        assert expected in err and err.count("\n") == 1
        assert out == "" and "machine:" not in err  # refused before measuring anything
