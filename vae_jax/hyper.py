"""Swept hyper-parameters: traced arguments of the objective, so `vmap` can sweep them.

Hyper-parameters that fix shapes (latent size, number of samples) are bound at build time
by closure instead; see `make` in objectives/elbo.py.

Every field is read from `config.hyper` (config_lib.py declares the same defaults as
DEFAULTS here). A field other than β may be left None when a Hyper is built by hand, e.g.
`Hyper(beta=betas)` for a vmap over β alone: None is no pytree leaf, so vmap does not try
to map it, and objectives read `hyper.filled()`, where None is the field's default.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from vae_jax.errors import fail

Value = float | jax.Array

DEFAULTS = {
    "beta": 1.0,
    "free_bits": 0.0,
    "info_alpha": 0.0,
    "mmd_lambda": 1000.0,
    "tc_alpha": 1.0,
    "tc_beta": 1.0,
    "tc_gamma": 1.0,
    "capacity_gamma": 1000.0,
    "capacity_max": 25.0,
}


class Hyper(NamedTuple):
    beta: Value = 1.0  # weight of the KL term (Higgins et al. 2017)
    # Free bits (Kingma et al. 2016): nats per latent dimension below which the batch's KL
    # is not penalised (objectives/remedies.py); 0 = off. Standard-normal prior only.
    free_bits: Value | None = None
    # InfoVAE (Zhao et al. 2019): loss = −log p(x|z) + (1 − α) KL + (α + λ − 1) MMD.
    info_alpha: Value | None = None  # α
    mmd_lambda: Value | None = None  # λ
    # β-TCVAE (Chen et al. 2018): α·MI + β·TC + γ·dimension-wise KL.
    tc_alpha: Value | None = None  # α, index-code mutual information
    tc_beta: Value | None = None  # β, total correlation
    tc_gamma: Value | None = None  # γ, dimension-wise KL
    # Capacity-controlled β-VAE (Burgess et al. 2018): γ·|KL − C|, C rising to C_max.
    capacity_gamma: Value | None = None  # γ
    capacity_max: Value | None = None  # C_max, nats

    def filled(self) -> Hyper:
        """This Hyper with every field left None set to its default."""
        return self._replace(
            **{f: DEFAULTS[f] for f, v in zip(self._fields, self, strict=True) if v is None}
        )


def hyper_from_config(hyper_config) -> Hyper:
    return Hyper(**{f: jnp.float32(hyper_config[f]) for f in Hyper._fields})


def check_hyper(hyper_config, objective: str, traits, prior: str) -> None:
    """What the chosen objective and prior ask of `config.hyper` (ConfigError, one line).

    An objective's component declares the fields its loss reads as traits "hyper.<field>"
    ("hyper.none": it reads none). A field it does not read must keep its default, so that
    a sweep over it cannot train one model many times. An objective that declares nothing
    is not checked: the autoencoder baseline reads no field and runs on a copy of its
    VAE's config. Free bits need the per-dimension KL, which the standard-normal prior
    alone has in closed form; the trait "prior.standard_normal" asks for that prior.
    """
    h = hyper_config
    for field in ("free_bits", "tc_alpha", "tc_beta", "tc_gamma", "capacity_gamma", "capacity_max"):
        if not h[field] >= 0:
            fail(f"hyper.{field}", h[field], "must be ≥ 0")
    if not h.info_alpha <= 1:
        fail("hyper.info_alpha", h.info_alpha, "must be ≤ 1 (the KL weight is 1 − α)")
    if not h.info_alpha + h.mmd_lambda - 1 >= 0:
        fail(
            "hyper.mmd_lambda",
            h.mmd_lambda,
            f"the MMD weight α + λ − 1 must be ≥ 0 (α = hyper.info_alpha = {h.info_alpha})",
        )
    declared = [t for t in traits if t.startswith("hyper.")]
    if declared:
        reads = {t.removeprefix("hyper.") for t in declared}
        for field, default in DEFAULTS.items():
            if field not in reads and h[field] != default:
                fail(
                    f"hyper.{field}",
                    h[field],
                    f"objective '{objective}' does not use it; leave it at {default}",
                )
    if h.free_bits > 0 and prior != "standard_normal":
        fail(
            "hyper.free_bits",
            h.free_bits,
            "free bits need the per-dimension KL, in closed form only for "
            f"model.prior='standard_normal' (not '{prior}'); use 0",
        )
    if "prior.standard_normal" in traits and prior != "standard_normal":
        fail(
            "model.prior",
            prior,
            f"objective '{objective}' needs 'standard_normal' (a factorised N(0, I))",
        )
