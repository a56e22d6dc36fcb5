"""The evidence lower bound with L Monte Carlo samples and a β-weighted KL.

Kingma & Welling 2013, eq. (7); β-VAE weighting from Higgins et al. 2017:

    L(x) = (1/L) Σ_l log p_θ(x | z_l) − β · D_KL(q_φ(z|x) || p(z)),   z_l = μ + σ ⊙ ε_l.

The KL is analytic when the prior allows it (model.kl), else a Monte Carlo estimate from
the same samples. With β = 1 this is the ELBO ≤ log p(x); the reported `elbo` metric is
always the β = 1 bound, whatever β the loss uses.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vae_jax.hyper import Hyper


def elbo_terms(
    model, x: jax.Array, key: jax.Array, num_samples: int, deterministic: bool = False
) -> dict[str, jax.Array]:
    """Per-example terms: log_px, kl and elbo = log_px − kl, each [B] (L-sample averages),
    and kl_per_dim [B, D], the closed-form KL of each coordinate to N(0, 1) (a collapse
    diagnostic; it is the KL itself when the prior is standard normal)."""
    q = model.posterior(x)  # DiagGaussian [B, D]
    if deterministic:  # the autoencoder: z = μ(x), no KL (not a bound)
        log_px = model.log_px(x, q.loc)
        kl = jnp.zeros_like(log_px)
        return {"log_px": log_px, "kl": kl, "elbo": log_px, "kl_per_dim": jnp.zeros_like(q.loc)}
    z = q.sample(key, num_samples)  # [L, B, D]
    log_px = model.log_px(x, z).mean(axis=0)  # [B]
    kl = model.kl(q, z).mean(axis=0)  # [B]
    return {
        "log_px": log_px,
        "kl": kl,
        "elbo": log_px - kl,
        "kl_per_dim": q.kl_per_dim_to_standard_normal(),
    }


def make(objective_config, reduction: str = "mean"):
    """Bind the sample count (it sets shapes) and the batch reduction; return the objective."""
    num_samples = int(objective_config.num_samples)

    def elbo(model, x: jax.Array, key: jax.Array, hyper: Hyper):
        t = elbo_terms(model, x, key, num_samples)
        per_example = -(t["log_px"] - hyper.beta * t["kl"])  # [B]
        loss = batch_reduce(per_example, reduction)
        metrics = {k: v.mean(axis=0) for k, v in t.items()}  # kl_per_dim stays [D]
        return loss, {"loss": loss, **metrics}

    return elbo


def batch_reduce(per_example: jax.Array, reduction: str) -> jax.Array:
    return per_example.sum() if reduction == "sum" else jnp.mean(per_example)
