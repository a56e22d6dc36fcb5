"""Two stochastic layers (model.net=mlp2, Burda et al. 2015 §5).

The maths is checked on a linear-Gaussian two-layer model, whose log p(x) and posterior have
closed forms: z2 ~ N(0, 1), z1 | z2 ~ N(a z2 + b, s²), x | z1 ~ N(c z1 + d, σ² I). With one
unit per layer the exact posterior p(z1|x) p(z2|z1) is in the family q(z1|x) q(z2|z1) (x and
z2 are independent given z1), so with it every importance weight equals p(x) exactly. Then
the nets' own hooks are compared with the densities written out by hand, and the net trains,
evaluates (per-layer active units, the Monte Carlo KL label) and refuses what it cannot do.
"""

import json
import os
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import scipy.stats
from flax import nnx

from tests.helpers import main_command, read_metrics
from vae_jax.components import Spec
from vae_jax.config_check import validate_config
from vae_jax.config_lib import base_config
from vae_jax.errors import ConfigError
from vae_jax.evaluate.active_units import active_units_per_layer, posterior_statistics
from vae_jax.evaluate.loglik import importance_log_likelihood
from vae_jax.evaluate.suite import kl_estimate
from vae_jax.likelihoods import gaussian
from vae_jax.model import VAE, build_model
from vae_jax.nets import mlp2
from vae_jax.objectives import elbo, iwae
from vae_jax.objectives.weights import log_weights
from vae_jax.priors.standard_normal import StandardNormal

ROOT = Path(__file__).resolve().parents[1]

P, SIGMA = 3, 0.4  # data dims, the likelihood's fixed σ
A, B0, S = 1.5, 0.3, 0.6  # z1 | z2 ~ N(A z2 + B0, S²)
C, D = np.array([1.0, -0.5, 2.0]), np.array([0.2, 0.0, -0.1])  # x | z1 ~ N(C z1 + D, σ² I)


def _set(linear, kernel, bias):
    linear.kernel[...] = jnp.asarray(kernel, jnp.float32).reshape(linear.kernel[...].shape)
    linear.bias[...] = jnp.asarray(bias, jnp.float32).reshape(linear.bias[...].shape)


def _exact_posterior():
    """(kernel, bias) of the encoder's two linear maps for the exact posterior."""
    v1 = A**2 + S**2  # marginal Var(z1)
    var1 = 1.0 / (1.0 / v1 + C @ C / SIGMA**2)  # Var(z1 | x)
    # E[z1|x] = var1 (B0/v1 + Cᵀ(x − D)/σ²), linear in x
    bottom = (
        np.stack([var1 * C / SIGMA**2, np.zeros(P)], axis=1),
        [var1 * (B0 / v1 - C @ D / SIGMA**2), 0.5 * np.log(var1)],
    )
    var2 = 1.0 / (1.0 + A**2 / S**2)  # Var(z2 | z1)
    top = ([[var2 * A / S**2, 0.0]], [-var2 * A * B0 / S**2, 0.5 * np.log(var2)])
    return bottom, top


def _model(shift=0.0):
    """The linear-Gaussian two-layer model; `shift` moves the encoder off the posterior."""
    dims, rngs = (1, 1), nnx.Rngs(0)
    encoder = mlp2.TwoLayerEncoder((1, P, 1), dims, (), (), "tanh", rngs=rngs)
    decoder = mlp2.TwoLayerDecoder((1, P, 1), dims, (), (), "tanh", rngs=rngs)
    (bk, bb), (tk, tb) = _exact_posterior()
    _set(encoder.bottom.out, bk, np.asarray(bb) + [shift, shift])
    _set(encoder.top.out, tk, np.asarray(tb) + [-shift, shift])
    _set(decoder.top.out, [[A, 0.0]], [B0, np.log(S)])  # p(z1|z2): constant log-scale
    _set(decoder.out, C[None, :], D)
    lik = gaussian.make(
        ml_collections.ConfigDict(dict(scale=SIGMA, learn_scale=False, min_scale=1e-3))
    )
    return VAE(encoder, decoder, StandardNormal(1), "gaussian", lik)


def _data(n=6, seed=0):
    rng = np.random.default_rng(seed)
    z2 = rng.normal(size=n)
    z1 = A * z2 + B0 + S * rng.normal(size=n)
    x = z1[:, None] * C + D + SIGMA * rng.normal(size=(n, P))
    return x.reshape(n, 1, P, 1).astype(np.float32)


