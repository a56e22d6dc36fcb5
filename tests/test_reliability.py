"""What goes wrong under real runs, and what the project guarantees then: one writer per
workdir, a record written only after the state it describes, a guard that checks what a
step writes, no silent success of a run that learned nothing, fallback from a corrupt
checkpoint, a torn metrics line, and one line (exit 2, or 130/143 for a signal) for every
failure of the machine. The kill/resume soak test is tests/test_soak.py (slow)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from tests.helpers import read_metrics, tiny_config, tree_equal
from vae_jax import config_check, workdir
from vae_jax.checkpoint import Checkpointer, all_finite
from vae_jax.cli import run_cli
from vae_jax.data import load_dataset
from vae_jax.errors import (
    CheckpointError,
    ConfigError,
    NonFiniteLossError,
    WorkdirError,
    machine_failure,
)
from vae_jax.evaluate.__main__ import evaluate as evaluate_cli
from vae_jax.hyper import Hyper
from vae_jax.state import setup
from vae_jax.step import make_chunk_runner, make_train_step
from vae_jax.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPE = (28, 28, 1)
CLI = [
    sys.executable,
    "-m",
    "vae_jax.main",
    "--config=experiments/configs/fashion_mnist_mlp.py:runlocal",
    "--config.data.name=synthetic",
    "--config.eval.diagnostics=False",
    "--config.eval.autoencoder_steps=0",
]


def _train(path, **overrides):
    config = tiny_config(**overrides)
    return train(config, str(path), load_dataset(config.data))


def _final(path, config=None):
    config = config or tiny_config()
    _, template, *_ = setup(config, SHAPE, 320)
    ckpt = Checkpointer(str(path))
    try:
        return ckpt.latest_step(), ckpt.restore(template)
    finally:
        ckpt.close()


def _cli(*args, timeout=240, **kwargs):
    return subprocess.run(
        [*CLI, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, **kwargs
    )


def _one_line_error(result, *words, code=2):
    assert result.returncode == code, (result.returncode, result.stderr[-2000:])
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """40 uninterrupted steps of the tiny config: final state and metrics."""
    path = tmp_path_factory.mktemp("reference")
    _train(path)
    return dict(state=_final(path)[1], metrics=read_metrics(path))


# 1. One writer per workdir -------------------------------------------------------------


HOLDER = (
    "import sys, time; from vae_jax import workdir; workdir.acquire(sys.argv[1]); "
    "print('held', flush=True); time.sleep(600)"
)


def test_a_second_writer_is_refused_and_a_dead_holders_lock_is_taken_over(tmp_path, capfd):
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkdirError) as info:
            workdir.acquire(str(tmp_path))
        message = str(info.value)
        assert f"PID {holder.pid}" in message and socket.gethostname() in message, message
        assert "\n" not in message
    finally:
        holder.kill()  # kill -9: the lock file still names it, the kernel lock is gone
        holder.wait()
    capfd.readouterr()
    with workdir.hold(str(tmp_path)):
        assert f"PID {holder.pid}" in capfd.readouterr().err  # the takeover is announced
        with workdir.hold(str(tmp_path)):  # re-entrant in one process
            pass
    with workdir.hold(str(tmp_path)):  # a clean release leaves no stale record
        assert "taking over" not in capfd.readouterr().err


def test_a_stale_lock_file_does_not_block_a_run(tmp_path, capfd):
    (tmp_path / ".lock").write_text(json.dumps({"pid": 999999, "host": "gone", "started": "x"}))
    _train(tmp_path, **{"train.num_steps": 10})
    err = capfd.readouterr().err
    assert "taking over the lock" in err and "PID 999999 on host gone" in err


def _training(run: str) -> subprocess.Popen:
    """A long CLI run into `run`, returned once its first progress line is out."""
    proc = subprocess.Popen(
        [*CLI, f"--workdir={run}", "--config.train.num_steps=100000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:
        if line.startswith("step"):
            break
    return proc


def _stop(proc: subprocess.Popen, sig) -> str:
    """Send `sig`, wait, and return stderr."""
    try:
        proc.send_signal(sig)
        return proc.communicate(timeout=120)[1]
    finally:
        proc.kill()


def test_two_training_processes_one_workdir(tmp_path):
    """The second process stops at once naming the first; the first runs on undisturbed and
    stops cleanly on SIGTERM (exit 143) with its checkpoint saved."""
    run = str(tmp_path / "run")
    first = _training(run)
    try:
        second = _cli(f"--workdir={run}", "--config.train.num_steps=100000")
        _one_line_error(second, "in use by", f"PID {first.pid}", socket.gethostname())
    finally:
        err = _stop(first, signal.SIGTERM)
    assert first.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "checkpoint saved in" in err, err
    steps = [r["step"] for r in read_metrics(run)]
    assert steps == sorted(set(steps)), "every step logged once"
    assert str(steps[-1]) in err  # the checkpoint is at the last logged step
    assert os.path.isdir(os.path.join(run, "checkpoints", str(steps[-1])))


def test_ctrl_c_saves_a_checkpoint_and_exits_130_without_a_traceback(tmp_path):
    run = str(tmp_path / "run")
    proc = _training(run)
    err = _stop(proc, signal.SIGINT)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "SIGINT" in err, err
    step = int(err.split("at step ")[1].split(";")[0])
    assert f"checkpoint saved in {run}/checkpoints" in err
    assert os.path.isdir(os.path.join(run, "checkpoints", str(step)))


# 2. The record follows the state -------------------------------------------------------


def test_a_failed_restore_leaves_the_record_as_it_was(tmp_path):
    _train(tmp_path, **{"train.num_steps": 20})
    for array in glob.glob(str(tmp_path / "checkpoints/*/default/ocdbt.process_0/d/*")):
        with open(array, "r+b") as f:
            f.truncate(os.path.getsize(array) // 2)
    before = {n: (tmp_path / n).read_bytes() for n in ("config.json", "run.json", "metrics.jsonl")}
    with pytest.raises(CheckpointError) as info:
        _train(tmp_path, **{"train.learning_rate": 1e-3, "train.allow_resume_changes": True})
    message = str(info.value)
    assert str(tmp_path / "checkpoints") in message and "\n" not in message
    assert {n: (tmp_path / n).read_bytes() for n in before} == before
    assert not (tmp_path / "config_history.jsonl").exists()
    assert os.listdir(tmp_path / "checkpoints") == ["20"]  # nothing moved when none restores


# 3, 4. The guard and runs that learned nothing ----------------------------------------


def _sgd_parts(lr):
    config = tiny_config(**{"train.optimizer": "sgd", "train.learning_rate": lr})
    dataset = load_dataset(config.data)
    graphdef, state, tx, objective, key = setup(config, dataset.shape, len(dataset.train_x))
    data = {"image": jnp.asarray(dataset.train_x[:64])}
    return graphdef, state, tx, objective, key, data


@pytest.mark.parametrize("guard", ["cond", "where"])
def test_a_step_that_writes_non_finite_params_is_skipped(guard):
    """sgd at lr 1e38: loss and gradient are finite, the updated params are not."""
    graphdef, state, tx, objective, key, data = _sgd_parts(1e38)
    batch = {"image": data["image"][:16]}
    fast = make_train_step(graphdef, objective, tx, guard=guard)
    checked = make_train_step(graphdef, objective, tx, guard=guard, check_state=True)
    copy = lambda tree: jax.tree.map(jnp.copy, tree)
    unchecked, m = jax.jit(fast)(copy(state), batch, key, Hyper())
    assert bool(m["finite"]) and not all_finite(unchecked.params)  # what the old guard let by
    new, m = jax.jit(checked)(copy(state), batch, key, Hyper())
    assert not bool(m["finite"]) and np.isfinite(float(m["loss"]))
    assert tree_equal(new.params, state.params) and tree_equal(new.opt_state, state.opt_state)
    assert int(new.nonfinite_steps) == 1 and int(new.step) == 1


@pytest.mark.parametrize("fuse_steps", [True, False])
def test_a_chunk_with_a_non_finite_result_is_redone_with_the_checked_step(fuse_steps):
    graphdef, state, tx, objective, key, data = _sgd_parts(1e38)
    steps = [make_train_step(graphdef, objective, tx, guard="cond", check_state=c) for c in (0, 1)]
    run = make_chunk_runner(steps[0], fuse_steps, length=4, checked_step=steps[1])
    start = jax.tree.map(jnp.copy, state)
    indices = np.arange(48).reshape(3, 16)
    new, metrics = run(state, data, indices, key, Hyper())
    assert run.redone == 1
    assert all_finite(new) and tree_equal(new.params, start.params)
    assert int(new.nonfinite_steps) == 3 and int(metrics["max_nonfinite_streak"]) == 3

    # A finite chunk is not redone, and equals the checked step's result bit for bit (the
    # "cond" guard, where the redo is used; "where" checks inside every step instead).
    graphdef, state, tx, objective, key, data = _sgd_parts(1e-2)
    steps = [make_train_step(graphdef, objective, tx, guard="cond", check_state=c) for c in (0, 1)]
    run = make_chunk_runner(steps[0], fuse_steps, length=4, checked_step=steps[1])
    only_checked = make_chunk_runner(steps[1], fuse_steps, length=4)
    a, _ = run(jax.tree.map(jnp.copy, state), data, indices, key, Hyper())
    b, _ = only_checked(jax.tree.map(jnp.copy, state), data, indices, key, Hyper())
    assert run.redone == 0 and tree_equal(a, b)


def test_a_run_whose_steps_were_all_skipped_fails_and_saves_only_finite_state(tmp_path):
    with pytest.raises(NonFiniteLossError) as info:
        _train(tmp_path, **{"train.optimizer": "sgd", "train.learning_rate": 1e38})
    message = str(info.value)
    assert "40 of the 40" in message and "max_nonfinite_fraction" in message, message
    step, state = _final(tmp_path, tiny_config(**{"train.optimizer": "sgd"}))
    assert step == 40 and all_finite(state)
    assert int(state.nonfinite_steps) == 40


def test_the_skipped_fraction_is_configurable(tmp_path):
    overrides = {"train.optimizer": "sgd", "train.learning_rate": 1e38}
    _train(tmp_path, **overrides, **{"train.max_nonfinite_fraction": 1.0})  # accepted


def test_a_non_finite_state_is_never_saved(tmp_path):
    ckpt = Checkpointer(str(tmp_path))
    try:
        ckpt.save(1, {"w": jnp.ones(3)})
        with pytest.raises(CheckpointError) as info:
            ckpt.save(2, {"w": jnp.array([1.0, jnp.nan, 0.0])})
        assert "non-finite" in str(info.value)
        assert ckpt.latest_step() == 1
    finally:
        ckpt.close()


@pytest.mark.parametrize(
    "field, value",
    [
        ("hyper.beta", float("inf")),
        ("hyper.beta", 1e39),  # overflows float32
        ("hyper.beta", float("nan")),
        ("train.learning_rate", float("inf")),
        ("train.grad_clip_norm", float("inf")),
        ("train.max_nonfinite_fraction", 1.5),
    ],
)
def test_non_finite_or_overflowing_values_are_refused(field, value):
    with pytest.raises(ConfigError) as info:
        config_check.validate_config(tiny_config(**{field: value}))
    assert f"config.{field}=" in str(info.value)


def test_a_changed_state_structure_is_recorded_only_once_a_checkpoint_holds_it(
    tmp_path, monkeypatch
):
    """adam → sgd on purpose, killed before the first save with sgd: the old record still
    matches every checkpoint, so the next resume (either config) works."""
    _train(tmp_path, **{"train.num_steps": 20})
    before = (tmp_path / "config.json").read_text()
    change = {"train.optimizer": "sgd", "train.allow_resume_changes": True}

    def killed(self, step, state):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(Checkpointer, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            _train(tmp_path, **change)
    assert (tmp_path / "config.json").read_text() == before
    assert not (tmp_path / "config_history.jsonl").exists()
    _train(tmp_path, **change)  # resumes from the adam checkpoint, records the change once
    history = [json.loads(ln) for ln in (tmp_path / "config_history.jsonl").open()]
    assert len(history) == 1 and history[0]["step"] == 20
    assert json.loads((tmp_path / "config.json").read_text())["train"]["optimizer"] == "sgd"


def test_changes_that_would_train_nothing_are_refused(tmp_path):
    _train(tmp_path, **{"train.num_steps": 20})
    with pytest.raises(ConfigError) as info:
        _train(
            tmp_path,
            **{"train.num_steps": 20, "hyper.beta": 2.0, "train.allow_resume_changes": True},
        )
    assert "would train nothing" in str(info.value)


# 5, 6. Corrupt checkpoints and a torn metrics line ---------------------------------------


def test_a_failure_of_the_machine_while_restoring_moves_nothing(tmp_path, monkeypatch):
    _train(tmp_path, **{"train.num_steps": 30})

    def out_of_memory(self, template, step=None):
        raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 4096 bytes")

    monkeypatch.setattr(Checkpointer, "restore", out_of_memory)
    with pytest.raises(RuntimeError, match="Out of memory"):
        _train(tmp_path, **{"train.num_steps": 40})
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["20", "30"]
    assert not (tmp_path / "checkpoints_corrupt").exists()


def test_a_non_finite_checkpoint_is_not_resumed_from(tmp_path, reference, capfd):
    _train(tmp_path, **{"train.num_steps": 30})
    step, state = _final(tmp_path)
    poisoned = state._replace(params=jax.tree.map(lambda x: x * jnp.nan, state.params))
    shutil.rmtree(tmp_path / "checkpoints" / "30")
    ckpt = Checkpointer(str(tmp_path))
    try:  # as an older version (with the guard that let NaN params by) would have saved it
        ckpt._manager.save(30, args=ocp.args.StandardSave(poisoned), force=True)
        ckpt._manager.wait_until_finished()
    finally:
        ckpt.close()
    capfd.readouterr()
    _train(tmp_path)
    err = capfd.readouterr().err
    assert "checkpoints/30 does not restore (it holds non-finite values)" in err, err
    assert tree_equal(_final(tmp_path)[1], reference["state"])


def _corrupt(step_dir: str, how: str) -> None:
    if how == "truncated array file":
        array = max(glob.glob(f"{step_dir}/default/ocdbt.process_0/d/*"), key=os.path.getsize)
        with open(array, "r+b") as f:
            f.truncate(os.path.getsize(array) // 2)
    elif how == "deleted item folder":
        shutil.rmtree(f"{step_dir}/default")
    else:  # truncated metadata
        path = f"{step_dir}/default/_METADATA"
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)


@pytest.mark.parametrize(
    "how", ["truncated array file", "deleted item folder", "truncated metadata"]
)
def test_a_corrupt_newest_checkpoint_falls_back_to_the_one_before(tmp_path, reference, capfd, how):
    _train(tmp_path, **{"train.num_steps": 30})  # checkpoints 20 and 30
    _corrupt(str(tmp_path / "checkpoints" / "30"), how)
    capfd.readouterr()
    _train(tmp_path)
    captured = capfd.readouterr()
    warnings = [ln for ln in captured.err.splitlines() if "does not restore" in ln]
    assert len(warnings) == 1 and "checkpoints/30" in warnings[0], captured.err
    assert "Resumed from checkpoint at step 20" in captured.out
    assert os.path.isdir(tmp_path / "checkpoints_corrupt" / "30")  # kept, not deleted
    step, state = _final(tmp_path)
    assert step == 40 and tree_equal(state, reference["state"])
    assert read_metrics(tmp_path) == reference["metrics"]


def test_a_torn_metrics_line_is_dropped_with_a_warning(tmp_path, reference, capfd):
    _train(tmp_path, **{"train.num_steps": 20})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 30, "loss": 12')  # a crash mid-write
    capfd.readouterr()
    _train(tmp_path)
    assert "torn line" in capfd.readouterr().err
    assert read_metrics(tmp_path) == reference["metrics"]


# 7. Failures of the machine: one line, exit 2 -----------------------------------------


def test_a_workdir_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    _one_line_error(_cli(f"--workdir={path}"), str(path), "is a file")


def _tmpfs(path, options: str):
    """Yield `path` with a tmpfs mounted on it (root only; skips otherwise), then unmount."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("needs root to mount a tmpfs (read-only or tiny)")
    os.makedirs(path, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)])
    if done.returncode:
        pytest.skip("mounting a tmpfs failed here (no privileges in this container)")
    yield path
    subprocess.run(["umount", str(path)])


