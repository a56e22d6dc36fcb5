"""Shared machinery of the disentanglement metrics: drawn points, chunked encoding, and the
discrete information quantities.

A metric is split in two so that several sweep members can be scored on the same points:

- `draw` (in each metric's module) fixes everything that does not depend on the
  representation: the factors of every observation, as a `Draw` of named `Points`, plus
  the labels the score needs. Factors are small (stored in the narrowest unsigned dtype);
  observations are never held all at once.
- `encode(data, draw, representation_fn)` renders the observations `chunk_size` at a time
  with `data.observations` and feeds them through `representation_fn`; each part's
  `reduce`, if any, turns a chunk of codes into per-point features right away (BetaVAE's
  mean |z1 − z2| over a pair of batches, FactorVAE's per-batch variance), so that only
  [n, D] numbers per part are kept. `representation_fn` may return [n, D] for one
  representation or [M, n, D] for M members at once; the codes then carry that axis.
- `score` (in each metric's module) takes those codes and returns a dict of scalars, or a
  list of M dicts when the codes have a member axis.

This is disentanglement_lib's `generate_batch_factor_code` (Locatello et al. 2019, `utils.py`)
with the sampling moved ahead of the representation. Everything is deterministic in the
draw's integer seed: the factors come from `default_rng(seed)` and the observations of part
number i from `default_rng([seed, 1, i])`, so encoding the same draw twice, or for another
member, renders the same observations (for a data set whose observation depends on `rng`
the stream is also the same for any chunk size as long as the data set draws per example).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import mutual_info_score

CHUNK_SIZE = 4096  # observations rendered and encoded at once
_OBSERVATION_STREAM = 1  # SeedSequence entropy [seed, 1, part] for the observations

RepresentationFn = Callable[[np.ndarray], np.ndarray]  # [n, ...] -> [n, D] or [M, n, D]


@dataclass(frozen=True)
class Points:
    """Factors to observe, [n, *group, F]: n points, each a group of observations.

    `reduce` maps the codes of a run of whole points, [..., n, *group, D], to per-point
    features [..., n, D']; None keeps the codes ([..., n, D], no group).
    """

    factors: np.ndarray
    reduce: Callable[[np.ndarray], np.ndarray] | None = None

    @property
    def num_points(self) -> int:
        return int(self.factors.shape[0])

    @property
    def group_shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.factors.shape[1:-1])

    @property
    def num_observations(self) -> int:
        return int(np.prod(self.factors.shape[:-1], dtype=np.int64))


@dataclass(frozen=True)
class Draw:
    """Everything a metric scores, fixed before any representation is seen.

    `points` are encoded in order by `encode`; `labels` are what the score compares against
    (factor values [n, F] or the index of the fixed factor [n]); `protocol` records the
    sizes used, for reports.
    """

    metric: str
    seed: int
    points: dict[str, Points]
    labels: dict[str, np.ndarray]
    factor_sizes: tuple[int, ...]
    factor_names: tuple[str, ...]
    protocol: dict

    @property
    def num_observations(self) -> int:
        return sum(p.num_observations for p in self.points.values())


def compact(factors: np.ndarray, factor_sizes) -> np.ndarray:
    """The factors in the narrowest unsigned dtype that holds every index (uint8 for dSprites)."""
    return np.asarray(factors).astype(np.min_scalar_type(max(int(s) for s in factor_sizes) - 1))


def sample_factors(data, num: int, rng: np.random.Generator) -> np.ndarray:
    """[num, F] factor indices from `data.sample_factors`, checked and compacted."""
    factors = np.asarray(data.sample_factors(num, rng))
    sizes = tuple(data.factor_sizes)
    if factors.shape != (num, len(sizes)):
        raise ValueError(
            f"sample_factors({num}) returned shape {factors.shape}, expected {(num, len(sizes))}"
        )
    if factors.min(initial=0) < 0 or np.any(factors >= np.asarray(sizes)):
        raise ValueError(f"sample_factors returned indices outside the grid {sizes}")
    return compact(factors, sizes)


def random_points(metric: str, data, seed: int, **sizes: int) -> Draw:
    """A draw of independent random points, one part per size (num_train -> "train",
    num_test -> "test", in the order given), each [n, F]; labels are their factors (MIG,
    DCI and SAP: disentanglement_lib's `generate_batch_factor_code`)."""
    rng = np.random.default_rng(seed)
    points, labels = {}, {}
    for key, num in sizes.items():
        part = key.removeprefix("num_")
        factors = sample_factors(data, num, rng)
        points[part] = Points(factors)
        labels[part] = factors.astype(np.int64)
    return make_draw(metric, data, seed, points, labels, sizes)


def make_draw(metric, data, seed, points, labels, protocol) -> Draw:
    return Draw(
        metric=metric,
        seed=int(seed),
        points=dict(points),
        labels={k: np.asarray(v) for k, v in labels.items()},
        factor_sizes=tuple(int(s) for s in data.factor_sizes),
        factor_names=tuple(data.factor_names),
        protocol=dict(protocol),
    )


def encode_points(
    data,
    points: Points,
    representation_fn: RepresentationFn,
    rng: np.random.Generator,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> np.ndarray:
    """Codes (or reduced features) of `points`: [n, D'] or [M, n, D'].

    Observations are rendered and encoded for whole points only, max(1, chunk_size // group)
    points (≤ chunk_size observations unless one group is larger) per call.
    """
    group_shape = points.group_shape
    group = int(np.prod(group_shape, dtype=np.int64))
    if points.reduce is None and group_shape:
        raise ValueError("grouped points need a reduce function")
    step = max(1, int(chunk_size) // group)
    num_factors = points.factors.shape[-1]
    out = []
    for start in range(0, points.num_points, step):
        chunk = points.factors[start : start + step]
        flat = chunk.reshape(-1, num_factors).astype(np.int64)
        codes = np.asarray(representation_fn(data.observations(flat, rng)))
        if codes.ndim not in (2, 3) or codes.shape[-2] != flat.shape[0]:
            raise ValueError(
                f"representation_fn returned shape {codes.shape} for {flat.shape[0]} "
                "observations; expected [n, D] or [M, n, D]"
            )
        codes = codes.reshape(codes.shape[:-2] + chunk.shape[:-1] + codes.shape[-1:])
        out.append(codes if points.reduce is None else points.reduce(codes))
    return np.concatenate(out, axis=-2)


def encode(
    data,
    draw: Draw,
    representation_fn: RepresentationFn,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, np.ndarray]:
    """{part: codes [n, D'] or [M, n, D']} for every part of `draw`, as `score` takes them.

    For M members at once, pass a `representation_fn` that encodes each chunk with every
    member and stacks the results to [M, n, D].
    """
    return {
        name: encode_points(
            data,
            points,
            representation_fn,
            np.random.default_rng([draw.seed, _OBSERVATION_STREAM, i]),
            chunk_size=chunk_size,
        )
        for i, (name, points) in enumerate(draw.points.items())
    }


def per_member(score_one: Callable[[dict], dict], codes: dict[str, np.ndarray]):
    """score_one(codes) for [n, D] codes; a list of its dicts, one per member, for [M, n, D]."""
    ndims = {np.ndim(c) for c in codes.values()}
    if len(ndims) != 1 or not ndims <= {2, 3}:
        shapes = [np.shape(c) for c in codes.values()]
        raise ValueError(f"codes must all be [n, D] or all [M, n, D], got {shapes}")
    if ndims == {2}:
        return score_one(codes)
    members = {np.shape(c)[0] for c in codes.values()}
    if len(members) != 1:
        raise ValueError(f"parts disagree on the number of members: {sorted(members)}")
    return [score_one({k: c[m] for k, c in codes.items()}) for m in range(members.pop())]


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """[n, D] -> [n, D] bin indices in 1..num_bins, per code dimension.

    disentanglement_lib's `_histogram_discretize`: num_bins equal-width bins over each
    dimension's observed range, `np.digitize(x, np.histogram(x, num_bins)[1][:-1])`, so the
    minimum falls in bin 1 and the maximum in bin num_bins. A constant dimension c is binned
    over np.histogram's default range [c − 0.5, c + 0.5], so all of it lands in one bin.
    """
    codes = np.asarray(codes)
    out = np.zeros(codes.shape, dtype=np.int64)
    for d in range(codes.shape[1]):
        x = codes[:, d]
        out[:, d] = np.digitize(x, np.histogram(x, num_bins)[1][:-1])
    return out


def discrete_mutual_info(codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """[D, F] plug-in mutual information (nats) between discrete codes [n, D] and factors [n, F].

    sklearn's `mutual_info_score` on the empirical joint, as disentanglement_lib's
    `discrete_mutual_info`.
    """
    num_codes, num_factors = codes.shape[1], factors.shape[1]
    m = np.zeros((num_codes, num_factors))
    for i in range(num_codes):
        for j in range(num_factors):
            m[i, j] = mutual_info_score(factors[:, j], codes[:, i])
    return m


def discrete_entropy(factors: np.ndarray) -> np.ndarray:
    """[F] plug-in entropy (nats) of each discrete column of [n, F], as I(y; y)."""
    return np.array([mutual_info_score(y, y) for y in np.asarray(factors).T], dtype=np.float64)
