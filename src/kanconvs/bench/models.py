"""Model benchmark: training and inference throughput and peak memory of registered models, each beside the
plain-conv baseline of the same architecture (``create_model(name, family="conv")``).

For every model this measures

- train: images/s of a full training step (forward, ``task loss + regularization_loss(model)``, backward, AdamW
  step; the task loss is the mean of every output, the same for both networks),
- infer: images/s of an eval-mode forward under ``torch.no_grad()``,
- peak memory of one training step,

for the model and its plain baseline in interleaved rounds in one process, so each ratio compares like with like.
Each figure is the median over ``--repeats`` rounds of ``--iters`` steps, after ``--warmup`` steps.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` during one training step minus what was allocated before
it (gradients, activations, workspaces), plus the model's parameters, AdamW state and input. On CPU, the bytes of
the unique storages autograd saves for backward (``torch.autograd.graph.saved_tensors_hooks``) plus the parameters
and their gradients (optimizer state excluded).

Examples:
    python benchmarks/models.py --device cpu --models simple_kagn_4,simple_kan_4 --batch-size 32 \\
        --input-size 1 28 28 --markdown reports/models-cpu.md
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

import kanconvs
from kanconvs.layers.regularization import regularization_loss

# Shared with the layer benchmark: machine description, command line, version and argument types.
from ._common import (
    Runner,
    add_timing_arguments,
    cuda_peak_bytes,
    interleaved_medians,
    machine,
    mib,
    per_device_help,
    positive_int,
    ratio,
    report,
    resolve_timing,
    saved_storages,
    select,
)

__all__ = [
    "DESCRIPTION",
    "BenchConfig",
    "Measurement",
    "ModelResult",
    "add_arguments",
    "failed",
    "format_markdown",
    "format_table",
    "resolve_config",
    "run_benchmark",
]

DESCRIPTION = __doc__.split("\n\nExample:")[0] if __doc__ else ""

_AMP = {"bf16": torch.bfloat16, "fp16": torch.float16}
_DEFAULTS: dict[str, dict[str, int]] = {
    "cuda": {"batch_size": 64, "warmup": 5, "iters": 10, "repeats": 5},
    "cpu": {"batch_size": 8, "warmup": 1, "iters": 2, "repeats": 3},
}


@dataclass(frozen=True)
class BenchConfig:
    """Resolved benchmark settings."""

    device: torch.device
    models: tuple[str, ...]
    batch_size: int
    input_size: tuple[int, int, int]
    num_classes: int | None
    warmup: int
    iters: int
    repeats: int
    amp: str | None
    threads: int | None = None

    @property
    def memory_measure(self) -> str:
        """One sentence saying how "peak mem" was measured on this device."""
        if self.device.type == "cuda":
            return (
                "CUDA: torch.cuda.max_memory_allocated during one training step minus what was allocated before it, "
                "plus the model's parameters, AdamW state and input"
            )
        return (
            "CPU: bytes of the unique storages saved for backward (torch.autograd.graph.saved_tensors_hooks) plus "
            "parameters and gradients (optimizer state excluded)"
        )


@dataclass(frozen=True)
class Measurement:
    """Median images/s of a training step and of inference, and peak training memory in bytes."""

    params: int
    train_ips: float
    infer_ips: float
    mem_bytes: int


@dataclass(frozen=True)
class ModelResult:
    """One table row: a model and its plain-conv baseline (``None`` where building or running failed)."""

    name: str
    model: Measurement | None = None
    baseline: Measurement | None = None
    error: str | None = None


# ------------------------------------------------------------------------------------------------- arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to ``parser`` (shared by the CLI and ``benchmarks/models.py``)."""
    parser.add_argument(
        "--models", required=True, help="comma-separated registered model names (see `kanconvs list --models`)"
    )
    add_timing_arguments(parser, _DEFAULTS)
    batch = per_device_help(_DEFAULTS, "batch_size")
    parser.add_argument("--batch-size", type=positive_int, default=None, help=f"batch ({batch})")
    parser.add_argument(
        "--input-size", type=positive_int, nargs=3, default=(3, 32, 32), metavar=("C", "H", "W"),
        help="input channels, height, width (default: 3 32 32); C is passed to the models as in_channels",
    )  # fmt: skip
    parser.add_argument("--num-classes", type=positive_int, default=None, help="classes (default: the model's)")
    parser.add_argument("--amp", choices=sorted(_AMP), default=None, help="run forward passes under torch.autocast")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")


