"""Fully connected encoder and decoder (Kingma & Welling 2013, Appendix C)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx
from ml_collections import config_dict

from vae_jax.components import Component, Spec
from vae_jax.distributions import DiagGaussian
from vae_jax.errors import check_choice, check_positive_ints
from vae_jax.nets.activations import ACTIVATIONS


class MLPEncoder(nnx.Module):
    """x [B, H, W, C] -> q(z|x) = DiagGaussian([B, D])."""

    def __init__(
        self, input_shape, latent_dim, hidden_dims: Sequence[int], activation, *, rngs, dtype=None
    ):
        sizes = [math.prod(input_shape), *hidden_dims]
        linear = lambda a, b: nnx.Linear(a, b, dtype=dtype, rngs=rngs)  # params stay float32
        self.hidden = nnx.List([linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        # The output layer stays float32: μ and log σ feed the KL and the sampler.
        self.out = nnx.Linear(sizes[-1], 2 * latent_dim, rngs=rngs)
        self.activation = activation
        self.input_ndim = len(input_shape)

    def __call__(self, x: jax.Array) -> DiagGaussian:
        h = x.reshape(*x.shape[: x.ndim - self.input_ndim], -1)
        act = ACTIVATIONS[self.activation]
        for layer in self.hidden:
            h = act(layer(h))
        loc, log_scale = jnp.split(self.out(h).astype(jnp.float32), 2, axis=-1)
        return DiagGaussian(loc, log_scale)


class MLPDecoder(nnx.Module):
    """z [..., D] -> decoder_out [..., H, W, C * num_params]."""

    def __init__(
        self, output_shape, latent_dim, hidden_dims: Sequence[int], activation, *, rngs, dtype=None
    ):
        sizes = [latent_dim, *reversed(tuple(hidden_dims))]
        linear = lambda a, b: nnx.Linear(a, b, dtype=dtype, rngs=rngs)  # params stay float32
        self.hidden = nnx.List([linear(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True)])
        # The output layer stays float32: its logits feed the likelihood.
        self.out = nnx.Linear(sizes[-1], math.prod(output_shape), rngs=rngs)
        self.activation = activation
        self.output_shape = tuple(output_shape)

    def __call__(self, z: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h = z
        for layer in self.hidden:
            h = act(layer(h))
        # The likelihood works in float32 whatever the compute dtype.
        return self.out(h).astype(jnp.float32).reshape(*z.shape[:-1], *self.output_shape)


def make(section, spec: Spec):
    out_shape = (*spec.data_shape[:-1], spec.data_shape[-1] * spec.num_params)
    hidden, act, rngs = tuple(section.hidden_dims), section.activation, nnx.Rngs(params=spec.key)
    dec_hidden, dec_act = decoder_layers(section)
    dtype = spec.dtype
    return (
        MLPEncoder(spec.data_shape, spec.latent_dim, hidden, act, rngs=rngs, dtype=dtype),
        # MLPDecoder reverses its widths (it mirrors an encoder's list): pass them reversed.
        MLPDecoder(out_shape, spec.latent_dim, dec_hidden[::-1], dec_act, rngs=rngs, dtype=dtype),
    )


def decoder_layers(section) -> tuple[tuple[int, ...], str]:
    """The decoder's widths from z to x, and its activation: the encoder's mirrored unless
    `decoder_hidden_dims` / `decoder_activation` are set (e.g. Higgins et al.'s 1200-1200
    ReLU encoder with a 1200-1200-1200 tanh decoder)."""
    widths = section.decoder_hidden_dims
    widths = tuple(reversed(tuple(section.hidden_dims))) if widths is None else tuple(widths)
    return widths, section.decoder_activation or section.activation


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.hidden_dims = (512, 256)  # encoder widths; the decoder mirrors them
    c.activation = "relu"
    # The decoder's widths from z to x (None: the encoder's, mirrored) and activation
    # (None: the encoder's).
    c.decoder_hidden_dims = config_dict.placeholder(tuple)
    c.decoder_activation = config_dict.placeholder(str)
    return c


def validate(section, spec=None) -> None:
    del spec
    check_positive_ints(section, "hidden_dims", "model.mlp", allow_empty=True)
    check_choice(section, "activation", "model.mlp", ACTIVATIONS)
    if section.decoder_hidden_dims is not None:
        check_positive_ints(section, "decoder_hidden_dims", "model.mlp", allow_empty=True)
    if section.decoder_activation is not None:
        check_choice(section, "decoder_activation", "model.mlp", ACTIVATIONS)


def describe(section, name: str) -> str:
    widths, act = decoder_layers(section)
    mirrored = widths == tuple(reversed(tuple(section.hidden_dims))) and act == section.activation
    if mirrored:
        return f"{name} {tuple(section.hidden_dims)}"
    return f"{name} {tuple(section.hidden_dims)} {section.activation}, decoder {widths} {act}"


COMPONENT = Component(make, defaults, validate, describe=describe)
