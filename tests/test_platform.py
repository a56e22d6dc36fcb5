"""Backend-aware defaults, the platform record and the time budget of a run."""

import importlib.util
import json
import os

import jax
import pytest

from tests.helpers import tiny_config
from vae_jax import platform
from vae_jax.config_lib import base_config
from vae_jax.experiment import run

CONFIGS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "experiments", "configs"
)


def test_auto_resolves_by_backend_and_net():
    c = base_config()
    on_cpu = jax.default_backend() == "cpu"
    assert platform.fuse_steps(c) is True and platform.cpu_tuning(c) is False  # the MLP
    c.model.net = "conv"
    assert platform.fuse_steps(c) is (not on_cpu) and platform.cpu_tuning(c) is on_cpu
    assert platform.loglik_chunk(c) == (50 if on_cpu else 1000)
    c.train.fuse_steps, c.train.cpu_tuning, c.eval.loglik_chunk = "True", "false", 7
    assert platform.fuse_steps(c) is True and platform.cpu_tuning(c) is False
    assert platform.loglik_chunk(c) == 7


@pytest.mark.parametrize("name", sorted(f[:-3] for f in os.listdir(CONFIGS) if f.endswith(".py")))
def test_no_experiment_config_hard_codes_a_cpu_workaround(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(CONFIGS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for arg in (None, "runlocal"):
        c = module.get_config(arg)
        assert (c.train.fuse_steps, c.train.cpu_tuning, c.eval.loglik_chunk) == ("auto", "auto", 0)


def test_deterministic_gpu_ops_are_asked_of_xla_before_the_backend_starts(monkeypatch):
    monkeypatch.setattr(platform, "_backends_started", lambda: False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    platform.configure(base_config())
    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x --xla_gpu_deterministic_ops=true"
    platform.configure(base_config())  # idempotent
    assert os.environ["XLA_FLAGS"].count("deterministic") == 1
    monkeypatch.setenv("XLA_FLAGS", "--xla_gpu_deterministic_ops")  # the bare flag counts
    platform.configure(base_config())
    assert os.environ["XLA_FLAGS"] == "--xla_gpu_deterministic_ops"
    c = base_config()
    c.train.deterministic = False
    monkeypatch.setenv("XLA_FLAGS", "")
    platform.configure(c)
    assert os.environ["XLA_FLAGS"] == ""
    # Once the backend has started, XLA_FLAGS would no longer take effect: left alone.
    monkeypatch.setattr(platform, "_backends_started", lambda: True)
    platform.configure(base_config())
    assert os.environ["XLA_FLAGS"] == ""


def test_the_record_says_whether_determinism_is_in_effect():
    status = platform.deterministic_status(base_config())
    assert status["requested"] is True
    if jax.default_backend() != "gpu":
        assert status["in_effect"] is None  # not applicable: CPU and TPU ops are deterministic


@pytest.mark.slow  # ~18 s; `make test-slow`
def test_summary_holds_the_platform_execution_and_timings(tmp_path, capsys):
    config = tiny_config(**{"eval.diagnostics": True, "eval.sample_quality": False})
    run(config, str(tmp_path))
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["platform"]["backend"] == jax.default_backend()
    execution = summary["execution"]
    assert execution["fuse_steps"] is True  # auto, for an MLP
    assert execution["loglik_chunk"] == platform.loglik_chunk(config)  # auto, resolved
    timings = summary["timings"]
    for phase in (
        "load data",
        "compile train step",
        "train steps",
        "validation ELBO",
        "eval: test ELBO",
        "eval: log p(x)",
        "eval: collapse diagnostics",
        "figures",
        "report",
        "total",
    ):
        assert timings[phase] > 0, phase
    assert timings["total"] > sum(v for k, v in timings.items() if k != "total") * 0.9
    printed = capsys.readouterr().out
    assert "wall time by phase:" in printed and "compile train step" in printed
