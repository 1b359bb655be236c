"""Fault-injection campaign for the training stack; writes a Markdown table of the faults injected and survived.

    python benchmarks/fault_injection.py --output reports/fault-injection.md

A small CPU run (the ``smoke`` config: 2 epochs × 4 steps, dropout, augmentation, a checkpoint every 3 steps,
``keep_last=1``) is stopped at every step of every phase (:mod:`kanconvs.train.faults`), in this process and, once
per phase, by a real SIGKILL in a child process; each is resumed and compared with the uninterrupted run (final
weights bit for bit, every epoch's metrics row). Then each file of a finished run's newest checkpoint is truncated,
and replaced by a pickle that would create a file when unpickled (with and without a forged manifest): the resume
must refuse it by name, run nothing, and the intact checkpoint it names must resume to the uninterrupted result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from kanconvs.models import read_state_dict
from kanconvs.train import CheckpointError, Trainer, load_config
from kanconvs.train.checkpoint import list_checkpoints
from kanconvs.train.faults import FAULT_ENV, PHASES, SimulatedKill, code_running_pickle, forge_manifest, inject

BASE = [
    "progress=false", "data.augment=mnist", "checkpoint.every_steps=3", "checkpoint.keep_last=1",
    "trackers=[jsonl,csv]", "model.ema_decay=0.9",
]  # fmt: skip
AT = {"mid-step": range(1, 9), "step": range(1, 9), "eval": (4, 8), "log": (4, 8),
      "checkpoint-write": (3, 4, 6, 8), "checkpoint-rotate": (3, 4, 6, 8)}  # fmt: skip
SIGKILL_AT = {"mid-step": 5, "step": 7, "eval": 8, "log": 4, "checkpoint-write": 6, "checkpoint-rotate": 4}


def _run(out: Path, *extra: str) -> None:
    Trainer(load_config("smoke", [*BASE, f"output_dir={out}", *extra])).fit()


def _cli(out: Path, *extra: str, env: dict[str, str] | None = None) -> int:
    command = [sys.executable, "-m", "kanconvs", "train", "smoke", *BASE, f"output_dir={out}", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run(command, capture_output=True, env=env, timeout=600).returncode


def _rows(run: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in rows]


def _compare(straight: Path, run: Path) -> str:
    """'identical', or what differs."""
    if not (run / "final").is_dir():
        return "no final weights"
    a, b = read_state_dict(straight / "final"), read_state_dict(run / "final")
    differ = [k for k in a if k not in b or not torch.equal(a[k], b[k])]
    if differ:
        return f"{len(differ)} of {len(a)} tensors differ"
    if _rows(run) != _rows(straight):
        return "metrics rows differ"
    return "identical"


def _resume_in_process(run: Path) -> None:
    if list_checkpoints(run / "checkpoints"):
        _run(run, "resume=true")
    else:  # killed before the first checkpoint: resume=true says so, the user starts over
        try:
            _run(run, "resume=true")
        except CheckpointError:
            _run(run)
        else:
            raise AssertionError("resume=true without a checkpoint did not refuse")


def campaign(work: Path, sigkill: bool) -> list[dict[str, str]]:
    results: list[dict[str, str]] = []
    straight = work / "straight"
    _run(straight)

    for phase in PHASES:  # in-process kills at every reachable (phase, step)
        for step in AT[phase]:
            run = work / f"kill-{phase}-{step}"
            try:
                with inject(phase, step):
                    _run(run)
                outcome = "fault not reached"
            except SimulatedKill:
                _resume_in_process(run)
                outcome = _compare(straight, run)
            results.append({"kind": "kill (in-process)", "fault": f"{phase}@{step}", "result": outcome})
            shutil.rmtree(run, ignore_errors=True)

    if sigkill:  # a real SIGKILL per phase, in a child process
        for phase, step in SIGKILL_AT.items():
            run = work / f"sigkill-{phase}-{step}"
            code = _cli(run, env={FAULT_ENV: f"{phase}@{step}"})
            if code != -signal.SIGKILL:
                outcome = f"not killed (exit {code})"
            else:
                resumed = _cli(run, "resume=true") if list_checkpoints(run / "checkpoints") else _cli(run)
                outcome = _compare(straight, run) if resumed == 0 else f"resume failed (exit {resumed})"
            results.append({"kind": "kill (SIGKILL)", "fault": f"{phase}@{step}", "result": outcome})
            shutil.rmtree(run, ignore_errors=True)

    # damaged checkpoints: a finished 1-epoch run keeping 2 checkpoints, continued to 2 epochs
    done = work / "done"
    _run(done, "epochs=1", "checkpoint.keep_last=2")
    older, newest = list_checkpoints(done / "checkpoints")
    names = sorted(p.name for p in newest.iterdir())
    pristine = {n: (newest / n).read_bytes() for n in names}
    marker = work / "planted-code-ran"

    def attempt(kind: str, fault: str) -> None:
        try:
            _run(done, "resume=true", "epochs=2", "checkpoint.keep_last=2")
            outcome = "accepted (not refused)"
        except CheckpointError as err:
            named = fault.split(" ")[0] in str(err) and f"resume_from={older}" in str(err)
            outcome = "refused by name, older checkpoint offered" if named else f"refused: {err}"
        if marker.exists():
            outcome, _ = "CODE RAN", marker.unlink()
        results.append({"kind": kind, "fault": fault, "result": outcome})
        for n, data in pristine.items():
            (newest / n).write_bytes(data)
        for extra in {p.name for p in newest.iterdir()} - set(names):
            (newest / extra).unlink()

    for name in names:
        data = pristine[name]
        (newest / name).write_bytes(data[: len(data) // 2])
        attempt("truncated file", f"{name} (half)")
    payload = code_running_pickle(marker)
    for name in [*names, "random_states_0.pkl", "custom_checkpoint_0.pkl"]:
        for forged in (False, True):
            (newest / name).write_bytes(payload)
            if forged and name != "manifest.json":
                forge_manifest(newest, name)
            attempt("planted pickle", f"{name}{' (manifest forged)' if forged else ''}")
    (newest / "optimizer.bin").write_bytes(b"")
    _run(done, f"resume_from={older}", "epochs=2", "checkpoint.keep_last=2")
    reference = work / "straight-keep2"
    _run(reference, "epochs=2", "checkpoint.keep_last=2")
    outcome = _compare(reference, done)
    results.append({"kind": "resume from the offered checkpoint", "fault": f"{older.name}", "result": outcome})
    return results


def _report(results: list[dict[str, str]], seconds: float, command: str) -> str:
    good = {"identical", "refused by name, older checkpoint offered"}
    by_kind: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in results:
        by_kind[r["kind"]].append(r)
    lines = [
        "# Fault injection: kills, truncated files and planted pickles, each followed by a resume",
        "",
        f"Command: `{command}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
        f"torch {torch.__version__}; {seconds:.0f} s.",
        "",
        "Run: the `smoke` config (simple_kagn_4 with widths 4-8-8-8 and dropout, MNIST augmentation, 64 training "
        "images, 2 epochs × 4 steps), a checkpoint every 3 steps and at each epoch end, `keep_last=1`, EMA on. "
        "*Survived* means: resumed, and the final weights are bit-identical to the uninterrupted run's and every "
        "epoch's metrics row equal (one row per epoch; throughput excluded) — or, for a damaged checkpoint, the "
        "resume refused the file by name, ran no code, and offered the newest intact checkpoint.",
        "",
        "| kind | injected | survived | results |",
        "|:---|---:|---:|:---|",
    ]
    for kind, rows in by_kind.items():
        outcomes = defaultdict(int)
        for r in rows:
            outcomes[r["result"]] += 1
        survived = sum(n for o, n in outcomes.items() if o in good)
        summary = "; ".join(f"{o}: {n}" for o, n in outcomes.items())
        lines.append(f"| {kind} | {len(rows)} | {survived} | {summary} |")
    lines += ["", "## Every fault", "", "| kind | fault | result |", "|:---|:---|:---|"]
    lines += [f"| {r['kind']} | `{r['fault']}` | {r['result']} |" for r in results]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, help="Markdown file to write (default: print)")
    parser.add_argument("--no-sigkill", action="store_true", help="skip the child processes killed by SIGKILL")
    args = parser.parse_args(argv)
    os.environ.setdefault("KANCONVS_COMPILE", "0")  # the eager CPU path: the same numbers, no compile per process
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        results = campaign(Path(tmp), sigkill=not args.no_sigkill)
    command = "python benchmarks/fault_injection.py" + (f" --output {args.output}" if args.output else "")
    text = _report(results, time.perf_counter() - started, command)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    print(text)
    bad = [r for r in results if r["result"] not in {"identical", "refused by name, older checkpoint offered"}]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
