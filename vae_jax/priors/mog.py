"""A learned mixture of K diagonal Gaussians as the prior (e.g. Dilokthanakul et al. 2016;
Tomczak & Welling 2018, §3, the "MoG prior" baseline of their tables):

    p(z) = Σ_k π_k N(z; m_k, diag s_k²),   π = softmax(logits),

    log p(z) = logsumexp_k [log π_k + log N(z; m_k, diag s_k²)].

The means m_k, log-scales log s_k and (with `learn_weights`) the logits are nnx.Params
trained with the rest of the model. Initialisation: m_k ~ N(0, I) from the prior's key,
log s_k = 0, logits 0 (uniform π). With `learn_weights=False` π stays uniform (1/K).
There is no closed-form KL from a Gaussian posterior to a mixture, so `analytic_kl` is None
and the objectives use the Monte Carlo KL log q(z|x) − log p(z).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from vae_jax.components import Component, Spec
from vae_jax.distributions import DiagGaussian
from vae_jax.errors import check_positive_int, fail


def diag_mixture_log_prob(
    z: jax.Array, loc: jax.Array, log_scale: jax.Array, log_weights: jax.Array
) -> jax.Array:
    """log Σ_k w_k N(z; loc_k, diag exp(log_scale_k)²). z [..., D], loc and log_scale
    [K, D], log_weights [K] (normalised) -> [...].

    The broadcast against the K components is written out (the tests raise on implicit rank
    promotion); XLA fuses the [..., K, D] differences into the sum over D."""
    shape = (*z.shape[:-1], *loc.shape)  # [..., K, D]
    zk = jnp.broadcast_to(z[..., None, :], shape)
    q = DiagGaussian(jnp.broadcast_to(loc, shape), jnp.broadcast_to(log_scale, shape))
    log_w = jnp.broadcast_to(log_weights, shape[:-1])
    return jax.nn.logsumexp(q.log_prob(zk) + log_w, axis=-1)


def one_layer_latent(latent_dim, name: str) -> int:
    """The latent size of a prior defined on one flat latent; a tree of layers is refused."""
    if isinstance(latent_dim, bool) or not isinstance(latent_dim, int):
        fail(
            "model.latent_dim",
            latent_dim,
            f"the {name} prior takes a one-layer latent (an int); for several latent layers "
            "use model.prior=standard_normal",
        )
    return latent_dim


MIN_LOG_SCALE = -7.0  # components no narrower than e^-7 ≈ 0.001


class MixtureOfGaussians(nnx.Module):
    """p(z) = Σ_k π_k N(z; m_k, diag s_k²) over a one-layer latent of size D."""

    def __init__(self, latent_dim: int, num_components: int, learn_weights: bool, *, key):
        d, k = latent_dim, num_components
        self._dim = d
        self.means = nnx.Param(jax.random.normal(key, (k, d), jnp.float32))  # [K, D]
        self.log_scales = nnx.Param(jnp.zeros((k, d), jnp.float32))  # [K, D]
        self.logits = nnx.Param(jnp.zeros((k,), jnp.float32)) if learn_weights else None
        self.num_components = k

    @property
    def latent_dim(self) -> int:
        return self._dim

    def log_scale(self) -> jax.Array:
        """log s_k [K, D], softly floored at MIN_LOG_SCALE (m + softplus(raw − m)): a
        component cannot shrink to a point, whose density would overflow."""
        raw = self.log_scales[...]
        return MIN_LOG_SCALE + jax.nn.softplus(raw - MIN_LOG_SCALE)

    def log_weights(self) -> jax.Array:
        """log π [K]: log_softmax of the learned logits, or −log K."""
        if self.logits is None:
            return jnp.full((self.num_components,), -jnp.log(self.num_components), jnp.float32)
        return jax.nn.log_softmax(self.logits[...])

    def log_prob(self, z: jax.Array, *, encoder=None) -> jax.Array:
        """log p(z). [..., D] -> [...]"""
        del encoder
        return diag_mixture_log_prob(z, self.means[...], self.log_scale(), self.log_weights())

    def sample(self, key: jax.Array, num_samples: int, *, encoder=None, temperature=1.0):
        """k ~ Categorical(π), then z ~ N(m_k, diag s_k²). [num_samples, D]"""
        del encoder
        refuse_temperature(temperature, "mog")
        k_comp, k_eps = jax.random.split(key)
        k = jax.random.categorical(k_comp, self.log_weights(), shape=(num_samples,))  # [n]
        eps = jax.random.normal(k_eps, (num_samples, self._dim), jnp.float32)
        return self.means[...][k] + jnp.exp(self.log_scale()[k]) * eps

    def describe_temperature(self, temperature: float) -> str:
        refuse_temperature(temperature, "mog")
        return f"z ~ the learned mixture of {self.num_components} Gaussians"

    def analytic_kl(self, q) -> None:
        """No closed form from a Gaussian to a mixture: the Monte Carlo KL is used."""
        del q
        return None


def refuse_temperature(temperature, name: str) -> None:
    """For a prior without the "temperature" trait (config validation refuses T ≠ 1 first)."""
    if temperature != 1.0:
        raise ValueError(f"the {name} prior defines no sampling temperature; got {temperature}")


def make(section, spec: Spec) -> MixtureOfGaussians:
    d = one_layer_latent(spec.latent_dim, "mog")
    return MixtureOfGaussians(
        d, int(section.num_components), bool(section.learn_weights), key=spec.key
    )


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_components = 10  # K
    c.learn_weights = True  # False: π fixed uniform
    return c


def validate(section, spec: Spec | None = None) -> None:
    check_positive_int(section, "num_components", "model.mog")
    if not isinstance(section.learn_weights, bool):
        fail("model.mog.learn_weights", section.learn_weights, "must be True or False")
    if spec is not None:
        one_layer_latent(spec.latent_dim, "mog")


def describe(section, name: str) -> str:
    weights = "learned" if section.learn_weights else "uniform"
    return f"{name} (K = {section.num_components}, {weights} weights)"


COMPONENT = Component(make, defaults, validate, describe=describe)
