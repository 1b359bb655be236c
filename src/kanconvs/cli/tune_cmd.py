"""``kanconvs tune CONFIG --space SPACE.yaml [--trials N] [key=value ...]``: Optuna search over config fields.

Example space (``space.yaml``)::

    optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}
    model.kwargs.degree: {type: categorical, choices: [3, 5, 7]}

Each trial is a training run in ``<output_dir>/trial-<n>``; the study's trials go to ``<output_dir>/trials.csv``.
"""

from __future__ import annotations

import argparse

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
    parser.add_argument("--metric", default="top1", help="validation metric (default top1 → val_top1)")
    parser.add_argument("--direction", choices=["maximize", "minimize"], default="maximize")
    parser.add_argument("--pruner", choices=["median", "none"], default="median")
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from kanconvs.cli import fail
    from kanconvs.train import ConfigError
    from kanconvs.train.tune import tune

    try:
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
