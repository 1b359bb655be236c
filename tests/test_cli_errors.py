"""Command-line errors are one line on stderr with exit code 2, found before the work starts; ``eval`` falls back to
a run's final weights as the other commands do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kanconvs
from kanconvs.cli import main

pytest.importorskip("omegaconf")

SPACE = "optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}\n"


def _one_line_error(capsys: pytest.CaptureFixture[str], command: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith(f"kanconvs {command}: error: ") and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize(
    ("space", "args", "message"),
    [
        ("optim.lr: [1, 2\n", [], "not valid YAML: while parsing a flow sequence"),  # a yaml traceback before
        (SPACE, ["--metric", "bogus"], "--metric: expected one of auroc, dice, f1_macro"),  # inside trial 1 before
        (SPACE, ["--metric", "f1_macro"], "metrics=full"),
        (None, [], "no such file"),
    ],
)
def test_tune_refuses_bad_space_and_metric_before_the_study(
    space: str | None, args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "space.yaml"
    if space is not None:
        path.write_text(space)
    assert main(["tune", "smoke", "--space", str(path), *args, f"output_dir={tmp_path / 'study'}"]) == 2
    assert message in _one_line_error(capsys, "tune")
    assert not (tmp_path / "study").exists()  # no trial ran


def test_eval_falls_back_to_final_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("accelerate")
    run = tmp_path / "run"
    model = kanconvs.create_model("simple_kagn_4", widths=(4, 8), strides=(1, 2), in_channels=1, num_classes=10)
    kanconvs.models.save_pretrained(model, run / "final")  # a run without a best metric: no best/
    model_cfg = "{name: simple_kagn_4, kwargs: {widths: [4, 8], strides: [1, 2]}}"
    (run / "config.yaml").write_text(f"data: {{name: mnist-10k, val_limit: 8}}\nmodel: {model_cfg}\n")
    assert main(["eval", str(run), "--json"]) == 0  # was: no weights at run/best
    captured = capsys.readouterr()
    assert "no best/ weights: evaluating final/" in captured.err
    assert main(["eval", str(run), "--weights", "final", "--json"]) == 0
    assert json.loads(captured.out) == json.loads(capsys.readouterr().out)
    (run / "final" / "model.safetensors").unlink()
    (run / "final" / "config.json").unlink()
    (run / "final").rmdir()
    assert main(["eval", str(run)]) == 2  # neither best/ nor final/: the error names best/
    assert "best" in _one_line_error(capsys, "eval")
