"""Sweeps: axes and groups, a vmapped member equal to its single run, the per-member guard,
resume, and the command line end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import read_metrics, tiny_config
from vae_jax import objectives
from vae_jax.checkpoint import Checkpointer
from vae_jax.data import load_dataset
from vae_jax.errors import ConfigError
from vae_jax.evaluate.suite import measure, measure_members
from vae_jax.state import setup
from vae_jax.sweep.loop import stack, train_members
from vae_jax.sweep.spec import expand, group, parse_axes
from vae_jax.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEP = ["hyper.beta=0.5,2", "seed=0,1"]


def _members(specs=SWEEP, **overrides):
    config = tiny_config(**overrides)
    return expand(config, parse_axes(specs, config))


def _final(workdir, config):
    _, template, *_ = setup(config, (28, 28, 1), 320)
    ckpt = Checkpointer(str(workdir))
    try:
        return ckpt.latest_step(), ckpt.restore(template)
    finally:
        ckpt.close()


def _close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=atol)


def test_axes_members_and_groups():
    config = tiny_config()
    axes = parse_axes(["hyper.beta=0.25,1", "seed=0,1,2", "model.latent_dim=2,4"], config)
    assert axes[0] == ("hyper.beta", [0.25, 1.0]) and axes[2] == ("model.latent_dim", [2, 4])
    members = expand(config, axes)
    assert len(members) == 12 and members[0].name == "beta=0.25_seed=0_latent_dim=2"
    assert members[0].config.model.latent_dim == 2 and members[0].config.sweep == ()
    groups = group(members)  # β and the seed are traced; the latent size changes shapes
    assert [len(g) for g in groups] == [6, 6]
    assert {m.config.model.latent_dim for m in groups[0]} == {2}
    for bad in (["hyper.beta"], ["hyper.bta=1,2"], ["seed=a,b"], ["hyper.beta=1,1"]):
        with pytest.raises(ConfigError):
            parse_axes(bad, config)


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("sweep")
    members = _members()
    dataset = load_dataset(members[0].config.data)
    return root, members, train_members(members, str(root), dataset)


def test_a_member_equals_its_single_run(swept, tmp_path):
    """Members train in one vmapped program; each ends where its own run ends, to float32
    round-off (vmapped matmuls reduce in another order), and logs the same metrics."""
    root, members, outs = swept
    for i in (0, 3):  # β = 0.5, seed 0 and β = 2, seed 1
        config = members[i].config
        single = tmp_path / members[i].name
        train(config, str(single), load_dataset(config.data))
        step_a, a = _final(os.path.join(root, members[i].name), config)
        step_b, b = _final(single, config)
        assert step_a == step_b == 40
        _close(a.params, b.params, atol=1e-4)
        for ra, rb in zip(read_metrics(root / members[i].name), read_metrics(single), strict=True):
            assert ra["step"] == rb["step"]
            np.testing.assert_allclose(ra["loss"], rb["loss"], rtol=1e-4)
    losses = {m.name: read_metrics(root / m.name)[-1]["loss"] for m in members}
    assert len(set(np.round(list(losses.values()), 3))) == 4  # β and the seed both matter
    assert all(o["failed"] is None for o in outs)


def _numbers(tree, prefix=""):
    """{path: float} of every number in a results dict (platform facts left out)."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            if k not in ("platform", "execution"):
                out.update(_numbers(v, f"{prefix}/{k}"))
        return out
    if isinstance(tree, list):
        return {k: v for i, x in enumerate(tree) for k, v in _numbers(x, f"{prefix}/{i}").items()}
    is_number = isinstance(tree, (int, float)) and not isinstance(tree, bool)
    return {prefix: float(tree)} if is_number else {}


def test_members_evaluated_together_equal_each_evaluated_alone(swept, tmp_path):
    """The sweep's vmapped evaluation (apply.Members) gives each member the numbers that
    `measure` gives it alone: same keys, same estimators, float32 round-off apart."""
    root, members, outs = swept
    dataset = load_dataset(members[0].config.data)
    graphdef = outs[0]["graphdef"]
    configs = []
    for o in outs:  # with the diagnostics: log p(x), collapse, I(x;z), Fréchet distances
        c = o["config"].copy_and_resolve_references()
        c.eval.update(diagnostics=True, num_importance_samples=8, loglik_examples=16)
        c.eval.update(loglik_batch_size=16, fd_num_examples=32, classifier_steps=20)
        c.eval.classifier_dir = str(tmp_path)
        configs.append(c)
    together = measure_members(
        configs,
        [o["workdir"] for o in outs],
        dataset,
        graphdef,
        stack([o["variables"] for o in outs]),
    )
    assert len(together) == len(members)
    for i in (0, 3):
        alone = measure(configs[i], outs[i]["workdir"], dataset, graphdef, outs[i]["variables"])
        a, b = _numbers(together[i]), _numbers(alone)
        assert a.keys() == b.keys() and "/log_likelihood/log_likelihood_nats" in a
        assert "/collapse/mutual_info/lower_nats" in a and "/elbo/test_elbo_nats" in a
        for k in a:
            np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-5, err_msg=k)
    elbos = [r["elbo"]["test_elbo_nats"] for r in together]
    assert len(set(np.round(elbos, 4))) == 4  # each member its own model, not member 0's


