"""The pure train step and the runners that take several steps per jitted call.

The step is a pure function of (TrainState, batch, key, Hyper): the model enters as its
params and model state (`merge_model(graphdef, params, model_state, train=True)` inside
the traced function; only the params are differentiated, the batch statistics come back
updated), the per-step key is `fold_in(key, step)`, and Hyper is traced so a β-sweep can
`vmap` it. The objective sees a Context (step, Hyper, N, B). Several steps run inside one
jitted `lax.scan` over device-resident data (vdm's trick), and a step whose loss or
gradient is non-finite is skipped on the device and counted (vdvae's guard).

A batch is a dict of arrays, {"image": uint8 [B, H, W, C], "label": ...}; the step turns
"image" into the model input "x" (scaled, and binarized afresh when asked). Any model with
an Objective trains through here: the VAEs, their baselines, and the feature classifier
of the Fréchet distance.
"""

from __future__ import annotations

import contextlib
from functools import partial

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from vae_jax.data.transforms import binarize_bernoulli, to_unit_interval
from vae_jax.hyper import Hyper
from vae_jax.model import merge_model
from vae_jax.objectives import Context, Objective
from vae_jax.state import TrainState


def make_train_step(
    graphdef,
    objective: Objective,
    tx,
    *,
    dynamic_binarize: bool = False,
    num_train: int | None = None,
    batch_size: int | None = None,
    matmul_precision: str = "default",
):
    """Return the pure step (state, batch {"image": u8 [B, H, W, C], ...}, key, hyper) ->
    (state, metrics). `num_train` and `batch_size` reach the objective's Context;
    `matmul_precision` (default | high | highest) applies to every matmul it traces."""

    def train_step(state: TrainState, batch: dict, key: jax.Array, hyper: Hyper):
        with matmul_precision_context(matmul_precision):
            return _train_step(state, batch, key, hyper)

    def _train_step(state: TrainState, batch: dict, key: jax.Array, hyper: Hyper):
        k_data, k_obj = jax.random.split(jax.random.fold_in(key, state.step))
        x = to_unit_interval(batch["image"])
        if dynamic_binarize:  # a fresh draw every step, from a key the objective never sees
            x = binarize_bernoulli(k_data, x)
        inputs = {**{k: v for k, v in batch.items() if k != "image"}, "x": x}
        ctx = Context(state.step, hyper, num_train, batch_size or x.shape[0])

        def loss_fn(params, model_state):  # differentiated in params only
            model = merge_model(graphdef, params, model_state, train=True)
            loss, metrics = objective.loss(model, inputs, k_obj, ctx)
            return loss, (metrics, nnx.state(model, nnx.Not(nnx.Param)))

        (loss, (metrics, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.model_state
        )
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        bad = 1 - ok.astype(jnp.int32)
        new_state = TrainState(
            step=state.step + 1,
            params=keep(params, state.params),
            model_state=keep(model_state, state.model_state),
            opt_state=keep(opt_state, state.opt_state),
            nonfinite_steps=state.nonfinite_steps + bad,
            nonfinite_streak=jnp.where(ok, 0, state.nonfinite_streak + 1),
        )
        streak = {"nonfinite_streak": new_state.nonfinite_streak}
        return new_state, {**metrics, "grad_norm": grad_norm, "finite": ok, **streak}

    return train_step


def matmul_precision_context(precision: str):
    """jax.default_matmul_precision(precision) while tracing; nothing for "default"."""
    if precision in (None, "default"):
        return contextlib.nullcontext()
    return jax.default_matmul_precision(precision)


def gather(data: dict, idx) -> dict:
    """Rows `idx` of every array of a device-resident data dict."""
    return {k: v[idx] for k, v in data.items()}


def make_multi_step(train_step):
    """Scan `train_step` over index rows [n, B] into device data {"image": [N, ...], ...}.

    Returns (state, metrics): metrics are averaged over the steps whose update was finite.
    """

    def multi_step(state, data, indices, key, hyper):
        def body(s, idx):
            return train_step(s, gather(data, idx), key, hyper)

        state, per_step = jax.lax.scan(body, state, indices)
        return state, mean_over_finite(per_step)

    return multi_step


def mean_over_finite(per_step: dict) -> dict:
    """Average stacked per-step metrics [n] over the steps whose update was applied (NaN if
    none was). Also the longest run of skipped steps seen in the chunk (`max_nonfinite_streak`,
    counting a run carried over from earlier chunks) and the chunk index of the step where it
    ended (`max_nonfinite_streak_end`): a run that ends inside a chunk is not lost."""
    per_step = dict(per_step)
    ok = per_step.pop("finite")
    streak = per_step.pop("nonfinite_streak")  # [n]
    count = ok.sum()
    mask = lambda v: ok.reshape(ok.shape + (1,) * (v.ndim - 1))  # explicit rank for [n, D]
    means = {
        k: jnp.where(
            count > 0, jnp.where(mask(v), v, 0.0).sum(axis=0) / jnp.maximum(count, 1), jnp.nan
        )
        for k, v in per_step.items()
    }
    return {
        **means,
        "max_nonfinite_streak": streak.max(),
        "max_nonfinite_streak_end": jnp.argmax(streak),
    }


def make_chunk_runner(train_step, fuse_steps: bool = True, compiler_options=None):
    """(state, data, indices [n, B], key, hyper) -> (state, mean metrics), jitted once.

    fuse_steps=True scans all n steps inside one jitted call (no per-step dispatch; best for
    small MLPs). fuse_steps=False jits one step and loops in Python: XLA:CPU runs
    convolutions inside a while loop far slower than at top level, so conv nets use this.
    `compiler_options` go to jax.jit (see vae_jax.cpu_tuning and config.train.cpu_tuning).
    """
    jit = partial(jax.jit, donate_argnums=(0,), compiler_options=compiler_options)
    if fuse_steps:
        return jit(make_multi_step(train_step))
    step = jit(lambda s, d, i, k, h: train_step(s, gather(d, i), k, h))
    reduce = jax.jit(mean_over_finite)

    def run(state, data, indices, key, hyper):
        per_step = []
        for row in indices:
            state, metrics = step(state, data, row, key, hyper)
            per_step.append(metrics)
        return state, reduce(jax.tree.map(lambda *v: jnp.stack(v), *per_step))

    run.step = step  # exposed so tests can check it compiles once
    return run
