"""Bernoulli likelihood on logits, for binary (or binarized) images.

log p(x|l) = x·l − softplus(l), written as −(max(l, 0) − l·x + log1p(e^{−|l|})) so that it
never overflows; this is minus the sigmoid binary cross-entropy summed over pixels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vae_jax.likelihoods.base import Likelihood, sum_event


def _log_prob(logits: jax.Array, x: jax.Array) -> jax.Array:
    xb = jnp.broadcast_to(x, logits.shape)  # explicit: logits may carry sample axes
    elementwise = -(jnp.maximum(logits, 0.0) - logits * xb + jnp.log1p(jnp.exp(-jnp.abs(logits))))
    return sum_event(elementwise, x)


def _mean(logits: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(logits)


def _sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    return jax.random.bernoulli(key, jax.nn.sigmoid(logits)).astype(logits.dtype)


def make(model_config=None) -> Likelihood:
    del model_config
    return Likelihood("bernoulli", 1, _log_prob, _mean, _sample)
