"""Helpers shared by the benchmark runners: argument types, device synchronisation, machine and command lines."""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import importlib.metadata
import logging
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

__all__ = [
    "DTYPES",
    "Runner",
    "add_timing_arguments",
    "autocast",
    "command_line",
    "cuda_peak_bytes",
    "describe_error",
    "interleaved_medians",
    "log",
    "machine",
    "markdown_report",
    "non_negative_int",
    "parse_device",
    "per_device_help",
    "positive_int",
    "report",
    "resolve_timing",
    "saved_storages",
    "select",
    "storage_bytes",
    "synchronize",
    "time_steps",
    "version",
]

#: ``--dtype`` names: fp32, or bf16/fp16 under ``torch.autocast``.
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


Defaults = Mapping[str, Mapping[str, int]]  # device type ("cuda" / "cpu") → option → default


def per_device_help(defaults: Defaults, key: str) -> str:
    """``"default: 64 on cuda, 8 on cpu"``: an option's per-device defaults, for its help text."""
    return f"default: {defaults['cuda'][key]} on cuda, {defaults['cpu'][key]} on cpu"


def add_timing_arguments(parser: argparse.ArgumentParser, defaults: Defaults) -> None:
    """``--device``, ``--warmup``, ``--iters``, ``--repeats`` and ``--markdown`` with per-device defaults."""

    def per_device(key: str) -> str:
        return per_device_help(defaults, key)

    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--warmup", type=non_negative_int, default=None, help=f"warm-up steps ({per_device('warmup')})")
    parser.add_argument("--iters", type=positive_int, default=None, help=f"steps per round ({per_device('iters')})")
    parser.add_argument(
        "--repeats", type=positive_int, default=None, help=f"rounds; the median is reported ({per_device('repeats')})"
    )
    parser.add_argument("--markdown", type=Path, default=None, metavar="PATH", help="also write the table here")


def parse_device(text: str | None) -> torch.device:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (``None``: cuda if available, else cpu).

    Raises:
        ValueError: another device (``meta`` has no timings), a malformed name, or a CUDA device this machine lacks.
    """
    if text is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device: expected cpu, cuda or cuda:N, got {text!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {text!r}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"--device {text!r}: this machine has {torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                f"cuda:{torch.cuda.device_count() - 1}"
            )
    return device


def resolve_timing(args: argparse.Namespace, defaults: Defaults) -> tuple[torch.device, dict[str, int]]:
    """The device, and every option of ``defaults`` with the device's default where it was not given.

    Raises:
        ValueError: a device other than ``cpu``, ``cuda`` or ``cuda:N``, or a CUDA device this machine lacks.
    """
    device = parse_device(args.device)
    chosen = defaults["cuda" if device.type == "cuda" else "cpu"]
    return device, {k: d if getattr(args, k) is None else int(getattr(args, k)) for k, d in chosen.items()}


def select(
    text: str | None, available: Sequence[str], option: str, hint: str | None = None,
    default: Sequence[str] | None = None,
) -> tuple[str, ...]:  # fmt: skip
    """The comma-separated names of ``text``; when it is empty or ``None``, ``default`` (all of ``available`` when
    ``None``). ``hint`` replaces the list of valid names in the error.

    Raises:
        ValueError: an unknown name, or none selected.
    """
    if text:
        names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    else:
        names = tuple(available if default is None else default)
    unknown = [n for n in names if n not in available]
    if unknown:
        raise ValueError(
            f"{option}: unknown {', '.join(unknown)}; {hint or 'expected some of ' + ', '.join(available)}"
        )
    if not names:
        raise ValueError(f"{option}: nothing selected")
    return names


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, dtype: torch.dtype) -> contextlib.AbstractContextManager[object]:
    """``torch.autocast`` to ``dtype`` on ``device``; nothing for fp32."""
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def time_steps(step: Callable[[], object], steps: int, device: torch.device) -> float:
    """Mean milliseconds per call of ``step`` over ``steps`` back-to-back calls (device synchronised around)."""
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) * 1e3 / steps


def cuda_peak_bytes(step: Callable[[], object], device: torch.device) -> int:
    """Peak CUDA memory one call of ``step`` allocates beyond what was allocated before it."""
    synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def storage_bytes(t: torch.Tensor, into: dict[int, int]) -> None:
    """Record ``t``'s storage (data pointer → bytes) in ``into``; views of one storage count once."""
    storage = t.untyped_storage()
    if storage.data_ptr():
        into.setdefault(storage.data_ptr(), storage.nbytes())


def saved_storages(forward: Callable[[], torch.Tensor], into: dict[int, int]) -> torch.Tensor:
    """Run ``forward()`` recording in ``into`` the storages autograd saves for the backward pass (the CPU memory
    probe: what a training step keeps alive beyond the inputs); returns its output."""

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage_bytes(t, into)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        return forward()


class Runner:
    """One benchmarked module on a device: its named steps (``"train"``, ``"infer"`` …, set by the subclass in
    ``self.steps``), a timer and the CUDA memory probe; :func:`interleaved_medians` times several side by side."""

    def __init__(self, module: nn.Module, x: torch.Tensor, device: torch.device, dtype: torch.dtype) -> None:
        self.module = module
        self.params = [p for p in module.parameters() if p.requires_grad]
        self.x = x
        self.device = device
        self.dtype = dtype
        self.steps: dict[str, Callable[[], None]] = {}

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        return autocast(self.device, self.dtype)

    def zero_grad(self) -> None:
        self.x.grad = None
        for p in self.params:
            p.grad = None

    def time_ms(self, step: str, iters: int) -> float:
        """Mean milliseconds of the step ``step`` over ``iters`` back-to-back calls."""
        return time_steps(self.steps[step], iters, self.device)

    def cuda_peak(self, step: str) -> int:
        """Peak CUDA memory one call of ``step`` allocates (gradients cleared first)."""
        self.zero_grad()
        return cuda_peak_bytes(self.steps[step], self.device)


