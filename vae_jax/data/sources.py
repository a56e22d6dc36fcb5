"""Raw data sources: name -> {"train": (x, y), "test": (x, y)} with x [N, H, W, C] uint8.

- IDX files (Fashion-MNIST from Debian's `dataset-fashion-mnist`, or MNIST files you supply);
- tensorflow-datasets through `tfds.data_source` (array_record builds, no TensorFlow needed),
  read only when the prepared data set is already on disk: a tfds download offline hangs;
- a procedural synthetic source for tests and smoke runs;
- dSprites (vae_jax/data/dsprites.py): generated procedurally (data.source=procedural, or
  auto without a tfds build), or the original images from a prepared tfds `dsprites` build
  (data.source=tfds, or auto with one).
"""

from __future__ import annotations

import glob
import os

import numpy as np

from vae_jax.data import dsprites, idx
from vae_jax.data.errors import DataError

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# Label names, for legends and captions (Xiao et al. 2017 for Fashion-MNIST).
CLASS_NAMES = {
    "fashion_mnist": (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    "mnist": tuple(str(d) for d in range(10)),
    "dsprites": dsprites.SHAPES,  # labels: the shape factor
}
DEFAULT_DIRS = {"fashion_mnist": DEBIAN_FASHION_MNIST_DIR}
# Image shape (H, W, C) every split of a named data set must have; all are uint8.
# Synthetic images are generated at data.image_size, so they are not listed.
EXPECTED_SHAPES = {
    "fashion_mnist": (28, 28, 1),
    "mnist": (28, 28, 1),
    "binarized_mnist": (28, 28, 1),
    "dsprites": (64, 64, 1),
}
TFDS_SPLITS = {"binarized_mnist": {"train": "train", "val": "validation", "test": "test"}}


def tfds_dir(data_config) -> str:
    return data_config.tfds_dir or os.environ.get(
        "TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets")
    )


def tfds_prepared(name: str, data_dir: str) -> bool:
    return bool(glob.glob(os.path.join(data_dir, name, "*", "dataset_info.json")))


def load_tfds_split(name: str, split: str, data_dir: str | None, chunk: int = 4096):
    """Read a whole prepared tfds split with `tfds.data_source` into numpy.

    Returns (images [N, H, W, C] uint8 in 0..255, labels [N] int32, -1 where unlabelled).
    """
    import tensorflow_datasets as tfds

    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    images, labels = [], []
    for start in range(0, len(source), chunk):
        for ex in source.__getitems__(list(range(start, min(start + chunk, len(source))))):
            images.append(np.asarray(ex["image"], dtype=np.uint8))
            labels.append(int(ex.get("label", -1)))
    x = np.stack(images)
    if x.max() <= 1:  # binarized_mnist stores {0, 1}
        x = x * np.uint8(255)
    return x, np.asarray(labels, dtype=np.int32)


def _missing(name: str, data_config) -> DataError:
    directory = data_config.dir or DEFAULT_DIRS.get(name, "<unset>")
    fixes = []
    if name == "fashion_mnist":
        fixes.append("install Debian's copy: `sudo apt-get install -y dataset-fashion-mnist`")
    if name in ("mnist", "fashion_mnist"):
        fixes.append(
            "put the four IDX files (train-images-idx3-ubyte[.gz], ...) in a folder and pass "
            "--config.data.dir=FOLDER"
        )
    fixes.append(
        f"with internet: `pip install 'vae_jax[tf]' && python -m vae_jax.data.prepare {name}` "
        f"(writes to {tfds_dir(data_config)}; set --config.data.tfds_dir to change it)"
    )
    fixes.append("or train on generated data: --config.data.name=synthetic")
    return DataError(
        f"data set '{name}' not found (IDX folder: {directory}; tfds folder: "
        f"{tfds_dir(data_config)}). Fixes: " + "; ".join(fixes) + "."
    )


def idx_folder(name: str, data_config) -> str | None:
    """The folder whose IDX files `load_images` reads for `name`, or None if it reads none."""
    directory = data_config.dir or DEFAULT_DIRS.get(name, "")
    if (
        data_config.source in ("auto", "idx")
        and name in ("mnist", "fashion_mnist")
        and directory
        and idx.has_idx_split(directory, "train")
        and idx.has_idx_split(directory, "test")
    ):
        return directory
    return None


