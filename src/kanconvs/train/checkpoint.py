"""Training checkpoints that load without running code, are checked before use, and are never all missing.

``checkpoints/checkpoint-<step>/`` holds:

* ``model*.safetensors``, ``optimizer*.bin`` (and ``scaler.pt`` with fp16) — written by Accelerate's ``save_state``,
  so sharded strategies keep their formats. The ``.bin``/``.pt`` files are opened only with
  ``torch.load(weights_only=True)``, by us before Accelerate sees them.
* ``trainer.json`` — loop counters, history, schedule state, each process's running epoch sums, and the settings a
  resumed run must share (model, optimiser, processes).
* ``ema.safetensors`` — the averaged weights, when the run keeps an EMA.
* ``manifest.json`` — size and SHA-256 of every file above, written last: a directory without it is incomplete.

Accelerate's pickled RNG files are removed before the checkpoint is marked complete: the trainer reseeds every batch
from ``(seed, epoch, batch, process)``, so no RNG state has to be restored. A checkpoint is written as
``.tmp-checkpoint-<step>`` and renamed into place; older ones are renamed away before they are deleted, so at every
moment the newest complete checkpoint is intact. A checkpoint of the same step already in place is never deleted: it
is set aside as ``replaced-checkpoint-<step>`` (:func:`set_aside`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .faults import fault_point

__all__ = [
    "CheckpointError",
    "TrainState",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "newest_intact_checkpoint",
    "save_checkpoint",
    "set_aside",
    "verify_checkpoint",
]

_LOGGER = logging.getLogger(__name__)

_NAME = re.compile(r"^checkpoint-(\d{8})$")
MANIFEST = "manifest.json"
STATE_FILE = "trainer.json"
FORMAT = 2
#: Files a checkpoint may hold (besides the manifest), by pattern; anything else is refused.
_KNOWN = re.compile(
    r"^(model(_\d+)?\.safetensors|optimizer(_\d+)?\.bin|scaler\.pt|trainer\.json|[a-z_]+\.safetensors)$"
)
_TORCH_FILES = re.compile(r"\.(bin|pt)$")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete, corrupt, or does not match the run being resumed."""


@dataclass
class TrainState:
    """Loop counters and history, saved with every checkpoint."""

    epoch: int = 0  #: epochs completed
    batch_in_epoch: int = 0  #: batches of the current epoch already trained (per process)
    global_step: int = 0  #: optimiser steps
    best: float | None = None
    best_epoch: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        unknown = set(state) - set(asdict(TrainState()))
        if unknown:
            raise CheckpointError(f"unknown training-state keys {sorted(unknown)}")
        for key, value in state.items():
            setattr(self, key, value)


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.removeprefix("checkpoint-"))


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoint directories marked complete (with a manifest), oldest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and _NAME.match(p.name) and (p / MANIFEST).is_file()]
    return sorted(found, key=_step)


def latest_checkpoint(directory: Path) -> Path | None:
    checkpoints = list_checkpoints(directory)
    return checkpoints[-1] if checkpoints else None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    if os.name == "posix":
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _retire(path: Path) -> None:
    """Delete a directory so that a kill part-way never leaves a damaged one under a checkpoint's name."""
    trash = path.with_name(f".trash-{path.name}")
    shutil.rmtree(trash, ignore_errors=True)
    path.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)


def set_aside(path: Path, label: str) -> Path:
    """Rename ``path`` to ``<label>-<name>`` beside it (``<label>-<name>.<n>`` when that is taken); returns the new
    path. Checkpoints that a run stops using are kept this way, never deleted."""
    target, n = path.with_name(f"{label}-{path.name}"), 0
    while target.exists():
        n += 1
        target = path.with_name(f"{label}-{path.name}.{n}")
    path.rename(target)
    _LOGGER.warning(f"set {path} aside as {target.name}")
    return target


def save_checkpoint(
    accelerator: Any,
    directory: Path,
    step: int,
    keep_last: int,
    state: Mapping[str, Any],
    tensors: Mapping[str, Mapping[str, Tensor]] | None = None,
) -> Path:
    """Write ``directory/checkpoint-<step>``: Accelerate's model/optimiser state, ``state`` as ``trainer.json``, and
    each ``tensors[name]`` as ``<name>.safetensors``; then keep the newest ``keep_last`` checkpoints.

    Every process takes part (sharded optimisers need it); the main process writes the rest, renames and prunes.
    """
    from safetensors.torch import save_file

    final = directory / f"checkpoint-{step:08d}"
    tmp = directory / f".tmp-checkpoint-{step:08d}"
    main = accelerator.is_main_process
    if main:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob(".t*-checkpoint-*"):  # left by a killed save or prune
            shutil.rmtree(stale, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp), safe_serialization=True)
    accelerator.wait_for_everyone()
    if main:
        for pickled in tmp.glob("random_states_*.pkl"):  # never read back: batches are reseeded
            pickled.unlink()
        _write_synced(tmp / STATE_FILE, json.dumps({"format": FORMAT, **state}, indent=1).encode())
        for name, group in (tensors or {}).items():
            save_file({k: v.detach().cpu().contiguous() for k, v in group.items()}, str(tmp / f"{name}.safetensors"))
        fault_point("checkpoint-write", step)
        files = sorted(p for p in tmp.iterdir() if p.is_file())
        manifest = {
            "format": FORMAT,
            "files": {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files},
        }
        _write_synced(tmp / MANIFEST, json.dumps(manifest, indent=1).encode())
        _fsync_dir(tmp)
        if final.exists():  # a damaged checkpoint of the same step, or another run's: kept, under another name
            set_aside(final, "replaced")
        tmp.rename(final)
        _fsync_dir(directory)
        fault_point("checkpoint-rotate", step)
        for old in list_checkpoints(directory)[:-keep_last]:
            _retire(old)
    accelerator.wait_for_everyone()
    return final


