"""The evidence lower bound with L Monte Carlo samples and a β-weighted KL.

Kingma & Welling 2013, eq. (7); β-VAE weighting from Higgins et al. 2017:

    L(x) = (1/L) Σ_l log p_θ(x | z_l) − β · D_KL(q_φ(z|x) || p(z)),   z_l = μ + σ ⊙ ε_l.

The KL is analytic when the prior allows it (model.kl), else a Monte Carlo estimate from
the same samples. With β = 1 this is the ELBO ≤ log p(x); the reported `elbo` metric is
always the β = 1 bound, whatever β the loss uses.

KL warm-up (Bowman et al. 2016; Sønderby et al. 2016), a remedy for posterior collapse:
the KL weight rises linearly from 0 to β over `kl_warmup_steps` steps, or over
`kl_warmup_epochs` epochs of the N training examples (step · B / N), reading the step and N
from the objective's Context. When warm-up is on, the weight used is logged as `beta`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from vae_jax.components import Component, Spec
from vae_jax.errors import ConfigError, check_positive_int, fail
from vae_jax.objectives.base import Context, Objective, batch_reduce


def elbo_terms(
    model, x: jax.Array, key: jax.Array, num_samples: int, deterministic: bool = False
) -> dict[str, jax.Array]:
    """Per-example terms: log_px, kl and elbo = log_px − kl, each [B] (L-sample averages),
    and kl_per_dim [B, D], the closed-form KL of each coordinate to N(0, 1) (a collapse
    diagnostic; it is the KL itself when the prior is standard normal), the layers of a
    tree-shaped latent concatenated in model.latent_layers order."""
    q = model.posterior(x)  # DiagGaussian [B, D], or a pytree of them
    layers = model.latent_layers(q).values()
    kl_per_dim = jnp.concatenate([d.kl_per_dim_to_standard_normal() for d in layers], axis=-1)
    if deterministic:  # the autoencoder: z = μ(x), no KL (not a bound)
        log_px = model.log_px(x, model.posterior_mean(q))
        zero = jnp.zeros_like(log_px)
        return {
            "log_px": log_px,
            "kl": zero,
            "elbo": log_px,
            "kl_per_dim": jnp.zeros_like(kl_per_dim),
        }
    z = model.sample_latent(q, key, num_samples)  # [L, B, D]
    log_px = model.log_px(x, z).mean(axis=0)  # [B]
    kl = model.kl(q, z).mean(axis=0)  # [B]
    return {"log_px": log_px, "kl": kl, "elbo": log_px - kl, "kl_per_dim": kl_per_dim}


def kl_weight(section, ctx: Context) -> jax.Array | float:
    """β times the warm-up factor min(1, step / steps) and/or min(1, epoch / epochs)."""
    weight = ctx.hyper.beta
    if section.kl_warmup_steps:
        weight = weight * jnp.minimum(1.0, ctx.step / section.kl_warmup_steps)
    if section.kl_warmup_epochs:
        weight = weight * jnp.minimum(1.0, ctx.epoch / section.kl_warmup_epochs)
    return weight


def make(section, spec: Spec) -> Objective:
    """Bind the sample count (it sets shapes), the warm-up and the batch reduction."""
    num_samples = int(section.num_samples)
    warmup = bool(section.kl_warmup_steps or section.kl_warmup_epochs)
    if section.kl_warmup_epochs and not spec.num_train:
        raise ConfigError(
            "config.objective.elbo.kl_warmup_epochs needs the training-set size N, which this "
            "caller did not give (Spec.num_train); use kl_warmup_steps, or pass N"
        )

    def loss(model, batch, key: jax.Array, ctx: Context):
        t = elbo_terms(model, batch["x"], key, num_samples)
        beta = kl_weight(section, ctx)
        per_example = -(t["log_px"] - beta * t["kl"])  # [B]
        value = batch_reduce(per_example, spec.reduction)
        metrics = {k: v.mean(axis=0) for k, v in t.items()}  # kl_per_dim stays [D]
        if warmup:
            metrics["beta"] = jnp.asarray(beta, jnp.float32)
        return value, {"loss": value, **metrics}

    return Objective(
        loss, bound=True, progress=("elbo", "kl", "beta") if warmup else ("elbo", "kl")
    )


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_samples = 1  # L, Monte Carlo samples of z per example
    c.kl_warmup_steps = 0  # > 0: the KL weight rises linearly to β over this many steps
    c.kl_warmup_epochs = 0.0  # > 0: ... over this many epochs (step · B / N)
    return c


def validate(section, spec=None) -> None:
    del spec
    check_positive_int(section, "num_samples", "objective.elbo")
    check_positive_int(section, "kl_warmup_steps", "objective.elbo", allow_zero=True)
    if not section.kl_warmup_epochs >= 0:
        fail("objective.elbo.kl_warmup_epochs", section.kl_warmup_epochs, "must be ≥ 0")
    if section.kl_warmup_steps and section.kl_warmup_epochs:
        fail(
            "objective.elbo.kl_warmup_epochs",
            section.kl_warmup_epochs,
            "set either kl_warmup_steps or kl_warmup_epochs, not both",
        )


COMPONENT = Component(make, defaults, validate)
