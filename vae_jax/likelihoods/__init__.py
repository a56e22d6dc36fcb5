"""Likelihood registry: name -> Component (see vae_jax/components.py); `make` returns a
Likelihood, a bundle of pure functions (likelihoods/base.py).

Traits: "discrete" (a probability mass of binary pixels) or "density" (a density, with
"unit_interval" for [0, 1]^D or "real" for R^D): evaluation labels its numbers from these.
"""

from vae_jax.likelihoods import bernoulli, continuous_bernoulli, gaussian
from vae_jax.likelihoods.base import Likelihood

LIKELIHOODS = {
    "bernoulli": bernoulli.COMPONENT,
    "continuous_bernoulli": continuous_bernoulli.COMPONENT,
    "gaussian": gaussian.COMPONENT,
}

__all__ = ["LIKELIHOODS", "Likelihood"]
