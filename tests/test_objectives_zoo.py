"""The objectives beyond the ELBO (IWAE, InfoVAE, β-TCVAE, capacity-annealed β-VAE) and the
collapse remedies they share (KL warm-up, free bits): each against its maths, on the
linear-Gaussian VAE of tests/test_linear_gaussian.py where that has a closed form, and each
trained a few steps through the CLI."""

import json
import math
import os
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special
import scipy.stats
from flax import nnx

from tests.helpers import main_command, tiny_config
from tests.test_linear_gaussian import B, D, P, _exact_elbo, _exact_log_px, _model, _problem
from vae_jax.components import Spec
from vae_jax.config_check import validate_config
from vae_jax.config_lib import base_config
from vae_jax.distributions import DiagGaussian, standard_normal_log_prob
from vae_jax.errors import ConfigError
from vae_jax.hyper import DEFAULTS, Hyper, hyper_from_config
from vae_jax.model import VAE
from vae_jax.objectives import OBJECTIVES, Context, remedies
from vae_jax.objectives.annealed import capacity
from vae_jax.objectives.beta_tcvae import decompose as _decompose
from vae_jax.objectives.elbo import elbo_terms
from vae_jax.objectives.infovae import mmd as _mmd
from vae_jax.objectives.iwae import iwae_terms
from vae_jax.objectives.weights import log_weights
from vae_jax.sweep.spec import expand, group, parse_axes, traced

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_TRAIN = 100
ZOO = ("iwae", "infovae", "beta_tcvae", "annealed")
decompose = jax.jit(_decompose, static_argnames=("num_train", "estimator"))
mmd = jax.jit(_mmd, static_argnames=("kernel", "unbiased"))


class ShiftedNormal(nnx.Module):
    """p(z) = N(1, I): a prior that is not the standard normal, with no closed-form KL."""

    def __init__(self, latent_dim: int):
        self._dim = latent_dim

    @property
    def latent_dim(self) -> int:
        return self._dim

    def log_prob(self, z, *, encoder=None):
        return standard_normal_log_prob(z - 1.0)

    def sample(self, key, num_samples, *, encoder=None, temperature=1.0):
        return 1.0 + temperature * jax.random.normal(key, (num_samples, self._dim))

    def analytic_kl(self, q):
        return None


def _linear(loc_shift=0.3, log_scale_shift=0.4, prior=None):
    """(model, x [B, P], exact log p(x) [B], problem): the linear-Gaussian VAE with an
    encoder off the true posterior (wider than it, so importance sampling converges)."""
    w, b, x, (a, c, log_scale) = _problem()
    model = _model(w, b, a, c + loc_shift, log_scale + log_scale_shift)
    if prior is not None:
        model = VAE(model.encoder, model.decoder, prior, "gaussian", model.likelihood)
    return model, jnp.asarray(x, jnp.float32), _exact_log_px(w, b, x), (w, b, x)


def _objective(name, reduction="mean", **fields):
    section = base_config().objective[name]
    for k, v in fields.items():
        section[k] = v
    spec = Spec((P,), num_train=N_TRAIN, batch_size=B, latent_dim=D, reduction=reduction)
    return OBJECTIVES[name].make(section, spec)


def _ctx(step=0, **hyper):
    h = Hyper(**{k: jnp.float32(v) for k, v in hyper.items()})
    return Context(jnp.int32(step), h, N_TRAIN, B)


def test_hyper_defaults_are_the_configs_and_fill_missing_fields():
    assert dict(base_config().hyper) == DEFAULTS
    assert set(DEFAULTS) == set(Hyper._fields)
    assert Hyper().filled()._asdict() == DEFAULTS
    assert Hyper(beta=2.0, free_bits=0.5).filled().tc_beta == DEFAULTS["tc_beta"]
    from_config = hyper_from_config(base_config().hyper)
    assert all(v.dtype == jnp.float32 for v in from_config)  # every field traced


# IWAE ---------------------------------------------------------------------------------


