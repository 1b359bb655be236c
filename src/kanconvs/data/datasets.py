"""Dataset registry: ``create_dataset(name, split, data_dir=…)`` for every dataset the seed experiments use.

Small datasets (the MNIST family, CIFAR) are held in memory as uint8 tensors and transformed on the fly with
torchvision's ``transforms.v2``; large ones are image folders. Users with internet get torchvision's downloads
(``download=True``); everyone can point ``data_dir`` at local files. A missing dataset raises
:class:`DatasetNotFoundError`, which says where we looked and how to get the data.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._registry import Registry
from .embedded import load_embedded_mnist
from .idx import read_idx_pair

__all__ = [
    "DatasetInfo",
    "DatasetNotFoundError",
    "SegmentationFolder",
    "TensorImageDataset",
    "create_dataset",
    "dataset_info",
    "list_datasets",
    "register_dataset",
]

Transform = Callable[..., Any]
SPLITS = ("train", "val", "test")
_HALF = (0.5, 0.5, 0.5)  # the seed experiments' Normalize(0.5, 0.5)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where we looked; the message lists the places and how to get the data."""


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and the default transforms need to know about a dataset."""

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str  # the family of default augmentations: "mnist", "cifar", "imagenet" or "segmentation"
    task: str = "classification"
    loader: Callable[..., Dataset[Any]] = field(repr=False, compare=False, default=None)  # type: ignore[assignment]


_DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register_dataset(info: DatasetInfo) -> DatasetInfo:
    """Register a dataset; ``info.loader(split, data_dir, download, **kwargs)`` returns the un-transformed data."""
    _DATASETS.add(info.name, info)
    return info


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    return _DATASETS.names()


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of a registered dataset (classes, channels, size, normalisation)."""
    return _DATASETS.get(name)


class TensorImageDataset(Dataset[tuple[Any, Any]]):
    """In-memory images ``(N, C, H, W)`` uint8 and labels ``(N,)``; ``transform`` runs on each uint8 image."""

    def __init__(self, images: Tensor, labels: Tensor, transform: Transform | None = None) -> None:
        if images.dim() != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        if labels.shape != images.shape[:1]:
            raise ValueError(f"labels must have shape ({images.shape[0]},), got {tuple(labels.shape)}")
        self.images, self.labels, self.transform = images, labels.long(), transform

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image: Any = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


def _len(dataset: Dataset[Any]) -> int:
    return len(cast(Sized, dataset))  # map-style datasets define __len__; Dataset's typing does not say so


class _Transformed(Dataset[tuple[Any, Any]]):
    """Applies a transform to the image of another dataset's ``(image, target)`` items (PIL-based folders)."""

    def __init__(self, base: Dataset[Any], transform: Transform | None) -> None:
        self.base, self.transform = base, transform

    def __len__(self) -> int:
        return _len(self.base)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        image, target = self.base[index]
        return (self.transform(image) if self.transform else image), target


