"""Objective registry: name -> Component (vae_jax/components.py); `make` returns an
Objective (objectives/base.py): a pure loss(model, batch, key, ctx) and what it is."""

from vae_jax.objectives import annealed, autoencoder, beta_tcvae, elbo, infovae, iwae
from vae_jax.objectives.base import Context, Objective

OBJECTIVES = {
    "elbo": elbo.COMPONENT,
    "autoencoder": autoencoder.COMPONENT,
    "iwae": iwae.COMPONENT,
    "infovae": infovae.COMPONENT,
    "beta_tcvae": beta_tcvae.COMPONENT,
    "annealed": annealed.COMPONENT,
}

__all__ = ["OBJECTIVES", "Context", "Objective"]
