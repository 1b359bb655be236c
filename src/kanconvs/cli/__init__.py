"""The ``kanconvs`` command line.

One module per subcommand, each exposing ``add_parser(subparsers)`` (which registers the subcommand and sets
``func``) and ``run(args) -> int``. Commands are plain functions, so tests can call them directly.

Examples:
    >>> from kanconvs.cli import main
    >>> main(["list"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from kanconvs.cli import (
    bench_cmd,
    eval_cmd,
    gradcam_cmd,
    info,
    list_cmd,
    plot_functions,
    train_cmd,
    tune_cmd,
)

__all__ = ["build_parser", "configure_logging", "fail", "main"]

_COMMANDS = (
    list_cmd,
    info,
    train_cmd,
    eval_cmd,
    tune_cmd,
    bench_cmd,
    plot_functions,
    gradcam_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="kanconvs", description="Kolmogorov-Arnold convolutions for PyTorch.")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="<command>", required=True)
    for command in _COMMANDS:
        command.add_parser(subparsers)
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted (pytest and notebooks replace it)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:  # StreamHandler.__init__ assigns it
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """Show the library's log records (``kanconvs.*`` loggers: progress, resumes, summaries) as plain lines on
    stderr. The library itself only logs; the command line calls this. Idempotent."""
    logger = logging.getLogger("kanconvs")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the chosen subcommand and return its exit code."""
    configure_logging()
    parser = build_parser()
    args, extra = parser.parse_known_args(bench_cmd.default_kind(sys.argv[1:] if argv is None else argv))
    # argparse stops filling a positional list at the first option: ``key=value`` overrides placed after options
    # (``tune CONFIG --trials 2 epochs=1``, the order --help shows) arrive here and join the others.
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    if isinstance(getattr(args, "overrides", None), list):
        args.overrides.extend(overrides)
        extra = [a for a in extra if a not in overrides]
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    code: int = args.func(args)
    return code


def fail(command: str, err: BaseException | str) -> int:
    """Report a user error as one line on stderr (no traceback); the exit code for it is 2."""
    print(f"kanconvs {command}: error: {err}", file=sys.stderr)
    return 2
