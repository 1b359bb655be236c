"""The side-by-side benchmark against torch-conv-kan runs end to end, without the real reference.

CI has no torch-conv-kan checkout, so these tests build a fake one in ``tmp_path`` whose modules re-export
:mod:`kanconvs.compat`'s classes under the reference's module and class names. They test the plumbing only — the
lazy import of the reference's packages, argument handling, interleaved timing, the table, Markdown and CSV — and
say nothing about the reference's speed (ours is timed against itself). Timing figures are not asserted beyond
being positive.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest

from kanconvs.bench import vs_reference as bench
from kanconvs.cli import main
from kanconvs.cli.bench_cmd import script_main

_FAKE_REFERENCE = {
    # The __init__ files import modules that fail, as the real ones need timm: the runner must not execute them.
    "kan_convs/__init__.py": (
        "from .attention_conv import SelfKAGNtention2D\n"
        "from .kacn_conv import KACNConv2DLayer\n"
        "from .kagn_conv import KAGNConv2DLayer\n"
    ),
    "kan_convs/attention_conv.py": "raise ImportError('the fake reference needs timm here')\n",
    "kan_convs/kagn_conv.py": "from kanconvs.compat import KAGNConv2DLayer  # noqa: F401\n",
    "kan_convs/kacn_conv.py": "from kanconvs.compat import KACNConv2DLayer  # noqa: F401\n",
    "models/__init__.py": (
        "from .vggkan import vggkagn\nfrom .baselines.conv_kagn_baseline import EightSimpleConvKAGN, SimpleConvKAGN\n"
    ),
    "models/vggkan.py": "raise ImportError('the fake reference needs timm here')\n",
    "models/baselines/__init__.py": "",
    "models/baselines/conv_kagn_baseline.py": "from kanconvs.compat import EightSimpleConvKAGN, SimpleConvKAGN\n",
}


@pytest.fixture
def fake_reference(tmp_path: Path) -> Path:
    root = tmp_path / "torch-conv-kan"
    for relative, text in _FAKE_REFERENCE.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def test_runs_and_reports_every_cell(fake_reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    markdown, table_csv = tmp_path / "out" / "report.md", tmp_path / "out" / "report.csv"
    argv = ["--reference-dir", str(fake_reference), "--device", "cpu", "--families", "kagn,kacn", "--groups", "1,2"]
    argv += ["--in-channels", "4", "--out-channels", "8", "--batch", "2", "--size", "8", "--models", "4"]
    argv += ["--model-families", "kagn", "--model-batch", "2", "--rounds", "1", "--steps", "1", "--warmup", "0"]
    argv += ["--markdown", str(markdown), "--csv", str(table_csv)]
    assert script_main("vs-reference", "benchmarks/vs_reference.py", argv) == 0  # = kanconvs bench vs-reference

    table = capsys.readouterr().out
    assert "ours ÷ reference" in table and "ours ÷ (b)" in table
    rows = list(csv.DictReader(table_csv.read_text(encoding="utf-8").splitlines()))
    expected = [
        (what, groups, mode)
        for what, groups in [("kagn", "1"), ("kagn", "2"), ("kacn", "1"), ("kacn", "2"), ("SimpleConvKAGN", "4")]
        for mode in ("train", "infer")
    ]
    assert [(r["what"], r["groups"], r["mode"]) for r in rows] == expected
    for r in rows:
        assert not r["ours_error"] and not r["reference_error"] and not r["b_error"], r
        assert float(r["ours_ms"]) > 0 and float(r["reference_ms"]) > 0
        assert float(r["ours_over_reference"]) > 0
        if r["what"] == "SimpleConvKAGN":
            assert r["b_ms"] == ""  # models have no (b)
        else:
            assert float(r["b_ms"]) > 0 and float(r["ours_over_b"]) > 0
        assert r["ours_peak_mib"] == ""  # CUDA only
    for what, groups, mode in expected:
        assert any(line.split()[:3] == [what, groups, mode] for line in table.splitlines())

    report = markdown.read_text(encoding="utf-8")
    assert "command: `python benchmarks/vs_reference.py --reference-dir" in report
    assert "| kagn | 1 | train |" in report and "| SimpleConvKAGN | 4 | infer |" in report
    assert "peak memory: n/a on CPU" in report
    # The reference's packages are registered for the run only.
    assert not any(name.split(".")[0] in bench.Reference.PACKAGES for name in sys.modules)


def test_a_failing_reference_layer_is_reported_in_its_cell(
    fake_reference: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (fake_reference / "kan_convs" / "kacn_conv.py").write_text(
        "import torch\n\nclass KACNConv2DLayer(torch.nn.Module):\n"
        "    def __init__(self, *args, **kwargs):\n        super().__init__()\n\n"
        "    def forward(self, x):\n        raise RuntimeError('broken backward')\n",
        encoding="utf-8",
    )
    argv = ["--reference-dir", str(fake_reference), "--device", "cpu", "--families", "kacn", "--groups", "1"]
    argv += ["--in-channels", "4", "--out-channels", "4", "--batch", "1", "--size", "4", "--models", "none"]
    argv += ["--rounds", "1", "--steps", "1", "--warmup", "1", "--mode", "train"]
    assert main(["bench", "vs-reference", *argv]) == 0  # the reference's failures are reported, not fatal
    out = capsys.readouterr().out
    assert "error: RuntimeError" in out and "kacn groups=1 train, reference: RuntimeError: broken backward" in out


def test_missing_reference_dir_is_an_argument_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "no-such-checkout"
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "vs-reference", "--reference-dir", str(missing), "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--reference-dir" in err and str(missing) in err and "is not a directory" in err


def test_reference_dir_without_kan_convs_is_an_argument_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "vs-reference", "--reference-dir", str(tmp_path), "--device", "cpu"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "has no kan_convs package" in err


def test_unknown_family_is_an_argument_error(fake_reference: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--reference-dir", str(fake_reference), "--device", "cpu", "--families", "gram"]
    assert main(["bench", "vs-reference", *argv]) == 2
    assert "--families: unknown gram" in capsys.readouterr().err
