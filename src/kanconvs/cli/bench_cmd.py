"""``kanconvs bench {table,layers,models,vs-reference}``: the benchmarks.

``kanconvs bench table`` (also plain ``kanconvs bench``): the seed documents' comparison table for your data and
families.

Trains every (family, depth, norm) cell of ``simple_<family>_<depth>`` networks with the seed's recipe, the
shipped config ``bench-seed`` (AdamW lr 1e-4, weight decay 1e-5, ExponentialLR 0.975 per epoch, batch 128, 150
epochs, the dataset's seed augmentations; bf16 on a GPU) or the config ``--recipe`` names, then writes
``table.md``, ``table.csv``, plots and ``report.md`` into ``--output``. Re-running the same command skips the cells
already done (an interrupted bench resumes); a cell done there with other settings (dataset, recipe, overrides) is
refused: give another ``--output``. Extra ``key=value`` arguments override the training config of every
cell (e.g. ``data.num_workers=8``).

``--int8``: after training, quantise each new cell to static int8 (``kanconvs.quant.quantize_int8``, calibrated on 4
training batches) and add its validation accuracy and CPU eval time, next to the fp32 model's CPU eval time, to the
table (cells done earlier show "—").

``--quick``: the demo recipe (the shipped config ``bench-quick``), one for every family — on the embedded MNIST
digits all 8,000 training images and the 2,000 held-out ones (other datasets: the first 8,000 / 2,000), narrow
networks (widths 8/16/32/64, groups 1, BatchNorm, no dropout) for 6 epochs of batch 64 at lr 1e-2 with a cosine
decay and no augmentation. About five minutes for the seven default families on a 2-core CPU, with final-epoch
accuracies of 95–98 %. ``make demo`` runs it with ``--int8``.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import torch

__all__ = ["KINDS", "add_parser", "default_kind", "run", "run_timing"]

_TIMING_HELP = {
    "layers": "train-step time and memory of each family's conv layer vs plain convs",
    "models": "train/inference throughput and memory of models vs their plain-conv baselines",
    "vs-reference": "each family's layer and the seed networks timed beside torch-conv-kan (--reference-dir)",
}
#: ``kanconvs bench <kind>``; a command line without one means ``table``.
KINDS = ("table", *_TIMING_HELP)
#: Spellings kept for a release: ``kanconvs bench-layers`` is ``kanconvs bench layers``.
ALIASES = {"bench-layers": "layers", "bench-models": "models"}

QUICK_FAMILIES = "conv,kan,fastkan,kaln,kacn,kagn,wavkan"


def _timing_module(kind: str) -> ModuleType:
    from kanconvs.bench import layers, models, vs_reference

    return {"layers": layers, "models": models, "vs-reference": vs_reference}[kind]


def default_kind(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``table`` inserted after a ``bench`` that names no benchmark (``kanconvs bench --quick``)."""
    argv = list(argv)
    if argv[:1] == ["bench"] and (len(argv) == 1 or argv[1] not in (*KINDS, "-h", "--help")):
        argv.insert(1, "table")
    return argv


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``bench`` with its benchmarks, and the old ``bench-layers``/``bench-models`` spellings."""
    parser = subparsers.add_parser(
        "bench", help="benchmarks: the accuracy table (default), layer and model timings, vs the reference",
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    kinds = parser.add_subparsers(title="benchmarks", dest="bench_kind", metavar="<benchmark>", required=True)
    _add_table(kinds)
    for kind, help_text in _TIMING_HELP.items():
        _add_timing(kinds, kind, kind, help_text)
    for alias, kind in ALIASES.items():
        _add_timing(subparsers, alias, kind, f"the same as `kanconvs bench {kind}` (old spelling)")
    return parser


def _add_timing(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, kind: str, help_text: str
) -> None:
    module = _timing_module(kind)
    parser = subparsers.add_parser(
        name, help=help_text, description=module.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    module.add_arguments(parser)
    parser.add_argument("--command-line", default=None, help=argparse.SUPPRESS)  # set by benchmarks/*.py
    parser.set_defaults(func=functools.partial(run_timing, kind))


def run_timing(kind: str, args: argparse.Namespace) -> int:
    """Run a timing benchmark (``layers``, ``models``, ``vs-reference``): print its table, write the Markdown
    (and CSV) reports asked for. Exit code 1 if one of our cells failed, 2 for a bad option."""
    from kanconvs._io import atomic_write_text
    from kanconvs.bench._common import command_line, log
    from kanconvs.cli import fail
    from kanconvs.cli._output import output_file

    module = _timing_module(kind)
    try:
        config = module.resolve_config(args)
        # the report paths are checked before the benchmark runs, not found unwritable after it
        markdown = None if args.markdown is None else output_file(args.markdown, "--markdown")
        csv = None if getattr(args, "csv", None) is None else output_file(args.csv, "--csv")  # vs-reference
    except ValueError as err:
        return fail(f"bench {kind}", err)
    results = module.run_benchmark(config, log)  # logs the machine line first
    print(module.format_table(results, config))
    command = args.command_line or command_line()
    reports = []
    if markdown is not None:
        reports.append((markdown, module.format_markdown(results, config, command)))
    if csv is not None:
        reports.append((csv, module.format_csv(results, config)))
    for path, text in reports:
        try:
            atomic_write_text(path, text)
        except OSError as err:
            return fail(f"bench {kind}", f"cannot write {path}: {err}")
        print(f"wrote {path}")
    return 1 if module.failed(results) else 0


def script_main(kind: str, script: str, argv: Sequence[str] | None = None) -> int:
    """Entry point of ``benchmarks/<kind>.py``: ``kanconvs bench <kind>`` with the script's name in the reports."""
    from kanconvs.cli import main

    args = list(sys.argv[1:] if argv is None else argv)
    return main(["bench", kind, "--command-line", " ".join([f"python {script}", *map(shlex.quote, args)]), *args])


