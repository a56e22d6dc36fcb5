"""Every experiment config loads and validates (fast), and runs end to end through the CLI
in its `:runlocal` form on synthetic data, writing its summary and report (slow)."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vae_jax.config_check import validate_config
from vae_jax.config_lib import parse_arg

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (ROOT / "experiments" / "configs").glob("*.py"))


def _get_config(name, arg=None):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments/configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def test_there_are_configs():
    assert "fashion_mnist_mlp" in CONFIGS and len(CONFIGS) >= 4


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("arg", [None, "runlocal"])
def test_config_loads_and_validates(name, arg):
    validate_config(_get_config(name, arg))


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_config_runs_through_the_cli(name, tmp_path):
    workdir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "vae_jax.main",
        f"--config={ROOT}/experiments/configs/{name}.py:runlocal",
        f"--workdir={workdir}",
        "--config.data.name=synthetic",
        "--config.data.val_size=200",
        f"--config.eval.classifier_dir={tmp_path / 'classifier'}",
    ]
    if name == "flax_example":  # binarized_mnist is binary; synthetic blobs are grey
        command.append("--config.data.binarize=static")
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((workdir / "summary.json").read_text())
    assert summary["test_elbo_nats"] < 0
    assert (workdir / "report.html").stat().st_size > 10_000


def test_config_arguments_are_typed_and_bad_ones_are_named():
    arg = parse_arg("runlocal,beta=4,arch=conv", runlocal=False, beta=1.0, arch="mlp")
    assert arg.runlocal is True and arg.beta == 4.0 and arg.arch == "conv"
    for bad, match in [
        ("beta", "needs a value: 'beta=VALUE'"),
        ("beta=big", "must be a float"),
        ("runlocal=maybe", "must be true or false"),
        ("gamma=1", "unknown config argument 'gamma'"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_arg(bad, runlocal=False, beta=1.0, arch="mlp")
