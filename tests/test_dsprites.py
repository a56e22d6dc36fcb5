"""dSprites (vae_jax/data/dsprites.py): the published factor grid and index, the rendered
images (binary, inside the frame, integer translations of 720 base sprites), the lazy
training split, the splits of `load_dataset`, and training through the lazy split."""

import jax
import numpy as np
import pytest
from jax.experimental.compilation_cache import compilation_cache

from tests.helpers import tiny_config, tree_equal
from vae_jax.config_check import validate_config
from vae_jax.data import DATASETS, DataError, load_dataset
from vae_jax.data import dsprites as ds
from vae_jax.data.ground_truth import GroundTruthData
from vae_jax.data.pipeline import chunk_data, is_binary, is_lazy, member_chunk_data
from vae_jax.data.sources import CLASS_NAMES, EXPECTED_SHAPES
from vae_jax.errors import ConfigError

SOURCE = ds.procedural()
CORNERS = [(0, 0), (0, 31), (31, 0), (31, 31)]


def _factors(*rows):
    return np.array(rows, dtype=np.int64).reshape(-1, 5)


def _image(shape, scale, orientation, x, y):
    return SOURCE.observations(_factors([shape, scale, orientation, x, y]))[0, ..., 0]


@pytest.fixture(scope="module")
def dataset():
    config = tiny_config(**{"data.name": "dsprites", "data.val_size": -1})
    return load_dataset(config.data)


