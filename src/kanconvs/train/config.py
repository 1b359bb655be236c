"""Training configuration: typed dataclasses, loaded from YAML with ``key=value`` overrides (OmegaConf).

Unknown keys and wrong types are errors that name the key (:class:`ConfigError`). A configuration is a YAML file or
the name of one shipped with the package (``kanconvs.train.list_configs()``)::

    kanconvs train mnist-kagn-quick epochs=2 optim.lr=3e-4 model.kwargs.degree=5
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_DIR",
    "RESUMABLE",
    "CheckpointConfig",
    "ConfigError",
    "DataConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "config_dict",
    "config_fingerprint",
    "config_to_yaml",
    "list_configs",
    "load_config",
]

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


#: Validation metrics ``checkpoint.best_metric`` can follow (``val_<name>`` in the records; f1/recall/auroc need
#: ``metrics=full``, dice/iou a segmentation task).
BEST_METRICS = frozenset({"loss", "top1", "top5", "f1_macro", "recall_macro", "auroc", "dice", "iou"})


class ConfigError(ValueError):
    """A configuration key is unknown, has the wrong type, or an invalid value."""


@dataclass
class DataConfig:
    name: str = "mnist-10k"  #: a registered dataset (``kanconvs.data.list_datasets()``)
    data_dir: str | None = None
    download: bool = False
    train_limit: int | None = None  #: seeded random subset sizes (quick runs)
    val_limit: int | None = None
    augment: str | None = None  #: None: the dataset's default augmentation; "none" switches it off
    image_size: int | None = None
    batch_size: int = 128
    eval_batch_size: int | None = None  #: None: batch_size
    num_workers: int = 0
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)  #: dataset-specific options


@dataclass
class ModelConfig:
    name: str = "simple_kagn_4"  #: a registered model (``kanconvs list``)
    kwargs: dict[str, Any] = field(default_factory=dict)  #: overrides of its configuration
    compile: bool = False  #: torch.compile the model
    ema_decay: float | None = None  #: keep an exponential moving average of the weights; evaluate it


@dataclass
class OptimConfig:
    name: str = "adamw"  #: adamw, sgd, lion, lbfgs
    lr: float = 1e-3
    weight_decay: float = 0.0
    kwargs: dict[str, Any] = field(default_factory=dict)
    grad_clip: float | None = None  #: max global gradient norm
    accumulation_steps: int = 1


@dataclass
class ScheduleConfig:
    name: str = "constant"  #: constant, exponential (per epoch), cosine, polynomial
    warmup_steps: int = 0
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class LossConfig:
    name: str | None = None  #: cross_entropy, focal, bce, dice, dice_bce, tversky (None: by task)
    kwargs: dict[str, Any] = field(default_factory=dict)
    aux_weight: float = 1.0  #: weight of the layers' auxiliary losses (MoE balance, L1/L2 penalties)


@dataclass
class CheckpointConfig:
    every_steps: int | None = None  #: also checkpoint every N optimiser steps (always at each epoch end)
    keep_last: int = 2
    best_metric: str | None = "top1"  #: keep the best weights by this validation metric (None: off)
    #: "max" or "min"; None: "min" for a loss (a metric whose name contains "loss"), "max" for the others
    best_mode: str | None = None

    def resolved_best_mode(self) -> str:
        """``best_mode``, or the direction inferred from ``best_metric`` when it is None."""
        if self.best_mode is not None:
            return self.best_mode
        return "min" if "loss" in (self.best_metric or "") else "max"


@dataclass
class TrainConfig:
    output_dir: str = "runs/default"
    seed: int = 42  #: in [0, 2**32 - 1]
    epochs: int = 1
    max_steps: int | None = None  #: stop after this many optimiser steps (smoke runs)
    mixed_precision: str = "no"  #: no, fp16, bf16
    cpu: bool = False  #: force the CPU even where a GPU is present
    eval_every: int = 1  #: evaluate every N epochs (and after the last)
    metrics: str = "minimal"  #: minimal (top-1/top-5) or full (+ macro F1, recall, AUC)
    trackers: list[str] = field(default_factory=lambda: ["jsonl", "tensorboard"])  #: + csv, wandb
    project: str = "kanconvs"
    progress: bool = True
    resume: bool = False  #: continue from the newest checkpoint in output_dir (an error if there is none)
    resume_from: str | None = None  #: continue from this checkpoint directory (e.g. an older, intact one)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)

    def validate(self) -> TrainConfig:
        """Check values that types cannot express; raises :class:`ConfigError`."""
        if self.mixed_precision in ("False", "false"):  # YAML 1.1 reads a bare `no` as false
            self.mixed_precision = "no"
        checks: list[tuple[bool, str]] = [
            (0 <= self.seed <= 2**32 - 1, f"seed must be in [0, 2**32 - 1], got {self.seed}"),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.max_steps is None or self.max_steps >= 1, f"max_steps must be >= 1 or null, got {self.max_steps}"),
            (self.mixed_precision in ("no", "fp16", "bf16"),
             f"mixed_precision must be 'no', 'fp16' or 'bf16', got {self.mixed_precision!r}"),
            (self.metrics in ("minimal", "full"), f"metrics must be 'minimal' or 'full', got {self.metrics!r}"),
            (self.eval_every >= 1, f"eval_every must be >= 1, got {self.eval_every}"),
            (self.data.batch_size >= 1, f"data.batch_size must be >= 1, got {self.data.batch_size}"),
            (self.data.eval_batch_size is None or self.data.eval_batch_size >= 1,
             f"data.eval_batch_size must be >= 1 or null (null: data.batch_size), got {self.data.eval_batch_size}"),
            (self.data.train_limit is None or self.data.train_limit >= 1,
             f"data.train_limit must be >= 1 or null (null: the whole split), got {self.data.train_limit}"),
            (self.data.val_limit is None or self.data.val_limit >= 1,
             f"data.val_limit must be >= 1 or null (null: the whole split), got {self.data.val_limit}"),
            (self.optim.accumulation_steps >= 1,
             f"optim.accumulation_steps must be >= 1, got {self.optim.accumulation_steps}"),
            (self.optim.lr > 0, f"optim.lr must be > 0, got {self.optim.lr}"),
            (self.checkpoint.keep_last >= 1, f"checkpoint.keep_last must be >= 1, got {self.checkpoint.keep_last}"),
            (self.checkpoint.best_mode in ("max", "min", None),
             f"checkpoint.best_mode must be 'max', 'min' or null, got {self.checkpoint.best_mode!r}"),
            (not set(self.trackers) - {"jsonl", "csv", "tensorboard", "wandb"},
             f"trackers must be among jsonl, csv, tensorboard, wandb, got {list(self.trackers)}"),
            (self.optim.grad_clip is None or self.optim.grad_clip > 0,
             f"optim.grad_clip must be > 0 or null, got {self.optim.grad_clip}"),
            (self.optim.weight_decay >= 0, f"optim.weight_decay must be >= 0, got {self.optim.weight_decay}"),
            (self.loss.aux_weight >= 0, f"loss.aux_weight must be >= 0, got {self.loss.aux_weight}"),
            (self.data.image_size is None or self.data.image_size >= 1,
             f"data.image_size must be >= 1 or null, got {self.data.image_size}"),
            (self.data.num_workers >= 0, f"data.num_workers must be >= 0, got {self.data.num_workers}"),
            (self.checkpoint.every_steps is None or self.checkpoint.every_steps >= 1,
             f"checkpoint.every_steps must be >= 1 or null, got {self.checkpoint.every_steps}"),
            (self.checkpoint.best_metric is None or self.checkpoint.best_metric in BEST_METRICS,
             f"checkpoint.best_metric must be one of {sorted(BEST_METRICS)} or null, "
             f"got {self.checkpoint.best_metric!r}"),
            # Trackers write under output_dir/<project>: a path there would write outside the run directory.
            (bool(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.project)) and ".." not in self.project,
             f"project must be a plain name (letters, digits, '.', '_', '-'; no path), got {self.project!r}"),
        ]  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        return self


def list_configs() -> list[str]:
    """Names of the configurations shipped with the package (``kanconvs train NAME``)."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


