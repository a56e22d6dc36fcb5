"""vae_jax.aggregate: mean ± sample std of eval.json numbers over seeds."""

import json
import math
import subprocess
import sys

import pytest

from vae_jax.aggregate import aggregate, markdown


def _write(tmp_path, name, elbo, active, fd=None):
    d = tmp_path / name
    d.mkdir()
    results = {
        "elbo": {"test_elbo_nats": elbo},
        "collapse": {"num_active": active, "mutual_info": {"lower_nats": 9.0}},
    }
    if fd is not None:
        results["sample_quality"] = {"fd_samples": fd}
    (d / "eval.json").write_text(json.dumps(results))
    return str(d)


def test_mean_and_sample_std_over_runs(tmp_path):
    dirs = [
        _write(tmp_path, "seed0", -237.5, 9, fd=40.0),
        _write(tmp_path, "seed1", -237.9, 10),
        _write(tmp_path, "seed2", -237.1, 9, fd=44.0),
    ]
    table = aggregate(dirs)
    row = table["test ELBO (nats)"]
    assert row["values"] == [-237.5, -237.9, -237.1]
    assert row["mean"] == pytest.approx(-237.5)
    assert row["std"] == pytest.approx(0.4)  # ddof = 1: sqrt((0 + 0.16 + 0.16) / 2)
    assert table["active units"]["std"] == pytest.approx(math.sqrt(1 / 3))
    fd = table["Fréchet distance, samples"]  # seed1 lacks it: its column stays empty
    assert fd["values"] == [40.0, None, 44.0] and fd["mean"] == 42.0 and fd["num_runs"] == 2
    assert "log p(x), importance sampled (nats)" not in table
    text = markdown(table, dirs)
    assert "| test ELBO (nats) | -237.50 | -237.90 | -237.10 | -237.50 ± 0.40 |" in text
    assert "| Fréchet distance, samples | 40.00 | — | 44.00 | 42.00 ± 2.83 (of 2) |" in text


def test_cli_names_a_missing_run(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vae_jax.aggregate", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "nope/eval.json not found" in proc.stderr


def test_runs_with_different_k_are_flagged(tmp_path):
    dirs = []
    for name, k, ll in (("a", 1000, -234.0), ("b", 5000, -233.8)):
        d = tmp_path / name
        d.mkdir()
        results = {
            "elbo": {"test_elbo_nats": -237.0},
            "log_likelihood": {
                "log_likelihood_nats": ll,
                "num_importance_samples": k,
                "num_examples": 1000,
            },
        }
        (d / "eval.json").write_text(json.dumps(results))
        dirs.append(str(d))
    table = aggregate(dirs)
    row = table["log p(x), importance sampled (nats)"]
    assert row["mixed_settings"] == {"num_importance_samples": [1000, 5000]}
    assert "⚠ runs differ in num_importance_samples: [1000, 5000]" in markdown(table, dirs)
    assert table["test ELBO (nats)"]["mixed_settings"] == {}
