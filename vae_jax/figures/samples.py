"""Reconstructions next to their inputs, and samples from the prior."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vae_jax.figures.grid import save_grid


def reconstructions(path: str, graphdef, params, images_u8: np.ndarray, ncols: int = 16):
    """Rows alternate inputs and reconstructions E[x | z = μ(x)]."""
    model = nnx.merge(graphdef, params)
    x = jnp.asarray(images_u8[:ncols], jnp.float32) / 255.0
    recon = np.asarray(jax.jit(lambda m, x: m.reconstruct(x))(model, x))
    save_grid(path, np.concatenate([np.asarray(x), recon]), ncols=len(x))


def samples(path: str, graphdef, params, key, num: int = 64, temperature: float = 1.0):
    """E[x|z] for z ~ N(0, T²I) when the prior is standard normal; T = 1 is the prior."""
    model = nnx.merge(graphdef, params)

    @jax.jit
    def draw(model, key):
        z = temperature * model.prior.sample(key, num, encoder=model.encoder)
        return model.likelihood.mean(model.decode(z))

    save_grid(path, np.asarray(draw(model, key)), ncols=int(np.sqrt(num)) or 1)
