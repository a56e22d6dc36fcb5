"""Likelihood registry: name -> Component (see vae_jax/components.py); `make` returns a
Likelihood, a bundle of pure functions (likelihoods/base.py).

Traits: "discrete" (a probability mass of binary pixels), "discrete_8bit" (a probability
mass of 8-bit pixels, the 256 levels k/255; config_check refuses binary inputs for it) or
"density" (a density, with "unit_interval" for [0, 1]^D or "real" for R^D): evaluation
labels its numbers from these.
"""

from vae_jax.likelihoods import (
    bernoulli,
    continuous_bernoulli,
    discretized_logistic,
    discretized_logistic_mixture,
    gaussian,
)
from vae_jax.likelihoods.base import Likelihood

LIKELIHOODS = {
    "bernoulli": bernoulli.COMPONENT,
    "continuous_bernoulli": continuous_bernoulli.COMPONENT,
    "discretized_logistic": discretized_logistic.COMPONENT,
    "discretized_logistic_mixture": discretized_logistic_mixture.COMPONENT,
    "gaussian": gaussian.COMPONENT,
}

__all__ = ["LIKELIHOODS", "Likelihood"]
