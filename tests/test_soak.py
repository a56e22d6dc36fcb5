"""Soak test (slow): a run killed at random moments, half of them during a checkpoint save,
and resumed each time, ends bit for bit where an uninterrupted run ends: the same final
parameters, optimizer state and counters, and the same metrics.jsonl. For SIGKILL, SIGTERM
and SIGINT, 10 kills each (SIGTERM and SIGINT save where they stop, between the regular
checkpoints, so those checkpoints are resumed from too).

    python -m pytest -m slow tests/test_soak.py
"""

from __future__ import annotations

import glob
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import read_metrics, tree_equal
from vae_jax.checkpoint import Checkpointer
from vae_jax.config_lib import load_saved_config
from vae_jax.data import load_dataset
from vae_jax.state import abstract_setup

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KILLS = 10
ARGS = [
    sys.executable,
    "-m",
    "vae_jax.main",
    "--config=experiments/configs/fashion_mnist_mlp.py:runlocal",
    "--config.data.name=synthetic",
    "--config.data.batch_size=64",
    "--config.train.num_steps=6000",
    "--config.train.log_every=10",
    "--config.train.checkpoint_every=30",  # a signal's checkpoint falls between these
    "--config.train.eval_every=0",
    "--config.eval.diagnostics=False",
    "--config.eval.autoencoder_steps=0",
]


def _final_state(workdir: str):
    config = load_saved_config(os.path.join(workdir, "config.json"))
    dataset = load_dataset(config.data)
    _, template = abstract_setup(config, dataset.shape, len(dataset.train_x))
    ckpt = Checkpointer(workdir, read_only=True)
    try:
        return ckpt.latest_step(), ckpt.restore(template)
    finally:
        ckpt.close()


def _saving(workdir: str, since: float) -> bool:
    """Whether a save is in flight: a temporary folder made by this process (one left by
    a killed process lingers until that step is saved again, and does not count)."""
    for path in glob.glob(os.path.join(workdir, "checkpoints", "*orbax-checkpoint-tmp*")):
        try:
            if os.path.getmtime(path) >= since:
                return True
        except FileNotFoundError:  # renamed into place meanwhile
            pass
    return False


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("uninterrupted"))
    subprocess.run([*ARGS, f"--workdir={workdir}"], cwd=ROOT, check=True, capture_output=True)
    return workdir


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_kills_at_random_moments_resume_bit_for_bit(reference, tmp_path, sig):
    rng = random.Random(int(sig))
    workdir = str(tmp_path / "run")
    during_save = 0
    for i in range(KILLS):
        started = time.time()
        proc = subprocess.Popen(
            [*ARGS, f"--workdir={workdir}"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if i % 2:  # at the first checkpoint save seen after start-up
            deadline = time.time() + 60
            while not _saving(workdir, started) and proc.poll() is None and time.time() < deadline:
                time.sleep(0.0005)
        else:  # at a random moment: start-up, compilation, training or a save
            time.sleep(rng.uniform(1.0, 9.0))
        saving = _saving(workdir, started)
        proc.send_signal(sig)
        err = proc.communicate(timeout=120)[1]
        during_save += saving and sig == signal.SIGKILL
        if proc.returncode == 0:  # it finished before the signal: start over from scratch
            pytest.fail(f"the run ended before kill {i}; lengthen ARGS' num_steps")
        assert "Traceback" not in err or sig == signal.SIGKILL, err[-3000:]
    done = subprocess.run([*ARGS, f"--workdir={workdir}"], cwd=ROOT, capture_output=True)
    assert done.returncode == 0, done.stderr[-3000:]
    step_a, state_a = _final_state(reference)
    step_b, state_b = _final_state(workdir)
    assert step_a == step_b == 6000
    assert tree_equal(state_a, state_b)
    assert read_metrics(workdir) == read_metrics(reference)
    if sig == signal.SIGKILL:
        assert during_save >= KILLS // 2, f"only {during_save} kills landed during a save"
