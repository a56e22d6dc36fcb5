"""The evidence lower bound with L Monte Carlo samples and a β-weighted KL.

Kingma & Welling 2013, eq. (7); β-VAE weighting from Higgins et al. 2017:

    L(x) = (1/L) Σ_l log p_θ(x | z_l) − β · D_KL(q_φ(z|x) || p(z)),   z_l = μ + σ ⊙ ε_l.

The KL is analytic when the prior allows it (model.kl), else a Monte Carlo estimate from
the same samples. With β = 1 this is the ELBO ≤ log p(x); the reported `elbo` metric is
always the β = 1 bound, whatever β the loss uses.

Two remedies for posterior collapse (objectives/remedies.py, shared with other objectives):
KL warm-up, the KL weight rising linearly from 0 to β over `kl_warmup_steps` steps or
`kl_warmup_epochs` epochs (logged as `beta` when on), and free bits, `hyper.free_bits` = λ
nats per latent dimension (standard-normal prior only):

    loss = −(1/L) Σ_l log p(x | z_l) + β · w(step) · Σ_d max(λ, mean_batch KL_d).

The metrics (`kl`, `elbo`) report the plain KL and ELBO, whatever the remedies do.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from vae_jax.components import Component, Spec
from vae_jax.errors import check_positive_int
from vae_jax.objectives import remedies
from vae_jax.objectives.base import Context, Objective, batch_reduce


def elbo_terms(
    model, x: jax.Array, key: jax.Array, num_samples: int, deterministic: bool = False
) -> dict[str, jax.Array]:
    """Per-example terms: log_px, kl and elbo = log_px − kl, each [B] (L-sample averages),
    and kl_per_dim [B, D], the closed-form KL of each coordinate to N(0, 1) (a collapse
    diagnostic; it is the KL itself when the prior is standard normal), the layers of a
    tree-shaped latent concatenated in model.latent_layers order."""
    q = model.posterior(x)  # DiagGaussian [B, D], or a pytree of them
    kl_per_dim = remedies.kl_per_dim(model, q)  # [B, D]
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


def make(section, spec: Spec) -> Objective:
    """Bind the sample count (it sets shapes), the warm-up and the batch reduction."""
    num_samples = int(section.num_samples)
    warmup = remedies.warmup_on(section)
    remedies.check_warmup_can_run(section, spec, "objective.elbo")

    def loss(model, batch, key: jax.Array, ctx: Context):
        hyper = ctx.hyper.filled()
        t = elbo_terms(model, batch["x"], key, num_samples)
        beta = remedies.warmup(section, ctx, hyper.beta)
        kl = remedies.kl_term(model, t["kl"], t["kl_per_dim"], hyper.free_bits)  # [B]
        per_example = -(t["log_px"] - beta * kl)  # [B]
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
    remedies.add_warmup_fields(c)
    return c


def validate(section, spec=None) -> None:
    del spec
    check_positive_int(section, "num_samples", "objective.elbo")
    remedies.validate_warmup(section, "objective.elbo")


# The loss reads these Hyper fields (hyper.check_hyper refuses the others set).
COMPONENT = Component(make, defaults, validate, traits=frozenset({"hyper.beta", "hyper.free_bits"}))
