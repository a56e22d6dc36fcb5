"""Data that does not fit is refused at load time with a one-line DataError naming the file
or folder, what was expected, what was found, and the fix: IDX headers (empty files, wrong
dimension counts, sizes, image/label counts), splits that disagree or are empty, and image
sizes a named data set cannot have."""

import gzip
import os
import struct

import numpy as np
import pytest

from vae_jax.config_lib import base_config
from vae_jax.data import DataError, load_dataset
from vae_jax.data.idx import IDX_FILES, load_idx_split, read_idx
from vae_jax.data.sources import EXPECTED_SHAPES


def _idx(array) -> bytes:
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def _write(path, content: bytes, compress=False) -> str:
    with open(path, "wb") as f:
        f.write(gzip.compress(content) if compress else content)
    return str(path)


def _write_split(directory, split, images, labels=None):
    img_stem, lbl_stem = IDX_FILES[split]
    labels = np.zeros(len(images), np.uint8) if labels is None else labels
    _write(os.path.join(directory, img_stem), _idx(images))
    _write(os.path.join(directory, lbl_stem), _idx(labels))


def _images(n, side=28):
    return np.random.default_rng(n).integers(0, 256, size=(n, side, side), dtype=np.uint8)


def _data_config(tmp_path, name="mnist"):
    c = base_config().data
    c.name, c.dir, c.source = name, str(tmp_path), "idx"
    c.tfds_dir = str(tmp_path / "no_tfds")
    c.val_size, c.binarize = 2, "none"
    return c


def _refused(call, *words) -> str:
    with pytest.raises(DataError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, (word, message)
    return message


def test_train_test_shape_mismatch_is_refused_before_training(tmp_path, monkeypatch):
    _write_split(tmp_path, "train", _images(10, side=28))
    _write_split(tmp_path, "test", _images(4, side=32))
    config = _data_config(tmp_path)
    words = ("'mnist'", str(tmp_path), "28x28x1", "32x32x1", "--config.data.dir")
    _refused(lambda: load_dataset(config), *words)

    from tests.helpers import tiny_config
    from vae_jax import experiment

    def no_training(*args, **kwargs):
        raise AssertionError("training started on data that does not fit")

    monkeypatch.setattr(experiment, "train_with_validation", no_training)
    run_config = tiny_config()
    run_config.data = config
    _refused(lambda: experiment.run(run_config, str(tmp_path / "run")), *words)


@pytest.mark.parametrize(
    "test_images, found",
    [
        (np.zeros((4, 28, 28, 3), np.uint8), "28x28x3 uint8"),
        (np.zeros((4, 28, 28, 1), np.float32), "28x28x1 float32"),
    ],
)
def test_train_test_channel_or_dtype_mismatch_is_refused(tmp_path, monkeypatch, test_images, found):
    from vae_jax.data import pipeline

    raw = {"train": (np.zeros((10, 28, 28, 1), np.uint8), np.zeros(10, np.int32))}
    raw["test"] = (test_images, np.zeros(4, np.int32))
    monkeypatch.setattr(pipeline, "load_images", lambda name, dc: raw)
    config = _data_config(tmp_path)
    _refused(lambda: load_dataset(config), "'mnist'", "28x28x1 uint8", found, "test images")


def test_split_with_zero_images_is_refused(tmp_path):
    _write_split(tmp_path, "train", _images(10))
    _write_split(tmp_path, "test", _images(0))
    config = _data_config(tmp_path)
    _refused(lambda: load_dataset(config), "'mnist'", str(tmp_path), "test split has 0 images")


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_named_set_with_wrong_image_size_is_refused(tmp_path, name):
    assert EXPECTED_SHAPES[name] == (28, 28, 1)
    _write_split(tmp_path, "train", _images(10, side=32))
    _write_split(tmp_path, "test", _images(4, side=32))
    config = _data_config(tmp_path, name)
    words = (f"'{name}'", str(tmp_path), "expected 28x28x1 uint8", "found 32x32x1 uint8")
    _refused(lambda: load_dataset(config), *words, "--config.data.dir", "--config.data.name")


@pytest.mark.parametrize("compress", [False, True])
def test_empty_idx_file_is_refused(tmp_path, compress):
    path = _write(tmp_path / "empty", b"", compress)
    assert (os.path.getsize(path) == 0) != compress
    _refused(lambda: read_idx(path), path, "is empty", "0 bytes", "dataset-fashion-mnist")


@pytest.mark.parametrize(
    "stem, array, expected, found",
    [
        ("train-images-idx3-ubyte", np.zeros((2, 2, 28, 28)), 3, 4),
        ("train-labels-idx1-ubyte", np.zeros((10, 1)), 1, 2),
    ],
)
def test_wrong_dimension_count_is_refused(tmp_path, stem, array, expected, found):
    _write_split(tmp_path, "train", _images(10))
    path = _write(tmp_path / stem, _idx(array))
    words = (path, f"declares {found} dimensions", f"expected {expected}", "download")
    _refused(lambda: load_idx_split(str(tmp_path), "train"), *words)
    _refused(lambda: read_idx(path, ndim=expected), *words)


def test_declared_shape_that_does_not_match_the_size_is_refused(tmp_path):
    path = _write(tmp_path / "images", _idx(_images(3))[:-100])
    words = (path, "(3, 28, 28)", "2352 bytes", "2252 bytes", "dataset-fashion-mnist")
    _refused(lambda: read_idx(path, ndim=3), *words)


def test_image_and_label_count_mismatch_is_refused(tmp_path):
    _write_split(tmp_path, "train", _images(10), labels=np.zeros(9, np.uint8))
    img, lbl = (str(tmp_path / stem) for stem in IDX_FILES["train"])
    words = (f"{img} holds 10 images", f"{lbl} holds 9 labels", "download")
    _refused(lambda: load_idx_split(str(tmp_path), "train"), *words)
