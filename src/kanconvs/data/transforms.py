"""The seed experiments' augmentations, in torchvision ``transforms.v2`` (uint8 tensors in, normalised floats out).

=============  =============================================================================================
``mnist``      RandomAffine(20°, translate 0.1, scale 0.9–1.1) + ColorJitter(0.2, 0.2)
``cifar``      horizontal flip + one of AutoAugment(CIFAR10 | ImageNet | SVHN) or TrivialAugmentWide
``imagenet``   RandomResizedCrop + flip + one of AutoAugment(CIFAR10 | ImageNet); eval: resize + centre crop
``segmentation`` flips, 90° rotations and transposition, resize — applied to image and mask together
=============  =============================================================================================

``augment="none"`` keeps only the conversion (and, for ImageNet-style data, the evaluation resize and crop).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .datasets import DatasetInfo, dataset_info

__all__ = ["AUGMENTATIONS", "build_transforms"]

AUGMENTATIONS = ("mnist", "cifar", "imagenet", "segmentation", "none")


class RandomRot90:
    """Rotate image and mask together by a random multiple of 90° (``k ∈ {0, 1, 2, 3}``); square inputs keep their
    size, others swap height and width for odd ``k``."""

    def __call__(self, *inputs: Any) -> Any:
        k = int(torch.randint(4, ()).item())
        out = tuple(_rot90(x, k) for x in inputs)
        return out if len(out) > 1 else out[0]


def _rot90(x: Any, k: int) -> Any:
    from torchvision import tv_tensors

    rotated = torch.rot90(x.as_subclass(torch.Tensor), k, dims=(-2, -1))
    return tv_tensors.wrap(rotated, like=x) if isinstance(x, tv_tensors.TVTensor) else rotated


def build_transforms(
    dataset: str | DatasetInfo,
    train: bool,
    *,
    augment: str | None = None,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Any:
    """The transform of a dataset's training or evaluation split.

    Args:
        dataset: a registered dataset name or its :class:`~kanconvs.data.DatasetInfo`.
        train: training (augmented) or evaluation transform.
        augment: augmentation family (default: the dataset's; ``"none"`` to switch augmentation off).
        image_size, mean, std: override the dataset's.

    Examples:
        >>> t = build_transforms("mnist-10k", train=True)
        >>> t(torch.zeros(1, 28, 28, dtype=torch.uint8)).dtype
        torch.float32
    """
    from torchvision.transforms import v2

    info = dataset_info(dataset) if isinstance(dataset, str) else dataset
    augment = info.augment if augment is None else augment
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}, got {augment!r}")
    size = image_size or info.image_size
    finish = [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(mean or info.mean), list(std or info.std)),
    ]
    policy = v2.AutoAugmentPolicy
    steps: list[Any] = []
    if info.augment == "imagenet":
        if train and augment != "none":
            steps += [v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip()]
        else:
            steps += [v2.Resize(round(size * 256 / 224), antialias=True), v2.CenterCrop(size)]
    elif info.augment == "segmentation" or size != info.image_size:  # image_size was ignored here before
        steps += [v2.Resize((size, size), antialias=True)]
    if train:
        if augment == "mnist":
            steps += [v2.RandomAffine(20, translate=(0.1, 0.1), scale=(0.9, 1.1)), v2.ColorJitter(0.2, 0.2)]
        elif augment == "cifar":
            choices = [v2.AutoAugment(p) for p in (policy.CIFAR10, policy.IMAGENET, policy.SVHN)]
            steps += [v2.RandomHorizontalFlip(), v2.RandomChoice([*choices, v2.TrivialAugmentWide()])]
        elif augment == "imagenet":
            steps += [v2.RandomChoice([v2.AutoAugment(policy.CIFAR10), v2.AutoAugment(policy.IMAGENET)])]
        elif augment == "segmentation":
            steps += [v2.RandomHorizontalFlip(), v2.RandomVerticalFlip(), RandomRot90()]
    return v2.Compose([*steps, *finish])
