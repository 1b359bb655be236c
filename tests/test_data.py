"""Datasets, transforms and loaders: the embedded subset, the IDX reader, search paths, errors, augmentations."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from kanconvs.data import (
    DatasetNotFoundError,
    MixCollate,
    SegmentationFolder,
    build_transforms,
    create_dataset,
    create_loader,
    list_datasets,
    load_embedded_mnist,
    read_idx,
)

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def _write_idx(path: Path, data: torch.Tensor, compress: bool = True) -> None:
    """Independent IDX writer (format from the MNIST web page: 0, 0, 0x08, ndim, big-endian sizes, bytes)."""
    payload = bytes([0, 0, 0x08, data.dim()]) + b"".join(struct.pack(">I", s) for s in data.shape)
    payload += bytes(data.flatten().tolist())
    path.write_bytes(gzip.compress(payload) if compress else payload)


def test_registry_lists_the_seed_datasets() -> None:
    names = set(list_datasets())
    assert {"mnist-10k", "mnist", "fashion-mnist", "cifar10", "cifar100", "tiny-imagenet", "imagenet"} <= names
    assert {"imagefolder", "segmentation-folder"} <= names
    with pytest.raises(ValueError, match="mnst"):
        create_dataset("mnst")


def test_embedded_mnist_is_real_balanced_digits() -> None:
    train_x, train_y = load_embedded_mnist("train")
    test_x, test_y = load_embedded_mnist("test")
    assert train_x.shape == (8000, 1, 28, 28) and test_x.shape == (2000, 1, 28, 28)
    assert train_x.dtype == torch.uint8 and train_y.dtype == torch.int64
    for labels in (train_y, test_y):  # shuffled before splitting: every digit in both splits, roughly 10 % each
        counts = torch.bincount(labels, minlength=10)
        assert counts.min() > 0.06 * len(labels) and counts.max() < 0.14 * len(labels)
    # MNIST digits: dark background, bright strokes, about 19 % of the pixels lit
    lit = (train_x > 127).float().mean()
    assert 0.08 < lit < 0.3 and train_x[:, :, 0, :].float().mean() < 1.0
    with pytest.raises(ValueError, match="split must be one of"):
        load_embedded_mnist("val")


def test_read_idx_round_trip_and_corrupt_files(tmp_path: Path) -> None:
    data = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    _write_idx(tmp_path / "a-ubyte.gz", data)
    _write_idx(tmp_path / "b-ubyte", data, compress=False)
    assert torch.equal(read_idx(tmp_path / "a-ubyte.gz"), data)
    assert torch.equal(read_idx(tmp_path / "b-ubyte"), data)
    raw = (tmp_path / "b-ubyte").read_bytes()
    (tmp_path / "short-ubyte").write_bytes(raw[:-7])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        read_idx(tmp_path / "short-ubyte")
    (tmp_path / "float-ubyte").write_bytes(b"\x00\x00\x0d\x01" + raw[4:])
    with pytest.raises(ValueError, match="not an unsigned-byte IDX file"):
        read_idx(tmp_path / "float-ubyte")


def test_read_idx_names_the_path_of_a_corrupt_or_truncated_file(tmp_path: Path) -> None:
    data = torch.randint(0, 256, (30, 28, 28), dtype=torch.uint8)
    _write_idx(tmp_path / "a-ubyte.gz", data)
    packed = (tmp_path / "a-ubyte.gz").read_bytes()
    cases = {
        "cut-ubyte.gz": packed[: len(packed) // 2],  # gzip stream ends early: EOFError before
        "garbled-ubyte.gz": packed[:10] + bytes(b ^ 0xFF for b in packed[10:40]) + packed[40:],  # zlib.error before
        "notgzip-ubyte.gz": b"this is not gzip data",  # BadGzipFile (OSError) before
        "header-ubyte": b"\x00\x00\x08\x03\x00\x00",  # header cut inside the sizes: struct.error before
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ValueError, match=str(tmp_path / name)):
            read_idx(tmp_path / name)
    (tmp_path / "dir-ubyte").mkdir()
    with pytest.raises(ValueError, match="dir-ubyte"):
        read_idx(tmp_path / "dir-ubyte")
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing-ubyte")


def _fashion_files(root: Path, images: bytes | None = None, labels: torch.Tensor | None = None) -> Path:
    """A FashionMNIST folder of 6 random images per split; ``images``/``labels`` replace both splits' files."""
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for split in ("train", "t10k"):
        _write_idx(raw / f"{split}-images-idx3-ubyte.gz", torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8))
        if images is not None:
            (raw / f"{split}-images-idx3-ubyte.gz").write_bytes(images)
        labels_of_split = torch.arange(6, dtype=torch.uint8) if labels is None else labels
        _write_idx(raw / f"{split}-labels-idx1-ubyte.gz", labels_of_split)
    return raw


