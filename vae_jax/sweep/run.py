"""run_sweep: every member trained (vae_jax/sweep/loop.py) and evaluated, then the summary
table, the figures and sweep_report.html. `python -m vae_jax.sweep` is its command line."""

from __future__ import annotations

import os

from vae_jax import config_check, platform
from vae_jax import workdir as workdirs
from vae_jax.assess import evaluate_run
from vae_jax.data import load_dataset
from vae_jax.errors import ConfigError
from vae_jax.evaluate.suite import summary_of
from vae_jax.files import write_json_atomic
from vae_jax.progress import Timings
from vae_jax.state import make_spec
from vae_jax.sweep import figures as figures_lib
from vae_jax.sweep import report as sweep_report
from vae_jax.sweep import summary
from vae_jax.sweep.loop import train_members
from vae_jax.sweep.spec import expand, group, parse_axes


def run_sweep(config, root: str, specs: list[str]) -> list[dict]:
    """Train and evaluate every member; write the summary. Returns its rows."""
    config_check.validate_config(config)
    axes = parse_axes(specs or list(config.sweep), config)
    if any(field == "data" or field.startswith("data.") for field, _ in axes):
        raise ConfigError("data.* fields cannot be swept (one data set per sweep)")
    config = config.copy_and_resolve_references()
    with config.unlocked():
        config.eval.autoencoder_steps = 0
    members = expand(config, axes)
    for m in members:  # every member's config, before any work
        config_check.validate_config(m.config)
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
    for m in members:
        spec = make_spec(m.config, dataset.shape, len(dataset.train_x))
        config_check.validate_for_data(m.config, spec, dataset.binary_inputs, len(dataset.test_x))
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
