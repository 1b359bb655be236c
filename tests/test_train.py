"""The training stack end to end: a smoke run's outputs, exact resume after a kill, evaluation, errors,
two-process launch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("accelerate")
pytest.importorskip("torchmetrics")
pytest.importorskip("omegaconf")

from kanconvs.models import read_state_dict
from kanconvs.train.faults import FAULT_ENV

SMOKE = ["smoke", "progress=false"]


def _cli(
    *args: str, env: dict[str, str] | None = None, launcher: list[str] | None = None
) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable, "-m"]), "kanconvs", *args]
    return subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=600
    )


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_smoke_run_writes_every_output_and_eval_reproduces_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = _cli("train", *SMOKE, f"output_dir={run}")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "final: val_loss=" in result.stdout and "val_top1" in result.stdout  # the summary table
    assert (run / "config.yaml").is_file() and (run / "metrics.csv").is_file()
    records = _records(run)
    assert [r["epoch"] for r in records] == [1, 2] and all(r["val_samples"] == 32 for r in records)
    assert all(0.0 <= r["val_top1"] <= 1.0 and r["val_top5"] >= r["val_top1"] for r in records)
    assert all(0.0 <= r["train_top1"] <= 1.0 for r in records)
    # 64 samples / batch 16 = 4 steps per epoch; checkpoints every 2 steps and at epoch ends, the last 2 kept
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["checkpoint-00000006", "checkpoint-00000008"]
    assert (run / "best" / "model.safetensors").is_file() and (run / "final" / "config.json").is_file()
    evaluated = _cli("eval", str(run), "--weights", "final", "--json")
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    metrics = json.loads(evaluated.stdout[evaluated.stdout.index("{") :])
    assert metrics["val_top1"] == pytest.approx(records[-1]["val_top1"])
    assert metrics["val_loss"] == pytest.approx(records[-1]["val_loss"], rel=1e-5)


def _tensorboard_scalars(run: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) of ``tag`` as TensorBoard shows it (purged events hidden)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run / "kanconvs"), purge_orphaned_data=True)  # output_dir/<project>
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.parametrize("fault", ["step@5", "checkpoint-write@6", "log@8"])
def test_resumed_run_after_a_sigkill_equals_an_uninterrupted_run(tmp_path: Path, fault: str) -> None:
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    options = ["data.augment=mnist", "checkpoint.every_steps=3", "trackers=[jsonl,csv,tensorboard]"]
    assert _cli("train", *SMOKE, *options, f"output_dir={straight}").returncode == 0
    crashed = _cli("train", *SMOKE, *options, f"output_dir={killed}", env={FAULT_ENV: fault})
    assert crashed.returncode == -signal.SIGKILL
    assert not (killed / "final").exists()
    refused = _cli("train", *SMOKE, *options, f"output_dir={killed}")
    assert refused.returncode == 2 and "resume=true" in refused.stderr
    resumed = _cli("train", *SMOKE, *options, f"output_dir={killed}", "resume=true")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed from" in resumed.stderr  # logged
    a, b = read_state_dict(straight / "final"), read_state_dict(killed / "final")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    timing = ("images_per_s", "train_s")
    untimed = [{k: v for k, v in r.items() if k not in timing} for r in _records(straight)]
    assert [{k: v for k, v in r.items() if k not in timing} for r in _records(killed)] == untimed
    for tag in ("epoch/val_loss", "epoch/train_loss"):  # one point per epoch, the uninterrupted run's values
        want = _tensorboard_scalars(straight, tag)
        assert [s for s, _ in want] == [4, 8]
        assert _tensorboard_scalars(killed, tag) == want


def test_bad_configs_and_missing_data_give_clear_errors(tmp_path: Path) -> None:
    result = _cli("train", "smoke", "optim.weight_decy=0.1")
    assert result.returncode == 2 and "did you mean 'optim.weight_decay'" in result.stderr
    assert "Traceback" not in result.stderr
    result = _cli("train", "smoke", "epochs=two")
    assert result.returncode == 2 and "'epochs'" in result.stderr
    result = _cli("train", "smoke", "data.name=mnist", f"data.data_dir={tmp_path}", f"output_dir={tmp_path / 'r'}")
    assert result.returncode == 2 and "download=True" in result.stderr and "Traceback" not in result.stderr
    result = _cli("train", "no-such-config")
    assert result.returncode == 2 and "shipped config" in result.stderr


def test_corrupt_or_mismatched_checkpoint_is_reported(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert _cli("train", *SMOKE, f"output_dir={run}", "epochs=1").returncode == 0
    last = sorted((run / "checkpoints").iterdir())[-1]
    (last / "model.safetensors").write_bytes(b"garbage")
    result = _cli("train", *SMOKE, f"output_dir={run}", "epochs=2", "resume=true")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "model.safetensors is corrupt or truncated" in result.stderr
    other = tmp_path / "other"
    assert _cli("train", *SMOKE, f"output_dir={other}", "epochs=1").returncode == 0
    result = _cli("train", *SMOKE, f"output_dir={other}", "epochs=2", "resume=true", "model.kwargs.widths=[4,8,8,16]")
    assert result.returncode == 2 and "it was written with model.kwargs=" in result.stderr  # a mismatched checkpoint


def test_two_cpu_processes_gather_metrics_over_the_whole_validation_set(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    # torchrun starts the processes; Accelerate sees the distributed environment and uses gloo on the CPU
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29531", "-m"]
    # 30 validation samples do not split evenly over 2 processes × batch 16: gathering must drop the padding
    result = _cli("train", *SMOKE, f"output_dir={run}", "data.val_limit=30", "epochs=1", "cpu=true", launcher=launcher)
    assert result.returncode == 0, result.stdout + result.stderr
    records = _records(run)
    assert len(records) == 1 and records[0]["val_samples"] == 30
    # 64 samples over 2 processes = 2 batches of 16 each per epoch: 2 optimiser steps
    assert records[0]["step"] == 2
    assert (run / "checkpoints" / "checkpoint-00000002" / "model.safetensors").is_file()
    assert result.stdout.count("final:") == 1  # printed by the main process only


def test_seeded_items_make_augmentation_a_function_of_seed_epoch_and_index() -> None:
    from kanconvs.data import build_transforms, create_dataset
    from kanconvs.train.sampling import EpochSampler, SeededItems

    data = create_dataset("mnist-10k", "test", limit=8, transform=build_transforms("mnist-10k", train=True))
    items = SeededItems(data, seed=3)
    before = torch.random.get_rng_state()
    assert torch.equal(items[(0, 5)][0], items[(0, 5)][0])
    assert not torch.equal(items[(0, 5)][0], items[(1, 5)][0])  # a new epoch, a new augmentation
    assert torch.equal(torch.random.get_rng_state(), before)  # the global RNG is untouched
    sampler = EpochSampler(8, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(i for _, i in first) == list(range(8)) and {e for e, _ in second} == {1}
    assert [i for _, i in first] != [i for _, i in second]
    sampler.set_epoch(0)
    assert list(sampler) == first


def test_lbfgs_trains_through_its_closure(tmp_path: Path) -> None:
    from kanconvs.train import load_config, train

    cfg = load_config("smoke", ["optim.name=lbfgs", "optim.lr=0.5", "epochs=1", "trackers=[]", "progress=false",
                                "checkpoint.every_steps=null", f"output_dir={tmp_path}"])  # fmt: skip
    summary = train(cfg)
    losses = [r["train_loss"] for r in summary["history"]]
    assert all(torch.isfinite(torch.tensor(losses))) and summary["final"]["val_samples"] == 32


def test_config_accepts_a_bare_no_for_mixed_precision() -> None:
    from kanconvs.train import ConfigError, load_config

    assert load_config(None, ["mixed_precision=no"]).mixed_precision == "no"
    assert load_config(None, ["mixed_precision=bf16"]).mixed_precision == "bf16"
    with pytest.raises(ConfigError, match="mixed_precision must be 'no', 'fp16' or 'bf16', got 'fp8'"):
        load_config(None, ["mixed_precision=fp8"])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.grad_clip=-1", "optim.grad_clip must be > 0 or null, got -1"),
        ("checkpoint.best_metric=bogus", "checkpoint.best_metric must be one of .* or null, got 'bogus'"),
        ("data.image_size=0", "data.image_size must be >= 1 or null, got 0"),
        ("loss.aux_weight=-1", "loss.aux_weight must be >= 0, got -1"),
        ("optim.weight_decay=-0.1", "optim.weight_decay must be >= 0, got -0.1"),
        ("checkpoint.every_steps=0", "checkpoint.every_steps must be >= 1 or null, got 0"),
        ("seed=-1", r"seed must be in \[0, 2\*\*32 - 1\], got -1"),
        ("seed=4294967296", r"seed must be in \[0, 2\*\*32 - 1\], got 4294967296"),
        ("data.eval_batch_size=0", r"data.eval_batch_size must be >= 1 or null \(null: data.batch_size\), got 0"),
        ("data.eval_batch_size=-4", "data.eval_batch_size must be >= 1 or null .* got -4"),
        ("data.train_limit=0", "data.train_limit must be >= 1 or null .* got 0"),
        ("data.val_limit=-1", "data.val_limit must be >= 1 or null .* got -1"),
        ("checkpoint.best_mode=low", "checkpoint.best_mode must be 'max', 'min' or null, got 'low'"),
    ],
)
def test_values_that_would_train_wrongly_are_refused(override: str, message: str) -> None:
    from kanconvs.train import ConfigError, load_config

    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("- epochs: 1\n", "must be a mapping of keys .* got a ListConfig"),
        ("epochs: [1,\n", "is not valid YAML"),
    ],
)
def test_bad_yaml_files_are_refused(tmp_path, text: str, message: str) -> None:
    from kanconvs.train import ConfigError, load_config

    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_fp16_on_a_cpu_is_refused(tmp_path) -> None:
    from kanconvs.train import ConfigError, Trainer, load_config

    cfg = load_config("smoke", [f"output_dir={tmp_path}", "mixed_precision=fp16", "cpu=true"])
    with pytest.raises(ConfigError, match="mixed_precision=fp16 needs a CUDA GPU"):
        Trainer(cfg)


@pytest.mark.parametrize("project", ["../../x", "/tmp/x", "a/b", "..", ".hidden"])
def test_project_cannot_point_outside_the_run_directory(project: str) -> None:
    from kanconvs.train import ConfigError, load_config

    with pytest.raises(ConfigError, match="project must be a plain name"):
        load_config(None, [f"project={project}"])
    assert load_config(None, ["project=my-run_2.1"]).project == "my-run_2.1"


def test_every_shipped_config_loads_and_names_a_registered_model_and_dataset() -> None:
    from kanconvs.data import list_datasets
    from kanconvs.models import list_models
    from kanconvs.train import list_configs, load_config

    names = list_configs()
    assert {"smoke", "mnist-kagn-quick", "mnist-baseline", "fashion-mnist-baseline", "cifar10-baseline"} <= set(names)
    for name in names:
        cfg = load_config(name)
        assert cfg.model.name in list_models(), name
        assert cfg.data.name in list_datasets(), name


def test_segmentation_run_on_an_image_and_mask_folder(tmp_path: Path) -> None:
    from PIL import Image

    from kanconvs.train import load_config, train

    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "masks" / "0").mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for i in range(10):  # a bright square on a dark background; the mask marks the square
        image = torch.zeros(32, 32, 3, dtype=torch.uint8)
        r, c = torch.randint(0, 16, (2,), generator=generator).tolist()
        image[r : r + 12, c : c + 12] = 220
        Image.fromarray(image.numpy()).save(tmp_path / "data" / "images" / f"{i}.png")
        Image.fromarray((image[..., 0] > 0).to(torch.uint8).numpy() * 255).save(
            tmp_path / "data" / "masks" / "0" / f"{i}.png"
        )
    cfg = load_config("medseg-ukagnet", [
        f"data.data_dir={tmp_path / 'data'}", "data.image_size=32", "data.batch_size=4", "data.num_workers=0",
        "model.kwargs.unet_depth=2", "model.kwargs.width_scale=1", "epochs=1", "mixed_precision=no",
        "trackers=[jsonl]", "progress=false", "schedule.warmup_steps=0", f"output_dir={tmp_path / 'run'}",
    ])  # fmt: skip
    summary = train(cfg)
    final = summary["final"]
    assert final["val_samples"] == 2  # 20 % of 10 images
    assert 0.0 <= final["val_dice"] <= 1.0 and 0.0 <= final["val_iou"] <= final["val_dice"] + 1e-6
    assert (tmp_path / "run" / "best" / "model.safetensors").is_file()  # best by val_dice


def test_training_loss_includes_the_layers_auxiliary_losses(tmp_path: Path) -> None:
    from kanconvs.layers.regularization import regularization_loss
    from kanconvs.train import Trainer, load_config

    cfg = load_config("smoke", ["model.kwargs.weight_l1=0.001", "loss.aux_weight=2.0", f"output_dir={tmp_path}"])
    trainer = Trainer(cfg)
    x, y = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 3])
    out = trainer.unwrapped(x)
    penalty = regularization_loss(trainer.unwrapped)
    assert penalty > 0  # L1 of every layer but the first
    expected = torch.nn.functional.cross_entropy(out, y) + 2.0 * penalty
    torch.testing.assert_close(trainer._loss(out, y), expected)


def test_weights_and_biases_offline_run_logs_the_epoch_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_DIR", raising=False)  # without it, W&B's files must land in the run directory
    run = tmp_path / "run"
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "HOME": str(tmp_path)}
    result = _cli("train", *SMOKE, f"output_dir={run}", "trackers=[jsonl,wandb]", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    logs = list((run / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 1, sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    blob = logs[0].read_bytes()
    # the offline log is a stream of records: every epoch's metrics must be in it, under their keys, with their values
    for record in _records(run):
        for key in ("val_loss", "train_loss", "val_top1"):
            assert f"epoch/{key}".encode() in blob
            assert json.dumps(record[key]).encode() in blob, (key, record[key])


def test_cli_errors_are_one_line_on_stderr_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kanconvs.cli import main

    def fails(*args: str) -> str:
        assert main(["train", "smoke", "progress=false", *args]) == 2
        captured = capsys.readouterr()
        assert captured.err.startswith("kanconvs train: error: ") and captured.err.count("\n") == 1
        return captured.err

    assert "model 'simple_kagn_4' does not take the option 'foo'" in fails(
        "model.kwargs.foo=1", f"output_dir={tmp_path}/a"
    )
    afile = tmp_path / "file"
    afile.write_text("")
    assert "is a file" in fails(f"output_dir={afile}")
    assert "needs inputs of at least 5×5; this run's are 4×4" in fails("data.image_size=4", f"output_dir={tmp_path}/b")
    run = tmp_path / "run"
    assert main(["train", "smoke", "progress=false", "epochs=1", f"output_dir={run}"]) == 0
    capsys.readouterr()
    assert "optim.name='adamw' (this run: 'sgd')" in fails(f"output_dir={run}", "resume=true", "optim.name=sgd")
    assert "holds no complete checkpoint" in fails(f"output_dir={tmp_path}/fresh", "resume=true")


def test_overrides_may_follow_options_as_help_shows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from kanconvs.cli import main

    run = tmp_path / "run"
    assert main(["train", "smoke", "progress=false", "epochs=1", f"output_dir={run}"]) == 0
    assert main(["eval", str(run), "--weights", "final", "data.val_limit=8", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.rindex("{") :])["val_samples"] == 8  # the override placed after --weights applied
    with pytest.raises(SystemExit):  # an unknown option is still argparse's usage error
        main(["eval", str(run), "--weights", "final", "--bogus"])
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {type: float, low: 0.001, high: 0.01, log: true}\n")
    tuned = tmp_path / "tune"
    code = main(["tune", "smoke", "--space", str(space), "--trials", "1", "epochs=1", "trackers=[]",
                 f"output_dir={tuned}", "progress=false"])  # fmt: skip
    assert code == 0 and (tuned / "trial-000" / "final").is_dir()