def test_iwae_with_one_sample_is_the_elbo_of_the_same_draw():
    """L_1 at key k is log w(z) with z drawn by fold_in(k, 0) (objectives/weights.py). That
    equals the 1-sample ELBO at key fold_in(k, 0) (elbo_terms: the same z) when its KL is
    the Monte Carlo log q(z|x) − log p(z) of that z; the library's ELBO uses the closed-form
    KL instead, so the two agree in expectation over keys, not draw by draw."""
    model, x, _, (w, b, x64) = _linear()
    key = jax.random.key(0)
    iw = jax.jit(lambda k: iwae_terms(model, x, k, 1))(key)
    k0 = jax.random.fold_in(key, 0)
    e = jax.jit(lambda k: elbo_terms(model, x, k, 1))(k0)
    q = model.posterior(x)
    z = q.sample(k0)
    mc_elbo = e["log_px"] - (q.log_prob(z) - model.log_prior(z))
    np.testing.assert_allclose(iw["iwae"], mc_elbo, rtol=1e-6)
    np.testing.assert_array_equal(iw["iwae"], iw["elbo"])  # K = 1: the bound is its mean
    np.testing.assert_allclose(iw["kl"], q.kl_to_standard_normal(), rtol=1e-6)

    # Without a closed-form KL, the displayed KL is that Monte Carlo KL at z_1: then
    # L_1 = log p(x|z_1) − kl to round-off.
    shifted, _, _, _ = _linear(prior=ShiftedNormal(D))
    other = jax.jit(lambda k: iwae_terms(shifted, x, k, 1))(key)
    z1_log_px = jax.jit(lambda k: elbo_terms(shifted, x, k, 1)["log_px"])(k0)
    np.testing.assert_allclose(other["iwae"], z1_log_px - other["kl"], rtol=1e-6)

    objective = _objective("iwae", num_samples=1)
    loss, metrics = objective.loss(model, {"x": x}, key, _ctx())
    np.testing.assert_allclose(loss, -mc_elbo.mean(), rtol=1e-6)
    assert objective.bound and set(metrics) == {"loss", "iwae", "elbo", "kl"}

    # In expectation over 400 keys: the closed-form ELBO, within 4 standard errors.
    draws = jax.jit(jax.vmap(lambda k: iwae_terms(model, x, k, 1)["iwae"]))(
        jax.random.split(jax.random.key(1), 400)
    )  # [S, B]
    loc, scale = (np.asarray(a, np.float64) for a in (q.loc, q.scale))
    exact = _exact_elbo(w, b, x64, loc, scale)
    se = np.asarray(draws).std(axis=0) / np.sqrt(400)
    np.testing.assert_array_less(np.abs(np.asarray(draws).mean(axis=0) - exact), 4 * se)


def test_iwae_bound_grows_with_k_and_reaches_log_px():
    """E[L_K] increases in K and tends to log p(x) (Burda et al. 2015, Theorem 1), on the
    linear-Gaussian model where log p(x) is exact. Sample k has key fold_in(key, k), so L_K
    for every K ≤ 256 is a prefix of one set of 256 log-weights (checked for K = 16)."""
    model, x, log_px, _ = _linear()
    keys = jax.random.split(jax.random.key(2), 400)
    ks = (1, 4, 16, 64, 256)

    @jax.jit
    def bounds(keys):
        def one(key):
            log_w = log_weights(model, model.posterior(x), x, key, 0, ks[-1])  # [K, B]
            return jnp.stack([jax.nn.logsumexp(log_w[:k], 0) - math.log(k) for k in ks])

        return jax.vmap(one)(keys)  # [S, len(ks), B]

    per_key = np.asarray(bounds(keys), np.float64)
    np.testing.assert_allclose(
        per_key[0, 2], iwae_terms(model, x, keys[0], 16)["iwae"], rtol=1e-6, atol=1e-5
    )
    mean_b = per_key.mean(axis=2)  # [S, len(ks)], averaged over the examples
    sqrt_s = np.sqrt(len(keys))
    for i in range(len(ks) - 1):  # paired over keys: the samples are shared
        step = mean_b[:, i + 1] - mean_b[:, i]
        assert step.mean() > -3 * step.std() / sqrt_s, (ks[i], ks[i + 1], step.mean())
    total = mean_b[:, -1] - mean_b[:, 0]
    assert total.mean() > 10 * total.std() / sqrt_s  # a strict increase, far beyond noise
    gap = log_px.mean() - mean_b.mean(axis=0)  # [len(ks)], ≥ 0 in expectation
    se = mean_b.std(axis=0) / sqrt_s
    assert np.all(gap > -3 * se), gap
    assert gap[0] > 1.0 and abs(gap[-1]) < 0.02, gap  # 1.7 nats at K = 1, 0.005 at K = 256
    assert np.all(np.diff(gap) < 0), gap


