"""Fully connected encoder and decoder (Kingma & Welling 2013, Appendix C)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from vae_jax.distributions import DiagGaussian
from vae_jax.nets.activations import ACTIVATIONS


class MLPEncoder(nnx.Module):
    """x [B, H, W, C] -> q(z|x) = DiagGaussian([B, D])."""

    def __init__(self, input_shape, latent_dim, hidden_dims: Sequence[int], activation, *, rngs):
        sizes = [math.prod(input_shape), *hidden_dims]
        self.hidden = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.out = nnx.Linear(sizes[-1], 2 * latent_dim, rngs=rngs)
        self.activation = activation
        self.input_ndim = len(input_shape)

    def __call__(self, x: jax.Array) -> DiagGaussian:
        h = x.reshape(*x.shape[: x.ndim - self.input_ndim], -1)
        act = ACTIVATIONS[self.activation]
        for layer in self.hidden:
            h = act(layer(h))
        loc, log_scale = jnp.split(self.out(h), 2, axis=-1)
        return DiagGaussian(loc, log_scale)


class MLPDecoder(nnx.Module):
    """z [..., D] -> decoder_out [..., H, W, C * num_params]."""

    def __init__(self, output_shape, latent_dim, hidden_dims: Sequence[int], activation, *, rngs):
        sizes = [latent_dim, *reversed(tuple(hidden_dims))]
        self.hidden = nnx.List(
            [nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.out = nnx.Linear(sizes[-1], math.prod(output_shape), rngs=rngs)
        self.activation = activation
        self.output_shape = tuple(output_shape)

    def __call__(self, z: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = z
        for layer in self.hidden:
            h = act(layer(h))
        return self.out(h).reshape(*z.shape[:-1], *self.output_shape)
