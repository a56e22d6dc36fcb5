"""Resuming a workdir cannot mix two runs: a change that alters the run is refused (or,
when asked for, recorded), path changes to the same data are accepted, and execution-only
changes pass silently."""

import json
import os
import shutil

import numpy as np
import pytest

from tests.helpers import read_metrics, tiny_config, write_idx
from vae_jax.config_check import ConfigError
from vae_jax.experiment import run

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _first_20(workdir, **overrides):
    run(tiny_config(**{"train.num_steps": 20, **overrides}), str(workdir))


def test_a_changed_beta_is_refused_with_each_field_and_nothing_is_written(tmp_path):
    workdir = tmp_path / "run"
    _first_20(workdir)
    before = {p: (workdir / p).read_bytes() for p in ("config.json", "metrics.jsonl")}
    with pytest.raises(ConfigError) as info:
        run(tiny_config(**{"hyper.beta": 4.0, "train.learning_rate": 1e-3}), str(workdir))
    message = str(info.value)
    assert "hyper.beta: 1.0 -> 4.0" in message and "train.learning_rate: 0.003 -> 0.001" in message
    assert "allow_resume_changes=True" in message and "\n" not in message
    assert {p: (workdir / p).read_bytes() for p in before} == before
    assert not (workdir / "config_history.jsonl").exists()


def test_an_allowed_change_continues_and_is_recorded(tmp_path):
    workdir = tmp_path / "run"
    _first_20(workdir)
    changed = tiny_config(**{"hyper.beta": 2.0, "train.allow_resume_changes": True})
    run(changed, str(workdir))
    history = [json.loads(ln) for ln in (workdir / "config_history.jsonl").read_text().splitlines()]
    assert history[0]["step"] == 20
    assert history[0]["changes"] == {"hyper.beta": {"saved": 1.0, "new": 2.0}}
    assert "note" not in history[0]  # same optimizer: its state (Adam's moments) is kept
    saved = json.loads((workdir / "config.json").read_text())
    assert saved["hyper"]["beta"] == 2.0  # the record now describes the run going forward
    assert [r["step"] for r in read_metrics(workdir)] == [10, 20, 30, 40]
    results = json.loads((workdir / "eval.json").read_text())
    assert results["config_history"] == history
    from vae_jax import report

    page = report.render({**results, "figures": []}, [], changed.to_json())
    assert "hyper.beta: 1.0 → 2.0" in page and "allow_resume_changes" in page


def test_a_changed_optimizer_resumes_with_a_fresh_optimizer_state(tmp_path):
    """Adam's moments cannot become SGD's state: with the switch it is re-initialised and
    the history says so; without it the change is refused (not an orbax error)."""
    workdir = tmp_path / "run"
    _first_20(workdir)
    with pytest.raises(ConfigError, match="train.optimizer: 'adam' -> 'sgd'"):
        run(tiny_config(**{"train.optimizer": "sgd"}), str(workdir))
    run(tiny_config(**{"train.optimizer": "sgd", "train.allow_resume_changes": True}), str(workdir))
    history = json.loads((workdir / "config_history.jsonl").read_text())
    assert history["note"] == "optimizer state re-initialised (its structure changed)"
    assert read_metrics(workdir)[-1]["step"] == 40


def test_parameters_of_another_shape_cannot_resume_even_when_allowed(tmp_path):
    workdir = tmp_path / "run"
    _first_20(workdir)
    changed = tiny_config(**{"model.latent_dim": 6, "train.allow_resume_changes": True})
    with pytest.raises(ConfigError, match="parameters change shape"):
        run(changed, str(workdir))


def test_execution_only_changes_pass_silently(tmp_path):
    workdir = tmp_path / "run"
    _first_20(workdir)
    run(tiny_config(**{"train.fuse_steps": "false", "eval.batch_size": 16}), str(workdir))
    assert not (workdir / "config_history.jsonl").exists()
    assert [r["step"] for r in read_metrics(workdir)] == [10, 20, 30, 40]