def test_factor_grid_is_the_published_one():
    assert ds.FACTOR_SIZES == (3, 6, 40, 32, 32)
    assert ds.FACTOR_NAMES == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert ds.LATENTS_SIZES == (1, 3, 6, 40, 32, 32)
    bases = np.cumprod(ds.LATENTS_SIZES[::-1])[::-1]
    assert ds.LATENTS_BASES == (*bases[1:], 1) and ds.NUM_IMAGES == np.prod(ds.LATENTS_SIZES)
    assert ds.LATENTS_BASES == (737280, 245760, 40960, 1024, 32, 1)
    np.testing.assert_allclose(ds.SCALES, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert ds.ORIENTATIONS[0] == 0 and ds.ORIENTATIONS[-1] == pytest.approx(2 * np.pi)
    assert len(ds.ORIENTATIONS) == 40 and len(ds.POSITIONS) == 32
    assert SOURCE.factor_sizes == ds.FACTOR_SIZES and isinstance(SOURCE, GroundTruthData)


def test_index_and_factors_round_trip():
    assert ds.factors_of([0]).tolist() == [[0, 0, 0, 0, 0]]
    assert ds.factors_of([737_279]).tolist() == [[2, 5, 39, 31, 31]]
    assert ds.factors_of([1, 32, 1024]).tolist() == [
        [0, 0, 0, 0, 1],  # posY fastest
        [0, 0, 0, 1, 0],
        [0, 0, 1, 0, 0],
    ]
    corners = np.array(np.meshgrid(*[[0, s - 1] for s in ds.FACTOR_SIZES])).reshape(5, -1).T
    rng = np.random.default_rng(0)
    for factors in (corners, SOURCE.sample_factors(1000, rng)):
        index = ds.index_of(factors)
        assert index.min() >= 0 and index.max() < ds.NUM_IMAGES
        np.testing.assert_array_equal(ds.factors_of(index), factors)
    index = rng.integers(0, ds.NUM_IMAGES, 1000)
    np.testing.assert_array_equal(ds.index_of(ds.factors_of(index)), index)
    assert sorted(ds.index_of(corners).tolist())[::31] == [0, 737_279]
    with pytest.raises(ValueError, match="out of range"):
        ds.index_of(_factors([3, 0, 0, 0, 0]))
    with pytest.raises(ValueError):
        ds.factors_of([ds.NUM_IMAGES])


def test_images_are_binary_and_never_clipped_at_the_corners():
    base = ds.base_sprites()
    assert base.shape == (3, 6, 40, ds.CANVAS, ds.CANVAS) and set(np.unique(base)) == {0, 1}
    orientations = (0, 5, 10, 15, 20, 27, 39)
    rows = [[shape, 5, o, x, y] for shape in range(3) for o in orientations for x, y in CORNERS]
    images = SOURCE.observations(_factors(*rows))
    assert images.shape == (len(rows), 64, 64, 1) and images.dtype == np.uint8
    assert is_binary(images)
    for (shape, scale, o, _, _), image in zip(rows, images, strict=True):
        count = int((image > 0).sum())
        assert count > 0 and count == int(base[shape, scale, o].sum())  # nothing cut off
    # A random batch: binary, one sprite each.
    sample = SOURCE.images(np.random.default_rng(1).integers(0, ds.NUM_IMAGES, 2000))
    assert is_binary(sample) and (sample.reshape(2000, -1).max(axis=1) == 255).all()


def test_position_is_a_one_pixel_translation():
    rng = np.random.default_rng(2)
    for shape, scale, o, x, y in SOURCE.sample_factors(30, rng):
        x, y = min(x, 30), min(y, 30)
        image = _image(shape, scale, o, x, y)
        right, down = _image(shape, scale, o, x + 1, y), _image(shape, scale, o, x, y + 1)
        np.testing.assert_array_equal(right, np.roll(image, 1, axis=1))  # pos_x: columns
        np.testing.assert_array_equal(down, np.roll(image, 1, axis=0))  # pos_y: rows
        assert image[:, -1].max() == 0 and image[-1].max() == 0  # the roll wrapped nothing


def test_orientation_scale_and_shape():
    for shape in range(3):
        for scale in range(6):
            np.testing.assert_array_equal(  # 0 and 2π: one image
                _image(shape, scale, 0, 9, 20), _image(shape, scale, 39, 9, 20)
            )
        counts = [(_image(shape, s, 0, 16, 16) > 0).sum() for s in range(6)]
        assert (np.diff(counts) > 0).all(), counts
    # Axis-aligned squares are exactly 5..10 pixels wide (no coverage ties).
    assert [(_image(0, s, 0, 3, 3) > 0).sum() for s in range(6)] == [25, 36, 49, 64, 81, 100]
    for scale in range(6):
        a, b, c = (_image(s, scale, 0, 10, 10) for s in range(3))
        assert not (np.array_equal(a, b) or np.array_equal(b, c) or np.array_equal(a, c))
    # A rotation moves a non-square shape; the heart's lobes are up at 0 and down at π.
    assert not np.array_equal(_image(1, 5, 0, 10, 10), _image(1, 5, 10, 10, 10))
    for orientation, lobes_up in ((0, True), (20, False)):
        heart = ds.base_sprites()[2, 5, orientation]
        top, bottom = heart[: ds.CANVAS // 2].sum(), heart[ds.CANVAS // 2 :].sum()
        assert (top > bottom) == lobes_up


def test_observations_are_the_images_of_their_index():
    factors = SOURCE.sample_factors(64, np.random.default_rng(3))
    np.testing.assert_array_equal(
        SOURCE.observations(factors, np.random.default_rng(0)),
        SOURCE.images(ds.index_of(factors)),
    )


def test_lazy_view():
    indices = np.random.default_rng(4).permutation(ds.NUM_IMAGES)[:500]
    view = ds.SpriteImages(indices)
    assert len(view) == 500 and view.shape == (500, 64, 64, 1)
    assert view.dtype == np.uint8 and view.ndim == 4 and is_lazy(view) and is_binary(view)
    picks = np.array([3, 0, 499, 3])
    np.testing.assert_array_equal(view[picks], SOURCE.images(indices[picks]))
    np.testing.assert_array_equal(view[7], SOURCE.images(indices[7:8])[0])
    np.testing.assert_array_equal(view[10:20], SOURCE.images(indices[10:20]))
    np.testing.assert_array_equal(view[10:20, ..., 0], SOURCE.images(indices[10:20])[..., 0])
    mask = np.zeros(500, bool)
    mask[::50] = True
    np.testing.assert_array_equal(view[mask], SOURCE.images(indices[mask]))
    sub = view.take(np.arange(100, 200))
    assert is_lazy(sub) and len(sub) == 100 and np.array_equal(sub[5], view[105])
    np.testing.assert_array_equal(sub.factors(), ds.factors_of(indices[100:200]))
    np.testing.assert_array_equal(view.render([[1, 2], [3, 4]]), view[[1, 2, 3, 4]])
    assert view.digest() == ds.SpriteImages(indices).digest() != sub.digest()
    huge = ds.SpriteImages(np.arange(ds.NUM_IMAGES))
    for materialise in (lambda: huge[:], lambda: np.asarray(huge), lambda: huge[:200_000]):
        with pytest.raises(ValueError, match="refusing to render"):
            materialise()
    assert huge[-1].shape == (64, 64, 1) and huge.take(slice(0, 10))[:].shape[0] == 10


def test_load_dataset_splits(dataset, monkeypatch):
    d = dataset
    assert d.name == "dsprites" and d.shape == (64, 64, 1)
    assert len(d.train_x) == ds.NUM_IMAGES - 20_000 and len(d.val_x) == len(d.test_x) == 10_000
    assert is_lazy(d.train_x) and not is_lazy(d.val_x) and not is_lazy(d.test_x)
    assert d.binarization == "none" and d.binary_inputs and is_binary(d.test_x)
    assert "same factor grid" in d.description and "no held-out" in d.description
    assert isinstance(d.ground_truth, GroundTruthData) and d.ground_truth.factor_sizes[0] == 3
    train, val, test = ds.split_indices(0)
    assert len(np.unique(np.concatenate([train, val, test]))) == ds.NUM_IMAGES  # disjoint
    np.testing.assert_array_equal(d.train_x.indices, train)
    np.testing.assert_array_equal(d.test_x[:50], SOURCE.images(test[:50]))
    np.testing.assert_array_equal(d.val_x[-50:], SOURCE.images(val[-50:]))
    assert not np.all(np.diff(test) > 0)  # random order: a prefix is a uniform sample
    np.testing.assert_array_equal(d.train_y, ds.factors_of(train)[:, 0])
    np.testing.assert_array_equal(d.test_y, ds.factors_of(test)[:, 0])
    assert CLASS_NAMES["dsprites"] == ("square", "ellipse", "heart")
    assert EXPECTED_SHAPES["dsprites"] == (64, 64, 1) and "dsprites" in DATASETS

    # The fingerprint renders none of the training images, and is stable.
    def no_rendering(*args):
        raise AssertionError("the training split was rendered")

    monkeypatch.setattr(ds.SpriteImages, "render", no_rendering)
    monkeypatch.setattr(ds.SpriteImages, "__getitem__", no_rendering)
    first = d.fingerprint()
    assert first == d.fingerprint()
    other = d._replace(train_x=ds.SpriteImages(train[1:]))
    assert other.fingerprint() != first


def test_splits_are_deterministic_from_the_split_seed():
    a, b, c = ds.split_indices(0), ds.split_indices(0), ds.split_indices(1)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[2], c[2])
    train, val, test = ds.split_indices(5, val_size=0)
    assert len(val) == 0 and len(test) == 10_000 and len(train) == ds.NUM_IMAGES - 10_000
    assert len(ds.split_indices(5, val_size=123)[1]) == 123
    with pytest.raises(DataError, match="val_size"):
        ds.split_indices(0, val_size=ds.NUM_IMAGES - 10_000)


def test_empty_validation_split_loads():
    config = tiny_config(**{"data.name": "dsprites", "data.val_size": 0})
    d = load_dataset(config.data)
    assert len(d.val_x) == 0 and len(d.train_x) == ds.NUM_IMAGES - 10_000


def test_sources(tmp_path):
    config = tiny_config(**{"data.name": "dsprites", "data.source": "procedural"})
    validate_config(config)
    config.data.name = "mnist"
    with pytest.raises(ConfigError, match="only dsprites"):
        validate_config(config)
    config.data.name = "dsprites"
    config.data.tfds_dir = str(tmp_path)  # no tfds build there
    config.data.source = "idx"
    with pytest.raises(DataError, match="no IDX files"):
        load_dataset(config.data)
    config.data.source = "tfds"
    with pytest.raises(DataError, match="no prepared tfds dsprites build"):
        load_dataset(config.data)


def test_tfds_examples_go_to_their_published_index():
    """The tfds reader's placement of examples by their labels (no tfds build is needed)."""
    rng = np.random.default_rng(5)
    index = rng.choice(ds.NUM_IMAGES, 40, replace=False)
    factors = ds.factors_of(index)
    examples = [
        {"image": SOURCE.images([i])[0] // 255, **dict(zip(ds.TFDS_LABELS, f, strict=True))}
        for i, f in zip(index, factors, strict=True)
    ]
    out = np.zeros((ds.NUM_IMAGES, 64, 64, 1), np.uint8)
    seen = np.zeros(ds.NUM_IMAGES, bool)
    ds.place_examples(out, seen, examples[:25])
    ds.place_examples(out, seen, examples[25:])
    assert seen.sum() == 40 and seen[index].all()
    np.testing.assert_array_equal(out[index], SOURCE.images(index))  # {0, 1} -> {0, 255}
    with pytest.raises(DataError, match="twice"):
        ds.place_examples(out, seen, examples[:1])
    array = ds.DSpritesArray(out, "test")
    np.testing.assert_array_equal(array.observations(factors[:5]), SOURCE.images(index[:5]))


def test_chunk_data_renders_the_rows():
    view = ds.SpriteImages(np.arange(1000, 1300))
    d = load_dataset(tiny_config().data)  # a split in memory: no chunks
    assert chunk_data(d, np.zeros((2, 4), np.int32)) is None
    d = d._replace(train_x=view, train_y=np.arange(300, dtype=np.int32))
    rows = np.array([[5, 7, 5], [299, 0, 1]], np.int32)
    data, renumbered = chunk_data(d, rows)
    np.testing.assert_array_equal(renumbered, np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(data["image"], view[rows.ravel()])
    np.testing.assert_array_equal(data["label"], rows.ravel())


def test_members_that_share_rows_share_one_rendered_copy():
    """A sweep's members [A, B, A] (seeds 0, 1, 0): two copies rendered, and every member's
    renumbered rows pick its own images."""
    view = ds.SpriteImages(np.arange(2000, 2400))
    d = load_dataset(tiny_config().data)
    d = d._replace(train_x=view, train_y=np.arange(400, dtype=np.int32))
    a, b = np.array([[3, 9], [4, 1]], np.int32), np.array([[7, 7], [0, 399]], np.int32)
    rows = np.stack([a, b, a])  # [M = 3, steps, batch]
    data, idx = member_chunk_data(d, rows)
    assert data["image"].shape[0] == 8 and idx.shape == rows.shape  # 2 members' worth
    for m in range(3):
        np.testing.assert_array_equal(
            data["image"][idx[m]], view[rows[m].ravel()].reshape(*rows[m].shape, 64, 64, 1)
        )
        np.testing.assert_array_equal(data["label"][idx[m]], rows[m])
    np.testing.assert_array_equal(idx[0], idx[2])


@pytest.fixture
def compilation_cache_dir(tmp_path):
    """A persistent XLA cache, so that two runs of one program compile it once (as in
    tests/test_train.py); switched off again afterwards."""
    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    saved = {name: getattr(jax.config, name) for name in names}
    compilation_cache.reset_cache()
    jax.config.update(names[0], str(tmp_path / "xla_cache"))
    jax.config.update(names[1], 0.3)
    yield
    for name, value in saved.items():
        jax.config.update(name, value)
    compilation_cache.reset_cache()


def test_training_on_a_lazy_split_equals_training_on_its_array(tmp_path, compilation_cache_dir):
    """The train loop renders each chunk of a lazy split (padded to log_every steps, the
    last chunk short here); it must train exactly as on the same images in memory. The
    split holds log_every × batch_size = 32 images, the size of a rendered chunk, so both
    runs are one program (compiled once, through the cache)."""
    from vae_jax.train import train

    config = tiny_config(
        **{
            "data.name": "dsprites",
            "data.batch_size": 8,
            "train.num_steps": 6,
            "train.log_every": 4,
            "train.checkpoint_every": 8,  # saved once, at the end
            "train.eval_every": 0,
        }
    )
    d = load_dataset(config.data)
    view = d.train_x.take(np.arange(0, len(d.train_x), 22_415))  # 32 images
    lazy = d._replace(train_x=view, train_y=d.train_y[: len(view)])
    in_memory = lazy._replace(train_x=view[:])
    _, lazy_state = train(config, str(tmp_path / "lazy"), lazy)
    _, array_state = train(config, str(tmp_path / "array"), in_memory)
    assert tree_equal(lazy_state, array_state)
