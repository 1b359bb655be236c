"""Data loaders with the fast defaults (workers, pinned memory, persistent workers) and CutMix/MixUp batches."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

__all__ = ["MixCollate", "create_loader"]


class MixCollate:
    """Collate a batch, then apply CutMix or MixUp (one chosen at random per batch) to it.

    Labels become soft, ``(B, num_classes)`` probabilities, which ``nn.CrossEntropyLoss`` accepts directly. A
    class (not a lambda) so that worker processes can pickle it.

    Examples:
        >>> collate = MixCollate(num_classes=3, mixup_alpha=1.0)
        >>> x, y = collate([(torch.zeros(1, 4, 4), 0), (torch.ones(1, 4, 4), 2)])
        >>> y.shape, bool(torch.allclose(y.sum(1), torch.ones(2)))
        (torch.Size([2, 3]), True)
    """

    def __init__(self, num_classes: int, mixup_alpha: float = 0.0, cutmix_alpha: float = 0.0) -> None:
        from torchvision.transforms import v2

        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 for CutMix/MixUp, got {num_classes!r}")
        if mixup_alpha < 0 or cutmix_alpha < 0 or mixup_alpha == cutmix_alpha == 0:
            raise ValueError(
                f"mixup_alpha and cutmix_alpha must be >= 0 and not both 0, got {mixup_alpha!r}, {cutmix_alpha!r}"
            )
        mixers = []
        if mixup_alpha > 0:
            mixers.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
        if cutmix_alpha > 0:
            mixers.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
        self.mix = mixers[0] if len(mixers) == 1 else v2.RandomChoice(mixers)

    def __call__(self, batch: list[Any]) -> Any:
        return self.mix(*default_collate(batch))


def create_loader(
    dataset: Dataset[Any],
    batch_size: int,
    *,
    train: bool,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    mix: MixCollate | None = None,
    seed: int = 0,
    drop_last: bool | None = None,
    sampler: Sampler[Any] | None = None,
) -> DataLoader[Any]:
    """A ``DataLoader`` for training (shuffled with a seeded generator, last partial batch dropped, optional
    CutMix/MixUp) or evaluation (in order, every sample).

    ``pin_memory`` defaults to CUDA being available; workers persist between epochs and prefetch. A ``sampler``
    replaces the shuffling (e.g. the trainer's epoch-keyed :class:`~kanconvs.train.sampling.EpochSampler`).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be an integer >= 0, got {num_workers!r}")
    workers: dict[str, Any] = {"persistent_workers": True, "prefetch_factor": 4} if num_workers > 0 else {}
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=train if drop_last is None else drop_last,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        collate_fn=mix if (train and mix is not None) else None,
        generator=torch.Generator().manual_seed(seed) if train and sampler is None else None,
        **workers,
    )
