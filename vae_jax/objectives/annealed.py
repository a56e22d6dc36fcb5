"""Capacity-controlled β-VAE (Burgess et al. 2018, "Understanding disentangling in β-VAE"):

    loss(x) = −log p(x|z) + γ · | KL̄ − C(step) |,   C(step) = C_max · min(1, step / S),

z ~ q(z|x) one draw per example, KL̄ the batch mean of the per-example KL (closed form
where the prior has one, else Monte Carlo), γ = `hyper.capacity_gamma`, C_max =
`hyper.capacity_max` (nats; both traced, so a sweep can vmap over them) and S =
`capacity_steps` (bound at build time; 0: C = C_max from the first step). The KL is held
near a target capacity C that grows during training, so the code gains information
gradually. Burgess et al. use γ = 1000 and C rising to 25 nats over 100,000 steps on
dSprites; those are the defaults. |KL̄ − C| is one number per batch (their code takes the
batch mean KL); it is added to every example's loss, so a summed reduction weighs it B
times as it does the reconstruction.

Free bits (objectives/remedies.py) replace KL̄ by the batch mean of the free-bits KL. A KL
warm-up is refused: it would ramp the weight of a term whose target the capacity schedule
already ramps. The `elbo` metric is the plain β = 1 ELBO of the same draws, a bound on
log p(x) for this model, so `bound` is True.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from vae_jax.components import Component, Spec
from vae_jax.errors import check_positive_int
from vae_jax.objectives import remedies
from vae_jax.objectives.base import Context, Objective, batch_reduce
from vae_jax.objectives.elbo import elbo_terms


def capacity(step: jax.Array, capacity_max, capacity_steps: int) -> jax.Array:
    """C(step) = C_max · min(1, step / S); C_max from the start when S = 0."""
    if not capacity_steps:
        return jnp.asarray(capacity_max, jnp.float32)
    return capacity_max * jnp.minimum(1.0, step / capacity_steps)


def make(section, spec: Spec) -> Objective:
    capacity_steps = int(section.capacity_steps)

    def loss(model, batch, key: jax.Array, ctx: Context):
        hyper = ctx.hyper.filled()
        t = elbo_terms(model, batch["x"], key, 1)
        kl_used = remedies.kl_term(model, t["kl"], t["kl_per_dim"], hyper.free_bits)  # [B]
        target = capacity(ctx.step, hyper.capacity_max, capacity_steps)
        penalty = hyper.capacity_gamma * jnp.abs(kl_used.mean() - target)  # []
        value = batch_reduce(-t["log_px"] + penalty, spec.reduction)
        metrics = {k: v.mean(axis=0) for k, v in t.items()}  # kl_per_dim stays [D]
        return value, {"loss": value, **metrics, "capacity": jnp.asarray(target, jnp.float32)}

    return Objective(loss, bound=True, progress=("elbo", "kl", "capacity"))


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.capacity_steps = 100_000  # S: C rises linearly from 0 to hyper.capacity_max over S steps
    remedies.add_warmup_fields(c)  # declared so that a setting is refused, not ignored
    return c


def validate(section, spec=None) -> None:
    del spec
    check_positive_int(section, "capacity_steps", "objective.annealed", allow_zero=True)
    remedies.refuse_warmup(
        section, "objective.annealed", "the capacity schedule (capacity_steps) already ramps the KL"
    )


COMPONENT = Component(
    make,
    defaults,
    validate,
    traits=frozenset({"hyper.capacity_gamma", "hyper.capacity_max", "hyper.free_bits"}),
)