def _add_table(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``bench table``."""
    from kanconvs.bench._common import positive_int

    parser = subparsers.add_parser(
        "table", help="train and tabulate family × depth × norm cells (the default)", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="training config overrides")
    parser.add_argument("--dataset", default=None, help="registered dataset (default mnist-10k)")
    parser.add_argument("--models", default=None, help=f"families, comma-separated, or all (default {QUICK_FAMILIES})")
    parser.add_argument("--depth", default="4", help="4, 8 or 4,8")
    parser.add_argument(
        "--norms",
        default=None,
        help="instance, instance-affine, batch, batch-l1 (commas; default: each model's own, instance but batch for "
        "KACN; --quick: batch)",
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="epochs per cell (default: the recipe's, 150; --quick: 6)"
    )
    parser.add_argument("--output", default="runs/bench", help="run directory (default runs/bench)")
    parser.add_argument("--quick", action="store_true", help="small, fast settings (see above)")
    parser.add_argument(
        "--recipe", default=None, metavar="CONFIG",
        help="training config (YAML file or shipped name) every cell starts from (default bench-seed; --quick: "
        "bench-quick)",
    )  # fmt: skip
    parser.add_argument(
        "--int8", action="store_true", help="also evaluate each trained cell quantised to static int8 on CPU"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from kanconvs.bench.table import plan_cells, run_bench
    from kanconvs.cli import fail
    from kanconvs.models import list_models
    from kanconvs.train import ConfigError

    recipe = args.recipe or ("bench-quick" if args.quick else "bench-seed")
    overrides = [f"mixed_precision={'bf16' if torch.cuda.is_available() else 'no'}"]
    overrides += [f"epochs={args.epochs}"] if args.epochs is not None else []
    overrides += [f"data.name={args.dataset}"] if args.dataset else []
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        return fail("bench", f"--output {args.output!r} is a file: expected a directory (new or from an earlier bench)")
    try:
        depths = [int(d) for d in args.depth.split(",")]
        norms = args.norms.split(",") if args.norms else (["batch"] if args.quick else None)
        families = (args.models or QUICK_FAMILIES).split(",")
        if families == ["all"]:
            families = sorted({name.split("_")[1] for name in list_models("simple_*")})
        cells = plan_cells(families, depths, norms)
        rows = run_bench(cells, output, [*overrides, *args.overrides], int8=args.int8, recipe=recipe)
    except (ValueError, ConfigError, FileNotFoundError) as err:
        return fail("bench", err)
    print((output / "table.md").read_text(encoding="utf-8"))
    flagged = [r["model"] + " " + r["setting"] for r in rows if r["diverged"]]
    if flagged:
        print("diverged: " + ", ".join(flagged))
    print(f"report: {output / 'report.md'}")
    return 0
