"""Run a sweep: the product of --sweep axes, each group of members that differ only in
traced values (hyper.*, seed) trained as one vmapped program, then each member evaluated
into its own subfolder, and a summary table.

    python -m vae_jax.sweep --config=experiments/configs/beta_sweep.py --workdir=runs/beta \
        [--sweep=hyper.beta=0.25,0.5,1,2,4,8] [--sweep=seed=0,1,2]

Without --sweep, the config's own `sweep` field gives the axes. Members get no autoencoder
baseline. Writes SWEEP/MEMBER/{config.json, metrics.jsonl, checkpoints/, eval.json,
summary.json, report.html, figures} and SWEEP/{sweep.json, sweep.md}.
"""

import os
import signal
import sys

if __name__ == "__main__":  # Ctrl-C during the imports below (seconds) ends quietly
    signal.signal(signal.SIGINT, lambda *_: sys.exit(130))  # run_cli takes over after

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from vae_jax import config_check, platform  # noqa: E402
from vae_jax import workdir as workdirs  # noqa: E402
from vae_jax.assess import evaluate_run  # noqa: E402
from vae_jax.cli import run_cli  # noqa: E402
from vae_jax.data import load_dataset  # noqa: E402
from vae_jax.errors import ConfigError  # noqa: E402
from vae_jax.evaluate.suite import summary_of  # noqa: E402
from vae_jax.files import write_json_atomic  # noqa: E402
from vae_jax.progress import Timings  # noqa: E402
from vae_jax.sweep import figures as figures_lib  # noqa: E402
from vae_jax.sweep import report as sweep_report  # noqa: E402
from vae_jax.sweep import summary  # noqa: E402
from vae_jax.sweep.loop import train_members  # noqa: E402
from vae_jax.sweep.spec import expand, group, parse_axes  # noqa: E402

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Path to a config file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Folder of the sweep: one subfolder per member.")
flags.DEFINE_multi_string("sweep", [], "FIELD=V1,V2,... (several flags: their product).")
flags.mark_flags_as_required(["config", "workdir"])


def run_sweep(config, root: str, specs: list[str]) -> list[dict]:
    """Train and evaluate every member; write the summary. Returns its rows."""
    config_check.validate_config(config)
    axes = parse_axes(specs or list(config.sweep), config)
    if any(field.startswith("data.") for field, _ in axes):
        raise ConfigError("data.* fields cannot be swept (one data set per sweep)")
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.eval.autoencoder_steps = 0
    members = expand(config, axes)
    groups = group(members)
    platform.configure(config)
    print(platform.describe(platform.info()), flush=True)
    print(
        f"{len(members)} members in {len(groups)} group(s) of "
        + ", ".join(str(len(g)) for g in groups),
        flush=True,
    )
    timings = Timings()
    with timings.phase("load data"):
        dataset = load_dataset(config.data)
    with workdirs.hold(root):
        trained = []
        for members_of_group in groups:
            for m, out in zip(
                members_of_group,
                train_members(members_of_group, root, dataset, timings),
                strict=True,
            ):
                trained.append({**out, "values": m.values})
        rows = []
        for member in trained:
            results = None
            if member["failed"] is None:
                print(f"Evaluating {member['name']}", flush=True)
                results = evaluate_run(
                    member["config"],
                    member["workdir"],
                    dataset,
                    member["graphdef"],
                    member["variables"],
                    timings=timings,
                )
                write_json_atomic(
                    os.path.join(member["workdir"], "summary.json"), summary_of(results)
                )
            rows.append(summary.member_row(member, results))
        swept = [field for field, _ in axes]
        written = summary.write(root, rows, swept, {"timings": timings.seconds})
        figures = [
            (
                figures_lib.rate_distortion(os.path.join(root, "rate_distortion.png"), rows, swept),
                "Distortion −E log p(x|z) against rate KL on the test set, one point per member "
                "(Alemi et al. 2018); grey lines: equal ELBO.",
            ),
            (
                figures_lib.kl_heatmap(os.path.join(root, "kl_per_dim.png"), rows, swept),
                "KL of each latent dimension (rows, sorted by total KL) for each member; below "
                "0.01 nats a dimension is inactive.",
            ),
        ]
        figures = [(p, caption) for p, caption in figures if p]
        written += [p for p, _ in figures]
        written.append(
            sweep_report.write_report(os.path.join(root, "sweep_report.html"), rows, swept, figures)
        )
    print(summary.markdown(rows, swept), flush=True)
    for path in written:
        print(f"wrote {path}", flush=True)
    return rows


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    platform.configure(FLAGS.config)  # before JAX starts its backend
    run_cli(run_sweep, FLAGS.config, FLAGS.workdir, FLAGS.sweep)


if __name__ == "__main__":
    app.run(main)
