"""Fault injection: a small run (2 epochs × 4 steps, dropout, augmentation, step checkpoints, ``keep_last=1``) is
stopped at every step and at every phase, resumed, and must end bit-identical to the uninterrupted run, with one
metrics row per epoch holding that run's values. Checkpoint files are truncated or replaced by code-running pickles
one at a time: the resume must refuse the file by name, run nothing, and point at the newest intact checkpoint.

The kills here are in-process (:func:`kanconvs.train.faults.inject` raises ``SimulatedKill``); ``test_train.py``
sends real SIGKILLs through ``KANCONVS_FAULT`` to show the two leave the same files behind.
"""

from __future__ import annotations

import csv
import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("torchmetrics")
pytest.importorskip("omegaconf")

from kanconvs.models import read_state_dict
from kanconvs.train import CheckpointError, Trainer, load_config
from kanconvs.train.checkpoint import list_checkpoints
from kanconvs.train.faults import PHASES, SimulatedKill, code_running_pickle, forge_manifest, inject

BASE = [
    "progress=false", "data.augment=mnist", "checkpoint.every_steps=3", "checkpoint.keep_last=1",
    "trackers=[jsonl,csv]",
]  # fmt: skip
STEPS = 8  # 64 samples / batch 16 = 4 steps per epoch, 2 epochs
CHECKPOINT_STEPS = (3, 4, 6, 8)  # every 3 steps (not at an epoch's last step) and each epoch end
EPOCH_ENDS = (4, 8)


def _run(out: Path, *extra: str) -> dict[str, Any]:
    cfg = load_config("smoke", [*BASE, f"output_dir={out}", *extra])
    return Trainer(cfg).fit()


def _faults() -> list[tuple[str, int]]:
    at = {"mid-step": range(1, STEPS + 1), "step": range(1, STEPS + 1), "eval": EPOCH_ENDS, "log": EPOCH_ENDS,
          "checkpoint-write": CHECKPOINT_STEPS, "checkpoint-rotate": CHECKPOINT_STEPS}  # fmt: skip
    assert set(at) == set(PHASES)  # a new phase must be added here
    return [(phase, step) for phase in PHASES for step in at[phase]]


def _rows(run: Path) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    jsonl = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    with (run / "metrics.csv").open(newline="") as f:
        return jsonl, list(csv.DictReader(f))


def _without_timing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in ("images_per_s", "train_s")} for row in rows]


def _assert_same_run(straight: Path, resumed: Path) -> None:
    a, b = read_state_dict(straight / "final"), read_state_dict(resumed / "final")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    (jsonl_a, csv_a), (jsonl_b, csv_b) = _rows(straight), _rows(resumed)
    assert [r["epoch"] for r in jsonl_b] == [1, 2]  # one row per epoch, in every file
    assert _without_timing(jsonl_b) == _without_timing(jsonl_a)
    assert [r["epoch"] for r in csv_b] == ["1", "2"]
    assert _without_timing(csv_b) == _without_timing(csv_a)
    assert all(r["images_per_s"] and float(r["images_per_s"]) > 0 and r["train_s"] > 0 for r in jsonl_b)


def _resume(run: Path, *extra: str) -> None:
    """What a user does after a crash: resume; if no checkpoint was complete yet, start over."""
    if list_checkpoints(run / "checkpoints"):
        _run(run, "resume=true", *extra)
    else:
        with pytest.raises(CheckpointError, match="holds no complete checkpoint"):
            _run(run, "resume=true", *extra)
        _run(run, *extra)


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    _run(out)
    return out


@pytest.mark.parametrize(("phase", "step"), _faults(), ids=[f"{p}@{s}" for p, s in _faults()])
def test_a_run_killed_anywhere_resumes_to_the_uninterrupted_result(straight: Path, tmp_path: Path, phase: str,
                                                                    step: int) -> None:  # fmt: skip
    run = tmp_path / "run"
    with pytest.raises(SimulatedKill), inject(phase, step):
        _run(run)
    assert not (run / "final").exists()
    _resume(run)
    _assert_same_run(straight, run)


