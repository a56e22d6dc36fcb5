"""Learned priors (vae_jax/priors: mog, vamp, flow) against outside oracles: the VampPrior is
the mixture of the encoder's posteriors at its pseudo-inputs (scipy), the flow's log-density
is the change of variables with a `jax.jacfwd` Jacobian and its samples invert, the mixture
of Gaussians integrates to 1; each trains through the CLI with a falling loss, and its
importance-sampled log p(x) is finite."""

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

from tests.helpers import main_command
from vae_jax.components import Spec
from vae_jax.config_check import validate_config
from vae_jax.config_lib import apply_runlocal, base_config
from vae_jax.errors import ConfigError
from vae_jax.evaluate import loglik
from vae_jax.model import build_model
from vae_jax.objectives.elbo import elbo_terms
from vae_jax.priors import PRIORS
from vae_jax.priors.flow import RealNVPPrior
from vae_jax.priors.mog import MixtureOfGaussians

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LEARNED = ["mog", "vamp", "flow"]
SHAPE, LATENT = (8, 8, 1), 3


def _config(prior: str):
    c = apply_runlocal(base_config())
    c.model.latent_dim, c.model.mlp.hidden_dims, c.model.prior = LATENT, (16,), prior
    c.model.vamp.num_pseudo_inputs = 5
    c.model.flow.hidden = 8
    return c


