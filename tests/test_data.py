"""Data: the IDX reader (LeCun et al.'s (Fashion-)MNIST format), dataset loading and splits,
binarizations, the batch order as a pure function of (seed, step), and the tfds path."""

import gzip
import os
import socket

import numpy as np
import pytest

from tests.helpers import idx_bytes, tiny_config, write_idx
from vae_jax.data import DataError, batch_indices, load_dataset
from vae_jax.data.idx import IDX_FILES, read_idx


def _random_images(n, seed=0, side=28):
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side), dtype=np.uint8)


def _write_mnist_dir(directory, n_train=50, n_test=12, compress=True):
    rng = np.random.default_rng(1)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = _random_images(n, seed=n), rng.integers(0, 10, n, dtype=np.uint8)
        img_stem, lbl_stem = IDX_FILES[split]
        suffix = ".gz" if compress else ""
        write_idx(os.path.join(directory, img_stem + suffix), images, compress)
        write_idx(os.path.join(directory, lbl_stem + suffix), labels, compress)
        arrays[split] = (images, labels)
    return arrays


def _data_config(**fields):
    c = tiny_config().data
    for k, v in fields.items():
        c[k] = v
    return c


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_roundtrip(tmp_path, compress):
    images = _random_images(7)
    labels = np.arange(7, dtype=np.uint8)
    got = read_idx(write_idx(str(tmp_path / "img"), images, compress))
    assert got.dtype == np.uint8 and got.shape == (7, 28, 28)
    np.testing.assert_array_equal(got, images)
    np.testing.assert_array_equal(
        read_idx(write_idx(str(tmp_path / "lbl"), labels, compress)), labels
    )


def test_read_idx_errors_name_the_file(tmp_path):
    payload = idx_bytes(_random_images(3))
    bad = {
        "corrupt.gz": b"\x1f\x8b" + b"\x08\x00not a deflate stream at all" * 3,
        "truncated_gzip.gz": gzip.compress(payload)[:-40],
        "wrong_magic": b"\x01\x02" + payload[2:],
        "wrong_type": payload[:2] + b"\x0d" + payload[3:],
        "truncated_payload": payload[:-100],
        "truncated_header": payload[:9],
    }
    for name, content in bad.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError) as info:
            read_idx(str(path))
        assert str(path) in str(info.value), name
    with pytest.raises(DataError, match="does not exist"):
        read_idx(str(tmp_path / "absent"))


@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist_from_idx_dir(tmp_path, compress):
    arrays = _write_mnist_dir(str(tmp_path), compress=compress)
    ds = load_dataset(_data_config(name="mnist", dir=str(tmp_path), val_size=10, binarize="none"))
    assert ds.train_x.shape == (40, 28, 28, 1) and ds.val_x.shape == (10, 28, 28, 1)
    assert ds.test_x.shape == (12, 28, 28, 1) and ds.shape == (28, 28, 1)
    assert ds.train_x.dtype == np.uint8 and ds.train_y.dtype == np.int32
    np.testing.assert_array_equal(ds.test_x[..., 0], arrays["test"][0])
    np.testing.assert_array_equal(ds.test_y, arrays["test"][1])
    # Train and validation partition the original training split, labels kept with images.
    images, labels = arrays["train"]
    merged = np.concatenate([ds.train_x, ds.val_x])[..., 0]
    merged_y = np.concatenate([ds.train_y, ds.val_y])
    order = [int(np.flatnonzero((images == m).all(axis=(1, 2)))[0]) for m in merged]
    assert sorted(order) == list(range(50))
    np.testing.assert_array_equal(merged_y, labels[order])


def test_val_size_too_large(tmp_path):
    _write_mnist_dir(str(tmp_path))
    with pytest.raises(DataError, match="val_size"):
        load_dataset(_data_config(name="mnist", dir=str(tmp_path), val_size=50))