def test_a_run_killed_three_times_still_ends_exactly(straight: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    for phase, step in [("mid-step", 5), ("checkpoint-write", 6), ("eval", 8)]:
        with pytest.raises(SimulatedKill), inject(phase, step):
            _run(run, *(["resume=true"] if list_checkpoints(run / "checkpoints") else []))
    _run(run, "resume=true")
    _assert_same_run(straight, run)


@pytest.mark.parametrize(
    ("extra", "step"),
    [
        (("model.ema_decay=0.9",), 7),
        (("optim.accumulation_steps=2", "checkpoint.every_steps=1"), 4),  # 2 optimiser steps per epoch
        (("data.mixup_alpha=0.4",), 7),
    ],
    ids=["ema", "accumulation", "mixup"],
)
def test_exact_resume_with_ema_accumulation_and_mixing(tmp_path: Path, extra: tuple[str, ...], step: int) -> None:
    straight, run = tmp_path / "straight", tmp_path / "run"
    _run(straight, *extra)
    with pytest.raises(SimulatedKill), inject("mid-step", step):
        _run(run, *extra)
    _run(run, "resume=true", *extra)
    _assert_same_run(straight, run)


# ------------------------------------------------------------------------------------------- damaged checkpoints
def _finished_with_two_checkpoints(tmp_path: Path) -> tuple[Path, Path, Path]:
    run = tmp_path / "run"
    _run(run, "checkpoint.keep_last=2", "epochs=1", "model.ema_decay=0.9")
    older, newest = list_checkpoints(run / "checkpoints")
    return run, older, newest


def test_planted_pickles_never_run_and_name_the_file(tmp_path: Path) -> None:
    run, older, newest = _finished_with_two_checkpoints(tmp_path)
    marker = tmp_path / "pwned"
    names = sorted(p.name for p in newest.iterdir())
    assert {"model.safetensors", "optimizer.bin", "trainer.json", "ema.safetensors", "manifest.json"} <= set(names)
    assert not any(name.endswith(".pkl") for name in names)  # nothing pickled beyond the optimiser's tensors
    pristine = {name: (newest / name).read_bytes() for name in names}
    control = tmp_path / "control"
    pickle.loads(code_running_pickle(control))  # the payload is live: an unsafe load does run it
    assert control.exists()
    payload = code_running_pickle(marker)
    for name in [*names, "random_states_0.pkl", "custom_checkpoint_0.pkl"]:
        for vouched in (False, True):
            (newest / name).write_bytes(payload)
            if vouched and name != "manifest.json":
                forge_manifest(newest, name)
            with pytest.raises(CheckpointError) as err:
                _run(run, "resume=true", "checkpoint.keep_last=2", "epochs=2", "model.ema_decay=0.9")
            assert not marker.exists(), f"loading a planted {name} ran code"
            assert name in str(err.value) and f"resume_from={older}" in str(err.value)
            for original, data in pristine.items():
                (newest / original).write_bytes(data)
            for extra in set(p.name for p in newest.iterdir()) - set(names):
                (newest / extra).unlink()


def test_truncated_files_are_refused_by_name_and_the_intact_checkpoint_resumes_exactly(tmp_path: Path) -> None:
    run, older, newest = _finished_with_two_checkpoints(tmp_path)
    for file in sorted(newest.iterdir()):
        data = file.read_bytes()
        file.write_bytes(data[: len(data) // 2])
        with pytest.raises(CheckpointError, match="resume_from=") as err:
            _run(run, "resume=true", "checkpoint.keep_last=2", "epochs=2", "model.ema_decay=0.9")
        assert file.name in str(err.value)
        file.write_bytes(data)
    (newest / "optimizer.bin").write_bytes(b"")
    _run(run, f"resume_from={older}", "checkpoint.keep_last=2", "epochs=2", "model.ema_decay=0.9")
    assert (run / "checkpoints" / f"abandoned-{newest.name}").is_dir()  # set aside, not deleted
    straight = tmp_path / "straight"
    _run(straight, "checkpoint.keep_last=2", "epochs=2", "model.ema_decay=0.9")
    _assert_same_run(straight, run)


def test_resume_refuses_a_missing_checkpoint_and_changed_settings(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="holds no complete checkpoint"):
        _run(tmp_path / "empty", "resume=true")
    run = tmp_path / "run"
    _run(run, "epochs=1")
    with pytest.raises(CheckpointError, match=re.escape("optim.name='adamw' (this run: 'sgd')")):
        _run(run, "epochs=2", "resume=true", "optim.name=sgd")
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        _run(run, "epochs=2")
