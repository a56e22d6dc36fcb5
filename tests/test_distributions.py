"""DiagGaussian against closed forms: the KL to N(0, I) (Kingma & Welling 2013, App. B) versus
its Monte Carlo estimate, log densities versus scipy, and reparameterization gradients
(∂/∂μ E[z²] = 2μ, ∂/∂log σ E[z²] = 2σ²)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from vae_jax.distributions import DiagGaussian, standard_normal_log_prob


def _random_gaussian(key, shape, spread=1.0):
    k1, k2 = jax.random.split(key)
    loc = spread * jax.random.normal(k1, shape)
    log_scale = 0.5 * spread * jax.random.normal(k2, shape)
    return DiagGaussian(loc, log_scale)


def test_sample_shapes_and_moments():
    q = DiagGaussian(jnp.array([[1.0, -2.0, 0.5]]), jnp.log(jnp.array([[0.5, 2.0, 1.0]])))
    assert q.sample(jax.random.key(0)).shape == (1, 3)
    z = q.sample(jax.random.key(1), 100_000)  # [L, B, D]
    assert z.shape == (100_000, 1, 3)
    se_mean = np.asarray(q.scale) / np.sqrt(100_000)
    np.testing.assert_array_less(np.abs(z.mean(0) - q.loc), 5 * se_mean)
    np.testing.assert_allclose(z.std(0), q.scale, rtol=0.02)


def test_kl_closed_form_matches_monte_carlo():
    q = _random_gaussian(jax.random.key(0), (4, 5))  # [B, D]
    n = 200_000
    z = q.sample(jax.random.key(1), n)  # [n, B, D]
    log_ratio = q.log_prob(z) - standard_normal_log_prob(z)  # [n, B]
    mc, se = log_ratio.mean(0), log_ratio.std(0) / np.sqrt(n)
    kl = q.kl_to_standard_normal()  # [B]
    assert kl.shape == (4,)
    np.testing.assert_array_less(np.abs(mc - kl), 4 * se + 1e-3)
    # kl_monte_carlo is the same single-sample estimate.
    np.testing.assert_allclose(
        q.kl_monte_carlo(z, standard_normal_log_prob(z)), log_ratio, rtol=1e-6, atol=1e-5
    )


def test_kl_nonnegative_and_zero_at_standard_normal():
    q = _random_gaussian(jax.random.key(3), (256, 8), spread=2.0)
    per_dim = q.kl_per_dim_to_standard_normal()
    assert per_dim.shape == (256, 8)
    assert bool(jnp.all(per_dim >= 0.0))
    np.testing.assert_allclose(per_dim.sum(-1), q.kl_to_standard_normal(), rtol=1e-6)
    zero = DiagGaussian(jnp.zeros((2, 3)), jnp.zeros((2, 3)))
    np.testing.assert_array_equal(zero.kl_to_standard_normal(), np.zeros(2))
    # One dimension by hand: μ = 1, σ = 1 gives ½ μ² = 0.5.
    one = DiagGaussian(jnp.array([1.0]), jnp.array([0.0]))
    np.testing.assert_allclose(one.kl_to_standard_normal(), 0.5, rtol=1e-6)


def test_log_prob_and_entropy_match_scipy():
    q = _random_gaussian(jax.random.key(4), (3, 6))
    z = jax.random.normal(jax.random.key(5), (7, 3, 6)) * 2.0  # [L, B, D]
    loc, scale = np.asarray(q.loc), np.asarray(q.scale)
    expected = scipy.stats.norm.logpdf(np.asarray(z), loc[None], scale[None]).sum(-1)  # [L, B]
    got = q.log_prob(z)
    assert got.shape == (7, 3)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(q.log_prob(z[0]), expected[0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(
        q.entropy(), scipy.stats.norm.entropy(loc, scale).sum(-1), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        standard_normal_log_prob(z), scipy.stats.norm.logpdf(np.asarray(z)).sum(-1), rtol=1e-5
    )
    z2, lp = q.sample_and_log_prob(jax.random.key(6), 2)
    np.testing.assert_allclose(lp, q.log_prob(z2), rtol=1e-6)


@pytest.mark.parametrize("mu, sigma", [(0.7, 0.5), (-1.5, 2.0)])
def test_reparameterized_gradients(mu, sigma):
    """E_q[z²] = μ² + σ², so ∂/∂μ = 2μ and ∂/∂log σ = 2σ²; the pathwise estimates agree."""
    n = 100_000
    key = jax.random.key(7)

    def mean_square(loc, log_scale):
        return jnp.mean(jnp.square(DiagGaussian(loc, log_scale).sample(key, n)))

    loc, log_scale = jnp.array([mu]), jnp.log(jnp.array([sigma]))
    g_loc, g_log_scale = jax.grad(mean_square, argnums=(0, 1))(loc, log_scale)
    # Exact per-draw identities of the pathwise gradient, z = μ + σ ε.
    eps = (DiagGaussian(loc, log_scale).sample(key, n) - loc[None]) / sigma  # [n, 1]
    z = mu + sigma * eps
    np.testing.assert_allclose(g_loc, jnp.mean(2 * z, 0), rtol=1e-4)
    np.testing.assert_allclose(g_log_scale, jnp.mean(2 * z * sigma * eps, 0), rtol=1e-4)
    # And the analytic values, to Monte Carlo standard error.
    se_loc = float(jnp.std(2 * z) / np.sqrt(n))
    se_log_scale = float(jnp.std(2 * z * sigma * eps) / np.sqrt(n))
    assert abs(float(g_loc[0]) - 2 * mu) < 4 * se_loc
    assert abs(float(g_log_scale[0]) - 2 * sigma**2) < 4 * se_log_scale
    assert abs(float(g_loc[0])) > 0.1 and float(g_log_scale[0]) > 0.1
