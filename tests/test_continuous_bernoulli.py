"""Continuous Bernoulli (Loaiza-Ganem & Cunningham 2019) against float64 references: the density
integrates to 1, log C matches the paper's λ formula 2 artanh(1 − 2λ)/(1 − 2λ), the mean and the
draws match quadrature and the analytic CDF, and gradients stay finite and right at l = 0 and
|l| = 50. The float32 implementation is in vae_jax/likelihoods/continuous_bernoulli.py."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax.likelihoods import LIKELIHOODS, bernoulli, continuous_bernoulli

LOGITS = (-30.0, -5.0, -0.5, -1e-3, 0.0, 1e-4, 0.05, 0.2, 3.0, 30.0)
# Gauss–Legendre on [0, 1]: p(x) ∝ e^{l·x} is entire, so 64 nodes integrate it (and x·p(x)) to
# float64 round-off even at |l| = 30 (the error term ∝ l^128 / 128! < 1e-40).
_GL_X, _GL_W = np.polynomial.legendre.leggauss(64)
_GL_X, _GL_W = (_GL_X + 1.0) / 2.0, _GL_W / 2.0


_CB = continuous_bernoulli.make()
# Jitted once per shape: op-by-op dispatch would compile every primitive of every branch.
LOG_PROB, MEAN, SAMPLE = jax.jit(_CB.log_prob), jax.jit(_CB.mean), jax.jit(_CB.sample)
LOG_C = jax.jit(continuous_bernoulli.log_normalizer)


def _density_at_nodes(logit):
    """exp(log p(x|l)) at the quadrature nodes, from the float32 jax function, in float64."""
    n = _GL_X.size
    logits = jnp.full((n, 1), logit, jnp.float32)  # [B = nodes, D = 1]
    x = jnp.asarray(_GL_X, jnp.float32).reshape(n, 1)
    return np.exp(np.asarray(LOG_PROB(logits, x), np.float64)), np.asarray(x, np.float64)[:, 0]


def _log_c_from_lambda(logits):
    """The paper's normaliser in float64: λ = sigmoid(l), C = 2 artanh(1 − 2λ)/(1 − 2λ), C(½) = 2.
    1 + (1 − 2λ) = 2(1 − λ) loses ~1e-16·e^{|l|} relative, so this is good to ~1e-9 for |l| ≤ 15."""
    lam = 1.0 / (1.0 + np.exp(-logits))
    y = 1.0 - 2.0 * lam
    safe = np.where(y == 0.0, 0.5, y)
    return np.log(np.where(y == 0.0, 2.0, 2.0 * np.arctanh(safe) / safe))


def _log_partition(logits):
    """A(l) = softplus(l) − log C(l) = log(expm1(l)/l), A(0) = 0, float64 (log p = x·l − A)."""
    safe = np.where(logits == 0.0, 1.0, logits)
    return np.where(logits == 0.0, 0.0, np.log(np.expm1(safe) / safe))


def _cdf(logit, x):
    """F(x) = expm1(l·x)/expm1(l), F = x at l = 0, float64."""
    return x if logit == 0.0 else np.expm1(logit * x) / np.expm1(logit)


def test_registry():
    lik = LIKELIHOODS["continuous_bernoulli"].make(None, None)
    assert lik.name == "continuous_bernoulli" and lik.num_params == 1


@pytest.mark.parametrize("logit", LOGITS)
def test_density_integrates_to_one(logit):
    # Quadrature error is ~1e-16, so the tolerance is float32's: log p = x·l − softplus(l) + log C
    # carries a few ulp of its largest term (≤ 30, ulp 2e-6), i.e. ≲ 1e-5 relative error in p.
    # (Measured: ≤ 1e-7, the node errors average out.) 1e-4 leaves margin for other XLA builds
    # and still sees a wrong l² series coefficient at l = 0.2 (±3e-3).
    p, _ = _density_at_nodes(logit)
    assert abs(float(_GL_W @ p) - 1.0) < 1e-4


def test_log_normalizer_matches_artanh_reference():
    cut = 0.5  # the series / closed-form switch, probed on both sides
    near_cut = cut * (1.0 + np.array([-1e-3, -1e-6, 0.0, 1e-6, 1e-3]))
    mags = np.concatenate([[1e-30, 1e-8], np.logspace(-6, math.log10(15.0), 400), near_cut])
    logits = np.concatenate([-mags, [0.0], mags]).astype(np.float32)
    got = np.asarray(LOG_C(jnp.asarray(logits)), np.float64)
    ref = _log_c_from_lambda(logits.astype(np.float64))
    # Measured max error 2.1e-7 (≈ 3 ulp of log C ≈ 0.7-0.9 near the cut, 1 ulp elsewhere).
    # A dropped l⁶ series term shifts log C by 5e-6 just below the cut; the l⁸ term (1e-7
    # there, float32 noise) is pinned down through the gradient below.
    np.testing.assert_allclose(got, ref, rtol=2e-7, atol=2e-7)
    # Beyond |l| = 15 the λ formula runs out of float64; log C = log|l| − log tanh(|l|/2) there.
    big = np.array([15.0, 30.0, 50.0, 1e3, 1e10, 1e30], np.float32)
    got_big = LOG_C(jnp.asarray(np.concatenate([-big, big])))
    ref_big = np.log(big.astype(np.float64)) - np.log(np.tanh(big.astype(np.float64) / 2))
    np.testing.assert_allclose(got_big, np.concatenate([ref_big, ref_big]), rtol=2e-7)


@pytest.mark.parametrize("logit", LOGITS)
def test_mean_matches_quadrature(logit):
    p, x = _density_at_nodes(logit)
    expected = float(_GL_W @ (x * p)) / float(_GL_W @ p)  # normalised: isolates the mean
    got = float(MEAN(jnp.full((1, 1), logit, jnp.float32))[0, 0])
    # float32 p is off by ≲ 1e-5 relatively (see above), the mean by ≲ 2e-7; measured 4e-8.
    # A dropped l/12 series term is off by 4e-3 at l = 0.05.
    assert abs(got - expected) < 2e-5


def test_mean_matches_lambda_formula():
    """E[x] = λ/(2λ − 1) + 1/(2 artanh(1 − 2λ)) in float64 on a fine grid, both series/closed
    cuts (|l| = 1) included; |l| ≥ 1e-4 keeps the two cancelling terms of the float64 reference
    below 1e4, i.e. below 1e-12 of error."""
    mags = np.concatenate([np.logspace(-4, math.log10(15.0), 400), [1.0 - 1e-6, 1.0, 1.0 + 1e-6]])
    logits = np.concatenate([-mags, mags]).astype(np.float32)
    lam = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    ref = lam / (2 * lam - 1) + 1 / (2 * np.arctanh(1 - 2 * lam))
    got = MEAN(jnp.asarray(logits))
    # Measured ≤ 1.8e-7; dropping the l⁷ series term costs 8e-7 at |l| → 1.
    np.testing.assert_allclose(got, ref, rtol=0, atol=3e-7)
    # Large |l|: E[x] → 1 − 1/l (l → ∞) and 1/|l| (l → −∞), never 0/0 or inf/inf.
    big = np.array([50.0, 1e3, 1e6, 1e30], np.float32)
    got_big = np.asarray(MEAN(jnp.asarray(np.concatenate([big, -big]))), np.float64)
    b = big.astype(np.float64)
    np.testing.assert_allclose(got_big, np.concatenate([1.0 - 1.0 / b, 1.0 / b]), rtol=1e-6)


def test_samples_match_mean_and_cdf():
    logits = np.array([-30.0, -5.0, -0.5, -1e-3, 0.0, 0.2, 3.0, 30.0], np.float32)
    n = 20_000
    draws = SAMPLE(jax.random.key(0), jnp.broadcast_to(jnp.asarray(logits), (n, logits.size)))
    draws = np.asarray(draws, np.float64)
    assert np.all((draws >= 0.0) & (draws <= 1.0))
    # Empirical mean within 5 standard errors (σ/√n with the sample σ; a 5σ miss has
    # probability 6e-7 per logit, and the seed is fixed).
    means = np.asarray(MEAN(jnp.asarray(logits)), np.float64)
    se = draws.std(axis=0) / math.sqrt(n)
    assert np.all(np.abs(draws.mean(axis=0) - means) < 5 * se), (draws.mean(axis=0), means, se)
    # Kolmogorov–Smirnov: sup |F_n − F| < 1.95/√n, the 0.1% critical value (≈ 0.014 here). A
    # sign error in l shifts the CDF by ≳ 0.05 at |l| = 0.2 and far more beyond.
    ecdf_hi = np.arange(1, n + 1) / n
    for j, logit in enumerate(logits):
        f = _cdf(float(logit), np.sort(draws[:, j]))
        ks = max(np.max(ecdf_hi - f), np.max(f - (ecdf_hi - 1.0 / n)))
        assert ks < 1.95 / math.sqrt(n), (logit, ks)


def test_samples_are_the_inverse_cdf():
    """Each draw is F⁻¹(u) for the U[0, 1) variate u that `sample` draws from the same key,
    checked against float64 on every branch (series, log1p, log). In the tails (1 − u ~ 1/n)
    at |l| = 18, log1p(u·expm1(l)) kept for large |l| would be off by ~1e-5: expm1(l) rounds
    to −1 and loses e^l."""
    mags = np.array(
        [0.0, 1e-6, 1e-2 * (1 - 1e-6), 1e-2, 0.3, 1.0, 2.0, 18.0, 50.0, 1e4], np.float32
    )
    logits = np.concatenate([-mags[1:], mags])
    n = 4096
    shape = (n, logits.size)
    key = jax.random.key(1)
    x = np.asarray(SAMPLE(key, jnp.broadcast_to(jnp.asarray(logits), shape)), np.float64)
    u = np.asarray(jax.random.uniform(key, shape, jnp.float32), np.float64)
    lg = np.broadcast_to(logits.astype(np.float64), shape)
    a = np.where(lg > 0, 1.0 - u, u)  # F⁻¹(u; l) = 1 − F⁻¹(1 − u; −l)
    m = -np.abs(lg)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(m < -1.0, np.log((1 - a) + a * np.exp(m)) / m, np.log1p(a * np.expm1(m)) / m)
    y = np.clip(np.where(m == 0.0, a, y), 0.0, 1.0)
    expected = np.where(lg > 0, 1.0 - y, y)
    # Measured ≤ 4e-7 (float32 rounding of u·expm1(l) amplified by ≤ 1/|l| near the cuts).
    np.testing.assert_allclose(x, expected, rtol=0, atol=1e-6)
    # Continuity across l = 0 with a shared u: no jump between the l ≤ 0 and l > 0 formulas.
    at = lambda lgt: SAMPLE(key, jnp.full((n, 1), lgt, jnp.float32))
    np.testing.assert_allclose(at(1e-7), at(0.0), atol=1e-7)
    np.testing.assert_allclose(at(-1e-7), at(0.0), atol=1e-7)


@pytest.mark.parametrize("x", [0.0, 0.3, 1.0])
def test_gradient_finite_and_correct(x):
    logits = [0.0, 1e-6, -1e-6, 0.3, -0.3, 0.49, -0.49, 0.5, -0.5, 1.0, -1.0, 50.0, -50.0]
    logits = np.array(logits, np.float32)
    xs = jnp.full((logits.size, 1), x, jnp.float32)
    grad = jax.jit(jax.grad(lambda lg: _CB.log_prob(lg, xs).sum()))(jnp.asarray(logits)[:, None])
    grad = np.asarray(grad, np.float64)[:, 0]
    assert np.all(np.isfinite(grad))
    # Central difference of the float64 reference x·l − A(l); h = 1e-4 keeps l ± h off 0 and
    # the truncation (h² A'''/6 ≲ 1e-10) and round-off (1e-16·A/h ≲ 1e-10) negligible.
    lg, h = logits.astype(np.float64), 1e-4
    log_p = lambda lgt: x * lgt - _log_partition(lgt)
    fd = (log_p(lg + h) - log_p(lg - h)) / (2 * h)
    # float32 gradient error measured ≤ 4e-7 (σ(l) and d log C/dl). 1e-6 still sees the l⁸
    # series term dropped (1.4e-6 at l = ±0.49, just below the cut) or its sign flipped (2.8e-6).
    np.testing.assert_allclose(grad, fd, rtol=0, atol=1e-6)
    # Exponential-family identity: d/dl log p(x|l) = x − E[x].
    mean = np.asarray(MEAN(jnp.asarray(logits)), np.float64)
    np.testing.assert_allclose(grad, x - mean, rtol=0, atol=1e-6)


def test_leading_sample_axis_and_bernoulli_plus_log_c():
    """decoder_out [L, B, H, W, C] against x [B, H, W, C] gives [L, B], row by row, and equals the
    Bernoulli log-likelihood plus Σ log C over the pixels."""
    num_samples, b, h, w, c = 4, 3, 4, 5, 2
    k1, k2 = jax.random.split(jax.random.key(2))
    out = 3.0 * jax.random.normal(k1, (num_samples, b, h, w, c))
    x = jax.random.uniform(k2, (b, h, w, c))
    got = LOG_PROB(out, x)
    assert got.shape == (num_samples, b)
    rows = jnp.stack([LOG_PROB(out[i], x) for i in range(num_samples)])
    np.testing.assert_allclose(got, rows, rtol=1e-6)
    log_c = LOG_C(out).sum(axis=(2, 3, 4))  # [L, B]
    # Sums of 40 terms of size ~5: a few float32 ulps of 100 is ~1e-5.
    np.testing.assert_allclose(
        got - jax.jit(bernoulli.make().log_prob)(out, x), log_c, rtol=0, atol=3e-5
    )
    ref = np.asarray(_log_c_from_lambda(np.asarray(out, np.float64))).sum(axis=(2, 3, 4))
    np.testing.assert_allclose(log_c, ref, rtol=1e-6)
    assert MEAN(out).shape == (num_samples, b, h, w, c)
    assert SAMPLE(jax.random.key(3), out).shape == (num_samples, b, h, w, c)