# The tests' own random inputs come from numpy: each eager jax.random call of a new shape
# costs an XLA compile, and compiles are most of this file's time on a CPU.
def _normal(seed, shape, scale=1.0):
    return jnp.asarray(scale * np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _uniform(seed, shape, low, high):
    return jnp.asarray(np.random.default_rng(seed).uniform(low, high, size=shape), jnp.float32)


def _model(prior: str, seed: int = 0):
    return build_model(_config(prior).model, SHAPE, jax.random.key(seed))


def _randomize(module, seed, scale=0.5):
    """Replace every nnx.Param of `module` by N(0, scale²) draws (the flow's zero-initialised
    last layers included), so that nothing is at its identity initialisation."""
    state = nnx.state(module, nnx.Param)
    leaves, treedef = jax.tree.flatten(state)
    new = [_normal(seed + i, leaf.shape, scale) for i, leaf in enumerate(leaves)]
    nnx.update(module, jax.tree.unflatten(treedef, new))


def _binary_images(seed, batch=6):
    return jnp.asarray(np.random.default_rng(seed).random((batch, *SHAPE)) < 0.3, jnp.float32)


# --- VampPrior -----------------------------------------------------------------------------


def test_vamp_log_prob_is_the_mixture_of_the_encoders_posteriors():
    """log p(z) = logsumexp_k log q(z | u_k) − log K with u_k = clip(v_k, 0, 1), written out
    in float64 with scipy's normal log-density; bind(encoder) and model.log_prior_fn agree."""
    model = _model("vamp")
    prior = model.prior
    k = prior.num_pseudo_inputs
    raw = _uniform(1, (k, *SHAPE), -0.5, 1.5)
    prior.pseudo_inputs_raw[...] = raw  # some pixels outside [0, 1]: the clip matters
    q = model.encoder(jnp.clip(raw, 0.0, 1.0))
    loc, scale = (np.asarray(a, np.float64) for a in (q.loc, q.scale))  # [K, D]
    z = _normal(2, (4, 6, LATENT), scale=2.0)  # [S, B, D]
    zn = np.asarray(z, np.float64)[..., None, :]  # [S, B, 1, D]
    log_qk = scipy.stats.norm.logpdf(zn, loc, scale).sum(-1)  # [S, B, K]
    expected = scipy.special.logsumexp(log_qk, axis=-1) - math.log(k)
    got, bound, from_model = jax.jit(
        lambda z: (
            prior.log_prob(z, encoder=model.encoder),
            prior.bind(model.encoder)(z),
            model.log_prior_fn()(z),
        )
    )(z)
    assert got.shape == (4, 6)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(bound, got, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(from_model, got, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="encoder"):
        prior.log_prob(z)


def test_vamp_pseudo_inputs_get_gradient_inside_the_input_range_only():
    """The hard-tanh-like clip: ∂ log p / ∂v is non-zero for pixels in (0, 1), zero outside."""
    model = _model("vamp")
    raw = _uniform(3, model.prior.pseudo_inputs_raw.shape, -1.0, 2.0)
    model.prior.pseudo_inputs_raw[...] = raw
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    z = _normal(4, (8, LATENT))

    def log_p(params):
        return nnx.merge(graphdef, params, rest).log_prior(z).sum()

    grad = np.asarray(jax.jit(jax.grad(log_p))(params)["prior"]["pseudo_inputs_raw"][...])
    inside = (np.asarray(raw) > 0) & (np.asarray(raw) < 1)
    assert np.all(grad[~inside] == 0.0)
    assert np.mean(grad[inside] != 0.0) > 0.9


# --- RealNVP flow --------------------------------------------------------------------------


def _random_flow(dim, seed=0):
    flow = RealNVPPrior(dim, num_layers=4, hidden=8, key=jax.random.key(seed))
    _randomize(flow, seed + 100)
    return flow


def test_flow_starts_as_the_identity():
    flow = RealNVPPrior(LATENT, num_layers=4, hidden=8, key=jax.random.key(0))
    z = _normal(1, (5, LATENT))
    eps, log_p = jax.jit(lambda z: (flow.inverse(z)[0], flow.log_prob(z)))(z)
    np.testing.assert_allclose(eps, z)
    expected = scipy.stats.norm.logpdf(np.asarray(z, np.float64)).sum(-1)
    np.testing.assert_allclose(log_p, expected, rtol=1e-6)


def test_flow_log_prob_is_the_change_of_variables_with_a_jacfwd_jacobian():
    """log p(z) = log N(f⁻¹(z); 0, I) + log |det J|, J = jacfwd(f⁻¹)(z), in 2-D with random
    (non-zero) conditioner weights; the leading axes [S, B] are kept."""
    flow = _random_flow(2)
    z = _normal(5, (3, 7, 2), scale=1.5)  # [S, B, D]
    f_inv = lambda point: flow.inverse(point)[0]  # [D] -> [D]
    points = z.reshape(-1, 2)
    got, jac, eps = jax.jit(
        lambda z, p: (flow.log_prob(z), jax.vmap(jax.jacfwd(f_inv))(p), jax.vmap(f_inv)(p))
    )(z, points)
    assert got.shape == (3, 7)
    jac, eps = np.asarray(jac, np.float64), np.asarray(eps, np.float64)  # [N, D, D], [N, D]
    _, log_abs_det = np.linalg.slogdet(jac)
    expected = scipy.stats.norm.logpdf(eps).sum(-1) + log_abs_det
    np.testing.assert_allclose(got.reshape(-1), expected, rtol=1e-5, atol=1e-4)
    # The random flow is far from the identity: this is not N(0, I)'s log-density.
    standard = scipy.stats.norm.logpdf(np.asarray(points, np.float64)).sum(-1)
    assert np.max(np.abs(expected - standard)) > 0.5


def test_flow_samples_invert_and_temperature_scales_the_base():
    """f⁻¹(f(ε)) = ε with opposite log-determinants, and sample(key, n, T) is f(T·ε)."""
    flow = _random_flow(LATENT, seed=1)
    key = jax.random.key(6)

    @jax.jit
    def draw(key):
        eps = jax.random.normal(key, (64, LATENT))  # what sample() draws from its key
        out = {}
        for t in (1.0, 0.5):
            z = flow.sample(key, 64, temperature=t)
            back, log_det_inv = flow.inverse(z)
            out[t] = (z, back, log_det_inv, flow.forward(t * eps)[1])
        return eps, out

    eps, out = draw(key)
    for t, (z, back, log_det_inv, log_det_fwd) in out.items():
        assert z.shape == (64, LATENT)
        np.testing.assert_allclose(back, t * eps, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(log_det_inv, -log_det_fwd, rtol=1e-5, atol=1e-5)
        assert float(jnp.max(jnp.abs(z - t * eps))) > 0.1  # f is not the identity


# --- Mixture of Gaussians ------------------------------------------------------------------


def _random_mog(dim, k=3, seed=0, learn_weights=True):
    mog = MixtureOfGaussians(dim, k, learn_weights, key=jax.random.key(seed))
    mog.means[...] = _normal(seed + 1, mog.means.shape, scale=2.0)
    mog.log_scales[...] = _uniform(seed + 2, mog.log_scales.shape, -1.0, 0.5)
    if learn_weights:
        mog.logits[...] = _normal(seed + 3, mog.logits.shape)
    return mog


def test_mog_integrates_to_one_in_1d():
    mog = _random_mog(1)
    grid = np.linspace(-20.0, 20.0, 8001)
    log_p = jax.jit(mog.log_prob)(jnp.asarray(grid[:, None], jnp.float32))
    assert log_p.shape == grid.shape
    density = np.exp(np.asarray(log_p, np.float64))
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=1e-4)


def test_mog_integrates_to_one_in_2d():
    mog = _random_mog(2, k=4, seed=1)
    axis = np.linspace(-15.0, 15.0, 601)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1)  # [601, 601, 2]
    density = np.exp(np.asarray(jax.jit(mog.log_prob)(jnp.asarray(grid, jnp.float32)), np.float64))
    mass = np.trapezoid(np.trapezoid(density, axis, axis=1), axis)
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_mog_samples_have_the_mixtures_mean_and_variance():
    mog = _random_mog(2, k=3, seed=2)
    z = np.asarray(jax.jit(mog.sample, static_argnums=1)(jax.random.key(7), 40_000), np.float64)
    pi = scipy.special.softmax(np.asarray(mog.logits[...], np.float64))[:, None]
    m, s2 = np.asarray(mog.means[...], np.float64), np.exp(2 * np.asarray(mog.log_scale()))
    mean = (pi * m).sum(0)
    var = (pi * (s2 + m**2)).sum(0) - mean**2
    assert np.all(np.abs(z.mean(0) - mean) < 5 * np.sqrt(var / len(z)))  # 5 standard errors
    np.testing.assert_allclose(z.var(0), var, rtol=0.05)


def test_mog_fixed_weights_are_uniform_and_not_trained():
    mog = _random_mog(2, k=4, learn_weights=False)
    assert "logits" not in nnx.state(mog, nnx.Param)
    np.testing.assert_allclose(np.exp(np.asarray(mog.log_weights())), 0.25, rtol=1e-6)


# --- All learned priors --------------------------------------------------------------------


@pytest.mark.parametrize("prior", LEARNED)
def test_the_elbo_trains_the_prior_and_log_px_is_finite(prior):
    """The Monte Carlo KL reaches every one of the prior's parameters (the flow's with random
    conditioners: at its identity initialisation only the zeroed last layers get gradient);
    the importance-sampled log p(x) (K = 30 in chunks of 8, through model.log_prior_fn) and
    samples from the model are finite."""
    model = _model(prior)
    if prior == "flow":
        _randomize(model.prior, 2)
    x = _binary_images(0)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    @jax.jit
    def run(params, x):
        m = nnx.merge(graphdef, params, rest)
        loss = lambda p: (
            -elbo_terms(nnx.merge(graphdef, p, rest), x, jax.random.key(1), 2)["elbo"].mean()
        )
        return (
            jax.grad(loss)(params)["prior"],
            m.prior.analytic_kl(m.posterior(x)) is None,
            loglik.importance_log_likelihood(m, x, jax.random.key(3), 30, 8),
            m.sample(jax.random.key(4), 5),
        )

    grads, no_analytic_kl, log_px, samples = run(params, x)
    assert no_analytic_kl
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert norms and all(n > 0 for n in norms), norms
    assert log_px.shape == (len(x),) and np.all(np.isfinite(log_px))
    assert samples.shape == (5, *SHAPE) and np.all(np.isfinite(samples))


def test_configs_refuse_what_the_learned_priors_cannot_do():
    for prior in LEARNED:
        with pytest.raises(ConfigError, match=r"config.model.latent_dim=.*one-layer latent"):
            PRIORS[prior].make(
                _config(prior).model[prior],
                Spec(SHAPE, 100, 10, {"z1": 2, "z2": 2}, key=jax.random.key(0)),
            )
    for prior, temperature_ok in [("mog", False), ("vamp", False), ("flow", True)]:
        c = _config(prior)
        c.eval.sample_temperature = 0.7
        if temperature_ok:
            validate_config(c)
        else:
            with pytest.raises(ConfigError, match="eval.sample_temperature"):
                validate_config(c)
    for field, value in [
        ("mog.num_components", 0),
        ("vamp.num_pseudo_inputs", 0),
        ("vamp.init_mean", 2.0),
        ("vamp.init_std", -0.1),
        ("flow.num_layers", 0),
        ("flow.hidden", -3),
    ]:
        c = _config(field.split(".")[0])
        section, name = field.split(".")
        c.model[section][name] = value
        with pytest.raises(ConfigError, match=f"config.model.{field}="):
            validate_config(c)


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """One runlocal training run per learned prior through the CLI, at the prior's defaults
    (the VampPrior's K = 500), the three processes started together: each spends much of its
    time in single-threaded Python and XLA compiles, so two cores run them ~1.5x faster."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    runs = {}
    for prior in LEARNED:
        workdir = tmp_path_factory.mktemp(prior) / "run"
        flags = {"model.prior": prior, "data.name": "synthetic", "eval.diagnostics": False}
        command = main_command(workdir, {**flags, "eval.autoencoder_steps": 0})
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        runs[prior] = (workdir, process)
    done = {}
    for prior, (workdir, process) in runs.items():
        try:
            _, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            _, stderr = process.communicate()
        done[prior] = (workdir, process.returncode, stderr)
    return done


@pytest.mark.parametrize("prior", LEARNED)
def test_each_prior_trains_through_the_cli(prior, cli_runs):
    """40 runlocal steps: no skipped step, the loss falls, and the summary labels the KL a
    Monte Carlo estimate."""
    workdir, returncode, stderr = cli_runs[prior]
    assert returncode == 0, stderr[-3000:]
    with open(workdir / "metrics.jsonl") as f:
        records = [json.loads(line) for line in f]
    losses = [r["loss"] for r in records]
    assert len(losses) == 4 and all(r["nonfinite_steps"] == 0 for r in records)
    assert losses[-1] < losses[0], losses
    summary = json.loads((workdir / "summary.json").read_text())
    assert np.isfinite(summary["test_elbo_nats"])
    assert summary["kl_estimate"].startswith("Monte Carlo")
