"""The pure train step, a scanned multi-step, and the train-and-evaluate loop.

The step is a pure function of (TrainState, batch, key, Hyper): the model enters as
params only (`nnx.merge(graphdef, params)` inside the traced function), the per-step key
is `fold_in(key, step)`, and Hyper is traced so a β-sweep can `vmap` it. Several steps
run inside one jitted `lax.scan` over device-resident data (vdm's trick), and a step whose
loss or gradient is non-finite is skipped on the device and counted (vdvae's guard).
"""

from __future__ import annotations

import json
import os
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vae_jax import checkpoint, config_check
from vae_jax.config_lib import base_config
from vae_jax.cpu_tuning import cpu_compiler_options
from vae_jax.data import batch_indices
from vae_jax.data.transforms import binarize_bernoulli, to_unit_interval
from vae_jax.files import write_text_atomic
from vae_jax.hyper import Hyper, hyper_from_config
from vae_jax.progress import format_seconds
from vae_jax.state import TrainState, setup

# Metrics that depend on the wall clock; everything else a run logs is a function of the seed.
TIMING_KEYS = ("examples_per_sec", "elapsed_sec")


class NonFiniteLossError(RuntimeError):
    """The loss stayed non-finite; the message names the step range and the checkpoint."""


def make_train_step(graphdef, objective, tx, *, dynamic_binarize: bool = False):
    """Return the pure step (state, batch_u8 [B, H, W, C], key, hyper) -> (state, metrics)."""

    def train_step(state: TrainState, batch_u8: jax.Array, key: jax.Array, hyper: Hyper):
        k_data, k_obj = jax.random.split(jax.random.fold_in(key, state.step))
        x = to_unit_interval(batch_u8)
        if dynamic_binarize:  # a fresh draw every step, from a key the objective never sees
            x = binarize_bernoulli(k_data, x)

        def loss_fn(params):
            return objective(nnx.merge(graphdef, params), x, k_obj, hyper)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)
        bad = 1 - ok.astype(jnp.int32)
        new_state = TrainState(
            step=state.step + 1,
            params=keep(params, state.params),
            opt_state=keep(opt_state, state.opt_state),
            nonfinite_steps=state.nonfinite_steps + bad,
            nonfinite_streak=jnp.where(ok, 0, state.nonfinite_streak + 1),
        )
        streak = {"nonfinite_streak": new_state.nonfinite_streak}
        return new_state, {**metrics, "grad_norm": grad_norm, "finite": ok, **streak}

    return train_step


def make_multi_step(train_step):
    """Scan `train_step` over index rows [n, B] into device data [N, H, W, C].

    Returns (state, metrics): metrics are averaged over the steps whose update was finite.
    """

    def multi_step(state, data_u8, indices, key, hyper):
        def body(s, idx):
            return train_step(s, data_u8[idx], key, hyper)

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
    """(state, data_u8, indices [n, B], key, hyper) -> (state, mean metrics), jitted once.

    fuse_steps=True scans all n steps inside one jitted call (no per-step dispatch; best for
    small MLPs). fuse_steps=False jits one step and loops in Python: XLA:CPU runs
    convolutions inside a while loop far slower than at top level, so conv nets use this.
    `compiler_options` go to jax.jit (see vae_jax.cpu_tuning and config.train.cpu_tuning).
    """
    jit = partial(jax.jit, donate_argnums=(0,), compiler_options=compiler_options)
    if fuse_steps:
        return jit(make_multi_step(train_step))
    step = jit(lambda s, d, i, k, h: train_step(s, d[i], k, h))
    reduce = jax.jit(mean_over_finite)

    def run(state, data_u8, indices, key, hyper):
        per_step = []
        for row in indices:
            state, metrics = step(state, data_u8, row, key, hyper)
            per_step.append(metrics)
        return state, reduce(jax.tree.map(lambda *v: jnp.stack(v), *per_step))

    run.step = step  # exposed so tests can check it compiles once
    return run


def _check_same_model(workdir: str, config) -> None:
    """Refuse to resume a workdir whose model/objective/data config differs. Fields the
    saved config lacks (added to vae_jax since) count as their default values."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return
    with open(path) as f:
        saved = json.load(f)
    current = json.loads(config.to_json())
    defaults = json.loads(base_config().to_json())
    for section in ("model", "objective", "data"):
        old = {**defaults.get(section, {}), **saved.get(section, {})}
        if old != current.get(section):
            changed = {
                k: (old.get(k), v) for k, v in current.get(section, {}).items() if old.get(k) != v
            }
            raise config_check.ConfigError(
                f"config.{section} differs from the run already in {workdir} "
                f"(saved: {saved.get(section)}; changed (saved, new): {changed}); resume with "
                "the same config or use a new --workdir"
            )


def _rewind_metrics(path: str, step: int) -> None:
    """Drop logged lines past the restored checkpoint, so a resumed log has no duplicates."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = [ln for ln in f if ln.strip() and json.loads(ln)["step"] <= step]
    with open(path, "w") as f:
        f.writelines(lines)


