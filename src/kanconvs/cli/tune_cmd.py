"""``kanconvs tune CONFIG --space SPACE.yaml [--trials N] [key=value ...]``: Optuna search over config fields.

Example space (``space.yaml``)::

    optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
    model.kwargs.degree: {type: categorical, choices: [3, 5, 7]}

Each trial is a training run in ``<output_dir>/trial-<n>``; the study's trials go to ``<output_dir>/trials.csv``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``tune`` subcommand."""
    parser = subparsers.add_parser(
        "tune", help="hyperparameter search with Optuna", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("config", help="YAML file or shipped config name")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    parser.add_argument("--space", required=True, help="YAML search space")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument(
        "--metric", default="top1", help="validation metric: top1 (default, → val_top1), top5, loss, f1_macro, …"
    )
    parser.add_argument("--direction", choices=["maximize", "minimize"], default="maximize")
    parser.add_argument("--pruner", choices=["median", "none"], default="median")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)
    return parser


def _check(args: argparse.Namespace) -> None:
    """Refuse a bad ``--space`` or ``--metric`` before the study starts (not inside its first trial)."""
    import yaml

    from kanconvs.train import ConfigError, load_config
    from kanconvs.train.config import BEST_METRICS
    from kanconvs.train.tune import load_space

    if args.metric not in BEST_METRICS:
        raise ValueError(f"--metric: expected one of {', '.join(sorted(BEST_METRICS))}, got {args.metric!r}")
    cfg = load_config(args.config, [*args.overrides, f"checkpoint.best_metric={args.metric}"])
    if args.metric in ("f1_macro", "recall_macro", "auroc") and cfg.metrics != "full":
        raise ValueError(f"--metric {args.metric} is reported with metrics=full only (add the override metrics=full)")
    if not Path(args.space).is_file():
        raise FileNotFoundError(f"--space {args.space}: no such file (expected a YAML search space)")
    try:
        load_space(args.space)
    except yaml.YAMLError as err:
        first = " ".join(str(err).split())  # the parser's message spans several lines
        raise ConfigError(f"--space {args.space}: not valid YAML: {first}") from None


def run(args: argparse.Namespace) -> int:
    from kanconvs.cli import fail
    from kanconvs.train import ConfigError
    from kanconvs.train.tune import tune

    try:
        _check(args)
        study = tune(
            args.config, args.space, overrides=args.overrides, trials=args.trials, metric=args.metric,
            direction=args.direction, seed=args.seed, pruner=args.pruner,
        )  # fmt: skip
    except (ConfigError, FileNotFoundError, ValueError, ImportError) as err:
        return fail("tune", err)
    print(
        f"best val_{args.metric}: {study.best_value:.4f} with "
        + ", ".join(f"{k}={v}" for k, v in study.best_params.items())
    )
    return 0
