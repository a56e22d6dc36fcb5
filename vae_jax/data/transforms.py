"""Data transforms that run on the device: uint8 images -> model inputs.

One convention for randomness: a transform that draws takes a key as its first argument
and always uses it; a deterministic transform takes no key. Evaluation never binarizes on
the device (its splits carry one fixed Bernoulli draw, made on the host by
`data.pipeline`), so it calls `to_unit_interval` alone.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def to_unit_interval(images_u8: jax.Array) -> jax.Array:
    """uint8 images in 0..255 -> float32 in [0, 1] (binary images as 0/255 -> 0/1)."""
    return images_u8.astype(jnp.float32) / 255.0


def binarize_bernoulli(key: jax.Array, x: jax.Array) -> jax.Array:
    """x ~ Bernoulli(x) per pixel, x in [0, 1] (Salakhutdinov & Murray 2008): a fresh
    binary draw of the grey images at every training step."""
    return jax.random.bernoulli(key, x).astype(jnp.float32)
