"""What an objective is: a pure loss over a batch, plus what it says about itself.

    loss, metrics = objective.loss(model, batch, key, ctx)

- `batch` is a dict of device arrays: "x", the model's input in [0, 1] (binarized when the
  data are), and whatever else the data carry ("label", ...);
- `ctx` is the Context of the step: the step number (traced), the swept Hyper (traced), the
  training-set size N and the batch size (static): a schedule reads the step, β-TCVAE N;
- `metrics` is whatever scalars (or small vectors) the objective defines, always with
  "loss". The train loop logs and prints what exists; no objective invents a term.

The flags tell evaluation what the objective is, so that it never asks for a name:
`deterministic` (the encoder is used at its mean, z = μ(x): no sampling, no KL) and
`bound` (its training "elbo" bounds log p(x), so a test ELBO, an importance-sampled
log p(x) and the collapse diagnostics mean something). `progress` names the metrics the
progress line shows after the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp

from vae_jax.hyper import Hyper


class Context(NamedTuple):
    step: jax.Array  # int32 [], the step being taken (0-based)
    hyper: Hyper  # swept hyper-parameters, traced
    num_train: int  # N, training examples
    batch_size: int  # B

    @property
    def epoch(self) -> jax.Array:
        """Epochs completed before this step, fractional: step · B / N."""
        return self.step.astype(jnp.float32) * (self.batch_size / self.num_train)


class Objective(NamedTuple):
    loss: Callable  # (model, batch, key, ctx) -> (loss [], metrics {name: array})
    bound: bool  # required: whether its "elbo" bounds log p(x); never assumed
    deterministic: bool = False
    progress: tuple[str, ...] = ("elbo", "kl")


def batch_reduce(per_example: jax.Array, reduction: str) -> jax.Array:
    return per_example.sum() if reduction == "sum" else jnp.mean(per_example)
