"""Test-set ELBO with L samples, reported as per-example terms (big_vision's evaluator
pattern: per-example values, padding masked out, then sum and divide)."""

from __future__ import annotations

import jax
import numpy as np

from vae_jax.apply import apply_batches, batch_fn
from vae_jax.objectives.elbo import elbo_terms


@batch_fn
def _batch_terms(model, x, key, num_samples, deterministic):
    # The split holds a fixed binary draw (or the data themselves): the key is z's only.
    return elbo_terms(model, x, key, num_samples, deterministic)


def dataset_elbo(
    graphdef,
    state,
    images_u8: np.ndarray,
    key: jax.Array,
    *,
    num_samples: int = 1,
    batch_size: int = 500,
    deterministic: bool = False,
    progress: str | None = None,
) -> dict[str, np.ndarray]:
    """Per-example log_px, kl and elbo (nats) over `images_u8` [N, H, W, C]. Each [N].

    `state`: the model's variables (vae_jax.apply). The last batch is padded to
    `batch_size` (one compilation) and the padding dropped. The key of batch i is
    fold_in(key, i), so the result is a function of the key alone. deterministic=True
    evaluates the autoencoder's objective: log p(x | z = μ(x)), KL = 0.
    """
    return apply_batches(
        _batch_terms,
        graphdef,
        state,
        images_u8,
        batch_size,
        key=key,
        static=(num_samples, deterministic),
        progress=progress,
    )
