"""Rebuild a model from what the CLI is given: a run directory, a ``save_pretrained`` directory, or weights + name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

__all__ = ["LoadedModel", "load_model"]


@dataclass
class LoadedModel:
    model: nn.Module
    weights: Path  #: where the weights came from
    run_config: Any = None  #: the run's TrainConfig, for run directories


def load_model(
    checkpoint: str | Path, weights: str = "best", model: str | None = None, model_kwargs: dict[str, Any] | None = None
) -> LoadedModel:
    """Load ``checkpoint``: with ``model`` a registered name, ``checkpoint`` holds its weights (a file or directory)
    and ``model_kwargs`` configure it; else a run directory (``config.yaml``; ``weights``: ``best``, ``final`` or a
    path) or a ``save_pretrained`` directory (``config.json``; ``model_kwargs`` override the saved ones)."""
    from kanconvs.models import create_model, from_pretrained, load_weights

    path = Path(checkpoint)
    kwargs = dict(model_kwargs or {})
    if model is not None:
        return LoadedModel(load_weights(create_model(model, **kwargs), path), path)
    if (path / "config.yaml").is_file():
        from kanconvs.train import load_config, model_kwargs_for

        cfg = load_config(path / "config.yaml", ["resume=false", "trackers=[]", "progress=false"])
        source = path / weights if weights in ("best", "final") else Path(weights)
        if weights == "best" and not source.exists() and (path / "final").exists():
            source = path / "final"  # runs without a best metric keep only their final weights
        if (source / "config.json").is_file():
            return LoadedModel(from_pretrained(source, **kwargs), source, cfg)
        # built as the trainer builds it: the dataset's channels and classes as defaults
        rebuilt = create_model(cfg.model.name, **model_kwargs_for(cfg, **kwargs))
        return LoadedModel(load_weights(rebuilt, source), source, cfg)
    if (path / "config.json").is_file():
        return LoadedModel(from_pretrained(path, **kwargs), path)
    raise ValueError(
        f"{path} is not a run directory (config.yaml) or a save_pretrained directory (config.json); for a weights "
        "file, name the architecture with --model NAME"
    )
