"""The ELBO of a linear-Gaussian VAE (probabilistic PCA, Tipping & Bishop 1999), where every
quantity has a closed form.

Model: z ~ N(0, I_D), x | z ~ N(W z + b, σ² I_P), so p(x) = N(x; b, W Wᵀ + σ² I) and the
posterior is p(z|x) = N(M⁻¹ Wᵀ (x − b), σ² M⁻¹) with M = Wᵀ W + σ² I (diagonal here, since
W has orthogonal columns). The ELBO identity log p(x) − ELBO(q) = KL(q(z|x) ‖ p(z|x)) gives:
ELBO ≤ log p(x) for any encoder, with equality (and a zero-variance per-sample bound) at the
true posterior.
"""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import scipy.stats
from flax import nnx

from vae_jax.distributions import DiagGaussian
from vae_jax.likelihoods import gaussian
from vae_jax.model import VAE
from vae_jax.objectives.elbo import elbo_terms
from vae_jax.priors.standard_normal import StandardNormal

P, D, B = 6, 3, 5  # data dims, latent dims, examples
SIGMA = 0.5
SINGULAR_VALUES = np.array([2.0, 1.0, 0.5])


class LinearDecoder(nnx.Module):
    """z [..., D] -> mean W z + b [..., P]."""

    def __init__(self, w: np.ndarray, b: np.ndarray):
        self.w = nnx.Param(jnp.asarray(w, jnp.float32))  # [P, D]
        self.b = nnx.Param(jnp.asarray(b, jnp.float32))  # [P]

    def __call__(self, z: jax.Array) -> jax.Array:
        mean = z @ self.w[...].T  # [..., P]
        return mean + jnp.broadcast_to(self.b[...], mean.shape)


class LinearEncoder(nnx.Module):
    """x [B, P] -> N(A x + c, diag exp(log_scale)²), the form of the exact posterior."""

    def __init__(self, a: np.ndarray, c: np.ndarray, log_scale: np.ndarray):
        self.a = nnx.Param(jnp.asarray(a, jnp.float32))  # [D, P]
        self.c = nnx.Param(jnp.asarray(c, jnp.float32))  # [D]
        self.log_scale = nnx.Param(jnp.asarray(log_scale, jnp.float32))  # [D]

    def __call__(self, x: jax.Array) -> DiagGaussian:
        loc = x @ self.a[...].T  # [B, D]
        loc = loc + jnp.broadcast_to(self.c[...], loc.shape)
        return DiagGaussian(loc, jnp.broadcast_to(self.log_scale[...], loc.shape))


def _problem():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(P, D)))
    w = q * SINGULAR_VALUES[None, :]  # [P, D], orthogonal columns
    b = rng.normal(size=P)
    x = rng.multivariate_normal(b, w @ w.T + SIGMA**2 * np.eye(P), size=B)  # [B, P]
    m_diag = SINGULAR_VALUES**2 + SIGMA**2  # M = WᵀW + σ²I is diagonal
    a_true = w.T / m_diag[:, None]  # M⁻¹ Wᵀ
    c_true = -a_true @ b
    log_scale_true = 0.5 * np.log(SIGMA**2 / m_diag)
    return w, b, x, (a_true, c_true, log_scale_true)


def _model(w, b, a, c, log_scale):
    lik_config = ml_collections.ConfigDict(dict(scale=SIGMA, learn_scale=False, min_scale=1e-3))
    encoder, decoder = LinearEncoder(a, c, log_scale), LinearDecoder(w, b)
    return VAE(encoder, decoder, StandardNormal(D), "gaussian", gaussian.make(lik_config))


def _exact_log_px(w, b, x):
    cov = w @ w.T + SIGMA**2 * np.eye(P)
    return scipy.stats.multivariate_normal(b, cov).logpdf(x)  # [B]


def _exact_elbo(w, b, x, loc, scale):
    """E_q[log p(x|z)] − KL(q ‖ N(0, I)) in float64, for q = N(loc [B, D], diag scale² [B, D])."""
    resid = x - loc @ w.T - b  # [B, P]
    trace = (scale**2 * np.sum(w**2, axis=0)).sum(-1)  # tr(Wᵀ W S), [B]
    expected_log_px = (
        -0.5 * P * np.log(2 * np.pi * SIGMA**2) - 0.5 * ((resid**2).sum(-1) + trace) / SIGMA**2
    )
    kl = 0.5 * (scale**2 + loc**2 - 1.0 - 2.0 * np.log(scale)).sum(-1)
    return expected_log_px - kl


