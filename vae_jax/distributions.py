"""Diagonal Gaussian, the posterior family q(z|x) = N(μ(x), diag σ²(x)).

Method names follow distrax (`sample`, `log_prob`, `sample_and_log_prob`, `entropy`).
The closed-form KL to N(0, I) is Kingma & Welling 2013, Appendix B:

    D_KL(q || N(0, I)) = -½ Σ_j (1 + log σ_j² − μ_j² − σ_j²)  ≥ 0.

(Some course slides drop the leading minus sign; that version is ≤ 0 and wrong.)
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

_LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
    """log N(z; 0, I) summed over the last axis. [..., D] -> [...]"""
    return -0.5 * jnp.sum(jnp.square(z) + _LOG_2PI, axis=-1)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class DiagGaussian:
    """N(loc, diag(exp(log_scale))²); event axis is the last one.

    loc, log_scale: [..., D]. All methods reduce over D and keep the batch axes.
    """

    loc: jax.Array
    log_scale: jax.Array

    @property
    def scale(self) -> jax.Array:
        return jnp.exp(self.log_scale)

    @property
    def event_dim(self) -> int:
        return self.loc.shape[-1]

    def sample(self, key: jax.Array, num_samples: int | None = None) -> jax.Array:
        """Reparameterized draw z = μ + σ ⊙ ε, ε ~ N(0, I).

        Returns [..., D], or [num_samples, ..., D] when num_samples is given.
        Gradients flow to loc and log_scale through z.
        """
        shape = self.loc.shape if num_samples is None else (num_samples, *self.loc.shape)
        eps = jax.random.normal(key, shape, dtype=self.loc.dtype)
        return jnp.broadcast_to(self.loc, shape) + jnp.broadcast_to(self.scale, shape) * eps

    def log_prob(self, z: jax.Array) -> jax.Array:
        """log q(z). z: [..., D] broadcastable against loc -> [...]"""
        loc, log_scale = (jnp.broadcast_to(a, z.shape) for a in (self.loc, self.log_scale))
        u = (z - loc) * jnp.exp(-log_scale)
        return -0.5 * jnp.sum(jnp.square(u) + _LOG_2PI + 2.0 * log_scale, axis=-1)

    def sample_and_log_prob(
        self, key: jax.Array, num_samples: int | None = None
    ) -> tuple[jax.Array, jax.Array]:
        z = self.sample(key, num_samples)
        return z, self.log_prob(z)

    def entropy(self) -> jax.Array:
        """H[q] = Σ_j (½ log 2πe + log σ_j). [...]"""
        return jnp.sum(0.5 * (_LOG_2PI + 1.0) + self.log_scale, axis=-1)

    def kl_per_dim_to_standard_normal(self) -> jax.Array:
        """-½ (1 + log σ² − μ² − σ²) per latent dimension. [..., D], each entry ≥ 0."""
        log_var = 2.0 * self.log_scale
        return -0.5 * (1.0 + log_var - jnp.square(self.loc) - jnp.exp(log_var))

    def kl_to_standard_normal(self) -> jax.Array:
        """Closed-form D_KL(q || N(0, I)). [...]"""
        return jnp.sum(self.kl_per_dim_to_standard_normal(), axis=-1)

    def kl_monte_carlo(self, z: jax.Array, prior_log_prob: jax.Array) -> jax.Array:
        """Single-sample estimate log q(z) − log p(z) for any prior, given z ~ q. [...]"""
        return self.log_prob(z) - prior_log_prob
