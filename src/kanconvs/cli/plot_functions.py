"""``kanconvs plot-functions CHECKPOINT --layer L``: plot the learned univariate functions φ(x) of a KA layer.

One subplot per (input → output) channel pair: φ_{o,i}(x) = Σ_f w[o, i, f] · feature_f(x), summed over the kernel
taps by default (the layer's response to a constant patch, before its bias, norm and activation).

CHECKPOINT is a run directory of ``kanconvs train`` (``--weights best|final|PATH``), a ``save_pretrained``
directory, or a weights file with ``--model NAME`` (its ``key=value`` arguments right after CHECKPOINT).
``--layer`` is an index into the model's KA layers (``--list-layers`` lists them) or a module name such as
``features.0``.

Examples::

    kanconvs plot-functions runs/smoke --list-layers
    kanconvs plot-functions runs/smoke --layer 0 --pairs 0:0,0:1 --output phi.png
    kanconvs plot-functions model.safetensors "widths=(4,8,8,8)" --model simple_kagn_4 --layer features.1 --taps all
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

__all__ = ["add_parser", "parse_pairs", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``plot-functions`` subcommand."""
    parser = subparsers.add_parser(
        "plot-functions", help="plot the learned univariate functions of a KA layer", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_checkpoint_arguments(parser)
    parser.add_argument("--layer", default="0", help="KA layer index (default 0) or module name")
    parser.add_argument("--list-layers", action="store_true", help="list the model's KA layers and exit")
    parser.add_argument("--pairs", help="input:output channel pairs, e.g. 0:0,1:3 (default: first 4 × 4)")
    parser.add_argument("--taps", choices=("sum", "center", "all"), default="sum", help="kernel taps (default sum)")
    parser.add_argument("--x-range", nargs=2, type=float, metavar=("LOW", "HIGH"), help="x range (default: the basis')")
    parser.add_argument("--num-points", type=int, default=201, help="points per curve (default 201)")
    parser.add_argument(
        "--output", "-o", default="phi.png", help="PNG to write (default phi.png; .png added to a name without suffix)"
    )
    parser.add_argument("--dpi", type=int, default=120)
    parser.set_defaults(func=run)
    return parser


def add_checkpoint_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that say which model to load (shared with ``kanconvs gradcam``)."""
    parser.add_argument("checkpoint", help="run directory, save_pretrained directory, or weights file (with --model)")
    parser.add_argument(
        "model_kwargs", nargs="*", metavar="key=value", help="model keyword arguments (right after CHECKPOINT)"
    )
    parser.add_argument("--weights", default="best", help="for a run directory: best (default), final, or a path")
    parser.add_argument("--model", help="registered model name, when CHECKPOINT is a weights file")


def parse_pairs(text: str) -> list[tuple[int, int]]:
    """``"0:0,1:3"`` → ``[(0, 0), (1, 3)]`` (input:output).

    Examples:
        >>> parse_pairs("0:0, 1:3")
        [(0, 0), (1, 3)]
    """
    pairs = []
    for item in text.split(","):
        left, sep, right = item.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            pairs.append((int(left), int(right)))
        except ValueError:
            raise ValueError(f"--pairs must look like 0:0,1:3 (input:output), got {item.strip()!r}") from None
    return pairs


def run(args: argparse.Namespace) -> int:
    from kanconvs._io import atomic_savefig
    from kanconvs.cli._output import output_file
    from kanconvs.cli.info import parse_overrides
    from kanconvs.interpret import find_layer, plot_functions
    from kanconvs.interpret._checkpoint import load_model

    try:
        output = output_file(args.output, "--output", suffix=".png")  # before the work; .png as matplotlib would add
        loaded = load_model(args.checkpoint, args.weights, args.model, parse_overrides(args.model_kwargs))
        model = loaded.model
        if args.list_layers:
            print(format_layers(model))
            return 0
        name, layer = find_layer(model, args.layer)
        pairs = parse_pairs(args.pairs) if args.pairs else None
        x_range = tuple(args.x_range) if args.x_range else None
        title = f"{name or type(model).__name__} ({type(layer).__name__}): learned φ"
        fig = plot_functions(layer, pairs, x=x_range, taps=args.taps, num_points=args.num_points, title=title)
        atomic_savefig(fig, output, args.dpi)
    except (ImportError, ValueError, TypeError, RuntimeError, OSError) as err:
        from kanconvs.cli import fail

        return fail("plot-functions", err)
    print(f"{name}: {type(layer).__name__}, weights {loaded.weights} → {output}")
    return 0


def format_layers(model: nn.Module) -> str:
    """One line per KA layer: index, name, type, channels, kernel and groups."""
    from kanconvs.interpret import ka_layers

    rows = []
    for k, (name, layer) in enumerate(ka_layers(model)):
        if hasattr(layer, "in_channels"):
            shape = f"{layer.in_channels} → {layer.out_channels}, kernel {layer.kernel_size}"
            shape += f", groups {layer.groups}" if layer.groups != 1 else ""
        else:
            shape = f"{layer.in_features} → {layer.out_features}"
        rows.append((str(k), name or "(model)", type(layer).__name__, shape))
    if not rows:
        return f"{type(model).__name__} has no KA layers"
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    return "\n".join(f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}" for r in rows)
