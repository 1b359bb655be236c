"""Side-by-side benchmark against the reference implementation, torch-conv-kan, imported from a local checkout.

For every family × groups this builds the reference's 2-D layer class (``KAGNConv2DLayer`` …) and the class of the
same name from :mod:`kanconvs.compat` with the same arguments and seed, and times them beside

- (b) ``Conv2d(F·C_in, C_out, 3, padding=1, groups=g)`` with ``F = features_per_channel`` of our layer: the grouped
  conv a KA layer feeds, i.e. the same conv arithmetic without the basis expansion — the floor.

Then the reference's MNIST baselines (``SimpleConvKAGN``, ``EightSimpleConvKAGN``, the plain ``SimpleConv`` …, built
with the reference's MNIST recipe) against :mod:`kanconvs.compat`'s classes of the same names.

Modes: ``train`` is one optimizer-free step in train mode (zero the gradients, forward, loss, backward; the loss is
``output.float().square().mean()`` for layers and cross-entropy against fixed random labels for models); ``infer`` is
a forward in eval mode under ``torch.inference_mode``. Each figure is the median over ``--rounds`` rounds of the
mean time of ``--steps`` steps, after ``--warmup`` steps; in every round ours, the reference and (b) are timed one
after the other, so drift hits all three alike. A failure (build, forward or backward) is reported in its cell.

The reference is imported at run time from ``--reference-dir``: its packages (``kan_convs``, ``kans``, ``models``,
``utils``) are registered as lazy packages whose ``__init__`` is not run, so only the modules a benchmarked class
needs are imported (the attention layers' ``timm`` dependency is never loaded). The models need ``einops`` (imported
by the reference's ``kans``).

Examples:
    python benchmarks/vs_reference.py --reference-dir ../torch-conv-kan --device cpu \\
        --markdown reports/vs-reference-cpu.md
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import csv
import functools
import importlib
import importlib.util
import io
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import compat
from ._common import (
    DTYPES,
    Runner,
    describe_error,
    interleaved_medians,
    machine,
    markdown_report,
    non_negative_int,
    per_device_help,
    positive_int,
    resolve_timing,
    select,
    text_table,
)

__all__ = [
    "DESCRIPTION",
    "FAMILIES",
    "MODEL_FAMILIES",
    "Cell",
    "Config",
    "Reference",
    "Timing",
    "failed",
    "format_csv",
    "format_markdown",
    "format_table",
    "run_benchmark",
]

DESCRIPTION = __doc__.split("\n\nExample:")[0] if __doc__ else ""

_KERNEL_SIZE = 3
_PADDING = 1
_IMPLEMENTATIONS = ("ours", "reference", "floor")
_MODES = ("train", "infer")

#: family -> (the reference's module under ``kan_convs``, class name shared by the reference and kanconvs.compat)
FAMILIES: dict[str, tuple[str, str]] = {
    "kan": ("kan_conv", "KANConv2DLayer"),
    "fastkan": ("fast_kan_conv", "FastKANConv2DLayer"),
    "kaln": ("kaln_conv", "KALNConv2DLayer"),
    "kacn": ("kacn_conv", "KACNConv2DLayer"),
    "kagn": ("kagn_conv", "KAGNConv2DLayer"),
    "kajn": ("kajn_conv", "KAJNConv2DLayer"),
    "kabn": ("kabn_conv", "KABNConv2DLayer"),
    "relukan": ("relukan_conv", "ReLUKANConv2DLayer"),
    "wavkan": ("wav_kan", "WavKANConv2DLayer"),
}

_W4 = (32, 64, 128, 256)
_W8 = (16, 32, 64, 128, 256, 256, 512, 512)
_RECIPE = {"dropout": 0.25, "dropout_linear": 0.5, "l1_penalty": 0.0, "degree_out": 1}


@dataclass(frozen=True)
class _ModelFamily:
    """A baseline network of the reference's ``models/baselines`` and its MNIST recipe, per depth."""

    module: str  # under models.baselines
    names: dict[int, str]  # depth -> class name
    kwargs: dict[int, dict[str, Any]]  # depth -> keyword arguments besides layer_sizes, classes and channels


def _recipe(four: dict[str, Any], eight: dict[str, Any] | None = None) -> dict[int, dict[str, Any]]:
    return {4: {**_RECIPE, **four}, 8: {**_RECIPE, **(four if eight is None else eight)}}


