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
import time
from functools import partial

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from vae_jax.data.transforms import binarize_bernoulli, to_unit_interval
from vae_jax.hyper import Hyper
from vae_jax.mesh import shard_batch
from vae_jax.model import merge_model
from vae_jax.objectives import Context, Objective
from vae_jax.state import TrainState, tree_finite


def make_train_step(
    graphdef,
    objective: Objective,
    tx,
    *,
    dynamic_binarize: bool = False,
    num_train: int | None = None,
    batch_size: int | None = None,
    matmul_precision: str = "default",
    guard: str = "where",
    check_state: bool = False,
    mesh=None,
):
    """Return the pure step (state, batch {"image": u8 [B, H, W, C], ...}, key, hyper) ->
    (state, metrics). `num_train` and `batch_size` reach the objective's Context;
    `matmul_precision` (default | high | highest) applies to every matmul it traces.

    `guard` is how a non-finite step is skipped: "where" selects the old params and
    optimizer state leaf by leaf (fused into the update; the choice on accelerators, and
    what vmap makes of either), "cond" skips the update with a `lax.cond` (on the CPU it
    saves a pass over params and Adam's moments, ~5 % of the default MLP's step).
    With `check_state`, a step also counts as non-finite (and is skipped) when the params,
    optimizer state or model state it writes hold a non-finite value although its loss and
    gradient were finite (e.g. a huge learning rate). With the "where" guard the check
    shares the pass that selects; with "cond" it costs ~17 % of the default MLP's step on
    the CPU, so there the chunk runner uses this step only to redo a chunk whose result is
    not finite (make_chunk_runner's `checked_step`). With a `mesh` (vae_jax.mesh), the
    batch's rows are split over its "data" axis; the state stays replicated."""

    def train_step(state: TrainState, batch: dict, key: jax.Array, hyper: Hyper):
        with matmul_precision_context(matmul_precision):
            return _train_step(state, batch, key, hyper)

    def _train_step(state: TrainState, batch: dict, key: jax.Array, hyper: Hyper):
        batch = shard_batch(mesh, batch)  # rows split over the mesh's "data" axis, if any
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
        old = (state.params, state.opt_state, state.model_state)

        def update(_):
            updates, opt_state = tx.update(grads, state.opt_state, state.params)
            return optax.apply_updates(state.params, updates), opt_state, model_state

        # A skipped step leaves params, optimizer state and model state as they were.
        ok = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        if guard == "cond":  # the update runs only when loss and gradient are finite
            new = jax.lax.cond(ok, update, lambda _: old, None)
        else:
            new = update(None)
        if check_state:  # and counts only if everything it writes is finite
            ok = ok & tree_finite(new)
        if check_state or guard != "cond":
            new = select(ok, new, old)
        params, opt_state, model_state = new
        bad = 1 - ok.astype(jnp.int32)
        new_state = TrainState(
            step=state.step + 1,
            params=params,
            model_state=model_state,
            opt_state=opt_state,
            nonfinite_steps=state.nonfinite_steps + bad,
            nonfinite_streak=jnp.where(ok, 0, state.nonfinite_streak + 1),
        )
        streak = {"nonfinite_streak": new_state.nonfinite_streak}
        return new_state, {**metrics, "grad_norm": grad_norm, "finite": ok, **streak}

    return train_step


def select(ok, new, old):
    """`new` where the scalar `ok`, else `old`, leaf by leaf."""
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


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
    Rows whose `active` flag [n] is False are skipped (the state passes through), so a
    chunk shorter than the compiled length is padded instead of compiled again: one
    `cond` per chunk picks the plain scan when every row is active (every chunk but a last
    or first short one), else a scan that selects the old state on inactive rows.

    Returns (state, metrics): metrics are averaged over the active steps whose update was
    finite.
    """

    def multi_step(state, data, indices, active, key, hyper):
        def run(s, idx):
            return train_step(s, gather(data, idx), key, hyper)

        def full(s):
            return jax.lax.scan(run, s, indices)

        def masked(s):
            def body(s, inputs):
                idx, on = inputs
                new, metrics = run(s, idx)
                return select(on, new, s), select(on, metrics, _inactive(metrics, s))

            return jax.lax.scan(body, s, (indices, active))

        state, per_step = jax.lax.cond(active.all(), full, masked, state)
        return state, mean_over_finite(per_step)

    return multi_step


def _inactive(shapes: dict, state) -> dict:
    """The metrics of a padding step: zeros, not finite (so never averaged), and the
    state's current non-finite streak (so a run in progress is not cut)."""
    out = {k: jnp.zeros(v.shape, v.dtype) for k, v in shapes.items()}
    out["finite"] = jnp.zeros((), bool)
    out["nonfinite_streak"] = state.nonfinite_streak
    return out


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


