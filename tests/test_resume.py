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