#: The reference's MNIST recipe (its ``mnist_conv.py`` model builders): widths, groups, degrees and dropout.
MODEL_FAMILIES: dict[str, _ModelFamily] = {
    "conv": _ModelFamily(
        "conv_baseline", {4: "SimpleConv", 8: "EightSimpleConv"}, {4: {"groups": 4}, 8: {"groups": 4}}
    ),
    "kan": _ModelFamily(
        "conv_kan_baseline", {4: "SimpleConvKAN", 8: "EightSimpleConvKAN"}, _recipe({"spline_order": 3, "groups": 1})
    ),
    "fastkan": _ModelFamily(
        "fast_conv_kan_baseline",
        {4: "SimpleFastConvKAN", 8: "EightSimpleFastConvKAN"},
        _recipe({"grid_size": 8, "groups": 1}),
    ),
    "kaln": _ModelFamily(
        "conv_kaln_baseline", {4: "SimpleConvKALN", 8: "EightSimpleConvKALN"}, _recipe({"degree": 3, "groups": 1})
    ),
    "kacn": _ModelFamily(
        "conv_kacn_baseline",
        {4: "SimpleConvKACN", 8: "EightSimpleConvKACN"},
        _recipe({"degree": 6, "groups": 4}, {"degree": 3, "groups": 1}),
    ),
    "kagn": _ModelFamily(
        "conv_kagn_baseline",
        {4: "SimpleConvKAGN", 8: "EightSimpleConvKAGN"},
        _recipe({"degree": 3, "groups": 4}, {"degree": 3, "groups": 1}),
    ),
    "wavkan": _ModelFamily(
        "conv_wavkan_baseline",
        {4: "SimpleConvWavKAN", 8: "EightSimpleConvWavKAN"},
        _recipe({"wavelet_type": "mexican_hat", "groups": 1}),
    ),
}
_MODEL_INPUT = (1, 28, 28)
_NUM_CLASSES = 10

# Defaults per device type. The CPU ones keep all nine families, both group counts, both modes and the KAGN/conv
# baselines within about a quarter of an hour on 2 cores.
_DEFAULTS: dict[str, dict[str, int]] = {
    "cuda": {"in_channels": 64, "out_channels": 128, "batch": 64, "size": 32, "model_batch": 128, "rounds": 5,
             "steps": 10, "warmup": 5},
    "cpu": {"in_channels": 32, "out_channels": 64, "batch": 16, "size": 32, "model_batch": 64, "rounds": 5,
            "steps": 3, "warmup": 2},
}  # fmt: skip


# ------------------------------------------------------------------------------------------- the reference


def _package_exports(init: Path) -> dict[str, str]:
    """``name -> relative module`` for every ``from .mod import name`` at the top of a package's ``__init__``."""
    exports: dict[str, str] = {}
    for node in ast.parse(init.read_text(encoding="utf-8"), str(init)).body:
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            for alias in node.names:
                exports[alias.asname or alias.name] = "." * node.level + (node.module or alias.name)
    return exports


def _lazy_package(name: str, directory: Path) -> types.ModuleType:
    """A package module for ``directory`` whose ``__init__`` is not executed: a name that ``__init__`` re-exports
    is imported from its own submodule on first access, so unrelated submodules (and their dependencies) stay
    unloaded."""
    init = directory / "__init__.py"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(directory)])
    if spec is None:
        raise ImportError(f"cannot make a module spec for {init}")
    module = importlib.util.module_from_spec(spec)
    exports = _package_exports(init)

    def lazy_attribute(attr: str) -> Any:
        target = exports.get(attr)
        if target is None:
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")
        submodule = importlib.import_module(target, name)
        value = submodule if target.endswith("." + attr) and not hasattr(submodule, attr) else getattr(submodule, attr)
        setattr(module, attr, value)
        return value

    setattr(module, "__getattr__", lazy_attribute)  # noqa: B010  # PEP 562 module __getattr__
    return module