def train(config, workdir: str, dataset, *, make_validate=None):
    """Train `config` on `dataset` in `workdir`, resuming from its last checkpoint.

    Writes config.json (after a successful restore), metrics.jsonl and checkpoints/.
    `make_validate(graphdef)`, if given, returns `validate(params) -> {name: float}` (or
    None), which runs at the first logged step at or after each multiple of
    `train.eval_every`, and at the last step; its values join that step's metrics line
    (e.g. `val_elbo`). The loop knows nothing else of evaluation.
    Returns (graphdef, params).
    """
    config_check.validate_config(config)
    config_check.validate_for_data(
        config, dataset.shape, len(dataset.train_x), dataset.binary_inputs, len(dataset.test_x)
    )
    os.makedirs(workdir, exist_ok=True)
    _check_same_model(workdir, config)

    graphdef, state, tx, objective, train_key = setup(config, dataset.shape)
    validate = make_validate(graphdef) if make_validate is not None else None
    hyper = hyper_from_config(config.hyper)
    step_fn = make_train_step(
        graphdef, objective, tx, dynamic_binarize=config.data.binarize == "dynamic"
    )
    options = cpu_compiler_options() if config.train.cpu_tuning else None
    run_chunk = make_chunk_runner(step_fn, config.train.fuse_steps, options)

    ckpt = checkpoint.Checkpointer(workdir, config.train.keep_checkpoints)
    try:
        metrics_path = os.path.join(workdir, "metrics.jsonl")
        start = ckpt.latest_step()
        if start is not None:
            state = ckpt.restore(state)
            _rewind_metrics(metrics_path, start)
            print(f"Resumed from checkpoint at step {start} in {ckpt.directory}", flush=True)
        elif os.path.exists(metrics_path):
            os.remove(metrics_path)
        write_text_atomic(os.path.join(workdir, "config.json"), config.to_json(indent=2))
        state = _loop(config, state, run_chunk, dataset, train_key, hyper, ckpt, validate)
    finally:
        ckpt.close()
    return graphdef, state.params


def _loop(config, state, run_chunk, dataset, train_key, hyper, ckpt, validate):
    tc, batch = config.train, config.data.batch_size
    metrics_path = os.path.join(os.path.dirname(ckpt.directory), "metrics.jsonl")
    train_data = jax.device_put(dataset.train_x)
    step = int(state.step)
    last_saved = ckpt.latest_step()
    t0, done_at_t0 = time.time(), step
    while step < tc.num_steps:
        n = min(tc.log_every - step % tc.log_every, tc.num_steps - step)
        idx = batch_indices(len(dataset.train_x), batch, config.seed, step, n)
        t_chunk, first = time.time(), step
        state, metrics = run_chunk(state, train_data, jnp.asarray(idx), train_key, hyper)
        metrics = {k: np.asarray(v).tolist() for k, v in jax.device_get(metrics).items()}
        step = int(state.step)
        rate = n * batch / max(time.time() - t_chunk, 1e-9)
        streak = metrics.pop("max_nonfinite_streak")
        end = first + metrics.pop("max_nonfinite_streak_end")  # the run's last step
        if streak >= tc.max_nonfinite_steps:
            where = f"step {last_saved} in {ckpt.directory}" if last_saved is not None else "none"
            raise NonFiniteLossError(
                f"loss was non-finite for {streak} consecutive steps ({end - streak + 1}..{end});"
                f" those updates were skipped. Last good checkpoint: {where}. Fix: lower "
                "train.learning_rate, set train.grad_clip_norm, or check the data."
            )
        crossed = tc.eval_every and step // tc.eval_every > first // tc.eval_every
        if validate is not None and (crossed or step == tc.num_steps):
            metrics.update(validate(state.params))
        elapsed = time.time() - t0
        record = {
            "step": step,
            **metrics,
            "nonfinite_steps": int(state.nonfinite_steps),
            "examples_per_sec": rate,
            "elapsed_sec": elapsed,
        }
        with open(metrics_path, "a") as f:
            f.write(json.dumps(record) + "\n")
        eta = elapsed / max(step - done_at_t0, 1) * (tc.num_steps - step)
        print(_progress_line(step, tc.num_steps, metrics, rate, eta), flush=True)
        if step % tc.checkpoint_every == 0 or step == tc.num_steps:
            ckpt.save(step, state)
            last_saved = step
    return state


def _progress_line(step: int, num_steps: int, metrics: dict, rate: float, eta: float) -> str:
    parts = [f"step {step:>6}/{num_steps}", f"loss {metrics['loss']:9.3f}"]
    parts += [f"{k} {metrics[k]:9.3f}" for k in ("elbo", "kl", "val_elbo") if k in metrics]
    parts += [f"{rate:9,.0f} ex/s", f"ETA {format_seconds(eta)}"]
    return " | ".join(parts)
