"""Objective registry: name -> make(objective_config, reduction) -> objective.

An objective is a pure function (model, x [B, ...], key, hyper: Hyper) -> (loss, metrics),
with metrics a dict of scalars holding at least loss, elbo, log_px and kl.
"""

from vae_jax.objectives import autoencoder, elbo

OBJECTIVES = {
    "elbo": elbo.make,
    "autoencoder": autoencoder.make,
}

__all__ = ["OBJECTIVES"]
