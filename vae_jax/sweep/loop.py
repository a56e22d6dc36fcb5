"""Train a group of sweep members as one program: the train step vmapped over their stacked
TrainStates, keys, batch orders and Hyper values, inside the same jitted `lax.scan` over
device-resident data as a single run (vae_jax/step.py).

Each member keeps its own subfolder with a single run's files (config.json, metrics.jsonl,
checkpoints/), so `python -m vae_jax.evaluate --workdir=SWEEP/MEMBER` works on it. The
sweep resumes from the newest step every member has saved. A member whose loss stays
non-finite for train.max_nonfinite_steps steps is frozen (its state no longer changes)
and reported; the others go on.
"""

from __future__ import annotations

import json
import os
import signal
import time

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import checkpoint, config_check, resume
from vae_jax.data import batch_indices
from vae_jax.data.pipeline import is_lazy, member_chunk_data
from vae_jax.distributed import is_writer
from vae_jax.errors import ConfigError, Interrupted
from vae_jax.experiment import make_validator
from vae_jax.files import append_line, write_json_atomic, write_text_atomic
from vae_jax.hyper import hyper_from_config
from vae_jax.model import full_state
from vae_jax.progress import Timings, format_seconds
from vae_jax.state import eval_graphdef, make_spec, setup
from vae_jax.step import make_multi_step, make_train_step, select
from vae_jax.sweep.spec import Member
from vae_jax.train import StopOnSignal, rewind_metrics


def stack(trees):
    """[tree, ...] -> one tree with a leading member axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree, i: int):
    return jax.tree.map(lambda x: x[i], tree)


def make_sweep_runner(train_step):
    """(stacked state, data, indices [M, n, B], active [n], keys [M], hyper [M]) -> (stacked
    state, metrics [M]): make_multi_step vmapped over the members; `active` (the padding
    of a short chunk) is shared, so the chunk's `cond` stays a real branch under vmap."""
    multi = jax.vmap(make_multi_step(train_step), in_axes=(0, None, 0, None, 0, 0))
    return jax.jit(multi, donate_argnums=(0,))


def _common_step(ckpts) -> int | None:
    """The newest step that every member has saved (None if one has none)."""
    steps = [set(c.all_steps()) for c in ckpts]
    if not all(steps):
        return None
    common = set.intersection(*steps)
    if not common:
        raise ConfigError(
            "the sweep's members hold checkpoints of no common step ("
            + ", ".join(f"{c.directory}: {sorted(s)}" for c, s in zip(ckpts, steps, strict=True))
            + "); use a new --workdir"
        )
    return max(common)


def _saved_steps(workdir: str) -> list[int]:
    ckpt = checkpoint.Checkpointer(workdir, read_only=True)  # creates nothing
    try:
        return ckpt.all_steps()
    finally:
        ckpt.close()


