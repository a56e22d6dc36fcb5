"""From raw splits to a training-ready Dataset: validation split, binarization, batch order.

Images stay uint8 in 0..255 (binary images as 0/255) until they reach the device, where
train.py scales them to [0, 1] and, for dynamic binarization, draws x ~ Bernoulli(x/255)
with the step's key. The batch order is a pure function of (seed, step): epoch e uses the
permutation `default_rng([seed, e])`, so a resumed run sees exactly the batches an
uninterrupted run would have seen.

dSprites' training split is lazy (vae_jax.data.dsprites.SpriteImages: by default 717,280
images, rendered when indexed, never held whole): its fingerprint is that of its index
array and generator, it is binary by construction (no binarization applies), and the
training loops place only each chunk's images on the device (`chunk_data`), not the split.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

import numpy as np

from vae_jax.data import dsprites
from vae_jax.data.errors import DataError
from vae_jax.data.sources import EXPECTED_SHAPES, image_origin, load_images

BINARIZATIONS = ("none", "dynamic", "static", "threshold")


class Dataset(NamedTuple):
    train_x: np.ndarray  # [N, H, W, C] uint8 (dsprites: a lazy SpriteImages, see is_lazy)
    train_y: np.ndarray  # [N] int32 (-1: unlabelled)
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    name: str
    binarization: str
    description: str
    test_raw: np.ndarray | None = None  # test images before binarization (figures, FD)
    train_raw: np.ndarray | None = None  # train images before binarization (FD classifier)
    val_raw: np.ndarray | None = None  # validation images before binarization (FD floor)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    def fingerprint(self) -> str:
        """sha1 of every split the model sees (after the split and the binarization)."""
        arrays = (self.train_x, self.train_y, self.val_x, self.val_y, self.test_x, self.test_y)
        return fingerprint(*arrays)

    @property
    def binary_inputs(self) -> bool:
        """Whether the model sees binary pixels: binarized data, or data that is binary."""
        return self.binarization != "none" or is_binary(self.train_x)

    @property
    def ground_truth(self):
        """The data set's generative factors (vae_jax.data.ground_truth.GroundTruthData,
        e.g. dsprites.DSprites: factor_sizes, sample_factors, observations, index_of), or
        None for data sets without them. For dsprites also `self.train_x.factors()`."""
        return getattr(self.train_x, "source", None) if is_lazy(self.train_x) else None


def is_lazy(images) -> bool:
    """Whether `images` is a lazy view (dsprites.SpriteImages), not an array in memory."""
    return isinstance(images, dsprites.SpriteImages)


def fingerprint(*arrays: np.ndarray) -> str:
    """sha1 of the shapes, dtypes and bytes of the arrays: equal exactly for equal data."""
    h = hashlib.sha1()
    for a in arrays:
        if is_lazy(a):  # its indices and generator, not 2.8 GiB of rendered images
            h.update(f"{type(a).__name__}{a.shape}:{a.digest()}".encode())
            continue
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def is_binary(images_u8: np.ndarray) -> bool:
    """Every pixel is 0 or 255 (binary images are stored as 0/255)."""
    if is_lazy(images_u8):
        return images_u8.binary
    return bool(np.all((images_u8 == 0) | (images_u8 == 255)))


AUTO_VAL_FRACTION, AUTO_VAL_MAX = 6, 10_000


def resolve_val_size(val_size: int, num_train: int) -> int:
    """data.val_size = -1 (auto): a sixth of the training split, at most 10,000 (50k/10k
    of MNIST's 60k, the split of Larochelle's binarized MNIST). An explicit value is kept."""
    return min(AUTO_VAL_MAX, num_train // AUTO_VAL_FRACTION) if val_size == -1 else val_size


def _static_binarize(x: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.uniform(size=x.shape) < x / 255.0, 255, 0).astype(np.uint8)


def _describe(images: np.ndarray) -> str:
    return "x".join(map(str, images.shape[1:])) + f" {images.dtype}"


def _image_problem(name: str, raw: dict[str, tuple[np.ndarray, np.ndarray]]) -> str | None:
    """What is wrong with the loaded splits' images (shapes, dtype, size), or None."""
    train = raw["train"][0]
    for split, (x, _) in raw.items():
        if (x.shape[1:], x.dtype) != (train.shape[1:], train.dtype):
            return (
                f"train images are {_describe(train)} but {split} images are {_describe(x)} "
                "(every split must have one image shape, channel count and dtype)"
            )
    for split, (x, _) in raw.items():
        if x.ndim != 4 or x.dtype != np.uint8:
            return f"{split} images are {x.shape} {x.dtype}, expected [N, H, W, C] uint8"
        if len(x) == 0 and split != "val":  # a validation split may be empty (val_size=0)
            return f"the {split} split has 0 images, expected at least 1"
    expected = EXPECTED_SHAPES.get(name)
    if expected and train.shape[1:] != expected:
        return f"expected {'x'.join(map(str, expected))} uint8 images, found {_describe(train)}"
    return None