# InfoVAE ------------------------------------------------------------------------------


def test_mmd_is_zero_on_identical_sets_and_grows_with_a_shift():
    """The biased V-statistic (what the objective uses) is 0 for two identical sets and
    ≥ 0; it grows with the distance between the distributions. The unbiased U-statistic
    averages to 0 over independent draws of one distribution, where the V-statistic keeps
    a positive O(1/n) bias."""
    x = jax.random.normal(jax.random.key(0), (200, 4))
    y = jax.random.normal(jax.random.key(1), (200, 4))
    for kernel in ("imq", "rbf"):
        assert abs(float(mmd(x, x, kernel))) < 1e-6  # 0, to the round-off of three means
        shifted = [float(mmd(x, y + jnp.asarray([[s, 0, 0, 0]]), kernel)) for s in (0, 0.5, 1, 2)]
        assert shifted[0] > 0 and np.all(np.diff(shifted) > 0), shifted

    def pair(key):
        a, b = jax.random.normal(key, (2, 50, 4))
        return mmd(a, b, "imq", unbiased=True), mmd(a, b, "imq")

    unbiased, biased = (
        np.asarray(v) for v in jax.jit(jax.vmap(pair))(jax.random.split(jax.random.key(2), 200))
    )
    assert abs(unbiased.mean()) < 3 * unbiased.std() / np.sqrt(200)
    assert biased.mean() > 10 * biased.std() / np.sqrt(200)


@pytest.mark.parametrize("alpha, lam", [(0.0, 1000.0), (1.0, 1.0), (0.5, 10.0)])
def test_infovae_loss_is_its_formula(alpha, lam):
    """loss = −log p(x|z) + (1 − α)·KL + (α + λ − 1)·MMD, batch-mean; summed: B times."""
    model, x, _, _ = _linear()
    key, ctx = jax.random.key(3), _ctx(info_alpha=alpha, mmd_lambda=lam)
    loss, m = _objective("infovae").loss(model, {"x": x}, key, ctx)
    expected = -m["log_px"] + (1 - alpha) * m["kl"] + (alpha + lam - 1) * m["mmd"]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)
    np.testing.assert_allclose(m["elbo"], m["log_px"] - m["kl"], rtol=1e-6)
    summed, _ = _objective("infovae", reduction="sum").loss(model, {"x": x}, key, ctx)
    np.testing.assert_allclose(summed, B * loss, rtol=1e-5)


def test_infovae_mmd_is_of_the_codes_against_prior_draws_and_grows_with_a_shift():
    """The logged MMD is the kernel MMD of the batch's codes z against prior draws (not of
    z against itself): recomputed from the same keys, and larger when the encoder's means
    move 3 away from the prior."""
    model, x, _, _ = _linear()
    key, ctx = jax.random.key(4), _ctx()
    _, m = _objective("infovae").loss(model, {"x": x}, key, ctx)
    key_z, key_prior = jax.random.split(key)
    z = model.sample_latent(model.posterior(x), key_z)
    prior_z = model.prior.sample(key_prior, x.shape[0])
    np.testing.assert_allclose(m["mmd"], _mmd(z, prior_z, "imq"), rtol=1e-5)
    shifted, _, _, _ = _linear(loc_shift=3.3)
    _, m_shifted = _objective("infovae").loss(shifted, {"x": x}, key, ctx)
    assert float(m_shifted["mmd"]) > 5 * float(m["mmd"]) > 0


# β-TCVAE ------------------------------------------------------------------------------


