"""Assess a trained run: measure (vae_jax/evaluate) → draw (vae_jax/figures) → write
eval.json, summary.json and report.html (vae_jax/report.py).

Used at the end of training (vae_jax/experiment.py) and by `python -m vae_jax.evaluate`;
it never trains a VAE.
"""

from __future__ import annotations

import json
import os

import jax

from vae_jax import report
from vae_jax.evaluate.suite import measure, measure_members, summary_of
from vae_jax.figures.suite import write_core_figures, write_figures
from vae_jax.files import write_json_atomic
from vae_jax.progress import Timings, maybe
from vae_jax.resume import read_history


def evaluate_run(
    config,
    workdir,
    dataset,
    graphdef,
    state,
    *,
    baseline=None,
    num_importance_samples: int | None = None,
    step: int | None = None,
    timings: Timings | None = None,
) -> dict:
    """All numbers and figures for a trained model; writes eval.json and, with the
    diagnostics, report.html. Arguments as vae_jax.evaluate.suite.measure. Returns the
    results dict (eval.json's content)."""
    results = measure(
        config,
        workdir,
        dataset,
        graphdef,
        state,
        baseline=baseline,
        num_importance_samples=num_importance_samples,
        step=step,
        timings=timings,
    )
    return finish(config, workdir, dataset, graphdef, state, results, baseline, timings)


def evaluate_members(configs, workdirs, dataset, graphdef, stacked, *, timings=None) -> list:
    """evaluate_run for the members of a sweep group, their variables stacked along a
    leading axis: the measurements vmapped over the members (measure_members), then each
    member's figures and files in its own workdir. One results dict per member."""
    every = measure_members(configs, workdirs, dataset, graphdef, stacked, timings=timings)
    return [
        finish(c, w, dataset, graphdef, _member(stacked, i), r, None, timings, own_timings=False)
        for i, (c, w, r) in enumerate(zip(configs, workdirs, every, strict=True))
    ]


def _member(stacked, i: int):
    return jax.tree.map(lambda v: v[i], stacked)


def finish(
    config, workdir, dataset, graphdef, state, results, baseline, timings, *, own_timings=True
) -> dict:
    """The figures, eval.json, report.html and summary.json of measured `results`.
    own_timings=False (a sweep member): `timings` are the whole sweep's, so summary.json
    gets none of them (sweep.json has them)."""
    history = read_history(workdir)
    if history:
        results["config_history"] = history
    print("  figures", flush=True)
    with maybe(timings, "figures"):
        if "collapse" in results:
            figs = write_figures(
                config,
                workdir,
                dataset,
                graphdef,
                state,
                results["collapse"],
                baseline,
                factors=(results.get("disentanglement") or {}).get("latent_factors"),
            )
        else:
            figs = write_core_figures(config, workdir, dataset, graphdef, state)
    results["figures"] = [{"file": os.path.basename(p), "caption": c} for p, c in figs]
    write_json_atomic(os.path.join(workdir, "eval.json"), results)
    if "collapse" in results:
        with maybe(timings, "report"):
            report.write_report(os.path.join(workdir, "report.html"), results, figs, config)
    # Phases measured now replace the same phases of an earlier summary; the others (the
    # training's, when `python -m vae_jax.evaluate` re-evaluates a run) are kept.
    path = os.path.join(workdir, "summary.json")
    if not own_timings:
        write_json_atomic(path, summary_of(results))
        return results
    seconds = _earlier_timings(path)
    seconds.update({} if timings is None else timings.seconds)
    write_json_atomic(path, summary_of(results, seconds or None))
    return results


def _earlier_timings(path: str) -> dict:
    try:
        with open(path) as f:
            return dict(json.load(f).get("timings", {}))
    except (OSError, ValueError):
        return {}
