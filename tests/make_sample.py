"""Derives the tests' small MNIST sample from the real files.

    python tests/make_sample.py /path/to/mnist tests/data/mnist-sample

Keeps the first 5,000 training and 1,000 test images (IDX format, gzipped) and
writes their MD5SUMS (of the uncompressed files, like the official list).
"""

import gzip
import hashlib
import struct
import sys
from pathlib import Path

KEEP = {"train": 5000, "t10k": 1000}


def read_idx(path: Path) -> bytes:
    with gzip.open(path) if path.suffix == ".gz" else path.open("rb") as fp:
        return fp.read()


def truncate_idx(content: bytes, count: int) -> bytes:
    """Keeps the first ``count`` items of an IDX file (header: magic number,
    then one big-endian uint32 per dimension)"""
    dimensions = content[3]
    shape = struct.unpack(f">{dimensions}I", content[4 : 4 + 4 * dimensions])
    item_size = 1
    for size in shape[1:]:
        item_size *= size
    header = content[:4] + struct.pack(f">{dimensions}I", count, *shape[1:])
    start = 4 + 4 * dimensions
    return header + content[start : start + count * item_size]


def main(source: Path, destination: Path):
    destination.mkdir(parents=True, exist_ok=True)
    sums = []
    for prefix, count in KEEP.items():
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte"
            path = source / f"{name}.gz"
            content = truncate_idx(
                read_idx(path if path.exists() else source / name), count
            )
            # mtime=0: the same sample gives the same bytes
            with gzip.GzipFile(destination / f"{name}.gz", "wb", mtime=0) as fp:
                fp.write(content)
            sums.append(f"{hashlib.md5(content).hexdigest()}  {name}\n")
    (destination / "MD5SUMS").write_text("".join(sums))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
