"""Likelihoods against reference formulas: Bernoulli = minus the summed sigmoid BCE (optax),
Gaussian = scipy's normal log density summed over pixels (Kingma & Welling 2013, App. C.2),
with the learned-σ floor log σ = m + softplus(raw − m), m = log min_scale."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import scipy.stats
from flax import nnx

from vae_jax.likelihoods import LIKELIHOODS, bernoulli, gaussian

B, H, W, C = 3, 4, 5, 2


def _images(key, shape=(B, H, W, C)):
    return jax.random.uniform(key, shape)


def _gaussian(scale=1.0, learn=False, min_scale=1e-3):
    mc = ml_collections.ConfigDict(dict(scale=scale, learn_scale=learn, min_scale=min_scale))
    return gaussian.make(mc)


def test_registry():
    assert LIKELIHOODS["bernoulli"].make(None, None).name == "bernoulli"
    assert LIKELIHOODS["gaussian"].make(None, None).num_params == 1


def test_bernoulli_is_minus_summed_sigmoid_bce():
    lik = bernoulli.make()
    k1, k2 = jax.random.split(jax.random.key(0))
    logits = 3.0 * jax.random.normal(k1, (B, H, W, C))
    for x in (_images(k2), jnp.round(_images(k2))):  # soft and binary targets
        bce = optax.sigmoid_binary_cross_entropy(logits, x).sum(axis=(1, 2, 3))  # [B]
        got = lik.log_prob(logits, x)
        assert got.shape == (B,)
        np.testing.assert_allclose(got, -bce, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(lik.mean(logits), jax.nn.sigmoid(logits), rtol=1e-6)


def test_bernoulli_extreme_logits_are_finite_and_exact():
    lik = bernoulli.make()
    logits = jnp.array([1e4, -1e4, 1e4, -1e4]).reshape(1, 4)  # [B=1, D=4]
    x = jnp.array([1.0, 0.0, 0.0, 1.0]).reshape(1, 4)
    per_pixel = jnp.stack(
        [lik.log_prob(logits[:, i : i + 1], x[:, i : i + 1])[0] for i in range(4)]
    )
    assert bool(jnp.all(jnp.isfinite(per_pixel)))
    # Right answers cost nothing; a wrong sign costs |logit| nats.
    np.testing.assert_allclose(per_pixel, [0.0, 0.0, -1e4, -1e4], atol=1e-3)
    grads = jax.grad(lambda lg: lik.log_prob(lg, x).sum())(logits)
    assert bool(jnp.all(jnp.isfinite(grads)))


def test_bernoulli_sample_frequencies():
    lik = bernoulli.make()
    logits = jnp.array([[-1.0, 0.0, 2.0]])
    draws = jax.vmap(lambda k: lik.sample(k, logits))(jax.random.split(jax.random.key(1), 20_000))
    assert set(np.unique(draws)) <= {0.0, 1.0}
    p = jax.nn.sigmoid(logits)
    np.testing.assert_allclose(draws.mean(0), p, atol=4 * float(0.5 / math.sqrt(20_000)))


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_gaussian_fixed_scale_matches_scipy(scale):
    lik = _gaussian(scale)
    assert lik.num_params == 1
    k1, k2 = jax.random.split(jax.random.key(2))
    mu, x = jax.random.normal(k1, (B, H, W, C)), _images(k2)
    expected = scipy.stats.norm.logpdf(np.asarray(x), np.asarray(mu), scale).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(lik.log_prob(mu, x), expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(lik.mean(mu), mu)
    if scale == 1.0:  # σ = 1: ½‖x − μ‖² + (D/2) log 2π, the MSE loss up to a constant
        d = H * W * C
        mse = 0.5 * jnp.square(x - mu).sum(axis=(1, 2, 3)) + 0.5 * d * math.log(2 * math.pi)
        np.testing.assert_allclose(-lik.log_prob(mu, x), mse, rtol=1e-5)


def test_gaussian_learned_scale():
    min_scale = 0.01
    lik = _gaussian(learn=True, min_scale=min_scale)
    assert lik.num_params == 2
    k1, k2, k3 = jax.random.split(jax.random.key(3), 3)
    mu = jax.random.normal(k1, (B, H, W, C))
    raw = 2.0 * jax.random.normal(k2, (B, H, W, C))
    out = jnp.concatenate([mu, raw], axis=-1)  # [B, H, W, 2C]: means, then raw scales
    x = _images(k3)
    m = math.log(min_scale)
    sigma = np.exp(m + np.logaddexp(0.0, np.asarray(raw) - m))  # softplus floor
    expected = scipy.stats.norm.logpdf(np.asarray(x), np.asarray(mu), sigma).sum(axis=(1, 2, 3))
    assert lik.log_prob(out, x).shape == (B,)
    np.testing.assert_allclose(lik.log_prob(out, x), expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_array_equal(lik.mean(out), mu)
    assert lik.mean(out).shape == x.shape


def test_gaussian_learned_scale_floor():
    """However negative the raw output, σ ≥ min_scale, so log p(x|z) stays bounded."""
    min_scale = 0.05
    lik = _gaussian(learn=True, min_scale=min_scale)
    x = jnp.full((1, 2, 2, 1), 0.3)
    out = jnp.concatenate([x, jnp.full_like(x, -1e4)], axis=-1)  # μ = x, raw → −∞
    bound = 4 * (-math.log(min_scale) - 0.5 * math.log(2 * math.pi))  # density at μ, σ = floor
    got = float(lik.log_prob(out, x)[0])
    assert math.isfinite(got) and got <= bound + 1e-3
    np.testing.assert_allclose(got, bound, rtol=1e-5)
    draws = jax.vmap(lambda k: lik.sample(k, out))(jax.random.split(jax.random.key(4), 4000))
    # 16,000 draws: the sample std of n normal draws has relative standard error
    # 1/sqrt(2(n − 1)) ≈ 0.0056; 5 standard errors is rtol 0.028.
    n = draws.size
    np.testing.assert_allclose(np.std(draws), min_scale, rtol=5 / np.sqrt(2 * (n - 1)))
    # exp(m + softplus(raw − m)) = min_scale + exp(raw): the floor adds to σ, never clips it.
    big = jnp.concatenate([x, jnp.full_like(x, math.log(2.0))], axis=-1)
    expected_big = scipy.stats.norm.logpdf(0.0, 0.0, min_scale + 2.0) * 4
    np.testing.assert_allclose(lik.log_prob(big, x)[0], expected_big, rtol=1e-5)


@pytest.mark.parametrize("name", ["bernoulli", "gaussian_fixed", "gaussian_learned"])
def test_leading_sample_axis(name):
    """decoder_out [L, B, H, W, C·k] against x [B, H, W, C] gives [L, B], row by row."""
    lik = {
        "bernoulli": bernoulli.make(),
        "gaussian_fixed": _gaussian(0.3),
        "gaussian_learned": _gaussian(learn=True),
    }[name]
    num_samples = 4
    k1, k2 = jax.random.split(jax.random.key(5))
    out = jax.random.normal(k1, (num_samples, B, H, W, C * lik.num_params))
    x = jnp.round(_images(k2))
    got = lik.log_prob(out, x)
    assert got.shape == (num_samples, B)
    expected = jnp.stack([lik.log_prob(out[i], x) for i in range(num_samples)])
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert lik.mean(out).shape == (num_samples, B, H, W, C)
    assert lik.sample(jax.random.key(6), out).shape == (num_samples, B, H, W, C)


@pytest.mark.parametrize("likelihood", ["gaussian_learned", "continuous_bernoulli"])
def test_grey_data_likelihoods_train_through_a_real_net(tmp_path, likelihood):
    """Grey (non-binary) data through the MLP: the learned-σ Gaussian's decoder emits
    [μ, raw σ] per channel, its σ shrinks from its initial ≈ 1 towards the data's noise and
    never below the floor; both likelihoods' losses fall and the summary is a density's."""
    from tests.helpers import tiny_config
    from vae_jax.experiment import run
    from vae_jax.state import setup

    overrides = {"data.binarize": "none", "train.num_steps": 60, "train.log_every": 20}
    if likelihood == "gaussian_learned":
        overrides.update({"model.likelihood": "gaussian", "model.gaussian.learn_scale": True})
        overrides["model.gaussian.min_scale"] = 0.05
    else:
        overrides["model.likelihood"] = "continuous_bernoulli"
    config = tiny_config(**overrides)
    summary = run(config, str(tmp_path))
    from tests.helpers import read_metrics

    losses = [r["loss"] for r in read_metrics(tmp_path)]
    assert losses[-1] < losses[0] - 5.0, losses
    assert summary["normalized_likelihood"] and summary["test_bits_per_dim"] is not None
    support = "R^D" if likelihood == "gaussian_learned" else "[0, 1]^D"
    assert f"density on {support}" in summary["bits_per_dim_note"]
    assert summary["likelihood_kind"] == "density"
    if likelihood == "gaussian_learned":
        from vae_jax.checkpoint import Checkpointer
        from vae_jax.data import load_dataset

        graphdef, template, *_ = setup(config, (28, 28, 1))
        ckpt = Checkpointer(str(tmp_path))
        params = ckpt.restore(template).params
        ckpt.close()
        model = nnx.merge(graphdef, params)
        x = jnp.asarray(load_dataset(config.data).test_x[:16], jnp.float32) / 255.0
        out = model.decode(model.posterior(x).loc)
        assert out.shape == (16, 28, 28, 2)  # [μ, raw] for the one channel
        # At x = μ the log-density is −Σ(log σ + ½ log 2π): the library's own log_prob
        # gives the geometric-mean σ of each image, which a fixed σ = 1 would leave at 1.
        lik = model.likelihood
        d = 28 * 28
        log_p_at_mean = np.asarray(lik.log_prob(out, lik.mean(out)))  # [16]
        geo_sigma = np.exp(-log_p_at_mean / d - 0.5 * math.log(2 * math.pi))
        assert np.all(geo_sigma >= 0.05) and np.median(geo_sigma) < 0.5, geo_sigma
