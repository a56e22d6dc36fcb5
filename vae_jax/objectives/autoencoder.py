"""The plain deterministic autoencoder: the baseline a VAE is compared against.

Loss = −log p_θ(x | z = μ_φ(x)), i.e. reconstruction only (binary cross-entropy for the
Bernoulli likelihood, MSE for the unit Gaussian). No KL and no sampling, so its latent
space is not regularised towards the prior; that contrast is the point of the baseline.
It logs `log_px` only, and tells evaluation that it is deterministic and not a bound.
"""

from __future__ import annotations

import jax

from vae_jax.components import Component, Spec
from vae_jax.objectives.base import Context, Objective, batch_reduce


def make(section, spec: Spec) -> Objective:
    del section

    def loss(model, batch, key: jax.Array, ctx: Context):
        del key, ctx
        x = batch["x"]
        log_px = model.log_px(x, model.posterior_mean(model.posterior(x)))  # [B]
        value = batch_reduce(-log_px, spec.reduction)
        return value, {"loss": value, "log_px": log_px.mean()}

    return Objective(loss, bound=False, deterministic=True, progress=("log_px",))


COMPONENT = Component(make)
