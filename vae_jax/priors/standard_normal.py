"""The standard normal prior p(z) = N(0, I) (Kingma & Welling 2013)."""

from __future__ import annotations

import jax
from flax import nnx

from vae_jax.components import Component, Spec
from vae_jax.distributions import DiagGaussian, standard_normal_log_prob


class StandardNormal(nnx.Module):
    """Parameter-free; the KL from a DiagGaussian posterior has a closed form."""

    def __init__(self, latent_dim: int, *, rngs: nnx.Rngs | None = None):
        del rngs
        self.latent_dim = latent_dim

    def log_prob(self, z: jax.Array, *, encoder=None) -> jax.Array:
        """log p(z). [..., D] -> [...]. `encoder` is accepted so that priors built from the
        encoder (VampPrior) share this signature."""
        del encoder
        return standard_normal_log_prob(z)

    def sample(
        self, key: jax.Array, num_samples: int, *, encoder=None, temperature: float = 1.0
    ) -> jax.Array:
        """z ~ N(0, T²I): at temperature T the prior's scale is multiplied by T (T = 1 is
        the prior itself; T < 1 trades diversity for typicality, Kingma & Dhariwal 2018)."""
        del encoder
        return temperature * jax.random.normal(key, (num_samples, self.latent_dim))

    def analytic_kl(self, q: DiagGaussian) -> jax.Array | None:
        """Closed-form D_KL(q || p) [...], or None where the prior has none."""
        return q.kl_to_standard_normal()


def make(section, spec: Spec) -> StandardNormal:
    del section
    return StandardNormal(spec.latent_dim)


COMPONENT = Component(make)
