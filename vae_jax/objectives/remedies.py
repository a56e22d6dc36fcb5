"""Remedies for posterior collapse that several objectives share: KL warm-up and free bits.

KL warm-up (Bowman et al. 2016; Sønderby et al. 2016): the KL term's weight rises
linearly from 0 to its full value over `kl_warmup_steps` steps, or over `kl_warmup_epochs`
epochs of the N training examples (epoch = step · B / N, from the objective's Context):

    w(step) = min(1, step / kl_warmup_steps)   or   min(1, epoch / kl_warmup_epochs).

Its two fields live in each objective's own section (objective.elbo.kl_warmup_steps, ...),
declared by `add_warmup_fields`; an objective where it cannot apply keeps them at 0
(`refuse_warmup`), so that a setting is never silently ignored.

Free bits (Kingma et al. 2016, "Improved variational inference with inverse
autoregressive flow", the free-bits objective, with one group per latent dimension): the
KL term becomes

    Σ_d max(λ, (1/B) Σ_b KL_bd),   KL_bd = D_KL(q(z_d | x_b) || N(0, 1)),

so a dimension whose batch-mean KL is below λ nats costs a constant λ and receives no
gradient from the KL: the encoder may use λ nats per dimension for free. Written per
example (`free_bits_kl`), so that the batch reduction (mean or sum) applies to it as to
every other term: KL_bd where the batch mean of dimension d exceeds λ, else λ. Its batch
mean is the expression above, and with λ = 0 it is the closed-form KL (to round-off).
λ = `hyper.free_bits` is traced (a sweep may vmap over it), so the loss cannot branch on
it: the free-bits form is always computed for the standard-normal prior, whose KL has a
closed form per dimension. No other prior has one; for those the KL is left as it is, and
config validation (hyper.check_hyper) refuses free_bits > 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from vae_jax.errors import ConfigError, check_positive_int, fail
from vae_jax.objectives.base import Context
from vae_jax.priors.standard_normal import StandardNormal


def add_warmup_fields(section) -> None:
    section.kl_warmup_steps = (
        0  # > 0: the KL weight rises linearly to its value over this many steps
    )
    section.kl_warmup_epochs = 0.0  # > 0: ... over this many epochs (step · B / N)


def validate_warmup(section, prefix: str) -> None:
    check_positive_int(section, "kl_warmup_steps", prefix, allow_zero=True)
    if not section.kl_warmup_epochs >= 0:
        fail(f"{prefix}.kl_warmup_epochs", section.kl_warmup_epochs, "must be ≥ 0")
    if section.kl_warmup_steps and section.kl_warmup_epochs:
        fail(
            f"{prefix}.kl_warmup_epochs",
            section.kl_warmup_epochs,
            "set either kl_warmup_steps or kl_warmup_epochs, not both",
        )


def refuse_warmup(section, prefix: str, why: str) -> None:
    """For an objective where a KL warm-up does not apply: both fields must stay 0."""
    for name in ("kl_warmup_steps", "kl_warmup_epochs"):
        if section[name]:
            fail(f"{prefix}.{name}", section[name], f"{why}; use 0")


def warmup_on(section) -> bool:
    return bool(section.kl_warmup_steps or section.kl_warmup_epochs)


def check_warmup_can_run(section, spec, prefix: str) -> None:
    """At build time: a warm-up by epochs needs N."""
    if section.kl_warmup_epochs and not spec.num_train:
        raise ConfigError(
            f"config.{prefix}.kl_warmup_epochs needs the training-set size N, which this "
            "caller did not give (Spec.num_train); use kl_warmup_steps, or pass N"
        )


def warmup(section, ctx: Context, weight):
    """`weight` times the warm-up factor (none when warm-up is off). Traced in the step."""
    if section.kl_warmup_steps:
        weight = weight * jnp.minimum(1.0, ctx.step / section.kl_warmup_steps)
    if section.kl_warmup_epochs:
        weight = weight * jnp.minimum(1.0, ctx.epoch / section.kl_warmup_epochs)
    return weight


def is_standard_normal(prior) -> bool:
    return isinstance(prior, StandardNormal)


def kl_per_dim(model, q) -> jax.Array:
    """The closed-form KL of each coordinate of q to N(0, 1), [B, D]: the layers of a
    tree-shaped latent concatenated in model.latent_layers order. It is the KL to the prior
    itself only when the prior is standard normal (elsewhere, a collapse diagnostic)."""
    layers = model.latent_layers(q).values()
    return jnp.concatenate([d.kl_per_dim_to_standard_normal() for d in layers], axis=-1)


def free_bits_kl(kl_per_dim: jax.Array, floor) -> jax.Array:
    """Σ_d max(λ, mean_b KL_bd) written per example: [B, D] -> [B] (see the module doc)."""
    above = kl_per_dim.mean(axis=0, keepdims=True) > floor  # [1, D]
    return jnp.where(above, kl_per_dim, floor).sum(axis=-1)


def kl_term(model, kl: jax.Array, kl_per_dim: jax.Array, floor) -> jax.Array:
    """The KL term as the loss uses it, [B]: the free-bits KL for the standard-normal
    prior (equal to `kl` when λ = 0), `kl` itself for any other prior."""
    closed_form = is_standard_normal(model.prior) and not model.hierarchical
    return free_bits_kl(kl_per_dim, floor) if closed_form else kl
