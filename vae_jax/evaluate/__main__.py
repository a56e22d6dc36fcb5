"""Evaluate the latest checkpoint of any finished or interrupted run.

    python -m vae_jax.evaluate --workdir=runs/fashion_mnist_mlp [--num_importance_samples=5000]

Reads the run's config.json, restores its newest checkpoint (and the autoencoder baseline's,
if the run trained one), and writes eval.json, the figures and report.html into the workdir.
"""

import os
import signal
import sys

if __name__ == "__main__":  # Ctrl-C during the imports below (seconds) ends quietly
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))  # run_cli takes over after

from absl import app, flags, logging  # noqa: E402

from vae_jax import checkpoint, platform  # noqa: E402
from vae_jax import workdir as workdirs  # noqa: E402
from vae_jax.assess import evaluate_run  # noqa: E402
from vae_jax.cli import run_cli  # noqa: E402
from vae_jax.config_check import ConfigError  # noqa: E402
from vae_jax.config_lib import autoencoder_config, load_saved_config  # noqa: E402
from vae_jax.data import DataError, load_dataset  # noqa: E402
from vae_jax.evaluate.suite import summary_lines, written_lines  # noqa: E402
from vae_jax.mesh import evaluation_mesh, replicate  # noqa: E402
from vae_jax.model import full_state  # noqa: E402
from vae_jax.progress import Timings  # noqa: E402
from vae_jax.state import abstract_setup, make_objective, make_spec  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "A run's folder (holds config.json and checkpoints/).")
flags.DEFINE_integer("num_importance_samples", None, "K for log p(x); default: the config's.")
flags.mark_flag_as_required("workdir")


def restore_params(config, workdir: str, data_shape, num_train: int):
    """(graphdef, variables, step) of the newest checkpoint in workdir; variables are the
    params and the model state together (model.full_state)."""
    ckpt = checkpoint.Checkpointer(workdir, read_only=True)  # creates and moves nothing
    try:
        if ckpt.latest_step() is None:
            raise DataError(
                f"no checkpoint in {ckpt.directory}: train first (python -m vae_jax.main)"
            )
        graphdef, template = abstract_setup(config, data_shape, num_train)
        step, state = ckpt.restore_newest(template)
    finally:
        ckpt.close()
    return graphdef, full_state(state.params, state.model_state), step


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    run_cli(evaluate, FLAGS.workdir, FLAGS.num_importance_samples)


def evaluate(workdir: str, k: int | None) -> None:
    if k is not None and k < 1:
        raise ConfigError(f"--num_importance_samples={k} is invalid: must be ≥ 1 (or omitted)")
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise DataError(f"{path} not found: --workdir must be a folder written by a run")
    config = load_saved_config(path)
    if k is not None and not config.eval.diagnostics:
        raise ConfigError(
            f"--num_importance_samples={k} cannot apply: this run has eval.diagnostics=False, "
            "so no log p(x) is estimated; omit the flag"
        )
    if checkpoint.latest_step(workdir) is None:
        raise DataError(
            f"no checkpoint in {os.path.join(workdir, 'checkpoints')}: train first "
            "(python -m vae_jax.main)"
        )
    platform.configure(config)  # before JAX starts its backend
    dataset = load_dataset(config.data)
    num_train = len(dataset.train_x)
    with workdirs.hold(workdir):  # evaluation writes into the workdir: no run may be training
        graphdef, params, step = restore_params(config, workdir, dataset.shape, num_train)
        params = replicate(evaluation_mesh(config), params)  # batches split as in training
        spec = make_spec(config, dataset.shape, num_train)
        if k is not None and not make_objective(config, spec).bound:
            raise ConfigError(
                f"--num_importance_samples={k} cannot apply: the objective "
                f"'{config.objective.name}' is not a bound on log p(x), so none is estimated; "
                "omit the flag"
            )
        print(f"Evaluating {workdir} at step {step}", flush=True)
        timings = Timings()
        print(platform.describe(platform.info()), flush=True)
        baseline = None
        ae_dir = os.path.join(workdir, "autoencoder")
        if os.path.isdir(os.path.join(ae_dir, "checkpoints")):
            ae_graphdef, ae_params, _ = restore_params(
                autoencoder_config(config), ae_dir, dataset.shape, num_train
            )
            baseline = (ae_graphdef, ae_params)
        results = evaluate_run(
            config,
            workdir,
            dataset,
            graphdef,
            params,
            baseline=baseline,
            num_importance_samples=k,
            step=step,
            timings=timings,
        )
    for line in summary_lines(results):
        print(line)
    for line in written_lines(workdir, results):
        print(line)


if __name__ == "__main__":
    app.run(main)