class Reference:
    """torch-conv-kan imported from a checkout, for the duration of a ``with`` block.

    Entering registers the checkout's top-level packages as lazy packages (see :func:`_lazy_package`) under their
    own names — the reference imports them by absolute name (``from kans import …``) — and appends the checkout to
    ``sys.path``; leaving restores ``sys.modules`` and ``sys.path`` as they were.

    Args:
        root: the checkout's root, the directory that holds ``kan_convs``.
    """

    PACKAGES = ("kan_convs", "kans", "models", "utils")

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self._saved: dict[str, types.ModuleType] = {}

    def _owned(self, module_name: str) -> bool:
        return module_name.split(".", 1)[0] in self.PACKAGES

    def __enter__(self) -> Reference:
        importlib.invalidate_caches()
        self._saved = {k: v for k, v in sys.modules.items() if self._owned(k)}
        for key in self._saved:
            del sys.modules[key]
        for name in self.PACKAGES:
            directory = self.root / name
            if (directory / "__init__.py").is_file():
                sys.modules[name] = _lazy_package(name, directory)
        sys.path.append(str(self.root))
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ValueError):
            sys.path.remove(str(self.root))
        for key in [k for k in sys.modules if self._owned(k)]:
            del sys.modules[key]
        sys.modules.update(self._saved)

    def attribute(self, module: str, name: str) -> Any:
        """``getattr(import_module(module), name)``, e.g. ``("kan_convs.kagn_conv", "KAGNConv2DLayer")``."""
        return getattr(importlib.import_module(module), name)


def reference_dir(text: str) -> Path:
    """argparse type of ``--reference-dir``: an existing directory that holds the reference's ``kan_convs``."""
    path = Path(text).expanduser()
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is not a directory (expected a torch-conv-kan checkout)")
    if not (path / "kan_convs" / "__init__.py").is_file():
        raise argparse.ArgumentTypeError(
            f"{text!r} has no kan_convs package (expected the root of a torch-conv-kan checkout)"
        )
    return path


# ------------------------------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class Config:
    """Resolved settings (no ``None`` left)."""

    reference_dir: Path
    device: torch.device
    dtype: str
    families: tuple[str, ...]
    groups: tuple[int, ...]
    in_channels: int
    out_channels: int
    batch: int
    size: int
    depths: tuple[int, ...]
    model_families: tuple[str, ...]
    model_batch: int
    modes: tuple[str, ...]
    rounds: int
    steps: int
    warmup: int
    seed: int = 0


def _int_list(text: str, option: str) -> tuple[int, ...]:
    try:
        values = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"{option}: expected comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise ValueError(f"{option}: expected positive integers, got {text!r}")
    return tuple(dict.fromkeys(values))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the benchmark's options to ``parser``."""

    def per_device(key: str) -> str:
        return per_device_help(_DEFAULTS, key)

    parser.add_argument(
        "--reference-dir", type=reference_dir, required=True, metavar="DIR",
        help="root of a torch-conv-kan checkout (the directory that holds kan_convs/); imported at run time",
    )  # fmt: skip
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available, else cpu)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32", help="fp32, or bf16/fp16 under autocast")
    parser.add_argument("--families", default=None, help=f"comma-separated (default: all of {','.join(FAMILIES)})")
    parser.add_argument("--groups", default="1,4", help="comma-separated group counts of the layers (default: 1,4)")
    parser.add_argument("--in-channels", type=positive_int, default=None, help=per_device("in_channels"))
    parser.add_argument("--out-channels", type=positive_int, default=None, help=per_device("out_channels"))
    parser.add_argument("--batch", type=positive_int, default=None, help=f"layer batch ({per_device('batch')})")
    parser.add_argument("--size", type=positive_int, default=None, help=f"input height = width ({per_device('size')})")
    parser.add_argument(
        "--models", default="4,8", help="depths of the MNIST baselines to run: 4, 8, both (default: 4,8) or none"
    )
    parser.add_argument(
        "--model-families", default="kagn,conv",
        help=f"comma-separated baseline families (default: kagn,conv; any of {','.join(MODEL_FAMILIES)})",
    )  # fmt: skip
    parser.add_argument(
        "--model-batch",
        type=positive_int,
        default=None,
        help=f"model batch, 1×28×28 input ({per_device('model_batch')})",
    )
    parser.add_argument("--mode", default="train,infer", help="comma-separated: train, infer (default: both)")
    parser.add_argument("--rounds", type=positive_int, default=None, help=f"timed rounds ({per_device('rounds')})")
    parser.add_argument("--steps", type=positive_int, default=None, help=f"steps per round ({per_device('steps')})")
    parser.add_argument("--warmup", type=non_negative_int, default=None, help=f"warm-up steps ({per_device('warmup')})")
    parser.add_argument("--seed", type=int, default=0, help="seed of parameters and inputs (default: 0)")
    parser.add_argument("--markdown", type=Path, default=None, metavar="PATH", help="also write a Markdown report")
    parser.add_argument("--csv", type=Path, default=None, metavar="PATH", help="also write the rows as CSV")