def train_members(members: list[Member], root: str, dataset, timings: Timings | None = None):
    """Train `members` (configs that differ only in traced values: hyper.*, seed) together.
    Returns one dict per member: name, config, workdir, graphdef (float32, for evaluation),
    variables, and `failed` (None, or why the member stopped)."""
    timings = timings or Timings()
    configs = [m.config for m in members]
    base = configs[0]
    shape, n_train = dataset.shape, len(dataset.train_x)
    for c in configs:
        config_check.validate_config(c)
        spec = make_spec(c, shape, n_train)
        config_check.validate_for_data(c, spec, dataset.binary_inputs, len(dataset.test_x))
    parts = [setup(c, shape, n_train) for c in configs]
    graphdef, _, tx, objective, _ = parts[0]
    states = [p[1] for p in parts]
    dirs = [os.path.join(root, m.name) for m in members]
    for c, d in zip(configs, dirs, strict=True):  # every member with a past, before writing
        saved = _saved_steps(d)
        if not saved:
            continue
        _, found = resume.check(d, c, dataset)
        if found:
            raise ConfigError(
                f"resuming the sweep member {d} with a different config: {found}; "
                "a sweep resumes only with its own config (use a new --workdir)"
            )
        if max(saved) > c.train.num_steps:
            raise ConfigError(
                f"the sweep member {d} is at step {max(saved)}, past train.num_steps="
                f"{c.train.num_steps}: raise train.num_steps or use a new --workdir"
            )
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    ckpts = [checkpoint.Checkpointer(d, max(base.train.keep_checkpoints, 2)) for d in dirs]
    try:
        start = _common_step(ckpts)
        if start is not None:
            for i, (d, ckpt) in enumerate(zip(dirs, ckpts, strict=True)):
                states[i] = ckpt.restore(states[i], start)
                rewind_metrics(os.path.join(d, "metrics.jsonl"), start)
            print(f"Resumed {len(members)} members from step {start} in {root}", flush=True)
        for c, d in zip(configs, dirs, strict=True):
            for name in ("metrics.jsonl", FAILED) if start is None else ():  # a fresh start
                if os.path.exists(os.path.join(d, name)):
                    os.remove(os.path.join(d, name))
            write_text_atomic(os.path.join(d, "config.json"), c.to_json(indent=2))
            resume.write_record(d, dataset)
        graphdef_eval = eval_graphdef(base, shape, n_train)
        loop = _SweepLoop(members, dirs, ckpts, dataset, timings)
        step_fn = make_train_step(
            graphdef,
            objective,
            tx,
            dynamic_binarize=base.data.binarize == "dynamic",
            num_train=n_train,
            batch_size=base.data.batch_size,
            matmul_precision=base.train.matmul_precision,
            guard="where",  # a `cond` on a per-member flag would run both branches anyway
            check_state=True,
        )
        validators = [
            make_validator(c, dataset, graphdef_eval, deterministic=objective.deterministic)
            for c in configs
        ]
        keys = jnp.stack([p[4] for p in parts])
        hyper = stack([hyper_from_config(c.hyper) for c in configs])
        with StopOnSignal() as stop:
            stacked, failed = loop.run(
                stack(states), make_sweep_runner(step_fn), keys, hyper, validators, stop
            )
    finally:
        for ckpt in ckpts:
            ckpt.close()
    return [
        dict(
            name=m.name,
            config=c,
            workdir=d,
            graphdef=graphdef_eval,
            variables=full_state(*(lambda s: (s.params, s.model_state))(unstack(stacked, i))),
            failed=failed[i],
        )
        for i, (m, c, d) in enumerate(zip(members, configs, dirs, strict=True))
    ]