def test_a_member_whose_loss_stays_non_finite_is_frozen_and_the_others_go_on(tmp_path, monkeypatch):
    """β = 4's loss is NaN for steps 10..29 only: frozen at step 30 (a streak of 20 ≥ 15),
    it must not train on the finite steps 30..39; β = 1 trains all 40."""

    def nan_window(section, spec):
        objective = objectives.elbo.make(section, spec)

        def loss(model, batch, key, ctx):
            value, metrics = objective.loss(model, batch, key, ctx)
            window = (ctx.step >= 10) & (ctx.step < 30) & (ctx.hyper.beta > 3)
            value = jnp.where(window, jnp.nan, value)
            return value, {**metrics, "loss": value}

        return objective._replace(loss=loss)

    monkeypatch.setitem(
        objectives.OBJECTIVES, "elbo", objectives.OBJECTIVES["elbo"]._replace(make=nan_window)
    )
    members = _members(["hyper.beta=1,4"], **{"train.max_nonfinite_steps": 15})
    dataset = load_dataset(members[0].config.data)
    outs = train_members(members, str(tmp_path / "sweep"), dataset)
    assert outs[0]["failed"] is None
    assert "non-finite for 20 consecutive steps (10..29)" in outs[1]["failed"]
    frozen_dir = tmp_path / "sweep" / members[1].name
    step, frozen = _final(frozen_dir, members[1].config)
    assert step == 40  # saved at every step the others were, holding the state of step 10
    ten = members[1].config.copy_and_resolve_references()
    ten.train.num_steps = 10
    train(ten, str(tmp_path / "ten"), dataset)
    _close(frozen.params, _final(tmp_path / "ten", ten)[1].params, atol=1e-4)
    assert read_metrics(tmp_path / "sweep" / members[0].name)[-1]["step"] == 40
    assert read_metrics(frozen_dir)[-1]["step"] == 20  # the last line before it froze
    # A rerun remembers the frozen member (failed.json) instead of reporting it healthy.
    again = train_members(members, str(tmp_path / "sweep"), dataset)
    assert again[1]["failed"] == outs[1]["failed"] and again[0]["failed"] is None


def test_resuming_with_another_config_or_fewer_steps_is_refused(swept):
    root, members, _ = swept
    dataset = load_dataset(members[0].config.data)
    changed = _members(["hyper.beta=0.5,8", "seed=0"], **{"train.learning_rate": 1e-2})
    with pytest.raises(ConfigError, match="learning_rate: 0.003 -> 0.01"):  # lr 3e-3 saved
        train_members(changed, str(root), dataset)
    assert not (root / changed[1].name).exists()  # refused before any member trained
    with pytest.raises(ConfigError, match="past train.num_steps=20"):
        train_members(_members(**{"train.num_steps": 20}), str(root), dataset)


@pytest.mark.slow  # ~16 s; `make test-slow`
def test_a_string_axis_runs_end_to_end(tmp_path):
    from vae_jax.sweep.run import run_sweep

    rows = run_sweep(tiny_config(), str(tmp_path), ["train.optimizer=adam,sgd"])
    assert [r["train.optimizer"] for r in rows] == ["adam", "sgd"]
    assert (tmp_path / "sweep_report.html").exists()
    with pytest.raises(ConfigError, match="JSON lists"):
        run_sweep(tiny_config(), str(tmp_path / "b"), ["model.mlp.hidden_dims=32,64"])
    with pytest.raises(ConfigError, match="is a section"):
        run_sweep(tiny_config(), str(tmp_path / "c"), ["data=1"])


def test_a_sweep_resumes_to_the_same_end(swept, tmp_path, capsys):
    root, members, _ = swept
    short = _members(**{"train.num_steps": 20})
    dataset = load_dataset(short[0].config.data)
    train_members(short, str(tmp_path), dataset)
    train_members(members, str(tmp_path), dataset)
    assert "Resumed 4 members from step 20" in capsys.readouterr().out
    for m in members:
        _, a = _final(root / m.name, m.config)
        _, b = _final(tmp_path / m.name, m.config)
        _close(a, b, atol=0)
        assert read_metrics(tmp_path / m.name) == read_metrics(root / m.name)


def test_the_sweep_command_writes_members_and_the_table(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "vae_jax.sweep",
            "--config=experiments/configs/beta_sweep.py:runlocal",
            f"--workdir={tmp_path}",
            "--sweep=hyper.beta=0.5,4",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    table = (tmp_path / "sweep.md").read_text()
    assert table.startswith("| beta | test ELBO | log p(x) |") and "| 4.0 |" in table
    lines = table.splitlines()  # a GFM table: as many cells in the header as in the rule
    assert lines[0].replace("\\|", "").count("|") == lines[1].count("|")
    summary = json.loads((tmp_path / "sweep.json").read_text())
    assert [r["hyper.beta"] for r in summary["members"]] == [0.5, 4.0]
    for name in ("beta=0.5", "beta=4.0"):
        for f in ("config.json", "metrics.jsonl", "summary.json", "eval.json", "report.html"):
            assert (tmp_path / name / f).exists(), (name, f)
        summary_of_member = json.loads((tmp_path / name / "summary.json").read_text())
        assert "timings" not in summary_of_member  # the sweep's, in sweep.json only
    for name in ("rate_distortion.png", "kl_per_dim.png", "sweep_report.html"):
        assert (tmp_path / name).stat().st_size > 1000, name
    report = (tmp_path / "sweep_report.html").read_text()
    assert "href='beta=0.5/report.html'" in report and "data:image/png;base64" in report
    kl = {r["hyper.beta"]: r["test_kl_nats"] for r in summary["members"]}
    assert kl[0.5] > kl[4.0]  # a larger β buys a smaller rate
