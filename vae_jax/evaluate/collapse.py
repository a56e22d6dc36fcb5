"""Posterior-collapse diagnostics: inactive dimensions, KL per dimension and I(x; z).

A VAE's posterior collapses when q(z|x) ≈ p(z) for every x, so the decoder ignores z
(Bowman et al. 2016; He et al. 2019). It is usually partial: some latent dimensions carry
information and the rest sit at the prior. Three views, combined into one verdict:
- active units (Burda et al. 2015, §5.2): Cov_x(E_q[z_d|x]) > 0.01 (active_units.py);
- KL per dimension averaged over data, ≈ 0 on a collapsed dimension (active_units.py);
- I(x; z) under q (Hoffman & Johnson 2016; He et al. 2019), ≈ 0 at full collapse
  (mutual_info.py). It is reported as bounds: the InfoNCE lower bound, which cannot exceed
  log N for N test points, and the smaller of the leave-one-out bound and the mean KL above.
  When the lower bound sits at its log N ceiling the verdict says "saturated: I(x;z) ≥ …"
  rather than quoting the ceiling as if it were the value.
"""

from __future__ import annotations

import jax
import numpy as np

from vae_jax.evaluate.active_units import (
    active_units,
    dims_by_kl,
    layer_names,
    mean_kl_per_dim,
    posterior_statistics,
    prior_variance,
)
from vae_jax.evaluate.mutual_info import mutual_information_bounds

# Default thresholds. 0.01 is Burda et al.'s activity threshold; the same 0.01 nats marks a
# dimension's KL as ≈ 0. The MI threshold is a few times the estimator's Monte Carlo
# standard error, sqrt(D / (2N)) ≈ 0.03 nats at N = 10⁴, D = 20, for a fully collapsed q;
# "I(x;z) ≈ 0" needs the upper bound below it.
ACTIVITY_THRESHOLD = 0.01
KL_THRESHOLD = 0.01
MI_THRESHOLD = 0.1


def _dims(indices) -> str:
    return ", ".join(str(int(i)) for i in indices)


def mutual_info_text(mi: dict, mi_threshold: float = MI_THRESHOLD) -> str:
    """A short reading of `mutual_information_bounds`'s dict for the verdict line."""
    lower, upper = mi["lower_nats"], mi["upper_nats"]
    if upper < mi_threshold and lower < mi_threshold:
        return f"I(x;z) ≈ 0 (≤ {upper:.3g} nats)"
    if mi.get("bounds_crossed"):
        return mi["summary"]
    if mi["saturated"]:
        return (
            f"saturated: I(x;z) ≥ {lower:.2f} nats (the estimate's ceiling is log N = "
            f"{mi['log_n']:.2f}; upper bound {upper:.2f})"
        )
    return mi["summary"]


def collapse_report(
    kl_per_dim: np.ndarray,
    active_mask: np.ndarray,
    mi: dict | None = None,
    *,
    kl_threshold: float = KL_THRESHOLD,
    mi_threshold: float = MI_THRESHOLD,
) -> dict:
    """Summarize collapse from KL_d [D] (nats, averaged over data), the active-unit mask [D]
    and optionally the I(x; z) bounds of `mutual_information_bounds`.

    A dimension is collapsed when it is inactive by the active-units criterion. The verdict
    is "no collapse" (all active), "posterior collapse" (some inactive, listed) or "full
    collapse" (none active); it quotes the largest KL among the collapsed dimensions and
    I(x; z), and says "≈ 0" only where they fall below kl_threshold / mi_threshold (for
    I(x; z): its upper bound).
    """
    kl = np.asarray(kl_per_dim, np.float64)
    active = np.asarray(active_mask, bool)
    if kl.shape != active.shape or kl.ndim != 1:
        raise ValueError(
            f"need kl_per_dim and active_mask of shape [D], got {kl.shape}, {active.shape}"
        )
    num_dims = kl.shape[0]
    collapsed = np.flatnonzero(~active)  # sorted
    num_collapsed = len(collapsed)
    mi_text = None if mi is None else mutual_info_text(mi, mi_threshold)

    if num_collapsed == 0:
        verdict = f"no collapse: all {num_dims} dimensions active"
        if mi_text:
            verdict += f" ({mi_text})"
    else:
        kl_max = float(kl[collapsed].max())
        kl_text = (
            f"KL < {kl_threshold:g} nats" if kl_max < kl_threshold else f"KL ≤ {kl_max:.3g} nats"
        )
        if num_collapsed == num_dims:
            kl_text = (
                f"KL ≈ 0 on every dimension (max {kl_max:.3g} nats)"
                if kl_max < kl_threshold
                else f"max KL {kl_max:.3g} nats per dimension"
            )
            verdict = f"full collapse: all {num_dims} dimensions inactive, {kl_text}"
            if mi_text:
                verdict += f", {mi_text}"
        else:
            verdict = (
                f"posterior collapse: {num_collapsed} of {num_dims} dimensions inactive "
                f"(dims {_dims(collapsed)}; {kl_text})"
            )
            if mi_text:
                verdict += f"; {mi_text}"

    return {
        "verdict": verdict,
        "num_dims": num_dims,
        "num_active": num_dims - num_collapsed,
        "collapsed_dims": [int(i) for i in collapsed],
        "low_kl_dims": [int(i) for i in np.flatnonzero(kl < kl_threshold)],
        "dims_by_kl": [int(i) for i in dims_by_kl(kl)],  # most KL first
        "kl_per_dim": [float(v) for v in kl],
        "total_kl": float(kl.sum()),
        "mutual_info": mi,
        "kl_threshold": kl_threshold,
        "mi_threshold": mi_threshold,
    }


