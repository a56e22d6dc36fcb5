"""End-to-end evaluation: a finished run writes every figure, eval.json and a report that
embeds them all; `python -m vae_jax.evaluate` re-evaluates a checkpoint reproducibly."""

import base64
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
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
    assert len(results["collapse"]["kl_per_dim"]) == 4
    sq = results["sample_quality"]
    # 40 steps on blobs: the model's images are further from the test set than a second
    # real sample (80 held-out validation images) is.
    assert sq["num_reference_pool"] == 80 and sq["num_reference_examples"] == 64
    assert 0 < sq["fd_reference_test_vs_val"] < min(sq["fd_samples"], sq["fd_reconstructions"])
    assert results["autoencoder_baseline"]["test_kl_nats"] == 0.0
    assert summary["collapse_verdict"] == results["collapse"]["verdict"]
    assert summary["mutual_info"] == results["collapse"]["mutual_info"]
    mi = results["collapse"]["mutual_info"]
    assert mi["num_examples"] == 32 and mi["lower_nats"] <= mi["log_n"] + 1e-9
    assert mi["mean_kl_nats"] == pytest.approx(results["elbo"]["test_kl_nats"], rel=1e-5)


def _restore(workdir, config, shape=(28, 28, 1)):
    from vae_jax.checkpoint import Checkpointer
    from vae_jax.model import full_state
    from vae_jax.state import setup

    graphdef, template, *_ = setup(config, shape)
    ckpt = Checkpointer(workdir)
    try:
        state = ckpt.restore(template)
    finally:
        ckpt.close()
    return graphdef, full_state(state.params, state.model_state)


def test_log_likelihood_reads_the_binary_test_draw_with_its_own_key(finished_run):
    """Wiring: eval.json's log p(x) is the estimator on the first 16 images of the fixed
    binary test draw with the "loglik" key stream, and its ELBO on the same images uses the
    "elbo" stream; the estimate tightens that bound."""
    from vae_jax.data import load_dataset
    from vae_jax.evaluate.elbo import dataset_elbo
    from vae_jax.evaluate.loglik import dataset_log_likelihood
    from vae_jax.evaluate.suite import eval_key

    workdir, _ = finished_run
    config = _config(workdir)
    with open(os.path.join(workdir, "eval.json")) as f:
        ll = json.load(f)["log_likelihood"]
    graphdef, params = _restore(workdir, config)
    images = load_dataset(config.data).test_x[:16]
    assert set(np.unique(images)) <= {0, 255}
    values = dataset_log_likelihood(
        graphdef,
        params,
        images,
        eval_key(config, "loglik"),
        num_samples=20,
        chunk_size=10,
        batch_size=16,
    )
    assert ll["log_likelihood_nats"] == pytest.approx(values.mean(), rel=1e-6)
    elbo = dataset_elbo(graphdef, params, images, eval_key(config, "elbo"), batch_size=16)
    assert ll["elbo_same_examples_nats"] == pytest.approx(elbo["elbo"].mean(), rel=1e-6)
    assert ll["log_likelihood_nats"] > ll["elbo_same_examples_nats"]


def _config(workdir):
    import ml_collections

    with open(os.path.join(workdir, "config.json")) as f:
        return ml_collections.ConfigDict(json.load(f))


