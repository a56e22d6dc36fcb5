"""Mutual Information Gap (Chen et al. 2018, "Isolating Sources of Disentanglement in
Variational Autoencoders", §4.1), with disentanglement_lib's protocol
(`evaluation/metrics/mig.py`, `compute_mig`; sizes and the discretiser from
`config/unsupervised_study_v1/metric_configs/mig.gin`).

On num_train random points, each code dimension is discretised with a num_bins-bin
histogram over its observed range (`histogram_discretizer`, num_bins = 20), the plug-in
mutual information I(z_d; v_k) between every discretised dimension and every factor is
taken with sklearn's `mutual_info_score` (nats), and the factor entropies H(v_k) likewise
(as I(v_k; v_k)). For each factor the gap is (largest − second largest MI over the code
dimensions) / H(v_k); MIG is the mean of the gaps over the factors.

Protocol (defaults are disentanglement_lib's gin values):
- representation: whatever `representation_fn` returns (the caller passes the encoder mean);
- num_train = 10 000 points; num_bins = 20 equal-width bins per dimension;
- discrete factors as their integer indices; entropies and MI of the empirical
  distribution (no bias correction).
Where an ideal code stays below 1: the 20-bin histogram can hold at most log 20 nats, so a
factor with more than 20 values loses information even under the identity code. dSprites'
40-valued orientation merges pairs of values and its gap is at most
log 20 / log 40 ≈ 0.81; its 32-valued positions share 20 bins unevenly (12 pairs and 8
single values: at most 0.85), so the identity code of dSprites has MIG ≤ 0.90. The
plug-in MI of independent variables is also biased upwards, by about
(bins − 1)(values − 1) / (2 n) nats, which narrows every gap a little. A code with two
identical dimensions for a factor has gap exactly 0 for it.
With fewer than two code dimensions the second largest MI is taken as 0 (disentanglement_lib
would fail).
"""

from __future__ import annotations

from functools import partial

import numpy as np

from vae_jax.evaluate.disentangle.common import (
    CHUNK_SIZE,
    Draw,
    discrete_entropy,
    discrete_mutual_info,
    encode,
    histogram_discretize,
    per_member,
    random_points,
)

PROTOCOL = {"num_train": 10_000}
NUM_BINS = 20  # discretizer.num_bins in mig.gin


def draw(data, *, seed: int, num_train: int = PROTOCOL["num_train"]) -> Draw:
    """Part "train": num_train random points [n, F]; labels are their factors."""
    return random_points("mig", data, seed, num_train=num_train)


def mig_from_codes(codes: np.ndarray, factors: np.ndarray, num_bins: int = NUM_BINS):
    """(MIG, per-factor gaps [F], MI matrix [D, F]) from codes [n, D] and factors [n, F]."""
    mi = discrete_mutual_info(histogram_discretize(codes, num_bins), factors)
    entropy = discrete_entropy(factors)
    top = np.sort(mi, axis=0)[::-1]
    second = top[1] if top.shape[0] > 1 else np.zeros_like(top[0])
    gaps = (top[0] - second) / entropy
    return float(np.mean(gaps)), gaps, mi


def _score_one(draw: Draw, codes: dict, num_bins: int) -> dict:
    mig, gaps, _ = mig_from_codes(codes["train"], draw.labels["train"], num_bins)
    out = {"discrete_mig": mig}
    out.update(
        {f"discrete_mig/{n}": float(g) for n, g in zip(draw.factor_names, gaps, strict=True)}
    )
    return out


def score(draw: Draw, codes: dict[str, np.ndarray], *, num_bins: int = NUM_BINS):
    """{"discrete_mig", "discrete_mig/<factor name>" (the per-factor gaps)} from
    `encode(data, draw, fn)` ({"train": [n, D]}); a list of dicts for [M, n, D] codes."""
    return per_member(partial(_score_one, draw, num_bins=num_bins), codes)


def compute(
    data,
    representation_fn,
    *,
    seed: int,
    num_bins: int = NUM_BINS,
    chunk_size: int = CHUNK_SIZE,
    **protocol_overrides,
) -> dict[str, float]:
    """draw + encode + score. `protocol_overrides`: num_train."""
    d = draw(data, seed=seed, **protocol_overrides)
    return score(d, encode(data, d, representation_fn, chunk_size=chunk_size), num_bins=num_bins)
