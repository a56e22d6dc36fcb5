"""The importance-weighted autoencoder bound (Burda et al. 2015, eq. (8)):

    L_K(x) = E_{z_1..z_K ~ q(z|x)} [ log (1/K) Σ_k w_k ],   w_k = p(x|z_k) p(z_k) / q(z_k|x),

with log w_k from objectives/weights.py, the one implementation shared with the
importance-sampled log p(x) of evaluate/loglik.py (sample k drawn with key fold_in(key, k)).
L_1 is the ELBO with a Monte Carlo KL, L_K ≤ L_{K+1} ≤ log p(x), and L_K → log p(x) as
K → ∞ (their Theorem 1). The loss is −L_K, reduced over the batch like the ELBO's.

Metrics: `iwae`, the K-sample bound; `elbo`, (1/K) Σ_k log w_k from the same draws, the
K-sample estimate of the ELBO (≤ `iwae` for every draw, by Jensen); `kl`, the closed-form
KL where the prior has one, else log q(z_1|x) − log p(z_1) at the first sample (display
only; the loss has no KL term).

K = `num_samples` sets shapes, so it is bound at build time. β, free bits and KL warm-up
weight, floor or ramp a KL term, which this bound does not have: config validation
refuses them set (hyper.check_hyper; `validate` here). The gradient is the plain
reparameterised one (their §3); its signal-to-noise ratio for the encoder falls as K
grows (Rainforth et al. 2018), and the DReG estimator (Tucker et al. 2019) is not here.
"""

from __future__ import annotations

import math

import jax
import ml_collections

from vae_jax.components import Component, Spec
from vae_jax.errors import check_positive_int
from vae_jax.objectives import remedies
from vae_jax.objectives.base import Context, Objective, batch_reduce
from vae_jax.objectives.weights import log_weights


def iwae_terms(model, x: jax.Array, key: jax.Array, num_samples: int) -> dict[str, jax.Array]:
    """Per-example `iwae` = L_K, `elbo` = mean_k log w_k and `kl`, each [B]."""
    q = model.posterior(x)  # DiagGaussian [B, D], or a pytree of them
    log_prior = model.log_prior_fn()  # once (a VampPrior encodes its pseudo-inputs here)
    log_w = log_weights(model, q, x, key, 0, num_samples, log_prior)  # [K, B]
    kl = model.analytic_kl(q)  # [B], or None
    if kl is None:  # at z_1, drawn as log_weights draws it
        first = model.sample_latent(q, jax.random.fold_in(key, 0))
        kl = model.log_posterior(q, first) - log_prior(first)
    return {
        "iwae": jax.nn.logsumexp(log_w, axis=0) - math.log(num_samples),
        "elbo": log_w.mean(axis=0),
        "kl": kl,
    }


def make(section, spec: Spec) -> Objective:
    num_samples = int(section.num_samples)

    def loss(model, batch, key: jax.Array, ctx: Context):
        del ctx  # no schedule and no hyper-parameter
        t = iwae_terms(model, batch["x"], key, num_samples)
        value = batch_reduce(-t["iwae"], spec.reduction)
        return value, {"loss": value, **{k: v.mean() for k, v in t.items()}}

    return Objective(loss, bound=True, progress=("iwae", "elbo", "kl"))


def defaults() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.num_samples = 5  # K, importance samples per example (Burda et al. use 5 and 50)
    remedies.add_warmup_fields(c)  # declared so that a setting is refused, not ignored
    return c


def validate(section, spec=None) -> None:
    del spec
    check_positive_int(section, "num_samples", "objective.iwae")
    remedies.refuse_warmup(section, "objective.iwae", "the IWAE bound has no KL term to warm up")


COMPONENT = Component(make, defaults, validate, traits=frozenset({"hyper.none"}))
