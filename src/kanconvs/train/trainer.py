"""The training loop, on Hugging Face Accelerate: the same code on a CPU, one GPU, or many GPUs and nodes
(``accelerate launch``).

One epoch = the training split once, in an order and with augmentations fixed by ``(seed, epoch)``
(:mod:`kanconvs.train.sampling`); the loss is the task loss plus ``loss.aux_weight`` × the layers' auxiliary
losses (MoE balance, L1/L2 penalties, :func:`kanconvs.regularization_loss`). Every batch reseeds the
global RNGs from ``(seed, epoch, batch, process)``, so dropout and batch mixing are a function of the position in the
run: with the checkpoints (:mod:`kanconvs.train.checkpoint`), which also carry the epoch's running sums, a run
killed at any point and resumed ends with the weights, and the metrics of every epoch, of an uninterrupted run.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .._io import atomic_write_text
from ..data import build_transforms, create_dataset, create_loader, dataset_info
from ..models import create_model, save_pretrained
from .checkpoint import (
    _NAME,
    CheckpointError,
    TrainState,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    set_aside,
)
from .config import ConfigError, TrainConfig, config_fingerprint, config_to_yaml
from .faults import fault_point
from .losses import create_loss, list_losses
from .metrics import classification_metrics, segmentation_metrics
from .optim import create_optimizer, create_scheduler, lbfgs_closure
from .sampling import EpochSampler, SeededItems, key_seed
from .tracking import RunLogger, format_table

__all__ = ["Trainer", "model_kwargs_for", "train"]

_LOGGER = logging.getLogger(__name__)


def _accelerate() -> Any:
    try:
        import accelerate
    except ImportError as err:
        raise ImportError("training needs accelerate: pip install 'kanconvs[train]'") from err
    return accelerate


def model_kwargs_for(cfg: TrainConfig, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of ``create_model(cfg.model.name, …)`` for a run: ``cfg.model.kwargs`` and ``overrides``,
    with the dataset's input channels and classes as defaults."""
    info = dataset_info(cfg.data.name)
    kwargs = {**cfg.model.kwargs, **overrides}
    kwargs.setdefault("in_channels", info.in_channels)
    if info.num_classes:
        kwargs.setdefault("num_classes", info.num_classes)
    return kwargs


def _hard_labels(targets: Tensor) -> Tensor:
    """Class indices; soft (MixUp/CutMix) label rows give their dominant class."""
    return targets.argmax(1) if targets.dim() == 2 else targets


def _first(output: Any) -> Tensor:
    """The main prediction of a model that may return several (deep supervision, side outputs)."""
    return output[0] if isinstance(output, (tuple, list)) else output


