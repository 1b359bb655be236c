"""``kanconvs train CONFIG [key=value ...]``: train with a YAML config (a file or a shipped name) and overrides.

Examples::

    kanconvs train mnist-kagn-quick
    kanconvs train my.yaml epochs=10 optim.lr=3e-4 model.kwargs.degree=5 output_dir=runs/d5
    kanconvs train my.yaml output_dir=runs/d5 resume=true          # continue a killed run
    accelerate launch --multi_gpu -m kanconvs train my.yaml         # the same run on every GPU
    torchrun --nproc_per_node 2 -m kanconvs train my.yaml cpu=true  # two CPU processes (gloo)

Shipped configs: ``kanconvs train --list``.
"""

from __future__ import annotations

import argparse
import os

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train", help="train a model from a YAML config", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("config", nargs="?", help="YAML file or shipped config name")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (dotted keys)")
    parser.add_argument("--list", action="store_true", help="list the shipped configs and exit")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    from kanconvs.cli import fail
    from kanconvs.train import ConfigError, list_configs, load_config, train
    from kanconvs.train.checkpoint import CheckpointError

    if args.list:
        print("\n".join(list_configs()))
        return 0
    if args.config is None:
        return fail("train", "give a config file or name (kanconvs train --list shows the shipped ones)")
    try:
        cfg = load_config(args.config, args.overrides)
        summary = train(cfg)
    except (ConfigError, CheckpointError, FileNotFoundError, ValueError) as err:
        return fail("train", err)
    if os.environ.get("RANK", "0") != "0":  # one summary line, from the main process of a distributed run
        return 0
    final = summary["final"]
    shown = {k: v for k, v in final.items() if k.startswith("val_") and isinstance(v, float)}
    print("final: " + ", ".join(f"{k}={v:.4f}" for k, v in shown.items()) + f"  (run directory: {cfg.output_dir})")
    return 0
