"""Importance-sampled log-likelihood: K=1 is the single-sample ELBO, the estimate grows with
K, it converges to the exact log p(x) of a linear-Gaussian VAE, and chunking is exact.

XLA compiles dominate the run time, so the tests share one model, one batch shape and a
few (K, chunk) pairs through the module-level jitted `_ll`.
"""

import math
from functools import partial

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
import scipy.stats
from flax import nnx

from vae_jax.config_lib import apply_runlocal, base_config
from vae_jax.distributions import DiagGaussian
from vae_jax.evaluate import loglik
from vae_jax.likelihoods import gaussian
from vae_jax.model import VAE, build_model
from vae_jax.objectives.elbo import elbo_terms
from vae_jax.priors.standard_normal import StandardNormal

SHAPE, BATCH = (8, 8, 1), 16


@pytest.fixture(scope="module")
def mlp():
    c = apply_runlocal(base_config())
    c.model.latent_dim, c.model.mlp.hidden_dims = 4, (32,)
    return nnx.split(build_model(c.model, SHAPE, jax.random.key(0)))  # (graphdef, params)


def _binary_images(seed):
    return jax.random.bernoulli(jax.random.key(seed), 0.3, (BATCH, *SHAPE)).astype(jnp.float32)


@partial(jax.jit, static_argnums=(0, 4, 5))
def _ll(graphdef, params, x, key, num_samples, chunk_size):
    model = nnx.merge(graphdef, params)
    return loglik.importance_log_likelihood(model, x, key, num_samples, chunk_size)


@partial(jax.jit, static_argnums=(0, 4))
def _reference(graphdef, params, x, key, num_samples):
    """logsumexp over all K log-weights at once, sample k drawn with fold_in(key, k).
    Returns (estimate [B], log-weight of the first draw [B])."""
    model = nnx.merge(graphdef, params)
    q = model.posterior(x)
    z = jnp.stack([q.sample(jax.random.fold_in(key, k)) for k in range(num_samples)])
    log_w = model.log_px(x, z) + model.log_prior(z) - q.log_prob(z)  # [K, B]
    return jax.nn.logsumexp(log_w, axis=0) - math.log(num_samples), log_w[0]


def test_k1_is_the_single_draw_elbo_written_from_independent_formulas(mlp):
    """K = 1: log p(x|z) + log p(z) − log q(z|x) at the one draw z (chunk 0's key), each term
    from an outside oracle: optax's sigmoid BCE and scipy's normal log-density."""
    x, key = _binary_images(0), jax.random.key(3)
    got = np.asarray(_ll(*mlp, x, key, 1, 1))  # [B]
    model = nnx.merge(*mlp)
    q = model.posterior(x)
    z = q.sample(jax.random.fold_in(key, 0), 1)[0]  # [B, D]: the documented key schedule
    log_px = -optax.sigmoid_binary_cross_entropy(model.decode(z), x).sum(axis=(1, 2, 3))
    zn, loc, scale = (np.asarray(a, np.float64) for a in (z, q.loc, q.scale))
    log_pz = scipy.stats.norm.logpdf(zn).sum(-1)
    log_qz = scipy.stats.norm.logpdf(zn, loc, scale).sum(-1)
    assert got.shape == (BATCH,)
    np.testing.assert_allclose(got, np.asarray(log_px) + log_pz - log_qz, rtol=1e-5, atol=1e-3)


def test_k1_averages_to_the_analytic_kl_elbo(mlp):
    """E_z[log w] = E_q[log p(x|z)] − KL(q || p): the mean of 512 K = 1 estimates agrees with
    the closed-form-KL ELBO (itself averaged over 512 draws) within 4 standard errors."""
    x = _binary_images(4)
    keys = jax.random.split(jax.random.key(11), 512)
    k1 = np.asarray(_ll_over_keys(*mlp, x, keys), np.float64)  # [S, B]
    terms = _elbo_terms(*mlp, x, jax.random.key(12), 512)
    elbo = np.asarray(terms["elbo"], np.float64)  # [B], analytic KL, 512-draw log p(x|z)
    se = k1.std(0, ddof=1) / np.sqrt(len(keys))  # [B]; the ELBO side's error is smaller
    assert np.all(np.abs(k1.mean(0) - elbo) < 4 * se + 1e-3), (k1.mean(0) - elbo, se)
    kl = np.asarray(terms["kl"])
    assert np.all(2 * kl > 4 * se + 1e-3)  # a KL of the wrong sign (off by 2 KL) fails


@partial(jax.jit, static_argnums=0)
def _ll_over_keys(graphdef, params, x, keys):
    model = nnx.merge(graphdef, params)
    return jax.vmap(lambda k: loglik.importance_log_likelihood(model, x, k, 1, 1))(keys)


@partial(jax.jit, static_argnums=(0, 4))
def _elbo_terms(graphdef, params, x, key, num_samples):
    return elbo_terms(nnx.merge(graphdef, params), x, key, num_samples)


def test_estimate_does_not_decrease_with_k(mlp):
    x = _binary_images(1)
    means = [
        np.mean([_ll(*mlp, x, jax.random.key(s), k, c).mean() for s in range(8)])
        for k, c in ((1, 1), (10, 10), (100, 30))
    ]
    assert means[1] > means[0] - 0.05 and means[2] > means[1] - 0.05, means
    assert means[2] > means[0] + 0.1, means  # a random model leaves a real gap at K = 1