@pytest.fixture
def read_only_dir(tmp_path):
    yield from _tmpfs(tmp_path / "ro", "ro,size=1m")


@pytest.fixture
def tiny_disk(tmp_path):
    yield from _tmpfs(tmp_path / "small", "size=400k")


def test_a_read_only_workdir_or_parent(read_only_dir):
    _one_line_error(_cli(f"--workdir={read_only_dir}"), "read-only", str(read_only_dir))
    child = read_only_dir / "run"
    _one_line_error(_cli(f"--workdir={child}"), "read-only", str(child))


def test_a_full_disk(tiny_disk):
    result = _cli(f"--workdir={tiny_disk}/run")
    _one_line_error(result, "disk is full", f"{tiny_disk}/run/checkpoints", "MiB")


def test_a_disk_that_fills_during_a_save(tiny_disk, monkeypatch, capsys):
    """Past the check before the save (told there is room): orbax's own ENOSPC error, from
    inside tensorstore, still ends in one line naming the path."""
    monkeypatch.setattr(
        "vae_jax.checkpoint.shutil.disk_usage", lambda path: shutil._ntuple_diskusage(1, 0, 2**40)
    )
    with pytest.raises(SystemExit) as info:
        run_cli(_train, tiny_disk / "run")
    assert info.value.code == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "the disk is full" in err[0] and str(tiny_disk) in err[0], err


