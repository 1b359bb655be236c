"""The embedded default dataset: 10,000 real MNIST digits shipped inside the package (see ``assets/README.md``)."""

from __future__ import annotations

from pathlib import Path

from torch import Tensor

from .idx import read_idx_pair

__all__ = ["ASSETS", "EMBEDDED_TRAIN_SIZE", "load_embedded_mnist"]

ASSETS = Path(__file__).resolve().parent / "assets"
#: The stored order is already shuffled: the first 8,000 digits are the training split, the last 2,000 the test split.
EMBEDDED_TRAIN_SIZE = 8000


def load_embedded_mnist(split: str = "train") -> tuple[Tensor, Tensor]:
    """Images ``(N, 1, 28, 28)`` uint8 and labels ``(N,)`` int64 of the embedded MNIST subset.

    ``split`` is ``"train"`` (8,000 digits), ``"test"`` (the other 2,000) or ``"all"``.

    Examples:
        >>> images, labels = load_embedded_mnist("test")
        >>> images.shape, labels.shape
        (torch.Size([2000, 1, 28, 28]), torch.Size([2000]))
    """
    images, labels = read_idx_pair(ASSETS / "mnist10k-images-idx3-ubyte.gz", ASSETS / "mnist10k-labels-idx1-ubyte.gz")
    parts = {
        "train": slice(0, EMBEDDED_TRAIN_SIZE),
        "test": slice(EMBEDDED_TRAIN_SIZE, None),
        "all": slice(None),
    }
    if split not in parts:
        raise ValueError(f"split must be one of {sorted(parts)}, got {split!r}")
    return images[parts[split]], labels[parts[split]]
