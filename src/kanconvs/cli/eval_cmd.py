"""``kanconvs eval RUN [key=value ...]``: evaluate a run's best (or final) weights on its validation split.

``RUN`` is a run directory written by ``kanconvs train`` (its ``config.yaml`` says how to rebuild the model and
data); ``--weights`` picks ``best`` (default; ``final`` for runs without best weights), ``final``, or a path to a
weights file or checkpoint directory.
Overrides change the evaluation set-up (e.g. ``data.val_limit=1000``).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

__all__ = ["add_parser", "evaluate_run", "run"]

_LOGGER = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``eval`` subcommand."""
    parser = subparsers.add_parser(
        "eval", help="evaluate a trained run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("run_dir", help="run directory (holds config.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key=value")
    parser.add_argument("--weights", default="best", help="best, final, or a weights file / directory")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(func=run)
    return parser


def evaluate_run(run_dir: str | Path, weights: str = "best", overrides: list[str] | None = None) -> dict[str, float]:
    """Rebuild a run's model and validation data from its ``config.yaml``, load ``weights`` and evaluate."""
    from kanconvs.models import load_weights
    from kanconvs.train import Trainer, load_config

    run_dir = Path(run_dir)
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run directory (no config.yaml)")
    cfg = load_config(config, [*(overrides or []), "resume=false", "trackers=[]", "progress=false"])
    source = run_dir / weights if weights in ("best", "final") else Path(weights)
    if weights == "best" and not source.exists() and (run_dir / "final").exists():
        source = run_dir / "final"  # runs without a best metric keep only their final weights
        _LOGGER.info(f"{run_dir} has no best/ weights: evaluating final/")
    trainer = Trainer(cfg)
    load_weights(trainer.unwrapped, source)  # a directory with model.safetensors (exports, checkpoints) or a file
    return trainer.evaluate()


def run(args: argparse.Namespace) -> int:
    from kanconvs.cli import fail
    from kanconvs.train import ConfigError

    try:
        metrics = evaluate_run(args.run_dir, args.weights, args.overrides)
    except (ConfigError, FileNotFoundError, ValueError, RuntimeError) as err:
        return fail("eval", err)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        for key, value in metrics.items():
            print(f"{key}: {value:.4f}" if isinstance(value, float) else f"{key}: {value}")
    return 0
