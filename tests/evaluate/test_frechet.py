"""Fréchet distance (Heusel et al. 2017, eq. 6): closed forms and invariants, and the feature
classifier it runs on (training, caching, refusal of unlabelled data)."""

import json
import os
import shutil
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from flax import nnx

from vae_jax.config_lib import apply_runlocal, base_config
from vae_jax.data import load_dataset
from vae_jax.distributions import DiagGaussian
from vae_jax.evaluate import feature_classifier as fc
from vae_jax.evaluate.frechet import (
    feature_frechet_distance,
    frechet_distance,
    gaussian_stats,
    sample_quality,
)
from vae_jax.likelihoods import gaussian
from vae_jax.model import VAE, split_model
from vae_jax.nets import classifier as classifier_net
from vae_jax.priors.standard_normal import StandardNormal

QUICK = dict(num_steps=200, batch_size=64)


def _random_spd(rng, f):
    a = rng.normal(size=(f, f))
    return a @ a.T / f + 0.1 * np.eye(f)


def test_fd_of_identical_stats_is_zero():
    feats = np.random.default_rng(0).normal(size=(500, 16)) * 3.0 + 1.0
    mu, sigma = gaussian_stats(feats)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6


def test_fd_same_covariance_is_squared_mean_distance():
    rng = np.random.default_rng(1)
    sigma = _random_spd(rng, 8)
    mu1, mu2 = rng.normal(size=8), rng.normal(size=8)
    expected = float(np.sum((mu1 - mu2) ** 2))
    np.testing.assert_allclose(frechet_distance(mu1, sigma, mu2, sigma), expected, rtol=1e-9)


def test_fd_diagonal_closed_form():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 4.0, size=6), rng.uniform(0.1, 4.0, size=6)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_fd_is_symmetric_and_matches_sqrtm_oracle():
    rng = np.random.default_rng(3)
    s1, s2 = _random_spd(rng, 10), _random_spd(rng, 10)  # do not commute
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    d12, d21 = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    np.testing.assert_allclose(d12, d21, rtol=1e-9)
    # The pytorch-fid formula: Tr(Σ1 + Σ2 − 2 sqrtm(Σ1 Σ2)).
    oracle = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    np.testing.assert_allclose(d12, oracle, rtol=1e-8)


def test_fd_finite_for_singular_covariances():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 20))  # N < F: rank-4 covariances
    y = rng.normal(size=(5, 20)) + 1.0
    d = frechet_distance(*gaussian_stats(x), *gaussian_stats(y))
    assert np.isfinite(d) and d > 0
    mu, sigma = gaussian_stats(x)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-9


def test_gaussian_stats_matches_numpy():
    x = np.random.default_rng(5).normal(size=(50, 3)).astype(np.float32)
    mu, sigma = gaussian_stats(x)
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(x.astype(np.float64).T), rtol=1e-12)
    assert mu.dtype == sigma.dtype == np.float64


@pytest.fixture(scope="module")
def synthetic():
    c = apply_runlocal(base_config())
    c.data.name, c.data.val_size, c.data.binarize = "synthetic", 200, "none"
    return c, load_dataset(c.data)


@pytest.fixture(scope="module")
def cached(synthetic, tmp_path_factory):
    """A classifier trained once on synthetic data and cached; (classifier, cache folder)."""
    _, ds = synthetic
    path = str(tmp_path_factory.mktemp("clf") / "classifier")
    clf = fc.get_classifier(
        ds.train_x,
        ds.train_y,
        cache_path=path,
        key=jax.random.key(0),
        dataset_name="synthetic",
        test_images_u8=ds.test_x,
        test_labels=ds.test_y,
        **QUICK,
    )
    return clf, path


def test_classifier_trains_well_above_chance(cached, synthetic):
    clf, _ = cached
    _, ds = synthetic
    acc = fc.classifier_accuracy(clf, ds.test_x, ds.test_y, batch_size=128)
    assert acc > 0.6, acc  # 10 classes: chance is 0.1
    assert clf.info["test_accuracy"] == acc
    feats = fc.features(clf, ds.test_x[:37], batch_size=16)  # padded last batch
    assert feats.shape == (37, 128)
    np.testing.assert_allclose(feats, fc.features(clf, ds.test_x[:37], batch_size=64), atol=1e-5)
    as_float = ds.test_x[:37].astype(np.float32) / 255.0  # floats in [0, 1] are read as-is
    np.testing.assert_allclose(feats, fc.features(clf, as_float, batch_size=64), atol=1e-5)


def test_cache_round_trip_loads_without_training(cached, synthetic, monkeypatch):
    clf, path = cached
    _, ds = synthetic
    with open(fc.record_path(path)) as f:
        record = json.load(f)
    assert record["dataset"] == "synthetic" and record["settings"]["num_steps"] == 200
    assert record["fingerprint"] == fc.data_fingerprint(ds.train_x, ds.train_y)
    assert os.path.isdir(os.path.join(path, "checkpoints", "200"))  # an orbax checkpoint

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the cache was valid")

    monkeypatch.setattr(fc, "train_classifier", no_training)
    loaded = fc.get_classifier(
        ds.train_x, ds.train_y, cache_path=path, key=jax.random.key(0), **QUICK
    )
    np.testing.assert_array_equal(
        fc.features(loaded, ds.test_x[:50]), fc.features(clf, ds.test_x[:50])
    )


