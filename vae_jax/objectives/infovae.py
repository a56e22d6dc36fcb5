"""InfoVAE with the MMD divergence (Zhao et al. 2019, "InfoVAE: Balancing learning and
inference in variational autoencoders", eq. (6), with D = MMD):

    loss(x) = −log p(x|z) + (1 − α) · D_KL(q(z|x) || p(z)) + (α + λ − 1) · MMD(q(z), p(z)),

z ~ q(z|x) one draw per example, α = `hyper.info_alpha`, λ = `hyper.mmd_lambda`. α = 1
drops the KL (the "MMD-VAE" of Zhao et al.'s tutorial); α = 0, λ = 1 is the ELBO. Defaults
α = 0, λ = 1000: the ELBO's KL kept and a strong pull of the aggregate posterior q(z)
towards p(z). Zhao et al. use a large λ for MMD; the exact values of their experiments were
not checked here, so treat these defaults as ours. Both weights must be ≥ 0 (α ≤ 1,
α + λ ≥ 1; hyper.check_hyper).

MMD(q(z), p(z)) is estimated on the batch: the B codes z_b against B prior draws
(model.prior.sample, key split from the step's key), with the biased V-statistic

    MMD² = mean_{ij} k(z_i, z_j) + mean_{ij} k(y_i, y_j) − 2 mean_{ij} k(z_i, y_j),

which is ≥ 0 and 0 for two identical sets (to the round-off of its three means; Gretton
et al. 2012, the biased estimate); it is biased upwards by O(1/B). Kernels (`kernel`), with
C = 2·D, the mean squared distance of two independent N(0, I_D) draws:
- imq: k(a, b) = C / (C + ||a − b||²), inverse multiquadratic (Tolstikhin et al. 2018, WAE,
  who use C = 2·D·σ² for a N(0, σ²I) prior), heavy-tailed, so far-off codes still get a
  gradient; the default.
- rbf: k(a, b) = exp(−||a − b||² / C).
The MMD is one number per batch; it is added to every example's loss, so that a summed
reduction weighs it B times as it does the other terms.

Remedies (objectives/remedies.py) act on the KL term: KL warm-up multiplies (1 − α) by
w(step) (logged as `kl_weight`), and free bits floor it per dimension. The `elbo` metric is
the plain β = 1 ELBO of the same draws, a lower bound on log p(x) for this model whatever
the loss optimised; so `bound` is True, and evaluation's test ELBO and importance-sampled
log p(x) measure the trained model as they do for the ELBO.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import ml_collections

from vae_jax.components import Component, Spec
from vae_jax.errors import check_choice
from vae_jax.objectives import remedies
from vae_jax.objectives.base import Context, Objective, batch_reduce

KERNELS = ("imq", "rbf")


def kernel_matrix(a: jax.Array, b: jax.Array, kernel: str) -> jax.Array:
    """k(a_i, b_j) for a [n, D], b [m, D] -> [n, m], with scale C = 2·D."""
    scale = 2.0 * a.shape[-1]
    sq = jnp.sum(jnp.square(a[:, None, :] - b[None, :, :]), axis=-1)  # [n, m]
    return scale / (scale + sq) if kernel == "imq" else jnp.exp(-sq / scale)


def mmd(x: jax.Array, y: jax.Array, kernel: str = "imq", unbiased: bool = False) -> jax.Array:
    """The squared MMD between samples x [n, D] and y [m, D]: the V-statistic above, or
    with `unbiased` the U-statistic (the diagonals of k(x, x) and k(y, y) left out; it may
    be negative, and its mean over draws is the true MMD²)."""
    kxx, kyy, kxy = (kernel_matrix(a, b, kernel) for a, b in ((x, x), (y, y), (x, y)))
    if not unbiased:
        return kxx.mean() + kyy.mean() - 2.0 * kxy.mean()
    return _off_diagonal_mean(kxx) + _off_diagonal_mean(kyy) - 2.0 * kxy.mean()


def _off_diagonal_mean(k: jax.Array) -> jax.Array:
    n = k.shape[0]
    return (k.sum() - jnp.trace(k)) / (n * (n - 1))


def _flat(z) -> jax.Array:
    """A code, or a dict of per-layer codes, as one [B, D] array (tree-leaf order)."""
    return jnp.concatenate(jax.tree.leaves(z), axis=-1)


def make(section, spec: Spec) -> Objective:
    kernel = section.kernel
    warmup = remedies.warmup_on(section)
    remedies.check_warmup_can_run(section, spec, "objective.infovae")

    def loss(model, batch, key: jax.Array, ctx: Context):
        hyper = ctx.hyper.filled()
        x = batch["x"]
        key_z, key_prior = jax.random.split(key)
        q = model.posterior(x)  # DiagGaussian [B, D], or a pytree of them
        z = model.sample_latent(q, key_z)  # [B, D]
        log_px = model.log_px(x, z)  # [B]
        kl = model.kl(q, z)  # [B], closed form where the prior has one
        kl_per_dim = remedies.kl_per_dim(model, q)  # [B, D]
        prior_z = model.prior.sample(key_prior, x.shape[0], encoder=model.encoder)
        divergence = mmd(_flat(z), _flat(prior_z), kernel)  # []
        kl_weight = remedies.warmup(section, ctx, 1.0 - hyper.info_alpha)
        kl_used = remedies.kl_term(model, kl, kl_per_dim, hyper.free_bits)
        mmd_weight = hyper.info_alpha + hyper.mmd_lambda - 1.0
        per_example = -log_px + kl_weight * kl_used + mmd_weight * divergence  # [B]
        value = batch_reduce(per_example, spec.reduction)
        metrics = {
            "loss": value,
            "elbo": (log_px - kl).mean(),
            "log_px": log_px.mean(),
            "kl": kl.mean(),
            "mmd": divergence,
            "kl_per_dim": kl_per_dim.mean(axis=0),
        }
        if warmup:
            metrics["kl_weight"] = jnp.asarray(kl_weight, jnp.float32)
        return value, metrics

    return Objective(loss, bound=True, progress=("elbo", "kl", "mmd"))


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.kernel = "imq"  # imq | rbf, both with scale 2·latent_dim
    remedies.add_warmup_fields(c)
    return c


def validate(section, spec=None) -> None:
    del spec
    check_choice(section, "kernel", "objective.infovae", KERNELS)
    remedies.validate_warmup(section, "objective.infovae")


COMPONENT = Component(
    make,
    defaults,
    validate,
    traits=frozenset({"hyper.info_alpha", "hyper.mmd_lambda", "hyper.free_bits"}),
)
