"""The likelihood interface p_θ(x|z): a small bundle of pure functions (optax style).

`decoder_out` is what the decoder emits: [..., H, W, C * num_params] where the trailing
axes match `x`'s event axes. `log_prob` sums over the event axes (every axis of `x` but
the first, the batch axis), so `decoder_out` may carry extra leading sample axes: with
decoder_out [L, B, H, W, C] and x [B, H, W, C] the result is [L, B].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax


class Likelihood(NamedTuple):
    name: str
    num_params: int  # decoder channels per data channel
    log_prob: Callable[[jax.Array, jax.Array], jax.Array]  # (decoder_out, x) -> [..., B]
    mean: Callable[[jax.Array], jax.Array]  # decoder_out -> E[x|z], same shape as x
    sample: Callable[[jax.Array, jax.Array], jax.Array]  # (key, decoder_out) -> x ~ p(x|z)


def sum_event(values: jax.Array, x: jax.Array) -> jax.Array:
    """Sum element-wise log-probs over x's event axes (all but x's batch axis)."""
    event_axes = tuple(range(values.ndim - (x.ndim - 1), values.ndim))
    return values.sum(axis=event_axes)