def describe_error(exc: BaseException) -> str:
    """``"TypeName: first line of the message"``: an error as a benchmark table cell."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def interleaved_medians(
    runners: Mapping[str, Runner], *, warmup: int, rounds: int, iters: int, settle: bool = False,
    errors: dict[str, str] | None = None,
) -> dict[str, dict[str, float]]:  # fmt: skip
    """Median milliseconds per (runner, step) over ``rounds`` interleaved rounds, after ``warmup`` calls of each step.

    Each round times every step of every runner once (``iters`` calls), step by step, so that slow drifts of the
    machine (clocks, other load) fall on all runners alike. ``settle`` adds one untimed call before each timed one
    (the previous runner's frees leave the C allocator tuned to it). With ``errors`` given, a runner that raises is
    dropped and its error recorded there (one implementation's failure must not hide the others' figures);
    otherwise errors propagate.
    """
    live = dict(runners)

    def attempt(name: str, action: Callable[[], float]) -> float | None:
        if errors is None:
            return action()
        try:
            return action()
        except Exception as exc:
            errors[name] = describe_error(exc)
            del live[name]
            return None

    step_names = list(dict.fromkeys(step for r in runners.values() for step in r.steps))
    for name, runner in list(live.items()):
        for step in runner.steps:
            if warmup and name in live:
                attempt(name, functools.partial(runner.time_ms, step, warmup))
    times: dict[str, dict[str, list[float]]] = {name: {s: [] for s in r.steps} for name, r in live.items()}
    for _ in range(rounds):
        for step in step_names:
            for name, runner in list(live.items()):
                if step not in runner.steps:
                    continue
                if settle:
                    attempt(name, functools.partial(runner.time_ms, step, 1))
                ms = attempt(name, functools.partial(runner.time_ms, step, iters)) if name in live else None
                if ms is not None:
                    times[name][step].append(ms)
    return {name: {s: statistics.median(v) for s, v in times[name].items()} for name in live}


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} logical CPUs, {torch.get_num_threads()} torch threads"


def command_line() -> str:
    """The command as the user typed it, as nearly as ``sys.argv`` allows."""
    program = sys.argv[0] if sys.argv else "kanconvs"
    main_module = sys.modules.get("__main__")
    spec = getattr(main_module, "__spec__", None)
    if spec is not None and spec.name:  # python -m kanconvs[.cli]
        program = f"python -m {spec.name.removesuffix('.__main__')}"
    elif program.endswith(".py"):
        program = f"python {os.path.relpath(program)}"
    else:
        program = os.path.basename(program)
    return " ".join([program, *(shlex.quote(a) for a in sys.argv[1:])])


def version() -> str:
    try:
        return importlib.metadata.version("kanconvs")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


_LOGGER = logging.getLogger("kanconvs.bench")


def log(message: str) -> None:
    """A progress line, logged (the command line shows it on stderr; stdout holds only the table)."""
    _LOGGER.info(message)


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], notes: Sequence[str] = (), left: int = 1) -> str:
    """An aligned plain-text table (its first ``left`` columns left-aligned, the rest right-aligned), a rule under
    the headers, then the notes after a blank line."""
    table = [tuple(headers), *(tuple(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(table):
        cells = (c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", *notes]) if notes else "\n".join(lines)


def mib(n: int | None) -> str:
    """Bytes as ``"12.3 MiB"`` (``"n/a"`` when not measured)."""
    return "n/a" if n is None else f"{n / 2**20:.1f} MiB"


def ratio(num: float | None, den: float | None) -> str:
    """``num / den`` as ``"1.23×"`` (``"n/a"`` when either is missing or ``den`` is 0)."""
    return "n/a" if num is None or not den else f"{num / den:.2f}×"


class Result(Protocol):
    """A benchmark row: its name (``name`` or ``family``) and the error that stopped it, if any."""

    @property
    def error(self) -> str | None: ...


def report(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[str]], legend: Sequence[str],
    results: Sequence[Result], device: torch.device, markdown: bool, command: str | None = None,
) -> str:  # fmt: skip
    """The table (plain text, or the Markdown report with machine and command), its legend, then the errors."""
    errors = [f"error in {getattr(r, 'name', None) or getattr(r, 'family', '?')}: {r.error}" for r in results
              if r.error is not None]  # fmt: skip
    if markdown:
        return markdown_report(title, device, headers, rows, [*legend, *errors], command)
    return text_table(headers, rows, [*legend, *errors])


def markdown_report(
    title: str,
    device: torch.device,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    notes: Sequence[str],
    command: str | None = None,
) -> str:
    """A benchmark's Markdown report: machine, versions, command and date, then the table and its notes."""
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# {title}",
        "",
        f"- machine: {machine(device)}",
        f"- torch: {torch.__version__}; kanconvs: {version()}; Python {platform.python_version()}",
        f"- command: `{command if command is not None else command_line()}`",
        f"- date: {now}",
        "",
        "| " + " | ".join(headers) + " |",
        "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(headers))) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
        *(f"- {line}" for line in notes),
        "",
    ]
    return "\n".join(lines)