def resolve_config(args: argparse.Namespace) -> Config:
    """Turn parsed arguments into a :class:`Config`, filling per-device defaults.

    Raises:
        ValueError: an unknown name or a malformed list, or CUDA requested where there is none.
    """
    if args.device is not None and torch.device(args.device).type not in ("cpu", "cuda"):
        raise ValueError(f"--device: expected cpu or cuda, got {args.device!r}")
    device, pick = resolve_timing(args, _DEFAULTS)

    depths = () if args.models.strip().lower() == "none" else _int_list(args.models, "--models")
    if any(d not in (4, 8) for d in depths):
        raise ValueError(f"--models: expected 4, 8, 4,8 or none, got {args.models!r}")
    groups = _int_list(args.groups, "--groups")
    in_channels, out_channels = pick["in_channels"], pick["out_channels"]
    bad = [g for g in groups if in_channels % g or out_channels % g]
    if bad:
        raise ValueError(f"--groups: {bad} do not divide both {in_channels} and {out_channels} channels")
    return Config(
        reference_dir=args.reference_dir,
        device=device,
        dtype=args.dtype,
        families=select(args.families, tuple(FAMILIES), "--families"),
        groups=groups,
        in_channels=in_channels,
        out_channels=out_channels,
        batch=pick["batch"],
        size=pick["size"],
        depths=depths,
        model_families=select(args.model_families, tuple(MODEL_FAMILIES), "--model-families"),
        model_batch=pick["model_batch"],
        modes=select(args.mode, _MODES, "--mode"),
        rounds=pick["rounds"],
        steps=pick["steps"],
        warmup=pick["warmup"],
        seed=args.seed,
    )


# ------------------------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Timing:
    """One implementation in one cell: median ms per step and CUDA peak bytes, or the error that stopped it."""

    ms: float | None = None
    peak_bytes: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Cell:
    """One table row: a layer (family × groups) or a model, in one mode."""

    what: str
    groups: int
    mode: str
    ours: Timing
    reference: Timing
    floor: Timing | None = None  # (b); None for models
    notes: tuple[str, ...] = field(default_factory=tuple)


class _Runner(Runner):
    """A module, its input (and labels for a model) and one step of a mode: timer and CUDA memory probe."""

    def __init__(self, module: nn.Module, x: Tensor, target: Tensor | None, mode: str, config: Config) -> None:
        super().__init__(module, x, config.device, DTYPES[config.dtype])
        self.target = target
        self.mode = mode
        self.steps = {mode: self.step}

    def _loss(self, output: Any) -> Tensor:
        out = output[0] if isinstance(output, (tuple, list)) else output  # MoE models return (logits, loss)
        if self.target is None:
            return out.float().square().mean()
        return F.cross_entropy(out.float(), self.target)

    def step(self) -> None:
        if self.mode == "infer":
            with torch.inference_mode(), self.autocast():
                self.module(self.x)
            return
        self.zero_grad()
        with self.autocast():
            output = self.module(self.x)
        self._loss(output).backward()

    def time_ms(self, step: str, iters: int) -> float:
        self.module.train(self.mode == "train")
        return super().time_ms(step, iters)

    def peak_bytes(self) -> int | None:
        if self.device.type != "cuda":
            return None
        self.module.train(self.mode == "train")
        return self.cuda_peak(self.mode)


def _measure(runners: dict[str, _Runner | BaseException], config: Config) -> dict[str, Timing]:
    """Warm up, then time the runners in interleaved rounds, each timed call after one untimed one; a runner that
    raises keeps its error and drops out."""
    errors = {name: describe_error(r) for name, r in runners.items() if isinstance(r, BaseException)}
    live = {name: r for name, r in runners.items() if isinstance(r, _Runner)}
    ms = interleaved_medians(
        live, warmup=config.warmup, rounds=config.rounds, iters=config.steps, settle=True, errors=errors
    )
    result = {name: Timing(error=message) for name, message in errors.items()}
    for name in ms:
        try:
            peak = live[name].peak_bytes()
        except Exception as exc:  # as for the timing: keep the other implementations' figures
            result[name] = Timing(error=describe_error(exc))
            continue
        result[name] = Timing(ms=ms[name][live[name].mode], peak_bytes=peak)
    return result


