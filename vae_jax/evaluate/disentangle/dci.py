"""Disentanglement, completeness and informativeness (Eastwood & Williams 2018, "A Framework
for the Quantitative Evaluation of Disentangled Representations", §2), with
disentanglement_lib's protocol (`evaluation/metrics/dci.py`, `compute_dci`; sizes from
`config/unsupervised_study_v1/metric_configs/dci.gin`).

For every factor a classifier predicts the factor's value from the whole code, trained on
num_train random points and tested on num_test others. Column k of the importance matrix
R [D, F] is |feature_importances_| of factor k's classifier; informativeness is the mean
accuracy over the factors, on the training and on the test points.
- disentanglement: per code dimension d, 1 − H_F(R[d] / Σ R[d]) with the entropy in base F
  (scipy's `entropy` of R[d] + 1e-11, which normalises); weighted by the dimension's share
  of the total importance, Σ_k R[d, k] / Σ R (uniform weights when R is all zero).
- completeness: per factor k, 1 − H_D(R[:, k] / Σ R[:, k]) in base D; weighted by the
  factor's share Σ_d R[d, k] / Σ R.
Both are 1 for a one-to-one code (a diagonal R, also with extra all-zero rows) and 0 for
a uniform R.

Protocol (defaults are disentanglement_lib's):
- representation: whatever `representation_fn` returns (the caller passes the encoder mean);
- num_train = 10 000 and num_test = 5 000 points;
- classifier: `sklearn.ensemble.GradientBoostingClassifier()` with sklearn's defaults
  (100 trees of depth 3, learning rate 0.1), here with random_state = seed so the result is
  repeatable (disentanglement_lib passes none). It is slow: one tree per class per round,
  so dSprites' 40-valued orientation fits 4 000 trees on 10 000 points. `model` takes any
  unfitted sklearn classifier with `feature_importances_` (cloned per factor), e.g.
  GradientBoostingClassifier(n_estimators=10, random_state=0) for a quick look; a score so
  computed is not disentanglement_lib's.
An ideal code gets disentanglement and completeness ≈ 1; they fall below 1 as soon as the
trees also split on other dimensions (noisy codes), which a finite sample always allows.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import scipy.stats
from joblib import Parallel, cpu_count, delayed
from sklearn.base import clone
from sklearn.ensemble import GradientBoostingClassifier

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
    return random_points("dci", data, seed, num_train=num_train, num_test=num_test)


def importance_matrix(codes_train, factors_train, codes_test, factors_test, model):
    """(R [D, F], mean train accuracy, mean test accuracy), one fitted `model` per factor."""
    num_codes, num_factors = codes_train.shape[1], factors_train.shape[1]

    def fit(k):  # one factor's classifier; sklearn's trees run on one core, so the
        # factors are fitted in parallel threads (tree building releases the GIL, the
        # per-stage loop does not): the same numbers, each clone seeded.
        m = clone(model).fit(codes_train, factors_train[:, k])
        train = np.mean(m.predict(codes_train) == factors_train[:, k])
        return (
            np.abs(m.feature_importances_),
            train,
            np.mean(m.predict(codes_test) == factors_test[:, k]),
        )

    fits = Parallel(n_jobs=min(num_factors, cpu_count()), prefer="threads")(
        delayed(fit)(k) for k in range(num_factors)
    )
    r = np.zeros((num_codes, num_factors), dtype=np.float64)
    for k, (importances, _, _) in enumerate(fits):
        r[:, k] = importances
    train_acc, test_acc = [f[1] for f in fits], [f[2] for f in fits]
    return r, float(np.mean(train_acc)), float(np.mean(test_acc))


def disentanglement_per_code(r: np.ndarray) -> np.ndarray:
    """[D]: 1 − entropy of each row of R [D, F] in base F."""
    return 1.0 - scipy.stats.entropy(r.T + 1e-11, base=r.shape[1])


def disentanglement(r: np.ndarray) -> float:
    """Importance-weighted mean of `disentanglement_per_code` over the code dimensions."""
    per_code = disentanglement_per_code(r)
    if r.sum() == 0.0:
        r = np.ones_like(r)
    return float(np.sum(per_code * r.sum(axis=1) / r.sum()))


def completeness_per_factor(r: np.ndarray) -> np.ndarray:
    """[F]: 1 − entropy of each column of R [D, F] in base D."""
    return 1.0 - scipy.stats.entropy(r + 1e-11, base=r.shape[0])


def completeness(r: np.ndarray) -> float:
    """Importance-weighted mean of `completeness_per_factor` over the factors."""
    per_factor = completeness_per_factor(r)
    if r.sum() == 0.0:
        r = np.ones_like(r)
    return float(np.sum(per_factor * r.sum(axis=0) / r.sum()))


def _score_one(draw: Draw, codes: dict, model) -> dict:
    if model is None:
        model = GradientBoostingClassifier(random_state=draw.seed)
    r, train_acc, test_acc = importance_matrix(
        np.asarray(codes["train"]), draw.labels["train"],
        np.asarray(codes["test"]), draw.labels["test"], model,
    )  # fmt: skip
    return {
        "disentanglement": disentanglement(r),
        "completeness": completeness(r),
        "informativeness_train": train_acc,
        "informativeness_test": test_acc,
    }


def score(draw: Draw, codes: dict[str, np.ndarray], *, model=None):
    """{"disentanglement", "completeness", "informativeness_train", "informativeness_test"}
    from `encode(data, draw, fn)` ({"train", "test": [n, D]}); a list of dicts for codes
    [M, n, D]. `model`: an unfitted sklearn classifier (default: disentanglement_lib's
    GradientBoostingClassifier(), with random_state = the draw's seed)."""
    return per_member(partial(_score_one, draw, model=model), codes)


def compute(
    data,
    representation_fn,
    *,
    seed: int,
    model=None,
    chunk_size: int = CHUNK_SIZE,
    **protocol_overrides,
) -> dict[str, float]:
    """draw + encode + score. `protocol_overrides`: num_train, num_test."""
    d = draw(data, seed=seed, **protocol_overrides)
    return score(d, encode(data, d, representation_fn, chunk_size=chunk_size), model=model)
