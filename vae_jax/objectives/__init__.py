"""Objective registry: name -> Component (vae_jax/components.py); `make` returns an
Objective (objectives/base.py): a pure loss(model, batch, key, ctx) and what it is."""

from vae_jax.objectives import autoencoder, elbo
from vae_jax.objectives.base import Context, Objective

OBJECTIVES = {
    "elbo": elbo.COMPONENT,
    "autoencoder": autoencoder.COMPONENT,
}

__all__ = ["OBJECTIVES", "Context", "Objective"]