class Trainer:
    """Builds data, model, optimiser, schedule, loss and metrics from a :class:`TrainConfig` and trains.

    Examples:
        >>> from kanconvs.train import load_config
        >>> cfg = load_config(
        ...     None,
        ...     [
        ...         "data.train_limit=32",
        ...         "data.val_limit=16",
        ...         "data.batch_size=16",
        ...         "model.kwargs.widths=[4,8,8,8]",
        ...         "progress=false",
        ...         "trackers=[]",
        ...         "checkpoint.best_metric=null",
        ...     ],
        ... )
        >>> import tempfile
        >>> cfg.output_dir = tempfile.mkdtemp()
        >>> summary = Trainer(cfg).fit()  # the epoch table is logged (``kanconvs.train.trainer``)
        >>> sorted(summary["final"])[:3]
        ['epoch', 'images_per_s', 'lr']
    """

    def __init__(self, cfg: TrainConfig, callbacks: Sequence[Callable[[dict[str, Any]], None]] = ()) -> None:
        accelerate = _accelerate()
        self.cfg = cfg.validate()
        self.callbacks = list(callbacks)  # called with each epoch's record (e.g. a tuner's pruning check)
        self.out = Path(cfg.output_dir)
        trackers = [t for t in cfg.trackers if t in ("tensorboard", "wandb")]
        on_gpu = torch.cuda.is_available() and not cfg.cpu
        if cfg.mixed_precision == "fp16" and not on_gpu:  # Accelerate would silently train in fp32
            raise ConfigError("mixed_precision=fp16 needs a CUDA GPU; on the CPU use bf16 or no")
        self.accelerator = accelerate.Accelerator(
            mixed_precision=cfg.mixed_precision,
            gradient_accumulation_steps=cfg.optim.accumulation_steps,
            cpu=cfg.cpu,
            log_with=trackers or None,
            project_dir=str(self.out),
            # pinned host batches copied asynchronously, as a hand-written loop would
            dataloader_config=accelerate.DataLoaderConfiguration(non_blocking=on_gpu),
        )
        accelerate.utils.set_seed(cfg.seed)
        self._build()

    # ------------------------------------------------------------------------------------------------ set-up
    def _build(self) -> None:
        cfg, acc = self.cfg, self.accelerator
        info = dataset_info(cfg.data.name)
        self.task = info.task
        data_opts = {"data_dir": cfg.data.data_dir, "download": cfg.data.download, "seed": cfg.seed, **cfg.data.kwargs}
        tf: dict[str, Any] = {"augment": cfg.data.augment, "image_size": cfg.data.image_size}
        with acc.main_process_first():  # one process downloads
            train_ds = create_dataset(
                cfg.data.name, "train", limit=cfg.data.train_limit,
                transform=build_transforms(info, train=True, **tf), **data_opts,
            )  # fmt: skip
            val_ds = create_dataset(
                cfg.data.name, "val", limit=cfg.data.val_limit,
                transform=build_transforms(info, train=False, **tf), **data_opts,
            )  # fmt: skip
        model_kwargs = model_kwargs_for(cfg)
        self.num_classes = int(model_kwargs.get("num_classes", 0))
        try:
            model = create_model(cfg.model.name, **model_kwargs)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"model.kwargs: {err}") from None
        self.unwrapped = model

        self.sampler = EpochSampler(len(train_ds), seed=cfg.seed, shuffle=True)  # type: ignore[arg-type]
        train_loader = create_loader(
            SeededItems(train_ds, cfg.seed), cfg.data.batch_size, train=True, num_workers=cfg.data.num_workers,
            sampler=self.sampler,
        )  # fmt: skip
        val_loader = create_loader(
            val_ds, cfg.data.eval_batch_size or cfg.data.batch_size, train=False, num_workers=cfg.data.num_workers
        )
        if len(train_loader) == 0:
            raise ValueError(
                f"data.batch_size ({cfg.data.batch_size}) is larger than the training set ({len(train_ds)} samples)"  # type: ignore[arg-type]
            )
        self.mix: Callable[..., Any] | None = None
        if cfg.data.mixup_alpha or cfg.data.cutmix_alpha:
            from ..data import MixCollate

            self.mix = MixCollate(self.num_classes, cfg.data.mixup_alpha, cfg.data.cutmix_alpha).mix

        optim = cfg.optim
        optim_kwargs = dict(optim.kwargs)
        if acc.device.type == "cuda" and optim.name == "adamw":
            model.to(acc.device)  # params on the GPU first, so AdamW can use its fused kernel (one launch per step)
            optim_kwargs.setdefault("fused", True)
        self.optimizer = create_optimizer(model, optim.name, optim.lr, optim.weight_decay, **optim_kwargs)
        # Modules that report auxiliary losses (MoE balance, penalties), found once rather than every step.
        self.aux_modules = [m for m in model.modules() if callable(getattr(m, "regularization_loss", None))]
        if cfg.optim.name == "lbfgs" and cfg.optim.accumulation_steps > 1:
            raise ValueError("optim.accumulation_steps must be 1 with LBFGS (it evaluates the loss several times)")
        if cfg.model.compile:
            model = torch.compile(model)  # type: ignore[assignment]
        self.model, self.optimizer, self.train_loader, self.val_loader = acc.prepare(
            model, self.optimizer, train_loader, val_loader
        )
        self.steps_per_epoch = math.ceil(len(self.train_loader) / cfg.optim.accumulation_steps)
        total = cfg.epochs * self.steps_per_epoch
        # The schedule spans the configured epochs; max_steps only stops the loop, so a run it stopped continues on
        # the same schedule (and ends where an uninterrupted run ends).
        self.total_steps = min(total, cfg.max_steps) if cfg.max_steps else total
        # Stepped by us once per optimiser step (not prepared: Accelerate would step it once per process).
        schedule_kwargs = dict(cfg.schedule.kwargs)
        if cfg.schedule.name == "exponential":  # its gamma is per epoch
            schedule_kwargs.setdefault("steps_per_epoch", self.steps_per_epoch)
        self.scheduler = create_scheduler(
            self.optimizer, cfg.schedule.name, total_steps=total, warmup_steps=cfg.schedule.warmup_steps,
            **schedule_kwargs,
        )  # fmt: skip
        default_loss = "dice_bce" if self.task == "segmentation" else "cross_entropy"
        loss_name = cfg.loss.name or default_loss
        if loss_name not in list_losses():
            raise ConfigError(f"loss.name={loss_name!r} is not a loss; expected one of {list_losses()}")
        if self.task != "segmentation" and loss_name in _MASK_LOSSES:
            raise ConfigError(
                f"loss.name={loss_name!r} takes segmentation masks; a classification run (integer labels) takes "
                "'cross_entropy' or 'focal'"
            )
        try:
            self.loss_fn = create_loss(loss_name, **cfg.loss.kwargs).to(acc.device)  # class weights live there too
        except (TypeError, ValueError) as err:
            raise ConfigError(f"loss.kwargs={dict(cfg.loss.kwargs)!r} do not fit loss {loss_name!r}: {err}") from None
        self.ema: nn.Module | None = None
        if cfg.model.ema_decay is not None:
            if acc.distributed_type.name == "FSDP":
                raise ValueError("model.ema_decay is not supported with FSDP (the EMA copy would not be sharded)")
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(
                self.unwrapped, multi_avg_fn=get_ema_multi_avg_fn(cfg.model.ema_decay), use_buffers=True
            ).to(acc.device)
        self.state = TrainState()
        # This process's running sums over the current epoch (loss × samples, correct top-1, samples, seconds):
        # saved with mid-epoch checkpoints, so a resumed epoch reports the numbers of an uninterrupted one.
        self.sums = torch.zeros(2, device=acc.device)
        self.seen, self.elapsed = 0, 0.0
        self.partial: dict[str, Any] | None = None  # the record of an epoch that max_steps cut short
        self.step_lr: float | None = None
        if self.task == "segmentation":
            self.metrics = segmentation_metrics(self.num_classes)
        else:
            self.metrics = classification_metrics(self.num_classes, full=cfg.metrics == "full")
        self.metrics = self.metrics.to(acc.device)
        for metric in self.metrics.values():  # inputs are gathered across processes already: no second sync
            metric.sync_on_compute = False
        self.logger = RunLogger(acc, self.out, list(cfg.trackers))

    # ------------------------------------------------------------------------------------------------ checkpoints
    def _fingerprint(self) -> dict[str, Any]:
        """What a resumed run must share with the run that wrote the checkpoint (:func:`config_fingerprint`)."""
        return config_fingerprint(self.cfg)

    def _checkpoint(self) -> None:
        acc, step = self.accelerator, self.state.global_step
        ranks = acc.gather(
            torch.cat([self.sums.float(), torch.tensor([float(self.seen), self.elapsed], device=acc.device)])
        )
        state = {
            "state": self.state.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch_sums": ranks.view(-1, 4).tolist(),
            "processes": acc.num_processes,
            "run": self._fingerprint(),
        }
        tensors = {"ema": self.ema.state_dict()} if self.ema is not None else None
        save_checkpoint(acc, self.out / "checkpoints", step, self.cfg.checkpoint.keep_last, state, tensors)

    def _resume(self) -> None:
        """Restore the checkpoint named by ``resume_from``, or with ``resume`` the newest one; refuse to overwrite a
        run's checkpoints otherwise."""
        cfg, acc = self.cfg, self.accelerator
        ckpt_dir = self.out / "checkpoints"
        newer: list[Path] = []  # checkpoints of the continuation being abandoned
        if cfg.resume_from is not None:
            path = Path(cfg.resume_from)
            if not path.is_dir():
                raise CheckpointError(f"resume_from={cfg.resume_from!r} is not a checkpoint directory")
            if path.resolve().parent == ckpt_dir.resolve() and _NAME.match(path.name):  # one of this run's
                newer = [p for p in list_checkpoints(ckpt_dir) if p.name > path.name]
            elif latest_checkpoint(ckpt_dir) is not None:  # the new checkpoints would mix with (and prune) those
                raise CheckpointError(
                    f"output_dir={str(self.out)!r} already holds checkpoints ({ckpt_dir}), and "
                    f"resume_from={cfg.resume_from!r} is not one of them: continue that checkpoint in a new output_dir"
                )
        elif cfg.resume:
            found = latest_checkpoint(ckpt_dir)
            if found is None:
                raise CheckpointError(
                    f"resume=true, but {ckpt_dir} holds no complete checkpoint to continue from; "
                    "run without resume=true to start this run from the beginning"
                )
            path = found
        else:
            if latest_checkpoint(ckpt_dir) is not None:
                raise CheckpointError(
                    f"{ckpt_dir} already holds checkpoints: pass resume=true to continue that run, "
                    "or pick a new output_dir"
                )
            return
        saved, extras = load_checkpoint(acc, path, self._fingerprint())
        self.state.load_state_dict(saved["state"])
        if self.state.batch_in_epoch and saved["processes"] != acc.num_processes:
            raise CheckpointError(
                f"{path} was written mid-epoch by {saved['processes']} processes; resume it with the same number "
                f"(this run has {acc.num_processes}), or from an epoch-end checkpoint"
            )
        self.scheduler.load_state_dict(saved["scheduler"])
        if self.ema is not None:
            if "ema" not in extras:
                raise CheckpointError(f"{path} holds no EMA weights, but model.ema_decay is set")
            self.ema.load_state_dict(extras["ema"])
        if self.state.batch_in_epoch:
            loss_sum, correct, seen, elapsed = saved["epoch_sums"][acc.process_index]
            self.sums = torch.tensor([loss_sum, correct], device=acc.device)
            self.seen, self.elapsed = int(seen), float(elapsed)
        if acc.is_main_process:  # set aside (never delete) the later checkpoints of the abandoned continuation
            for checkpoint in newer:
                set_aside(checkpoint, "abandoned")
        acc.wait_for_everyone()
        if acc.is_main_process:
            _LOGGER.info(f"resumed from {path} (epoch {self.state.epoch}, step {self.state.global_step})")

    # ------------------------------------------------------------------------------------------------ loop
    def fit(self) -> dict[str, Any]:
        """Train (resuming if configured), evaluate, checkpoint; returns ``{"final", "best", "history"}``.

        A run that ``max_steps`` stops part-way through an epoch reports that partial epoch as ``final`` (and logs
        it), but keeps it out of ``history`` and saves the epoch's running sums: a run that continues it (a larger
        ``max_steps``, or none) gets the history of an uninterrupted run.
        """
        try:
            return self._fit()
        finally:  # also when training raises (a tuner's pruning, Ctrl-C): close the trackers' files and threads
            self.accelerator.end_training()

    def _fit(self) -> dict[str, Any]:
        cfg, acc = self.cfg, self.accelerator
        if self.out.exists() and not self.out.is_dir():
            raise ConfigError(f"output_dir={str(self.out)!r} is a file; give a directory")
        self._resume()
        if acc.is_main_process:
            self.out.mkdir(parents=True, exist_ok=True)
            text = config_to_yaml(cfg)  # on resume, differs from the checkpoint's run only in RESUMABLE settings
            atomic_write_text(self.out / "config.yaml", text)
        # The files hold the checkpoint's epochs exactly: rows a killed process logged after it are dropped.
        self.logger.restore(self.state.history)
        if any(t in cfg.trackers for t in ("tensorboard", "wandb")):
            # W&B writes its files into the run directory unless WANDB_DIR says otherwise; TensorBoard hides the
            # events a killed process logged after the checkpoint (purge_step).
            init_kwargs: dict[str, Any] = {"tensorboard": {"purge_step": self.state.global_step + 1}}
            if "WANDB_DIR" not in os.environ:
                init_kwargs["wandb"] = {"dir": str(self.out)}
            acc.init_trackers(cfg.project, config=_flat_config(cfg), init_kwargs=init_kwargs)
        done = self.state.global_step >= self.total_steps
        batches = len(self.train_loader)
        while self.state.epoch < cfg.epochs and not done:
            epoch = self.state.epoch
            loader = self.train_loader
            if self.state.batch_in_epoch:
                loader = acc.skip_first_batches(self.train_loader, self.state.batch_in_epoch)
            # Accelerate's loaders set their sampler's epoch from their own iteration count, which restarts at 0 in
            # a resumed process: tell them the real epoch.
            loader.set_epoch(epoch)
            self.sampler.set_epoch(epoch)
            self.model.train()
            started = time.perf_counter()
            bar = self._progress(batches, self.state.batch_in_epoch, f"epoch {epoch + 1}/{cfg.epochs}")
            for inputs, targets in loader:
                self._seed_batch(epoch, self.state.batch_in_epoch)
                loss, hits = self._train_step(inputs, targets)
                self.state.batch_in_epoch += 1
                self.seen += inputs.shape[0]
                # The loss stays on the device: reading it every step would stall the GPU queue (one sync per step).
                self.sums[0] += loss.float() * inputs.shape[0]
                if hits is not None:
                    self.sums[1] += hits
                if bar is not None:
                    bar.update(1)
                    if self.state.batch_in_epoch % 25 == 1:  # a live loss costs a sync: refresh it now and then
                        bar.set_postfix(loss=f"{float(loss):.4f}", lr=f"{self._lr():.2e}")
                if not acc.sync_gradients:
                    continue
                self.state.global_step += 1
                fault_point("step", self.state.global_step)
                if self.state.global_step >= self.total_steps:
                    done = True
                    break
                every = cfg.checkpoint.every_steps
                # not at an epoch's last step: the epoch-end checkpoint of that same step follows
                if every and self.state.global_step % every == 0 and self.state.batch_in_epoch < batches:
                    self.elapsed += time.perf_counter() - started
                    started = time.perf_counter()
                    self._checkpoint()
            if bar is not None:
                bar.close()
            self.elapsed += time.perf_counter() - started
            if self.state.batch_in_epoch >= batches:
                self.state.epoch += 1
                self.state.batch_in_epoch = 0
            counts = [self.sums[0], torch.tensor(float(self.seen), device=acc.device), self.sums[1]]
            totals = acc.reduce(torch.stack(counts), "sum")
            elapsed = float(acc.reduce(torch.tensor(self.elapsed, device=acc.device), "mean"))
            record: dict[str, Any] = {
                "epoch": self.state.epoch,
                "step": self.state.global_step,
                "lr": self.step_lr if self.step_lr is not None else self._lr(),  # of the epoch's last step
                "train_loss": float(totals[0] / totals[1].clamp_min(1)),
                # on the augmented (and mixed) training batches, in training mode, as the weights moved
                "train_top1": float(totals[2] / totals[1].clamp_min(1)) if self.task == "classification" else None,
                "images_per_s": float(totals[1]) / elapsed if elapsed > 0 else None,
                "train_s": elapsed,  # the training loop's seconds this epoch (evaluation excluded); the bench sums them
            }
            partial = self.state.batch_in_epoch > 0  # stopped by max_steps: the checkpoint keeps the running sums
            if not partial:
                self.sums.zero_()
                self.seen, self.elapsed = 0, 0.0
            if self.state.epoch % cfg.eval_every == 0 or done or self.state.epoch == cfg.epochs:
                record.update(self.evaluate())
            self._track_best(record)
            if partial:
                self.partial = record
            else:
                self.state.history.append(record)
            self.logger.log(record, self.state.global_step)
            fault_point("log", self.state.global_step)
            self._checkpoint()
            for callback in self.callbacks:
                callback(record)
        return self._finish()

    def _seed_batch(self, epoch: int, batch: int) -> None:
        """Seed every global RNG from the batch's place in the run (dropout, mixing, stochastic depth)."""
        seed = key_seed(self.cfg.seed, epoch, batch, self.accelerator.process_index)
        random.seed(seed)
        torch.default_generator.manual_seed(seed)
        if torch.cuda.is_initialized():  # otherwise torch.manual_seed would queue a lazy CUDA seed (and a traceback)
            torch.cuda.manual_seed_all(seed)
        try:
            import numpy as np

            np.random.seed(seed % 2**32)
        except ImportError:  # numpy is optional for torch
            pass

    def _train_step(self, inputs: Tensor, targets: Tensor) -> tuple[Tensor, Tensor | None]:
        """One optimiser micro-step; returns the loss and (classification) the number of correct top-1 labels."""
        acc, cfg = self.accelerator, self.cfg
        if self.mix is not None:
            inputs, targets = self.mix(inputs, targets)
        with acc.accumulate(self.model):
            if cfg.optim.name == "lbfgs":
                # The loss and hits of the closure's first evaluation (the weights before the step), as the other
                # optimisers report them; Accelerate's optimizer wrapper does not return the closure's loss.
                first: list[tuple[Tensor, Tensor | None]] = []

                def scored(output: Any, target: Tensor) -> Tensor:
                    loss = self._loss(output, target)
                    if not first:
                        first.append((loss.detach(), self._hits(_first(output), target)))
                    return loss

                closure = lbfgs_closure(self.model, scored, inputs, targets, self.optimizer, backward=acc.backward)
                self.optimizer.step(closure)  # type: ignore[arg-type]
                loss, hits = first[0]
            else:
                output = self._forward(self.model, inputs)
                loss = self._loss(output, targets)
                hits = self._hits(_first(output), targets)
                acc.backward(loss * self._tail_scale())
                if acc.sync_gradients:
                    fault_point("mid-step", self.state.global_step + 1)
                if acc.sync_gradients and cfg.optim.grad_clip:
                    acc.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
            if acc.sync_gradients:
                self.step_lr = self._lr()  # the rate this step used (the record's; the scheduler moves on now)
                self.scheduler.step()
                if self.ema is not None:
                    self.ema.update_parameters(self.unwrapped)  # type: ignore[operator]
        return loss.detach(), hits

    def _tail_scale(self) -> float:
        """Accelerate divides every loss by ``accumulation_steps``; an epoch's short last group of ``r`` micro-batches
        needs ``accumulation_steps / r`` for its step to take the mean of its losses, like every other step."""
        accum, batches = self.cfg.optim.accumulation_steps, len(self.train_loader)
        tail = batches % accum
        return accum / tail if tail and self.state.batch_in_epoch >= batches - tail else 1.0

    def _forward(self, model: nn.Module, inputs: Tensor) -> Any:
        try:
            return model(inputs)
        except ValueError as err:
            if "spatial element" not in str(err):  # torch's InstanceNorm message for a map of one element
                raise
            from ..models import min_input_size

            need = min_input_size(self.unwrapped, inputs.shape[1])
            raise ConfigError(
                f"model {self.cfg.model.name!r} needs inputs of at least {need}×{need}; this run's are "
                f"{'×'.join(map(str, inputs.shape[2:]))} (data.image_size={self.cfg.data.image_size})"
            ) from None

    def _hits(self, logits: Tensor, targets: Tensor) -> Tensor | None:
        if self.task != "classification":
            return None
        return (logits.detach().argmax(1) == _hard_labels(targets)).sum()

    def _loss(self, output: Any, targets: Tensor) -> Tensor:
        outputs = output if isinstance(output, (tuple, list)) else (output,)
        loss: Tensor = self.loss_fn(outputs[0], targets)
        for extra in outputs[1:]:  # deep supervision: every side output is scored too
            loss = loss + self.loss_fn(extra, targets)
        if self.cfg.loss.aux_weight:
            terms = [t for m in self.aux_modules if (t := m.regularization_loss()) is not None]  # type: ignore[operator]
            if terms:
                loss = loss + self.cfg.loss.aux_weight * torch.stack([t.float() for t in terms]).sum()
        return loss

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Validation loss and metrics, over every validation sample exactly once across processes."""
        acc = self.accelerator
        model = self.ema if self.ema is not None else self.model
        model.eval()
        self.metrics.reset()
        loss_sum, count = 0.0, 0
        for inputs, targets in self.val_loader:
            logits = _first(self._forward(model, inputs))
            logits, targets = acc.gather_for_metrics((logits.float(), targets))
            loss_sum += float(self.loss_fn(logits, targets)) * targets.shape[0]
            count += targets.shape[0]
            self.metrics.update(*self._metric_inputs(logits, targets))
            fault_point("eval", self.state.global_step)
        values = {f"val_{k}": float(v) for k, v in self.metrics.compute().items()}
        return {"val_loss": loss_sum / max(count, 1), "val_samples": count, **values}

    def _metric_inputs(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
        return (logits, targets) if self.task == "segmentation" else (logits, _hard_labels(targets))

    def _track_best(self, record: dict[str, Any]) -> None:
        name = self.cfg.checkpoint.best_metric
        value = record.get(f"val_{name}") if name else None
        if value is None:
            return
        better = self.state.best is None or (
            value > self.state.best if self.cfg.checkpoint.resolved_best_mode() == "max" else value < self.state.best
        )
        if better:
            self.state.best, self.state.best_epoch = float(value), record["epoch"]
            self._export(self.out / "best")

    def _export(self, directory: Path) -> None:
        acc = self.accelerator
        acc.wait_for_everyone()
        if self.ema is not None:
            weights, state = self.ema.module, None
        else:
            # every process takes part: under FSDP this gathers the full weights from the shards
            weights, state = acc.unwrap_model(self.model), acc.get_state_dict(self.model)
        if acc.is_main_process:
            save_pretrained(weights, directory, state)  # type: ignore[arg-type]

    def _finish(self) -> dict[str, Any]:
        self._export(self.out / "final")
        acc = self.accelerator
        history = self.state.history
        rows = history + ([self.partial] if self.partial else [])
        columns = ["epoch", "step", "train_loss", "val_loss"]
        columns += sorted({k for r in rows for k in r if k.startswith("val_") and k not in (*columns, "val_samples")})
        columns += ["images_per_s"]
        if acc.is_main_process:
            _LOGGER.info("\n" + format_table(rows, columns))
            if self.state.best is not None:
                _LOGGER.info(
                    f"best val_{self.cfg.checkpoint.best_metric}: {self.state.best:.4f} (epoch {self.state.best_epoch})"
                )
        return {"final": rows[-1] if rows else {}, "best": self.state.best, "history": history}

    # ------------------------------------------------------------------------------------------------ helpers
    def _lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def _progress(self, total: int, initial: int, desc: str) -> Any:
        if not (self.cfg.progress and self.accelerator.is_local_main_process):
            return None
        from tqdm.auto import tqdm  # type: ignore[import-untyped]  # installed with accelerate (huggingface_hub)

        # disable=None: no bar when stderr is not a terminal (a log file would fill with carriage-return frames)
        return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True, disable=None)


#: Losses of mask targets (``(B, 1, *S)`` or class-index maps), not of one integer label per sample.
_MASK_LOSSES = ("bce", "dice", "dice_bce", "tversky")


def _flat_config(cfg: TrainConfig) -> dict[str, Any]:
    """Scalars of the config as ``section.key`` (what TensorBoard's hparams accept)."""
    from dataclasses import asdict

    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        elif isinstance(value, (int, float, str, bool)):
            flat[prefix[:-1]] = value

    walk("", asdict(cfg))
    return flat


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Train with ``cfg``; see :class:`Trainer`."""
    return Trainer(cfg).fit()
