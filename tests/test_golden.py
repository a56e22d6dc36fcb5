"""A refactor must not move a number: a small run on synthetic data, with every metric on,
reproduces the numbers recorded in tests/golden/tiny_run.json. They were recorded before the
house refactor of the model zoo issue (which left them bit-identical) and recorded again
when log p(x) stopped depending on its chunk size (each sample its own key: a deliberate
change of the estimate's random draws, not of its maths).

Bit-identical on the machine that recorded them; elsewhere the order of floating-point
reductions may differ (see README, "Reproducibility"), so the comparison allows float32
round-off carried through 40 steps of training: a relative 2e-4.
"""

import json
import os

import jax
import pytest

from tests.helpers import read_metrics, tiny_config
from vae_jax.experiment import run

GOLDEN = os.path.join(os.path.dirname(__file__), "golden", "tiny_run.json")
RTOL = 2e-4


def golden_config(classifier_dir: str):
    return tiny_config(
        **{
            "eval.diagnostics": True,
            "eval.num_figure_examples": 4,
            "eval.num_importance_samples": 20,
            "eval.loglik_chunk": 10,
            "eval.loglik_examples": 16,
            "eval.loglik_batch_size": 16,
            "eval.fd_num_examples": 64,
            "eval.classifier_steps": 30,
            "eval.classifier_dir": classifier_dir,
            "eval.autoencoder_steps": 20,
        }
    )


def selected_numbers(results: dict, workdir: str) -> dict:
    mi = results["collapse"]["mutual_info"]
    sq = results["sample_quality"]
    return {
        "train_loss": [r["loss"] for r in read_metrics(workdir)],
        "val_elbo": [r["val_elbo"] for r in read_metrics(workdir) if "val_elbo" in r],
        "test_elbo": results["elbo"]["test_elbo_nats"],
        "test_kl": results["elbo"]["test_kl_nats"],
        "log_likelihood": results["log_likelihood"]["log_likelihood_nats"],
        "kl_per_dim": results["collapse"]["kl_per_dim"],
        "num_active": results["collapse"]["num_active"],
        "mi_lower": mi["lower_nats"],
        "mi_upper_loo": mi["upper_loo_nats"],
        "fd_samples": sq["fd_samples"],
        "fd_reconstructions": sq["fd_reconstructions"],
        "fd_floor": sq["fd_reference_test_vs_val"],
        "autoencoder": results["autoencoder_baseline"]["test_elbo_nats"],
    }


def test_numbers_match_the_recorded_run(tmp_path):
    with open(GOLDEN) as f:
        golden = json.load(f)
    workdir = str(tmp_path / "run")
    # Full float32 matmuls: what the CPU does anyway, and what GPUs (TF32 by default) and
    # TPUs (bf16 passes) need for these numbers to mean the same thing there.
    with jax.default_matmul_precision("highest"):
        run(golden_config(str(tmp_path / "cache")), workdir)
    with open(os.path.join(workdir, "eval.json")) as f:
        got = selected_numbers(json.load(f), workdir)
    assert got.keys() == golden.keys()
    for key, want in golden.items():
        assert got[key] == pytest.approx(want, rel=RTOL, abs=1e-6), key
