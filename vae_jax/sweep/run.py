"""run_sweep: every member trained (vae_jax/sweep/loop.py) and evaluated, then the summary
table, the figures and sweep_report.html. `python -m vae_jax.sweep` is its command line."""

from __future__ import annotations

import os

from vae_jax import config_check, distributed, platform
from vae_jax import workdir as workdirs
from vae_jax.assess import evaluate_members
from vae_jax.data import load_dataset
from vae_jax.errors import ConfigError
from vae_jax.progress import Timings
from vae_jax.state import make_spec
from vae_jax.sweep import figures as figures_lib
from vae_jax.sweep import report as sweep_report
from vae_jax.sweep import summary
from vae_jax.sweep.loop import stack, train_members
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
    distributed.initialize()
    distributed.refuse_many("a sweep")
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
        results = {}
        for members_of_group in _by_group(trained, groups):
            done = [t for t in members_of_group if t["failed"] is None]
            if not done:
                continue
            names = ", ".join(t["name"] for t in done)
            print(f"Evaluating {len(done)} member(s) together: {names}", flush=True)
            evaluated = evaluate_members(
                [t["config"] for t in done],
                [t["workdir"] for t in done],
                dataset,
                done[0]["graphdef"],
                stack([t["variables"] for t in done]),
                timings=timings,
            )
            for t, r in zip(done, evaluated, strict=True):
                results[t["name"]] = r
        rows = [summary.member_row(t, results.get(t["name"])) for t in trained]
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
                "KL to N(0, 1) of each latent dimension, averaged over the test set, for each "
                "member (columns); each member's dimensions are ranked by their own KL, "
                "largest at the top. Near 0 nats a dimension carries no information (the "
                "table's active units use Burda et al.'s covariance test instead).",
            ),
            (
                figures_lib.disentanglement_vs_swept(
                    os.path.join(root, "disentanglement.png"), rows, swept
                ),
                "The five disentanglement metrics of each member's encoder mean μ(x) against "
                "the swept value ("
                + "; ".join(summary.protocol_names(rows))
                + "; sizes in sweep.json).",
            ),
            (
                figures_lib.reconstruction_vs_disentanglement(
                    os.path.join(root, "reconstruction_vs_disentanglement.png"), rows, swept
                ),
                "Reconstruction log-likelihood E_q log p(x|z) on the test set against each "
                "disentanglement metric: the trade-off that β controls.",
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


def _by_group(trained: list[dict], groups) -> list[list[dict]]:
    """The trained members' dicts, in the groups they trained in."""
    out, start = [], 0
    for g in groups:
        out.append(trained[start : start + len(g)])
        start += len(g)
    return out
