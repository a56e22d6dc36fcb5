"""FactorVAE disentanglement score (Kim & Mnih 2018, "Disentangling by Factorising", §4),
with disentanglement_lib's protocol (`evaluation/metrics/factor_vae.py`,
`compute_factor_vae`; sizes and the pruning threshold from
`config/unsupervised_study_v1/metric_configs/factor_vae_metric.gin`).

First the global variance of every code dimension is estimated on num_variance_estimate
random points (ddof = 1). Dimensions whose global standard deviation is below `threshold`
are pruned (`_prune_dims`: active ⇔ sqrt(var) ≥ threshold; the function's default is 0,
the study's gin sets 0.05, used here). One vote: draw a factor index k uniformly, a batch
of `batch_size` factor vectors with factor k set to the first one's value, observe and
encode; the vote goes to the active dimension with the smallest variance within the batch
(ddof = 1) after dividing by its global variance (i.e. of the codes normalised by the global
std), with label k. The classifier is the majority vote: a votes matrix [D, F] from the
training votes, each code dimension predicting its most voted factor (ties to the lowest
factor index, `np.argmax`); accuracy = share of votes whose dimension predicts their label.

Protocol (defaults are disentanglement_lib's gin values):
- representation: whatever `representation_fn` returns (the caller passes the encoder mean);
- num_variance_estimate = 10 000 points, batch_size = 64, num_train = 10 000 and
  num_eval = 5 000 votes (970 000 observations in all, encoded in chunks);
- no active dimension: train_accuracy = eval_accuracy = 0 and num_active_dims = 0, as
  disentanglement_lib returns (so a constant code scores 0, not chance);
- num_active_dims is the number of active dimensions. disentanglement_lib reports
  `len(active_dims)` of a boolean mask there, i.e. the total number of dimensions; the count
  is what the name says and is reported here instead.
Chance level is 1/F for eval_accuracy; train_accuracy is fitted on the same votes and sits
above chance for an uninformative code. An ideal code reaches 1.0.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from vae_jax.evaluate.disentangle.common import (
    CHUNK_SIZE,
    Draw,
    Points,
    encode,
    make_draw,
    per_member,
    sample_factors,
)

PROTOCOL = {
    "num_variance_estimate": 10_000,
    "batch_size": 64,
    "num_train": 10_000,
    "num_eval": 5_000,
}
THRESHOLD = 0.05  # prune_dims.threshold in factor_vae_metric.gin


def batch_variances(codes: np.ndarray) -> np.ndarray:
    """[..., n, B, D] codes of n batches -> [..., n, D] variance within each batch (ddof = 1)."""
    return np.var(np.asarray(codes, dtype=np.float64), axis=-2, ddof=1)


def _fixed_batches(data, num_points, batch_size, rng):
    """[n, B, F] factors of n batches, each with factor k[n] held at its first row's value."""
    num_factors = len(data.factor_sizes)
    k = rng.integers(0, num_factors, size=num_points)
    factors = sample_factors(data, num_points * batch_size, rng).reshape(num_points, batch_size, -1)
    rows = np.arange(num_points)
    factors[rows, :, k] = factors[rows, 0, k][:, None]
    return factors, k


def draw(
    data,
    *,
    seed: int,
    num_variance_estimate: int = PROTOCOL["num_variance_estimate"],
    batch_size: int = PROTOCOL["batch_size"],
    num_train: int = PROTOCOL["num_train"],
    num_eval: int = PROTOCOL["num_eval"],
) -> Draw:
    """Parts "variance" ([n, F] random points), "train" and "eval" ([n, B, F] batches, labels k)."""
    rng = np.random.default_rng(seed)
    points = {"variance": Points(sample_factors(data, num_variance_estimate, rng))}
    labels = {}
    for part, num in (("train", num_train), ("eval", num_eval)):
        factors, k = _fixed_batches(data, num, batch_size, rng)
        points[part] = Points(factors, reduce=batch_variances)
        labels[part] = k
    protocol = {
        "num_variance_estimate": num_variance_estimate,
        "batch_size": batch_size,
        "num_train": num_train,
        "num_eval": num_eval,
    }
    return make_draw("factor_vae", data, seed, points, labels, protocol)


def _votes(local_variances, labels, global_variances, active, num_factors):
    """[D, F] counts: for each batch, the active dim of least normalised variance × its label."""
    active_dims = np.flatnonzero(active)
    with np.errstate(divide="ignore", invalid="ignore"):  # threshold 0 keeps zero variances
        ratios = local_variances[:, active_dims] / global_variances[active_dims]
    dims = active_dims[np.argmin(ratios, axis=1)]
    votes = np.zeros((global_variances.shape[0], num_factors), dtype=np.int64)
    np.add.at(votes, (dims, labels), 1)
    return votes


def _accuracy(votes, classifier):
    return float(votes[np.arange(votes.shape[0]), classifier].sum() / votes.sum())


def _score_one(draw: Draw, codes: dict, threshold: float) -> dict:
    global_variances = np.var(np.asarray(codes["variance"], np.float64), axis=0, ddof=1)
    active = np.sqrt(global_variances) >= threshold
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    num_factors = len(draw.factor_sizes)
    train = _votes(codes["train"], draw.labels["train"], global_variances, active, num_factors)
    classifier = np.argmax(train, axis=1)  # each code dimension -> its most voted factor
    evals = _votes(codes["eval"], draw.labels["eval"], global_variances, active, num_factors)
    return {
        "train_accuracy": _accuracy(train, classifier),
        "eval_accuracy": _accuracy(evals, classifier),
        "num_active_dims": int(active.sum()),
    }


def score(draw: Draw, codes: dict[str, np.ndarray], *, threshold: float = THRESHOLD):
    """{"train_accuracy", "eval_accuracy", "num_active_dims"} from `encode(data, draw, fn)`:
    codes of the variance points and per-batch variances of the votes ({part: [n, D]}); a
    list of such dicts for a member axis [M, n, D]."""
    return per_member(partial(_score_one, draw, threshold=threshold), codes)


def compute(
    data,
    representation_fn,
    *,
    seed: int,
    threshold: float = THRESHOLD,
    chunk_size: int = CHUNK_SIZE,
    **protocol_overrides,
) -> dict[str, float]:
    """draw + encode + score. `protocol_overrides`: num_variance_estimate, batch_size,
    num_train, num_eval."""
    d = draw(data, seed=seed, **protocol_overrides)
    return score(d, encode(data, d, representation_fn, chunk_size=chunk_size), threshold=threshold)
