"""``kanconvs bench-layers``: time and memory of every family's conv layer beside plain-conv baselines."""

from __future__ import annotations

import argparse

from kanconvs.bench import layers

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``bench-layers`` subcommand; its options are those of :mod:`kanconvs.bench.layers`."""
    parser = subparsers.add_parser(
        "bench-layers",
        help="train-step time and memory of each family's conv layer vs plain convs",
        description=layers.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    layers.add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the layer benchmark with the parsed options."""
    return layers.run_from_args(args)