def test_idx_images_and_labels_that_do_not_match_name_both_files(tmp_path: Path) -> None:
    _fashion_files(tmp_path, labels=torch.arange(5, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz holds 6 images but .*t10k-labels-idx1-ubyte"):
        create_dataset("fashion-mnist", "test", data_dir=tmp_path)


@pytest.mark.parametrize("command", ["train", "eval"])
def test_cli_reports_a_corrupt_dataset_file_in_one_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("accelerate")
    from kanconvs.cli import main

    raw = _fashion_files(tmp_path / "data", images=gzip.compress(b"\x00\x00\x08\x03" + bytes(200))[:-30])
    run = tmp_path / "run"
    run.mkdir()
    config = run / "config.yaml"
    config.write_text(
        f"output_dir: {run}\nepochs: 1\nprogress: false\ntrackers: []\n"
        f"data: {{name: fashion-mnist, data_dir: {tmp_path / 'data'}}}\nmodel: {{name: simple_conv_4}}\n"
    )
    code = main(["train", str(config)] if command == "train" else ["eval", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"kanconvs {command}: error: ") and err.count("\n") == 1
    assert "-images-idx3-ubyte.gz" in err and str(raw) in err


def test_mnist_family_found_in_torchvision_layout(tmp_path: Path) -> None:
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = torch.randint(0, 256, (6, 28, 28), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 3, 4, 5], dtype=torch.uint8)
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(raw / "t10k-labels-idx1-ubyte", labels, compress=False)  # torchvision unzips: both forms work
    ds = create_dataset("mnist", "val", data_dir=tmp_path)  # no separate val split: the test set
    assert len(ds) == 6 and torch.equal(ds[2][0], images[2][None]) and ds[2][1] == 2


def test_missing_dataset_says_where_it_looked_and_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"(?s)MNIST.*" + str(tmp_path) + r".*download=True.*mnist-10k"):
        create_dataset("mnist", data_dir=tmp_path)
    if not DEBIAN_FASHION_MNIST.exists():
        with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
            create_dataset("fashion-mnist", data_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"CIFAR10: not found in .*download=True"):
        create_dataset("cifar10", data_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"imagenet: no folder .*train"):
        create_dataset("imagenet", data_dir=tmp_path)
    assert issubclass(DatasetNotFoundError, FileNotFoundError)
    with pytest.raises(ValueError, match="split must be one of"):
        create_dataset("mnist-10k", "dev")
    with pytest.raises(ValueError, match="limit must be a positive integer"):
        create_dataset("mnist-10k", limit=0)


@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_the_debian_package(tmp_path: Path) -> None:
    train, test = create_dataset("fashion-mnist", data_dir=tmp_path), create_dataset("fashion-mnist", "test")
    assert len(train) == 60000 and len(test) == 10000
    assert torch.bincount(train.labels).tolist() == [6000] * 10  # Fashion-MNIST is exactly balanced


def test_limit_is_a_seeded_subset() -> None:
    a = create_dataset("mnist-10k", limit=50, seed=1)
    b = create_dataset("mnist-10k", limit=50, seed=1)
    c = create_dataset("mnist-10k", limit=50, seed=2)
    assert len(a) == 50 and torch.equal(a.images, b.images) and not torch.equal(a.images, c.images)


def test_eval_transform_is_the_normalisation_formula() -> None:
    x = torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8)
    y = build_transforms("mnist-10k", train=False)(x)
    torch.testing.assert_close(y, (x.float() / 255 - 0.5) / 0.5)
    t = build_transforms("mnist-10k", train=True)
    outs = torch.stack([t(x) for _ in range(4)])
    assert outs.shape == (4, 1, 28, 28) and outs.min() >= -1 and outs.max() <= 1
    assert not torch.equal(outs[0], outs[1])  # random affine
    with pytest.raises(ValueError, match="augment must be one of"):
        build_transforms("cifar10", train=True, augment="heavy")


