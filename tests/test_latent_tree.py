"""Latents that are trees: a VAE whose posterior is {"z1": q1, "z2": q2} (two independent
Gaussian layers under a standard-normal prior per layer) trains, evaluates and reports,
with every model method summing over the layers as the maths says."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.stats
from flax import nnx

from vae_jax.components import Spec
from vae_jax.distributions import DiagGaussian
from vae_jax.evaluate.active_units import posterior_statistics
from vae_jax.evaluate.collapse import diagnose_collapse
from vae_jax.evaluate.loglik import importance_log_likelihood
from vae_jax.hyper import Hyper
from vae_jax.likelihoods import bernoulli
from vae_jax.model import VAE, split_model
from vae_jax.objectives import autoencoder, elbo
from vae_jax.priors.standard_normal import StandardNormal
from vae_jax.state import init_state
from vae_jax.step import make_train_step

SHAPE, B, DIMS = (4, 4, 1), 8, {"z1": 2, "z2": 3}


class _TwoLayerEncoder(nnx.Module):
    def __init__(self, *, rngs):
        self.a = nnx.Linear(16, 2 * DIMS["z1"], rngs=rngs)
        self.b = nnx.Linear(16, 2 * DIMS["z2"], rngs=rngs)

    def __call__(self, x):
        h = x.reshape(x.shape[0], -1)
        return {
            name: DiagGaussian(*jnp.split(layer(h), 2, axis=-1))
            for name, layer in (("z1", self.a), ("z2", self.b))
        }


class _TwoLayerDecoder(nnx.Module):
    def __init__(self, *, rngs):
        self.out = nnx.Linear(sum(DIMS.values()), 16, rngs=rngs)

    def __call__(self, z):
        h = jnp.concatenate([z["z1"], z["z2"]], axis=-1)
        return self.out(h).reshape(*h.shape[:-1], *SHAPE)


@pytest.fixture(scope="module")
def model():
    rngs = nnx.Rngs(0)
    return VAE(
        _TwoLayerEncoder(rngs=rngs),
        _TwoLayerDecoder(rngs=rngs),
        StandardNormal(DIMS),
        "bernoulli",
        bernoulli.make(),
    )


def _x(seed=0):
    return jax.random.bernoulli(jax.random.key(seed), 0.4, (B, *SHAPE)).astype(jnp.float32)


def test_every_method_sums_over_the_layers(model):
    x = _x()
    q = model.posterior(x)
    assert list(model.latent_layers(q)) == ["z1", "z2"] and model.latent_dim == 5
    z = model.sample_latent(q, jax.random.key(1), 7)
    assert {k: v.shape for k, v in z.items()} == {"z1": (7, B, 2), "z2": (7, B, 3)}
    log_q = sum(
        scipy.stats.norm.logpdf(np.asarray(z[k]), np.asarray(q[k].loc), np.asarray(q[k].scale)).sum(
            -1
        )
        for k in DIMS
    )
    np.testing.assert_allclose(model.log_posterior(q, z), log_q, rtol=1e-5, atol=1e-4)
    log_p = sum(scipy.stats.norm.logpdf(np.asarray(z[k])).sum(-1) for k in DIMS)
    np.testing.assert_allclose(model.log_prior(z), log_p, rtol=1e-5, atol=1e-4)
    kl = model.kl(q, z)  # closed form, per layer, added; broadcast to the sample axis
    want = sum(np.asarray(q[k].kl_to_standard_normal()) for k in DIMS)
    np.testing.assert_allclose(kl, np.broadcast_to(want, (7, B)), rtol=1e-6)
    assert model.sample(jax.random.key(2), 3).shape == (3, *SHAPE)
    assert model.reconstruct(x).shape == x.shape


def test_the_closed_form_kl_is_the_monte_carlo_kl(model):
    """E_q[log q(z|x) − log p(z)] over 20,000 draws matches the analytic sum over layers
    within 4 standard errors."""
    x = _x(1)
    q = model.posterior(x)
    z = model.sample_latent(q, jax.random.key(3), 20_000)
    mc = np.asarray(model.log_posterior(q, z) - model.log_prior(z))  # [S, B]
    se = mc.std(0) / np.sqrt(len(mc))
    analytic = np.asarray(model.kl(q, jax.tree.map(lambda a: a[0], z)))
    assert np.all(np.abs(mc.mean(0) - analytic) < 4 * se)


def test_objectives_and_estimators_run_on_the_tree(model):
    x = _x(2)
    terms = elbo.elbo_terms(model, x, jax.random.key(4), 2)
    assert terms["kl_per_dim"].shape == (B, 5)  # z1's 2 dimensions, then z2's 3
    np.testing.assert_allclose(terms["elbo"], terms["log_px"] - terms["kl"], rtol=1e-6)
    np.testing.assert_allclose(terms["kl"], terms["kl_per_dim"].sum(-1), rtol=1e-5)
    k1 = importance_log_likelihood(model, x, jax.random.key(5), 1, 1)
    z = model.sample_latent(model.posterior(x), jax.random.fold_in(jax.random.key(5), 0), 1)
    q = model.posterior(x)
    want = model.log_px(x, z) + model.log_prior(z) - model.log_posterior(q, z)
    np.testing.assert_allclose(k1, want[0], rtol=1e-5)
    ae_terms = elbo.elbo_terms(model, x, jax.random.key(6), 1, deterministic=True)
    assert np.all(np.asarray(ae_terms["kl"]) == 0.0)


def test_a_two_layer_model_trains(model):
    graphdef, params, rest = split_model(model)
    tx = optax.adam(1e-2)
    spec = Spec(SHAPE, num_train=100, batch_size=B, latent_dim=5)
    for objective in (elbo.make(elbo.defaults(), spec), autoencoder.make(None, spec)):
        step = jax.jit(make_train_step(graphdef, objective, tx))
        state = init_state(params, rest, tx)
        batch = {"image": (_x(7) * 255).astype(jnp.uint8)}
        losses = []
        for i in range(30):
            state, metrics = step(state, batch, jax.random.key(i), Hyper())
            losses.append(float(metrics["loss"]))
        assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_evaluators_say_which_layer_they_measure(model):
    graphdef, state = nnx.split(model)
    images = np.asarray(jax.random.randint(jax.random.key(8), (20, *SHAPE), 0, 2) * 255, np.uint8)
    z2 = posterior_statistics(graphdef, state, images, jax.random.key(9), batch_size=8, layer="z2")
    first = posterior_statistics(graphdef, state, images, jax.random.key(9), batch_size=8)
    assert z2["loc"].shape == (20, 3) and first["loc"].shape == (20, 2)
    np.testing.assert_allclose(z2["kl"], first["kl"])  # the whole model's KL either way
    report = diagnose_collapse(graphdef, state, images, jax.random.key(10), batch_size=8)
    assert report["layer"] == "z1" and report["num_dims"] == 2
