"""The VampPrior (Tomczak & Welling 2018, eq. 9): the encoder's posteriors at K learned
pseudo-inputs u_k, mixed with equal weights,

    p(z) = (1/K) Σ_k q_φ(z | u_k),   log p(z) = logsumexp_k log q_φ(z | u_k) − log K.

The pseudo-inputs have the data's shape (H, W, C) and are trained with the model. As in
the authors' code (jmtomczak/vae_vampprior: a bias-free linear layer on one-hot inputs,
followed by hardtanh(0, 1)), each u_k is an unconstrained nnx.Param clipped to the encoder's
input range, u_k = clip(v_k, 0, 1), with v_k ~ N(0.05, 0.01²) at initialisation
(`init_mean`, `init_std`). The clip passes gradients inside [0, 1] and none outside, so
a pixel pushed out of range stays at 0 or 1 (the paper's behaviour; a sigmoid would never
reach the edge values of binary data).

Every call encodes all K pseudo-inputs with the model's encoder, in whatever mode the model
is in: with a BatchNorm encoder in train mode, the pseudo-inputs form a batch of their own
(their statistics normalise them, and update the running averages). `bind(encoder)`
encodes them once and returns z -> log p(z), for loops over many z (log p(x) evaluation).
There is no closed-form KL (`analytic_kl` is None): the objectives use the Monte Carlo KL.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from vae_jax.components import Component, Spec
from vae_jax.errors import check_positive_int, fail
from vae_jax.priors.mog import diag_mixture_log_prob, one_layer_latent, refuse_temperature


class VampPrior(nnx.Module):
    """p(z) = (1/K) Σ_k q(z | u_k) over a one-layer latent of size D."""

    def __init__(
        self, latent_dim: int, data_shape, num_pseudo_inputs: int, init_mean, init_std, *, key
    ):
        shape = (num_pseudo_inputs, *data_shape)  # [K, H, W, C]
        raw = init_mean + init_std * jax.random.normal(key, shape, jnp.float32)
        self.pseudo_inputs_raw = nnx.Param(raw)
        self.num_pseudo_inputs = num_pseudo_inputs
        self._dim = latent_dim

    @property
    def latent_dim(self) -> int:
        return self._dim

    def pseudo_inputs(self) -> jax.Array:
        """u_k = clip(v_k, 0, 1): the pseudo-inputs in the encoder's input range. [K, H, W, C]"""
        return jnp.clip(self.pseudo_inputs_raw[...], 0.0, 1.0)

    def components(self, encoder):
        """q(z | u_k) for the K pseudo-inputs: DiagGaussian([K, D])."""
        if encoder is None:
            raise ValueError("the VampPrior needs the model's encoder (encoder=...)")
        return encoder(self.pseudo_inputs())

    def bind(self, encoder):
        """z -> log p(z) ([..., D] -> [...]), with the K pseudo-inputs encoded once, here."""
        q = self.components(encoder)
        log_w = jnp.full((self.num_pseudo_inputs,), -math.log(self.num_pseudo_inputs))
        return lambda z: diag_mixture_log_prob(z, q.loc, q.log_scale, log_w)

    def log_prob(self, z: jax.Array, *, encoder=None) -> jax.Array:
        """log p(z) = logsumexp_k log q(z | u_k) − log K. [..., D] -> [...]"""
        return self.bind(encoder)(z)

    def sample(self, key: jax.Array, num_samples: int, *, encoder=None, temperature=1.0):
        """k ~ Uniform{1..K}, then z ~ q(z | u_k). [num_samples, D]"""
        refuse_temperature(temperature, "vamp")
        q = self.components(encoder)
        k_comp, k_eps = jax.random.split(key)
        k = jax.random.randint(k_comp, (num_samples,), 0, self.num_pseudo_inputs)
        eps = jax.random.normal(k_eps, (num_samples, self._dim), q.loc.dtype)
        return q.loc[k] + jnp.exp(q.log_scale[k]) * eps

    def describe_temperature(self, temperature: float) -> str:
        refuse_temperature(temperature, "vamp")
        return f"z ~ the VampPrior (the encoder at {self.num_pseudo_inputs} pseudo-inputs)"

    def analytic_kl(self, q) -> None:
        """No closed form from a Gaussian to a mixture: the Monte Carlo KL is used."""
        del q
        return None


def make(section, spec: Spec) -> VampPrior:
    d = one_layer_latent(spec.latent_dim, "vamp")
    return VampPrior(
        d,
        tuple(spec.data_shape),
        int(section.num_pseudo_inputs),
        float(section.init_mean),
        float(section.init_std),
        key=spec.key,
    )


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_pseudo_inputs = 500  # K (Tomczak & Welling 2018, MNIST experiments)
    c.init_mean = 0.05  # pseudo-inputs start at N(init_mean, init_std²) (authors' code)
    c.init_std = 0.01
    return c


def validate(section, spec: Spec | None = None) -> None:
    check_positive_int(section, "num_pseudo_inputs", "model.vamp")
    for name in ("init_mean", "init_std"):
        value = section[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            fail(f"model.vamp.{name}", value, "must be a number")
        if not math.isfinite(value):
            fail(f"model.vamp.{name}", value, "must be finite")
    if not 0.0 <= section.init_mean <= 1.0:
        fail("model.vamp.init_mean", section.init_mean, "must be in [0, 1] (the input range)")
    if not section.init_std >= 0.0:
        fail("model.vamp.init_std", section.init_std, "must be ≥ 0")
    if spec is not None:
        one_layer_latent(spec.latent_dim, "vamp")


def describe(section, name: str) -> str:
    return f"{name} (K = {section.num_pseudo_inputs} pseudo-inputs)"


COMPONENT = Component(make, defaults, validate, describe=describe)