def image_origin(name: str, data_config) -> str:
    """Where `load_images` takes `name` from, for error messages."""
    if name == "synthetic":
        return f"generated synthetic data (data.image_size={data_config.image_size})"
    if name == "dsprites" and not _dsprites_from_tfds(data_config):
        return "procedurally generated dSprites (vae_jax.data.dsprites)"
    folder = idx_folder(name, data_config)
    return f"IDX files in {folder}" if folder else f"tfds folder {tfds_dir(data_config)}"


def load_images(name: str, data_config) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Load the named data set's splits; raise DataError with the fixes when it is missing."""
    if name == "synthetic":
        return synthetic(data_config)
    if name == "dsprites":
        return load_dsprites(data_config)
    source = data_config.source
    folder = idx_folder(name, data_config)
    if folder:
        return {s: idx.load_idx_split(folder, s) for s in ("train", "test")}
    if source == "idx":
        raise _missing(name, data_config)
    if source in ("auto", "tfds"):
        tdir = tfds_dir(data_config)
        if tfds_prepared(name, tdir):
            splits = TFDS_SPLITS.get(name, {"train": "train", "test": "test"})
            return {k: load_tfds_split(name, v, tdir) for k, v in splits.items()}
    raise _missing(name, data_config)


def _dsprites_from_tfds(data_config) -> bool:
    """data.source=tfds, or auto with a prepared tfds dsprites build."""
    source = data_config.source
    return source == "tfds" or (
        source == "auto" and tfds_prepared("dsprites", tfds_dir(data_config))
    )


def load_dsprites(data_config) -> dict:
    """dSprites' splits (dsprites.load_splits): from the tfds build when data.source=tfds (or
    auto and one is prepared), else generated procedurally. The tfds images are read whole
    into memory (2.8 GiB uint8, the user's choice); the generator holds only base sprites."""
    source = data_config.source
    if source == "idx":
        raise DataError(
            "data set 'dsprites' has no IDX files (data.source='idx'); use "
            "--config.data.source=procedural (generated), tfds (a prepared tfds build) or auto"
        )
    if _dsprites_from_tfds(data_config):
        tdir = tfds_dir(data_config)
        if not tfds_prepared("dsprites", tdir):
            raise DataError(
                f"data.source='tfds' but no prepared tfds dsprites build is in {tdir}. Fixes: "
                "with internet: `pip install 'vae_jax[tf]' && python -m vae_jax.data.prepare "
                "dsprites` (set --config.data.tfds_dir to change the folder); or generate it: "
                "--config.data.source=procedural"
            )
        images = dsprites.load_tfds(tdir)
    else:
        images = dsprites.procedural()
    return dsprites.load_splits(images, data_config.split_seed, data_config.val_size)


def synthetic(data_config) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Ten classes of smooth random blobs, shifted by up to 2 pixels, with pixel noise.

    Deterministic from `data.synthetic_seed`; image side `data.image_size`, 1 channel.
    Learnable in seconds, so tests and smoke runs see a loss that really falls.
    """
    rng = np.random.default_rng(data_config.synthetic_seed)
    side = data_config.image_size
    coarse = rng.uniform(size=(10, 7, 7))
    protos = np.kron(coarse, np.ones((side // 7 + 1, side // 7 + 1)))[:, :side, :side]
    protos = (protos > 0.6).astype(np.float32)

    def split(n):
        y = rng.integers(0, 10, size=n).astype(np.int32)
        shifts = rng.integers(-2, 3, size=(n, 2))
        x = np.stack(
            [np.roll(protos[c], tuple(s), axis=(0, 1)) for c, s in zip(y, shifts, strict=True)]
        )
        x = np.clip(x * 0.9 + 0.05 + rng.normal(0, 0.05, size=x.shape), 0, 1)
        return (x * 255).round().astype(np.uint8)[..., None], y

    n = data_config.synthetic_size
    return {"train": split(n), "test": split(max(n // 5, 1))}
