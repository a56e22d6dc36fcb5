"""Data sets with known generative factors, for the disentanglement metrics.

The interface follows disentanglement_lib's `GroundTruthData` (Locatello et al. 2019): the
factors are integer indices into each factor's grid of values, and observations are drawn
*given* factors, so a metric can fix one factor and vary the rest.

- `factor_sizes`: the number of values of each factor, e.g. dSprites (3, 6, 40, 32, 32)
  for (shape, scale, orientation, posX, posY); its constant colour factor is dropped, as
  in disentanglement_lib.
- `factor_names`: one name per factor, for tables and figure captions.
- `sample_factors(num, rng)`: [num, F] int64, each factor uniform over its grid.
- `observations(factors, rng)`: [num, ...] observations for those factors (images as
  uint8 in 0..255, the pipeline's convention). `rng` is for data sets whose observation is
  random given the factors; a deterministic one ignores it.

Everything here is numpy and host-side: the metrics draw their points once, and the
representation (the encoder) runs on the device.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class GroundTruthData(Protocol):
    factor_sizes: tuple[int, ...]
    factor_names: tuple[str, ...]

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray: ...

    def observations(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...


def uniform_factors(factor_sizes, num: int, rng: np.random.Generator) -> np.ndarray:
    """[num, F] int64: each factor drawn uniformly and independently over its grid."""
    return np.stack([rng.integers(0, s, size=num) for s in factor_sizes], axis=1)


class FactorsAsObservations:
    """A toy data set whose observation *is* the factor vector (as float32).

    disentanglement_lib's `IdentityObservationsData`: the test bed for the metrics, where
    the ideal representation is known exactly.
    """

    def __init__(self, factor_sizes, factor_names=None):
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.factor_names = tuple(
            factor_names or (f"factor{i}" for i in range(len(self.factor_sizes)))
        )

    def sample_factors(self, num: int, rng: np.random.Generator) -> np.ndarray:
        return uniform_factors(self.factor_sizes, num, rng)

    def observations(self, factors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        del rng
        return np.asarray(factors, dtype=np.float32)