@pytest.mark.slow  # ~26 s; `make test-slow`
def test_a_model_too_large_for_memory(tmp_path):
    with open("/proc/sys/vm/overcommit_memory") as f:
        if f.read().strip() == "1":
            pytest.skip("memory overcommit is on: a huge allocation would succeed, then be killed")
    result = _cli(f"--workdir={tmp_path}", "--config.model.mlp.hidden_dims=(262144,262144)")
    _one_line_error(result, "ran out of memory", "GiB requested", "batch_size")


def test_machine_failure_reads_library_errors():
    enospc = ValueError(
        'RESOURCE_EXHAUSTED: Error writing "a.b/0" in OCDBT database at local file '
        '"/data/run/checkpoints/20/": [OS error 28: No space left on device]'
    )
    assert machine_failure(enospc).startswith("the disk is full (/data/run/checkpoints/20/)")
    wrapped = RuntimeError("save failed")
    wrapped.__cause__ = OSError(28, "No space left on device", "/data/x.png")
    assert "the disk is full (/data/x.png)" in machine_failure(wrapped)
    oom = RuntimeError(
        "RESOURCE_EXHAUSTED: Out of memory while trying to allocate 2147483648 bytes"
    )
    assert "2.0 GiB requested" in machine_failure(oom)
    oom = RuntimeError(
        "INTERNAL: Error dispatching computation: Out of memory allocating 1024 bytes"
    )
    assert "ran out of memory" in machine_failure(oom)
    assert machine_failure(KeyError("a bug")) is None  # a bug still shows its traceback