def test_missing_data_names_the_fixes(tmp_path):
    empty, tfds_empty = tmp_path / "idx", tmp_path / "tfds"
    empty.mkdir()
    tfds_empty.mkdir()
    for name, fixes in (
        ("mnist", ("data.dir", "tfds", "synthetic")),
        ("fashion_mnist", ("apt-get install", "tfds", "synthetic")),
    ):
        config = _data_config(name=name, dir=str(empty), tfds_dir=str(tfds_empty))
        with pytest.raises(DataError) as info:
            load_dataset(config)
        message = str(info.value)
        assert "\n" not in message
        for fix in fixes:
            assert fix in message, (name, fix, message)


def _synthetic(binarize, **fields):
    return load_dataset(_data_config(synthetic_size=120, val_size=20, binarize=binarize, **fields))


@pytest.mark.parametrize("binarize", ["threshold", "static"])
def test_fixed_binarizations_are_binary(binarize):
    ds = _synthetic(binarize)
    raw = _synthetic("none")
    for split in ("train_x", "val_x", "test_x"):
        values = set(np.unique(getattr(ds, split)).tolist())
        assert values <= {0, 255} and values == {0, 255}, (split, values)
    if binarize == "threshold":
        np.testing.assert_array_equal(ds.train_x, np.where(raw.train_x > 127, 255, 0))
    else:  # Bernoulli(x/255): the fraction of ones tracks the intensity
        np.testing.assert_allclose(ds.train_x.mean(), raw.train_x.mean(), rtol=0.05)
        again = _synthetic("static")
        np.testing.assert_array_equal(ds.train_x, again.train_x)
        np.testing.assert_array_equal(ds.test_x, again.test_x)
        other_seed = _synthetic("static", split_seed=5)
        assert not np.array_equal(ds.train_x, other_seed.train_x)


def test_dynamic_binarization_keeps_train_grayscale():
    ds, raw = _synthetic("dynamic"), _synthetic("none")
    np.testing.assert_array_equal(ds.train_x, raw.train_x)  # resampled on device per step
    assert len(np.unique(ds.train_x)) > 2
    for split in ("val_x", "test_x"):
        assert set(np.unique(getattr(ds, split)).tolist()) == {0, 255}
    np.testing.assert_array_equal(ds.test_x, _synthetic("dynamic").test_x)
    assert "dynamic" in ds.binarization


def test_batch_indices_epochs_are_permutations():
    n, batch = 23, 5  # 4 batches per epoch; 3 examples dropped per epoch
    idx = batch_indices(n, batch, seed=3, start=0, num_steps=12)
    assert idx.shape == (12, 5) and idx.dtype == np.int32
    epochs = idx.reshape(3, 20)
    for e in epochs:
        assert len(set(e.tolist())) == 20 and e.min() >= 0 and e.max() < n
    assert not np.array_equal(epochs[0], epochs[1])
    np.testing.assert_array_equal(idx, batch_indices(n, batch, 3, 0, 12))
    assert not np.array_equal(idx, batch_indices(n, batch, 4, 0, 12))
    for start, length in ((0, 3), (2, 5), (4, 4), (7, 5)):
        np.testing.assert_array_equal(
            batch_indices(n, batch, 3, start, length), idx[start : start + length]
        )
    # An exact multiple visits every example once per epoch.
    full = batch_indices(20, 5, 0, 0, 4)
    assert sorted(full.ravel().tolist()) == list(range(20))


def test_tfds_mock_data_without_network(monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from tensorflow_datasets.testing import mocking

    from vae_jax.data.sources import load_tfds_split

    def no_network(*args, **kwargs):
        raise AssertionError("the tfds path tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)

    # tfds 4.9.10's mock sets `__getitems__` as a plain partial on the mock instance (it is
    # not a magic method MagicMock binds), so the batched read passes the keys as `self`.
    # Patch in the intended behaviour; taking the keys from the last argument keeps this
    # working if tfds starts binding `self`.
    def getitems(*args, generator, serialized=False):
        assert not serialized
        return [generator[k] for k in args[-1]]

    monkeypatch.setattr(mocking, "_getitems", getitems)
    with tfds.testing.mock_data(num_examples=8):
        images, labels = load_tfds_split("mnist", "train", None)
    assert images.shape == (8, 28, 28, 1) and images.dtype == np.uint8
    assert labels.shape == (8,) and labels.dtype == np.int32
    assert images.max() > 1 and labels.min() >= 0 and labels.max() < 10
