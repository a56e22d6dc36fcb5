"""A numpy reader for the IDX format of (Fashion-)MNIST (LeCun et al., yann.lecun.com/exdb/mnist).

Header: two zero bytes, a type code (0x08 = uint8), the number of dimensions n, then n
big-endian uint32 sizes; the data follow. Files may be gzip-compressed. Every failure
(bad gzip stream, empty file, wrong magic, wrong dimension count, truncated payload) raises
DataError naming the file, what was expected and found, and the fix.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from vae_jax.data.errors import DataError

_UINT8 = 0x08
FIX = (
    "reinstall the data (`sudo apt-get install --reinstall dataset-fashion-mnist` for "
    "Debian's Fashion-MNIST) or download the files again"
)


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        compressed = raw[:2] == b"\x1f\x8b"
        buf = gzip.decompress(raw) if compressed else raw
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(
            f"cannot read IDX file {path}: {e}. The file is corrupt or truncated; {FIX}."
        ) from e
    if not buf:
        what = "its gzip stream decompresses to 0 bytes" if compressed else "0 bytes"
        raise DataError(f"{path} is empty ({what}; expected an IDX header and data); {FIX}.")
    return buf


def read_idx(path: str, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (optionally .gz) into a uint8 array of its declared shape.

    `ndim`, when given, is the dimension count the file must declare (3 images, 1 labels).
    """
    if not os.path.exists(path):
        raise DataError(f"IDX file {path} does not exist")
    buf = _read_bytes(path)
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0:
        raise DataError(
            f"{path} is not an IDX file (bad magic number: expected 0000 then type and ndim, found "
            f"{buf[:4].hex()}); {FIX}."
        )
    if buf[2] != _UINT8:
        raise DataError(
            f"{path}: IDX type code 0x{buf[2]:02x} unsupported (only uint8, 0x08); {FIX}."
        )
    if ndim is not None and buf[3] != ndim:
        raise DataError(
            f"{path} declares {buf[3]} dimensions, expected {ndim} (IDX images have 3: "
            f"count, rows, columns; labels 1: count); the file is misnamed or corrupt; {FIX}."
        )
    header = 4 + 4 * buf[3]
    if len(buf) < header:
        raise DataError(
            f"{path} is truncated: its header is incomplete (expected {header} bytes for "
            f"{buf[3]} dimensions, found {len(buf)}); {FIX}."
        )
    shape = struct.unpack(f">{buf[3]}I", buf[4:header])
    expected = int(np.prod(shape))
    found = len(buf) - header
    if found != expected:
        raise DataError(
            f"{path} is truncated or corrupt: its header declares shape {shape} "
            f"({expected} bytes) but it holds {found} bytes of data; {FIX}."
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
    img_path, lbl_path = find_file(directory, img_stem), find_file(directory, lbl_stem)
    images, labels = read_idx(img_path, ndim=3), read_idx(lbl_path, ndim=1)
    if len(images) != len(labels):
        raise DataError(
            f"IDX files in {directory} disagree: {img_path} holds {len(images)} images but "
            f"{lbl_path} holds {len(labels)} labels (expected one label per image); the two "
            f"files come from different data sets or one is damaged; {FIX}."
        )
    return images[..., None], labels.astype(np.int32)