def test_chunked_equals_reference_and_does_not_depend_on_the_chunk(mlp):
    """Streaming logsumexp == logsumexp over all K weights at once, sample k drawn with
    fold_in(key, k): K = 100 in chunks of 30 (three scanned chunks and a remainder of 10),
    of 100, or of 7, gives the same estimate (the chunk size is a speed setting)."""
    x, key = _binary_images(2), jax.random.key(5)
    want, _ = _reference(*mlp, x, key, 100)
    for chunk in (30, 100, 7):
        np.testing.assert_allclose(_ll(*mlp, x, key, 100, chunk), want, rtol=1e-5, atol=1e-4)


def test_dataset_driver_pads_compiles_once_and_uses_batch_keys(mlp):
    images = np.asarray(jax.random.randint(jax.random.key(0), (40, *SHAPE), 0, 256), np.uint8)
    key = jax.random.key(9)
    loglik._batch_log_likelihood.clear_cache()
    got = loglik.dataset_log_likelihood(
        *mlp, images, key, num_samples=10, chunk_size=10, batch_size=BATCH
    )
    assert got.shape == (40,) and np.all(np.isfinite(got))
    assert loglik._batch_log_likelihood._cache_size() == 1  # the padded last batch reuses it
    # Batch 2 holds 8 images padded with 8 zero images; ε is drawn at the padded shape.
    x = np.concatenate([images[32:], np.zeros_like(images[:8])]).astype(np.float32) / 255.0
    want = _ll(*mlp, jnp.asarray(x), jax.random.fold_in(key, 2), 10, 10)
    np.testing.assert_allclose(got[32:], want[:8], rtol=1e-5, atol=1e-4)


class _LinearEncoder(nnx.Module):
    """q(z|x) = N((x − b) A + offset, diag exp(log_scale)²): deliberately imperfect."""

    def __init__(self, a, b, offset, log_scale):
        self.a, self.b = nnx.Param(jnp.asarray(a)), nnx.Param(jnp.asarray(b))
        self.offset, self.log_scale = nnx.Param(jnp.asarray(offset)), nnx.Param(log_scale)

    def __call__(self, x):
        h = x.reshape(x.shape[0], -1) - self.b[None]  # [B, P]
        loc = h @ self.a + self.offset[None]  # [B, D]
        return DiagGaussian(loc, jnp.broadcast_to(self.log_scale[None], loc.shape))


class _LinearDecoder(nnx.Module):
    """x = W z + b: decoder_out [..., H, W, 1] is the gaussian likelihood's mean."""

    def __init__(self, w, b, shape):
        self.w, self.b, self.shape = nnx.Param(jnp.asarray(w)), nnx.Param(jnp.asarray(b)), shape

    def __call__(self, z):
        out = z @ self.w.T  # [..., P]
        return (out + jnp.broadcast_to(self.b, out.shape)).reshape(*z.shape[:-1], *self.shape)


def test_converges_to_exact_log_likelihood_of_linear_gaussian_vae():
    shape, d, sigma, n = (2, 3, 1), 2, 0.5, 32
    p = math.prod(shape)
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(p, d)), rng.normal(size=p)
    x = rng.normal(size=(n, d)) @ w.T + b + sigma * rng.normal(size=(n, p))  # [N, P]
    cov_x = w @ w.T + sigma**2 * np.eye(p)
    dev = x - b
    exact = -0.5 * (
        np.einsum("np,pq,nq->n", dev, np.linalg.inv(cov_x), dev)
        + np.linalg.slogdet(cov_x)[1]
        + p * math.log(2 * math.pi)
    )
    post_cov = np.linalg.inv(np.eye(d) + w.T @ w / sigma**2)
    a = w @ post_cov / sigma**2  # exact posterior mean is (x − b) A
    encoder = _LinearEncoder(
        a.astype(np.float32),
        b.astype(np.float32),
        np.full(d, 0.2, np.float32),  # biased mean
        jnp.asarray(np.log(1.3 * np.sqrt(np.diag(post_cov))), jnp.float32),  # too wide, diagonal
    )
    cfg = ml_collections.ConfigDict(dict(scale=sigma, learn_scale=False, min_scale=1e-3))
    decoder = _LinearDecoder(w.astype(np.float32), b.astype(np.float32), shape)
    model = VAE(encoder, decoder, StandardNormal(d), "gaussian", gaussian.make(cfg))
    xs = jnp.asarray(x.reshape(n, *shape), jnp.float32)
    key = jax.random.key(0)
    graphdef, params = nnx.split(model)
    err1 = np.abs(_ll(graphdef, params, xs, key, 1, 1) - exact)
    err = np.abs(_ll(graphdef, params, xs, key, 2000, 250) - exact)
    # Monte Carlo error shrinks as 1/sqrt(K): about 2 nats at K = 1, 0.02 at K = 2000.
    assert err.mean() < 0.02 * err1.mean(), (err.mean(), err1.mean())
    assert err.mean() < 0.04 and err.max() < 0.12, (err.mean(), err.max())


def test_summary_statistics():
    values = np.array([-100.0, -102.0, -98.0, -100.0])
    s = loglik.summarize_log_likelihood(values, num_dims=784)
    assert s["log_likelihood_nats"] == -100.0 and s["nll_nats"] == 100.0
    assert s["log_likelihood_stderr"] == pytest.approx(np.std(values, ddof=1) / 2.0)
    assert s["bits_per_dim"] == pytest.approx(100.0 / (784 * math.log(2.0)))
    assert s["num_examples"] == 4
