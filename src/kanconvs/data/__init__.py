"""Datasets, transforms and loaders: the seed experiments' data, plus an embedded MNIST subset that needs no files."""

from .datasets import (
    DatasetInfo,
    DatasetNotFoundError,
    SegmentationFolder,
    TensorImageDataset,
    create_dataset,
    dataset_info,
    list_datasets,
    register_dataset,
)
from .embedded import load_embedded_mnist
from .idx import read_idx
from .loaders import MixCollate, create_loader
from .transforms import AUGMENTATIONS, build_transforms

__all__ = [
    "AUGMENTATIONS",
    "DatasetInfo",
    "DatasetNotFoundError",
    "MixCollate",
    "SegmentationFolder",
    "TensorImageDataset",
    "build_transforms",
    "create_dataset",
    "create_loader",
    "dataset_info",
    "list_datasets",
    "load_embedded_mnist",
    "read_idx",
    "register_dataset",
]
