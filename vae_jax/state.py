"""What a run is made of, from its config: the model split at the NNX boundary, the
optimizer, the objective, and the TrainState pytree that the step updates and checkpoints
hold. Training and evaluation both build from here (evaluation to restore a checkpoint's
structure); neither imports the other.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from vae_jax.model import build_model
from vae_jax.objectives import OBJECTIVES


class TrainState(NamedTuple):
    step: jax.Array  # int32 []
    params: nnx.State
    opt_state: optax.OptState
    nonfinite_steps: jax.Array  # int32 [], total skipped updates
    nonfinite_streak: jax.Array  # int32 [], consecutive skipped updates up to `step`


def make_optimizer(train_config) -> optax.GradientTransformation:
    opt = {"adam": optax.adam, "adamw": optax.adamw, "sgd": optax.sgd}[train_config.optimizer]
    tx = opt(train_config.learning_rate)
    if train_config.grad_clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(train_config.grad_clip_norm), tx)
    return tx


def init_state(params, tx) -> TrainState:
    zero = lambda: jnp.zeros((), jnp.int32)  # distinct buffers: the state is donated
    return TrainState(zero(), params, tx.init(params), zero(), zero())


def setup(config, data_shape):
    """(graphdef, initial TrainState, tx, objective, train key) from a config. Deterministic."""
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    graphdef, params = nnx.split(build_model(config.model, data_shape, init_key))
    tx = make_optimizer(config.train)
    objective = OBJECTIVES[config.objective.name](config.objective, config.train.loss_reduction)
    return graphdef, init_state(params, tx), tx, objective, train_key
