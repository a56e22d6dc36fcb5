"""A RealNVP flow prior (Dinh et al. 2017): z = f(ε), ε ~ N(0, I), with f a stack of affine
coupling layers; its density by the change of variables,

    log p(z) = log N(f⁻¹(z); 0, I) + log |det ∂f⁻¹/∂z|.

Coupling layer l keeps the coordinates with mask m_l = 1 and moves the others (eq. 9),

    y = x ⊙ exp(s) + t,   s, t = (1 − m) ⊙ NN(m ⊙ x),   log |det ∂y/∂x| = Σ_j s_j,

so each inverse is closed-form, x = (y − t) ⊙ exp(−s), with s, t computed from m ⊙ y = m ⊙ x.
The masks alternate between even and odd coordinates from layer to layer, so that every
coordinate is moved by every other layer. Each conditioner NN is a two-hidden-layer ReLU MLP
(`hidden` units) whose last layer starts at zero: s = t = 0, so the flow starts as the
identity and the prior as N(0, I). Log-scales are bounded softly, s = B·tanh(raw / B) with
B = 2, so that one layer scales a coordinate by at most e² (stable early training).

Sampling temperature T (the trait "temperature") follows Glow (Kingma & Dhariwal 2018):
z = f(T·ε), the base's scale multiplied by T. There is no closed-form KL (`analytic_kl` is
None): the objectives use the Monte Carlo KL.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from vae_jax.components import Component, Spec
from vae_jax.distributions import standard_normal_log_prob
from vae_jax.errors import check_positive_int
from vae_jax.priors.mog import one_layer_latent

LOG_SCALE_BOUND = 2.0  # B: |s| < B per layer


class AffineCoupling(nnx.Module):
    """One coupling layer: keeps the coordinates j with (j + parity) even, moves the rest."""

    def __init__(self, dim: int, hidden: int, parity: int, *, rngs: nnx.Rngs):
        self.hidden = nnx.List(
            [nnx.Linear(dim, hidden, rngs=rngs), nnx.Linear(hidden, hidden, rngs=rngs)]
        )
        zeros = nnx.initializers.zeros
        self.out = nnx.Linear(hidden, 2 * dim, kernel_init=zeros, bias_init=zeros, rngs=rngs)
        self.dim = dim
        self.parity = parity

    def mask(self, shape) -> jax.Array:
        """m: 1 on the kept coordinates, broadcast to `shape` [..., D]."""
        m = ((np.arange(self.dim) + self.parity) % 2 == 0).astype(np.float32)
        return jnp.broadcast_to(m, shape)

    def shift_and_log_scale(self, kept: jax.Array, m: jax.Array):
        """s, t [..., D] from the kept coordinates m ⊙ x; zero on the kept ones."""
        h = kept
        for layer in self.hidden:
            h = jax.nn.relu(layer(h))
        raw_s, t = jnp.split(self.out(h), 2, axis=-1)
        s = LOG_SCALE_BOUND * jnp.tanh(raw_s / LOG_SCALE_BOUND)
        return (1.0 - m) * s, (1.0 - m) * t

    def forward(self, x: jax.Array):
        """y = x ⊙ exp(s) + t and log |det ∂y/∂x|. [..., D] -> ([..., D], [...])"""
        m = self.mask(x.shape)
        s, t = self.shift_and_log_scale(m * x, m)
        return x * jnp.exp(s) + t, jnp.sum(s, axis=-1)

    def inverse(self, y: jax.Array):
        """x = (y − t) ⊙ exp(−s) and log |det ∂x/∂y|. [..., D] -> ([..., D], [...])"""
        m = self.mask(y.shape)
        s, t = self.shift_and_log_scale(m * y, m)
        return (y - t) * jnp.exp(-s), -jnp.sum(s, axis=-1)


class RealNVPPrior(nnx.Module):
    """p(z) with z = f(ε) = f_L ∘ … ∘ f_1(ε), ε ~ N(0, I_D)."""

    def __init__(self, latent_dim: int, num_layers: int, hidden: int, *, key):
        rngs = nnx.Rngs(params=key)
        self.layers = nnx.List(
            [AffineCoupling(latent_dim, hidden, i % 2, rngs=rngs) for i in range(num_layers)]
        )
        self._dim = latent_dim

    @property
    def latent_dim(self) -> int:
        return self._dim

    def forward(self, eps: jax.Array):
        """z = f(ε) and log |det ∂f/∂ε|. [..., D] -> ([..., D], [...])"""
        log_det = jnp.zeros(eps.shape[:-1], eps.dtype)
        for layer in self.layers:
            eps, ld = layer.forward(eps)
            log_det = log_det + ld
        return eps, log_det

    def inverse(self, z: jax.Array):
        """ε = f⁻¹(z) and log |det ∂f⁻¹/∂z|. [..., D] -> ([..., D], [...])"""
        log_det = jnp.zeros(z.shape[:-1], z.dtype)
        for layer in reversed(self.layers):
            z, ld = layer.inverse(z)
            log_det = log_det + ld
        return z, log_det

    def log_prob(self, z: jax.Array, *, encoder=None) -> jax.Array:
        """log p(z) = log N(f⁻¹(z)) + log |det ∂f⁻¹/∂z|. [..., D] -> [...]"""
        del encoder
        eps, log_det = self.inverse(z)
        return standard_normal_log_prob(eps) + log_det

    def sample(self, key: jax.Array, num_samples: int, *, encoder=None, temperature=1.0):
        """z = f(T·ε), ε ~ N(0, I). [num_samples, D]"""
        del encoder
        eps = jax.random.normal(key, (num_samples, self._dim), jnp.float32)
        return self.forward(temperature * eps)[0]

    def describe_temperature(self, temperature: float) -> str:
        return f"z = f(ε), ε ~ N(0, {temperature:g}²·I) (RealNVP flow)"

    def analytic_kl(self, q) -> None:
        """No closed form from a Gaussian to a flow: the Monte Carlo KL is used."""
        del q
        return None


def make(section, spec: Spec) -> RealNVPPrior:
    d = one_layer_latent(spec.latent_dim, "flow")
    return RealNVPPrior(d, int(section.num_layers), int(section.hidden), key=spec.key)


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_layers = 4  # coupling layers, masks alternating even/odd coordinates
    c.hidden = 64  # width of the conditioners' two hidden layers
    return c


def validate(section, spec: Spec | None = None) -> None:
    check_positive_int(section, "num_layers", "model.flow")
    check_positive_int(section, "hidden", "model.flow")
    if spec is not None:
        one_layer_latent(spec.latent_dim, "flow")


def describe(section, name: str) -> str:
    return f"{name} (RealNVP, {section.num_layers} couplings, {section.hidden} hidden)"


COMPONENT = Component(
    make, defaults, validate, traits=frozenset({"temperature"}), describe=describe
)
