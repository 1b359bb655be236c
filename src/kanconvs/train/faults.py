"""Fault injection: stop a training run dead at a named point, to prove that resuming it loses nothing.

``KANCONVS_FAULT=<phase>@<step>`` (e.g. ``checkpoint-write@6``) sends SIGKILL to the process when the run reaches
``phase`` at optimiser step ``step`` — no ``finally`` block, no flush, exactly what a power cut or an OOM kill does.
Tests in one process install an action that raises :class:`SimulatedKill` instead (:func:`inject`): the files on
disk are then those a kill would leave, because nothing in the training stack writes from an exception handler.

Phases, in the order a step meets them:

* ``mid-step``: after the backward pass of step ``step``, before the optimiser updates the weights;
* ``step``: right after the optimiser step (and schedule, EMA update);
* ``eval``: during the evaluation that ends the epoch whose last step is ``step`` (after its first batch);
* ``log``: after that epoch's record reached the trackers, before its checkpoint;
* ``checkpoint-write``: inside the checkpoint of step ``step``, its files written but not yet marked complete;
* ``checkpoint-rotate``: after that checkpoint was put in place, before older ones are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["FAULT_ENV", "PHASES", "SimulatedKill", "code_running_pickle", "fault_point", "forge_manifest", "inject"]

FAULT_ENV = "KANCONVS_FAULT"
PHASES = ("mid-step", "step", "eval", "log", "checkpoint-write", "checkpoint-rotate")


class SimulatedKill(BaseException):
    """Raised by an in-process fault; a ``BaseException`` so that no ``except Exception`` in the stack swallows it."""


def _sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


_installed: tuple[str, int, Callable[[], None]] | None = None


def _parse(spec: str) -> tuple[str, int]:
    phase, sep, step = spec.partition("@")
    if not sep or phase not in PHASES or not step.isdigit():
        raise ValueError(f"{FAULT_ENV} must look like <phase>@<step> with phase in {list(PHASES)}, got {spec!r}")
    return phase, int(step)


def _active() -> tuple[str, int, Callable[[], None]] | None:
    if _installed is not None:
        return _installed
    spec = os.environ.get(FAULT_ENV)
    return (*_parse(spec), _sigkill) if spec else None


def fault_point(phase: str, step: int) -> None:
    """Called by the trainer at each phase; fires the configured fault when ``(phase, step)`` matches."""
    fault = _active()
    if fault is not None and fault[0] == phase and fault[1] == step:
        fault[2]()


@contextlib.contextmanager
def inject(phase: str, step: int, action: Callable[[], None] | None = None) -> Iterator[None]:
    """Within the block, ``fault_point(phase, step)`` runs ``action`` (default: raise :class:`SimulatedKill`)."""
    global _installed
    _parse(f"{phase}@{step}")

    def kill() -> None:
        raise SimulatedKill(f"{phase}@{step}")

    previous, _installed = _installed, (phase, step, action or kill)
    try:
        yield
    finally:
        _installed = previous


# ------------------------------------------------------------------------------------------- damaged checkpoints
class _CreatesFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def code_running_pickle(marker: Path) -> bytes:
    """A pickle (protocol 2, torch.load's) whose unpickling creates ``marker``: planted in a checkpoint file, it
    proves that a resume runs no code when ``marker`` stays absent."""
    return pickle.dumps({"state": _CreatesFile(marker)}, protocol=2)


def forge_manifest(checkpoint: Path, name: str) -> None:
    """Make ``checkpoint``'s manifest vouch for the current bytes of ``name``, as anyone who can write the run
    directory could: then only the safe loaders stand between a planted file and its code."""
    from .checkpoint import MANIFEST, _sha256

    manifest = json.loads((checkpoint / MANIFEST).read_text(encoding="utf-8"))
    manifest["files"][name] = {"bytes": (checkpoint / name).stat().st_size, "sha256": _sha256(checkpoint / name)}
    (checkpoint / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
