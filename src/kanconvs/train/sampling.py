"""Reproducible data order and augmentation, whatever the workers, processes or resume point.

:class:`EpochSampler` draws each epoch's order from its own generator seeded by ``(seed, epoch)`` and yields
``(epoch, index)`` keys; :class:`SeededItems` seeds the random augmentation of every item from the same key. A run
resumed mid-epoch (skipping the batches already done) therefore sees exactly the batches, and the augmented
images, of an uninterrupted run — no RNG state has to travel with worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any, cast

import torch
from torch.utils.data import Dataset, Sampler

__all__ = ["EpochSampler", "SeededItems", "key_seed"]

_MIX = 0x9E3779B1  # odd constant: spreads (seed, epoch, index) over the 63-bit seed space


def key_seed(*parts: int) -> int:
    value = 0
    for part in parts:
        value = (value * _MIX + part + 1) % (2**63 - 1)
    return value


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields ``(epoch, index)`` for every index, shuffled per epoch by ``(seed, epoch)`` when ``shuffle``."""

    def __init__(self, size: int, *, seed: int = 0, shuffle: bool = True) -> None:
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        if self.shuffle:
            generator = torch.Generator().manual_seed(key_seed(self.seed, self.epoch))
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        return ((self.epoch, i) for i in order)


class SeededItems(Dataset[Any]):
    """Wraps a dataset so that item ``(epoch, index)`` is produced under a torch RNG seeded by
    ``(seed, epoch, index)``: its random augmentation is a pure function of the key. The global RNG is untouched."""

    def __init__(self, dataset: Dataset[Any], seed: int = 0) -> None:
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(cast(Sized, self.dataset))

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        with torch.random.fork_rng(devices=[]):
            # Only the CPU generator: torch.manual_seed would also queue a CUDA re-seed (with a stack trace) per
            # item, which halved the loader's throughput.
            torch.default_generator.manual_seed(key_seed(self.seed, epoch, index))
            return self.dataset[index]
