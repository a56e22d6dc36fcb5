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

from vae_jax.components import Spec
from vae_jax.model import build_model, split_model
from vae_jax.objectives import OBJECTIVES, Objective


class TrainState(NamedTuple):
    step: jax.Array  # int32 []
    params: nnx.State  # the nnx.Param leaves: what the optimizer trains
    model_state: nnx.State  # every other variable (batch statistics): updated, not trained
    opt_state: optax.OptState
    nonfinite_steps: jax.Array  # int32 [], total skipped updates
    nonfinite_streak: jax.Array  # int32 [], consecutive skipped updates up to `step`


def tree_finite(tree) -> jax.Array:
    """Whether every floating-point leaf of `tree` is finite: a scalar bool, traceable (the
    train step's guard) and jitted by checkpoint.all_finite (what may be saved)."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.isfinite(x).all() for x in leaves])) if leaves else True


def make_optimizer(train_config) -> optax.GradientTransformation:
    """Adam / AdamW / SGD at train.learning_rate, optionally with a cosine decay to 0 over
    train.num_steps (train.lr_schedule) and global-norm clipping (train.grad_clip_norm)."""
    opt = {"adam": optax.adam, "adamw": optax.adamw, "sgd": optax.sgd}[train_config.optimizer]
    lr = train_config.learning_rate
    if train_config.get("lr_schedule", "constant") == "cosine":
        lr = optax.cosine_decay_schedule(lr, train_config.num_steps)
    tx = opt(lr)
    if train_config.grad_clip_norm > 0:
        tx = optax.chain(optax.clip_by_global_norm(train_config.grad_clip_norm), tx)
    return tx


def init_state(params, model_state, tx) -> TrainState:
    zero = lambda: jnp.zeros((), jnp.int32)  # distinct buffers: the state is donated
    return TrainState(zero(), params, model_state, tx.init(params), zero(), zero())


def make_spec(
    config, data_shape, num_train: int | None = None, key=None, *, evaluation: bool = False
) -> Spec:
    """What the parts need to know; `evaluation=True` computes in float32 whatever
    train.compute_dtype says (the params are float32 either way)."""
    return Spec(
        data_shape=tuple(data_shape),
        num_train=num_train,
        batch_size=config.data.batch_size,
        latent_dim=config.model.latent_dim,
        key=key,
        reduction=config.train.loss_reduction,
        compute_dtype="float32" if evaluation else config.train.get("compute_dtype", "float32"),
    )


def make_objective(config, spec: Spec) -> Objective:
    """The objective `config.objective.name`, built from its own sub-section."""
    name = config.objective.name
    return OBJECTIVES[name].make(config.objective[name], spec)


def abstract_setup(config, data_shape, num_train: int | None = None):
    """(evaluation graphdef, TrainState of ShapeDtypeStructs): a checkpoint's structure
    without allocating the params or the optimizer's moments (what evaluation restores
    into), and the graphdef that computes in float32."""
    template = jax.eval_shape(lambda: setup(config, data_shape, num_train)[1])
    return eval_graphdef(config, data_shape, num_train), template


def eval_graphdef(config, data_shape, num_train: int | None = None):
    """The model's graphdef for evaluation: float32 computation, for the same params."""
    init_key = jax.random.split(jax.random.key(config.seed))[0]
    spec = make_spec(config, data_shape, num_train, init_key, evaluation=True)
    return split_model(nnx.eval_shape(lambda: build_model(config.model, spec)))[0]


def setup(config, data_shape, num_train: int | None = None):
    """(graphdef, initial TrainState, tx, objective, train key) from a config. Deterministic.

    `num_train` (N) reaches objectives that read it; restoring a checkpoint needs only the
    shapes, so evaluation may leave it out."""
    init_key, train_key = jax.random.split(jax.random.key(config.seed))
    spec = make_spec(config, data_shape, num_train, init_key)
    graphdef, params, model_state = split_model(build_model(config.model, spec))
    tx = make_optimizer(config.train)
    objective = make_objective(config, spec)
    return graphdef, init_state(params, model_state, tx), tx, objective, train_key