def create_dataset(
    name: str,
    split: str = "train",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = False,
    transform: Transform | None = None,
    limit: int | None = None,
    seed: int = 0,
    **kwargs: Any,
) -> Dataset[Any]:
    """Build a registered dataset's ``split`` (``"train"``, ``"val"`` or ``"test"``).

    Args:
        name: see :func:`list_datasets`; ``"mnist-10k"`` is the embedded default that needs no files.
        split: datasets without a separate validation set use their test set for ``"val"`` (as the seed
            experiments did).
        data_dir: where the files are (defaults to ``$KANCONVS_DATA`` or ``~/.cache/kanconvs/data``).
        download: let torchvision download the dataset into ``data_dir`` if it is missing.
        transform: applied to each image (for segmentation, to the image and mask together).
        limit: keep a random subset of this many samples (seeded by ``seed``): the quick runs' subsets.
        kwargs: dataset-specific options (e.g. ``num_classes`` and ``val_fraction`` for segmentation folders).

    Examples:
        >>> ds = create_dataset("mnist-10k", "test", limit=100)
        >>> len(ds), ds[0][0].shape, ds[0][0].dtype
        (100, torch.Size([1, 28, 28]), torch.uint8)
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    info = dataset_info(name)
    root = Path(data_dir if data_dir is not None else os.environ.get("KANCONVS_DATA", "~/.cache/kanconvs/data"))
    dataset = info.loader(split, root.expanduser(), download, transform=transform, **kwargs)
    if limit is not None and limit < _len(dataset):
        generator = torch.Generator().manual_seed(seed)
        keep = torch.randperm(_len(dataset), generator=generator)[:limit]
        if isinstance(dataset, TensorImageDataset):
            dataset = TensorImageDataset(dataset.images[keep], dataset.labels[keep], dataset.transform)
        else:
            dataset = torch.utils.data.Subset(dataset, keep.tolist())
    return dataset


# ------------------------------------------------------------------------------------------------ MNIST family
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(folders: Sequence[Path], stem: str) -> Path | None:
    for folder in folders:
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _idx_loader(tv_name: str, system_dirs: Sequence[str], hint: str) -> Callable[..., Dataset[Any]]:
    def load(split: str, root: Path, download: bool, transform: Transform | None = None) -> Dataset[Any]:
        part = "train" if split == "train" else "test"
        folders = [root / tv_name / "raw", root, *(Path(d) for d in system_dirs)]
        images_stem, labels_stem = _IDX_FILES[part]
        images_path, labels_path = _find_idx(folders, images_stem), _find_idx(folders, labels_stem)
        if (images_path is None or labels_path is None) and download:
            import torchvision

            getattr(torchvision.datasets, tv_name)(str(root), train=part == "train", download=True)
            images_path, labels_path = _find_idx(folders, images_stem), _find_idx(folders, labels_stem)
        if images_path is None or labels_path is None:
            looked = ", ".join(str(f) for f in folders)
            raise DatasetNotFoundError(
                f"{tv_name}: no {images_stem}[.gz] / {labels_stem}[.gz] in {looked}. Get it with download=True "
                f"(torchvision, needs internet), copy the IDX files into one of those folders{hint}"
            )
        return TensorImageDataset(*read_idx_pair(images_path, labels_path), transform)

    return load


def _embedded_loader(split: str, root: Path, download: bool, transform: Transform | None = None) -> Dataset[Any]:
    images, labels = load_embedded_mnist("train" if split == "train" else "test")
    return TensorImageDataset(images, labels, transform)


register_dataset(DatasetInfo("mnist-10k", 10, 1, 28, augment="mnist", loader=_embedded_loader, mean=(0.5,), std=(0.5,)))
register_dataset(
    DatasetInfo(
        "mnist", 10, 1, 28, augment="mnist", mean=(0.5,), std=(0.5,),
        loader=_idx_loader("MNIST", (), ", or use the embedded subset 'mnist-10k'"),
    )
)  # fmt: skip
register_dataset(
    DatasetInfo(
        "fashion-mnist", 10, 1, 28, augment="mnist", mean=(0.5,), std=(0.5,),
        loader=_idx_loader(
            "FashionMNIST", ("/usr/share/datasets/fashion-mnist",),
            ", or install Debian's package dataset-fashion-mnist (apt-get install dataset-fashion-mnist)",
        ),
    )
)  # fmt: skip


# ------------------------------------------------------------------------------------------------ CIFAR
def _cifar_loader(tv_name: str) -> Callable[..., Dataset[Any]]:
    def load(split: str, root: Path, download: bool, transform: Transform | None = None) -> Dataset[Any]:
        import torchvision

        try:
            data = getattr(torchvision.datasets, tv_name)(str(root), train=split == "train", download=download)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
            raise DatasetNotFoundError(
                f"{tv_name}: not found in {root} ({err}). Use download=True (needs internet) or put torchvision's "
                f"extracted {tv_name} folder (e.g. cifar-10-batches-py) under {root}"
            ) from err
        images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
        return TensorImageDataset(images, torch.as_tensor(data.targets), transform)

    return load


register_dataset(
    DatasetInfo("cifar10", 10, 3, 32, augment="cifar", loader=_cifar_loader("CIFAR10"), mean=_HALF, std=_HALF)
)
register_dataset(
    DatasetInfo("cifar100", 100, 3, 32, augment="cifar", loader=_cifar_loader("CIFAR100"), mean=_HALF, std=_HALF)
)


# ------------------------------------------------------------------------------------------------ image folders
def _require_dir(path: Path, name: str, expected: str) -> Path:
    if not path.is_dir():
        raise DatasetNotFoundError(f"{name}: no folder {path}; expected {expected}. Set data_dir to its location")
    return path


def _image_folder(split: str, root: Path, download: bool, transform: Transform | None = None) -> Dataset[Any]:
    import torchvision

    folder = _require_dir(root / split, "imagefolder", f"{root}/{{train,val,test}}/<class>/<image>")
    return _Transformed(torchvision.datasets.ImageFolder(str(folder), loader=_rgb), transform)


def _rgb(path: str) -> Any:
    from PIL import Image

    with Image.open(path) as image:
        return image.convert("RGB")


class _TinyImageNetVal(Dataset[tuple[Any, int]]):
    """Tiny ImageNet's validation split: ``val/images/*`` labelled by ``val/val_annotations.txt``."""

    def __init__(self, root: Path, class_to_idx: dict[str, int]) -> None:
        lines = (root / "val" / "val_annotations.txt").read_text().splitlines()
        self.samples = [
            (root / "val" / "images" / parts[0], class_to_idx[parts[1]])
            for parts in (line.split("\t") for line in lines)
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        path, label = self.samples[index]
        return _rgb(str(path)), label


def _tiny_imagenet(split: str, root: Path, download: bool, transform: Transform | None = None) -> Dataset[Any]:
    import torchvision

    base = root / "tiny-imagenet-200" if (root / "tiny-imagenet-200").is_dir() else root
    layout = "tiny-imagenet-200/{train/<wnid>/images/*.JPEG, val/images + val/val_annotations.txt} (cs231n zip)"
    train = torchvision.datasets.ImageFolder(str(_require_dir(base / "train", "tiny-imagenet", layout)), loader=_rgb)
    if split == "train":
        return _Transformed(train, transform)
    _require_dir(base / "val", "tiny-imagenet", layout)
    return _Transformed(_TinyImageNetVal(base, train.class_to_idx), transform)


def _imagenet(split: str, root: Path, download: bool, transform: Transform | None = None) -> Dataset[Any]:
    import torchvision

    part = "train" if split == "train" else "val"
    folder = _require_dir(root / part, "imagenet", f"{root}/{{train,val}}/<wnid>/<image> (ILSVRC2012 folders)")
    return _Transformed(torchvision.datasets.ImageFolder(str(folder), loader=_rgb), transform)


register_dataset(
    DatasetInfo(
        "imagefolder", 0, 3, 224, augment="imagenet", loader=_image_folder, mean=IMAGENET_MEAN, std=IMAGENET_STD
    )
)
register_dataset(
    DatasetInfo(
        "tiny-imagenet", 200, 3, 64, augment="imagenet", loader=_tiny_imagenet, mean=IMAGENET_MEAN, std=IMAGENET_STD
    )
)
register_dataset(
    DatasetInfo("imagenet", 1000, 3, 224, augment="imagenet", loader=_imagenet, mean=IMAGENET_MEAN, std=IMAGENET_STD)
)


# ------------------------------------------------------------------------------------------------ segmentation
class SegmentationFolder(Dataset[tuple[Any, Any]]):
    """Images with masks in the U-KAN / torch-conv-kan layout (BUSI, CVC-ClinicDB, GlaS)::

        root/images/<id>.<ext>
        root/masks/0/<id>.<ext>      one folder per class, binary masks (non-zero = class)
        root/masks/1/<id>.<ext>      (multi-class sets only)

    Items are ``(image, mask)``: a ``tv_tensors.Image`` (uint8, C×H×W) and a ``tv_tensors.Mask`` (``num_classes``
    = 1: float 1×H×W in {0, 1}; otherwise int64 class indices H×W, background 0, class folder ``c`` → ``c + 1``).
    ``transform`` receives both and must treat them jointly (``transforms.v2`` does). The split is a seeded
    random ``1 − val_fraction`` / ``val_fraction`` partition (80/20 by default, as the reference).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        transform: Transform | None = None,
        val_fraction: float = 0.2,
        seed: int = 0,
    ) -> None:
        root = Path(root)
        layout = f"{root}/images/<id>.png and {root}/masks/<class>/<id>.png"
        images = _require_dir(root / "images", "segmentation-folder", layout)
        classes = sorted(p for p in _require_dir(root / "masks", "segmentation-folder", layout).iterdir() if p.is_dir())
        if not classes:
            raise DatasetNotFoundError(f"segmentation-folder: no class folders in {root / 'masks'}; expected {layout}")
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        ids = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not ids:
            raise DatasetNotFoundError(f"segmentation-folder: no images in {images}; expected {layout}")
        random.Random(seed).shuffle(ids)
        n_val = round(len(ids) * val_fraction)
        self.images = ids[n_val:] if split == "train" else ids[:n_val]
        self.class_dirs, self.transform = classes, transform
        self.num_classes = len(classes)

    def _mask_path(self, folder: Path, image: Path) -> Path:
        for candidate in [folder / image.name, *(folder / (image.stem + ext) for ext in IMAGE_EXTENSIONS)]:
            if candidate.is_file():
                return candidate
        raise DatasetNotFoundError(f"segmentation-folder: no mask for {image.name} in {folder}")

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Any, Any]:
        from PIL import Image
        from torchvision import tv_tensors
        from torchvision.transforms.v2.functional import pil_to_tensor

        def read(path: Path, mode: str) -> Tensor:
            with Image.open(path) as img:
                return pil_to_tensor(img.convert(mode))

        path = self.images[index]
        image = tv_tensors.Image(read(path, "RGB"))
        masks = [read(self._mask_path(d, path), "L")[0] > 0 for d in self.class_dirs]
        if self.num_classes == 1:
            mask = tv_tensors.Mask(masks[0][None].float())
        else:
            labels = torch.zeros_like(masks[0], dtype=torch.int64)
            for c, m in enumerate(masks):
                labels[m] = c + 1
            mask = tv_tensors.Mask(labels)
        return self.transform(image, mask) if self.transform else (image, mask)


def _segmentation(
    split: str, root: Path, download: bool, transform: Transform | None = None, **kw: Any
) -> Dataset[Any]:
    return SegmentationFolder(root, "train" if split == "train" else "val", transform=transform, **kw)


register_dataset(
    DatasetInfo(
        "segmentation-folder", 1, 3, 256, augment="segmentation", task="segmentation", loader=_segmentation,
        mean=IMAGENET_MEAN, std=IMAGENET_STD,
    )
)  # fmt: skip