def _codes(key, m, d=3, collapsed=False):
    """A DiagGaussian [m, d] posterior for m examples, and one draw z from it."""
    k1, k2, k3 = jax.random.split(key, 3)
    loc = jax.random.normal(k1, (1 if collapsed else m, d)) * 1.5
    log_scale = jax.random.uniform(k2, (1 if collapsed else m, d), minval=-1.0, maxval=0.3)
    q = DiagGaussian(jnp.broadcast_to(loc, (m, d)), jnp.broadcast_to(log_scale, (m, d)))
    return q, q.sample(k3)


@pytest.mark.parametrize("estimator", ["mws", "mss"])
def test_tc_terms_add_up_to_the_kl(estimator):
    """MI + TC + DWKL = log q(z|x) − log p(z) per example, whatever the aggregate estimate
    (the log q̂ terms cancel): so their mean over a batch of 1000 is the analytic KL within
    the Monte Carlo error of one draw per example (4 standard errors); the estimator's bias
    lies only in how the KL is split."""
    q, z = _codes(jax.random.key(4), 1000)
    mi, tc, dwkl = decompose(q, z, num_train=50_000, estimator=estimator)
    mc_kl = q.log_prob(z) - standard_normal_log_prob(z)
    np.testing.assert_allclose(mi + tc + dwkl, mc_kl, rtol=1e-4, atol=1e-3)
    analytic = q.kl_to_standard_normal()
    se = float(jnp.std(mc_kl - analytic)) / np.sqrt(1000)
    assert abs(float((mi + tc + dwkl).mean() - analytic.mean())) < 4 * se


def test_tc_estimators_against_the_exact_split():
    """With the batch the whole data set (N = M), q(z) = (1/N) Σ_n q(z|x_n) exactly: the
    stratified estimator (mss) is then exact, and MWS's log q̂ is log q(z) − log N, so its
    MI, TC and DWKL are offset by log N, (D − 1)·log N and −D·log N. For a collapsed code
    (every q(z|x) the same, N ≫ M) the true MI and TC are 0: mss finds 0, MWS log N and
    (D − 1)·log N: the bias of its split, not of its sum."""
    m, d = 64, 3
    q, z = _codes(jax.random.key(5), m, d)
    loc, scale, zz = (np.asarray(a, np.float64) for a in (q.loc, q.scale, z))
    # log N(z_id; loc_jd, scale_jd) [i, j, d], and log N(z_id; 0, 1) [i, d], in float64
    per_dim = scipy.stats.norm.logpdf(zz[:, None], loc[None], scale[None])
    log_qz = scipy.special.logsumexp(per_dim.sum(-1), axis=1) - math.log(m)  # [M], exact
    log_qz_dims = scipy.special.logsumexp(per_dim, axis=1) - math.log(m)  # [M, D], exact
    log_qz_x = np.einsum("iid->i", per_dim)
    exact = (
        log_qz_x - log_qz,
        log_qz - log_qz_dims.sum(-1),
        (log_qz_dims - scipy.stats.norm.logpdf(zz)).sum(-1),
    )
    mss = decompose(q, z, num_train=m, estimator="mss")
    mws = decompose(q, z, num_train=m, estimator="mws")
    offsets = (math.log(m), (d - 1) * math.log(m), -d * math.log(m))
    for e, s, w, off in zip(exact, mss, mws, offsets, strict=True):
        np.testing.assert_allclose(s, e, atol=2e-4)
        np.testing.assert_allclose(w, e + off, atol=2e-4)

    n = 50_000
    q, z = _codes(jax.random.key(6), m, d, collapsed=True)
    mi, tc, dwkl = decompose(q, z, num_train=n, estimator="mss")
    np.testing.assert_allclose(mi, 0.0, atol=2e-4)
    np.testing.assert_allclose(tc, 0.0, atol=2e-4)
    mi, tc, _ = decompose(q, z, num_train=n, estimator="mws")
    np.testing.assert_allclose(mi, math.log(n), atol=2e-4)
    np.testing.assert_allclose(tc, (d - 1) * math.log(n), rtol=1e-5)


