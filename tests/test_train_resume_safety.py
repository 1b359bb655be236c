"""Resuming never loses or mixes checkpoints and reproduces the uninterrupted run; the loop reports what it trained
(L-BFGS hits, partial epochs, the best weights by a loss); trackers and files are closed and written safely."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("torchmetrics")
pytest.importorskip("omegaconf")

from kanconvs.models import read_state_dict
from kanconvs.train import CheckpointError, ConfigError, Trainer, load_config
from kanconvs.train.checkpoint import list_checkpoints, save_checkpoint, verify_checkpoint

BASE = ["progress=false", "trackers=[jsonl]", "checkpoint.best_metric=null"]


def _cfg(out: Path, *extra: str) -> Any:
    return load_config("smoke", [*BASE, f"output_dir={out}", *extra])


def _run(out: Path, *extra: str) -> dict[str, Any]:
    return Trainer(_cfg(out, *extra)).fit()


def _untimed(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("images_per_s", "train_s")} for r in history]


def _snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------ checkpoints
def test_resume_from_elsewhere_into_a_directory_with_checkpoints_is_refused_and_touches_nothing(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _run(a, "epochs=1")
    _run(b, "epochs=1", "seed=7")  # another run's checkpoints 2 and 4
    before = _snapshot(b / "checkpoints")
    source = list_checkpoints(a / "checkpoints")[0]
    with pytest.raises(CheckpointError, match=f"output_dir='{b}' already holds checkpoints.*resume_from='{source}'"):
        _run(b, "epochs=2", f"resume_from={source}")
    assert _snapshot(b / "checkpoints") == before
    _run(tmp_path / "c", "epochs=2", f"resume_from={source}")  # a fresh output_dir may continue it
    assert [p.name for p in list_checkpoints(tmp_path / "c" / "checkpoints")] == [
        "checkpoint-00000006",
        "checkpoint-00000008",
    ]


def test_a_checkpoint_of_the_same_step_is_set_aside_not_deleted(tmp_path: Path) -> None:
    from accelerate import Accelerator

    acc = Accelerator(cpu=True)
    model = torch.nn.Linear(2, 1)
    acc.prepare(model, torch.optim.SGD(model.parameters(), lr=0.1))
    for run in ("other", "this", "third"):
        save_checkpoint(acc, tmp_path, 4, 2, {"run": {"id": run}})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["checkpoint-00000004", "replaced-checkpoint-00000004", "replaced-checkpoint-00000004.1"]
    assert verify_checkpoint(tmp_path / "replaced-checkpoint-00000004")["run"] == {"id": "other"}
    assert verify_checkpoint(tmp_path / "replaced-checkpoint-00000004.1")["run"] == {"id": "this"}
    assert verify_checkpoint(tmp_path / "checkpoint-00000004")["run"] == {"id": "third"}


def test_resuming_from_the_same_older_checkpoint_twice_keeps_every_abandoned_continuation(tmp_path: Path) -> None:
    run = tmp_path / "run"
    _run(run, "epochs=1")
    older, newest = list_checkpoints(run / "checkpoints")
    for _ in range(2):
        _run(run, "epochs=1", f"resume_from={older}")
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == [
        f"abandoned-{newest.name}",
        f"abandoned-{newest.name}.1",
        older.name,
        newest.name,
    ]
    for kept in (f"abandoned-{newest.name}", f"abandoned-{newest.name}.1", newest.name):
        verify_checkpoint(ckpts / kept)


def test_a_run_with_a_tuple_in_model_kwargs_resumes(tmp_path: Path) -> None:
    def cfg(*extra: str) -> Any:
        c = _cfg(tmp_path / "run", *extra)
        c.model.kwargs = {"widths": (4, 8, 8, 8)}
        return c

    Trainer(cfg("epochs=1")).fit()
    summary = Trainer(cfg("epochs=2", "resume=true")).fit()
    assert [r["epoch"] for r in summary["history"]] == [1, 2]


def test_a_run_stopped_by_max_steps_mid_epoch_continues_to_the_uninterrupted_result(tmp_path: Path) -> None:
    straight, run = tmp_path / "straight", tmp_path / "run"
    want = _run(straight, "epochs=1", "checkpoint.every_steps=null")
    stopped = _run(run, "epochs=1", "max_steps=2", "checkpoint.every_steps=null")
    assert stopped["history"] == [] and stopped["final"]["step"] == 2  # the partial epoch is reported, not kept
    got = _run(run, "epochs=1", "resume=true", "checkpoint.every_steps=null")
    assert _untimed(got["history"]) == _untimed(want["history"])
    a, b = read_state_dict(straight / "final"), read_state_dict(run / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1]


# ------------------------------------------------------------------------------------------------ reporting
def test_lbfgs_counts_its_training_hits(tmp_path: Path) -> None:
    summary = _run(tmp_path / "run", "epochs=1", "optim.name=lbfgs", "optim.lr=0.5", "optim.kwargs.max_iter=2")
    assert 0.0 < summary["final"]["train_top1"] <= 1.0


def test_best_weights_by_a_loss_are_the_lowest(tmp_path: Path) -> None:
    overrides = ["epochs=3", "checkpoint.best_metric=loss", "optim.lr=0.03"]
    summary = _run(tmp_path / "run", *overrides)
    losses = [r["val_loss"] for r in summary["history"]]
    assert min(losses) != max(losses) and summary["best"] == min(losses)
    mode = load_config(None, ["checkpoint.best_metric=loss"]).checkpoint
    assert (mode.best_mode, mode.resolved_best_mode()) == (None, "min")
    assert load_config(None).checkpoint.resolved_best_mode() == "max"  # top1
    explicit = load_config(None, ["checkpoint.best_metric=loss", "checkpoint.best_mode=max"]).checkpoint
    assert explicit.resolved_best_mode() == "max"  # an explicit mode wins


def test_class_weighted_losses_come_from_the_config(tmp_path: Path) -> None:
    from kanconvs.train.config import config_to_yaml

    focal = Trainer(_cfg(tmp_path / "a", "loss.name=focal", "loss.kwargs.alpha=[1,1,1,1,1,1,1,1,1,2]"))
    alpha = focal.loss_fn.alpha
    assert isinstance(alpha, torch.Tensor) and alpha.dtype == torch.float32 and alpha.tolist()[-1] == 2.0
    assert alpha.device == focal.accelerator.device
    weighted = Trainer(_cfg(tmp_path / "b", "loss.name=cross_entropy", "loss.kwargs.weight=[1,1,1,1,1,1,1,1,1,2]"))
    assert weighted.fit()["final"]["train_loss"] > 0
    with pytest.raises(ConfigError, match=r"loss.kwargs=\{'gama': 2\} do not fit loss 'focal'.*gama"):
        Trainer(_cfg(tmp_path / "c", "loss.name=focal", "loss.kwargs.gama=2"))
    with pytest.raises(ConfigError, match=r"loss.kwargs=.*alpha must be a list of numbers"):
        Trainer(_cfg(tmp_path / "d", "loss.name=focal", "loss.kwargs.alpha=[a,b]"))
    cfg = _cfg(tmp_path / "e", "loss.name=focal")
    cfg.loss.kwargs = {"alpha": torch.ones(10)}  # through the Python API: config.yaml holds a list
    assert "alpha:\n    - 1.0\n" in config_to_yaml(cfg)


# ------------------------------------------------------------------------------------------------ resources
def test_a_failed_fit_closes_its_trackers(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")

    class Pruned(Exception):
        pass

    def prune(record: dict[str, Any]) -> None:
        raise Pruned

    before = set(threading.enumerate())
    cfg = load_config("smoke", ["progress=false", "trackers=[tensorboard]", f"output_dir={tmp_path}", "epochs=2"])
    with pytest.raises(Pruned):
        Trainer(cfg, callbacks=[prune]).fit()
    assert list(tmp_path.rglob("*tfevents*"))
    assert [t.name for t in set(threading.enumerate()) - before] == []  # TensorBoard's writer thread has ended


def test_atomic_write_never_sets_the_umask_and_syncs_before_the_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kanconvs import _io

    mask = os.umask(0o027)
    os.umask(mask)
    synced: list[bool] = []

    def no_umask(value: int) -> int:
        raise AssertionError("atomic_write changed the process umask")

    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        synced.append(True)
        real_fsync(fd)

    def replace(src: str, dst: Any) -> None:
        assert synced and Path(src).read_text() == "data"  # the data reached the disk before the rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "umask", no_umask)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    target = tmp_path / "metrics.jsonl"
    _io.atomic_write(target, lambda tmp: Path(tmp).write_text("data"))
    assert target.read_text() == "data" and [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask


@pytest.mark.parametrize(
    "changed",
    ["optim.lr=0.0001", "data.train_limit=48", "schedule.name=cosine", "loss.kwargs.label_smoothing=0.1"],
)
def test_resume_refuses_changed_training_settings_and_names_them(tmp_path: Path, changed: str) -> None:
    """A setting that shapes the training may not change on resume: the checkpoint's learning rate and step count
    would silently win while config.yaml recorded the new value."""
    _run(tmp_path, "epochs=1")
    config = (tmp_path / "config.yaml").read_bytes()
    key = changed.split("=")[0].rsplit(".", 1)[0] if changed.startswith("loss.kwargs") else changed.split("=")[0]
    with pytest.raises(CheckpointError, match=rf"it was written with {key}="):
        _run(tmp_path, "epochs=2", "resume=true", changed)
    assert (tmp_path / "config.yaml").read_bytes() == config  # the refused run wrote nothing


def test_resume_may_extend_the_run_and_change_how_it_runs(tmp_path: Path) -> None:
    _run(tmp_path, "epochs=1")
    summary = _run(tmp_path, "epochs=2", "resume=true", "data.num_workers=0", "eval_every=2", "trackers=[jsonl,csv]")
    assert [r["epoch"] for r in summary["history"]] == [1, 2]
    assert "epochs: 2" in (tmp_path / "config.yaml").read_text()


def test_a_cosine_run_stopped_by_max_steps_continues_on_the_uninterrupted_schedule(tmp_path: Path) -> None:
    """The schedule spans the configured epochs; max_steps only stops the loop (it used to squeeze the whole decay
    into the steps before the stop, so the continued run differed from an uninterrupted one)."""
    straight = _run(tmp_path / "straight", "epochs=1", "schedule.name=cosine")
    _run(tmp_path / "cut", "epochs=1", "schedule.name=cosine", "max_steps=2")
    resumed = _run(tmp_path / "cut", "epochs=1", "schedule.name=cosine", "resume=true")
    assert _untimed(resumed["history"]) == _untimed(straight["history"])
    with pytest.raises(CheckpointError, match="it was written with epochs=1"):  # the schedule spans the epochs
        _run(tmp_path / "cut", "epochs=2", "schedule.name=cosine", "resume=true")


def test_the_short_last_accumulation_group_takes_the_mean_of_its_losses(tmp_path: Path) -> None:
    """With 5 batches and accumulation 2, the 5th batch makes a step alone. Accelerate divides every loss by 2, so
    that batch's loss is scaled by 2 first: its step's gradient is its loss's, not half of it."""
    from kanconvs.train import Trainer

    base = ["optim.name=sgd", "optim.lr=0.1", "data.train_limit=80", "data.augment=none", "epochs=1"]  # 5 batches
    cfg = _cfg(tmp_path / "acc", *base, "optim.accumulation_steps=2")
    trainer = Trainer(cfg)
    assert len(trainer.train_loader) == 5
    scales = []
    for index in range(5):
        trainer.state.batch_in_epoch = index
        scales.append(trainer._tail_scale())
    assert scales == [1.0, 1.0, 1.0, 1.0, 2.0]


@pytest.mark.parametrize("loss", ["bce", "dice", "dice_bce", "tversky"])
def test_a_mask_loss_on_a_classification_run_is_a_config_error(tmp_path: Path, loss: str) -> None:
    """Mask losses on integer labels used to train and then fail in the first evaluation."""
    with pytest.raises(ConfigError, match=f"loss.name='{loss}' takes segmentation masks"):
        Trainer(_cfg(tmp_path, f"loss.name={loss}"))


def test_the_recorded_lr_is_the_one_the_epoch_trained_with(tmp_path: Path) -> None:
    """With an exponential schedule (×0.5 per epoch) epoch 1 trains at lr and epoch 2 at lr/2: the records say so
    (they used to show the next epoch's rate)."""
    history = _run(tmp_path, "epochs=2", "optim.lr=0.01", "schedule.name=exponential", "schedule.kwargs.gamma=0.5")
    assert [r["lr"] for r in history["history"]] == pytest.approx([0.01, 0.005])
