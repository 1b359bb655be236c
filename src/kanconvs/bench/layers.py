"""Layer benchmark: train-step time and memory of each family's conv layer beside plain-conv baselines.

For every registered family this builds ``create_conv(family, C_in, C_out, 3, padding=1)`` and times one
optimizer-free training step (forward + backward, gradients for the input and all parameters) next to

- (a) ``Conv2d(C_in, C_out) + BatchNorm2d + ReLU``: the layer a KA conv replaces, and
- (b) ``Conv2d(F·C_in, C_out, groups=layer.groups)`` with ``F = layer.features_per_channel``: the single
  grouped conv the KA layer feeds, i.e. the same conv arithmetic without the basis expansion — the floor.

The three are timed in interleaved rounds in one process, so the ratios compare like with like. Each figure is
the median over ``--repeats`` rounds of ``--iters`` steps, after ``--warmup`` steps.

Peak memory: on CUDA, ``torch.cuda.max_memory_allocated`` during one step minus what was allocated before it
(parameters and input excluded; activations, gradients and workspaces included). On CPU, the bytes of the
unique storages autograd saves for backward plus the output (``torch.autograd.graph.saved_tensors_hooks``).

Examples:
    python benchmarks/layers.py --device cpu --families kagn,kan --markdown reports/layers-cpu.md
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import kanconvs

from ._common import (
    DTYPES,
    Runner,
    add_timing_arguments,
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
    storage_bytes,
)

__all__ = [
    "DESCRIPTION",
    "BenchConfig",
    "FamilyResult",
    "Measurement",
    "add_arguments",
    "failed",
    "format_markdown",
    "format_table",
    "resolve_config",
    "run_benchmark",
]

DESCRIPTION = __doc__.split("\n\nExample:")[0] if __doc__ else ""

_KERNEL_SIZE = 3
_PADDING = 1

# Defaults per device type: the CUDA ones are the reference shape; the CPU ones keep a full run of all
# families on a 2-core machine within a few minutes.
_DEFAULTS: dict[str, dict[str, int]] = {
    "cuda": {"batch": 64, "size": 32, "warmup": 10, "iters": 20, "repeats": 5},
    "cpu": {"batch": 8, "size": 16, "warmup": 2, "iters": 4, "repeats": 5},
}


@dataclass(frozen=True)
class BenchConfig:
    """Resolved benchmark settings (no ``None`` left)."""

    device: torch.device
    families: tuple[str, ...]
    batch: int
    size: int
    in_channels: int
    out_channels: int
    warmup: int
    iters: int
    repeats: int
    dtype: str
    compile: bool
    variant: str = "conv"

    @property
    def memory_measure(self) -> str:
        """One sentence saying how "peak mem" was measured on this device."""
        if self.device.type == "cuda":
            return (
                "CUDA: torch.cuda.max_memory_allocated during one fwd+bwd step minus memory allocated before it "
                "(activations, gradients and workspaces; parameters and input excluded)"
            )
        return (
            "CPU: bytes of the unique storages saved for backward (torch.autograd.graph.saved_tensors_hooks) "
            "plus the output"
        )


@dataclass(frozen=True)
class Measurement:
    """Median milliseconds per fwd+bwd step and peak memory in bytes (``None`` if it could not be measured)."""

    ms: float
    mem_bytes: int | None


@dataclass(frozen=True)
class FamilyResult:
    """One table row: the KA layer of ``family`` and the two baselines measured beside it."""

    family: str
    features_per_channel: int | None = None
    params: int | None = None
    layer: Measurement | None = None
    baseline: Measurement | None = None  # (a) Conv2d + BatchNorm2d + ReLU
    floor: Measurement | None = None  # (b) Conv2d with F·C_in input channels
    error: str | None = None


# ----------------------------------------------------------------------------------------------- arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to ``parser`` (shared by the CLI and ``benchmarks/layers.py``)."""
    add_timing_arguments(parser, _DEFAULTS)
    parser.add_argument(
        "--families", default=None, help="comma-separated family names (default: all of kanconvs.list_families())"
    )
    for key, what in (("batch", "batch size"), ("size", "input height = width")):
        help_text = f"{what} ({per_device_help(_DEFAULTS, key)})"
        parser.add_argument(f"--{key}", type=positive_int, default=None, help=help_text)
    parser.add_argument("--in-channels", type=positive_int, default=64, help="input channels (default: 64)")
    parser.add_argument("--out-channels", type=positive_int, default=128, help="output channels (default: 128)")
    parser.add_argument(
        "--dtype", choices=sorted(DTYPES), default="fp32", help="fp32, or bf16/fp16 under torch.autocast"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile every layer (the baselines too)")
    parser.add_argument(
        "--variant",
        choices=sorted(VARIANTS),
        default="conv",
        help="which layer of each family: the KA conv (default) or a variant built on it",
    )


def resolve_config(args: argparse.Namespace) -> BenchConfig:
    """Turn parsed arguments into a :class:`BenchConfig`, filling per-device defaults.

    Raises:
        ValueError: unknown family, or a CUDA device requested where none is available.
    """
    device, timing = resolve_timing(args, _DEFAULTS)
    families = select(args.families, list(kanconvs.list_families()), "--families")
    return BenchConfig(
        device=device, families=families, in_channels=args.in_channels, out_channels=args.out_channels,
        dtype=args.dtype, compile=args.compile, variant=args.variant, **timing,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------- measuring


class _Runner(Runner):
    """One module and its input (which needs a gradient too: a layer inside a network back-propagates into it):
    a training step and the memory probe."""

    def __init__(self, module: nn.Module, in_channels: int, config: BenchConfig) -> None:
        module = module.to(config.device).train()
        x = torch.randn((config.batch, in_channels, config.size, config.size), device=config.device, requires_grad=True)
        super().__init__(module, x, config.device, DTYPES[config.dtype])
        self.forward: Callable[[torch.Tensor], torch.Tensor] = torch.compile(module) if config.compile else module
        self.steps = {"train": self.step}

    def step(self) -> None:
        self.zero_grad()
        with self.autocast():
            y = self.forward(self.x)
        y.float().sum().backward()

    def peak_memory(self) -> int | None:
        if self.device.type == "cuda":
            return self.cuda_peak("train")
        storages: dict[int, int] = {}
        self.zero_grad()

        def forward() -> torch.Tensor:
            with self.autocast():
                return self.forward(self.x)

        try:
            y = saved_storages(forward, storages)
        except RuntimeError:  # e.g. a compiled graph that refuses saved-tensor hooks
            return None
        storage_bytes(y, storages)
        y.float().sum().backward()
        self.zero_grad()
        return sum(storages.values())


def _measure(runners: dict[str, _Runner], config: BenchConfig) -> dict[str, Measurement]:
    """Warm up, then time the runners in interleaved rounds; the median round of each is reported."""
    ms = interleaved_medians(runners, warmup=config.warmup, rounds=config.repeats, iters=config.iters)
    return {name: Measurement(ms=ms[name]["train"], mem_bytes=r.peak_memory()) for name, r in runners.items()}


def _required_int(layer: nn.Module, name: str, family: str) -> int:
    value = getattr(layer, name, None)
    if not isinstance(value, int):
        raise TypeError(f"create_conv({family!r}, ...) returned {type(layer).__name__} without an int .{name}")
    return value


def _baseline(config: BenchConfig) -> nn.Module:
    conv = nn.Conv2d(config.in_channels, config.out_channels, _KERNEL_SIZE, padding=_PADDING, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(config.out_channels), nn.ReLU(inplace=True))


def _floor(config: BenchConfig, features: int, groups: int) -> nn.Module:
    in_channels = features * config.in_channels
    return nn.Conv2d(in_channels, config.out_channels, _KERNEL_SIZE, padding=_PADDING, groups=groups, bias=False)


def _plain(family: str, c_in: int, c_out: int) -> nn.Module:
    return kanconvs.create_conv(family, c_in, c_out, _KERNEL_SIZE, ndim=2, padding=_PADDING)


def _bottleneck(family: str, c_in: int, c_out: int) -> nn.Module:
    return kanconvs.BottleneckKAConv2d(c_in, c_out, _KERNEL_SIZE, padding=_PADDING, family=family)


def _expert_norm(family: str) -> dict[str, Any]:
    return {"norm_layer": "instance"} if family == "wavkan" else {}  # MoE experts take no BatchNorm


def _moe(family: str, c_in: int, c_out: int) -> nn.Module:
    return kanconvs.MoEKAConv2d(
        c_in, c_out, _KERNEL_SIZE, padding=_PADDING, family=family, num_experts=4, k=2, **_expert_norm(family)
    )


def _attention(family: str, c_in: int, c_out: int) -> nn.Module:
    return kanconvs.KASelfAttention2d(c_in, _KERNEL_SIZE, family=family)


def _focal(family: str, c_in: int, c_out: int) -> nn.Module:
    return kanconvs.KAFocalModulation2d(c_in, family=family)


#: Layer builders ``(family, C_in, C_out) -> module``. For a variant, (b) stays the floor of the family's plain
#: KA conv, so a ratio below 1 is what the variant saves.
VARIANTS: dict[str, Callable[[str, int, int], nn.Module]] = {
    "conv": _plain,
    "bottleneck": _bottleneck,
    "moe": _moe,
    "attention": _attention,
    "focal": _focal,
}
_VARIANT_LEGEND = {
    "conv": "create_conv(family, {c_in}, {c_out}, 3, padding=1)",
    "bottleneck": "BottleneckKAConv2d({c_in}, {c_out}, 3, padding=1, family=family)",
    "moe": "MoEKAConv2d({c_in}, {c_out}, 3, padding=1, family=family, num_experts=4, k=2)",
    "attention": "KASelfAttention2d({c_in}, 3, family=family) (C_in → C_in)",
    "focal": "KAFocalModulation2d({c_in}, family=family) (C_in → C_in)",
}


def _bench_family(
    family: str, config: BenchConfig, baseline: _Runner, floors: dict[tuple[int, int], _Runner]
) -> FamilyResult:
    layer = VARIANTS[config.variant](family, config.in_channels, config.out_channels)
    plain = layer if config.variant == "conv" else _plain(family, config.in_channels, config.out_channels)
    features = _required_int(plain, "features_per_channel", family)
    groups = _required_int(plain, "groups", family)
    key = (features, groups)
    if key not in floors:
        floors[key] = _Runner(_floor(config, features, groups), features * config.in_channels, config)
    runners = {"layer": _Runner(layer, config.in_channels, config), "baseline": baseline, "floor": floors[key]}
    measured = _measure(runners, config)
    return FamilyResult(
        family=family,
        features_per_channel=features,
        params=sum(p.numel() for p in layer.parameters()),
        layer=measured["layer"],
        baseline=measured["baseline"],
        floor=measured["floor"],
    )


def run_benchmark(config: BenchConfig, log: Callable[[str], None] | None = None) -> list[FamilyResult]:
    """Benchmark every family in ``config``; a family that fails gets a row with ``error`` set.

    Args:
        config: resolved settings, see :func:`resolve_config`.
        log: called with the machine line, then one progress line per family (e.g. :func:`~._common.log`);
            ``None`` for silence.
    """
    if log is not None:
        log(f"machine: {machine(config.device)}; torch {torch.__version__}")
    torch.manual_seed(0)
    baseline = _Runner(_baseline(config), config.in_channels, config)
    floors: dict[tuple[int, int], _Runner] = {}
    results = []
    for index, family in enumerate(config.families, 1):
        if log is not None:
            log(f"[{index}/{len(config.families)}] {family}")
        try:
            results.append(_bench_family(family, config, baseline, floors))
        except Exception as exc:  # one broken family must not hide the others' figures
            results.append(FamilyResult(family=family, error=f"{type(exc).__name__}: {exc}"))
        if config.device.type == "cuda":
            torch.cuda.empty_cache()
    return results


# ----------------------------------------------------------------------------------------------- reporting

_HEADERS = (
    "family",
    "F",
    "params",
    "ms/step",
    "(a) ms",
    "(b) ms",
    "× (a)",
    "× (b)",
    "peak mem",
    "mem × (a)",
    "mem × (b)",
)


def _rows(results: Sequence[FamilyResult]) -> list[tuple[str, ...]]:
    """One row of cells per family; a failed family gets ``error`` under ms/step and dashes elsewhere."""
    rows = []
    for r in results:
        if r.layer is None or r.baseline is None or r.floor is None:
            rows.append((r.family, "—", "—", "error", *("—",) * (len(_HEADERS) - 4)))
            continue
        mem, mem_a, mem_b = r.layer.mem_bytes, r.baseline.mem_bytes, r.floor.mem_bytes
        rows.append(
            (
                r.family,
                str(r.features_per_channel),
                f"{r.params:,}",
                f"{r.layer.ms:.2f}",
                f"{r.baseline.ms:.2f}",
                f"{r.floor.ms:.2f}",
                ratio(r.layer.ms, r.baseline.ms),
                ratio(r.layer.ms, r.floor.ms),
                mib(mem),
                ratio(mem, mem_a),
                ratio(mem, mem_b),
            )
        )
    return rows


def _legend(config: BenchConfig) -> list[str]:
    shape = f"{config.batch}×{config.in_channels}×{config.size}×{config.size}"
    return [
        "layer: "
        + _VARIANT_LEGEND[config.variant].format(c_in=config.in_channels, c_out=config.out_channels)
        + f" on input {shape}, dtype {config.dtype}{', torch.compile' if config.compile else ''}",
        "ms/step: median over rounds of the mean fwd+bwd step time (no optimizer)",
        f"(a): Conv2d({config.in_channels}, {config.out_channels}, {_KERNEL_SIZE}) + BatchNorm2d + ReLU",
        f"(b): Conv2d(F·{config.in_channels}, {config.out_channels}, {_KERNEL_SIZE}, groups=layer.groups), "
        "F = features per input channel of the family's plain KA conv: its conv arithmetic without the basis "
        "(the floor; for a variant, ratios below 1 are what the variant saves)",
        f"peak mem: {config.memory_measure}",
        f"timing: {config.warmup} warm-up steps, then {config.repeats} interleaved rounds of {config.iters} steps",
    ]


def format_table(results: Sequence[FamilyResult], config: BenchConfig) -> str:
    """The results as an aligned plain-text table followed by its legend and any errors."""
    return report("", _HEADERS, _rows(results), _legend(config), results, config.device, markdown=False)


def format_markdown(results: Sequence[FamilyResult], config: BenchConfig, command: str | None = None) -> str:
    """The results as a Markdown report: machine, versions and command, then the table and its legend."""
    return report("Layer benchmark", _HEADERS, _rows(results), _legend(config), results, config.device, True, command)


# ----------------------------------------------------------------------------------------------- entry points


def failed(results: Sequence[FamilyResult]) -> bool:
    """Whether a row of ours failed (the command then exits with 1)."""
    return any(r.error is not None for r in results)