def test_stale_or_corrupt_cache_retrains(cached, synthetic, tmp_path, monkeypatch):
    _, ds = synthetic
    path = str(tmp_path / "stale")  # a copy: the shared cache stays valid
    shutil.copytree(cached[1], path)
    calls = []

    def fake_train(images_u8, labels, key, **kwargs):
        calls.append(len(images_u8))
        graphdef, params, _ = split_model(classifier_net.build(images_u8.shape[1:], 10, key))
        return graphdef, params, {"train_seconds": 0.0, "final_train_loss": 2.3}

    monkeypatch.setattr(fc, "train_classifier", fake_train)
    with pytest.warns(UserWarning, match="other data or settings"):  # different key
        fc.get_classifier(ds.train_x, ds.train_y, cache_path=path, key=jax.random.key(1), **QUICK)

    corrupt = str(tmp_path / "corrupt")  # a valid record over a damaged checkpoint
    shutil.copytree(cached[1], corrupt)
    for p in sorted(Path(corrupt, "checkpoints").rglob("*")):
        if p.is_file() and p.stat().st_size > 0 and p.name != "_CHECKPOINT_METADATA":
            p.write_bytes(b"not what orbax wrote")
    with pytest.warns(UserWarning, match="corrupt is unreadable"):
        fc.get_classifier(
            ds.train_x, ds.train_y, cache_path=corrupt, key=jax.random.key(0), **QUICK
        )
    truncated = str(tmp_path / "truncated")  # a half-written record
    shutil.copytree(cached[1], truncated)
    Path(fc.record_path(truncated)).write_text("{truncated")
    with pytest.warns(UserWarning, match="truncated is unreadable"):
        fc.get_classifier(
            ds.train_x, ds.train_y, cache_path=truncated, key=jax.random.key(0), **QUICK
        )
    assert calls == [len(ds.train_x)] * 3
    fc.load_classifier(corrupt)  # the retrained classifier replaced the damaged files
    assert not list(Path(tmp_path).rglob("*.tmp"))


def test_unlabelled_data_is_refused(tmp_path):
    images = np.zeros((10, 28, 28, 1), np.uint8)
    with pytest.raises(ValueError, match="unlabelled"):
        fc.get_classifier(
            images,
            np.full((10,), -1, np.int32),
            cache_path=str(tmp_path / "c.npz"),
            key=jax.random.key(0),
        )
    assert not os.listdir(tmp_path)


class _IdentityEncoder(nnx.Module):
    """q(z|x) = N(flatten(x), I): μ(x) is the image itself."""

    def __call__(self, x):
        loc = x.reshape(x.shape[0], -1)
        return DiagGaussian(loc, jnp.zeros_like(loc))


class _IdentityDecoder(nnx.Module):
    def __init__(self, shape):
        self.shape = shape

    def __call__(self, z):
        return z.reshape(*z.shape[:-1], *self.shape)


def _identity_vae(shape):
    """Reconstructions are the encoded inputs exactly; samples are N(0, I) pixel noise."""
    d = int(np.prod(shape))
    lik = gaussian.make()
    return nnx.split(
        VAE(_IdentityEncoder(), _IdentityDecoder(shape), StandardNormal(d), "gaussian", lik)
    )


def test_sample_quality_tells_samples_from_reconstructions(cached, synthetic):
    """An identity autoencoder reconstructs perfectly and samples pure noise, so a swap of
    the two distances, or reconstructions of the wrong images, cannot pass."""
    clf, _ = cached
    _, ds = synthetic
    graphdef, params = _identity_vae(ds.shape)
    test, val = ds.test_x[:300], ds.val_x
    out = sample_quality(
        graphdef, params, clf, test, jax.random.key(1), batch_size=150, reference_images_u8=val
    )
    assert out["num_samples"] == 300 and out["num_reference_examples"] == 200
    assert out["feature_dim"] == 128 and out["decoder_output"] == "mean"
    assert "not Inception FID" in out["note"] and "synthetic" in out["note"]
    assert "small_sample_note" not in out  # 300 images > 128 feature dimensions
    assert abs(out["fd_reconstructions"]) < 1e-6 * out["fd_samples"]  # E[x|μ(x)] = x
    floor = out["fd_reference_test_vs_val"]
    assert 0 < floor < 0.2 * out["fd_samples"]  # real vs held-out real: the noise floor
    # The encoder sees `encoder_inputs_u8` (e.g. the binary draw) while the real side stays
    # the given test images: here the inputs are the negatives, and recon = negatives.
    negatives = 255 - test
    swapped = sample_quality(
        graphdef, params, clf, test, jax.random.key(1), encoder_inputs_u8=negatives, batch_size=150
    )
    np.testing.assert_allclose(
        swapped["fd_reconstructions"], feature_frechet_distance(clf, test, negatives), rtol=1e-6
    )
    np.testing.assert_allclose(swapped["fd_samples"], out["fd_samples"], rtol=1e-9)


def test_noise_floor_is_a_random_draw_from_the_held_out_pool(cached, synthetic):
    """With more validation images than samples, the floor is a random subset chosen by the
    key (so two keys give two subsets and two values), never a fixed prefix."""
    clf, _ = cached
    _, ds = synthetic
    graphdef, params = _identity_vae(ds.shape)
    test = ds.test_x[:100]
    outs = [
        sample_quality(graphdef, params, clf, test, jax.random.key(k), reference_images_u8=ds.val_x)
        for k in (1, 2)
    ]
    floors = [out["fd_reference_test_vs_val"] for out in outs]
    assert "100 images for 128 feature dimensions" in outs[0]["small_sample_note"]
    prefix = feature_frechet_distance(clf, test, ds.val_x[:100])
    assert floors[0] != floors[1] and prefix not in floors
    assert all(0 < f < 1e3 for f in floors)
