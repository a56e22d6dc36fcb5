"""Bernoulli likelihood on logits, for binary (or binarized) images.

log p(x|l) = x·l − softplus(l), minus the sigmoid binary cross-entropy summed over pixels.
`jax.nn.softplus` (logaddexp(l, 0)) never overflows, and its derivative is exactly
sigmoid(l), also at l = 0 (the max/abs form's gradient there is x, not x − ½).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vae_jax.components import Component
from vae_jax.likelihoods.base import Likelihood, sum_event


def _log_prob(logits: jax.Array, x: jax.Array) -> jax.Array:
    xb = jnp.broadcast_to(x, logits.shape)  # explicit: logits may carry sample axes
    elementwise = logits * xb - jax.nn.softplus(logits)
    return sum_event(elementwise, x)


def _mean(logits: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(logits)


def _sample(key: jax.Array, logits: jax.Array) -> jax.Array:
    return jax.random.bernoulli(key, jax.nn.sigmoid(logits)).astype(logits.dtype)


def make(section=None, spec=None) -> Likelihood:
    del section, spec
    return Likelihood("bernoulli", 1, _log_prob, _mean, _sample)


COMPONENT = Component(make, traits=frozenset({"discrete"}))  # a probability of binary pixels
