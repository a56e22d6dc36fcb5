"""Trained params apart from the state a model carries: a VAE with BatchNorm in its encoder.

The optimizer sees only the nnx.Param leaves; the batch statistics are updated by the step
(an exponential moving average of the batch's mean and variance) and never differentiated;
evaluation merges the model in eval mode, where BatchNorm normalises with those running
statistics, so an example's code does not depend on the rest of its batch.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vae_jax.apply import batch_fn
from vae_jax.checkpoint import Checkpointer
from vae_jax.components import Spec
from vae_jax.distributions import DiagGaussian
from vae_jax.hyper import Hyper
from vae_jax.likelihoods import bernoulli
from vae_jax.model import VAE, full_state, split_model
from vae_jax.nets.mlp import MLPDecoder
from vae_jax.objectives import elbo
from vae_jax.priors.standard_normal import StandardNormal
from vae_jax.state import init_state
from vae_jax.step import make_train_step

SHAPE, D, H, B, MOMENTUM = (4, 4, 1), 3, 8, 16, 0.9


class _BatchNormEncoder(nnx.Module):
    def __init__(self, *, rngs):
        self.hidden = nnx.Linear(16, H, rngs=rngs)
        self.norm = nnx.BatchNorm(H, momentum=MOMENTUM, rngs=rngs)
        self.out = nnx.Linear(H, 2 * D, rngs=rngs)

    def __call__(self, x):
        h = jax.nn.relu(self.norm(self.hidden(x.reshape(x.shape[0], -1))))
        loc, log_scale = jnp.split(self.out(h), 2, axis=-1)
        return DiagGaussian(loc, log_scale)


def _model():
    rngs = nnx.Rngs(0)
    decoder = MLPDecoder(SHAPE, D, (H,), "relu", rngs=rngs)
    return VAE(
        _BatchNormEncoder(rngs=rngs), decoder, StandardNormal(D), "bernoulli", bernoulli.make()
    )


def _batch(seed):
    return {
        "image": jax.random.randint(jax.random.key(seed), (B, *SHAPE), 0, 256).astype(jnp.uint8)
    }


@batch_fn
def _codes(model, x, key):
    del key
    return model.posterior(x).loc


def test_batch_statistics_update_and_are_not_trained(tmp_path):
    graphdef, params, model_state = split_model(_model())
    assert {
        type(v).__name__
        for v in jax.tree.leaves(model_state, is_leaf=lambda v: isinstance(v, nnx.Variable))
    } == {"BatchStat"}
    assert "mean" not in str(jax.tree_util.tree_structure(params))  # stats are not params
    tx = optax.adam(1e-2)
    state = init_state(params, model_state, tx)
    # Adam's moments cover the params only: the optimizer cannot move the statistics.
    mu = state.opt_state[0].mu
    assert jax.tree.structure(mu) == jax.tree.structure(params)
    spec = Spec(SHAPE, num_train=100, batch_size=B, latent_dim=D)
    objective = elbo.make(elbo.defaults(), spec)
    step = jax.jit(make_train_step(graphdef, objective, tx))

    batch = _batch(0)
    x = np.asarray(batch["image"], np.float32).reshape(B, -1) / 255.0
    w = np.asarray(params["encoder"]["hidden"]["kernel"][...])
    b = np.asarray(params["encoder"]["hidden"]["bias"][...])
    pre = x @ w + b  # the BatchNorm's input at the step's (pre-update) params
    new, _ = step(state, batch, jax.random.key(1), Hyper())
    stats = new.model_state["encoder"]["norm"]
    # flax's EMA: running = m·running + (1 − m)·batch, from mean 0 and variance 1.
    np.testing.assert_allclose(
        stats["mean"][...], (1 - MOMENTUM) * pre.mean(0), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        stats["var"][...], MOMENTUM + (1 - MOMENTUM) * pre.var(0), rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(new.params["encoder"]["hidden"]["kernel"][...], w)  # trained

    # A checkpoint holds both, and restores them exactly.
    ckpt = Checkpointer(str(tmp_path))
    ckpt.save(1, new)
    restored = ckpt.restore(new)
    ckpt.close()
    for a, c in zip(jax.tree.leaves(restored), jax.tree.leaves(new), strict=True):
        np.testing.assert_array_equal(a, c)

    # A skipped (non-finite) step leaves the statistics where they were.
    poisoned = objective._replace(loss=lambda m, bt, k, c: (jnp.nan, {"loss": jnp.nan}))
    bad_step = jax.jit(make_train_step(graphdef, poisoned, tx))
    after, _ = bad_step(new, _batch(2), jax.random.key(3), Hyper())
    np.testing.assert_array_equal(
        after.model_state["encoder"]["norm"]["mean"][...], stats["mean"][...]
    )


def test_eval_mode_uses_the_running_statistics():
    graphdef, params, model_state = split_model(_model())
    tx = optax.adam(1e-2)
    state = init_state(params, model_state, tx)
    objective = elbo.make(elbo.defaults(), Spec(SHAPE, 100, B, D))
    step = jax.jit(make_train_step(graphdef, objective, tx))
    for i in range(5):
        state, _ = step(state, _batch(i), jax.random.key(i), Hyper())
    variables = full_state(state.params, state.model_state)
    images = np.asarray(_batch(9)["image"])
    together = np.asarray(_codes(graphdef, variables, jnp.asarray(images), None))
    alone = np.asarray(_codes(graphdef, variables, jnp.asarray(images[:1]), None))
    np.testing.assert_allclose(alone[0], together[0], rtol=1e-5, atol=1e-6)  # batch-independent
    # The same encoder by hand with the running mean and variance (flax: ε = 1e-5).
    p, s = state.params["encoder"], state.model_state["encoder"]["norm"]
    x = images.reshape(B, -1).astype(np.float32) / 255.0
    h = x @ np.asarray(p["hidden"]["kernel"][...]) + np.asarray(p["hidden"]["bias"][...])
    h = (h - np.asarray(s["mean"][...])) / np.sqrt(np.asarray(s["var"][...]) + 1e-5)
    h = np.maximum(h * np.asarray(p["norm"]["scale"][...]) + np.asarray(p["norm"]["bias"][...]), 0)
    out = h @ np.asarray(p["out"]["kernel"][...]) + np.asarray(p["out"]["bias"][...])
    np.testing.assert_allclose(together, out[:, :D], rtol=1e-4, atol=1e-5)