def resolve_config(args: argparse.Namespace) -> BenchConfig:
    """Turn parsed arguments into a :class:`BenchConfig`, filling per-device defaults.

    Raises:
        ValueError: unknown model name, or a CUDA device requested where none is available.
    """
    device, timing = resolve_timing(args, _DEFAULTS)
    hint = "see `kanconvs list --models` for the names"
    models = select(args.models, kanconvs.list_models(), "--models", hint, default=())
    return BenchConfig(
        device=device, models=models, input_size=(int(args.input_size[0]), int(args.input_size[1]),
        int(args.input_size[2])), num_classes=args.num_classes, amp=args.amp, threads=args.threads, **timing,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------- measuring


def _tensors(output: Any) -> Iterator[Tensor]:
    """Every tensor of a model output (a tensor, or nested tuples, lists and dicts of them)."""
    if isinstance(output, Tensor):
        yield output
    elif isinstance(output, dict):
        for value in output.values():
            yield from _tensors(value)
    elif isinstance(output, (tuple, list)):
        for value in output:
            yield from _tensors(value)


def _nbytes(t: Tensor) -> int:
    return t.numel() * t.element_size()


class _Runner(Runner):
    """A model, its AdamW optimizer and an input: a training step, an inference step, the memory probe."""

    def __init__(self, model: nn.Module, config: BenchConfig) -> None:
        x = torch.randn((config.batch_size, *config.input_size), device=config.device)
        amp = _AMP.get(config.amp) if config.amp else None
        super().__init__(model.to(config.device), x, config.device, amp or torch.float32)
        self.optimizer = torch.optim.AdamW(self.params, lr=1e-4)
        self.steps = {"train": self.train_step, "infer": self.infer_step}

    def _loss(self) -> Tensor:
        with self.autocast():
            output = self.module(self.x)
        task = torch.stack([t.float().mean() for t in _tensors(output) if t.is_floating_point()]).sum()
        return task + regularization_loss(self.module)

    def train_step(self) -> None:
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        self._loss().backward()
        self.optimizer.step()

    def infer_step(self) -> None:
        self.module.eval()
        with torch.no_grad(), self.autocast():
            self.module(self.x)

    def peak_memory(self) -> int:
        # Persistent tensors (parameters, optimizer state, input) plus what one training step adds on top.
        if self.device.type == "cuda":
            self.optimizer.zero_grad(set_to_none=True)
            step_bytes = cuda_peak_bytes(self.train_step, self.device)
            state = [t for s in self.optimizer.state.values() for t in s.values() if isinstance(t, Tensor)]
            return step_bytes + sum(_nbytes(t) for t in [*self.module.parameters(), *state, self.x])
        storages = {p.untyped_storage().data_ptr(): _nbytes(p) for p in self.module.parameters()}
        self.module.train()
        self.optimizer.zero_grad(set_to_none=True)
        saved_storages(self._loss, storages).backward()
        grads = sum(_nbytes(p.grad) for p in self.params if p.grad is not None)
        self.optimizer.zero_grad(set_to_none=True)
        return sum(storages.values()) + grads


def _measure(runners: dict[str, _Runner], config: BenchConfig) -> dict[str, Measurement]:
    """Warm up, then time training and inference of the runners in interleaved rounds (median of each)."""
    ms = interleaved_medians(runners, warmup=config.warmup, rounds=config.repeats, iters=config.iters)
    return {
        name: Measurement(
            params=sum(p.numel() for p in runner.module.parameters()),
            train_ips=runner.x.shape[0] * 1e3 / ms[name]["train"],
            infer_ips=runner.x.shape[0] * 1e3 / ms[name]["infer"],
            mem_bytes=runner.peak_memory(),
        )
        for name, runner in runners.items()
    }


def _model_kwargs(config: BenchConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"in_channels": config.input_size[0]}
    if config.num_classes is not None:
        kwargs["num_classes"] = config.num_classes
    return kwargs


def _bench_model(name: str, config: BenchConfig) -> ModelResult:
    kwargs = _model_kwargs(config)
    torch.manual_seed(0)
    model = kanconvs.create_model(name, **kwargs)
    baseline = kanconvs.create_model(name, **kwargs, family="conv")
    measured = _measure({"model": _Runner(model, config), "baseline": _Runner(baseline, config)}, config)
    return ModelResult(name=name, model=measured["model"], baseline=measured["baseline"])


def run_benchmark(config: BenchConfig, log: Callable[[str], None] | None = None) -> list[ModelResult]:
    """Benchmark every model in ``config``; a model that fails gets a row with ``error`` set.

    Args:
        config: resolved settings, see :func:`resolve_config`; ``config.threads`` sets ``torch.set_num_threads``
            for the whole process.
        log: called with the machine line, then one progress line per model (e.g. :func:`~._common.log`);
            ``None`` for silence.
    """
    if config.threads is not None:  # process-wide, so that the report's machine line shows it too
        torch.set_num_threads(config.threads)
    if log is not None:
        log(f"machine: {machine(config.device)}; torch {torch.__version__}")
    results = []
    for index, name in enumerate(config.models, 1):
        if log is not None:
            log(f"[{index}/{len(config.models)}] {name}")
        try:
            results.append(_bench_model(name, config))
        except Exception as exc:  # one broken model must not hide the others' figures
            results.append(ModelResult(name=name, error=f"{type(exc).__name__}: {exc}"))
        if config.device.type == "cuda":
            torch.cuda.empty_cache()
    return results


# ------------------------------------------------------------------------------------------------- reporting

_HEADERS = (
    "model",
    "params",
    "conv params",
    "train img/s",
    "conv train img/s",
    "train slowdown",
    "infer img/s",
    "conv infer img/s",
    "infer slowdown",
    "peak mem",
    "conv peak mem",
    "mem ×",
)


def _rows(results: Sequence[ModelResult]) -> list[tuple[str, ...]]:
    rows = []
    for r in results:
        m, b = r.model, r.baseline
        if m is None or b is None:
            rows.append((r.name, "error", *("—",) * (len(_HEADERS) - 2)))
            continue
        rows.append(
            (
                r.name,
                f"{m.params:,}",
                f"{b.params:,}",
                f"{m.train_ips:.1f}",
                f"{b.train_ips:.1f}",
                ratio(b.train_ips, m.train_ips),
                f"{m.infer_ips:.1f}",
                f"{b.infer_ips:.1f}",
                ratio(b.infer_ips, m.infer_ips),
                mib(m.mem_bytes),
                mib(b.mem_bytes),
                ratio(m.mem_bytes, b.mem_bytes),
            )
        )
    return rows


def _legend(config: BenchConfig) -> list[str]:
    c, h, w = config.input_size
    classes = f", num_classes={config.num_classes}" if config.num_classes is not None else ""
    return [
        f"input: {config.batch_size}×{c}×{h}×{w} (models built with in_channels={c}{classes}), "
        f"{'autocast ' + config.amp if config.amp else 'fp32'}, {config.device.type}",
        "conv: the same architecture with family='conv' (classic Conv–BatchNorm–ReLU layers), measured beside it",
        "train: images/s of forward + backward + AdamW step; infer: images/s of an eval forward under no_grad",
        "slowdown: conv img/s ÷ model img/s (how many times slower the KA model is); mem ×: model ÷ conv",
        f"peak mem: {config.memory_measure}",
        f"timing: {config.warmup} warm-up steps, then {config.repeats} interleaved rounds of {config.iters} steps; "
        "medians",
    ]


def format_table(results: Sequence[ModelResult], config: BenchConfig) -> str:
    """The results as an aligned plain-text table followed by its legend and any errors."""
    return report("", _HEADERS, _rows(results), _legend(config), results, config.device, markdown=False)


def format_markdown(results: Sequence[ModelResult], config: BenchConfig, command: str | None = None) -> str:
    """The results as a Markdown report: machine, versions and command, then the table and its legend."""
    return report("Model benchmark", _HEADERS, _rows(results), _legend(config), results, config.device, True, command)


# ---------------------------------------------------------------------------------------------- entry points


def failed(results: Sequence[ModelResult]) -> bool:
    """Whether a row of ours failed (the command then exits with 1)."""
    return any(r.error is not None for r in results)