def test_an_invalid_config_json(tmp_path):
    run = tmp_path / "run"
    _train(run, **{"train.num_steps": 10})
    (run / "config.json").write_text('{"data": {"name": ')
    with pytest.raises(ConfigError) as info:
        _train(run, **{"train.num_steps": 20})
    assert str(run / "config.json") in str(info.value) and "not a valid run config" in str(
        info.value
    )
    with pytest.raises(ConfigError):
        evaluate_cli(str(run), None)


# 9, 10. evaluate: flags that cannot apply, and a workdir left as it was ---------------------


def test_evaluate_refuses_a_flag_that_cannot_apply(tmp_path):
    _train(tmp_path, **{"train.num_steps": 10})  # tiny_config: eval.diagnostics=False
    with pytest.raises(ConfigError) as info:
        evaluate_cli(str(tmp_path), 500)
    assert "--num_importance_samples=500 cannot apply" in str(info.value)
    assert "eval.diagnostics=False" in str(info.value)


def test_evaluate_without_checkpoints_changes_nothing(tmp_path):
    (tmp_path / "config.json").write_text(tiny_config().to_json())
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(Exception) as info:
        evaluate_cli(str(tmp_path), None)
    assert "no checkpoint" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == before  # no checkpoints/, no lock file


def test_checkpoint_fallback_in_evaluate_is_read_only(tmp_path, capfd):
    _train(tmp_path, **{"train.num_steps": 30})
    _corrupt(str(tmp_path / "checkpoints" / "30"), "truncated metadata")
    ckpt = Checkpointer(str(tmp_path), read_only=True)
    try:
        _, template, *_ = setup(tiny_config(), SHAPE, 320)
        step, _ = ckpt.restore_newest(template)
    finally:
        ckpt.close()
    assert step == 20 and "using an older one" in capfd.readouterr().err
    assert sorted(os.listdir(tmp_path / "checkpoints")) == ["20", "30"]
