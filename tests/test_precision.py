"""Precision you choose for training, and evaluation that does not depend on it: the train
step carries train.matmul_precision into its matmuls, bfloat16 compute keeps float32
params, and every evaluator runs float32 matmuls at "highest" precision."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import read_metrics, tiny_config
from vae_jax.evaluate import elbo as eval_elbo
from vae_jax.experiment import run
from vae_jax.hyper import Hyper
from vae_jax.model import merge_model
from vae_jax.state import eval_graphdef, setup
from vae_jax.step import make_train_step

SHAPE = (28, 28, 1)


def _step_hlo(precision):
    config = tiny_config()
    graphdef, state, tx, objective, key = setup(config, SHAPE, 100)
    step = jax.jit(make_train_step(graphdef, objective, tx, matmul_precision=precision))
    batch = {"image": jnp.zeros((16, *SHAPE), jnp.uint8)}
    return step.lower(state, batch, key, Hyper()).as_text()


@pytest.mark.parametrize("precision", ["high", "highest"])
def test_the_step_carries_its_matmul_precision(precision):
    assert f"precision = [{precision.upper()}, {precision.upper()}]" in _step_hlo(precision)
    with jax.default_matmul_precision("default"):  # tests/conftest.py pins "highest"
        assert "precision = [HIGH" not in _step_hlo("default")


def test_evaluators_compute_at_highest_precision():
    config = tiny_config()
    graphdef, state, *_ = setup(config, SHAPE, 100)
    variables = (state.params, state.model_state)
    lowered = eval_elbo._batch_terms.lower(
        graphdef, variables, jnp.zeros((8, *SHAPE), jnp.uint8), jax.random.key(0), 1, False
    )
    assert "precision = [HIGHEST, HIGHEST]" in lowered.as_text()


def test_bfloat16_training_keeps_float32_params_and_evaluates_in_float32(tmp_path):
    config = tiny_config(**{"train.compute_dtype": "bfloat16", "train.num_steps": 40})
    run(config, str(tmp_path))
    losses = [r["loss"] for r in read_metrics(tmp_path)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0] - 10.0, losses
    graphdef, state, *_ = setup(config, SHAPE, 100)
    assert {leaf.dtype for leaf in jax.tree.leaves(state.params)} == {jnp.dtype("float32")}
    train_model = merge_model(graphdef, state.params, state.model_state)
    assert train_model.encoder.hidden[0].dtype == jnp.bfloat16  # the training graph
    eval_model = merge_model(eval_graphdef(config, SHAPE, 100), state.params, state.model_state)
    assert eval_model.encoder.hidden[0].dtype is None  # float32, inferred from the params
    x = jnp.asarray(np.random.default_rng(0).integers(0, 2, (4, *SHAPE)), jnp.float32)
    q = eval_model.posterior(x)
    assert q.loc.dtype == jnp.float32 and eval_model.decode(q.loc).dtype == jnp.float32
