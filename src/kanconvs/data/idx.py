"""Read IDX files (the MNIST family's format), gzip'd or not, into uint8 tensors without torchvision."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["read_idx"]


def read_idx(path: str | os.PathLike[str]) -> Tensor:
    """Read an unsigned-byte IDX file (``*-ubyte`` or ``*-ubyte.gz``) as a uint8 tensor of its stored shape.

    Examples:
        >>> from kanconvs.data.embedded import ASSETS
        >>> read_idx(ASSETS / "mnist10k-labels-idx1-ubyte.gz").shape
        torch.Size([10000])
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path} is not an IDX file (only {len(data)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {data[:4].hex()}, expected 000008xx)")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    expected = 1
    for size in shape:
        expected *= size
    if len(body) != expected:
        raise ValueError(f"{path} is truncated or corrupt: header says {shape} ({expected} bytes), found {len(body)}")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).view(*shape)
