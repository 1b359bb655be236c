"""``kanconvs info`` and ``kanconvs list --models``: counts checked against hand arithmetic."""

from __future__ import annotations

import json

import pytest

from kanconvs.cli import main
from kanconvs.cli.info import _shapes, model_info, parse_overrides

# simple_conv_4 with widths (4, 4, 8, 8), groups 4 after the first layer, 1 input channel, 10 classes:
# Conv2d(1→4) 36+4, BN 8; Conv2d(4→4, g=4) 36+4, BN 8; Conv2d(4→8, g=4) 72+8, BN 16; Conv2d(8→8, g=4) 144+8, BN 16;
# Linear(8→10) 80+10.
TINY_PARAMS = 40 + 8 + 40 + 8 + 80 + 16 + 152 + 16 + 90
# MACs on 1×28×28 (strides 1, 2, 2, 1): output elements × (c_in / groups · 3 · 3), plus the linear layer.
TINY_MACS = 28 * 28 * 4 * 9 + 14 * 14 * 4 * 9 + 7 * 7 * 8 * 9 + 7 * 7 * 8 * 18 + 8 * 10
TINY = ["widths=(4, 4, 8, 8)"]


def test_parameters_and_macs_match_hand_counts() -> None:
    info = model_info("simple_conv_4", (1, 28, 28), num_classes=10, batch_size=3, overrides={"widths": (4, 4, 8, 8)})
    assert info["params"] == info["trainable_params"] == TINY_PARAMS
    assert info["macs_per_sample"] == TINY_MACS  # per sample, whatever the batch
    assert info["input_shape"] == [3, 1, 28, 28] and info["output_shapes"] == [[3, 10]]


def test_json_output_and_options_after_overrides(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "simple_conv_4", *TINY, "--input-size", "1", "28", "28", "--num-classes", "5", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["output_shapes"] == [[1, 5]] and info["params"] == TINY_PARAMS - 45  # Linear(8→5): 45 instead of 90
    assert "not counted" in info["macs_note"]


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--batch-size", "2", "simple_conv_4", "--input-size", "1", "28", "28", *TINY]) == 0
    out = capsys.readouterr().out
    assert f"parameters:       {TINY_PARAMS:,} ({TINY_PARAMS:,} trainable)" in out
    assert f"MACs per sample:  {TINY_MACS:,}" in out and "output:           2 × 10" in out
    assert "KA basis evaluation" in out


def test_default_input_takes_the_stem_channels(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "simple_kagn_4", "widths=(4, 4, 4, 4)", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input_shape"] == [1, 1, 224, 224]  # simple_* default to 1 channel


def test_unknown_model_exits_2_with_close_matches(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "simple_kgn_4"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown model 'simple_kgn_4'") and "did you mean 'simple_kagn_4'" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simple_conv_4", "widths"], "overrides must be key=value with a Python name as key, got 'widths'"),
        (["simple_conv_4", "1x=2"], "got '1x=2'"),
        (["simple_conv_4", "degree=3"], "family 'conv' takes no layer options, got ['degree']"),
    ],
)
def test_bad_overrides_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", *argv]) == 2
    assert message in capsys.readouterr().err


def test_parse_overrides_literals_and_strings() -> None:
    assert parse_overrides(["a=1.5", "b=kagn", "c=[1, 2]", "d=None", "e=x=y"]) == {
        "a": 1.5, "b": "kagn", "c": [1, 2], "d": None, "e": "x=y",
    }  # fmt: skip


def test_output_shapes_of_nested_outputs() -> None:
    import torch

    out = (torch.zeros(2, 3), [torch.zeros(1)], {"aux": torch.zeros(4, 5, 6)})
    assert _shapes(out) == [[2, 3], [1], [4, 5, 6]]


def test_list_models_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "--models", "simple_kagn_*"]) == 0
    assert capsys.readouterr().out.splitlines() == ["models (2):", "  simple_kagn_4", "  simple_kagn_8"]
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "families (" in out and "bases (" in out and "  simple_conv_8" in out


def test_help_after_the_model_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "simple_kagn_4", "--help"]) == 0  # was: unrecognized arguments: --help, exit 2
    out = capsys.readouterr().out
    assert out.startswith("usage: kanconvs info") and "--input-size" in out and "configuration overrides" in out
    assert main(["info", "simple_kagn_4", *TINY, "-h"]) == 0 and "usage: kanconvs info" in capsys.readouterr().out
