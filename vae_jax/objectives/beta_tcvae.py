"""β-TCVAE (Chen et al. 2018, "Isolating sources of disentanglement in VAEs", §3, §4.1).
The ELBO's KL, averaged over the N training examples n, splits into three terms:

    E_n KL(q(z|n) || p(z)) = I_q(z; n)  +  KL(q(z) || Π_d q(z_d))  +  Σ_d KL(q(z_d) || p(z_d))
                             index-code MI   total correlation (TC)     dimension-wise KL

with q(z) = (1/N) Σ_n q(z|n) the aggregate posterior, and each is weighted on its own:

    loss(x_i) = −log p(x_i|z_i) + w(step) · (α·MI_i + β·TC_i + γ·DWKL_i + FB_i),
    MI_i = log q(z_i|x_i) − log q̂(z_i),   TC_i = log q̂(z_i) − Σ_d log q̂(z_id),
    DWKL_i = Σ_d (log q̂(z_id) − log p(z_id)),

z_i ~ q(z|x_i) one draw per example; α, β, γ = `hyper.tc_alpha`, `tc_beta`, `tc_gamma`.
The aggregate densities come from the batch of M codes (`estimator`):
- mws, minibatch weighted sampling (their §4.1, the default, as in their experiments):
  log q̂(z_i) = logsumexp_j log q(z_i|x_j) − log(N·M), and per dimension alike;
- mss, minibatch stratified sampling (their appendix), in the plain form that is unbiased
  for q(z_i) given z_i: weight 1/N on q(z_i|x_i) and (N−1)/(N(M−1)) on each other code.

The three terms telescope: MI_i + TC_i + DWKL_i = log q(z_i|x_i) − log p(z_i), the Monte
Carlo KL of the same draw, whatever the estimator. So with α = β = γ = 1 the loss is the
negative Monte Carlo ELBO exactly, and only the split between the terms is biased. MWS
underweights the batch by a factor between M and N: where every posterior is the same
(a collapsed code, true MI = TC = 0), it reports MI = log N, TC = (D − 1)·log N and DWKL =
KL − D·log N. So the logged `mi`, `tc`, `dwkl` are always computed with mss (whose log q̂
is still biased down by Jensen's inequality, by O(1/M)), whichever estimator the loss uses.
This mss is the plain unbiased stratified weighting, not the exact weight matrix of Chen
et al.'s code.

The dimension-wise term needs a factorised log p(z_d): the prior must be standard normal
(config validation refuses another: trait "prior.standard_normal"; the loss checks the
model's prior when it is traced, for callers that skip validation). N is
Spec.num_train (the step's Context gives it too).

Remedies (objectives/remedies.py): warm-up multiplies all three terms (their sum is the
KL). Free bits add FB_i = free_bits_kl_i − KL_i (closed-form KL; zero when λ = 0): on a
dimension whose batch-mean KL is below λ, the KL's unit share of the pressure is cancelled
(in expectation: with α = β = γ = 1, the KL part becomes the free-bits KL), while the extra
weights' pressure, (β − 1)·TC say, stays. The `elbo` metric is the plain ELBO with the
closed-form KL, a bound on log p(x) for this model, so `bound` is True.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections

from vae_jax.components import Component, Spec
from vae_jax.distributions import DiagGaussian
from vae_jax.errors import ConfigError, check_choice
from vae_jax.objectives import remedies
from vae_jax.objectives.base import Context, Objective, batch_reduce

ESTIMATORS = ("mws", "mss")
_LOG_2PI = math.log(2.0 * math.pi)
_is_gaussian = lambda leaf: isinstance(leaf, DiagGaussian)


def log_batch_weights(batch: int, num_train: int, estimator: str) -> jax.Array:
    """log of the weight of q(z_i|x_j) in the estimate of q(z_i): [M, M]."""
    if estimator == "mws":
        return jnp.full((batch, batch), -math.log(num_train * batch))
    if batch < 2:
        raise ConfigError("objective.beta_tcvae.estimator='mss' needs batches of ≥ 2 examples")
    other = math.log((num_train - 1) / (num_train * (batch - 1)))
    return jnp.where(jnp.eye(batch, dtype=bool), -math.log(num_train), other)


def decompose(q: DiagGaussian, z: jax.Array, num_train: int, estimator: str):
    """(MI, TC, DWKL), each [M], for codes z [M, D] drawn from q (a DiagGaussian [M, D])."""
    batch = z.shape[0]
    # log q(z_id | x_j): [i, j, d]
    u = (z[:, None, :] - q.loc[None, :, :]) * jnp.exp(-q.log_scale[None, :, :])
    log_q = -0.5 * (jnp.square(u) + _LOG_2PI) - q.log_scale[None, :, :]
    log_w = log_batch_weights(batch, num_train, estimator)  # [i, j]
    log_qz = jax.nn.logsumexp(log_q.sum(axis=-1) + log_w, axis=1)  # [M]
    log_qz_dims = jax.nn.logsumexp(log_q + log_w[:, :, None], axis=1)  # [M, D]
    log_pz_dims = -0.5 * (jnp.square(z) + _LOG_2PI)  # [M, D], N(0, 1) per dimension
    log_qz_x = q.log_prob(z)  # [M]
    mi = log_qz_x - log_qz
    tc = log_qz - log_qz_dims.sum(axis=-1)
    dwkl = (log_qz_dims - log_pz_dims).sum(axis=-1)
    return mi, tc, dwkl


def _flat(q, z):
    """A tree of per-layer posteriors and codes as one DiagGaussian [M, D] and z [M, D]."""
    layers = jax.tree.leaves(q, is_leaf=_is_gaussian)
    loc = jnp.concatenate([d.loc for d in layers], axis=-1)
    log_scale = jnp.concatenate([d.log_scale for d in layers], axis=-1)
    return DiagGaussian(loc, log_scale), jnp.concatenate(jax.tree.leaves(z), axis=-1)


def make(section, spec: Spec) -> Objective:
    estimator = section.estimator
    warmup = remedies.warmup_on(section)
    remedies.check_warmup_can_run(section, spec, "objective.beta_tcvae")

    def loss(model, batch, key: jax.Array, ctx: Context):
        if not remedies.is_standard_normal(model.prior) or model.hierarchical:
            raise ConfigError(
                "objective 'beta_tcvae' needs one latent layer under model.prior="
                "'standard_normal' (its dimension-wise KL uses a factorised N(0, 1)); this "
                f"model has prior {type(model.prior).__name__} and "
                f"{'two layers' if model.hierarchical else 'one layer'}"
            )
        num_train = spec.num_train or ctx.num_train
        if not num_train:
            raise ConfigError("objective 'beta_tcvae' needs the training-set size N (num_train)")
        hyper = ctx.hyper.filled()
        x = batch["x"]
        q = model.posterior(x)  # DiagGaussian [B, D], or a pytree of them
        z = model.sample_latent(q, key)  # [B, D]
        log_px = model.log_px(x, z)  # [B]
        kl_per_dim = remedies.kl_per_dim(model, q)  # [B, D], the KL itself (standard normal)
        kl = kl_per_dim.sum(axis=-1)  # [B]
        flat = _flat(q, z)
        mi, tc, dwkl = decompose(*flat, num_train, estimator)
        # The logged terms are always the mss split: MWS's (the loss's default) are not
        # the quantities they are named after (MI up to log N above its ceiling, a negative
        # DWKL on a collapsed code). Same log q tensor; no gradient flows through them.
        shown = (mi, tc, dwkl)
        if estimator != "mss" and x.shape[0] >= 2:
            shown = jax.lax.stop_gradient(decompose(*flat, num_train, "mss"))
        free_bits = remedies.free_bits_kl(kl_per_dim, hyper.free_bits) - kl  # 0 when λ = 0
        terms = hyper.tc_alpha * mi + hyper.tc_beta * tc + hyper.tc_gamma * dwkl + free_bits
        weight = remedies.warmup(section, ctx, 1.0)
        per_example = -log_px + weight * terms  # [B]
        value = batch_reduce(per_example, spec.reduction)
        metrics = {
            "loss": value,
            "elbo": (log_px - kl).mean(),
            "log_px": log_px.mean(),
            "kl": kl.mean(),
            "mi": shown[0].mean(),
            "tc": shown[1].mean(),
            "dwkl": shown[2].mean(),
            "kl_per_dim": kl_per_dim.mean(axis=0),
        }
        if warmup:
            metrics["kl_weight"] = jnp.asarray(weight, jnp.float32)
        return value, metrics

    return Objective(loss, bound=True, progress=("elbo", "kl", "tc"))


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.estimator = "mws"  # mws | mss: how the batch estimates the aggregate posterior q(z)
    remedies.add_warmup_fields(c)
    return c


def validate(section, spec=None) -> None:
    del spec
    check_choice(section, "estimator", "objective.beta_tcvae", ESTIMATORS)
    remedies.validate_warmup(section, "objective.beta_tcvae")


COMPONENT = Component(
    make,
    defaults,
    validate,
    traits=frozenset(
        {
            "hyper.tc_alpha",
            "hyper.tc_beta",
            "hyper.tc_gamma",
            "hyper.free_bits",
            "prior.standard_normal",
        }
    ),
)