def verify_checkpoint(path: Path) -> dict[str, Any]:
    """Check ``path`` against its manifest (every file present, no other file, sizes and SHA-256 equal), open its
    torch files with ``weights_only=True``; returns ``trainer.json``. Raises :class:`CheckpointError` naming the
    first bad file."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise CheckpointError(f"{path} is incomplete: it has no {MANIFEST} (the save was interrupted)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        assert isinstance(files, dict)
    except (ValueError, KeyError, AssertionError, UnicodeDecodeError):
        raise CheckpointError(f"{manifest_path} is corrupt (not a kanconvs checkpoint manifest)") from None
    present = {p.name for p in path.iterdir()} - {MANIFEST}
    for name in sorted(present - set(files)):
        raise CheckpointError(f"{path / name} is not part of this checkpoint (not in its manifest); remove it")
    for name, meta in files.items():
        if not isinstance(name, str) or not _KNOWN.match(name):
            raise CheckpointError(f"{manifest_path} lists an unexpected file {name!r}")
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file} is missing")
        if file.stat().st_size != meta.get("bytes") or _sha256(file) != meta.get("sha256"):
            raise CheckpointError(f"{file} is corrupt or truncated (its size or SHA-256 differs from the manifest)")
    for name in files:
        if _TORCH_FILES.search(name):
            try:  # the only unpickling a resume does, and it builds tensors and plain containers only
                torch.load(path / name, map_location="cpu", weights_only=True)
            except Exception as err:
                raise CheckpointError(f"{path / name} cannot be loaded safely: {_first_line(err)}") from None
        elif name.endswith(".safetensors"):
            _read_safetensors(path / name)
    try:
        state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
        assert isinstance(state, dict) and state.get("format") == FORMAT
    except (OSError, ValueError, AssertionError, UnicodeDecodeError):
        raise CheckpointError(f"{path / STATE_FILE} is missing or not a kanconvs training state") from None
    return state


def _read_safetensors(file: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(file))
    except Exception as err:
        raise CheckpointError(f"{file} is not a readable safetensors file: {_first_line(err)}") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def newest_intact_checkpoint(directory: Path, *, before: Path | None = None) -> Path | None:
    """The newest checkpoint in ``directory`` (older than ``before``, if given) that :func:`verify_checkpoint`
    accepts."""
    for candidate in reversed(list_checkpoints(directory)):
        if before is not None and _step(candidate) >= _step(before):
            continue
        try:
            verify_checkpoint(candidate)
        except CheckpointError:
            continue
        return candidate
    return None


def load_checkpoint(
    accelerator: Any, path: Path, run: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], dict[str, dict[str, Tensor]]]:
    """Verify ``path``, check that it was written by a run with the settings ``run`` (a checkpoint's ``"run"``
    entry), and restore Accelerate's part of it; returns ``(trainer.json, {name: tensors})`` for the safetensors
    files that are not model weights (the EMA)."""
    try:
        state = verify_checkpoint(path)
    except CheckpointError as err:
        # an older sibling, when path is one of a run's checkpoints (resume_from may name any directory)
        fallback = newest_intact_checkpoint(path.parent, before=path) if _NAME.match(path.name) else None
        hint = (
            f"; the newest intact checkpoint is {fallback}: continue from it with resume_from={fallback}"
            if fallback is not None
            else "; no older intact checkpoint exists"
        )
        raise CheckpointError(f"cannot resume: {err}{hint}") from None
    saved = state.get("run", {})
    live = json.loads(json.dumps(run or {}))  # as trainer.json holds it (tuples become lists)
    # Settings a checkpoint does not record (written by an older version) are not compared.
    differs = [f"{k}={saved[k]!r} (this run: {v!r})" for k, v in live.items() if k in saved and saved[k] != v]
    if differs:
        raise CheckpointError(
            f"cannot resume from {path}: it was written with "
            + ", ".join(differs)
            + "; resume with the settings it was written with, or start a fresh run (new output_dir)"
        )
    try:
        accelerator.load_state(str(path))
    except Exception as err:  # shapes or optimiser groups that do not fit this run
        raise CheckpointError(
            f"cannot resume from {path}: {_first_line(err)}. It was written for another model or optimiser "
            "configuration; start a fresh run (new output_dir) or restore the config it was written with"
        ) from None
    extras = {
        p.stem: _read_safetensors(p)
        for p in sorted(path.glob("*.safetensors"))
        if not re.match(r"^model(_\d+)?$", p.stem)
    }
    return state, extras
