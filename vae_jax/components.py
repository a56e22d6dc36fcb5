"""The one shape every registry entry has: a part of the model or the objective, built from
its own config sub-section and what it needs to know about the data.

    NETS = {"mlp": mlp.COMPONENT, ...}            # vae_jax/nets/__init__.py
    part = NETS[name].make(config.model[name], spec)

A component file defines `COMPONENT = Component(make, defaults, validate)`:
- `defaults()` returns its sub-section (`config.model.mlp`, `config.objective.elbo`, ...),
  which config_lib mounts under the component's registry name, so every field it reads is
  declared, documented and typo-checked;
- `validate(section, spec)` raises ConfigError (one line: field, value, what is allowed);
  `spec` is None before the data are loaded, so data-dependent checks wait for it;
- `make(section, spec)` builds the part;
- `traits` say what the part is, so that other code asks them rather than its name;
- `describe(section, name)` is a short text for reports ("mlp (512, 256)").
A new prior, likelihood, net or objective is one such file plus one registry line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import ml_collections


class Spec(NamedTuple):
    """What a component may need to know beyond its own sub-section."""

    data_shape: tuple[int, ...]  # (H, W, C) of one example
    num_train: int  # training examples (β-TCVAE's N, epochs from steps)
    batch_size: int
    latent_dim: int
    num_params: int = 1  # decoder channels per data channel (from the likelihood)
    key: jax.Array | None = None  # initialisation key, for parts that own parameters
    reduction: str = "mean"  # train.loss_reduction: the objective's sum or mean over a batch
    compute_dtype: str = "float32"  # train.compute_dtype: the nets' activations and matmuls

    @property
    def dtype(self):
        """The nets' computation dtype; None for float32 (flax infers it: params and data
        are float32). Parameters are always float32."""
        return None if self.compute_dtype == "float32" else jax.numpy.dtype(self.compute_dtype)


def no_fields() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict()


def no_checks(section, spec: Spec | None) -> None:
    del section, spec


def named(section, name: str) -> str:
    del section
    return name


class Component(NamedTuple):
    make: Callable[[ml_collections.ConfigDict, Spec], Any]
    defaults: Callable[[], ml_collections.ConfigDict] = no_fields
    validate: Callable[[ml_collections.ConfigDict, Spec | None], None] = no_checks
    # What the rest of the code may ask of the part without knowing its name, e.g. a
    # likelihood's "discrete" or "density", a prior's "temperature" (see each registry).
    traits: frozenset[str] = frozenset()
    describe: Callable[[ml_collections.ConfigDict, str], str] = named  # (section, name) -> text
