"""Importance log-weights, the one implementation under the IWAE bound (objectives/iwae.py)
and the importance-sampled log p(x) (evaluate/loglik.py):

    log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x),   z_k ~ q(z|x),

sample k drawn with its own key fold_in(key, k), so a set of samples is a function of the
key and their indices alone, however they are chunked.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def log_weights(model, q, x: jax.Array, key: jax.Array, first, n: int, log_prior=None):
    """log w_k for samples first .. first + n − 1 of q(z|x). [n, B]

    `log_prior`: log p(z) as a function of z, from `model.log_prior_fn()` called once
    outside a loop over chunks (a VampPrior encodes its pseudo-inputs there, once);
    None: model.log_prior."""
    log_prior = model.log_prior if log_prior is None else log_prior
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, first + jnp.arange(n))
    z = jax.vmap(lambda k: model.sample_latent(q, k))(keys)  # [n, B, D] (a pytree for trees)
    return model.log_px(x, z) + log_prior(z) - model.log_posterior(q, z)