def test_beta_tcvae_with_unit_weights_is_the_monte_carlo_elbo():
    model, x, _, _ = _linear()
    key = jax.random.key(7)
    objective = _objective("beta_tcvae")
    loss, m = objective.loss(model, {"x": x}, key, _ctx())
    q = model.posterior(x)
    z = model.sample_latent(q, key)
    mc = model.log_px(x, z) - (q.log_prob(z) - model.log_prior(z))
    np.testing.assert_allclose(loss, -mc.mean(), rtol=1e-5)
    np.testing.assert_allclose(
        m["mi"] + m["tc"] + m["dwkl"], (-mc + model.log_px(x, z)).mean(), rtol=1e-4
    )
    heavier, _ = objective.loss(model, {"x": x}, key, _ctx(tc_beta=6.0))
    _, tc_mws, _ = _decompose(q, z, N_TRAIN, "mws")  # the loss's estimator (the default)
    np.testing.assert_allclose(heavier, loss + 5.0 * tc_mws.mean(), rtol=1e-5)
    # The logged terms are the mss split, whatever the loss's estimator.
    shown = _decompose(q, z, N_TRAIN, "mss")
    for name, value in zip(("mi", "tc", "dwkl"), shown, strict=True):
        np.testing.assert_allclose(m[name], value.mean(), rtol=1e-5, atol=1e-5)
    assert not np.allclose(m["tc"], tc_mws.mean())

    other, x, _, _ = _linear(prior=ShiftedNormal(D))
    with pytest.raises(ConfigError, match="standard_normal"):
        objective.loss(other, {"x": x}, key, _ctx())


# Capacity-annealed β-VAE ----------------------------------------------------------------


def test_capacity_follows_the_schedule():
    steps = 100
    for step, expected in ((0, 0.0), (25, 2.5), (50, 5.0), (100, 10.0), (400, 10.0)):
        assert float(capacity(jnp.int32(step), 10.0, steps)) == pytest.approx(expected)
    assert float(capacity(jnp.int32(0), 10.0, 0)) == 10.0  # S = 0: C_max from the start

    model, x, _, _ = _linear()
    objective = _objective("annealed", capacity_steps=steps)
    step_fn = jax.jit(
        lambda s, c_max: objective.loss(
            model, {"x": x}, jax.random.key(8), _ctx(s, capacity_max=c_max)
        )
    )
    for step in (0, 30, 100, 250):
        loss, m = step_fn(jnp.int32(step), jnp.float32(10.0))
        assert float(m["capacity"]) == pytest.approx(10.0 * min(1.0, step / steps))
        gamma = DEFAULTS["capacity_gamma"]
        np.testing.assert_allclose(
            loss, -m["log_px"] + gamma * abs(m["kl"] - m["capacity"]), rtol=1e-5
        )
    assert step_fn._cache_size() == 1  # the step and C_max are traced


# Remedies: free bits and warm-up -----------------------------------------------------


def test_free_bits_floors_each_dimension():
    """Dimensions whose batch-mean KL is below λ cost λ and get no KL gradient."""
    kl = jnp.asarray([[0.0, 0.1, 2.0], [0.2, 0.3, 4.0]])  # [B, D]: means 0.1, 0.2, 3.0
    np.testing.assert_allclose(remedies.free_bits_kl(kl, 0.5).mean(), 0.5 + 0.5 + 3.0)
    np.testing.assert_allclose(remedies.free_bits_kl(kl, 0.0), kl.sum(-1))
    grad = jax.grad(lambda k: remedies.free_bits_kl(k, 0.5).mean())(kl)
    np.testing.assert_allclose(grad, [[0, 0, 0.5], [0, 0, 0.5]])

    # Through the ELBO: an encoder whose posteriors are N(c, 1) for every x has per-dimension
    # KL c²/2 = (0, 0.005, 2): with λ = 0.5 the KL term is 0.5 + 0.5 + 2 (same draws).
    w, b, x, _ = _problem()
    c = np.asarray([0.0, 0.1, 2.0])
    model = _model(w, b, np.zeros((D, P)), c, np.zeros(D))
    batch, key = {"x": jnp.asarray(x, jnp.float32)}, jax.random.key(9)
    objective = _objective("elbo")
    plain, m = objective.loss(model, batch, key, _ctx(free_bits=0.0))
    floored, _ = objective.loss(model, batch, key, _ctx(free_bits=0.5))
    np.testing.assert_allclose(m["kl"], 2.005, rtol=1e-5)
    np.testing.assert_allclose(floored - plain, 3.0 - 2.005, rtol=1e-4)
    for name in ("infovae", "annealed", "beta_tcvae"):  # the floor reaches every KL term
        obj = _objective(name)
        a, _ = obj.loss(model, batch, key, _ctx(free_bits=0.0, capacity_max=0.0))
        f, _ = obj.loss(model, batch, key, _ctx(free_bits=0.5, capacity_max=0.0))
        scale = DEFAULTS["capacity_gamma"] if name == "annealed" else 1.0
        np.testing.assert_allclose(f - a, scale * 0.995, rtol=1e-3, err_msg=name)

    # Another prior has no per-dimension KL: the term is left alone (validation refuses λ > 0).
    other = VAE(model.encoder, model.decoder, ShiftedNormal(D), "gaussian", model.likelihood)
    a, _ = objective.loss(other, batch, key, _ctx(free_bits=0.0))
    f, _ = objective.loss(other, batch, key, _ctx(free_bits=0.5))
    assert float(a) == float(f)


