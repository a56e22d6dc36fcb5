"""A numpy reader for the IDX format of (Fashion-)MNIST (LeCun et al., yann.lecun.com/exdb/mnist).

Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions n, then n
big-endian uint32 sizes; the data follow. Files may be gzip-compressed. Every failure
(bad gzip stream, wrong magic, truncated payload) raises DataError naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from vae_jax.data.errors import DataError

_UINT8 = 0x08


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(
            f"cannot read IDX file {path}: {e}. The file is corrupt or truncated; "
            "reinstall it (e.g. `apt-get install --reinstall dataset-fashion-mnist`)."
        ) from e


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (optionally .gz) into a uint8 array of its declared shape."""
    if not os.path.exists(path):
        raise DataError(f"IDX file {path} does not exist")
    buf = _read_bytes(path)
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number {buf[:4].hex()})")
    if buf[2] != _UINT8:
        raise DataError(f"{path}: IDX type code 0x{buf[2]:02x} unsupported (only uint8, 0x08)")
    ndim = buf[3]
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DataError(f"{path} is truncated: its header is incomplete")
    shape = struct.unpack(f">{ndim}I", buf[4:header])
    expected = int(np.prod(shape))
    found = len(buf) - header
    if found != expected:
        raise DataError(
            f"{path} is truncated or corrupt: its header declares shape {shape} "
            f"({expected} bytes) but it holds {found} bytes of data. Reinstall or re-download it."
        )
    return np.frombuffer(buf, dtype=np.uint8, offset=header).reshape(shape)


IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_file(directory: str, stem: str) -> str | None:
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    return None


def has_idx_split(directory: str, split: str) -> bool:
    return all(find_file(directory, stem) for stem in IDX_FILES[split])


def load_idx_split(directory: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(images [N, H, W, 1] uint8, labels [N] int32) from the standard IDX file names."""
    img_stem, lbl_stem = IDX_FILES[split]
    images = read_idx(find_file(directory, img_stem))
    labels = read_idx(find_file(directory, lbl_stem))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"IDX files in {directory} disagree: images {images.shape}, labels {labels.shape}"
        )
    return images[..., None], labels.astype(np.int32)
