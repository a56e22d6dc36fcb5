"""BetaVAE disentanglement score (Higgins et al. 2017, "beta-VAE: Learning Basic Visual
Concepts with a Constrained Variational Framework", §3), with disentanglement_lib's protocol
(`evaluation/metrics/beta_vae.py`, `compute_beta_vae_sklearn`; sizes from
`config/unsupervised_study_v1/metric_configs/beta_vae_sklearn.gin`).

One point: draw a factor index k uniformly from the F factors, two batches of `batch_size`
factor vectors uniformly, copy factor k of the first batch into the second, observe both
and encode them; the feature is the mean over the batch of |z1 − z2| ([D]); the label is k.
A linear classifier has to tell from the features which factor was held fixed.

Protocol (defaults are disentanglement_lib's gin values):
- representation: whatever `representation_fn` returns; for a VAE the caller passes the
  encoder mean (disentanglement_lib's `mean_representation` post-processing);
- batch_size = 64 pairs per point, num_train = 10 000 and num_eval = 5 000 points, i.e.
  (10 000 + 5 000) · 2 · 64 = 1.92 M observations, rendered and encoded in chunks;
- classifier: `sklearn.linear_model.LogisticRegression(random_state=seed)`, otherwise
  sklearn's defaults, as disentanglement_lib. Today these are lbfgs, multinomial, C = 1,
  max_iter = 100; sklearn < 0.22, which disentanglement_lib was written against, defaulted
  to liblinear one-vs-rest, so published numbers may differ slightly. The features are not
  standardised and lbfgs often stops at max_iter with a ConvergenceWarning, as in
  disentanglement_lib. train_accuracy is on the training points, eval_accuracy on fresh
  ones.
Chance level is 1/F. An ideal code reaches 1.0 (the held factor's coordinate is exactly 0).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from sklearn.linear_model import LogisticRegression

from vae_jax.evaluate.disentangle.common import (
    CHUNK_SIZE,
    Draw,
    Points,
    encode,
    make_draw,
    per_member,
    sample_factors,
)

PROTOCOL = {"batch_size": 64, "num_train": 10_000, "num_eval": 5_000}


def pair_features(codes: np.ndarray) -> np.ndarray:
    """[..., n, 2, B, D] codes of n pairs of batches -> [..., n, D] mean |z1 − z2| (float64)."""
    codes = np.asarray(codes, dtype=np.float64)
    return np.mean(np.abs(codes[..., 0, :, :] - codes[..., 1, :, :]), axis=-2)


def _pairs(data, num_points, batch_size, rng):
    """[n, 2, B, F] factors of n pairs of batches sharing factor k[n], and k [n]."""
    num_factors = len(data.factor_sizes)
    k = rng.integers(0, num_factors, size=num_points)
    first = sample_factors(data, num_points * batch_size, rng).reshape(num_points, batch_size, -1)
    second = sample_factors(data, num_points * batch_size, rng).reshape(first.shape)
    rows = np.arange(num_points)
    second[rows, :, k] = first[rows, :, k]
    return np.stack([first, second], axis=1), k


def draw(
    data,
    *,
    seed: int,
    batch_size: int = PROTOCOL["batch_size"],
    num_train: int = PROTOCOL["num_train"],
    num_eval: int = PROTOCOL["num_eval"],
) -> Draw:
    """The train and eval points: factors [n, 2, batch_size, F], labels k [n]."""
    rng = np.random.default_rng(seed)
    points, labels = {}, {}
    for part, num in (("train", num_train), ("eval", num_eval)):
        factors, k = _pairs(data, num, batch_size, rng)
        points[part] = Points(factors, reduce=pair_features)
        labels[part] = k
    protocol = {"batch_size": batch_size, "num_train": num_train, "num_eval": num_eval}
    return make_draw("beta_vae", data, seed, points, labels, protocol)


def _score_one(draw: Draw, codes: dict) -> dict:
    train_x, train_y = codes["train"], draw.labels["train"]
    eval_x, eval_y = codes["eval"], draw.labels["eval"]
    model = LogisticRegression(random_state=draw.seed)
    model.fit(train_x, train_y)
    return {
        "train_accuracy": float(np.mean(model.predict(train_x) == train_y)),
        "eval_accuracy": float(np.mean(model.predict(eval_x) == eval_y)),
    }


def score(draw: Draw, codes: dict[str, np.ndarray]):
    """{"train_accuracy", "eval_accuracy"} from `encode(data, draw, fn)`'s features
    ({part: [n, D]}); a list of such dicts for features with a member axis [M, n, D]."""
    return per_member(partial(_score_one, draw), codes)


def compute(
    data,
    representation_fn,
    *,
    seed: int,
    chunk_size: int = CHUNK_SIZE,
    **protocol_overrides,
) -> dict[str, float]:
    """draw + encode + score. `protocol_overrides`: batch_size, num_train, num_eval."""
    d = draw(data, seed=seed, **protocol_overrides)
    return score(d, encode(data, d, representation_fn, chunk_size=chunk_size))
