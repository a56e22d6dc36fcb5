"""Swept hyper-parameters: traced arguments of the objective, so `vmap` can sweep them.

Hyper-parameters that fix shapes (latent size, number of samples) are bound at build time
by closure instead; see `make` in objectives/elbo.py.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp


class Hyper(NamedTuple):
    beta: float | jnp.ndarray = 1.0  # weight of the KL term (Higgins et al. 2017)


def hyper_from_config(hyper_config) -> Hyper:
    return Hyper(**{f: jnp.float32(hyper_config[f]) for f in Hyper._fields})