def _exact_log_px(x):
    mean = C * B0 + D
    cov = (A**2 + S**2) * np.outer(C, C) + SIGMA**2 * np.eye(P)
    return scipy.stats.multivariate_normal(mean, cov).logpdf(x.reshape(len(x), P))


def test_the_hooks_are_the_densities_written_out():
    model, x = _model(shift=0.3), _data()
    q = model.posterior(x)
    z = model.sample_latent(q, jax.random.key(0), 4)
    z1, z2 = (np.asarray(z[k], np.float64)[..., 0] for k in ("z1", "z2"))  # [4, B]
    (bk, bb), (tk, tb) = _exact_posterior()
    xf = x.reshape(len(x), P).astype(np.float64)
    loc1 = xf @ bk[:, 0] + bb[0] + 0.3
    sd1 = np.exp(bb[1] + 0.3)
    loc2, sd2 = tk[0][0] * z1 + tb[0] - 0.3, np.exp(tb[1] + 0.3)
    log_q = scipy.stats.norm.logpdf(z1, loc1, sd1) + scipy.stats.norm.logpdf(z2, loc2, sd2)
    np.testing.assert_allclose(model.log_posterior(q, z), log_q, rtol=1e-5, atol=1e-5)
    log_p = scipy.stats.norm.logpdf(z2) + scipy.stats.norm.logpdf(z1, A * z2 + B0, S)
    np.testing.assert_allclose(model.log_prior(z), log_p, rtol=1e-5, atol=1e-5)
    # The KL has no closed form: it is log q − log p at the same z.
    np.testing.assert_allclose(model.kl(q, z), log_q - log_p, rtol=1e-4, atol=1e-4)
    # z2 is drawn given the sampled z1, not the mean: its residual has the conditional sd.
    many = model.sample_latent(q, jax.random.key(1), 20_000)
    resid = np.asarray(many["z2"])[..., 0] - (
        tk[0][0] * np.asarray(many["z1"])[..., 0] + tb[0] - 0.3
    )
    np.testing.assert_allclose(resid.std(axis=0), sd2, rtol=0.03)


def test_the_exact_posterior_makes_every_importance_weight_log_px():
    model, x = _model(), _data()
    log_w = log_weights(model, model.posterior(x), x, jax.random.key(2), 0, 16)  # [16, B]
    np.testing.assert_allclose(
        log_w, np.broadcast_to(_exact_log_px(x), log_w.shape), rtol=1e-5, atol=2e-5
    )


def test_importance_sampling_converges_to_log_px_and_the_elbo_is_below():
    model, x = _model(shift=0.2), _data(seed=1)
    exact = _exact_log_px(x)
    elbo_terms = elbo.elbo_terms(model, x, jax.random.key(3), 2000)
    gap = exact - np.asarray(elbo_terms["elbo"])
    assert np.all(gap > 0.01)  # a wrong posterior: a strict bound
    bounds = [
        np.asarray(importance_log_likelihood(model, x, jax.random.key(4), k, 50)).mean()
        for k in (1, 10, 100, 5000)
    ]
    assert all(b1 < b2 + 1e-3 for b1, b2 in zip(bounds, bounds[1:], strict=False)), bounds
    k5000 = importance_log_likelihood(model, x, jax.random.key(4), 5000, 500)
    # Within 4 standard errors of the estimate, log(mean w) ± sd(w) / (mean(w) √K), with
    # sd(w)/mean(w) measured on another 5000 weights (about 1.2 here).
    log_w = np.asarray(log_weights(model, model.posterior(x), x, jax.random.key(6), 0, 5000))
    w = np.exp(log_w - log_w.max(axis=0))
    stderr = w.std(axis=0) / w.mean(axis=0) / np.sqrt(5000)
    assert np.all(np.abs(np.asarray(k5000) - exact) < 4 * stderr), (k5000, exact, stderr)


