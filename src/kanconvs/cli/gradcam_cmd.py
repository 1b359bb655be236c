"""``kanconvs gradcam CHECKPOINT (--image PATH | --index N)``: Grad-CAM heatmap of a classifier's decision.

CHECKPOINT is loaded as by ``kanconvs plot-functions`` (run directory, ``save_pretrained`` directory, or weights
file with ``--model NAME``). The image is a file (preprocessed with the run's dataset transforms, or ``--dataset``'s;
else resized to ``--image-size`` and normalised with ``--mean``/``--std``) or sample ``--index`` of the dataset's
whole ``--split`` (not the run's ``val_limit`` subset). The class explained is ``--target`` or the predicted one.
The default layer is the output of ``forward_features`` (the last block before the pooling head) or the last 2-D
convolution; ``--layer`` names another.

Examples::

    kanconvs gradcam runs/smoke --index 0 --output cam.png
    kanconvs gradcam my_model/ --image cat.jpg --dataset cifar10 --target 3
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from kanconvs.cli.plot_functions import add_checkpoint_arguments

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register the ``gradcam`` subcommand."""
    parser = subparsers.add_parser(
        "gradcam", help="Grad-CAM heatmap of a classifier on one image", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_checkpoint_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="an image file")
    source.add_argument("--index", type=int, help="a sample of the dataset (the run's, or --dataset)")
    parser.add_argument("--split", default="val", help="dataset split for --index (default val)")
    parser.add_argument("--target", type=int, help="class to explain (default: the predicted one)")
    parser.add_argument("--layer", help="module name of the layer to explain (default: see above)")
    parser.add_argument("--dataset", help="registered dataset whose transforms preprocess the image")
    parser.add_argument("--image-size", type=int, help="resize the image to this size")
    parser.add_argument("--mean", type=float, nargs="+", help="normalisation mean (default: the dataset's, or 0.5)")
    parser.add_argument("--std", type=float, nargs="+", help="normalisation std (default: the dataset's, or 0.5)")
    parser.add_argument("--alpha", type=float, default=0.5, help="heatmap opacity in the overlay (default 0.5)")
    parser.add_argument(
        "--output", "-o", default="gradcam.png",
        help="PNG to write (default gradcam.png; .png is added to a name without suffix)",
    )  # fmt: skip
    parser.add_argument("--dpi", type=int, default=120)
    parser.set_defaults(func=run)
    return parser


def _in_channels(model: nn.Module) -> int:
    """Input channels of the first module that declares them (the stem); 3 if none does."""
    for module in model.modules():
        channels = getattr(module, "in_channels", None)
        if isinstance(channels, int) and not isinstance(channels, bool):
            return channels
    return 3


def _per_channel(values: Sequence[float] | None, default: Sequence[float], channels: int) -> Tensor:
    import torch

    chosen = list(values) if values else list(default)
    if len(chosen) not in (1, channels):
        raise ValueError(f"--mean/--std need 1 or {channels} values, got {len(chosen)}")
    return torch.tensor(chosen * (channels if len(chosen) == 1 else 1)).view(channels, 1, 1)


def _load_input(args: argparse.Namespace, model: nn.Module, cfg: Any) -> tuple[Tensor, Tensor, Tensor, Any]:
    """The preprocessed image ``(C, H, W)``, the normalisation mean and std ``(C, 1, 1)``, and the label (or None)."""
    from PIL import Image
    from torchvision.transforms.v2.functional import pil_to_tensor

    dataset = args.dataset or (cfg.data.name if cfg is not None else None)
    size = args.image_size or (cfg.data.image_size if cfg is not None else None)
    if dataset is None:
        if args.index is not None:
            raise ValueError("--index needs a dataset: give a run directory or --dataset NAME")
        channels = _in_channels(model)
        image = Image.open(args.image).convert("L" if channels == 1 else "RGB")
        if size:
            image = image.resize((size, size), Image.Resampling.BILINEAR)
        x = pil_to_tensor(image).float() / 255
        mean, std = _per_channel(args.mean, [0.5], channels), _per_channel(args.std, [0.5], channels)
        return (x - mean) / std, mean, std, None
    from kanconvs.data import build_transforms, create_dataset, dataset_info

    info = dataset_info(dataset)
    transform = build_transforms(info, train=False, image_size=size, mean=args.mean, std=args.std)
    mean = _per_channel(args.mean, info.mean, info.in_channels)
    std = _per_channel(args.std, info.std, info.in_channels)
    if args.index is not None:
        options: dict[str, Any] = {}
        if cfg is not None and cfg.data.name == dataset:
            options = {"data_dir": cfg.data.data_dir, "seed": cfg.seed, **cfg.data.kwargs}
        data = create_dataset(dataset, args.split, transform=transform, **options)
        if not 0 <= args.index < len(data):  # type: ignore[arg-type]
            raise ValueError(f"--index {args.index} is out of range: the {args.split} split has {len(data)} samples")  # type: ignore[arg-type]
        image, label = data[args.index]
        return image, mean, std, label
    pil = Image.open(args.image).convert("L" if info.in_channels == 1 else "RGB")
    if info.augment != "imagenet":  # ImageNet-style evaluation transforms resize and crop themselves
        side = size or info.image_size
        pil = pil.resize((side, side), Image.Resampling.BILINEAR)
    return transform(pil_to_tensor(pil)), mean, std, None


def run(args: argparse.Namespace) -> int:
    import torch

    from kanconvs._io import atomic_savefig
    from kanconvs.cli._output import output_file
    from kanconvs.cli.info import parse_overrides
    from kanconvs.interpret import grad_cam, plot_gradcam
    from kanconvs.interpret._checkpoint import load_model

    try:
        out = output_file(args.output, "--output", suffix=".png")  # before the work; .png as matplotlib would add
        loaded = load_model(args.checkpoint, args.weights, args.model, parse_overrides(args.model_kwargs))
        model = loaded.model.eval()
        image, mean, std, label = _load_input(args, model, loaded.run_config)
        x = image.unsqueeze(0).float()
        with torch.no_grad():
            output = model(x)
        logits = output[0] if isinstance(output, (tuple, list)) else output
        if logits.dim() != 2:
            raise ValueError(f"the model must return class logits (1, classes), got shape {tuple(logits.shape)}")
        probs = logits.softmax(dim=1)[0]
        predicted = int(probs.argmax())
        target = predicted if args.target is None else args.target
        if not 0 <= target < probs.numel():
            raise ValueError(f"--target {target} is out of range: the model has {probs.numel()} classes")
        cam = grad_cam(model, x, target, layer=args.layer)[0]
        shown = (image * std + mean).clamp(0, 1)
        title = f"class {target} (p = {float(probs[target]):.2f}); predicted {predicted}"
        title += f"; label {int(label)}" if label is not None else ""
        fig = plot_gradcam(shown, cam, title=title, alpha=args.alpha)
        atomic_savefig(fig, out, args.dpi)
    except (FileNotFoundError, ImportError, ValueError, TypeError, RuntimeError, OSError) as err:
        from kanconvs.cli import fail

        return fail("gradcam", err)
    print(f"Grad-CAM of class {target} (predicted {predicted}, p = {float(probs[predicted]):.2f}) → {out}")
    return 0
