"""Reconstructions next to their inputs, and samples from the prior."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vae_jax.figures.grid import save_grid, save_labelled_grid


def reconstructions(
    path: str,
    graphdef,
    params,
    images_u8: np.ndarray,
    ncols: int = 16,
    display_u8: np.ndarray | None = None,
) -> np.ndarray:
    """Inputs over their reconstructions E[x | z = μ(x)], one labelled row each.

    `images_u8` are what the encoder sees (for binarized data, the fixed binary draw the test
    ELBO uses); `display_u8`, if given, are the same images before binarization, drawn as a
    first row for reference only. Returns the rows [R, ncols, H, W, C].
    """
    x = jnp.asarray(images_u8[:ncols], jnp.float32) / 255.0
    recon = np.asarray(_reconstruct(graphdef, params, x))
    rows, labels = [np.asarray(x), recon], ["encoded input", "E[x | z = μ(x)]"]
    if display_u8 is not None:
        rows.insert(0, np.asarray(display_u8[:ncols], np.float32) / 255.0)
        labels.insert(0, "original (grey)")
    rows = np.stack(rows)
    save_labelled_grid(path, rows, labels)
    return rows


@partial(jax.jit, static_argnums=0)
def _reconstruct(graphdef, params, x):
    return nnx.merge(graphdef, params).reconstruct(x)


def samples(path: str, graphdef, params, key, num: int = 64, temperature: float = 1.0):
    """E[x|z] for z ~ N(0, T²I) when the prior is standard normal; T = 1 is the prior."""
    model = nnx.merge(graphdef, params)

    @jax.jit
    def draw(model, key):
        z = temperature * model.prior.sample(key, num, encoder=model.encoder)
        return model.likelihood.mean(model.decode(z))

    save_grid(path, np.asarray(draw(model, key)), ncols=int(np.sqrt(num)) or 1)
