"""Bad configs stop `train_and_evaluate` before any work, with a one-line ConfigError naming the
field and the value; the CLI turns it into exit code 2 and one line on stderr."""

import json
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
    "bernoulli_on_grey_data": (
        {"data.binarize": "none"},  # synthetic images are grey
        "model.likelihood",
        "'bernoulli'",
    ),
    "negative_val_size": ({"data.val_size": -2}, "data.val_size", "-2"),
    "accelerator_required_on_cpu": (  # CI and this suite run on the CPU
        {"train.require_accelerator": True},
        "train.require_accelerator",
        "True",
    ),
    "too_few_disentanglement_points": (
        {"eval.disentanglement_points": 50},
        "eval.disentanglement_points",
        "50",
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
    if case == "bernoulli_on_grey_data":  # names both fixes and the explicit switch
        for fix in ("data.binarize=dynamic", "continuous_bernoulli", "allow_unnormalized=True"):
            assert fix in message, message
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


def test_resume_with_another_model_is_refused_and_changes_nothing(tmp_path):
    workdir = tmp_path / "run"
    train_and_evaluate(tiny_config(**{"train.num_steps": 20}), str(workdir))
    saved = (workdir / "config.json").read_text()
    metrics = (workdir / "metrics.jsonl").read_text()
    with pytest.raises(ConfigError) as info:
        train_and_evaluate(tiny_config(**{"model.latent_dim": 8}), str(workdir))
    message = str(info.value)
    assert "with a different run: model.latent_dim: 4 -> 8" in message and "\n" not in message
    assert "new --workdir" in message and "allow_resume_changes=True" in message
    assert (workdir / "config.json").read_text() == saved
    assert (workdir / "metrics.jsonl").read_text() == metrics
    assert sorted(os.listdir(workdir / "checkpoints")) == ["20"]
    # A workdir written before a field existed resumes, at any depth: the missing field is
    # its default. A change to a part the run does not use (model.conv) does not matter.
    record = json.loads(saved)
    del record["model"]["allow_unnormalized"]
    del record["model"]["mlp"]["activation"]
    (workdir / "config.json").write_text(json.dumps(record))
    resumed = tiny_config(**{"train.num_steps": 40, "model.conv.channels": (8,)})
    train_and_evaluate(resumed, str(workdir))
    assert sorted(os.listdir(workdir / "checkpoints")) == ["20", "40"]


def test_a_run_written_by_another_version_is_refused_by_name(tmp_path):
    """Fields this version does not know (an older layout): resume and the evaluate CLI
    both stop with one line naming them, not a KeyError."""
    workdir = tmp_path / "run"
    train_and_evaluate(tiny_config(**{"train.num_steps": 20}), str(workdir))
    record = json.loads((workdir / "config.json").read_text())
    record["model"]["hidden_dims"] = [32]  # where an earlier vae_jax kept the MLP widths
    (workdir / "config.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match=r"another version of vae_jax.*\(model\.hidden_dims\)"):
        train_and_evaluate(tiny_config(), str(workdir))
    proc = subprocess.run(
        [sys.executable, "-m", "vae_jax.evaluate", f"--workdir={workdir}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "model.hidden_dims" in proc.stderr


def test_default_config_runs_on_synthetic_data():
    """The README's smoke run: `--config.data.name=synthetic` on the default config. Its
    automatic validation split (a sixth of 2000, at most 10,000) fits the small set."""
    from vae_jax.config_check import validate_config, validate_for_data
    from vae_jax.config_lib import base_config
    from vae_jax.data import load_dataset
    from vae_jax.state import make_spec

    c = base_config()
    c.data.name = "synthetic"
    validate_config(c)
    ds = load_dataset(c.data)
    assert len(ds.val_x) == 2000 // 6 and len(ds.train_x) == 2000 - 2000 // 6
    validate_for_data(c, make_spec(c, ds.shape, len(ds.train_x)), ds.binary_inputs)
    c.data.val_size = 2000  # an explicit value is honoured, and checked
    from vae_jax.data import DataError

    with pytest.raises(DataError, match="val_size=2000 leaves"):
        load_dataset(c.data)
    c.data.val_size = 100
    assert len(load_dataset(c.data).val_x) == 100


def test_allowed_unnormalized_bernoulli_is_labelled_not_a_log_likelihood(tmp_path, capsys):
    """model.allow_unnormalized=True trains a Bernoulli on grey data (pytorch/examples'
    loss), but no number it reports calls itself a log-likelihood or has bits/dim."""
    config = tiny_config(**{"data.binarize": "none", "model.allow_unnormalized": True})
    summary = train_and_evaluate(config, str(tmp_path))
    assert summary["normalized_likelihood"] is False
    assert summary["test_bits_per_dim"] is None
    assert "not a normalised density" in summary["likelihood_note"]
    printed = capsys.readouterr().out
    elbo_line = next(ln for ln in printed.splitlines() if ln.startswith("test ELBO"))
    assert elbo_line.endswith("[not a log-likelihood]") and "bits/dim" not in elbo_line


def test_a_sampling_temperature_is_the_priors_to_define(monkeypatch):
    """N(0, I) at temperature T is N(0, T²I); a prior without a meaning for T refuses it."""
    import jax
    import numpy as np

    from vae_jax import priors
    from vae_jax.config_check import validate_config
    from vae_jax.priors.standard_normal import StandardNormal

    z = StandardNormal(4).sample(jax.random.key(0), 20_000, temperature=0.5)
    # the sample std of 80,000 normals has relative standard error 1/sqrt(2n) = 0.0025
    np.testing.assert_allclose(np.std(np.asarray(z)), 0.5, rtol=4 * 0.0025)
    c = tiny_config(**{"eval.sample_temperature": 0.7})
    validate_config(c)
    plain = priors.PRIORS["standard_normal"]._replace(traits=frozenset())
    monkeypatch.setitem(priors.PRIORS, "standard_normal", plain)
    with pytest.raises(ConfigError, match="defines no sampling temperature; use 1.0"):
        validate_config(c)
    validate_config(tiny_config())  # T = 1 is every prior's own
