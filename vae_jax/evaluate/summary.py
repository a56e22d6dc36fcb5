"""The end-of-run outputs: test-set ELBO terms in summary.json, plus the core figures."""

from __future__ import annotations

import json
import math
import os

import jax
import numpy as np

from vae_jax.evaluate.elbo import dataset_elbo
from vae_jax.figures import samples as sample_figures


def bits_per_dim(nats_per_example: float, num_dims: int) -> float:
    return nats_per_example / (num_dims * math.log(2.0))


def test_elbo_summary(config, dataset, graphdef, params) -> dict:
    """ELBO, log p(x|z) and KL on the test split, in nats per example, plus bits/dim."""
    test_x = dataset.test_x
    if config.eval.max_examples:
        test_x = test_x[: config.eval.max_examples]
    key = jax.random.fold_in(jax.random.key(config.seed), 10**6)  # independent of training
    terms = dataset_elbo(
        graphdef,
        params,
        test_x,
        key,
        num_samples=config.eval.num_samples,
        batch_size=min(config.eval.batch_size, len(test_x)),
    )
    dims = int(np.prod(dataset.shape))
    elbo = float(terms["elbo"].mean())
    return {
        "test_elbo_nats": elbo,
        "test_elbo_stderr": float(terms["elbo"].std(ddof=1) / math.sqrt(len(test_x))),
        "test_log_px_nats": float(terms["log_px"].mean()),
        "test_kl_nats": float(terms["kl"].mean()),
        "test_bits_per_dim": bits_per_dim(-elbo, dims),
        "num_test_examples": len(test_x),
        "elbo_samples": config.eval.num_samples,
        "objective": config.objective.name,
        "likelihood": config.model.likelihood,
        "data": dataset.name,
        "binarization": dataset.binarization,
        "data_description": dataset.description,
        "bits_per_dim_note": (
            "negative test ELBO / (D ln 2) with D = "
            f"{dims}; for binary data this is a bound on bits/dim of a discrete model; for the "
            "gaussian likelihood it is a continuous density on [0,1]^D, not comparable with "
            "8-bit discrete bits/dim"
        ),
    }


def finalize_run(config, workdir: str, dataset, graphdef, params) -> dict:
    summary = test_elbo_summary(config, dataset, graphdef, params)
    if config.objective.name == "autoencoder":
        summary["note"] = "autoencoder: no KL term; test_elbo_nats is log p(x|μ(x)), not a bound"
    figure_key = jax.random.fold_in(jax.random.key(config.seed), 10**6 + 1)
    n = config.eval.num_figure_examples
    if n:
        sample_figures.reconstructions(
            os.path.join(workdir, "reconstructions.png"), graphdef, params, dataset.test_x, ncols=n
        )
        sample_figures.samples(
            os.path.join(workdir, "samples.png"), graphdef, params, figure_key, num=64
        )
    with open(os.path.join(workdir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(
        f"test ELBO {summary['test_elbo_nats']:.2f} nats/example "
        f"(log p(x|z) {summary['test_log_px_nats']:.2f}, KL {summary['test_kl_nats']:.2f}; "
        f"{summary['test_bits_per_dim']:.4f} bits/dim) on {summary['num_test_examples']} "
        f"{dataset.name} test examples",
        flush=True,
    )
    return summary
