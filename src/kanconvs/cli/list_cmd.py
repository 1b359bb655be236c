"""``kanconvs list``: print the registered convolution families and basis functions."""

from __future__ import annotations

import argparse

import kanconvs

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``list`` subcommand."""
    parser = subparsers.add_parser("list", help="list registered families and bases", description=__doc__)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print one section per registry, one name per line."""
    for title, names in (("families", kanconvs.list_families()), ("bases", kanconvs.list_bases())):
        print(f"{title} ({len(names)}):")
        for name in names:
            print(f"  {name}")
    return 0