def make_chunk_runner(
    train_step,
    fuse_steps: bool = True,
    compiler_options=None,
    length: int | None = None,
    checked_step=None,
):
    """(state, data, indices [n, B], key, hyper) -> (state, mean metrics), compiled once.

    fuse_steps=True scans the steps inside one jitted call (no per-step dispatch; best for
    small MLPs and on accelerators). fuse_steps=False jits one step and loops in Python:
    XLA:CPU runs convolutions inside a while loop far slower than at top level, so conv
    nets use this on the CPU. With `length`, a shorter chunk (the last one, or the first
    after a resume) is padded to it with inactive rows: one compiled program for all.
    `compiler_options` go to jax.jit (vae_jax.cpu_tuning). `run.compile(*args)` compiles
    ahead of the first call and returns the seconds it took.

    With `checked_step` (make_train_step(..., check_state=True)), a chunk whose resulting
    state is not finite is run again from a copy of its starting state with that step,
    which also skips updates that write a non-finite value: the fast step pays one copy
    of the state and one finiteness check per chunk instead of a check per step. With the
    "cond" guard both steps compute the same bits when every update is finite, so the
    result is the checked step's, bit for bit, either way (tested). `run.redone` counts
    the chunks run again; the checked program compiles at the first redo.
    """
    fast = _make_runner(train_step, fuse_steps, compiler_options, length)
    if checked_step is None:
        return fast
    checked = _make_runner(checked_step, fuse_steps, compiler_options, length)  # lazy compile
    copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))
    finite = jax.jit(tree_finite)

    def run(state, data, indices, key, hyper):
        start = copy(state)  # the fast run donates `state`
        new, metrics = fast(state, data, indices, key, hyper)
        if bool(finite(new)):
            return new, metrics
        run.redone += 1
        return checked(start, data, indices, key, hyper)

    run.compile, run.redone = fast.compile, 0
    for name in ("jitted", "step"):
        if hasattr(fast, name):
            setattr(run, name, getattr(fast, name))
    return run


def _make_runner(train_step, fuse_steps, compiler_options, length):
    """make_chunk_runner without the finiteness check."""
    jit = partial(jax.jit, donate_argnums=(0,), compiler_options=compiler_options)
    if fuse_steps:
        fused = jit(make_multi_step(train_step))

        def run(state, data, indices, key, hyper):
            indices, active = _pad(indices, length)
            return fused(state, data, indices, active, key, hyper)

        def compile_ahead(state, data, indices, key, hyper):
            indices, active = _pad(indices, length)
            t0 = time.perf_counter()
            fused.lower(state, data, indices, active, key, hyper).compile()
            return time.perf_counter() - t0

        run.compile, run.jitted = compile_ahead, fused
        return run

    step = jit(lambda s, d, i, k, h: train_step(s, gather(d, i), k, h))
    reduce = jax.jit(mean_over_finite)

    def run(state, data, indices, key, hyper):
        per_step = []
        for row in indices:
            state, metrics = step(state, data, row, key, hyper)
            per_step.append(metrics)
        stacked = jax.tree.map(lambda *v: jnp.stack(v), *per_step)
        if length and len(per_step) < length:  # pad the stack: `reduce` compiles once
            extra = _inactive(jax.tree.map(lambda v: v[0], stacked), state)
            pad = length - len(per_step)
            stacked = jax.tree.map(
                lambda v, e: jnp.concatenate([v, jnp.broadcast_to(e, (pad, *e.shape))]),
                stacked,
                extra,
            )
        return state, reduce(stacked)

    def compile_ahead(state, data, indices, key, hyper):
        t0 = time.perf_counter()
        step.lower(state, data, jnp.asarray(indices)[0], key, hyper).compile()
        return time.perf_counter() - t0

    run.compile, run.step = compile_ahead, step  # `step` exposed: tests check it compiles once
    return run


def _pad(indices, length: int | None):
    """indices [n, B] -> ([length, B] zero-padded, active [length]); as is without length."""
    indices = jnp.asarray(indices)
    n = indices.shape[0]
    active = jnp.ones((n,), bool)
    if length is None or n == length:
        return indices, active
    if n > length:
        raise ValueError(f"a chunk of {n} steps is longer than the compiled {length}")
    pad = length - n
    indices = jnp.concatenate([indices, jnp.zeros((pad, indices.shape[1]), indices.dtype)])
    return indices, jnp.concatenate([active, jnp.zeros((pad,), bool)])