def test_iwae_with_one_sample_is_the_elbo():
    model, x = _model(shift=0.2), _data()
    spec = Spec((1, P, 1), 100, len(x), 1)
    section = base_config().objective.iwae
    section.num_samples = 1
    objective = iwae.make(section, spec)
    from vae_jax.hyper import Hyper
    from vae_jax.objectives.base import Context

    ctx = Context(step=jnp.asarray(0), hyper=Hyper(), num_train=100, batch_size=len(x))
    _, metrics = objective.loss(model, {"x": jnp.asarray(x)}, jax.random.key(5), ctx)
    log_w = log_weights(model, model.posterior(x), x, jax.random.key(5), 0, 1)[0]
    np.testing.assert_allclose(metrics["iwae"], np.mean(log_w), rtol=1e-5)


def _config(**changes):
    c = base_config()
    c.model.net = "mlp2"
    for k, v in changes.items():
        section, name = k.split(".")
        c[section][name] = v
    return c


def test_build_model_puts_the_prior_on_the_top_layer():
    c = _config()
    c.model.latent_dim = 6
    c.model.mlp2.top_latent_dim = 3
    c.model.mlp2.hidden_dims, c.model.mlp2.top_hidden_dims = (16,), (8,)
    model = build_model(c.model, (4, 4, 1), jax.random.key(0))
    assert model.hierarchical and model.prior.latent_dim == 3
    assert model.latent_dims == {"z1": 6, "z2": 3} and model.latent_dim == 9
    x = jnp.zeros((2, 4, 4, 1))
    assert model.sample(jax.random.key(1), 5).shape == (5, 4, 4, 1)
    assert model.reconstruct(x).shape == x.shape
    # mog and flow are densities over an array: they serve as p(z2).
    for prior in ("mog", "flow"):
        c.model.prior = prior
        m = build_model(c.model, (4, 4, 1), jax.random.key(0))
        z = m.sample_latent(m.posterior(x), jax.random.key(2), 3)
        assert m.log_prior(z).shape == (3, 2) and np.isfinite(np.asarray(m.log_prior(z))).all()
    assert kl_estimate(c).startswith("Monte Carlo")


@pytest.mark.parametrize(
    "change, field",
    [
        ({"model.prior": "vamp"}, "model.prior"),
        ({"objective.name": "infovae"}, "objective.name"),
        ({"objective.name": "beta_tcvae"}, "objective.name"),
        ({"hyper.free_bits": 0.5}, "hyper.free_bits"),
    ],
)
def test_what_two_layers_cannot_do_is_refused_in_one_line(change, field):
    with pytest.raises(ConfigError, match=f"config.{field}="):
        validate_config(_config(**change))
    validate_config(_config())  # the defaults are fine


def test_active_units_are_counted_per_layer():
    """A model whose z2 ignores z1 (zero weights) has no active unit in z2, while every z1
    unit follows the data; the count uses each layer's variance under the model's prior."""
    c = _config()
    c.model.latent_dim, c.model.mlp2.top_latent_dim = 3, 2
    c.model.mlp2.hidden_dims, c.model.mlp2.top_hidden_dims = (), ()
    model = build_model(c.model, (2, 2, 1), jax.random.key(0))
    _set(model.encoder.top.out, np.zeros((3, 4)), np.zeros(4))  # q(z2|z1) = N(0, 1)
    _set(model.decoder.top.out, np.zeros((2, 6)), np.zeros(6))  # p(z1|z2) = N(0, 1)
    _set(
        model.encoder.bottom.out,
        np.concatenate([np.eye(4)[:, :3], np.zeros((4, 3))], 1),
        np.zeros(6),
    )  # μ1 = x[:3], σ1 = 1
    graphdef, state = nnx.split(model)
    images = np.random.default_rng(0).integers(0, 256, size=(200, 2, 2, 1)).astype(np.uint8)
    per_layer = active_units_per_layer(
        graphdef, state, images, jax.random.key(1), jax.random.key(2)
    )
    assert per_layer["z2"] == {"active_units": 0, "num_dims": 2}
    assert per_layer["z1"] == {"active_units": 3, "num_dims": 3}