def _materialise_zero_strides(module: nn.Module) -> int:
    """Give every parameter with a zero stride (an ``expand``-ed view) its own storage; returns how many.

    The reference's ReLU-KAN keeps such parameters, which optimizers that update in place reject on CPU.
    """
    count = 0
    for p in module.parameters():
        if any(s == 0 and n > 1 for s, n in zip(p.stride(), p.shape, strict=True)):
            p.data = p.data.clone(memory_format=torch.contiguous_format)
            count += 1
    return count


def _features_per_channel(module: nn.Module) -> int:
    for sub in module.modules():
        value = getattr(sub, "features_per_channel", None)
        if isinstance(value, int):
            return value
    raise TypeError(f"{type(module).__name__} has no int features_per_channel")


def _build(builder: Callable[[], nn.Module], config: Config) -> nn.Module:
    torch.manual_seed(config.seed)
    return builder().to(config.device)


def _try_build(builder: Callable[[], nn.Module], config: Config) -> nn.Module | BaseException:
    try:
        return _build(builder, config)
    except Exception as exc:
        return exc


def _cells(
    what: str,
    groups: int,
    modules: dict[str, nn.Module | BaseException],
    inputs: dict[str, Tensor],
    target: Tensor | None,
    config: Config,
    notes: tuple[str, ...],
) -> list[Cell]:
    cells = []
    for mode in config.modes:
        runners: dict[str, _Runner | BaseException] = {
            name: m if isinstance(m, BaseException) else _Runner(m, inputs[name], target, mode, config)
            for name, m in modules.items()
        }
        measured = _measure(runners, config)
        floor = measured.get("floor")
        cells.append(Cell(what, groups, mode, measured["ours"], measured["reference"], floor, notes))
        if config.device.type == "cuda":
            torch.cuda.empty_cache()
    return cells


def _layer_cells(family: str, groups: int, reference: Reference, config: Config) -> list[Cell]:
    module_name, class_name = FAMILIES[family]
    ours_cls = getattr(compat, class_name)
    c_in, c_out = config.in_channels, config.out_channels
    kwargs: dict[str, Any] = {"groups": groups, "padding": _PADDING, "norm_layer": nn.BatchNorm2d}

    def reference_layer() -> nn.Module:
        return reference.attribute(f"kan_convs.{module_name}", class_name)(c_in, c_out, _KERNEL_SIZE, **kwargs)

    ours = _try_build(lambda: ours_cls(c_in, c_out, _KERNEL_SIZE, **kwargs), config)
    ref = _try_build(reference_layer, config)
    notes: tuple[str, ...] = ()
    if isinstance(ref, nn.Module) and (n := _materialise_zero_strides(ref)):
        notes = (f"reference {class_name}: {n} zero-stride parameters materialised (p.data = p.data.clone())",)
    modules: dict[str, nn.Module | BaseException] = {"ours": ours, "reference": ref}
    features = None
    if isinstance(ours, nn.Module):
        try:
            features = _features_per_channel(ours)
        except TypeError as exc:
            modules["floor"] = exc
    else:
        modules["floor"] = RuntimeError("(b) needs our layer's features_per_channel")
    if features is not None:
        modules["floor"] = _try_build(
            lambda: nn.Conv2d(features * c_in, c_out, _KERNEL_SIZE, padding=_PADDING, groups=groups, bias=False),
            config,
        )
    torch.manual_seed(config.seed)
    x = torch.randn(config.batch, c_in, config.size, config.size).to(config.device).requires_grad_()
    inputs = {"ours": x, "reference": x}
    if features is not None:
        floor_x = torch.randn(config.batch, features * c_in, config.size, config.size)
        inputs["floor"] = floor_x.to(config.device).requires_grad_()
    return _cells(family, groups, modules, inputs, None, config, notes)