def load_dataset(data_config) -> Dataset:
    """Load `data_config.name`, check its images, split off validation data and binarize.

    Images that do not fit (splits that disagree, are empty, or differ from the named data
    set's EXPECTED_SHAPES) raise DataError here, before anything trains.
    """
    dc = data_config
    raw = load_images(dc.name, dc)
    problem = _image_problem(dc.name, raw)
    if problem:
        idx_fix = ""
        if dc.name in ("mnist", "fashion_mnist"):
            idx_fix = f"point --config.data.dir at the real {dc.name} IDX files, "
        raise DataError(
            f"data set '{dc.name}' from {image_origin(dc.name, dc)}: {problem}. Fix: {idx_fix}"
            f"prepare the tfds copy again (`python -m vae_jax.data.prepare {dc.name}`), or set "
            "--config.data.name to the data set these images are."
        )
    train_x, train_y = raw["train"]
    test_x, test_y = raw["test"]
    if "val" in raw:
        val_x, val_y = raw["val"]
    else:
        val_size = resolve_val_size(dc.val_size, len(train_x))
        if val_size >= len(train_x):
            raise DataError(
                f"config.data.val_size={dc.val_size} leaves no training data "
                f"({len(train_x)} examples); use a value below {len(train_x)}, or -1 (auto: "
                f"{resolve_val_size(-1, len(train_x))} here)"
            )
        perm = np.random.default_rng(dc.split_seed).permutation(len(train_x))
        val_idx, train_idx = np.sort(perm[:val_size]), np.sort(perm[val_size:])
        val_x, val_y = train_x[val_idx], train_y[val_idx]
        train_x, train_y = train_x[train_idx], train_y[train_idx]

    b = dc.binarize
    test_raw, train_raw, val_raw = test_x, train_x, val_x
    seed = dc.split_seed + 1
    if dc.name == "dsprites":  # binary by construction: every binarization is the identity,
        pass  # so none is applied and the Dataset records "none"
    elif b == "threshold":
        train_x, val_x, test_x = (
            np.where(a > 127, 255, 0).astype(np.uint8) for a in (train_x, val_x, test_x)
        )
    elif b == "static":
        train_x, val_x, test_x = (
            _static_binarize(a, seed + i) for i, a in enumerate((train_x, val_x, test_x))
        )
    elif b == "dynamic":  # train: resampled each step on device; eval splits: fixed draw
        val_x, test_x = _static_binarize(val_x, seed + 1), _static_binarize(test_x, seed + 2)
    description = {
        "none": "pixel intensities scaled to [0, 1], not binarized",
        "threshold": "binarized by thresholding at 0.5",
        "static": f"binarized once by Bernoulli sampling (numpy seed {seed}+split)",
        "dynamic": "train: Bernoulli(x/255) redrawn every step; val/test: one fixed "
        f"Bernoulli draw (numpy seeds {seed + 1}, {seed + 2})",
    }[b]
    if dc.name == "binarized_mnist":
        description = "Larochelle & Murray 2011 fixed binarization (tfds binarized_mnist)"
    if dc.name == "dsprites":
        source = train_x.source
        description = dsprites.description(source, len(train_x), len(val_x), len(test_x))
    return Dataset(
        train_x,
        train_y,
        val_x,
        val_y,
        test_x,
        test_y,
        dc.name,
        "none" if dc.name == "dsprites" else b,
        description,
        test_raw,
        train_raw,
        val_raw,
    )


def chunk_data(dataset: Dataset, rows) -> tuple[dict, np.ndarray] | None:
    """The host data of a chunk of steps, for a lazy training split: ({"image", "label"}
    of the examples that the index rows [..., B] name, rendered, one per entry of `rows`,
    in order), and `rows` renumbered into them (arange). Its size is that of `rows`, so a
    loop that always passes rows of one shape compiles its step once. None for a split in
    memory, which the loops place on the device whole, once."""
    if not is_lazy(dataset.train_x):
        return None
    rows = np.asarray(rows)
    flat = rows.reshape(-1)
    data = {"image": dataset.train_x.render(flat), "label": np.asarray(dataset.train_y)[flat]}
    return data, np.arange(flat.size, dtype=rows.dtype).reshape(rows.shape)


def member_chunk_data(dataset: Dataset, rows) -> tuple[dict, np.ndarray]:
    """`chunk_data` for a sweep's members, rows [M, ...]: members that read the same rows
    (those with one seed) share one rendered copy. Returns (data, idx [M, ...]) with
    data["image"][idx[m]] the images of rows[m]. The number of distinct members is fixed
    by the seeds, so the data's size, and the compiled step, stay the same chunk to chunk."""
    rows = np.asarray(rows)
    unique, inverse = np.unique(rows.reshape(len(rows), -1), axis=0, return_inverse=True)
    data, idx = chunk_data(dataset, unique.reshape(len(unique), *rows.shape[1:]))
    return data, idx[np.asarray(inverse).reshape(-1)]


def batch_indices(num_examples: int, batch_size: int, seed: int, start: int, num_steps: int):
    """Example indices for steps [start, start + num_steps): [num_steps, batch_size] int32.

    Epochs drop the last incomplete batch; epoch e is the permutation default_rng([seed, e]).
    """
    per_epoch = num_examples // batch_size
    out = np.empty((num_steps, batch_size), dtype=np.int32)
    cache: dict[int, np.ndarray] = {}
    for i, step in enumerate(range(start, start + num_steps)):
        epoch, pos = divmod(step, per_epoch)
        if epoch not in cache:
            cache[epoch] = np.random.default_rng([seed, epoch]).permutation(num_examples)
        out[i] = cache[epoch][pos * batch_size : (pos + 1) * batch_size]
    return out
