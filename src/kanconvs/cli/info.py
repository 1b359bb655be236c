"""``kanconvs info MODEL``: parameters, multiply-accumulates per sample and output shapes of a registered model.

``key=value`` arguments override the model's configuration (values are Python literals where they parse as one,
else strings): ``kanconvs info simple_kagn_4 --input-size 1 28 28 family=kaln widths='(8, 16, 32, 64)'``.

MACs are FLOPs / 2 as counted by ``torch.utils.flop_counter.FlopCounterMode`` on a real eval-mode forward pass:
convolutions and matrix products only. Element-wise work (the KA basis evaluation, activations, norms) is not
counted, so for KA models the figure is a lower bound of the arithmetic.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

import kanconvs

__all__ = ["add_parser", "model_info", "parse_overrides", "run"]

DEFAULT_SIZE = 224  # input height and width when --input-size is not given
MACS_NOTE = (
    "MACs = FLOPs / 2 of convolutions and matrix products (torch.utils.flop_counter.FlopCounterMode); element-wise "
    "work such as the KA basis evaluation, activations and norms is not counted"
)


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """``["degree=5", "family=kaln"]`` → ``{"degree": 5, "family": "kaln"}``: Python literals, else strings.

    Examples:
        >>> parse_overrides(["degree=5", "family=kaln", "widths=(8, 16)"])
        {'degree': 5, 'family': 'kaln', 'widths': (8, 16)}
    """
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"configuration overrides must be key=value with a Python name as key, got {item!r}")
        try:
            overrides[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[key] = text
    return overrides


def _first_in_channels(model: nn.Module) -> int | None:
    """Input channels of the first module (in registration order) that declares them: the stem."""
    for module in model.modules():
        channels = getattr(module, "in_channels", None)
        if isinstance(channels, int) and not isinstance(channels, bool):
            return channels
    return None


def _shapes(output: Any) -> list[list[int]]:
    """Shapes of every tensor in a (possibly nested) output: a tensor, tuple/list or mapping of them."""
    if isinstance(output, Tensor):
        return [list(output.shape)]
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        return [shape for item in output for shape in _shapes(item)]
    return []


def model_info(
    name: str,
    input_size: Sequence[int] | None = None,
    num_classes: int | None = None,
    batch_size: int = 1,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build ``name`` and describe it: parameters, MACs per sample and output shapes (a JSON-able dict).

    ``input_size`` is ``(C, H, W)`` (``C`` is passed as ``in_channels``); without it ``C`` is the stem's input
    channels and ``H = W = 224``.

    Examples:
        >>> info = model_info("simple_conv_4", (1, 28, 28), num_classes=10, overrides={"widths": (4, 4, 8, 8)})
        >>> info["params"], info["output_shapes"]
        (450, [[1, 10]])
    """
    kwargs = dict(overrides or {})
    if input_size is not None:
        kwargs.setdefault("in_channels", int(input_size[0]))
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = kanconvs.create_model(name, **kwargs).eval()
    if input_size is None:
        channels = _first_in_channels(model)
        if channels is None:
            raise ValueError(f"cannot tell the input channels of {name!r}; give --input-size C H W")
        input_size = (channels, DEFAULT_SIZE, DEFAULT_SIZE)
    shape = (batch_size, *(int(s) for s in input_size))
    x = torch.randn(shape)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        output = model(x)
    return {
        "model": name,
        "kwargs": {k: v if isinstance(v, (bool, int, float, str)) or v is None else repr(v) for k, v in kwargs.items()},
        "input_shape": list(shape),
        "params": sum(p.numel() for p in model.parameters()),
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "macs_per_sample": counter.get_total_flops() // 2 // batch_size,
        "output_shapes": _shapes(output),
        "macs_note": MACS_NOTE,
    }


def _format(info: Mapping[str, Any]) -> str:
    options = ", ".join(f"{k}={v}" for k, v in info["kwargs"].items())
    lines = [
        f"model:            {info['model']}" + (f" ({options})" if options else ""),
        f"input:            {' × '.join(map(str, info['input_shape']))}",
        f"parameters:       {info['params']:,} ({info['trainable_params']:,} trainable)",
        f"MACs per sample:  {info['macs_per_sample']:,} ({info['macs_per_sample'] / 1e9:.3f} G)",
    ]
    for i, shape in enumerate(info["output_shapes"]):
        label = "output:" if len(info["output_shapes"]) == 1 else f"output {i}:"
        lines.append(f"{label:<18}{' × '.join(map(str, shape))}")
    lines.append(f"note: {info['macs_note']}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- arguments
# The options are accepted before MODEL (by the subcommand's parser) and after it or among the key=value overrides
# (the remainder is parsed again, intermixed), so every order of the documented command line works.


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input-size", type=_positive_int, nargs=3, metavar=("C", "H", "W"),
        help=f"input channels, height and width (default: the stem's channels, {DEFAULT_SIZE}×{DEFAULT_SIZE})",
    )  # fmt: skip
    parser.add_argument("--num-classes", type=int, metavar="N", help="number of classes (default: the model's)")
    parser.add_argument("--batch-size", type=_positive_int, metavar="B", help="batch of the forward pass (default 1)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``info`` subcommand."""
    parser = subparsers.add_parser(
        "info", help="parameters, MACs and output shapes of a registered model", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    _add_options(parser)
    parser.add_argument("model", metavar="MODEL", help="a registered model name (see `kanconvs list --models`)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, metavar="key=value", help="configuration overrides")
    # options after MODEL land in ``rest`` (parsed by _parse_rest): ``kanconvs info MODEL --help`` needs this help
    parser.set_defaults(func=run, format_help=parser.format_help)
    return parser


def _parse_rest(args: argparse.Namespace) -> argparse.Namespace:
    inner = argparse.ArgumentParser(prog="kanconvs info", add_help=False, argument_default=argparse.SUPPRESS)
    _add_options(inner)
    inner.add_argument("overrides", nargs="*", default=[])
    return inner.parse_intermixed_args(args.rest, namespace=args)


def run(args: argparse.Namespace) -> int:
    """Print the model's description; exit 2 on a bad model name or configuration, 1 if the forward pass fails."""
    if "-h" in args.rest or "--help" in args.rest:
        print(args.format_help(), end="")
        return 0
    args = _parse_rest(args)
    try:
        overrides = parse_overrides(args.overrides)
        info = model_info(args.model, args.input_size, args.num_classes, args.batch_size or 1, overrides)
    except (ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:
        print(f"error: the forward pass of {args.model!r} failed: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(info, indent=2) if args.json else _format(info))
    return 0
