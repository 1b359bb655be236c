"""``kanconvs bench-models``: training and inference throughput and memory of models beside their plain-conv
baselines."""

from __future__ import annotations

import argparse

from kanconvs.bench import models

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``bench-models`` subcommand; its options are those of :mod:`kanconvs.bench.models`."""
    parser = subparsers.add_parser(
        "bench-models",
        help="train/inference throughput and memory of models vs their plain-conv baselines",
        description=models.DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    models.add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the model benchmark with the parsed options."""
    return models.run_from_args(args)
