"""Likelihood registry: name -> make(model_config) -> Likelihood."""

from vae_jax.likelihoods import bernoulli, continuous_bernoulli, gaussian
from vae_jax.likelihoods.base import Likelihood

LIKELIHOODS = {
    "bernoulli": bernoulli.make,
    "continuous_bernoulli": continuous_bernoulli.make,
    "gaussian": gaussian.make,
}

__all__ = ["LIKELIHOODS", "Likelihood"]