def test_kl_warmup_scales_the_kl_term_of_every_objective_that_has_one():
    steps = jnp.int32(5)
    ctx = _ctx(5, info_alpha=0.5)
    section = base_config().objective.infovae
    section.kl_warmup_steps = 20
    assert float(remedies.warmup(section, ctx, 2.0)) == pytest.approx(2.0 * 5 / 20)
    section.kl_warmup_steps, section.kl_warmup_epochs = 0, 0.5  # epoch = step · B / N
    expected = min(1.0, 5 * B / N_TRAIN / 0.5)
    assert float(remedies.warmup(section, ctx, 1.0)) == pytest.approx(expected)

    model, x, _, _ = _linear()
    key = jax.random.key(10)
    loss, m = _objective("infovae", kl_warmup_steps=20).loss(model, {"x": x}, key, ctx)
    assert float(m["kl_weight"]) == pytest.approx(0.5 * 5 / 20)
    np.testing.assert_allclose(
        loss, -m["log_px"] + m["kl_weight"] * m["kl"] + 999.5 * m["mmd"], rtol=1e-5
    )
    _, m = _objective("beta_tcvae", kl_warmup_epochs=0.5).loss(model, {"x": x}, key, _ctx(steps))
    assert float(m["kl_weight"]) == pytest.approx(expected)
    _, m = _objective("elbo", kl_warmup_steps=20).loss(model, {"x": x}, key, _ctx(steps, beta=2.0))
    assert float(m["beta"]) == pytest.approx(2.0 * 5 / 20)


# Config: what each objective refuses, and what a sweep may trace ------------------------


def _config(objective, prior="standard_normal", **fields):
    c = base_config()
    c.objective.name, c.model.prior = objective, prior
    for field, value in fields.items():
        section, name = field.split(".")
        c[section][name] = value
    return c


@pytest.mark.parametrize(
    "objective, prior, fields, named",
    [
        ("iwae", "standard_normal", {"hyper.free_bits": 0.5}, "hyper.free_bits"),
        ("iwae", "standard_normal", {"hyper.beta": 2.0}, "hyper.beta"),
        ("annealed", "standard_normal", {"hyper.beta": 4.0}, "hyper.beta"),
        ("infovae", "standard_normal", {"hyper.tc_beta": 6.0}, "hyper.tc_beta"),
        ("infovae", "standard_normal", {"hyper.info_alpha": 1.5}, "hyper.info_alpha"),
        ("infovae", "standard_normal", {"hyper.mmd_lambda": 0.5}, "hyper.mmd_lambda"),
        ("beta_tcvae", "standard_normal", {"hyper.tc_beta": -1.0}, "hyper.tc_beta"),
        ("elbo", "mog", {"hyper.free_bits": 0.5}, "hyper.free_bits"),
        ("beta_tcvae", "mog", {}, "model.prior"),
    ],
)
def test_config_refuses_what_an_objective_cannot_use(objective, prior, fields, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")) as error:
        validate_config(_config(objective, prior, **fields))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    "objective, field",
    [
        ("iwae", "kl_warmup_steps"),
        ("iwae", "kl_warmup_epochs"),
        ("annealed", "kl_warmup_steps"),
    ],
)
def test_warmup_is_refused_where_it_does_not_apply(objective, field):
    c = _config(objective)
    c.objective[objective][field] = 5
    with pytest.raises(ConfigError, match=f"objective.{objective}.{field}"):
        validate_config(c)


