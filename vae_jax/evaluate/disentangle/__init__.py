"""The five standard supervised disentanglement metrics, with google-research/
disentanglement_lib's protocols (Locatello et al. 2019) and defaults (the gin files of
`config/unsupervised_study_v1/metric_configs/`): BetaVAE, FactorVAE, MIG, DCI and SAP, one
per file; `common.py` holds the shared sampling, encoding and information helpers.

They need a data set with known factors (`vae_jax.data.ground_truth.GroundTruthData`) and a
representation function `fn(observations) -> [n, D]`, for a VAE the encoder mean.

One metric, one representation:

    scores = METRICS["mig"].compute(data, fn, seed=0)            # {"discrete_mig": ...}

Each metric is a draw and a score, so that M sweep members are scored on the same points
and every observation is rendered once:

    metric = METRICS["factor_vae"]
    draw = metric.draw(data, seed=0)                 # factors only, no representation
    codes = encode(data, draw, fn_m)                 # fn_m: observations -> [M, n, D]
    per_member = metric.score(draw, codes)           # a list of M dicts

`encode` renders the observations `chunk_size` (4096) at a time with `data.observations`
and never holds them all (BetaVAE alone draws 1.92 M); BetaVAE and FactorVAE reduce each
chunk to per-point features on the fly. `fn_m` may also return [n, D]; `score` then returns
one dict. Everything is deterministic in `seed` (numpy `default_rng(seed)` for the factors,
`default_rng([seed, 1, part])` for the observations, sklearn `random_state=seed`).
Per-metric protocol arguments (sizes) go to `draw` or `compute`; scoring options (MIG's
`num_bins`, FactorVAE's `threshold`, DCI's `model`) to `score` or `compute`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from vae_jax.evaluate.disentangle import beta_vae, dci, factor_vae, mig, sap
from vae_jax.evaluate.disentangle.common import Draw, Points, encode


class Metric(NamedTuple):
    draw: Callable  # (data, *, seed, **sizes) -> Draw
    score: Callable  # (draw, codes, **options) -> dict | list[dict]
    compute: Callable  # (data, representation_fn, *, seed, **overrides) -> dict
    protocol: dict  # disentanglement_lib's default sizes


METRICS = {
    "beta_vae": Metric(beta_vae.draw, beta_vae.score, beta_vae.compute, beta_vae.PROTOCOL),
    "factor_vae": Metric(
        factor_vae.draw, factor_vae.score, factor_vae.compute, factor_vae.PROTOCOL
    ),
    "mig": Metric(mig.draw, mig.score, mig.compute, mig.PROTOCOL),
    "dci": Metric(dci.draw, dci.score, dci.compute, dci.PROTOCOL),
    "sap": Metric(sap.draw, sap.score, sap.compute, sap.PROTOCOL),
}

__all__ = ["METRICS", "Draw", "Metric", "Points", "encode"]
