"""End-to-end evaluation: a finished run writes every figure, eval.json and a report that
embeds them all; `python -m vae_jax.evaluate` re-evaluates a checkpoint reproducibly."""

import base64
import json
import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from tests.helpers import tiny_config
from vae_jax.experiment import run as train_and_evaluate

EXPECTED_FIGURES = {
    "reconstructions.png",
    "samples.png",
    "interpolation_linear.png",
    "interpolation_slerp.png",
    "traversals.png",
    "manifold.png",
    "latent_arithmetic.png",
    "latent_scatter.png",
    "training_curves.png",
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("run"))
    c = tiny_config(
        **{
            "eval.diagnostics": True,
            "eval.num_figure_examples": 8,
            "eval.num_importance_samples": 20,
            "eval.loglik_chunk": 10,
            "eval.loglik_examples": 16,
            "eval.loglik_batch_size": 16,
            "eval.fd_num_examples": 64,
            "eval.classifier_steps": 30,
            "eval.classifier_dir": str(tmp_path_factory.mktemp("cache")),
            "eval.autoencoder_steps": 20,
            "eval.arithmetic_source": 0,
            "eval.arithmetic_target": 1,
        }
    )
    summary = train_and_evaluate(c, workdir)
    return workdir, summary


def test_run_writes_all_figures_and_numbers(finished_run):
    workdir, summary = finished_run
    pngs = {f for f in os.listdir(workdir) if f.endswith(".png")}
    assert pngs == EXPECTED_FIGURES
    for name in pngs:
        with Image.open(os.path.join(workdir, name)) as img:
            img.verify()
    with open(os.path.join(workdir, "eval.json")) as f:
        results = json.load(f)
    assert set(results) >= {
        "elbo",
        "log_likelihood",
        "collapse",
        "sample_quality",
        "autoencoder_baseline",
    }
    ll = results["log_likelihood"]
    assert ll["num_importance_samples"] == 20 and ll["num_examples"] == 16
    assert ll["log_likelihood_nats"] >= ll["elbo_same_examples_nats"] - 1.0  # IS tightens it
    assert len(results["collapse"]["kl_per_dim"]) == 4
    assert results["sample_quality"]["fd_samples"] > 0
    assert results["autoencoder_baseline"]["test_kl_nats"] == 0.0
    assert summary["collapse_verdict"] == results["collapse"]["verdict"]


def test_report_embeds_every_figure_and_the_verdict(finished_run):
    workdir, summary = finished_run
    with open(os.path.join(workdir, "report.html"), encoding="utf-8") as f:
        page = f.read()
    embedded = re.findall(
        r'<figure id="([^"]+)"><img alt="[^"]+" src="data:image/png;base64,'
        r'([A-Za-z0-9+/=]+)"',
        page,
    )
    assert {name for name, _ in embedded} == EXPECTED_FIGURES
    for name, data in embedded:
        with open(os.path.join(workdir, name), "rb") as f:
            assert base64.b64decode(data) == f.read()
    assert summary["collapse_verdict"] in page
    assert "Importance-sampled log-likelihood" in page and "not Inception FID" in page


def test_evaluate_cli_is_reproducible(finished_run):
    workdir, _ = finished_run
    cmd = [
        sys.executable,
        "-m",
        "vae_jax.evaluate",
        f"--workdir={workdir}",
        "--num_importance_samples=30",
    ]
    outputs = []
    for _ in range(2):
        subprocess.run(cmd, check=True, capture_output=True, timeout=600)
        with open(os.path.join(workdir, "eval.json")) as f:
            outputs.append(json.load(f))
    assert outputs[0]["log_likelihood"]["num_importance_samples"] == 30
    assert outputs[0] == outputs[1]


def test_evaluate_cli_without_checkpoint_fails_clearly(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vae_jax.evaluate", f"--workdir={tmp_path}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2
    assert "config.json not found" in proc.stderr


def test_evaluate_cli_rejects_a_nonpositive_k(tmp_path):
    cmd = [sys.executable, "-m", "vae_jax.evaluate", f"--workdir={tmp_path}"]
    proc = subprocess.run(
        [*cmd, "--num_importance_samples=0"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: --num_importance_samples=0 is invalid: must be ≥ 1 (or omitted)"
    ]
