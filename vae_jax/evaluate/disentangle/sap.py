"""Separated Attribute Predictability, SAP (Kumar et al. 2018, "Variational Inference of
Disentangled Latent Concepts from Unlabeled Observations", §3), with disentanglement_lib's
protocol for discrete factors (`evaluation/metrics/sap_score.py`, `compute_sap` with
continuous_factors = False; sizes from
`config/unsupervised_study_v1/metric_configs/sap_score.gin`).

For every (code dimension d, factor k) a linear classifier predicts factor k from the single
coordinate z_d, trained on num_train random points; its accuracy on num_test other points
is entry [d, k] of the score matrix S [D, F]. SAP is the mean over the factors of the
difference between the largest and the second largest entry of the factor's column.

Protocol (defaults are disentanglement_lib's):
- representation: whatever `representation_fn` returns (the caller passes the encoder mean);
- num_train = 10 000 and num_test = 5 000 points;
- classifier: `sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")` (one-vs-rest), here
  with random_state = seed and dual = "auto" (sklearn ≥ 1.5's default; it solves the same
  problem in the primal for one feature, ~20× faster than the dual that sklearn < 1.5 and
  disentanglement_lib's runs used; on a 40-valued factor, 10 000 points, both gave the same
  test accuracy, 0.0776);
- continuous_factors = False: factors are class labels.
Where an ideal code stays well below 1: SAP is a difference of accuracies, and a linear
one-vs-rest classifier on one coordinate cannot single out the middle values of a factor,
so even the identity code's best accuracy is low for a factor with many values (for the
uniform 40-valued orientation about 0.08 against 1/40 by chance). The best − second best
gap is then small too; the score compares codes, it is not a fraction of an ideal (the
identity code on dSprites' factor grid scores 0.23 at the defaults).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.svm import LinearSVC

from vae_jax.evaluate.disentangle.common import (
    CHUNK_SIZE,
    Draw,
    encode,
    per_member,
    random_points,
)

PROTOCOL = {"num_train": 10_000, "num_test": 5_000}


def draw(
    data,
    *,
    seed: int,
    num_train: int = PROTOCOL["num_train"],
    num_test: int = PROTOCOL["num_test"],
) -> Draw:
    """Parts "train" and "test": random points [n, F]; labels are their factors."""
    return random_points("sap", data, seed, num_train=num_train, num_test=num_test)


def score_matrix(codes_train, factors_train, codes_test, factors_test, seed: int) -> np.ndarray:
    """S [D, F]: test accuracy of LinearSVC(C=0.01, class_weight="balanced") on z_d alone."""
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]
    s = np.zeros((num_codes, num_factors))
    for d in range(num_codes):
        for k in range(num_factors):
            model = LinearSVC(C=0.01, class_weight="balanced", dual="auto", random_state=seed)
            model.fit(codes_train[:, d : d + 1], factors_train[:, k])
            s[d, k] = np.mean(model.predict(codes_test[:, d : d + 1]) == factors_test[:, k])
    return s


def avg_diff_top_two(s: np.ndarray) -> float:
    """Mean over the columns of (largest − second largest) entry."""
    top = np.sort(s, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def _score_one(draw: Draw, codes: dict) -> dict:
    s = score_matrix(
        np.asarray(codes["train"], np.float64), draw.labels["train"],
        np.asarray(codes["test"], np.float64), draw.labels["test"], draw.seed,
    )  # fmt: skip
    return {"sap_score": avg_diff_top_two(s)}


def score(draw: Draw, codes: dict[str, np.ndarray]):
    """{"sap_score"} from `encode(data, draw, fn)` ({"train", "test": [n, D]}); a list of
    dicts for codes [M, n, D]."""
    return per_member(partial(_score_one, draw), codes)


def compute(
    data,
    representation_fn,
    *,
    seed: int,
    chunk_size: int = CHUNK_SIZE,
    **protocol_overrides,
) -> dict[str, float]:
    """draw + encode + score. `protocol_overrides`: num_train, num_test."""
    d = draw(data, seed=seed, **protocol_overrides)
    return score(d, encode(data, d, representation_fn, chunk_size=chunk_size))
