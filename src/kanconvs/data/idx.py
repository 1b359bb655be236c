"""Read IDX files (the MNIST family's format), gzip'd or not, into uint8 tensors without torchvision."""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["read_idx", "read_idx_pair"]


def read_idx(path: str | os.PathLike[str]) -> Tensor:
    """Read an unsigned-byte IDX file (``*-ubyte`` or ``*-ubyte.gz``) as a uint8 tensor of its stored shape.

    Examples:
        >>> from kanconvs.data.embedded import ASSETS
        >>> read_idx(ASSETS / "mnist10k-labels-idx1-ubyte.gz").shape
        torch.Size([10000])
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise
    except (EOFError, OSError, zlib.error) as err:  # a truncated or corrupt gzip stream, a folder, no permission
        raise ValueError(f"cannot read IDX file {path}: {type(err).__name__}: {err}") from None
    if len(data) < 4:
        raise ValueError(f"{path} is not an IDX file (only {len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()}, expected 000008xx)")
    if len(data) < 4 + 4 * ndim:
        raise ValueError(f"{path} is truncated or corrupt: its header needs {4 + 4 * ndim} bytes, found {len(data)}")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    expected = 1
    for size in shape:
        expected *= size
    if len(body) != expected:
        raise ValueError(f"{path} is truncated or corrupt: header says {shape} ({expected} bytes), found {len(body)}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(*shape)


def read_idx_pair(images_path: str | os.PathLike[str], labels_path: str | os.PathLike[str]) -> tuple[Tensor, Tensor]:
    """Images ``(N, 1, H, W)`` uint8 and labels ``(N,)`` int64 from an IDX images file and its labels file.

    Raises:
        ValueError: a corrupt file, or files that do not match (naming both).
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3:
        raise ValueError(f"{images_path} is not an IDX images file: expected (N, H, W), got {tuple(images.shape)}")
    if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{images_path} holds {images.shape[0]} images but {labels_path} holds labels of shape "
            f"{tuple(labels.shape)}: expected ({images.shape[0]},)"
        )
    return images.unsqueeze(1), labels.long()