@pytest.mark.parametrize("name", ["cifar10", "imagenet"])
def test_train_and_eval_transforms_of_colour_datasets(name: str) -> None:
    size = 32 if name == "cifar10" else 64
    x = torch.randint(0, 256, (3, 80, 80), dtype=torch.uint8)
    for train in (True, False):
        y = build_transforms(name, train=train, image_size=size)(x)
        expected = (3, 80, 80) if name == "cifar10" else (3, size, size)
        assert y.shape == expected and y.dtype == torch.float32 and torch.isfinite(y).all()


def test_mixup_and_cutmix_give_soft_labels_and_convex_images() -> None:
    batch = [(torch.full((1, 8, 8), float(i)), i) for i in range(4)]
    torch.manual_seed(0)
    x, y = MixCollate(num_classes=4, mixup_alpha=0.4)(batch)
    assert y.shape == (4, 4) and torch.allclose(y.sum(1), torch.ones(4))
    # MixUp: image i is λ·x_i + (1 − λ)·x_j, and its label puts the same weights on i and j
    for i in range(4):
        expected = (y[i] * torch.arange(4.0)).sum()
        torch.testing.assert_close(x[i], torch.full((1, 8, 8), expected.item()))
    x, y = MixCollate(num_classes=4, cutmix_alpha=1.0)(batch)
    for i in range(4):  # CutMix: pixels come from two images; the label weights are their area fractions
        values, counts = torch.unique(x[i], return_counts=True)
        weights = torch.zeros(4)
        weights[values.long()] = counts.float() / x[i].numel()
        torch.testing.assert_close(y[i], weights)
    with pytest.raises(ValueError, match="not both 0"):
        MixCollate(num_classes=4)


def test_loader_shuffles_reproducibly_and_drops_the_last_partial_batch() -> None:
    ds = create_dataset("mnist-10k", "test", limit=10, transform=build_transforms("mnist-10k", train=False))
    first = [y.tolist() for _, y in create_loader(ds, 4, train=True, seed=3)]
    again = [y.tolist() for _, y in create_loader(ds, 4, train=True, seed=3)]
    assert first == again and len(first) == 2
    assert sum(len(y) for _, y in create_loader(ds, 4, train=False)) == 10
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        create_loader(ds, 0, train=True)


def test_segmentation_folder_pairs_images_and_masks(tmp_path: Path) -> None:
    from PIL import Image

    def write_png(array: torch.Tensor, path: str) -> None:
        Image.fromarray(array.permute(1, 2, 0).squeeze(-1).numpy()).save(path)

    (tmp_path / "images").mkdir()
    for c in ("0", "1"):
        (tmp_path / "masks" / c).mkdir(parents=True)
    for i in range(5):
        image = torch.zeros(3, 16, 16, dtype=torch.uint8)
        image[:, :8] = 200  # class 0 region on top
        image[:, 12:, 12:] = 90  # class 1 region in a corner
        write_png(image, str(tmp_path / "images" / f"{i}.png"))
        write_png((image[:1] == 200).to(torch.uint8) * 255, str(tmp_path / "masks" / "0" / f"{i}.png"))
        write_png((image[:1] == 90).to(torch.uint8) * 255, str(tmp_path / "masks" / "1" / f"{i}.png"))
    train = SegmentationFolder(tmp_path, "train", val_fraction=0.4)
    val = SegmentationFolder(tmp_path, "val", val_fraction=0.4)
    assert (len(train), len(val)) == (3, 2) and not set(train.images) & set(val.images)
    image, mask = train[0]
    expected = torch.zeros(16, 16, dtype=torch.int64)
    expected[:8] = 1
    expected[12:, 12:] = 2
    assert torch.equal(mask.as_subclass(torch.Tensor), expected)
    # augmentations move image and mask together: the mask still marks the bright pixels
    ds = create_dataset("segmentation-folder", "train", data_dir=tmp_path,
                        transform=build_transforms("segmentation-folder", train=True, image_size=16))  # fmt: skip
    for _ in range(6):
        image, mask = ds[0]
        assert torch.equal(mask.as_subclass(torch.Tensor) == 1, image[0] > 0.5)
    with pytest.raises(DatasetNotFoundError, match="segmentation-folder: no folder"):
        SegmentationFolder(tmp_path / "nothing")