def _kl_diag(loc_q, scale_q, loc_p, scale_p):
    """KL(N(loc_q, scale_q²) ‖ N(loc_p, scale_p²)) summed over the last axis."""
    ratio = (scale_q / scale_p) ** 2
    return 0.5 * (ratio + ((loc_q - loc_p) / scale_p) ** 2 - 1.0 - np.log(ratio)).sum(-1)


def _per_sample_bound(model, x, key, num_samples):
    """log p(x|z) + log p(z) − log q(z|x) for z ~ q: [L, B]."""
    q = model.posterior(x)
    z = q.sample(key, num_samples)  # [L, B, D]
    return model.log_px(x, z) + model.log_prior(z) - q.log_prob(z)


def test_true_posterior_is_exact():
    w, b, x, (a, c, log_scale) = _problem()
    model = _model(w, b, a, c, log_scale)
    log_px = _exact_log_px(w, b, x)
    xj = jnp.asarray(x, jnp.float32)

    q = model.posterior(xj)
    np.testing.assert_allclose(q.loc, (x - b) @ a.T, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        _exact_elbo(w, b, x, np.asarray(q.loc, np.float64), np.asarray(q.scale, np.float64)),
        log_px,
        rtol=1e-5,
    )

    bound = _per_sample_bound(model, xj, jax.random.key(0), 256)  # [L, B]
    assert bound.shape == (256, B)
    # Zero variance: every sample gives log p(x) exactly (to float32 round-off).
    np.testing.assert_allclose(bound, np.broadcast_to(log_px, bound.shape), rtol=1e-5, atol=1e-4)
    assert float(jnp.std(bound, axis=0).max()) < 1e-4

    num_samples = 20_000
    terms = elbo_terms(model, xj, jax.random.key(1), num_samples)
    assert terms["elbo"].shape == (B,)
    log_px_samples = model.log_px(xj, q.sample(jax.random.key(1), num_samples))  # [L, B]
    se = np.asarray(jnp.std(log_px_samples, axis=0)) / np.sqrt(num_samples)
    np.testing.assert_array_less(np.abs(np.asarray(terms["elbo"]) - log_px), 4 * se + 1e-4)


@pytest.mark.parametrize("loc_shift, log_scale_shift", [(0.3, 0.7), (-0.5, -1.0), (0.0, 0.4)])
def test_wrong_encoder_elbo_is_below_log_px(loc_shift, log_scale_shift):
    w, b, x, (a, c, log_scale) = _problem()
    a_wrong = (1.0 + loc_shift) * a
    model = _model(w, b, a_wrong, c + loc_shift, log_scale + log_scale_shift)
    log_px = _exact_log_px(w, b, x)
    xj = jnp.asarray(x, jnp.float32)
    q = model.posterior(xj)
    loc, scale = np.asarray(q.loc, np.float64), np.asarray(q.scale, np.float64)

    # The identity log p(x) − ELBO = KL(q ‖ p(z|x)) for the exact expectation.
    post_loc = (x - b) @ a.T
    gap = _kl_diag(loc, scale, post_loc, np.exp(np.broadcast_to(log_scale, loc.shape)))
    assert np.all(gap > 0.05)
    np.testing.assert_allclose(_exact_elbo(w, b, x, loc, scale), log_px - gap, rtol=1e-4)

    # The library's Monte Carlo ELBO agrees with it and stays below log p(x).
    num_samples = 20_000
    key = jax.random.key(2)
    terms = elbo_terms(model, xj, key, num_samples)  # draws z = q.sample(key, L) internally
    log_px_samples = model.log_px(xj, q.sample(key, num_samples))  # [L, B], the same draws
    se = np.asarray(jnp.std(log_px_samples, axis=0)) / np.sqrt(num_samples)
    elbo = np.asarray(terms["elbo"], np.float64)
    np.testing.assert_array_less(np.abs(elbo - (log_px - gap)), 4 * se + 1e-3)
    np.testing.assert_array_less(elbo + 4 * se, log_px)
    np.testing.assert_allclose(terms["kl"], q.kl_to_standard_normal(), rtol=1e-6)

    # Away from the posterior the per-sample bound is no longer constant.
    bound = _per_sample_bound(model, xj, jax.random.key(3), 256)
    assert float(jnp.std(bound, axis=0).min()) > 1e-2
