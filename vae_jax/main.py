"""Train a VAE.

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_mlp.py[:runlocal] \
        --workdir=runs/fmnist [--config.hyper.beta=4]

Bad configs, missing data and a loss that stays non-finite end in one line naming the
problem and the fix (exit code 2); a workdir that holds a checkpoint resumes from it.
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

from vae_jax import train
from vae_jax.config_check import ConfigError
from vae_jax.data import DataError

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Path to a config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics and figures.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    try:
        train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except (ConfigError, DataError, train.NonFiniteLossError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
