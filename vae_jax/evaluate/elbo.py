"""Test-set ELBO with L samples, reported as per-example terms (big_vision's evaluator
pattern: per-example values, padding masked out, then sum and divide)."""

from __future__ import annotations

from functools import partial

import jax
import numpy as np
from flax import nnx

from vae_jax.batching import map_padded_batches
from vae_jax.data.transforms import to_unit_interval
from vae_jax.objectives.elbo import elbo_terms


@partial(jax.jit, static_argnums=(0, 4, 5))
def _batch_terms(graphdef, params, x_u8, key, num_samples, deterministic):
    x = to_unit_interval(x_u8)  # the split holds a fixed binary draw: the key is z's only
    return elbo_terms(nnx.merge(graphdef, params), x, key, num_samples, deterministic)


def dataset_elbo(
    graphdef,
    params,
    images_u8: np.ndarray,
    key: jax.Array,
    *,
    num_samples: int = 1,
    batch_size: int = 500,
    deterministic: bool = False,
    progress: str | None = None,
) -> dict[str, np.ndarray]:
    """Per-example log_px, kl and elbo (nats) over `images_u8` [N, H, W, C]. Each [N].

    The last batch is padded to `batch_size` (one compilation) and the padding dropped.
    The key of batch i is fold_in(key, i), so the result is a function of the key alone.
    deterministic=True evaluates the autoencoder's objective: log p(x | z = μ(x)), KL = 0.
    """
    return map_padded_batches(
        lambda i, x: _batch_terms(
            graphdef, params, x, jax.random.fold_in(key, i), num_samples, deterministic
        ),
        images_u8,
        batch_size,
        progress=progress,
    )