class _SweepLoop:
    """Chunks of steps for all members at once; per member: guard, validate, log, save."""

    def __init__(self, members, dirs, ckpts, dataset, timings):
        self.members, self.dirs, self.ckpts = members, dirs, ckpts
        self.dataset, self.timings = dataset, timings
        self.tc = members[0].config.train
        self.batch = members[0].config.data.batch_size

    def _indices(self, step: int):
        tc, n_train = self.tc, len(self.dataset.train_x)
        n = min(tc.log_every - step % tc.log_every, tc.num_steps - step)
        rows = np.stack(
            [batch_indices(n_train, self.batch, m.config.seed, step, n) for m in self.members]
        )
        pad = tc.log_every - n  # one compiled length: padding rows are inactive
        active = np.arange(tc.log_every) < n
        rows = np.concatenate([rows, np.zeros((len(rows), pad, self.batch), np.int32)], axis=1)
        return jnp.asarray(rows), jnp.asarray(active), n

    def _save(self, i: int, step: int, state) -> None:
        if step not in self.ckpts[i].all_steps():  # saved before a kill: the same bits
            self.ckpts[i].save(step, state)

    def run(self, stacked, runner, keys, hyper, validators, stop):
        tc, timings, count = self.tc, self.timings, len(self.members)
        lazy = is_lazy(self.dataset.train_x)  # dsprites: each chunk's images, rendered
        if not lazy:
            data = jax.device_put({"image": self.dataset.train_x, "label": self.dataset.train_y})
        failed = [read_failed(d) for d in self.dirs]  # frozen in an earlier run stay frozen
        live = np.array([f is None for f in failed])
        step = int(stacked.step[0])
        t0, done_at_t0 = time.time(), step
        copy = jax.jit(lambda tree: jax.tree.map(jnp.copy, tree))
        while step < tc.num_steps:
            idx, active, n = self._indices(step)
            before = copy(stacked) if not live.all() else None
            t_chunk, first = time.time(), step
            with timings.phase("train steps"):
                if lazy:  # every member's rows (padded: one size) from one rendered array
                    # Members with one seed read the same rows: one rendered copy.
                    data, idx = member_chunk_data(self.dataset, np.asarray(idx))
                    data, idx = jax.device_put(data), jnp.asarray(idx)
                stacked, metrics = runner(stacked, data, idx, active, keys, hyper)
                if before is not None:  # frozen members keep their state (not its step)
                    keep = jnp.asarray(live)
                    stacked = jax.vmap(select)(keep, stacked, before)._replace(step=stacked.step)
                metrics, skipped = jax.device_get((metrics, stacked.nonfinite_steps))
            step = int(stacked.step[0])
            rate = n * self.batch * int(live.sum()) / max(time.time() - t_chunk, 1e-9)
            stopping = stop.signum is not None
            crossed = tc.eval_every and step // tc.eval_every > first // tc.eval_every
            losses = []
            was_live = live.copy()
            for i in np.flatnonzero(was_live):
                row = {k: np.asarray(v[i]).tolist() for k, v in metrics.items()}
                streak = row.pop("max_nonfinite_streak")
                end = first + row.pop("max_nonfinite_streak_end")
                if streak >= tc.max_nonfinite_steps:
                    live[i] = False
                    failed[i] = (
                        f"loss non-finite for {streak} consecutive steps "
                        f"({end - streak + 1}..{end}); frozen at its last finite state"
                    )
                    write_failed(self.dirs[i], failed[i])
                    print(f"member {self.members[i].name}: {failed[i]}", flush=True)
                    continue
                due = crossed or step == tc.num_steps
                if validators[i] is not None and due and not stopping:
                    state_i = unstack(stacked, i)
                    with timings.phase("validation ELBO"):
                        row.update(validators[i](full_state(state_i.params, state_i.model_state)))
                record = {
                    "step": step,
                    **row,
                    "nonfinite_steps": int(skipped[i]),
                    "examples_per_sec": rate / max(int(live.sum()), 1),
                    "elapsed_sec": time.time() - t0,
                }
                append_line(os.path.join(self.dirs[i], "metrics.jsonl"), record)
                losses.append(row["loss"])
                if step % tc.checkpoint_every == 0 or step == tc.num_steps or stopping:
                    with timings.phase("checkpoints"):
                        self._save(i, step, unstack(stacked, i))
            for i in np.flatnonzero(~live):  # frozen: its last finite state, saved at each
                if step % tc.checkpoint_every == 0 or step == tc.num_steps or stopping:
                    self._save(i, step, unstack(stacked, i))  # step so every member has it
            eta = (time.time() - t0) / max(step - done_at_t0, 1) * (tc.num_steps - step)
            spread = f"loss {min(losses):9.3f} … {max(losses):9.3f}" if losses else "no member"
            print(
                f"step {step:>6}/{tc.num_steps} | {int(live.sum())}/{count} members | {spread} "
                f"| {rate:9,.0f} ex/s (all members) | ETA {format_seconds(eta)}",
                flush=True,
            )
            if not live.any():  # every member frozen: nothing left to train
                for i in range(count):
                    self._save(i, step, unstack(stacked, i))
                break
            if stopping:
                raise Interrupted(
                    stop.signum,
                    f"stopped by {signal.Signals(stop.signum).name} at step {step}; the "
                    "members' checkpoints are saved. Run the same command again to resume",
                )
        for i in np.flatnonzero(live):  # a member that skipped too much learned too little
            skipped = int(stacked.nonfinite_steps[i])
            if skipped / max(step, 1) > tc.max_nonfinite_fraction:
                failed[i] = f"{skipped} of {step} steps were skipped as non-finite"
                write_failed(self.dirs[i], failed[i], kind="skipped")
            elif is_writer() and os.path.exists(os.path.join(self.dirs[i], FAILED)):
                os.remove(os.path.join(self.dirs[i], FAILED))  # an earlier run's "skipped"
        return stacked, failed


FAILED = "failed.json"


def write_failed(workdir: str, reason: str, kind: str = "frozen") -> None:
    """Mark a member as failed. kind "frozen": its checkpoints keep advancing in step, so
    that every member has every step, but hold its last finite state, and a rerun keeps it
    frozen. kind "skipped": it trained to the end but skipped too many non-finite steps; a
    rerun (with more steps) trains it on."""
    write_json_atomic(os.path.join(workdir, FAILED), {"failed": reason, "kind": kind})


def read_failed(workdir: str) -> str | None:
    """Why the member is frozen, or None (not failed, or failed without being frozen)."""
    path = os.path.join(workdir, FAILED)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        record = json.load(f)
    return record["failed"] if record.get("kind", "frozen") == "frozen" else None