def _idx_dir(path, images, labels):
    os.makedirs(path)
    for split, (x, y) in {"train": (images, labels), "test": (images[:40], labels[:40])}.items():
        stem = "train" if split == "train" else "t10k"
        write_idx(os.path.join(path, f"{stem}-images-idx3-ubyte"), x)
        write_idx(os.path.join(path, f"{stem}-labels-idx1-ubyte"), y)
    return str(path)


def test_a_data_path_change_is_accepted_only_for_the_same_data(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 200).astype(np.uint8)
    first = _idx_dir(tmp_path / "a", images, labels)
    overrides = {"data.name": "mnist", "data.val_size": 40, "train.num_steps": 20}
    workdir = tmp_path / "run"
    run(tiny_config(**overrides, **{"data.dir": first}), str(workdir))
    copy = str(tmp_path / "copy")
    shutil.copytree(first, copy)  # the same files elsewhere
    run(tiny_config(**{**overrides, "data.dir": copy, "train.num_steps": 40}), str(workdir))
    assert read_metrics(workdir)[-1]["step"] == 40
    other = _idx_dir(tmp_path / "b", 255 - images, labels)
    with pytest.raises(ConfigError, match="data.dir changed and now loads other data"):
        run(tiny_config(**{**overrides, "data.dir": other, "train.num_steps": 60}), str(workdir))


def test_data_changed_in_place_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (200, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 200).astype(np.uint8)
    data = _idx_dir(tmp_path / "a", images, labels)
    overrides = {"data.name": "mnist", "data.val_size": 40, "data.dir": data}
    workdir = tmp_path / "run"
    run(tiny_config(**overrides, **{"train.num_steps": 20}), str(workdir))
    shutil.rmtree(data)
    _idx_dir(tmp_path / "a", 255 - images, labels)  # other pixels at the same path
    with pytest.raises(ConfigError, match="data at the run's path changed since it trained"):
        run(tiny_config(**overrides), str(workdir))


def test_more_steps_continue_only_a_constant_learning_rate(tmp_path):
    """With a cosine schedule, num_steps sets the decay of every step: raising it changes
    the run. With a constant rate it only continues it (the other tests)."""
    workdir = tmp_path / "run"
    _first_20(workdir, **{"train.lr_schedule": "cosine"})
    with pytest.raises(ConfigError, match="train.num_steps: 20 -> 40"):
        run(tiny_config(**{"train.lr_schedule": "cosine"}), str(workdir))


def test_a_run_past_num_steps_is_not_relabelled(tmp_path):
    workdir = tmp_path / "run"
    run(tiny_config(), str(workdir))  # 40 steps
    with pytest.raises(ConfigError, match="is at step 40, past train.num_steps=20"):
        _first_20(workdir)


def test_an_allowed_learning_rate_change_keeps_adams_moments(tmp_path):
    """Fine-tuning with a new rate continues Adam's state from the checkpoint: its step
    counter (which sets the bias correction) and moments carry on; fresh state would
    restart the counter at 0."""
    import jax

    from vae_jax.checkpoint import Checkpointer
    from vae_jax.data import load_dataset
    from vae_jax.state import setup

    workdir = tmp_path / "run"
    _first_20(workdir)
    ckpt = Checkpointer(str(workdir))
    config = tiny_config()
    shape = load_dataset(config.data).shape
    saved = ckpt.restore(setup(config, shape, 320)[1])
    ckpt.close()
    new = tiny_config(
        **{"train.learning_rate": 1e-2, "train.allow_resume_changes": True, "train.num_steps": 21}
    )
    run(new, str(workdir))
    ckpt = Checkpointer(str(workdir))
    after = ckpt.restore(setup(new, shape, 320)[1])
    ckpt.close()
    mu0 = jax.tree.leaves(saved.opt_state[0].mu)
    assert any(np.abs(np.asarray(m)).max() > 0 for m in mu0)  # the checkpoint had moments
    assert int(saved.opt_state[0].count) == 20
    assert int(after.opt_state[0].count) == 21  # carried on: fresh state would read 1
