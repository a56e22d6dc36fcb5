"""Convolutional encoder and decoder, sized from the input shape.

The encoder halves the image with stride-2 3×3 convolutions while the side is even and
larger than 7 (28 → 14 → 7, 32 → 16 → 8 → 4, 64 → 32 → 16 → 8 → 4); the decoder mirrors it
with sub-pixel convolutions (Shi et al. 2016): a 3×3 conv to 4× the channels followed by a
depth-to-space shuffle, the same function class as a stride-2 transposed convolution but
about 4× faster to differentiate on CPU, where XLA's transposed-conv gradient is slow.
`conv_stages(side)` is the single place that rule lives, and config validation uses it to
reject sizes it cannot take.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from vae_jax.components import Component, Spec
from vae_jax.distributions import DiagGaussian
from vae_jax.errors import check_choice, check_positive_int, check_positive_ints, fail
from vae_jax.nets.activations import ACTIVATIONS

MAX_FINAL_SIDE = 8


def conv_stages(side: int) -> int | None:
    """Number of stride-2 stages for a square image of this side, or None if unsupported."""
    stages = 0
    while side % 2 == 0 and side > 7:
        side //= 2
        stages += 1
    return stages if stages > 0 and side <= MAX_FINAL_SIDE else None


def _stage_channels(channels: Sequence[int], stages: int) -> list[int]:
    channels = list(channels)
    return [channels[min(i, len(channels) - 1)] for i in range(stages)]


def _flatten_leading(x: jax.Array, event_ndim: int):
    lead = x.shape[: x.ndim - event_ndim]
    return x.reshape(-1, *x.shape[x.ndim - event_ndim :]), lead


def depth_to_space(h: jax.Array) -> jax.Array:
    """[B, H, W, 4C] -> [B, 2H, 2W, C] (pixel shuffle)."""
    b, height, width, c4 = h.shape
    h = h.reshape(b, height, width, 2, 2, c4 // 4).transpose(0, 1, 3, 2, 4, 5)
    return h.reshape(b, 2 * height, 2 * width, c4 // 4)


class ConvEncoder(nnx.Module):
    """x [..., H, W, C] -> DiagGaussian([..., D])."""

    def __init__(
        self, input_shape, latent_dim, channels, hidden_dim, activation, *, rngs, dtype=None
    ):
        h, _, c = input_shape
        stages = conv_stages(h)
        chans = _stage_channels(channels, stages)
        ins = [c, *chans[:-1]]
        self.convs = nnx.List(
            [
                nnx.Conv(a, b, (3, 3), strides=2, padding="SAME", dtype=dtype, rngs=rngs)
                for a, b in zip(ins, chans, strict=True)
            ]
        )
        side = h // 2**stages
        self.dense = nnx.Linear(side * side * chans[-1], hidden_dim, dtype=dtype, rngs=rngs)
        self.out = nnx.Linear(hidden_dim, 2 * latent_dim, rngs=rngs)  # float32 (the KL)
        self.activation = activation

    def __call__(self, x: jax.Array) -> DiagGaussian:
        act = ACTIVATIONS[self.activation]
        h, lead = _flatten_leading(x, 3)
        for conv in self.convs:
            h = act(conv(h))
        h = act(self.dense(h.reshape(h.shape[0], -1)))
        loc, log_scale = jnp.split(self.out(h).astype(jnp.float32).reshape(*lead, -1), 2, axis=-1)
        return DiagGaussian(loc, log_scale)


class ConvDecoder(nnx.Module):
    """z [..., D] -> decoder_out [..., H, W, C * num_params]."""

    def __init__(
        self, output_shape, latent_dim, channels, hidden_dim, activation, *, rngs, dtype=None
    ):
        h, _, c_out = output_shape
        stages = conv_stages(h)
        chans = list(reversed(_stage_channels(channels, stages)))
        self.side, self.first_channels = h // 2**stages, chans[0]
        self.dense = nnx.Linear(latent_dim, hidden_dim, dtype=dtype, rngs=rngs)
        self.project = nnx.Linear(
            hidden_dim, self.side * self.side * chans[0], dtype=dtype, rngs=rngs
        )
        outs = [*chans[1:], chans[-1]]
        self.upconvs = nnx.List(
            [
                nnx.Conv(a, 4 * b, (3, 3), padding="SAME", dtype=dtype, rngs=rngs)
                for a, b in zip(chans, outs, strict=True)
            ]
        )
        self.out = nnx.Conv(outs[-1], c_out, (3, 3), padding="SAME", rngs=rngs)  # float32
        self.activation = activation

    def __call__(self, z: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        h, lead = _flatten_leading(z, 1)
        h = act(self.project(act(self.dense(h))))
        h = h.reshape(-1, self.side, self.side, self.first_channels)
        for upconv in self.upconvs:
            h = act(depth_to_space(upconv(h)))
        out = self.out(h).astype(jnp.float32)  # the likelihood works in float32
        return out.reshape(*lead, *out.shape[1:])


def make(section, spec: Spec):
    out_shape = (*spec.data_shape[:-1], spec.data_shape[-1] * spec.num_params)
    chans, hidden, act = tuple(section.channels), section.hidden_dim, section.activation
    rngs, dtype = nnx.Rngs(params=spec.key), spec.dtype
    return (
        ConvEncoder(spec.data_shape, spec.latent_dim, chans, hidden, act, rngs=rngs, dtype=dtype),
        ConvDecoder(out_shape, spec.latent_dim, chans, hidden, act, rngs=rngs, dtype=dtype),
    )


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.channels = (32, 64)  # channels per stride-2 stage (the last one repeats)
    c.hidden_dim = 256
    c.activation = "relu"
    return c


def validate(section, spec: Spec | None = None) -> None:
    check_positive_ints(section, "channels", "model.conv")
    check_positive_int(section, "hidden_dim", "model.conv")
    check_choice(section, "activation", "model.conv", ACTIVATIONS)
    if spec is not None:
        h, w = spec.data_shape[0], spec.data_shape[1]
        if h != w or conv_stages(h) is None:
            fail(
                "model.net",
                "conv",
                f"the conv net cannot take {h}×{w} images: it needs square images whose side "
                "halves down to at most 8 (e.g. 28, 32, 64); use model.net='mlp'",
            )


def describe(section, name: str) -> str:
    return f"{name} {tuple(section.channels)}, dense {section.hidden_dim}"


COMPONENT = Component(make, defaults, validate, describe=describe)