def test_two_layers_train_and_evaluate_through_the_cli(tmp_path):
    """40 runlocal steps with the IWAE bound (K = 2): the loss falls, and the evaluation
    reports log p(x), a Monte Carlo KL, and active units per layer, in eval.json and in
    the verdict line."""
    flags = {"model.net": "mlp2", "data.name": "synthetic", "data.val_size": 50}
    flags.update({"model.latent_dim": 6, "model.mlp2.top_latent_dim": 3})
    flags.update({"model.mlp2.hidden_dims": "(64,)", "model.mlp2.top_hidden_dims": "(16,)"})
    flags.update({"objective.name": "iwae", "objective.iwae.num_samples": 2})
    flags.update({"eval.sample_quality": False, "eval.autoencoder_steps": 0})
    flags.update({"eval.num_importance_samples": 20, "eval.loglik_examples": 32})
    flags.update({"eval.max_examples": 64, "eval.batch_size": 32, "train.eval_every": 0})
    flags.update({"data.synthetic_size": 400, "eval.num_figure_examples": 4})
    flags.update({"train.learning_rate": 3e-3})
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        main_command(tmp_path, flags), cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    losses = [r["loss"] for r in read_metrics(str(tmp_path))]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    results = json.loads((tmp_path / "eval.json").read_text())
    assert results["run"]["latent_layers"] == {"z1": 6, "z2": 3}
    assert results["run"]["latent_dim"] == 9
    per_layer = results["collapse"]["active_units_per_layer"]
    assert per_layer["z1"]["num_dims"] == 6 and per_layer["z2"]["num_dims"] == 3
    # z1's count is the collapse diagnosis's own (the same μ1 and prior draws)
    assert per_layer["z1"]["active_units"] == results["collapse"]["num_active"]
    assert "active units per layer: z1 " in results["collapse"]["verdict"]
    ll = results["log_likelihood"]
    assert ll["log_likelihood_nats"] >= ll["elbo_same_examples_nats"] - 0.5
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["kl_estimate"].startswith("Monte Carlo")
    assert (tmp_path / "report.html").stat().st_size > 10_000


def test_a_monte_carlo_mean_does_not_make_units_active():
    """q(z1|x) = N(0, 1) whatever x, and μ2(z1) = 1.5·z1: E[z2|x] = 0 for every x, so no z2
    unit is active, though each Monte Carlo mean over 100 draws of z1 varies with x by
    Var ≈ 1.5²/100 = 0.0225 > 0.01 (the naive count calls all of them active)."""
    c = _config()
    c.model.latent_dim, c.model.mlp2.top_latent_dim = 4, 4
    c.model.mlp2.hidden_dims, c.model.mlp2.top_hidden_dims = (), ()
    model = build_model(c.model, (2, 2, 1), jax.random.key(0))
    _set(model.encoder.bottom.out, np.zeros((4, 8)), np.zeros(8))  # q(z1|x) = N(0, 1)
    _set(
        model.encoder.top.out, np.concatenate([1.5 * np.eye(4), np.zeros((4, 4))], 1), np.zeros(8)
    )  # μ2 = 1.5 z1
    _set(model.decoder.top.out, np.zeros((4, 8)), np.zeros(8))  # p(z1|z2) = N(0, 1)
    graphdef, state = nnx.split(model)
    images = np.random.default_rng(1).integers(0, 256, size=(400, 2, 2, 1)).astype(np.uint8)
    per_layer = active_units_per_layer(
        graphdef, state, images, jax.random.key(3), jax.random.key(4)
    )
    assert per_layer["z2"]["active_units"] == 0 and per_layer["z1"]["active_units"] == 0
    # The estimate still counts a unit that follows x: μ1 = x (σ1 = 0.1), so E[z2|x] ≈ 1.5 x.
    _set(
        model.encoder.bottom.out,
        np.concatenate([np.eye(4), np.zeros((4, 4))], 1),
        np.concatenate([np.zeros(4), np.full(4, np.log(0.1))]),
    )
    graphdef, state = nnx.split(model)
    per_layer = active_units_per_layer(
        graphdef, state, images, jax.random.key(3), jax.random.key(4)
    )
    assert per_layer["z2"]["active_units"] == 4 and per_layer["z1"]["active_units"] == 4


def test_the_second_layer_has_no_gaussian_statistics():
    model = _model()
    graphdef, state = nnx.split(model)
    images = np.zeros((4, 1, P, 1), np.uint8)
    with pytest.raises(ValueError, match="q\\(z2\\|x\\) is not Gaussian"):
        posterior_statistics(graphdef, state, images, jax.random.key(0), layer="z2")
    stats = posterior_statistics(graphdef, state, images, jax.random.key(0), layer="z1")
    assert stats["loc"].shape == (4, 1)
