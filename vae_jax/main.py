"""Train a VAE.

    python -m vae_jax.main --config=experiments/configs/fashion_mnist_mlp.py[:runlocal] \
        --workdir=runs/fmnist [--config.hyper.beta=4]

Bad flags, config values and config arguments, missing or corrupt data, a loss that stays
non-finite, an unusable workdir and failures of the machine (a full disk, a device out of
memory) end in one line naming the problem and the fix (exit code 2). Ctrl-C or SIGTERM
while training saves a checkpoint and exits 130 or 143; a workdir that holds a checkpoint
resumes from it.
"""

import os
import signal
import sys

if __name__ == "__main__":  # Ctrl-C during the imports below (seconds) ends quietly
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))  # run_cli takes over after

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vae_jax import experiment, platform  # noqa: E402
from vae_jax.cli import fail as _fail  # noqa: E402
from vae_jax.cli import run_cli  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Path to a config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Folder for checkpoints, metrics and figures.")
flags.mark_flags_as_required(["config", "workdir"])


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, but a missing config file, a bad config argument or override, or
    a misspelt field ends in one line and exit code 2 instead of a traceback."""
    for arg in argv[1:]:
        if arg.startswith("--config="):
            path = arg.removeprefix("--config=").split(":", 1)[0]
            if not os.path.isfile(path):
                _fail(f"config file {path} not found; the configs are in experiments/configs/")
    try:
        return FLAGS(argv)
    except flags.Error as e:  # ml_collections wraps get_config's errors in a traceback
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        _fail(lines[-1] if any(ln.startswith("Traceback") for ln in lines) else " ".join(lines))
    except (AttributeError, KeyError, TypeError, ValueError) as e:  # e.g. a misspelt field
        detail = e
        while isinstance(detail, BaseException) and detail.args:  # unwrap AttributeError(KeyError)
            detail = detail.args[0]
        _fail(f"bad --config override: {' '.join(str(detail).split())}")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    platform.configure(FLAGS.config)  # before JAX starts its backend
    run_cli(experiment.run, FLAGS.config, FLAGS.workdir)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
