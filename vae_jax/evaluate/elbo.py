"""Test-set ELBO with L samples, reported as per-example terms (big_vision's evaluator
pattern: per-example values, padding masked out, then sum and divide)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vae_jax.objectives.elbo import elbo_terms
from vae_jax.train import to_model_input


@partial(jax.jit, static_argnums=(0, 4, 5))
def _batch_terms(graphdef, params, x_u8, key, num_samples, deterministic):
    x = to_model_input(x_u8, key, dynamic_binarize=False)
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
) -> dict[str, np.ndarray]:
    """Per-example log_px, kl and elbo (nats) over `images_u8` [N, H, W, C]. Each [N].

    The last batch is padded to `batch_size` (one compilation) and the padding dropped.
    The key of batch i is fold_in(key, i), so the result is a function of the key alone.
    deterministic=True evaluates the autoencoder's objective: log p(x | z = μ(x)), KL = 0.
    """
    n = len(images_u8)
    out: dict[str, list] = {}
    for i, start in enumerate(range(0, n, batch_size)):
        chunk = images_u8[start : start + batch_size]
        pad = batch_size - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.zeros((pad, *chunk.shape[1:]), chunk.dtype)])
        terms = _batch_terms(
            graphdef,
            params,
            jnp.asarray(chunk),
            jax.random.fold_in(key, i),
            num_samples,
            deterministic,
        )
        for k, v in jax.device_get(terms).items():
            out.setdefault(k, []).append(np.asarray(v)[: batch_size - pad])
    return {k: np.concatenate(v) for k, v in out.items()}