def test_configs_that_are_accepted():
    for objective, fields in [
        ("elbo", {"hyper.free_bits": 0.5, "hyper.beta": 4.0}),
        ("infovae", {"hyper.info_alpha": 1.0, "hyper.mmd_lambda": 1.0, "hyper.free_bits": 0.1}),
        ("beta_tcvae", {"hyper.tc_beta": 6.0}),
        ("annealed", {"hyper.capacity_max": 50.0}),
        ("iwae", {}),
        ("autoencoder", {"hyper.beta": 4.0, "hyper.free_bits": 0.5}),  # a VAE config's copy
    ]:
        validate_config(_config(objective, **fields))


def test_new_fields_are_traced_so_a_sweep_vmaps_over_them():
    for field in Hyper._fields:
        assert traced(f"hyper.{field}")
    config = tiny_config(**{"objective.name": "beta_tcvae"})
    members = expand(config, parse_axes(["hyper.tc_beta=1,6", "seed=0,1"], config))
    assert [len(g) for g in group(members)] == [4]  # one program for the four members

    model, x, _, _ = _linear()
    objective, key = _objective("elbo"), jax.random.key(11)
    graphdef, state = nnx.split(model)

    def loss(hyper):
        ctx = Context(jnp.int32(0), hyper, N_TRAIN, B)
        return objective.loss(nnx.merge(graphdef, state), {"x": x}, key, ctx)[0]

    floors = jnp.asarray([0.0, 0.5, 2.0], jnp.float32)
    swept = jax.jit(jax.vmap(loss))(Hyper(beta=jnp.ones(3), free_bits=floors))
    looped = [loss(Hyper(beta=jnp.float32(1.0), free_bits=f)) for f in floors]
    np.testing.assert_allclose(swept, looped, rtol=1e-6)
    assert len(set(np.round(np.asarray(swept), 4))) == 3


# Each new objective trains through the CLI --------------------------------------------


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """The four CLI runs, started together (each is mostly compilation) and then awaited."""
    root = tmp_path_factory.mktemp("zoo")
    # Compiling is most of each run: XLA:CPU without LLVM optimisation compiles ~35 % faster,
    # and these runs test the objectives' wiring, not the speed of their code.
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags.strip()}
    procs = {}
    for name in ZOO:
        flags = {"objective.name": name, "data.name": "synthetic", "eval.diagnostics": False}
        flags.update({"eval.autoencoder_steps": 0, "eval.num_figure_examples": 0})
        flags.update({"train.eval_every": 0, "model.mlp.hidden_dims": "(64,)"})
        flags.update({"model.latent_dim": 4, "train.learning_rate": 3e-3})
        command = main_command(root / name, flags)
        procs[name] = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[name] = (proc.returncode, stdout, stderr, root / name / "metrics.jsonl")
    return out


@pytest.mark.parametrize("name", ZOO)
def test_objective_trains_through_the_cli_with_a_falling_loss(cli_runs, name):
    returncode, stdout, stderr, metrics = cli_runs[name]
    assert returncode == 0, stderr[-3000:]
    with open(metrics) as f:
        losses = [json.loads(line)["loss"] for line in f]
    assert len(losses) == 4 and np.all(np.isfinite(losses))
    assert losses[-1] < losses[0], losses
    progress = (
        OBJECTIVES[name].make(base_config().objective[name], Spec((28, 28, 1), 1, 1, 4)).progress
    )
    first = next(ln for ln in stdout.splitlines() if ln.startswith("step "))
    assert all(f" {k} " in first for k in progress), first
