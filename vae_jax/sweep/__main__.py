"""Run a sweep: the product of --sweep axes, each group of members that differ only in
traced values (hyper.*, seed) trained as one vmapped program, then each member evaluated
into its own subfolder, and a summary table.

    python -m vae_jax.sweep --config=experiments/configs/beta_sweep.py --workdir=runs/beta \
        [--sweep=hyper.beta=0.25,0.5,1,2,4,8] [--sweep=seed=0,1,2]

Without --sweep, the config's own `sweep` field gives the axes. Members get no autoencoder
baseline. Writes SWEEP/MEMBER/{config.json, metrics.jsonl, checkpoints/, eval.json,
summary.json, report.html, figures} and SWEEP/{sweep.json, sweep.md}.
"""

import signal
import sys

if __name__ == "__main__":  # Ctrl-C during the imports below (seconds) ends quietly
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))  # run_cli takes over after

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vae_jax import platform  # noqa: E402
from vae_jax.cli import run_cli  # noqa: E402
from vae_jax.sweep.run import run_sweep  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Path to a config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Folder of the sweep: one subfolder per member.")
flags.DEFINE_multi_string("sweep", [], "FIELD=V1,V2,... (several flags: their product).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    platform.configure(FLAGS.config)  # before JAX starts its backend
    run_cli(run_sweep, FLAGS.config, FLAGS.workdir, FLAGS.sweep)


if __name__ == "__main__":
    app.run(main)