def test_figures_and_reconstructions_encode_the_binary_test_draw(
    finished_run, tmp_path, monkeypatch
):
    """Every figure and the reconstruction Fréchet distance encode the same fixed binary draw
    of the test images that the test ELBO uses; the grey originals are only shown."""
    from vae_jax import assess
    from vae_jax.data import load_dataset
    from vae_jax.evaluate import frechet
    from vae_jax.figures import latent, samples

    workdir, _ = finished_run
    config = _config(workdir)
    dataset = load_dataset(config.data)
    assert not set(np.unique(dataset.test_raw)) <= {0, 255}  # the originals are grey
    encoded = []
    spy = lambda original: lambda *a, **k: (encoded.append(np.asarray(a[2])), original(*a, **k))[1]
    monkeypatch.setattr(latent, "encode_means", spy(latent.encode_means))
    monkeypatch.setattr(frechet, "_reconstruct_batch", spy(frechet._reconstruct_batch))
    reconstructed = []
    original_recon = samples.reconstructions
    monkeypatch.setattr(
        samples,
        "reconstructions",
        lambda *a, **k: reconstructed.append(original_recon(*a, **k)) or reconstructed[-1],
    )
    graphdef, params = _restore(workdir, config)
    out = str(tmp_path)
    shutil.copy(os.path.join(workdir, "metrics.jsonl"), out)
    results = assess.evaluate_run(config, out, dataset, graphdef, params)
    assert len(encoded) >= 5
    for images in encoded:
        assert set(np.unique(images)) <= {0, 255}, "a figure encoded grey images"
    rows = reconstructed[0]  # grey originals, encoded inputs, reconstructions
    n = config.eval.num_figure_examples
    np.testing.assert_array_equal(rows[0], dataset.test_raw[:n] / np.float32(255))
    np.testing.assert_array_equal(rows[1], dataset.test_x[:n] / np.float32(255))
    captions = {f["file"]: f["caption"] for f in results["figures"]}
    assert "binary" in captions["reconstructions.png"] and "grey" in captions["reconstructions.png"]
    for name in ("traversals.png", "interpolation_linear.png", "latent_arithmetic.png"):
        assert "binary" in captions[name], name


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
    # A headline card with units, bar charts instead of lists, details folded away.
    head = page[: page.index("<h2>Figures</h2>")]
    for text in ("Test ELBO", "nats/example", "bits/dim", "Active units", "I(x; z)"):
        assert text in head, text
    assert head.count("<svg") == 2  # KL per dimension, activity per dimension
    assert "<details><summary>Config</summary>" in page
    assert "kl_per_dim" not in head and "test_elbo_nats" not in head  # no raw key names
    details = page[page.index("<h2>Details</h2>") : page.index("<summary>Raw eval.json")]
    for raw in ("likelihood_kind", "bounds_crossed", "mutual_info", "test_elbo_nats"):
        assert f"<th>{raw}</th>" not in details, raw  # every row of the tables is labelled
    baseline = details[details.index("Plain autoencoder baseline") :]
    assert "log p(x | z = μ(x)) (not a bound)" in baseline and "Test ELBO" not in baseline


def _assert_same(a, b, path=""):
    """Equal trees, floats to a relative 1e-6 (float32 round-off)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}/{i}")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9), (path, a, b)
    else:
        assert a == b, (path, a, b)


def test_evaluate_cli_reproduces_the_end_of_training_evaluation(finished_run):
    """`python -m vae_jax.evaluate` on the finished run rewrites eval.json with exactly the
    numbers the end of training wrote, and prints the same short summary, not the JSON."""
    workdir, _ = finished_run
    path = os.path.join(workdir, "eval.json")
    with open(path) as f:
        at_training = json.load(f)
    proc = subprocess.run(
        [sys.executable, "-m", "vae_jax.evaluate", f"--workdir={workdir}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    with open(path) as f:
        again = json.load(f)
    # The numbers are the same, to float32 round-off: this test process fakes 2 CPU devices,
    # so training's evaluation split its batches over both; the CLI's process has 1. The
    # platform record may differ only in the device count.
    platforms = [r["run"].pop("platform") for r in (again, at_training)]
    _assert_same(again, at_training)
    assert {k: v for k, v in platforms[0].items() if k != "device_count"} == {
        k: v for k, v in platforms[1].items() if k != "device_count"
    }
    from vae_jax.evaluate.suite import summary_lines

    out = proc.stdout.splitlines()
    for line in summary_lines(at_training):
        assert line in out, line
    assert f"wrote {path}" in out and len(out) < 40
    timings = json.loads(open(os.path.join(workdir, "summary.json")).read())["timings"]
    assert timings["train steps"] > 0 and timings["eval: log p(x)"] > 0  # training's kept
    assert any("log p(x), K = 20:" in line for line in out)  # a progress line per phase


def test_evaluating_an_earlier_checkpoint_reports_its_own_validation(finished_run, tmp_path):
    """An interrupted run's log may go past its last checkpoint: evaluating step 20 must not
    quote the validation ELBO of step 40."""
    workdir = tmp_path / "copy"
    shutil.copytree(finished_run[0], workdir)
    shutil.rmtree(workdir / "checkpoints" / "40")
    shutil.rmtree(workdir / "autoencoder")
    proc = subprocess.run(
        [sys.executable, "-m", "vae_jax.evaluate", f"--workdir={workdir}"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((workdir / "eval.json").read_text())
    assert results["run"]["steps"] == 20
    assert results["validation"]["final_step"] == 20 and results["validation"]["best_step"] == 20
    assert json.loads((workdir / "summary.json").read_text())["validation"]["final_step"] == 20
    assert "validation ELBO" in proc.stdout and "at step 20 " in proc.stdout


@pytest.mark.slow  # ~29 s; `make test-slow`
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
