"""Likelihood registry: name -> Component (see vae_jax/components.py); `make` returns a
Likelihood, a bundle of pure functions (likelihoods/base.py)."""

from vae_jax.likelihoods import bernoulli, continuous_bernoulli, gaussian
from vae_jax.likelihoods.base import Likelihood

LIKELIHOODS = {
    "bernoulli": bernoulli.COMPONENT,
    "continuous_bernoulli": continuous_bernoulli.COMPONENT,
    "gaussian": gaussian.COMPONENT,
}

__all__ = ["LIKELIHOODS", "Likelihood"]
