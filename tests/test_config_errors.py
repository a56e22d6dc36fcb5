"""Bad configs stop `train_and_evaluate` before any work, with a one-line ConfigError naming the
field and the value; the CLI turns it into exit code 2 and one line on stderr."""

import os
import subprocess
import sys

import pytest

from tests.helpers import tiny_config
from vae_jax.config_check import ConfigError
from vae_jax.experiment import run as train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

BAD = {
    "negative_beta": ({"hyper.beta": -1.0}, "hyper.beta", "-1.0"),
    "zero_latent_dim": ({"model.latent_dim": 0}, "model.latent_dim", "0"),
    "unknown_net": ({"model.net": "transformer"}, "model.net", "'transformer'"),
    "unknown_likelihood": ({"model.likelihood": "poisson"}, "model.likelihood", "'poisson'"),
    "unknown_data": ({"data.name": "cifar10"}, "data.name", "'cifar10'"),
    "batch_larger_than_data": (
        {"data.synthetic_size": 50, "data.val_size": 10, "data.batch_size": 64},
        "data.batch_size",
        "64",
    ),
    "conv_cannot_take_size": (
        {"model.net": "conv", "data.image_size": 30},
        "model.net",
        "'conv'",
    ),
    "checkpoint_not_multiple_of_log": (
        {"train.log_every": 10, "train.checkpoint_every": 25},
        "train.checkpoint_every",
        "25",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_raises_before_writing(tmp_path, case):
    overrides, field, value = BAD[case]
    workdir = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        train_and_evaluate(tiny_config(**overrides), str(workdir))
    message = str(info.value)
    assert f"config.{field}={value}" in message, message
    assert "\n" not in message
    if case == "conv_cannot_take_size":
        assert "30" in message
    assert not workdir.exists() or os.listdir(workdir) == []


def _run_main(config: str, workdir, *extra: str) -> subprocess.CompletedProcess:
    """`python -m vae_jax.main` with experiments/configs/`config`, in the venv that runs pytest."""
    cmd = [sys.executable, "-m", "vae_jax.main", f"--config=experiments/configs/{config}"]
    return subprocess.run(
        [*cmd, f"--workdir={workdir}", *extra],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_bad_beta_exits_2_with_one_line(tmp_path):
    workdir = tmp_path / "cli"
    proc = _run_main("fashion_mnist_mlp.py:runlocal", workdir, "--config.hyper.beta=-1")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and "hyper.beta" in lines[0] and "-1" in lines[0]
    assert not workdir.exists() or os.listdir(workdir) == []


CLI_BAD = {
    "argument_without_value": (":beta", [], "config argument 'beta' needs a value"),
    "unknown_argument": (":gamma=2", [], "unknown config argument 'gamma'"),
    "misspelt_field": ("", ["--config.model.nett=3"], 'Did you mean "net" instead of "nett"?'),
    "wrong_type": ("", ["--config.hyper.beta=abc"], "could not convert string to float"),
    "missing_file": (None, [], "config file experiments/configs/nope.py not found"),
}


@pytest.mark.parametrize("case", sorted(CLI_BAD))
def test_cli_bad_flags_exit_2_with_one_line(tmp_path, case):
    arg, extra, expected = CLI_BAD[case]
    config = "nope.py" if arg is None else f"fashion_mnist_mlp.py{arg}"
    workdir = tmp_path / "cli"
    proc = _run_main(config, workdir, *extra)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], lines
    assert not workdir.exists()
