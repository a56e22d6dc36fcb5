"""The plain deterministic autoencoder: the baseline a VAE is compared against.

Loss = −log p_θ(x | z = μ_φ(x)), i.e. reconstruction only (binary cross-entropy for the
Bernoulli likelihood, MSE for the unit Gaussian). No KL and no sampling, so its latent
space is not regularised towards the prior; that contrast is the point of the baseline.
Its `elbo` metric is the reconstruction term alone (kl = 0): it is not a bound on log p(x).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vae_jax.hyper import Hyper
from vae_jax.objectives.elbo import batch_reduce


def make(objective_config, reduction: str = "mean"):
    del objective_config

    def autoencoder(model, x: jax.Array, key: jax.Array, hyper: Hyper):
        del key, hyper
        log_px = model.log_px(x, model.posterior(x).loc)  # [B]
        loss = batch_reduce(-log_px, reduction)
        zero = jnp.zeros(())
        return loss, {"loss": loss, "log_px": log_px.mean(), "kl": zero, "elbo": log_px.mean()}

    return autoencoder