def _model_cells(family: str, depth: int, reference: Reference, config: Config) -> list[Cell]:
    spec = MODEL_FAMILIES[family]
    name = spec.names[depth]
    kwargs = {"num_classes": _NUM_CLASSES, "input_channels": _MODEL_INPUT[0], **spec.kwargs[depth]}
    widths = list(_W4 if depth == 4 else _W8)

    def reference_model() -> nn.Module:
        return reference.attribute(f"models.baselines.{spec.module}", name)(widths, **kwargs)

    modules: dict[str, nn.Module | BaseException] = {
        "ours": _try_build(lambda: getattr(compat, name)(widths, **kwargs), config),
        "reference": _try_build(reference_model, config),
    }
    torch.manual_seed(config.seed)
    x = torch.randn(config.model_batch, *_MODEL_INPUT).to(config.device)
    target = torch.randint(0, _NUM_CLASSES, (config.model_batch,)).to(config.device)
    return _cells(name, int(spec.kwargs[depth]["groups"]), modules, {"ours": x, "reference": x}, target, config, ())


def _jobs(config: Config) -> Iterator[tuple[str, Callable[[Reference], list[Cell]]]]:
    for family in config.families:
        for groups in config.groups:
            yield f"{family} groups={groups}", functools.partial(_layer_cells, family, groups, config=config)
    for depth in config.depths:
        for family in config.model_families:
            name = MODEL_FAMILIES[family].names[depth]
            yield name, functools.partial(_model_cells, family, depth, config=config)


def run_benchmark(config: Config, progress: Callable[[str], None] | None = None) -> list[Cell]:
    """Benchmark every layer cell, then every model, of ``config``; failures are reported in their cells.

    Args:
        config: resolved settings, see :func:`resolve_config`.
        progress: called with the machine line, then one line per layer or model (e.g. :func:`log`); ``None`` for
            silence.
    """
    if progress is not None:
        progress(f"machine: {machine(config.device)}; torch {torch.__version__}")
    jobs = list(_jobs(config))
    cells: list[Cell] = []
    with Reference(config.reference_dir) as reference:
        for index, (label, job) in enumerate(jobs, 1):
            if progress is not None:
                progress(f"[{index}/{len(jobs)}] {label}")
            cells += job(reference)
    return cells


# ------------------------------------------------------------------------------------------- reporting


def _headers(config: Config) -> tuple[str, ...]:
    base = ("what", "groups", "mode", "ours ms", "reference ms", "(b) ms", "ours ÷ reference", "ours ÷ (b)")
    if config.device.type == "cuda":
        return (*base, "ours MiB", "reference MiB", "MiB ours ÷ reference")
    return base


def _ms(t: Timing | None) -> str:
    if t is None:
        return "—"
    if t.error is not None:  # the exception's type here; its message in the notes
        return f"error: {t.error.split(':', 1)[0]}"
    return f"{t.ms:.2f}" if t.ms is not None else "—"


def _ratio(a: float | int | None, b: float | int | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "—"


def _mib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.1f}"


def _rows(cells: Sequence[Cell], config: Config) -> list[tuple[str, ...]]:
    rows = []
    for c in cells:
        floor_ms = c.floor.ms if c.floor is not None else None
        row: tuple[str, ...] = (
            c.what, str(c.groups), c.mode, _ms(c.ours), _ms(c.reference), _ms(c.floor),
            _ratio(c.ours.ms, c.reference.ms), _ratio(c.ours.ms, floor_ms),
        )  # fmt: skip
        if config.device.type == "cuda":
            row += (
                _mib(c.ours.peak_bytes),
                _mib(c.reference.peak_bytes),
                _ratio(c.ours.peak_bytes, c.reference.peak_bytes),
            )
        rows.append(row)
    return rows


