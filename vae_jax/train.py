"""The training loop: resume, run chunks of steps (vae_jax/step.py), guard, log, checkpoint.

It knows nothing of evaluation: a `make_validate` callback, built by vae_jax/experiment.py,
is the only way a number other than the training metrics enters metrics.jsonl.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np

from vae_jax import checkpoint, config_check, platform, resume
from vae_jax import workdir as workdirs
from vae_jax.cpu_tuning import cpu_compiler_options
from vae_jax.data import batch_indices
from vae_jax.data.pipeline import chunk_data, is_lazy
from vae_jax.distributed import any_process, is_writer
from vae_jax.errors import Interrupted, NonFiniteLossError
from vae_jax.files import append_line, write_text_atomic
from vae_jax.hyper import hyper_from_config
from vae_jax.mesh import make_mesh, replicate, replicated
from vae_jax.model import full_state
from vae_jax.progress import Timings, format_seconds
from vae_jax.state import eval_graphdef, make_spec, setup
from vae_jax.step import make_chunk_runner, make_train_step

# Metrics that depend on the wall clock; everything else a run logs is a function of the seed.
TIMING_KEYS = ("examples_per_sec", "elapsed_sec")


def rewind_metrics(path: str, step: int) -> None:
    """Drop logged lines past the restored checkpoint, so a resumed log has no duplicates,
    and a torn line (a crash mid-write) with a warning."""
    if not os.path.exists(path):
        return
    kept, torn = [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                at = record["step"]
            except (ValueError, KeyError, TypeError):
                torn += 1
                continue
            if at <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    if torn:
        print(
            f"warning: dropped {torn} torn line(s) of {path} (a crash mid-write)",
            file=sys.stderr,
            flush=True,
        )
    write_text_atomic(path, "".join(kept))


def train(config, workdir: str, dataset, *, make_validate=None, timings: Timings | None = None):
    """Train `config` on `dataset` in `workdir`, resuming from its last checkpoint.

    Writes config.json (after a successful restore), metrics.jsonl and checkpoints/.
    `make_validate(graphdef)`, if given, returns `validate(variables) -> {name: float}` (or
    None), which runs at the first logged step at or after each multiple of
    `train.eval_every`, and at the last step; its values join that step's metrics line
    (e.g. `val_elbo`). The loop knows nothing else of evaluation.
    Returns (graphdef, variables): variables = model.full_state(params, model_state), what
    evaluation merges with the graphdef.
    """
    config_check.validate_config(config)
    config_check.validate_for_data(
        config,
        make_spec(config, dataset.shape, len(dataset.train_x)),
        dataset.binary_inputs,
        len(dataset.test_x),
    )
    with workdirs.hold(workdir):
        return _train(config, workdir, dataset, make_validate, timings or Timings())


def _train(config, workdir, dataset, make_validate, timings):
    graphdef, state, tx, objective, train_key = setup(config, dataset.shape, len(dataset.train_x))
    # Evaluation (the validator, and whatever receives the returned graphdef) computes in
    # float32 at full precision, whatever the training's compute dtype and precision.
    graphdef_eval = eval_graphdef(config, dataset.shape, len(dataset.train_x))
    validate = make_validate(graphdef_eval) if make_validate is not None else None
    hyper = hyper_from_config(config.hyper)
    guard = platform.guard()
    mesh = make_mesh(config)

    def make_step(check_state: bool):
        return make_train_step(
            graphdef,
            objective,
            tx,
            dynamic_binarize=config.data.binarize == "dynamic",
            num_train=len(dataset.train_x),
            batch_size=config.data.batch_size,
            matmul_precision=config.train.matmul_precision,
            guard=guard,
            check_state=check_state,
            mesh=mesh,
        )

    # What a step writes must be finite too. The "where" guard (accelerators) reads every
    # leaf anyway, so it checks in the same pass; the CPU's "cond" guard runs a fast step
    # and redoes, with the checking step, only a chunk whose result is not finite.
    step_fn = make_step(check_state=guard != "cond")
    options = cpu_compiler_options() if platform.cpu_tuning(config) else None
    run_chunk = make_chunk_runner(
        step_fn,
        platform.fuse_steps(config),
        options,
        length=config.train.log_every,
        checked_step=make_step(check_state=True) if guard == "cond" else None,
    )

    ckpt = checkpoint.Checkpointer(
        workdir, config.train.keep_checkpoints, sharding=replicated(mesh)
    )
    try:
        metrics_path = os.path.join(workdir, "metrics.jsonl")
        newest = ckpt.latest_step()
        found, note, start = {}, None, 0
        if newest is not None:
            if newest > config.train.num_steps:
                raise config_check.ConfigError(
                    f"the run in {workdir} is at step {newest}, past train.num_steps="
                    f"{config.train.num_steps}: evaluate it with `python -m vae_jax.evaluate "
                    f"--workdir={workdir}`, raise train.num_steps, or use a new --workdir"
                )
            saved, found = resume.check(workdir, config, dataset)
            n = len(dataset.train_x)
            start, state, note = resume.restore(ckpt, saved, config, state, dataset.shape, n)
            if found and start >= config.train.num_steps:
                raise config_check.ConfigError(
                    f"the run in {workdir} already ran its {start} steps: the changes "
                    f"({', '.join(found)}) would train nothing; raise train.num_steps to "
                    "continue with them, or use a new --workdir"
                )
            rewind_metrics(metrics_path, start)
            print(f"Resumed from checkpoint at step {start} in {ckpt.directory}", flush=True)
        elif os.path.exists(metrics_path) and is_writer():
            os.remove(metrics_path)

        def write_record():
            """config.json, run.json and an accepted change, once a checkpoint holds the
            state they describe: after the restore, or, when the config changed, after
            the first save with the new config (a kill before it leaves the old record,
            which still matches every checkpoint)."""
            write_text_atomic(os.path.join(workdir, "config.json"), config.to_json(indent=2))
            resume.write_record(workdir, dataset)
            if found:
                resume.record_changes(workdir, start, found, note)
                print(f"Config changed on resume (recorded in {resume.HISTORY}): {found}")

        if not found:
            write_record()
        state = replicate(mesh, state)  # and the data (in the loop): one copy per device
        loop = _Loop(config, run_chunk, dataset, train_key, hyper, ckpt, timings, mesh)
        with StopOnSignal() as stop:
            state = loop.run(
                state, validate, objective.progress, stop, after_first_save=found and write_record
            )
        if stop.signum is not None:  # it came during the last save: training is complete
            raise Interrupted(
                stop.signum,
                f"stopped by {signal.Signals(stop.signum).name} after training ended (step "
                f"{int(state.step)}, saved in {ckpt.directory}); run the same command again "
                "to evaluate",
            )
    finally:
        ckpt.close()
    _check_skipped(config, workdir, state)
    return graphdef_eval, full_state(state.params, state.model_state)


def _check_skipped(config, workdir: str, state) -> None:
    """A run that skipped more than train.max_nonfinite_fraction of its steps learned too
    little to be reported: NonFiniteLossError."""
    skipped, total = int(state.nonfinite_steps), max(int(state.step), 1)
    limit = config.train.max_nonfinite_fraction
    if skipped / total > limit:
        raise NonFiniteLossError(
            f"{skipped} of the {total} training steps in {workdir} were skipped as non-finite "
            f"(more than train.max_nonfinite_fraction={limit:g}); the model is not trained. "
            "Fix: lower train.learning_rate, set train.grad_clip_norm, or check the data"
        )


class StopOnSignal:
    """SIGINT/SIGTERM during training: finish the chunk in flight, save a checkpoint, then
    raise Interrupted. A second signal stops at once (KeyboardInterrupt)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:  # at the next Python instruction: a compile or a
            raise Interrupted(  # chunk already running on the device finishes first
                signum,
                f"stopped at once by a second {signal.Signals(signum).name}; the newest "
                "checkpoint in the workdir is intact: run the same command again to resume",
            )
        self.signum = signum
        print(
            f"\n{signal.Signals(signum).name}: stopping after the steps in flight and saving a "
            "checkpoint (send it again to stop sooner, without saving)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc):
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        return False


class _Loop:
    """Chunks of steps until train.num_steps: run, guard, validate, log, checkpoint."""

    def __init__(self, config, run_chunk, dataset, train_key, hyper, ckpt, timings, mesh):
        self.config, self.run_chunk, self.dataset = config, run_chunk, dataset
        self.train_key, self.hyper, self.ckpt, self.timings = train_key, hyper, ckpt, timings
        self.mesh = mesh

    def _indices(self, step: int) -> np.ndarray:
        tc, n_train = self.config.train, len(self.dataset.train_x)
        n = min(tc.log_every - step % tc.log_every, tc.num_steps - step)
        return batch_indices(n_train, self.config.data.batch_size, self.config.seed, step, n)

    def _data(self, resident, idx: np.ndarray):
        """(device data, index rows into it) for the chunk of index rows `idx` [n, B]: the
        training split placed once (`resident`), or, for a lazy split (dsprites), the
        chunk's images rendered on the host, always log_every × B of them (a short chunk
        is padded) so that the step compiles once."""
        if resident is not None:
            return resident, jnp.asarray(idx)
        padded = np.zeros((self.config.train.log_every, idx.shape[1]), idx.dtype)
        padded[: len(idx)] = idx
        data, rows = chunk_data(self.dataset, padded)
        return replicate(self.mesh, data), jnp.asarray(rows[: len(idx)])

    def run(self, state, validate, progress, stop=None, after_first_save=None):
        config, ckpt, timings = self.config, self.ckpt, self.timings
        tc, batch = config.train, config.data.batch_size
        metrics_path = os.path.join(os.path.dirname(ckpt.directory), "metrics.jsonl")
        resident = None  # the whole training split on the device, unless it is lazy
        if not is_lazy(self.dataset.train_x):
            resident = replicate(
                self.mesh, {"image": self.dataset.train_x, "label": self.dataset.train_y}
            )
        step = int(state.step)
        first_chunk = None  # (its step, data, rows): placed for compiling, used once after
        if step < tc.num_steps:  # compile once, ahead of the first chunk, and time it
            first_chunk = (step, *self._data(resident, self._indices(step)))
            seconds = self.run_chunk.compile(state, *first_chunk[1:], self.train_key, self.hyper)
            timings.add("compile train step", seconds)
        last_saved = ckpt.latest_step()
        t0, done_at_t0 = time.time(), step
        while step < tc.num_steps:
            idx = self._indices(step)
            n = len(idx)
            t_chunk, first = time.time(), step
            with timings.phase("train steps"):
                if first_chunk is not None and first_chunk[0] == step:
                    train_data, rows = first_chunk[1:]  # not rendered or placed twice
                else:
                    train_data, rows = self._data(resident, idx)
                first_chunk = None
                state, metrics = self.run_chunk(state, train_data, rows, self.train_key, self.hyper)
                metrics = {k: np.asarray(v).tolist() for k, v in jax.device_get(metrics).items()}
            step = int(state.step)
            rate = n * batch / max(time.time() - t_chunk, 1e-9)
            streak = metrics.pop("max_nonfinite_streak")
            end = first + metrics.pop("max_nonfinite_streak_end")  # the run's last step
            if streak >= tc.max_nonfinite_steps:
                where = (
                    f"step {last_saved} in {ckpt.directory}" if last_saved is not None else "none"
                )
                raise NonFiniteLossError(
                    f"loss was non-finite for {streak} consecutive steps "
                    f"({end - streak + 1}..{end}); those updates were skipped. Last good "
                    f"checkpoint: {where}. Fix: lower "
                    "train.learning_rate, set train.grad_clip_norm, or check the data."
                )
            stopping = any_process(stop is not None and stop.signum is not None)
            crossed = tc.eval_every and step // tc.eval_every > first // tc.eval_every
            if validate is not None and (crossed or step == tc.num_steps) and not stopping:
                with timings.phase("validation ELBO"):
                    metrics.update(validate(full_state(state.params, state.model_state)))
            elapsed = time.time() - t0
            record = {
                "step": step,
                **metrics,
                "nonfinite_steps": int(state.nonfinite_steps),
                "examples_per_sec": rate,
                "elapsed_sec": elapsed,
            }
            append_line(metrics_path, record)
            eta = elapsed / max(step - done_at_t0, 1) * (tc.num_steps - step)
            print(_progress_line(step, tc.num_steps, metrics, progress, rate, eta), flush=True)
            stopping = any_process(stop is not None and stop.signum is not None)
            if step % tc.checkpoint_every == 0 or step == tc.num_steps or stopping:
                with timings.phase("checkpoints"):
                    ckpt.save(step, state)
                last_saved = step
                if after_first_save:
                    after_first_save()
                    after_first_save = None
            if stopping:  # a signal here, or on another process of a multi-host run
                signum = stop.signum or signal.SIGTERM
                raise Interrupted(
                    signum,
                    f"stopped by {signal.Signals(signum).name} at step {step}; checkpoint "
                    f"saved in {ckpt.directory}. Run the same command again to resume",
                )
        return state


def _progress_line(step, num_steps, metrics: dict, keys, rate: float, eta: float) -> str:
    """The loss, the objective's progress metrics and any validation value just measured."""
    parts = [f"step {step:>6}/{num_steps}", f"loss {metrics['loss']:9.3f}"]
    shown = [*keys, *(f"val_{k}" for k in keys[:1])]
    parts += [f"{k} {metrics[k]:9.3f}" for k in shown if k in metrics]
    parts += [f"{rate:9,.0f} ex/s", f"ETA {format_seconds(eta)}"]
    return " | ".join(parts)
