"""The standard normal prior p(z) = N(0, I) (Kingma & Welling 2013).

For a latent made of several layers (a dict of per-layer codes), it is the product of a
standard normal per layer: log-densities and closed-form KLs add over layers.
"""

from __future__ import annotations

import functools
import operator

import jax
from flax import nnx

from vae_jax.components import Component, Spec
from vae_jax.distributions import DiagGaussian, standard_normal_log_prob

_is_gaussian = lambda leaf: isinstance(leaf, DiagGaussian)


def _add(values):
    return functools.reduce(operator.add, values)


class StandardNormal(nnx.Module):
    """Parameter-free; the KL from a DiagGaussian posterior has a closed form.

    `latent_dim` is an int (one layer) or a dict {layer name: size} (independent layers)."""

    def __init__(self, latent_dim: int | dict[str, int], *, rngs: nnx.Rngs | None = None):
        del rngs
        # A tuple of (name, size) pairs keeps the module's static structure hashable.
        self.layers = None if isinstance(latent_dim, int) else tuple(sorted(latent_dim.items()))
        self._dim = latent_dim if isinstance(latent_dim, int) else None

    @property
    def latent_dim(self) -> int:
        """The total number of latent dimensions."""
        return self._dim if self.layers is None else sum(d for _, d in self.layers)

    def log_prob(self, z, *, encoder=None) -> jax.Array:
        """log p(z). [..., D] (or a dict of them) -> [...]. `encoder` is accepted so that
        priors built from the encoder (VampPrior) share this signature."""
        del encoder
        return _add(standard_normal_log_prob(leaf) for leaf in jax.tree.leaves(z))

    def sample(self, key: jax.Array, num_samples: int, *, encoder=None, temperature: float = 1.0):
        """z ~ N(0, T²I): at temperature T the prior's scale is multiplied by T (T = 1 is
        the prior itself; T < 1 trades diversity for typicality, Kingma & Dhariwal 2018).
        [num_samples, D], or a dict of [num_samples, D_layer] with one key per layer."""
        del encoder
        if self.layers is None:
            return temperature * jax.random.normal(key, (num_samples, self._dim))
        keys = jax.random.split(key, len(self.layers))
        return {
            name: temperature * jax.random.normal(k, (num_samples, d))
            for (name, d), k in zip(self.layers, keys, strict=True)
        }

    def describe_temperature(self, temperature: float) -> str:
        return f"z ~ N(0, {temperature:g}²·I)"

    def analytic_kl(self, q) -> jax.Array | None:
        """Closed-form D_KL(q || p) [...] (summed over layers), or None where there is none."""
        leaves = jax.tree.leaves(q, is_leaf=_is_gaussian)
        return _add(d.kl_to_standard_normal() for d in leaves)


def make(section, spec: Spec) -> StandardNormal:
    del section
    return StandardNormal(spec.latent_dim)


COMPONENT = Component(make, traits=frozenset({"temperature", "analytic_kl"}))
