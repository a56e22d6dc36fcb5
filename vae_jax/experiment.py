"""The one place that composes a run: data → train (with a validation ELBO) → the plain
autoencoder baseline → evaluation → figures → report → summary.json.

    experiment.run(config, workdir)  # what `python -m vae_jax.main` calls

The training loop knows nothing of evaluation: it receives a `validate(params)` callback
built here. The autoencoder baseline is a sibling run in `workdir/autoencoder`, trained
here, never by evaluation.
"""

from __future__ import annotations

import os
import time

from vae_jax import config_check, distributed, platform, train
from vae_jax import workdir as workdirs
from vae_jax.assess import evaluate_run
from vae_jax.config_lib import autoencoder_config
from vae_jax.data import load_dataset
from vae_jax.evaluate.elbo import dataset_elbo
from vae_jax.evaluate.suite import eval_key, summary_lines, summary_of, written_lines
from vae_jax.files import write_json_atomic
from vae_jax.progress import Timings
from vae_jax.state import make_objective, make_spec


def make_validator(config, dataset, graphdef, *, deterministic: bool = False):
    """validate(variables) -> {"val_elbo", "val_log_px", "val_kl"}: the ELBO (L =
    eval.num_samples) on the whole validation split, with one fixed key so that successive
    values differ only by the model; for a deterministic objective (the autoencoder)
    {"val_log_px"}, log p(x|z=μ(x)). None when there is no validation split."""
    val_x = dataset.val_x
    if len(val_x) == 0:
        return None
    key = eval_key(config, "val")
    batch_size = min(config.eval.batch_size, len(val_x))

    def validate(variables) -> dict[str, float]:
        terms = dataset_elbo(
            graphdef,
            variables,
            val_x,
            key,
            num_samples=config.eval.num_samples,
            batch_size=batch_size,
            deterministic=deterministic,
        )
        names = ("log_px",) if deterministic else ("elbo", "log_px", "kl")
        return {f"val_{k}": float(terms[k].mean()) for k in names}

    return validate


def train_with_validation(config, workdir: str, dataset, timings: Timings | None = None):
    """train.train with this run's validator. Returns (graphdef, params)."""
    spec = make_spec(config, dataset.shape, len(dataset.train_x))
    config_check.validate_for_data(
        config,
        spec,
        dataset.binary_inputs,
        len(dataset.test_x),
    )
    deterministic = make_objective(config, spec).deterministic
    return train.train(
        config,
        workdir,
        dataset,
        make_validate=lambda graphdef: make_validator(
            config, dataset, graphdef, deterministic=deterministic
        ),
        timings=timings,
    )


def run(config, workdir: str) -> dict:
    """Train `config` in `workdir` (resuming from its last checkpoint), train the autoencoder
    baseline if asked, evaluate, and write summary.json. Returns the summary."""
    t_start = time.perf_counter()
    config_check.validate_config(config)
    platform.configure(config)  # a no-op once JAX's backend has started (main.py calls it first)
    distributed.initialize()  # several processes, when the launcher asks for them
    platform.require_accelerator(config)
    print(platform.describe(platform.info()), flush=True)
    timings = Timings()
    with timings.phase("load data"):
        dataset = load_dataset(config.data)
    spec = make_spec(config, dataset.shape, len(dataset.train_x))
    # Every check runs before the first write (the lock file included).
    config_check.validate_for_data(config, spec, dataset.binary_inputs, len(dataset.test_x))
    with workdirs.hold(workdir):  # one writer per workdir, from the first file to the last
        return _run(config, workdir, dataset, timings, t_start)


def _run(config, workdir: str, dataset, timings: Timings, t_start: float) -> dict:
    graphdef, params = train_with_validation(config, workdir, dataset, timings)
    baseline = None
    spec = make_spec(config, dataset.shape, len(dataset.train_x))
    if config.eval.autoencoder_steps and make_objective(config, spec).bound:
        print(
            f"Training the autoencoder baseline ({config.eval.autoencoder_steps} steps)", flush=True
        )
        with timings.phase("autoencoder baseline (training)"):
            baseline = train_with_validation(
                autoencoder_config(config), os.path.join(workdir, "autoencoder"), dataset
            )
    results = evaluate_run(
        config, workdir, dataset, graphdef, params, baseline=baseline, timings=timings
    )
    total = time.perf_counter() - t_start
    seconds = {**timings.seconds, "total": total}
    summary = summary_of(results, seconds)
    write_json_atomic(os.path.join(workdir, "summary.json"), summary)
    for line in summary_lines(results):
        print(line, flush=True)
    print("wall time by phase:\n" + timings.table(total), flush=True)
    for line in written_lines(workdir, results) if distributed.is_writer() else ():
        print(line, flush=True)
    return summary