def _resolve(source: str | os.PathLike[str]) -> Path:
    path = Path(source)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / f"{path.name}.yaml" if path.suffix == "" else CONFIG_DIR / path.name
    if shipped.is_file():
        return shipped
    close = difflib.get_close_matches(str(source), list_configs(), n=3)
    hint = f"; did you mean {close}?" if close else f"; shipped configs: {list_configs()}"
    raise ConfigError(f"config {str(source)!r} is neither a file nor a shipped config name{hint}")


def _load_yaml(path: Path) -> Any:
    """The file's top-level mapping; a clear error for YAML syntax errors, lists and empty files."""
    import yaml
    from omegaconf import DictConfig, OmegaConf

    try:
        loaded = OmegaConf.load(path)
    except yaml.YAMLError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError(f"config {str(path)!r} is not valid YAML: {first}") from None
    if not isinstance(loaded, DictConfig):
        raise ConfigError(f"config {str(path)!r} must be a mapping of keys (key: value), got a {type(loaded).__name__}")
    if len(loaded) == 0:
        raise ConfigError(f"config {str(path)!r} is empty; give at least a model or dataset, or pass no config file")
    return loaded


def load_config(
    source: str | os.PathLike[str] | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> TrainConfig:
    """Load a YAML file (or shipped config name; ``None``: the defaults) and apply ``key=value`` overrides.

    Examples:
        >>> cfg = load_config(None, ["epochs=3", "optim.lr=0.01", "model.kwargs.degree=5"])
        >>> cfg.epochs, cfg.optim.lr, cfg.model.kwargs
        (3, 0.01, {'degree': 5})
        >>> try:
        ...     load_config(None, ["optim.weight_decy=0.1"])
        ... except ConfigError as err:
        ...     print(err)
        unknown key 'optim.weight_decy'; did you mean 'optim.weight_decay'?
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    schema = OmegaConf.structured(TrainConfig)
    try:
        layers = [schema]
        if source is not None:
            path = _resolve(source)
            loaded = _load_yaml(path)
            _check_keys(OmegaConf.to_container(loaded), schema, "")
            layers.append(loaded)
        for item in overrides:
            if "=" not in item:
                raise ConfigError(f"override {item!r} must look like key=value (e.g. optim.lr=0.001)")
        dotlist = OmegaConf.from_dotlist(list(overrides))
        _check_keys(OmegaConf.to_container(dotlist), schema, "")
        layers.append(dotlist)
        merged = OmegaConf.merge(*layers)
        cfg = OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None)
        raise ConfigError(f"invalid config value{f' for {key!r}' if key else ''}: {str(err).splitlines()[0]}") from None
    assert isinstance(cfg, TrainConfig)
    return cfg.validate()


def _check_keys(data: Any, schema: Any, prefix: str) -> None:
    """Unknown keys with close-match suggestions (OmegaConf's own message does not suggest)."""
    from omegaconf import DictConfig

    if not isinstance(data, dict) or not isinstance(schema, DictConfig):
        return
    for key, value in data.items():
        full = f"{prefix}{key}"
        if key not in schema:
            known = [str(k) for k in schema]
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {prefix + close[0]!r}?" if close else f"; known keys: {known}"
            raise ConfigError(f"unknown key {full!r}{hint}")
        node = schema[key]
        if isinstance(node, DictConfig) and key != "kwargs":  # kwargs are free-form
            _check_keys(value, node, f"{full}.")


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The resolved configuration as plain data: tensors (e.g. loss weights given through the Python API) become
    lists, tuples lists."""
    from dataclasses import asdict

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        tolist = getattr(value, "tolist", None)
        return tolist() if callable(tolist) else value

    result: dict[str, Any] = plain(asdict(cfg))
    return result


#: Settings a resumed run may change: where and how it runs, how long, what it records and evaluates on; not what it
#: trains.
RESUMABLE = frozenset({
    "output_dir", "epochs", "max_steps", "mixed_precision", "cpu", "eval_every", "metrics", "trackers", "project",
    "progress", "resume", "resume_from", "checkpoint", "model.compile", "data.data_dir", "data.download",
    "data.num_workers", "data.eval_batch_size", "data.val_limit",
})  # fmt: skip


def config_fingerprint(cfg: TrainConfig, include: Sequence[str] = ()) -> dict[str, Any]:
    """The settings that shape the training (every one but :data:`RESUMABLE`'s, and those of them named in
    ``include``), as JSON values under ``section.key``: what a resumed run must share with its checkpoint, and (with
    how long it trains, ``include``) what a benchmark result depends on."""
    # A cosine or polynomial schedule spans the configured epochs: with it, epochs may not change either.
    spans_epochs = ("epochs",) if cfg.schedule.name not in ("constant", "exponential") else ()
    flat: dict[str, Any] = {}
    for section, values in config_dict(cfg).items():
        for key, value in values.items() if isinstance(values, dict) else [(None, values)]:
            name = section if key is None else f"{section}.{key}"
            if (name not in RESUMABLE and section not in RESUMABLE) or name in include or name in spans_epochs:
                flat[name] = value
    return flat


def config_to_yaml(cfg: TrainConfig) -> str:
    """The resolved configuration as YAML (saved beside a run's outputs)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(config_dict(cfg)))
