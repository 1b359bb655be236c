"""Hyperparameter search over config fields with Optuna (the reference's Ray Tune study, without Ray).

A search space maps dotted config keys to distributions (YAML)::

    optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
    model.kwargs.degree: {type: categorical, choices: [3, 5, 7]}
    data.batch_size: {type: int, low: 32, high: 256, step: 32}

Each trial trains the config with the sampled values as overrides (in ``<output_dir>/trial-<n>``), reports the
validation metric after every evaluated epoch (so the pruner can stop bad trials early) and returns the best value.
Needs the ``tune`` extra (``pip install 'kanconvs[tune]'``).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .config import ConfigError, load_config
from .trainer import Trainer

__all__ = ["load_space", "tune"]

_TYPES = {"float": ("low", "high"), "int": ("low", "high"), "categorical": ("choices",)}


def load_space(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Read and check a search space (a YAML file or a mapping); raises :class:`ConfigError` naming the bad entry."""
    if isinstance(source, Mapping):
        space: Any = dict(source)
    else:
        from omegaconf import OmegaConf

        space = OmegaConf.to_container(OmegaConf.load(Path(source)))
    if not isinstance(space, dict) or not space:
        raise ConfigError(f"search space must be a non-empty mapping of config keys to distributions, got {space!r}")
    for key, spec in space.items():
        if not isinstance(spec, dict) or spec.get("type") not in _TYPES:
            raise ConfigError(f"search space entry {key!r} needs type: float, int or categorical; got {spec!r}")
        missing = [f for f in _TYPES[spec["type"]] if f not in spec]
        if missing:
            raise ConfigError(f"search space entry {key!r} ({spec['type']}) is missing {missing}")
    load_config(None, [f"{key}={_example(spec)}" for key, spec in space.items()])  # unknown keys fail here
    return space


def _example(spec: Mapping[str, Any]) -> Any:
    return spec["choices"][0] if spec["type"] == "categorical" else spec["low"]


def _suggest(trial: Any, key: str, spec: Mapping[str, Any]) -> Any:
    if spec["type"] == "float":
        return trial.suggest_float(key, spec["low"], spec["high"], log=bool(spec.get("log", False)))
    if spec["type"] == "int":
        return trial.suggest_int(key, spec["low"], spec["high"], step=int(spec.get("step", 1)))
    return trial.suggest_categorical(key, list(spec["choices"]))


def tune(
    config: str | os.PathLike[str] | None,
    space: str | os.PathLike[str] | Mapping[str, Any],
    *,
    overrides: Sequence[str] = (),
    trials: int = 20,
    metric: str = "top1",
    direction: str = "maximize",
    seed: int = 0,
    pruner: str = "median",
) -> Any:
    """Run an Optuna study over ``space``; returns the ``optuna.Study``. Trials are listed in
    ``<output_dir>/trials.csv`` (number, state, value, parameters).

    Args:
        config, overrides: the base configuration, as for ``kanconvs train``.
        space: the search space (YAML file or mapping, see the module docstring).
        trials: number of trials.
        metric: validation metric to optimise (``top1`` → ``val_top1``; ``loss`` → ``val_loss``).
        direction: ``maximize`` or ``minimize``.
        pruner: ``median`` (stop trials below the median of earlier ones at the same epoch) or ``none``.
    """
    try:
        import optuna
    except ImportError as err:
        raise ImportError("hyperparameter search needs optuna: pip install 'kanconvs[tune]'") from err
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    if pruner not in ("median", "none"):
        raise ValueError(f"pruner must be 'median' or 'none', got {pruner!r}")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise ValueError(f"trials must be a positive integer, got {trials!r}")
    checked = load_space(space)
    base = load_config(config, list(overrides))
    root = Path(base.output_dir)
    key = f"val_{metric}"

    def objective(trial: Any) -> float:
        values = {name: _suggest(trial, name, spec) for name, spec in checked.items()}
        cfg = load_config(config, [*overrides, *(f"{k}={v}" for k, v in values.items())])
        cfg.output_dir = str(root / f"trial-{trial.number:03d}")
        cfg.checkpoint.best_metric = metric
        cfg.checkpoint.best_mode = "max" if direction == "maximize" else "min"

        def report(record: dict[str, Any]) -> None:
            if record.get(key) is not None:
                trial.report(float(record[key]), int(record["epoch"]))
                if trial.should_prune():
                    raise optuna.TrialPruned()

        summary = Trainer(cfg, callbacks=[report]).fit()
        if summary["best"] is None:
            raise ConfigError(f"metric {key!r} was never reported; available: {sorted(summary['final'])}")
        return float(summary["best"])

    sampler = optuna.samplers.TPESampler(seed=seed)
    chosen = optuna.pruners.MedianPruner(n_warmup_steps=1) if pruner == "median" else optuna.pruners.NopPruner()
    study = optuna.create_study(direction=direction, sampler=sampler, pruner=chosen)  # type: ignore[arg-type]
    study.optimize(objective, n_trials=trials)
    root.mkdir(parents=True, exist_ok=True)
    with (root / "trials.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["number", "state", "value", *checked])
        for t in study.trials:
            writer.writerow([t.number, t.state.name, t.value, *(t.params.get(k) for k in checked)])
    return study
