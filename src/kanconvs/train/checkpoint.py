"""Training checkpoints: Accelerate's full state (weights as safetensors, optimiser, scheduler, RNG, loop counters)
written into a temporary directory and renamed into place, so a killed run never leaves a half-written one."""

from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["CheckpointError", "TrainState", "latest_checkpoint", "list_checkpoints", "save_checkpoint"]

_NAME = re.compile(r"^checkpoint-(\d{8})$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt, or does not match the model being trained."""


@dataclass
class TrainState:
    """Loop counters and history, saved with every checkpoint (``state_dict``/``load_state_dict`` for Accelerate)."""

    epoch: int = 0  #: epochs completed
    batch_in_epoch: int = 0  #: batches of the current epoch already trained (per process)
    global_step: int = 0  #: optimiser steps
    best: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)


def list_checkpoints(directory: Path) -> list[Path]:
    """Complete checkpoints in ``directory``, oldest first (temporary directories are ignored)."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and _NAME.match(p.name)]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(directory: Path) -> Path | None:
    checkpoints = list_checkpoints(directory)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint(accelerator: Any, directory: Path, step: int, keep_last: int) -> Path:
    """Save the full training state as ``directory/checkpoint-<step>`` atomically and prune to ``keep_last``.

    Every process takes part in ``save_state`` (sharded optimisers need it); the main process renames and prunes.
    """
    final = directory / f"checkpoint-{step:08d}"
    tmp = directory / f".tmp-checkpoint-{step:08d}"
    if accelerator.is_main_process:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if final.exists():  # the same step saved again (e.g. epoch end right after a step checkpoint)
            shutil.rmtree(final)
        tmp.rename(final)
        for old in list_checkpoints(directory)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(accelerator: Any, path: Path) -> None:
    """Restore a checkpoint written by :func:`save_checkpoint`, with a clear error when it cannot be used."""
    if not path.is_dir() or not any(path.glob("model*.safetensors")):
        raise CheckpointError(f"{path} is not a complete checkpoint (no model*.safetensors); delete it or pick another")
    try:
        accelerator.load_state(str(path))
    except Exception as err:  # safetensors, pickle and torch raise many types for a bad file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"cannot resume from {path}: {first}. The checkpoint is corrupt or was written for another model or "
            "optimiser configuration; start a fresh run (resume=false, new output_dir) or fix the config"
        ) from err
