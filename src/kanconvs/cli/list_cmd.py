"""``kanconvs list``: print the registered convolution families, basis functions and models.

``kanconvs list --models 'simple_*'`` prints only the models whose names match a shell-style pattern.
"""

from __future__ import annotations

import argparse

import kanconvs

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``list`` subcommand."""
    parser = subparsers.add_parser(
        "list", help="list registered families, bases and models", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument(
        "--models", metavar="PATTERN", nargs="?", const="*", default=None,
        help="list only the models matching PATTERN (shell-style, default '*')",
    )  # fmt: skip
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print one section per registry, one name per line."""
    models = ("models", kanconvs.list_models(args.models or "*"))
    if args.models is not None:
        sections = [models]
    else:
        sections = [("families", kanconvs.list_families()), ("bases", kanconvs.list_bases()), models]
    for title, names in sections:
        print(f"{title} ({len(names)}):")
        for name in names:
            print(f"  {name}")
    return 0