def diagnose_collapse(
    graphdef,
    params,
    images_u8: np.ndarray,
    key: jax.Array,
    *,
    batch_size: int = 500,
    activity_threshold: float = ACTIVITY_THRESHOLD,
    kl_threshold: float = KL_THRESHOLD,
    mi_threshold: float = MI_THRESHOLD,
    layer: str | None = None,
    progress: str | None = None,
) -> dict:
    """posterior_statistics → active_units → mutual_information_bounds → collapse_report,
    for the latent layer `layer` (model.latent_layers; None: the first, "z" for a one-layer
    model).

    Returns the report plus "layer", "activity_threshold" and "au_variances" [D] (Cov_x of
    μ_d). The mean KL to the model's prior comes from the same pass: it bounds I(x; all
    layers), and so, since the layer is a function of all of them (data processing),
    I(x; this layer) too, if more loosely.
    """
    layer = layer if layer is not None else layer_names(graphdef, params, images_u8)[0]
    stats_key, mi_key = jax.random.split(key)
    stats = posterior_statistics(
        graphdef,
        params,
        images_u8,
        stats_key,
        batch_size=batch_size,
        layer=layer,
        progress=progress,
    )
    return collapse_from_statistics(
        stats,
        mi_key,
        layer,
        prior_var=prior_variance(graphdef, params, jax.random.fold_in(key, 7), layer),
        activity_threshold=activity_threshold,
        kl_threshold=kl_threshold,
        mi_threshold=mi_threshold,
    )


def collapse_from_statistics(
    stats: dict,
    mi_key: jax.Array,
    layer: str,
    *,
    prior_var: np.ndarray | None = None,
    activity_threshold: float = ACTIVITY_THRESHOLD,
    kl_threshold: float = KL_THRESHOLD,
    mi_threshold: float = MI_THRESHOLD,
) -> dict:
    """diagnose_collapse's report from posterior_statistics' arrays (one model's) and the
    key of the I(x;z) estimate. `prior_var`: Var_p(z_d) of a learned prior (active_units
    compares Cov_x(μ_d) with the threshold in units of it); None: N(0, I)."""
    _, mask, variances = active_units(stats["loc"], activity_threshold, prior_var)
    mi = mutual_information_bounds(
        stats["loc"],
        stats["log_scale"],
        mi_key,
        mean_kl=float(np.mean(stats["kl"], dtype=np.float64)),
    )
    report = collapse_report(
        mean_kl_per_dim(stats["kl_per_dim"]),
        mask,
        mi,
        kl_threshold=kl_threshold,
        mi_threshold=mi_threshold,
    )
    return {
        **report,
        "layer": layer,
        "activity_threshold": activity_threshold,
        "au_variances": [float(v) for v in variances],
        "activity_relative_to": (
            "1 (the N(0, I) prior)"
            if prior_var is None
            else "the prior's variance Var_p(z_d), from 10,000 prior draws"
        ),
    }
