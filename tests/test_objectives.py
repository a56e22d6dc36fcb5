"""Objectives read their Context: a KL warm-up by steps uses the step, one by epochs uses
the step, the batch size and the training-set size N, both through the CLI."""

import json
import os
import subprocess

import numpy as np
import pytest

from tests.helpers import main_command
from vae_jax.config_lib import apply_runlocal, base_config
from vae_jax.data import load_dataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _train(tmp_path, *overrides):
    workdir = tmp_path / "run"
    quick = {"data.name": "synthetic", "eval.diagnostics": False, "eval.autoencoder_steps": 0}
    command = [*main_command(workdir, quick), *overrides]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(workdir / "metrics.jsonl") as f:
        return [json.loads(line) for line in f], done.stdout


def _chunk_means(weight, steps=40, every=10):
    """The logged value is the mean over the chunk's steps s (0-based) of the weight."""
    return [
        float(np.mean([weight(s) for s in range(a, a + every)])) for a in range(0, steps, every)
    ]


@pytest.mark.parametrize("how", ["steps", pytest.param("epochs", marks=pytest.mark.slow)])
def test_kl_warmup_reads_the_step_and_n_through_the_cli(tmp_path, how):
    beta = 2.0
    c = apply_runlocal(base_config())  # the run's batch size, and N after the auto val split
    c.data.name = "synthetic"
    n, b = len(load_dataset(c.data).train_x), c.data.batch_size
    if how == "steps":
        flag, weight = "kl_warmup_steps=25", lambda s: beta * min(1.0, s / 25)
    else:  # 0.5 epochs of N examples in batches of B
        flag, weight = "kl_warmup_epochs=0.5", lambda s: beta * min(1.0, s * b / n / 0.5)
    records, stdout = _train(
        tmp_path, f"--config.objective.elbo.{flag}", f"--config.hyper.beta={beta}"
    )
    np.testing.assert_allclose([r["beta"] for r in records], _chunk_means(weight), rtol=1e-5)
    assert records[-1]["beta"] == pytest.approx(beta)  # warmed up by the last chunk
    first_step = next(ln for ln in stdout.splitlines() if ln.startswith("step "))
    assert "beta" in first_step  # the progress line shows what the objective logs


@pytest.mark.slow  # ~14 s; `make test-slow`
def test_without_warmup_there_is_no_beta_metric(tmp_path):
    records, stdout = _train(tmp_path)
    assert all("beta" not in r for r in records)
    assert " beta " not in stdout