def _notes(cells: Sequence[Cell], config: Config) -> list[str]:
    shape = f"{config.batch}×{config.in_channels}×{config.size}×{config.size}"
    notes = [
        f"reference: torch-conv-kan from {config.reference_dir.resolve()}, imported at run time (its packages "
        "registered lazily, so only the benchmarked modules are loaded)",
        f"layers: <Class>({config.in_channels}, {config.out_channels}, {_KERNEL_SIZE}, groups=g, padding={_PADDING}, "
        f"norm_layer=nn.BatchNorm2d), the reference's class and kanconvs.compat's of the same name, on input {shape}; "
        "the input requires grad (a layer inside a network back-propagates into its input)",
        f"(b): nn.Conv2d(F·{config.in_channels}, {config.out_channels}, {_KERNEL_SIZE}, padding={_PADDING}, "
        "groups=g, bias=False) on a random F·C_in input, F = features_per_channel of our layer: the conv arithmetic "
        "without the basis expansion",
        f"models: the reference's MNIST recipe (widths {list(_W4)} / {list(_W8)}, num_classes={_NUM_CLASSES}, "
        f"input_channels=1, dropout=0.25, dropout_linear=0.5, l1_penalty=0, degree_out=1; groups as in the groups "
        f"column; SimpleConvKACN degree 6) on input {config.model_batch}×{'×'.join(map(str, _MODEL_INPUT))}, "
        "cross-entropy against fixed random labels",
        "train: zero gradients, forward, loss (layers: output.float().square().mean()), backward, no optimizer; "
        "modules in train mode (dropout and BatchNorm batch statistics active). infer: eval mode under "
        "torch.inference_mode",
        f"timing: both implementations built with seed {config.seed}; dtype {config.dtype}"
        f"{' (torch.autocast)' if config.dtype != 'fp32' else ''}; {config.warmup} warm-up steps, then "
        f"{config.rounds} rounds of {config.steps} steps, in each round ours, then the reference, then (b), each "
        "after one untimed step; each figure is the median over rounds of the per-step mean, in milliseconds",
        "ratios: ours ÷ reference < 1 means ours is faster",
    ]
    if config.device.type == "cuda":
        notes.append(
            "peak MiB: torch.cuda.max_memory_allocated during one step minus memory allocated before it "
            "(parameters and input excluded)"
        )
    else:
        notes.append("peak memory: n/a on CPU (measured on CUDA only)")
    notes += list(dict.fromkeys(n for c in cells for n in c.notes))
    for c in cells:
        for label, t in (("ours", c.ours), ("reference", c.reference), ("(b)", c.floor)):
            if t is not None and t.error is not None:
                notes.append(f"error, {c.what} groups={c.groups} {c.mode}, {label}: {t.error}")
    return notes


def format_table(cells: Sequence[Cell], config: Config) -> str:
    """The cells as an aligned plain-text table followed by its notes."""
    return text_table(_headers(config), _rows(cells, config), [f"- {n}" for n in _notes(cells, config)], left=3)


def format_markdown(cells: Sequence[Cell], config: Config, command: str | None = None) -> str:
    """The cells as a Markdown report: machine, versions, command, the table and its notes."""
    title = "kanconvs vs torch-conv-kan (reference)"
    return markdown_report(title, config.device, _headers(config), _rows(cells, config), _notes(cells, config), command)


def format_csv(cells: Sequence[Cell], config: Config) -> str:
    """One CSV line per cell: milliseconds, ratios, CUDA peak MiB (empty on CPU) and errors."""

    def num(value: float | None, digits: int = 4) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    def div(a: float | int | None, b: float | int | None) -> float | None:
        return a / b if a is not None and b else None

    def mib(n: int | None) -> float | None:
        return None if n is None else n / 2**20

    lines: list[list[str]] = [
        ["what", "groups", "mode", "device", "dtype", "ours_ms", "reference_ms", "b_ms", "ours_over_reference",
         "ours_over_b", "ours_peak_mib", "reference_peak_mib", "peak_ours_over_reference", "ours_error",
         "reference_error", "b_error"],
    ]  # fmt: skip
    for c in cells:
        floor = c.floor or Timing()
        lines.append(
            [
                c.what, str(c.groups), c.mode, str(config.device), config.dtype,
                num(c.ours.ms), num(c.reference.ms), num(floor.ms),
                num(div(c.ours.ms, c.reference.ms)), num(div(c.ours.ms, floor.ms)),
                num(mib(c.ours.peak_bytes), 1), num(mib(c.reference.peak_bytes), 1),
                num(div(c.ours.peak_bytes, c.reference.peak_bytes)),
                c.ours.error or "", c.reference.error or "", floor.error or "",
            ]
        )  # fmt: skip
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(lines)
    return out.getvalue()


# ------------------------------------------------------------------------------------------- entry point


def failed(cells: Sequence[Cell]) -> bool:
    """Whether one of our cells failed (the command then exits with 1; the reference's failures are reported)."""
    return any(c.ours.error is not None for c in cells)
