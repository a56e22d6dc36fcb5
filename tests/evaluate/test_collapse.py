"""Collapse diagnostics on constructed encoders: dimensions whose posterior ignores x are
inactive with the closed-form KL, I(x; z) matches closed forms, and the verdicts read right."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from vae_jax.distributions import DiagGaussian
from vae_jax.evaluate.active_units import active_units, mean_kl_per_dim, posterior_statistics
from vae_jax.evaluate.collapse import collapse_report, diagnose_collapse
from vae_jax.evaluate.mutual_info import mutual_information
from vae_jax.likelihoods import bernoulli
from vae_jax.model import VAE
from vae_jax.priors.standard_normal import StandardNormal

SHAPE = (4, 4, 1)
CONST_LOC = np.array([0.0, 0.1], np.float32)  # the two dimensions that ignore x


class _PartlyConstantEncoder(nnx.Module):
    """loc = [x A, c]: the first dims read x, the last ones are constant (σ = 1 there)."""

    def __init__(self, a, c):
        self.a, self.c = nnx.Param(jnp.asarray(a)), nnx.Param(jnp.asarray(c))

    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)  # [B, P]
        const = jnp.broadcast_to(self.c[None], (h.shape[0], self.c.shape[0]))
        loc = jnp.concatenate([h @ self.a, const], axis=-1)  # [B, D]
        log_scale = jnp.concatenate(
            [jnp.full((h.shape[0], self.a.shape[1]), -1.0), jnp.zeros_like(const)], axis=-1
        )
        return DiagGaussian(loc, log_scale)


class _LinearDecoder(nnx.Module):
    def __init__(self, d, *, rngs):
        self.linear = nnx.Linear(d, math.prod(SHAPE), rngs=rngs)

    def __call__(self, z):
        return self.linear(z).reshape(*z.shape[:-1], *SHAPE)


@pytest.fixture(scope="module")
def model_and_images():
    a = np.random.default_rng(0).normal(size=(math.prod(SHAPE), 3)).astype(np.float32)
    d = a.shape[1] + len(CONST_LOC)
    decoder = _LinearDecoder(d, rngs=nnx.Rngs(0))
    model = VAE(
        _PartlyConstantEncoder(a, CONST_LOC), decoder, StandardNormal(d), "bernoulli",
        bernoulli.make(),
    )  # fmt: skip
    images = np.random.default_rng(1).integers(0, 256, (50, *SHAPE), dtype=np.uint8)
    return model, images


def test_constant_dimensions_are_inactive_with_closed_form_kl(model_and_images):
    model, images = model_and_images
    graphdef, params = nnx.split(model)
    stats = posterior_statistics(graphdef, params, images, batch_size=16)  # padded last batch
    assert {k: v.shape for k, v in stats.items()} == {
        "loc": (50, 5),
        "log_scale": (50, 5),
        "kl_per_dim": (50, 5),
    }
    q = model.posterior(jnp.asarray(images, jnp.float32) / 255.0)
    np.testing.assert_allclose(stats["loc"], q.loc, rtol=1e-5, atol=1e-5)
    count, mask, variances = active_units(stats["loc"], threshold=0.01)
    assert count == 3 and mask.tolist() == [True, True, True, False, False]
    np.testing.assert_allclose(variances[3:], 0.0, atol=1e-12)
    assert np.all(variances[:3] > 0.1)
    # σ = 1 and μ = c on the constant dims: KL = ½ c² exactly.
    np.testing.assert_allclose(mean_kl_per_dim(stats["kl_per_dim"])[3:], 0.5 * CONST_LOC**2)


def test_mutual_information_is_zero_when_the_posterior_ignores_x():
    n, d = 1000, 4
    loc = np.broadcast_to(np.array([0.3, -1.0, 0.0, 2.0], np.float32), (n, d))
    log_scale = np.full((n, d), -0.5, np.float32)
    mi = mutual_information(loc, log_scale, jax.random.key(0))
    assert abs(mi) < 4 * math.sqrt(d / 2 / n)  # Monte Carlo standard error of the estimator


def test_mutual_information_matches_gaussian_closed_form_and_is_chunk_independent():
    """μ_n ~ N(0, s²I), σ = 1: q(z) = N(0, (1 + s²) I), so I(x; z) = ½ D log(1 + s²)."""
    n, d, s = 2000, 2, 1.0
    loc = s * np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    log_scale = np.zeros((n, d), np.float32)
    key = jax.random.key(1)
    mi = mutual_information(loc, log_scale, key, chunk_size=128)  # 2000 = 15·128 + 80
    assert mi == pytest.approx(0.5 * d * math.log(1 + s**2), abs=0.08)
    assert mi == pytest.approx(mutual_information(loc, log_scale, key, chunk_size=n), rel=1e-5)


def test_mutual_information_reaches_log_n_for_separated_posteriors():
    """With disjoint posteriors q̂(z_m) = q(z_m|x_m) / N, so I = log N up to the Monte Carlo
    error of log q(z_m|x_m) around −H, whose standard error is sqrt(D / 2N)."""
    n, d = 2000, 4
    loc = 10.0 * np.random.default_rng(0).normal(size=(n, d)).astype(np.float32)
    log_scale = np.full((n, d), -5.0, np.float32)
    mi = mutual_information(loc, log_scale, jax.random.key(2), chunk_size=128)
    assert mi == pytest.approx(math.log(n), abs=4 * math.sqrt(d / 2 / n))


def test_verdicts():
    kl = np.array([2.0, 0.001, 1.5, 0.0, 0.004])
    partial_collapse = collapse_report(kl, np.array([True, False, True, False, False]), 1.2)
    assert partial_collapse["verdict"] == (
        "posterior collapse: 3 of 5 dimensions inactive (dims 1, 3, 4; KL < 0.01 nats); "
        "I(x;z) = 1.2 nats"
    )
    assert partial_collapse["collapsed_dims"] == [1, 3, 4]
    assert partial_collapse["dims_by_kl"] == [0, 2, 4, 1, 3]
    assert partial_collapse["num_active"] == 2
    assert partial_collapse["total_kl"] == pytest.approx(kl.sum())

    none = collapse_report(kl + 1.0, np.ones(5, bool), 3.0)
    assert none["verdict"] == "no collapse: all 5 dimensions active (I(x;z) = 3 nats)"
    assert none["collapsed_dims"] == []

    full = collapse_report(np.full(5, 1e-4), np.zeros(5, bool), 0.02)
    assert full["verdict"] == (
        "full collapse: all 5 dimensions inactive, KL ≈ 0 on every dimension "
        "(max 0.0001 nats), I(x;z) ≈ 0 (0.02 nats)"
    )
    with pytest.raises(ValueError, match="shape"):
        collapse_report(kl, np.ones(4, bool))


def test_diagnose_collapse_end_to_end(model_and_images):
    model, images = model_and_images
    graphdef, params = nnx.split(model)
    report = diagnose_collapse(graphdef, params, images, jax.random.key(0), batch_size=16)
    assert report["verdict"].startswith(
        "posterior collapse: 2 of 5 dimensions inactive (dims 3, 4; KL < 0.01 nats); I(x;z) = "
    )
    assert report["collapsed_dims"] == [3, 4] and report["mutual_info"] > 0.5
    assert len(report["au_variances"]) == 5
