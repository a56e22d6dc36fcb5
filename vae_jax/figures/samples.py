"""Reconstructions next to their inputs, and samples from the prior."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from vae_jax.apply import batch_fn
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
    recon = np.asarray(_reconstruct(graphdef, params, x, None))
    rows, labels = [np.asarray(x), recon], ["encoded input", "E[x | z = μ(x)]"]
    if display_u8 is not None:
        rows.insert(0, np.asarray(display_u8[:ncols], np.float32) / 255.0)
        labels.insert(0, "original (grey)")
    rows = np.stack(rows)
    save_labelled_grid(path, rows, labels)
    return rows


@batch_fn
def _reconstruct(model, x, key):
    del key
    return model.reconstruct(x)


@batch_fn
def _draw(model, x, key, num: int, temperature: float):
    del x
    return model.sample(key, num, mean=True, temperature=temperature)


def samples(path: str, graphdef, params, key, num: int = 64, temperature: float = 1.0):
    """E[x|z] for z from the prior at temperature T (model.sample: the prior defines what
    T means; for N(0, I) it is N(0, T²I)); T = 1 is the prior itself."""
    images = _draw(graphdef, params, None, key, num, float(temperature))
    save_grid(path, np.asarray(images), ncols=int(np.sqrt(num)) or 1)
